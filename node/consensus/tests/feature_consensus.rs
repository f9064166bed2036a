//! Consensus nodes in one process, talking over real libp2p connections on loopback:
//! one validator alone (the dev chain), four validators, and a follower that syncs
//! a chain it did not see being decided.
//!
//! The chain behind each node is a small in-memory application (`MemChain`): a
//! block is `height || parent hash || proposer key`, and every block connected must
//! extend the tip and carry a certificate that verifies against the validator set.
//! Everything else (signatures, networking, Tendermint, sync) is the real thing.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use secp256k1::{Keypair, SECP256K1, SecretKey};
use settle_assets::{BlockHash, ChainId, tagged_hash};
use settle_consensus::{
    AppError, Application, BlockVerdict, Certificate, DecidedBlock, Height, Multiaddr, NodeHandle,
    NodeParams, NodeRole, PrivateKey, ProposedBlock, Timing, ValidatorSet, peer_multiaddr,
    start_node,
};

const CHAIN: ChainId = ChainId([0x5e; 32]);
const BLOCK_LEN: usize = 8 + 32 + 32;
/// Generous bound for slow CI machines; the runs take a few seconds.
const WAIT: Duration = Duration::from_secs(60);

fn key(seed: u8) -> PrivateKey {
    let sk = SecretKey::from_byte_array([seed; 32]).expect("valid secret");
    PrivateKey::new(Keypair::from_secret_key(SECP256K1, &sk))
}

fn xonly(key: &PrivateKey) -> [u8; 32] {
    key.public_key().serialize()
}

/// What every node records, for the assertions.
#[derive(Default)]
struct Record {
    /// (height, block hash, certificate, proposer key) in the order connected.
    connected: Vec<(u64, BlockHash, Certificate, [u8; 32])>,
    /// Anything that must not happen.
    violations: Vec<String>,
}

struct MemChain {
    validators: ValidatorSet,
    /// Proposes blocks that do not extend the tip (while set).
    evil: Arc<AtomicBool>,
    proposer_key: [u8; 32],
    record: Arc<Mutex<Record>>,
    blocks: Vec<(BlockHash, Bytes, Certificate)>,
}

impl MemChain {
    fn new(validators: ValidatorSet, proposer_key: [u8; 32]) -> (Self, Arc<Mutex<Record>>) {
        let record = Arc::new(Mutex::new(Record::default()));
        let chain = MemChain {
            validators,
            evil: Arc::new(AtomicBool::new(false)),
            proposer_key,
            record: record.clone(),
            blocks: Vec::new(),
        };
        (chain, record)
    }

    fn tip_hash(&self) -> BlockHash {
        self.blocks
            .last()
            .map(|b| b.0)
            .unwrap_or(BlockHash([0; 32]))
    }

    fn violation(&self, what: String) {
        self.record.lock().expect("lock").violations.push(what);
    }
}

fn block_hash(bytes: &[u8]) -> BlockHash {
    BlockHash(tagged_hash("Settle/TestBlock", bytes))
}

impl Application for MemChain {
    fn block_hash(&self, bytes: &[u8]) -> Option<BlockHash> {
        (bytes.len() == BLOCK_LEN).then(|| block_hash(bytes))
    }

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
        let mut bytes = Vec::with_capacity(BLOCK_LEN);
        bytes.extend_from_slice(&height.0.to_le_bytes());
        if self.evil.load(Ordering::Relaxed) {
            bytes.extend_from_slice(&[0xee; 32]);
        } else {
            bytes.extend_from_slice(&self.tip_hash().0);
        }
        bytes.extend_from_slice(&self.proposer_key);
        Ok(ProposedBlock {
            hash: block_hash(&bytes),
            bytes: Bytes::from(bytes),
        })
    }

    fn validate_block(&mut self, height: Height, bytes: &[u8]) -> Result<BlockVerdict, AppError> {
        if bytes.len() != BLOCK_LEN {
            return Ok(BlockVerdict::Malformed {
                reason: format!("{} bytes", bytes.len()),
            });
        }
        let hash = block_hash(bytes);
        let claimed = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
        if claimed != height.0 || height.0 != self.blocks.len() as u64 + 1 {
            return Ok(BlockVerdict::Invalid {
                hash,
                reason: format!("height {claimed}, expected {height}"),
            });
        }
        if bytes[8..40] != self.tip_hash().0 {
            return Ok(BlockVerdict::Invalid {
                hash,
                reason: "does not extend the tip".into(),
            });
        }
        Ok(BlockVerdict::Valid(hash))
    }

    fn commit_block(
        &mut self,
        height: Height,
        bytes: &[u8],
        certificate: &Certificate,
    ) -> Result<(), AppError> {
        let hash = block_hash(bytes);
        let proposer: [u8; 32] = bytes[40..72].try_into().expect("32 bytes");
        if height.0 != self.blocks.len() as u64 + 1 || bytes[8..40] != self.tip_hash().0 {
            self.violation(format!("block at {height} does not extend the tip"));
        }
        if certificate.height != height.0 || certificate.block_hash != hash {
            self.violation(format!("certificate at {height} is for another block"));
        }
        if let Err(e) = settle_consensus::certificate::verify(certificate, &self.validators, &CHAIN)
        {
            self.violation(format!("certificate at {height}: {e}"));
        }
        self.blocks
            .push((hash, Bytes::copy_from_slice(bytes), certificate.clone()));
        self.record.lock().expect("lock").connected.push((
            height.0,
            hash,
            certificate.clone(),
            proposer,
        ));
        Ok(())
    }

    fn decided_block(&self, height: Height) -> Result<Option<DecidedBlock>, AppError> {
        let Some(index) = height.0.checked_sub(1) else {
            return Ok(None);
        };
        Ok(self
            .blocks
            .get(usize::try_from(index).unwrap_or(usize::MAX))
            .map(|(_, bytes, certificate)| DecidedBlock {
                bytes: bytes.clone(),
                certificate: certificate.clone(),
            }))
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

fn loopback(port: u16) -> Multiaddr {
    format!("/ip4/127.0.0.1/tcp/{port}")
        .parse()
        .expect("multiaddr")
}

struct TestNode {
    handle: NodeHandle,
    record: Arc<Mutex<Record>>,
    /// Turns the node's malice on or off.
    evil: Arc<AtomicBool>,
    _wal: tempfile::TempDir,
}

async fn start(
    name: &str,
    node_key: &PrivateKey,
    role: NodeRole,
    validators: &ValidatorSet,
    port: u16,
    bootstrap: Vec<Multiaddr>,
    permitted: Option<Vec<[u8; 32]>>,
) -> TestNode {
    start_with(
        name,
        node_key,
        role,
        validators,
        port,
        bootstrap,
        permitted,
        Timing::fast_for_tests(),
        false,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn start_with(
    name: &str,
    node_key: &PrivateKey,
    role: NodeRole,
    validators: &ValidatorSet,
    port: u16,
    bootstrap: Vec<Multiaddr>,
    permitted: Option<Vec<[u8; 32]>>,
    timing: Timing,
    evil: bool,
) -> TestNode {
    start_full(
        name,
        node_key,
        role,
        validators,
        port,
        bootstrap,
        permitted,
        timing,
        evil,
        Duration::from_millis(settle_consensus::BAN_DURATION_MS),
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn start_full(
    name: &str,
    node_key: &PrivateKey,
    role: NodeRole,
    validators: &ValidatorSet,
    port: u16,
    bootstrap: Vec<Multiaddr>,
    permitted: Option<Vec<[u8; 32]>>,
    timing: Timing,
    evil: bool,
    ban_duration: Duration,
) -> TestNode {
    let wal = tempfile::tempdir().expect("temp dir");
    let (chain, record) = MemChain::new(validators.clone(), xonly(node_key));
    chain.evil.store(evil, Ordering::Relaxed);
    let malice = Arc::clone(&chain.evil);
    let params = NodeParams {
        chain_id: CHAIN,
        moniker: name.to_string(),
        key: node_key.clone(),
        role,
        listen_addr: loopback(port),
        bootstrap_peers: bootstrap,
        permitted,
        wal_dir: wal.path().to_path_buf(),
        timing,
        wake: None,
        tx_sink: None,
        ban_duration,
    };
    let handle = start_node(params, chain).await.expect("node starts");
    TestNode {
        handle,
        record,
        evil: malice,
        _wal: wal,
    }
}

/// Starts one node per key, every key a validator of power 1 and permitted, each
/// bootstrapping from all the others; returns the nodes and their addresses.
async fn start_mesh(
    prefix: &str,
    keys: &[PrivateKey],
    role: impl Fn(usize) -> NodeRole,
    evil: impl Fn(usize) -> bool,
    ban: Duration,
) -> (Vec<TestNode>, Vec<Multiaddr>) {
    let validators = ValidatorSet::new(keys.iter().map(|k| (xonly(k), 1))).expect("set");
    let permitted: Vec<[u8; 32]> = keys.iter().map(xonly).collect();
    let ports: Vec<u16> = (0..keys.len()).map(|_| free_port()).collect();
    let addrs: Vec<Multiaddr> = keys
        .iter()
        .zip(&ports)
        .map(|(k, p)| peer_multiaddr(&loopback(*p), &xonly(k)).expect("addr"))
        .collect();
    let mut nodes = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let others = addrs
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, a)| a.clone())
            .collect();
        nodes.push(
            start_full(
                &format!("{prefix}{i}"),
                k,
                role(i),
                &validators,
                ports[i],
                others,
                Some(permitted.clone()),
                Timing::fast_for_tests(),
                evil(i),
                ban,
            )
            .await,
        );
    }
    (nodes, addrs)
}

fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SETTLE_TEST_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off")),
        )
        .with_test_writer()
        .try_init();
}

type Connected = (u64, BlockHash, Certificate, [u8; 32]);

fn assert_clean_chain(node: &TestNode, up_to: u64) -> Vec<Connected> {
    let record = node.record.lock().expect("lock");
    assert!(
        record.violations.is_empty(),
        "violations: {:?}",
        record.violations
    );
    let heights: Vec<u64> = record.connected.iter().map(|c| c.0).collect();
    let expected: Vec<u64> = (1..=heights.len() as u64).collect();
    assert_eq!(heights, expected, "heights connected once each, in order");
    assert!(heights.len() as u64 >= up_to);
    record.connected[..usize::try_from(up_to).expect("small")].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_validator_decides_heights() {
    init_logs();
    let k = key(1);
    let validators = ValidatorSet::new([(xonly(&k), 1)]).expect("set");
    let node = start(
        "solo",
        &k,
        NodeRole::Validator,
        &validators,
        free_port(),
        vec![],
        None,
    )
    .await;

    let started = Instant::now();
    node.handle
        .wait_for_height(Height(5), WAIT)
        .await
        .expect("five heights decided");
    println!("single validator: 5 heights in {:?}", started.elapsed());

    let chain = assert_clean_chain(&node, 5);
    for (height, _, cert, _) in &chain {
        assert_eq!(cert.height, *height);
        assert_eq!(cert.signatures.len(), 1, "one validator signs");
        assert_eq!(cert.signatures[0].validator, xonly(&k));
    }
    node.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_validators_decide_the_same_blocks_and_a_follower_syncs() {
    init_logs();
    let keys: Vec<PrivateKey> = (11..=14).map(key).collect();
    let follower_key = key(20);
    let validators = ValidatorSet::new(keys.iter().map(|k| (xonly(k), 1))).expect("set");
    let ports: Vec<u16> = (0..keys.len()).map(|_| free_port()).collect();
    let addrs: Vec<Multiaddr> = keys
        .iter()
        .zip(&ports)
        .map(|(k, p)| peer_multiaddr(&loopback(*p), &xonly(k)).expect("addr"))
        .collect();
    let mut permitted: Vec<[u8; 32]> = keys.iter().map(xonly).collect();
    permitted.push(xonly(&follower_key));

    let mut nodes = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let others: Vec<Multiaddr> = addrs
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, a)| a.clone())
            .collect();
        nodes.push(
            start(
                &format!("val{i}"),
                k,
                NodeRole::Validator,
                &validators,
                ports[i],
                others,
                Some(permitted.clone()),
            )
            .await,
        );
    }

    let started = Instant::now();
    for node in &nodes {
        node.handle
            .wait_for_height(Height(5), WAIT)
            .await
            .expect("five heights decided on every validator");
    }
    println!("four validators: 5 heights in {:?}", started.elapsed());

    let reference = assert_clean_chain(&nodes[0], 5);
    for node in &nodes[1..] {
        let chain = assert_clean_chain(node, 5);
        let hashes: Vec<_> = chain.iter().map(|c| c.1).collect();
        let expected: Vec<_> = reference.iter().map(|c| c.1).collect();
        assert_eq!(hashes, expected, "every validator connects the same blocks");
    }
    for (_, _, cert, _) in &reference {
        assert!(
            cert.signatures.len() >= 3,
            "a quorum of 4 equal validators is 3"
        );
    }
    // Blocks were proposed by more than one validator (round-robin proposers).
    let proposers: std::collections::HashSet<_> = nodes[0]
        .record
        .lock()
        .expect("lock")
        .connected
        .iter()
        .map(|c| c.3)
        .collect();
    assert!(proposers.len() > 1, "proposers rotate");

    // A follower that joins late catches up through value sync, checking every
    // certificate, and then follows.
    let tip = nodes[0].handle.committed().borrow().0;
    let follower = start(
        "follower",
        &follower_key,
        NodeRole::Follower,
        &validators,
        free_port(),
        addrs.clone(),
        Some(permitted.clone()),
    )
    .await;
    let synced = Instant::now();
    follower
        .handle
        .wait_for_height(Height(tip + 2), WAIT)
        .await
        .expect("the follower syncs and follows");
    println!(
        "follower: synced past height {tip} in {:?}",
        synced.elapsed()
    );
    let followed = assert_clean_chain(&follower, tip + 2);
    let leader = assert_clean_chain(&nodes[0], tip + 2);
    assert_eq!(
        followed.iter().map(|c| c.1).collect::<Vec<_>>(),
        leader.iter().map(|c| c.1).collect::<Vec<_>>()
    );

    follower.handle.shutdown().await;
    for node in nodes {
        node.handle.shutdown().await;
    }
}

fn height_of(node: &TestNode) -> u64 {
    node.handle.committed().borrow().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_permitted_peers_follow_and_a_revoked_peer_is_cut_off() {
    init_logs();
    let v = key(31);
    let friend = key(32);
    let stranger = key(33);
    let validators = ValidatorSet::new([(xonly(&v), 1)]).expect("set");
    let timing = Timing {
        // Pace the chain so that "no progress" is meaningful.
        block_interval: Some(Duration::from_millis(50)),
        ..Timing::fast_for_tests()
    };
    let v_port = free_port();
    let v_addr = peer_multiaddr(&loopback(v_port), &xonly(&v)).expect("addr");
    let permitted = vec![xonly(&v), xonly(&friend)];
    let validator = start_with(
        "gate",
        &v,
        NodeRole::Validator,
        &validators,
        v_port,
        vec![],
        Some(permitted),
        timing,
        false,
    )
    .await;
    let friend_node = start_with(
        "friend",
        &friend,
        NodeRole::Follower,
        &validators,
        free_port(),
        vec![v_addr.clone()],
        None,
        timing,
        false,
    )
    .await;
    let stranger_node = start_with(
        "stranger",
        &stranger,
        NodeRole::Follower,
        &validators,
        free_port(),
        vec![v_addr.clone()],
        None,
        timing,
        false,
    )
    .await;

    friend_node
        .handle
        .wait_for_height(Height(3), WAIT)
        .await
        .expect("a permitted follower syncs");
    // Give the stranger as long again as the friend needed, and more.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        height_of(&stranger_node),
        0,
        "a peer outside the permitted set gets no block"
    );
    assert!(height_of(&friend_node) >= 3);

    // Revoke the friend at runtime: it is disconnected and stops following.
    let friend_entry = peer_multiaddr(&Multiaddr::empty(), &xonly(&friend)).expect("addr");
    validator
        .handle
        .remove_peer(friend_entry)
        .await
        .expect("the permitted entry is removed");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let frozen = height_of(&friend_node);
    let before = height_of(&validator);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = height_of(&validator);
    assert!(
        after >= before + 10,
        "the validator keeps deciding ({before} -> {after})"
    );
    assert!(
        height_of(&friend_node) <= frozen + 1,
        "a revoked peer no longer follows ({frozen} -> {})",
        height_of(&friend_node)
    );
    assert_clean_chain(&friend_node, frozen.min(3));

    stranger_node.handle.shutdown().await;
    friend_node.handle.shutdown().await;
    validator.handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validators_vote_down_an_invalid_proposal() {
    init_logs();
    let keys: Vec<PrivateKey> = (41..=44).map(key).collect();
    let validators = ValidatorSet::new(keys.iter().map(|k| (xonly(k), 1))).expect("set");
    let ports: Vec<u16> = (0..keys.len()).map(|_| free_port()).collect();
    let addrs: Vec<Multiaddr> = keys
        .iter()
        .zip(&ports)
        .map(|(k, p)| peer_multiaddr(&loopback(*p), &xonly(k)).expect("addr"))
        .collect();
    // One of the four (a tolerated fault) proposes blocks that do not extend the tip.
    let evil = xonly(&keys[0]);
    let mut nodes = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let others = addrs
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, a)| a.clone())
            .collect();
        let timing = Timing::fast_for_tests();
        let name = format!("v{i}");
        let node = start_with(
            &name,
            k,
            NodeRole::Validator,
            &validators,
            ports[i],
            others,
            None,
            timing,
            i == 0,
        )
        .await;
        nodes.push(node);
    }
    for node in &nodes[1..] {
        node.handle
            .wait_for_height(Height(6), WAIT)
            .await
            .expect("the honest validators keep deciding");
    }
    let chain = assert_clean_chain(&nodes[1], 6);
    assert!(
        chain.iter().all(|c| c.3 != evil),
        "no block of the faulty proposer is decided"
    );
    assert!(
        chain.iter().any(|c| c.2.round > 0),
        "the faulty proposer's rounds were voted down and a later round decided"
    );
    for node in nodes {
        node.handle.shutdown().await;
    }
}

/// Whether `node` is connected to the peer `peer_id`, and its misbehaviour score.
async fn peer_score(node: &TestNode, peer_id: &str) -> Option<i64> {
    let summary = node.handle.network_summary().await.expect("summary");
    summary
        .peers
        .iter()
        .find(|p| p.peer_id == peer_id)
        .map(|p| p.misbehaviour_score)
}

async fn wait_for<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_proposer_is_banned_for_a_while_and_then_readmitted() {
    init_logs();
    let keys: Vec<PrivateKey> = (51..=54).map(key).collect();
    let ban = Duration::from_secs(3);
    // Node 0 proposes invalid blocks.
    let (nodes, addrs) = start_mesh("b", &keys, |_| NodeRole::Validator, |i| i == 0, ban).await;
    let evil_id = nodes[0].handle.peer_id().to_string();

    // Its first invalid proposal gets it disconnected by every honest validator.
    for node in &nodes[1..] {
        wait_for("the invalid proposer to be banned", || async {
            node.handle.misbehaviour_counts().bans >= 1
                && peer_score(node, &evil_id).await.is_none()
        })
        .await;
        let counts = node.handle.misbehaviour_counts();
        assert!(counts.offences[&settle_consensus::Offence::InvalidBlock] >= 1);
    }
    nodes[0].evil.store(false, Ordering::Relaxed);

    // An operator of node 1 removes it during the ban: that outlasts the ban. The
    // address is still listed as a persistent peer of node 2, held by the ban.
    let listed = nodes[2]
        .handle
        .network_summary()
        .await
        .expect("summary")
        .persistent_peers;
    assert!(
        listed.contains(&addrs[0].to_string()),
        "a banned peer stays a persistent peer: {listed:?}"
    );
    nodes[1]
        .handle
        .remove_peer(addrs[0].clone())
        .await
        .expect("removing a banned peer");

    // The ban ends: nodes 2 and 3 re-admit it and show its score; node 1 does not.
    for node in &nodes[2..] {
        wait_for("the banned peer to be re-admitted", || async {
            peer_score(node, &evil_id)
                .await
                .is_some_and(|s| s <= -1_000)
        })
        .await;
    }
    let summary = nodes[1].handle.network_summary().await.expect("summary");
    assert!(summary.peers.iter().all(|p| p.peer_id != evil_id));
    assert!(!summary.persistent_peers.contains(&addrs[0].to_string()));

    // Now honest again, it follows the chain and the others keep deciding.
    let target = height_of(&nodes[1]) + 3;
    for node in &nodes {
        node.handle
            .wait_for_height(Height(target), WAIT)
            .await
            .expect("everyone reaches the target height");
    }
    for node in nodes {
        node.handle.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_holding_a_validator_key_follows_without_signing() {
    init_logs();
    let keys: Vec<PrivateKey> = (61..=64).map(key).collect();
    // The last validator runs with producing turned off.
    let role = |i: usize| {
        if i == 3 {
            NodeRole::Follower
        } else {
            NodeRole::Validator
        }
    };
    let (nodes, _) = start_mesh(
        "f",
        &keys,
        role,
        |_| false,
        Duration::from_millis(settle_consensus::BAN_DURATION_MS),
    )
    .await;
    for node in &nodes {
        node.handle
            .wait_for_height(Height(4), WAIT)
            .await
            .expect("three validators decide and the follower follows");
    }
    let chain = assert_clean_chain(&nodes[0], 4);
    let silent = xonly(&keys[3]);
    for (_, _, cert, proposer) in &chain {
        assert!(
            cert.signatures.iter().all(|s| s.validator != silent),
            "the follower never signs"
        );
        assert_ne!(*proposer, silent, "the follower never proposes");
    }
    assert_clean_chain(&nodes[3], 4);
    for node in nodes {
        node.handle.shutdown().await;
    }
}
