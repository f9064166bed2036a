//! `settle balance`, `settle send`, `settle history`.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use settle_assets::AssetId;
use settle_wallet::coins::{BuildOptions, Payment, build_payment};
use settle_wallet::scan::Owner;
use settle_wallet::state::WalletState;

use crate::Report;
use crate::cli::{HistoryArgs, SendArgs};
use crate::commands::{
    broadcast, change_address, describe_flows, maybe_wait, sign_built, status_text,
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

pub fn send(ctx: &Ctx, args: SendArgs) -> Result<Report> {
    let mut open = ctx.open()?;
    let live = sync::sync(ctx, &mut open)?;
    let assets = Assets::load(ctx.client())?;
    let info = assets.resolve(&args.asset)?;
    let amount = assets.parse_amount(info, &args.amount)?;
    let to = parse_address(&args.address, open.state.network)?;
    let coins = live.spendable();
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
    let mut state = open.state.clone();
    let keys = open.keys.clone();
    let built = build_payment(
        &coins,
        &[Payment {
            asset: info.asset,
            amount,
            script_pubkey: to.script_pubkey(),
            label: args.label.clone(),
        }],
        |_| change_address(&mut state, &keys).map_err(|e| e.to_string()),
        BuildOptions::default(),
    )
    .map_err(|e| assets.build_error(e, &note))?;
    let (tx, f) = sign_built(&built, &state, &keys, &live.watch)?;
    open.state = state;
    let txid = broadcast(ctx, &mut open, &tx, f.clone(), "send")?;
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
        }),
        format!("paid {shown} to {to}\ntxid {txid}\n{}", status_text(height)),
    ))
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
