//! Helpers for the securities-lending functional tests (`tests/tests/wallet_lending.rs`):
//! a lender and a borrower wallet on a dev node, the four-step opening run with real
//! `settle` processes, making blocks happen, and hand-built transactions that try what
//! the wallet would refuse, so the node's verdict can be checked.
#![allow(clippy::panic)] // a test harness fails by panicking

use serde_json::Value;
use settle_assets::{AssetClass, AssetContract, AssetId, LendingTerms, OutPoint, TxOut};
use settle_script::addresses::{Address, Network};
use settle_script::lending::Escrow;
use settle_wallet::keys::{Mnemonic, SigningKey, WalletKeys};

use crate::node::TestNode;
use crate::wallet::{Wallet, issuers};

/// Most receive addresses searched for a wallet's key.
const MAX_KEY_SEARCH: u32 = 200;

/// A dev node, the central bank (EUR) and CSD (BOND) wallets, and a lender holding
/// 100 BOND and a borrower holding 10,000.00 EUR.
#[derive(Debug)]
pub struct Desk {
    pub node: TestNode,
    pub cb: Wallet,
    pub csd: Wallet,
    pub lender: Wallet,
    pub borrower: Wallet,
    pub eur: String,
    pub bond: String,
}

impl Desk {
    pub fn new() -> Desk {
        let node = TestNode::start_dev();
        let (cb, csd, eur, bond) = issuers(&node, "1,000,000.00", "1000");
        let lender = Wallet::create(&node, "lender");
        let borrower = Wallet::create(&node, "borrower");
        csd.ok(&["send", "100", "BOND", &lender.address(), "--wait"]);
        cb.ok(&["send", "10,000.00", "EUR", &borrower.address(), "--wait"]);
        Desk {
            node,
            cb,
            csd,
            lender,
            borrower,
            eur,
            bond,
        }
    }

    /// Opens a loan through propose / accept / co-sign / accept, each a `settle`
    /// process; returns the position id and the borrower's loan address.
    pub fn open_loan(
        &self,
        quantity: &str,
        collateral: &str,
        fee: &str,
        maturity_in: u32,
        grace: u32,
    ) -> (String, String) {
        let borrower_address = self.borrower.address();
        let file = self.lender.file("loan.pst");
        let file = file.to_str().expect("utf-8 path");
        let maturity = maturity_in.to_string();
        let grace = grace.to_string();
        let proposed = self.lender.ok(&[
            "lend",
            "propose",
            "--borrower",
            &borrower_address,
            "--security",
            "BOND",
            "--quantity",
            quantity,
            "--collateral",
            collateral,
            "--fee",
            fee,
            "--rate-bps",
            "150",
            "--maturity-in",
            &maturity,
            "--grace",
            &grace,
            "--settle-within",
            "1",
            "--out",
            file,
        ]);
        let position = proposed["position"].as_str().expect("position").to_owned();
        let accepted = self.borrower.ok(&["lend", "accept", file]);
        assert_eq!(accepted["step"], "accepted");
        let cosigned = self.lender.ok(&["lend", "cosign", "--yes", file]);
        assert_eq!(cosigned["step"], "cosigned");
        let done = self
            .borrower
            .ok(&["lend", "accept", "--yes", file, "--wait"]);
        assert_eq!(done["step"], "completed");
        assert_eq!(done["position"], position.as_str());
        (position, borrower_address)
    }

    /// Makes one block happen: a small payment the central bank makes to itself.
    pub fn block(&self) {
        let a = self.cb.address();
        self.cb.ok(&["send", "0.01", "EUR", &a, "--wait"]);
    }

    /// Makes blocks happen until the tip is at least `height`.
    pub fn advance_to(&self, height: u64) {
        while self.node.info().blocks < height {
            self.block();
        }
    }

    /// `settle lend positions` of `wallet`, the entry of `position`.
    pub fn position_of(&self, wallet: &Wallet, position: &str) -> Value {
        let v = wallet.ok(&["lend", "positions"]);
        v["positions"]
            .as_array()
            .expect("positions")
            .iter()
            .find(|p| p["position"] == position)
            .cloned()
            .unwrap_or_else(|| panic!("{position} not in the positions of {}: {v}", wallet.name))
    }
}

impl Default for Desk {
    fn default() -> Self {
        Self::new()
    }
}

/// The signing key behind `address`, one of `wallet`'s receive addresses (derived from its
/// mnemonic, as the test wrote it down).
pub fn key_of(wallet: &Wallet, address: &str) -> SigningKey {
    let m = Mnemonic::parse(wallet.mnemonic.as_deref().expect("mnemonic")).expect("mnemonic");
    let keys = WalletKeys::new(&m.to_seed(""), 0).expect("keys");
    (0..MAX_KEY_SEARCH)
        .map(|i| keys.derive(0, i).expect("derive").key)
        .find(|k| Address::p2k(Network::Dev, &k.x_only()).to_string() == address)
        .unwrap_or_else(|| panic!("{address} is not a receive address of {}", wallet.name))
}

/// The loan's terms and escrow, read from its position contract on the node.
pub fn loan(node: &TestNode, position: &str) -> (LendingTerms, Escrow) {
    let id: AssetId = position.parse().expect("position id");
    let info = node.client().get_asset_info(&id).expect("getassetinfo");
    let bytes = hex::decode(&info.contract_hex).expect("hex");
    let contract = AssetContract::from_canonical_bytes(&bytes).expect("contract");
    let AssetClass::LendingPosition(terms) = contract.class else {
        panic!("{position} is not a lending position");
    };
    let escrow = Escrow::new(id, &terms).expect("escrow");
    (*terms, escrow)
}

/// The borrower's return pre-signature for `escrow` (an outpoint), from its wallet
/// directory.
pub fn presignature(borrower: &Wallet, escrow: &OutPoint) -> Vec<u8> {
    let text = std::fs::read_to_string(borrower.dir.join("lending.json")).expect("lending.json");
    let v: Value = serde_json::from_str(&text).expect("json");
    let hex_sig = v["presignatures"][escrow.to_string()]["signature"]
        .as_str()
        .unwrap_or_else(|| panic!("no pre-signature for {escrow}: {v}"));
    hex::decode(hex_sig).expect("hex")
}

/// The coin paying `address` in transaction `txid`, as (outpoint, output).
pub fn coin_to(node: &TestNode, txid: &settle_assets::Txid, address: &str) -> (OutPoint, TxOut) {
    let tx = node.client().get_raw_transaction(txid).expect("tx");
    let out = tx
        .tx
        .outputs
        .iter()
        .find(|o| o.address.as_deref() == Some(address))
        .unwrap_or_else(|| panic!("no output of {txid} pays {address}"));
    (
        OutPoint::new(*txid, out.n),
        TxOut {
            asset: out.asset,
            amount: settle_assets::Amount::from_units(out.amount).expect("amount"),
            script_pubkey: hex::decode(&out.script_pubkey).expect("hex"),
        },
    )
}

/// A return built by hand, as a borrower's own software might try: the escrow coin and
/// `delivery` (the borrower's security coin) in; output 0 pays `units_to_lender` of the
/// security to the lender, then the collateral and any security change go to the
/// borrower. Input 0 carries `lender_signature` (the pre-signature, or anything else) and
/// the borrower's real `ALL` signature.
pub fn hand_return(
    node: &TestNode,
    escrow: &Escrow,
    escrow_coin: &(OutPoint, TxOut),
    delivery: &(OutPoint, TxOut),
    borrower: &SigningKey,
    units_to_lender: u64,
    lender_signature: Vec<u8>,
) -> settle_assets::Transaction {
    use settle_assets::{Amount, TxIn};
    use settle_script::{PrecomputedTx, SighashType, p2k, sign_p2k_input};
    let mut tx = escrow.return_skeleton(escrow_coin.0);
    tx.outputs[0].amount = Amount::from_units(units_to_lender).expect("amount");
    tx.inputs.push(TxIn::spending(delivery.0));
    let mine = p2k(&borrower.x_only());
    tx.outputs.push(TxOut {
        script_pubkey: mine.clone(),
        ..escrow_coin.1.clone()
    });
    let left = delivery.1.amount.units().saturating_sub(units_to_lender);
    if left > 0 {
        tx.outputs.push(TxOut {
            asset: delivery.1.asset,
            amount: Amount::from_units(left).expect("amount"),
            script_pubkey: mine,
        });
    }
    let spent = [escrow_coin.1.clone(), delivery.1.clone()];
    let chain_id = node.chain_id();
    let (w0, w1) = {
        let cache = PrecomputedTx::new(&tx, &spent, chain_id).expect("sighash cache");
        let sig = escrow
            .sign_input(&cache, 0, borrower.keypair(), SighashType::All)
            .expect("sign escrow input");
        let w1 = sign_p2k_input(&cache, 1, borrower.keypair(), SighashType::All)
            .expect("sign delivery coin");
        (escrow.return_witness(sig, lender_signature), w1)
    };
    tx.inputs[0].witness = w0;
    tx.inputs[1].witness = w1;
    tx
}

/// The reject code of a `sendrawtransaction` refusal (panics on success or another error).
pub fn reject_code(result: Result<settle_assets::Txid, settle_rpc::ClientError>) -> String {
    let e = result.expect_err("the node must refuse it");
    let rpc = e.rpc().unwrap_or_else(|| panic!("not an rpc error: {e}"));
    assert_eq!(rpc.code, settle_rpc::codes::TX_REJECTED, "{rpc:?}");
    rpc.reject_data().expect("reject data").reject_code
}
