//! Checks the VM against `spec/vectors/script_cases.json`.

mod common;

use std::collections::BTreeSet;

use common::*;
use settle_script::{PrecomputedTx, ScriptError, verify_input};

fn load() -> ScriptVectors {
    let path = vectors_dir().join("script_cases.json");
    let text = std::fs::read_to_string(&path).expect("script_cases.json is readable");
    serde_json::from_str(&text).expect("script_cases.json parses")
}

#[test]
fn every_script_case_gives_its_expected_result() {
    let vectors = load();
    let ctx = &vectors.context;
    let mut mismatches = Vec::new();
    for case in &vectors.cases {
        let (tx, spent) = case_transaction(ctx, case);
        let cache =
            PrecomputedTx::new(&tx, &spent, ctx.chain_id).expect("one spent output per input");
        let got = match verify_input(&cache, 0) {
            Ok(()) => "OK",
            Err(e) => e.name(),
        };
        if got != case.expected {
            mismatches.push(format!(
                "{:?}: expected {}, got {got}",
                case.name, case.expected
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn vectors_cover_every_script_error_and_are_well_formed() {
    let vectors = load();
    assert!(
        vectors.cases.len() >= 60,
        "only {} cases",
        vectors.cases.len()
    );
    let mut names = BTreeSet::new();
    for case in &vectors.cases {
        assert!(
            names.insert(case.name.clone()),
            "duplicate case name {:?}",
            case.name
        );
        assert!(
            case.expected == "OK" || case.expected.parse::<ScriptError>().is_ok(),
            "{:?}: unknown expected result {:?}",
            case.name,
            case.expected
        );
    }
    let expected: BTreeSet<&str> = vectors.cases.iter().map(|c| c.expected.as_str()).collect();
    assert!(expected.contains("OK"));
    // Every error the VM can give for one input; INPUT_INDEX and SPENT_COUNT are about
    // how the API is called and cannot arise from a case.
    for e in ScriptError::ALL {
        if matches!(e, ScriptError::InputIndex | ScriptError::SpentCount) {
            continue;
        }
        assert!(
            expected.contains(e.name()),
            "no vector expects {}",
            e.name()
        );
    }
}

#[test]
fn context_keys_are_the_documented_secret_keys() {
    let vectors = load();
    for (i, key) in vectors.context.keys.iter().enumerate() {
        let secret: [u8; 32] = hex_decode(&key.secret_key).try_into().expect("32 bytes");
        let kp = secp256k1::Keypair::from_seckey_byte_array(secp256k1::SECP256K1, secret)
            .expect("valid secret");
        assert_eq!(
            hex::encode(kp.x_only_public_key().0.serialize()),
            key.xonly,
            "key {}",
            i + 1
        );
    }
}

#[test]
fn witness_data_is_not_committed_by_signatures() {
    // Re-running a signed case with an extra witness item below the signature changes
    // only the clean-stack outcome, never the signature check (the digest ignores
    // witnesses); and removing it again restores OK.
    let vectors = load();
    let ctx = &vectors.context;
    let case = vectors
        .cases
        .iter()
        .find(|c| c.name == "p2k: signature ALL (64 bytes)")
        .expect("case present");
    let (mut tx, spent) = case_transaction(ctx, case);
    tx.inputs[0].witness.0.insert(0, vec![1]);
    let cache = PrecomputedTx::new(&tx, &spent, ctx.chain_id).expect("counts");
    assert_eq!(verify_input(&cache, 0), Err(ScriptError::Cleanstack));
    tx.inputs[0].witness.0.remove(0);
    let cache = PrecomputedTx::new(&tx, &spent, ctx.chain_id).expect("counts");
    assert_eq!(verify_input(&cache, 0), Ok(()));
}
