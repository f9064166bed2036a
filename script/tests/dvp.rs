//! A delivery-versus-payment trade at library level: Alice offers 1,000.00 EUR for
//! 10 BOND by signing her input with SINGLE|ANYONECANPAY, bound to the output that pays
//! her the bonds; Bob completes the transaction and signs ALL. Then every way of
//! cheating the offer is tried and must fail for the right reason.

mod common;

use common::*;
use settle_assets::conservation::ConservationError;
use settle_assets::{
    AssetId, ChainId, OutPoint, Transaction, TxIn, TxOut, Txid, check_conservation,
};
use settle_script::{
    InputError, PrecomputedTx, ScriptError, SighashType, p2k, sign_p2k_input, verify_transaction,
};

const CHAIN: ChainId = ChainId([0xc1; 32]);
const ALICE: u8 = 0xa1;
const BOB: u8 = 0xb0;

fn eur() -> AssetId {
    AssetId([0xe0; 32])
}
fn bond() -> AssetId {
    AssetId([0xb0; 32])
}

/// 1,000.00 EUR (precision 2) in Alice's coin; 10 BOND (precision 0) in Bob's.
const EUR_UNITS: u64 = 100_000;
const BOND_UNITS: u64 = 10;

fn alice_coin() -> (OutPoint, TxOut) {
    (
        OutPoint::new(Txid([0x0a; 32]), 0),
        TxOut {
            asset: eur(),
            amount: units(EUR_UNITS),
            script_pubkey: p2k(&xonly(ALICE)),
        },
    )
}

fn bob_coin() -> (OutPoint, TxOut) {
    (
        OutPoint::new(Txid([0x0b; 32]), 3),
        TxOut {
            asset: bond(),
            amount: units(BOND_UNITS),
            script_pubkey: p2k(&xonly(BOB)),
        },
    )
}

fn bonds_to_alice() -> TxOut {
    TxOut {
        asset: bond(),
        amount: units(BOND_UNITS),
        script_pubkey: p2k(&xonly(ALICE)),
    }
}

fn eur_to_bob() -> TxOut {
    TxOut {
        asset: eur(),
        amount: units(EUR_UNITS),
        script_pubkey: p2k(&xonly(BOB)),
    }
}

/// Alice's offer: her input 0 and output 0, signed SINGLE|ANYONECANPAY.
fn alice_offer() -> Transaction {
    let (op, coin) = alice_coin();
    let mut offer = Transaction {
        version: 1,
        inputs: vec![TxIn::spending(op)],
        outputs: vec![bonds_to_alice()],
        lock_time: 0,
        expiry_height: 500,
    };
    let spent = [coin];
    let cache = PrecomputedTx::new(&offer, &spent, CHAIN).expect("one spent output");
    offer.inputs[0].witness =
        sign_p2k_input(&cache, 0, &keypair(ALICE), SighashType::SingleAnyoneCanPay)
            .expect("Alice signs her own coin");
    assert_eq!(
        offer.inputs[0].witness.0[0].len(),
        65,
        "explicit hash type byte"
    );
    offer
}

/// Bob signs his input(s) with ALL.
fn bob_signs(tx: &mut Transaction, spent: &[TxOut], bob_inputs: &[usize]) {
    for &i in bob_inputs {
        let cache = PrecomputedTx::new(tx, spent, CHAIN).expect("counts");
        let witness =
            sign_p2k_input(&cache, i, &keypair(BOB), SighashType::All).expect("Bob signs");
        tx.inputs[i].witness = witness;
    }
}

/// Bob completes the offer: adds his bond input and the EUR output to himself.
fn completed() -> (Transaction, Vec<TxOut>) {
    let mut tx = alice_offer();
    let (bop, bcoin) = bob_coin();
    tx.inputs.push(TxIn::spending(bop));
    tx.outputs.push(eur_to_bob());
    let spent = vec![alice_coin().1, bcoin];
    bob_signs(&mut tx, &spent, &[1]);
    (tx, spent)
}

fn err(input: usize, error: ScriptError) -> Result<(), InputError> {
    Err(InputError { input, error })
}

#[test]
fn completed_trade_verifies_and_conserves() {
    let (tx, spent) = completed();
    assert_eq!(verify_transaction(&tx, &spent, CHAIN), Ok(()));
    let flows = check_conservation(&tx, &spent).expect("balanced");
    assert_eq!(flows[&eur()].outputs, u128::from(EUR_UNITS));
    assert_eq!(flows[&bond()].outputs, u128::from(BOND_UNITS));
    assert_eq!(
        tx.inputs[1].witness.0[0].len(),
        64,
        "ALL is the 64-byte form"
    );
    // Bob's signature of the final transaction covers everything: taking his input
    // out of context breaks it.
    let mut no_expiry = tx.clone();
    no_expiry.expiry_height = 0;
    assert_eq!(
        verify_transaction(&no_expiry, &spent, CHAIN),
        err(0, ScriptError::SigInvalid)
    );
}

#[test]
fn changing_alices_bound_output_breaks_her_signature() {
    type Edit = fn(&mut TxOut);
    let edits: [(&str, Edit); 4] = [
        ("amount", |o| o.amount = units(BOND_UNITS - 1)),
        ("asset", |o| o.asset = AssetId([0xbb; 32])),
        ("script", |o| o.script_pubkey = p2k(&xonly(BOB))),
        ("script (burn)", |o| {
            o.script_pubkey = settle_script::burn_script(b"")
        }),
    ];
    for (what, edit) in edits {
        let (mut tx, spent) = completed();
        edit(&mut tx.outputs[0]);
        bob_signs(&mut tx, &spent, &[1]); // Bob re-signs his own input: no help.
        assert_eq!(
            verify_transaction(&tx, &spent, CHAIN),
            err(0, ScriptError::SigInvalid),
            "{what}"
        );
    }
}

#[test]
fn moving_alices_output_to_another_index_fails() {
    // Outputs swapped: index 0 now pays Bob EUR, which Alice never agreed to.
    let (mut tx, spent) = completed();
    tx.outputs.swap(0, 1);
    bob_signs(&mut tx, &spent, &[1]);
    assert_eq!(
        verify_transaction(&tx, &spent, CHAIN),
        err(0, ScriptError::SigInvalid)
    );

    // Alice's input moved to index 1: it now binds output 1 (EUR to Bob).
    let offer = alice_offer();
    let (bop, bcoin) = bob_coin();
    let mut tx = Transaction {
        inputs: vec![TxIn::spending(bop), offer.inputs[0].clone()],
        outputs: vec![bonds_to_alice(), eur_to_bob()],
        ..offer.clone()
    };
    let spent = vec![bcoin.clone(), alice_coin().1];
    bob_signs(&mut tx, &spent, &[0]);
    assert_eq!(
        verify_transaction(&tx, &spent, CHAIN),
        err(1, ScriptError::SigInvalid)
    );

    // Alice's input at index 2 with only two outputs: there is nothing to bind.
    let (_, extra) = bob_coin();
    let mut tx = Transaction {
        inputs: vec![
            TxIn::spending(bop),
            TxIn::spending(OutPoint::new(Txid([0x0c; 32]), 0)),
            offer.inputs[0].clone(),
        ],
        outputs: vec![eur_to_bob(), bonds_to_alice()],
        ..offer
    };
    let spent = vec![bcoin, extra, alice_coin().1];
    bob_signs(&mut tx, &spent, &[0, 1]);
    assert_eq!(
        verify_transaction(&tx, &spent, CHAIN),
        err(2, ScriptError::SighashSingleNoOutput)
    );
}

#[test]
fn bob_taking_more_eur_than_offered_fails_conservation() {
    let (mut tx, spent) = completed();
    tx.outputs[1].amount = units(EUR_UNITS + 1);
    bob_signs(&mut tx, &spent, &[1]);
    // Every signature is valid: Alice's does not cover output 1, Bob re-signed.
    assert_eq!(verify_transaction(&tx, &spent, CHAIN), Ok(()));
    // The ledger's conservation rule stops him, naming the EUR asset.
    let e = check_conservation(&tx, &spent).expect_err("more EUR out than in");
    let ConservationError::Imbalance(list) = &e else {
        unreachable!("expected an imbalance, got {e:?}")
    };
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].asset, eur());
    assert_eq!((list[0].inputs, list[0].outputs), (100_000, 100_001));
    assert!(e.to_string().contains(&eur().to_string()), "{e}");
}

#[test]
fn replay_on_another_chain_fails() {
    let (tx, spent) = completed();
    let other = ChainId([0xc2; 32]);
    assert_eq!(
        verify_transaction(&tx, &spent, other),
        err(0, ScriptError::SigInvalid)
    );
}

#[test]
fn signing_helper_refuses_the_wrong_coin_or_key() {
    let (tx, spent) = completed();
    let cache = PrecomputedTx::new(&tx, &spent, CHAIN).expect("counts");
    assert!(matches!(
        sign_p2k_input(&cache, 0, &keypair(BOB), SighashType::All),
        Err(settle_script::SignError::WrongKey { input: 0 })
    ));
    assert!(matches!(
        sign_p2k_input(&cache, 5, &keypair(BOB), SighashType::All),
        Err(settle_script::SignError::Sighash {
            input: 5,
            error: ScriptError::InputIndex
        })
    ));
    assert_eq!(
        verify_transaction(&tx, &spent[..1], CHAIN),
        err(1, ScriptError::SpentCount)
    );
}
