//! `settle pst decode|analyze|sign|combine|finalize|broadcast`.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use settle_script::{Address, ScriptKind, SighashType, classify};
use settle_wallet::keys::KeyOrigin;
use settle_wallet::pst::{Pst, PstAnalysis, XOnly};
use settle_wallet::scan::Owner;

use crate::Report;
use crate::cli::PstCmd;
use crate::commands::{broadcast, flows, maybe_wait, status_text};
use crate::ctx::{Assets, Ctx, Open, check_pst_chain, read_pst, write_pst};
use crate::error::{CliError, Result, kind};
use crate::sync::{self, Live};

pub fn run(ctx: &Ctx, cmd: PstCmd) -> Result<Report> {
    match cmd {
        PstCmd::Decode { file } => decode(&file),
        PstCmd::Analyze { file } => analyze(ctx, &file),
        PstCmd::Sign { file, sighash, out } => sign(ctx, &file, &sighash, out.as_deref()),
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
            .map(|n| format!("\nnote: {n}"))
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
                .map(|o| format!(" from {o}"))
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
                .map(|l| format!(" ({l})"))
                .unwrap_or_default()
        ));
    }
    Ok(Report::new(json, text))
}

/// The analysis in the assets' precision.
pub fn analysis_report(a: &PstAnalysis, assets: &Assets) -> (Value, String) {
    let name = |party: &str| -> String { party.to_owned() };
    let mut text = format!(
        "transaction {} on the {} chain {}\n",
        a.txid, a.network, a.chain_id
    );
    if a.expiry_height != 0 {
        text.push_str(&format!(
            "valid up to and including block {}\n",
            a.expiry_height
        ));
    }
    if let Some(n) = &a.expiry_note {
        text.push_str(&format!("note: {n}\n"));
    }
    let mut assets_json = Vec::new();
    text.push_str("\nwho gives and gets what:\n");
    for s in &a.assets {
        let mut parties = Vec::new();
        for p in &s.parties {
            let line = match (p.gives, p.gets) {
                (0, g) => format!("gets {}", assets.fmt(&s.asset, g)),
                (g, 0) => format!("gives {}", assets.fmt(&s.asset, g)),
                (g, r) => format!(
                    "gives {} and gets {}",
                    assets.fmt(&s.asset, g),
                    assets.fmt(&s.asset, r)
                ),
            };
            text.push_str(&format!("  {}: {line}\n", name(&p.party)));
            parties.push(json!({
                "party": p.party,
                "gives": assets.fmt_number(&s.asset, p.gives),
                "gets": assets.fmt_number(&s.asset, p.gets),
            }));
        }
        if !s.balanced {
            text.push_str(&format!(
                "  ! {} does not balance yet: {} in{}, {} out\n",
                assets.ticker(&s.asset),
                assets.fmt(&s.asset, s.inputs),
                if s.issued > 0 {
                    format!(" (+{} issued)", assets.fmt(&s.asset, s.issued))
                } else {
                    String::new()
                },
                assets.fmt(&s.asset, s.outputs)
            ));
        }
        assets_json.push(json!({
            "asset": s.asset,
            "ticker": assets.ticker(&s.asset),
            "inputs": assets.fmt_number(&s.asset, s.inputs),
            "issued": assets.fmt_number(&s.asset, s.issued),
            "outputs": assets.fmt_number(&s.asset, s.outputs),
            "burned": assets.fmt_number(&s.asset, s.burned),
            "balanced": s.balanced,
            "parties": parties,
        }));
    }
    text.push_str("\ninputs:\n");
    for i in &a.inputs {
        let coin = match (i.asset, i.amount) {
            (Some(asset), Some(amount)) => assets.fmt(&asset, u128::from(amount.units())),
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
            "  {}: {coin} from {} ({}): {sigs}{}\n",
            i.index,
            name(&i.party),
            i.script_kind,
            if i.finalized { ", finalized" } else { "" }
        ));
        if let Some(iss) = &i.issuance {
            text.push_str(&format!(
                "     issues {}{}\n",
                assets.fmt(&iss.asset, u128::from(iss.amount.units())),
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
            assets.fmt(&o.asset, u128::from(o.amount.units())),
            name(&o.party)
        ));
    }
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
    let (json, text) = analysis_report(&a, &assets);
    Ok(Report::new(json, text))
}

/// Adds key origins for every key of this wallet that can sign an input (pay-to-key keys
/// it watches, its keys in imported multisigs), so [`Pst::sign_with_wallet`] finds them.
pub fn add_our_origins(pst: &mut Pst, open: &Open, live: &Live) -> Result<()> {
    let fingerprint = open.keys.master_fingerprint();
    let mut ours: BTreeMap<XOnly, KeyOrigin> = BTreeMap::new();
    for d in &open.state.multisig {
        for o in &d.ours {
            ours.insert(o.key.0.serialize(), o.origin.clone());
        }
    }
    for i in 0..pst.inputs().len() {
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

fn sign(ctx: &Ctx, file: &Path, sighash: &str, out: Option<&Path>) -> Result<Report> {
    let hash_type: SighashType =
        sighash
            .parse()
            .map_err(|e: settle_script::sighash::SighashTypeParseError| {
                CliError::usage(e.to_string())
            })?;
    let mut pst = read_pst(file)?;
    let mut open = ctx.open()?;
    check_pst_chain(&pst, &open.state)?;
    let live = sync::sync(ctx, &mut open)?;
    add_our_origins(&mut pst, &open, &live)?;
    let signed = pst.sign_with_wallet(&open.keys, hash_type)?;
    if signed.is_empty() {
        return Err(CliError::new(
            kind::PST,
            "this wallet has no key that can sign any input of this pst that is not signed \
             or finalized yet",
        ));
    }
    open.save()?;
    let target = out.unwrap_or(file);
    write_pst(target, &pst)?;
    let missing: Vec<String> = pst
        .analyze()
        .missing
        .iter()
        .map(ToString::to_string)
        .collect();
    let inputs: Vec<usize> = signed.iter().map(|(i, _)| *i).collect();
    let text = format!(
        "signed input(s) {} with {hash_type}; wrote {}\n{}",
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
            "signed": signed.iter().map(|(i, k)| json!({"input": i, "key": hex32(k)})).collect::<Vec<_>>(),
            "sighash": hash_type.name(),
            "file": target,
            "missing": missing,
            "pst": pst.to_base64(),
        }),
        text,
    ))
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
