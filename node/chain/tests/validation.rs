//! Transaction validation with real keys and signatures: every rejection code, and the
//! effects of valid transactions.
#![allow(clippy::panic)] // a test fails by panicking

mod common;

use std::collections::BTreeSet;

use common::*;
use settle_assets::amount::Amount;
use settle_assets::hash::{AssetId, Txid};
use settle_assets::transaction::{
    Issuance, IssuanceKind, OutPoint, Transaction, TxIn, TxOut, Witness,
};
use settle_chain::reject::CODES;
use settle_chain::{
    BlockError, MembershipChange, MembershipOp, RejectClass, Rejection, TxContext, TxEffects,
    membership_of, validate_block, validate_transaction,
};
use settle_script::templates::burn_script;

fn check(fx: &Fixture, tx: &Transaction) -> Result<TxEffects, Rejection> {
    validate_transaction(tx, &fx.state, &fx.ctx())
}

fn reject(fx: &Fixture, tx: &Transaction) -> Rejection {
    check(fx, tx).expect_err("the transaction must be rejected")
}

fn reject_at(fx: &Fixture, tx: &Transaction, ctx: &TxContext<'_>) -> Rejection {
    validate_transaction(tx, &fx.state, ctx).expect_err("the transaction must be rejected")
}

/// Alice spends her EUR coin with `edit` applied to the unsigned transaction, then signs.
fn alice_tx(fx: &Fixture, edit: impl FnOnce(&mut Transaction)) -> Transaction {
    let (outpoint, coin) = fx.coin(&fx.alice, fx.eur);
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn::spending(outpoint)],
        outputs: vec![pay(fx.eur, coin.output.amount.units(), &fx.bob)],
        lock_time: 0,
        expiry_height: 0,
    };
    edit(&mut tx);
    let signers: Vec<Option<&_>> = tx
        .inputs
        .iter()
        .map(|i| (!i.prevout.is_null()).then_some(&fx.alice))
        .collect();
    fx.sign_with(&mut tx, &signers, None, &[]);
    tx
}

/// A reissuance of `asset` on Alice's EUR coin: Alice signs the input, `issuer` (if
/// any) the issuance; the reissued units go to Alice.
fn reissue(
    fx: &Fixture,
    asset: AssetId,
    units: u64,
    issuer: Option<&common::Keypair>,
) -> Transaction {
    let (outpoint, coin) = fx.coin(&fx.alice, fx.eur);
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn {
            issuance: Some(Issuance {
                kind: IssuanceKind::Reissue { asset },
                amount: amount(units),
                signature: None,
            }),
            ..TxIn::spending(outpoint)
        }],
        outputs: vec![coin.output.clone(), pay(asset, units, &fx.alice)],
        lock_time: 0,
        expiry_height: 0,
    };
    fx.sign_with(&mut tx, &[Some(&fx.alice)], issuer, &[]);
    tx
}

/// Every case: its name, the rejection it gets.
fn all_rejections() -> Vec<(&'static str, Rejection)> {
    let mut fx = Fixture::new();
    let mut out = Vec::new();
    let mut add = |name: &'static str, r: Rejection| out.push((name, r));

    add(
        "bad version",
        reject(&fx, &alice_tx(&fx, |t| t.version = 3)),
    );
    add(
        "no inputs",
        reject(&fx, &alice_tx(&fx, |t| t.inputs.clear())),
    );
    add(
        "no outputs",
        reject(&fx, &alice_tx(&fx, |t| t.outputs.clear())),
    );
    add(
        "oversize",
        reject(
            &fx,
            &alice_tx(&fx, |t| {
                let big = TxOut {
                    asset: fx.eur,
                    amount: amount(1),
                    script_pubkey: vec![0x51; 10_000],
                };
                t.outputs = vec![big; 41];
            }),
        ),
    );
    add(
        "zero output",
        reject(
            &fx,
            &alice_tx(&fx, |t| t.outputs.push(pay(fx.eur, 0, &fx.bob))),
        ),
    );
    let mut zero_issuance = fx.new_issuance(
        &cash_contract(&fx.issuer, "USD", "USD"),
        5,
        &fx.bob,
        Some(&fx.issuer),
    );
    if let Some(i) = &mut zero_issuance.inputs[0].issuance {
        i.amount = Amount::ZERO;
    }
    add("zero issuance", reject(&fx, &zero_issuance));
    add(
        "duplicate input",
        reject(&fx, &alice_tx(&fx, |t| t.inputs.push(t.inputs[0].clone()))),
    );
    add(
        "null input without issuance",
        reject(
            &fx,
            &alice_tx(&fx, |t| t.inputs.push(TxIn::spending(OutPoint::NULL))),
        ),
    );
    let mut null_witness = fx.new_issuance(
        &cash_contract(&fx.issuer, "USD", "USD"),
        5,
        &fx.bob,
        Some(&fx.issuer),
    );
    null_witness.inputs[0].witness = Witness(vec![vec![1]]);
    add("null input with witness", reject(&fx, &null_witness));
    let mut bad_contract = fx.new_issuance(
        &cash_contract(&fx.issuer, "USD", "USD"),
        5,
        &fx.bob,
        Some(&fx.issuer),
    );
    if let Some(Issuance {
        kind: IssuanceKind::New { contract },
        ..
    }) = &mut bad_contract.inputs[0].issuance
    {
        contract.insert(1, b' ');
    }
    add("non-canonical contract", reject(&fx, &bad_contract));
    let mut twice = fx.new_issuance(&cash_contract(&fx.issuer, "USD", "USD"), 5, &fx.bob, None);
    twice.inputs.push(twice.inputs[0].clone());
    add(
        "same new asset twice in one transaction",
        reject(&fx, &twice),
    );
    add(
        "new asset that already exists",
        reject(
            &fx,
            &fx.new_issuance(
                &cash_contract(&fx.issuer, "EUR", "EUR"),
                5,
                &fx.bob,
                Some(&fx.issuer),
            ),
        ),
    );
    let ctx = TxContext {
        height: 8,
        ..fx.ctx()
    };
    add(
        "expired",
        reject_at(&fx, &alice_tx(&fx, |t| t.expiry_height = 7), &ctx),
    );
    add(
        "non-final lock time",
        reject(
            &fx,
            &alice_tx(&fx, |t| {
                t.lock_time = 10;
                t.inputs[0].sequence = 0xffff_fffe;
            }),
        ),
    );
    add(
        "missing input",
        reject(
            &fx,
            &alice_tx(&fx, |t| {
                t.inputs[0].prevout = OutPoint::new(Txid([9; 32]), 0)
            }),
        ),
    );
    add(
        "relative lock not reached",
        reject(&fx, &alice_tx(&fx, |t| t.inputs[0].sequence = 5)),
    );
    add(
        "reissue of an unknown asset",
        reject(&fx, &reissue(&fx, AssetId([7; 32]), 10, Some(&fx.issuer))),
    );
    add(
        "reissue of a non-reissuable asset",
        reject(&fx, &{
            let (outpoint, coin) = fx.coin(&fx.bob, fx.bond);
            let mut tx = Transaction {
                version: 1,
                inputs: vec![TxIn {
                    issuance: Some(Issuance {
                        kind: IssuanceKind::Reissue { asset: fx.bond },
                        amount: amount(10),
                        signature: None,
                    }),
                    ..TxIn::spending(outpoint)
                }],
                outputs: vec![pay(fx.bond, coin.output.amount.units() + 10, &fx.bob)],
                lock_time: 0,
                expiry_height: 0,
            };
            fx.sign_with(&mut tx, &[Some(&fx.bob)], Some(&fx.issuer), &[]);
            tx
        }),
    );
    add(
        "issuer not in the registry",
        reject(
            &fx,
            &fx.new_issuance(
                &cash_contract(&fx.alice, "USD", "USD"),
                5,
                &fx.bob,
                Some(&fx.alice),
            ),
        ),
    );
    add(
        "issuance signed by the wrong key",
        reject(
            &fx,
            &fx.new_issuance(
                &cash_contract(&fx.issuer, "USD", "USD"),
                5,
                &fx.bob,
                Some(&fx.alice),
            ),
        ),
    );
    add(
        "issuance without signature",
        reject(
            &fx,
            &fx.new_issuance(&cash_contract(&fx.issuer, "USD", "USD"), 5, &fx.bob, None),
        ),
    );
    add(
        "reissue past the largest supply",
        reject(
            &fx,
            &reissue(&fx, fx.eur, Amount::MAX.units(), Some(&fx.issuer)),
        ),
    );
    add(
        "outputs exceed inputs",
        reject(
            &fx,
            &alice_tx(&fx, |t| t.outputs[0].amount = amount(100_001)),
        ),
    );
    let mut bad_sig = fx.alice_pays_bob(100);
    bad_sig.inputs[0].witness.0[0][5] ^= 1;
    add("bad signature", reject(&fx, &bad_sig));

    // Membership changes (spec/chain.md, "Membership changes").
    let height = fx.state.tip().height;
    let permit_carol = |fx: &Fixture, at: u64| {
        let base = membership_of(&fx.state, &fx.spec).current.hash();
        MembershipChange {
            activation_height: at,
            base,
            ops: vec![MembershipOp::Permit {
                key: key_bytes(&keypair(9)),
            }],
            signatures: Vec::new(),
        }
    };
    let signed = |mut c: MembershipChange| {
        c.sign(&fx.validator, &fx.chain_id);
        c.to_transaction()
    };
    let mut with_input = signed(permit_carol(&fx, height + 5));
    with_input
        .inputs
        .push(TxIn::spending(fx.coin(&fx.alice, fx.eur).0));
    add(
        "membership transaction with an input",
        reject(&fx, &with_input),
    );
    add(
        "membership change without a quorum",
        reject(&fx, &permit_carol(&fx, height + 5).to_transaction()),
    );
    add(
        "membership change activating at once",
        reject(&fx, &signed(permit_carol(&fx, height + 1))),
    );
    let mut stale = permit_carol(&fx, height + 5);
    stale.base = [7; 32];
    add(
        "membership change of another membership",
        reject(&fx, &signed(stale)),
    );
    let mut other = permit_carol(&fx, height + 5);
    other.activation_height += 1;
    let built = fx.build(&[signed(permit_carol(&fx, height + 5)), signed(other)]);
    assert_eq!(built.block.transactions.len(), 1);
    add(
        "second membership change in one block",
        built.skipped[0].rejection.clone(),
    );

    // Conflicts within one block: the builder leaves the second spend out.
    let first = fx.alice_pays_bob(100);
    let second = fx.alice_pays_bob(200);
    let built = fx.build(&[first.clone(), second]);
    assert_eq!(built.block.transactions, vec![first]);
    add(
        "double spend in one block",
        built.skipped[0].rejection.clone(),
    );

    // Block limits: a one-transaction block leaves the second candidate out.
    fx.spec.limits.max_block_txs = 1;
    let built = fx.build(&[
        fx.alice_pays_bob(100),
        fx.new_issuance(
            &cash_contract(&fx.issuer, "USD", "USD"),
            5,
            &fx.bob,
            Some(&fx.issuer),
        ),
    ]);
    assert_eq!(built.block.transactions.len(), 1);
    add("block full", built.skipped[0].rejection.clone());
    out
}

#[test]
fn every_rejection_code_is_reachable_with_signed_transactions() {
    let cases = all_rejections();
    for (name, r) in &cases {
        let expected_class = CODES
            .iter()
            .find(|(code, _)| code == &r.code)
            .map(|(_, class)| *class);
        assert_eq!(
            expected_class,
            Some(r.class),
            "{name}: code {} with class {} is not in the table",
            r.code,
            r.class
        );
        assert!(!r.message.is_empty(), "{name}: empty message");
    }
    let reached: BTreeSet<&str> = cases.iter().map(|(_, r)| r.code).collect();
    let all: BTreeSet<&str> = CODES.iter().map(|(code, _)| *code).collect();
    assert_eq!(
        reached,
        all,
        "codes never produced: {:?}",
        all.difference(&reached).collect::<Vec<_>>()
    );
}

#[test]
fn each_case_gets_the_intended_code() {
    let expected = [
        ("bad version", "bad-version"),
        ("no inputs", "no-inputs"),
        ("no outputs", "no-outputs"),
        ("oversize", "oversize"),
        ("zero output", "zero-output"),
        ("zero issuance", "zero-issuance"),
        ("duplicate input", "duplicate-input"),
        ("null input without issuance", "null-input"),
        ("null input with witness", "null-input-witness"),
        ("non-canonical contract", "bad-contract"),
        ("same new asset twice in one transaction", "duplicate-asset"),
        ("new asset that already exists", "duplicate-asset"),
        ("expired", "expired"),
        ("non-final lock time", "non-final"),
        ("missing input", "missing-inputs"),
        ("relative lock not reached", "non-bip68-final"),
        ("reissue of an unknown asset", "unknown-asset"),
        ("reissue of a non-reissuable asset", "not-reissuable"),
        ("issuer not in the registry", "unauthorised-issuer"),
        ("issuance signed by the wrong key", "bad-issuer-signature"),
        ("issuance without signature", "bad-issuer-signature"),
        ("reissue past the largest supply", "supply-overflow"),
        ("outputs exceed inputs", "unbalanced"),
        ("bad signature", "script-failed"),
        ("membership transaction with an input", "bad-membership"),
        ("membership change without a quorum", "membership-threshold"),
        (
            "membership change activating at once",
            "membership-activation",
        ),
        ("membership change of another membership", "membership-base"),
        (
            "second membership change in one block",
            "membership-pending",
        ),
        ("double spend in one block", "double-spend"),
        ("block full", "block-full"),
    ];
    let cases = all_rejections();
    assert_eq!(cases.len(), expected.len());
    for ((name, r), (want_name, want_code)) in cases.iter().zip(expected) {
        assert_eq!(*name, want_name);
        assert_eq!(r.code, want_code, "{name}: {r}");
    }
}

#[test]
fn messages_name_the_input_outpoint_asset_and_amounts() {
    let fx = Fixture::new();
    let (outpoint, _) = fx.coin(&fx.alice, fx.eur);
    let r = reject(
        &fx,
        &alice_tx(&fx, |t| t.outputs[0].amount = amount(100_001)),
    );
    assert_eq!(r.class, RejectClass::Consensus);
    assert!(r.message.contains(&fx.eur.to_string()), "{r}");
    assert!(
        r.message.contains("100001") && r.message.contains("100000"),
        "{r}"
    );

    let missing = OutPoint::new(Txid([9; 32]), 3);
    let r = reject(&fx, &alice_tx(&fx, |t| t.inputs[0].prevout = missing));
    assert_eq!(r.class, RejectClass::MissingInputs);
    assert!(
        r.message.contains("input 0") && r.message.contains(&missing.to_string()),
        "{r}"
    );

    let mut bad_sig = fx.alice_pays_bob(100);
    bad_sig.inputs[0].witness.0[0][5] ^= 1;
    let r = reject(&fx, &bad_sig);
    assert!(
        r.message.contains("input 0") && r.message.contains(&outpoint.to_string()),
        "{r}"
    );
    assert!(
        r.message.contains(&fx.eur.to_string()) && r.message.contains("100000"),
        "{r}"
    );

    let r = reject(&fx, &alice_tx(&fx, |t| t.inputs[0].sequence = 5));
    assert_eq!(r.class, RejectClass::Premature);

    let r = reject(
        &fx,
        &fx.new_issuance(
            &cash_contract(&fx.alice, "USD", "USD"),
            5,
            &fx.bob,
            Some(&fx.alice),
        ),
    );
    assert!(
        r.message.contains(&hex::encode(key_bytes(&fx.alice))) && r.message.contains("cash"),
        "{r}"
    );
}

#[test]
fn a_transfer_spends_one_coin_and_creates_two() {
    let fx = Fixture::new();
    let (outpoint, coin) = fx.coin(&fx.alice, fx.eur);
    let tx = fx.alice_pays_bob(25_000);
    let effects = check(&fx, &tx).expect("valid");
    assert_eq!(effects.txid, tx.txid());
    assert_eq!(effects.spent, vec![(outpoint, coin)]);
    assert_eq!(effects.created.len(), 2);
    assert_eq!(effects.created[0].0, OutPoint::new(tx.txid(), 0));
    assert_eq!(effects.created[0].1.height, fx.ctx().height);
    assert_eq!(effects.created[0].1.time_ms, fx.ctx().time_ms);
    assert!(effects.assets.is_empty());
}

#[test]
fn dvp_swap_with_two_signers_settles_atomically() {
    let mut fx = Fixture::new();
    let (eur_op, eur) = fx.coin(&fx.alice, fx.eur);
    let (bond_op, bond) = fx.coin(&fx.bob, fx.bond);
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn::spending(eur_op), TxIn::spending(bond_op)],
        outputs: vec![
            pay(fx.eur, eur.output.amount.units(), &fx.bob),
            pay(fx.bond, bond.output.amount.units(), &fx.alice),
        ],
        lock_time: 0,
        expiry_height: 0,
    };
    fx.sign(&mut tx, &[&fx.alice, &fx.bob]);
    check(&fx, &tx).expect("valid swap");
    // Only one of the two signatures: the swap does not settle at all.
    let mut half = tx.clone();
    half.inputs[1].witness = Witness::default();
    assert_eq!(reject(&fx, &half).code, "script-failed");
    fx.mine(&[tx]);
    assert_eq!(fx.coins(&fx.alice, fx.bond).len(), 1);
    assert_eq!(fx.coins(&fx.bob, fx.eur).len(), 1);
    assert!(fx.coins(&fx.alice, fx.eur).is_empty());
}

#[test]
fn issuance_reissuance_and_burn_update_the_registry() {
    let mut fx = Fixture::new();
    let usd = cash_contract(&fx.issuer, "USD", "USD");
    let issue = fx.new_issuance(&usd, 5_000, &fx.alice, Some(&fx.issuer));
    let effects = check(&fx, &issue).expect("valid issuance");
    let usd_id = issue.outputs[0].asset;
    assert_eq!(effects.assets.len(), 1);
    let created = effects.assets[0].created.as_ref().expect("new asset");
    assert_eq!(created.contract, usd);
    assert_eq!((created.issued, created.burned), (0, 0));
    assert_eq!(effects.assets[0].issued, 5_000);
    fx.mine(&[issue]);
    let info = fx
        .state
        .assets()
        .find(|(id, _)| **id == usd_id)
        .expect("registered")
        .1
        .clone();
    assert_eq!((info.issued, info.burned), (5_000, 0));
    assert_eq!(info.height, 1);

    // Reissue 1,000 more EUR on Alice's coin, signed by the issuer.
    let re = reissue(&fx, fx.eur, 1_000, Some(&fx.issuer));
    let effects = check(&fx, &re).expect("valid reissuance");
    assert_eq!(effects.assets[0].issued, 1_000);
    assert!(effects.assets[0].created.is_none());
    fx.mine(&[re]);

    // Burn 300 of Alice's EUR.
    let (outpoint, coin) = fx.coin(&fx.alice, fx.eur);
    let mut burn = Transaction {
        version: 1,
        inputs: vec![TxIn::spending(outpoint)],
        outputs: vec![
            TxOut {
                asset: fx.eur,
                amount: amount(300),
                script_pubkey: burn_script(b""),
            },
            pay(fx.eur, coin.output.amount.units() - 300, &fx.alice),
        ],
        lock_time: 0,
        expiry_height: 0,
    };
    fx.sign(&mut burn, &[&fx.alice]);
    let effects = check(&fx, &burn).expect("valid burn");
    assert_eq!(effects.created.len(), 1, "a burn never enters the UTXO set");
    assert_eq!(effects.created[0].0.vout, 1);
    assert_eq!(effects.assets[0].burned, 300);
    let block = fx.mine(&[burn]);
    let eur = fx
        .state
        .assets()
        .find(|(id, _)| **id == fx.eur)
        .expect("registered")
        .1
        .clone();
    assert_eq!((eur.issued, eur.burned), (101_000, 300));
    assert_eq!(eur.outstanding(), 100_700);
    assert_eq!(
        fx.state.recompute_commitment(),
        block.header.utxo_commitment
    );
}

#[test]
fn lock_times_pass_once_reached() {
    let mut fx = Fixture::new();
    let tx = alice_tx(&fx, |t| {
        t.lock_time = 2;
        t.inputs[0].sequence = 3;
    });
    // Height 1: the absolute lock (2) is not passed.
    assert_eq!(reject(&fx, &tx).code, "non-final");
    fx.mine(&[]);
    fx.mine(&[]);
    // Height 3: lock time 2 passed, and the coin from height 0 has 3 confirmations.
    check(&fx, &tx).expect("final and relatively unlocked at height 3");

    // A time lock in 512-second units from the coin's block time.
    let tx = alice_tx(&fx, |t| t.inputs[0].sequence = (1 << 22) | 1);
    assert_eq!(reject(&fx, &tx).code, "non-bip68-final");
    let later = TxContext {
        time_ms: GENESIS_TIME_MS + 513_000,
        ..fx.ctx()
    };
    validate_transaction(&tx, &fx.state, &later).expect("512 s after the coin's block");

    // Expiry: valid up to and including the expiry height.
    let tx = alice_tx(&fx, |t| t.expiry_height = 3);
    check(&fx, &tx).expect("height 3 is the last allowed");
    fx.mine(&[]);
    let r = reject(&fx, &tx);
    assert_eq!((r.code, r.class), ("expired", RejectClass::Consensus));
}

#[test]
fn a_rejected_transaction_in_a_block_names_its_index() {
    let fx = Fixture::new();
    let good = fx.alice_pays_bob(100);
    let mut built = fx.build(&[good]);
    // Append an unbalanced transaction by hand and recertify the block.
    let bad = alice_tx(&fx, |t| {
        t.inputs[0].prevout = OutPoint::new(Txid([3; 32]), 0);
    });
    built.block.transactions.push(bad.clone());
    built.block.header.merkle_root = built.block.compute_merkle_root();
    fx.certify(&mut built.block, &[&fx.validator]);
    let err = validate_block(
        &built.block,
        fx.state.tip(),
        &fx.state,
        &fx.spec,
        &fx.chain_id,
    )
    .expect_err("invalid");
    let BlockError::Transaction {
        index,
        txid,
        rejection,
    } = err
    else {
        panic!("wrong error {err}")
    };
    assert_eq!((index, txid), (1, bad.txid()));
    assert_eq!(rejection.class, RejectClass::MissingInputs);
}

#[test]
fn the_supply_limit_applies_to_the_sum_of_reissuances_in_one_transaction() {
    let fx = Fixture::new();
    let (eur_op, eur) = fx.coin(&fx.alice, fx.eur);
    let (bond_op, bond) = fx.coin(&fx.bob, fx.bond);
    let half = Amount::MAX.units() / 2;
    let record = |units: u64| {
        Some(Issuance {
            kind: IssuanceKind::Reissue { asset: fx.eur },
            amount: amount(units),
            signature: None,
        })
    };
    let build = |second: u64| {
        let mut tx = Transaction {
            version: 1,
            inputs: vec![
                TxIn {
                    issuance: record(half),
                    ..TxIn::spending(eur_op)
                },
                TxIn {
                    issuance: record(second),
                    ..TxIn::spending(bond_op)
                },
            ],
            outputs: vec![
                eur.output.clone(),
                bond.output.clone(),
                pay(fx.eur, half, &fx.alice),
                pay(fx.eur, second, &fx.alice),
            ],
            lock_time: 0,
            expiry_height: 0,
        };
        fx.sign_with(
            &mut tx,
            &[Some(&fx.alice), Some(&fx.bob)],
            Some(&fx.issuer),
            &[],
        );
        tx
    };
    // Each record alone fits; together they pass the limit by one unit.
    let outstanding = eur.output.amount.units();
    let fits = Amount::MAX.units() - outstanding - half;
    check(&fx, &build(fits)).expect("exactly at the limit");
    let r = reject(&fx, &build(fits + 1));
    assert_eq!(r.code, "supply-overflow", "{r}");
}

/// A node's script cache is trusted exactly as far as the view says: a transaction it
/// vouches for skips its scripts in block validation, any other is checked.
#[test]
fn a_view_that_vouches_for_scripts_skips_only_those() {
    use settle_assets::hash::Wtxid;
    use settle_chain::{AssetInfo, ChainView, Coin, MuHash3072, validate_proposal};

    struct Vouching<'a> {
        base: &'a settle_chain::MemoryState,
        verified: Wtxid,
    }
    impl ChainView for Vouching<'_> {
        fn coin(&self, outpoint: &OutPoint) -> Option<Coin> {
            self.base.coin(outpoint)
        }
        fn asset(&self, asset: &AssetId) -> Option<AssetInfo> {
            self.base.asset(asset)
        }
        fn utxo_muhash(&self) -> MuHash3072 {
            self.base.utxo_muhash()
        }
        fn scripts_verified(&self, wtxid: &Wtxid) -> bool {
            *wtxid == self.verified
        }
    }

    let fx = Fixture::new();
    let mut bad_sig = fx.alice_pays_bob(100);
    bad_sig.inputs[0].witness.0[0][5] ^= 1;
    // Built against the plain state, the bad signature is caught and left out...
    let built = fx.build(std::slice::from_ref(&bad_sig));
    assert!(built.block.transactions.is_empty());
    assert_eq!(built.skipped[0].rejection.code, "script-failed");
    // ...and a view vouching for another transaction still checks it.
    let tip = *fx.state.tip();
    let other = Vouching {
        base: &fx.state,
        verified: Wtxid([9; 32]),
    };
    let block = settle_chain::build_block(
        &tip,
        std::slice::from_ref(&bad_sig),
        tip.time_ms + 1,
        key_bytes(&fx.validator),
        &other,
        &fx.spec,
        &fx.chain_id,
    );
    assert!(block.block.transactions.is_empty());
    // A view vouching for it skips the check: the cache must only ever hold
    // transactions whose scripts verified.
    let vouching = Vouching {
        base: &fx.state,
        verified: bad_sig.wtxid(),
    };
    let block = settle_chain::build_block(
        &tip,
        std::slice::from_ref(&bad_sig),
        tip.time_ms + 1,
        key_bytes(&fx.validator),
        &vouching,
        &fx.spec,
        &fx.chain_id,
    );
    assert_eq!(block.block.transactions.len(), 1);
    assert!(validate_proposal(&block.block, &tip, &vouching, &fx.spec, &fx.chain_id).is_ok());
    assert!(validate_proposal(&block.block, &tip, &fx.state, &fx.spec, &fx.chain_id).is_err());
}
