//! A small chain with real keys and signatures, shared by the integration tests.
#![allow(dead_code)]

pub use secp256k1::Keypair;
use secp256k1::{SECP256K1, XOnlyPublicKey};
use settle_assets::amount::Amount;
use settle_assets::contract::{AssetClass, AssetContract};
use settle_assets::hash::{AssetId, ChainId};
use settle_assets::transaction::{
    Issuance, IssuanceKind, OutPoint, Transaction, TxIn, TxOut, Witness,
};
use settle_chain::{
    Allocation, AllocationOutput, Block, BuiltBlock, ChainSpec, ChainView, Coin, Genesis,
    MemoryState, Network, TxContext, build_block, sign_precommit,
};
use settle_script::addresses::Address;
use settle_script::sighash::{PrecomputedTx, SighashType};
use settle_script::sign::{sign_issuance, sign_p2k_input};
use settle_script::templates::p2k;

pub const GENESIS_TIME_MS: u64 = 1_700_000_000_000;
/// Milliseconds between the blocks the fixture makes.
pub const BLOCK_INTERVAL_MS: u64 = 1_000;

pub fn keypair(seed: u8) -> Keypair {
    Keypair::from_seckey_byte_array(SECP256K1, [seed; 32]).expect("valid secret key")
}

pub fn xonly(kp: &Keypair) -> XOnlyPublicKey {
    kp.x_only_public_key().0
}

pub fn key_bytes(kp: &Keypair) -> [u8; 32] {
    xonly(kp).serialize()
}

pub fn amount(units: u64) -> Amount {
    Amount::from_units(units).expect("in range")
}

pub fn cash_contract(issuer: &Keypair, ticker: &str, currency: &str) -> AssetContract {
    AssetContract {
        class: AssetClass::Cash {
            currency: currency.into(),
        },
        name: format!("{currency} cash token"),
        ticker: ticker.into(),
        precision: 2,
        issuer: key_bytes(issuer),
        reissuable: true,
    }
}

pub fn bond_contract(issuer: &Keypair) -> AssetContract {
    AssetContract {
        class: AssetClass::Security {
            isin: "US0378331005".into(),
        },
        name: "Apple Inc. common stock".into(),
        ticker: "AAPL".into(),
        precision: 0,
        issuer: key_bytes(issuer),
        reissuable: false,
    }
}

pub fn pay(asset: AssetId, units: u64, to: &Keypair) -> TxOut {
    TxOut {
        asset,
        amount: amount(units),
        script_pubkey: p2k(&xonly(to)),
    }
}

/// A dev chain: one validator, one issuer for every class; 1,000.00 EUR (reissuable)
/// to Alice and 100 AAPL (not reissuable) to Bob at genesis.
pub struct Fixture {
    pub validator: Keypair,
    pub issuer: Keypair,
    pub alice: Keypair,
    pub bob: Keypair,
    pub spec: ChainSpec,
    pub genesis: Genesis,
    pub chain_id: ChainId,
    pub state: MemoryState,
    pub eur: AssetId,
    pub bond: AssetId,
}

impl Fixture {
    pub fn new() -> Self {
        Self::with_spec(|_| {})
    }

    /// A fixture whose spec `edit` may change before genesis is made.
    pub fn with_spec(edit: impl FnOnce(&mut ChainSpec)) -> Self {
        let validator = keypair(1);
        let issuer = keypair(2);
        let alice = keypair(3);
        let bob = keypair(4);
        let mut spec = ChainSpec::dev(&xonly(&validator), &xonly(&issuer), GENESIS_TIME_MS);
        let output = |kp: &Keypair, units: u64, precision: u8| AllocationOutput {
            address: Address::p2k(Network::Dev, &xonly(kp)).to_string(),
            script_pubkey: p2k(&xonly(kp)),
            amount: amount(units * 10u64.pow(u32::from(precision))),
        };
        spec.allocations = vec![
            Allocation {
                contract: cash_contract(&issuer, "EUR", "EUR"),
                outputs: vec![output(&alice, 1_000, 2)],
            },
            Allocation {
                contract: bond_contract(&issuer),
                outputs: vec![output(&bob, 100, 0)],
            },
        ];
        edit(&mut spec);
        let genesis = spec.genesis().expect("valid genesis");
        let chain_id = genesis.chain_id;
        let state = MemoryState::from_genesis(&genesis);
        let asset_of = |i: usize| genesis.block.transactions[i].outputs[0].asset;
        let eur = asset_of(0);
        let bond = asset_of(1);
        Fixture {
            validator,
            issuer,
            alice,
            bob,
            spec,
            genesis,
            chain_id,
            state,
            eur,
            bond,
        }
    }

    /// The context of the next block.
    pub fn ctx(&self) -> TxContext<'_> {
        TxContext {
            chain_id: self.chain_id,
            spec: &self.spec,
            height: self.state.tip().height + 1,
            time_ms: self.state.tip().time_ms + BLOCK_INTERVAL_MS,
        }
    }

    /// Unspent coins of `asset` locked to `owner`, ordered by outpoint.
    pub fn coins(&self, owner: &Keypair, asset: AssetId) -> Vec<(OutPoint, Coin)> {
        let script = p2k(&xonly(owner));
        let mut coins: Vec<(OutPoint, Coin)> = self
            .state
            .coins()
            .filter(|(_, c)| c.output.asset == asset && c.output.script_pubkey == script)
            .map(|(o, c)| (*o, c.clone()))
            .collect();
        coins.sort_by_key(|(o, _)| *o);
        coins
    }

    pub fn coin(&self, owner: &Keypair, asset: AssetId) -> (OutPoint, Coin) {
        self.coins(owner, asset)
            .into_iter()
            .next()
            .expect("the owner has a coin of the asset")
    }

    /// The outputs `tx`'s inputs spend, looked up in `view` (plus `extra`).
    pub fn spent_outputs(
        &self,
        tx: &Transaction,
        view: &impl ChainView,
        extra: &[(OutPoint, TxOut)],
    ) -> Vec<TxOut> {
        tx.inputs
            .iter()
            .map(|i| {
                if i.prevout.is_null() {
                    return TxOut::NONE;
                }
                extra
                    .iter()
                    .find(|(o, _)| *o == i.prevout)
                    .map(|(_, t)| t.clone())
                    .or_else(|| view.coin(&i.prevout).map(|c| c.output))
                    .unwrap_or(TxOut::NONE)
            })
            .collect()
    }

    /// Signs every spending input with the key at the same position of `signers`
    /// (`None` leaves it unsigned), and every issuance with `issuer_signer`.
    pub fn sign_with(
        &self,
        tx: &mut Transaction,
        signers: &[Option<&Keypair>],
        issuer_signer: Option<&Keypair>,
        extra: &[(OutPoint, TxOut)],
    ) {
        let spent = self.spent_outputs(tx, &self.state, extra);
        let (witnesses, issuance_sigs) = {
            let cache = PrecomputedTx::new(tx, &spent, self.chain_id).expect("one spent per input");
            let witnesses: Vec<Option<Witness>> = (0..tx.inputs.len())
                .map(|i| {
                    // Inputs whose coin is unknown (tests of missing inputs) stay unsigned.
                    if spent[i] == TxOut::NONE {
                        return None;
                    }
                    signers.get(i).copied().flatten().map(|kp| {
                        sign_p2k_input(&cache, i, kp, SighashType::All).expect("signable")
                    })
                })
                .collect();
            let issuance_sigs: Vec<Option<[u8; 64]>> = (0..tx.inputs.len())
                .map(|i| match (&tx.inputs[i].issuance, issuer_signer) {
                    (Some(_), Some(kp)) => Some(sign_issuance(&cache, i, kp).expect("signable")),
                    _ => None,
                })
                .collect();
            (witnesses, issuance_sigs)
        };
        for (input, w) in tx.inputs.iter_mut().zip(witnesses) {
            if let Some(w) = w {
                input.witness = w;
            }
        }
        for (input, s) in tx.inputs.iter_mut().zip(issuance_sigs) {
            if let (Some(issuance), Some(sig)) = (&mut input.issuance, s) {
                issuance.signature = Some(sig);
            }
        }
    }

    pub fn sign(&self, tx: &mut Transaction, signers: &[&Keypair]) {
        let signers: Vec<Option<&Keypair>> = signers.iter().map(|k| Some(*k)).collect();
        self.sign_with(tx, &signers, None, &[]);
    }

    /// A signed transfer of a whole coin of Alice's EUR: `to_bob` units to Bob and the
    /// change back to Alice.
    pub fn alice_pays_bob(&self, to_bob: u64) -> Transaction {
        let (outpoint, coin) = self.coin(&self.alice, self.eur);
        let total = coin.output.amount.units();
        let mut outputs = vec![pay(self.eur, to_bob, &self.bob)];
        if total > to_bob {
            outputs.push(pay(self.eur, total - to_bob, &self.alice));
        }
        let mut tx = Transaction {
            version: 1,
            inputs: vec![TxIn::spending(outpoint)],
            outputs,
            lock_time: 0,
            expiry_height: 0,
        };
        self.sign(&mut tx, &[&self.alice]);
        tx
    }

    /// A transaction issuing a new asset under `contract` on a null input, paying it to
    /// `to`, signed by `signer` (if any).
    pub fn new_issuance(
        &self,
        contract: &AssetContract,
        units: u64,
        to: &Keypair,
        signer: Option<&Keypair>,
    ) -> Transaction {
        let issuance = Issuance {
            kind: IssuanceKind::New {
                contract: contract.to_canonical_bytes().expect("valid contract"),
            },
            amount: amount(units),
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
            outputs: vec![pay(asset, units, to)],
            lock_time: 0,
            expiry_height: 0,
        };
        self.sign_with(&mut tx, &[], signer, &[]);
        tx
    }

    /// Builds the next block from `txs`, certifies it with the validator and returns it
    /// with what the builder skipped (not connected).
    pub fn build(&self, txs: &[Transaction]) -> BuiltBlock {
        let tip = *self.state.tip();
        let mut built = build_block(
            &tip,
            txs,
            tip.time_ms + BLOCK_INTERVAL_MS,
            key_bytes(&self.validator),
            &self.state,
            &self.spec,
            &self.chain_id,
        );
        self.certify(&mut built.block, &[&self.validator]);
        built
    }

    /// Replaces the block's certificate with precommits by `signers` for its hash.
    pub fn certify(&self, block: &mut Block, signers: &[&Keypair]) {
        let hash = block.header.hash();
        block.certificate.height = block.header.height;
        block.certificate.block_hash = hash;
        block.certificate.signatures = signers
            .iter()
            .map(|kp| {
                sign_precommit(
                    kp,
                    &self.chain_id,
                    block.header.height,
                    block.certificate.round,
                    &hash,
                )
            })
            .collect();
    }

    /// Builds, certifies and connects the next block; panics if anything is skipped.
    pub fn mine(&mut self, txs: &[Transaction]) -> Block {
        let built = self.build(txs);
        assert!(built.skipped.is_empty(), "skipped: {:?}", built.skipped);
        let block = built.block;
        self.state
            .connect(&block, &self.spec, &self.chain_id)
            .expect("valid block");
        block
    }
}
