//! The JSON-RPC methods (`spec/rpc.md`), independent of the HTTP server: each takes the
//! node and the request parameters and returns a result or an [`RpcError`]. They run on
//! blocking threads.

use std::collections::HashSet;

use serde_json::{Value, json};
use settle_assets::hash::{AssetId, BlockHash, Txid};
use settle_assets::transaction::{IssuanceKind, OutPoint, Transaction};
use settle_assets::{DecodeError, deserialize, serialize};
use settle_chain::{Block, Coin, Header};
use settle_rpc::{
    AssetInfo as RpcAssetInfo, BlockHeaderInfo, BlockInfo, BlockchainInfo, CertificateInfo,
    IssuanceInfo, MAX_LISTUNSPENT_SCRIPTS, MAX_TESTMEMPOOLACCEPT_TXS, MempoolAcceptResult,
    MempoolEntryInfo, MempoolInfo, RawTransactionInfo, RejectData, RpcError, TxInInfo, TxInfo,
    TxOutInfo, UnspentInfo, VerifyChainResult, codes,
};
use settle_script::addresses::Address;

use crate::mempool::{Accepted, MempoolRejection};
use crate::node::{Node, SubmitError};
use crate::store::{MAX_COINS_PER_SCRIPT_SCAN, StoreError, StoreSnapshot};

/// Longest hex string accepted for a transaction: twice the largest transaction.
const MAX_TX_HEX_CHARS: usize = 2 * settle_assets::limits::MAX_TX_SIZE_BYTES;

/// What a method asks of the daemon beyond its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    None,
    /// A transaction entered the mempool: wake the block producer.
    TxAccepted,
    /// `stop` was called.
    Shutdown,
}

/// Every method name, for `help` and the spec check.
pub const METHODS: &[&str] = &[
    "getblockchaininfo",
    "getblockcount",
    "getbestblockhash",
    "getblockhash",
    "getblock",
    "getblockheader",
    "getrawtransaction",
    "decoderawtransaction",
    "sendrawtransaction",
    "testmempoolaccept",
    "getmempoolinfo",
    "getrawmempool",
    "listunspent",
    "gettxout",
    "getassetinfo",
    "listassets",
    "getchainspec",
    "verifychain",
    "getpeerinfo",
    "getnetworkinfo",
    "addpeer",
    "removepeer",
    "getconsensusinfo",
    "getmembership",
    "gethealth",
    // Securities lending (`rpc_lending`).
    "listpositions",
    "getposition",
    "listlendable",
    "help",
    "stop",
];

fn store_err(e: StoreError) -> RpcError {
    tracing::error!(error = %e, "storage error while serving an rpc request");
    RpcError::database(e)
}

/// Positional (array) or named (object) parameters.
struct Params<'a> {
    method: &'a str,
    value: &'a Value,
}

impl<'a> Params<'a> {
    fn new(method: &'a str, value: &'a Value, names: &[&str]) -> Result<Self, RpcError> {
        match value {
            Value::Null => {}
            Value::Array(items) if items.len() <= names.len() => {}
            Value::Array(items) => {
                return Err(RpcError::invalid_params(format!(
                    "{method} takes at most {} parameters ({}), got {}",
                    names.len(),
                    names.join(", "),
                    items.len()
                )));
            }
            Value::Object(map) => {
                if let Some(unknown) = map.keys().find(|k| !names.contains(&k.as_str())) {
                    return Err(RpcError::invalid_params(format!(
                        "{method} has no parameter {unknown:?} (it takes: {})",
                        names.join(", ")
                    )));
                }
            }
            _ => {
                return Err(RpcError::invalid_params(
                    "params must be an array or an object",
                ));
            }
        }
        Ok(Params { method, value })
    }

    fn get(&self, index: usize, name: &str) -> Option<&'a Value> {
        let v = match self.value {
            Value::Array(items) => items.get(index),
            Value::Object(map) => map.get(name),
            _ => None,
        };
        v.filter(|v| !v.is_null())
    }

    fn required(&self, index: usize, name: &str) -> Result<&'a Value, RpcError> {
        self.get(index, name).ok_or_else(|| {
            RpcError::invalid_params(format!("{} needs parameter {name:?}", self.method))
        })
    }

    fn str(&self, index: usize, name: &str) -> Result<&'a str, RpcError> {
        self.required(index, name)?
            .as_str()
            .ok_or_else(|| RpcError::invalid_params(format!("parameter {name:?} must be a string")))
    }

    fn u64(&self, index: usize, name: &str) -> Result<u64, RpcError> {
        self.required(index, name)?.as_u64().ok_or_else(|| {
            RpcError::invalid_params(format!("parameter {name:?} must be a non-negative integer"))
        })
    }

    fn opt_bool(&self, index: usize, name: &str, default: bool) -> Result<bool, RpcError> {
        match self.get(index, name) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            // bitcoind accepts 0/1 for verbose flags.
            Some(Value::Number(n)) if n.as_u64() == Some(0) => Ok(false),
            Some(Value::Number(n)) if n.as_u64() == Some(1) => Ok(true),
            Some(_) => Err(RpcError::invalid_params(format!(
                "parameter {name:?} must be a boolean"
            ))),
        }
    }

    fn hash<T: std::str::FromStr>(&self, index: usize, name: &str) -> Result<T, RpcError> {
        let s = self.str(index, name)?;
        s.parse().map_err(|_| {
            let shown: String = s.chars().take(80).collect();
            RpcError::invalid_parameter(format!(
                "parameter {name:?} must be 64 hex characters, got {shown:?}"
            ))
        })
    }
}

/// Decodes a hex transaction, with errors that say what is wrong.
pub fn decode_tx_hex(hex_str: &str) -> Result<Transaction, RpcError> {
    if hex_str.len() > MAX_TX_HEX_CHARS {
        return Err(RpcError::deserialization(format!(
            "transaction hex is {} characters, more than the limit of {MAX_TX_HEX_CHARS}",
            hex_str.len()
        )));
    }
    let bytes = hex::decode(hex_str)
        .map_err(|e| RpcError::deserialization(format!("transaction is not valid hex: {e}")))?;
    deserialize::<Transaction>(&bytes).map_err(|e: DecodeError| {
        RpcError::deserialization(format!("transaction does not decode: {e}"))
    })
}

fn address_of(node: &Node, script: &[u8]) -> Option<String> {
    Address::from_script_pubkey(node.spec.network, script)
        .ok()
        .map(|a| a.to_string())
}

fn tx_info(node: &Node, tx: &Transaction) -> TxInfo {
    let txid = tx.txid();
    TxInfo {
        txid,
        wtxid: tx.wtxid(),
        version: tx.version,
        size_bytes: tx.size_bytes() as u64,
        lock_time: tx.lock_time,
        expiry_height: tx.expiry_height,
        inputs: tx
            .inputs
            .iter()
            .map(|i| TxInInfo {
                prevout: (!i.prevout.is_null()).then_some(i.prevout),
                sequence: i.sequence,
                issuance: i.issuance.as_ref().map(|iss| IssuanceInfo {
                    kind: match iss.kind {
                        IssuanceKind::New { .. } => "new".into(),
                        IssuanceKind::Reissue { .. } => "reissue".into(),
                    },
                    asset: iss.asset_id(&i.prevout),
                    amount: iss.amount.units(),
                    contract: match &iss.kind {
                        IssuanceKind::New { contract } => serde_json::from_slice(contract).ok(),
                        IssuanceKind::Reissue { .. } => None,
                    },
                    signed: iss.signature.is_some(),
                }),
                witness: i.witness.0.iter().map(hex::encode).collect(),
            })
            .collect(),
        outputs: tx
            .outputs
            .iter()
            .enumerate()
            .map(|(n, o)| TxOutInfo {
                n: u32::try_from(n).expect("output count bounded by MAX_TX_OUTPUTS"),
                asset: o.asset,
                amount: o.amount.units(),
                script_pubkey: hex::encode(&o.script_pubkey),
                address: address_of(node, &o.script_pubkey),
                burn: o.is_burn(),
            })
            .collect(),
    }
}

fn header_info(node: &Node, header: &Header, tx_count: u64) -> Result<BlockHeaderInfo, RpcError> {
    let tip = node.tip().map_err(store_err)?;
    let next = if header.height < tip.height {
        node.store
            .header_at(header.height + 1)
            .map_err(store_err)?
            .map(|h| h.hash())
    } else {
        None
    };
    Ok(BlockHeaderInfo {
        hash: header.hash(),
        height: header.height,
        version: header.version,
        previous_block_hash: header.prev_hash,
        time_ms: header.time_ms,
        merkle_root: hex::encode(header.merkle_root),
        utxo_commitment: hex::encode(header.utxo_commitment),
        validator_set_hash: hex::encode(header.validator_set_hash),
        proposer: hex::encode(header.proposer),
        confirmations: tip.height.saturating_sub(header.height) + 1,
        next_block_hash: next,
        tx_count,
    })
}

fn find_block(node: &Node, hash: &BlockHash) -> Result<Block, RpcError> {
    let height = node
        .store
        .height_of(hash)
        .map_err(store_err)?
        .ok_or_else(|| RpcError::not_found(format!("block {hash} not found")))?;
    node.store
        .block_at(height)
        .map_err(store_err)?
        .ok_or_else(|| RpcError::not_found(format!("block {hash} not found")))
}

fn rejection_data(r: &MempoolRejection) -> RejectData {
    RejectData {
        reject_class: r.rejection.class.as_str().into(),
        reject_code: r.rejection.code.into(),
        conflicting_txid: r.conflicting_txid,
    }
}

fn submit_error(e: SubmitError) -> RpcError {
    match e {
        SubmitError::Rejected(r) => RpcError::new(
            codes::TX_REJECTED,
            format!(
                "transaction rejected ({}, {}): {}",
                r.rejection.class, r.rejection.code, r.rejection.message
            ),
        )
        .with_data(rejection_data(&r)),
        SubmitError::AlreadyInChain(txid) => RpcError::new(
            codes::TX_ALREADY_IN_CHAIN,
            format!("transaction {txid} is already confirmed"),
        ),
        SubmitError::Store(e) => store_err(e),
        SubmitError::StorageFull(why) => RpcError::new(codes::STORAGE_FULL, why),
    }
}

fn asset_info(id: AssetId, info: &settle_chain::AssetInfo) -> RpcAssetInfo {
    let c = &info.contract;
    RpcAssetInfo {
        asset: id,
        class: c.class.name().into(),
        name: c.name.clone(),
        ticker: c.ticker.clone(),
        precision: c.precision,
        issuer: hex::encode(c.issuer),
        reissuable: c.reissuable,
        contract: serde_json::from_slice(&info.contract_bytes).unwrap_or(Value::Null),
        contract_hex: hex::encode(&info.contract_bytes),
        issued: info.issued,
        burned: info.burned,
        outstanding: info.outstanding(),
        issuance_txid: info.issuing_txid,
        issuance_height: info.height,
    }
}

fn unspent_info(
    node: &Node,
    outpoint: OutPoint,
    coin: &Coin,
    confirmed: bool,
    tip_height: u64,
    spent_by: Option<Txid>,
) -> UnspentInfo {
    UnspentInfo {
        outpoint,
        txid: outpoint.txid,
        vout: outpoint.vout,
        asset: coin.output.asset,
        amount: coin.output.amount.units(),
        script_pubkey: hex::encode(&coin.output.script_pubkey),
        address: address_of(node, &coin.output.script_pubkey),
        height: confirmed.then_some(coin.height),
        confirmations: if confirmed {
            tip_height.saturating_sub(coin.height) + 1
        } else {
            0
        },
        spent_by_mempool: spent_by,
    }
}

fn to_value<T: serde::Serialize>(v: T) -> Result<Value, RpcError> {
    serde_json::to_value(v).map_err(RpcError::internal)
}

fn consensus_handle(node: &Node) -> Result<&settle_consensus::NodeHandle, RpcError> {
    node.consensus
        .get()
        .map(|h| &**h)
        .ok_or_else(|| RpcError::internal("consensus is not running"))
}

/// The network's state, asked of the network actor (this runs on a blocking thread of
/// the daemon's runtime, so it may wait for the answer).
fn network_summary(node: &Node) -> Result<settle_consensus::NetworkSummary, RpcError> {
    let handle = consensus_handle(node)?;
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| RpcError::internal("no runtime to ask the network"))?;
    runtime
        .block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(5), handle.network_summary()).await
        })
        .map_err(|_| RpcError::internal("the network did not answer within 5 s"))?
        .map_err(RpcError::internal)
}

/// Parses an operator's peer address: a multiaddr that names the peer's identity
/// (`/ip4/127.0.0.1/tcp/7391/p2p/<peer id>`), since permissioning is by identity.
fn peer_address(text: &str) -> Result<settle_consensus::Multiaddr, RpcError> {
    let addr: settle_consensus::Multiaddr = text.parse().map_err(|e| {
        RpcError::invalid_params(format!("address {text:?} is not a multiaddr: {e}"))
    })?;
    let names_peer = addr
        .iter()
        .any(|p| matches!(p, settle_consensus::multiaddr::Protocol::P2p(_)));
    if !names_peer {
        return Err(RpcError::invalid_params(format!(
            "address {text:?} must end in /p2p/<peer id> (see getnetworkinfo on that node)"
        )));
    }
    Ok(addr)
}

/// Adds (`add`) or removes a persistent peer at runtime. On a permissioned network the
/// peer's identity is permitted, or disconnected and refused, from then on.
fn change_peer(
    node: &Node,
    address: settle_consensus::Multiaddr,
    add: bool,
) -> Result<(), RpcError> {
    let handle = consensus_handle(node)?;
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| RpcError::internal("no runtime to ask the network"))?;
    runtime
        .block_on(async {
            let change = async {
                if add {
                    handle.add_peer(address).await
                } else {
                    handle.remove_peer(address).await
                }
            };
            tokio::time::timeout(std::time::Duration::from_secs(5), change).await
        })
        .map_err(|_| RpcError::internal("the network did not answer within 5 s"))?
        .map_err(|e| RpcError::invalid_params(e.to_string()))
}

fn peer_json(p: &settle_consensus::PeerSummary) -> Value {
    json!({
        "peer_id": p.peer_id,
        "moniker": p.moniker,
        "address": p.address,
        "validator_key": p.validator_key,
        "direction": p.direction,
        "persistent": p.persistent,
        "score": p.score,
        "misbehaviour_score": p.misbehaviour_score,
        "offences": p.offences,
    })
}

fn consensus_info(node: &Node) -> Result<Value, RpcError> {
    let handle = consensus_handle(node)?;
    let status = handle.status();
    let tip = node.tip().map_err(store_err)?;
    // Who is online: validators connected to this node (and this node itself).
    let online: HashSet<String> = match network_summary(node) {
        Ok(summary) => summary
            .peers
            .iter()
            .filter_map(|p| p.validator_key.clone())
            .collect(),
        Err(_) => HashSet::new(),
    };
    let me = handle.address().to_string();
    let in_force = node
        .membership_for(status.height.as_u64())
        .map_err(store_err)?;
    let validators: Vec<Value> = status
        .validators
        .iter()
        .map(|(address, power)| {
            let key = address.to_string();
            let name = in_force
                .validators
                .get(&address.to_byte_array())
                .map(|v| v.name.clone());
            // A validator proof carries the compressed key (02/03 || x).
            let connected = online
                .iter()
                .any(|k| *k == key || (k.len() == 66 && k[2..] == key));
            json!({
                "key": key,
                "name": name,
                "power": power,
                "self": key == me,
                "online": key == me || connected,
            })
        })
        .collect();
    Ok(json!({
        "height": status.height.as_u64(),
        "round": status.round,
        "proposer": status.proposer.map(|a| a.to_string()),
        "tip_height": tip.height,
        "tip_hash": tip.hash,
        "validator": node.validator().is_some() && node.config.producer.enabled,
        "address": me,
        "waiting_for_transactions": status.waiting_for_transactions,
        "validators": validators,
    }))
}

fn membership_json(m: &settle_chain::Membership) -> Value {
    json!({
        "hash": hex::encode(m.hash()),
        "validator_set_hash": hex::encode(m.validators.hash()),
        "total_power": m.validators.total_power(),
        "validators": m.validators.validators().iter().map(|v| json!({
            "name": v.name,
            "key": hex::encode(v.key),
            "power": v.power,
        })).collect::<Vec<_>>(),
        "permitted": m.permitted.iter().map(hex::encode).collect::<Vec<_>>(),
    })
}

/// The membership in force for the next block, and a pending change if any.
fn membership_info(node: &Node) -> Result<Value, RpcError> {
    let tip = node.tip().map_err(store_err)?;
    let next = tip.height + 1;
    let state = node
        .membership_after(tip.height)
        .map_err(store_err)?
        .at_height(next);
    let pending = state.pending.as_ref().map(|p| {
        json!({
            "txid": p.txid,
            "activation_height": p.activation_height,
            "membership": membership_json(&p.membership),
        })
    });
    Ok(json!({
        "height": next,
        "current": membership_json(&state.current),
        "pending": pending,
    }))
}

/// Runs one method.
pub fn call(node: &Node, method: &str, params: &Value) -> Result<(Value, Effect), RpcError> {
    let none = |v: Value| Ok((v, Effect::None));
    match method {
        "getblockchaininfo" => {
            Params::new(method, params, &[])?;
            // Read under the mempool lock, which block connection holds: the size
            // belongs to this tip.
            let (tip, mempool_size) = {
                let m = node.mempool();
                (node.tip().map_err(store_err)?, m.len() as u64)
            };
            none(to_value(BlockchainInfo {
                chain: node.spec.name.clone(),
                network: node.spec.network.name().into(),
                chain_id: node.chain_id,
                blocks: tip.height,
                best_block_hash: tip.hash,
                best_block_time_ms: tip.header.time_ms,
                utxo_commitment: hex::encode(tip.header.utxo_commitment),
                utxo_count: tip.utxo_count,
                asset_count: tip.asset_count,
                mempool_size,
                warnings: node.warnings(),
            })?)
        }
        "getblockcount" => {
            Params::new(method, params, &[])?;
            none(json!(node.tip().map_err(store_err)?.height))
        }
        "getbestblockhash" => {
            Params::new(method, params, &[])?;
            none(json!(node.tip().map_err(store_err)?.hash))
        }
        "getblockhash" => {
            let p = Params::new(method, params, &["height"])?;
            let height = p.u64(0, "height")?;
            let tip = node.tip().map_err(store_err)?;
            if height > tip.height {
                return Err(RpcError::invalid_parameter(format!(
                    "block height {height} is out of range: the tip is at {}",
                    tip.height
                )));
            }
            let header = node
                .store
                .header_at(height)
                .map_err(store_err)?
                .ok_or_else(|| RpcError::not_found(format!("no block at height {height}")))?;
            none(json!(header.hash()))
        }
        "getblock" => {
            let p = Params::new(method, params, &["blockhash", "verbosity"])?;
            let hash: BlockHash = p.hash(0, "blockhash")?;
            let verbosity = match p.get(1, "verbosity") {
                None => 1,
                Some(Value::Bool(b)) => u64::from(*b),
                // A number of the right type with a value out of range: -8, as the
                // error table says, like any other bad value.
                Some(Value::Number(n)) => n.as_u64().filter(|v| *v <= 2).ok_or_else(|| {
                    RpcError::invalid_parameter(format!(
                        "parameter \"verbosity\" must be 0, 1 or 2, got {n}"
                    ))
                })?,
                Some(_) => {
                    return Err(RpcError::invalid_params(
                        "parameter \"verbosity\" must be a number (0, 1 or 2) or a boolean",
                    ));
                }
            };
            let block = find_block(node, &hash)?;
            let bytes = serialize(&block);
            if verbosity == 0 {
                return none(json!(hex::encode(bytes)));
            }
            let header = header_info(node, &block.header, block.transactions.len() as u64)?;
            let c = &block.certificate;
            none(to_value(BlockInfo {
                header,
                size_bytes: bytes.len() as u64,
                certificate: CertificateInfo {
                    height: c.height,
                    round: c.round,
                    block_hash: c.block_hash,
                    signers: c
                        .signatures
                        .iter()
                        .map(|s| hex::encode(s.validator))
                        .collect(),
                },
                txids: block.transactions.iter().map(Transaction::txid).collect(),
                txs: (verbosity == 2).then(|| {
                    block
                        .transactions
                        .iter()
                        .map(|t| tx_info(node, t))
                        .collect()
                }),
            })?)
        }
        "getblockheader" => {
            let p = Params::new(method, params, &["blockhash", "verbose"])?;
            let hash: BlockHash = p.hash(0, "blockhash")?;
            let verbose = p.opt_bool(1, "verbose", true)?;
            let block = find_block(node, &hash)?;
            if !verbose {
                return none(json!(hex::encode(serialize(&block.header))));
            }
            none(to_value(header_info(
                node,
                &block.header,
                block.transactions.len() as u64,
            )?)?)
        }
        "getrawtransaction" => {
            let p = Params::new(method, params, &["txid", "verbose"])?;
            let txid: Txid = p.hash(0, "txid")?;
            let verbose = p.opt_bool(1, "verbose", false)?;
            // Where it is (a block or the mempool) and the tip, from one picture.
            let found = node
                .consistent_read(
                    |snap| {
                        let Some((tx, height)) = snap.transaction(&txid)? else {
                            return Ok(None);
                        };
                        let hash = snap.header_at(height)?.map(|h| h.hash());
                        Ok(Some((tx, height, hash)))
                    },
                    |confirmed, snap, m| {
                        Ok::<_, StoreError>(match confirmed {
                            Some((tx, height, hash)) => {
                                Some((tx, Some((height, hash)), snap.tip.height))
                            }
                            None => m
                                .get(&txid)
                                .map(|e| ((*e.tx).clone(), None, snap.tip.height)),
                        })
                    },
                )
                .map_err(store_err)?;
            let Some((tx, location, tip_height)) = found else {
                return Err(RpcError::not_found(format!(
                    "transaction {txid} is neither in the mempool nor confirmed"
                )));
            };
            let hex = hex::encode(serialize(&tx));
            if !verbose {
                return none(json!(hex));
            }
            none(to_value(RawTransactionInfo {
                tx: tx_info(node, &tx),
                hex,
                in_mempool: location.is_none(),
                block_hash: location.and_then(|l| l.1),
                height: location.map(|l| l.0),
                confirmations: location.map_or(0, |l| tip_height.saturating_sub(l.0) + 1),
            })?)
        }
        "decoderawtransaction" => {
            let p = Params::new(method, params, &["hexstring"])?;
            let tx = decode_tx_hex(p.str(0, "hexstring")?)?;
            none(to_value(tx_info(node, &tx))?)
        }
        "sendrawtransaction" => {
            let p = Params::new(method, params, &["hexstring"])?;
            let tx = decode_tx_hex(p.str(0, "hexstring")?)?;
            match node.submit(tx).map_err(submit_error)? {
                Accepted::New(txid) => {
                    tracing::debug!(%txid, "accepted a transaction");
                    Ok((json!(txid), Effect::TxAccepted))
                }
                Accepted::AlreadyKnown(txid) => none(json!(txid)),
            }
        }
        "testmempoolaccept" => {
            let p = Params::new(method, params, &["rawtxs"])?;
            let list = p.required(0, "rawtxs")?.as_array().ok_or_else(|| {
                RpcError::invalid_params("parameter \"rawtxs\" must be an array of hex strings")
            })?;
            if list.is_empty() || list.len() > MAX_TESTMEMPOOLACCEPT_TXS {
                return Err(RpcError::invalid_params(format!(
                    "\"rawtxs\" must hold 1 to {MAX_TESTMEMPOOLACCEPT_TXS} transactions, got {}",
                    list.len()
                )));
            }
            let mut results = Vec::with_capacity(list.len());
            for item in list {
                let decoded = item
                    .as_str()
                    .ok_or_else(|| RpcError::deserialization("each entry must be a hex string"))
                    .and_then(decode_tx_hex);
                let tx = match decoded {
                    Ok(tx) => tx,
                    Err(e) => {
                        results.push(MempoolAcceptResult {
                            txid: None,
                            wtxid: None,
                            allowed: false,
                            reject_class: Some("consensus".into()),
                            reject_code: Some("decode".into()),
                            reject_reason: Some(e.message),
                            conflicting_txid: None,
                        });
                        continue;
                    }
                };
                let (txid, wtxid) = (tx.txid(), tx.wtxid());
                let mut r = MempoolAcceptResult {
                    txid: Some(txid),
                    wtxid: Some(wtxid),
                    allowed: true,
                    reject_class: None,
                    reject_code: None,
                    reject_reason: None,
                    conflicting_txid: None,
                };
                match node.test_accept(tx) {
                    Ok(_) => {}
                    Err(SubmitError::Rejected(rej)) => {
                        r.allowed = false;
                        r.reject_class = Some(rej.rejection.class.as_str().into());
                        r.reject_code = Some(rej.rejection.code.into());
                        r.reject_reason = Some(rej.rejection.message.clone());
                        r.conflicting_txid = rej.conflicting_txid;
                    }
                    Err(SubmitError::AlreadyInChain(_)) => {
                        r.allowed = false;
                        r.reject_class = Some("policy".into());
                        r.reject_code = Some("already-confirmed".into());
                        r.reject_reason = Some(format!("transaction {txid} is already confirmed"));
                    }
                    Err(e @ (SubmitError::Store(_) | SubmitError::StorageFull(_))) => {
                        return Err(submit_error(e));
                    }
                }
                results.push(r);
            }
            none(to_value(results)?)
        }
        "getmempoolinfo" => {
            Params::new(method, params, &[])?;
            let m = node.mempool();
            none(to_value(MempoolInfo {
                size: m.len() as u64,
                bytes: m.bytes() as u64,
                max_count: m.config().max_count as u64,
                max_bytes: m.config().max_bytes as u64,
                accepted_total: node
                    .metrics
                    .txs_accepted
                    .load(std::sync::atomic::Ordering::Relaxed),
                rejected_total: node.metrics.rejected_total(),
            })?)
        }
        "getrawmempool" => {
            let p = Params::new(method, params, &["verbose"])?;
            let verbose = p.opt_bool(0, "verbose", false)?;
            let m = node.mempool();
            if !verbose {
                let txids: Vec<Txid> = m.entries_in_order().map(|e| e.txid).collect();
                return none(json!(txids));
            }
            let entries: Vec<MempoolEntryInfo> = m
                .entries_in_order()
                .map(|e| MempoolEntryInfo {
                    txid: e.txid,
                    wtxid: e.wtxid,
                    size_bytes: e.size_bytes as u64,
                    entry_height: e.entry_height,
                    entry_time_ms: e.entry_time_ms,
                    expiry_height: e.tx.expiry_height,
                    depends: e.parents.clone(),
                })
                .collect();
            none(to_value(entries)?)
        }
        "listunspent" => {
            let p = Params::new(method, params, &["addresses", "include_mempool", "scripts"])?;
            let include_mempool = p.opt_bool(1, "include_mempool", false)?;
            let network = node.spec.network;
            let mut scripts: Vec<Vec<u8>> = Vec::new();
            if let Some(list) = p.get(0, "addresses") {
                let list = list.as_array().ok_or_else(|| {
                    RpcError::invalid_params("parameter \"addresses\" must be an array of strings")
                })?;
                for a in list {
                    let s = a
                        .as_str()
                        .ok_or_else(|| RpcError::invalid_params("each address must be a string"))?;
                    let addr = Address::parse_for(s, network).map_err(|e| {
                        let shown: String = s.chars().take(100).collect();
                        RpcError::invalid_parameter(format!("invalid address {shown:?}: {e}"))
                    })?;
                    scripts.push(addr.script_pubkey());
                }
            }
            if let Some(list) = p.get(2, "scripts") {
                let list = list.as_array().ok_or_else(|| {
                    RpcError::invalid_params(
                        "parameter \"scripts\" must be an array of hex strings",
                    )
                })?;
                for s in list {
                    let script = s
                        .as_str()
                        .and_then(|s| hex::decode(s).ok())
                        .ok_or_else(|| RpcError::invalid_parameter("each script must be hex"))?;
                    scripts.push(script);
                }
            }
            if scripts.is_empty() {
                return Err(RpcError::invalid_params(
                    "listunspent needs \"addresses\" (or \"scripts\") to look up",
                ));
            }
            if scripts.len() > MAX_LISTUNSPENT_SCRIPTS {
                return Err(RpcError::invalid_params(format!(
                    "at most {MAX_LISTUNSPENT_SCRIPTS} addresses per call, got {}",
                    scripts.len()
                )));
            }
            scripts.sort();
            scripts.dedup();
            // The chain's coins and the mempool's, at one tip: a block connecting
            // between the two reads would show coins as unspent that are spent, or
            // hide coins that its transactions created.
            let scan = |snap: &StoreSnapshot<'_>| {
                let mut out = Vec::new();
                for script in &scripts {
                    for (outpoint, coin) in
                        snap.coins_by_script(script, MAX_COINS_PER_SCRIPT_SCAN)?
                    {
                        out.push((outpoint, coin, true));
                    }
                }
                Ok::<_, StoreError>(out)
            };
            let list = node
                .consistent_read(scan, |mut out, snap, m| {
                    if include_mempool {
                        let wanted: HashSet<&[u8]> = scripts.iter().map(Vec::as_slice).collect();
                        for (outpoint, coin) in m.created_coins() {
                            if wanted.contains(coin.output.script_pubkey.as_slice()) {
                                out.push((*outpoint, coin.clone(), false));
                            }
                        }
                    }
                    out.sort_by_key(|a| a.0);
                    Ok(out
                        .into_iter()
                        .map(|(outpoint, coin, confirmed)| {
                            let spent_by = m.spender_of(&outpoint);
                            unspent_info(
                                node,
                                outpoint,
                                &coin,
                                confirmed,
                                snap.tip.height,
                                spent_by,
                            )
                        })
                        .collect::<Vec<UnspentInfo>>())
                })
                .map_err(store_err)?;
            none(to_value(list)?)
        }
        "gettxout" => {
            let p = Params::new(method, params, &["txid", "vout", "include_mempool"])?;
            let txid: Txid = p.hash(0, "txid")?;
            let vout = u32::try_from(p.u64(1, "vout")?)
                .map_err(|_| RpcError::invalid_parameter("\"vout\" is out of range"))?;
            let include_mempool = p.opt_bool(2, "include_mempool", true)?;
            let outpoint = OutPoint::new(txid, vout);
            let found = node
                .consistent_read(
                    |snap| snap.coin(&outpoint),
                    |coin, snap, m| {
                        let spent_by = m.spender_of(&outpoint);
                        if include_mempool && spent_by.is_some() {
                            return Ok(None);
                        }
                        if let Some(coin) = coin {
                            return Ok(Some(unspent_info(
                                node,
                                outpoint,
                                &coin,
                                true,
                                snap.tip.height,
                                spent_by,
                            )));
                        }
                        Ok(include_mempool
                            .then(|| m.created_coin(&outpoint))
                            .flatten()
                            .map(|coin| {
                                unspent_info(node, outpoint, coin, false, snap.tip.height, None)
                            }))
                    },
                )
                .map_err(store_err)?;
            none(found.map_or(Ok(Value::Null), to_value)?)
        }
        "getassetinfo" => {
            let p = Params::new(method, params, &["asset"])?;
            let id: AssetId = p.hash(0, "asset")?;
            let info = node.store.asset(&id).map_err(store_err)?.ok_or_else(|| {
                RpcError::not_found(format!("asset {id} is not issued on this chain"))
            })?;
            none(to_value(asset_info(id, &info))?)
        }
        "listassets" => {
            Params::new(method, params, &[])?;
            let list: Vec<RpcAssetInfo> = node
                .store
                .assets()
                .map_err(store_err)?
                .iter()
                .map(|(id, info)| asset_info(*id, info))
                .collect();
            none(to_value(list)?)
        }
        "getchainspec" => {
            Params::new(method, params, &[])?;
            let toml = node
                .store
                .chain_spec_toml()
                .map_err(store_err)?
                .unwrap_or_default();
            none(json!({ "chain_id": node.chain_id, "toml": toml }))
        }
        "verifychain" => {
            Params::new(method, params, &[])?;
            // Hold the mempool lock so no block connects while the database is read.
            let _quiet = node.mempool();
            let report = crate::verify::verify_chain(&node.store, &node.spec).map_err(store_err)?;
            none(to_value(VerifyChainResult {
                ok: report.ok(),
                height: report.height,
                blocks_checked: report.blocks_checked,
                coins_checked: report.coins_checked,
                utxo_commitment: report.utxo_commitment,
                problem: report.problem,
            })?)
        }
        "getpeerinfo" => {
            Params::new(method, params, &[])?;
            let summary = network_summary(node)?;
            none(json!(
                summary.peers.iter().map(peer_json).collect::<Vec<_>>()
            ))
        }
        "getnetworkinfo" => {
            Params::new(method, params, &[])?;
            let summary = network_summary(node)?;
            none(json!({
                "peer_id": summary.peer_id,
                "moniker": summary.moniker,
                "listen_addr": summary.listen_addr,
                "p2p_port": node.config.p2p_port,
                "node_key": consensus_handle(node)?.address().to_string(),
                "is_validator": summary.is_validator,
                "permissioned": summary.permissioned,
                "connections": summary.peers.len(),
                "persistent_peers": summary.persistent_peers,
            }))
        }
        "addpeer" | "removepeer" => {
            let p = Params::new(method, params, &["address"])?;
            let add = method == "addpeer";
            let address = peer_address(p.str(0, "address")?)?;
            if add {
                // An operator may dial a permitted node, never extend the permitted set
                // (MEMB_001): that takes a membership transaction.
                let next = node.tip().map_err(store_err)?.height + 1;
                let membership = node.membership_for(next).map_err(store_err)?;
                let peer = crate::membership::named_peer(&address);
                if !peer.is_some_and(|id| crate::membership::permits_peer(&membership, &id)) {
                    return Err(RpcError::invalid_params(format!(
                        "peer {} is not in the chain's permitted set; a membership change \
                         signed by the validators must permit its node key first (see \
                         `settled membership propose --permit`)",
                        peer.map_or_else(|| address.to_string(), |p| p.to_string())
                    )));
                }
            }
            change_peer(node, address.clone(), add)?;
            none(json!({ "address": address.to_string(), "added": add, "removed": !add }))
        }
        "getconsensusinfo" => {
            Params::new(method, params, &[])?;
            none(consensus_info(node)?)
        }
        "getmembership" => {
            Params::new(method, params, &[])?;
            none(membership_info(node)?)
        }
        "gethealth" => {
            Params::new(method, params, &[])?;
            let halt = node.storage_halt();
            let status = match &halt {
                None => "ok",
                Some(h) if h.needs_restart => "restart-needed",
                Some(_) => "storage-full",
            };
            none(json!({
                "status": status,
                "admitting": halt.is_none(),
                "connecting": halt.is_none(),
                "halted_since_ms": halt.as_ref().map(|h| h.since_ms),
                "warnings": node.warnings(),
            }))
        }
        "help" => {
            Params::new(method, params, &[])?;
            none(json!(METHODS))
        }
        "stop" => {
            Params::new(method, params, &[])?;
            Ok((json!("settled stopping"), Effect::Shutdown))
        }
        lending if crate::rpc_lending::handles(lending) => {
            none(crate::rpc_lending::call(node, lending, params)?)
        }
        other => Err(RpcError::method_not_found(other)),
    }
}
