//! The standard scripts end to end with real signatures: a hashed timelock contract
//! (claim and refund) and a 2-of-3 multisig, both pay-to-script-hash; plus the program
//! forms (pay-to-key, burn, reserved, bare, null inputs).

mod common;

use common::*;
use settle_assets::transaction::SEQUENCE_FINAL;
use settle_assets::{
    Amount, AssetId, ChainId, Issuance, IssuanceKind, OutPoint, Transaction, TxIn, TxOut, Txid,
    Witness,
};
use settle_script::sighash::sha256;
use settle_script::{
    InputError, PrecomputedTx, ScriptError, ScriptKind, SighashType, burn_script, classify,
    htlc_claim_witness, htlc_refund_witness, htlc_script, multisig_script, multisig_witness, p2k,
    p2sh, sign_script_input, verify_input, verify_transaction,
};

const CHAIN: ChainId = ChainId([0x77; 32]);
const RECIPIENT: u8 = 0x21;
const REFUND: u8 = 0x22;
const TIMEOUT: u32 = 1_500;
const PREIMAGE: &[u8] = b"the secret that settles the other leg";

/// A transaction spending one coin locked by `script_pubkey` to one output.
fn spend(script_pubkey: Vec<u8>, lock_time: u32, sequence: u32) -> (Transaction, Vec<TxOut>) {
    let tx = Transaction {
        version: 1,
        inputs: vec![TxIn {
            sequence,
            ..TxIn::spending(OutPoint::new(Txid([0x31; 32]), 2))
        }],
        outputs: vec![TxOut {
            asset: AssetId([9; 32]),
            amount: units(5),
            script_pubkey: p2k(&xonly(3)),
        }],
        lock_time,
        expiry_height: 0,
    };
    let spent = vec![TxOut {
        asset: AssetId([9; 32]),
        amount: units(5),
        script_pubkey,
    }];
    (tx, spent)
}

fn sign(tx: &Transaction, spent: &[TxOut], script: &[u8], key: u8) -> Vec<u8> {
    let cache = PrecomputedTx::new(tx, spent, CHAIN).expect("counts");
    sign_script_input(&cache, 0, script, &keypair(key), SighashType::All).expect("signable")
}

fn check(tx: &Transaction, spent: &[TxOut]) -> Result<(), ScriptError> {
    verify_transaction(tx, spent, CHAIN).map_err(|e| e.error)
}

fn htlc() -> Vec<u8> {
    htlc_script(sha256(PREIMAGE), &xonly(RECIPIENT), &xonly(REFUND), TIMEOUT)
}

#[test]
fn htlc_claim_with_the_preimage() {
    let script = htlc();
    let (mut tx, spent) = spend(p2sh(&script), 0, SEQUENCE_FINAL);
    let sig = sign(&tx, &spent, &script, RECIPIENT);
    tx.inputs[0].witness = htlc_claim_witness(sig.clone(), PREIMAGE.to_vec(), &script);
    assert_eq!(check(&tx, &spent), Ok(()));

    tx.inputs[0].witness = htlc_claim_witness(sig, b"a guess".to_vec(), &script);
    assert_eq!(check(&tx, &spent), Err(ScriptError::EqualVerify));

    // The refund key cannot claim even with the preimage.
    let sig = sign(&tx, &spent, &script, REFUND);
    tx.inputs[0].witness = htlc_claim_witness(sig, PREIMAGE.to_vec(), &script);
    assert_eq!(check(&tx, &spent), Err(ScriptError::SigInvalid));
}

#[test]
fn htlc_refund_only_after_the_timeout() {
    let script = htlc();
    for (lock_time, sequence, expected) in [
        (TIMEOUT, 0, Ok(())),
        (TIMEOUT + 100, SEQUENCE_FINAL - 1, Ok(())),
        (TIMEOUT - 1, 0, Err(ScriptError::UnsatisfiedLocktime)),
        (
            TIMEOUT,
            SEQUENCE_FINAL,
            Err(ScriptError::UnsatisfiedLocktime),
        ),
        (600_000_000, 0, Err(ScriptError::UnsatisfiedLocktime)),
    ] {
        let (mut tx, spent) = spend(p2sh(&script), lock_time, sequence);
        let sig = sign(&tx, &spent, &script, REFUND);
        tx.inputs[0].witness = htlc_refund_witness(sig, &script);
        assert_eq!(
            check(&tx, &spent),
            expected,
            "lock time {lock_time}, sequence {sequence:#x}"
        );
        // The node's finality check agrees: only a final transaction can be mined.
        if expected.is_ok() {
            assert!(settle_script::is_final(&tx, lock_time + 1, 0));
            assert!(!settle_script::is_final(&tx, lock_time, 0));
        }
    }
    // The recipient cannot take the refund branch.
    let (mut tx, spent) = spend(p2sh(&script), TIMEOUT, 0);
    let sig = sign(&tx, &spent, &script, RECIPIENT);
    tx.inputs[0].witness = htlc_refund_witness(sig, &script);
    assert_eq!(check(&tx, &spent), Err(ScriptError::SigInvalid));
}

#[test]
fn two_of_three_multisig() {
    let keys = [xonly(1), xonly(2), xonly(3)];
    let script = multisig_script(2, &keys).expect("2-of-3");
    let (tx, spent) = spend(p2sh(&script), 0, SEQUENCE_FINAL);
    let s: Vec<Vec<u8>> = (1..=3).map(|k| sign(&tx, &spent, &script, k)).collect();
    let with = |slots: Vec<Option<Vec<u8>>>| {
        let mut t = tx.clone();
        t.inputs[0].witness = multisig_witness(slots, &script);
        check(&t, &spent)
    };
    let (a, b, c) = (Some(s[0].clone()), Some(s[1].clone()), Some(s[2].clone()));
    assert_eq!(with(vec![a.clone(), b.clone(), None]), Ok(()));
    assert_eq!(with(vec![a.clone(), None, c.clone()]), Ok(()));
    assert_eq!(with(vec![None, b.clone(), c.clone()]), Ok(()));
    assert_eq!(with(vec![a.clone(), b.clone(), c.clone()]), Ok(()));
    assert_eq!(
        with(vec![a.clone(), None, None]),
        Err(ScriptError::EvalFalse)
    );
    assert_eq!(with(vec![None, None, None]), Err(ScriptError::EvalFalse));
    assert_eq!(
        with(vec![b.clone(), a.clone(), None]),
        Err(ScriptError::SigInvalid),
        "slots swapped"
    );
    // A signature by a fourth key in any slot.
    let outsider = Some(sign(&tx, &spent, &script, 4));
    assert_eq!(
        with(vec![a.clone(), b, outsider]),
        Err(ScriptError::SigInvalid)
    );
    // A witness script for other keys does not match the program.
    let other = multisig_script(2, &[xonly(1), xonly(2), xonly(4)]).expect("2-of-3");
    let mut t = tx.clone();
    t.inputs[0].witness = multisig_witness(vec![a, None, c], &other);
    assert_eq!(check(&t, &spent), Err(ScriptError::WitnessProgramMismatch));
}

#[test]
fn program_forms() {
    // Pay-to-key, signed with each hash type.
    for t in SighashType::ALL_TYPES {
        let (mut tx, spent) = spend(p2k(&xonly(5)), 0, SEQUENCE_FINAL);
        let cache = PrecomputedTx::new(&tx, &spent, CHAIN).expect("counts");
        tx.inputs[0].witness =
            settle_script::sign_p2k_input(&cache, 0, &keypair(5), t).expect("signs");
        assert_eq!(check(&tx, &spent), Ok(()), "{t}");
        assert_eq!(
            tx.inputs[0].witness.0[0].len(),
            if t == SighashType::All { 64 } else { 65 }
        );
    }
    // Burns, reserved versions and empty witnesses.
    type Case = (Vec<u8>, Vec<Vec<u8>>, Result<(), ScriptError>);
    let cases: Vec<Case> = vec![
        (
            burn_script(b"retired"),
            vec![vec![1]],
            Err(ScriptError::Unspendable),
        ),
        (
            vec![0x52, 0x02, 0xaa, 0xbb],
            vec![vec![1]],
            Err(ScriptError::UnknownProgramVersion),
        ),
        (p2k(&xonly(5)), vec![], Err(ScriptError::WitnessEmpty)),
        (p2sh(&[0x51]), vec![], Err(ScriptError::WitnessEmpty)),
        (p2sh(&[0x51]), vec![vec![0x51]], Ok(())),
        (vec![0x51], vec![], Ok(())),
        (vec![], vec![vec![1]], Ok(())),
    ];
    for (script_pubkey, witness, expected) in cases {
        let (mut tx, spent) = spend(script_pubkey.clone(), 0, SEQUENCE_FINAL);
        tx.inputs[0].witness = Witness(witness);
        assert_eq!(
            check(&tx, &spent),
            expected,
            "{}",
            settle_script::disassemble(&script_pubkey)
        );
    }
    assert_eq!(classify(&burn_script(b"")), ScriptKind::Burn);
}

#[test]
fn null_inputs_are_not_script_checked() {
    let (mut tx, mut spent) = spend(p2k(&xonly(5)), 0, SEQUENCE_FINAL);
    let cache = PrecomputedTx::new(&tx, &spent, CHAIN).expect("counts");
    let witness =
        settle_script::sign_p2k_input(&cache, 0, &keypair(5), SighashType::All).expect("signs");
    tx.inputs.push(TxIn {
        prevout: OutPoint::NULL,
        sequence: SEQUENCE_FINAL,
        issuance: Some(Issuance {
            kind: IssuanceKind::New {
                contract: b"{}".to_vec(),
            },
            amount: Amount::from_units(1).expect("in range"),
            signature: None,
        }),
        witness: Witness::default(),
    });
    spent.push(TxOut::NONE);
    // Input 0 was signed before the issuance input was added: ALL covers all inputs.
    tx.inputs[0].witness = witness;
    assert_eq!(
        verify_transaction(&tx, &spent, CHAIN),
        Err(InputError {
            input: 0,
            error: ScriptError::SigInvalid
        })
    );
    let cache = PrecomputedTx::new(&tx, &spent, CHAIN).expect("counts");
    tx.inputs[0].witness =
        settle_script::sign_p2k_input(&cache, 0, &keypair(5), SighashType::All).expect("signs");
    assert_eq!(verify_transaction(&tx, &spent, CHAIN), Ok(()));
    let cache = PrecomputedTx::new(&tx, &spent, CHAIN).expect("counts");
    assert_eq!(verify_input(&cache, 1), Ok(()), "the null input passes");
    assert_eq!(verify_input(&cache, 2), Err(ScriptError::InputIndex));
    assert!(matches!(
        settle_script::sign_p2k_input(&cache, 1, &keypair(5), SighashType::All),
        Err(settle_script::SignError::NullInput { input: 1 })
    ));
    // The issuer signs the issuance digest.
    let sig = settle_script::sign_issuance(&cache, 1, &keypair(9)).expect("signs");
    let digest = settle_script::issuance_digest(&cache, 1).expect("in range");
    assert_eq!(
        settle_script::verify_issuance_signature(&digest, &sig, &xonly(9).serialize()),
        Ok(())
    );
    assert_eq!(
        settle_script::verify_issuance_signature(&digest, &sig, &xonly(8).serialize()),
        Err(ScriptError::SigInvalid)
    );
}
