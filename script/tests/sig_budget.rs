//! The signature-check budget (`spec/script.md`, "Signature-check budget"): every
//! template the project builds stays within it, with room to spare even when every
//! signature slot is filled, and the amplifying script an attacker would write does not.

mod common;

use common::*;
use settle_assets::{AssetId, ChainId, OutPoint, Transaction, TxIn, TxOut, Txid, Witness};
use settle_script::lending::{EscrowParams, escrow_claim_witness, escrow_script};
use settle_script::limits::{BYTES_PER_SIG_CHECK, MAX_MULTISIG_KEYS, SIG_BYTES};
use settle_script::{
    InputError, PrecomputedTx, ScriptError, SighashType, assemble, htlc_claim_witness,
    htlc_refund_witness, htlc_script, multisig_script, multisig_witness, p2k, p2k_witness, p2sh,
    sig_check_budget, sign_script_input, verify_transaction,
};

const CHAIN: ChainId = ChainId([0x5b; 32]);

/// The smallest signature a witness can carry (hash type ALL): the worst case for the
/// budget, which grows with the witness.
fn small_sig() -> Vec<u8> {
    vec![0x55; SIG_BYTES]
}

/// Key `i` of the test keys 1..=255.
fn key_index(i: usize) -> u8 {
    u8::try_from(i).expect("at most 20 keys")
}

fn keys(n: usize) -> Vec<secp256k1::XOnlyPublicKey> {
    (1..=n).map(|i| xonly(key_index(i))).collect()
}

#[test]
fn pay_to_key_gets_its_one_check() {
    assert!(sig_check_budget(&p2k_witness(small_sig()).0) >= 1);
}

#[test]
fn every_multisig_with_every_slot_signed_is_within_budget() {
    for n in 1..=MAX_MULTISIG_KEYS {
        for m in 1..=n {
            let script = multisig_script(m, &keys(n)).expect("valid m-of-n");
            // A signer may fill every slot, not only m: each filled slot is checked.
            let witness = multisig_witness(vec![Some(small_sig()); n], &script);
            let budget = sig_check_budget(&witness.0);
            assert!(budget >= n, "{m}-of-{n}: budget {budget} < {n} checks");
        }
    }
}

#[test]
fn htlc_and_lending_escrow_paths_are_within_budget() {
    let script = htlc_script([7; 32], &xonly(1), &xonly(2), 1_000);
    let claim = htlc_claim_witness(small_sig(), vec![9; 32], &script);
    assert!(sig_check_budget(&claim.0) >= 1);
    assert!(sig_check_budget(&htlc_refund_witness(small_sig(), &script).0) >= 1);

    let params = EscrowParams {
        position: AssetId([0x70; 32]),
        lender: xonly(1),
        borrower: xonly(2),
        grace_end_height: 1_000,
    };
    let escrow = escrow_script(&params);
    // Cooperative branch: two checks (the return and agreement witnesses have the same
    // stack; the return's pre-signature is 65 bytes, so this is the tighter one).
    let agreement =
        settle_script::lending::escrow_agreement_witness(small_sig(), small_sig(), &escrow);
    assert!(sig_check_budget(&agreement.0) >= 2);
    assert!(sig_check_budget(&escrow_claim_witness(small_sig(), &escrow).0) >= 1);
}

/// One input spending `script_pubkey`, one output; the witness is built by `witness`
/// from the unsigned transaction.
fn spend(
    script_pubkey: Vec<u8>,
    witness: impl FnOnce(&PrecomputedTx<'_>) -> Witness,
) -> Result<(), InputError> {
    let spent = vec![TxOut {
        asset: AssetId([0xa5; 32]),
        amount: units(1_000),
        script_pubkey,
    }];
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn::spending(OutPoint::new(Txid([0x11; 32]), 0))],
        outputs: vec![TxOut {
            asset: AssetId([0xa5; 32]),
            amount: units(1_000),
            script_pubkey: p2k(&xonly(9)),
        }],
        lock_time: 0,
        expiry_height: 0,
    };
    let cache = PrecomputedTx::new(&tx, &spent, CHAIN).expect("one spent output");
    let w = witness(&cache);
    tx.inputs[0].witness = w;
    verify_transaction(&tx, &spent, CHAIN)
}

#[test]
fn twenty_of_twenty_multisig_verifies_with_real_signatures() {
    let n = MAX_MULTISIG_KEYS;
    let script = multisig_script(n, &keys(n)).expect("20-of-20");
    let result = spend(p2sh(&script), |cache| {
        let slots = (1..=n)
            .map(|i| {
                sign_script_input(cache, 0, &script, &keypair(key_index(i)), SighashType::All).ok()
            })
            .collect();
        multisig_witness(slots, &script)
    });
    assert_eq!(result, Ok(()));
}

#[test]
fn duplicating_one_signature_is_refused_past_the_budget() {
    // The amplifier: one signature and key in the witness, checked 100 times.
    let amplifier = assemble(&format!(
        "{}OP_CHECKSIG",
        "OP_2DUP OP_CHECKSIGVERIFY ".repeat(99)
    ))
    .expect("asm");
    let key = xonly(1).serialize().to_vec();
    let result = spend(p2sh(&amplifier), |cache| {
        let sig =
            sign_script_input(cache, 0, &amplifier, &keypair(1), SighashType::All).expect("sign");
        Witness(vec![sig, key, amplifier.clone()])
    });
    let witness_bytes = 1 + 65 + 33 + 3 + amplifier.len();
    let budget = (41 + witness_bytes) / BYTES_PER_SIG_CHECK;
    assert!(
        budget < 100,
        "the amplifier's 100 checks exceed its budget {budget}"
    );
    assert_eq!(
        result,
        Err(InputError {
            input: 0,
            error: ScriptError::SigCheckBudget
        })
    );
}
