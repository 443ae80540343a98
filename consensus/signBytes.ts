import { Domain, signBytes, verifyRemembered } from '../crypto/index.js'
import type { Proposal, Vote, Validator } from './types.js'

/**
 * Sign bytes of votes and proposals (docs/formats.md, "Sign bytes"):
 *  - vote: canonical([domain, chainId, height, round, valueId | null]) with domain `tally/prevote/v1` or
 *    `tally/precommit/v1`, so a prevote never passes as a precommit;
 *  - proposal: canonical(["tally/proposal/v1", chainId, height, round, valueId, polRound]).
 * The signer is identified by its key, so its address is not part of the bytes.
 */

/** The bytes a validator signs for a vote. */
export function voteSignBytes(chainId: string, vote: Omit<Vote, 'validator'>): Uint8Array {
  const domain = vote.type === 'prevote' ? Domain.prevote : Domain.precommit
  return signBytes(domain, chainId, [vote.height, vote.round, vote.valueId])
}

/** The bytes a proposer signs for a proposal. */
export function proposalSignBytes(chainId: string, proposal: Omit<Proposal, 'proposer'>): Uint8Array {
  return signBytes(Domain.proposal, chainId, [proposal.height, proposal.round, proposal.valueId, proposal.polRound])
}

/**
 * True when `signature` is the validator's signature on the vote (the one rule of crypto/ed25519.ts). A signature
 * seen valid recently is not checked again (`verifyRemembered`).
 */
export function verifyVoteSignature(chainId: string, validator: Validator, vote: Omit<Vote, 'validator'>, signature: Uint8Array): boolean {
  return verifyRemembered(validator.publicKey, voteSignBytes(chainId, vote), signature)
}

/** True when `signature` is the validator's signature on the proposal. */
export function verifyProposalSignature(chainId: string, validator: Validator, proposal: Omit<Proposal, 'proposer'>, signature: Uint8Array): boolean {
  return verifyRemembered(validator.publicKey, proposalSignBytes(chainId, proposal), signature)
}
