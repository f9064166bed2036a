//! `settled verify` and the `verifychain` RPC: a node checks its own database.
//!
//! Every stored block is validated again from genesis (scripts, certificates and UTXO
//! commitments included) on an in-memory chain state; the UTXO set and asset registry in
//! the database are then compared with the state the blocks produce, and the UTXO-set
//! commitment is recomputed from the stored coins. The first block or coin that disagrees
//! is named.

use std::collections::{BTreeMap, HashMap};

use settle_assets::hash::AssetId;
use settle_assets::transaction::OutPoint;
use settle_chain::{
    AssetInfo, BlockEffects, ChainSpec, ChainView, Coin, MuHash3072, validate_block,
};

use crate::store::{ChainStore, StoreError};

/// The outcome of a verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    pub height: u64,
    pub blocks_checked: u64,
    pub coins_checked: u64,
    /// Hex of the commitment recomputed from the stored coins.
    pub utxo_commitment: String,
    /// The first disagreement, if any.
    pub problem: Option<String>,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// A chain state in memory, built by replaying blocks.
#[derive(Debug, Default)]
struct MemState {
    coins: HashMap<OutPoint, Coin>,
    assets: HashMap<AssetId, AssetInfo>,
    muhash: MuHash3072,
    membership: Option<settle_chain::MembershipState>,
}

impl ChainView for MemState {
    fn coin(&self, outpoint: &OutPoint) -> Option<Coin> {
        self.coins.get(outpoint).cloned()
    }
    fn asset(&self, asset: &AssetId) -> Option<AssetInfo> {
        self.assets.get(asset).cloned()
    }
    fn utxo_muhash(&self) -> MuHash3072 {
        self.muhash.clone()
    }
    fn membership(&self) -> Option<settle_chain::MembershipState> {
        self.membership.clone()
    }
}

impl MemState {
    fn apply(&mut self, effects: &BlockEffects) -> Result<(), String> {
        if let Some(membership) = &effects.membership {
            self.membership = Some(membership.clone());
        }
        for (outpoint, _) in &effects.spent {
            self.coins.remove(outpoint);
        }
        for (outpoint, coin) in &effects.created {
            self.coins.insert(*outpoint, coin.clone());
        }
        for delta in &effects.assets {
            let mut entry = match (self.assets.get(&delta.asset), &delta.created) {
                (Some(e), None) => e.clone(),
                (None, Some(created)) => created.clone(),
                _ => {
                    return Err(format!(
                        "asset {} is created twice or changed before it exists",
                        delta.asset
                    ));
                }
            };
            entry.issued = entry
                .issued
                .checked_add(delta.issued)
                .ok_or("issued overflows")?;
            entry.burned = entry
                .burned
                .checked_add(delta.burned)
                .ok_or("burned overflows")?;
            self.assets.insert(delta.asset, entry);
        }
        self.muhash = effects.muhash.clone();
        Ok(())
    }
}

fn describe_coin(coin: &Coin) -> String {
    format!(
        "asset {} amount {} script {} height {}",
        coin.output.asset,
        coin.output.amount.units(),
        hex::encode(&coin.output.script_pubkey),
        coin.height
    )
}

/// Verifies the whole database against the blocks it stores.
pub fn verify_chain(store: &ChainStore, spec: &ChainSpec) -> Result<VerifyReport, StoreError> {
    let tip = store.require_tip()?;
    let mut report = VerifyReport {
        height: tip.height,
        blocks_checked: 0,
        coins_checked: 0,
        utxo_commitment: String::new(),
        problem: None,
    };
    let fail = |mut report: VerifyReport, problem: String| {
        report.problem = Some(problem);
        Ok(report)
    };

    let genesis = match spec.genesis() {
        Ok(g) => g,
        Err(e) => return fail(report, format!("the chain spec is invalid: {e}")),
    };
    let chain_id = genesis.chain_id;
    if store.chain_id()? != Some(chain_id) {
        return fail(
            report,
            format!("the database does not belong to chain {chain_id}"),
        );
    }
    match store.block_at(0) {
        Ok(Some(b)) if b.hash() == genesis.block.hash() => {}
        Ok(_) => {
            return fail(
                report,
                "block 0: the stored genesis block is not the chain spec's".into(),
            );
        }
        Err(e) => return fail(report, format!("block 0: {e}")),
    }
    let mut state = MemState::default();
    if let Err(e) = state.apply(&genesis.effects) {
        return fail(report, format!("block 0: {e}"));
    }
    report.blocks_checked = 1;
    let mut parent = genesis.block.header;

    for height in 1..=tip.height {
        let block = match store.block_at(height) {
            Ok(Some(b)) => b,
            Ok(None) => return fail(report, format!("block {height} is missing")),
            Err(StoreError::Corrupt { detail, .. }) => {
                return fail(report, format!("block {height} does not decode: {detail}"));
            }
            Err(e) => return Err(e),
        };
        let hash = block.hash();
        match store.header_at(height) {
            Ok(Some(h)) if h == block.header => {}
            Ok(_) | Err(StoreError::Corrupt { .. }) => {
                return fail(
                    report,
                    format!("block {height} ({hash}): the stored header differs from the block's"),
                );
            }
            Err(e) => return Err(e),
        }
        if store.height_of(&hash)? != Some(height) {
            return fail(
                report,
                format!("block {height} ({hash}): the block index does not point at it"),
            );
        }
        let effects = match validate_block(&block, &parent, &state, spec, &chain_id) {
            Ok(e) => e,
            Err(e) => return fail(report, format!("block {height} ({hash}) is invalid: {e}")),
        };
        if let Err(e) = state.apply(&effects) {
            return fail(report, format!("block {height} ({hash}): {e}"));
        }
        parent = block.header;
        report.blocks_checked += 1;
    }
    if parent.hash() != tip.hash {
        return fail(
            report,
            format!(
                "the stored tip {} is not the last block {}",
                tip.hash,
                parent.hash()
            ),
        );
    }

    // The stored coins, in key order, against the replayed set.
    let mut recomputed = MuHash3072::new();
    let mut expected = std::mem::take(&mut state.coins);
    let mut problem: Option<String> = None;
    let mut coins_checked = 0u64;
    store.for_each_coin(|outpoint, coin| -> Result<(), StoreError> {
        if problem.is_some() {
            return Ok(());
        }
        coins_checked += 1;
        let coin = match coin {
            Ok(c) => c,
            Err(e) => {
                problem = Some(format!("coin {outpoint}: {e}"));
                return Ok(());
            }
        };
        recomputed.insert_coin(&outpoint, &coin);
        match expected.remove(&outpoint) {
            Some(want) if want == coin => {}
            Some(want) => {
                problem = Some(format!(
                    "coin {outpoint} disagrees with the blocks: stored {}, the blocks say {}",
                    describe_coin(&coin),
                    describe_coin(&want)
                ));
            }
            None => {
                let spent = match store.spend_of(&outpoint) {
                    Ok(Some(s)) => format!(" (spent by {} in block {})", s.txid, s.height),
                    _ => String::new(),
                };
                problem = Some(format!(
                    "coin {outpoint} is stored ({}) but the blocks leave no such unspent coin{spent}",
                    describe_coin(&coin)
                ));
            }
        }
        Ok(())
    })?;
    report.coins_checked = coins_checked;
    if let Some(p) = problem {
        return fail(report, p);
    }
    if let Some(missing) = expected.keys().min() {
        let coin = &expected[missing];
        return fail(
            report,
            format!(
                "coin {missing} ({}) created in block {} is missing from the database",
                describe_coin(coin),
                coin.height
            ),
        );
    }
    let commitment = recomputed.finalize();
    report.utxo_commitment = hex::encode(commitment);
    if commitment != tip.header.utxo_commitment {
        return fail(
            report.clone(),
            format!(
                "the stored coins hash to {} but block {} commits to {}",
                report.utxo_commitment,
                tip.height,
                hex::encode(tip.header.utxo_commitment)
            ),
        );
    }
    if tip.muhash.finalize() != commitment {
        return fail(
            report,
            "the stored running utxo hash disagrees with the stored coins".into(),
        );
    }
    if tip.utxo_count != coins_checked {
        return fail(
            report,
            format!(
                "the stored coin count {} is not the {coins_checked} coins stored",
                tip.utxo_count
            ),
        );
    }

    // The asset registry.
    let stored: BTreeMap<AssetId, AssetInfo> = store.assets()?.into_iter().collect();
    let replayed: BTreeMap<AssetId, AssetInfo> = state.assets.into_iter().collect();
    for (id, info) in &stored {
        match replayed.get(id) {
            Some(want) if want == info => {}
            Some(want) => {
                return fail(
                    report,
                    format!(
                        "asset {id} disagrees with the blocks: stored issued {} burned {}, the blocks say issued {} burned {}",
                        info.issued, info.burned, want.issued, want.burned
                    ),
                );
            }
            None => {
                return fail(
                    report,
                    format!("asset {id} is registered but no block issues it"),
                );
            }
        }
    }
    if let Some(id) = replayed.keys().find(|id| !stored.contains_key(id)) {
        return fail(
            report,
            format!("asset {id} is issued in the blocks but missing from the registry"),
        );
    }
    if tip.asset_count != stored.len() as u64 {
        return fail(
            report,
            format!(
                "the stored asset count {} is not the {} assets registered",
                tip.asset_count,
                stored.len()
            ),
        );
    }
    Ok(report)
}
