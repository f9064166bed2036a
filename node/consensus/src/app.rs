//! What consensus needs from the chain: the [`Application`] trait that the daemon
//! implements over its chainstate, mempool and block store.
//!
//! Consensus treats a block as opaque bytes plus its hash. The application builds
//! blocks, validates them in full, and connects a decided block together with its
//! certificate. Calls are synchronous and made from the consensus task one at a
//! time, in the order the engine asks.

use std::time::Duration;

use bytes::Bytes;
use settle_assets::BlockHash;

use crate::certificate::Certificate;
use crate::types::{Height, ValidatorSet};

/// Most candidate blocks ([`Application::store_candidate`]) kept for one height:
/// one per round in practice. Beyond it this node stops voting for new blocks at
/// that height (it votes nil) rather than vote for a block it could lose in a crash.
pub const MAX_CANDIDATE_BLOCKS_PER_HEIGHT: usize = 32;
/// Most bytes of candidate blocks kept for one height (the same rule as the count).
pub const MAX_CANDIDATE_BYTES_PER_HEIGHT: u64 = 64 * 1024 * 1024;

/// A block this node proposes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ProposedBlock {
    pub hash: BlockHash,
    /// The canonical encoding of the block (settle-chain's block encoding).
    pub bytes: Bytes,
}

/// A connected block and the certificate that decided it, as served to syncing
/// peers.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DecidedBlock {
    pub bytes: Bytes,
    pub certificate: Certificate,
}

/// The application's judgement of a block proposed (or synced) for the next height.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum BlockVerdict {
    /// The block is valid on top of the current tip.
    Valid(BlockHash),
    /// The block decodes (so it has a hash) but breaks a consensus rule: validators
    /// vote nil on it, and a synced block like this is a protocol violation.
    Invalid { hash: BlockHash, reason: String },
    /// The bytes are not a block at all.
    Malformed { reason: String },
}

/// A failure on this node's side (storage, I/O), never a judgement about a block.
/// Consensus keeps an invalid block apart from a failing database.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("application failure: {0}")]
pub struct AppError(pub String);

/// The chain as consensus sees it.
pub trait Application: Send + 'static {
    /// Height of the last connected block (0: only genesis).
    fn tip_height(&self) -> Result<Height, AppError>;

    /// Lowest height whose block and certificate this node can serve (1 when it
    /// keeps the whole chain).
    fn history_min_height(&self) -> Result<Height, AppError>;

    /// The validator set that decides `height`. It is fixed by the chain up to
    /// `height - 1`, so it is known once that block is connected; a validator-set
    /// change included in block `h` applies from height `h + 1`.
    fn validator_set(&self, height: Height) -> Result<ValidatorSet, AppError>;

    /// Builds the block this node proposes at `height` on top of the tip, from its
    /// mempool. Called only when this node is the proposer.
    fn build_block(&mut self, height: Height) -> Result<ProposedBlock, AppError>;

    /// The hash of the block in `bytes` if its header decodes, without validating
    /// anything else. Used to check the proposer's signature over a proposal before
    /// paying for full validation.
    fn block_hash(&self, bytes: &[u8]) -> Option<BlockHash>;

    /// The rules only a proposal is judged by, before this node votes for it: those
    /// that depend on this node's own clock (`spec/consensus.md`, "Clock"). `Some`
    /// gives the reason to vote nil. Blocks that arrive by sync are already decided and
    /// are never asked. The default refuses nothing.
    fn check_proposal_clock(&self, _bytes: &[u8]) -> Option<String> {
        None
    }

    /// Decodes and fully validates `bytes` as the block at `height` on top of the
    /// current tip (`height - 1`). Must not change any state.
    fn validate_block(&mut self, height: Height, bytes: &[u8]) -> Result<BlockVerdict, AppError>;

    /// Connects the decided block at `height`, storing `certificate` with it in the
    /// same synced write. Called once per height, in order, for a block that
    /// [`Application::validate_block`] or [`Application::build_block`] produced.
    fn commit_block(
        &mut self,
        height: Height,
        bytes: &[u8],
        certificate: &Certificate,
    ) -> Result<(), AppError>;

    /// Stores `bytes`, a block this node may vote for at `height` (one it built, a
    /// valid proposal, a synced block), durably: when this returns `Ok`, the block
    /// survives a crash. The driver calls it before it hands the value to the
    /// engine, so before any vote for the block is signed (`spec/consensus.md`,
    /// "After a crash"). Storing the same block again is harmless. The default keeps
    /// nothing, for applications that do not survive a restart anyway (tests'
    /// in-memory chains).
    fn store_candidate(
        &mut self,
        height: Height,
        hash: BlockHash,
        bytes: &[u8],
    ) -> Result<(), AppError> {
        let _ = (height, hash, bytes);
        Ok(())
    }

    /// The candidate blocks stored for `height`, read back when consensus starts.
    fn load_candidates(&self, height: Height) -> Result<Vec<Bytes>, AppError> {
        let _ = height;
        Ok(Vec::new())
    }

    /// Drops the candidates of every height up to `height` (called once `height`
    /// is connected; they can no longer be decided).
    fn prune_candidates(&mut self, height: Height) -> Result<(), AppError> {
        let _ = height;
        Ok(())
    }

    /// The connected block at `height` and its certificate, if this node has it.
    fn decided_block(&self, height: Height) -> Result<Option<DecidedBlock>, AppError>;

    /// How long a validator waits before it starts a height in which it may propose
    /// (`spec/consensus.md`, section 5): `Some(ZERO)` starts it now, `Some(d)` asks
    /// again after `d`, `None` waits until the node is woken (`NodeParams::wake`,
    /// e.g. when a transaction arrives) or a peer's proposal for the height arrives.
    /// `idle` is the time since the previous height was finalized. The default never
    /// waits, so every height decides a block at once.
    fn propose_delay(&self, idle: Duration) -> Option<Duration> {
        let _ = idle;
        Some(Duration::ZERO)
    }
}
