import type { CommitCertificate } from '../../../../consensus/index.js'
import { ZERO_HASH, blockHash, txRoot, type BlockHeader } from '../../../../ledger/block.js'
import type { StoredBlock } from '../../../../node/storage/storedBlock.js'

/**
 * Stand-in blocks of the block sync tests: empty blocks linked by their heights, each with a certificate that is
 * "valid" when its round is 0 (the tests inject the verifiers), so they exercise whom sync believes and asks, not
 * signature checking. `tamper` gives block `height` another last commit, so another hash.
 */
export function block(height: number, tamper = false): { stored: StoredBlock; cert: CommitCertificate } {
  const header: BlockHeader = {
    chainId: 'tally-test',
    height,
    time: height,
    previousBlockHash: height === 1 ? ZERO_HASH : new Uint8Array(32).fill(height - 1),
    txRoot: txRoot([]),
    stateRoot: ZERO_HASH,
    proposer: new Uint8Array(20).fill(1),
    validatorSetHash: new Uint8Array(32).fill(3),
    nextValidatorSetHash: new Uint8Array(32).fill(3),
    lastCommitHash: height === 1 ? ZERO_HASH : new Uint8Array(32).fill(tamper ? 9 : 4),
    evidenceRoot: txRoot([]),
  }
  const cert: CommitCertificate = {
    height,
    round: 0,
    valueId: blockHash(header),
    signatures: [{ validator: new Uint8Array(20).fill(1), signature: new Uint8Array(64) }],
  }
  return { stored: { block: { header, txs: [], evidence: [] }, lastCommit: null }, cert }
}
