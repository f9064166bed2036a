//! Signature hashes: what a signature commits to. The exact message layout is in
//! `spec/sighash.md`; the vectors in `spec/vectors/sighash.json` pin it.
//!
//! The per-transaction parts (hashes over all prevouts, spent outputs, sequences,
//! issuances and outputs) are computed once in [`PrecomputedTx::new`], so verifying many
//! inputs, or many signatures in one input, never hashes the whole transaction again.

use std::fmt;
use std::str::FromStr;

use bitcoin_hashes::{HashEngine, sha256};
use secp256k1::{SECP256K1, XOnlyPublicKey, schnorr};
use settle_assets::hash::{finish, tags};
use settle_assets::{ChainId, Issuance, IssuanceKind, OutPoint, Transaction, TxOut};

use crate::error::ScriptError;

/// Which parts of a transaction a signature covers.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum SighashType {
    /// All inputs and all outputs (the 64-byte signature form; byte `0x01` in the
    /// message).
    All,
    /// All inputs, no outputs.
    None,
    /// All inputs and the output at the same index as the input.
    Single,
    /// This input only, all outputs.
    AllAnyoneCanPay,
    /// This input only, no outputs.
    NoneAnyoneCanPay,
    /// This input only and the output at the same index: the DvP offer form.
    SingleAnyoneCanPay,
}

/// The flag bit that restricts the inputs covered to the signing one.
pub const ANYONECANPAY_FLAG: u8 = 0x80;

impl SighashType {
    /// Every type, in byte order.
    pub const ALL_TYPES: [SighashType; 6] = [
        SighashType::All,
        SighashType::None,
        SighashType::Single,
        SighashType::AllAnyoneCanPay,
        SighashType::NoneAnyoneCanPay,
        SighashType::SingleAnyoneCanPay,
    ];

    /// The byte committed in the message (and appended to 65-byte signatures).
    pub const fn to_byte(self) -> u8 {
        match self {
            SighashType::All => 0x01,
            SighashType::None => 0x02,
            SighashType::Single => 0x03,
            SighashType::AllAnyoneCanPay => 0x81,
            SighashType::NoneAnyoneCanPay => 0x82,
            SighashType::SingleAnyoneCanPay => 0x83,
        }
    }

    /// The type with byte `b`, if `b` is one of the six defined bytes.
    pub const fn from_byte(b: u8) -> Option<SighashType> {
        match b {
            0x01 => Some(SighashType::All),
            0x02 => Some(SighashType::None),
            0x03 => Some(SighashType::Single),
            0x81 => Some(SighashType::AllAnyoneCanPay),
            0x82 => Some(SighashType::NoneAnyoneCanPay),
            0x83 => Some(SighashType::SingleAnyoneCanPay),
            _ => None,
        }
    }

    /// The type a 65-byte signature's last byte names. `0x01` is refused: ALL is always
    /// the 64-byte form, so every signature has exactly one encoding.
    pub const fn from_explicit_byte(b: u8) -> Option<SighashType> {
        match b {
            0x01 => None,
            _ => Self::from_byte(b),
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            SighashType::All => "ALL",
            SighashType::None => "NONE",
            SighashType::Single => "SINGLE",
            SighashType::AllAnyoneCanPay => "ALL|ANYONECANPAY",
            SighashType::NoneAnyoneCanPay => "NONE|ANYONECANPAY",
            SighashType::SingleAnyoneCanPay => "SINGLE|ANYONECANPAY",
        }
    }

    pub const fn anyone_can_pay(self) -> bool {
        self.to_byte() & ANYONECANPAY_FLAG != 0
    }

    /// Whether all outputs are covered.
    pub const fn covers_all_outputs(self) -> bool {
        self.to_byte() & 0x7f == 0x01
    }

    /// Whether only the output at the input's index is covered.
    pub const fn is_single(self) -> bool {
        self.to_byte() & 0x7f == 0x03
    }

    /// A dense index 0..6 (for per-type caches).
    pub const fn index(self) -> usize {
        match self {
            SighashType::All => 0,
            SighashType::None => 1,
            SighashType::Single => 2,
            SighashType::AllAnyoneCanPay => 3,
            SighashType::NoneAnyoneCanPay => 4,
            SighashType::SingleAnyoneCanPay => 5,
        }
    }
}

impl fmt::Display for SighashType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A sighash type name that is not one of the six.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sighash type {0:?}: expected ALL, NONE, SINGLE, optionally with |ANYONECANPAY")]
pub struct SighashTypeParseError(pub String);

impl FromStr for SighashType {
    type Err = SighashTypeParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        let wanted = upper.strip_prefix("SIGHASH_").unwrap_or(&upper);
        SighashType::ALL_TYPES
            .into_iter()
            .find(|t| t.name() == wanted)
            .ok_or_else(|| SighashTypeParseError(s.chars().take(40).collect()))
    }
}

impl serde::Serialize for SighashType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for SighashType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Somewhere canonical encodings can be written: a hash engine, or a buffer in tests.
pub(crate) trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for sha256::HashEngine {
    fn put(&mut self, bytes: &[u8]) {
        self.input(bytes);
    }
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// The canonical compact size (same bytes as `settle_assets::encode::write_compact_size`).
#[allow(clippy::cast_possible_truncation)] // each arm's range fits the type it is cast to
fn put_compact_size(sink: &mut impl Sink, value: usize) {
    let value = value as u64;
    match value {
        0..=0xfc => sink.put(&[value as u8]),
        0xfd..=0xffff => {
            sink.put(&[0xfd]);
            sink.put(&(value as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            sink.put(&[0xfe]);
            sink.put(&(value as u32).to_le_bytes());
        }
        _ => {
            sink.put(&[0xff]);
            sink.put(&value.to_le_bytes());
        }
    }
}

pub(crate) fn put_outpoint(sink: &mut impl Sink, outpoint: &OutPoint) {
    sink.put(outpoint.txid.as_bytes());
    sink.put(&outpoint.vout.to_le_bytes());
}

/// The canonical `TxOut` encoding: asset, amount (8 LE), var-bytes script.
pub(crate) fn put_txout(sink: &mut impl Sink, out: &TxOut) {
    sink.put(out.asset.as_bytes());
    sink.put(&out.amount.units().to_le_bytes());
    put_compact_size(sink, out.script_pubkey.len());
    sink.put(&out.script_pubkey);
}

/// Kind flags of the issuance base encoding (`spec/transactions.md`).
const ISSUANCE_KIND_NEW: u8 = 1;
const ISSUANCE_KIND_REISSUE: u8 = 2;

/// An input's issuance entry: `0x00` if none, else `0x01` followed by the issuance's
/// base encoding (kind flag, contract or asset, amount).
pub(crate) fn put_issuance_entry(sink: &mut impl Sink, issuance: Option<&Issuance>) {
    let Some(issuance) = issuance else {
        sink.put(&[0x00]);
        return;
    };
    sink.put(&[0x01]);
    match &issuance.kind {
        IssuanceKind::New { contract } => {
            sink.put(&[ISSUANCE_KIND_NEW]);
            put_compact_size(sink, contract.len());
            sink.put(contract);
        }
        IssuanceKind::Reissue { asset } => {
            sink.put(&[ISSUANCE_KIND_REISSUE]);
            sink.put(asset.as_bytes());
        }
    }
    sink.put(&issuance.amount.units().to_le_bytes());
}

fn sha256_of(write: impl FnOnce(&mut sha256::HashEngine)) -> [u8; 32] {
    let mut engine = sha256::HashEngine::default();
    write(&mut engine);
    finish(engine)
}

/// Plain SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    sha256::Hash::hash(data).to_byte_array()
}

/// What a null input spends, as a static so it can be borrowed for any lifetime.
static NONE_SPENT: TxOut = TxOut::NONE;

/// A transaction prepared for signing and verification: the transaction, the outputs its
/// inputs spend, the chain id, and the hashes every signature of the transaction shares.
#[derive(Clone)]
pub struct PrecomputedTx<'a> {
    tx: &'a Transaction,
    spent: &'a [TxOut],
    chain_id: ChainId,
    sha_prevouts: [u8; 32],
    sha_spent_outputs: [u8; 32],
    sha_sequences: [u8; 32],
    sha_issuances: [u8; 32],
    sha_outputs: [u8; 32],
}

impl fmt::Debug for PrecomputedTx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrecomputedTx")
            .field("txid", &self.tx.txid())
            .field("inputs", &self.tx.inputs.len())
            .field("outputs", &self.tx.outputs.len())
            .field("chain_id", &self.chain_id)
            .finish_non_exhaustive()
    }
}

impl<'a> PrecomputedTx<'a> {
    /// Prepares `tx`, whose inputs spend `spent` (one per input, in order), on the chain
    /// `chain_id`. The entry given for a null (issuance-only) input is ignored:
    /// [`TxOut::NONE`] is hashed in its place, so the digest never depends on filler.
    pub fn new(
        tx: &'a Transaction,
        spent: &'a [TxOut],
        chain_id: ChainId,
    ) -> Result<Self, ScriptError> {
        if spent.len() != tx.inputs.len() {
            return Err(ScriptError::SpentCount);
        }
        let mut pc = PrecomputedTx {
            tx,
            spent,
            chain_id,
            sha_prevouts: [0; 32],
            sha_spent_outputs: [0; 32],
            sha_sequences: [0; 32],
            sha_issuances: [0; 32],
            sha_outputs: [0; 32],
        };
        pc.sha_prevouts = sha256_of(|e| {
            for input in &tx.inputs {
                put_outpoint(e, &input.prevout);
            }
        });
        pc.sha_spent_outputs = sha256_of(|e| {
            for i in 0..tx.inputs.len() {
                put_txout(e, pc.spent_in_range(i));
            }
        });
        pc.sha_sequences = sha256_of(|e| {
            for input in &tx.inputs {
                e.put(&input.sequence.to_le_bytes());
            }
        });
        pc.sha_issuances = sha256_of(|e| {
            for input in &tx.inputs {
                put_issuance_entry(e, input.issuance.as_ref());
            }
        });
        pc.sha_outputs = sha256_of(|e| {
            for output in &tx.outputs {
                put_txout(e, output);
            }
        });
        Ok(pc)
    }

    pub fn tx(&self) -> &'a Transaction {
        self.tx
    }

    pub fn chain_id(&self) -> ChainId {
        self.chain_id
    }

    /// The output input `input` spends ([`TxOut::NONE`] for a null input), or `None` if
    /// there is no such input.
    pub fn spent_output(&self, input: usize) -> Option<&'a TxOut> {
        let txin = self.tx.inputs.get(input)?;
        if txin.prevout.is_null() {
            Some(&NONE_SPENT)
        } else {
            self.spent.get(input)
        }
    }

    /// [`Self::spent_output`] for an index known to be in range (`new` checked that
    /// there is one spent output per input).
    fn spent_in_range(&self, input: usize) -> &'a TxOut {
        self.spent_output(input).unwrap_or(&NONE_SPENT)
    }

    fn input_index_bytes(&self, input: usize) -> Result<[u8; 4], ScriptError> {
        if input >= self.tx.inputs.len() {
            return Err(ScriptError::InputIndex);
        }
        u32::try_from(input)
            .map(u32::to_le_bytes)
            .map_err(|_| ScriptError::InputIndex)
    }

    /// The digest a signature of type `hash_type` on input `input` signs, where
    /// `script_code` is the script being executed (the witness script for
    /// pay-to-script-hash, the output script otherwise).
    pub fn sighash(
        &self,
        input: usize,
        hash_type: SighashType,
        script_code: &[u8],
    ) -> Result<[u8; 32], ScriptError> {
        self.sighash_with_code_hash(input, hash_type, &sha256(script_code))
    }

    /// [`Self::sighash`] given `SHA256(script_code)`.
    pub fn sighash_with_code_hash(
        &self,
        input: usize,
        hash_type: SighashType,
        script_code_hash: &[u8; 32],
    ) -> Result<[u8; 32], ScriptError> {
        let index_bytes = self.input_index_bytes(input)?;
        let tx = self.tx;
        let single_output = if hash_type.is_single() {
            Some(
                tx.outputs
                    .get(input)
                    .ok_or(ScriptError::SighashSingleNoOutput)?,
            )
        } else {
            None
        };
        let mut e = tags::SIGHASH.engine();
        e.input(self.chain_id.as_bytes());
        e.input(&[hash_type.to_byte()]);
        e.input(&tx.version.to_le_bytes());
        e.input(&tx.lock_time.to_le_bytes());
        e.input(&tx.expiry_height.to_le_bytes());
        if !hash_type.anyone_can_pay() {
            e.input(&self.sha_prevouts);
            e.input(&self.sha_spent_outputs);
            e.input(&self.sha_sequences);
            e.input(&self.sha_issuances);
        }
        if hash_type.covers_all_outputs() {
            e.input(&self.sha_outputs);
        }
        if hash_type.anyone_can_pay() {
            let txin = &tx.inputs[input];
            put_outpoint(&mut e, &txin.prevout);
            put_txout(&mut e, self.spent_in_range(input));
            e.input(&txin.sequence.to_le_bytes());
            put_issuance_entry(&mut e, txin.issuance.as_ref());
        } else {
            e.input(&index_bytes);
        }
        if let Some(output) = single_output {
            e.input(&sha256_of(|o| put_txout(o, output)));
        }
        e.input(script_code_hash);
        Ok(finish(e))
    }

    /// The digest an issuer signs for the issuance on input `input`: it commits to the
    /// whole transaction (see `spec/sighash.md`, "Issuance digest").
    pub fn issuance_digest(&self, input: usize) -> Result<[u8; 32], ScriptError> {
        let index_bytes = self.input_index_bytes(input)?;
        let tx = self.tx;
        let mut e = tags::ISSUANCE.engine();
        e.input(self.chain_id.as_bytes());
        e.input(&tx.version.to_le_bytes());
        e.input(&tx.lock_time.to_le_bytes());
        e.input(&tx.expiry_height.to_le_bytes());
        e.input(&self.sha_prevouts);
        e.input(&self.sha_spent_outputs);
        e.input(&self.sha_sequences);
        e.input(&self.sha_issuances);
        e.input(&self.sha_outputs);
        e.input(&index_bytes);
        Ok(finish(e))
    }
}

/// Checks an issuer's BIP340 signature over an issuance digest. An issuer key that is
/// not a valid x-only point is `PUBKEY_TYPE`; a signature that fails is `SIG_INVALID`.
pub fn verify_issuance_signature(
    digest: &[u8; 32],
    signature: &[u8; 64],
    issuer: &[u8; 32],
) -> Result<(), ScriptError> {
    let key = XOnlyPublicKey::from_byte_array(*issuer).map_err(|_| ScriptError::PubkeyType)?;
    let sig = schnorr::Signature::from_byte_array(*signature);
    SECP256K1
        .verify_schnorr(&sig, digest, &key)
        .map_err(|_| ScriptError::SigInvalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use settle_assets::encode::serialize;
    use settle_assets::{Amount, AssetId, Txid};

    fn txout(script_len: usize) -> TxOut {
        TxOut {
            asset: AssetId([4; 32]),
            amount: Amount::from_units(123_456).expect("in range"),
            script_pubkey: vec![0x51; script_len],
        }
    }

    #[test]
    fn txout_writer_matches_the_canonical_encoding() {
        for len in [0, 1, 34, 0xfc, 0xfd, 0xffff, 0x1_0000] {
            let out = txout(len);
            let mut written = Vec::new();
            put_txout(&mut written, &out);
            assert_eq!(written, serialize(&out), "script length {len}");
        }
        let op = OutPoint::new(Txid([9; 32]), 77);
        let mut written = Vec::new();
        put_outpoint(&mut written, &op);
        assert_eq!(written, serialize(&op));
    }

    #[test]
    fn issuance_entry_is_one_then_the_base_encoding() {
        use settle_assets::{TxIn, Witness};
        for kind in [
            IssuanceKind::New {
                contract: vec![b'{'; 300],
            },
            IssuanceKind::Reissue {
                asset: AssetId([7; 32]),
            },
        ] {
            let issuance = Issuance {
                kind,
                amount: Amount::from_units(5).expect("in range"),
                signature: Some([1; 64]),
            };
            let tx = Transaction {
                version: 1,
                inputs: vec![TxIn {
                    prevout: OutPoint::NULL,
                    sequence: 0,
                    issuance: Some(issuance.clone()),
                    witness: Witness::default(),
                }],
                outputs: vec![],
                lock_time: 0,
                expiry_height: 0,
            };
            let mut base = Vec::new();
            tx.encode_base(&mut base);
            // version 4, input count 1, outpoint 36, sequence 4, then the issuance,
            // then output count 1, lock time 4, expiry 4.
            let issuance_bytes = &base[4 + 1 + 36 + 4..base.len() - 9];
            let mut entry = Vec::new();
            put_issuance_entry(&mut entry, Some(&issuance));
            assert_eq!(entry[0], 1);
            assert_eq!(&entry[1..], issuance_bytes);
        }
        let mut none = Vec::new();
        put_issuance_entry(&mut none, None);
        assert_eq!(none, vec![0]);
    }

    #[test]
    fn sighash_type_bytes_and_names() {
        for t in SighashType::ALL_TYPES {
            assert_eq!(SighashType::from_byte(t.to_byte()), Some(t));
            assert_eq!(t.name().parse::<SighashType>(), Ok(t));
            assert_eq!(SighashType::ALL_TYPES[t.index()], t);
        }
        assert_eq!(SighashType::from_explicit_byte(0x01), None);
        assert_eq!(SighashType::from_byte(0x00), None);
        assert_eq!(SighashType::from_byte(0x84), None);
        assert_eq!(
            "sighash_single|anyonecanpay".parse::<SighashType>(),
            Ok(SighashType::SingleAnyoneCanPay)
        );
        assert!("ALL|ANYONE".parse::<SighashType>().is_err());
        assert!(SighashType::SingleAnyoneCanPay.is_single());
        assert!(SighashType::AllAnyoneCanPay.covers_all_outputs());
        assert!(!SighashType::None.covers_all_outputs());
    }

    #[test]
    fn spent_count_and_input_index_are_checked() {
        let tx = Transaction {
            version: 1,
            inputs: vec![settle_assets::TxIn::spending(OutPoint::new(
                Txid([1; 32]),
                0,
            ))],
            outputs: vec![],
            lock_time: 0,
            expiry_height: 0,
        };
        assert_eq!(
            PrecomputedTx::new(&tx, &[], ChainId::ZERO).map(|_| ()),
            Err(ScriptError::SpentCount)
        );
        let spent = [txout(1)];
        let pc = PrecomputedTx::new(&tx, &spent, ChainId::ZERO).expect("counts match");
        assert_eq!(
            pc.sighash(1, SighashType::All, &[]),
            Err(ScriptError::InputIndex)
        );
        assert_eq!(
            pc.sighash(0, SighashType::Single, &[]),
            Err(ScriptError::SighashSingleNoOutput)
        );
        assert_eq!(pc.issuance_digest(1), Err(ScriptError::InputIndex));
        assert!(pc.sighash(0, SighashType::None, &[]).is_ok());
    }
}
