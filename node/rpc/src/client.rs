//! A small blocking JSON-RPC client for `settled`.
//!
//! ```no_run
//! use settle_rpc::{Auth, RpcClient};
//! let client = RpcClient::new("http://127.0.0.1:18443", Auth::cookie_in("/tmp/node"));
//! let info = client.get_blockchain_info()?;
//! println!("height {}", info.blocks);
//! # Ok::<(), settle_rpc::ClientError>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use settle_assets::{AssetId, BlockHash, OutPoint, Transaction, Txid, serialize};

use crate::error::{Request, Response, RpcError};
use crate::types::*;
use crate::{COOKIE_FILE_NAME, COOKIE_USER};

/// Default time limit for one call: generous, since `verifychain` reads the whole chain.
pub const DEFAULT_TIMEOUT_MS: u64 = 120_000;
/// Time limit for establishing the TCP connection.
pub const CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Longest a kept-alive connection waits in the pool for reuse: well below the
/// server's idle timeout (`rpc.header_timeout_ms`, 10 s by default), so the client
/// does not send into a connection the server is closing.
const MAX_POOLED_IDLE_MS: u64 = 4_000;
/// Largest response body the client reads.
pub const MAX_RESPONSE_BYTES: u64 = 256 * 1024 * 1024;
/// Longest cookie file the client reads.
const MAX_COOKIE_BYTES: u64 = 1024;

/// How the client proves it may talk to the node.
#[derive(Clone, Debug)]
pub enum Auth {
    /// Read `__cookie__:<password>` from this cookie file before every call, so a restarted
    /// node's new cookie is picked up.
    CookieFile(PathBuf),
    /// A fixed user name and password.
    UserPass { user: String, password: String },
}

impl Auth {
    /// The cookie file in a node's data directory.
    pub fn cookie_in(datadir: impl AsRef<Path>) -> Auth {
        Auth::CookieFile(datadir.as_ref().join(COOKIE_FILE_NAME))
    }

    fn header(&self) -> Result<String, ClientError> {
        let credentials = match self {
            Auth::CookieFile(path) => read_cookie(path)?,
            Auth::UserPass { user, password } => format!("{user}:{password}"),
        };
        Ok(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        ))
    }
}

fn read_cookie(path: &Path) -> Result<String, ClientError> {
    use std::io::Read as _;
    let unreadable = |detail: String| ClientError::Cookie {
        path: path.to_path_buf(),
        detail,
    };
    let file = std::fs::File::open(path).map_err(|e| unreadable(e.to_string()))?;
    let mut text = String::new();
    file.take(MAX_COOKIE_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| unreadable(e.to_string()))?;
    let text = text.trim();
    match text.split_once(':') {
        Some((user, password)) if user == COOKIE_USER && !password.is_empty() => {
            Ok(text.to_owned())
        }
        _ => Err(unreadable(format!(
            "expected {COOKIE_USER}:<password> in the cookie file"
        ))),
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach the node at {url}: {detail} (is settled running, on this port?)")]
    Unreachable { url: String, detail: String },
    #[error("the node at {url} refused the credentials (wrong cookie or password)")]
    BadCredentials { url: String },
    #[error("cannot read the cookie file {}: {detail} (is settled running with that data directory?)", path.display())]
    Cookie { path: PathBuf, detail: String },
    #[error("the node at {url} timed out after {timeout_ms} ms")]
    Timeout { url: String, timeout_ms: u64 },
    #[error("http status {status} from {url}: {body}")]
    Http {
        url: String,
        status: u16,
        body: String,
    },
    #[error("invalid response from {url}: {detail}")]
    InvalidResponse { url: String, detail: String },
    #[error("{0}")]
    Rpc(RpcError),
}

impl ClientError {
    /// The JSON-RPC error, if the node answered with one.
    pub fn rpc(&self) -> Option<&RpcError> {
        match self {
            ClientError::Rpc(e) => Some(e),
            _ => None,
        }
    }
}

/// A blocking JSON-RPC client. Cheap to clone; clones share the connection pool.
#[derive(Clone, Debug)]
pub struct RpcClient {
    url: String,
    auth: Auth,
    timeout_ms: u64,
    agent: ureq::Agent,
    next_id: std::sync::Arc<AtomicU64>,
}

impl RpcClient {
    /// A client for the node at `url` (for example `http://127.0.0.1:18443`).
    pub fn new(url: impl Into<String>, auth: Auth) -> Self {
        Self::with_timeout(url, auth, DEFAULT_TIMEOUT_MS)
    }

    /// A client whose calls give up after `timeout_ms`.
    pub fn with_timeout(url: impl Into<String>, auth: Auth, timeout_ms: u64) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_millis(timeout_ms)))
            .timeout_connect(Some(Duration::from_millis(
                CONNECT_TIMEOUT_MS.min(timeout_ms),
            )))
            .max_idle_age(Duration::from_millis(MAX_POOLED_IDLE_MS))
            .build()
            .new_agent();
        RpcClient {
            url: url.into(),
            auth,
            timeout_ms,
            agent,
            next_id: std::sync::Arc::new(AtomicU64::new(1)),
        }
    }

    /// A client for a local node on `port`.
    pub fn local(port: u16, auth: Auth) -> Self {
        Self::new(format!("http://127.0.0.1:{port}"), auth)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Sends a raw body and returns the HTTP status and response body. For tests of the
    /// server's handling of malformed requests.
    pub fn post_raw(&self, body: impl Into<Vec<u8>>) -> Result<(u16, String), ClientError> {
        let auth = self.auth.header()?;
        let response = self
            .agent
            .post(&self.url)
            .header("Authorization", &auth)
            .content_type("application/json")
            .send(body.into())
            .map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .with_config()
            .limit(MAX_RESPONSE_BYTES)
            .read_to_string()
            .map_err(|e| self.transport_error(e))?;
        Ok((status, body))
    }

    /// Calls `method` with `params` (an array or an object) and decodes the result.
    pub fn call<T: DeserializeOwned>(&self, method: &str, params: Value) -> Result<T, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let request = Request {
            jsonrpc: "2.0".into(),
            method: method.into(),
            params,
            id: Value::from(id),
        };
        let body = serde_json::to_vec(&request).map_err(|e| self.invalid(e.to_string()))?;
        let (status, text) = self.post_raw(body)?;
        if status == 401 || status == 403 {
            return Err(ClientError::BadCredentials {
                url: self.url.clone(),
            });
        }
        let response: Response = match serde_json::from_str(&text) {
            Ok(r) => r,
            Err(_) if status != 200 => {
                return Err(ClientError::Http {
                    url: self.url.clone(),
                    status,
                    body: text.chars().take(500).collect(),
                });
            }
            Err(e) => return Err(self.invalid(format!("not a json-rpc response: {e}"))),
        };
        if let Some(error) = response.error {
            return Err(ClientError::Rpc(error));
        }
        let result = response.result.unwrap_or(Value::Null);
        serde_json::from_value(result)
            .map_err(|e| self.invalid(format!("unexpected result for {method}: {e}")))
    }

    fn invalid(&self, detail: String) -> ClientError {
        ClientError::InvalidResponse {
            url: self.url.clone(),
            detail,
        }
    }

    fn transport_error(&self, e: ureq::Error) -> ClientError {
        match e {
            ureq::Error::Timeout(_) => ClientError::Timeout {
                url: self.url.clone(),
                timeout_ms: self.timeout_ms,
            },
            ureq::Error::Io(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::BadUri(_) => ClientError::Unreachable {
                url: self.url.clone(),
                detail: e.to_string(),
            },
            other => self.invalid(other.to_string()),
        }
    }

    // Typed wrappers, one per method of `spec/rpc.md`.

    pub fn get_blockchain_info(&self) -> Result<BlockchainInfo, ClientError> {
        self.call("getblockchaininfo", json!([]))
    }

    pub fn get_block_count(&self) -> Result<u64, ClientError> {
        self.call("getblockcount", json!([]))
    }

    pub fn get_best_block_hash(&self) -> Result<BlockHash, ClientError> {
        self.call("getbestblockhash", json!([]))
    }

    pub fn get_block_hash(&self, height: u64) -> Result<BlockHash, ClientError> {
        self.call("getblockhash", json!([height]))
    }

    /// The block with its transactions decoded (verbosity 2).
    pub fn get_block(&self, hash: &BlockHash) -> Result<BlockInfo, ClientError> {
        self.call("getblock", json!([hash, 2]))
    }

    /// The encoded block in hex (verbosity 0).
    pub fn get_block_hex(&self, hash: &BlockHash) -> Result<String, ClientError> {
        self.call("getblock", json!([hash, 0]))
    }

    pub fn get_block_header(&self, hash: &BlockHash) -> Result<BlockHeaderInfo, ClientError> {
        self.call("getblockheader", json!([hash, true]))
    }

    pub fn decode_raw_transaction(&self, tx: &Transaction) -> Result<TxInfo, ClientError> {
        self.call("decoderawtransaction", json!([hex::encode(serialize(tx))]))
    }

    pub fn get_raw_transaction(&self, txid: &Txid) -> Result<RawTransactionInfo, ClientError> {
        self.call("getrawtransaction", json!([txid, true]))
    }

    /// Submits a transaction; returns its txid once it is in the mempool.
    pub fn send_raw_transaction(&self, tx: &Transaction) -> Result<Txid, ClientError> {
        self.send_raw_transaction_hex(&hex::encode(serialize(tx)))
    }

    pub fn send_raw_transaction_hex(&self, hex: &str) -> Result<Txid, ClientError> {
        self.call("sendrawtransaction", json!([hex]))
    }

    pub fn test_mempool_accept(
        &self,
        txs: &[Transaction],
    ) -> Result<Vec<MempoolAcceptResult>, ClientError> {
        let hexes: Vec<String> = txs.iter().map(|t| hex::encode(serialize(t))).collect();
        self.call("testmempoolaccept", json!([hexes]))
    }

    pub fn get_mempool_info(&self) -> Result<MempoolInfo, ClientError> {
        self.call("getmempoolinfo", json!([]))
    }

    pub fn get_raw_mempool(&self) -> Result<Vec<Txid>, ClientError> {
        self.call("getrawmempool", json!([false]))
    }

    pub fn get_raw_mempool_verbose(&self) -> Result<Vec<MempoolEntryInfo>, ClientError> {
        self.call("getrawmempool", json!([true]))
    }

    /// The unspent coin at `outpoint` (`None` if spent or unknown); with
    /// `include_mempool`, a coin a waiting transaction spends counts as spent and a
    /// waiting transaction's output as unspent.
    pub fn get_tx_out(
        &self,
        outpoint: &OutPoint,
        include_mempool: bool,
    ) -> Result<Option<UnspentInfo>, ClientError> {
        self.call(
            "gettxout",
            json!([outpoint.txid, outpoint.vout, include_mempool]),
        )
    }

    /// Confirmed coins paying any of `addresses` (bech32m).
    pub fn list_unspent(&self, addresses: &[String]) -> Result<Vec<UnspentInfo>, ClientError> {
        self.call("listunspent", json!({ "addresses": addresses }))
    }

    /// Like [`RpcClient::list_unspent`], also listing unconfirmed mempool outputs.
    pub fn list_unspent_with_mempool(
        &self,
        addresses: &[String],
    ) -> Result<Vec<UnspentInfo>, ClientError> {
        self.call(
            "listunspent",
            json!({ "addresses": addresses, "include_mempool": true }),
        )
    }

    pub fn get_asset_info(&self, asset: &AssetId) -> Result<AssetInfo, ClientError> {
        self.call("getassetinfo", json!([asset]))
    }

    pub fn list_assets(&self) -> Result<Vec<AssetInfo>, ClientError> {
        self.call("listassets", json!([]))
    }

    pub fn get_chain_spec(&self) -> Result<ChainSpecInfo, ClientError> {
        self.call("getchainspec", json!([]))
    }

    pub fn help(&self) -> Result<Vec<String>, ClientError> {
        self.call("help", json!([]))
    }

    pub fn verify_chain(&self) -> Result<VerifyChainResult, ClientError> {
        self.call("verifychain", json!([]))
    }

    pub fn stop(&self) -> Result<String, ClientError> {
        self.call("stop", json!([]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_node_is_named() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("port");
        let client = RpcClient::with_timeout(
            format!("http://127.0.0.1:{port}"),
            Auth::UserPass {
                user: "u".into(),
                password: "p".into(),
            },
            2_000,
        );
        let err = client.get_block_count().expect_err("nobody listens");
        assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
        assert!(err.to_string().contains(&port.to_string()), "{err}");
    }

    #[test]
    fn a_missing_or_malformed_cookie_is_reported_with_its_path() {
        let dir = std::env::temp_dir().join(format!("settle-rpc-cookie-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let client = RpcClient::new("http://127.0.0.1:1", Auth::cookie_in(&dir));
        let err = client.get_block_count().expect_err("no cookie");
        assert!(matches!(err, ClientError::Cookie { .. }), "{err:?}");
        assert!(err.to_string().contains(".cookie"), "{err}");
        std::fs::write(dir.join(COOKIE_FILE_NAME), "nobody:").expect("write");
        let err = client.get_block_count().expect_err("bad cookie");
        assert!(err.to_string().contains("__cookie__"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
