//! Building a block from candidate transactions (the proposer's side).

use std::collections::BTreeMap;

use settle_assets::encode::compact_size_len;
use settle_assets::hash::{ChainId, Txid};
use settle_assets::transaction::{Transaction, TxOut};

use crate::block::{Block, Header, merkle_root};
use crate::certificate::CommitCertificate;
use crate::coin::ChainView;
use crate::limits::{BLOCK_VERSION, HEADER_BYTES};
use crate::reject::Rejection;
use crate::spec::ChainSpec;
use crate::validate::{
    BlockEffects, Overlay, ScriptJob, TxContext, check_contextual, parallel_checks,
    script_rejection,
};

/// A candidate transaction that was left out of the block, and why.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SkippedTx {
    /// Its index in the candidate list.
    pub index: usize,
    pub txid: Txid,
    pub rejection: Rejection,
}

/// A block ready to be signed: its certificate is empty (height, round 0, block hash,
/// no signatures) until validators add precommits.
#[derive(Clone, Debug)]
pub struct BuiltBlock {
    pub block: Block,
    pub effects: BlockEffects,
    /// Candidates left out: invalid ones (their rejection says why) and, with code
    /// `block-full` (class policy), those that did not fit the block limits.
    pub skipped: Vec<SkippedTx>,
}

/// Builds the block after `parent` from `candidates` (in order; a transaction may spend
/// outputs of earlier candidates), skipping every candidate that is invalid at this
/// height and time. `time_ms` is raised to `parent.time_ms + 1` if it is not after the
/// parent's time. `proposer` is the proposing validator's x-only key.
pub fn build_block<V: ChainView + ?Sized>(
    parent: &Header,
    candidates: &[Transaction],
    time_ms: u64,
    proposer: [u8; 32],
    view: &V,
    spec: &ChainSpec,
    chain_id: &ChainId,
) -> BuiltBlock {
    let height = parent.height.saturating_add(1);
    let time_ms = time_ms.max(parent.time_ms.saturating_add(1));
    let ctx = TxContext {
        chain_id: *chain_id,
        spec,
        height,
        time_ms,
    };
    let membership = crate::validate::membership_of(view, spec);
    let max_txs = spec.limits.max_block_txs as usize;
    // Room for the header and the largest transaction count the limit allows.
    let fixed_bytes = HEADER_BYTES + compact_size_len(max_txs as u64);
    let max_bytes = spec.limits.max_block_bytes as usize;
    // Candidates whose scripts failed in an earlier round, with their rejections.
    let mut script_failures: BTreeMap<usize, Rejection> = BTreeMap::new();
    loop {
        let mut overlay = Overlay::new(view);
        let mut included: Vec<(usize, Vec<TxOut>)> = Vec::new();
        let mut skipped = Vec::new();
        let mut size = fixed_bytes;
        for (index, tx) in candidates.iter().enumerate() {
            if let Some(rejection) = script_failures.get(&index) {
                skipped.push(SkippedTx {
                    index,
                    txid: tx.txid(),
                    rejection: rejection.clone(),
                });
                continue;
            }
            let tx_size = tx.size_bytes();
            if included.len() >= max_txs || size + tx_size > max_bytes {
                skipped.push(SkippedTx {
                    index,
                    txid: tx.txid(),
                    rejection: Rejection::policy(
                        "block-full",
                        format!(
                            "{} transactions, {size} bytes already in the block (limits {max_txs}, {max_bytes})",
                            included.len()
                        ),
                    ),
                });
                continue;
            }
            match check_contextual(tx, &overlay, &ctx) {
                Ok(checked) => {
                    overlay.apply(index, &checked.effects);
                    included.push((index, checked.spent_outputs));
                    size += tx_size;
                }
                Err(rejection) => skipped.push(SkippedTx {
                    index,
                    txid: tx.txid(),
                    rejection,
                }),
            }
        }
        let parts = overlay.into_parts();
        let jobs: Vec<ScriptJob<'_>> = included
            .iter()
            .filter(|(index, _)| !view.scripts_verified(&candidates[*index].wtxid()))
            .map(|(index, spent)| ScriptJob {
                index: *index,
                tx: &candidates[*index],
                spent,
            })
            .collect();
        let (failures, delta) =
            parallel_checks(&jobs, *chain_id, false, &parts.spent, &parts.created);
        if !failures.is_empty() {
            // Leave them out and rebuild: transactions spending their outputs now
            // miss their inputs. Each round removes at least one candidate.
            for (index, error) in failures {
                if let Some((_, spent)) = included.iter().find(|(i, _)| *i == index) {
                    script_failures
                        .insert(index, script_rejection(&error, &candidates[index], spent));
                }
            }
            continue;
        }
        let mut muhash = view.utxo_muhash();
        muhash.combine(&delta);
        muhash.normalize();
        let utxo_commitment = muhash.finalize();
        let transactions: Vec<Transaction> = included
            .iter()
            .map(|(index, _)| candidates[*index].clone())
            .collect();
        let wtxids: Vec<_> = transactions.iter().map(Transaction::wtxid).collect();
        let header = Header {
            version: BLOCK_VERSION,
            height,
            prev_hash: parent.hash(),
            time_ms,
            merkle_root: merkle_root(&wtxids),
            utxo_commitment,
            validator_set_hash: membership.in_force_at(height).validators.hash(),
            proposer,
        };
        let block_hash = header.hash();
        skipped.sort_by_key(|s| s.index);
        return BuiltBlock {
            block: Block {
                header,
                transactions,
                certificate: CommitCertificate::empty(height, 0, block_hash),
            },
            effects: BlockEffects {
                block_hash,
                height,
                txids: parts.txids,
                spent: parts.spent,
                created: parts.created,
                assets: parts.assets,
                muhash,
                utxo_commitment,
                membership: crate::validate::membership_after(
                    &membership,
                    height,
                    parts.membership_change,
                ),
            },
            skipped,
        };
    }
}
