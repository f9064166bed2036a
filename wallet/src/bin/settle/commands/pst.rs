//! `settle pst decode|analyze|sign|combine|finalize|broadcast`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use settle_assets::TxOut;
use settle_script::{Address, ScriptKind, SighashType, classify};
use settle_wallet::keys::KeyOrigin;
use settle_wallet::policy::{self, SigningPolicy};
use settle_wallet::pst::{Pst, PstAnalysis, XOnly};
use settle_wallet::scan::Owner;

use crate::Report;
use crate::cli::PstCmd;
use crate::commands::show::{AssetView, claimed, clean, confirm};
use crate::commands::{broadcast, flows, maybe_wait, status_text};
use crate::ctx::{Assets, Ctx, Open, check_pst_chain, read_pst, write_pst};
use crate::error::{CliError, Result, kind};
use crate::sync::{self, Live};

pub fn run(ctx: &Ctx, cmd: PstCmd) -> Result<Report> {
    match cmd {
        PstCmd::Decode { file } => decode(&file),
        PstCmd::Analyze { file } => analyze(ctx, &file),
        PstCmd::Sign {
            file,
            sighash,
            inputs,
            unsafe_allow_sighash_none,
            out,
        } => sign(
            ctx,
            SignArgs {
                file: &file,
                sighash: &sighash,
                inputs: &inputs,
                allow_none: unsafe_allow_sighash_none,
                out: out.as_deref(),
            },
        ),
        PstCmd::Combine { files, out } => combine(&files, &out),
        PstCmd::Finalize { file, out } => finalize(&file, out.as_deref()),
        PstCmd::Broadcast { file, wait } => broadcast_pst(ctx, &file, wait),
    }
}

fn hex32(b: &[u8; 32]) -> String {
    hex::encode(b)
}

/// Every field, in units (no node needed).
pub fn decode_json(pst: &Pst) -> Value {
    let tx = pst.unsigned_tx();
    let inputs: Vec<Value> = tx
        .inputs
        .iter()
        .zip(pst.inputs())
        .enumerate()
        .map(|(i, (txin, inp))| {
            json!({
                "index": i,
                "prevout": (!txin.prevout.is_null()).then(|| txin.prevout.to_string()),
                "sequence": txin.sequence,
                "issuance": txin.issuance.as_ref().map(|iss| json!({
                    "asset": iss.asset_id(&txin.prevout),
                    "amount": iss.amount.units(),
                    "new": matches!(iss.kind, settle_assets::IssuanceKind::New { .. }),
                })),
                "spent_output": inp.spent_output.as_ref().map(|o| json!({
                    "asset": o.asset,
                    "amount": o.amount.units(),
                    "script_pubkey": hex::encode(&o.script_pubkey),
                    "address": Address::from_script_pubkey(pst.network, &o.script_pubkey).ok().map(|a| a.to_string()),
                })),
                "partial_sigs": inp.partial_sigs.iter().map(|(k, s)| json!({
                    "key": hex32(k),
                    "sighash": s.hash_type.name(),
                    "signature": hex::encode(s.signature),
                })).collect::<Vec<_>>(),
                "witness_script": inp.witness_script.as_ref().map(hex::encode),
                "key_origins": inp.key_origins.iter().map(|(k, o)| json!({
                    "key": hex32(k),
                    "origin": o.to_string(),
                })).collect::<Vec<_>>(),
                "owner": inp.owner,
                "finalized": inp.final_witness.is_some(),
                "issuance_signed": inp.issuance_signature.is_some(),
            })
        })
        .collect();
    let outputs: Vec<Value> = tx
        .outputs
        .iter()
        .zip(pst.outputs())
        .enumerate()
        .map(|(i, (o, meta))| {
            json!({
                "index": i,
                "asset": o.asset,
                "amount": o.amount.units(),
                "script_pubkey": hex::encode(&o.script_pubkey),
                "address": Address::from_script_pubkey(pst.network, &o.script_pubkey).ok().map(|a| a.to_string()),
                "burn": o.is_burn(),
                "label": meta.label,
                "key_origins": meta.key_origins.iter().map(|(k, o)| json!({
                    "key": hex32(k),
                    "origin": o.to_string(),
                })).collect::<Vec<_>>(),
                "witness_script": meta.witness_script.as_ref().map(hex::encode),
            })
        })
        .collect();
    json!({
        "txid": pst.txid(),
        "chain_id": pst.chain_id,
        "network": pst.network,
        "version": tx.version,
        "lock_time": tx.lock_time,
        "expiry_height": tx.expiry_height,
        "expiry_note": pst.expiry_note,
        "inputs": inputs,
        "outputs": outputs,
        "finalized": pst.is_finalized(),
    })
}

fn decode(file: &Path) -> Result<Report> {
    let pst = read_pst(file)?;
    let json = decode_json(&pst);
    let tx = pst.unsigned_tx();
    let mut text = format!(
        "pst of transaction {} ({} network, chain {})\nlock time {}, expiry height {}{}\n",
        pst.txid(),
        pst.network,
        pst.chain_id,
        tx.lock_time,
        tx.expiry_height,
        pst.expiry_note
            .as_deref()
            .map(|n| format!("\nnote: {}", claimed(n)))
            .unwrap_or_default()
    );
    for (i, (txin, inp)) in tx.inputs.iter().zip(pst.inputs()).enumerate() {
        text.push_str(&format!(
            "input {i}: {}{}\n",
            if txin.prevout.is_null() {
                "(no coin: issuance only)".to_owned()
            } else {
                txin.prevout.to_string()
            },
            inp.owner
                .as_deref()
                .map(|o| format!(" owner {}", claimed(o)))
                .unwrap_or_default()
        ));
        if let Some(o) = &inp.spent_output {
            text.push_str(&format!(
                "    spends {} units of {} at {}\n",
                o.amount.units(),
                o.asset,
                Address::from_script_pubkey(pst.network, &o.script_pubkey)
                    .map_or_else(|_| hex::encode(&o.script_pubkey), |a| a.to_string())
            ));
        }
        if let Some(iss) = &txin.issuance {
            text.push_str(&format!(
                "    issues {} units of {}{}\n",
                iss.amount.units(),
                iss.asset_id(&txin.prevout),
                if inp.issuance_signature.is_some() {
                    " (signed by the issuer)"
                } else {
                    " (issuer signature missing)"
                }
            ));
        }
        for (k, s) in &inp.partial_sigs {
            text.push_str(&format!("    signed {} by {}\n", s.hash_type, hex32(k)));
        }
        for (k, o) in &inp.key_origins {
            text.push_str(&format!("    key {} from {o}\n", hex32(k)));
        }
        if inp.final_witness.is_some() {
            text.push_str("    finalized\n");
        }
    }
    for (i, (o, meta)) in tx.outputs.iter().zip(pst.outputs()).enumerate() {
        text.push_str(&format!(
            "output {i}: {} units of {} to {}{}\n",
            o.amount.units(),
            o.asset,
            if o.is_burn() {
                "burn".to_owned()
            } else {
                Address::from_script_pubkey(pst.network, &o.script_pubkey)
                    .map_or_else(|_| hex::encode(&o.script_pubkey), |a| a.to_string())
            },
            meta.label
                .as_deref()
                .map(|l| format!(" (label {})", claimed(l)))
                .unwrap_or_default()
        ));
    }
    Ok(Report::new(json, text))
}

/// A party as the report names it: its address (from the script, never from the PST's
/// text), "(this wallet)" when the wallet watches it, and any label the PST claims.
fn party_text(party: &str, mine: &dyn Fn(&str) -> bool, claim: Option<&str>) -> String {
    let mut t = clean(party);
    if mine(party) {
        t.push_str(" (this wallet)");
    }
    if let Some(c) = claim {
        t.push_str(&format!(", labelled {}", claimed(c)));
    }
    t
}

/// The inputs and outputs sections of the analysis: outpoints, coins with their assets
/// identified, parties by address with any claimed text, signatures.
fn coins_text(a: &PstAnalysis, view: &AssetView<'_>, mine: &dyn Fn(&str) -> bool) -> String {
    let mut text = String::new();
    text.push_str("\ninputs:\n");
    for i in &a.inputs {
        let coin = match (i.asset, i.amount) {
            (Some(asset), Some(amount)) => view.amount(&asset, u128::from(amount.units())),
            _ => "unknown coin".to_owned(),
        };
        let sigs = if i.signatures.is_empty() {
            "not signed".to_owned()
        } else {
            i.signatures
                .iter()
                .map(|s| {
                    format!(
                        "signed {} by {}…",
                        s.hash_type,
                        &s.key[..s.key.len().min(16)]
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        text.push_str(&format!(
            "  {}: coin {}: {coin} from {} ({}): {sigs}{}\n",
            i.index,
            i.prevout,
            party_text(&i.party, mine, i.claimed_owner.as_deref()),
            i.script_kind,
            if i.finalized { ", finalized" } else { "" }
        ));
        if let Some(iss) = &i.issuance {
            text.push_str(&format!(
                "     issues {}{}\n",
                view.amount(&iss.asset, u128::from(iss.amount.units())),
                if iss.signed {
                    " (issuer signed)"
                } else {
                    " (issuer signature missing)"
                }
            ));
        }
    }
    text.push_str("\noutputs:\n");
    for o in &a.outputs {
        let mut by: Vec<String> = o
            .committed_by
            .iter()
            .map(|(i, t)| format!("input {i} ({t})"))
            .collect();
        by.dedup();
        let bound = if by.is_empty() {
            "no signature covers it yet".to_owned()
        } else {
            format!("bound by {}", by.join(", "))
        };
        text.push_str(&format!(
            "  {}: {} to {}: {bound}\n",
            o.index,
            view.amount(&o.asset, u128::from(o.amount.units())),
            party_text(&o.party, mine, o.claimed_label.as_deref())
        ));
    }
    text
}

/// The analysis with every amount's asset identified beyond its ticker, parties named by
/// address, outpoints shown, and the PST's own text marked as claimed and cleaned.
/// `mine` says whether an address is this wallet's (always false without the wallet).
pub fn analysis_report(
    a: &PstAnalysis,
    view: &AssetView<'_>,
    mine: &dyn Fn(&str) -> bool,
) -> (Value, String) {
    let mut text = format!(
        "transaction {} on the {} chain {}\nlock time {}\n",
        a.txid, a.network, a.chain_id, a.lock_time
    );
    if a.expiry_height != 0 {
        text.push_str(&format!(
            "valid up to and including block {}\n",
            a.expiry_height
        ));
    }
    if let Some(n) = &a.expiry_note {
        text.push_str(&format!("note: {}\n", claimed(n)));
    }
    let mut assets_json = Vec::new();
    text.push_str("\nwho gives and gets what (parties by address):\n");
    for s in &a.assets {
        text.push_str(&format!("  {}:\n", view.ident(&s.asset)));
        let fmt = |u: u128| view.assets.fmt_number(&s.asset, u);
        let mut parties = Vec::new();
        for p in &s.parties {
            let line = match (p.gives, p.gets) {
                (0, g) => format!("gets {}", fmt(g)),
                (g, 0) => format!("gives {}", fmt(g)),
                (g, r) => format!("gives {} and gets {}", fmt(g), fmt(r)),
            };
            text.push_str(&format!(
                "    {}: {line}\n",
                party_text(&p.party, mine, None)
            ));
            parties.push(json!({
                "party": p.party,
                "this_wallet": mine(&p.party),
                "gives": fmt(p.gives),
                "gets": fmt(p.gets),
            }));
        }
        if !s.balanced {
            text.push_str(&format!(
                "    ! does not balance yet: {} in{}, {} out\n",
                fmt(s.inputs),
                if s.issued > 0 {
                    format!(" (+{} issued)", fmt(s.issued))
                } else {
                    String::new()
                },
                fmt(s.outputs)
            ));
        }
        let mut j = view.json(&s.asset);
        j["inputs"] = json!(fmt(s.inputs));
        j["issued"] = json!(fmt(s.issued));
        j["outputs"] = json!(fmt(s.outputs));
        j["burned"] = json!(fmt(s.burned));
        j["balanced"] = json!(s.balanced);
        j["parties"] = json!(parties);
        assets_json.push(j);
    }
    let ids: Vec<_> = a.assets.iter().map(|s| s.asset).collect();
    let warnings = view.warnings(&ids);
    for w in &warnings {
        text.push_str(&format!("{w}\n"));
    }
    text.push_str(&coins_text(a, view, mine));
    let unbalanced = !a.balanced;
    if a.missing.is_empty() && !unbalanced {
        text.push_str(if a.finalized {
            "\ncomplete: finalized and ready to broadcast\n"
        } else {
            "\nnothing missing: ready to finalize\n"
        });
    } else {
        text.push_str("\nstill missing:\n");
        for m in &a.missing {
            text.push_str(&format!("  {m}\n"));
        }
        if unbalanced {
            text.push_str(
                "  the rest of the transaction: it does not balance yet (an offer waits for a \
                 taker to add his side: settle offer take)\n",
            );
        }
    }
    let mut json = serde_json::to_value(a).unwrap_or_default();
    json["assets_formatted"] = Value::Array(assets_json);
    json["warnings"] = json!(warnings);
    json["missing_text"] = a
        .missing
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .into();
    (json, text)
}

fn analyze(ctx: &Ctx, file: &Path) -> Result<Report> {
    let pst = read_pst(file)?;
    let info = ctx.node_info(None)?;
    if info.chain_id != pst.chain_id {
        return Err(CliError::new(
            kind::FOREIGN_PST,
            format!(
                "this pst is for the chain {} ({} network), but the node is on {} ({}): \
                 analyze it against a node of its chain",
                pst.chain_id, pst.network, info.chain_id, info.network
            ),
        ));
    }
    let assets = Assets::load(ctx.client())?;
    let a = pst.analyze();
    // With a wallet here, say which parties are this wallet and what `sign` would do.
    let opened = if ctx.wallet_path().exists() {
        ctx.open().map_err(|e| e.message)
    } else {
        Err("no wallet in this directory".to_owned())
    };
    let mut open = match opened {
        Ok(open) => open,
        Err(why) => {
            let view = AssetView::new(&assets, None);
            let (mut json, mut text) = analysis_report(&a, &view, &|_| false);
            let note = format!("not compared with a wallet ({why})");
            text.push_str(&format!("\n{note}\n"));
            json["sign"] = json!(note);
            return Ok(Report::new(json, text));
        }
    };
    let live = sync::sync(ctx, &mut open)?;
    open.save()?;
    let view = AssetView::new(&assets, Some(&open.state));
    let network = open.state.network;
    let mine = |party: &str| {
        Address::parse_for(party, network)
            .is_ok_and(|a| live.watch.owner(&a.script_pubkey()).is_some())
    };
    let (mut json, mut text) = analysis_report(&a, &view, &mine);
    let verdict = sign_rules(&pst, &live, SighashType::All, &[], false).and_then(|rules| {
        let mut probe = pst.clone();
        add_our_origins(&mut probe, &open, &live, &rules)?;
        Ok(policy::sign(&mut probe, Some(&open.keys), &[], &rules)?)
    });
    let sign_text = match &verdict {
        Ok(s) if s.is_empty() => "settle pst sign: nothing for this wallet to sign".to_owned(),
        Ok(s) => format!(
            "settle pst sign would sign input(s) {} (ALL): coins of this wallet",
            s.iter()
                .map(|(i, _)| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(e) => format!("settle pst sign would refuse: {}", e.message),
    };
    text.push_str(&format!("\n{sign_text}\n"));
    json["sign"] = json!(sign_text);
    Ok(Report::new(json, text))
}

/// Adds key origins for this wallet's keys to the inputs `rules` names (pay-to-key keys
/// it watches, its keys in imported multisigs), so the signing policy finds them. Inputs
/// the rules do not name get nothing: a key that merely appears there is no reason to sign.
pub fn add_our_origins(
    pst: &mut Pst,
    open: &Open,
    live: &Live,
    rules: &SigningPolicy,
) -> Result<()> {
    let fingerprint = open.keys.master_fingerprint();
    let mut ours: BTreeMap<XOnly, KeyOrigin> = BTreeMap::new();
    for d in &open.state.multisig {
        for o in &d.ours {
            ours.insert(o.key.0.serialize(), o.origin.clone());
        }
    }
    for i in 0..pst.inputs().len() {
        if !rules.allows(&pst.unsigned_tx().inputs[i].prevout) {
            continue;
        }
        let inp = pst.inputs()[i].clone();
        let Some(spent) = inp.spent_output.clone() else {
            continue;
        };
        let mut found: Vec<(XOnly, KeyOrigin)> = Vec::new();
        match classify(&spent.script_pubkey) {
            ScriptKind::PayToKey(k) => {
                if let Some(Owner::Key { origin, .. }) = live.watch.owner(&spent.script_pubkey) {
                    found.push((
                        k,
                        KeyOrigin {
                            master_fingerprint: fingerprint,
                            path: origin.path.clone(),
                        },
                    ));
                }
            }
            ScriptKind::PayToScriptHash(_) => {
                if let Some(ws) = &inp.witness_script {
                    for (k, origin) in &ours {
                        if ws.windows(32).any(|w| w == k) {
                            found.push((*k, origin.clone()));
                        }
                    }
                }
            }
            _ => {}
        }
        for (k, origin) in found {
            if inp.key_origins.contains_key(&k) {
                continue;
            }
            let key = secp256k1::XOnlyPublicKey::from_byte_array(k)
                .map_err(|_| CliError::new(kind::PST, "invalid key in a script"))?;
            pst.add_input_key_origin(i, &key, origin)?;
        }
    }
    Ok(())
}

/// The policy of `pst sign`: every input spending a coin of this wallet (as the chain
/// has it, not as the PST describes it) is signed ALL, except the inputs named in
/// `named`, signed `hash_type`. A named input that is not the wallet's is an error.
fn sign_rules(
    pst: &Pst,
    live: &Live,
    hash_type: SighashType,
    named: &[usize],
    allow_none: bool,
) -> Result<SigningPolicy> {
    let tx = pst.unsigned_tx();
    if let Some(bad) = named.iter().find(|&&i| i >= tx.inputs.len()) {
        return Err(CliError::usage(format!(
            "--input {bad}: the pst has {} input(s)",
            tx.inputs.len()
        )));
    }
    let mut rules = SigningPolicy::new();
    for (i, txin) in tx.inputs.iter().enumerate() {
        let coin = live.coins.iter().find(|c| c.coin.outpoint == txin.prevout);
        match coin {
            Some(c) => {
                let t = if named.contains(&i) {
                    hash_type
                } else {
                    SighashType::All
                };
                rules = rules.with_coin(txin.prevout, c.coin.txout.clone(), t);
            }
            None if named.contains(&i) => {
                return Err(CliError::new(
                    kind::REFUSED,
                    format!(
                        "--input {i}: input {i} (coin {}) does not spend a coin of this wallet",
                        txin.prevout
                    ),
                ));
            }
            None => {}
        }
    }
    Ok(if allow_none {
        rules.allow_sighash_none()
    } else {
        rules
    })
}

/// What signing `pst` under `rules` does to this wallet, for the confirmation.
fn sign_summary(pst: &Pst, live: &Live, view: &AssetView<'_>, rules: &SigningPolicy) -> String {
    let tx = pst.unsigned_tx();
    let spent: Vec<TxOut> = tx
        .inputs
        .iter()
        .map(|i| {
            live.coins
                .iter()
                .find(|c| c.coin.outpoint == i.prevout)
                .map_or(TxOut::NONE, |c| c.coin.txout.clone())
        })
        .collect();
    let f = flows(tx, &spent, &live.watch);
    let mut text = format!(
        "transaction {} (version {}, lock time {}, expiry height {})
this wallet's net flows:
{}
",
        pst.txid(),
        tx.version,
        tx.lock_time,
        tx.expiry_height,
        view.flows_text(&f)
    );
    for (o, out) in tx.outputs.iter().enumerate() {
        let to = if out.is_burn() {
            "burn".to_owned()
        } else {
            Address::from_script_pubkey(pst.network, &out.script_pubkey).map_or_else(
                |_| format!("script {}", hex::encode(&out.script_pubkey)),
                |a| a.to_string(),
            )
        };
        let yours = if live.watch.owner(&out.script_pubkey).is_some() {
            " (this wallet)"
        } else {
            ""
        };
        text.push_str(&format!(
            "output {o}: {} to {to}{yours}\n",
            view.amount(&out.asset, u128::from(out.amount.units()))
        ));
    }
    for (i, txin) in tx.inputs.iter().enumerate() {
        if rules.allows(&txin.prevout) {
            text.push_str(&format!(
                "signs input {i}: your coin {}
",
                txin.prevout
            ));
        }
    }
    let ids: Vec<_> = f.iter().map(|x| x.asset).collect();
    for w in view.warnings(&ids) {
        text.push_str(&format!("{w}\n"));
    }
    text
}

fn sign(ctx: &Ctx, args: SignArgs<'_>) -> Result<Report> {
    let hash_type: SighashType =
        args.sighash
            .parse()
            .map_err(|e: settle_script::sighash::SighashTypeParseError| {
                CliError::usage(e.to_string())
            })?;
    if hash_type != SighashType::All && args.inputs.is_empty() {
        return Err(CliError::usage(format!(
            "--sighash {hash_type} applies only to inputs you name: add --input N for each \
             (the wallet's other inputs are signed ALL)"
        )));
    }
    let mut pst = read_pst(args.file)?;
    let mut open = ctx.open()?;
    check_pst_chain(&pst, &open.state)?;
    let live = sync::sync(ctx, &mut open)?;
    let rules = sign_rules(&pst, &live, hash_type, args.inputs, args.allow_none)?;
    add_our_origins(&mut pst, &open, &live, &rules)?;
    // The policy's refusals come before anything is shown or written.
    let mut signed_pst = pst.clone();
    let signed = policy::sign(&mut signed_pst, Some(&open.keys), &[], &rules)?;
    if signed.is_empty() {
        return Err(CliError::new(
            kind::PST,
            "this wallet has no key that can sign any input of this pst that is not signed \
             or finalized yet",
        ));
    }
    let assets = Assets::load(ctx.client())?;
    let view = AssetView::new(&assets, Some(&open.state));
    confirm(ctx, &sign_summary(&pst, &live, &view, &rules))?;
    let pst = signed_pst;
    open.save()?;
    let target = args.out.unwrap_or(args.file);
    write_pst(target, &pst)?;
    let missing: Vec<String> = pst
        .analyze()
        .missing
        .iter()
        .map(ToString::to_string)
        .collect();
    let inputs: Vec<usize> = signed.iter().map(|(i, _)| *i).collect();
    let text = format!(
        "signed input(s) {} ({hash_type} for input(s) named with --input, ALL otherwise); \
         wrote {}\n{}",
        inputs
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        target.display(),
        if missing.is_empty() {
            "nothing missing: run `settle pst finalize` (or `pst broadcast`)".to_owned()
        } else {
            format!("still missing:\n  {}", missing.join("\n  "))
        }
    );
    Ok(Report::new(
        json!({
            "signed": signed.iter().map(|(i, k)| json!({
                "input": i,
                "key": hex32(k),
                "sighash": pst.inputs()[*i].partial_sigs.get(k).map(|s| s.hash_type.name()),
            })).collect::<Vec<_>>(),
            "sighash": hash_type.name(),
            "file": target,
            "missing": missing,
            "pst": pst.to_base64(),
        }),
        text,
    ))
}

/// The arguments of `pst sign`.
struct SignArgs<'a> {
    file: &'a Path,
    sighash: &'a str,
    inputs: &'a [usize],
    allow_none: bool,
    out: Option<&'a Path>,
}

fn combine(files: &[std::path::PathBuf], out: &Path) -> Result<Report> {
    let mut iter = files.iter();
    let first = iter
        .next()
        .ok_or_else(|| CliError::usage("nothing to combine"))?;
    let mut pst = read_pst(first)?;
    for f in iter {
        let other = read_pst(f)?;
        pst.combine(&other).map_err(|e| {
            let base: CliError = e.into();
            CliError::new(base.kind, format!("{}: {}", f.display(), base.message))
        })?;
    }
    write_pst(out, &pst)?;
    let missing: Vec<String> = pst
        .analyze()
        .missing
        .iter()
        .map(ToString::to_string)
        .collect();
    Ok(Report::new(
        json!({ "file": out, "txid": pst.txid(), "missing": missing, "pst": pst.to_base64() }),
        format!(
            "combined {} psts into {}{}",
            files.len(),
            out.display(),
            if missing.is_empty() {
                "; nothing missing".to_owned()
            } else {
                format!("; still missing:\n  {}", missing.join("\n  "))
            }
        ),
    ))
}

fn finalize(file: &Path, out: Option<&Path>) -> Result<Report> {
    let mut pst = read_pst(file)?;
    pst.finalize()?;
    let target = out.unwrap_or(file);
    write_pst(target, &pst)?;
    Ok(Report::new(
        json!({ "file": target, "txid": pst.txid(), "finalized": true, "pst": pst.to_base64() }),
        format!(
            "finalized every input; wrote {} (broadcast it with `settle pst broadcast`)",
            target.display()
        ),
    ))
}

fn broadcast_pst(ctx: &Ctx, file: &Path, wait: bool) -> Result<Report> {
    let mut pst = read_pst(file)?;
    let mut open = ctx.open()?;
    check_pst_chain(&pst, &open.state)?;
    let live = sync::sync(ctx, &mut open)?;
    if !pst.is_finalized() {
        pst.finalize()?;
    }
    let tx = pst.extract()?;
    let spent: Vec<_> = pst
        .inputs()
        .iter()
        .map(|i| i.spent_output.clone().unwrap_or(settle_assets::TxOut::NONE))
        .collect();
    let f = flows(&tx, &spent, &live.watch);
    let txid = broadcast(ctx, &mut open, &tx, f, "pst")?;
    open.save()?;
    let height = maybe_wait(ctx, &txid, wait)?;
    Ok(Report::new(
        json!({ "txid": txid, "height": height }),
        format!("txid {txid}\n{}", status_text(height)),
    ))
}
