//! Results of the RPC methods. Field names are snake_case; identifiers are the hex of
//! their bytes (see `spec/encoding.md`); amounts are integers in the asset's smallest unit.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use settle_assets::{AssetId, BlockHash, ChainId, OutPoint, Txid, Wtxid};

/// `getblockchaininfo`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockchainInfo {
    /// The chain's name from its spec.
    pub chain: String,
    /// `main`, `test` or `dev`: selects the address prefix (stl, tstl, dstl).
    pub network: String,
    /// The genesis block hash, which every signature commits to.
    pub chain_id: ChainId,
    /// Height of the tip.
    pub blocks: u64,
    pub best_block_hash: BlockHash,
    /// Time of the tip in UNIX milliseconds.
    pub best_block_time_ms: u64,
    /// Hex of the UTXO-set commitment in the tip's header.
    pub utxo_commitment: String,
    /// Coins in the UTXO set.
    pub utxo_count: u64,
    /// Assets ever issued.
    pub asset_count: u64,
    /// Transactions waiting in the mempool.
    pub mempool_size: u64,
    /// Conditions an operator must act on (as bitcoind's `warnings`): empty when
    /// all is well.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// `getblockheader` (verbose) and the header part of `getblock`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockHeaderInfo {
    pub hash: BlockHash,
    pub height: u64,
    pub version: u32,
    pub previous_block_hash: BlockHash,
    /// UNIX milliseconds.
    pub time_ms: u64,
    pub merkle_root: String,
    pub utxo_commitment: String,
    pub validator_set_hash: String,
    /// X-only key of the validator that proposed the block.
    pub proposer: String,
    /// 1 for the tip, 2 for its parent, ...
    pub confirmations: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_block_hash: Option<BlockHash>,
    pub tx_count: u64,
}

/// The commit certificate of a block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CertificateInfo {
    pub height: u64,
    pub round: u32,
    pub block_hash: BlockHash,
    /// X-only keys of the validators whose precommits it carries.
    pub signers: Vec<String>,
}

/// `getblock` with verbosity 1 (`txids`) or 2 (`txs`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockInfo {
    #[serde(flatten)]
    pub header: BlockHeaderInfo,
    /// Size of the encoded block, certificate included.
    pub size_bytes: u64,
    pub certificate: CertificateInfo,
    pub txids: Vec<Txid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txs: Option<Vec<TxInfo>>,
}

/// An issuance record on an input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IssuanceInfo {
    /// `new` or `reissue`.
    pub kind: String,
    pub asset: AssetId,
    pub amount: u64,
    /// For a new issuance: the contract, parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contract: Option<Value>,
    pub signed: bool,
}

/// One input of a decoded transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TxInInfo {
    /// The coin spent; absent for a null (issuance-only) input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prevout: Option<OutPoint>,
    pub sequence: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuance: Option<IssuanceInfo>,
    /// Witness items in hex.
    pub witness: Vec<String>,
}

/// One output of a decoded transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TxOutInfo {
    pub n: u32,
    pub asset: AssetId,
    pub amount: u64,
    pub script_pubkey: String,
    /// The address paid, when the script is a standard program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// An `OP_RETURN` output: burned, never spendable.
    pub burn: bool,
}

/// A decoded transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TxInfo {
    pub txid: Txid,
    pub wtxid: Wtxid,
    pub version: u32,
    pub size_bytes: u64,
    pub lock_time: u32,
    pub expiry_height: u32,
    pub inputs: Vec<TxInInfo>,
    pub outputs: Vec<TxOutInfo>,
}

/// `getrawtransaction` with `verbose = true`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RawTransactionInfo {
    #[serde(flatten)]
    pub tx: TxInfo,
    /// The full encoding in hex.
    pub hex: String,
    pub in_mempool: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_hash: Option<BlockHash>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// 0 while in the mempool.
    pub confirmations: u64,
}

/// One entry of `testmempoolaccept`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MempoolAcceptResult {
    /// Absent only when the hex did not decode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txid: Option<Txid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wtxid: Option<Wtxid>,
    pub allowed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reject_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflicting_txid: Option<Txid>,
}

/// `getmempoolinfo`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MempoolInfo {
    /// Transactions in the mempool.
    pub size: u64,
    /// Sum of their encoded sizes.
    pub bytes: u64,
    pub max_count: u64,
    pub max_bytes: u64,
    /// Transactions accepted since the node started.
    pub accepted_total: u64,
    /// Transactions rejected since the node started.
    pub rejected_total: u64,
}

/// `getrawmempool` with `verbose = true`: one entry per transaction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MempoolEntryInfo {
    pub txid: Txid,
    pub wtxid: Wtxid,
    pub size_bytes: u64,
    /// Tip height when it entered.
    pub entry_height: u64,
    /// UNIX milliseconds when it entered.
    pub entry_time_ms: u64,
    /// 0 = none.
    pub expiry_height: u32,
    /// Mempool transactions whose outputs it spends.
    pub depends: Vec<Txid>,
}

/// One coin of `listunspent`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UnspentInfo {
    pub outpoint: OutPoint,
    pub txid: Txid,
    pub vout: u32,
    pub asset: AssetId,
    pub amount: u64,
    pub script_pubkey: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Height of the block that created it; absent for an unconfirmed mempool output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    /// 0 for an unconfirmed output.
    pub confirmations: u64,
    /// A mempool transaction already spending this coin, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent_by_mempool: Option<Txid>,
}

/// `getassetinfo` and the entries of `listassets`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AssetInfo {
    pub asset: AssetId,
    /// `security`, `cash` or `lending_position`.
    pub class: String,
    pub name: String,
    pub ticker: String,
    pub precision: u8,
    /// X-only issuer key in hex.
    pub issuer: String,
    pub reissuable: bool,
    /// The contract as JSON, and its canonical bytes in hex.
    pub contract: Value,
    pub contract_hex: String,
    /// Units ever issued, burned, and issued less burned.
    pub issued: u128,
    pub burned: u128,
    pub outstanding: u128,
    /// The transaction and height of the first issuance.
    pub issuance_txid: Txid,
    pub issuance_height: u64,
}

/// `verifychain` (and `settled verify`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerifyChainResult {
    pub ok: bool,
    /// Tip height checked.
    pub height: u64,
    pub blocks_checked: u64,
    pub coins_checked: u64,
    /// The commitment recomputed from the stored coins, in hex.
    pub utxo_commitment: String,
    /// The first disagreement found, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// `getchainspec`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChainSpecInfo {
    pub chain_id: ChainId,
    /// The chain spec (TOML) the node's database was created with.
    pub toml: String,
}
