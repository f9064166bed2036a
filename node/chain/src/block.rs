//! Block headers, blocks and the merkle tree over their transactions.
//!
//! Encodings are byte-exact and specified in `spec/chain.md`, "Blocks".

use settle_assets::encode::{
    Decode, DecodeError, Encode, Reader, compact_size_len, write_compact_size,
};
use settle_assets::hash::{BlockHash, Tag, Wtxid};
use settle_assets::transaction::Transaction;

use crate::certificate::CommitCertificate;
use crate::limits::{HEADER_BYTES, MAX_BLOCK_BYTES, MAX_BLOCK_TXS};

/// Tag of the block hash (the hash of the 180-byte header encoding).
pub static BLOCK_HASH_TAG: Tag = Tag::new("Settle/BlockHash");
/// Tag of a merkle leaf: the hash of one wtxid.
pub static MERKLE_LEAF_TAG: Tag = Tag::new("Settle/MerkleLeaf");
/// Tag of an inner merkle node: the hash of its two children.
pub static MERKLE_NODE_TAG: Tag = Tag::new("Settle/MerkleNode");

/// Smallest possible encoded transaction (version, two empty counts, lock time, expiry):
/// bounds the transaction count against the bytes that remain when decoding.
const MIN_TX_BYTES: usize = 4 + 1 + 1 + 4 + 4;

/// A block header. Its tagged hash is the [`BlockHash`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Header {
    pub version: u32,
    pub height: u64,
    pub prev_hash: BlockHash,
    /// UNIX time in milliseconds by the proposer's clock; strictly greater than the
    /// parent's.
    pub time_ms: u64,
    /// Merkle root over the block's wtxids (see [`merkle_root`]).
    pub merkle_root: [u8; 32],
    /// MuHash3072 digest of the UTXO set after this block.
    pub utxo_commitment: [u8; 32],
    /// Hash of the validator set that certifies this block.
    pub validator_set_hash: [u8; 32],
    /// X-only key of the validator that proposed the block (zero for genesis).
    pub proposer: [u8; 32],
}

impl Header {
    /// The block hash: `TaggedHash("Settle/BlockHash", header encoding)`.
    pub fn hash(&self) -> BlockHash {
        let mut bytes = Vec::with_capacity(HEADER_BYTES);
        self.encode(&mut bytes);
        BlockHash(BLOCK_HASH_TAG.hash(&bytes))
    }
}

impl Encode for Header {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.height.to_le_bytes());
        self.prev_hash.encode(out);
        out.extend_from_slice(&self.time_ms.to_le_bytes());
        out.extend_from_slice(&self.merkle_root);
        out.extend_from_slice(&self.utxo_commitment);
        out.extend_from_slice(&self.validator_set_hash);
        out.extend_from_slice(&self.proposer);
    }
}

impl Decode for Header {
    const NAME: &'static str = "block header";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Header {
            version: r.read_u32("header version")?,
            height: r.read_u64("header height")?,
            prev_hash: BlockHash::decode(r)?,
            time_ms: r.read_u64("header time")?,
            merkle_root: r.read_array("merkle root")?,
            utxo_commitment: r.read_array("utxo commitment")?,
            validator_set_hash: r.read_array("validator set hash")?,
            proposer: r.read_array("proposer")?,
        })
    }
}

/// A block: header, transactions, and the commit certificate that finalised it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Block {
    pub header: Header,
    pub transactions: Vec<Transaction>,
    pub certificate: CommitCertificate,
}

impl Block {
    pub fn hash(&self) -> BlockHash {
        self.header.hash()
    }

    /// The merkle root of this block's transactions.
    pub fn compute_merkle_root(&self) -> [u8; 32] {
        let wtxids: Vec<Wtxid> = self.transactions.iter().map(Transaction::wtxid).collect();
        merkle_root(&wtxids)
    }

    /// Size of the part the block-size limit applies to: header, transaction count and
    /// transactions (the certificate is bounded by the validator count instead).
    pub fn size_without_certificate(&self) -> usize {
        HEADER_BYTES
            + compact_size_len(self.transactions.len() as u64)
            + self
                .transactions
                .iter()
                .map(Transaction::size_bytes)
                .sum::<usize>()
    }
}

impl Encode for Block {
    fn encode(&self, out: &mut Vec<u8>) {
        self.header.encode(out);
        write_compact_size(out, self.transactions.len() as u64);
        for tx in &self.transactions {
            tx.encode(out);
        }
        self.certificate.encode(out);
    }
}

impl Decode for Block {
    const NAME: &'static str = "block";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let start = r.position();
        let header = Header::decode(r)?;
        let count = r.read_count("block transactions", MAX_BLOCK_TXS, MIN_TX_BYTES)?;
        let mut transactions = Vec::with_capacity(count);
        for _ in 0..count {
            transactions.push(Transaction::decode(r)?);
            let size = r.position() - start;
            if size > MAX_BLOCK_BYTES {
                return Err(DecodeError::TooLarge {
                    what: "block",
                    size: size as u64,
                    max: MAX_BLOCK_BYTES,
                });
            }
        }
        let certificate = CommitCertificate::decode(r)?;
        Ok(Block {
            header,
            transactions,
            certificate,
        })
    }
}

/// The merkle root over `wtxids`.
///
/// Leaves are `TaggedHash("Settle/MerkleLeaf", wtxid)`; each level pairs neighbours as
/// `TaggedHash("Settle/MerkleNode", left || right)`, and an odd node at the end of a
/// level is promoted unchanged to the next level (never paired with itself, so two
/// different transaction lists never share a root). The root of no transactions is 32
/// zero bytes.
pub fn merkle_root(wtxids: &[Wtxid]) -> [u8; 32] {
    if wtxids.is_empty() {
        return [0u8; 32];
    }
    let mut level: Vec<[u8; 32]> = wtxids
        .iter()
        .map(|w| MERKLE_LEAF_TAG.hash(w.as_bytes()))
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| {
                if let [left, right] = pair {
                    let mut data = [0u8; 64];
                    data[..32].copy_from_slice(left);
                    data[32..].copy_from_slice(right);
                    MERKLE_NODE_TAG.hash(&data)
                } else {
                    // The odd node at the end of a level moves up unchanged.
                    pair[0]
                }
            })
            .collect();
    }
    level[0]
}
