//! Block validation: header, merkle root, UTXO commitment, certificates, transactions
//! spending each other inside a block, and parallel script checks.
#![allow(clippy::panic)] // a test fails by panicking

mod common;

use common::*;
use settle_assets::encode::{deserialize, serialize};
use settle_assets::hash::{BlockHash, ChainId};
use settle_assets::transaction::{OutPoint, Transaction, TxIn, TxOut};
use settle_chain::{
    Block, BlockError, CertificateError, HeaderError, Validator, ValidatorSet, validate_block,
    validate_proposal,
};

fn validate(fx: &Fixture, block: &Block) -> Result<settle_chain::BlockEffects, BlockError> {
    validate_block(block, fx.state.tip(), &fx.state, &fx.spec, &fx.chain_id)
}

/// A fixture whose chain has four validators of power 1 (keys 11..14).
fn four_validators() -> (Fixture, Vec<Keypair>) {
    let keys: Vec<Keypair> = (11..15).map(keypair).collect();
    let validators = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Validator {
            name: format!("validator-{i}"),
            key: key_bytes(k),
            power: 1,
        })
        .collect();
    let fx = Fixture::with_spec(|spec| {
        spec.validators = ValidatorSet::new(validators).expect("valid set");
    });
    (fx, keys)
}

#[test]
fn a_built_and_certified_block_connects_and_commits_to_the_utxo_set() {
    let mut fx = Fixture::new();
    assert_eq!(
        fx.state.recompute_commitment(),
        fx.genesis.block.header.utxo_commitment
    );
    let tx = fx.alice_pays_bob(100);
    let block = fx.mine(std::slice::from_ref(&tx));
    assert_eq!(block.header.height, 1);
    assert_eq!(block.header.prev_hash, fx.genesis.block.hash());
    assert_eq!(block.transactions, vec![tx]);
    assert_eq!(
        fx.state.recompute_commitment(),
        block.header.utxo_commitment
    );
    assert_eq!(fx.state.tip(), &block.header);
}

#[test]
fn transactions_may_spend_outputs_of_earlier_ones_in_the_same_block() {
    let mut fx = Fixture::new();
    let first = fx.alice_pays_bob(100);
    let paid = OutPoint::new(first.txid(), 0);
    let mut second = Transaction {
        version: 1,
        inputs: vec![TxIn::spending(paid)],
        outputs: vec![pay(fx.eur, 100, &fx.alice)],
        lock_time: 0,
        expiry_height: 0,
    };
    fx.sign_with(
        &mut second,
        &[Some(&fx.bob)],
        None,
        &[(paid, first.outputs[0].clone())],
    );
    // In the wrong order the second misses its input.
    let built = fx.build(&[second.clone(), first.clone()]);
    assert_eq!(built.skipped.len(), 1);
    assert_eq!(built.skipped[0].rejection.code, "missing-inputs");

    let built = fx.build(&[first.clone(), second.clone()]);
    assert!(built.skipped.is_empty());
    let effects = validate(&fx, &built.block).expect("valid block");
    // The coin created and spent inside the block appears in neither list.
    assert!(effects.created.iter().all(|(o, _)| *o != paid));
    assert!(effects.spent.iter().all(|(o, _)| *o != paid));
    assert_eq!(effects.created.len(), 2);
    assert_eq!(effects.spent.len(), 1);
    assert_eq!(effects.txids, vec![first.txid(), second.txid()]);
    fx.state.apply(&built.block.header, &effects);
    assert_eq!(
        fx.state.recompute_commitment(),
        built.block.header.utxo_commitment
    );
}

#[test]
fn a_bad_merkle_root_is_caught_even_with_a_valid_certificate() {
    let fx = Fixture::new();
    let mut block = fx.build(&[fx.alice_pays_bob(100)]).block;
    block.header.merkle_root[0] ^= 1;
    fx.certify(&mut block, &[&fx.validator]);
    assert!(matches!(
        validate(&fx, &block),
        Err(BlockError::BadMerkleRoot { .. })
    ));
    // A changed witness changes the wtxid and so the root.
    let mut block = fx.build(&[fx.alice_pays_bob(100)]).block;
    block.transactions[0].inputs[0].witness.0[0][0] ^= 1;
    fx.certify(&mut block, &[&fx.validator]);
    assert!(matches!(
        validate(&fx, &block),
        Err(BlockError::BadMerkleRoot { .. })
    ));
}

#[test]
fn a_wrong_utxo_commitment_is_caught() {
    let fx = Fixture::new();
    let mut block = fx.build(&[fx.alice_pays_bob(100)]).block;
    block.header.utxo_commitment = fx.genesis.block.header.utxo_commitment;
    fx.certify(&mut block, &[&fx.validator]);
    let err = validate(&fx, &block).expect_err("invalid");
    let BlockError::BadUtxoCommitment { header, computed } = err else {
        panic!("wrong error {err}")
    };
    assert_eq!(header, hex::encode(fx.genesis.block.header.utxo_commitment));
    assert_ne!(header, computed);
}

#[test]
fn certificates_need_more_than_two_thirds_of_the_power() {
    let (fx, keys) = four_validators();
    let mut block = fx.build(&[]).block;
    block.header.proposer = key_bytes(&keys[0]);
    fx.certify(&mut block, &[&keys[0], &keys[1]]);
    assert_eq!(
        validate(&fx, &block).expect_err("2 of 4"),
        BlockError::Certificate(CertificateError::InsufficientPower {
            signed: 2,
            total: 4
        })
    );
    fx.certify(&mut block, &[&keys[0], &keys[2], &keys[3]]);
    validate(&fx, &block).expect("3 of 4 is more than two thirds");
}

#[test]
fn a_duplicate_signer_is_refused() {
    let (fx, keys) = four_validators();
    let mut block = fx.build(&[]).block;
    block.header.proposer = key_bytes(&keys[0]);
    fx.certify(&mut block, &[&keys[0], &keys[1], &keys[1]]);
    assert!(matches!(
        validate(&fx, &block),
        Err(BlockError::Certificate(CertificateError::DuplicateSigner {
            first: 1,
            second: 2,
            ..
        }))
    ));
}

#[test]
fn precommits_for_a_foreign_chain_are_refused() {
    let fx = Fixture::new();
    let mut block = fx.build(&[]).block;
    let hash = block.hash();
    let foreign = ChainId([0x42; 32]);
    block.certificate.signatures = vec![settle_chain::sign_precommit(
        &fx.validator,
        &foreign,
        1,
        0,
        &hash,
    )];
    assert!(matches!(
        validate(&fx, &block),
        Err(BlockError::Certificate(CertificateError::BadSignature {
            index: 0,
            ..
        }))
    ));
}

#[test]
fn certificates_by_strangers_or_for_other_blocks_are_refused() {
    let fx = Fixture::new();
    let mut block = fx.build(&[]).block;
    fx.certify(&mut block, &[&fx.alice]);
    assert!(matches!(
        validate(&fx, &block),
        Err(BlockError::Certificate(
            CertificateError::UnknownValidator { index: 0, .. }
        ))
    ));
    let mut block = fx.build(&[]).block;
    block.certificate.block_hash = BlockHash([1; 32]);
    assert!(matches!(
        validate(&fx, &block),
        Err(BlockError::Certificate(CertificateError::WrongBlock { .. }))
    ));
    let mut block = fx.build(&[]).block;
    block.certificate.height = 7;
    assert!(matches!(
        validate(&fx, &block),
        Err(BlockError::Certificate(CertificateError::WrongHeight {
            certificate: 7,
            block: 1
        }))
    ));
    let mut block = fx.build(&[]).block;
    block.certificate.signatures.clear();
    assert!(matches!(
        validate(&fx, &block),
        Err(BlockError::Certificate(
            CertificateError::InsufficientPower { signed: 0, .. }
        ))
    ));
    // A proposal is checked without its certificate.
    validate_proposal(&block, fx.state.tip(), &fx.state, &fx.spec, &fx.chain_id)
        .expect("the proposal itself is valid");
}

#[test]
fn headers_must_follow_their_parent() {
    let fx = Fixture::new();
    let good = fx.build(&[]).block;
    type Edit = Box<dyn Fn(&mut Block)>;
    type Expect = fn(&HeaderError) -> bool;
    let cases: Vec<(Edit, Expect)> = vec![
        (Box::new(|b| b.header.prev_hash = BlockHash([5; 32])), |e| {
            matches!(e, HeaderError::BadPrevHash { .. })
        }),
        (Box::new(|b| b.header.height = 2), |e| {
            matches!(e, HeaderError::BadHeight { parent: 0, got: 2 })
        }),
        (Box::new(|b| b.header.time_ms = GENESIS_TIME_MS), |e| {
            matches!(e, HeaderError::TimeNotIncreasing { .. })
        }),
        (Box::new(|b| b.header.version = 2), |e| {
            matches!(e, HeaderError::BadVersion(2))
        }),
        (Box::new(|b| b.header.validator_set_hash = [0; 32]), |e| {
            matches!(e, HeaderError::BadValidatorSetHash { .. })
        }),
        (Box::new(|b| b.header.proposer = [0x77; 32]), |e| {
            matches!(e, HeaderError::UnknownProposer(_))
        }),
    ];
    for (edit, expected) in cases {
        let mut block = good.clone();
        edit(&mut block);
        fx.certify(&mut block, &[&fx.validator]);
        match validate(&fx, &block) {
            Err(BlockError::Header(e)) => assert!(expected(&e), "unexpected {e}"),
            other => panic!("expected a header error, got {other:?}"),
        }
    }
}

#[test]
fn block_limits_of_the_spec_apply() {
    let mut fx = Fixture::new();
    let block = fx
        .build(&[
            fx.alice_pays_bob(1),
            fx.new_issuance(
                &cash_contract(&fx.issuer, "USD", "USD"),
                5,
                &fx.bob,
                Some(&fx.issuer),
            ),
        ])
        .block;
    assert_eq!(block.transactions.len(), 2);
    fx.spec.limits.max_block_txs = 1;
    assert_eq!(
        validate(&fx, &block).expect_err("too many"),
        BlockError::TooManyTransactions { count: 2, max: 1 }
    );
}

/// Splits Alice's EUR into `n` coins of 10 units each (plus change) and mines it.
fn split_alice(fx: &mut Fixture, n: u64) {
    let (outpoint, coin) = fx.coin(&fx.alice, fx.eur);
    let mut outputs: Vec<TxOut> = (0..n).map(|_| pay(fx.eur, 10, &fx.alice)).collect();
    outputs.push(pay(fx.eur, coin.output.amount.units() - 10 * n, &fx.alice));
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn::spending(outpoint)],
        outputs,
        lock_time: 0,
        expiry_height: 0,
    };
    fx.sign(&mut tx, &[&fx.alice]);
    fx.mine(&[tx]);
}

#[test]
fn parallel_script_checks_report_the_first_failing_transaction() {
    let mut fx = Fixture::new();
    split_alice(&mut fx, 120);
    let txs: Vec<Transaction> = fx
        .coins(&fx.alice, fx.eur)
        .into_iter()
        .filter(|(_, c)| c.output.amount.units() == 10)
        .map(|(outpoint, _)| {
            let mut tx = Transaction {
                version: 1,
                inputs: vec![TxIn::spending(outpoint)],
                outputs: vec![pay(fx.eur, 4, &fx.bob), pay(fx.eur, 6, &fx.alice)],
                lock_time: 0,
                expiry_height: 0,
            };
            fx.sign(&mut tx, &[&fx.alice]);
            tx
        })
        .collect();
    assert_eq!(txs.len(), 120);
    let built = fx.build(&txs);
    assert!(built.skipped.is_empty());
    validate(&fx, &built.block).expect("valid block of 120 transactions");

    let mut block = built.block.clone();
    for i in [97, 57, 80] {
        block.transactions[i].inputs[0].witness.0[0][10] ^= 1;
    }
    block.header.merkle_root = block.compute_merkle_root();
    fx.certify(&mut block, &[&fx.validator]);
    let err = validate(&fx, &block).expect_err("bad signatures");
    let BlockError::Transaction {
        index, rejection, ..
    } = err
    else {
        panic!("wrong error {err}")
    };
    assert_eq!(index, 57);
    assert_eq!(rejection.code, "script-failed");

    // The builder drops exactly the broken ones and keeps the rest.
    let broken: Vec<Transaction> = block.transactions.clone();
    let rebuilt = fx.build(&broken);
    let skipped: Vec<usize> = rebuilt.skipped.iter().map(|s| s.index).collect();
    assert_eq!(skipped, vec![57, 80, 97]);
    assert_eq!(rebuilt.block.transactions.len(), 117);
    validate(&fx, &rebuilt.block).expect("valid after dropping the broken ones");
}

#[test]
fn blocks_round_trip_through_their_encoding() {
    let fx = Fixture::new();
    let block = fx.build(&[fx.alice_pays_bob(100)]).block;
    let bytes = serialize(&block);
    assert_eq!(deserialize::<Block>(&bytes), Ok(block.clone()));
    assert_eq!(
        &bytes[..settle_chain::limits::HEADER_BYTES],
        serialize(&block.header).as_slice()
    );
    // Every truncation is an error, never a panic.
    for len in 0..bytes.len() {
        assert!(deserialize::<Block>(&bytes[..len]).is_err(), "length {len}");
    }
    let genesis = serialize(&fx.genesis.block);
    assert_eq!(deserialize::<Block>(&genesis), Ok(fx.genesis.block.clone()));
}
