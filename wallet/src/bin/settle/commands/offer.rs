//! `settle offer create|show|take|cancel`: delivery versus payment between two wallets.

use std::path::Path;

use serde_json::json;
use settle_assets::transaction::TX_VERSION;
use settle_assets::{Amount, AssetId, Transaction, TxIn, TxOut};
use settle_script::SighashType;
use settle_wallet::coins::{BuildOptions, Payment, WalletCoin, build_payment, find_exact_coin};
use settle_wallet::offer::{self, OfferTerms, Receive};
use settle_wallet::policy::{self, SigningPolicy};
use settle_wallet::pst::Pst;
use settle_wallet::state::{MAX_OFFER_RECORDS, OfferRecord};

use crate::Report;
use crate::cli::OfferCmd;
use crate::commands::show::{AssetView, claimed, confirm};
use crate::commands::{
    broadcast, change_address, flows, maybe_wait, receive_address, sign_built, status_text,
};
use crate::ctx::{Assets, Ctx, check_pst_chain, read_pst, write_pst};
use crate::error::{CliError, Result, kind};
use crate::sync;

pub fn run(ctx: &Ctx, cmd: OfferCmd) -> Result<Report> {
    match cmd {
        OfferCmd::Create {
            give,
            want,
            expires_in,
            out,
        } => create(ctx, &give, &want, expires_in, &out),
        OfferCmd::Show { file } => show(ctx, &file),
        OfferCmd::Take {
            file,
            no_broadcast,
            out,
            wait,
        } => take(ctx, &file, no_broadcast, out.as_deref(), wait),
        OfferCmd::Cancel { file, wait } => cancel(ctx, &file, wait),
    }
}

/// "100.00 EUR per BOND": the price as one asset per whole unit of the other, in the
/// direction where it is at least one whole unit (so an offer of 5 BOND for 520.00 EUR
/// reads "104.00 EUR per BOND", not "0 BOND per EUR"); rounded down, and said so, when
/// it does not divide.
fn price(assets: &Assets, t: &OfferTerms) -> String {
    let give = (t.give_asset, u128::from(t.give_amount.units()));
    let want = (t.want_asset, u128::from(t.want_amount.units()));
    // Units of `a` per whole unit of `b`: a_units * 10^precision(b) / b_units. Amounts
    // are below 2^64 and precision at most 18, so the product fits in a u128.
    let per = |a: (AssetId, u128), b: (AssetId, u128)| -> Option<(u128, bool)> {
        let scale = 10u128.checked_pow(u32::from(assets.precision(&b.0)))?;
        let n = a.1.checked_mul(scale)?;
        (b.1 != 0).then(|| (n / b.1, n.is_multiple_of(b.1)))
    };
    let whole = |asset: &AssetId| 10u128.pow(u32::from(assets.precision(asset)).min(38));
    let (num, den, q, exact) = match per(give, want) {
        Some((q, exact)) if q >= whole(&give.0) => (give.0, want.0, q, exact),
        _ => match per(want, give) {
            Some((q, exact)) => (want.0, give.0, q, exact),
            None => return "?".into(),
        },
    };
    format!(
        "{}{} per {}",
        if exact { "" } else { "about " },
        assets.fmt(&num, q),
        assets.ticker(&den)
    )
}

fn terms_json(assets: &Assets, t: &OfferTerms) -> serde_json::Value {
    json!({
        "maker_coin": t.maker_coin.to_string(),
        "give": {
            "asset": t.give_asset,
            "ticker": assets.ticker(&t.give_asset),
            "amount": assets.fmt_number(&t.give_asset, u128::from(t.give_amount.units())),
        },
        "want": {
            "asset": t.want_asset,
            "ticker": assets.ticker(&t.want_asset),
            "amount": assets.fmt_number(&t.want_asset, u128::from(t.want_amount.units())),
        },
        "price": price(assets, t),
        "expiry_height": (t.expiry_height != 0).then_some(t.expiry_height),
    })
}

fn create(
    ctx: &Ctx,
    give: &str,
    want: &str,
    expires_in: Option<u32>,
    out: &Path,
) -> Result<Report> {
    let mut open = ctx.open()?;
    let live = sync::sync(ctx, &mut open)?;
    let assets = Assets::load(ctx.client())?;
    let (give_info, give_amount) = assets.parse_leg(give)?;
    let (want_info, want_amount) = assets.parse_leg(want)?;
    if give_info.asset == want_info.asset {
        return Err(CliError::new(
            kind::OFFER,
            "an offer must want a different asset from the one it gives",
        ));
    }
    if open.state.offers.len() >= MAX_OFFER_RECORDS {
        return Err(CliError::new(
            kind::OFFER,
            format!("this wallet already has {MAX_OFFER_RECORDS} open offers"),
        ));
    }
    let expiry_height = match expires_in {
        None | Some(0) => 0,
        Some(n) => u32::try_from(live.height())
            .ok()
            .and_then(|h| h.checked_add(n))
            .ok_or_else(|| CliError::usage("--expires-in is too large"))?,
    };
    let coins = live.spendable();
    let mut split_txid = None;
    // An offer spends one whole coin: make one of exactly the amount if needed.
    let coin: WalletCoin = match find_exact_coin(&coins, give_info.asset, give_amount) {
        Some(c) => c.clone(),
        None => {
            let mut state = open.state.clone();
            let keys = open.keys.clone();
            let a = state.next_receive_address(&keys)?;
            state.set_label(&a.address.to_string(), "offer coin")?;
            let built = build_payment(
                &coins,
                &[Payment {
                    asset: give_info.asset,
                    amount: give_amount,
                    script_pubkey: a.script_pubkey.clone(),
                    label: Some("offer coin".into()),
                }],
                |_| change_address(&mut state, &keys).map_err(|e| e.to_string()),
                BuildOptions::default(),
            )
            .map_err(|e| assets.build_error(e, ""))?;
            let (tx, f) = sign_built(&built, &state, &keys, &live.watch)?;
            open.state = state;
            let txid = broadcast(ctx, &mut open, &tx, f, "split a coin for an offer")?;
            split_txid = Some(txid);
            WalletCoin {
                outpoint: settle_assets::OutPoint::new(txid, 0),
                txout: tx.outputs[0].clone(),
                origin: Some(a.key.origin.clone()),
            }
        }
    };
    let (receive, receive_text) = receive_address(&mut open.state, &open.keys, "offer payment")?;
    let pst = offer::make_offer(
        &coin,
        want_info.asset,
        want_amount,
        &Receive::from(receive),
        expiry_height,
        open.state.chain_id,
        open.state.network,
        &open.keys,
    )?;
    write_pst(out, &pst)?;
    open.state.offers.push(OfferRecord {
        outpoint: coin.outpoint,
        give_asset: give_info.asset,
        give_amount,
        want_asset: want_info.asset,
        want_amount,
        expiry_height,
    });
    open.save()?;
    let terms = offer::read_offer(&pst)?;
    let give_text = assets.fmt(&give_info.asset, u128::from(give_amount.units()));
    let want_text = assets.fmt(&want_info.asset, u128::from(want_amount.units()));
    let mut text = String::new();
    if let Some(t) = split_txid {
        text.push_str(&format!(
            "no coin of exactly {give_text}: split one first (paid {give_text} to yourself in \
             transaction {t})\n"
        ));
    }
    text.push_str(&format!(
        "offer written to {}: you give {give_text}, you want {want_text} ({}), paid to \
         {receive_text}\n",
        out.display(),
        price(&assets, &terms)
    ));
    text.push_str(&if expiry_height != 0 {
        format!(
            "it can be taken up to and including block {expiry_height} (now {})\n",
            live.height()
        )
    } else {
        "it does not expire; `settle offer cancel` withdraws it\n".to_owned()
    });
    text.push_str(
        "signed SINGLE|ANYONECANPAY: your coin and your payment only; anyone may complete it",
    );
    let mut json = terms_json(&assets, &terms);
    json["file"] = json!(out);
    json["split_txid"] = json!(split_txid);
    json["receive_address"] = json!(receive_text);
    Ok(Report::new(json, text))
}

/// The offer's state on the chain: open, expired, its coin already spent, or a coin that
/// is not what the offer claims (the PST's description of the maker's coin is only a
/// claim: the chain's copy decides).
fn status(ctx: &Ctx, t: &OfferTerms, height: u64) -> Result<(&'static str, String)> {
    let coin = ctx.client().get_tx_out(&t.maker_coin, true)?;
    let Some(coin) = coin else {
        return Ok((
            "spent",
            format!(
                "the offered coin {} is spent (or never existed): the offer was taken or \
                 cancelled",
                t.maker_coin
            ),
        ));
    };
    let claimed_script = hex::encode(&t.maker_coin_script);
    if coin.asset != t.give_asset
        || coin.amount != t.give_amount.units()
        || coin.script_pubkey != claimed_script
    {
        return Ok((
            "mismatch",
            format!(
                "the offered coin {} on chain holds {} units of {} at script {}, not what the \
                 offer claims ({} units of {} at script {}): do not take it",
                t.maker_coin,
                coin.amount,
                coin.asset,
                coin.script_pubkey,
                t.give_amount.units(),
                t.give_asset,
                claimed_script
            ),
        ));
    }
    if let Some(by) = coin.spent_by_mempool {
        return Ok((
            "spent",
            format!(
                "the offered coin {} is being spent by transaction {by}, waiting in the mempool",
                t.maker_coin
            ),
        ));
    }
    if t.expiry_height != 0 && height >= u64::from(t.expiry_height) {
        return Ok((
            "expired",
            format!(
                "expired: it could be taken up to block {}, and the next block is {}",
                t.expiry_height,
                height + 1
            ),
        ));
    }
    Ok((
        "open",
        if t.expiry_height != 0 {
            format!(
                "open: can be taken up to and including block {} ({} more block(s))",
                t.expiry_height,
                u64::from(t.expiry_height) - height
            )
        } else {
            "open: does not expire".to_owned()
        },
    ))
}

fn show(ctx: &Ctx, file: &Path) -> Result<Report> {
    let pst = read_pst(file)?;
    let terms = offer::read_offer(&pst)?;
    let info = ctx.node_info(None)?;
    if info.chain_id != pst.chain_id {
        return Err(CliError::new(
            kind::FOREIGN_PST,
            format!(
                "this offer is for the chain {} ({} network), but the node is on {} ({})",
                pst.chain_id, pst.network, info.chain_id, info.network
            ),
        ));
    }
    let assets = Assets::load(ctx.client())?;
    let (state, state_text) = status(ctx, &terms, info.blocks)?;
    let view = AssetView::new(&assets, None);
    let give = view.amount(&terms.give_asset, u128::from(terms.give_amount.units()));
    let want = view.amount(&terms.want_asset, u128::from(terms.want_amount.units()));
    let mut text = format!(
        "offer: the maker gives {give} and wants {want}\n\
         price: {}\n\
         leg 1: {give} ({}) from the maker's coin {} to the taker\n\
         leg 2: {want} ({}) from the taker to the maker's address {}\n\
         status: {state_text}\n\
         the maker signed SINGLE|ANYONECANPAY: her signature binds her coin and leg 2, so \
         nobody can change what she receives",
        price(&assets, &terms),
        terms.give_asset,
        terms.maker_coin,
        terms.want_asset,
        settle_script::Address::from_script_pubkey(pst.network, &terms.maker_script)
            .map_or_else(|_| hex::encode(&terms.maker_script), |a| a.to_string()),
    );
    text.push_str(&oddities(&pst, &view, &terms));
    let mut json = terms_json(&assets, &terms);
    json["status"] = json!(state);
    json["status_text"] = json!(state_text);
    json["height"] = json!(info.blocks);
    json["give"]["identity"] = view.json(&terms.give_asset);
    json["want"]["identity"] = view.json(&terms.want_asset);
    json["warnings"] = json!(view.warnings(&[terms.give_asset, terms.want_asset]));
    json["lock_time"] = json!(pst.unsigned_tx().lock_time);
    json["version"] = json!(pst.unsigned_tx().version);
    json["maker_sequence"] = json!(pst.unsigned_tx().inputs[0].sequence);
    Ok(Report::new(json, text))
}

/// What an offer's reader should not miss: a lock time, a version or a maker sequence
/// other than the ones `offer create` writes, the PST's free-text note (marked as a claim),
/// and any ticker another asset shares or imitates.
fn oddities(pst: &Pst, view: &AssetView<'_>, t: &OfferTerms) -> String {
    let tx = pst.unsigned_tx();
    let mut text = String::new();
    if tx.lock_time != 0 {
        text.push_str(&format!(
            "\nnote: lock time {}: the transaction cannot settle before it",
            tx.lock_time
        ));
    }
    if tx.version != TX_VERSION {
        text.push_str(&format!(
            "\nnote: unusual transaction version {}",
            tx.version
        ));
    }
    let sequence = tx.inputs[0].sequence;
    if sequence != TxIn::spending(t.maker_coin).sequence {
        text.push_str(&format!(
            "\nnote: unusual sequence {sequence} on the maker's input"
        ));
    }
    if let Some(n) = &t.note {
        text.push_str(&format!("\nnote from the pst: {}", claimed(n)));
    }
    for w in view.warnings(&[t.give_asset, t.want_asset]) {
        text.push_str(&format!("\n{w}"));
    }
    text
}

/// What `take` has already worked out for the confirmation.
struct TakeShown<'a> {
    view: &'a AssetView<'a>,
    give: &'a str,
    get: &'a str,
}

/// Before the taker's signatures leave the wallet: refuses an offer whose coin on chain is
/// not what the PST claims, then shows what taking it does to this wallet and asks.
fn check_and_confirm(
    ctx: &Ctx,
    offer_pst: &Pst,
    done: &Pst,
    terms: &OfferTerms,
    live: &sync::Live,
    shown: &TakeShown<'_>,
) -> Result<()> {
    let (coin_state, coin_text) = status(ctx, terms, live.height())?;
    if coin_state == "mismatch" {
        return Err(CliError::new(kind::OFFER, coin_text));
    }
    let spent_now: Vec<TxOut> = done
        .inputs()
        .iter()
        .map(|i| i.spent_output.clone().unwrap_or(TxOut::NONE))
        .collect();
    let f_now = flows(done.unsigned_tx(), &spent_now, &live.watch);
    confirm(
        ctx,
        &format!(
            "take the offer: you give {}, you get {}\nthe maker's coin {} ({coin_text})\n\
             this wallet's net flows:\n{}{}",
            shown.give,
            shown.get,
            terms.maker_coin,
            shown.view.flows_text(&f_now),
            oddities(offer_pst, shown.view, terms)
        ),
    )
}

fn take(
    ctx: &Ctx,
    file: &Path,
    no_broadcast: bool,
    out: Option<&Path>,
    wait: bool,
) -> Result<Report> {
    let offer_pst = read_pst(file)?;
    let mut open = ctx.open()?;
    check_pst_chain(&offer_pst, &open.state)?;
    let terms = offer::read_offer(&offer_pst)?;
    let live = sync::sync(ctx, &mut open)?;
    if live
        .coins
        .iter()
        .any(|c| c.coin.outpoint == terms.maker_coin)
    {
        return Err(CliError::new(
            kind::OFFER,
            "this is your own offer: cancel it with `settle offer cancel` instead",
        ));
    }
    let assets = Assets::load(ctx.client())?;
    let mut state = open.state.clone();
    let keys = open.keys.clone();
    let (receive, _) = receive_address(&mut state, &keys, "offer taken")?;
    let coins = live.spendable();
    let (done, taken) = offer::take_offer(
        &offer_pst,
        &coins,
        &Receive::from(receive),
        || {
            change_address(&mut state, &keys)
                .map(Receive::from)
                .map_err(|e| e.to_string())
        },
        &keys,
    )
    .map_err(|e| match e {
        settle_wallet::offer::OfferError::Build(b) => assets.build_error(b, ""),
        other => other.into(),
    })?;
    let view = AssetView::new(&assets, Some(&open.state));
    let give = view.amount(&terms.want_asset, u128::from(terms.want_amount.units()));
    let get = view.amount(&terms.give_asset, u128::from(terms.give_amount.units()));
    let shown = TakeShown {
        view: &view,
        give: &give,
        get: &get,
    };
    check_and_confirm(ctx, &offer_pst, &done, &terms, &live, &shown)?;
    if no_broadcast {
        let target = out.ok_or_else(|| CliError::usage("--no-broadcast needs --out FILE"))?;
        write_pst(target, &done)?;
        open.state = state;
        open.save()?;
        return Ok(Report::new(
            json!({ "file": target, "txid": done.txid(), "pst": done.to_base64() }),
            format!(
                "completed the offer (you give {give}, you get {get}); not broadcast: wrote {}",
                target.display()
            ),
        ));
    }
    let tx = done.extract()?;
    let spent: Vec<TxOut> = done
        .inputs()
        .iter()
        .map(|i| i.spent_output.clone().unwrap_or(TxOut::NONE))
        .collect();
    let f = flows(&tx, &spent, &live.watch);
    open.state = state;
    let txid = broadcast(ctx, &mut open, &tx, f, "offer taken").map_err(|e| {
        let spent = e.message.contains("missing-inputs") || e.message.contains("double-spend");
        if spent {
            CliError::new(
                e.kind,
                format!(
                    "{}\nthe offer's coin {} is no longer available: the offer was already \
                     taken or cancelled",
                    e.message, terms.maker_coin
                ),
            )
        } else if e.message.contains("(consensus, expired)") {
            CliError::new(
                e.kind,
                format!(
                    "{}\nthe offer expired: it could be taken up to block {}, the chain is at \
                     block {}",
                    e.message,
                    terms.expiry_height,
                    live.height()
                ),
            )
        } else {
            e
        }
    })?;
    open.save()?;
    let height = maybe_wait(ctx, &txid, wait)?;
    if let Some(o) = out {
        write_pst(o, &done)?;
    }
    Ok(Report::new(
        json!({
            "txid": txid,
            "gave": { "asset": terms.want_asset, "amount": assets.fmt_number(&terms.want_asset, u128::from(terms.want_amount.units())) },
            "got": { "asset": terms.give_asset, "amount": assets.fmt_number(&terms.give_asset, u128::from(terms.give_amount.units())) },
            "change": taken.change.map(|c| assets.fmt_number(&terms.want_asset, u128::from(c.units()))),
            "height": height,
        }),
        format!(
            "took the offer: you give {give}, you get {get}\ntxid {txid}\n{}",
            status_text(height)
        ),
    ))
}

fn cancel(ctx: &Ctx, file: &Path, wait: bool) -> Result<Report> {
    let offer_pst = read_pst(file)?;
    let mut open = ctx.open()?;
    check_pst_chain(&offer_pst, &open.state)?;
    let terms = offer::read_offer(&offer_pst)?;
    let live = sync::sync(ctx, &mut open)?;
    let coin = live
        .coins
        .iter()
        .find(|c| c.coin.outpoint == terms.maker_coin)
        .map(|c| c.coin.clone());
    let Some(coin) = coin else {
        let mine = open
            .state
            .offers
            .iter()
            .any(|o| o.outpoint == terms.maker_coin);
        return Err(CliError::new(
            kind::OFFER,
            if mine {
                format!(
                    "the offered coin {} is already spent: the offer was taken or cancelled",
                    terms.maker_coin
                )
            } else {
                format!(
                    "the offered coin {} is not this wallet's: only the maker can cancel an offer",
                    terms.maker_coin
                )
            },
        ));
    };
    let back = change_address(&mut open.state, &open.keys)?;
    let tx = Transaction {
        version: TX_VERSION,
        inputs: vec![TxIn::spending(coin.outpoint)],
        outputs: vec![TxOut {
            script_pubkey: back.script_pubkey.clone(),
            ..coin.txout.clone()
        }],
        lock_time: 0,
        expiry_height: 0,
    };
    let built = settle_wallet::coins::BuiltTx {
        tx,
        coins: vec![coin.clone()],
        payments: vec![],
        change: vec![],
    };
    let mut pst: Pst = built.to_pst(open.state.chain_id, open.state.network)?;
    let rules = SigningPolicy::new().with_coin(coin.outpoint, coin.txout.clone(), SighashType::All);
    policy::sign(&mut pst, Some(&open.keys), &[], &rules)?;
    pst.finalize()?;
    let tx = pst.extract()?;
    let f = flows(&tx, std::slice::from_ref(&coin.txout), &live.watch);
    let txid = broadcast(ctx, &mut open, &tx, f, "offer cancelled")?;
    open.state.offers.retain(|o| o.outpoint != terms.maker_coin);
    open.save()?;
    let height = maybe_wait(ctx, &txid, wait)?;
    let amount: Amount = coin.txout.amount;
    Ok(Report::new(
        json!({ "txid": txid, "coin": terms.maker_coin.to_string(), "height": height }),
        format!(
            "cancelled: spent the offered coin ({}) back to yourself, so the offer can no longer \
             be taken\ntxid {txid}\n{}",
            Assets::load(ctx.client())?.fmt(&coin.txout.asset, u128::from(amount.units())),
            status_text(height)
        ),
    ))
}
