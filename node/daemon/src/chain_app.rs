//! The chain as the consensus engine sees it: [`ChainApp`] implements
//! settle-consensus's [`Application`] over the node's RocksDB chainstate and mempool.
//!
//! - The proposer builds its block from the mempool (`build_block`).
//! - Every proposed or synced block is validated in full on top of the tip before this
//!   node votes for it or connects it (`validate_block`); nothing is changed by that.
//! - A decided block is connected together with its certificate in one synced write
//!   batch, and the mempool is updated under the same lock (`commit_block`).
//! - Every block this validator may vote for is stored (synced) as a candidate before
//!   consensus sees it, and read back after a crash (`store_candidate`,
//!   `load_candidates`; `spec/consensus.md`, "After a crash").
//!
//! The bytes consensus carries are a block without its certificate (`spec/consensus.md`,
//! section 4): `header ‖ compact_size(tx count) ‖ transactions`. The certificate only
//! exists once the block is decided, and is stored with it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use settle_assets::encode::{Decode, DecodeError, Encode, Reader, write_compact_size};
use settle_assets::hash::{BlockHash, Tag};
use settle_assets::transaction::Transaction;
use settle_chain::limits::{HEADER_BYTES, MAX_BLOCK_BYTES, MAX_BLOCK_TXS};
use settle_chain::{Block, BlockEffects, CommitCertificate, Header};
use settle_consensus::{
    AppError, Application, BlockVerdict, Certificate, DecidedBlock, Height, ProposedBlock,
    ValidatorSet,
};

use crate::node::{Node, now_ms};

/// Smallest encoded transaction (version, two empty counts, lock time, expiry): bounds
/// the transaction count against the bytes that remain when decoding.
const MIN_TX_BYTES: usize = 4 + 1 + 1 + 4 + 4;
/// Most blocks kept checked (with their effects) for the height being decided: one
/// per round in practice; beyond this the oldest entries are dropped and re-validated
/// if they are decided after all.
const MAX_CHECKED_BLOCKS: usize = 16;
/// Tag of the key under which a checked block is kept: a hash of every byte of the
/// block, never the header hash alone, so a body that differs under the same header
/// is never answered from the cache. Local to this node (not signed, not sent).
static CHECKED_KEY_TAG: Tag = Tag::new("Settle/LocalCheckedBlock");

/// The key of `bytes` (a block's consensus bytes) in the `checked` cache.
fn checked_key(bytes: &[u8]) -> [u8; 32] {
    CHECKED_KEY_TAG.hash(bytes)
}

/// The consensus bytes of a block: header, transaction count, transactions.
pub fn encode_block_body(header: &Header, transactions: &[Transaction]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        HEADER_BYTES
            + 5
            + transactions
                .iter()
                .map(Transaction::size_bytes)
                .sum::<usize>(),
    );
    header.encode(&mut out);
    write_compact_size(&mut out, transactions.len() as u64);
    for tx in transactions {
        tx.encode(&mut out);
    }
    out
}

/// Decodes the consensus bytes of a block (no trailing bytes allowed). The block's
/// certificate is left empty.
pub fn decode_block_body(bytes: &[u8]) -> Result<Block, DecodeError> {
    if bytes.len() > MAX_BLOCK_BYTES {
        return Err(DecodeError::TooLarge {
            what: "block",
            size: bytes.len() as u64,
            max: MAX_BLOCK_BYTES,
        });
    }
    let mut r = Reader::new(bytes);
    let header = Header::decode(&mut r)?;
    let count = r.read_count("block transactions", MAX_BLOCK_TXS, MIN_TX_BYTES)?;
    let mut transactions = Vec::with_capacity(count);
    for _ in 0..count {
        transactions.push(Transaction::decode(&mut r)?);
    }
    if r.remaining() != 0 {
        return Err(DecodeError::TrailingBytes {
            what: "block",
            count: r.remaining(),
        });
    }
    let hash = header.hash();
    Ok(Block {
        certificate: CommitCertificate::empty(header.height, 0, hash),
        header,
        transactions,
    })
}

/// The consensus form of a chain validator set.
pub fn consensus_validator_set(
    validators: &settle_chain::ValidatorSet,
) -> Result<ValidatorSet, AppError> {
    ValidatorSet::new(validators.validators().iter().map(|v| (v.key, v.power)))
        .map_err(|e| AppError(format!("the validator set: {e}")))
}

fn app_err(e: impl std::fmt::Display) -> AppError {
    AppError(e.to_string())
}

/// The daemon's side of consensus.
#[derive(Debug)]
pub struct ChainApp {
    node: Arc<Node>,
    /// This node's validator key, the `proposer` of the blocks it builds.
    proposer: Option<[u8; 32]>,
    /// Blocks built or validated on the current tip, with their effects, so the
    /// decided one is connected without validating it again. Keyed by
    /// [`checked_key`] of the block's bytes.
    checked: HashMap<[u8; 32], (Block, BlockEffects)>,
}

impl ChainApp {
    pub fn new(node: Arc<Node>, proposer: Option<[u8; 32]>) -> Result<Self, AppError> {
        Ok(ChainApp {
            node,
            proposer,
            checked: HashMap::new(),
        })
    }

    fn remember(&mut self, bytes: &[u8], block: Block, effects: BlockEffects) {
        if self.checked.len() >= MAX_CHECKED_BLOCKS {
            self.checked.clear();
        }
        self.checked.insert(checked_key(bytes), (block, effects));
    }

    /// Validates `block` on the current tip: `Ok(Err(reason))` for an invalid block.
    fn check(&self, block: &Block) -> Result<Result<BlockEffects, String>, AppError> {
        let tip = self.node.tip().map_err(app_err)?;
        let view = crate::store::PrefetchedView::new(&self.node.store, &tip, &block.transactions)
            .map_err(app_err)?
            .with_script_cache(&self.node.script_cache);
        let verdict = settle_chain::validate_proposal(
            block,
            &tip.header,
            &view,
            &self.node.spec,
            &self.node.chain_id,
        );
        if let Some(e) = view.take_error() {
            // A verdict reached on a failed read is no verdict.
            return Err(app_err(e));
        }
        Ok(verdict.map_err(|e| e.to_string()))
    }
}

impl Application for ChainApp {
    fn tip_height(&self) -> Result<Height, AppError> {
        Ok(Height(self.node.tip().map_err(app_err)?.height))
    }

    fn history_min_height(&self) -> Result<Height, AppError> {
        Ok(Height(1))
    }

    fn validator_set(&self, height: Height) -> Result<ValidatorSet, AppError> {
        // The chain decides: the genesis set until a membership change takes effect.
        let membership = self.node.membership_for(height.0).map_err(app_err)?;
        consensus_validator_set(&membership.validators)
    }

    fn build_block(&mut self, height: Height) -> Result<ProposedBlock, AppError> {
        let proposer = self
            .proposer
            .ok_or_else(|| AppError("this node holds no validator key".into()))?;
        let built = self.node.build_next_block(proposer).map_err(app_err)?;
        if built.block.header.height != height.0 {
            return Err(AppError(format!(
                "asked to build height {height} on a tip at {}",
                built.block.header.height.saturating_sub(1)
            )));
        }
        // Never propose what an honest validator with our clock would refuse: when the
        // parent is dated beyond our bound, wait (the round times out) for time to pass.
        let drift = self.node.spec.limits.max_clock_drift_ms;
        settle_chain::clock::check_block_time(built.block.header.time_ms, now_ms(), drift)
            .map_err(|e| AppError(format!("not proposing at {height}: {e}")))?;
        let hash = built.block.hash();
        let bytes = encode_block_body(&built.block.header, &built.block.transactions);
        tracing::debug!(%height, block = %hash, txs = built.block.transactions.len(), "built a block");
        self.remember(&bytes, built.block, built.effects);
        Ok(ProposedBlock {
            hash,
            bytes: Bytes::from(bytes),
        })
    }

    fn block_hash(&self, bytes: &[u8]) -> Option<BlockHash> {
        let header = bytes.get(..HEADER_BYTES)?;
        settle_assets::deserialize::<Header>(header)
            .ok()
            .map(|h| h.hash())
    }

    fn check_proposal_clock(&self, bytes: &[u8]) -> Option<String> {
        // A header that does not decode is left to `validate_block` to call malformed.
        let header = settle_assets::deserialize::<Header>(bytes.get(..HEADER_BYTES)?).ok()?;
        let drift = self.node.spec.limits.max_clock_drift_ms;
        settle_chain::clock::check_block_time(header.time_ms, now_ms(), drift)
            .err()
            .map(|e| e.to_string())
    }

    fn validate_block(&mut self, height: Height, bytes: &[u8]) -> Result<BlockVerdict, AppError> {
        let block = match decode_block_body(bytes) {
            Ok(block) => block,
            Err(e) => {
                return Ok(BlockVerdict::Malformed {
                    reason: e.to_string(),
                });
            }
        };
        let hash = block.hash();
        if block.header.height != height.0 {
            return Ok(BlockVerdict::Invalid {
                hash,
                reason: format!(
                    "the header says height {}, consensus decides {height}",
                    block.header.height
                ),
            });
        }
        let key = checked_key(bytes);
        if self
            .checked
            .get(&key)
            .is_some_and(|(_, e)| e.height == height.0)
        {
            return Ok(BlockVerdict::Valid(hash));
        }
        match self.check(&block)? {
            Ok(effects) => {
                self.remember(bytes, block, effects);
                Ok(BlockVerdict::Valid(hash))
            }
            Err(reason) => Ok(BlockVerdict::Invalid { hash, reason }),
        }
    }

    fn commit_block(
        &mut self,
        height: Height,
        bytes: &[u8],
        certificate: &Certificate,
    ) -> Result<(), AppError> {
        let block_hash = self
            .block_hash(bytes)
            .ok_or_else(|| AppError(format!("the decided block at {height} does not decode")))?;
        let (mut block, effects) = match self.checked.remove(&checked_key(bytes)) {
            Some(checked) => checked,
            None => {
                let block = decode_block_body(bytes).map_err(|e| {
                    AppError(format!(
                        "the decided block at {height} does not decode: {e}"
                    ))
                })?;
                let effects = self.check(&block)?.map_err(|reason| {
                    AppError(format!(
                        "the decided block {block_hash} at {height} is invalid here: {reason}"
                    ))
                })?;
                (block, effects)
            }
        };
        block.certificate = certificate.clone();
        // The engine checked the quorum; checking again against the chain's own rule
        // costs one signature per validator and keeps a bad certificate out of the
        // database whatever the engine did.
        let membership = self.node.membership_for(height.0).map_err(app_err)?;
        block
            .certificate
            .verify_for(
                height.0,
                &block_hash,
                &membership.validators,
                &self.node.chain_id,
            )
            .map_err(|e| AppError(format!("the certificate of block {block_hash}: {e}")))?;
        self.node
            .connect_decided(&block, &effects)
            .map_err(app_err)?;
        self.checked.clear();
        Ok(())
    }

    fn store_candidate(
        &mut self,
        height: Height,
        hash: BlockHash,
        bytes: &[u8],
    ) -> Result<(), AppError> {
        self.node
            .store
            .put_candidate(height.0, &hash, bytes)
            .map_err(app_err)
    }

    fn load_candidates(&self, height: Height) -> Result<Vec<Bytes>, AppError> {
        let stored = self.node.store.candidates_at(height.0).map_err(app_err)?;
        Ok(stored.into_iter().map(Bytes::from).collect())
    }

    fn prune_candidates(&mut self, height: Height) -> Result<(), AppError> {
        self.node.store.prune_candidates(height.0).map_err(app_err)
    }

    fn decided_block(&self, height: Height) -> Result<Option<DecidedBlock>, AppError> {
        let Some(block) = self.node.store.block_at(height.0).map_err(app_err)? else {
            return Ok(None);
        };
        Ok(Some(DecidedBlock {
            bytes: Bytes::from(encode_block_body(&block.header, &block.transactions)),
            certificate: block.certificate,
        }))
    }

    fn propose_delay(&self, idle: Duration) -> Option<Duration> {
        let cfg = &self.node.config.producer;
        let oldest = self.node.mempool().oldest_entry_time_ms();
        match oldest {
            Some(arrived_ms) => {
                let ready_ms = arrived_ms.saturating_add(cfg.batch_delay_ms);
                Some(Duration::from_millis(ready_ms.saturating_sub(now_ms())))
            }
            None if cfg.empty_blocks => {
                Some(Duration::from_millis(cfg.empty_block_interval_ms).saturating_sub(idle))
            }
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A node with a fresh chainstate (real RocksDB) whose validator is `validator`.
    fn open_node(dir: &std::path::Path, validator: &secp256k1::Keypair) -> Node {
        let issuer = secp256k1::Keypair::new(secp256k1::SECP256K1, &mut rand::rng());
        let spec = settle_chain::ChainSpec::dev(
            &validator.x_only_public_key().0,
            &issuer.x_only_public_key().0,
            1_700_000_000_000,
        );
        let mut config = crate::config::Config::default();
        config.storage.sync_writes = false;
        Node::open(
            &dir.join("chainstate"),
            spec,
            "spec",
            config,
            Some(*validator),
        )
        .expect("open")
    }

    #[test]
    fn a_checked_header_never_vouches_for_another_body() {
        let tmp = tempfile::tempdir().expect("tmp");
        let validator = secp256k1::Keypair::new(secp256k1::SECP256K1, &mut rand::rng());
        let node = Arc::new(open_node(tmp.path(), &validator));
        let mut app = ChainApp::new(
            Arc::clone(&node),
            Some(validator.x_only_public_key().0.serialize()),
        )
        .expect("app");
        let built = app.build_block(Height(1)).expect("an empty block");
        let block = decode_block_body(&built.bytes).expect("decodes");
        assert!(block.transactions.is_empty());

        // The same header with a transaction slipped into the body: the checked
        // entry of the honest block must not answer for it.
        let alice = secp256k1::Keypair::new(secp256k1::SECP256K1, &mut rand::rng());
        let issuer = secp256k1::Keypair::new(secp256k1::SECP256K1, &mut rand::rng());
        let tx = crate::test_support::cash_issuance(
            node.chain_id,
            &issuer,
            "Forged",
            "FRG",
            false,
            &alice,
            5,
        );
        let forged = encode_block_body(&block.header, std::slice::from_ref(&tx));
        let verdict = app
            .validate_block(Height(1), &forged)
            .expect("no storage failure");
        assert!(
            matches!(&verdict, BlockVerdict::Invalid { hash, reason }
                if *hash == built.hash && reason.contains("merkle root")),
            "a body that does not match its header must be judged on its bytes: {verdict:?}"
        );
        // The honest bytes are still answered.
        assert_eq!(
            app.validate_block(Height(1), &built.bytes)
                .expect("no storage failure"),
            BlockVerdict::Valid(built.hash)
        );
    }

    #[test]
    fn block_bodies_roundtrip_and_garbage_is_an_error() {
        let header = Header {
            version: 1,
            height: 7,
            prev_hash: BlockHash([1; 32]),
            time_ms: 9,
            merkle_root: [0; 32],
            utxo_commitment: [2; 32],
            validator_set_hash: [3; 32],
            proposer: [4; 32],
        };
        let bytes = encode_block_body(&header, &[]);
        let block = decode_block_body(&bytes).expect("decodes");
        assert_eq!(block.header, header);
        assert!(block.transactions.is_empty());
        assert!(block.certificate.signatures.is_empty());

        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(decode_block_body(&trailing).is_err());
        assert!(decode_block_body(&bytes[..bytes.len() - 1]).is_err());
        let mut huge_count = bytes[..HEADER_BYTES].to_vec();
        huge_count.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0x7f]);
        assert!(decode_block_body(&huge_count).is_err());
    }
}
