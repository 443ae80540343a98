/**
 * The penalty score at which a peer is disconnected and refused for a while ({@link P2p}'s default
 * `disconnectThreshold`). A component that holds proof that a peer is malicious (an answer no honest peer gives)
 * penalizes it this much, so that one such answer disconnects it; faults an honest peer may commit now and then cost
 * less, and are forgiven over time.
 */
export const DISCONNECT_SCORE = 50
