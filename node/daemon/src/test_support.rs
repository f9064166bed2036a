//! Fixtures shared by the daemon's unit tests.

use secp256k1::Keypair;
use settle_assets::Amount;
use settle_assets::contract::{AssetClass, AssetContract};
use settle_assets::hash::ChainId;
use settle_assets::transaction::{
    Issuance, IssuanceKind, OutPoint, Transaction, TxIn, TxOut, Witness,
};
use settle_script::sighash::PrecomputedTx;

/// A new euro cash asset of `units`, all paid to `to`, signed by `issuer`.
pub(crate) fn cash_issuance(
    chain_id: ChainId,
    issuer: &Keypair,
    name: &str,
    ticker: &str,
    reissuable: bool,
    to: &Keypair,
    units: u64,
) -> Transaction {
    let contract = AssetContract {
        class: AssetClass::Cash {
            currency: "EUR".into(),
        },
        name: name.into(),
        ticker: ticker.into(),
        precision: 2,
        issuer: issuer.x_only_public_key().0.serialize(),
        reissuable,
    };
    let issuance = Issuance {
        kind: IssuanceKind::New {
            contract: contract.to_canonical_bytes().expect("contract"),
        },
        amount: Amount::from_units(units).expect("amount"),
        signature: None,
    };
    let asset = issuance.asset_id(&OutPoint::NULL);
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn {
            prevout: OutPoint::NULL,
            sequence: u32::MAX,
            issuance: Some(issuance),
            witness: Witness::default(),
        }],
        outputs: vec![TxOut {
            asset,
            amount: Amount::from_units(units).expect("amount"),
            script_pubkey: settle_script::p2k(&to.x_only_public_key().0),
        }],
        lock_time: 0,
        expiry_height: 0,
    };
    let spent = [TxOut::NONE];
    let sig = {
        let cache = PrecomputedTx::new(&tx, &spent, chain_id).expect("cache");
        settle_script::sign_issuance(&cache, 0, issuer).expect("sign")
    };
    tx.inputs[0].issuance.as_mut().expect("issuance").signature = Some(sig);
    tx
}
