//! The running daemon: the HTTP JSON-RPC server (axum on tokio), consensus and the
//! network (`p2p.rs`), `/metrics`, and clean shutdown on SIGINT, SIGTERM or `stop`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::Value;
use settle_rpc::{
    MAX_BATCH_REQUESTS, MAX_REQUEST_BODY_BYTES, Request, Response as RpcResponse, RpcError, codes,
};
use tokio::sync::{Notify, watch};

use crate::datadir::Cookie;
use crate::node::Node;
use crate::rpc::{Effect, call};

/// How often the mempool's age limit is enforced.
const MEMPOOL_EXPIRY_INTERVAL_MS: u64 = 10_000;

/// Most bytes of an oversize request body read (and thrown away) before answering, so the
/// client sees the error rather than a connection reset. Larger announced bodies are
/// refused without reading.
const MAX_DRAIN_BYTES: usize = 4 * MAX_REQUEST_BODY_BYTES;

/// Most `verifychain` calls in one batch: each replays the whole chain.
const MAX_VERIFYCHAIN_PER_BATCH: usize = 1;
/// Pause after a failed `accept` (out of file descriptors, say), so the loop does not spin.
const ACCEPT_BACKOFF_MS: u64 = 100;
/// How long open RPC connections may take to finish their answers at shutdown.
const RPC_SHUTDOWN_GRACE_MS: u64 = 5_000;

enum BodyError {
    TooLarge,
    TimedOut,
    Read(axum::Error),
}

/// Reads a request body of at most `MAX_REQUEST_BODY_BYTES` within `timeout`. A larger
/// one is drained up to `MAX_DRAIN_BYTES` without being kept.
async fn read_body(mut body: Body, timeout: Duration) -> Result<Vec<u8>, BodyError> {
    use http_body_util::BodyExt as _;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut kept = Vec::new();
    let mut total = 0usize;
    loop {
        let Ok(next) = tokio::time::timeout_at(deadline, body.frame()).await else {
            return Err(BodyError::TimedOut);
        };
        let Some(frame) = next else {
            break;
        };
        let frame = frame.map_err(BodyError::Read)?;
        if let Ok(data) = frame.into_data() {
            total = total.saturating_add(data.len());
            if total > MAX_DRAIN_BYTES {
                return Err(BodyError::TooLarge);
            }
            if total <= MAX_REQUEST_BODY_BYTES {
                kept.extend_from_slice(&data);
            }
        }
    }
    if total > MAX_REQUEST_BODY_BYTES {
        return Err(BodyError::TooLarge);
    }
    Ok(kept)
}

/// Asks every task to stop, once.
#[derive(Clone, Debug)]
pub struct Shutdown {
    tx: watch::Sender<bool>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Shutdown {
            tx: watch::channel(false).0,
        }
    }

    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once shutdown has been asked for.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // Err means the sender is gone, which only happens at exit: stop as well.
        let _ = rx.wait_for(|v| *v).await;
    }
}

/// State shared by the HTTP handlers.
#[derive(Clone, Debug)]
struct AppState {
    node: Arc<Node>,
    /// The exact `Authorization` header value that the cookie grants.
    expected_auth: Arc<str>,
    shutdown: Shutdown,
    tx_arrived: Arc<Notify>,
}

fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

fn error_response(status: StatusCode, error: RpcError) -> Response {
    json_response(status, &RpcResponse::err(Value::Null, error))
}

/// Compares without an early exit, so response time does not leak how much of a
/// guessed password was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn handle_rpc(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let authorised = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| constant_time_eq(v.as_bytes(), state.expected_auth.as_bytes()));
    if !authorised {
        let mut response = error_response(
            StatusCode::UNAUTHORIZED,
            RpcError::new(
                codes::INVALID_REQUEST,
                "authentication required: HTTP Basic with the credentials in <datadir>/.cookie",
            ),
        );
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"settled\""),
        );
        return response;
    }
    let too_large = || {
        error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            RpcError::new(
                codes::REQUEST_TOO_LARGE,
                format!("request body exceeds the limit of {MAX_REQUEST_BODY_BYTES} bytes"),
            ),
        )
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_DRAIN_BYTES as u64) {
        return too_large();
    }
    let body_timeout = Duration::from_millis(state.node.config.rpc.body_timeout_ms);
    let bytes = match read_body(body, body_timeout).await {
        Ok(b) => b,
        Err(BodyError::TooLarge) => return too_large(),
        Err(BodyError::TimedOut) => {
            crate::metrics::Metrics::inc(&state.node.metrics.rpc_connections_timed_out, 1);
            return error_response(
                StatusCode::REQUEST_TIMEOUT,
                RpcError::invalid_request(format!(
                    "the request body did not arrive within {} ms",
                    body_timeout.as_millis()
                )),
            );
        }
        Err(BodyError::Read(e)) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                RpcError::invalid_request(format!("cannot read the request body: {e}")),
            );
        }
    };
    crate::metrics::Metrics::inc(&state.node.metrics.rpc_requests, 1);
    let parsed: Value = match settle_rpc::error::parse_json_strict(&bytes) {
        Ok(v) => v,
        // Valid JSON that holds a key twice: refused, never guessed at.
        Err(e) if e.is_data() => {
            return error_response(StatusCode::OK, RpcError::invalid_request(e));
        }
        Err(e) => return error_response(StatusCode::OK, RpcError::parse_error(e)),
    };
    match parsed {
        Value::Array(items) => {
            if items.is_empty() || items.len() > MAX_BATCH_REQUESTS {
                return error_response(
                    StatusCode::OK,
                    RpcError::invalid_request(format!(
                        "a batch must hold 1 to {MAX_BATCH_REQUESTS} requests, got {}",
                        items.len()
                    )),
                );
            }
            let mut out = Vec::with_capacity(items.len());
            let mut verifychains = 0;
            for item in items {
                if item.get("method").and_then(Value::as_str) == Some("verifychain") {
                    verifychains += 1;
                    if verifychains > MAX_VERIFYCHAIN_PER_BATCH {
                        let id = item.get("id").cloned().unwrap_or(Value::Null);
                        out.push(RpcResponse::err(
                            id,
                            RpcError::invalid_request(
                                "a batch may hold at most one verifychain (each replays the \
                                 whole chain); send another one in a request of its own",
                            ),
                        ));
                        continue;
                    }
                }
                out.push(handle_one(&state, item).await);
            }
            json_response(StatusCode::OK, &out)
        }
        single => json_response(StatusCode::OK, &handle_one(&state, single).await),
    }
}

async fn handle_one(state: &AppState, item: Value) -> RpcResponse {
    let id = item.get("id").cloned().unwrap_or(Value::Null);
    // JSON-RPC 2.0 only: a "1.0" request expects other semantics (no error object,
    // different batch rules), so it is refused rather than half-served.
    match item.get("jsonrpc") {
        None => {}
        Some(Value::String(v)) if v == "2.0" => {}
        Some(other) => {
            let shown: String = other.to_string().chars().take(40).collect();
            return RpcResponse::err(
                id,
                RpcError::invalid_request(format!(
                    "\"jsonrpc\" must be \"2.0\" (or left out), got {shown}"
                )),
            );
        }
    }
    let request: Request = match serde_json::from_value(item) {
        Ok(r) => r,
        Err(e) => return RpcResponse::err(id, RpcError::invalid_request(e)),
    };
    let node = Arc::clone(&state.node);
    let method = request.method.clone();
    let params = request.params;
    let result = tokio::task::spawn_blocking(move || call(&node, &method, &params)).await;
    match result {
        Ok(Ok((value, effect))) => {
            match effect {
                Effect::None => {}
                Effect::TxAccepted => state.tx_arrived.notify_one(),
                Effect::Shutdown => {
                    tracing::info!("stop requested over rpc");
                    state.shutdown.trigger();
                }
            }
            RpcResponse::ok(request.id, value)
        }
        Ok(Err(e)) => RpcResponse::err(request.id, e),
        Err(join) => {
            tracing::error!(method = %request.method, error = %join, "rpc handler panicked");
            RpcResponse::err(request.id, RpcError::internal("the request handler failed"))
        }
    }
}

async fn handle_metrics(State(state): State<AppState>) -> Response {
    let node = Arc::clone(&state.node);
    let text = tokio::task::spawn_blocking(move || node.metrics.render(node.gauges()))
        .await
        .unwrap_or_default();
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        text,
    )
        .into_response()
}

async fn not_found() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        RpcError::new(
            codes::METHOD_NOT_FOUND,
            "not found: POST json-rpc to / or GET /metrics",
        ),
    )
}

async fn maintenance_loop(node: Arc<Node>, shutdown: Shutdown) {
    let mut tick = tokio::time::interval(Duration::from_millis(MEMPOOL_EXPIRY_INTERVAL_MS));
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {
                let n = Arc::clone(&node);
                match tokio::task::spawn_blocking(move || n.expire_mempool()).await {
                    Ok(Ok(0)) => {}
                    Ok(Ok(k)) => tracing::info!(removed = k, "expired mempool transactions"),
                    Ok(Err(e)) => tracing::error!(error = %e, "mempool expiry failed"),
                    Err(_) => return,
                }
            }
        }
    }
}

async fn wait_for_signal(shutdown: Shutdown) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the node with the stop rpc");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received, shutting down"),
        _ = int.recv() => tracing::info!("SIGINT received, shutting down"),
        _ = shutdown.wait() => return,
    }
    shutdown.trigger();
}

/// Serves HTTP on `listener` until shutdown. At most `rpc.max_connections` connections
/// are open at once (one more is closed at once, and counted); a connection whose
/// request headers, or whose next request when idle, take longer than
/// `rpc.header_timeout_ms` is closed (and counted), so idle or half-sent connections
/// cannot hold the node's file descriptors and lock out new clients.
async fn serve_rpc(
    listener: tokio::net::TcpListener,
    app: Router,
    node: Arc<Node>,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    let limits = node.config.rpc.clone();
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let stream = tokio::select! {
            _ = shutdown.wait() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting an rpc connection failed");
                    tokio::time::sleep(Duration::from_millis(ACCEPT_BACKOFF_MS)).await;
                    continue;
                }
            },
        };
        while connections.try_join_next().is_some() {}
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            crate::metrics::Metrics::inc(&node.metrics.rpc_connections_refused, 1);
            drop(stream);
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let header_timeout = Duration::from_millis(limits.header_timeout_ms);
        let (node, shutdown) = (Arc::clone(&node), shutdown.clone());
        connections.spawn(async move {
            let metrics = &node.metrics;
            metrics
                .rpc_connections_open
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = shutdown.wait() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if result.is_err_and(|e| e.is_timeout()) {
                crate::metrics::Metrics::inc(&metrics.rpc_connections_timed_out, 1);
            }
            metrics
                .rpc_connections_open
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            drop(permit);
        });
    }
    let grace = Duration::from_millis(RPC_SHUTDOWN_GRACE_MS);
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("rpc connections still open at shutdown were closed");
        connections.shutdown().await;
    }
    Ok(())
}

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen for rpc on {addr}: {source} (is another node using --rpc-port {port}?)")]
    Bind {
        addr: SocketAddr,
        port: u16,
        source: std::io::Error,
    },
    #[error("cannot listen for p2p on {addr}: {source} (is another node using --p2p-port {port}?)")]
    P2pBind {
        addr: SocketAddr,
        port: u16,
        source: std::io::Error,
    },
    #[error(transparent)]
    DataDir(#[from] crate::datadir::DataDirError),
    #[error(transparent)]
    P2p(#[from] crate::p2p::P2pError),
    #[error("rpc server failed: {0}")]
    Serve(std::io::Error),
    #[error("consensus stopped the node: {0}")]
    Consensus(String),
}

/// Serves RPC and runs consensus until shutdown. Returns once every task has stopped.
pub async fn serve(
    node: Arc<Node>,
    datadir: &crate::datadir::DataDir,
    shutdown: Shutdown,
) -> Result<(), StartError> {
    let addr = SocketAddr::new(node.config.rpc_bind, node.config.rpc_port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind {
            addr,
            port: addr.port(),
            source,
        })?;
    let local = listener.local_addr().map_err(StartError::Serve)?;
    let cookie = Cookie::create(datadir)?;
    let expected_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            settle_rpc::COOKIE_USER,
            cookie.password
        ))
    );
    let tx_arrived = Arc::clone(&node.tx_arrived);
    // The engine only logs a failed listen and would run deaf: a node nobody can dial
    // is worse than a node that refuses to start, so try the port first. (The port can
    // still be taken between this check and the engine's bind; that window is short.)
    let p2p_addr = SocketAddr::new(node.config.p2p.bind, node.config.p2p_port);
    drop(
        std::net::TcpListener::bind(p2p_addr).map_err(|source| StartError::P2pBind {
            addr: p2p_addr,
            port: p2p_addr.port(),
            source,
        })?,
    );
    let consensus = Arc::new(crate::p2p::start_consensus(&node, datadir, &shutdown).await?);
    let _ = node.consensus.set(Arc::clone(&consensus));
    // Transactions saved at the last clean stop go back in now that they can be gossiped.
    let root = datadir.root().to_path_buf();
    let restoring = Arc::clone(&node);
    let _ =
        tokio::task::spawn_blocking(move || crate::mempool_file::restore(&restoring, &root)).await;
    let state = AppState {
        node: Arc::clone(&node),
        expected_auth: expected_auth.into(),
        shutdown: shutdown.clone(),
        tx_arrived: Arc::clone(&tx_arrived),
    };
    let app = Router::new()
        .route("/", post(handle_rpc))
        .route("/metrics", get(handle_metrics))
        .fallback(not_found)
        .with_state(state);

    let consensus_failure = Arc::new(std::sync::Mutex::new(None));
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(wait_for_signal(shutdown.clone()));
    tasks.spawn(stop_on_consensus_failure(
        Arc::clone(&node),
        Arc::clone(&consensus),
        shutdown.clone(),
        Arc::clone(&consensus_failure),
    ));
    tasks.spawn(maintenance_loop(Arc::clone(&node), shutdown.clone()));
    tasks.spawn(crate::membership::follow(
        Arc::clone(&node),
        Arc::clone(&consensus),
        shutdown.clone(),
    ));
    tracing::info!(rpc = %local, p2p_port = node.config.p2p_port, "settled is ready");
    let served = serve_rpc(listener, app, Arc::clone(&node), shutdown.clone()).await;
    shutdown.trigger();
    while tasks.join_next().await.is_some() {}
    // The node keeps its handle (for RPC) in a OnceLock: stop the engine through ours.
    drop(consensus);
    if let Some(handle) = node.consensus.get() {
        handle.stop().await;
    }
    drop(cookie);
    let failure = consensus_failure
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    if let Some(reason) = failure {
        return Err(StartError::Consensus(reason));
    }
    served.map_err(StartError::Serve)
}

/// Whether a failure reported as text by the consensus crate is the operating
/// system's "no space left on device" (ENOSPC, os error 28), as RocksDB and the file
/// system word it: the reason crosses the crate boundary as a message.
fn is_no_space(reason: &str) -> bool {
    reason.contains("No space left on device") || reason.contains("os error 28")
}

/// Stops the node when consensus reports a failure it cannot decide past (a storage
/// failure while deciding, a signature the double-sign guard refused): the process
/// then exits non-zero with the reason, rather than serve a chain that no longer
/// moves. Restarting the height instead would reset the consensus WAL, the record of
/// this validator's votes (`spec/consensus.md`, "After a crash").
///
/// A full disk is the exception (`spec/storage.md`, "A full disk"): consensus has
/// stopped without signing what it could not record, and the node stays up to serve
/// reads and say so, admitting nothing, until the operator frees space and restarts
/// it; the exit is still non-zero.
async fn stop_on_consensus_failure(
    node: Arc<Node>,
    consensus: Arc<settle_consensus::NodeHandle>,
    shutdown: Shutdown,
    failure: Arc<std::sync::Mutex<Option<String>>>,
) {
    tokio::select! {
        reason = consensus.failed() => {
            *failure.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(reason.clone());
            if is_no_space(&reason) {
                node.halt_consensus_for_full_disk(&reason);
            } else {
                tracing::error!(%reason, "consensus failed; stopping the node");
                shutdown.trigger();
            }
        }
        () = shutdown.wait() => {}
    }
}
