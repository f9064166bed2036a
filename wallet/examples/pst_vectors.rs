//! Writes `spec/vectors/pst.json`: valid PSTs with their decoded meaning, and invalid ones
//! with the error each must produce. Deterministic (fixed keys, BIP340 signatures without
//! auxiliary randomness), so running it again gives the same file:
//!
//! ```text
//! cargo run -p settle-wallet --example pst_vectors > spec/vectors/pst.json
//! ```
//!
//! The test `wallet/tests/pst_vectors.rs` reads the file and checks the code against it.

#[path = "../tests/common/describe.rs"]
mod describe;

use serde_json::{Value, json};
use settle_assets::encode::{write_compact_size, write_var_bytes};
use settle_assets::{
    Amount, AssetId, ChainId, OutPoint, Transaction, TxIn, TxOut, Txid, serialize,
};
use settle_script::sighash::sha256;
use settle_script::{Network, SighashType, htlc_script, multisig_script, p2k, p2sh};
use settle_wallet::keys::{DerivationPath, Fingerprint, KeyOrigin, SigningKey};
use settle_wallet::pst::encode::{MAGIC, MAX_MAP_ENTRIES, VERSION, global, input};
use settle_wallet::pst::{PartialSig, Pst};

const CHAIN: ChainId = ChainId([0x5e; 32]);
const EUR: AssetId = AssetId([0xe0; 32]);
const BOND: AssetId = AssetId([0xb0; 32]);

fn key(i: u8) -> SigningKey {
    SigningKey::from_secret_bytes([i; 32]).expect("valid secret")
}

fn out(asset: AssetId, units: u64, script: Vec<u8>) -> TxOut {
    TxOut {
        asset,
        amount: Amount::from_units(units).expect("amount"),
        script_pubkey: script,
    }
}

fn op(n: u8) -> OutPoint {
    OutPoint::new(Txid([n; 32]), u32::from(n))
}

/// Signs deterministically and adds the signature through the public API.
fn sign(pst: &mut Pst, input: usize, k: &SigningKey, hash_type: SighashType) {
    let digest = pst
        .sighash(input, &k.x_only_bytes(), hash_type)
        .expect("sighash");
    let sig = settle_script::sign_schnorr_no_aux_rand(k.keypair(), &digest, hash_type);
    let mut signature = [0u8; 64];
    signature.copy_from_slice(&sig[..64]);
    pst.add_partial_sig(
        input,
        &k.x_only(),
        PartialSig {
            signature,
            hash_type,
        },
    )
    .expect("valid signature");
}

fn offer() -> Pst {
    let maker = key(1);
    let tx = Transaction {
        version: 1,
        inputs: vec![TxIn::spending(op(1))],
        outputs: vec![out(BOND, 10, p2k(&key(2).x_only()))],
        lock_time: 0,
        expiry_height: 5_000,
    };
    let mut pst = Pst::create(
        tx,
        vec![Some(out(EUR, 100_000, p2k(&maker.x_only())))],
        CHAIN,
        Network::Dev,
    )
    .expect("create");
    pst.set_expiry_note("offer lapses after height 5000")
        .expect("note");
    pst.set_input_owner(0, "maker").expect("owner");
    pst.set_output_label(0, "maker").expect("label");
    let origin = KeyOrigin {
        master_fingerprint: Fingerprint([0xde, 0xad, 0xbe, 0xef]),
        path: "m/86'/21332'/0'/0/7"
            .parse::<DerivationPath>()
            .expect("path"),
    };
    pst.add_input_key_origin(0, &maker.x_only(), origin)
        .expect("origin");
    sign(&mut pst, 0, &maker, SighashType::SingleAnyoneCanPay);
    pst
}

fn completed() -> Pst {
    let taker = key(3);
    let mut pst = offer();
    pst.add_input(
        TxIn::spending(op(2)),
        Some(out(BOND, 10, p2k(&taker.x_only()))),
    )
    .expect("input");
    pst.add_output(out(EUR, 100_000, p2k(&key(4).x_only())))
        .expect("output");
    pst.set_input_owner(1, "taker").expect("owner");
    pst.set_output_label(1, "taker").expect("label");
    sign(&mut pst, 1, &taker, SighashType::All);
    pst.finalize().expect("finalize");
    pst
}

fn multisig_half_signed() -> Pst {
    let keys = [key(11), key(12), key(13)];
    let xs: Vec<_> = keys.iter().map(SigningKey::x_only).collect();
    let script = multisig_script(2, &xs).expect("script");
    let tx = Transaction {
        version: 1,
        inputs: vec![TxIn::spending(op(3))],
        outputs: vec![out(BOND, 50, p2k(&key(14).x_only()))],
        lock_time: 0,
        expiry_height: 0,
    };
    let mut pst = Pst::create(
        tx,
        vec![Some(out(BOND, 50, p2sh(&script)))],
        CHAIN,
        Network::Test,
    )
    .expect("create");
    pst.set_witness_script(0, script).expect("script");
    sign(&mut pst, 0, &keys[1], SighashType::All);
    pst
}

fn htlc_claimable() -> Pst {
    let (recipient, refund) = (key(21), key(22));
    let preimage = b"settle htlc preimage".to_vec();
    let script = htlc_script(
        sha256(&preimage),
        &recipient.x_only(),
        &refund.x_only(),
        1_000,
    );
    let tx = Transaction {
        version: 1,
        inputs: vec![TxIn::spending(op(4))],
        outputs: vec![out(EUR, 700, p2k(&recipient.x_only()))],
        lock_time: 0,
        expiry_height: 0,
    };
    let mut pst = Pst::create(
        tx,
        vec![Some(out(EUR, 700, p2sh(&script)))],
        CHAIN,
        Network::Dev,
    )
    .expect("create");
    pst.set_witness_script(0, script).expect("script");
    pst.add_preimage(0, preimage).expect("preimage");
    sign(&mut pst, 0, &recipient, SighashType::All);
    pst
}

fn with_unknown_entries() -> Pst {
    let mut pst = Pst::create(
        Transaction {
            version: 1,
            inputs: vec![TxIn::spending(op(5))],
            outputs: vec![out(EUR, 1, p2k(&key(31).x_only()))],
            lock_time: 0,
            expiry_height: 0,
        },
        vec![None],
        CHAIN,
        Network::Main,
    )
    .expect("create");
    pst.unknown
        .insert(vec![0xfc, 0x01], b"proprietary".to_vec());
    let mut bytes = pst.serialize();
    // Re-encode with an unknown entry in the input and the output map as well: the maps
    // are the last two, each ending in 0x00.
    bytes.truncate(bytes.len() - 2);
    raw_entry(&mut bytes, &[0x42, 0x01], &[1, 2, 3]);
    bytes.push(0);
    raw_entry(&mut bytes, &[0x99], &[]);
    bytes.push(0);
    Pst::deserialize(&bytes).expect("valid")
}

fn raw_entry(out: &mut Vec<u8>, k: &[u8], v: &[u8]) {
    write_var_bytes(out, k);
    write_var_bytes(out, v);
}

/// A PST written entry by entry, in the given order, for the invalid vectors.
fn raw_pst(version: u8, global: &[(&[u8], &[u8])], maps: &[&[(&[u8], &[u8])]]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.push(version);
    for (k, v) in global {
        raw_entry(&mut out, k, v);
    }
    out.push(0);
    for m in maps {
        for (k, v) in *m {
            raw_entry(&mut out, k, v);
        }
        out.push(0);
    }
    out
}

fn invalid_vectors() -> Vec<Value> {
    let base = offer();
    let good = base.serialize();
    let tx = serialize(base.unsigned_tx());
    let chain = CHAIN.0;
    let spent = serialize(&out(EUR, 100_000, p2k(&key(1).x_only())));
    let g_tx: &[u8] = &[global::UNSIGNED_TX];
    let g_chain: &[u8] = &[global::CHAIN_ID];
    let g_net: &[u8] = &[global::NETWORK];
    let dev: &[u8] = &[2];
    let mut v = Vec::new();
    let mut add = |name: &str, description: &str, bytes: Vec<u8>, error: &str| {
        let err = Pst::deserialize(&bytes).expect_err("an invalid vector must not decode");
        assert_eq!(err.name(), error, "{name}: {err}");
        v.push(json!({
            "name": name,
            "description": description,
            "hex": hex::encode(bytes),
            "error": error,
            "message": err.to_string(),
        }));
    };
    let mut bad = good.clone();
    bad[0] = b'S';
    add("bad_magic", "first byte changed", bad, "BAD_MAGIC");
    let mut bad = good.clone();
    bad[7] = 2;
    add(
        "unsupported_version",
        "version byte 2",
        bad,
        "UNSUPPORTED_VERSION",
    );
    add(
        "truncated",
        "last byte (the output map's terminator) missing",
        good[..good.len() - 1].to_vec(),
        "ENCODING",
    );
    let mut bad = good.clone();
    bad.push(0);
    add(
        "trailing_bytes",
        "an extra byte after the last map",
        bad,
        "TRAILING_BYTES",
    );
    add(
        "duplicate_key",
        "the chain id entry twice",
        raw_pst(
            1,
            &[
                (g_tx, &tx),
                (g_chain, &chain),
                (g_chain, &chain),
                (g_net, dev),
            ],
            &[&[], &[]],
        ),
        "DUPLICATE_KEY",
    );
    add(
        "key_order",
        "network entry before the chain id entry",
        raw_pst(
            1,
            &[(g_tx, &tx), (g_net, dev), (g_chain, &chain)],
            &[&[], &[]],
        ),
        "KEY_ORDER",
    );
    add(
        "missing_transaction",
        "no unsigned transaction in the global map",
        raw_pst(1, &[(g_chain, &chain), (g_net, dev)], &[]),
        "MISSING_FIELD",
    );
    add(
        "missing_chain_id",
        "no chain id in the global map",
        raw_pst(1, &[(g_tx, &tx), (g_net, dev)], &[&[], &[]]),
        "MISSING_FIELD",
    );
    add(
        "unknown_network",
        "network byte 7",
        raw_pst(
            1,
            &[(g_tx, &tx), (g_chain, &chain), (g_net, &[7])],
            &[&[], &[]],
        ),
        "BAD_VALUE",
    );
    let mut signed_tx = base.unsigned_tx().clone();
    signed_tx.inputs[0].witness.0.push(vec![0xaa]);
    add(
        "transaction_has_witness",
        "the transaction's input 0 carries a witness item",
        raw_pst(
            1,
            &[
                (g_tx, &serialize(&signed_tx)),
                (g_chain, &chain),
                (g_net, dev),
            ],
            &[&[], &[]],
        ),
        "NOT_UNSIGNED",
    );
    add(
        "missing_input_map",
        "the transaction has one input and one output but only one map follows",
        raw_pst(1, &[(g_tx, &tx), (g_chain, &chain), (g_net, dev)], &[&[]]),
        "ENCODING",
    );
    let mut sig_key = vec![input::PARTIAL_SIG];
    sig_key.extend_from_slice(&key(1).x_only_bytes());
    let mut bad_type = vec![0x11; 64];
    bad_type.push(0x04);
    add(
        "unknown_sighash_type",
        "a partial signature whose sighash byte is 0x04",
        raw_pst(
            1,
            &[(g_tx, &tx), (g_chain, &chain), (g_net, dev)],
            &[&[(&sig_key, &bad_type)], &[]],
        ),
        "BAD_VALUE",
    );
    let mut off_curve = vec![input::PARTIAL_SIG];
    off_curve.extend_from_slice(&[0xff; 32]);
    let mut sig = vec![0x11; 64];
    sig.push(0x83);
    add(
        "signature_key_not_a_point",
        "a partial signature keyed by 32 bytes of 0xff, not an x coordinate on the curve",
        raw_pst(
            1,
            &[(g_tx, &tx), (g_chain, &chain), (g_net, dev)],
            &[&[(&off_curve, &sig)], &[]],
        ),
        "BAD_KEY",
    );
    let mut pre_key = vec![input::SHA256_PREIMAGE];
    pre_key.extend_from_slice(&[0u8; 32]);
    add(
        "preimage_mismatch",
        "a preimage entry whose value does not hash to its key",
        raw_pst(
            1,
            &[(g_tx, &tx), (g_chain, &chain), (g_net, dev)],
            &[&[(&pre_key, b"not the preimage")], &[]],
        ),
        "PREIMAGE_MISMATCH",
    );
    let p2sh_spent = serialize(&out(EUR, 100_000, p2sh(&[0x51])));
    add(
        "witness_script_mismatch",
        "input spends a pay-to-script-hash output of script 0x51 but carries script 0x52",
        raw_pst(
            1,
            &[(g_tx, &tx), (g_chain, &chain), (g_net, dev)],
            &[
                &[
                    (&[input::SPENT_OUTPUT], &p2sh_spent),
                    (&[input::WITNESS_SCRIPT], &[0x52]),
                ],
                &[],
            ],
        ),
        "WITNESS_SCRIPT_MISMATCH",
    );
    add(
        "issuance_signature_without_issuance",
        "an issuance signature on an input that issues nothing",
        raw_pst(
            1,
            &[(g_tx, &tx), (g_chain, &chain), (g_net, dev)],
            &[
                &[
                    (&[input::SPENT_OUTPUT], &spent),
                    (&[input::ISSUANCE_SIG], &[7; 64]),
                ],
                &[],
            ],
        ),
        "BAD_VALUE",
    );
    add(
        "owner_not_utf8",
        "an owner entry that is not UTF-8",
        raw_pst(
            1,
            &[(g_tx, &tx), (g_chain, &chain), (g_net, dev)],
            &[&[(&[input::OWNER], &[0xff, 0xfe])], &[]],
        ),
        "BAD_VALUE",
    );
    add(
        "spent_output_with_key_data",
        "a spent output entry whose key has extra bytes",
        raw_pst(
            1,
            &[(g_tx, &tx), (g_chain, &chain), (g_net, dev)],
            &[&[(&[input::SPENT_OUTPUT, 0], &spent)], &[]],
        ),
        "BAD_KEY",
    );
    let keys: Vec<Vec<u8>> = (0..=MAX_MAP_ENTRIES)
        .map(|i| {
            let i = u16::try_from(i).expect("small");
            let mut k = vec![0xfc];
            k.extend_from_slice(&i.to_be_bytes());
            k
        })
        .collect();
    let mut entries: Vec<(&[u8], &[u8])> = vec![(g_tx, &tx), (g_chain, &chain), (g_net, dev)];
    entries.extend(keys.iter().map(|k| (k.as_slice(), &[][..])));
    add(
        "too_many_entries",
        "a global map with more than 512 entries",
        raw_pst(1, &entries, &[&[], &[]]),
        "TOO_MANY_ENTRIES",
    );
    let mut huge = MAGIC.to_vec();
    huge.push(VERSION);
    write_var_bytes(&mut huge, g_tx);
    write_compact_size(&mut huge, 0x0100_0000);
    add(
        "value_too_large",
        "a value announcing 16 MiB, more than any value may be",
        huge,
        "ENCODING",
    );
    v
}

fn main() {
    let valid: Vec<Value> = [
        (
            "dvp_offer",
            "maker's DvP offer: gives 1,000.00 EUR (input 0), must receive 10 BOND (output 0), \
             signed SINGLE|ANYONECANPAY, with owner, label, key origin, expiry note",
            offer(),
        ),
        (
            "dvp_completed_finalized",
            "the offer completed by a taker (input 1 and output 1 appended, taker signs ALL) \
             and finalized: extracts to a valid transaction",
            completed(),
        ),
        (
            "multisig_one_of_two",
            "2-of-3 pay-to-script-hash multisig input with its witness script and one of the \
             two signatures it needs",
            multisig_half_signed(),
        ),
        (
            "htlc_claim_ready",
            "HTLC input with the recipient's signature and the preimage: ready to finalize",
            htlc_claimable(),
        ),
        (
            "unknown_entries",
            "unknown entries in the global, input and output maps, kept as they are; the \
             input's spent output is not known yet",
            with_unknown_entries(),
        ),
    ]
    .into_iter()
    .map(|(name, description, pst)| {
        json!({
            "name": name,
            "description": description,
            "base64": pst.to_base64(),
            "expected": describe::describe(&pst),
        })
    })
    .collect();
    let doc = json!({
        "description": "PST test vectors (spec/pst.md). Each valid vector decodes to \
            `expected` and re-encodes to the same bytes; each invalid one fails with the named \
            error. Written by `cargo run -p settle-wallet --example pst_vectors`.",
        "valid": valid,
        "invalid": invalid_vectors(),
        "invalid_base64": [
            {"name": "not_base64", "text": "c3RscHN0/w==!", "error": "BASE64"},
        ],
    });
    println!("{}", serde_json::to_string_pretty(&doc).expect("json"));
}
