//! The securities-lending escrow against `spec/vectors/lending.json`: script bytes and
//! parsing, the grace end, the position id, the opening's shape and its defects, the
//! lender's return pre-signature, and every way of spending the escrow coin.
#![allow(clippy::panic)] // a test fails by panicking

use std::fs;
use std::path::PathBuf;

use secp256k1::{Keypair, SECP256K1, XOnlyPublicKey};
use serde_json::Value;
use settle_assets::encode::{deserialize, serialize};
use settle_assets::{
    AssetClass, AssetContract, AssetId, ChainId, Issuance, IssuanceKind, OutPoint, Transaction,
    TxOut,
};
use settle_script::lending::{
    Escrow, EscrowParams, EscrowPath, LendingError, RETURN_HASH_TYPE, check_opening,
    classify_escrow_witness, escrow_script, grace_end_height, parse_escrow_script,
};
use settle_script::{ScriptError, disassemble, verify_transaction};

fn vectors() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("spec")
        .join("vectors")
        .join("lending.json");
    let text = fs::read_to_string(&path).expect("spec/vectors/lending.json exists");
    serde_json::from_str(&text).expect("valid JSON")
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v[k].as_str()
        .unwrap_or_else(|| panic!("string field {k} in {v}"))
}

fn bytes(v: &Value, k: &str) -> Vec<u8> {
    hex::decode(s(v, k)).expect("hex")
}

fn key(v: &Value, k: &str) -> XOnlyPublicKey {
    let b: [u8; 32] = bytes(v, k).try_into().expect("32 bytes");
    XOnlyPublicKey::from_byte_array(b).expect("valid key")
}

fn tx(v: &Value, k: &str) -> Transaction {
    deserialize(&bytes(v, k)).expect("a transaction")
}

fn chain_id(v: &Value) -> ChainId {
    s(v, "chain_id").parse().expect("chain id")
}

fn terms(v: &Value) -> (AssetContract, settle_assets::LendingTerms) {
    let contract = AssetContract::from_canonical_bytes(s(&v["position"], "contract").as_bytes())
        .expect("canonical");
    let AssetClass::LendingPosition(terms) = contract.class.clone() else {
        panic!("a lending_position contract");
    };
    (contract, *terms)
}

fn escrow(v: &Value) -> Escrow {
    let (_, terms) = terms(v);
    let position: AssetId = s(&v["position"], "asset_id").parse().expect("asset id");
    Escrow::new(position, &terms).expect("valid terms")
}

#[test]
fn keys_match_their_secrets() {
    let v = vectors();
    for (name, k) in v["keys"].as_object().expect("keys") {
        let secret: [u8; 32] = bytes(k, "secret_key").try_into().expect("32 bytes");
        let kp = Keypair::from_seckey_byte_array(SECP256K1, secret).expect("valid");
        assert_eq!(kp.x_only_public_key().0, key(k, "xonly"), "{name}");
    }
}

#[test]
fn escrow_scripts_build_and_parse_back() {
    let v = vectors();
    for case in v["escrow_scripts"].as_array().expect("cases") {
        let params = EscrowParams {
            position: s(case, "position").parse().expect("asset id"),
            lender: key(case, "lender"),
            borrower: key(case, "borrower"),
            grace_end_height: u32::try_from(case["grace_end_height"].as_u64().expect("height"))
                .expect("u32"),
        };
        let script = escrow_script(&params);
        assert_eq!(
            hex::encode(&script),
            s(case, "script_hex"),
            "{}",
            s(case, "name")
        );
        assert_eq!(
            disassemble(&script),
            s(case, "script_asm"),
            "{}",
            s(case, "name")
        );
        assert_eq!(
            parse_escrow_script(&script),
            Some(params),
            "{}",
            s(case, "name")
        );
    }
    for case in v["not_escrow_scripts"].as_array().expect("cases") {
        assert_eq!(
            parse_escrow_script(&bytes(case, "script_hex")),
            None,
            "{}",
            s(case, "name")
        );
    }
}

#[test]
fn the_grace_end_is_maturity_plus_grace_and_a_height() {
    let v = vectors();
    let (_, mut terms) = terms(&v);
    for case in v["grace_end"].as_array().expect("cases") {
        terms.maturity_height =
            u32::try_from(case["maturity_height"].as_u64().expect("n")).expect("u32");
        terms.grace_period_blocks =
            u32::try_from(case["grace_period_blocks"].as_u64().expect("n")).expect("u32");
        match case.get("grace_end_height") {
            Some(h) => assert_eq!(
                grace_end_height(&terms).map(u64::from),
                Ok(h.as_u64().expect("n"))
            ),
            None => assert!(matches!(
                grace_end_height(&terms),
                Err(LendingError::GraceEnd { .. })
            )),
        }
    }
}

#[test]
fn the_loans_escrow_follows_from_its_position_and_terms() {
    let v = vectors();
    let (contract, terms) = terms(&v);
    assert_eq!(s(&v["position"], "class"), "lending_position");
    assert!(!contract.reissuable);
    assert_eq!(contract.precision, 0);
    let issuance = Issuance {
        kind: IssuanceKind::New {
            contract: s(&v["position"], "contract").as_bytes().to_vec(),
        },
        amount: settle_assets::Amount::ONE,
        signature: None,
    };
    let outpoint: OutPoint = s(&v["position"], "issuing_outpoint")
        .parse()
        .expect("outpoint");
    assert_eq!(
        issuance.asset_id(&outpoint).to_string(),
        s(&v["position"], "asset_id")
    );
    let e = escrow(&v);
    let ev = &v["escrow"];
    assert_eq!(
        u64::from(e.params.grace_end_height),
        ev["grace_end_height"].as_u64().expect("n")
    );
    assert_eq!(
        u64::from(grace_end_height(&terms).expect("valid")),
        ev["grace_end_height"].as_u64().expect("n")
    );
    assert_eq!(hex::encode(&e.script), s(ev, "script_hex"));
    assert_eq!(disassemble(&e.script), s(ev, "script_asm"));
    assert_eq!(hex::encode(&e.script_pubkey), s(ev, "script_pubkey_hex"));
    assert_eq!(
        hex::encode(serialize(&e.return_output)),
        s(ev, "return_output_hex")
    );
    let address =
        settle_script::Address::parse_for(s(ev, "address_dev"), settle_script::Network::Dev)
            .expect("a dev address");
    assert_eq!(address.script_pubkey(), e.script_pubkey);
}

#[test]
fn the_opening_layout_and_its_defects() {
    let v = vectors();
    let (_, terms) = terms(&v);
    let o = &v["opening"];
    let opening = tx(o, "tx_hex");
    assert_eq!(opening.txid().to_string(), s(o, "txid"));
    let layout = check_opening(&opening, &terms).expect("well formed");
    let l = &o["layout"];
    assert_eq!(layout.position.to_string(), s(l, "position"));
    let n = |k: &str| usize::try_from(l[k].as_u64().expect("index")).expect("small");
    assert_eq!(
        (
            layout.issuance_input,
            layout.delivery,
            layout.escrow,
            layout.position_output
        ),
        (
            n("issuance_input"),
            n("delivery"),
            n("escrow"),
            n("position_output")
        )
    );
    assert_eq!(layout.fee.map(|f| f as u64), l["fee"].as_u64());
    for case in v["opening_defects"].as_array().expect("cases") {
        let got = check_opening(&tx(case, "tx_hex"), &terms).expect_err(s(case, "name"));
        assert_eq!(got.name(), s(case, "error"), "{}: {got}", s(case, "name"));
    }
}

#[test]
fn the_return_presignature() {
    let v = vectors();
    let chain = chain_id(&v);
    let e = escrow(&v);
    let r = &v["return_presignature"];
    let outpoint: OutPoint = s(r, "escrow_outpoint").parse().expect("outpoint");
    let output: TxOut = deserialize(&bytes(r, "escrow_output_hex")).expect("output");
    let skeleton = e.return_skeleton(outpoint);
    assert_eq!(hex::encode(serialize(&skeleton)), s(r, "skeleton_hex"));
    assert_eq!(skeleton.expiry_height, e.params.grace_end_height);
    assert_eq!(skeleton.outputs[0], e.return_output);
    let digest = e.return_digest(chain, outpoint, &output).expect("digest");
    assert_eq!(hex::encode(digest), s(r, "digest"));
    let sig = bytes(r, "signature");
    assert_eq!(sig.last(), Some(&RETURN_HASH_TYPE.to_byte()));
    e.verify_return(chain, outpoint, &output, &sig)
        .expect("the vector's pre-signature verifies");
    // It binds the chain, the coin and its amount.
    assert!(
        e.verify_return(ChainId([0; 32]), outpoint, &output, &sig)
            .is_err()
    );
    let mut other = outpoint;
    other.vout += 1;
    assert!(e.verify_return(chain, other, &output, &sig).is_err());
    let mut more = output.clone();
    more.amount = settle_assets::Amount::from_units(more.amount.units() + 1).expect("in range");
    assert!(e.verify_return(chain, outpoint, &more, &sig).is_err());
    // The wrong hash type is refused before any digest.
    let mut all = sig.clone();
    all.pop();
    assert_eq!(
        e.verify_return(chain, outpoint, &output, &all),
        Err(LendingError::ReturnSignatureType)
    );
    // A fresh signature by the lender verifies too (BIP340 with auxiliary randomness).
    let lender_secret: [u8; 32] = bytes(&v["keys"]["lender"], "secret_key")
        .try_into()
        .expect("32");
    let lender = Keypair::from_seckey_byte_array(SECP256K1, lender_secret).expect("valid");
    let fresh = e
        .sign_return(chain, outpoint, &output, &lender)
        .expect("signable");
    e.verify_return(chain, outpoint, &output, &fresh)
        .expect("verifies");
}

#[test]
fn every_spend_of_the_escrow_coin() {
    let v = vectors();
    let chain = chain_id(&v);
    let mut seen_ok = 0;
    for case in v["spends"].as_array().expect("cases") {
        let name = s(case, "name");
        let t = tx(case, "tx_hex");
        let spent: Vec<TxOut> = case["spent_hex"]
            .as_array()
            .expect("list")
            .iter()
            .map(|h| {
                deserialize(&hex::decode(h.as_str().expect("hex")).expect("hex")).expect("output")
            })
            .collect();
        let got = verify_transaction(&t, &spent, chain);
        match &case["expected"] {
            Value::String(ok) if ok == "OK" => {
                got.unwrap_or_else(|e| panic!("{name}: {e}"));
                seen_ok += 1;
            }
            expected => {
                let e = got.expect_err(name);
                assert_eq!(
                    e.input as u64,
                    expected["input"].as_u64().expect("input"),
                    "{name}"
                );
                assert_eq!(
                    Some(e.error),
                    ScriptError::from_name(s(expected, "error")),
                    "{name}: {e}"
                );
            }
        }
        let path = classify_escrow_witness(&t.inputs[0].witness).map(|(p, _)| p.name());
        assert_eq!(path, case["path"].as_str(), "{name}");
    }
    assert!(seen_ok >= 3);
    // The three paths appear among the valid spends.
    let ok_paths: Vec<&str> = v["spends"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| c["expected"] == "OK")
        .filter_map(|c| c["path"].as_str())
        .collect();
    for p in [
        EscrowPath::Return,
        EscrowPath::Agreement,
        EscrowPath::Default,
    ] {
        assert!(ok_paths.contains(&p.name()), "{ok_paths:?}");
    }
}
