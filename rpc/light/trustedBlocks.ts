import { bytesEqual } from '../../crypto/bytes.js'
import type { TrustedBlock } from './verifier.js'

/**
 * The light client's trusted blocks of one chain: its starting point (the root: a genesis or a pinned checkpoint),
 * which is never dropped, and the blocks it verified since, oldest first, the most recent `maxBlocks` of them kept.
 */

/** Where trust starts: a genesis (identified by its hash) or a block the user pinned by height and hash. */
export type TrustRoot =
  | { readonly kind: 'genesis'; readonly genesisHash: Uint8Array }
  | { readonly kind: 'checkpoint'; readonly height: number; readonly hash: Uint8Array }

/** True when two roots name the same starting point. */
export function sameRoot(a: TrustRoot, b: TrustRoot): boolean {
  if (a.kind === 'genesis') return b.kind === 'genesis' && bytesEqual(a.genesisHash, b.genesisHash)
  return b.kind === 'checkpoint' && a.height === b.height && bytesEqual(a.hash, b.hash)
}

/** How many verified blocks are kept besides the root, by default. */
export const DEFAULT_MAX_TRUSTED_BLOCKS = 100

/** The trusted blocks, ascending by height, the root first. */
export class TrustedBlocks {
  private readonly blocks: TrustedBlock[]

  /**
   * `rootBlock` is the trusted block of `root` (height 0 for a genesis, the pinned block for a checkpoint); `others`
   * are blocks verified from it earlier (any order; those at or below the root's height are ignored).
   */
  constructor(
    readonly root: TrustRoot,
    rootBlock: TrustedBlock,
    others: readonly TrustedBlock[] = [],
    readonly maxBlocks = DEFAULT_MAX_TRUSTED_BLOCKS,
  ) {
    if (!Number.isSafeInteger(maxBlocks) || maxBlocks < 1) throw new RangeError('maxBlocks must be a positive integer')
    if (
      root.kind === 'genesis' ? rootBlock.height !== 0 : rootBlock.height !== root.height || rootBlock.hash === null || !bytesEqual(rootBlock.hash, root.hash)
    ) {
      throw new RangeError('the root block is not the block of the trust root')
    }
    this.blocks = [rootBlock]
    for (const b of [...others].sort((x, y) => x.height - y.height)) if (b.height > rootBlock.height) this.add(b)
  }

  get chainId(): string {
    return this.blocks[0]!.chainId
  }

  /** The root's trusted block. */
  get rootBlock(): TrustedBlock {
    return this.blocks[0]!
  }

  /** Every trusted block, ascending. */
  all(): readonly TrustedBlock[] {
    return this.blocks
  }

  /** The highest trusted block. */
  latest(): TrustedBlock {
    return this.blocks.at(-1)!
  }

  /** The trusted block at `height`, if any. */
  at(height: number): TrustedBlock | undefined {
    return this.blocks.find((b) => b.height === height)
  }

  /** The highest trusted block strictly below `height`. */
  closestBelow(height: number): TrustedBlock | undefined {
    let found: TrustedBlock | undefined
    for (const b of this.blocks) {
      if (b.height >= height) break
      found = b
    }
    return found
  }

  /** The lowest trusted block with a header strictly above `height`. */
  closestAbove(height: number): TrustedBlock | undefined {
    return this.blocks.find((b) => b.height > height && b.header !== null)
  }

  /**
   * Adds a verified block, or replaces the one of its height when it is the same block (e.g. now with its next
   * set). A different block at a trusted height is a caller's bug (verification must have refused it). Keeps the
   * root and the latest `maxBlocks` others; a block below the root is not kept.
   */
  add(block: TrustedBlock): void {
    if (block.chainId !== this.chainId) throw new RangeError(`a block of chain ${block.chainId} among blocks of ${this.chainId}`)
    const i = this.blocks.findIndex((b) => b.height >= block.height)
    const existing = i === -1 ? undefined : this.blocks[i]
    if (existing !== undefined && existing.height === block.height) {
      const same = existing.hash === null ? block.hash === null : block.hash !== null && bytesEqual(existing.hash, block.hash)
      if (!same) throw new RangeError(`a second block at the trusted height ${block.height}`)
      if (existing.nextValidators === undefined && block.nextValidators !== undefined) this.blocks[i] = block
      return
    }
    if (i === 0) return // below the root: trusted (by the hash chain), but not kept
    this.blocks.splice(i === -1 ? this.blocks.length : i, 0, block)
    if (this.blocks.length > this.maxBlocks + 1) this.blocks.splice(1, this.blocks.length - this.maxBlocks - 1)
  }
}
