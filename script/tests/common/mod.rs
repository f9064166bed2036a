//! Helpers shared by the integration tests and the vector generator
//! (`examples/gen_vectors.rs` includes this file with `#[path]`).
#![allow(dead_code)]

use std::path::PathBuf;

use secp256k1::{Keypair, SECP256K1, XOnlyPublicKey};
use serde::{Deserialize, Serialize};
use settle_assets::{Amount, AssetId, ChainId, OutPoint, Transaction, TxIn, TxOut, Witness};
use settle_script::assemble;

/// `spec/vectors/`, next to this crate.
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("spec")
        .join("vectors")
}

/// The test keypair with secret key `[i; 32]` (i in 1..=255 are all valid scalars).
pub fn keypair(i: u8) -> Keypair {
    Keypair::from_seckey_byte_array(SECP256K1, [i; 32]).expect("[i; 32] is a valid secret key")
}

pub fn xonly(i: u8) -> XOnlyPublicKey {
    keypair(i).x_only_public_key().0
}

pub fn units(n: u64) -> Amount {
    Amount::from_units(n).expect("amount in range")
}

pub fn hex_decode(s: &str) -> Vec<u8> {
    hex::decode(s).expect("valid hex in test data")
}

/// A 32-byte value that is not the x coordinate of any curve point.
pub fn invalid_xonly() -> [u8; 32] {
    (0u8..=255)
        .map(|b| {
            let mut x = [0u8; 32];
            x[31] = b;
            x
        })
        .find(|x| XOnlyPublicKey::from_byte_array(*x).is_err())
        .expect("some small x is not on the curve")
}

/// `spec/vectors/script_cases.json`.
#[derive(Serialize, Deserialize, Debug)]
pub struct ScriptVectors {
    pub comment: Vec<String>,
    pub context: ScriptContext,
    pub cases: Vec<ScriptCase>,
}

/// What every script case's spending transaction is made of.
#[derive(Serialize, Deserialize, Debug)]
pub struct ScriptContext {
    pub chain_id: ChainId,
    pub prevout: OutPoint,
    pub spent_asset: AssetId,
    pub spent_amount: u64,
    pub output_asset: AssetId,
    pub output_amount: u64,
    /// Asm.
    pub output_script_pubkey: String,
    pub keys: Vec<VectorKey>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct VectorKey {
    pub secret_key: String,
    pub xonly: String,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct ScriptCase {
    pub name: String,
    /// Asm.
    pub script_pubkey: String,
    /// Each item hex, or `asm:` followed by a script in asm.
    pub witness: Vec<String>,
    pub lock_time: u32,
    pub sequence: u32,
    /// The spending transaction has no outputs (for SINGLE without an output).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_outputs: bool,
    /// "OK" or a `ScriptError` name.
    pub expected: String,
}

pub fn witness_item(item: &str) -> Vec<u8> {
    match item.strip_prefix("asm:") {
        Some(asm) => assemble(asm).expect("witness asm assembles"),
        None => hex_decode(item),
    }
}

/// The spending transaction and spent outputs of a case, as `spec/script.md` describes.
pub fn case_transaction(ctx: &ScriptContext, case: &ScriptCase) -> (Transaction, Vec<TxOut>) {
    let output = TxOut {
        asset: ctx.output_asset,
        amount: units(ctx.output_amount),
        script_pubkey: assemble(&ctx.output_script_pubkey).expect("output script assembles"),
    };
    let tx = Transaction {
        version: 1,
        inputs: vec![TxIn {
            prevout: ctx.prevout,
            sequence: case.sequence,
            issuance: None,
            witness: Witness(case.witness.iter().map(|w| witness_item(w)).collect()),
        }],
        outputs: if case.no_outputs {
            vec![]
        } else {
            vec![output]
        },
        lock_time: case.lock_time,
        expiry_height: 0,
    };
    let spent = vec![TxOut {
        asset: ctx.spent_asset,
        amount: units(ctx.spent_amount),
        script_pubkey: assemble(&case.script_pubkey).expect("script_pubkey assembles"),
    }];
    (tx, spent)
}

/// `spec/vectors/sighash.json`.
#[derive(Serialize, Deserialize, Debug)]
pub struct SighashVectors {
    pub comment: Vec<String>,
    pub sighash: Vec<SighashCase>,
    pub issuance: Vec<IssuanceCase>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct SighashCase {
    pub description: String,
    /// Full canonical encoding (witness included; it is not committed).
    pub tx: String,
    /// Canonical `TxOut` encodings, one per input.
    pub spent: Vec<String>,
    pub chain_id: ChainId,
    pub input: usize,
    pub hash_type: String,
    /// Hex of the script being executed.
    pub script_code: String,
    /// Hex digest, or absent when `error` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct IssuanceCase {
    pub description: String,
    pub tx: String,
    pub spent: Vec<String>,
    pub chain_id: ChainId,
    pub input: usize,
    pub digest: String,
    /// The issuer's x-only key and a BIP340 signature of the digest by it.
    pub issuer: String,
    pub signature: String,
}

/// `spec/vectors/addresses.json`.
#[derive(Serialize, Deserialize, Debug)]
pub struct AddressVectors {
    pub comment: Vec<String>,
    pub valid: Vec<ValidAddress>,
    pub invalid: Vec<InvalidAddress>,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct ValidAddress {
    pub address: String,
    pub network: String,
    pub version: u8,
    pub program: String,
    pub script_pubkey: String,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct InvalidAddress {
    pub description: String,
    pub address: String,
    /// When given, the address is parsed for this network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    pub error: String,
}
