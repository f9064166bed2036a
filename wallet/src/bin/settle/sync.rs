//! Bringing the wallet up to date with the node: read the blocks it has not seen (coins
//! and history, gap-limit discovery), then ask for the live view of its coins, mempool
//! included.

use std::collections::BTreeSet;

use serde_json::json;
use settle_assets::{Amount, OutPoint, TxOut};
use settle_rpc::{BlockchainInfo, MAX_LISTUNSPENT_SCRIPTS, UnspentInfo, codes};
use settle_wallet::coins::WalletCoin;
use settle_wallet::keys::KeyOrigin;
use settle_wallet::scan::{self, Owner, ScanError, ScannedTx, Watch};

use crate::ctx::{Ctx, Open};
use crate::error::{CliError, Result, kind};

/// Most passes over the chain when a restore finds addresses beyond its window.
const MAX_RESCANS: usize = 8;

/// A coin as the node sees it now.
#[derive(Clone, Debug)]
pub struct LiveCoin {
    pub coin: WalletCoin,
    pub owner: Owner,
    /// In a block (false: created by a transaction still in the mempool).
    pub confirmed: bool,
    /// Kept for an open offer of this wallet.
    pub reserved: bool,
}

/// The wallet's view after a sync.
pub struct Live {
    pub tip: BlockchainInfo,
    pub watch: Watch,
    /// Unspent coins, mempool spends removed.
    pub coins: Vec<LiveCoin>,
}

impl Live {
    /// Coins ordinary payments may use: the wallet's own keys, not kept for an offer.
    pub fn spendable(&self) -> Vec<WalletCoin> {
        self.coins
            .iter()
            .filter(|c| matches!(c.owner, Owner::Key { .. }) && !c.reserved)
            .map(|c| c.coin.clone())
            .collect()
    }

    /// Coins of the multisig named `name`.
    pub fn multisig_coins(&self, name: &str) -> Vec<WalletCoin> {
        self.coins
            .iter()
            .filter(|c| matches!(&c.owner, Owner::Multisig { name: n } if n == name))
            .map(|c| c.coin.clone())
            .collect()
    }

    pub fn height(&self) -> u64 {
        self.tip.blocks
    }
}

fn to_txout(asset: settle_assets::AssetId, amount: u64, script_hex: &str) -> Result<TxOut> {
    let bad = |what: &str| CliError::new(kind::NODE, format!("the node sent {what}"));
    Ok(TxOut {
        asset,
        amount: Amount::from_units(amount).ok_or_else(|| bad("an amount out of range"))?,
        script_pubkey: hex::decode(script_hex).map_err(|_| bad("a script that is not hex"))?,
    })
}

/// Reads blocks up to the node's tip into the wallet state.
fn scan_blocks(ctx: &Ctx, open: &mut Open, tip_height: u64) -> Result<Watch> {
    let client = ctx.client();
    let mut rescans = 0;
    'again: loop {
        let mut watch = Watch::new(&open.state, &open.keys)?;
        let window_before = watch.windows();
        let from_genesis = open.state.scan.is_none();
        let start = open.state.scan.map_or(0, |t| t.height + 1);
        for height in start..=tip_height {
            let hash = client.get_block_hash(height)?;
            let block = client.get_block(&hash)?;
            let txs = block
                .txs
                .unwrap_or_default()
                .into_iter()
                .map(|t| {
                    Ok(ScannedTx {
                        txid: t.txid,
                        spends: t.inputs.iter().filter_map(|i| i.prevout).collect(),
                        outputs: t
                            .outputs
                            .iter()
                            .map(|o| to_txout(o.asset, o.amount, &o.script_pubkey))
                            .collect::<Result<_>>()?,
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            let parent = block.header.previous_block_hash;
            match scan::apply_block(
                &mut open.state,
                &mut watch,
                &open.keys,
                height,
                hash,
                parent,
                &txs,
            ) {
                Ok(_) => {}
                Err(ScanError::NotConnected { .. }) if rescans < MAX_RESCANS => {
                    // What the wallet read before is not this chain's history (a dev chain
                    // started again with the same id): read it again from genesis.
                    rescans += 1;
                    scan::reset_scan(&mut open.state);
                    continue 'again;
                }
                Err(e) => return Err(CliError::new(kind::NODE, e.to_string())),
            }
        }
        // Reading from genesis (a restore), an address found beyond the window may also
        // have been paid in a block read before the window reached it: read the chain
        // again with the final counters.
        if from_genesis && watch.windows() != window_before && rescans < MAX_RESCANS {
            rescans += 1;
            scan::reset_scan(&mut open.state);
            continue 'again;
        }
        return Ok(watch);
    }
}

/// Brings the wallet up to date and returns the live view. Saves nothing: the caller
/// saves the state once its command succeeded.
pub fn sync(ctx: &Ctx, open: &mut Open) -> Result<Live> {
    let tip = ctx.node_info(Some((open.state.chain_id, open.state.network)))?;
    let watch = scan_blocks(ctx, open, tip.blocks)?;
    let coins = live_coins(ctx, open, &watch, tip.blocks)?;
    // An offer whose coin is spent (taken or cancelled, in a block or in the mempool) or
    // whose expiry height has passed is over: forget it, so `wallet info` counts open
    // offers only and the records stay within `MAX_OFFER_RECORDS`.
    let unspent: BTreeSet<OutPoint> = coins.iter().map(|c| c.coin.outpoint).collect();
    open.state
        .offers
        .retain(|o| unspent.contains(&o.outpoint) && offer_open(o.expiry_height, tip.blocks));
    // Transactions sent but not seen in a block: drop those the node no longer knows.
    let mut gone = Vec::new();
    for h in open.state.history.iter().filter(|h| h.height.is_none()) {
        match ctx.client().get_raw_transaction(&h.txid) {
            Ok(_) => {}
            Err(settle_rpc::ClientError::Rpc(e)) if e.code == codes::NOT_FOUND => {
                gone.push(h.txid);
            }
            Err(e) => return Err(e.into()),
        }
    }
    open.state
        .history
        .retain(|h| h.height.is_some() || !gone.contains(&h.txid));
    Ok(Live { tip, watch, coins })
}

/// An offer can still be taken: it has no expiry, or the next block (`tip + 1`) is at or
/// below its expiry height.
pub fn offer_open(expiry_height: u32, tip: u64) -> bool {
    expiry_height == 0 || tip < u64::from(expiry_height)
}

fn live_coins(ctx: &Ctx, open: &Open, watch: &Watch, tip: u64) -> Result<Vec<LiveCoin>> {
    let scripts: Vec<String> = watch.scripts().into_iter().map(hex::encode).collect();
    let mut unspent: Vec<UnspentInfo> = Vec::new();
    for chunk in scripts.chunks(MAX_LISTUNSPENT_SCRIPTS) {
        let mut part: Vec<UnspentInfo> = ctx.client().call(
            "listunspent",
            json!({ "scripts": chunk, "include_mempool": true }),
        )?;
        unspent.append(&mut part);
    }
    let reserved: BTreeSet<OutPoint> = open
        .state
        .offers
        .iter()
        .filter(|o| offer_open(o.expiry_height, tip))
        .map(|o| o.outpoint)
        .collect();
    let fingerprint = open.keys.master_fingerprint();
    let mut out = Vec::with_capacity(unspent.len());
    for u in unspent {
        if u.spent_by_mempool.is_some() {
            continue;
        }
        let txout = to_txout(u.asset, u.amount, &u.script_pubkey)?;
        let Some(owner) = watch.owner(&txout.script_pubkey).cloned() else {
            continue;
        };
        let origin = match &owner {
            Owner::Key { origin, .. } => Some(KeyOrigin {
                master_fingerprint: fingerprint,
                path: origin.path.clone(),
            }),
            Owner::Multisig { .. } => None,
        };
        out.push(LiveCoin {
            coin: WalletCoin {
                outpoint: u.outpoint,
                txout,
                origin,
            },
            owner,
            confirmed: u.height.is_some(),
            reserved: reserved.contains(&u.outpoint),
        });
    }
    Ok(out)
}
