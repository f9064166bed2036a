//! What a wallet file holds once decrypted: the mnemonic, the network and chain it
//! belongs to, address counters, labels, imported multisig descriptors and a cache of
//! known coins. Serialized as JSON inside the encrypted container of [`crate::store`].
//!
//! The state is plain data: changing it (handing out an address, adding a label) is a
//! method call on a value, and saving it is a separate, explicit step.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use secp256k1::XOnlyPublicKey;
use serde::{Deserialize, Serialize};
use settle_assets::{Amount, AssetId, BlockHash, ChainId, OutPoint, TxOut, Txid};
use settle_script::{Address, Network};
use zeroize::Zeroizing;

use crate::keys::{
    DerivationPath, DerivedKey, EXTERNAL_CHAIN, INTERNAL_CHAIN, KeyError, KeyOrigin, Mnemonic,
    WalletKeys,
};
use crate::store::{self, FileKey, KdfParams, Overwrite, StoreError};

/// The version of the JSON state inside the file (independent of the container format).
pub const STATE_VERSION: u32 = 1;
/// Most labels one wallet keeps.
pub const MAX_LABELS: usize = 100_000;
/// Longest label, in bytes.
pub const MAX_LABEL_BYTES: usize = 256;
/// Most multisig descriptors one wallet keeps.
pub const MAX_MULTISIG_DESCRIPTORS: usize = 1_000;
/// Largest address index handed out on one chain (BIP32 normal indices stop at 2^31).
pub const MAX_ADDRESS_INDEX: u32 = (1 << 31) - 1;
/// Most history entries kept; the oldest are dropped first.
pub const MAX_HISTORY_ENTRIES: usize = 100_000;
/// Most open offers one wallet remembers.
pub const MAX_OFFER_RECORDS: usize = 10_000;
/// Most loan agreements (proposals, acceptances, margin updates) one wallet remembers;
/// the oldest are dropped first.
pub const MAX_LOAN_AGREEMENTS: usize = 10_000;
/// Most assets the user pinned as trusted.
pub const MAX_TRUSTED_ASSETS: usize = 10_000;

/// Why the wallet state could not be used or changed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("wallet state is not valid: {0}")]
    Invalid(String),
    #[error("unsupported wallet state version {0} (this build reads version {STATE_VERSION})")]
    UnsupportedVersion(u32),
    #[error("label is {len} bytes, more than the limit of {MAX_LABEL_BYTES}")]
    LabelTooLong { len: usize },
    #[error("too many {what}: the limit is {max}")]
    TooMany { what: &'static str, max: usize },
    #[error("address chain {chain} has no more unused indices")]
    IndicesExhausted { chain: u32 },
    #[error("a multisig named {0:?} already exists")]
    DuplicateMultisig(String),
    #[error("invalid multisig {name:?}: {reason}")]
    Multisig { name: String, reason: String },
}

/// The next unused address index of each chain.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct NextIndex {
    pub external: u32,
    pub internal: u32,
}

/// An m-of-n multisig the wallet takes part in (or watches), with its participants'
/// x-only keys in script order.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct MultisigDescriptor {
    pub name: String,
    pub threshold: usize,
    /// Hex x-only keys, in the order they appear in the script.
    pub keys: Vec<HexKey>,
    /// Which of the keys are this wallet's, and where they come from.
    #[serde(default)]
    pub ours: Vec<OriginEntry>,
    /// The descriptor text it was created or imported from (`descriptor.rs`), to show
    /// co-signers.
    #[serde(default)]
    pub descriptor: Option<String>,
}

/// One of the wallet's keys inside a multisig.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct OriginEntry {
    pub key: HexKey,
    pub origin: KeyOrigin,
}

impl MultisigDescriptor {
    /// The witness script.
    pub fn witness_script(&self) -> Result<Vec<u8>, StateError> {
        let keys: Vec<XOnlyPublicKey> = self.keys.iter().map(|k| k.0).collect();
        settle_script::multisig_script(self.threshold, &keys).map_err(|e| StateError::Multisig {
            name: self.name.clone(),
            reason: e.to_string(),
        })
    }

    /// The pay-to-script-hash output script.
    pub fn script_pubkey(&self) -> Result<Vec<u8>, StateError> {
        Ok(settle_script::p2sh(&self.witness_script()?))
    }

    pub fn address(&self, network: Network) -> Result<Address, StateError> {
        Ok(Address::p2sh(network, &self.witness_script()?))
    }
}

/// An x-only public key written as 64 hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct HexKey(pub XOnlyPublicKey);

impl fmt::Display for HexKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0.serialize()))
    }
}

impl FromStr for HexKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes)
            .map_err(|_| format!("invalid key {s:.80}: expected 64 hex characters"))?;
        XOnlyPublicKey::from_byte_array(bytes)
            .map(HexKey)
            .map_err(|_| format!("invalid key {s:.80}: not a valid x-only public key"))
    }
}

impl Serialize for HexKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HexKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A coin the wallet knows it can spend, as last seen on the chain.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CachedCoin {
    pub outpoint: OutPoint,
    pub asset: AssetId,
    pub amount: Amount,
    #[serde(with = "hex_bytes")]
    pub script_pubkey: Vec<u8>,
    /// The wallet key that spends it, if it pays to one of the wallet's keys.
    #[serde(default)]
    pub path: Option<DerivationPath>,
    /// The height of the block that created it, if confirmed.
    #[serde(default)]
    pub height: Option<u32>,
}

impl CachedCoin {
    pub fn txout(&self) -> TxOut {
        TxOut {
            asset: self.asset,
            amount: self.amount,
            script_pubkey: self.script_pubkey.clone(),
        }
    }
}

mod hex_bytes {
    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        hex::decode(s.as_ref()).map_err(serde::de::Error::custom)
    }
}

/// How far the wallet has read the chain: the last block scanned.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ScanTip {
    pub height: u64,
    pub block_hash: BlockHash,
}

/// What one transaction did to one asset of the wallet, in units.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct AssetFlow {
    pub asset: AssetId,
    /// Units of the wallet's coins the transaction spent.
    pub gave: u64,
    /// Units the transaction paid to the wallet.
    pub got: u64,
}

/// A transaction that touched the wallet.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub txid: Txid,
    /// The height of its block; `None` while it waits in the mempool (sent by this wallet).
    #[serde(default)]
    pub height: Option<u64>,
    pub flows: Vec<AssetFlow>,
    /// What the wallet did ("send", "offer taken", ...), when it made the transaction.
    #[serde(default)]
    pub note: Option<String>,
}

/// A DvP offer this wallet made and has not seen taken or cancelled: its coin is kept out
/// of ordinary coin selection so a payment does not kill the offer by accident.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct OfferRecord {
    /// The coin the offer gives.
    pub outpoint: OutPoint,
    pub give_asset: AssetId,
    pub give_amount: Amount,
    pub want_asset: AssetId,
    pub want_amount: Amount,
    /// The last height at which the offer can be taken (0 = none).
    pub expiry_height: u32,
}

/// Which side of a loan step this wallet took.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoanStep {
    /// The lender proposed an opening: its terms and its own coins are fixed, the borrower
    /// adds its side.
    LenderProposed,
    /// The borrower accepted an opening: the whole transaction is fixed.
    BorrowerAccepted,
    /// The borrower proposed a margin update: the whole transaction is fixed.
    BorrowerMargin,
}

/// What this wallet's user agreed to in one loan step, kept (encrypted, in the wallet
/// file) from the moment it was made so a later co-signing step compares the PST it is
/// handed with this copy rather than with the PST's own claims (`spec/lending.md` 11).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct LoanAgreement {
    pub step: LoanStep,
    /// The position asset the loan issues (or, for a margin update, updates).
    pub position: AssetId,
    /// The position contract's canonical bytes: the terms and the issuer key.
    #[serde(with = "hex_bytes")]
    pub contract: Vec<u8>,
    /// The coins this wallet put in, by outpoint: the only ones it will sign.
    pub inputs: Vec<OutPoint>,
    /// The unsigned transaction's id when this step fixed the whole transaction.
    #[serde(default)]
    pub txid: Option<Txid>,
}

/// The decrypted content of a wallet file.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct WalletState {
    pub version: u32,
    #[serde(with = "mnemonic_serde")]
    pub mnemonic: Mnemonic,
    pub network: Network,
    pub chain_id: ChainId,
    pub account: u32,
    pub next_index: NextIndex,
    /// Labels by address (or any other string the CLI keys them by).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub multisig: Vec<MultisigDescriptor>,
    #[serde(default)]
    pub coins: Vec<CachedCoin>,
    /// The last block scanned (`None` before the first scan).
    #[serde(default)]
    pub scan: Option<ScanTip>,
    /// Transactions that touched the wallet, oldest first.
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    /// Offers made and not yet seen taken or cancelled.
    #[serde(default)]
    pub offers: Vec<OfferRecord>,
    /// Loan steps this wallet agreed to (absent in files written before it existed).
    #[serde(default)]
    pub agreements: Vec<LoanAgreement>,
    /// Assets the user pinned as trusted (`settle asset trust`).
    #[serde(default)]
    pub trusted_assets: Vec<AssetId>,
}

mod mnemonic_serde {
    use super::*;
    pub fn serialize<S: serde::Serializer>(m: &Mnemonic, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(m.phrase())
    }
    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Mnemonic, D::Error> {
        let phrase = Zeroizing::new(String::deserialize(d)?);
        Mnemonic::parse(&phrase).map_err(serde::de::Error::custom)
    }
}

impl FromStr for KeyOrigin {
    type Err = KeyError;

    /// Parses `[fingerprint/path]`, e.g. `[3442193e/86'/21332'/0'/0/1]`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || KeyError::Path {
            path: s.chars().take(120).collect(),
            reason: "a key origin is written [fingerprint/path]",
        };
        let inner = s
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .ok_or_else(bad)?;
        let (fp, path) = match inner.split_once('/') {
            Some((fp, rest)) => (fp, format!("m/{rest}")),
            None => (inner, "m".to_owned()),
        };
        Ok(KeyOrigin {
            master_fingerprint: fp.parse().map_err(|_| bad())?,
            path: path.parse()?,
        })
    }
}

impl Serialize for KeyOrigin {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KeyOrigin {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A freshly handed-out address of the wallet, with its key.
#[derive(Clone, Debug)]
pub struct NewAddress {
    pub address: Address,
    pub script_pubkey: Vec<u8>,
    pub key: DerivedKey,
}

impl WalletState {
    /// A new wallet state for `mnemonic` on `network`/`chain_id`, account 0.
    pub fn new(mnemonic: Mnemonic, network: Network, chain_id: ChainId) -> WalletState {
        WalletState {
            version: STATE_VERSION,
            mnemonic,
            network,
            chain_id,
            account: 0,
            next_index: NextIndex::default(),
            labels: BTreeMap::new(),
            multisig: Vec::new(),
            coins: Vec::new(),
            scan: None,
            history: Vec::new(),
            offers: Vec::new(),
            agreements: Vec::new(),
            trusted_assets: Vec::new(),
        }
    }

    /// The wallet's keys (derives the seed: a few milliseconds of PBKDF2).
    pub fn keys(&self) -> Result<WalletKeys, KeyError> {
        WalletKeys::new(&self.mnemonic.to_seed(""), self.account)
    }

    /// The address at `index` of `chain` (without changing the counters).
    pub fn address_at(
        &self,
        keys: &WalletKeys,
        chain: u32,
        index: u32,
    ) -> Result<NewAddress, StateError> {
        let key = keys.derive(chain, index)?;
        let x_only = key.x_only();
        Ok(NewAddress {
            address: Address::p2k(self.network, &x_only),
            script_pubkey: settle_script::p2k(&x_only),
            key,
        })
    }

    /// Hands out the next receiving address and advances the counter.
    pub fn next_receive_address(&mut self, keys: &WalletKeys) -> Result<NewAddress, StateError> {
        self.next_address(keys, EXTERNAL_CHAIN)
    }

    /// Hands out the next change address and advances the counter.
    pub fn next_change_address(&mut self, keys: &WalletKeys) -> Result<NewAddress, StateError> {
        self.next_address(keys, INTERNAL_CHAIN)
    }

    fn next_address(&mut self, keys: &WalletKeys, chain: u32) -> Result<NewAddress, StateError> {
        let index = if chain == EXTERNAL_CHAIN {
            self.next_index.external
        } else {
            self.next_index.internal
        };
        if index > MAX_ADDRESS_INDEX {
            return Err(StateError::IndicesExhausted { chain });
        }
        let new = self.address_at(keys, chain, index)?;
        if chain == EXTERNAL_CHAIN {
            self.next_index.external = index + 1;
        } else {
            self.next_index.internal = index + 1;
        }
        Ok(new)
    }

    /// Sets (or with an empty label, removes) the label of `what`.
    pub fn set_label(&mut self, what: &str, label: &str) -> Result<(), StateError> {
        if label.len() > MAX_LABEL_BYTES {
            return Err(StateError::LabelTooLong { len: label.len() });
        }
        if label.is_empty() {
            self.labels.remove(what);
            return Ok(());
        }
        if !self.labels.contains_key(what) && self.labels.len() >= MAX_LABELS {
            return Err(StateError::TooMany {
                what: "labels",
                max: MAX_LABELS,
            });
        }
        self.labels.insert(what.to_owned(), label.to_owned());
        Ok(())
    }

    /// Imports a multisig descriptor after checking that its script can be built.
    pub fn add_multisig(&mut self, descriptor: MultisigDescriptor) -> Result<(), StateError> {
        if self.multisig.iter().any(|d| d.name == descriptor.name) {
            return Err(StateError::DuplicateMultisig(descriptor.name));
        }
        if self.multisig.len() >= MAX_MULTISIG_DESCRIPTORS {
            return Err(StateError::TooMany {
                what: "multisig descriptors",
                max: MAX_MULTISIG_DESCRIPTORS,
            });
        }
        descriptor.witness_script()?;
        if let Some(e) = descriptor
            .ours
            .iter()
            .find(|o| !descriptor.keys.contains(&o.key))
        {
            return Err(StateError::Multisig {
                name: descriptor.name,
                reason: format!("key {} is marked as ours but is not in the script", e.key),
            });
        }
        self.multisig.push(descriptor);
        Ok(())
    }

    /// Checks what the type system cannot: version, limits, descriptor scripts.
    pub fn validate(&self) -> Result<(), StateError> {
        if self.version != STATE_VERSION {
            return Err(StateError::UnsupportedVersion(self.version));
        }
        if self.labels.len() > MAX_LABELS {
            return Err(StateError::TooMany {
                what: "labels",
                max: MAX_LABELS,
            });
        }
        if let Some(l) = self.labels.values().find(|l| l.len() > MAX_LABEL_BYTES) {
            return Err(StateError::LabelTooLong { len: l.len() });
        }
        if self.multisig.len() > MAX_MULTISIG_DESCRIPTORS {
            return Err(StateError::TooMany {
                what: "multisig descriptors",
                max: MAX_MULTISIG_DESCRIPTORS,
            });
        }
        for d in &self.multisig {
            d.witness_script()?;
        }
        if self.history.len() > MAX_HISTORY_ENTRIES {
            return Err(StateError::TooMany {
                what: "history entries",
                max: MAX_HISTORY_ENTRIES,
            });
        }
        if self.offers.len() > MAX_OFFER_RECORDS {
            return Err(StateError::TooMany {
                what: "offers",
                max: MAX_OFFER_RECORDS,
            });
        }
        if self.agreements.len() > MAX_LOAN_AGREEMENTS {
            return Err(StateError::TooMany {
                what: "loan agreements",
                max: MAX_LOAN_AGREEMENTS,
            });
        }
        if self.trusted_assets.len() > MAX_TRUSTED_ASSETS {
            return Err(StateError::TooMany {
                what: "trusted assets",
                max: MAX_TRUSTED_ASSETS,
            });
        }
        Ok(())
    }

    /// Keeps `a`, replacing an earlier agreement of the same step and position (a step
    /// redone) and dropping the oldest beyond [`MAX_LOAN_AGREEMENTS`].
    pub fn record_agreement(&mut self, a: LoanAgreement) {
        self.agreements
            .retain(|x| !(x.step == a.step && x.position == a.position));
        self.agreements.push(a);
        if self.agreements.len() > MAX_LOAN_AGREEMENTS {
            let excess = self.agreements.len() - MAX_LOAN_AGREEMENTS;
            self.agreements.drain(..excess);
        }
    }

    /// The agreement of `step` for `position`, if this wallet made one.
    pub fn agreement(&self, step: LoanStep, position: &AssetId) -> Option<&LoanAgreement> {
        self.agreements
            .iter()
            .find(|x| x.step == step && x.position == *position)
    }

    /// The latest agreement of `step` that spends one of `outpoints`: how a co-signing
    /// step finds what its user agreed to without trusting the PST's own position id (a
    /// rewritten contract changes that id, and must be reported as the field it changed).
    pub fn agreement_spending(
        &self,
        step: LoanStep,
        outpoints: &[OutPoint],
    ) -> Option<&LoanAgreement> {
        self.agreements
            .iter()
            .rev()
            .find(|x| x.step == step && x.inputs.iter().any(|o| outpoints.contains(o)))
    }

    /// Whether the user pinned `asset` as trusted.
    pub fn is_trusted(&self, asset: &AssetId) -> bool {
        self.trusted_assets.contains(asset)
    }

    /// The JSON plaintext. Wiped when dropped: it contains the mnemonic.
    pub fn to_plaintext(&self) -> Result<Zeroizing<Vec<u8>>, StateError> {
        serde_json::to_vec(self)
            .map(Zeroizing::new)
            .map_err(|e| StateError::Invalid(e.to_string()))
    }

    /// Parses and validates a JSON plaintext.
    pub fn from_plaintext(bytes: &[u8]) -> Result<WalletState, StateError> {
        // Read the version first so a newer file gets a clear error, not a parse error.
        #[derive(Deserialize)]
        struct VersionOnly {
            version: u32,
        }
        let v: VersionOnly = serde_json::from_slice(bytes)
            .map_err(|e| StateError::Invalid(format!("wallet state: {e}")))?;
        if v.version != STATE_VERSION {
            return Err(StateError::UnsupportedVersion(v.version));
        }
        let state: WalletState = serde_json::from_slice(bytes)
            .map_err(|e| StateError::Invalid(format!("wallet state: {e}")))?;
        state.validate()?;
        Ok(state)
    }
}

/// Creates a new wallet file at `path`; fails if one exists.
pub fn create_wallet_file(
    path: &Path,
    state: &WalletState,
    passphrase: &[u8],
    kdf: KdfParams,
) -> Result<(), StateError> {
    state.validate()?;
    let sealed = store::seal(&state.to_plaintext()?, passphrase, kdf)?;
    store::write_file_atomic(path, &sealed, Overwrite::Refuse)?;
    Ok(())
}

/// Replaces the wallet file at `path` with `state` atomically.
pub fn save_wallet_file(
    path: &Path,
    state: &WalletState,
    passphrase: &[u8],
    kdf: KdfParams,
) -> Result<(), StateError> {
    state.validate()?;
    let sealed = store::seal(&state.to_plaintext()?, passphrase, kdf)?;
    store::write_file_atomic(path, &sealed, Overwrite::Replace)?;
    Ok(())
}

/// Creates a new wallet file at `path` under an already stretched key; fails if one exists.
pub fn create_wallet_file_keyed(
    path: &Path,
    state: &WalletState,
    key: &FileKey,
) -> Result<(), StateError> {
    state.validate()?;
    let sealed = store::seal_with_key(&state.to_plaintext()?, key)?;
    store::write_file_atomic(path, &sealed, Overwrite::Refuse)?;
    Ok(())
}

/// Replaces the wallet file at `path` with `state`, sealed under the key it was opened
/// with (same salt and KDF parameters, fresh nonce): no second passphrase stretch.
pub fn save_wallet_file_keyed(
    path: &Path,
    state: &WalletState,
    key: &FileKey,
) -> Result<(), StateError> {
    state.validate()?;
    let sealed = store::seal_with_key(&state.to_plaintext()?, key)?;
    store::write_file_atomic(path, &sealed, Overwrite::Replace)?;
    Ok(())
}

/// Opens the wallet file at `path`, keeping the stretched key for
/// [`save_wallet_file_keyed`].
pub fn open_wallet_file_keyed(
    path: &Path,
    passphrase: &[u8],
) -> Result<(WalletState, FileKey), StateError> {
    let bytes = store::read_file(path)?;
    let (plain, key) = store::unseal_keep_key(&bytes, passphrase)?;
    Ok((WalletState::from_plaintext(&plain)?, key))
}

/// Opens the wallet file at `path`. Returns the state and the KDF parameters the file
/// uses, so that saving it again can keep them.
pub fn open_wallet_file(
    path: &Path,
    passphrase: &[u8],
) -> Result<(WalletState, KdfParams), StateError> {
    let bytes = store::read_file(path)?;
    let header = store::Header::parse(&bytes)?;
    let plain = store::unseal(&bytes, passphrase)?;
    Ok((WalletState::from_plaintext(&plain)?, header.kdf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> WalletState {
        let m = Mnemonic::from_entropy(&[3u8; 32]).expect("entropy");
        WalletState::new(m, Network::Dev, ChainId([9; 32]))
    }

    #[test]
    fn file_round_trip_keeps_everything() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.settle");
        let mut s = state();
        let keys = s.keys().expect("keys");
        let a = s.next_receive_address(&keys).expect("addr");
        let b = s.next_receive_address(&keys).expect("addr");
        let c = s.next_change_address(&keys).expect("addr");
        assert_ne!(a.address, b.address);
        assert_eq!(a.key.origin.path.as_wallet_path(), Some((0, 0, 0)));
        assert_eq!(c.key.origin.path.as_wallet_path(), Some((0, 1, 0)));
        assert!(a.address.to_string().starts_with("dstl1"));
        s.set_label(&a.address.to_string(), "from alice")
            .expect("label");
        let k2 = keys.derive(0, 7).expect("k");
        s.add_multisig(MultisigDescriptor {
            name: "treasury".into(),
            threshold: 1,
            keys: vec![HexKey(a.key.x_only()), HexKey(k2.x_only())],
            ours: vec![OriginEntry {
                key: HexKey(a.key.x_only()),
                origin: a.key.origin.clone(),
            }],
            descriptor: None,
        })
        .expect("multisig");
        s.coins.push(CachedCoin {
            outpoint: OutPoint::new(settle_assets::Txid([1; 32]), 2),
            asset: AssetId([5; 32]),
            amount: Amount::from_units(10).expect("amount"),
            script_pubkey: a.script_pubkey.clone(),
            path: Some(a.key.origin.path.clone()),
            height: Some(3),
        });
        create_wallet_file(&path, &s, b"pw", KdfParams::INSECURE_FOR_TESTS).expect("create");
        let (opened, kdf) = open_wallet_file(&path, b"pw").expect("open");
        assert_eq!(opened, s);
        assert_eq!(kdf, KdfParams::INSECURE_FOR_TESTS);
        assert_eq!(
            opened.next_index,
            NextIndex {
                external: 2,
                internal: 1
            }
        );
        // The file does not contain the mnemonic in the clear.
        let raw = std::fs::read(&path).expect("read");
        let first_word = s
            .mnemonic
            .phrase()
            .split(' ')
            .next()
            .expect("word")
            .to_owned();
        let phrase = s.mnemonic.phrase().as_bytes().to_vec();
        assert!(
            !raw.windows(phrase.len()).any(|w| w == phrase.as_slice()),
            "{first_word}"
        );
        assert!(matches!(
            open_wallet_file(&path, b"nope"),
            Err(StateError::Store(StoreError::WrongPassphrase))
        ));
        assert!(matches!(
            create_wallet_file(&path, &s, b"pw", KdfParams::INSECURE_FOR_TESTS),
            Err(StateError::Store(StoreError::AlreadyExists(_)))
        ));
        let mut changed = opened.clone();
        changed.set_label("x", "y").expect("label");
        save_wallet_file(&path, &changed, b"pw", kdf).expect("save");
        assert_eq!(open_wallet_file(&path, b"pw").expect("open").0, changed);
    }

    #[test]
    fn keyed_open_and_save_keep_the_passphrase_and_new_fields() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("w.settle");
        let key = FileKey::new(b"pw", KdfParams::INSECURE_FOR_TESTS).expect("key");
        let mut s = state();
        create_wallet_file_keyed(&path, &s, &key).expect("create");
        let (mut opened, key) = open_wallet_file_keyed(&path, b"pw").expect("open");
        assert_eq!(opened, s);
        opened.scan = Some(ScanTip {
            height: 7,
            block_hash: BlockHash([3; 32]),
        });
        opened.history.push(HistoryEntry {
            txid: Txid([4; 32]),
            height: None,
            flows: vec![AssetFlow {
                asset: AssetId([5; 32]),
                gave: 1,
                got: 2,
            }],
            note: Some("send".into()),
        });
        opened.offers.push(OfferRecord {
            outpoint: OutPoint::new(Txid([6; 32]), 1),
            give_asset: AssetId([5; 32]),
            give_amount: Amount::ONE,
            want_asset: AssetId([7; 32]),
            want_amount: Amount::ONE,
            expiry_height: 9,
        });
        save_wallet_file_keyed(&path, &opened, &key).expect("save");
        let (again, _) = open_wallet_file(&path, b"pw").expect("reopen with the passphrase");
        assert_eq!(again, opened);
        assert!(matches!(
            open_wallet_file_keyed(&path, b"wrong"),
            Err(StateError::Store(StoreError::WrongPassphrase))
        ));
        // A state written before these fields existed still reads.
        s.scan = None;
        let mut json: serde_json::Value =
            serde_json::from_slice(&s.to_plaintext().expect("json")).expect("value");
        for field in ["scan", "history", "offers"] {
            json.as_object_mut().expect("object").remove(field);
        }
        let old = WalletState::from_plaintext(&serde_json::to_vec(&json).expect("bytes"))
            .expect("old state");
        assert!(old.history.is_empty() && old.offers.is_empty() && old.scan.is_none());
    }

    #[test]
    fn bad_states_are_refused() {
        let mut s = state();
        assert!(matches!(
            s.set_label("a", &"x".repeat(MAX_LABEL_BYTES + 1)),
            Err(StateError::LabelTooLong { .. })
        ));
        let keys = s.keys().expect("keys");
        let k = HexKey(keys.derive(0, 0).expect("k").x_only());
        let bad = MultisigDescriptor {
            name: "m".into(),
            threshold: 3,
            keys: vec![k],
            ours: vec![],
            descriptor: None,
        };
        assert!(matches!(
            s.add_multisig(bad),
            Err(StateError::Multisig { .. })
        ));
        let mut json: serde_json::Value =
            serde_json::from_slice(&s.to_plaintext().expect("json")).expect("value");
        json["version"] = 2.into();
        let bytes = serde_json::to_vec(&json).expect("bytes");
        assert!(matches!(
            WalletState::from_plaintext(&bytes),
            Err(StateError::UnsupportedVersion(2))
        ));
        json["version"] = 1.into();
        json["mnemonic"] = "abandon abandon".into();
        let bytes = serde_json::to_vec(&json).expect("bytes");
        let err = WalletState::from_plaintext(&bytes).expect_err("bad mnemonic");
        assert!(!err.to_string().contains("abandon abandon"), "{err}");
        assert!(WalletState::from_plaintext(b"{").is_err());
        // The state's Debug output hides the mnemonic.
        assert!(!format!("{s:?}").contains(s.mnemonic.phrase()));
    }

    #[test]
    fn key_origin_text_round_trips() {
        let o: KeyOrigin = "[3442193e/86'/21332'/0'/0/1]".parse().expect("origin");
        assert_eq!(o.path.as_wallet_path(), Some((0, 0, 1)));
        assert_eq!(o.to_string(), "[3442193e/86'/21332'/0'/0/1]");
        assert!("3442193e/0".parse::<KeyOrigin>().is_err());
        assert!("[zz/0]".parse::<KeyOrigin>().is_err());
    }
}
