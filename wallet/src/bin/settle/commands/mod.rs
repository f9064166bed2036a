//! The commands, and what several of them share: building change addresses, working out
//! what a transaction does to the wallet, broadcasting.

pub mod asset;
pub mod lend;
pub mod multisig;
pub mod offer;
pub mod pay;
pub mod pst;
pub mod show;
pub mod wallet;

use std::collections::BTreeMap;

use serde_json::{Value, json};
use settle_assets::{AssetId, Transaction, TxOut, Txid};
use settle_rpc::ClientError;
use settle_script::SighashType;
use settle_wallet::coins::{BuiltTx, ChangeAddress};
use settle_wallet::keys::WalletKeys;
use settle_wallet::policy::{self, SigningPolicy};
use settle_wallet::scan::{self, Watch};
use settle_wallet::state::{AssetFlow, WalletState};

use crate::ctx::{Assets, Ctx, Open};
use crate::error::{CliError, Result, kind};

/// Hands out the next change address of the wallet.
pub fn change_address(state: &mut WalletState, keys: &WalletKeys) -> Result<ChangeAddress> {
    let c = state.next_change_address(keys)?;
    Ok(ChangeAddress {
        script_pubkey: c.script_pubkey,
        origin: Some(c.key.origin),
    })
}

/// Hands out the next receiving address of the wallet (as a change address: script and
/// key origin), labelled `label`.
pub fn receive_address(
    state: &mut WalletState,
    keys: &WalletKeys,
    label: &str,
) -> Result<(ChangeAddress, String)> {
    let a = state.next_receive_address(keys)?;
    let text = a.address.to_string();
    state.set_label(&text, label)?;
    Ok((
        ChangeAddress {
            script_pubkey: a.script_pubkey,
            origin: Some(a.key.origin),
        },
        text,
    ))
}

/// What `tx` does to the wallet: per asset, the units of its coins spent (`spent` holds
/// the outputs `tx` spends, in input order; null inputs `TxOut::NONE`) and the units paid
/// to scripts it watches.
pub fn flows(tx: &Transaction, spent: &[TxOut], watch: &Watch) -> Vec<AssetFlow> {
    let mut m: BTreeMap<AssetId, (u64, u64)> = BTreeMap::new();
    for s in spent {
        if s.amount.units() > 0 && watch.owner(&s.script_pubkey).is_some() {
            m.entry(s.asset).or_default().0 += s.amount.units();
        }
    }
    for o in &tx.outputs {
        if watch.owner(&o.script_pubkey).is_some() {
            m.entry(o.asset).or_default().1 += o.amount.units();
        }
    }
    m.into_iter()
        .map(|(asset, (gave, got))| AssetFlow { asset, gave, got })
        .collect()
}

/// Flows as JSON and text: `-10 BOND [security, issuer …, id …], +1,000.00 EUR [cash, …]`:
/// each asset identified beyond its ticker (used by `history` and `send`), with a warning
/// when another asset shares or imitates a ticker.
pub fn describe_flows(assets: &Assets, flows: &[AssetFlow]) -> (Value, String) {
    let view = show::AssetView::new(assets, None);
    let mut json_list = Vec::new();
    let mut parts = Vec::new();
    for f in flows {
        let (sign, units) = if f.got >= f.gave {
            ("+", u128::from(f.got - f.gave))
        } else {
            ("-", u128::from(f.gave - f.got))
        };
        json_list.push(json!({
            "asset": f.asset,
            "ticker": assets.ticker(&f.asset),
            "identity": view.json(&f.asset),
            "gave": assets.fmt_number(&f.asset, u128::from(f.gave)),
            "got": assets.fmt_number(&f.asset, u128::from(f.got)),
            "net": format!("{sign}{}", assets.fmt_number(&f.asset, units)),
        }));
        if units != 0 {
            parts.push(format!("{sign}{}", view.amount(&f.asset, units)));
        }
    }
    let mut text = if parts.is_empty() {
        "no change to balances".to_owned()
    } else {
        parts.join(", ")
    };
    let ids: Vec<AssetId> = flows.iter().map(|f| f.asset).collect();
    for w in view.warnings(&ids) {
        text.push_str(&format!(" ({w})"));
    }
    (Value::Array(json_list), text)
}

/// Signs every input of a payment the wallet built (SIGHASH_ALL), finalizes it, and
/// returns the transaction with what it does to the wallet's balances.
pub fn sign_built(
    built: &BuiltTx,
    state: &WalletState,
    keys: &WalletKeys,
    watch: &Watch,
) -> Result<(Transaction, Vec<AssetFlow>)> {
    let mut pst = built.to_pst(state.chain_id, state.network)?;
    let mut rules = SigningPolicy::new();
    for c in &built.coins {
        rules = rules.with_coin(c.outpoint, c.txout.clone(), SighashType::All);
    }
    policy::sign(&mut pst, Some(keys), &[], &rules)?;
    pst.finalize()?;
    let tx = pst.extract()?;
    let spent: Vec<TxOut> = built.coins.iter().map(|c| c.txout.clone()).collect();
    let f = flows(&tx, &spent, watch);
    Ok((tx, f))
}

/// Sends `tx` to the node and records it in the wallet's history as waiting. Rejections
/// keep the node's reason; a spent coin gets a hint.
pub fn broadcast(
    ctx: &Ctx,
    open: &mut Open,
    tx: &Transaction,
    flows: Vec<AssetFlow>,
    note: &str,
) -> Result<Txid> {
    let txid = ctx.client().send_raw_transaction(tx).map_err(rejection)?;
    scan::record_pending(&mut open.state, txid, flows, note);
    Ok(txid)
}

/// A node rejection as the user should read it.
pub fn rejection(e: ClientError) -> CliError {
    if let ClientError::Rpc(r) = &e
        && let Some(data) = r.reject_data()
    {
        let hint = match data.reject_code.as_str() {
            "missing-inputs" | "double-spend" => {
                " (a coin it spends is already spent, or not known to the node)"
            }
            "expired" => " (its expiry height has passed)",
            "script-failed" => " (a signature or script does not verify)",
            "unbalanced" => " (it pays out more or less of an asset than goes in)",
            _ => "",
        };
        // The node's message starts with its own "transaction rejected (class, code): ".
        let detail = r
            .message
            .split_once("): ")
            .filter(|(head, _)| head.starts_with("transaction rejected ("))
            .map_or(r.message.as_str(), |(_, rest)| rest);
        return CliError::new(
            kind::REJECTED,
            format!(
                "the node rejected the transaction ({}, {}): {detail}{hint}",
                data.reject_class, data.reject_code
            ),
        );
    }
    e.into()
}

/// Waits for confirmation when asked; returns the height (JSON null when not waited).
pub fn maybe_wait(ctx: &Ctx, txid: &Txid, wait: bool) -> Result<Option<u64>> {
    if wait {
        ctx.wait_confirmed(txid).map(Some)
    } else {
        Ok(None)
    }
}

/// "in block N" or "waiting in the mempool".
pub fn status_text(height: Option<u64>) -> String {
    match height {
        Some(h) => format!("confirmed in block {h}"),
        None => "sent (waiting for a block)".to_owned(),
    }
}

/// Refuses an empty label-free error for a missing multisig.
pub fn no_such_multisig(name: &str) -> CliError {
    CliError::new(
        kind::MULTISIG,
        format!("no multisig named {name:?} in this wallet (see `settle multisig list`)"),
    )
}
