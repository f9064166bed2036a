//! Starting consensus and the network for the daemon, and the two transaction-gossip
//! tasks: publishing transactions submitted here, and feeding transactions peers
//! gossip into the mempool.

use std::sync::Arc;
use std::time::Duration;

use settle_assets::transaction::Transaction;
use settle_consensus::{
    GossipedTxs, Multiaddr, NodeError, NodeHandle, NodeParams, NodeRole, PrivateKey, start_node,
};
use tokio::sync::mpsc;

use crate::chain_app::ChainApp;
use crate::daemon::Shutdown;
use crate::datadir::DataDir;
use crate::mempool::Accepted;
use crate::node::{Node, SubmitError};

/// Transactions waiting to be gossiped (submitted here); beyond this they are not
/// relayed (they stay in this node's mempool and are still proposed by it).
pub const RELAY_QUEUE_TXS: usize = 10_000;
/// Gossiped batches waiting for the mempool.
pub const INTAKE_QUEUE_BATCHES: usize = 1_024;
/// Most transactions published in one gossip message.
pub const MAX_RELAY_BATCH_TXS: usize = 500;

/// Why consensus could not start.
#[derive(Debug, thiserror::Error)]
pub enum P2pError {
    #[error(transparent)]
    DataDir(#[from] crate::datadir::DataDirError),
    #[error("p2p: {0}")]
    Config(String),
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error("consensus: {0}")]
    App(#[from] settle_consensus::AppError),
}

/// Starts the consensus node for `node`: a validator when this node holds one of the
/// chain's validator keys and producing is enabled, a follower otherwise. Its libp2p
/// identity is the validator key, or `keys/node.key` (created on first use).
pub async fn start_consensus(
    node: &Arc<Node>,
    dir: &DataDir,
    shutdown: &Shutdown,
) -> Result<NodeHandle, P2pError> {
    let config = &node.config;
    let (key, role) = match node.validator() {
        Some(keypair) if config.producer.enabled => (*keypair, NodeRole::Validator),
        Some(keypair) => (*keypair, NodeRole::Follower),
        None => (crate::datadir::node_key(dir)?, NodeRole::Follower),
    };
    let proposer = (role == NodeRole::Validator).then(|| key.x_only_public_key().0.serialize());
    let listen_addr: Multiaddr = format!(
        "/{}/{}/tcp/{}",
        if config.p2p.bind.is_ipv4() {
            "ip4"
        } else {
            "ip6"
        },
        config.p2p.bind,
        config.p2p_port
    )
    .parse()
    .map_err(|e| P2pError::Config(format!("listen address: {e}")))?;
    let mut bootstrap = Vec::new();
    for addr in &config.p2p.bootstrap {
        bootstrap.push(
            addr.parse::<Multiaddr>()
                .map_err(|e| P2pError::Config(format!("bootstrap peer {addr:?}: {e}")))?,
        );
    }
    // The permitted set: every validator of the chain, plus the configured nodes.
    let mut permitted: Vec<[u8; 32]> = node
        .spec
        .validators
        .validators()
        .iter()
        .map(|v| v.key)
        .collect();
    for key in config.permitted_keys() {
        if !permitted.contains(&key) {
            permitted.push(key);
        }
    }
    let wal_dir = dir.root().join("consensus");
    std::fs::create_dir_all(&wal_dir).map_err(|source| {
        P2pError::DataDir(crate::datadir::DataDirError::Io {
            path: wal_dir.clone(),
            source,
        })
    })?;

    let (intake_tx, intake_rx) = mpsc::channel(INTAKE_QUEUE_BATCHES);
    let params = NodeParams {
        chain_id: node.chain_id,
        moniker: format!(
            "settled-{}",
            hex::encode(&key.x_only_public_key().0.serialize()[..4])
        ),
        key: PrivateKey::new(key),
        role,
        listen_addr,
        bootstrap_peers: bootstrap,
        permitted: Some(permitted),
        wal_dir,
        timing: config.timing(),
        wake: Some(Arc::clone(&node.tx_arrived)),
        tx_sink: Some(intake_tx),
    };
    let app = ChainApp::new(Arc::clone(node), proposer)?;
    let handle = start_node(params, app).await?;
    tracing::info!(
        peer_id = %handle.peer_id(),
        role = ?role,
        p2p_port = config.p2p_port,
        "consensus started"
    );
    let (relay_tx, relay_rx) = mpsc::channel(RELAY_QUEUE_TXS);
    node.set_relay(relay_tx);
    tokio::spawn(intake_loop(Arc::clone(node), intake_rx, shutdown.clone()));
    tokio::spawn(relay_loop(Arc::clone(node), relay_rx, shutdown.clone()));
    Ok(handle)
}

/// Publishes transactions submitted to this node, in batches.
async fn relay_loop(node: Arc<Node>, mut rx: mpsc::Receiver<Arc<Transaction>>, shutdown: Shutdown) {
    loop {
        let first = tokio::select! {
            () = shutdown.wait() => return,
            tx = rx.recv() => match tx {
                Some(tx) => tx,
                None => return,
            },
        };
        let mut batch = vec![settle_assets::serialize(&*first)];
        while batch.len() < MAX_RELAY_BATCH_TXS {
            match rx.try_recv() {
                Ok(tx) => batch.push(settle_assets::serialize(&*tx)),
                Err(_) => break,
            }
        }
        let Some(handle) = node.consensus.get() else {
            continue;
        };
        if let Err(e) = handle.publish_transactions(batch).await {
            tracing::warn!(error = %e, "could not gossip transactions");
        }
    }
}

/// Feeds gossiped transactions into the mempool.
async fn intake_loop(node: Arc<Node>, mut rx: mpsc::Receiver<GossipedTxs>, shutdown: Shutdown) {
    loop {
        let batch = tokio::select! {
            () = shutdown.wait() => return,
            batch = rx.recv() => match batch {
                Some(batch) => batch,
                None => return,
            },
        };
        let n = Arc::clone(&node);
        let result = tokio::task::spawn_blocking(move || accept_gossiped(&n, batch)).await;
        if result.is_err() {
            tracing::error!("the gossip intake task panicked");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn accept_gossiped(node: &Node, batch: GossipedTxs) {
    let mut malformed = 0usize;
    for bytes in batch.txs {
        let tx: Transaction = match settle_assets::deserialize(&bytes) {
            Ok(tx) => tx,
            Err(e) => {
                malformed += 1;
                tracing::debug!(peer = %batch.from, error = %e, "undecodable gossiped transaction");
                continue;
            }
        };
        match node.submit_gossiped(tx) {
            Ok(Accepted::New(txid)) => {
                tracing::debug!(%txid, peer = %batch.from, "gossiped transaction accepted")
            }
            Ok(Accepted::AlreadyKnown(_)) | Err(SubmitError::AlreadyInChain(_)) => {}
            Err(SubmitError::Rejected(r)) => {
                // Conflicts and premature transactions are normal under gossip;
                // consensus-invalid ones mean the sender relays bad data.
                tracing::debug!(peer = %batch.from, class = %r.rejection.class, reason = %r.rejection, "gossiped transaction rejected");
            }
            Err(SubmitError::Store(e)) => {
                tracing::error!(error = %e, "storage error while accepting a gossiped transaction");
            }
        }
    }
    if malformed > 0 {
        tracing::warn!(peer = %batch.from, count = malformed, "peer gossiped undecodable transactions");
    }
}
