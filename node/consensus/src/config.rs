//! Engine configuration: Settle's choices for Malachite's consensus, network and
//! value-sync settings.

use std::time::Duration;

use malachitebft_app_channel::app::config::{
    ConsensusConfig, DiscoveryConfig, NodeConfig, P2pConfig, ProtocolNames, PubSubProtocol,
    ValuePayload, ValueSyncConfig,
};
use malachitebft_app_channel::app::net::Multiaddr;
use malachitebft_core_types::LinearTimeouts;

/// Protocol names advertised over libp2p, so Settle nodes never speak to a Malachite
/// network of another application by accident.
pub fn protocol_names() -> ProtocolNames {
    ProtocolNames {
        consensus: "/settle/consensus/v1".to_string(),
        discovery_kad: "/settle/discovery/kad/v1".to_string(),
        discovery_regres: "/settle/discovery/reqres/v1".to_string(),
        sync: "/settle/sync/v1".to_string(),
        validator_proof: "/settle/validator-proof/v1".to_string(),
    }
}

/// Largest gossip message (one vote, proposal or proposal part), in bytes.
pub const PUBSUB_MAX_SIZE_BYTES: u64 = 4 * 1024 * 1024;
/// Largest request-response message (one sync response), in bytes.
pub const RPC_MAX_SIZE_BYTES: u64 = 16 * 1024 * 1024;

/// Timing of consensus and sync. The defaults suit a network over a LAN or WAN;
/// tests on loopback shorten them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Tendermint round timeouts.
    pub timeouts: LinearTimeouts,
    /// Minimum time from the start of a height to its finalization, which paces
    /// block production (`None`: next height as soon as the last is committed).
    pub block_interval: Option<Duration>,
    /// How often a node tells its peers its tip, so laggards notice they are behind.
    pub sync_status_interval: Duration,
    /// How long a sync request may take before another peer is asked.
    pub sync_request_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            timeouts: LinearTimeouts::default(),
            block_interval: Some(Duration::from_secs(1)),
            sync_status_interval: Duration::from_secs(2),
            sync_request_timeout: Duration::from_secs(10),
        }
    }
}

impl Timing {
    /// Short timeouts for in-process tests on loopback.
    pub fn fast_for_tests() -> Self {
        let propose = Duration::from_millis(1_000);
        let step = Duration::from_millis(300);
        let delta = Duration::from_millis(100);
        Timing {
            timeouts: LinearTimeouts {
                propose,
                propose_delta: delta,
                prevote: step,
                prevote_delta: delta,
                precommit: step,
                precommit_delta: delta,
                rebroadcast: propose + step + step,
                max_timeout: Duration::from_secs(10),
            },
            block_interval: None,
            sync_status_interval: Duration::from_millis(500),
            sync_request_timeout: Duration::from_secs(2),
        }
    }
}

/// What Malachite's builder reads through [`NodeConfig`].
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub moniker: String,
    pub consensus: ConsensusConfig,
    pub value_sync: ValueSyncConfig,
}

impl EngineConfig {
    /// Settle's engine settings: proposal parts carry the block (so every validator
    /// sees and validates it before voting), gossipsub without discovery, and, when
    /// `persistent_peers_only`, only the listed peers are accepted.
    pub fn new(
        moniker: String,
        listen_addr: Multiaddr,
        persistent_peers: Vec<Multiaddr>,
        persistent_peers_only: bool,
        timing: &Timing,
    ) -> Self {
        let p2p = P2pConfig {
            listen_addr,
            persistent_peers,
            persistent_peers_only,
            discovery: DiscoveryConfig {
                enabled: false,
                ..DiscoveryConfig::default()
            },
            protocol: PubSubProtocol::default(),
            pubsub_max_size: byte_size(PUBSUB_MAX_SIZE_BYTES),
            rpc_max_size: byte_size(RPC_MAX_SIZE_BYTES),
            protocol_names: protocol_names(),
            ..P2pConfig::default()
        };
        let consensus = ConsensusConfig {
            enabled: true,
            p2p,
            value_payload: ValuePayload::ProposalAndParts,
            ..ConsensusConfig::default()
        };
        let value_sync = ValueSyncConfig {
            enabled: true,
            status_update_interval: timing.sync_status_interval,
            request_timeout: timing.sync_request_timeout,
            max_response_size: byte_size(RPC_MAX_SIZE_BYTES),
            ..ValueSyncConfig::default()
        };
        EngineConfig {
            moniker,
            consensus,
            value_sync,
        }
    }
}

fn byte_size(bytes: u64) -> bytesize::ByteSize {
    bytesize::ByteSize::b(bytes)
}

impl NodeConfig for EngineConfig {
    fn moniker(&self) -> &str {
        &self.moniker
    }

    fn consensus(&self) -> &ConsensusConfig {
        &self.consensus
    }

    fn consensus_mut(&mut self) -> &mut ConsensusConfig {
        &mut self.consensus
    }

    fn value_sync(&self) -> &ValueSyncConfig {
        &self.value_sync
    }

    fn value_sync_mut(&mut self) -> &mut ValueSyncConfig {
        &mut self.value_sync
    }
}
