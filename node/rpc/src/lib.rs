//! Settle's JSON-RPC interface: request and response types, error codes and a small
//! blocking client.
//!
//! This crate is what a wallet or a script needs to talk to `settled`; it pulls in neither
//! RocksDB nor tokio. The methods, their parameters and their results are specified in
//! `spec/rpc.md`; the server lives in `settle-node`.

pub mod client;
pub mod error;
pub mod lending;
pub mod types;

pub use client::{Auth, ClientError, RpcClient};
pub use error::{RejectData, Request, Response, RpcError, codes};
pub use lending::*;
pub use types::*;

/// User name of cookie authentication, as in bitcoind.
pub const COOKIE_USER: &str = "__cookie__";
/// Name of the cookie file in the node's data directory.
pub const COOKIE_FILE_NAME: &str = ".cookie";
/// Largest HTTP request body the server accepts. A transaction is at most 400,000 bytes,
/// 800,000 hex characters; the rest leaves room for a small batch and JSON framing.
pub const MAX_REQUEST_BODY_BYTES: usize = 2 * 1024 * 1024;
/// Most requests in one JSON-RPC batch.
pub const MAX_BATCH_REQUESTS: usize = 100;
/// Most addresses or scripts one `listunspent` call may ask about.
pub const MAX_LISTUNSPENT_SCRIPTS: usize = 1_000;
/// Most raw transactions in one `testmempoolaccept` call.
pub const MAX_TESTMEMPOOLACCEPT_TXS: usize = 25;
