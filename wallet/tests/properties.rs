//! Property tests: the PST encoding (round trips, strict and panic-free decoding) and the
//! builder's conservation of every asset.

use proptest::prelude::*;
use settle_assets::{
    Amount, AssetId, ChainId, OutPoint, Transaction, TxIn, TxOut, Txid, check_conservation,
};
use settle_script::Network;
use settle_wallet::coins::{
    BuildError, BuildOptions, ChangeAddress, Payment, Strategy as Selection, WalletCoin,
    build_payment, select_coins,
};
use settle_wallet::keys::{DerivationPath, Fingerprint, KeyOrigin, SigningKey};
use settle_wallet::pst::Pst;

fn amount(units: u64) -> Amount {
    Amount::from_units(units).expect("in range")
}

fn txout_strategy() -> impl Strategy<Value = TxOut> {
    (
        0u8..4,
        1u64..1_000_000,
        prop::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(asset, units, script)| TxOut {
            asset: AssetId([asset; 32]),
            amount: amount(units),
            script_pubkey: script,
        })
}

fn text_strategy() -> impl Strategy<Value = Option<String>> {
    prop::option::of("[a-zA-Z0-9 éü€]{0,40}")
}

prop_compose! {
    fn pst_strategy()(
        inputs in prop::collection::vec((any::<[u8; 32]>(), any::<u32>(), any::<u32>()), 0..5),
        outputs in prop::collection::vec(txout_strategy(), 0..5),
        spent in prop::collection::vec(prop::option::of(txout_strategy()), 5),
        lock_time in any::<u32>(),
        expiry_height in any::<u32>(),
        network in 0u8..3,
        note in text_strategy(),
        owners in prop::collection::vec(text_strategy(), 5),
        labels in prop::collection::vec(text_strategy(), 5),
        unknown in prop::collection::btree_map(
            (0x04u8..=0xff, prop::collection::vec(any::<u8>(), 0..8))
                .prop_map(|(t, mut k)| { k.insert(0, t); k }),
            prop::collection::vec(any::<u8>(), 0..16),
            0..4,
        ),
        origin_path in prop::collection::vec(any::<u32>(), 0..6),
        fingerprint in any::<[u8; 4]>(),
        preimage in prop::collection::vec(any::<u8>(), 0..64),
    ) -> Pst {
        let tx = Transaction {
            version: 1,
            inputs: inputs
                .iter()
                .map(|(t, vout, seq)| {
                    let mut i = TxIn::spending(OutPoint::new(Txid(*t), *vout));
                    i.sequence = *seq;
                    i
                })
                .collect(),
            outputs,
            lock_time,
            expiry_height,
        };
        let n_in = tx.inputs.len();
        let n_out = tx.outputs.len();
        let network = [Network::Main, Network::Test, Network::Dev][usize::from(network)];
        let mut pst = Pst::create(tx, spent[..n_in].to_vec(), ChainId([7; 32]), network)
            .expect("create");
        if let Some(n) = &note {
            pst.set_expiry_note(n).expect("note");
        }
        pst.unknown = unknown;
        let origin = KeyOrigin {
            master_fingerprint: Fingerprint(fingerprint),
            path: DerivationPath::from_children(
                origin_path.into_iter().map(settle_wallet::keys::ChildNumber::from_raw).collect(),
            )
            .expect("short path"),
        };
        let key = SigningKey::from_secret_bytes([3; 32]).expect("key").x_only();
        for (i, owner) in owners.iter().enumerate().take(n_in) {
            if let Some(o) = owner {
                pst.set_input_owner(i, o).expect("owner");
            }
            pst.add_input_key_origin(i, &key, origin.clone()).expect("origin");
            pst.add_preimage(i, preimage.clone()).expect("preimage");
        }
        for (o, label) in labels.iter().enumerate().take(n_out) {
            if let Some(l) = label {
                pst.set_output_label(o, l).expect("label");
            }
            pst.add_output_key_origin(o, &key, origin.clone()).expect("origin");
        }
        pst
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn pst_round_trips(pst in pst_strategy()) {
        let bytes = pst.serialize();
        let back = Pst::deserialize(&bytes).expect("own encoding decodes");
        prop_assert_eq!(&back, &pst);
        prop_assert_eq!(back.serialize(), bytes);
        prop_assert_eq!(Pst::from_base64(&pst.to_base64()).expect("base64"), pst);
    }

    /// Any change to a valid encoding either fails cleanly or decodes to a PST whose
    /// encoding is exactly the changed bytes: there is one encoding per PST.
    #[test]
    fn mutated_encodings_fail_cleanly_or_stay_canonical(
        pst in pst_strategy(),
        position in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        mode in 0u8..3,
    ) {
        let mut bytes = pst.serialize();
        let at = position.index(bytes.len());
        match mode {
            0 => bytes[at] = byte,
            1 => { bytes.insert(at, byte); }
            _ => { bytes.truncate(at); }
        }
        if let Ok(decoded) = Pst::deserialize(&bytes) {
            prop_assert_eq!(decoded.serialize(), bytes);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(tail in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut bytes = b"stlpst\xff\x01".to_vec();
        bytes.extend_from_slice(&tail);
        if let Ok(decoded) = Pst::deserialize(&bytes) {
            prop_assert_eq!(decoded.serialize(), bytes);
        }
        let _ = Pst::deserialize(&tail);
        let _ = Pst::from_base64(&String::from_utf8_lossy(&tail));
    }

    /// Whatever the builder makes conserves every asset, pays every payment, and only
    /// makes change for assets that have it; when it refuses for lack of funds, the funds
    /// really are lacking.
    #[test]
    fn builder_conserves_every_asset(
        coins in prop::collection::vec((0u8..3, 1u64..1_000), 0..12),
        payments in prop::collection::vec((0u8..3, 1u64..1_500), 1..4),
        largest_first in any::<bool>(),
    ) {
        let coins: Vec<WalletCoin> = coins
            .iter()
            .enumerate()
            .map(|(n, (asset, units))| WalletCoin {
                outpoint: OutPoint::new(Txid([9; 32]), u32::try_from(n).expect("small")),
                txout: TxOut {
                    asset: AssetId([*asset; 32]),
                    amount: amount(*units),
                    script_pubkey: vec![0x51],
                },
                origin: None,
            })
            .collect();
        let payments: Vec<Payment> = payments
            .iter()
            .map(|(asset, units)| Payment {
                asset: AssetId([*asset; 32]),
                amount: amount(*units),
                script_pubkey: vec![0x52],
                label: None,
            })
            .collect();
        let options = BuildOptions {
            strategy: if largest_first { Selection::LargestFirst } else { Selection::BranchAndBound },
            ..BuildOptions::default()
        };
        let change = |_| Ok(ChangeAddress { script_pubkey: vec![0x53], origin: None });
        match build_payment(&coins, &payments, change, options) {
            Ok(built) => {
                let spent: Vec<TxOut> = built.coins.iter().map(|c| c.txout.clone()).collect();
                prop_assert!(check_conservation(&built.tx, &spent).is_ok());
                prop_assert_eq!(built.tx.inputs.len(), built.coins.len());
                for (i, p) in payments.iter().enumerate() {
                    prop_assert_eq!(built.tx.outputs[i].amount, p.amount);
                    prop_assert_eq!(built.tx.outputs[i].asset, p.asset);
                }
                for (c, _) in &built.change {
                    prop_assert!(c.amount > Amount::ZERO);
                }
                let mut outpoints: Vec<_> = built.coins.iter().map(|c| c.outpoint).collect();
                outpoints.sort();
                outpoints.dedup();
                prop_assert_eq!(outpoints.len(), built.coins.len());
            }
            Err(BuildError::InsufficientFunds { asset, have, need }) => {
                let held: u128 = coins
                    .iter()
                    .filter(|c| c.txout.asset == asset)
                    .map(|c| u128::from(c.txout.amount.units()))
                    .sum();
                let wanted: u128 = payments
                    .iter()
                    .filter(|p| p.asset == asset)
                    .map(|p| u128::from(p.amount.units()))
                    .sum();
                prop_assert_eq!(held, have);
                prop_assert_eq!(wanted, need);
                prop_assert!(have < need);
            }
            Err(e) => prop_assert!(false, "unexpected error {e}"),
        }
    }

    #[test]
    fn selection_covers_the_target(
        amounts in prop::collection::vec(1u64..10_000, 1..30),
        target in 1u64..50_000,
    ) {
        let coins: Vec<WalletCoin> = amounts
            .iter()
            .enumerate()
            .map(|(n, units)| WalletCoin {
                outpoint: OutPoint::new(Txid([1; 32]), u32::try_from(n).expect("small")),
                txout: TxOut { asset: AssetId([1; 32]), amount: amount(*units), script_pubkey: vec![] },
                origin: None,
            })
            .collect();
        let total: u64 = amounts.iter().sum();
        for strategy in [Selection::LargestFirst, Selection::BranchAndBound] {
            match select_coins(&coins, AssetId([1; 32]), amount(target), strategy) {
                Ok(s) => {
                    let sum: u64 = s.coins.iter().map(|c| c.txout.amount.units()).sum();
                    prop_assert_eq!(sum, s.total.units());
                    prop_assert_eq!(s.total.units() - target, s.change.units());
                    prop_assert!(s.total.units() >= target);
                }
                Err(_) => prop_assert!(total < target),
            }
        }
    }
}
