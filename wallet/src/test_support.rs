//! Fixtures shared by the unit tests of the offer and lending modules.

use settle_assets::hash::{AssetId, ChainId};
use settle_assets::transaction::{OutPoint, TxOut};
use settle_assets::{Amount, Txid};

use crate::coins::WalletCoin;
use crate::keys::{Mnemonic, WalletKeys};

pub const CHAIN: ChainId = ChainId([7; 32]);
pub const EUR: AssetId = AssetId([0xe0; 32]);
pub const BOND: AssetId = AssetId([0xb0; 32]);

/// A wallet whose seed is `seed` repeated: the same keys on every run.
pub fn wallet(seed: u8) -> WalletKeys {
    let m = Mnemonic::from_entropy(&[seed; 32]).expect("m");
    WalletKeys::new(&m.to_seed(""), 0).expect("keys")
}

/// A coin of `units` of `asset` paying the wallet's receive key `index`, at a made-up
/// outpoint whose txid is `n` repeated.
pub fn coin(keys: &WalletKeys, index: u32, n: u8, asset: AssetId, units: u64) -> WalletCoin {
    let k = keys.derive(0, index).expect("k");
    WalletCoin {
        outpoint: OutPoint::new(Txid([n; 32]), 0),
        txout: TxOut {
            asset,
            amount: Amount::from_units(units).expect("a"),
            script_pubkey: settle_script::p2k(&k.x_only()),
        },
        origin: Some(k.origin),
    }
}

/// A change address of `keys` at `index` of the change chain, with its key origin.
pub fn change(keys: &WalletKeys, index: u32) -> crate::coins::ChangeAddress {
    let k = keys.derive(1, index).expect("k");
    crate::coins::ChangeAddress {
        script_pubkey: settle_script::p2k(&k.x_only()),
        origin: Some(k.origin),
    }
}

/// Whether a script pays one of the first eight receive or change keys of `keys`.
pub fn ours(keys: &WalletKeys) -> impl Fn(&[u8]) -> bool + use<> {
    let scripts: Vec<Vec<u8>> = (0..8)
        .flat_map(|i| {
            [
                settle_script::p2k(&keys.derive(0, i).expect("k").x_only()),
                settle_script::p2k(&keys.derive(1, i).expect("k").x_only()),
            ]
        })
        .collect();
    move |s: &[u8]| scripts.iter().any(|x| x == s)
}

/// The test loan: 10 BOND against 1,000 EUR of collateral and a fee of 5 EUR, settled
/// at height 50, maturing at 60 with 2 blocks of grace.
pub fn loan_terms(lender: [u8; 32], borrower: [u8; 32]) -> settle_assets::LendingTerms {
    settle_assets::LendingTerms {
        isin: "US0378331005".into(),
        security_asset: BOND,
        quantity: 10,
        lender,
        borrower,
        collateral_asset: EUR,
        collateral_amount: 1_000,
        fee_asset: EUR,
        fee: 5,
        interest_rate_bps: 100,
        settlement_height: 50,
        maturity_height: 60,
        grace_period_blocks: 2,
        negotiator: None,
        lender_player: None,
    }
}
