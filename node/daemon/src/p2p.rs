//! Starting consensus and the network for the daemon, and the two transaction-gossip
//! tasks: publishing transactions submitted here, and feeding transactions peers
//! gossip into the mempool.

use std::sync::Arc;
use std::time::Duration;

use settle_assets::transaction::Transaction;
use settle_chain::reject::{RejectClass, Rejection};
use settle_consensus::{
    BAN_DURATION_MS, GossipedTxs, Multiaddr, NodeError, NodeHandle, NodeParams, NodeRole, Offence,
    PrivateKey, start_node,
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
/// How long the relay waits after a transaction for more to share its gossip message.
/// Every message is signed by the sender and checked by each receiver, so under load
/// fewer, fuller messages save much of the network's CPU; the wait is small beside the
/// proposer's own batching delay (`producer.batch_delay_ms`).
pub const RELAY_LINGER_MS: u64 = 20;

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
    // The permitted set is the chain's: the validators and permitted nodes in force
    // for the next block. `crate::membership::follow` keeps it current afterwards.
    let next = node
        .tip()
        .map_err(|e| P2pError::Config(e.to_string()))?
        .height
        + 1;
    let permitted = node
        .membership_for(next)
        .map_err(|e| P2pError::Config(e.to_string()))?
        .node_keys();
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
        ban_duration: Duration::from_millis(BAN_DURATION_MS),
    };
    let app = ChainApp::new(Arc::clone(node), proposer)?;
    let handle = start_node(params, app).await?;
    tracing::info!(
        peer_id = %handle.peer_id(),
        role = ?role,
        p2p_port = config.p2p_port,
        "consensus started"
    );
    node.metrics.set_peer_guard(handle.peer_guard());
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
        let linger_until = tokio::time::Instant::now() + Duration::from_millis(RELAY_LINGER_MS);
        while batch.len() < MAX_RELAY_BATCH_TXS {
            match tokio::time::timeout_at(linger_until, rx.recv()).await {
                Ok(Some(tx)) => batch.push(settle_assets::serialize(&*tx)),
                // Closed (publish what is here, the next recv ends the loop) or time.
                Ok(None) | Err(_) => break,
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

/// Consensus rejections that depend on the chain at the moment the transaction
/// arrives, so that an honest peer may have relayed the transaction while it was
/// still valid: it expired on the way, a block made its new asset a duplicate or its
/// reissuance overflow the supply, or a membership change's activation height came
/// while it travelled.
pub const EXCUSED_CONSENSUS_CODES: &[&str] = &[
    "expired",
    "duplicate-asset",
    "supply-overflow",
    "membership-activation",
];

/// Whether the author of a gossiped transaction refused with `rejection` is at fault
/// (`spec/consensus.md`, section 9a): only consensus rules that the transaction
/// breaks whatever the timing. Missing inputs, conflicts, premature and policy
/// refusals are normal under gossip races and local limits.
pub fn punishable(rejection: &Rejection) -> bool {
    rejection.class == RejectClass::Consensus && !EXCUSED_CONSENSUS_CODES.contains(&rejection.code)
}

fn accept_gossiped(node: &Node, batch: GossipedTxs) {
    let author = settle_consensus::node::gossip_author(batch.from, batch.origin);
    let mut malformed = 0usize;
    let mut invalid = 0usize;
    for bytes in batch.txs {
        let tx: Transaction = match settle_assets::deserialize(&bytes) {
            Ok(tx) => tx,
            Err(e) => {
                malformed += 1;
                tracing::debug!(peer = %author, error = %e, "undecodable gossiped transaction");
                continue;
            }
        };
        match node.submit_gossiped(tx) {
            Ok(Accepted::New(txid)) => {
                tracing::debug!(%txid, peer = %author, "gossiped transaction accepted")
            }
            Ok(Accepted::AlreadyKnown(_)) | Err(SubmitError::AlreadyInChain(_)) => {}
            Err(SubmitError::Rejected(r)) => {
                // Conflicts and premature transactions are normal under gossip;
                // consensus-invalid ones mean the author sends bad data.
                tracing::debug!(peer = %author, class = %r.rejection.class, reason = %r.rejection, "gossiped transaction rejected");
                if punishable(&r.rejection) {
                    invalid += 1;
                }
            }
            Err(SubmitError::Store(e)) => {
                tracing::error!(error = %e, "storage error while accepting a gossiped transaction");
            }
            // The node said so when its disk filled; the peer did nothing wrong.
            Err(SubmitError::StorageFull(_)) => {}
        }
    }
    if malformed + invalid > 0 {
        tracing::warn!(peer = %author, undecodable = malformed, invalid, "peer gossiped invalid transactions");
        if let Some(handle) = node.consensus.get() {
            // One report per batch: the first offence bans, the rest add nothing.
            handle.report_misbehaviour(author, Offence::InvalidTransaction);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_consensus_rejections_that_no_race_explains_are_punished() {
        assert!(punishable(&Rejection::consensus(
            "script-failed",
            "bad signature"
        )));
        assert!(punishable(&Rejection::consensus("unbalanced", "inflation")));
        assert!(!punishable(&Rejection::consensus(
            "expired",
            "expired at 9"
        )));
        assert!(!punishable(&Rejection::consensus("duplicate-asset", "")));
        assert!(punishable(&Rejection::consensus("unauthorised-issuer", "")));
        assert!(!punishable(&Rejection::missing_inputs(
            "missing-inputs",
            ""
        )));
        assert!(!punishable(&Rejection::conflict("double-spend", "")));
        assert!(!punishable(&Rejection::premature("non-final", "")));
        assert!(!punishable(&Rejection::policy("block-full", "")));
        // Every consensus-class code but the excused ones is punished, and every
        // excused code is a consensus code that exists.
        for (code, class) in settle_chain::reject::CODES {
            let r = Rejection::new(*class, code, "");
            assert_eq!(
                punishable(&r),
                *class == RejectClass::Consensus && !EXCUSED_CONSENSUS_CODES.contains(code),
                "{code}"
            );
        }
        for code in EXCUSED_CONSENSUS_CODES {
            assert!(
                settle_chain::reject::CODES.contains(&(*code, RejectClass::Consensus)),
                "{code}"
            );
        }
    }
}
