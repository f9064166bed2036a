//! The chain spec: what a chain is before its first block. Validators and their voting
//! power, the issuer registry (which keys may issue which asset class), limits, and the
//! genesis allocations. The genesis block follows from it deterministically and its hash
//! is the chain id. The TOML format is specified in `spec/chain.md`, "Chain spec".

use secp256k1::XOnlyPublicKey;
use serde::{Deserialize, Serialize};
use settle_assets::amount::Amount;
use settle_assets::contract::{AssetClass, AssetContract};
use settle_assets::hash::{ChainId, Tag};
use settle_assets::limits::MAX_TX_SIZE_BYTES;
use settle_assets::transaction::{
    Issuance, IssuanceKind, OutPoint, SEQUENCE_FINAL, TX_VERSION, Transaction, TxIn, TxOut, Witness,
};
use settle_script::addresses::Address;

use crate::block::{Block, Header};
use crate::certificate::{CommitCertificate, Validator, ValidatorSet};
use crate::limits::{
    BLOCK_VERSION, DEFAULT_CLOCK_DRIFT_MS, HEADER_BYTES, MAX_ALLOCATIONS, MAX_BLOCK_BYTES,
    MAX_BLOCK_TXS, MAX_CHAIN_SPEC_BYTES, MAX_CLOCK_DRIFT_MS, MAX_ISSUERS_PER_CLASS, MAX_NAME_CHARS,
    MIN_CLOCK_DRIFT_MS,
};
use crate::membership::{MAX_PERMITTED_NODES, Membership};
use crate::validate::{BlockEffects, apply_genesis};

/// The network a chain belongs to; it picks the address prefix (the script crate's).
pub use settle_script::addresses::Network;

/// Tag of the consensus-parameter hash carried in the genesis header's `prev_hash`.
pub static CHAIN_PARAMS_TAG: Tag = Tag::new("Settle/ChainParams");

/// Which keys may issue assets of each class.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct IssuerRegistry {
    /// Central-bank (or other) keys that may issue `cash` assets.
    pub cash: Vec<[u8; 32]>,
    /// Registered issuers or the CSD: may issue `security` assets.
    pub security: Vec<[u8; 32]>,
    /// Keys that may issue `lending_position` assets.
    pub lending_position: Vec<[u8; 32]>,
}

impl IssuerRegistry {
    /// The keys authorised for an asset class.
    pub fn keys_for(&self, class: &AssetClass) -> &[[u8; 32]] {
        match class {
            AssetClass::Cash { .. } => &self.cash,
            AssetClass::Security { .. } => &self.security,
            AssetClass::LendingPosition(_) => &self.lending_position,
        }
    }

    /// Whether `key` may issue assets of `class`.
    pub fn is_authorised(&self, class: &AssetClass, key: &[u8; 32]) -> bool {
        self.keys_for(class).contains(key)
    }
}

/// Consensus limits a chain may set below the hard limits of [`crate::limits`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Limits {
    /// Most transactions in one block.
    pub max_block_txs: u32,
    /// Largest block (header, count and transactions; not the certificate) in bytes.
    pub max_block_bytes: u32,
    /// How far, in milliseconds, a proposal's time may be ahead of a validator's own
    /// clock for it to vote for the proposal (`spec/consensus.md`, "Clock"). Not a rule
    /// of block validity: a decided block is never judged by anyone's clock.
    pub max_clock_drift_ms: u32,
}

impl Limits {
    /// Smallest `max_block_bytes` a chain may set: a block must be able to hold the
    /// largest valid transaction.
    #[allow(clippy::cast_possible_truncation)] // about 400 kB: fits easily
    pub const MIN_BLOCK_BYTES: u32 = (MAX_TX_SIZE_BYTES + HEADER_BYTES + 9) as u32;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_block_txs: 50_000,
            max_block_bytes: 8_000_000,
            max_clock_drift_ms: DEFAULT_CLOCK_DRIFT_MS,
        }
    }
}

/// One genesis allocation output: an address and an amount.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AllocationOutput {
    /// The address as written in the spec.
    pub address: String,
    /// The output script the address stands for.
    pub script_pubkey: Vec<u8>,
    pub amount: Amount,
}

/// A genesis allocation: a new asset created at genesis and paid to some outputs.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Allocation {
    pub contract: AssetContract,
    pub outputs: Vec<AllocationOutput>,
}

impl Allocation {
    /// The genesis transaction of this allocation: one null input issuing the asset
    /// (amount = the outputs' sum, no signature) and the listed outputs.
    pub fn transaction(&self) -> Result<Transaction, SpecError> {
        let contract = self
            .contract
            .to_canonical_bytes()
            .map_err(|e| SpecError::field("contract", e.to_string()))?;
        let mut total = Amount::ZERO;
        for o in &self.outputs {
            total = total.checked_add(o.amount).ok_or_else(|| {
                SpecError::field(
                    "outputs",
                    "the amounts add up to more than the maximum amount",
                )
            })?;
        }
        let issuance = Issuance {
            kind: IssuanceKind::New { contract },
            amount: total,
            signature: None,
        };
        let asset = issuance.asset_id(&OutPoint::NULL);
        Ok(Transaction {
            version: TX_VERSION,
            inputs: vec![TxIn {
                prevout: OutPoint::NULL,
                sequence: SEQUENCE_FINAL,
                issuance: Some(issuance),
                witness: Witness::default(),
            }],
            outputs: self
                .outputs
                .iter()
                .map(|o| TxOut {
                    asset,
                    amount: o.amount,
                    script_pubkey: o.script_pubkey.clone(),
                })
                .collect(),
            lock_time: 0,
            expiry_height: 0,
        })
    }
}

/// A chain spec.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ChainSpec {
    /// A name for humans ("settle-dev"); part of no hash.
    pub name: String,
    pub network: Network,
    /// The genesis block's time, UNIX milliseconds.
    pub genesis_time_ms: u64,
    pub validators: ValidatorSet,
    /// Nodes that may connect besides the validators (full nodes, observers). The
    /// validator set and this list are the genesis membership; membership transactions
    /// change it later (`crate::membership`).
    pub permitted: Vec<PermittedNode>,
    pub issuers: IssuerRegistry,
    pub limits: Limits,
    pub allocations: Vec<Allocation>,
}

/// A node permitted to connect: a label and its x-only node key.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PermittedNode {
    /// A label for logs and tools; not hashed.
    pub name: String,
    pub key: [u8; 32],
}

/// The genesis block and what it does to the (empty) chain state.
#[derive(Clone, Debug)]
pub struct Genesis {
    pub block: Block,
    pub effects: BlockEffects,
    /// The genesis block hash.
    pub chain_id: ChainId,
}

/// Why a chain spec was refused. Every message names the field.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum SpecError {
    #[error("chain spec is {size} bytes, more than the limit of {MAX_CHAIN_SPEC_BYTES}")]
    TooLarge { size: usize },
    #[error("chain spec is not valid: {0}")]
    Toml(String),
    #[error("chain spec field `{field}`: {reason}")]
    Field { field: String, reason: String },
    #[error(
        "chain spec field `chain_id`: says {stated} but the genesis block described hashes to {computed}"
    )]
    ChainIdMismatch { stated: ChainId, computed: ChainId },
}

impl SpecError {
    fn field(field: impl Into<String>, reason: impl Into<String>) -> Self {
        SpecError::Field {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Prefixes the field path (`allocations[0]` + `contract` = `allocations[0].contract`).
    fn within(self, prefix: &str) -> Self {
        match self {
            SpecError::Field { field, reason } => SpecError::Field {
                field: format!("{prefix}.{field}"),
                reason,
            },
            other => other,
        }
    }
}

// ---- The TOML form ----

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: String,
    network: String,
    genesis_time_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    chain_id: Option<String>,
    validators: Vec<RawValidator>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    permitted: Vec<RawPermitted>,
    #[serde(default)]
    issuers: RawIssuers,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    allocations: Vec<RawAllocation>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawValidator {
    name: String,
    key: String,
    power: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPermitted {
    name: String,
    key: String,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawIssuers {
    #[serde(default)]
    cash: Vec<String>,
    #[serde(default)]
    security: Vec<String>,
    #[serde(default)]
    lending_position: Vec<String>,
}

#[derive(Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_block_txs: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_block_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_clock_drift_ms: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllocation {
    contract: toml::Table,
    outputs: Vec<RawOutput>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    address: String,
    amount: String,
}

fn parse_key(s: &str, field: &str) -> Result<[u8; 32], SpecError> {
    let mut key = [0u8; 32];
    let ok = s.len() == 64
        && !s.bytes().any(|b| b.is_ascii_uppercase())
        && hex::decode_to_slice(s, &mut key).is_ok();
    if !ok {
        return Err(SpecError::field(
            field,
            format!("{s:?} is not an x-only public key (64 lowercase hex characters)"),
        ));
    }
    if XOnlyPublicKey::from_byte_array(key).is_err() {
        return Err(SpecError::field(
            field,
            format!("{s} is not a valid secp256k1 x-only public key"),
        ));
    }
    Ok(key)
}

fn check_name(s: &str, field: &str) -> Result<(), SpecError> {
    let chars = s.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(SpecError::field(
            field,
            format!("must be 1 to {MAX_NAME_CHARS} characters, got {chars}"),
        ));
    }
    if s.chars().any(char::is_control) || s.trim() != s {
        return Err(SpecError::field(
            field,
            "must not contain control characters or leading/trailing spaces",
        ));
    }
    Ok(())
}

/// The output script for an address, which must be for `network`.
fn address_script(address: &str, network: Network) -> Result<Vec<u8>, String> {
    Address::parse_for(address, network)
        .map(|a| a.script_pubkey())
        .map_err(|e| e.to_string())
}

impl ChainSpec {
    /// A development chain: one validator with power 1, one issuer key authorised for
    /// every asset class, default limits, no allocations.
    pub fn dev(
        validator: &XOnlyPublicKey,
        issuer: &XOnlyPublicKey,
        genesis_time_ms: u64,
    ) -> ChainSpec {
        let validators = ValidatorSet::new(vec![Validator {
            name: "validator-0".into(),
            key: validator.serialize(),
            power: 1,
        }])
        .expect("one validator with a valid key and power 1 is a valid set");
        let issuer = issuer.serialize();
        ChainSpec {
            name: "settle-dev".into(),
            network: Network::Dev,
            genesis_time_ms,
            validators,
            permitted: Vec::new(),
            issuers: IssuerRegistry {
                cash: vec![issuer],
                security: vec![issuer],
                lending_position: vec![issuer],
            },
            limits: Limits::default(),
            allocations: Vec::new(),
        }
    }

    /// Parses and checks a chain spec. If the file states a `chain_id`, it must be the
    /// hash of the genesis block the file describes.
    pub fn from_toml_str(text: &str) -> Result<ChainSpec, SpecError> {
        if text.len() > MAX_CHAIN_SPEC_BYTES {
            return Err(SpecError::TooLarge { size: text.len() });
        }
        let raw: RawSpec = toml::from_str(text).map_err(|e| SpecError::Toml(e.to_string()))?;
        let spec = ChainSpec::from_raw(&raw)?;
        let genesis = spec.genesis()?;
        if let Some(stated) = &raw.chain_id {
            let stated: ChainId = stated.parse().map_err(|e: settle_assets::hash::HexError| {
                SpecError::field("chain_id", e.to_string())
            })?;
            if stated != genesis.chain_id {
                return Err(SpecError::ChainIdMismatch {
                    stated,
                    computed: genesis.chain_id,
                });
            }
        }
        Ok(spec)
    }

    /// Writes the spec as TOML, stating its chain id so a reader can check it.
    pub fn to_toml_string(&self) -> Result<String, SpecError> {
        let chain_id = self.chain_id()?;
        let raw = RawSpec {
            name: self.name.clone(),
            network: self.network.name().into(),
            genesis_time_ms: self.genesis_time_ms,
            chain_id: Some(chain_id.to_string()),
            validators: self
                .validators
                .validators()
                .iter()
                .map(|v| RawValidator {
                    name: v.name.clone(),
                    key: hex::encode(v.key),
                    power: v.power,
                })
                .collect(),
            permitted: self
                .permitted
                .iter()
                .map(|p| RawPermitted {
                    name: p.name.clone(),
                    key: hex::encode(p.key),
                })
                .collect(),
            issuers: RawIssuers {
                cash: self.issuers.cash.iter().map(hex::encode).collect(),
                security: self.issuers.security.iter().map(hex::encode).collect(),
                lending_position: self
                    .issuers
                    .lending_position
                    .iter()
                    .map(hex::encode)
                    .collect(),
            },
            limits: RawLimits {
                max_block_txs: Some(u64::from(self.limits.max_block_txs)),
                max_block_bytes: Some(u64::from(self.limits.max_block_bytes)),
                max_clock_drift_ms: Some(u64::from(self.limits.max_clock_drift_ms)),
            },
            allocations: self
                .allocations
                .iter()
                .enumerate()
                .map(|(i, a)| raw_allocation(a).map_err(|e| e.within(&format!("allocations[{i}]"))))
                .collect::<Result<_, _>>()?,
        };
        let body = toml::to_string(&raw).map_err(|e| SpecError::Toml(e.to_string()))?;
        Ok(format!(
            "# Settle chain spec. The chain id is the hash of the genesis block this file\n\
             # describes; changing anything below except `name` changes it.\n{body}"
        ))
    }

    fn from_raw(raw: &RawSpec) -> Result<ChainSpec, SpecError> {
        check_name(&raw.name, "name")?;
        let network: Network =
            raw.network
                .parse()
                .map_err(|e: settle_script::addresses::NetworkParseError| {
                    SpecError::field("network", e.to_string())
                })?;
        if raw.genesis_time_ms == 0 {
            return Err(SpecError::field(
                "genesis_time_ms",
                "must be a UNIX time in milliseconds, not 0",
            ));
        }
        let mut validators = Vec::with_capacity(raw.validators.len());
        for (i, v) in raw.validators.iter().enumerate() {
            check_name(&v.name, &format!("validators[{i}].name"))?;
            let key = parse_key(&v.key, &format!("validators[{i}].key"))?;
            if v.power == 0 {
                return Err(SpecError::field(
                    format!("validators[{i}].power"),
                    "must be at least 1",
                ));
            }
            validators.push(Validator {
                name: v.name.clone(),
                key,
                power: v.power,
            });
        }
        let validators = ValidatorSet::new(validators)
            .map_err(|e| SpecError::field("validators", e.to_string()))?;
        let mut permitted = Vec::with_capacity(raw.permitted.len());
        for (i, p) in raw.permitted.iter().enumerate() {
            check_name(&p.name, &format!("permitted[{i}].name"))?;
            permitted.push(PermittedNode {
                name: p.name.clone(),
                key: parse_key(&p.key, &format!("permitted[{i}].key"))?,
            });
        }
        let mut issuers = IssuerRegistry::default();
        for (class, list, out) in [
            ("cash", &raw.issuers.cash, &mut issuers.cash),
            ("security", &raw.issuers.security, &mut issuers.security),
            (
                "lending_position",
                &raw.issuers.lending_position,
                &mut issuers.lending_position,
            ),
        ] {
            if list.len() > MAX_ISSUERS_PER_CLASS {
                return Err(SpecError::field(
                    format!("issuers.{class}"),
                    format!(
                        "{} keys exceed the limit of {MAX_ISSUERS_PER_CLASS}",
                        list.len()
                    ),
                ));
            }
            for (i, k) in list.iter().enumerate() {
                let key = parse_key(k, &format!("issuers.{class}[{i}]"))?;
                if out.contains(&key) {
                    return Err(SpecError::field(
                        format!("issuers.{class}[{i}]"),
                        format!("key {k} is listed twice"),
                    ));
                }
                out.push(key);
            }
        }
        let defaults = Limits::default();
        let max_block_txs = bounded(
            raw.limits.max_block_txs,
            u64::from(defaults.max_block_txs),
            1,
            MAX_BLOCK_TXS as u64,
            "limits.max_block_txs",
        )?;
        let max_block_bytes = bounded(
            raw.limits.max_block_bytes,
            u64::from(defaults.max_block_bytes),
            u64::from(Limits::MIN_BLOCK_BYTES),
            MAX_BLOCK_BYTES as u64,
            "limits.max_block_bytes",
        )?;
        let max_clock_drift_ms = bounded(
            raw.limits.max_clock_drift_ms,
            u64::from(defaults.max_clock_drift_ms),
            MIN_CLOCK_DRIFT_MS,
            MAX_CLOCK_DRIFT_MS,
            "limits.max_clock_drift_ms",
        )?;
        let limits = Limits {
            max_block_txs,
            max_block_bytes,
            max_clock_drift_ms,
        };
        if raw.allocations.len() > MAX_ALLOCATIONS {
            return Err(SpecError::field(
                "allocations",
                format!(
                    "{} allocations exceed the limit of {MAX_ALLOCATIONS}",
                    raw.allocations.len()
                ),
            ));
        }
        let mut allocations = Vec::with_capacity(raw.allocations.len());
        for (i, a) in raw.allocations.iter().enumerate() {
            allocations.push(
                parse_allocation(a, network).map_err(|e| e.within(&format!("allocations[{i}]")))?,
            );
        }
        let spec = ChainSpec {
            name: raw.name.clone(),
            network,
            genesis_time_ms: raw.genesis_time_ms,
            validators,
            permitted,
            issuers,
            limits,
            allocations,
        };
        spec.validate()?;
        Ok(spec)
    }

    /// Checks what the types do not: names, limits, and that every allocation is a
    /// valid asset of an authorised issuer with its own contract.
    pub fn validate(&self) -> Result<(), SpecError> {
        check_name(&self.name, "name")?;
        if self.permitted.len() > MAX_PERMITTED_NODES {
            return Err(SpecError::field(
                "permitted",
                format!(
                    "{} nodes exceed the limit of {MAX_PERMITTED_NODES}",
                    self.permitted.len()
                ),
            ));
        }
        for (i, p) in self.permitted.iter().enumerate() {
            let field = format!("permitted[{i}].key");
            if self.validators.get(&p.key).is_some() {
                return Err(SpecError::field(
                    field,
                    format!(
                        "{} is a validator's key: validators are permitted anyway",
                        hex::encode(p.key)
                    ),
                ));
            }
            if self.permitted[..i].iter().any(|q| q.key == p.key) {
                return Err(SpecError::field(
                    field,
                    format!("key {} is listed twice", hex::encode(p.key)),
                ));
            }
        }
        if self.limits.max_block_txs == 0 || self.limits.max_block_txs as usize > MAX_BLOCK_TXS {
            return Err(SpecError::field(
                "limits.max_block_txs",
                format!("must be 1 to {MAX_BLOCK_TXS}"),
            ));
        }
        let drift = u64::from(self.limits.max_clock_drift_ms);
        if !(MIN_CLOCK_DRIFT_MS..=MAX_CLOCK_DRIFT_MS).contains(&drift) {
            return Err(SpecError::field(
                "limits.max_clock_drift_ms",
                format!("must be {MIN_CLOCK_DRIFT_MS} to {MAX_CLOCK_DRIFT_MS}"),
            ));
        }
        if self.limits.max_block_bytes < Limits::MIN_BLOCK_BYTES
            || self.limits.max_block_bytes as usize > MAX_BLOCK_BYTES
        {
            return Err(SpecError::field(
                "limits.max_block_bytes",
                format!("must be {} to {MAX_BLOCK_BYTES}", Limits::MIN_BLOCK_BYTES),
            ));
        }
        let mut contracts: Vec<Vec<u8>> = Vec::with_capacity(self.allocations.len());
        for (i, a) in self.allocations.iter().enumerate() {
            let field = format!("allocations[{i}]");
            let bytes = a
                .contract
                .to_canonical_bytes()
                .map_err(|e| SpecError::field(format!("{field}.contract"), e.to_string()))?;
            if let Some(j) = contracts.iter().position(|c| *c == bytes) {
                return Err(SpecError::field(
                    format!("{field}.contract"),
                    format!(
                        "is the same contract as allocations[{j}]: each genesis asset needs a contract of its own"
                    ),
                ));
            }
            contracts.push(bytes);
            if !self
                .issuers
                .is_authorised(&a.contract.class, &a.contract.issuer)
            {
                return Err(SpecError::field(
                    format!("{field}.contract.issuer"),
                    format!(
                        "{} is not listed in issuers.{}",
                        hex::encode(a.contract.issuer),
                        a.contract.class.name()
                    ),
                ));
            }
            if a.outputs.is_empty() {
                return Err(SpecError::field(
                    format!("{field}.outputs"),
                    "must list at least one output",
                ));
            }
            if a.outputs.len() > settle_assets::limits::MAX_TX_OUTPUTS {
                return Err(SpecError::field(
                    format!("{field}.outputs"),
                    format!(
                        "{} outputs exceed the limit of {}",
                        a.outputs.len(),
                        settle_assets::limits::MAX_TX_OUTPUTS
                    ),
                ));
            }
            for (k, o) in a.outputs.iter().enumerate() {
                if o.amount == Amount::ZERO {
                    return Err(SpecError::field(
                        format!("{field}.outputs[{k}].amount"),
                        "must be more than zero",
                    ));
                }
                if o.script_pubkey.first() == Some(&settle_assets::OP_RETURN) {
                    return Err(SpecError::field(
                        format!("{field}.outputs[{k}].address"),
                        "is a burn script: genesis allocates only spendable outputs",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The genesis block (height 0, zero parent, the allocation transactions, an empty
    /// certificate) and its effects on the empty chain state.
    pub fn genesis(&self) -> Result<Genesis, SpecError> {
        self.validate()?;
        let mut transactions = Vec::with_capacity(self.allocations.len());
        for (i, a) in self.allocations.iter().enumerate() {
            transactions.push(
                a.transaction()
                    .map_err(|e| e.within(&format!("allocations[{i}]")))?,
            );
        }
        let header = Header {
            version: BLOCK_VERSION,
            height: 0,
            // Genesis has no parent: the field commits to the consensus parameters.
            prev_hash: settle_assets::hash::BlockHash(self.params_hash()),
            time_ms: self.genesis_time_ms,
            merkle_root: [0; 32],
            utxo_commitment: [0; 32],
            validator_set_hash: self.validators.hash(),
            proposer: [0; 32],
        };
        let mut block = Block {
            header,
            transactions,
            certificate: CommitCertificate::empty(0, 0, settle_assets::hash::BlockHash::ZERO),
        };
        let effects = apply_genesis(&mut block, self)?;
        let chain_id = ChainId(block.hash().to_byte_array());
        Ok(Genesis {
            block,
            effects,
            chain_id,
        })
    }

    /// The membership at genesis: the validator set and the permitted nodes.
    pub fn genesis_membership(&self) -> Membership {
        Membership::new(
            self.validators.clone(),
            self.permitted.iter().map(|p| p.key).collect(),
        )
        .expect("a validated spec lists valid, distinct, non-validator keys within the limit")
    }

    /// The hash of the consensus parameters the genesis header cannot otherwise show:
    /// `TaggedHash("Settle/ChainParams", network name (length-prefixed) || membership
    /// hash || for cash, security, lending_position: key count || keys in ascending
    /// order || max_block_txs u32 LE || max_block_bytes u32 LE || max_clock_drift_ms u32
    /// LE)`. It is the genesis
    /// block's `prev_hash`, so two specs that differ in any rule have different chain ids.
    pub fn params_hash(&self) -> [u8; 32] {
        let mut data = Vec::with_capacity(128);
        settle_assets::encode::write_var_bytes(&mut data, self.network.name().as_bytes());
        let mut permitted: Vec<[u8; 32]> = self.permitted.iter().map(|p| p.key).collect();
        permitted.sort_unstable();
        permitted.dedup();
        let membership = Membership {
            validators: self.validators.clone(),
            permitted,
        };
        data.extend_from_slice(&membership.hash());
        for keys in [
            &self.issuers.cash,
            &self.issuers.security,
            &self.issuers.lending_position,
        ] {
            let mut sorted = keys.clone();
            sorted.sort_unstable();
            settle_assets::encode::write_compact_size(&mut data, sorted.len() as u64);
            for k in sorted {
                data.extend_from_slice(&k);
            }
        }
        data.extend_from_slice(&self.limits.max_block_txs.to_le_bytes());
        data.extend_from_slice(&self.limits.max_block_bytes.to_le_bytes());
        data.extend_from_slice(&self.limits.max_clock_drift_ms.to_le_bytes());
        CHAIN_PARAMS_TAG.hash(&data)
    }

    /// The chain id: the hash of the genesis block.
    pub fn chain_id(&self) -> Result<ChainId, SpecError> {
        Ok(self.genesis()?.chain_id)
    }
}

fn bounded(
    value: Option<u64>,
    default: u64,
    min: u64,
    max: u64,
    field: &str,
) -> Result<u32, SpecError> {
    let v = value.unwrap_or(default);
    if v < min || v > max {
        return Err(SpecError::field(
            field,
            format!("{v} is outside {min} to {max}"),
        ));
    }
    u32::try_from(v).map_err(|_| SpecError::field(field, format!("{v} is too large")))
}

fn parse_allocation(raw: &RawAllocation, network: Network) -> Result<Allocation, SpecError> {
    let json = serde_json::to_string(&raw.contract)
        .map_err(|e| SpecError::field("contract", e.to_string()))?;
    let contract =
        AssetContract::from_json(&json).map_err(|e| SpecError::field("contract", e.to_string()))?;
    let mut outputs = Vec::with_capacity(raw.outputs.len());
    for (k, o) in raw.outputs.iter().enumerate() {
        let script_pubkey = address_script(&o.address, network)
            .map_err(|reason| SpecError::field(format!("outputs[{k}].address"), reason))?;
        let amount = Amount::parse_decimal(&o.amount, contract.precision)
            .map_err(|e| SpecError::field(format!("outputs[{k}].amount"), e.to_string()))?;
        outputs.push(AllocationOutput {
            address: o.address.clone(),
            script_pubkey,
            amount,
        });
    }
    Ok(Allocation { contract, outputs })
}

fn raw_allocation(a: &Allocation) -> Result<RawAllocation, SpecError> {
    let bytes = a
        .contract
        .to_canonical_bytes()
        .map_err(|e| SpecError::field("contract", e.to_string()))?;
    let json: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| SpecError::field("contract", e.to_string()))?;
    let contract: toml::Table =
        toml::Table::try_from(json).map_err(|e| SpecError::field("contract", e.to_string()))?;
    Ok(RawAllocation {
        contract,
        outputs: a
            .outputs
            .iter()
            .map(|o| RawOutput {
                address: o.address.clone(),
                amount: o.amount.to_plain_string(a.contract.precision),
            })
            .collect(),
    })
}
