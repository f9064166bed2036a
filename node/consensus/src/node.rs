//! Starting a consensus node and driving Malachite from the application side.
//!
//! [`start_node`] spawns Malachite's actors (network, WAL, consensus, sync) through
//! `malachitebft-app-channel` and a driver task that answers the engine's
//! [`AppMsg`]s with the help of an [`Application`]. The driver is where Settle's
//! rules meet the engine: blocks travel as signed proposal-part streams, every
//! proposed or synced block is fully validated before this node votes for it or
//! connects it, and a decided block is connected together with its certificate.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use malachitebft_app_channel::app::config::NodeConfig;
use malachitebft_app_channel::app::consensus::{Role, VoteExtensionError};
use malachitebft_app_channel::app::engine::host::{HeightParams, Next, SyncedValueOutcome};
use malachitebft_app_channel::app::net::Multiaddr;
use malachitebft_app_channel::app::streaming::StreamContent;
use malachitebft_app_channel::app::types::PeerId;
use malachitebft_app_channel::app::types::core::{
    CommitCertificate, ExtendedCommitCertificate, Height as _, Round, Validity, VoteExtensions,
};
use malachitebft_app_channel::app::types::streaming::{StreamId, StreamMessage};
use malachitebft_app_channel::app::types::sync::RawDecidedValue;
use malachitebft_app_channel::app::types::{LocallyProposedValue, ProposedValue};
use malachitebft_app_channel::{
    AppMsg, Channels, ConsensusContext, EngineHandle, NetworkContext, NetworkIdentity, NetworkMsg,
    NetworkRequest, RequestContext, SyncContext, WalContext,
};
use multiaddr::Protocol;
use settle_assets::{BlockHash, ChainId};
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use crate::app::{
    AppError, Application, BlockVerdict, MAX_CANDIDATE_BLOCKS_PER_HEIGHT,
    MAX_CANDIDATE_BYTES_PER_HEIGHT,
};
use crate::certificate::CertificateError;
use crate::codec::SettleCodec;
use crate::config::{EngineConfig, Timing};
use crate::context::SettleContext;
use crate::identity::{IdentityError, libp2p_keypair, peer_id_of};
use crate::misbehaviour::{MisbehaviourCounts, Offence, PeerGuard, run_guard};
use crate::sign_guard::SignGuard;
use crate::signing::{
    FailureSlot, PrivateKey, ProposalSlot, SettleSigner, SettleVerifier, Signature,
    proposal_parts_digest, report_failure, verify_digest,
};
use crate::streams::{CompleteStream, StreamBuffer, split};
use crate::types::{
    Address, BlockId, Height, MAX_GOSSIP_BATCH_TXS, ProposalInit, ProposalPart, TxBatch,
    ValidatorSet,
};

/// Most decided blocks served in one sync response.
pub const MAX_SYNC_BLOCKS_PER_RESPONSE: usize = 32;
/// How far ahead of the current height a complete proposal is kept until its
/// height starts (a node finishing a height may receive the next proposal early).
pub const MAX_PARK_AHEAD_HEIGHTS: u64 = 2;
/// Most complete proposals kept for future heights.
pub const MAX_PARKED_PROPOSALS: usize = 16;
/// Capacity of the request channels to the engine.
const REQUEST_CHANNEL_CAPACITY: usize = 64;
/// Share of the engine's propose timeout a validator may spend waiting for something
/// to propose before it lets the round time out (per mille), so the reply is never
/// late.
const PROPOSE_WAIT_PER_MILLE: u32 = 900;
/// First byte of the stream id of a transaction batch (a block stream's id starts
/// with its height, little-endian, so it cannot be confused in practice; the content
/// decides anyway).
const TX_STREAM_PREFIX: &[u8] = b"settle/tx";
/// The address a follower gives the engine: never a validator's.
const FOLLOWER_ENGINE_ADDRESS: Address = Address([0; 32]);
/// While catching up, one progress line per this interval rather than one per block.
const SYNC_LOG_INTERVAL_MS: u64 = 2_000;

/// Transactions a peer gossiped, handed to the application's mempool.
#[derive(Clone, Debug)]
pub struct GossipedTxs {
    /// The neighbour that delivered them.
    pub from: PeerId,
    /// The node that published them, when the transport says.
    pub origin: Option<PeerId>,
    /// Canonical transaction encodings, not yet decoded.
    pub txs: Vec<Vec<u8>>,
}

/// What consensus is doing, for status reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsensusStatus {
    /// The height being decided (tip + 1 once started).
    pub height: Height,
    /// Its round (`None` before the first round starts).
    pub round: Option<u32>,
    /// The proposer of that round.
    pub proposer: Option<Address>,
    /// The validator set of that height, with voting powers.
    pub validators: Vec<(Address, u64)>,
    /// Whether this validator is waiting for something to propose before it starts
    /// the height.
    pub waiting_for_transactions: bool,
}

/// A connected peer, from the network's state.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerSummary {
    pub peer_id: String,
    pub moniker: String,
    pub address: String,
    /// The validator key the peer proved, if any (hex).
    pub validator_key: Option<String>,
    /// `inbound` or `outbound` (`None`: not known).
    pub direction: Option<String>,
    pub persistent: bool,
    /// Malachite's gossipsub score (by peer type).
    pub score: f64,
    /// This node's misbehaviour score for the peer: 0, or lower after offences
    /// ([`crate::misbehaviour`]).
    pub misbehaviour_score: i64,
    /// Offences charged to the peer since this node started.
    pub offences: u64,
}

/// This node's network state.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkSummary {
    pub peer_id: String,
    pub moniker: String,
    pub listen_addr: String,
    pub is_validator: bool,
    pub permissioned: bool,
    pub peers: Vec<PeerSummary>,
    /// The persistent peers, including those a ban keeps out for now.
    pub persistent_peers: Vec<String>,
}

/// Whether this node votes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum NodeRole {
    /// Signs proposals and votes whenever its key is in the validator set.
    Validator,
    /// Follows the chain (consensus messages and sync) without ever signing.
    Follower,
}

/// Everything needed to start a node.
#[derive(Debug)]
pub struct NodeParams {
    pub chain_id: ChainId,
    /// Name in logs and metrics.
    pub moniker: String,
    /// The node key: its libp2p identity, and for a validator its validator key.
    pub key: PrivateKey,
    pub role: NodeRole,
    /// Where to listen, e.g. `/ip4/127.0.0.1/tcp/26656`.
    pub listen_addr: Multiaddr,
    /// Peers to dial and keep dialling (with backoff), each with its `/p2p/<peer id>`.
    pub bootstrap_peers: Vec<Multiaddr>,
    /// The node keys allowed to connect. `None` accepts any peer (development only).
    pub permitted: Option<Vec<[u8; 32]>>,
    /// Directory of Malachite's write-ahead log (votes and proposals in flight).
    pub wal_dir: PathBuf,
    pub timing: Timing,
    /// Wakes a validator waiting for something to propose
    /// ([`Application::propose_delay`]); notify it when a transaction arrives.
    pub wake: Option<Arc<Notify>>,
    /// Where gossiped transactions go (best effort: a full channel drops a batch).
    pub tx_sink: Option<mpsc::Sender<GossipedTxs>>,
    /// How long a first offence keeps a misbehaving peer out (normally
    /// [`crate::BAN_DURATION_MS`]; repeated bans double it).
    pub ban_duration: Duration,
}

/// Why a node could not start, or stopped with a failure.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("node identity: {0}")]
    Identity(#[from] IdentityError),
    #[error("could not encode the validator proof: {0}")]
    ValidatorProof(String),
    #[error("the consensus engine failed to start: {0}")]
    Engine(String),
    #[error("the network request failed: {0}")]
    Network(String),
    #[error("timed out after {waited_ms} ms waiting for height {height} (reached {reached})")]
    Timeout {
        height: Height,
        reached: Height,
        waited_ms: u128,
    },
    #[error("the consensus driver stopped: {0}")]
    DriverStopped(String),
    #[error("the double-sign guard: {0}")]
    SignGuard(#[from] crate::sign_guard::GuardError),
}

/// Why the driver stopped: a local failure it cannot continue after.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    #[error(transparent)]
    App(#[from] AppError),
    #[error("the engine closed the {0} channel")]
    ChannelClosed(&'static str),
    /// A decided block could not be connected (not a missing block: that one is
    /// held until it arrives). The height is never restarted, since a restart
    /// would reset the WAL that holds this validator's votes.
    #[error("could not connect the decided block at height {height}: {reason}")]
    Commit { height: Height, reason: String },
    #[error("a signature was refused: {0}")]
    Refused(String),
}

/// A running node.
pub struct NodeHandle {
    address: Address,
    peer_id: libp2p_identity::PeerId,
    committed: watch::Receiver<Height>,
    status: watch::Receiver<ConsensusStatus>,
    net_requests: mpsc::Sender<NetworkRequest>,
    network: mpsc::Sender<NetworkMsg<SettleContext>>,
    gossip_nonce: AtomicU64,
    guard: Arc<PeerGuard>,
    engine: Option<EngineHandle>,
    driver: JoinHandle<Result<(), DriverError>>,
    failure: watch::Receiver<Option<String>>,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("address", &self.address)
            .field("peer_id", &self.peer_id)
            .field("committed", &*self.committed.borrow())
            .finish_non_exhaustive()
    }
}

impl NodeHandle {
    /// This node's validator address (its x-only node key).
    pub fn address(&self) -> Address {
        self.address
    }

    /// This node's libp2p peer id.
    pub fn peer_id(&self) -> libp2p_identity::PeerId {
        self.peer_id
    }

    /// The height of the last block this node connected, as it changes.
    pub fn committed(&self) -> watch::Receiver<Height> {
        self.committed.clone()
    }

    /// Waits until this node has connected `height`.
    pub async fn wait_for_height(
        &self,
        height: Height,
        timeout: Duration,
    ) -> Result<(), NodeError> {
        let mut rx = self.committed.clone();
        let waited = tokio::time::timeout(timeout, rx.wait_for(|h| *h >= height)).await;
        match waited {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(NodeError::DriverStopped(
                "committed height channel closed".into(),
            )),
            Err(_) => Err(NodeError::Timeout {
                height,
                reached: *self.committed.borrow(),
                waited_ms: timeout.as_millis(),
            }),
        }
    }

    /// Resolves with the reason once this node hits a failure it must stop for (a
    /// storage failure while deciding, a signature the double-sign guard refused);
    /// never resolves while the node is healthy.
    pub async fn failed(&self) -> String {
        let mut rx = self.failure.clone();
        // The guard is dropped at once: the future stays `Send`.
        let reason = match rx.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            Err(_) => None,
        };
        match reason {
            Some(reason) => reason,
            // The driver and signer are gone without a failure: the node is
            // stopping; stay pending like a healthy node.
            None => std::future::pending().await,
        }
    }

    /// What consensus is doing now.
    pub fn status(&self) -> ConsensusStatus {
        self.status.borrow().clone()
    }

    /// Gossips transactions (canonical encodings) to every connected peer; gossip
    /// relays them further. At most [`MAX_GOSSIP_BATCH_TXS`] per message: larger lists
    /// are split.
    pub async fn publish_transactions(&self, txs: Vec<Vec<u8>>) -> Result<(), NodeError> {
        for chunk in txs.chunks(MAX_GOSSIP_BATCH_TXS) {
            let nonce = self.gossip_nonce.fetch_add(1, Ordering::Relaxed);
            let mut id = TX_STREAM_PREFIX.to_vec();
            id.extend_from_slice(&self.address.to_byte_array()[..8]);
            id.extend_from_slice(&nonce.to_le_bytes());
            let msg = StreamMessage::new(
                StreamId::new(Bytes::from(id)),
                0,
                StreamContent::Data(ProposalPart::Transactions(TxBatch {
                    txs: chunk.to_vec(),
                })),
            );
            self.network
                .send(NetworkMsg::PublishProposalPart(msg))
                .await
                .map_err(|_| NodeError::Network("the network actor is gone".into()))?;
        }
        Ok(())
    }

    /// This node's view of the network: itself, its connected peers and its
    /// persistent peers.
    pub async fn network_summary(&self) -> Result<NetworkSummary, NodeError> {
        let dump = NetworkRequest::dump_state(&self.net_requests)
            .await
            .map_err(|e| NodeError::Network(e.to_string()))?
            .ok_or_else(|| NodeError::Network("the network is not running".into()))?;
        let persistent: HashSet<_> = dump.persistent_peer_ids.iter().copied().collect();
        let mut peers: Vec<PeerSummary> = dump
            .peers
            .iter()
            .map(|(id, info)| PeerSummary {
                misbehaviour_score: self.guard.score(id),
                offences: self.guard.record(id).map_or(0, |r| r.offences),
                peer_id: id.to_string(),
                moniker: info.moniker.clone(),
                address: info.address.to_string(),
                validator_key: info.consensus_public_key.as_ref().map(hex::encode),
                direction: info.connection_direction.map(|d| d.as_str().to_string()),
                persistent: persistent.contains(id),
                score: info.score,
            })
            .collect();
        peers.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        Ok(NetworkSummary {
            peer_id: dump.local_node.peer_id.to_string(),
            moniker: dump.local_node.moniker.clone(),
            listen_addr: dump.local_node.listen_addr.to_string(),
            is_validator: dump.local_node.is_validator,
            permissioned: dump.local_node.persistent_peers_only,
            peers,
            // Addresses a ban holds out are still persistent peers: membership
            // reconciliation must neither re-add them (which would lift the ban) nor
            // miss them when a permission is withdrawn.
            persistent_peers: dump
                .persistent_peer_addrs
                .iter()
                .cloned()
                .chain(self.guard.held_addresses())
                .map(|a| a.to_string())
                .collect(),
        })
    }

    /// Adds a peer to the persistent (and, when permissioned, permitted) peers at
    /// runtime. The address must end in `/p2p/<peer id>`.
    /// An operator's addition wins over a ban: a banned peer is pardoned.
    pub async fn add_peer(&self, addr: Multiaddr) -> Result<(), NodeError> {
        self.guard.operator_added(&addr);
        NetworkRequest::add_persistent_peer(&self.net_requests, addr)
            .await
            .map_err(|e| NodeError::Network(e.to_string()))?
            .map_err(|e| NodeError::Network(e.to_string()))
    }

    /// Removes a persistent peer at runtime; when permissioned, the peer is
    /// disconnected and refused from then on.
    /// Removing a peer that a ban holds out already makes the removal outlast the
    /// ban.
    pub async fn remove_peer(&self, addr: Multiaddr) -> Result<(), NodeError> {
        if self.guard.operator_removed(&addr) {
            return Ok(());
        }
        NetworkRequest::remove_persistent_peer(&self.net_requests, addr)
            .await
            .map_err(|e| NodeError::Network(e.to_string()))?
            .map_err(|e| NodeError::Network(e.to_string()))
    }

    /// Charges the peer that authored some data with `offence`: it is disconnected
    /// and refused for a while (`spec/consensus.md`, "Misbehaving peers"). Never
    /// blocks.
    pub fn report_misbehaviour(&self, author: PeerId, offence: Offence) {
        match to_libp2p(&author) {
            Some(peer) => self.guard.report(peer, offence),
            None => self.guard.count_unattributed(offence),
        }
    }

    /// Offences and bans since this node started.
    pub fn misbehaviour_counts(&self) -> MisbehaviourCounts {
        self.guard.counts()
    }

    /// The guard that keeps the misbehaviour records (shared with the metrics).
    pub fn peer_guard(&self) -> Arc<PeerGuard> {
        Arc::clone(&self.guard)
    }

    /// Stops the engine's actors (closing the network) and the driver, through a
    /// shared handle; waits up to 5 s for the engine to stop.
    pub async fn stop(&self) {
        if let Some(engine) = &self.engine {
            engine.actor.stop(Some("shutdown".to_string()));
            let deadline = Instant::now() + Duration::from_secs(5);
            while !engine.handle.is_finished() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if !engine.handle.is_finished() {
                warn!("engine did not stop within 5 s");
            }
        }
        self.driver.abort();
    }

    /// Stops the engine's actors (closing the network) and the driver.
    pub async fn shutdown(mut self) {
        if let Some(engine) = self.engine.take() {
            engine.actor.stop(Some("shutdown".to_string()));
            if tokio::time::timeout(Duration::from_secs(5), engine.handle)
                .await
                .is_err()
            {
                warn!("engine did not stop within 5 s");
            }
        }
        self.driver.abort();
    }
}

/// The libp2p form of the engine's peer id (the same multihash).
fn to_libp2p(peer: &PeerId) -> Option<libp2p_identity::PeerId> {
    libp2p_identity::PeerId::from_bytes(&peer.to_bytes()).ok()
}

/// The author of gossip: the publisher gossipsub authenticated, or the neighbour
/// that delivered it when the transport names no publisher.
pub fn gossip_author(from: PeerId, published_by: Option<PeerId>) -> PeerId {
    published_by.unwrap_or(from)
}

/// The multiaddr of a peer: `listen_addr/p2p/<peer id of key>`.
pub fn peer_multiaddr(listen_addr: &Multiaddr, key: &[u8; 32]) -> Result<Multiaddr, IdentityError> {
    let peer_id = peer_id_of(key)?;
    Ok(listen_addr.clone().with(Protocol::P2p(peer_id)))
}

/// Starts a node: Malachite's actors and the driver that connects them to `app`.
pub async fn start_node<A: Application>(
    params: NodeParams,
    app: A,
) -> Result<NodeHandle, NodeError> {
    let ctx = SettleContext::new(params.chain_id);
    let keypair = libp2p_keypair(&params.key)?;
    let peer_id = keypair.public().to_peer_id();
    let address = params.key.address();

    // Permissioning maps onto Malachite's persistent peers: with
    // `persistent_peers_only`, a peer whose id is not on the list is refused once
    // it identifies itself. Permitted keys without a known address are listed as a
    // bare `/p2p/<peer id>` so that they may dial in.
    let mut persistent = params.bootstrap_peers.clone();
    if let Some(permitted) = &params.permitted {
        for key in permitted {
            let id = peer_id_of(key)?;
            let listed = persistent
                .iter()
                .any(|addr| addr.iter().any(|p| p == Protocol::P2p(id)));
            if !listed && id != peer_id {
                persistent.push(Multiaddr::empty().with(Protocol::P2p(id)));
            }
        }
    }
    let config = EngineConfig::new(
        params.moniker.clone(),
        params.listen_addr.clone(),
        persistent,
        params.permitted.is_some(),
        &params.timing,
    );

    let verifier = SettleVerifier::new(params.chain_id);
    let (failure_tx, failure_rx) = watch::channel(None);
    let failure: FailureSlot = Arc::new(failure_tx);
    let signer = match params.role {
        NodeRole::Validator => Some(SettleSigner::guarded(
            params.key.clone(),
            params.chain_id,
            Arc::new(SignGuard::open(&params.wal_dir)?),
            Arc::clone(&failure),
        )),
        NodeRole::Follower => None,
    };
    let identity = match &signer {
        Some(signer) => {
            let proof = signer.validator_proof(peer_id.to_bytes());
            let proof_bytes =
                malachitebft_app_channel::app::types::codec::Codec::encode(&SettleCodec, &proof)
                    .map_err(|e| NodeError::ValidatorProof(e.to_string()))?;
            NetworkIdentity::new_validator(
                params.moniker.clone(),
                keypair,
                address.to_string(),
                proof_bytes,
            )
        }
        None => NetworkIdentity::new(params.moniker.clone(), keypair, None),
    };
    let consensus_ctx = match &signer {
        Some(signer) => ConsensusContext::new_validator(
            address,
            Box::new(verifier.clone()),
            Box::new(signer.clone()),
        ),
        // A follower may hold a key of the validator set (a validator with producing
        // turned off). Malachite decides whether to sign by the address it is given,
        // and panics without a signer, so a follower gives it an address that no
        // validator set holds (zero is not a valid x-only key).
        None => {
            ConsensusContext::new_full_node(FOLLOWER_ENGINE_ADDRESS, Box::new(verifier.clone()))
        }
    };

    let (channels, engine) = malachitebft_app_channel::start_engine(
        ctx,
        config.clone(),
        WalContext::new(params.wal_dir.join("consensus.wal"), SettleCodec),
        NetworkContext::new(identity, SettleCodec),
        consensus_ctx,
        SyncContext::new(SettleCodec),
        RequestContext::new(REQUEST_CHANNEL_CAPACITY),
    )
    .await
    .map_err(|e| NodeError::Engine(format!("{e:#}")))?;

    let tip = app
        .tip_height()
        .map_err(|e| NodeError::Engine(e.to_string()))?;
    let (committed_tx, committed) = watch::channel(tip);
    let (status_tx, status) = watch::channel(ConsensusStatus {
        height: tip.increment(),
        round: None,
        proposer: None,
        validators: Vec::new(),
        waiting_for_transactions: false,
    });
    let net_requests = channels.net_requests.clone();
    let network = channels.network.clone();
    let (guard, reports) = PeerGuard::new(peer_id, params.ban_duration);
    tokio::spawn(run_guard(
        Arc::clone(&guard),
        reports,
        channels.net_requests.clone(),
    ));
    if crate::crash::vote_log_enabled() || crate::crash::armed_at("precommit-published") {
        tokio::spawn(watch_messages(
            channels.events.subscribe(),
            address,
            params.chain_id,
        ));
    }
    let driver = Driver {
        app,
        chain_id: params.chain_id,
        address,
        signer,
        timing: params.timing,
        height: Height(0),
        round: Round::Nil,
        validator_set: None,
        streams: StreamBuffer::new(),
        parked: Vec::new(),
        proposals: HashMap::new(),
        blocks: HashMap::new(),
        candidates: CandidateBudget::default(),
        held: None,
        failure: Arc::clone(&failure),
        built: HashMap::new(),
        committed_height: None,
        committed_tx,
        status_tx,
        stream_nonce: initial_stream_nonce(),
        guard: Arc::clone(&guard),
        wake: params.wake.clone(),
        tx_sink: params.tx_sink.clone(),
        pending_start: None,
        pending_value: None,
        synced: HashSet::new(),
        last_finalized_at: Instant::now(),
        sync_progress: SyncProgress::new(&channels.events),
    };
    info!(moniker = %config.moniker(), %address, %peer_id, "consensus node started");
    let driver = tokio::spawn(driver.run(channels));
    Ok(NodeHandle {
        address,
        peer_id,
        committed,
        status,
        net_requests,
        network,
        gossip_nonce: AtomicU64::new(0),
        guard,
        engine: Some(engine),
        driver,
        failure: failure_rx,
    })
}

/// Test hooks over the engine's events: the vote log (every vote received from a
/// peer, [`crate::crash::VOTE_LOG_ENV`]) and the `precommit-published` crash point.
async fn watch_messages(
    mut events: malachitebft_app_channel::app::events::RxEvent<SettleContext>,
    own: Address,
    chain_id: ChainId,
) {
    use malachitebft_app_channel::app::engine::util::events::Event;
    use malachitebft_app_channel::app::types::SignedConsensusMsg;
    use malachitebft_core_types::{NilOrVal, VoteType};
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(Event::Received(SignedConsensusMsg::Vote(vote))) => {
                let v = &vote.message;
                // Only what the voter really signed counts as its vote.
                let signed =
                    secp256k1::XOnlyPublicKey::from_byte_array(v.validator.to_byte_array())
                        .is_ok_and(|key| {
                            verify_digest(
                                &key,
                                &crate::signing::vote_digest(&chain_id, v),
                                &vote.signature,
                            )
                        });
                if !signed {
                    continue;
                }
                let kind = match v.vote_type {
                    VoteType::Prevote => "prevote",
                    VoteType::Precommit => "precommit",
                };
                let value = match &v.value {
                    NilOrVal::Nil => "nil".to_string(),
                    NilOrVal::Val(id) => hex::encode(id.0),
                };
                crate::crash::record_seen(&format!(
                    "vote {} {} {} {kind} {value}",
                    v.validator,
                    v.height.as_u64(),
                    v.round.as_i64()
                ));
            }
            Ok(Event::Published(SignedConsensusMsg::Vote(vote)))
                if vote.message.validator == own
                    && vote.message.vote_type == VoteType::Precommit =>
            {
                crate::crash::point("precommit-published");
            }
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}

/// The candidate blocks stored for the height being decided, against the caps.
#[derive(Debug, Default)]
struct CandidateBudget {
    height: Height,
    ids: HashSet<BlockId>,
    bytes: u64,
}

impl CandidateBudget {
    /// Whether one more block of `len` bytes stays within both per-height caps (a
    /// proposer that equivocates with many valid blocks, round after round, cannot
    /// fill this node's disk).
    fn has_room_for(&self, len: u64) -> bool {
        self.ids.len() < MAX_CANDIDATE_BLOCKS_PER_HEIGHT
            && self.bytes.saturating_add(len) <= MAX_CANDIDATE_BYTES_PER_HEIGHT
    }
}

#[cfg(test)]
mod candidate_tests {
    use super::*;

    #[test]
    fn an_equivocating_proposer_fills_at_most_the_per_height_caps() {
        let mut budget = CandidateBudget::default();
        let mut stored = 0;
        // A hostile proposer sends a new valid 1 KiB block for every round.
        for i in 0..MAX_CANDIDATE_BLOCKS_PER_HEIGHT + 10 {
            if budget.has_room_for(1_024) {
                let mut id = [0u8; 32];
                id[..8].copy_from_slice(&(i as u64).to_le_bytes());
                budget.ids.insert(BlockId(id));
                budget.bytes += 1_024;
                stored += 1;
            }
        }
        assert_eq!(stored, MAX_CANDIDATE_BLOCKS_PER_HEIGHT);
        // Large blocks meet the byte cap first.
        let budget = CandidateBudget {
            bytes: MAX_CANDIDATE_BYTES_PER_HEIGHT - 10,
            ..CandidateBudget::default()
        };
        assert!(budget.has_room_for(10));
        assert!(!budget.has_room_for(11));
        assert!(!budget.has_room_for(u64::MAX), "no overflow");
    }
}

/// Where this run's proposal-stream ids start: a proposer restarted in the middle
/// of a stream must not reuse the id of one its peers still hold (they would see two
/// versions of one message).
fn initial_stream_nonce() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| {
            d.subsec_nanos() ^ u32::try_from(d.as_secs() % (1 << 32)).unwrap_or(0)
        });
    nanos.wrapping_mul(2_654_435_761)
}

/// Where the sync progress bar draws, once the daemon enabled it
/// ([`enable_sync_progress_bar`]); `None` keeps the plain log lines.
static SYNC_BARS: std::sync::OnceLock<indicatif::MultiProgress> = std::sync::OnceLock::new();

/// Shows catching up as a progress bar (height reached / the network's height,
/// blocks per second, time left) drawn through `bars`, in place of the periodic
/// `sync: progress` lines; the first and the last sync lines are still logged. Call
/// it once, before [`start_node`], and only when stderr is a terminal; logs should
/// then be written through [`indicatif::MultiProgress::suspend`] so that log lines and
/// the bar do not tear each other. Returns `false` if a bar was already enabled.
pub fn enable_sync_progress_bar(bars: indicatif::MultiProgress) -> bool {
    SYNC_BARS.set(bars).is_ok()
}

/// Redraws of the sync bar per second (its spinner and rate keep moving between
/// blocks).
const SYNC_BAR_TICK_MS: u64 = 200;

/// The sync progress log: how far catching up has come, at most one line per
/// [`SYNC_LOG_INTERVAL_MS`], and one line when the node is caught up. With a progress
/// bar enabled, the bar replaces the periodic lines.
#[derive(Debug)]
struct SyncProgress {
    since: Instant,
    blocks: u64,
    syncing: bool,
    /// The highest height peers were seen voting or proposing at, minus one: what the
    /// network has decided, as far as this node knows (0: not known yet). Only kept
    /// when a bar is shown. The votes are counted before consensus checks their
    /// signatures, so a lying peer can only make the bar's target wrong.
    network_height: Option<Arc<AtomicU64>>,
    /// The bar while catching up, and whether its style shows a target.
    bar: Option<(indicatif::ProgressBar, Option<bool>)>,
}

impl SyncProgress {
    /// With a bar enabled, follows the heights of the consensus messages `events`
    /// reports, for the bar's target.
    fn new(events: &malachitebft_app_channel::app::events::TxEvent<SettleContext>) -> Self {
        let network_height = SYNC_BARS.get().map(|_| {
            let best = Arc::new(AtomicU64::new(0));
            tokio::spawn(follow_network_height(events.subscribe(), Arc::clone(&best)));
            best
        });
        SyncProgress {
            since: Instant::now(),
            blocks: 0,
            syncing: false,
            network_height,
            bar: None,
        }
    }

    /// A block decided elsewhere and fetched through sync was connected.
    fn connected(&mut self, height: Height, now: Instant) {
        if !self.syncing {
            self.syncing = true;
            self.since = now;
            self.blocks = 0;
            info!(%height, "sync: catching up with the network");
            self.bar = SYNC_BARS.get().map(|bars| {
                // Styled before it is first drawn.
                let bar = indicatif::ProgressBar::hidden();
                let mut styled_with_target = None;
                update_sync_bar(
                    &bar,
                    &mut styled_with_target,
                    height.0,
                    self.network_target(),
                );
                bar.reset_eta();
                let bar = bars.add(bar);
                bar.enable_steady_tick(Duration::from_millis(SYNC_BAR_TICK_MS));
                (bar, styled_with_target)
            });
        }
        self.blocks += 1;
        let target = self.network_target();
        if let Some((bar, styled_with_target)) = &mut self.bar {
            update_sync_bar(bar, styled_with_target, height.0, target);
            return;
        }
        let elapsed = now.duration_since(self.since);
        if elapsed >= Duration::from_millis(SYNC_LOG_INTERVAL_MS) {
            let per_s = self.blocks as f64 / elapsed.as_secs_f64();
            info!(%height, blocks = self.blocks, blocks_per_s = format!("{per_s:.0}"), "sync: progress");
            self.since = now;
            self.blocks = 0;
        }
    }

    /// What the network has decided as far as this node knows (0: not known).
    fn network_target(&self) -> u64 {
        self.network_height
            .as_ref()
            .map_or(0, |h| h.load(Ordering::Relaxed))
    }

    /// A block was decided live (this node took part in consensus or saw it decided).
    fn caught_up(&mut self, height: Height, _now: Instant) {
        if self.syncing {
            self.syncing = false;
            if let Some((bar, _)) = self.bar.take() {
                bar.finish_and_clear();
            }
            info!(%height, "sync: caught up, following consensus");
        }
    }
}

impl Drop for SyncProgress {
    fn drop(&mut self) {
        if let Some((bar, _)) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// Moves `bar` to `height`; with a known `target` above it, a bar towards the target,
/// otherwise a counter (a bar needs a target). `styled_with_target` remembers which
/// style the bar has, so that it changes only when the target appears or is reached.
fn update_sync_bar(
    bar: &indicatif::ProgressBar,
    styled_with_target: &mut Option<bool>,
    height: u64,
    target: u64,
) {
    const WITH_TARGET: &str = "{spinner} sync {pos}/{len} [{wide_bar}] {rate} ETA {eta}";
    const WITHOUT_TARGET: &str =
        "{spinner} sync height {pos} {rate} (waiting to hear the network's height)";
    let known = target > height;
    if *styled_with_target != Some(known) {
        let template = if known { WITH_TARGET } else { WITHOUT_TARGET };
        // Both templates are constants that parse; the fallback is only a guard.
        let style = indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0} blocks/s", state.per_sec());
                },
            )
            .progress_chars("=> ");
        bar.set_style(style);
        *styled_with_target = Some(known);
    }
    bar.set_length(target.max(height));
    bar.set_position(height);
}

#[cfg(test)]
mod sync_bar_tests {
    use super::update_sync_bar;

    #[test]
    fn the_bar_aims_at_the_network_height_once_it_is_known() {
        let bar = indicatif::ProgressBar::hidden();
        let mut styled_with_target = None;
        update_sync_bar(&bar, &mut styled_with_target, 10, 0);
        assert_eq!((bar.position(), bar.length()), (10, Some(10)));
        assert_eq!(styled_with_target, Some(false), "no target yet: a counter");
        update_sync_bar(&bar, &mut styled_with_target, 11, 500);
        assert_eq!((bar.position(), bar.length()), (11, Some(500)));
        assert_eq!(styled_with_target, Some(true));
        // A target at or below the height reached (stale, or caught up) is no target.
        update_sync_bar(&bar, &mut styled_with_target, 600, 500);
        assert_eq!((bar.position(), bar.length()), (600, Some(600)));
        assert_eq!(styled_with_target, Some(false));
    }
}

/// Keeps `best` at the height below the highest one that peers' votes and proposals
/// name, until the engine's event channel closes.
async fn follow_network_height(
    mut events: malachitebft_app_channel::app::events::RxEvent<SettleContext>,
    best: Arc<AtomicU64>,
) {
    use malachitebft_app_channel::app::engine::util::events::Event;
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match events.recv().await {
            Ok(Event::Received(msg)) => {
                let decided = msg.height().0.saturating_sub(1);
                best.fetch_max(decided, Ordering::Relaxed);
            }
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => return,
        }
    }
}

/// A proposal this node has seen or made, kept until its height is decided.
#[derive(Clone, Debug)]
struct StoredProposal {
    init: ProposalInit,
    fin: Signature,
    value: ProposedValue<SettleContext>,
}

struct Driver<A> {
    app: A,
    chain_id: ChainId,
    address: Address,
    signer: Option<SettleSigner>,
    timing: Timing,
    /// The height consensus is deciding, and its round.
    height: Height,
    round: Round,
    /// The validator set of `height`.
    validator_set: Option<ValidatorSet>,
    streams: StreamBuffer,
    /// Complete streams for heights that have not started yet.
    parked: Vec<CompleteStream>,
    /// Proposals seen or made, by (height, round, block).
    proposals: HashMap<(Height, Round, BlockId), StoredProposal>,
    /// Bytes of every block proposed or synced at a height not yet decided.
    blocks: HashMap<BlockId, (Height, Bytes)>,
    /// The blocks of the current height stored durably (this node votes only for
    /// those).
    candidates: CandidateBudget,
    /// A decision whose block this node does not have: its certificate and, once
    /// the engine asks, the held `Finalized` reply. Answered when the block arrives
    /// through sync; the height is never restarted.
    held: Option<HeldDecision>,
    /// Where a failure that stops the node is reported.
    failure: FailureSlot,
    /// The block this node built for (height, round), so a repeated request gets
    /// the same answer.
    built: HashMap<(Height, Round), BlockId>,
    /// The last height connected through this driver.
    committed_height: Option<Height>,
    committed_tx: watch::Sender<Height>,
    status_tx: watch::Sender<ConsensusStatus>,
    stream_nonce: u32,
    /// Where evidence of misbehaviour goes.
    guard: Arc<PeerGuard>,
    wake: Option<Arc<Notify>>,
    tx_sink: Option<mpsc::Sender<GossipedTxs>>,
    /// The next height, held back until this validator has something to propose.
    pending_start: Option<PendingStart>,
    /// A request for a value, held until there is something to propose.
    pending_value: Option<PendingValue>,
    /// Blocks that reached this node through sync (it is behind: no waiting).
    synced: HashSet<BlockId>,
    /// When the last height was finalized (or the node started): the application's
    /// idle time is measured from here.
    last_finalized_at: Instant,
    /// Blocks connected through sync since the last progress line.
    sync_progress: SyncProgress,
}

/// A decided height whose block is not here yet.
struct HeldDecision {
    certificate: CommitCertificate<SettleContext>,
    reply: Option<oneshot::Sender<Next<SettleContext>>>,
}

/// A `Finalized` answer held back (section 5 of the spec: a validator starts the
/// next height when it has transactions, when a proposal for it arrives, or when
/// the application's idle interval has passed).
struct PendingStart {
    reply: StartReply,
    finalized_at: Instant,
    wake_at: Option<Instant>,
}

/// The held answer that starts a height.
enum StartReply {
    /// To `ConsensusReady`: only held on a one-validator network, where no peer needs
    /// this node's engine meanwhile.
    Ready(
        oneshot::Sender<(Height, HeightParams<SettleContext>)>,
        Height,
        HeightParams<SettleContext>,
    ),
    /// To `Finalized`.
    Next(oneshot::Sender<Next<SettleContext>>, Next<SettleContext>),
}

/// A `GetValue` held until there is something to propose (only at the first height
/// after start-up; later heights wait in [`PendingStart`] instead).
struct PendingValue {
    height: Height,
    round: Round,
    reply: oneshot::Sender<LocallyProposedValue<SettleContext>>,
    idle_since: Instant,
    give_up_at: Instant,
    wake_at: Option<Instant>,
}

impl<A: Application> Driver<A> {
    async fn run(mut self, mut channels: Channels<SettleContext>) -> Result<(), DriverError> {
        let wake = self.wake.clone().unwrap_or_default();
        loop {
            let waiting = self.pending_start.is_some() || self.pending_value.is_some();
            let wake_at = self.next_wake_at();
            let result = tokio::select! {
                msg = channels.consensus.recv() => match msg {
                    Some(msg) => self.handle(msg, &channels.network).await,
                    None => Err(DriverError::ChannelClosed("consensus")),
                },
                () = wake.notified(), if waiting => self.poll_pending(&channels.network).await,
                () = tokio::time::sleep_until(wake_at.unwrap_or_else(Instant::now)), if wake_at.is_some() => {
                    self.poll_pending(&channels.network).await
                }
            };
            if let Err(e) = result {
                match &e {
                    // The engine closes its channels when the node shuts down: the
                    // normal end, not a failure.
                    DriverError::ChannelClosed(_) => {
                        info!(reason = %e, "consensus driver stopped");
                    }
                    _ => {
                        error!(error = %e, "consensus driver stopping; the node stops");
                        report_failure(&self.failure, e.to_string());
                    }
                }
                return Err(e);
            }
        }
    }

    fn next_wake_at(&self) -> Option<Instant> {
        let start = self.pending_start.as_ref().and_then(|p| p.wake_at);
        let value = self.pending_value.as_ref().map(|p| match p.wake_at {
            Some(at) => at.min(p.give_up_at),
            None => p.give_up_at,
        });
        match (start, value) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether this node may propose at `height` under `set`, so that it should wait
    /// for something to propose.
    fn proposes_at(&self, set: &ValidatorSet) -> bool {
        self.signer.is_some() && set.get(&self.address).is_some()
    }

    /// Re-asks the application whether there is something to propose now, and
    /// releases what was held back if so.
    async fn poll_pending(
        &mut self,
        network: &mpsc::Sender<NetworkMsg<SettleContext>>,
    ) -> Result<(), DriverError> {
        let now = Instant::now();
        if let Some(finalized_at) = self.pending_start.as_ref().map(|p| p.finalized_at) {
            match self.app.propose_delay(now - finalized_at) {
                Some(d) if d.is_zero() => self.release_start(),
                delay => {
                    if let Some(pending) = &mut self.pending_start {
                        pending.wake_at = delay.map(|d| now + d);
                    }
                }
            }
        }
        let Some((idle_since, give_up_at)) = self
            .pending_value
            .as_ref()
            .map(|p| (p.idle_since, p.give_up_at))
        else {
            return Ok(());
        };
        if now >= give_up_at {
            // Dropping the reply lets the round time out; the next round asks again.
            if let Some(pending) = self.pending_value.take() {
                debug!(height = %pending.height, round = %pending.round,
                       "nothing to propose before the propose timeout");
            }
            self.publish_status();
            return Ok(());
        }
        match self.app.propose_delay(now - idle_since) {
            Some(d) if d.is_zero() => {
                if let Some(pending) = self.pending_value.take() {
                    self.publish_status();
                    self.answer_get_value(pending.height, pending.round, pending.reply, network)
                        .await?;
                }
            }
            delay => {
                if let Some(pending) = &mut self.pending_value {
                    pending.wake_at = delay.map(|d| now + d);
                }
            }
        }
        Ok(())
    }

    fn release_start(&mut self) {
        if let Some(pending) = self.pending_start.take() {
            // A closed channel means the engine is stopping; the driver notices on
            // its next receive.
            match pending.reply {
                StartReply::Ready(reply, height, params) => {
                    let _ = reply.send((height, params));
                }
                StartReply::Next(reply, next) => {
                    let _ = reply.send(next);
                }
            }
            self.publish_status();
        }
    }

    async fn answer_get_value(
        &mut self,
        height: Height,
        round: Round,
        reply: oneshot::Sender<LocallyProposedValue<SettleContext>>,
        network: &mpsc::Sender<NetworkMsg<SettleContext>>,
    ) -> Result<(), DriverError> {
        match self.propose(height, round, network).await? {
            Some(value) => {
                let _ = reply.send(LocallyProposedValue::new(height, round, value));
            }
            None => {
                // No reply: consensus times out and prevotes nil.
                warn!(%height, %round, "no block to propose");
            }
        }
        Ok(())
    }

    fn publish_status(&self) {
        let status = ConsensusStatus {
            height: self.height,
            round: self.round.as_u32(),
            proposer: self
                .validator_set
                .as_ref()
                .filter(|_| self.round.is_defined())
                .map(|set| set.proposer(self.height, self.round).address),
            validators: self
                .validator_set
                .as_ref()
                .map(|set| {
                    set.validators()
                        .iter()
                        .map(|v| (v.address, v.power))
                        .collect()
                })
                .unwrap_or_default(),
            waiting_for_transactions: self.pending_start.is_some() || self.pending_value.is_some(),
        };
        self.status_tx.send_replace(status);
    }

    fn forward_transactions(&self, from: PeerId, origin: Option<PeerId>, batch: TxBatch) {
        if batch.txs.is_empty() || batch.txs.len() > MAX_GOSSIP_BATCH_TXS {
            let author = gossip_author(from, origin);
            warn!(peer = %author, count = batch.txs.len(), "dropping a transaction batch of a size out of bounds");
            self.report(author, Offence::MalformedStream);
            return;
        }
        let Some(sink) = &self.tx_sink else {
            return;
        };
        if sink
            .try_send(GossipedTxs {
                from,
                origin,
                txs: batch.txs,
            })
            .is_err()
        {
            debug!(peer = %from, "mempool intake is busy; dropping a gossiped batch");
        }
    }

    /// Charges `author` (an engine peer id) with `offence`.
    fn report(&self, author: PeerId, offence: Offence) {
        match to_libp2p(&author) {
            Some(peer) => self.guard.report(peer, offence),
            None => self.guard.count_unattributed(offence),
        }
    }

    /// Charges the validator `proposer` (its node key is its validator key) with
    /// `offence`.
    fn report_validator(&self, proposer: &Address, offence: Offence) {
        match peer_id_of(&proposer.to_byte_array()) {
            Ok(peer) => self.guard.report(peer, offence),
            Err(_) => self.guard.count_unattributed(offence),
        }
    }

    fn height_params(&self, height: Height) -> Result<HeightParams<SettleContext>, AppError> {
        let validator_set = self.app.validator_set(height)?;
        Ok(HeightParams::new(
            validator_set,
            self.timing.timeouts,
            self.timing.block_interval,
        ))
    }

    /// Makes `height` current: loads its validator set and drops what belongs to
    /// earlier heights.
    fn enter_height(&mut self, height: Height, params: &HeightParams<SettleContext>) {
        self.height = height;
        self.round = Round::Nil;
        self.validator_set = Some(params.validator_set.clone());
        self.proposals.retain(|(h, _, _), _| *h >= height);
        self.blocks.retain(|_, (h, _)| *h >= height);
        self.built.retain(|(h, _), _| *h >= height);
        self.parked.retain(|c| c.init.height >= height);
        self.synced.retain(|id| self.blocks.contains_key(id));
        if self.candidates.height != height {
            self.candidates = CandidateBudget {
                height,
                ..CandidateBudget::default()
            };
        }
        self.publish_status();
    }

    /// Reads back the candidate blocks stored for `height` before a crash or stop:
    /// the blocks this validator may have voted for.
    fn load_candidates(&mut self, height: Height) -> Result<(), DriverError> {
        for bytes in self.app.load_candidates(height)? {
            let Some(hash) = self.app.block_hash(&bytes) else {
                // The application stored it after judging it: not decoding now is
                // damage on this node's side.
                return Err(AppError(format!(
                    "a stored candidate block at {height} does not decode"
                ))
                .into());
            };
            let id = BlockId::from_block_hash(hash);
            self.candidates.bytes += bytes.len() as u64;
            self.candidates.ids.insert(id);
            self.blocks.insert(id, (height, bytes));
        }
        if !self.candidates.ids.is_empty() {
            info!(%height, count = self.candidates.ids.len(), "candidate blocks read back");
        }
        Ok(())
    }

    /// Makes the block `id` at `height` durable before this node hands it to the
    /// engine (and so before it can vote for it). `Ok(false)`: over the per-height
    /// caps, so this node must not vote for it. A storage failure stops the node.
    fn keep_candidate(
        &mut self,
        height: Height,
        id: BlockId,
        bytes: &[u8],
    ) -> Result<bool, DriverError> {
        if self.signer.is_none() {
            // A follower never votes: nothing to keep.
            return Ok(true);
        }
        if self.candidates.height == height && self.candidates.ids.contains(&id) {
            return Ok(true);
        }
        if self.candidates.height != height {
            // Only the current height's blocks are voted for.
            return Ok(false);
        }
        let len = bytes.len() as u64;
        if !self.candidates.has_room_for(len) {
            warn!(%height, block = %id, count = self.candidates.ids.len(), bytes = self.candidates.bytes,
                  "candidate block caps reached for this height; not voting for another block");
            return Ok(false);
        }
        self.app.store_candidate(height, id.block_hash(), bytes)?;
        crate::crash::point("candidate-stored");
        self.candidates.ids.insert(id);
        self.candidates.bytes += len;
        Ok(true)
    }

    async fn handle(
        &mut self,
        msg: AppMsg<SettleContext>,
        network: &mpsc::Sender<NetworkMsg<SettleContext>>,
    ) -> Result<(), DriverError> {
        match msg {
            AppMsg::ConsensusReady { reply } => {
                let start = self.app.tip_height()?.increment();
                let params = self.height_params(start)?;
                self.enter_height(start, &params);
                self.load_candidates(start)?;
                info!(height = %start, validators = params.validator_set.len(), "consensus ready");
                let alone = params.validator_set.len() == 1
                    && self
                        .validator_set
                        .as_ref()
                        .is_some_and(|set| self.proposes_at(set));
                let now = Instant::now();
                let delay = if alone {
                    self.app.propose_delay(Duration::ZERO)
                } else {
                    Some(Duration::ZERO)
                };
                match delay {
                    Some(d) if d.is_zero() => {
                        if reply.send((start, params)).is_err() {
                            return Err(DriverError::ChannelClosed("ConsensusReady reply"));
                        }
                    }
                    delay => {
                        debug!(height = %start, "the only validator waits for something to propose");
                        self.last_finalized_at = now;
                        self.pending_start = Some(PendingStart {
                            reply: StartReply::Ready(reply, start, params),
                            finalized_at: now,
                            wake_at: delay.map(|d| now + d),
                        });
                        self.publish_status();
                    }
                }
            }

            AppMsg::StartedRound {
                height,
                round,
                proposer,
                role,
                reply_value,
            } => {
                debug!(%height, %round, %proposer, ?role, "started round");
                self.round = round;
                self.publish_status();
                let mut values = Vec::new();
                if height == self.height {
                    for stream in self.take_parked(height) {
                        if let Some(value) = self.accept_stream(stream)?
                            && value.round == round
                        {
                            values.push(value);
                        }
                    }
                }
                for ((h, r, _), stored) in &self.proposals {
                    if *h == height && *r == round && !values.contains(&stored.value) {
                        values.push(stored.value.clone());
                    }
                }
                if role == Role::Proposer {
                    debug!(%height, %round, "this node proposes");
                }
                // The engine waits for this reply; a closed channel means it is gone.
                let _ = reply_value.send(values);
            }

            AppMsg::GetValue {
                height,
                round,
                timeout,
                reply,
            } => {
                // A request for a new round replaces one still held.
                self.pending_value = None;
                let now = Instant::now();
                let already_built = self.built.contains_key(&(height, round));
                match self.app.propose_delay(now - self.last_finalized_at) {
                    Some(d) if d.is_zero() || already_built => {
                        // Building is synchronous and bounded by the mempool's block
                        // limits, well within the propose timeout.
                        self.answer_get_value(height, round, reply, network).await?;
                    }
                    delay => {
                        // Only at the first height after start-up (later heights wait
                        // before they start): hold the request, within the timeout.
                        let give_up_at = now + timeout * PROPOSE_WAIT_PER_MILLE / 1000;
                        debug!(%height, %round, "waiting for something to propose");
                        self.pending_value = Some(PendingValue {
                            height,
                            round,
                            reply,
                            idle_since: self.last_finalized_at,
                            give_up_at,
                            wake_at: delay.map(|d| now + d),
                        });
                        self.publish_status();
                    }
                }
            }

            AppMsg::ExtendVote { reply, .. } => {
                let _ = reply.send(None);
            }

            AppMsg::VerifyVoteExtensions {
                extensions, reply, ..
            } => {
                // Extensions are disabled: any that shows up is refused.
                let verdicts = extensions
                    .into_iter()
                    .map(|(addr, _)| (addr, Err(VoteExtensionError::InvalidVoteExtension)))
                    .collect();
                let _ = reply.send(verdicts);
            }

            AppMsg::RestreamProposal {
                height,
                round,
                valid_round,
                address,
                value_id,
            } => {
                self.restream(height, round, valid_round, address, value_id, network)
                    .await?;
            }

            AppMsg::GetHistoryMinHeight { reply } => {
                let _ = reply.send(self.app.history_min_height()?);
            }

            AppMsg::ReceivedProposalPart {
                from,
                published_by,
                part,
                reply,
            } => {
                let StreamMessage {
                    stream_id,
                    sequence,
                    content,
                } = part;
                let content = match content {
                    StreamContent::Data(ProposalPart::Transactions(batch)) => {
                        self.forward_transactions(from, published_by, batch);
                        let _ = reply.send(None);
                        return Ok(());
                    }
                    StreamContent::Data(ProposalPart::Undecodable(bad)) => {
                        let author = gossip_author(from, published_by);
                        warn!(peer = %author, via = %from, len = bad.len, reason = %bad.reason,
                              "undecodable proposal-part gossip");
                        self.report(author, Offence::UndecodableGossip);
                        let _ = reply.send(None);
                        return Ok(());
                    }
                    other => other,
                };
                let part = StreamMessage::new(stream_id, sequence, content);
                // A peer is proposing: the network has moved on to the next height.
                self.release_start();
                let publisher = published_by.unwrap_or(from);
                let value = match self.streams.insert(publisher, part) {
                    Ok(Some(stream)) => self.on_complete_stream(stream)?,
                    Ok(None) => None,
                    Err(e) => {
                        warn!(peer = %publisher, error = %e, "dropping proposal stream");
                        if e.is_attributable() {
                            self.report(publisher, Offence::MalformedStream);
                        }
                        None
                    }
                };
                let _ = reply.send(value);
            }

            AppMsg::Decided {
                certificate,
                extensions: _,
                reply,
            } => {
                if self.commit_or_stop(&certificate)? {
                    let _ = reply.send(());
                } else {
                    // Restarting the height would reset the WAL and with it this
                    // validator's record of its votes: hold the decision instead.
                    error!(height = %certificate.height, block = %certificate.value_id,
                           "the decided block is not stored on this node; holding the height until it arrives \
                            from a peer through sync. If it never does, stop the node and copy the chain from \
                            another validator (spec/consensus.md, \"After a crash\")");
                    self.held = Some(HeldDecision {
                        certificate,
                        reply: None,
                    });
                }
            }

            AppMsg::Finalized {
                certificate,
                extensions: _,
                evidence,
                reply,
            } => {
                // Equivocation evidence: two signed proposals or votes for one round.
                let equivocators: HashSet<Address> = evidence
                    .proposals
                    .iter()
                    .map(|(address, _)| *address)
                    .chain(evidence.votes.iter().map(|(address, _)| *address))
                    .collect();
                for address in &equivocators {
                    warn!(height = %certificate.height, validator = %address, "validator equivocated");
                    self.report_validator(address, Offence::Equivocation);
                }
                let height = certificate.height;
                let from_sync = self.synced.contains(&certificate.value_id);
                if self.committed_height != Some(height) {
                    return match &mut self.held {
                        Some(held) if held.certificate.height == height => {
                            held.reply = Some(reply);
                            self.resolve_held()
                        }
                        _ => Err(DriverError::Commit {
                            height,
                            reason: "the engine finalized a height this node did not connect"
                                .into(),
                        }),
                    };
                }
                let next_height = height.increment();
                let params = self.height_params(next_height)?;
                self.enter_height(next_height, &params);
                let next = Next::Start(next_height, params);
                let may_wait = !from_sync
                    && matches!(next, Next::Start(..))
                    && self
                        .validator_set
                        .as_ref()
                        .is_some_and(|set| self.proposes_at(set));
                let now = Instant::now();
                self.last_finalized_at = now;
                if from_sync {
                    self.sync_progress.connected(height, now);
                } else {
                    self.sync_progress.caught_up(height, now);
                }
                let delay = if may_wait {
                    self.app.propose_delay(Duration::ZERO)
                } else {
                    Some(Duration::ZERO)
                };
                match delay {
                    Some(d) if d.is_zero() => {
                        if reply.send(next).is_err() {
                            return Err(DriverError::ChannelClosed("Finalized reply"));
                        }
                    }
                    delay => {
                        // The engine keeps working (sync, gossip) while the answer waits;
                        // messages for the next height queue up until it starts.
                        debug!(height = %height.increment(), "waiting for something to propose before starting the height");
                        self.pending_start = Some(PendingStart {
                            reply: StartReply::Next(reply, next),
                            finalized_at: now,
                            wake_at: delay.map(|d| now + d),
                        });
                        self.publish_status();
                    }
                }
            }

            AppMsg::GetDecidedValues { range, reply } => {
                let mut values = Vec::new();
                let mut height = *range.start();
                while height <= *range.end() && values.len() < MAX_SYNC_BLOCKS_PER_RESPONSE {
                    let Some(decided) = self.app.decided_block(height)? else {
                        break;
                    };
                    let certificate =
                        ExtendedCommitCertificate::from_commit_certificate_and_extensions(
                            crate::certificate::to_malachite(&decided.certificate),
                            VoteExtensions::default(),
                        );
                    values.push(RawDecidedValue::new(decided.bytes, certificate));
                    height = height.increment();
                }
                let _ = reply.send(values);
            }

            AppMsg::ProcessSyncedValue {
                height,
                round,
                proposer,
                value_bytes,
                reply,
            } => {
                let outcome = self.process_synced(height, round, proposer, value_bytes)?;
                let _ = reply.send(outcome);
                self.resolve_held()?;
            }
        }
        Ok(())
    }

    /// Builds (or rebuilds) this node's block for `height` and `round` and streams it.
    async fn propose(
        &mut self,
        height: Height,
        round: Round,
        network: &mpsc::Sender<NetworkMsg<SettleContext>>,
    ) -> Result<Option<BlockId>, DriverError> {
        let Some(signer) = self.signer.clone() else {
            return Ok(None);
        };
        if !self.built.contains_key(&(height, round)) {
            // Before a restart this node may have proposed here already (the same
            // block again, or nothing: the guard would refuse another), or later
            // (the engine asks while it replays its log: nothing).
            match signer.proposal_slot(height, round) {
                ProposalSlot::Free => {}
                ProposalSlot::Signed(signed) if self.blocks.contains_key(&signed) => {
                    self.built.insert((height, round), signed);
                }
                slot => {
                    debug!(%height, %round, ?slot, "not proposing: the double-sign guard holds another proposal");
                    return Ok(None);
                }
            }
        }
        let id = match self.built.get(&(height, round)) {
            Some(id) => *id,
            None => {
                let block = match self.app.build_block(height) {
                    Ok(block) => block,
                    Err(e) => {
                        error!(%height, error = %e, "could not build a block");
                        return Ok(None);
                    }
                };
                let id = BlockId::from_block_hash(block.hash);
                if !self.keep_candidate(height, id, &block.bytes)? {
                    return Ok(None);
                }
                self.blocks.insert(id, (height, block.bytes));
                self.built.insert((height, round), id);
                id
            }
        };
        let Some((_, bytes)) = self.blocks.get(&id).cloned() else {
            return Ok(None);
        };
        let init = ProposalInit {
            height,
            round,
            pol_round: Round::Nil,
            proposer: self.address,
            block_len: match u32::try_from(bytes.len()) {
                Ok(len) => len,
                Err(_) => return Ok(None),
            },
        };
        let fin = signer
            .sign_proposal_parts(height, round, Round::Nil, &id, &bytes)
            .map_err(|e| DriverError::Refused(e.to_string()))?;
        let value = ProposedValue {
            height,
            round,
            valid_round: Round::Nil,
            proposer: self.address,
            value: id,
            validity: Validity::Valid,
        };
        self.proposals.insert(
            (height, round, id),
            StoredProposal {
                init: init.clone(),
                fin,
                value,
            },
        );
        self.publish(init, &bytes, fin, network).await?;
        Ok(Some(id))
    }

    /// Re-publishes the parts of a proposal: the stored stream if this node has it,
    /// or, when this node is the proposer re-proposing a block it knows, a new one.
    async fn restream(
        &mut self,
        height: Height,
        round: Round,
        valid_round: Round,
        proposer: Address,
        id: BlockId,
        network: &mpsc::Sender<NetworkMsg<SettleContext>>,
    ) -> Result<(), DriverError> {
        let Some((_, bytes)) = self.blocks.get(&id).cloned() else {
            warn!(%height, %round, block = %id, "asked to restream a block this node does not have");
            return Ok(());
        };
        if let Some(stored) = self.proposals.get(&(height, round, id)).cloned() {
            return self.publish(stored.init, &bytes, stored.fin, network).await;
        }
        let Some(signer) = self.signer.clone().filter(|s| s.address() == proposer) else {
            warn!(%height, %round, block = %id, "no stored stream to restream");
            return Ok(());
        };
        match signer.proposal_slot(height, round) {
            ProposalSlot::Free => {}
            ProposalSlot::Signed(signed) if signed == id => {}
            slot => {
                // Asked while the engine replays its log after a restart: this
                // node has since proposed elsewhere, and the guard would refuse.
                debug!(%height, %round, ?slot, "not restreaming: the double-sign guard holds another proposal");
                return Ok(());
            }
        }
        let Ok(block_len) = u32::try_from(bytes.len()) else {
            return Ok(());
        };
        let init = ProposalInit {
            height,
            round,
            pol_round: valid_round,
            proposer,
            block_len,
        };
        let fin = signer
            .sign_proposal_parts(height, round, valid_round, &id, &bytes)
            .map_err(|e| DriverError::Refused(e.to_string()))?;
        self.proposals.insert(
            (height, round, id),
            StoredProposal {
                init: init.clone(),
                fin,
                value: ProposedValue {
                    height,
                    round,
                    valid_round,
                    proposer,
                    value: id,
                    validity: Validity::Valid,
                },
            },
        );
        self.publish(init, &bytes, fin, network).await
    }

    async fn publish(
        &mut self,
        init: ProposalInit,
        block: &[u8],
        fin: Signature,
        network: &mpsc::Sender<NetworkMsg<SettleContext>>,
    ) -> Result<(), DriverError> {
        self.stream_nonce = self.stream_nonce.wrapping_add(1);
        let mut id = Vec::with_capacity(16);
        id.extend_from_slice(&init.height.as_u64().to_le_bytes());
        id.extend_from_slice(&init.round.as_i64().to_le_bytes()[..4]);
        id.extend_from_slice(&self.stream_nonce.to_le_bytes());
        let stream_id = StreamId::new(Bytes::from(id));
        let parts = split(init, block, fin);
        let end = parts.len() as u64;
        for (sequence, part) in parts.into_iter().enumerate() {
            let msg = StreamMessage::new(
                stream_id.clone(),
                sequence as u64,
                StreamContent::Data(part),
            );
            network
                .send(NetworkMsg::PublishProposalPart(msg))
                .await
                .map_err(|_| DriverError::ChannelClosed("network"))?;
        }
        network
            .send(NetworkMsg::PublishProposalPart(StreamMessage::new(
                stream_id,
                end,
                StreamContent::Fin,
            )))
            .await
            .map_err(|_| DriverError::ChannelClosed("network"))
    }

    fn take_parked(&mut self, height: Height) -> Vec<CompleteStream> {
        let (now, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.parked)
            .into_iter()
            .partition(|c| c.init.height == height);
        self.parked = later;
        now
    }

    fn on_complete_stream(
        &mut self,
        stream: CompleteStream,
    ) -> Result<Option<ProposedValue<SettleContext>>, DriverError> {
        let height = stream.init.height;
        if height < self.height {
            return Ok(None);
        }
        if height > self.height {
            if height.as_u64() <= self.height.as_u64() + MAX_PARK_AHEAD_HEIGHTS
                && self.parked.len() < MAX_PARKED_PROPOSALS
            {
                self.parked.push(stream);
            }
            return Ok(None);
        }
        self.accept_stream(stream)
    }

    /// Checks a complete stream for the current height: the right proposer, the
    /// proposer's signature over the whole block, then the application's verdict.
    fn accept_stream(
        &mut self,
        stream: CompleteStream,
    ) -> Result<Option<ProposedValue<SettleContext>>, DriverError> {
        let CompleteStream {
            publisher,
            init,
            block,
            fin,
        } = stream;
        let Some(set) = &self.validator_set else {
            return Ok(None);
        };
        let expected = set.proposer(init.height, init.round);
        if expected.address != init.proposer {
            warn!(height = %init.height, round = %init.round, proposer = %init.proposer,
                  expected = %expected.address, "proposal stream from a validator that is not the proposer");
            return Ok(None);
        }
        let proposer_key = expected.public_key;
        // Cheap checks first: only a block its proposer really sent is validated in full.
        let Some(id) = self.signed_block_id(publisher, &init, &block, &fin, &proposer_key) else {
            return Ok(None);
        };
        if self.proposals.contains_key(&(init.height, init.round, id)) {
            // The same signed block again (a restream): the first verdict stands and
            // nothing stored is replaced.
            debug!(height = %init.height, round = %init.round, block = %id, peer = %publisher, "proposal stream already judged");
            return Ok(None);
        }
        let validity = self.judge_block(&init, id.block_hash(), &block)?;
        let value = ProposedValue {
            height: init.height,
            round: init.round,
            valid_round: init.pol_round,
            proposer: init.proposer,
            value: id,
            validity,
        };
        log_seen_proposal(&init, id);
        if validity.is_valid() {
            if !self.keep_candidate(init.height, id, &block)? {
                // Not durable, so not voted for: the round times out here.
                return Ok(None);
            }
            // Under the signature the bytes of `id` are the proposer's: an entry
            // already here (built, synced or proposed) is kept as it is.
            self.blocks
                .entry(id)
                .or_insert_with(|| (init.height, Bytes::from(block)));
        }
        self.proposals.insert(
            (init.height, init.round, id),
            StoredProposal {
                init,
                fin,
                value: value.clone(),
            },
        );
        Ok(Some(value))
    }

    /// The block id of a stream whose `Fin` is the proposer's signature over the
    /// header hash, length and bytes of its block; `None`, with the publisher charged,
    /// for a header that does not decode or a signature that does not verify.
    fn signed_block_id(
        &self,
        publisher: PeerId,
        init: &ProposalInit,
        block: &[u8],
        fin: &Signature,
        proposer_key: &secp256k1::XOnlyPublicKey,
    ) -> Option<BlockId> {
        let Some(hash) = self.app.block_hash(block) else {
            // Unsigned as far as we can tell: the publisher sent it (an honest node
            // restreams only blocks it judged valid).
            warn!(height = %init.height, round = %init.round, peer = %publisher, "proposed block does not decode");
            self.report(publisher, Offence::MalformedBlock);
            return None;
        };
        let id = BlockId::from_block_hash(hash);
        let digest = proposal_parts_digest(
            &self.chain_id,
            init.height,
            init.round,
            init.pol_round,
            &id,
            block,
        );
        if !verify_digest(proposer_key, &digest, fin) {
            // The signature covers every byte: the proposer's header and `Fin`
            // replayed with another body land here, charged to whoever published
            // them, and no verdict is kept for `id`, so the proposer's own stream is
            // still judged on its bytes when it arrives.
            warn!(height = %init.height, round = %init.round, peer = %publisher, "proposal stream signature is invalid");
            self.report(publisher, Offence::BadProposalSignature);
            return None;
        }
        Some(id)
    }

    /// The verdict on a block whose proposer's signature verified: its clock rules,
    /// then full validation. A block that breaks a rule is charged to the proposer,
    /// who signed every byte of it.
    fn judge_block(
        &mut self,
        init: &ProposalInit,
        hash: BlockHash,
        block: &[u8],
    ) -> Result<Validity, DriverError> {
        // Judged by this node's clock first and never blamed on the proposer: the
        // clock that is off may be ours (`spec/consensus.md`, "Clock").
        Ok(if let Some(reason) = self.app.check_proposal_clock(block) {
            warn!(height = %init.height, round = %init.round, block = %hash, %reason,
                  proposer = %init.proposer, "proposed block is dated too far ahead of this node's clock; voting nil");
            Validity::Invalid
        } else {
            match self.app.validate_block(init.height, block)? {
                BlockVerdict::Valid(valid) if valid == hash => Validity::Valid,
                BlockVerdict::Valid(other) => {
                    error!(height = %init.height, block = %hash, validated = %other,
                           "the application hashed the block two ways; voting nil");
                    Validity::Invalid
                }
                BlockVerdict::Invalid { reason, .. } => {
                    warn!(height = %init.height, round = %init.round, block = %hash, %reason,
                          proposer = %init.proposer, "proposed block is invalid; voting nil");
                    // The proposer signed it: the proposer is at fault, whoever relayed it.
                    self.report_validator(&init.proposer, Offence::InvalidBlock);
                    Validity::Invalid
                }
                BlockVerdict::Malformed { reason } => {
                    warn!(height = %init.height, round = %init.round, block = %hash, %reason,
                          proposer = %init.proposer, "proposed block does not decode in full; voting nil");
                    // The signature covers these exact bytes: the proposer sent them.
                    self.report_validator(&init.proposer, Offence::MalformedBlock);
                    Validity::Invalid
                }
            }
        })
    }

    fn process_synced(
        &mut self,
        height: Height,
        round: Round,
        proposer: Address,
        bytes: Bytes,
    ) -> Result<SyncedValueOutcome<SettleContext>, DriverError> {
        if height != self.height {
            return Ok(SyncedValueOutcome::LocalTransientError);
        }
        let verdict = match self.app.validate_block(height, &bytes) {
            Ok(verdict) => verdict,
            Err(e) => {
                error!(%height, error = %e, "could not validate a synced block");
                return Ok(SyncedValueOutcome::LocalTransientError);
            }
        };
        let (id, validity) = match verdict {
            BlockVerdict::Valid(hash) => (BlockId::from_block_hash(hash), Validity::Valid),
            BlockVerdict::Invalid { hash, reason } => {
                // A certificate vouches for it, yet it breaks our rules: the engine
                // reports the disagreement instead of deciding.
                error!(%height, block = %hash, %reason, "synced block with a valid certificate is invalid");
                (BlockId::from_block_hash(hash), Validity::Invalid)
            }
            BlockVerdict::Malformed { reason } => {
                // The engine knows the peer and penalises it in its sync scoring.
                warn!(%height, %reason, "synced block does not decode");
                self.guard.count_unattributed(Offence::MalformedSyncedBlock);
                return Ok(SyncedValueOutcome::PeerFault);
            }
        };
        if validity.is_valid() {
            if !self.keep_candidate(height, id, &bytes)? {
                return Ok(SyncedValueOutcome::LocalTransientError);
            }
            // Bytes already kept for `id` stay: they may be restreamed under the
            // proposer's signature, which covers exactly those bytes.
            self.blocks.entry(id).or_insert((height, bytes));
            self.synced.insert(id);
        }
        Ok(SyncedValueOutcome::Verdict(ProposedValue {
            height,
            round,
            valid_round: Round::Nil,
            proposer,
            value: id,
            validity,
        }))
    }

    /// Connects a held decision once its block has arrived, and answers the held
    /// `Finalized` with the next height.
    fn resolve_held(&mut self) -> Result<(), DriverError> {
        let Some(held) = &self.held else {
            return Ok(());
        };
        if !self.blocks.contains_key(&held.certificate.value_id) || held.reply.is_none() {
            return Ok(());
        }
        let Some(HeldDecision { certificate, reply }) = self.held.take() else {
            return Ok(());
        };
        let height = certificate.height;
        self.commit_or_stop(&certificate)?;
        info!(%height, block = %certificate.value_id, "the held decided block arrived and is connected");
        let next_height = height.increment();
        let params = self.height_params(next_height)?;
        self.enter_height(next_height, &params);
        self.last_finalized_at = Instant::now();
        if let Some(reply) = reply
            && reply.send(Next::Start(next_height, params)).is_err()
        {
            return Err(DriverError::ChannelClosed("Finalized reply"));
        }
        Ok(())
    }

    /// Connects a decided block; any failure but a missing block stops the node.
    /// `Ok(false)`: the block is not here (the caller holds the decision).
    fn commit_or_stop(
        &mut self,
        certificate: &CommitCertificate<SettleContext>,
    ) -> Result<bool, DriverError> {
        crate::crash::point("decided-before-write");
        match self.commit(certificate) {
            Ok(()) => {
                crate::crash::point("commit-after-write");
                Ok(true)
            }
            Err(CommitError::UnknownBlock(_)) => Ok(false),
            Err(e) => Err(DriverError::Commit {
                height: certificate.height,
                reason: e.to_string(),
            }),
        }
    }

    fn commit(
        &mut self,
        certificate: &CommitCertificate<SettleContext>,
    ) -> Result<(), CommitError> {
        let height = certificate.height;
        let id = certificate.value_id;
        let Some((block_height, bytes)) = self.blocks.get(&id).cloned() else {
            return Err(CommitError::UnknownBlock(id));
        };
        if block_height != height {
            return Err(CommitError::UnknownBlock(id));
        }
        let cert = crate::certificate::from_malachite(certificate)?;
        self.app.commit_block(height, &bytes, &cert)?;
        self.app.prune_candidates(height)?;
        self.committed_height = Some(height);
        self.committed_tx.send_replace(height);
        info!(%height, block = %id, signatures = cert.signatures.len(), "block connected");
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
enum CommitError {
    #[error("no block {0} is known at the decided height")]
    UnknownBlock(BlockId),
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    #[error(transparent)]
    App(#[from] AppError),
}

impl<A> std::fmt::Debug for Driver<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("address", &self.address)
            .field("height", &self.height)
            .field("round", &self.round)
            .finish_non_exhaustive()
    }
}

/// Records a judged proposal in the crash harness's vote log, when it is on.
fn log_seen_proposal(init: &ProposalInit, id: BlockId) {
    if crate::crash::vote_log_enabled() {
        crate::crash::record_seen(&format!(
            "proposal {} {} {} {} {}",
            init.proposer,
            init.height.as_u64(),
            init.round.as_i64(),
            init.pol_round.as_i64(),
            hex::encode(id.0)
        ));
    }
}

/// `spec/consensus.md`, section 9a: a peer that replays an honest proposer's header
/// and `Fin` with another body is charged itself; the proposer is never charged, and
/// its own stream, arriving later, is judged on its bytes and kept.
#[cfg(test)]
mod replayed_stream_tests {
    use super::*;
    use crate::app::{DecidedBlock, ProposedBlock};
    use crate::certificate::Certificate;
    use crate::signing::sign_digest;
    use secp256k1::{Keypair, SECP256K1, SecretKey};
    use settle_assets::hash::Tag;

    static TEST_HEADER_TAG: Tag = Tag::new("Settle/TestHeader");
    /// Test block: `height u64 ‖ SHA256(body)` (a header committing to its body, as a
    /// merkle root does), then the body, which "decodes" when it starts with `TX`.
    const TEST_HEADER_BYTES: usize = 40;

    fn test_block(height: u64, body: &[u8]) -> Vec<u8> {
        let mut bytes = height.to_le_bytes().to_vec();
        bytes.extend_from_slice(&TEST_HEADER_TAG.hash(body));
        bytes.extend_from_slice(body);
        bytes
    }

    struct TestChain {
        validators: ValidatorSet,
    }

    impl Application for TestChain {
        fn tip_height(&self) -> Result<Height, AppError> {
            Ok(Height(0))
        }
        fn history_min_height(&self) -> Result<Height, AppError> {
            Ok(Height(1))
        }
        fn validator_set(&self, _height: Height) -> Result<ValidatorSet, AppError> {
            Ok(self.validators.clone())
        }
        fn build_block(&mut self, _height: Height) -> Result<ProposedBlock, AppError> {
            Err(AppError("not in this test".into()))
        }
        fn block_hash(&self, bytes: &[u8]) -> Option<BlockHash> {
            let header = bytes.get(..TEST_HEADER_BYTES)?;
            Some(BlockHash(TEST_HEADER_TAG.hash(header)))
        }
        fn validate_block(
            &mut self,
            _height: Height,
            bytes: &[u8],
        ) -> Result<BlockVerdict, AppError> {
            let Some(hash) = self.block_hash(bytes) else {
                return Ok(BlockVerdict::Malformed {
                    reason: "no header".into(),
                });
            };
            let body = &bytes[TEST_HEADER_BYTES..];
            if !body.starts_with(b"TX") {
                return Ok(BlockVerdict::Malformed {
                    reason: "the body does not decode".into(),
                });
            }
            if TEST_HEADER_TAG.hash(body)[..] != bytes[8..TEST_HEADER_BYTES] {
                return Ok(BlockVerdict::Invalid {
                    hash,
                    reason: "the body does not match the header".into(),
                });
            }
            Ok(BlockVerdict::Valid(hash))
        }
        fn commit_block(&mut self, _: Height, _: &[u8], _: &Certificate) -> Result<(), AppError> {
            Err(AppError("not in this test".into()))
        }
        fn decided_block(&self, _height: Height) -> Result<Option<DecidedBlock>, AppError> {
            Ok(None)
        }
    }

    fn key(seed: u8) -> PrivateKey {
        let sk = SecretKey::from_byte_array([seed; 32]).expect("valid secret");
        PrivateKey::new(Keypair::from_secret_key(SECP256K1, &sk))
    }

    fn gossip_peer(key: &PrivateKey) -> PeerId {
        let id = peer_id_of(&key.public_key().serialize()).expect("peer id");
        PeerId::from_bytes(&id.to_bytes()).expect("same peer id format")
    }

    /// A follower's driver at height 1 (a follower keeps every valid block without a
    /// candidate store), and the receiving end of its misbehaviour reports.
    fn follower(
        validators: ValidatorSet,
        local: libp2p_identity::PeerId,
    ) -> (
        Driver<TestChain>,
        mpsc::Receiver<(libp2p_identity::PeerId, Offence)>,
    ) {
        let (guard, reports) = PeerGuard::new(local, Duration::from_secs(30));
        let (failure_tx, _) = watch::channel(None);
        let (committed_tx, _) = watch::channel(Height(0));
        let (status_tx, _) = watch::channel(ConsensusStatus {
            height: Height(1),
            round: None,
            proposer: None,
            validators: Vec::new(),
            waiting_for_transactions: false,
        });
        let driver = Driver {
            app: TestChain {
                validators: validators.clone(),
            },
            chain_id: ChainId([9; 32]),
            address: key(99).address(),
            signer: None,
            timing: Timing::fast_for_tests(),
            height: Height(1),
            round: Round::new(0),
            validator_set: Some(validators),
            streams: StreamBuffer::new(),
            parked: Vec::new(),
            proposals: HashMap::new(),
            blocks: HashMap::new(),
            candidates: CandidateBudget::default(),
            held: None,
            failure: Arc::new(failure_tx),
            built: HashMap::new(),
            committed_height: None,
            committed_tx,
            status_tx,
            stream_nonce: 0,
            guard,
            wake: None,
            tx_sink: None,
            pending_start: None,
            pending_value: None,
            synced: HashSet::new(),
            last_finalized_at: Instant::now(),
            sync_progress: SyncProgress {
                since: Instant::now(),
                blocks: 0,
                syncing: false,
                network_height: None,
                bar: None,
            },
        };
        (driver, reports)
    }

    fn reports_of(
        reports: &mut mpsc::Receiver<(libp2p_identity::PeerId, Offence)>,
    ) -> Vec<(libp2p_identity::PeerId, Offence)> {
        std::iter::from_fn(|| reports.try_recv().ok()).collect()
    }

    #[test]
    fn a_replayed_header_and_fin_with_another_body_charge_the_publisher_only() {
        let keys = [key(1), key(2), key(3), key(4)];
        let validators =
            ValidatorSet::new(keys.iter().map(|k| (k.public_key().serialize(), 1))).expect("set");
        let (height, round) = (Height(1), Round::new(0));
        let proposer_address = validators.proposer(height, round).address;
        let proposer = keys
            .iter()
            .find(|k| k.address() == proposer_address)
            .expect("the proposer's key");
        let attacker = keys
            .iter()
            .find(|k| k.address() != proposer_address)
            .expect("another validator");
        let (mut driver, mut reports) =
            follower(validators, peer_id_of(&[7; 32]).expect("peer id"));

        // The honest proposer's block and the Fin it signs for it.
        let honest = test_block(1, b"TX honest");
        let id = BlockId::from_block_hash(driver.app.block_hash(&honest).expect("header"));
        let init = ProposalInit {
            height,
            round,
            pol_round: Round::Nil,
            proposer: proposer_address,
            block_len: 0,
        };
        let digest =
            proposal_parts_digest(&driver.chain_id, height, round, Round::Nil, &id, &honest);
        let fin = sign_digest(proposer, &digest);
        let stream = |publisher: &PrivateKey, block: Vec<u8>| CompleteStream {
            publisher: gossip_peer(publisher),
            init: ProposalInit {
                block_len: u32::try_from(block.len()).expect("small"),
                ..init.clone()
            },
            block,
            fin,
        };

        // The attacker copies the header and Fin and sends a junk body, then a body
        // that decodes but is not the one under the header, then a longer block.
        let junk = [&honest[..TEST_HEADER_BYTES], b"\xde\xad"].concat();
        let other = [&honest[..TEST_HEADER_BYTES], b"TX forged"].concat();
        let longer = [&honest[..], b"TX"].concat();
        for forged in [junk, other, longer] {
            let verdict = driver
                .accept_stream(stream(attacker, forged))
                .expect("no local failure");
            assert!(verdict.is_none(), "no verdict for a forged stream");
        }
        let attacker_peer = peer_id_of(&attacker.public_key().serialize()).expect("peer");
        let charged = reports_of(&mut reports);
        assert_eq!(
            charged,
            vec![(attacker_peer, Offence::BadProposalSignature); 3],
            "the publisher, and only the publisher, is charged"
        );
        assert!(driver.blocks.is_empty() && driver.proposals.is_empty());

        // The proposer's own stream arrives later: judged on its bytes, valid, kept.
        let verdict = driver
            .accept_stream(stream(proposer, honest.clone()))
            .expect("no local failure")
            .expect("a verdict");
        assert_eq!(verdict.value, id);
        assert!(verdict.validity.is_valid());
        assert_eq!(
            driver.blocks.get(&id).map(|(_, b)| &b[..]),
            Some(&honest[..])
        );
        assert!(
            reports_of(&mut reports).is_empty(),
            "the proposer is not charged"
        );

        // Replayed again after the verdict (even with the right bytes), nothing stored
        // is replaced and the first verdict stands.
        let again = driver
            .accept_stream(stream(attacker, honest.clone()))
            .expect("no local failure");
        assert!(again.is_none());
        let forged_after = [&honest[..TEST_HEADER_BYTES], b"TX late"].concat();
        assert!(
            driver
                .accept_stream(stream(attacker, forged_after))
                .expect("no local failure")
                .is_none()
        );
        assert_eq!(
            driver.blocks.get(&id).map(|(_, b)| &b[..]),
            Some(&honest[..])
        );
        assert!(
            driver.proposals[&(height, round, id)]
                .value
                .validity
                .is_valid()
        );
        assert_eq!(
            reports_of(&mut reports),
            vec![(attacker_peer, Offence::BadProposalSignature)]
        );
    }
}
