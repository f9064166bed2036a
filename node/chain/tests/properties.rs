//! Property tests: MuHash order independence, encodings, merkle malleability, and
//! conservation through full validation with real signatures.
#![allow(clippy::panic)] // a test fails by panicking

mod common;

use common::*;
use proptest::prelude::*;
use settle_assets::amount::Amount;
use settle_assets::encode::{Decode, deserialize, serialize};
use settle_assets::hash::{AssetId, BlockHash, Txid, Wtxid};
use settle_assets::transaction::{OutPoint, Transaction, TxIn, TxOut};
use settle_chain::{
    AssetInfo, Block, Coin, CommitCertificate, CommitSignature, Header, MuHash3072, merkle_root,
    validate_transaction,
};

fn header_strategy() -> impl Strategy<Value = Header> {
    (
        any::<u32>(),
        any::<u64>(),
        any::<[u8; 32]>(),
        any::<u64>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
        any::<[u8; 32]>(),
    )
        .prop_map(|(version, height, prev, time_ms, m, u, v, p)| Header {
            version,
            height,
            prev_hash: BlockHash(prev),
            time_ms,
            merkle_root: m,
            utxo_commitment: u,
            validator_set_hash: v,
            proposer: p,
        })
}

fn certificate_strategy() -> impl Strategy<Value = CommitCertificate> {
    (
        any::<u64>(),
        any::<u32>(),
        any::<[u8; 32]>(),
        prop::collection::vec(
            (any::<[u8; 32]>(), prop::collection::vec(any::<u8>(), 64)),
            0..5,
        ),
    )
        .prop_map(|(height, round, hash, sigs)| CommitCertificate {
            height,
            round,
            block_hash: BlockHash(hash),
            signatures: sigs
                .into_iter()
                .map(|(validator, sig)| CommitSignature {
                    validator,
                    signature: sig.try_into().expect("64 bytes"),
                })
                .collect(),
        })
}

fn coin_strategy() -> impl Strategy<Value = (OutPoint, Coin)> {
    (
        any::<[u8; 32]>(),
        any::<u32>(),
        any::<[u8; 32]>(),
        0..=Amount::MAX.units(),
        prop::collection::vec(any::<u8>(), 0..40),
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(|(txid, vout, asset, units, script, height, time_ms)| {
            (
                OutPoint::new(Txid(txid), vout),
                Coin {
                    output: TxOut {
                        asset: AssetId(asset),
                        amount: Amount::from_units(units).expect("in range"),
                        script_pubkey: script,
                    },
                    height,
                    time_ms,
                },
            )
        })
}

fn no_panic<T: Decode>(bytes: &[u8]) {
    let _ = deserialize::<T>(bytes);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn muhash_does_not_depend_on_order_or_grouping(
        elements in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..50), 1..12),
        extra in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..50), 0..4),
        seed in any::<u64>(),
        split in any::<usize>(),
    ) {
        let mut forward = MuHash3072::new();
        elements.iter().for_each(|e| forward.insert(e));

        // A deterministic shuffle, then two halves hashed apart and combined.
        let mut shuffled = elements.clone();
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (s >> 33) as usize % (i + 1));
        }
        let cut = split % (shuffled.len() + 1);
        let mut left = MuHash3072::new();
        shuffled[..cut].iter().for_each(|e| left.insert(e));
        let mut right = MuHash3072::new();
        shuffled[cut..].iter().for_each(|e| right.insert(e));
        // Extra elements added and removed again leave no trace.
        extra.iter().for_each(|e| right.insert(e));
        extra.iter().rev().for_each(|e| right.remove(e));
        left.combine(&right);
        prop_assert_eq!(left.finalize(), forward.finalize());
        prop_assert_eq!(&left, &forward);

        // Removing one element gives the digest of the set without it.
        let mut without_first = MuHash3072::new();
        elements[1..].iter().for_each(|e| without_first.insert(e));
        let mut removed = forward.clone();
        removed.remove(&elements[0]);
        prop_assert_eq!(removed.finalize(), without_first.finalize());
    }

    #[test]
    fn headers_certificates_and_coins_round_trip(
        header in header_strategy(),
        cert in certificate_strategy(),
        (outpoint, coin) in coin_strategy(),
    ) {
        let bytes = serialize(&header);
        prop_assert_eq!(bytes.len(), settle_chain::limits::HEADER_BYTES);
        prop_assert_eq!(deserialize::<Header>(&bytes), Ok(header));
        prop_assert_eq!(deserialize::<CommitCertificate>(&serialize(&cert)), Ok(cert.clone()));
        prop_assert_eq!(deserialize::<Coin>(&serialize(&coin)), Ok(coin.clone()));
        let block = Block { header, transactions: Vec::new(), certificate: cert };
        prop_assert_eq!(deserialize::<Block>(&serialize(&block)), Ok(block));
        let element = settle_chain::utxo_element(&outpoint, &coin);
        let encoded_outpoint = serialize(&outpoint);
        prop_assert_eq!(&element[..36], encoded_outpoint.as_slice());
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..1_000)) {
        no_panic::<Block>(&bytes);
        no_panic::<Header>(&bytes);
        no_panic::<CommitCertificate>(&bytes);
        no_panic::<Coin>(&bytes);
        no_panic::<AssetInfo>(&bytes);
        no_panic::<MuHash3072>(&bytes);
        no_panic::<settle_chain::MembershipChange>(&bytes);
        no_panic::<settle_chain::MembershipState>(&bytes);
    }

    /// A membership change survives encoding, and any single changed byte of its body
    /// either fails to decode or changes the decoded change (no two encodings).
    #[test]
    fn membership_changes_round_trip(
        activation_height in any::<u64>(),
        base in any::<[u8; 32]>(),
        ops in prop::collection::vec((1u8..=3, any::<[u8; 32]>(), any::<u64>()), 0..8),
        sigs in prop::collection::vec((any::<[u8; 32]>(), any::<[u8; 32]>()), 0..4),
        flip in any::<prop::sample::Index>(),
    ) {
        use settle_chain::{MembershipChange, MembershipOp};
        let change = MembershipChange {
            activation_height,
            base,
            ops: ops
                .iter()
                .map(|&(kind, key, power)| match kind {
                    1 => MembershipOp::SetValidator { key, power },
                    2 => MembershipOp::Permit { key },
                    _ => MembershipOp::Revoke { key },
                })
                .collect(),
            signatures: sigs
                .iter()
                .map(|(k, s)| settle_chain::CommitSignature {
                    validator: *k,
                    signature: [*s, *s].concat().try_into().expect("64 bytes"),
                })
                .collect(),
        };
        let bytes = serialize(&change);
        prop_assert_eq!(deserialize::<MembershipChange>(&bytes), Ok(change.clone()));
        let mut flipped = bytes.clone();
        let i = flip.index(flipped.len());
        flipped[i] ^= 0x01;
        if let Ok(other) = deserialize::<MembershipChange>(&flipped) {
            prop_assert_ne!(other, change);
        }
    }

    #[test]
    fn merkle_roots_differ_for_different_lists(
        ids in prop::collection::vec(any::<[u8; 32]>(), 1..20),
    ) {
        let wtxids: Vec<Wtxid> = ids.iter().map(|b| Wtxid(*b)).collect();
        let root = merkle_root(&wtxids);
        // Duplicating the last transaction (Bitcoin's CVE-2012-2459 shape) changes it.
        let mut dup = wtxids.clone();
        dup.push(*wtxids.last().expect("non-empty"));
        prop_assert_ne!(merkle_root(&dup), root);
        let mut shorter = wtxids.clone();
        shorter.pop();
        prop_assert_ne!(merkle_root(&shorter), root);
        if wtxids.len() > 1 && wtxids[0] != wtxids[1] {
            let mut swapped = wtxids.clone();
            swapped.swap(0, 1);
            prop_assert_ne!(merkle_root(&swapped), root);
        }
    }
}

proptest! {
    // Each case signs and verifies a real transaction.
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn validation_accepts_exactly_the_balanced_splits(
        weights in prop::collection::vec(1u64..1_000, 1..6),
        delta in -3i64..=3,
        target in any::<prop::sample::Index>(),
    ) {
        let fx = Fixture::new();
        let (outpoint, coin) = fx.coin(&fx.alice, fx.eur);
        let total = coin.output.amount.units();
        // Split `total` in proportion to the weights; the last output takes the rest.
        let sum: u64 = weights.iter().sum();
        let mut amounts: Vec<u64> = weights.iter().map(|w| total * w / sum).collect();
        let rest = total - amounts[..amounts.len() - 1].iter().sum::<u64>();
        *amounts.last_mut().expect("non-empty") = rest;
        prop_assume!(amounts.iter().all(|a| *a > 3));
        let i = target.index(amounts.len());
        amounts[i] = amounts[i].checked_add_signed(delta).expect("positive");
        let mut tx = Transaction {
            version: 1,
            inputs: vec![TxIn::spending(outpoint)],
            outputs: amounts.iter().map(|a| pay(fx.eur, *a, &fx.bob)).collect(),
            lock_time: 0,
            expiry_height: 0,
        };
        fx.sign(&mut tx, &[&fx.alice]);
        let result = validate_transaction(&tx, &fx.state, &fx.ctx());
        if delta == 0 {
            let effects = result.expect("balanced");
            let created: u64 = effects.created.iter().map(|(_, c)| c.output.amount.units()).sum();
            prop_assert_eq!(created, total);
        } else {
            let r = result.expect_err("unbalanced");
            prop_assert_eq!(r.code, "unbalanced");
            prop_assert!(r.message.contains(&fx.eur.to_string()));
        }
    }
}
