//! A misbehaving peer for the network tests: a consensus node built in the test
//! process with `settle-consensus`, holding the key of one validator of a
//! [`TestNetwork`], whose application trusts every block it is shown and, when it
//! proposes, builds a block the honest nodes must refuse. It is the test's
//! adversary, not the system under test: the honest nodes are real `settled`
//! processes.

#![allow(clippy::panic)] // a test harness fails by panicking

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use secp256k1::Keypair;
use serde_json::Value;
use settle_assets::BlockHash;
use settle_chain::Header;
use settle_chain::limits::HEADER_BYTES;
use settle_consensus::{
    AppError, Application, BlockVerdict, Certificate, DecidedBlock, Height, Multiaddr, NodeHandle,
    NodeParams, NodeRole, PrivateKey, ProposedBlock, Timing, ValidatorSet, peer_multiaddr,
    start_node,
};

use crate::node::{TestNetwork, read_key_file};

/// What the rogue proposes when it is the proposer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadBlock {
    /// Nothing: it lets the round time out (it still votes, for whatever it is shown).
    Nothing,
    /// A header that decodes, for the right height, on the right parent, with a
    /// merkle root that matches nothing: invalid by the chain's rules.
    Invalid,
    /// A header that decodes, followed by bytes that are no list of transactions.
    Malformed,
}

/// The rogue's chain: it keeps whatever is decided and trusts every block.
struct RogueChain {
    validators: ValidatorSet,
    proposer: [u8; 32],
    bad: BadBlock,
    /// (block bytes, header, certificate), in height order.
    blocks: Vec<(Bytes, Header, Certificate)>,
    built: Arc<AtomicU64>,
}

fn header_of(bytes: &[u8]) -> Option<Header> {
    settle_assets::deserialize::<Header>(bytes.get(..HEADER_BYTES)?).ok()
}

impl Application for RogueChain {
    fn tip_height(&self) -> Result<Height, AppError> {
        Ok(Height(self.blocks.len() as u64))
    }

    fn history_min_height(&self) -> Result<Height, AppError> {
        Ok(Height(1))
    }

    fn validator_set(&self, _height: Height) -> Result<ValidatorSet, AppError> {
        Ok(self.validators.clone())
    }

    fn build_block(&mut self, height: Height) -> Result<ProposedBlock, AppError> {
        let tail: &[u8] = match self.bad {
            BadBlock::Nothing => return Err(AppError("the rogue proposes nothing".into())),
            // No transactions, so the merkle root below matches nothing.
            BadBlock::Invalid => &[0],
            // A transaction count of 2^16 - 1 followed by five bytes.
            BadBlock::Malformed => &[0xfd, 0xff, 0xff, 0xde, 0xad],
        };
        let parent = self.blocks.last().map(|(_, h, _)| *h);
        let header = Header {
            version: parent.map_or(1, |p| p.version),
            height: height.0,
            prev_hash: parent.map_or(BlockHash([0; 32]), |p| p.hash()),
            time_ms: parent.map_or(1, |p| p.time_ms + 1),
            merkle_root: [0xee; 32],
            utxo_commitment: parent.map_or([0; 32], |p| p.utxo_commitment),
            validator_set_hash: parent.map_or([0; 32], |p| p.validator_set_hash),
            proposer: self.proposer,
        };
        let mut bytes = settle_assets::serialize(&header);
        bytes.extend_from_slice(tail);
        self.built.fetch_add(1, Ordering::Relaxed);
        Ok(ProposedBlock {
            hash: header.hash(),
            bytes: Bytes::from(bytes),
        })
    }

    fn block_hash(&self, bytes: &[u8]) -> Option<BlockHash> {
        header_of(bytes).map(|h| h.hash())
    }

    fn validate_block(&mut self, _height: Height, bytes: &[u8]) -> Result<BlockVerdict, AppError> {
        Ok(match header_of(bytes) {
            Some(h) => BlockVerdict::Valid(h.hash()),
            None => BlockVerdict::Malformed {
                reason: "no header".into(),
            },
        })
    }

    fn commit_block(
        &mut self,
        _height: Height,
        bytes: &[u8],
        certificate: &Certificate,
    ) -> Result<(), AppError> {
        let header = header_of(bytes).ok_or_else(|| AppError("no header".into()))?;
        self.blocks
            .push((Bytes::copy_from_slice(bytes), header, certificate.clone()));
        Ok(())
    }

    fn decided_block(&self, height: Height) -> Result<Option<DecidedBlock>, AppError> {
        let index = usize::try_from(height.0).unwrap_or(usize::MAX);
        Ok(index
            .checked_sub(1)
            .and_then(|i| self.blocks.get(i))
            .map(|(bytes, _, certificate)| DecidedBlock {
                bytes: bytes.clone(),
                certificate: certificate.clone(),
            }))
    }
}

/// A running rogue node.
pub struct Rogue {
    runtime: tokio::runtime::Runtime,
    handle: Option<NodeHandle>,
    /// Bad blocks it has built so far.
    pub built: Arc<AtomicU64>,
    _wal: tempfile::TempDir,
}

impl std::fmt::Debug for Rogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rogue").finish_non_exhaustive()
    }
}

/// The x-only key of `node` of `net` (its validator key).
pub fn validator_key(net: &TestNetwork, node: usize) -> Keypair {
    read_key_file(
        &net.nodes[node]
            .datadir
            .join("keys")
            .join(settle_node::datadir::VALIDATOR_KEY_FILE),
    )
}

fn loopback(port: u16) -> Multiaddr {
    format!("/ip4/127.0.0.1/tcp/{port}")
        .parse()
        .expect("multiaddr")
}

impl Rogue {
    /// Starts a rogue in place of validator `index` of `net` (whose process must not
    /// run): its key, its p2p port, the other validators as bootstrap peers. The
    /// validator set is read from a running node's `getconsensusinfo`. It votes (a
    /// node holding a validator key must, for Malachite) and proposes `bad` whenever
    /// it is the proposer.
    pub fn start(net: &TestNetwork, index: usize, bad: BadBlock) -> Rogue {
        let key = validator_key(net, index);
        let running = (0..net.nodes.len())
            .find(|i| *i != index)
            .expect("another node");
        let info: Value = net.nodes[running]
            .client()
            .call("getconsensusinfo", serde_json::json!([]))
            .expect("getconsensusinfo");
        let mut powers = Vec::new();
        for v in info["validators"].as_array().expect("validators") {
            let mut k = [0u8; 32];
            hex::decode_to_slice(v["key"].as_str().expect("key"), &mut k).expect("hex key");
            powers.push((k, v["power"].as_u64().expect("power")));
        }
        let validators = ValidatorSet::new(powers).expect("validator set");
        let mut permitted = Vec::new();
        let mut bootstrap = Vec::new();
        for (i, node) in net.nodes.iter().enumerate() {
            if !node.validator {
                continue;
            }
            let k = validator_key(net, i).x_only_public_key().0.serialize();
            permitted.push(k);
            if i != index {
                bootstrap.push(peer_multiaddr(&loopback(node.p2p_port), &k).expect("address"));
            }
        }
        let wal = tempfile::tempdir().expect("temp dir");
        let built = Arc::new(AtomicU64::new(0));
        let chain = RogueChain {
            validators,
            proposer: key.x_only_public_key().0.serialize(),
            bad,
            blocks: Vec::new(),
            built: Arc::clone(&built),
        };
        let params = NodeParams {
            chain_id: net.chain_id(),
            moniker: format!("rogue{index}"),
            key: PrivateKey::new(key),
            role: NodeRole::Validator,
            listen_addr: loopback(net.nodes[index].p2p_port),
            bootstrap_peers: bootstrap,
            permitted: Some(permitted),
            wal_dir: wal.path().to_path_buf(),
            timing: Timing::fast_for_tests(),
            wake: None,
            tx_sink: None,
            ban_duration: Duration::from_millis(settle_consensus::BAN_DURATION_MS),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let handle = runtime
            .block_on(start_node(params, chain))
            .expect("the rogue starts");
        Rogue {
            runtime,
            handle: Some(handle),
            built,
            _wal: wal,
        }
    }

    fn handle(&self) -> &NodeHandle {
        self.handle.as_ref().expect("running")
    }

    /// The rogue's libp2p peer id, as `getpeerinfo` shows it.
    pub fn peer_id(&self) -> String {
        self.handle().peer_id().to_string()
    }

    /// The height the rogue has connected.
    pub fn height(&self) -> u64 {
        self.handle().committed().borrow().0
    }

    /// Gossips `txs` (any bytes) as a transaction batch.
    pub fn gossip(&self, txs: Vec<Vec<u8>>) {
        self.runtime
            .block_on(self.handle().publish_transactions(txs))
            .expect("gossip");
    }
}

impl Drop for Rogue {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.runtime.block_on(handle.shutdown());
        }
    }
}

/// The value of the sample `series` (name with labels) in a node's `/metrics`.
pub fn metric(rpc_port: u16, series: &str) -> u64 {
    let text = crate::node::http_get(rpc_port, "/metrics");
    text.lines()
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}
