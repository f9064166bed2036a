//! The JSON model of the asset-layer vectors in `spec/vectors/` (transactions, asset ids,
//! amounts, contracts), shared by the generator (`gen_vectors`) and the tests that read
//! the files back. Only the shapes and the conversions live here; the expected values are
//! in the files.
//!
//! Conventions (also stated in `spec/README.md`): bytes are lowercase hex in wire order,
//! ids are the hex of their 32 bytes as displayed, amounts are integers of smallest units,
//! and errors are named by their enum variant (`"UnexpectedEnd"`, `"NoOutputs"`, ...).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use settle_assets::{Amount, AssetId};
use settle_assets::{
    AmountParseError, ContractError, DecodeError, TxCheckError,
    conservation::{AssetFlow, ConservationError},
    transaction::{Issuance, IssuanceKind, OutPoint, Transaction, TxIn, TxOut, Witness},
};

/// The directory holding the vector files: `<workspace>/spec/vectors`.
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("spec")
        .join("vectors")
}

/// Why a JSON description could not be turned into a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError(pub String);

impl std::fmt::Display for ModelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ModelError {}

fn model_err(what: &str, e: impl std::fmt::Display) -> ModelError {
    ModelError(format!("{what}: {e}"))
}

fn hex_bytes(what: &str, s: &str) -> Result<Vec<u8>, ModelError> {
    hex::decode(s).map_err(|e| model_err(what, e))
}

fn amount(what: &str, units: u64) -> Result<Amount, ModelError> {
    Amount::from_units(units).ok_or_else(|| ModelError(format!("{what}: {units} out of range")))
}

/// A transaction spelled out field by field.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TxJson {
    pub version: u32,
    pub inputs: Vec<TxInJson>,
    pub outputs: Vec<TxOutJson>,
    pub lock_time: u32,
    pub expiry_height: u32,
}

/// An input: `prevout` is `txid:vout`; witness items are hex.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TxInJson {
    pub prevout: String,
    pub sequence: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuance: Option<IssuanceJson>,
    pub witness: Vec<String>,
}

/// An issuance record. `kind` is `"new"` (with `contract`, the contract bytes as text) or
/// `"reissue"`; `asset` is the asset it issues (for `"new"`, derived and checked).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IssuanceJson {
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<String>,
    pub asset: String,
    pub amount: u64,
    /// 64-byte signature as hex, or null when absent.
    pub signature: Option<String>,
}

/// An output: asset id, amount in units, script as hex.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TxOutJson {
    pub asset: String,
    pub amount: u64,
    pub script_pubkey: String,
}

impl TxOutJson {
    pub fn from_txout(out: &TxOut) -> Self {
        TxOutJson {
            asset: out.asset.to_string(),
            amount: out.amount.units(),
            script_pubkey: hex::encode(&out.script_pubkey),
        }
    }

    pub fn to_txout(&self) -> Result<TxOut, ModelError> {
        Ok(TxOut {
            asset: self
                .asset
                .parse()
                .map_err(|e| model_err("output asset", e))?,
            amount: amount("output amount", self.amount)?,
            script_pubkey: hex_bytes("output script", &self.script_pubkey)?,
        })
    }
}

impl TxJson {
    /// Describes a transaction. A new issuance's contract must be UTF-8 text.
    pub fn from_tx(tx: &Transaction) -> Self {
        TxJson {
            version: tx.version,
            inputs: tx
                .inputs
                .iter()
                .map(|input| TxInJson {
                    prevout: input.prevout.to_string(),
                    sequence: input.sequence,
                    issuance: input.issuance.as_ref().map(|iss| IssuanceJson {
                        kind: match iss.kind {
                            IssuanceKind::New { .. } => "new".into(),
                            IssuanceKind::Reissue { .. } => "reissue".into(),
                        },
                        contract: match &iss.kind {
                            IssuanceKind::New { contract } => {
                                Some(String::from_utf8_lossy(contract).into_owned())
                            }
                            IssuanceKind::Reissue { .. } => None,
                        },
                        asset: iss.asset_id(&input.prevout).to_string(),
                        amount: iss.amount.units(),
                        signature: iss.signature.map(hex::encode),
                    }),
                    witness: input.witness.0.iter().map(hex::encode).collect(),
                })
                .collect(),
            outputs: tx.outputs.iter().map(TxOutJson::from_txout).collect(),
            lock_time: tx.lock_time,
            expiry_height: tx.expiry_height,
        }
    }

    /// Builds the transaction this describes. For a new issuance the stated `asset` must
    /// be the one derived from the outpoint and contract.
    pub fn to_tx(&self) -> Result<Transaction, ModelError> {
        let mut inputs = Vec::with_capacity(self.inputs.len());
        for (i, input) in self.inputs.iter().enumerate() {
            let prevout: OutPoint = input
                .prevout
                .parse()
                .map_err(|e| model_err(&format!("input {i} prevout"), e))?;
            let issuance = match &input.issuance {
                None => None,
                Some(iss) => {
                    let asset: AssetId = iss
                        .asset
                        .parse()
                        .map_err(|e| model_err(&format!("input {i} issuance asset"), e))?;
                    let kind = match (iss.kind.as_str(), &iss.contract) {
                        ("new", Some(contract)) => IssuanceKind::New {
                            contract: contract.as_bytes().to_vec(),
                        },
                        ("reissue", None) => IssuanceKind::Reissue { asset },
                        (kind, _) => {
                            return Err(ModelError(format!(
                                "input {i}: issuance kind {kind:?} with contract {}",
                                iss.contract.is_some()
                            )));
                        }
                    };
                    let signature = match &iss.signature {
                        None => None,
                        Some(sig) => Some(
                            <[u8; 64]>::try_from(hex_bytes("issuance signature", sig)?)
                                .map_err(|_| ModelError(format!("input {i}: signature length")))?,
                        ),
                    };
                    let issuance = Issuance {
                        kind,
                        amount: amount("issuance amount", iss.amount)?,
                        signature,
                    };
                    if issuance.asset_id(&prevout) != asset {
                        return Err(ModelError(format!(
                            "input {i}: stated asset {asset} is not the derived {}",
                            issuance.asset_id(&prevout)
                        )));
                    }
                    Some(issuance)
                }
            };
            let witness = input
                .witness
                .iter()
                .map(|w| hex_bytes("witness item", w))
                .collect::<Result<Vec<_>, _>>()?;
            inputs.push(TxIn {
                prevout,
                sequence: input.sequence,
                issuance,
                witness: Witness(witness),
            });
        }
        let outputs = self
            .outputs
            .iter()
            .map(TxOutJson::to_txout)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Transaction {
            version: self.version,
            inputs,
            outputs,
            lock_time: self.lock_time,
            expiry_height: self.expiry_height,
        })
    }
}

// ---------------------------------------------------------------------------------------
// transactions.json

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct TransactionVectors {
    pub comment: Vec<String>,
    pub compact_size: CompactSizeVectors,
    pub valid: Vec<ValidTx>,
    pub invalid_encoding: Vec<InvalidEncoding>,
    pub invalid_check: Vec<InvalidCheck>,
    pub conservation: Vec<ConservationCase>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct CompactSizeVectors {
    pub valid: Vec<CompactSizeValid>,
    pub invalid: Vec<InvalidEncoding>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct CompactSizeValid {
    pub value: u64,
    pub hex: String,
}

/// A transaction that decodes and passes the context-free checks.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct ValidTx {
    pub name: String,
    pub comment: String,
    pub tx: TxJson,
    /// Full encoding (witness data included): the wire and disk form.
    pub hex: String,
    /// Base encoding (no witness data): what the txid hashes.
    pub base_hex: String,
    pub size: usize,
    pub base_size: usize,
    pub txid: String,
    pub wtxid: String,
    /// Every issuance: input index, asset id, units.
    pub issued: Vec<IssuedJson>,
    /// Indexes of the burn outputs.
    pub burns: Vec<usize>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct IssuedJson {
    pub input: usize,
    pub asset: String,
    pub amount: u64,
}

/// Bytes that must not decode, with the error kind and the field it names.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct InvalidEncoding {
    pub name: String,
    pub comment: String,
    pub hex: String,
    pub error: String,
    pub what: String,
}

/// A transaction that decodes but fails `check_transaction`.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct InvalidCheck {
    pub name: String,
    pub comment: String,
    pub tx: TxJson,
    pub hex: String,
    pub error: String,
    /// The input or output index the error names, when it names one.
    pub index: Option<usize>,
    /// For `InvalidContract`: the contract error's kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract_error: Option<String>,
}

/// A transaction with the coins its inputs spend, and the conservation verdict.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct ConservationCase {
    pub name: String,
    pub comment: String,
    pub tx: TxJson,
    /// One coin per input, in order; a null input's entry is ignored (write the NONE coin).
    pub spent: Vec<TxOutJson>,
    /// `"ok"` or the error variant (`"Imbalance"`, `"SpentCountMismatch"`).
    pub result: String,
    /// On `"ok"`: every asset's flow, ordered by asset id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flows: Vec<FlowJson>,
    /// On `"Imbalance"`: every asset out of balance, ordered by asset id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub imbalances: Vec<FlowJson>,
}

/// Units of one asset moved by a transaction. `burned` is left out of imbalances.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FlowJson {
    pub asset: String,
    pub inputs: u128,
    pub issued: u128,
    pub outputs: u128,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burned: Option<u128>,
}

impl FlowJson {
    pub fn from_flow(asset: &AssetId, f: &AssetFlow) -> Self {
        FlowJson {
            asset: asset.to_string(),
            inputs: f.inputs,
            issued: f.issued,
            outputs: f.outputs,
            burned: Some(f.burned),
        }
    }
}

/// The outcome of `check_conservation` in the vectors' terms.
pub fn conservation_outcome(
    result: &Result<std::collections::BTreeMap<AssetId, AssetFlow>, ConservationError>,
) -> (String, Vec<FlowJson>, Vec<FlowJson>) {
    match result {
        Ok(flows) => (
            "ok".into(),
            flows
                .iter()
                .map(|(a, f)| FlowJson::from_flow(a, f))
                .collect(),
            Vec::new(),
        ),
        Err(ConservationError::Imbalance(list)) => (
            "Imbalance".into(),
            Vec::new(),
            list.iter()
                .map(|i| FlowJson {
                    asset: i.asset.to_string(),
                    inputs: i.inputs,
                    issued: i.issued,
                    outputs: i.outputs,
                    burned: None,
                })
                .collect(),
        ),
        Err(ConservationError::SpentCountMismatch { .. }) => {
            ("SpentCountMismatch".into(), Vec::new(), Vec::new())
        }
        Err(ConservationError::Overflow(_)) => ("Overflow".into(), Vec::new(), Vec::new()),
    }
}

/// The variant name and the field a decode error names.
pub fn decode_error_kind(e: &DecodeError) -> (&'static str, &'static str) {
    match e {
        DecodeError::UnexpectedEnd { what, .. } => ("UnexpectedEnd", what),
        DecodeError::NonCanonicalCompactSize { what, .. } => ("NonCanonicalCompactSize", what),
        DecodeError::TooMany { what, .. } => ("TooMany", what),
        DecodeError::TooLarge { what, .. } => ("TooLarge", what),
        DecodeError::Invalid { what, .. } => ("Invalid", what),
        DecodeError::TrailingBytes { what, .. } => ("TrailingBytes", what),
    }
}

/// The variant name of a check error and the input or output index it names.
pub fn check_error_kind(e: &TxCheckError) -> (&'static str, Option<usize>) {
    match e {
        TxCheckError::UnsupportedVersion(_) => ("UnsupportedVersion", None),
        TxCheckError::MembershipShape(_) => ("MembershipShape", None),
        TxCheckError::NoInputs => ("NoInputs", None),
        TxCheckError::NoOutputs => ("NoOutputs", None),
        TxCheckError::TooLarge { .. } => ("TooLarge", None),
        TxCheckError::ZeroOutput { output } => ("ZeroOutput", Some(*output)),
        TxCheckError::ZeroIssuance { input } => ("ZeroIssuance", Some(*input)),
        TxCheckError::DuplicateInput { second, .. } => ("DuplicateInput", Some(*second)),
        TxCheckError::NullInputWithoutNewIssuance { input } => {
            ("NullInputWithoutNewIssuance", Some(*input))
        }
        TxCheckError::NullInputWithWitness { input } => ("NullInputWithWitness", Some(*input)),
        TxCheckError::InvalidContract { input, .. } => ("InvalidContract", Some(*input)),
        TxCheckError::DuplicateNewAsset { second, .. } => ("DuplicateNewAsset", Some(*second)),
    }
}

// ---------------------------------------------------------------------------------------
// asset_ids.json

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct AssetIdVectors {
    pub comment: Vec<String>,
    pub tagged_hashes: Vec<TaggedHashCase>,
    pub asset_ids: Vec<AssetIdCase>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct TaggedHashCase {
    pub tag: String,
    pub data_hex: String,
    pub hash: String,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct AssetIdCase {
    pub name: String,
    /// `txid:vout`.
    pub outpoint: String,
    /// The 36-byte encoding of the outpoint.
    pub outpoint_hex: String,
    /// The contract's canonical bytes as text.
    pub contract: String,
    pub contract_hash: String,
    /// Tagged-hash input: outpoint encoding followed by the contract hash.
    pub preimage_hex: String,
    pub asset_id: String,
}

// ---------------------------------------------------------------------------------------
// amounts.json

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct AmountVectors {
    pub comment: Vec<String>,
    pub parse: Vec<AmountParseCase>,
    pub display: Vec<AmountDisplayCase>,
    pub encoding: Vec<AmountEncodingCase>,
    pub invalid_encoding: Vec<InvalidEncoding>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct AmountParseCase {
    pub input: String,
    pub precision: u8,
    /// The units on success.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<u64>,
    /// The error kind on failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct AmountDisplayCase {
    pub units: u64,
    pub precision: u8,
    /// With thousands separators.
    pub decimal: String,
    /// Without.
    pub plain: String,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct AmountEncodingCase {
    pub units: u64,
    pub hex: String,
}

/// The variant name of an amount parse error.
pub fn amount_error_kind(e: &AmountParseError) -> &'static str {
    match e {
        AmountParseError::Empty => "Empty",
        AmountParseError::Malformed { .. } => "Malformed",
        AmountParseError::TooPrecise { .. } => "TooPrecise",
        AmountParseError::TooLarge { .. } => "TooLarge",
        AmountParseError::BadPrecision(_) => "BadPrecision",
    }
}

// ---------------------------------------------------------------------------------------
// contracts.json

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct ContractVectors {
    pub comment: Vec<String>,
    pub valid: Vec<ValidContract>,
    pub invalid: Vec<InvalidContract>,
    pub isin: Vec<IsinCase>,
    /// The accepted ISO 4217 codes, sorted.
    pub currencies: Vec<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct ValidContract {
    pub name: String,
    /// JSON as a person might write it (any key order, any whitespace).
    pub json: String,
    /// The canonical bytes, as text.
    pub canonical: String,
    pub contract_hash: String,
    pub class: String,
    pub ticker: String,
    pub precision: u8,
    pub reissuable: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct InvalidContract {
    pub name: String,
    /// `"canonical"` (bytes as they appear in an issuance) or `"json"` (text a person wrote).
    pub parser: String,
    pub input: String,
    pub error: String,
    /// The field named by `Missing`, `Unknown` or `Invalid`.
    pub field: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct IsinCase {
    pub isin: String,
    pub valid: bool,
    /// The check digit the first eleven characters call for, when they are well formed.
    pub check_digit: Option<u8>,
}

/// The variant name of a contract error and the field it names.
pub fn contract_error_kind(e: &ContractError) -> (&'static str, Option<String>) {
    match e {
        ContractError::TooLarge(_) => ("TooLarge", None),
        ContractError::Json(_) => ("Json", None),
        ContractError::NotCanonical => ("NotCanonical", None),
        ContractError::Missing { field } => ("Missing", Some((*field).to_owned())),
        ContractError::Unknown { field } => ("Unknown", Some(field.clone())),
        ContractError::Invalid { field, .. } => ("Invalid", Some((*field).to_owned())),
    }
}
