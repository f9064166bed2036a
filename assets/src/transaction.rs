//! Transactions over coloured outputs.
//!
//! A transaction has two encodings (see `spec/transactions.md`): the *base* form without
//! witness data, whose tagged hash is the [`Txid`], and the *full* form used on the wire
//! and on disk, whose tagged hash is the [`Wtxid`]. Signatures live only in the witness
//! part, so signing never changes a txid and pre-signed transactions stay valid.

use std::fmt;
use std::str::FromStr;

use crate::amount::Amount;
use crate::encode::{
    Decode, DecodeError, Encode, Reader, serialize, write_compact_size, write_var_bytes,
};
use crate::hash::{AssetId, ContractHash, Txid, Wtxid, tags};
use crate::limits::{
    MAX_CONTRACT_BYTES, MAX_SCRIPT_PUBKEY_BYTES, MAX_TX_INPUTS, MAX_TX_OUTPUTS, MAX_TX_SIZE_BYTES,
    MAX_WITNESS_ITEM_BYTES, MAX_WITNESS_ITEMS,
};

/// The version of every transaction that moves assets.
pub const TX_VERSION: u32 = 1;
/// The version of a membership transaction: no inputs, and one output that carries a
/// change of the validator set or the permitted node set (`spec/chain.md`, "Membership
/// changes"). Its body is judged by the chain; this crate checks only its shape.
pub const MEMBERSHIP_TX_VERSION: u32 = 2;
/// A sequence number that opts the input out of lock-time and relative lock-time rules.
pub const SEQUENCE_FINAL: u32 = 0xffff_ffff;

/// A reference to an output of an earlier transaction.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct OutPoint {
    pub txid: Txid,
    pub vout: u32,
}

impl OutPoint {
    /// The null outpoint: an input with it spends nothing and must carry a new issuance.
    pub const NULL: OutPoint = OutPoint {
        txid: Txid::ZERO,
        vout: u32::MAX,
    };

    pub const fn new(txid: Txid, vout: u32) -> Self {
        OutPoint { txid, vout }
    }

    pub fn is_null(&self) -> bool {
        *self == Self::NULL
    }
}

impl fmt::Display for OutPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.txid, self.vout)
    }
}

impl fmt::Debug for OutPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OutPoint({self})")
    }
}

/// An outpoint written as `txid:vout` that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid outpoint {0:?}: expected <64 hex characters>:<output index>")]
pub struct OutPointParseError(pub String);

impl FromStr for OutPoint {
    type Err = OutPointParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || OutPointParseError(s.chars().take(80).collect());
        let (txid, vout) = s.split_once(':').ok_or_else(err)?;
        Ok(OutPoint {
            txid: txid.parse().map_err(|_| err())?,
            vout: vout.parse().map_err(|_| err())?,
        })
    }
}

impl serde::Serialize for OutPoint {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for OutPoint {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl Encode for OutPoint {
    fn encode(&self, out: &mut Vec<u8>) {
        self.txid.encode(out);
        out.extend_from_slice(&self.vout.to_le_bytes());
    }
}

impl Decode for OutPoint {
    const NAME: &'static str = "outpoint";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(OutPoint {
            txid: Txid::decode(r)?,
            vout: r.read_u32("outpoint index")?,
        })
    }
}

/// A coloured output: an amount of one asset, locked by a script.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct TxOut {
    pub asset: AssetId,
    pub amount: Amount,
    pub script_pubkey: Vec<u8>,
}

impl TxOut {
    /// What stands in for the spent output of a null (issuance-only) input wherever
    /// spent outputs are listed one per input: no asset, no amount, empty script.
    pub const NONE: TxOut = TxOut {
        asset: AssetId::ZERO,
        amount: Amount::ZERO,
        script_pubkey: Vec::new(),
    };

    /// A burn: the script starts with `OP_RETURN`, so the output can never be spent. It
    /// counts as an output for conservation but never enters the UTXO set.
    pub fn is_burn(&self) -> bool {
        self.script_pubkey.first() == Some(&crate::OP_RETURN)
    }
}

impl Encode for TxOut {
    fn encode(&self, out: &mut Vec<u8>) {
        self.asset.encode(out);
        self.amount.encode(out);
        write_var_bytes(out, &self.script_pubkey);
    }
}

impl Decode for TxOut {
    const NAME: &'static str = "output";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(TxOut {
            asset: AssetId::decode(r)?,
            amount: Amount::decode(r)?,
            script_pubkey: r
                .read_var_bytes("output script", MAX_SCRIPT_PUBKEY_BYTES)?
                .to_vec(),
        })
    }
}

/// The witness stack of an input: the data its script consumes (signatures, preimages,
/// and for pay-to-script-hash the script itself as the last item).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct Witness(pub Vec<Vec<u8>>);

impl Witness {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What an issuance record does.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum IssuanceKind {
    /// Creates a new asset governed by the contract (canonical JSON bytes, see
    /// `spec/assets.md`). Its id is derived from the input's outpoint and the contract.
    New { contract: Vec<u8> },
    /// Issues more of an existing, reissuable asset.
    Reissue { asset: AssetId },
}

/// An explicit issuance record attached to an input. The issuer's signature is witness
/// data: it is not part of the txid.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Issuance {
    pub kind: IssuanceKind,
    pub amount: Amount,
    /// BIP340 signature by the issuer key over the issuance digest (`spec/sighash.md`).
    pub signature: Option<[u8; 64]>,
}

impl Issuance {
    /// The id of the asset this record issues, given the outpoint of its input.
    pub fn asset_id(&self, prevout: &OutPoint) -> AssetId {
        match &self.kind {
            IssuanceKind::New { contract } => new_asset_id(prevout, &contract_hash(contract)),
            IssuanceKind::Reissue { asset } => *asset,
        }
    }
}

/// The tagged hash of a contract's canonical bytes.
pub fn contract_hash(contract: &[u8]) -> ContractHash {
    ContractHash(tags::CONTRACT.hash(contract))
}

/// The id of an asset issued on `prevout` under the contract with hash `contract`.
pub fn new_asset_id(prevout: &OutPoint, contract: &ContractHash) -> AssetId {
    let mut data = Vec::with_capacity(68);
    prevout.encode(&mut data);
    contract.encode(&mut data);
    AssetId(tags::ASSET_ID.hash(&data))
}

const ISSUANCE_NONE: u8 = 0;
const ISSUANCE_NEW: u8 = 1;
const ISSUANCE_REISSUE: u8 = 2;

/// A transaction input.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct TxIn {
    pub prevout: OutPoint,
    pub sequence: u32,
    pub issuance: Option<Issuance>,
    pub witness: Witness,
}

impl TxIn {
    /// An input spending `prevout` with a final sequence and no witness yet.
    pub fn spending(prevout: OutPoint) -> Self {
        TxIn {
            prevout,
            sequence: SEQUENCE_FINAL,
            issuance: None,
            witness: Witness::default(),
        }
    }

    fn encode_base(&self, out: &mut Vec<u8>) {
        self.prevout.encode(out);
        out.extend_from_slice(&self.sequence.to_le_bytes());
        match &self.issuance {
            None => out.push(ISSUANCE_NONE),
            Some(issuance) => {
                match &issuance.kind {
                    IssuanceKind::New { contract } => {
                        out.push(ISSUANCE_NEW);
                        write_var_bytes(out, contract);
                    }
                    IssuanceKind::Reissue { asset } => {
                        out.push(ISSUANCE_REISSUE);
                        asset.encode(out);
                    }
                }
                issuance.amount.encode(out);
            }
        }
    }

    fn encode_witness(&self, out: &mut Vec<u8>) {
        write_compact_size(out, self.witness.0.len() as u64);
        for item in &self.witness.0 {
            write_var_bytes(out, item);
        }
        if let Some(issuance) = &self.issuance {
            match &issuance.signature {
                None => out.push(0),
                Some(sig) => {
                    out.push(1);
                    out.extend_from_slice(sig);
                }
            }
        }
    }

    fn decode_base(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let prevout = OutPoint::decode(r)?;
        let sequence = r.read_u32("sequence")?;
        let issuance = match r.read_u8("issuance flag")? {
            ISSUANCE_NONE => None,
            ISSUANCE_NEW => {
                let contract = r
                    .read_var_bytes("asset contract", MAX_CONTRACT_BYTES)?
                    .to_vec();
                let amount = Amount::decode(r)?;
                Some(Issuance {
                    kind: IssuanceKind::New { contract },
                    amount,
                    signature: None,
                })
            }
            ISSUANCE_REISSUE => {
                let asset = AssetId::decode(r)?;
                let amount = Amount::decode(r)?;
                Some(Issuance {
                    kind: IssuanceKind::Reissue { asset },
                    amount,
                    signature: None,
                })
            }
            other => {
                return Err(DecodeError::Invalid {
                    what: "issuance flag",
                    detail: format!("{other} is not 0 (none), 1 (new) or 2 (reissue)"),
                });
            }
        };
        Ok(TxIn {
            prevout,
            sequence,
            issuance,
            witness: Witness::default(),
        })
    }

    fn decode_witness(&mut self, r: &mut Reader<'_>) -> Result<(), DecodeError> {
        let count = r.read_count("witness items", MAX_WITNESS_ITEMS, 1)?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            items.push(
                r.read_var_bytes("witness item", MAX_WITNESS_ITEM_BYTES)?
                    .to_vec(),
            );
        }
        self.witness = Witness(items);
        if let Some(issuance) = &mut self.issuance {
            issuance.signature = match r.read_u8("issuance signature flag")? {
                0 => None,
                1 => Some(r.read_array::<64>("issuance signature")?),
                other => {
                    return Err(DecodeError::Invalid {
                        what: "issuance signature flag",
                        detail: format!("{other} is not 0 (absent) or 1 (present)"),
                    });
                }
            };
        }
        Ok(())
    }
}

/// A transaction.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Transaction {
    pub version: u32,
    pub inputs: Vec<TxIn>,
    pub outputs: Vec<TxOut>,
    /// Block height (below 500,000,000) or UNIX time before which the transaction may not
    /// be included, unless every input's sequence is final. Same rule as Bitcoin.
    pub lock_time: u32,
    /// Last block height at which the transaction may be included; 0 means no expiry.
    pub expiry_height: u32,
}

/// Lock times below this are block heights; from it on they are UNIX times.
pub const LOCKTIME_THRESHOLD: u32 = 500_000_000;

impl Transaction {
    /// The canonical encoding without witness data: what the txid hashes.
    pub fn encode_base(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.to_le_bytes());
        write_compact_size(out, self.inputs.len() as u64);
        for input in &self.inputs {
            input.encode_base(out);
        }
        write_compact_size(out, self.outputs.len() as u64);
        for output in &self.outputs {
            output.encode(out);
        }
        out.extend_from_slice(&self.lock_time.to_le_bytes());
        out.extend_from_slice(&self.expiry_height.to_le_bytes());
    }

    pub fn txid(&self) -> Txid {
        let mut base = Vec::with_capacity(128 + 90 * (self.inputs.len() + self.outputs.len()));
        self.encode_base(&mut base);
        Txid(tags::TXID.hash(&base))
    }

    pub fn wtxid(&self) -> Wtxid {
        Wtxid(tags::WTXID.hash(&serialize(self)))
    }

    /// The size of the full encoding in bytes.
    pub fn size_bytes(&self) -> usize {
        serialize(self).len()
    }

    /// Whether this is a membership transaction ([`MEMBERSHIP_TX_VERSION`]).
    pub fn is_membership(&self) -> bool {
        self.version == MEMBERSHIP_TX_VERSION
    }

    /// The body of a membership transaction: its one output's script after `OP_RETURN`.
    /// `None` for any other transaction or shape.
    pub fn membership_body(&self) -> Option<&[u8]> {
        match (self.is_membership(), self.outputs.as_slice()) {
            (true, [output]) => output.script_pubkey.strip_prefix(&[crate::OP_RETURN]),
            _ => None,
        }
    }

    /// Every issuance in the transaction: (input index, asset id, amount).
    pub fn issuances(&self) -> impl Iterator<Item = (usize, AssetId, Amount)> + '_ {
        self.inputs.iter().enumerate().filter_map(|(i, input)| {
            input
                .issuance
                .as_ref()
                .map(|iss| (i, iss.asset_id(&input.prevout), iss.amount))
        })
    }
}

impl Encode for Transaction {
    fn encode(&self, out: &mut Vec<u8>) {
        self.encode_base(out);
        for input in &self.inputs {
            input.encode_witness(out);
        }
    }
}

/// Smallest base encoding of one input: outpoint, sequence, issuance flag.
const MIN_INPUT_BYTES: usize = 36 + 4 + 1;
/// Smallest encoding of one output: asset, amount, empty script.
const MIN_OUTPUT_BYTES: usize = 32 + 8 + 1;

impl Decode for Transaction {
    const NAME: &'static str = "transaction";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.position();
        // Checked after every part, so an oversized transaction is refused as soon as it
        // passes the limit instead of after copying all of it.
        let within_limit = |r: &Reader<'_>| {
            let size = r.position() - start;
            if size > MAX_TX_SIZE_BYTES {
                Err(DecodeError::TooLarge {
                    what: "transaction",
                    size: size as u64,
                    max: MAX_TX_SIZE_BYTES,
                })
            } else {
                Ok(())
            }
        };
        let version = r.read_u32("version")?;
        let n_in = r.read_count("inputs", MAX_TX_INPUTS, MIN_INPUT_BYTES)?;
        let mut inputs = Vec::with_capacity(n_in);
        for _ in 0..n_in {
            inputs.push(TxIn::decode_base(r)?);
            within_limit(r)?;
        }
        let n_out = r.read_count("outputs", MAX_TX_OUTPUTS, MIN_OUTPUT_BYTES)?;
        let mut outputs = Vec::with_capacity(n_out);
        for _ in 0..n_out {
            outputs.push(TxOut::decode(r)?);
            within_limit(r)?;
        }
        let lock_time = r.read_u32("lock time")?;
        let expiry_height = r.read_u32("expiry height")?;
        for input in &mut inputs {
            input.decode_witness(r)?;
            within_limit(r)?;
        }
        within_limit(r)?;
        Ok(Transaction {
            version,
            inputs,
            outputs,
            lock_time,
            expiry_height,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::deserialize;

    fn sample() -> Transaction {
        Transaction {
            version: TX_VERSION,
            inputs: vec![
                TxIn {
                    prevout: OutPoint::new(Txid([7; 32]), 1),
                    sequence: 5,
                    issuance: None,
                    witness: Witness(vec![vec![1, 2, 3], vec![]]),
                },
                TxIn {
                    prevout: OutPoint::NULL,
                    sequence: SEQUENCE_FINAL,
                    issuance: Some(Issuance {
                        kind: IssuanceKind::New {
                            contract: b"{}".to_vec(),
                        },
                        amount: Amount::from_units(100).expect("in range"),
                        signature: Some([9; 64]),
                    }),
                    witness: Witness::default(),
                },
            ],
            outputs: vec![TxOut {
                asset: AssetId([3; 32]),
                amount: Amount::from_units(42).expect("in range"),
                script_pubkey: vec![0x51, 0x20],
            }],
            lock_time: 10,
            expiry_height: 20,
        }
    }

    #[test]
    fn full_encoding_round_trips() {
        let tx = sample();
        let bytes = serialize(&tx);
        assert_eq!(deserialize::<Transaction>(&bytes), Ok(tx));
    }

    #[test]
    fn witness_changes_the_wtxid_but_not_the_txid() {
        let tx = sample();
        let mut signed = tx.clone();
        signed.inputs[0].witness.0.push(vec![0xaa; 64]);
        signed.inputs[1]
            .issuance
            .as_mut()
            .expect("issuance")
            .signature = Some([1; 64]);
        assert_eq!(tx.txid(), signed.txid());
        assert_ne!(tx.wtxid(), signed.wtxid());
    }

    #[test]
    fn trailing_and_truncated_bytes_are_errors() {
        let mut bytes = serialize(&sample());
        bytes.push(0);
        assert!(matches!(
            deserialize::<Transaction>(&bytes),
            Err(DecodeError::TrailingBytes { .. })
        ));
        bytes.truncate(bytes.len() - 2);
        assert!(matches!(
            deserialize::<Transaction>(&bytes),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
    }

    #[test]
    fn outpoint_text_round_trips() {
        let op = OutPoint::new(Txid([0xab; 32]), 7);
        assert_eq!(op.to_string().parse::<OutPoint>(), Ok(op));
        assert!("abc:1".parse::<OutPoint>().is_err());
    }
}
