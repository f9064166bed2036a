//! The plain-JSON description of a decoded PST that `spec/vectors/pst.json` records for
//! each valid vector. Shared by the vector test and the example that writes the vectors.

use serde_json::{Value, json};
use settle_assets::{TxOut, serialize};
use settle_wallet::pst::Pst;

fn txout(o: &TxOut) -> Value {
    json!({
        "asset": o.asset.to_string(),
        "amount": o.amount.units(),
        "script": hex::encode(&o.script_pubkey),
    })
}

fn unknown(map: &std::collections::BTreeMap<Vec<u8>, Vec<u8>>) -> Value {
    map.iter()
        .map(|(k, v)| json!({"key": hex::encode(k), "value": hex::encode(v)}))
        .collect()
}

fn origins(map: &std::collections::BTreeMap<[u8; 32], settle_wallet::keys::KeyOrigin>) -> Value {
    map.iter()
        .map(|(k, o)| json!({"key": hex::encode(k), "origin": o.to_string()}))
        .collect()
}

/// Everything a PST says, field by field, plus what the roles make of it.
pub fn describe(pst: &Pst) -> Value {
    let tx = pst.unsigned_tx();
    let analysis = pst.analyze();
    let inputs: Vec<Value> = pst
        .inputs()
        .iter()
        .enumerate()
        .map(|(i, inp)| {
            let sigs: Vec<Value> = inp
                .partial_sigs
                .iter()
                .map(|(k, s)| {
                    json!({
                        "key": hex::encode(k),
                        "signature": hex::encode(s.signature),
                        "hash_type": s.hash_type.name(),
                        "valid": pst.verify_partial_sig(i, k, s).unwrap_or(false),
                    })
                })
                .collect();
            json!({
                "prevout": tx.inputs[i].prevout.to_string(),
                "spent_output": inp.spent_output.as_ref().map(txout),
                "partial_sigs": sigs,
                "witness_script": inp.witness_script.as_ref().map(hex::encode),
                "sha256_preimages": inp.sha256_preimages.values().map(hex::encode).collect::<Vec<_>>(),
                "key_origins": origins(&inp.key_origins),
                "owner": inp.owner,
                "final_witness": inp.final_witness.as_ref().map(|w| w.0.iter().map(hex::encode).collect::<Vec<_>>()),
                "issuance_signature": inp.issuance_signature.map(hex::encode),
                "unknown": unknown(&inp.unknown),
            })
        })
        .collect();
    let outputs: Vec<Value> = pst
        .outputs()
        .iter()
        .enumerate()
        .map(|(o, out)| {
            json!({
                "output": txout(&tx.outputs[o]),
                "label": out.label,
                "key_origins": origins(&out.key_origins),
                "witness_script": out.witness_script.as_ref().map(hex::encode),
                "unknown": unknown(&out.unknown),
            })
        })
        .collect();
    let extracted = pst.extract().ok().map(|t| {
        json!({
            "txid": t.txid().to_string(),
            "wtxid": t.wtxid().to_string(),
            "hex": hex::encode(serialize(&t)),
        })
    });
    json!({
        "unsigned_tx": hex::encode(serialize(tx)),
        "txid": pst.txid().to_string(),
        "chain_id": pst.chain_id.to_string(),
        "network": pst.network.name(),
        "expiry_note": pst.expiry_note,
        "unknown": unknown(&pst.unknown),
        "inputs": inputs,
        "outputs": outputs,
        "missing": serde_json::to_value(&analysis.missing).expect("plain data"),
        "balanced": analysis.balanced,
        "finalized": analysis.finalized,
        "extracted": extracted,
    })
}
