//! Per-asset conservation over random transaction graphs (`spec/transactions.md`,
//! "Conservation").
//!
//! A generator plays a small ledger: it issues several assets (on null inputs and on spent
//! coins), reissues some, and then spends random unspent coins, splitting and merging each
//! asset's amount over new outputs and sometimes burning part of it. It keeps the UTXO set
//! and each asset's supply by its own bookkeeping. For every transaction it builds:
//! - the transaction passes the context-free checks and conserves every asset, with the
//!   flows the generator expects;
//! - changing any one output's amount is caught, naming exactly that asset with the right
//!   sums; relabelling any one output from asset A to asset B names exactly A and B;
//! - after applying it, every asset's supply (issued minus burned) equals the sum of its
//!   coins in the UTXO set.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::sample::Index;
use settle_assets::conservation::AssetFlow;
use settle_assets::transaction::{SEQUENCE_FINAL, TX_VERSION};
use settle_assets::{
    Amount, AssetClass, AssetContract, AssetId, ConservationError, Issuance, IssuanceKind,
    OP_RETURN, OutPoint, Transaction, TxIn, TxOut, Witness, check_conservation, check_transaction,
};

/// Amounts stay below this so that no merge of coins can exceed `Amount::MAX`: at most
/// `MAX_OPS` issuances of at most this much each.
const MAX_ISSUE_UNITS: u64 = 1 << 48;
const MAX_OPS: usize = 24;

#[derive(Debug, Clone)]
enum Op {
    /// A new asset, on a null input or (when `on_coin` finds one) on a spent coin.
    Issue {
        on_coin: Option<Index>,
        amount: u64,
        parts: u8,
        reissuable: bool,
        cash: bool,
    },
    /// More of a reissuable asset, on an input that spends a coin.
    Reissue {
        asset: Index,
        coin: Index,
        amount: u64,
        parts: u8,
    },
    /// Spends up to four coins and redistributes each asset over 1..=3 outputs.
    Spend {
        coins: Vec<Index>,
        parts: Vec<u8>,
        cuts: Vec<u64>,
        burn: Option<Index>,
        rotate: usize,
    },
}

fn arb_op() -> impl Strategy<Value = Op> {
    let amount = prop_oneof![1..=100u64, 1..=MAX_ISSUE_UNITS];
    prop_oneof![
        2 => (proptest::option::of(any::<Index>()), amount.clone(), 1..=3u8, any::<bool>(), any::<bool>())
            .prop_map(|(on_coin, amount, parts, reissuable, cash)| Op::Issue {
                on_coin, amount, parts, reissuable, cash,
            }),
        1 => (any::<Index>(), any::<Index>(), amount, 1..=3u8)
            .prop_map(|(asset, coin, amount, parts)| Op::Reissue { asset, coin, amount, parts }),
        5 => (
            proptest::collection::vec(any::<Index>(), 1..=4),
            proptest::collection::vec(1..=3u8, 1..=4),
            proptest::collection::vec(any::<u64>(), 3),
            proptest::option::of(any::<Index>()),
            0..8usize,
        )
            .prop_map(|(coins, parts, cuts, burn, rotate)| Op::Spend { coins, parts, cuts, burn, rotate }),
    ]
}

/// The generator's own view of the ledger.
#[derive(Default)]
struct Ledger {
    utxos: BTreeMap<OutPoint, TxOut>,
    /// Issued minus burned, per asset.
    supply: BTreeMap<AssetId, u128>,
    reissuable: Vec<AssetId>,
    assets_issued: u32,
    txids: BTreeSet<settle_assets::Txid>,
}

fn units(n: u64) -> Amount {
    Amount::from_units(n).expect("generator keeps amounts in range")
}

fn script(owner: u64) -> Vec<u8> {
    let mut s = vec![0x51, 0x08];
    s.extend_from_slice(&owner.to_le_bytes());
    s
}

/// Splits `total` into at most `parts` positive amounts, cut where `cuts` say.
fn split(total: u64, parts: u8, cuts: &[u64]) -> Vec<u64> {
    let parts = u64::from(parts.max(1)).min(total);
    let mut out = Vec::new();
    let mut left = total;
    for (i, slots_after) in (1..parts).rev().enumerate() {
        // Leave at least one unit for every later part.
        let room = left - slots_after;
        let cut = cuts.get(i).copied().unwrap_or(0);
        let take = 1 + cut % room;
        out.push(take);
        left -= take;
    }
    out.push(left);
    debug_assert!(out.iter().all(|&x| x > 0));
    debug_assert_eq!(out.iter().sum::<u64>(), total);
    out
}

fn contract(n: u32, reissuable: bool, cash: bool) -> Vec<u8> {
    AssetContract {
        class: if cash {
            AssetClass::Cash {
                currency: "EUR".into(),
            }
        } else {
            AssetClass::Security {
                isin: "PTOTEVOE0018".into(),
            }
        },
        name: format!("Generated asset {n}"),
        ticker: format!("A{n}"),
        precision: (n % 19) as u8,
        issuer: [7; 32],
        reissuable,
    }
    .to_canonical_bytes()
    .expect("valid contract")
}

fn pick_coin(ledger: &Ledger, index: &Index) -> Option<(OutPoint, TxOut)> {
    if ledger.utxos.is_empty() {
        return None;
    }
    let i = index.index(ledger.utxos.len());
    ledger
        .utxos
        .iter()
        .nth(i)
        .map(|(op, coin)| (*op, coin.clone()))
}

fn issuance_input(prevout: OutPoint, kind: IssuanceKind, amount: u64) -> TxIn {
    TxIn {
        prevout,
        sequence: SEQUENCE_FINAL,
        issuance: Some(Issuance {
            kind,
            amount: units(amount),
            signature: Some([9; 64]),
        }),
        witness: if prevout.is_null() {
            Witness::default()
        } else {
            Witness(vec![vec![0xaa; 64]])
        },
    }
}

fn plain_input(prevout: OutPoint) -> TxIn {
    TxIn {
        prevout,
        sequence: SEQUENCE_FINAL,
        issuance: None,
        witness: Witness(vec![vec![0xbb; 64]]),
    }
}

/// A balanced transaction for `op`, with the coins it spends, or None when the ledger
/// cannot support the operation yet.
fn build(ledger: &mut Ledger, op: &Op, owner: u64) -> Option<(Transaction, Vec<TxOut>)> {
    let mut inputs = Vec::new();
    let mut spent = Vec::new();
    let mut outputs = Vec::new();
    match op {
        Op::Issue {
            on_coin,
            amount,
            parts,
            reissuable,
            cash,
        } => {
            ledger.assets_issued += 1;
            let bytes = contract(ledger.assets_issued, *reissuable, *cash);
            let coin = on_coin.as_ref().and_then(|i| pick_coin(ledger, i));
            let prevout = coin.as_ref().map_or(OutPoint::NULL, |(op, _)| *op);
            let input = issuance_input(prevout, IssuanceKind::New { contract: bytes }, *amount);
            let asset = input
                .issuance
                .as_ref()
                .map(|i| i.asset_id(&prevout))
                .expect("issuance");
            inputs.push(input);
            match coin {
                Some((_, c)) => {
                    // The spent coin passes through unchanged.
                    outputs.push(TxOut {
                        script_pubkey: script(owner + 1),
                        ..c.clone()
                    });
                    spent.push(c);
                }
                None => spent.push(TxOut::NONE),
            }
            for (k, part) in split(*amount, *parts, &[*amount / 3, *amount / 7])
                .into_iter()
                .enumerate()
            {
                outputs.push(TxOut {
                    asset,
                    amount: units(part),
                    script_pubkey: script(owner + k as u64),
                });
            }
            if *reissuable {
                ledger.reissuable.push(asset);
            }
        }
        Op::Reissue {
            asset,
            coin,
            amount,
            parts,
        } => {
            if ledger.reissuable.is_empty() {
                return None;
            }
            let asset = ledger.reissuable[asset.index(ledger.reissuable.len())];
            let (prevout, c) = pick_coin(ledger, coin)?;
            inputs.push(issuance_input(
                prevout,
                IssuanceKind::Reissue { asset },
                *amount,
            ));
            spent.push(c.clone());
            outputs.push(c);
            for part in split(*amount, *parts, &[*amount / 2]) {
                outputs.push(TxOut {
                    asset,
                    amount: units(part),
                    script_pubkey: script(owner),
                });
            }
        }
        Op::Spend {
            coins,
            parts,
            cuts,
            burn,
            rotate,
        } => {
            let mut chosen = BTreeSet::new();
            for i in coins {
                if let Some((op, c)) = pick_coin(ledger, i)
                    && chosen.insert(op)
                {
                    inputs.push(plain_input(op));
                    spent.push(c);
                }
            }
            if inputs.is_empty() {
                return None;
            }
            let mut totals: BTreeMap<AssetId, u64> = BTreeMap::new();
            for c in &spent {
                let t = totals.entry(c.asset).or_default();
                *t = t.checked_add(c.amount.units()).expect("below Amount::MAX");
            }
            for (j, (asset, total)) in totals.into_iter().enumerate() {
                let n = parts[j % parts.len()];
                for (k, part) in split(total, n, cuts).into_iter().enumerate() {
                    outputs.push(TxOut {
                        asset,
                        amount: units(part),
                        script_pubkey: script(owner + k as u64),
                    });
                }
            }
            if let Some(b) = burn {
                let i = b.index(outputs.len());
                outputs[i].script_pubkey = vec![OP_RETURN, 0x04, b'b', b'u', b'r', b'n'];
            }
            let len = outputs.len();
            outputs.rotate_left(rotate % len);
        }
    }
    let tx = Transaction {
        version: TX_VERSION,
        inputs,
        outputs,
        lock_time: 0,
        expiry_height: 0,
    };
    Some((tx, spent))
}

/// The flows the generator expects, computed without the library.
fn expected_flows(tx: &Transaction, spent: &[TxOut]) -> BTreeMap<AssetId, AssetFlow> {
    let mut flows: BTreeMap<AssetId, AssetFlow> = BTreeMap::new();
    for (input, coin) in tx.inputs.iter().zip(spent) {
        if !input.prevout.is_null() {
            flows.entry(coin.asset).or_default().inputs += u128::from(coin.amount.units());
        }
        if let Some(iss) = &input.issuance {
            flows
                .entry(iss.asset_id(&input.prevout))
                .or_default()
                .issued += u128::from(iss.amount.units());
        }
    }
    for o in &tx.outputs {
        let f = flows.entry(o.asset).or_default();
        f.outputs += u128::from(o.amount.units());
        if o.script_pubkey.first() == Some(&OP_RETURN) {
            f.burned += u128::from(o.amount.units());
        }
    }
    flows
}

/// Expects exactly `assets` out of balance, each with the given sums.
fn expect_imbalance(
    result: Result<BTreeMap<AssetId, AssetFlow>, ConservationError>,
    expected: &[(AssetId, u128, u128, u128)],
) -> Result<(), TestCaseError> {
    let Err(ConservationError::Imbalance(list)) = result else {
        return Err(TestCaseError::fail(format!(
            "expected an imbalance of {expected:?}, got {result:?}"
        )));
    };
    let mut expected = expected.to_vec();
    expected.sort();
    let got: Vec<(AssetId, u128, u128, u128)> = list
        .iter()
        .map(|i| (i.asset, i.inputs, i.issued, i.outputs))
        .collect();
    prop_assert_eq!(got, expected);
    Ok(())
}

/// Every single-output mutation of a balanced transaction is caught, naming the right
/// asset(s) and sums.
fn check_mutations(
    tx: &Transaction,
    spent: &[TxOut],
    flows: &BTreeMap<AssetId, AssetFlow>,
    other_assets: &[AssetId],
    seed: u64,
) -> Result<(), TestCaseError> {
    for (j, output) in tx.outputs.iter().enumerate() {
        let a = output.asset;
        let fa = flows[&a];
        let old = output.amount.units();

        // Amount up or down by a delta.
        let delta = 1 + (seed ^ j as u64) % 1_000_000;
        let mut more = tx.clone();
        more.outputs[j].amount = units(old + delta);
        expect_imbalance(
            check_conservation(&more, spent),
            &[(a, fa.inputs, fa.issued, fa.outputs + u128::from(delta))],
        )?;
        if old > 1 {
            let down = 1 + delta % (old - 1);
            let mut less = tx.clone();
            less.outputs[j].amount = units(old - down);
            expect_imbalance(
                check_conservation(&less, spent),
                &[(a, fa.inputs, fa.issued, fa.outputs - u128::from(down))],
            )?;
        }

        // Relabel from A to every other asset B: one in the transaction, one only in the
        // ledger, and one nobody has issued.
        let mut targets: Vec<AssetId> = other_assets.to_vec();
        targets.push(AssetId(settle_assets::hash::tagged_hash(
            "Settle/Example",
            &seed.to_le_bytes(),
        )));
        for b in targets.into_iter().filter(|b| *b != a) {
            let fb = flows.get(&b).copied().unwrap_or_default();
            let amount = u128::from(old);
            let mut relabelled = tx.clone();
            relabelled.outputs[j].asset = b;
            expect_imbalance(
                check_conservation(&relabelled, spent),
                &[
                    (a, fa.inputs, fa.issued, fa.outputs - amount),
                    (b, fb.inputs, fb.issued, fb.outputs + amount),
                ],
            )?;
        }
    }
    Ok(())
}

fn apply(ledger: &mut Ledger, tx: &Transaction, flows: &BTreeMap<AssetId, AssetFlow>) {
    for input in &tx.inputs {
        if !input.prevout.is_null() {
            let removed = ledger.utxos.remove(&input.prevout);
            assert!(removed.is_some(), "spent a coin that is not unspent");
        }
    }
    let txid = tx.txid();
    assert!(ledger.txids.insert(txid), "txid repeats");
    for (vout, o) in tx.outputs.iter().enumerate() {
        if !o.is_burn() {
            let vout = u32::try_from(vout).expect("few outputs");
            ledger.utxos.insert(OutPoint::new(txid, vout), o.clone());
        }
    }
    for (asset, f) in flows {
        let s = ledger.supply.entry(*asset).or_default();
        *s = *s + f.issued - f.burned;
    }
}

fn supply_matches_utxo_set(ledger: &Ledger) -> Result<(), TestCaseError> {
    let mut sums: BTreeMap<AssetId, u128> = BTreeMap::new();
    for coin in ledger.utxos.values() {
        *sums.entry(coin.asset).or_default() += u128::from(coin.amount.units());
    }
    let supply: BTreeMap<AssetId, u128> = ledger
        .supply
        .iter()
        .filter(|(_, s)| **s > 0)
        .map(|(a, s)| (*a, *s))
        .collect();
    prop_assert_eq!(supply, sums);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn conservation_holds_exactly_for_balanced_graphs(
        ops in proptest::collection::vec(arb_op(), 1..=MAX_OPS),
        seed in any::<u64>(),
    ) {
        let mut ledger = Ledger::default();
        let mut built = 0usize;
        for (step, op) in ops.iter().enumerate() {
            let Some((tx, spent)) = build(&mut ledger, op, step as u64 * 10) else {
                continue;
            };
            built += 1;
            if let Err(e) = check_transaction(&tx) {
                return Err(TestCaseError::fail(format!("step {step}: {e}")));
            }
            let expected = expected_flows(&tx, &spent);
            let flows = check_conservation(&tx, &spent)
                .map_err(|e| TestCaseError::fail(format!("step {step}: {e}")))?;
            prop_assert_eq!(&flows, &expected);
            for f in flows.values() {
                prop_assert_eq!(f.inputs + f.issued, f.outputs);
                prop_assert!(f.burned <= f.outputs);
            }
            // B candidates: another asset of this transaction, and one from the ledger
            // that this transaction does not touch.
            let mut others: Vec<AssetId> = flows.keys().copied().collect();
            if let Some(outside) = ledger.supply.keys().find(|a| !flows.contains_key(a)) {
                others.push(*outside);
            }
            check_mutations(&tx, &spent, &flows, &others, seed ^ step as u64)?;
            // A missing or extra spent coin is never taken as balanced.
            let short = check_conservation(&tx, &spent[1..]);
            let refused = matches!(short, Err(ConservationError::SpentCountMismatch { .. }));
            prop_assert!(refused);
            apply(&mut ledger, &tx, &flows);
            supply_matches_utxo_set(&ledger)?;
        }
        // The first operation always builds (an issuance needs nothing; a spend or
        // reissuance of an empty ledger is skipped), so most graphs are non-trivial.
        let first_is_issue = matches!(ops[0], Op::Issue { .. });
        prop_assert!(built > 0 || !first_is_issue);
    }

    /// Dropping any one spent coin's asset to another asset, or any input's amount, is
    /// caught as well: conservation looks at what is spent, not only at what is paid.
    #[test]
    fn changed_spent_coins_are_caught(
        ops in proptest::collection::vec(arb_op(), 1..=12),
    ) {
        let mut ledger = Ledger::default();
        for (step, op) in ops.iter().enumerate() {
            let Some((tx, spent)) = build(&mut ledger, op, step as u64 * 10) else {
                continue;
            };
            let flows = check_conservation(&tx, &spent)
                .map_err(|e| TestCaseError::fail(format!("step {step}: {e}")))?;
            for (i, input) in tx.inputs.iter().enumerate() {
                let coin = &spent[i];
                if input.prevout.is_null() {
                    // A null input's entry is ignored, whatever it says.
                    let mut other = spent.clone();
                    other[i] = TxOut { asset: AssetId([1; 32]), amount: units(5), script_pubkey: vec![] };
                    prop_assert_eq!(check_conservation(&tx, &other), Ok(flows.clone()));
                    continue;
                }
                let f = flows[&coin.asset];
                let mut richer = spent.clone();
                richer[i].amount = units(coin.amount.units() + 1);
                expect_imbalance(
                    check_conservation(&tx, &richer),
                    &[(coin.asset, f.inputs + 1, f.issued, f.outputs)],
                )?;
            }
            apply(&mut ledger, &tx, &flows);
        }
    }
}

#[test]
fn split_covers_the_total_with_positive_parts() {
    for total in [1u64, 2, 3, 10, 1 << 40] {
        for parts in 1..=3u8 {
            for cuts in [[0u64, 0, 0], [u64::MAX, 1, 5], [7, 7, 7]] {
                let s = split(total, parts, &cuts);
                assert_eq!(s.iter().sum::<u64>(), total);
                assert!(s.iter().all(|&x| x > 0));
                assert_eq!(s.len() as u64, u64::from(parts).min(total));
            }
        }
    }
}
