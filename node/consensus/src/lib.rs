//! Settle's consensus layer: Tendermint through the Malachite engine.
//!
//! - [`context`]: Malachite's `Context` for Settle ([`SettleContext`]).
//! - [`types`]: heights, validator addresses (x-only keys), the validator set,
//!   block ids (the decided value), votes, proposals and proposal parts.
//! - [`signing`]: the tagged digests validators sign and the BIP340 signer and
//!   verifier.
//! - [`sign_guard`]: the durable double-sign guard in front of the signer.
//! - [`crash`]: the crash-point test hook (`SETTLE_CRASH_AT`).
//! - [`certificate`]: commit certificates in settle-chain's shape.
//! - [`codec`]: the wire and WAL encoding.
//! - [`identity`]: node keys as libp2p identities; permitted keys as peer ids.
//! - [`streams`]: reassembly of proposal-part streams.
//! - [`app`]: the [`Application`] trait the daemon implements.
//! - [`misbehaviour`]: what a peer's invalid data costs it (scores and bans).
//! - [`node`]: [`start_node`], which runs the engine and drives it.
//!
//! The protocol is specified in `spec/consensus.md`.

pub mod app;
pub mod certificate;
pub mod codec;
pub mod config;
pub mod context;
pub mod crash;
pub mod identity;
pub mod misbehaviour;
pub mod node;
pub mod sign_guard;
pub mod signing;
pub mod streams;
pub mod types;

pub use app::{
    AppError, Application, BlockVerdict, DecidedBlock, MAX_CANDIDATE_BLOCKS_PER_HEIGHT,
    MAX_CANDIDATE_BYTES_PER_HEIGHT, ProposedBlock,
};
pub use certificate::{Certificate, CertificateError, CommitSignature};
pub use config::Timing;
pub use context::SettleContext;
pub use misbehaviour::{BAN_DURATION_MS, MisbehaviourCounts, Offence, PeerGuard};
pub use node::{
    ConsensusStatus, GossipedTxs, NetworkSummary, NodeError, NodeHandle, NodeParams, NodeRole,
    PeerSummary, peer_multiaddr, start_node,
};
pub use signing::{PrivateKey, SettleSigner, SettleVerifier};
pub use types::{Address, BlockId, Height, TxBatch, ValidatorSet, ValidatorSetError};

/// Re-exports for callers that configure the network or rounds.
pub use malachitebft_app_channel::app::net::Multiaddr;
pub use malachitebft_core_types::{LinearTimeouts, Round};
pub use multiaddr;
