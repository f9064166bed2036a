//! `settled`, Settle's node daemon, as a library: the RocksDB chainstate, the mempool,
//! the chain's side of consensus (`chain_app`), the network and transaction gossip
//! (`p2p`), the JSON-RPC server and the daemon wiring. The binary in `main.rs` is a thin
//! command-line front end.

pub mod chain_app;
pub mod config;
pub mod daemon;
pub mod datadir;
pub mod membership;
pub mod membership_cli;
pub mod mempool;
pub mod mempool_file;
pub mod metrics;
pub mod node;
pub mod p2p;
pub mod rpc;
pub mod rpc_lending;
pub mod script_cache;
pub mod store;
#[cfg(test)]
mod test_support;
pub mod verify;
