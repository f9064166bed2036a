//! `settle balance`, `settle send`, `settle history`.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use settle_assets::{Amount, AssetId};
use settle_rpc::{AssetInfo as AssetEntry, ClientError};
use settle_script::Address;
use settle_wallet::coins::{BuildOptions, BuiltTx, Payment, build_payment};
use settle_wallet::keys::WalletKeys;
use settle_wallet::scan::{self, Owner};
use settle_wallet::state::WalletState;

use crate::Report;
use crate::cli::{HistoryArgs, SendArgs};
use crate::commands::{
    change_address, describe_flows, maybe_wait, rejection, sign_built, status_text,
};
use crate::ctx::{Assets, Ctx, parse_address};
use crate::error::Result;
use crate::sync::{self, Live};

#[derive(Default)]
struct Totals {
    total: u128,
    unconfirmed: u128,
    reserved: u128,
}

/// Balances per asset (own keys), and per multisig, as JSON and text.
pub fn balance_report(assets: &Assets, live: &Live, state: &WalletState) -> (Value, String) {
    let mut own: BTreeMap<AssetId, Totals> = BTreeMap::new();
    let mut multi: BTreeMap<(String, AssetId), u128> = BTreeMap::new();
    for c in &live.coins {
        let units = u128::from(c.coin.txout.amount.units());
        match &c.owner {
            Owner::Key { .. } => {
                let t = own.entry(c.coin.txout.asset).or_default();
                t.total += units;
                if !c.confirmed {
                    t.unconfirmed += units;
                }
                if c.reserved {
                    t.reserved += units;
                }
            }
            Owner::Multisig { name } => {
                *multi.entry((name.clone(), c.coin.txout.asset)).or_default() += units;
            }
        }
    }
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for (asset, t) in &own {
        let name = assets.get(asset).map(|a| a.name.clone());
        rows.push(json!({
            "asset": asset,
            "ticker": assets.ticker(asset),
            "name": name,
            "precision": assets.precision(asset),
            "amount": assets.fmt_number(asset, t.total),
            "units": t.total,
            "unconfirmed": assets.fmt_number(asset, t.unconfirmed),
            "reserved_for_offers": assets.fmt_number(asset, t.reserved),
        }));
        let mut notes = Vec::new();
        if t.unconfirmed > 0 {
            notes.push(format!(
                "{} unconfirmed",
                assets.fmt_number(asset, t.unconfirmed)
            ));
        }
        if t.reserved > 0 {
            notes.push(format!(
                "{} kept for open offers",
                assets.fmt_number(asset, t.reserved)
            ));
        }
        lines.push(format!(
            "{:<8} {:>24}  {asset}{}",
            assets.ticker(asset),
            assets.fmt_number(asset, t.total),
            if notes.is_empty() {
                String::new()
            } else {
                format!("  ({})", notes.join(", "))
            }
        ));
    }
    let mut multi_rows = Vec::new();
    for ((name, asset), units) in &multi {
        multi_rows.push(json!({
            "multisig": name,
            "asset": asset,
            "ticker": assets.ticker(asset),
            "amount": assets.fmt_number(asset, *units),
            "units": units,
        }));
        lines.push(format!(
            "{:<8} {:>24}  {asset}  (multisig {name})",
            assets.ticker(asset),
            assets.fmt_number(asset, *units)
        ));
    }
    let mut text = format!(
        "balances of wallet {} at block {}:\n",
        state
            .keys()
            .map(|k| k.master_fingerprint().to_string())
            .unwrap_or_default(),
        live.height()
    );
    if lines.is_empty() {
        text.push_str("  (no coins)\n");
    } else {
        text.push_str(&format!(
            "{:<8} {:>24}  {}\n",
            "ASSET", "AMOUNT", "ASSET ID"
        ));
        for l in lines {
            text.push_str(&l);
            text.push('\n');
        }
    }
    (
        json!({ "height": live.height(), "assets": rows, "multisig": multi_rows }),
        text,
    )
}

pub fn balance(ctx: &Ctx) -> Result<Report> {
    let mut open = ctx.open()?;
    let live = sync::sync(ctx, &mut open)?;
    open.save()?;
    let assets = Assets::load(ctx.client())?;
    let (json, text) = balance_report(&assets, &live, &open.state);
    Ok(Report::new(json, text))
}

/// Times `send` builds again from a fresh view of the node after the node refused the
/// coins it chose as spent or unknown: a block connecting while the wallet read its
/// coins can leave it a view that no longer holds (`spec/wallet.md`).
const STALE_VIEW_RETRIES: usize = 1;

/// A rejection that a fresh view of the wallet's coins may cure.
fn stale_view(e: &ClientError) -> bool {
    e.rpc()
        .and_then(|r| r.reject_data())
        .is_some_and(|d| matches!(d.reject_code.as_str(), "double-spend" | "missing-inputs"))
}

pub fn send(ctx: &Ctx, args: SendArgs) -> Result<Report> {
    let mut open = ctx.open()?;
    let assets = Assets::load(ctx.client())?;
    let info = assets.resolve(&args.asset)?;
    let amount = assets.parse_amount(info, &args.amount)?;
    let to = parse_address(&args.address, open.state.network)?;
    let mut attempt = 0;
    let (txid, built) = loop {
        let live = sync::sync(ctx, &mut open)?;
        let mut state = open.state.clone();
        let built = build_send(
            &assets, info, amount, &to, &args, &live, &mut state, &open.keys,
        )?;
        let (tx, f) = sign_built(&built, &state, &open.keys, &live.watch)?;
        match ctx.client().send_raw_transaction(&tx) {
            Ok(txid) => {
                open.state = state;
                scan::record_pending(&mut open.state, txid, f, "send");
                break (txid, built);
            }
            Err(e) if attempt < STALE_VIEW_RETRIES && stale_view(&e) => {
                attempt += 1;
                tracing_note(&e);
            }
            Err(e) => return Err(rejection(e)),
        }
    };
    open.save()?;
    let height = maybe_wait(ctx, &txid, args.wait)?;
    let shown = assets.fmt(&info.asset, u128::from(amount.units()));
    Ok(Report::new(
        json!({
            "txid": txid,
            "asset": info.asset,
            "ticker": info.ticker,
            "amount": assets.fmt_number(&info.asset, u128::from(amount.units())),
            "to": to.to_string(),
            "change": built.change.iter().map(|(c, _)| json!({
                "asset": c.asset,
                "amount": assets.fmt_number(&c.asset, u128::from(c.amount.units())),
            })).collect::<Vec<_>>(),
            "height": height,
            "attempts": attempt + 1,
        }),
        format!("paid {shown} to {to}\ntxid {txid}\n{}", status_text(height)),
    ))
}

/// Says on stderr why the payment is built again (stdout stays the command's report).
fn tracing_note(e: &ClientError) {
    eprintln!(
        "settle: the node refused coins chosen from a view that changed ({e}); building again"
    );
}

/// Chooses coins from `live` and builds the payment (change addresses from `state`).
#[allow(clippy::too_many_arguments)]
fn build_send(
    assets: &Assets,
    info: &AssetEntry,
    amount: Amount,
    to: &Address,
    args: &SendArgs,
    live: &Live,
    state: &mut WalletState,
    keys: &WalletKeys,
) -> Result<BuiltTx> {
    let reserved: u128 = live
        .coins
        .iter()
        .filter(|c| c.reserved && c.coin.txout.asset == info.asset)
        .map(|c| u128::from(c.coin.txout.amount.units()))
        .sum();
    let note = if reserved > 0 {
        format!(
            "; another {} is kept for open offers",
            assets.fmt(&info.asset, reserved)
        )
    } else {
        String::new()
    };
    build_payment(
        &live.spendable(),
        &[Payment {
            asset: info.asset,
            amount,
            script_pubkey: to.script_pubkey(),
            label: args.label.clone(),
        }],
        |_| change_address(state, keys).map_err(|e| e.to_string()),
        BuildOptions::default(),
    )
    .map_err(|e| assets.build_error(e, &note))
}

pub fn history(ctx: &Ctx, args: HistoryArgs) -> Result<Report> {
    let mut open = ctx.open()?;
    let live = sync::sync(ctx, &mut open)?;
    open.save()?;
    let assets = Assets::load(ctx.client())?;
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    // Waiting transactions first, then newest first.
    let mut entries: Vec<_> = open.state.history.iter().collect();
    entries.sort_by_key(|h| std::cmp::Reverse(h.height.unwrap_or(u64::MAX)));
    for h in entries.into_iter().take(args.limit) {
        let (fj, ft) = describe_flows(&assets, &h.flows);
        rows.push(json!({
            "txid": h.txid,
            "height": h.height,
            "note": h.note,
            "flows": fj,
        }));
        lines.push(format!(
            "{:>8}  {}  {ft}{}",
            h.height
                .map_or_else(|| "waiting".to_owned(), |x| x.to_string()),
            h.txid,
            h.note
                .as_deref()
                .map(|n| format!("  ({n})"))
                .unwrap_or_default()
        ));
    }
    let text = if lines.is_empty() {
        format!(
            "no transactions yet (chain read up to block {})",
            live.height()
        )
    } else {
        format!(
            "{:>8}  {:<64}  CHANGE\n{}",
            "BLOCK",
            "TXID",
            lines.join("\n")
        )
    };
    Ok(Report::new(json!(rows), text))
}
