//! The node's configuration: `<datadir>/settled.toml`, overridden by command-line flags.

use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Default JSON-RPC port.
pub const DEFAULT_RPC_PORT: u16 = 7390;
/// Default peer-to-peer port (libp2p over TCP).
pub const DEFAULT_P2P_PORT: u16 = 7391;
/// Most bootstrap peers and extra permitted nodes a configuration may list.
pub const MAX_CONFIGURED_PEERS: usize = 256;
/// Most RPC connections a configuration may allow at once.
pub const MAX_RPC_CONNECTIONS: usize = 4_096;
/// Largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// The configuration file `init` writes: every setting at its default, commented.
pub const DEFAULT_CONFIG_TOML: &str = r#"# settled configuration. Command-line flags override these settings.

# JSON-RPC over HTTP, cookie authentication (<datadir>/.cookie).
# rpc_port = 7390
# rpc_bind = "127.0.0.1"
# Peer-to-peer port (libp2p: TCP + noise + yamux).
# p2p_port = 7391
# Log filter (tracing's EnvFilter syntax); the RUST_LOG environment variable wins.
# log = "info"

[rpc]
# A connection is closed when a request's headers (or, on an idle connection, the
# next request) take longer than this.
# header_timeout_ms = 10000
# A request whose body takes longer than this to arrive is answered 408 and closed.
# body_timeout_ms = 30000
# Most connections open at once; more are closed at once (settle_rpc_connections_*
# on /metrics). Keep it well below the process's file descriptor limit.
# max_connections = 256

[mempool]
# max_count = 50000
# max_bytes = 100000000
# Transactions older than this leave the mempool.
# expiry_secs = 1209600

[producer]
# Propose and vote when this node holds a validator key (keys/validator.key);
# false runs it as a follower that never signs.
# enabled = true
# Wait this long after the first pending transaction, to gather more into the block.
# batch_delay_ms = 50
# Start a height (and propose a possibly empty block) after empty_block_interval_ms
# even with no transactions.
# empty_blocks = false
# empty_block_interval_ms = 1000
# Most transactions this node puts in a block it proposes (the chain's limit caps it
# too). Every validator must check a proposal before the propose timeout: a block too
# big to check in time fails its round, and the next, larger one fails too.
# max_block_txs = 5000

[p2p]
# Address to listen on (with p2p_port).
# bind = "127.0.0.1"
# Peers to dial at start and redial with backoff: multiaddrs ending in /p2p/<peer id>.
# bootstrap = []
# (Which nodes may connect is the chain's rule, not a node's: the chain spec's
# validators and [[permitted]] nodes, changed by membership transactions.)

[consensus]
# Tendermint round timeouts; each later round adds the delta.
# timeout_propose_ms = 3000
# timeout_prevote_ms = 1000
# timeout_precommit_ms = 1000
# timeout_delta_ms = 500
# How often a node tells its peers its tip, and how long a sync request may take.
# sync_status_interval_ms = 2000
# sync_request_timeout_ms = 10000

[storage]
# fsync every block before reporting it connected.
# sync_writes = true
"#;

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid settled configuration: {detail}")]
    Parse { path: String, detail: String },
    #[error("{path}: {field} {detail}")]
    Invalid {
        path: String,
        field: &'static str,
        detail: String,
    },
}

/// Limits of the JSON-RPC server's connections (`spec/rpc.md`, "Transport").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpcConfig {
    /// Longest wait for a request's headers, and for the next request on an idle
    /// keep-alive connection.
    pub header_timeout_ms: u64,
    /// Longest wait for a request's whole body.
    pub body_timeout_ms: u64,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            header_timeout_ms: 10_000,
            body_timeout_ms: 30_000,
            max_connections: 256,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolConfig {
    /// Most transactions held.
    pub max_count: usize,
    /// Most bytes (sum of encoded sizes) held.
    pub max_bytes: usize,
    /// Age at which a transaction is dropped.
    pub expiry_secs: u64,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            max_count: 50_000,
            max_bytes: 100_000_000,
            expiry_secs: 14 * 24 * 3600,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProducerConfig {
    pub enabled: bool,
    pub batch_delay_ms: u64,
    pub empty_blocks: bool,
    pub empty_block_interval_ms: u64,
    /// Most transactions in a block this node proposes (below the chain's limit).
    pub max_block_txs: usize,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            enabled: true,
            batch_delay_ms: 50,
            empty_blocks: false,
            empty_block_interval_ms: 1_000,
            max_block_txs: 5_000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct P2pConfig {
    pub bind: IpAddr,
    /// Multiaddrs ending in `/p2p/<peer id>`.
    pub bootstrap: Vec<String>,
    /// Refused when not empty: kept only to explain that the permitted set moved to
    /// the chain (a node alone may not extend it, MEMB_001).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub permitted: Vec<String>,
}

impl Default for P2pConfig {
    fn default() -> Self {
        P2pConfig {
            bind: IpAddr::from([127, 0, 0, 1]),
            bootstrap: Vec::new(),
            permitted: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusConfig {
    pub timeout_propose_ms: u64,
    pub timeout_prevote_ms: u64,
    pub timeout_precommit_ms: u64,
    pub timeout_delta_ms: u64,
    pub sync_status_interval_ms: u64,
    pub sync_request_timeout_ms: u64,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        ConsensusConfig {
            timeout_propose_ms: 3_000,
            timeout_prevote_ms: 1_000,
            timeout_precommit_ms: 1_000,
            timeout_delta_ms: 500,
            sync_status_interval_ms: 2_000,
            sync_request_timeout_ms: 10_000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub sync_writes: bool,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig { sync_writes: true }
    }
}

/// Everything `settled run` is configured with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub rpc_port: u16,
    pub rpc_bind: IpAddr,
    pub p2p_port: u16,
    pub log: String,
    pub rpc: RpcConfig,
    pub mempool: MempoolConfig,
    pub producer: ProducerConfig,
    pub p2p: P2pConfig,
    pub consensus: ConsensusConfig,
    pub storage: StorageConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rpc_port: DEFAULT_RPC_PORT,
            rpc_bind: IpAddr::from([127, 0, 0, 1]),
            p2p_port: DEFAULT_P2P_PORT,
            log: "info".into(),
            rpc: RpcConfig::default(),
            mempool: MempoolConfig::default(),
            producer: ProducerConfig::default(),
            p2p: P2pConfig::default(),
            consensus: ConsensusConfig::default(),
            storage: StorageConfig::default(),
        }
    }
}

impl Config {
    /// Reads the configuration file; a missing file means every default.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        use std::io::Read as _;
        let shown = path.display().to_string();
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => {
                return Err(ConfigError::Io {
                    path: shown,
                    source,
                });
            }
        };
        let mut text = String::new();
        file.take(MAX_CONFIG_BYTES)
            .read_to_string(&mut text)
            .map_err(|source| ConfigError::Io {
                path: shown.clone(),
                source,
            })?;
        Self::parse(&text, &shown)
    }

    pub fn parse(text: &str, path: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            detail: e.to_string(),
        })?;
        config.check(path)?;
        Ok(config)
    }

    /// Checks values the types allow but the node cannot use.
    pub fn check(&self, path: &str) -> Result<(), ConfigError> {
        let invalid = |field, detail: &str| ConfigError::Invalid {
            path: path.into(),
            field,
            detail: detail.into(),
        };
        if self.mempool.max_count == 0 {
            return Err(invalid("mempool.max_count", "must be at least 1"));
        }
        if !(1..=MAX_RPC_CONNECTIONS).contains(&self.rpc.max_connections) {
            return Err(invalid("rpc.max_connections", "must be from 1 to 4096"));
        }
        for (field, value) in [
            ("rpc.header_timeout_ms", self.rpc.header_timeout_ms),
            ("rpc.body_timeout_ms", self.rpc.body_timeout_ms),
        ] {
            if !(100..=600_000).contains(&value) {
                return Err(invalid(field, "must be from 100 to 600000"));
            }
        }
        if self.mempool.max_bytes < settle_assets::limits::MAX_TX_SIZE_BYTES {
            return Err(invalid(
                "mempool.max_bytes",
                "must hold at least one largest transaction (400000 bytes)",
            ));
        }
        if self.producer.batch_delay_ms > 60_000 {
            return Err(invalid("producer.batch_delay_ms", "must be at most 60000"));
        }
        if self.producer.max_block_txs == 0 {
            return Err(invalid("producer.max_block_txs", "must be at least 1"));
        }
        if self.producer.empty_block_interval_ms < 10 {
            return Err(invalid(
                "producer.empty_block_interval_ms",
                "must be at least 10",
            ));
        }
        if self.p2p.bootstrap.len() > MAX_CONFIGURED_PEERS {
            return Err(invalid("p2p.bootstrap", "lists more than 256 peers"));
        }
        if !self.p2p.permitted.is_empty() {
            return Err(invalid(
                "p2p.permitted",
                "is no longer read: which nodes may connect is the chain's rule (the chain \
                 spec's validators and [[permitted]] nodes, changed by membership \
                 transactions; see `settled membership`)",
            ));
        }
        for addr in &self.p2p.bootstrap {
            let parsed: Result<settle_consensus::Multiaddr, _> = addr.parse();
            let has_peer_id = parsed.as_ref().is_ok_and(|a| {
                a.iter()
                    .any(|p| matches!(p, settle_consensus::multiaddr::Protocol::P2p(_)))
            });
            if !has_peer_id {
                return Err(invalid(
                    "p2p.bootstrap",
                    &format!("{addr:?} is not a multiaddr ending in /p2p/<peer id>"),
                ));
            }
        }
        let c = &self.consensus;
        for (field, value, min, max) in [
            (
                "consensus.timeout_propose_ms",
                c.timeout_propose_ms,
                10,
                600_000,
            ),
            (
                "consensus.timeout_prevote_ms",
                c.timeout_prevote_ms,
                10,
                600_000,
            ),
            (
                "consensus.timeout_precommit_ms",
                c.timeout_precommit_ms,
                10,
                600_000,
            ),
            ("consensus.timeout_delta_ms", c.timeout_delta_ms, 0, 600_000),
            (
                "consensus.sync_status_interval_ms",
                c.sync_status_interval_ms,
                10,
                600_000,
            ),
            (
                "consensus.sync_request_timeout_ms",
                c.sync_request_timeout_ms,
                10,
                600_000,
            ),
        ] {
            if !(min..=max).contains(&value) {
                return Err(invalid(field, &format!("must be from {min} to {max}")));
            }
        }
        Ok(())
    }

    /// The consensus timing these settings describe.
    pub fn timing(&self) -> settle_consensus::Timing {
        let c = &self.consensus;
        let ms = std::time::Duration::from_millis;
        let propose = ms(c.timeout_propose_ms);
        let step = ms(c.timeout_prevote_ms.max(c.timeout_precommit_ms));
        settle_consensus::Timing {
            timeouts: settle_consensus::LinearTimeouts {
                propose,
                propose_delta: ms(c.timeout_delta_ms),
                prevote: ms(c.timeout_prevote_ms),
                prevote_delta: ms(c.timeout_delta_ms),
                precommit: ms(c.timeout_precommit_ms),
                precommit_delta: ms(c.timeout_delta_ms),
                rebroadcast: propose + step + step,
                max_timeout: (propose * 10).max(ms(60_000)),
            },
            // Pacing is the node's (it starts a height when it has transactions).
            block_interval: None,
            sync_status_interval: ms(c.sync_status_interval_ms),
            sync_request_timeout: ms(c.sync_request_timeout_ms),
        }
    }
}

/// An x-only public key from 64 hex characters.
pub fn parse_xonly(hex_key: &str) -> Option<[u8; 32]> {
    let mut key = [0u8; 32];
    hex::decode_to_slice(hex_key, &mut key).ok()?;
    secp256k1::XOnlyPublicKey::from_byte_array(key).ok()?;
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_file_parses_to_the_defaults() {
        let c = Config::parse(DEFAULT_CONFIG_TOML, "settled.toml").expect("parses");
        assert_eq!(c, Config::default());
    }

    #[test]
    fn unknown_settings_and_bad_values_are_named() {
        let err = Config::parse("rpc_prot = 1\n", "x.toml").expect_err("typo");
        assert!(err.to_string().contains("rpc_prot"), "{err}");
        let err = Config::parse("[mempool]\nmax_count = 0\n", "x.toml").expect_err("zero");
        assert!(err.to_string().contains("mempool.max_count"), "{err}");
        let err = Config::parse("[producer]\nmax_block_txs = 0\n", "x.toml").expect_err("zero");
        assert!(err.to_string().contains("producer.max_block_txs"), "{err}");
        let c = Config::parse("[producer]\nmax_block_txs = 2000\n", "x.toml").expect("valid");
        assert_eq!(c.producer.max_block_txs, 2_000);
    }
}
