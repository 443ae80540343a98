import type { ConsensusParams } from '../../consensus/index.js'
import type { ConsensusGossipDependencies } from '../sync/consensusGossip.js'
import type { BlockSync, BlockSyncDependencies, BlockSyncOptions } from '../sync/blockSync.js'
import type { ConsensusHost, ConsensusHostDependencies } from './consensusHost.js'
import type { Timers } from './timers.js'

/**
 * How a consensus host is joined to its timers, block sync and consensus gossip: the rules a node (`node/node.ts`) and
 * the simulator's nodes (`test/sim/simNode.ts`) share, so the simulator runs the node's wiring, not a copy of it.
 */

/** Block sync's settings for a chain of these consensus timeouts and block limits. */
export function blockSyncOptions(params: ConsensusParams, limits: BlockSyncOptions['limits']): BlockSyncOptions {
  // a height that lasts two rounds of timeouts without a decision here is stuck: peers are asked whether it was decided
  return { intervalMs: 1_000, stuckMs: 2 * (params.timeoutProposeMs + params.timeoutPrevoteMs + params.timeoutPrecommitMs), window: 8, limits }
}

/** What block sync asks of the host: its tips, and checking and applying the blocks it fetches. */
export function blockSyncHostDependencies(
  host: ConsensusHost,
): Pick<BlockSyncDependencies, 'tipHeight' | 'appliedHeight' | 'heightStartedAtMs' | 'verifyTip' | 'verifyCertified' | 'check' | 'apply' | 'settle'> {
  return {
    tipHeight: () => host.tip?.height ?? 0,
    appliedHeight: () => host.appliedTip?.height ?? 0,
    heightStartedAtMs: () => host.heightStartedAtMs,
    verifyTip: (cert) => host.verifyTip(cert),
    verifyCertified: (h, stored, cert) => host.verifyBlockCertificate(h, stored, cert),
    check: (h, stored, cert, bytes) => host.checkSyncedBlock(h, stored, cert, bytes),
    apply: (b, hold) => host.applySyncedBlock(b, hold),
    settle: () => host.flushSyncedBlocks(),
  }
}

/** What consensus gossip admission asks of the host and of block sync. */
export function consensusGossipHostDependencies(
  host: ConsensusHost,
  sync: Pick<BlockSync, 'notePeerHeight' | 'request'>,
  o: { readonly chainId: string; readonly maxTxs: number },
): Omit<ConsensusGossipDependencies, 'logger' | 'now'> {
  return {
    chainId: o.chainId,
    validatorSet: (h) => host.validatorSetAt(h),
    maxTxs: o.maxTxs,
    height: () => host.height,
    status: (m) => host.messageStatus(m),
    notePeerHeight: (peer, h) => sync.notePeerHeight(peer, h),
    missedHeight: (h) => sync.request(h),
    onProposal: (m) => host.onProposalMessage(m),
    onVote: (v) => host.onVote(v),
    onEvidence: (bytes) => host.admitEvidence(bytes),
  }
}

/** The host's timeouts as entries of a {@link Timers}, whose heights are bigints. */
export function hostTimeouts(timers: Timers<'propose' | 'prevote' | 'precommit'>): Pick<ConsensusHostDependencies, 'scheduleTimeout' | 'cancelTimeoutsBelow'> {
  return {
    scheduleTimeout: (t, ms) => timers.schedule({ height: BigInt(t.height), round: t.round, kind: t.kind }, ms),
    cancelTimeoutsBelow: (h) => timers.cancelBelow(BigInt(h)),
  }
}

/** How often the host is asked to re-send a stuck height's messages ({@link resendAfterMs}). */
export const RESEND_CHECK_MS = 1_000

/** A height that lasts this long, well beyond the empty-block wait, is stuck: its messages go out again. */
export function resendAfterMs(emptyBlockIntervalMs: number): number {
  return Math.max(2_000, emptyBlockIntervalMs + 1_000)
}
