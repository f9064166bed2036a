//! A membership change made by transaction: pending from the block that confirms it,
//! in force from its activation height, when the new validator set decides blocks.
#![allow(clippy::panic)] // a test fails by panicking

mod common;

use common::*;
use settle_chain::{
    BlockError, CertificateError, HeaderError, MembershipChange, MembershipOp, membership_of,
    validate_block,
};

#[test]
fn a_new_validator_decides_blocks_from_the_activation_height() {
    let mut fx = Fixture::new();
    let newcomer = keypair(7);
    let observer = keypair(8);
    let start = fx.state.tip().height;
    let before = membership_of(&fx.state, &fx.spec);
    let mut change = MembershipChange {
        activation_height: start + 3,
        base: before.current.hash(),
        ops: vec![
            MembershipOp::SetValidator {
                key: key_bytes(&newcomer),
                power: 1,
            },
            MembershipOp::Permit {
                key: key_bytes(&observer),
            },
        ],
        signatures: Vec::new(),
    };
    change.sign(&fx.validator, &fx.chain_id);
    let tx = change.to_transaction();
    fx.mine(std::slice::from_ref(&tx));

    // Pending: the old set still decides the next block.
    let state = membership_of(&fx.state, &fx.spec);
    let pending = state.pending.clone().expect("a pending change");
    assert_eq!(pending.activation_height, start + 3);
    assert_eq!(pending.txid, tx.txid());
    assert_eq!(state.current, before.current);
    assert!(!state.current.permits(&key_bytes(&observer)));
    assert!(pending.membership.permits(&key_bytes(&observer)));
    fx.mine(&[]);

    // At the activation height the header names the new set, and one signature of two
    // equal validators is no longer a quorum.
    let mut built = fx.build(&[]);
    assert_eq!(
        built.block.header.validator_set_hash,
        pending.membership.validators.hash()
    );
    let tip = *fx.state.tip();
    let err = validate_block(&built.block, &tip, &fx.state, &fx.spec, &fx.chain_id)
        .expect_err("one of two validators signed");
    assert!(
        matches!(
            err,
            BlockError::Certificate(CertificateError::InsufficientPower {
                signed: 1,
                total: 2
            })
        ),
        "{err}"
    );
    fx.certify(&mut built.block, &[&fx.validator, &newcomer]);
    let effects = fx
        .state
        .connect(&built.block, &fx.spec, &fx.chain_id)
        .expect("both validators signed");
    let after = effects.membership.expect("the change took effect");
    assert!(after.pending.is_none());
    assert_eq!(after.current, pending.membership);
    assert_eq!(membership_of(&fx.state, &fx.spec), after);

    // A block still naming the old set is refused from then on.
    let mut stale = fx.build(&[]);
    stale.block.header.validator_set_hash = before.current.validators.hash();
    fx.certify(&mut stale.block, &[&fx.validator, &newcomer]);
    let tip = *fx.state.tip();
    let err = validate_block(&stale.block, &tip, &fx.state, &fx.spec, &fx.chain_id)
        .expect_err("old validator set");
    assert!(
        matches!(
            err,
            BlockError::Header(HeaderError::BadValidatorSetHash { .. })
        ),
        "{err}"
    );
}

#[test]
fn a_change_cannot_be_replayed_once_applied() {
    let mut fx = Fixture::new();
    let start = fx.state.tip().height;
    let base = membership_of(&fx.state, &fx.spec).current.hash();
    let mut change = MembershipChange {
        activation_height: start + 2,
        base,
        ops: vec![MembershipOp::Permit {
            key: key_bytes(&keypair(8)),
        }],
        signatures: Vec::new(),
    };
    change.sign(&fx.validator, &fx.chain_id);
    let tx = change.to_transaction();
    fx.mine(std::slice::from_ref(&tx));
    fx.mine(&[]);
    fx.mine(&[]);
    let built = fx.build(&[tx]);
    assert!(built.block.transactions.is_empty());
    assert_eq!(built.skipped[0].rejection.code, "membership-activation");
}
