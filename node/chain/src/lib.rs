//! Settle's chain core: everything about blocks and the chain that can be decided from
//! plain data, with no I/O.
//!
//! - [`spec`]: the chain spec (TOML): validators, issuer registry, limits, genesis
//!   allocations; the genesis block and the chain id.
//! - [`block`]: headers, blocks, the merkle tree over wtxids, their canonical encoding.
//! - [`certificate`]: validator sets, BIP340 precommits and commit certificates.
//! - [`clock`]: the vote-time bound on a proposal's time against the node's clock.
//! - [`muhash`]: the MuHash3072 rolling multiset hash that commits to the UTXO set.
//! - [`coin`]: unspent coins, the asset registry entry and the [`ChainView`] trait.
//! - [`validate`]: transaction and block validation returning plain-data effects.
//! - [`produce`]: building a block from candidate transactions.
//! - [`membership`]: the validator set and permitted nodes, and changes to them made by
//!   transactions signed by a quorum of validators.
//! - [`memory`]: an in-memory chain state (the reference for applying effects).
//! - [`lending`]: securities loans and holdings derived from the chain (pure; the store
//!   implements [`lending::LendingSource`]).
//!
//! The daemon (RocksDB, mempool, networking) sits on top and applies the effects this
//! crate returns. The normative text is `spec/chain.md`.

pub mod block;
pub mod certificate;
pub mod clock;
pub mod coin;
pub mod lending;
pub mod limits;
pub mod membership;
pub mod memory;
pub mod muhash;
pub mod produce;
pub mod reject;
pub mod spec;
pub mod validate;

pub use block::{Block, Header, merkle_root};
pub use certificate::{
    CertificateError, CommitCertificate, CommitSignature, Validator, ValidatorSet,
    ValidatorSetError, precommit_digest, sign_precommit, verify_signatures,
};
pub use coin::{AssetInfo, ChainView, Coin};
pub use membership::{
    Membership, MembershipChange, MembershipError, MembershipOp, MembershipState, PendingChange,
};
pub use memory::MemoryState;
pub use muhash::{MuHash3072, utxo_element};
pub use produce::{BuiltBlock, SkippedTx, build_block};
pub use reject::{RejectClass, Rejection};
pub use spec::{
    Allocation, AllocationOutput, ChainSpec, Genesis, IssuerRegistry, Limits, Network,
    PermittedNode, SpecError,
};
pub use validate::{
    AssetDelta, BlockEffects, BlockError, HeaderError, TxContext, TxEffects, membership_of,
    validate_block, validate_proposal, validate_transaction,
};
