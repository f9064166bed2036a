//! `settle multisig key|create|import|list|spend`: co-signed addresses, spent by passing
//! a PST from wallet to wallet.

use std::path::Path;

use serde_json::json;
use settle_script::{Address, SighashType};
use settle_wallet::coins::{BuildOptions, ChangeAddress, Payment, build_payment};
use settle_wallet::descriptor::{Descriptor, MultisigKey};
use settle_wallet::state::MultisigDescriptor;

use crate::Report;
use crate::cli::MultisigCmd;
use crate::commands::no_such_multisig;
use crate::commands::pst::add_our_origins;
use crate::ctx::{Assets, Ctx, Open, parse_address, write_pst};
use crate::error::{CliError, Result, kind};
use crate::sync;
use settle_wallet::policy::{self, SigningPolicy};

pub fn run(ctx: &Ctx, cmd: MultisigCmd) -> Result<Report> {
    match cmd {
        MultisigCmd::Key => key(ctx),
        MultisigCmd::Create {
            threshold,
            keys,
            name,
        } => {
            let keys = keys
                .iter()
                .map(|k| k.parse::<MultisigKey>())
                .collect::<Result<Vec<_>, _>>()?;
            let d = Descriptor::sorted(threshold, keys)?;
            import(ctx, d, &name, "created")
        }
        MultisigCmd::Import { descriptor, name } => {
            let d: Descriptor = descriptor.parse()?;
            import(ctx, d, &name, "imported")
        }
        MultisigCmd::List => list(ctx),
        MultisigCmd::Spend {
            name,
            amount,
            asset,
            address,
            out,
        } => spend(ctx, &name, &amount, &asset, &address, &out),
    }
}

fn key(ctx: &Ctx) -> Result<Report> {
    let mut open = ctx.open()?;
    let a = open.state.next_receive_address(&open.keys)?;
    open.state
        .set_label(&a.address.to_string(), "multisig key")?;
    open.save()?;
    let k = MultisigKey {
        key: a.key.x_only(),
        origin: Some(a.key.origin.clone()),
    };
    Ok(Report::new(
        json!({
            "key": k.to_string(),
            "x_only": hex::encode(a.key.x_only().serialize()),
            "origin": a.key.origin.to_string(),
        }),
        format!(
            "{k}\n(give this to your co-signers: settle multisig create --threshold M --key ...)"
        ),
    ))
}

fn address_of(open: &Open, d: &MultisigDescriptor) -> Result<Address> {
    Ok(d.address(open.state.network)?)
}

fn import(ctx: &Ctx, d: Descriptor, name: &str, verb: &str) -> Result<Report> {
    let mut open = ctx.open()?;
    let st = d.to_state(name, open.keys.master_fingerprint());
    // Keys marked ours must really derive from this wallet.
    for o in &st.ours {
        match open.keys.derive_origin(&o.origin) {
            Some(Ok(k)) if k.x_only() == o.key.0 => {}
            _ => {
                return Err(CliError::new(
                    kind::MULTISIG,
                    format!(
                        "key {} claims to come from this wallet ({}) but does not derive from it",
                        o.key, o.origin
                    ),
                ));
            }
        }
    }
    let ours = st.ours.len();
    let address = address_of(&open, &st)?;
    open.state.add_multisig(st.clone())?;
    open.state
        .set_label(&address.to_string(), &format!("multisig {name}"))?;
    open.save()?;
    let text = format!(
        "{verb} {}-of-{} multisig {name:?}: {address}\n\
         this wallet holds {ours} of its keys{}\n\
         descriptor (co-signers import it with `settle multisig import`):\n{d}",
        d.threshold,
        d.keys.len(),
        if ours == 0 { " (watch only)" } else { "" },
    );
    Ok(Report::new(
        json!({
            "name": name,
            "address": address.to_string(),
            "threshold": d.threshold,
            "keys": d.keys.iter().map(|k| hex::encode(k.key.serialize())).collect::<Vec<_>>(),
            "ours": ours,
            "descriptor": d.to_string(),
            "witness_script": hex::encode(d.witness_script()),
        }),
        text,
    ))
}

fn list(ctx: &Ctx) -> Result<Report> {
    let open = ctx.open()?;
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for d in &open.state.multisig {
        let address = address_of(&open, d)?;
        rows.push(json!({
            "name": d.name,
            "address": address.to_string(),
            "threshold": d.threshold,
            "keys": d.keys.len(),
            "ours": d.ours.len(),
            "descriptor": d.descriptor,
        }));
        lines.push(format!(
            "{}  {}-of-{}  {address}  ({} of the keys are ours)",
            d.name,
            d.threshold,
            d.keys.len(),
            d.ours.len()
        ));
    }
    let text = if lines.is_empty() {
        "no multisig (settle multisig create, or import)".to_owned()
    } else {
        lines.join("\n")
    };
    Ok(Report::new(json!(rows), text))
}

fn spend(
    ctx: &Ctx,
    name: &str,
    amount: &str,
    asset: &str,
    address: &str,
    out: &Path,
) -> Result<Report> {
    let mut open = ctx.open()?;
    let live = sync::sync(ctx, &mut open)?;
    let d = open
        .state
        .multisig
        .iter()
        .find(|d| d.name == name)
        .cloned()
        .ok_or_else(|| no_such_multisig(name))?;
    let assets = Assets::load(ctx.client())?;
    let info = assets.resolve(asset)?;
    let amount = assets.parse_amount(info, amount)?;
    let to = parse_address(address, open.state.network)?;
    let script = d.witness_script()?;
    let script_pubkey = d.script_pubkey()?;
    let coins = live.multisig_coins(name);
    // Change goes back to the multisig itself.
    let built = build_payment(
        &coins,
        &[Payment {
            asset: info.asset,
            amount,
            script_pubkey: to.script_pubkey(),
            label: None,
        }],
        |_| {
            Ok(ChangeAddress {
                script_pubkey: script_pubkey.clone(),
                origin: None,
            })
        },
        BuildOptions::default(),
    )
    .map_err(|e| assets.build_error(e, &format!(" in multisig {name:?}")))?;
    let mut pst = built.to_pst(open.state.chain_id, open.state.network)?;
    for i in 0..pst.inputs().len() {
        pst.set_witness_script(i, script.clone())?;
        pst.set_input_owner(i, &format!("multisig {name}"))?;
    }
    for (c, _) in &built.change {
        pst.set_output_witness_script(c.output, script.clone())?;
        pst.set_output_label(c.output, &format!("multisig {name} (change)"))?;
    }
    let mut rules = SigningPolicy::new();
    for c in &built.coins {
        rules = rules.with_coin(c.outpoint, c.txout.clone(), SighashType::All);
    }
    add_our_origins(&mut pst, &open, &live, &rules)?;
    let signed = policy::sign(&mut pst, Some(&open.keys), &[], &rules)?;
    write_pst(out, &pst)?;
    open.save()?;
    let missing: Vec<String> = pst
        .analyze()
        .missing
        .iter()
        .map(ToString::to_string)
        .collect();
    let shown = assets.fmt(&info.asset, u128::from(amount.units()));
    Ok(Report::new(
        json!({
            "file": out,
            "txid": pst.txid(),
            "signed_inputs": signed.len(),
            "missing": missing,
            "pst": pst.to_base64(),
        }),
        format!(
            "wrote {}: pays {shown} from multisig {name:?} ({}-of-{}) to {to}\n\
             signed {} input(s) with this wallet's key\n{}",
            out.display(),
            d.threshold,
            d.keys.len(),
            signed.len(),
            if missing.is_empty() {
                "nothing missing: `settle pst broadcast` it".to_owned()
            } else {
                format!(
                    "still missing:\n  {}\npass the file to a co-signer: settle pst sign FILE",
                    missing.join("\n  ")
                )
            }
        ),
    ))
}
