//! Checks the PST code against `spec/vectors/pst.json`, so the spec and the code cannot
//! drift apart. The file is written by `cargo run -p settle-wallet --example pst_vectors`.
#![allow(clippy::panic)] // a test fails by panicking

mod common;

use serde_json::Value;
use settle_wallet::pst::Pst;

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/vectors/pst.json");
    let text = std::fs::read_to_string(path).expect("spec/vectors/pst.json is readable");
    serde_json::from_str(&text).expect("vectors are JSON")
}

fn list<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is a list"))
}

#[test]
fn valid_vectors_decode_to_their_meaning_and_reencode_exactly() {
    let v = vectors();
    let valid = list(&v, "valid");
    assert!(valid.len() >= 5);
    for case in valid {
        let name = case["name"].as_str().expect("name");
        let text = case["base64"].as_str().expect("base64");
        let pst = Pst::from_base64(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(pst.to_base64(), text, "{name}: re-encoding differs");
        assert_eq!(
            common::describe::describe(&pst),
            case["expected"],
            "{name}: decoded meaning differs"
        );
    }
}

#[test]
fn valid_vectors_say_what_the_spec_says() {
    // A few facts stated in spec/pst.md, checked against the data rather than the code.
    let v = vectors();
    let find = |name: &str| {
        list(&v, "valid")
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("vector {name}"))
            .clone()
    };
    let offer = find("dvp_offer")["expected"].clone();
    assert_eq!(
        offer["inputs"][0]["partial_sigs"][0]["hash_type"],
        "SINGLE|ANYONECANPAY"
    );
    assert_eq!(offer["inputs"][0]["partial_sigs"][0]["valid"], true);
    assert_eq!(offer["finalized"], false);
    let done = find("dvp_completed_finalized")["expected"].clone();
    assert_eq!(done["finalized"], true);
    assert_eq!(done["balanced"], true);
    assert_eq!(done["extracted"]["txid"], done["txid"]);
    // The maker's signature is the same one in the offer and in the completed PST.
    assert_eq!(
        done["inputs"][0]["partial_sigs"][0]["signature"],
        offer["inputs"][0]["partial_sigs"][0]["signature"]
    );
    let ms = find("multisig_one_of_two")["expected"].clone();
    assert_eq!(ms["missing"][0]["missing"], "signatures");
    assert_eq!(ms["missing"][0]["have"], 1);
    assert_eq!(ms["missing"][0]["need"], 2);
    let htlc = find("htlc_claim_ready")["expected"].clone();
    assert_eq!(htlc["missing"], Value::Array(vec![]));
    let unknown = find("unknown_entries")["expected"].clone();
    assert_eq!(unknown["unknown"][0]["key"], "fc01");
    assert_eq!(unknown["inputs"][0]["unknown"][0]["key"], "4201");
    assert_eq!(unknown["outputs"][0]["unknown"][0]["key"], "99");
}

#[test]
fn invalid_vectors_fail_with_their_named_error() {
    let v = vectors();
    let invalid = list(&v, "invalid");
    assert!(invalid.len() >= 15);
    for case in invalid {
        let name = case["name"].as_str().expect("name");
        let bytes = hex::decode(case["hex"].as_str().expect("hex")).expect("hex decodes");
        let err = Pst::deserialize(&bytes).expect_err(name);
        assert_eq!(err.name(), case["error"], "{name}: {err}");
        assert_eq!(err.to_string(), case["message"], "{name}");
        // Error messages are lowercase sentences naming what was wrong.
        let msg = err.to_string();
        assert!(
            msg.chars().next().is_some_and(|c| !c.is_uppercase()),
            "{name}: {msg}"
        );
    }
    for case in list(&v, "invalid_base64") {
        let err = Pst::from_base64(case["text"].as_str().expect("text")).expect_err("invalid");
        assert_eq!(err.name(), case["error"]);
    }
}
