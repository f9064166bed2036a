//! Coin selection and the transaction builder: pure functions from the wallet's coins and
//! what a person wants to pay to an unsigned transaction (and its PST).
//!
//! Every asset is selected on its own: a payment of 10 BOND and 1,000 EUR picks BOND
//! coins for the bonds and EUR coins for the euros, and each asset that has more selected
//! than paid gets its own change output to a fresh change address. There are no fees, so
//! an exact match needs no change at all; branch-and-bound looks for one first.

use std::collections::BTreeSet;

use serde::Serialize;
use settle_assets::limits::{MAX_TX_INPUTS, MAX_TX_OUTPUTS};
use settle_assets::transaction::TX_VERSION;
use settle_assets::{Amount, AssetId, ChainId, OutPoint, Transaction, TxIn, TxOut};
use settle_script::{Network, ScriptKind, classify};

use crate::keys::KeyOrigin;
use crate::pst::{Pst, PstError};

/// Most coins one selection may use (well under the transaction's input limit, so a
/// multi-asset payment still fits).
pub const MAX_SELECTED_COINS: usize = 500;
/// Most subsets branch-and-bound visits before giving up on an exact match.
pub const MAX_BNB_TRIES: usize = 100_000;

/// A coin the wallet can spend.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct WalletCoin {
    pub outpoint: OutPoint,
    pub txout: TxOut,
    /// Where the key that spends it comes from (for pay-to-key coins of this wallet).
    pub origin: Option<KeyOrigin>,
}

/// How coins are chosen.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Strategy {
    /// Biggest coins first until the target is reached.
    LargestFirst,
    /// A subset that matches the target exactly (no change), else largest-first.
    #[default]
    BranchAndBound,
}

/// Why coins could not be selected or a transaction built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("insufficient funds in asset {asset}: have {have} units, need {need}")]
    InsufficientFunds {
        asset: AssetId,
        have: u128,
        need: u128,
    },
    #[error("cannot pay an amount of zero (output {output})")]
    ZeroAmount { output: usize },
    #[error("nothing to pay")]
    NoPayments,
    #[error("paying asset {asset} needs {needed} coins, more than the limit of {max}")]
    TooManyCoins {
        asset: AssetId,
        needed: usize,
        max: usize,
    },
    #[error("the payments in asset {asset} add up to more than the largest amount")]
    Overflow { asset: AssetId },
    #[error("too many {what}: the limit is {max}")]
    TooMany { what: &'static str, max: usize },
    #[error("no change address: {0}")]
    Change(String),
    #[error(transparent)]
    Pst(#[from] PstError),
}

/// The coins chosen for one asset.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Selection {
    pub coins: Vec<WalletCoin>,
    /// What the coins hold together.
    pub total: Amount,
    /// `total - target`: what goes back to the wallet.
    pub change: Amount,
}

fn sort_largest_first(coins: &mut [&WalletCoin]) {
    // Ties broken by outpoint so the choice is deterministic.
    coins.sort_by(|a, b| {
        b.txout
            .amount
            .cmp(&a.txout.amount)
            .then_with(|| a.outpoint.cmp(&b.outpoint))
    });
}

/// Chooses coins of `asset` worth at least `target` from `coins` (coins of other assets
/// are ignored).
pub fn select_coins(
    coins: &[WalletCoin],
    asset: AssetId,
    target: Amount,
    strategy: Strategy,
) -> Result<Selection, BuildError> {
    if target == Amount::ZERO {
        return Err(BuildError::ZeroAmount { output: 0 });
    }
    let mut candidates: Vec<&WalletCoin> = coins
        .iter()
        .filter(|c| c.txout.asset == asset && c.txout.amount > Amount::ZERO)
        .collect();
    let have: u128 = candidates
        .iter()
        .map(|c| u128::from(c.txout.amount.units()))
        .sum();
    let need = u128::from(target.units());
    if have < need {
        return Err(BuildError::InsufficientFunds { asset, have, need });
    }
    sort_largest_first(&mut candidates);
    let chosen: Vec<&WalletCoin> = match strategy {
        Strategy::BranchAndBound => match exact_match(&candidates, target.units()) {
            Some(exact) => exact,
            None => largest_first(&candidates, need),
        },
        Strategy::LargestFirst => largest_first(&candidates, need),
    };
    if chosen.len() > MAX_SELECTED_COINS {
        return Err(BuildError::TooManyCoins {
            asset,
            needed: chosen.len(),
            max: MAX_SELECTED_COINS,
        });
    }
    let total_units: u128 = chosen
        .iter()
        .map(|c| u128::from(c.txout.amount.units()))
        .sum();
    // The change is below the target's complement only if total fits an Amount, which
    // it need not (many large coins); refuse rather than wrap.
    let total = u64::try_from(total_units)
        .ok()
        .and_then(Amount::from_units)
        .ok_or(BuildError::Overflow { asset })?;
    let change = total
        .checked_sub(target)
        .ok_or(BuildError::InsufficientFunds { asset, have, need })?;
    Ok(Selection {
        coins: chosen.into_iter().cloned().collect(),
        total,
        change,
    })
}

fn largest_first<'a>(sorted: &[&'a WalletCoin], need: u128) -> Vec<&'a WalletCoin> {
    let mut sum = 0u128;
    let mut out = Vec::new();
    for c in sorted {
        if sum >= need {
            break;
        }
        sum += u128::from(c.txout.amount.units());
        out.push(*c);
    }
    out
}

/// Depth-first search for a subset of `sorted` (largest first) summing to exactly
/// `target`, skipping branches that cannot reach it, within [`MAX_BNB_TRIES`] steps.
fn exact_match<'a>(sorted: &[&'a WalletCoin], target: u64) -> Option<Vec<&'a WalletCoin>> {
    let amounts: Vec<u128> = sorted
        .iter()
        .map(|c| u128::from(c.txout.amount.units()))
        .collect();
    // remaining[i] = sum of amounts[i..]: the most a branch starting at i can still add.
    let mut remaining = vec![0u128; amounts.len() + 1];
    for i in (0..amounts.len()).rev() {
        remaining[i] = remaining[i + 1] + amounts[i];
    }
    let target = u128::from(target);
    let mut chosen: Vec<usize> = Vec::new();
    let mut tries = 0usize;
    fn search(
        i: usize,
        sum: u128,
        target: u128,
        amounts: &[u128],
        remaining: &[u128],
        chosen: &mut Vec<usize>,
        tries: &mut usize,
    ) -> bool {
        *tries += 1;
        if sum == target {
            return true;
        }
        if i == amounts.len()
            || sum + remaining[i] < target
            || *tries > MAX_BNB_TRIES
            || chosen.len() >= MAX_SELECTED_COINS
        {
            return false;
        }
        if sum + amounts[i] <= target {
            chosen.push(i);
            if search(
                i + 1,
                sum + amounts[i],
                target,
                amounts,
                remaining,
                chosen,
                tries,
            ) {
                return true;
            }
            chosen.pop();
        }
        // Skip coins of the same amount as the one just left out: they lead to the same
        // sums, and trying them again only burns tries.
        let mut next = i + 1;
        while next < amounts.len() && amounts[next] == amounts[i] {
            next += 1;
        }
        search(next, sum, target, amounts, remaining, chosen, tries)
    }
    search(0, 0, target, &amounts, &remaining, &mut chosen, &mut tries)
        .then(|| chosen.into_iter().map(|i| sorted[i]).collect())
}

/// A coin of `asset` holding exactly `amount`, if there is one (offers spend a whole
/// coin, so they need one; otherwise pay `amount` to yourself first).
pub fn find_exact_coin(
    coins: &[WalletCoin],
    asset: AssetId,
    amount: Amount,
) -> Option<&WalletCoin> {
    coins
        .iter()
        .filter(|c| c.txout.asset == asset && c.txout.amount == amount)
        .min_by_key(|c| c.outpoint)
}

/// One output a person wants to pay.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Payment {
    pub asset: AssetId,
    pub amount: Amount,
    pub script_pubkey: Vec<u8>,
    /// Who receives it (written into the PST for the people reading it).
    pub label: Option<String>,
}

/// Where change of one asset goes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ChangeAddress {
    pub script_pubkey: Vec<u8>,
    pub origin: Option<KeyOrigin>,
}

/// Options for [`build_payment`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct BuildOptions {
    pub strategy: Strategy,
    pub lock_time: u32,
    /// Last block height at which the transaction may be included (0 = none).
    pub expiry_height: u32,
}

/// The change output made for one asset.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct ChangeOutput {
    pub output: usize,
    pub asset: AssetId,
    pub amount: Amount,
}

/// An unsigned transaction and everything needed to make its PST.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BuiltTx {
    pub tx: Transaction,
    /// The coins spent, one per input, in input order.
    pub coins: Vec<WalletCoin>,
    pub payments: Vec<Payment>,
    pub change: Vec<(ChangeOutput, ChangeAddress)>,
}

/// Builds an unsigned transaction paying `payments` from `coins`, with one change output
/// per asset that needs one, to the address `change` hands out for that asset.
pub fn build_payment<F>(
    coins: &[WalletCoin],
    payments: &[Payment],
    mut change: F,
    options: BuildOptions,
) -> Result<BuiltTx, BuildError>
where
    F: FnMut(AssetId) -> Result<ChangeAddress, String>,
{
    if payments.is_empty() {
        return Err(BuildError::NoPayments);
    }
    if let Some(output) = payments.iter().position(|p| p.amount == Amount::ZERO) {
        return Err(BuildError::ZeroAmount { output });
    }
    // Assets in order of first appearance, with their totals.
    let mut totals: Vec<(AssetId, Amount)> = Vec::new();
    for p in payments {
        match totals.iter_mut().find(|(a, _)| *a == p.asset) {
            Some((_, sum)) => {
                *sum = sum
                    .checked_add(p.amount)
                    .ok_or(BuildError::Overflow { asset: p.asset })?;
            }
            None => totals.push((p.asset, p.amount)),
        }
    }
    let mut selected: Vec<WalletCoin> = Vec::new();
    let mut changes: Vec<(AssetId, Amount)> = Vec::new();
    for (asset, target) in &totals {
        let s = select_coins(coins, *asset, *target, options.strategy)?;
        if s.change > Amount::ZERO {
            changes.push((*asset, s.change));
        }
        selected.extend(s.coins);
    }
    // A coin listed twice by the caller must not be spent twice.
    let mut seen = BTreeSet::new();
    selected.retain(|c| seen.insert(c.outpoint));
    if selected.len() > MAX_TX_INPUTS {
        return Err(BuildError::TooMany {
            what: "inputs",
            max: MAX_TX_INPUTS,
        });
    }
    if payments.len() + changes.len() > MAX_TX_OUTPUTS {
        return Err(BuildError::TooMany {
            what: "outputs",
            max: MAX_TX_OUTPUTS,
        });
    }
    let mut outputs: Vec<TxOut> = payments
        .iter()
        .map(|p| TxOut {
            asset: p.asset,
            amount: p.amount,
            script_pubkey: p.script_pubkey.clone(),
        })
        .collect();
    let mut change_outputs = Vec::with_capacity(changes.len());
    for (asset, amount) in changes {
        let addr = change(asset).map_err(BuildError::Change)?;
        change_outputs.push((
            ChangeOutput {
                output: outputs.len(),
                asset,
                amount,
            },
            addr.clone(),
        ));
        outputs.push(TxOut {
            asset,
            amount,
            script_pubkey: addr.script_pubkey,
        });
    }
    let tx = Transaction {
        version: TX_VERSION,
        inputs: selected
            .iter()
            .map(|c| TxIn::spending(c.outpoint))
            .collect(),
        outputs,
        lock_time: options.lock_time,
        expiry_height: options.expiry_height,
    };
    Ok(BuiltTx {
        tx,
        coins: selected,
        payments: payments.to_vec(),
        change: change_outputs,
    })
}

impl BuiltTx {
    /// The PST of this transaction: spent outputs, key origins of the wallet's inputs
    /// (so [`Pst::sign_with_wallet`] finds its keys), payment labels, change key origins.
    pub fn to_pst(&self, chain_id: ChainId, network: Network) -> Result<Pst, BuildError> {
        let spent = self.coins.iter().map(|c| Some(c.txout.clone())).collect();
        let mut pst = Pst::create(self.tx.clone(), spent, chain_id, network)?;
        for (i, coin) in self.coins.iter().enumerate() {
            if let (Some(origin), ScriptKind::PayToKey(k)) =
                (&coin.origin, classify(&coin.txout.script_pubkey))
                && let Ok(key) = secp256k1::XOnlyPublicKey::from_byte_array(k)
            {
                pst.add_input_key_origin(i, &key, origin.clone())?;
            }
        }
        for (o, p) in self.payments.iter().enumerate() {
            if let Some(label) = &p.label {
                pst.set_output_label(o, label)?;
            }
        }
        for (c, addr) in &self.change {
            if let (Some(origin), ScriptKind::PayToKey(k)) =
                (&addr.origin, classify(&addr.script_pubkey))
                && let Ok(key) = secp256k1::XOnlyPublicKey::from_byte_array(k)
            {
                pst.add_output_key_origin(c.output, &key, origin.clone())?;
            }
        }
        Ok(pst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use settle_assets::Txid;

    fn coin(n: u8, asset: u8, units: u64) -> WalletCoin {
        WalletCoin {
            outpoint: OutPoint::new(Txid([n; 32]), 0),
            txout: TxOut {
                asset: AssetId([asset; 32]),
                amount: Amount::from_units(units).expect("amount"),
                script_pubkey: vec![0x51, 0x20],
            },
            origin: None,
        }
    }

    fn amt(u: u64) -> Amount {
        Amount::from_units(u).expect("amount")
    }

    #[test]
    fn branch_and_bound_finds_an_exact_match() {
        let coins = vec![
            coin(1, 1, 50),
            coin(2, 1, 30),
            coin(3, 1, 20),
            coin(4, 1, 7),
        ];
        let s = select_coins(&coins, AssetId([1; 32]), amt(27), Strategy::BranchAndBound)
            .expect("select");
        assert_eq!(s.change, Amount::ZERO);
        assert_eq!(s.total, amt(27));
        assert_eq!(s.coins.len(), 2);
        // Largest-first overshoots and makes change.
        let s = select_coins(&coins, AssetId([1; 32]), amt(27), Strategy::LargestFirst)
            .expect("select");
        assert_eq!((s.coins.len(), s.change), (1, amt(23)));
        // No exact subset: falls back to largest-first.
        let s = select_coins(&coins, AssetId([1; 32]), amt(99), Strategy::BranchAndBound)
            .expect("select");
        assert_eq!((s.total, s.change), (amt(100), amt(1)));
    }

    #[test]
    fn insufficient_funds_names_have_and_need() {
        let coins = vec![coin(1, 1, 50), coin(2, 2, 1_000)];
        let err = select_coins(&coins, AssetId([1; 32]), amt(51), Strategy::default())
            .expect_err("too little");
        assert_eq!(
            err,
            BuildError::InsufficientFunds {
                asset: AssetId([1; 32]),
                have: 50,
                need: 51
            }
        );
        assert!(err.to_string().contains("have 50 units, need 51"));
        assert!(matches!(
            select_coins(&coins, AssetId([3; 32]), amt(1), Strategy::default()),
            Err(BuildError::InsufficientFunds { have: 0, .. })
        ));
    }

    #[test]
    fn builds_per_asset_change() {
        let coins = vec![coin(1, 1, 50), coin(2, 2, 1_000), coin(3, 2, 500)];
        let payments = vec![
            Payment {
                asset: AssetId([1; 32]),
                amount: amt(10),
                script_pubkey: vec![0xaa],
                label: Some("bob".into()),
            },
            Payment {
                asset: AssetId([2; 32]),
                amount: amt(1_500),
                script_pubkey: vec![0xbb],
                label: None,
            },
        ];
        let mut asked = Vec::new();
        let built = build_payment(
            &coins,
            &payments,
            |asset| {
                asked.push(asset);
                Ok(ChangeAddress {
                    script_pubkey: vec![0xcc; asked.len()],
                    origin: None,
                })
            },
            BuildOptions {
                expiry_height: 99,
                ..BuildOptions::default()
            },
        )
        .expect("build");
        // Asset 2 is paid exactly (1,000 + 500): only asset 1 needs change.
        assert_eq!(asked, vec![AssetId([1; 32])]);
        assert_eq!(built.tx.inputs.len(), 3);
        assert_eq!(built.tx.outputs.len(), 3);
        assert_eq!(built.tx.outputs[2].amount, amt(40));
        assert_eq!(built.tx.expiry_height, 99);
        let spent: Vec<TxOut> = built.coins.iter().map(|c| c.txout.clone()).collect();
        settle_assets::check_conservation(&built.tx, &spent).expect("balanced");
        let pst = built
            .to_pst(settle_assets::ChainId([1; 32]), Network::Dev)
            .expect("pst");
        assert_eq!(pst.outputs()[0].label.as_deref(), Some("bob"));
        assert!(pst.inputs().iter().all(|i| i.spent_output.is_some()));
    }

    #[test]
    fn refuses_zero_and_empty_payments_and_failed_change() {
        let coins = vec![coin(1, 1, 50)];
        let pay = |u| Payment {
            asset: AssetId([1; 32]),
            amount: amt(u),
            script_pubkey: vec![0xaa],
            label: None,
        };
        let no_change = |_| Err("wallet has no more change addresses".to_owned());
        assert_eq!(
            build_payment(&coins, &[], no_change, BuildOptions::default()),
            Err(BuildError::NoPayments)
        );
        assert_eq!(
            build_payment(
                &coins,
                &[pay(1), pay(0)],
                no_change,
                BuildOptions::default()
            ),
            Err(BuildError::ZeroAmount { output: 1 })
        );
        assert!(matches!(
            build_payment(&coins, &[pay(10)], no_change, BuildOptions::default()),
            Err(BuildError::Change(_))
        ));
        // An exact payment needs no change address at all.
        assert!(build_payment(&coins, &[pay(50)], no_change, BuildOptions::default()).is_ok());
        assert_eq!(
            find_exact_coin(&coins, AssetId([1; 32]), amt(50)).map(|c| c.outpoint),
            Some(coins[0].outpoint)
        );
        assert!(find_exact_coin(&coins, AssetId([1; 32]), amt(49)).is_none());
    }

    #[test]
    fn branch_and_bound_stays_bounded_on_hard_inputs() {
        // Many equal coins and an odd target: no exact subset exists; the search must
        // give up quickly and fall back.
        let coins: Vec<WalletCoin> = (0..200u8).map(|n| coin(n, 1, 2)).collect();
        let s = select_coins(&coins, AssetId([1; 32]), amt(101), Strategy::BranchAndBound)
            .expect("select");
        assert_eq!((s.total, s.change), (amt(102), amt(1)));
    }
}
