//! Reading the chain for the wallet: which scripts are the wallet's, and what each block
//! did to its coins and history. Pure: the caller fetches blocks (over RPC) and hands
//! them over as plain data; this module changes the [`WalletState`] value.
//!
//! The wallet watches every address it has handed out plus [`GAP_LIMIT`] more on each
//! chain (receive and change), and every multisig it imported. When a block pays an
//! address inside the look-ahead window, the wallet counts that address as handed out
//! and the window moves on: restoring from a mnemonic finds every coin this way, as long
//! as no run of more than [`GAP_LIMIT`] handed-out addresses went unused.

use std::collections::{BTreeMap, HashMap};

use settle_assets::{AssetId, BlockHash, OutPoint, TxOut, Txid};

use crate::keys::{DerivationPath, EXTERNAL_CHAIN, INTERNAL_CHAIN, KeyOrigin, WalletKeys};
use crate::state::{
    AssetFlow, CachedCoin, HistoryEntry, MAX_HISTORY_ENTRIES, ScanTip, StateError, WalletState,
};

/// Unused addresses watched past the last one handed out, on each chain.
pub const GAP_LIMIT: u32 = 20;

/// Who a watched script belongs to.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Owner {
    /// A wallet key at `m/86'/21332'/account'/chain/index`.
    Key {
        chain: u32,
        index: u32,
        origin: KeyOrigin,
    },
    /// An imported multisig descriptor, by name.
    Multisig { name: String },
}

/// The scripts the wallet recognises as its own.
#[derive(Clone, Debug, Default)]
pub struct Watch {
    by_script: HashMap<Vec<u8>, Owner>,
    /// Per chain (external, internal): indices below this are watched.
    windows: [u32; 2],
}

fn chain_slot(chain: u32) -> usize {
    usize::from(chain == INTERNAL_CHAIN)
}

impl Watch {
    /// Watches the addresses handed out so far plus [`GAP_LIMIT`] on each chain, and the
    /// imported multisigs.
    pub fn new(state: &WalletState, keys: &WalletKeys) -> Result<Watch, StateError> {
        let mut w = Watch::default();
        w.cover(state, keys)?;
        for d in &state.multisig {
            w.by_script.insert(
                d.script_pubkey()?,
                Owner::Multisig {
                    name: d.name.clone(),
                },
            );
        }
        Ok(w)
    }

    /// Extends the windows to the state's counters plus the gap limit. Returns whether a
    /// window grew.
    pub fn cover(&mut self, state: &WalletState, keys: &WalletKeys) -> Result<bool, StateError> {
        let mut grew = false;
        for (chain, next) in [
            (EXTERNAL_CHAIN, state.next_index.external),
            (INTERNAL_CHAIN, state.next_index.internal),
        ] {
            let want = next.saturating_add(GAP_LIMIT);
            let slot = chain_slot(chain);
            while self.windows[slot] < want {
                let index = self.windows[slot];
                let a = state.address_at(keys, chain, index)?;
                self.by_script.insert(
                    a.script_pubkey,
                    Owner::Key {
                        chain,
                        index,
                        origin: a.key.origin,
                    },
                );
                self.windows[slot] += 1;
                grew = true;
            }
        }
        Ok(grew)
    }

    /// Who owns `script`, if the wallet watches it.
    pub fn owner(&self, script: &[u8]) -> Option<&Owner> {
        self.by_script.get(script)
    }

    /// Every watched script, in a stable order (for `listunspent`).
    pub fn scripts(&self) -> Vec<&[u8]> {
        let mut v: Vec<&[u8]> = self.by_script.keys().map(Vec::as_slice).collect();
        v.sort_unstable();
        v
    }

    /// The watched window of each chain: (external, internal).
    pub fn windows(&self) -> (u32, u32) {
        (self.windows[0], self.windows[1])
    }
}

/// A transaction as the scan needs it: what it spends and what it creates.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ScannedTx {
    pub txid: Txid,
    /// The coins it spends (null inputs left out).
    pub spends: Vec<OutPoint>,
    pub outputs: Vec<TxOut>,
}

/// What a block did to the wallet.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct BlockEffect {
    /// Transactions that touched the wallet.
    pub touched: Vec<Txid>,
    /// Whether an address beyond the handed-out ones was used (the window moved).
    pub window_grew: bool,
}

/// Why a block could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("block {height} does not follow the last block read ({expected_parent})")]
    NotConnected {
        height: u64,
        expected_parent: BlockHash,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

/// Forgets everything learnt from the chain (coins, confirmed history, scan height), so
/// the next scan starts again at genesis. Entries of transactions still waiting are kept.
pub fn reset_scan(state: &mut WalletState) {
    state.coins.clear();
    state.history.retain(|h| h.height.is_none());
    state.scan = None;
}

/// Applies block `height` (`hash`, child of `parent`) to the state: removes the wallet's
/// coins it spends, adds the coins it pays to watched scripts, records history, and moves
/// the address counters past any watched address it pays.
pub fn apply_block(
    state: &mut WalletState,
    watch: &mut Watch,
    keys: &WalletKeys,
    height: u64,
    hash: BlockHash,
    parent: BlockHash,
    txs: &[ScannedTx],
) -> Result<BlockEffect, ScanError> {
    if let Some(tip) = state.scan
        && (tip.height + 1 != height || tip.block_hash != parent)
    {
        return Err(ScanError::NotConnected {
            height,
            expected_parent: tip.block_hash,
        });
    }
    let mut effect = BlockEffect::default();
    let mut coins: BTreeMap<OutPoint, CachedCoin> =
        state.coins.drain(..).map(|c| (c.outpoint, c)).collect();
    for tx in txs {
        let mut flows: BTreeMap<AssetId, (u64, u64)> = BTreeMap::new();
        for prevout in &tx.spends {
            if let Some(c) = coins.remove(prevout) {
                let f = flows.entry(c.asset).or_default();
                f.0 = f.0.saturating_add(c.amount.units());
            }
        }
        for (vout, out) in tx.outputs.iter().enumerate() {
            let Some(owner) = watch.owner(&out.script_pubkey).cloned() else {
                continue;
            };
            let path: Option<DerivationPath> = match &owner {
                Owner::Key {
                    chain,
                    index,
                    origin,
                } => {
                    let next = if *chain == EXTERNAL_CHAIN {
                        &mut state.next_index.external
                    } else {
                        &mut state.next_index.internal
                    };
                    if *index >= *next {
                        *next = index.saturating_add(1);
                    }
                    Some(origin.path.clone())
                }
                Owner::Multisig { .. } => None,
            };
            let f = flows.entry(out.asset).or_default();
            f.1 = f.1.saturating_add(out.amount.units());
            // Bounded by MAX_TX_OUTPUTS, far below u32::MAX.
            #[allow(clippy::cast_possible_truncation)]
            let outpoint = OutPoint::new(tx.txid, vout as u32);
            coins.insert(
                outpoint,
                CachedCoin {
                    outpoint,
                    asset: out.asset,
                    amount: out.amount,
                    script_pubkey: out.script_pubkey.clone(),
                    path,
                    height: u32::try_from(height).ok(),
                },
            );
        }
        if watch.cover(state, keys)? {
            effect.window_grew = true;
        }
        if flows.is_empty() {
            continue;
        }
        effect.touched.push(tx.txid);
        let flows = flows
            .into_iter()
            .map(|(asset, (gave, got))| AssetFlow { asset, gave, got })
            .collect();
        // A transaction this wallet sent is already listed as waiting: confirm it there.
        match state.history.iter_mut().find(|h| h.txid == tx.txid) {
            Some(h) => {
                h.height = Some(height);
                h.flows = flows;
            }
            None => state.history.push(HistoryEntry {
                txid: tx.txid,
                height: Some(height),
                flows,
                note: None,
            }),
        }
    }
    state.coins = coins.into_values().collect();
    // Offers whose coin this block spent were taken or cancelled.
    let spent_in_block: std::collections::BTreeSet<&OutPoint> =
        txs.iter().flat_map(|t| t.spends.iter()).collect();
    state
        .offers
        .retain(|o| !spent_in_block.contains(&o.outpoint));
    trim_history(state);
    state.scan = Some(ScanTip {
        height,
        block_hash: hash,
    });
    Ok(effect)
}

/// Records a transaction the wallet just sent, as waiting, unless it is already listed.
pub fn record_pending(state: &mut WalletState, txid: Txid, flows: Vec<AssetFlow>, note: &str) {
    if state.history.iter().any(|h| h.txid == txid) {
        return;
    }
    state.history.push(HistoryEntry {
        txid,
        height: None,
        flows,
        note: Some(note.to_owned()),
    });
    trim_history(state);
}

fn trim_history(state: &mut WalletState) {
    if state.history.len() > MAX_HISTORY_ENTRIES {
        let excess = state.history.len() - MAX_HISTORY_ENTRIES;
        state.history.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Mnemonic;
    use settle_assets::{Amount, ChainId};
    use settle_script::Network;

    fn state() -> (WalletState, WalletKeys) {
        let s = WalletState::new(
            Mnemonic::from_entropy(&[5u8; 32]).expect("m"),
            Network::Dev,
            ChainId([1; 32]),
        );
        let k = s.keys().expect("keys");
        (s, k)
    }

    fn out(asset: u8, units: u64, script: Vec<u8>) -> TxOut {
        TxOut {
            asset: AssetId([asset; 32]),
            amount: Amount::from_units(units).expect("amount"),
            script_pubkey: script,
        }
    }

    #[test]
    fn finds_coins_in_the_gap_window_and_moves_it() {
        let (mut s, keys) = state();
        let mut w = Watch::new(&s, &keys).expect("watch");
        assert_eq!(w.windows(), (GAP_LIMIT, GAP_LIMIT));
        // Pay address 15 (never handed out by this copy of the wallet).
        let a15 = s.address_at(&keys, EXTERNAL_CHAIN, 15).expect("a");
        let tx = ScannedTx {
            txid: Txid([1; 32]),
            spends: vec![],
            outputs: vec![
                out(1, 100, vec![0x51]),
                out(1, 50, a15.script_pubkey.clone()),
            ],
        };
        let e = apply_block(
            &mut s,
            &mut w,
            &keys,
            0,
            BlockHash([9; 32]),
            BlockHash::ZERO,
            &[tx],
        )
        .expect("apply");
        assert!(e.window_grew);
        assert_eq!(s.next_index.external, 16);
        assert_eq!(w.windows().0, 16 + GAP_LIMIT);
        assert_eq!(s.coins.len(), 1);
        assert_eq!(s.coins[0].outpoint, OutPoint::new(Txid([1; 32]), 1));
        assert_eq!(s.history.len(), 1);
        assert_eq!(s.history[0].flows[0].got, 50);

        // Spending it records what was given; a block that does not connect is refused.
        let spend = ScannedTx {
            txid: Txid([2; 32]),
            spends: vec![OutPoint::new(Txid([1; 32]), 1)],
            outputs: vec![out(1, 50, vec![0x52])],
        };
        assert!(matches!(
            apply_block(
                &mut s,
                &mut w,
                &keys,
                2,
                BlockHash([8; 32]),
                BlockHash([9; 32]),
                std::slice::from_ref(&spend)
            ),
            Err(ScanError::NotConnected { .. })
        ));
        record_pending(&mut s, Txid([2; 32]), vec![], "send");
        apply_block(
            &mut s,
            &mut w,
            &keys,
            1,
            BlockHash([8; 32]),
            BlockHash([9; 32]),
            &[spend],
        )
        .expect("apply");
        assert!(s.coins.is_empty());
        assert_eq!(s.history.len(), 2);
        assert_eq!(s.history[1].height, Some(1));
        assert_eq!(s.history[1].note.as_deref(), Some("send"));
        assert_eq!(s.history[1].flows[0].gave, 50);
        reset_scan(&mut s);
        assert!(s.scan.is_none() && s.coins.is_empty() && s.history.is_empty());
    }
}
