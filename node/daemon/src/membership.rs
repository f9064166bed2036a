//! Keeps the network's permitted peers equal to the chain's membership: when a
//! membership change takes effect, newly permitted nodes are admitted and nodes whose
//! permission was withdrawn are disconnected and refused, without a restart
//! (Alastria's MEMB_002). The consensus engine asks the chain for the validator set of
//! every height itself (`ChainApp::validator_set`).

use std::collections::HashSet;
use std::sync::Arc;

use settle_chain::Membership;
use settle_consensus::NodeHandle;
use settle_consensus::identity::peer_id_of;
use settle_consensus::multiaddr::{Multiaddr, Protocol};

use crate::daemon::Shutdown;
use crate::node::Node;

/// The peer id an address names (`.../p2p/<id>`), if any.
pub fn named_peer(addr: &Multiaddr) -> Option<settle_consensus::multiaddr::PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

/// Whether the node whose libp2p identity is `peer` may connect under `membership`.
pub fn permits_peer(membership: &Membership, peer: &settle_consensus::multiaddr::PeerId) -> bool {
    membership
        .node_keys()
        .iter()
        .any(|k| peer_id_of(k).is_ok_and(|id| id == *peer))
}

/// Brings the engine's permitted peers in line with `membership`: every address of a
/// peer no longer permitted is removed (which disconnects it), and every permitted
/// node not listed yet is added by identity (so it may dial in).
pub async fn reconcile(handle: &NodeHandle, membership: &Membership) -> Result<(), String> {
    let own = handle.peer_id();
    let wanted: HashSet<_> = membership
        .node_keys()
        .iter()
        .filter_map(|k| peer_id_of(k).ok())
        .filter(|id| *id != own)
        .collect();
    let summary = handle.network_summary().await.map_err(|e| e.to_string())?;
    let mut listed = HashSet::new();
    for text in &summary.persistent_peers {
        let Ok(addr) = text.parse::<Multiaddr>() else {
            continue;
        };
        let Some(id) = named_peer(&addr) else {
            continue;
        };
        if wanted.contains(&id) {
            listed.insert(id);
        } else {
            tracing::info!(peer = %id, "permission withdrawn by membership change: disconnecting");
            handle.remove_peer(addr).await.map_err(|e| e.to_string())?;
        }
    }
    for id in wanted.difference(&listed) {
        tracing::info!(peer = %id, "permitted by membership change");
        let addr = Multiaddr::empty().with(Protocol::P2p(*id));
        handle.add_peer(addr).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Reconciles once now and again whenever the membership in force changes, until
/// shutdown.
pub async fn follow(node: Arc<Node>, handle: Arc<NodeHandle>, shutdown: Shutdown) {
    let mut rx = node.watch_membership();
    loop {
        let membership = rx.borrow_and_update().clone();
        if let Err(e) = reconcile(&handle, &membership).await {
            tracing::warn!(error = %e, "could not apply the membership to the network");
        }
        tokio::select! {
            changed = rx.changed() => if changed.is_err() { return },
            () = shutdown.wait() => return,
        }
    }
}
