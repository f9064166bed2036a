//! Per-asset conservation: for every asset, inputs + issued = outputs (burns included).
//!
//! Sums are taken in `u128`: at most 2,500 amounts below 2^63 each cannot overflow it,
//! and the additions are checked anyway so a change of limits can never wrap silently.

use std::collections::BTreeMap;
use std::fmt;

use crate::hash::AssetId;
use crate::transaction::{Transaction, TxOut};

/// How much of one asset a transaction moves.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct AssetFlow {
    /// Units of the asset in the coins spent.
    pub inputs: u128,
    /// Units created by issuance records.
    pub issued: u128,
    /// Units in the outputs, burns included.
    pub outputs: u128,
    /// Units in burn outputs (a part of `outputs`).
    pub burned: u128,
}

/// One asset whose inputs + issued differ from its outputs.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AssetImbalance {
    pub asset: AssetId,
    pub inputs: u128,
    pub issued: u128,
    pub outputs: u128,
}

impl fmt::Display for AssetImbalance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Saturating: the fields are public, so a hand-made value must not panic here.
        let available = self.inputs.saturating_add(self.issued);
        let (word, diff) = if self.outputs > available {
            ("exceed", self.outputs - available)
        } else {
            ("fall short of", available - self.outputs)
        };
        write!(
            f,
            "asset {}: outputs {} {word} inputs {} + issued {} by {diff} units",
            self.asset, self.outputs, self.inputs, self.issued
        )
    }
}

/// Why a transaction does not conserve its assets.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ConservationError {
    #[error("{spent} spent outputs given for {inputs} inputs")]
    SpentCountMismatch { inputs: usize, spent: usize },
    #[error("{}", describe(.0))]
    Imbalance(Vec<AssetImbalance>),
    #[error("sum of asset {0} overflows")]
    Overflow(AssetId),
}

fn describe(imbalances: &[AssetImbalance]) -> String {
    match imbalances {
        [] => "no imbalance".into(),
        [one] => format!("out of balance: {one}"),
        [first, rest @ ..] => format!("out of balance: {first} (and {} more assets)", rest.len()),
    }
}

/// Checks conservation for `tx`, whose inputs spent the coins in `spent` (one per input,
/// in order; a null input's entry is ignored). Returns each asset's flow on success, and
/// on failure every asset out of balance, ordered by asset id.
pub fn check_conservation(
    tx: &Transaction,
    spent: &[TxOut],
) -> Result<BTreeMap<AssetId, AssetFlow>, ConservationError> {
    if spent.len() != tx.inputs.len() {
        return Err(ConservationError::SpentCountMismatch {
            inputs: tx.inputs.len(),
            spent: spent.len(),
        });
    }
    let mut flows: BTreeMap<AssetId, AssetFlow> = BTreeMap::new();
    let add = |sum: &mut u128, asset: AssetId, units: u64| -> Result<(), ConservationError> {
        *sum = sum
            .checked_add(u128::from(units))
            .ok_or(ConservationError::Overflow(asset))?;
        Ok(())
    };
    for (input, coin) in tx.inputs.iter().zip(spent) {
        if !input.prevout.is_null() {
            add(
                &mut flows.entry(coin.asset).or_default().inputs,
                coin.asset,
                coin.amount.units(),
            )?;
        }
    }
    for (_, asset, amount) in tx.issuances() {
        add(
            &mut flows.entry(asset).or_default().issued,
            asset,
            amount.units(),
        )?;
    }
    for output in &tx.outputs {
        let flow = flows.entry(output.asset).or_default();
        add(&mut flow.outputs, output.asset, output.amount.units())?;
        if output.is_burn() {
            add(&mut flow.burned, output.asset, output.amount.units())?;
        }
    }
    let imbalances: Vec<AssetImbalance> = flows
        .iter()
        .filter(|(_, f)| f.inputs.checked_add(f.issued) != Some(f.outputs))
        .map(|(asset, f)| AssetImbalance {
            asset: *asset,
            inputs: f.inputs,
            issued: f.issued,
            outputs: f.outputs,
        })
        .collect();
    if imbalances.is_empty() {
        Ok(flows)
    } else {
        Err(ConservationError::Imbalance(imbalances))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amount::Amount;
    use crate::hash::Txid;
    use crate::transaction::{OutPoint, TxIn};

    fn out(asset: u8, units: u64) -> TxOut {
        TxOut {
            asset: AssetId([asset; 32]),
            amount: Amount::from_units(units).expect("in range"),
            script_pubkey: vec![0x51],
        }
    }

    fn tx(n_inputs: u32, outputs: Vec<TxOut>) -> Transaction {
        Transaction {
            version: 1,
            inputs: (0..n_inputs)
                .map(|i| TxIn::spending(OutPoint::new(Txid([1; 32]), i)))
                .collect(),
            outputs,
            lock_time: 0,
            expiry_height: 0,
        }
    }

    #[test]
    fn balanced_swap_passes() {
        let t = tx(2, vec![out(1, 100), out(2, 10)]);
        let flows = check_conservation(&t, &[out(2, 10), out(1, 100)]).expect("balanced");
        assert_eq!(flows.len(), 2);
    }

    #[test]
    fn imbalance_names_the_asset_and_amounts() {
        let t = tx(1, vec![out(1, 101)]);
        let err = check_conservation(&t, &[out(1, 100)]).expect_err("unbalanced");
        assert!(matches!(&err, ConservationError::Imbalance(list) if list.len() == 1));
        if let ConservationError::Imbalance(list) = &err {
            assert_eq!(list[0].asset, AssetId([1; 32]));
            assert_eq!((list[0].inputs, list[0].outputs), (100, 101));
        }
        assert!(
            err.to_string()
                .contains("exceed inputs 100 + issued 0 by 1 units")
        );
    }

    #[test]
    fn burns_count_as_outputs() {
        let mut burn = out(1, 40);
        burn.script_pubkey = vec![crate::OP_RETURN];
        let t = tx(1, vec![out(1, 60), burn]);
        let flows = check_conservation(&t, &[out(1, 100)]).expect("balanced");
        assert_eq!(flows[&AssetId([1; 32])].burned, 40);
    }
}
