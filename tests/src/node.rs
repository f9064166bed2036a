//! A harness for functional tests: real `settled` processes on temporary data directories
//! and free ports, plus helpers to build and sign transactions for them.
//!
//! The harness builds nothing. It runs the `settled` binary cargo built into the same
//! target directory as the test executable (`target/<profile>/settled`); the tests
//! package depends on `settle-node`, and `cargo test --workspace` builds its binary. Set
//! `SETTLED_BIN` to use another binary.

// This is test code: a panic with a clear message is how a functional test fails.
#![allow(clippy::panic)]

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use secp256k1::{Keypair, SecretKey, XOnlyPublicKey};
use settle_assets::Amount;
use settle_assets::contract::{AssetClass, AssetContract};
use settle_assets::hash::{AssetId, ChainId};
use settle_assets::transaction::{
    Issuance, IssuanceKind, OutPoint, SEQUENCE_FINAL, TX_VERSION, Transaction, TxIn, TxOut, Witness,
};
use settle_rpc::{Auth, BlockchainInfo, ClientError, RpcClient};
use settle_script::sighash::{PrecomputedTx, SighashType};
use settle_script::{sign_issuance, sign_p2k_input};

/// Longest wait for a node to answer RPC after it starts.
pub const START_TIMEOUT_MS: u64 = 20_000;
/// Longest wait for a node to exit after `stop` or a signal.
pub const STOP_TIMEOUT_MS: u64 = 20_000;
/// Default bound on condition polling.
pub const WAIT_TIMEOUT_MS: u64 = 20_000;
/// Interval between polls.
const POLL_INTERVAL_MS: u64 = 20;
/// Attempts at starting a node when the chosen port was taken meanwhile.
const START_ATTEMPTS: usize = 3;

/// Polls `cond` until it returns `Some`, for at most `timeout_ms`; panics naming `what`.
pub fn wait_until<T>(timeout_ms: u64, what: &str, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    loop {
        if let Some(v) = cond() {
            return v;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout_ms} ms waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(POLL_INTERVAL_MS));
    }
}

/// The `settled` binary: `SETTLED_BIN`, or `settled` in the target directory of the
/// running executable.
pub fn settled_bin() -> PathBuf {
    workspace_bin("settled", "SETTLED_BIN", "settle-node")
}

/// A binary of package `package` built into the same target directory as the running
/// test executable (`target/<profile>/deps/<test>` → `target/<profile>/<name>`), or the
/// path in the environment variable `env_var` when it is set.
pub fn workspace_bin(name: &str, env_var: &str, package: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(env_var) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("path of the test executable");
    let mut dir = exe
        .parent()
        .expect("executable has a directory")
        .to_path_buf();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "no {name} binary at {}: build it first (cargo build -p {package}, or cargo test --workspace)",
        bin.display()
    );
    warn_if_stale(&bin, &dir, package);
    bin
}

/// Warns when `bin` looks older than the newest library of `package` beside it: the test
/// could be exercising stale code. Only a hint: another build (other features, another
/// profile) may have left a newer library beside a binary that is nevertheless current.
fn warn_if_stale(bin: &Path, profile_dir: &Path, package: &str) {
    let Ok(bin_time) = std::fs::metadata(bin).and_then(|m| m.modified()) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(profile_dir.join("deps")) else {
        return;
    };
    let prefix = format!("lib{}-", package.replace('-', "_"));
    let newest_lib = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.starts_with(&prefix) && name.ends_with(".rlib")
        })
        .filter_map(|e| e.metadata().and_then(|m| m.modified()).ok())
        .max();
    if let Some(lib_time) = newest_lib
        && bin_time + Duration::from_secs(120) < lib_time
    {
        eprintln!(
            "note: {} is older than a {package} library in the same directory; if a test \
             fails oddly, rebuild it (cargo build -p {package})",
            bin.display()
        );
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// Runs `settled` with `args` to completion.
pub fn run_settled(args: &[&str]) -> Output {
    Command::new(settled_bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("settled runs")
}

/// Starts `settled` with `args`, its output appended to `log_path` and its log level
/// from `SETTLED_TEST_LOG` (default `info`).
fn spawn_settled<S: AsRef<std::ffi::OsStr>>(args: &[S], log_path: &Path) -> Child {
    spawn_settled_env(args, log_path, &[])
}

/// [`spawn_settled`] with extra environment variables (test hooks such as
/// `SETTLE_CRASH_AT`).
fn spawn_settled_env<S: AsRef<std::ffi::OsStr>>(
    args: &[S],
    log_path: &Path,
    env: &[(&str, String)],
) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .expect("log file");
    Command::new(settled_bin())
        .args(args)
        .env(
            "RUST_LOG",
            std::env::var("SETTLED_TEST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("spawn settled")
}

/// The keys `settled init --dev` wrote.
#[derive(Debug)]
pub struct DevKeys {
    pub validator: Keypair,
    pub issuer_cash: Keypair,
    pub issuer_security: Keypair,
}

/// Reads a key file (64 hex characters).
pub fn read_key_file(path: &Path) -> Keypair {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut bytes).expect("key file is hex");
    let secret = SecretKey::from_byte_array(bytes).expect("valid secret key");
    Keypair::from_secret_key(secp256k1::SECP256K1, &secret)
}

/// One `settled --dev` process on a temporary data directory.
#[derive(Debug)]
pub struct TestNode {
    /// Keeps the temporary directory alive (removed on drop).
    _tmp: Option<tempfile::TempDir>,
    pub datadir: PathBuf,
    pub rpc_port: u16,
    child: Option<Child>,
    log_path: PathBuf,
    extra_args: Vec<String>,
    starts: usize,
}

impl TestNode {
    /// Initialises a dev chain in a fresh temporary directory and starts it.
    pub fn start_dev() -> TestNode {
        Self::start_dev_with(&[])
    }

    /// Like [`TestNode::start_dev`], passing `extra_args` to every start.
    pub fn start_dev_with(extra_args: &[&str]) -> TestNode {
        let tmp = tempfile::Builder::new()
            .prefix("settled-test-")
            .tempdir()
            .expect("temporary directory");
        let datadir = tmp.path().join("node");
        let mut node = TestNode {
            log_path: tmp.path().join("settled.log"),
            _tmp: Some(tmp),
            datadir,
            rpc_port: 0,
            child: None,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            starts: 0,
        };
        node.start();
        node
    }

    /// Writes `settled.toml` (call before [`TestNode::restart`]).
    pub fn write_config(&self, toml: &str) {
        std::fs::write(self.datadir.join("settled.toml"), toml).expect("write settled.toml");
    }

    /// Starts the process (on a new free port) and waits until it answers RPC.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "node already running");
        for attempt in 0..START_ATTEMPTS {
            self.rpc_port = free_port();
            self.starts += 1;
            let mut args: Vec<String> = vec![
                "--dev".into(),
                "--datadir".into(),
                self.datadir.to_str().expect("utf-8 path").into(),
                "--rpc-port".into(),
                self.rpc_port.to_string(),
                "--p2p-port".into(),
                free_port().to_string(),
            ];
            args.extend(self.extra_args.iter().cloned());
            self.child = Some(spawn_settled(&args, &self.log_path));
            match self.wait_ready() {
                Ok(()) => return,
                Err(status) => {
                    self.child = None;
                    let log = self.log();
                    if attempt + 1 < START_ATTEMPTS && log.contains("cannot listen") {
                        continue;
                    }
                    panic!("settled exited during start-up ({status}); log:\n{log}");
                }
            }
        }
    }

    /// Waits for RPC to answer; `Err` if the process exited first.
    fn wait_ready(&mut self) -> Result<(), ExitStatus> {
        let client = RpcClient::with_timeout(self.url(), Auth::cookie_in(&self.datadir), 2_000);
        let deadline = Instant::now() + Duration::from_millis(START_TIMEOUT_MS);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                return Err(status);
            }
            if client.get_blockchain_info().is_ok() {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "settled did not answer rpc within {START_TIMEOUT_MS} ms; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(POLL_INTERVAL_MS));
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc_port)
    }

    /// A client authenticated with the node's cookie.
    pub fn client(&self) -> RpcClient {
        RpcClient::with_timeout(self.url(), Auth::cookie_in(&self.datadir), 60_000)
    }

    /// Everything the node has logged in this test.
    pub fn log(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log_path) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits for the process to exit; returns its status.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("node is running");
        wait_until(STOP_TIMEOUT_MS, "settled to exit", || {
            child.try_wait().ok().flatten()
        })
    }

    /// Stops the node with the `stop` RPC and waits for a clean exit.
    pub fn stop(&mut self) {
        let answer = self.client().stop().expect("stop rpc");
        assert_eq!(answer, "settled stopping");
        let status = self.wait_exit();
        assert!(
            status.success(),
            "settled exited with {status}; log:\n{}",
            self.log()
        );
    }

    /// Sends a signal (`-TERM`, `-INT`, `-KILL`) to the process.
    pub fn signal(&mut self, signal: &str) {
        let pid = self.child.as_ref().expect("node is running").id();
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid} failed");
    }

    /// `kill -9`: the process dies at once, mid-write or not.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("node is running");
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }

    /// Stops (cleanly) and starts again on the same data directory.
    pub fn restart(&mut self) {
        self.stop();
        self.start();
    }

    /// Runs `settled verify` on the data directory (the node must be stopped).
    pub fn verify(&self) -> Output {
        run_settled(&[
            "verify",
            "--datadir",
            self.datadir.to_str().expect("utf-8 path"),
        ])
    }

    /// The dev keys in the data directory.
    pub fn keys(&self) -> DevKeys {
        let k = self.datadir.join("keys");
        DevKeys {
            validator: read_key_file(&k.join("validator.key")),
            issuer_cash: read_key_file(&k.join("issuer-cash.key")),
            issuer_security: read_key_file(&k.join("issuer-security.key")),
        }
    }

    pub fn info(&self) -> BlockchainInfo {
        self.client()
            .get_blockchain_info()
            .expect("getblockchaininfo")
    }

    pub fn chain_id(&self) -> ChainId {
        self.info().chain_id
    }

    /// Waits until `txid` is confirmed; returns the height of its block.
    pub fn wait_confirmed(&self, txid: &settle_assets::Txid) -> u64 {
        let client = self.client();
        wait_until(WAIT_TIMEOUT_MS, &format!("{txid} to confirm"), || {
            client
                .get_raw_transaction(txid)
                .ok()
                .and_then(|info| info.height)
        })
    }

    /// Waits until the mempool is empty.
    pub fn wait_mempool_empty(&self) {
        let client = self.client();
        wait_until(WAIT_TIMEOUT_MS, "the mempool to empty", || {
            client
                .get_mempool_info()
                .ok()
                .filter(|m| m.size == 0)
                .map(|_| ())
        });
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- settled log ({}) ---\n{}",
                self.log_path.display(),
                self.log()
            );
        }
    }
}

/// The rpc error code of a failed call (panics on a transport error).
pub fn rpc_code(e: &ClientError) -> i64 {
    e.rpc()
        .unwrap_or_else(|| panic!("not an rpc error: {e}"))
        .code
}

// ---- Building and signing transactions ----

/// A fresh random key.
pub fn new_key() -> Keypair {
    Keypair::new(secp256k1::SECP256K1, &mut rand::rng())
}

pub fn xonly(k: &Keypair) -> XOnlyPublicKey {
    k.x_only_public_key().0
}

/// A pay-to-key output script for `k`.
pub fn p2k(k: &Keypair) -> Vec<u8> {
    settle_script::p2k(&xonly(k))
}

/// A cash contract issued by `issuer`.
pub fn cash_contract(issuer: &Keypair, name: &str, ticker: &str) -> AssetContract {
    AssetContract {
        class: AssetClass::Cash {
            currency: "EUR".into(),
        },
        name: name.into(),
        ticker: ticker.into(),
        precision: 2,
        issuer: xonly(issuer).serialize(),
        reissuable: true,
    }
}

/// A security contract issued by `issuer`.
pub fn security_contract(issuer: &Keypair, name: &str, ticker: &str) -> AssetContract {
    AssetContract {
        class: AssetClass::Security {
            isin: "US0378331005".into(),
        },
        name: name.into(),
        ticker: ticker.into(),
        precision: 0,
        issuer: xonly(issuer).serialize(),
        reissuable: false,
    }
}

pub fn amount(units: u64) -> Amount {
    Amount::from_units(units).expect("amount in range")
}

/// A new issuance on a null input, paying `outputs` (script, units), signed by
/// `signer` (normally the contract's issuer). Returns the transaction and asset id.
pub fn issue_tx(
    chain_id: ChainId,
    contract: &AssetContract,
    signer: &Keypair,
    outputs: &[(Vec<u8>, u64)],
) -> (Transaction, AssetId) {
    let bytes = contract.to_canonical_bytes().expect("valid contract");
    let total: u64 = outputs.iter().map(|(_, u)| *u).sum();
    let issuance = Issuance {
        kind: IssuanceKind::New { contract: bytes },
        amount: amount(total),
        signature: None,
    };
    let asset = issuance.asset_id(&OutPoint::NULL);
    let mut tx = Transaction {
        version: TX_VERSION,
        inputs: vec![TxIn {
            prevout: OutPoint::NULL,
            sequence: SEQUENCE_FINAL,
            issuance: Some(issuance),
            witness: Witness::default(),
        }],
        outputs: outputs
            .iter()
            .map(|(script, units)| TxOut {
                asset,
                amount: amount(*units),
                script_pubkey: script.clone(),
            })
            .collect(),
        lock_time: 0,
        expiry_height: 0,
    };
    let spent = vec![TxOut::NONE];
    let sig = {
        let cache = PrecomputedTx::new(&tx, &spent, chain_id).expect("sighash cache");
        sign_issuance(&cache, 0, signer).expect("sign issuance")
    };
    tx.inputs[0].issuance.as_mut().expect("issuance").signature = Some(sig);
    (tx, asset)
}

/// A coin the test owns: where it is, what it holds, and the key that spends it.
#[derive(Clone, Debug)]
pub struct Owned {
    pub outpoint: OutPoint,
    pub output: TxOut,
    pub key: Keypair,
}

/// Output `vout` of `tx`, owned by `key`.
pub fn owned(tx: &Transaction, vout: u32, key: &Keypair) -> Owned {
    Owned {
        outpoint: OutPoint::new(tx.txid(), vout),
        output: tx.outputs[vout as usize].clone(),
        key: *key,
    }
}

/// A transaction spending `inputs` (pay-to-key, SIGHASH_ALL) into `outputs`.
pub fn spend_tx(
    chain_id: ChainId,
    inputs: &[Owned],
    outputs: Vec<TxOut>,
    expiry_height: u32,
) -> Transaction {
    let mut tx = Transaction {
        version: TX_VERSION,
        inputs: inputs.iter().map(|o| TxIn::spending(o.outpoint)).collect(),
        outputs,
        lock_time: 0,
        expiry_height,
    };
    let spent: Vec<TxOut> = inputs.iter().map(|o| o.output.clone()).collect();
    let witnesses: Vec<Witness> = {
        let cache = PrecomputedTx::new(&tx, &spent, chain_id).expect("sighash cache");
        inputs
            .iter()
            .enumerate()
            .map(|(i, o)| sign_p2k_input(&cache, i, &o.key, SighashType::All).expect("sign input"))
            .collect()
    };
    for (input, w) in tx.inputs.iter_mut().zip(witnesses) {
        input.witness = w;
    }
    tx
}

/// An output of `units` of `asset` paying `key`.
pub fn pay(asset: AssetId, units: u64, key: &Keypair) -> TxOut {
    TxOut {
        asset,
        amount: amount(units),
        script_pubkey: p2k(key),
    }
}

// ---- Networks of several nodes ----

/// Consensus timeouts for networks on loopback in tests: short, so a dead proposer
/// costs about a second.
pub const FAST_NETWORK_CONFIG: &str = "[consensus]\n\
timeout_propose_ms = 1000\n\
timeout_prevote_ms = 300\n\
timeout_precommit_ms = 300\n\
timeout_delta_ms = 200\n\
sync_status_interval_ms = 300\n\
sync_request_timeout_ms = 2000\n";

/// One node of a [`TestNetwork`]: a `settled` process on its own data directory.
#[derive(Debug)]
pub struct NetNode {
    pub name: String,
    pub datadir: PathBuf,
    pub rpc_port: u16,
    pub p2p_port: u16,
    pub validator: bool,
    child: Option<Child>,
    log_path: PathBuf,
}

impl NetNode {
    /// A node on `datadir` whose `settled.toml` sets `rpc_port`.
    pub fn new(
        name: &str,
        datadir: PathBuf,
        rpc_port: u16,
        p2p_port: u16,
        validator: bool,
    ) -> Self {
        let log_path = datadir.with_extension("log");
        NetNode {
            name: name.into(),
            datadir,
            rpc_port,
            p2p_port,
            validator,
            child: None,
            log_path,
        }
    }

    /// Starts the process and waits until it answers RPC. When a port written at
    /// creation was taken meanwhile (a late node starts minutes after its network was
    /// written), moves the node to fresh ports and tries again: it dials its peers, so
    /// they need not know its new address.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "{} already running", self.name);
        for attempt in 0..START_ATTEMPTS {
            match self.start_once() {
                Ok(()) => return,
                Err(status) => {
                    let log = self.log();
                    if attempt + 1 < START_ATTEMPTS && log.contains("cannot listen") {
                        self.move_to_fresh_ports();
                        continue;
                    }
                    panic!(
                        "{} exited during start-up ({status}); log:\n{log}",
                        self.name
                    );
                }
            }
        }
    }

    /// Spawns the process and waits for RPC; `Err` if it exited first.
    fn start_once(&mut self) -> Result<(), ExitStatus> {
        let args = ["--datadir", self.datadir.to_str().expect("utf-8 path")];
        self.child = Some(spawn_settled(&args, &self.log_path));
        let client = RpcClient::with_timeout(self.url(), Auth::cookie_in(&self.datadir), 2_000);
        let deadline = Instant::now() + Duration::from_millis(START_TIMEOUT_MS);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(status);
            }
            if client.get_blockchain_info().is_ok() {
                return Ok(());
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer rpc within {START_TIMEOUT_MS} ms; log:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(POLL_INTERVAL_MS));
        }
    }

    /// Spawns the process with extra environment variables and returns at once: a
    /// crash test's node may die before it ever answers RPC. See
    /// [`NetNode::wait_rpc`] and [`NetNode::wait_exit_for`].
    pub fn spawn_with_env(&mut self, env: &[(&str, String)]) {
        assert!(self.child.is_none(), "{} already running", self.name);
        let args = ["--datadir", self.datadir.to_str().expect("utf-8 path")];
        self.child = Some(spawn_settled_env(&args, &self.log_path, env));
    }

    /// Waits up to `timeout_ms` for RPC to answer: `false` if the process exited
    /// (or never answered) first.
    pub fn wait_rpc(&mut self, timeout_ms: u64) -> bool {
        let client = RpcClient::with_timeout(self.url(), Auth::cookie_in(&self.datadir), 2_000);
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        while Instant::now() < deadline {
            if !self.is_running() {
                return false;
            }
            if client.get_blockchain_info().is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(POLL_INTERVAL_MS));
        }
        false
    }

    /// Waits up to `timeout_ms` for the process to exit by itself; its status, or
    /// `None` if it is still running.
    pub fn wait_exit_for(&mut self, timeout_ms: u64) -> Option<ExitStatus> {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(POLL_INTERVAL_MS));
        }
    }

    /// Rewrites the ports in this node's `settled.toml` to a fresh free pair.
    fn move_to_fresh_ports(&mut self) {
        let base = free_port_range(2);
        self.rpc_port = base;
        self.p2p_port = base + 1;
        let path = self.datadir.join("settled.toml");
        let config = std::fs::read_to_string(&path).expect("read settled.toml");
        let rewritten: Vec<String> = config
            .lines()
            .map(|line| {
                if line.starts_with("rpc_port") {
                    format!("rpc_port = {}", self.rpc_port)
                } else if line.starts_with("p2p_port") {
                    format!("p2p_port = {}", self.p2p_port)
                } else {
                    line.to_string()
                }
            })
            .collect();
        std::fs::write(&path, rewritten.join("\n") + "\n").expect("write settled.toml");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc_port)
    }

    pub fn client(&self) -> RpcClient {
        RpcClient::with_timeout(self.url(), Auth::cookie_in(&self.datadir), 60_000)
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    pub fn info(&self) -> BlockchainInfo {
        self.client()
            .get_blockchain_info()
            .unwrap_or_else(|e| panic!("getblockchaininfo on {}: {e}", self.name))
    }

    /// `kill -9`.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("node is running");
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }

    /// Stops the node with the `stop` RPC and waits for a clean exit.
    pub fn stop(&mut self) {
        let _ = self.client().stop();
        let mut child = self.child.take().expect("node is running");
        let status = wait_until(STOP_TIMEOUT_MS, "settled to exit", || {
            child.try_wait().ok().flatten()
        });
        assert!(
            status.success(),
            "{} exited with {status}; log:\n{}",
            self.name,
            self.log()
        );
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Waits until `txid` is confirmed here; returns its height.
    pub fn wait_confirmed(&self, txid: &settle_assets::Txid, timeout_ms: u64) -> u64 {
        let client = self.client();
        wait_until(
            timeout_ms,
            &format!("{txid} to confirm on {}", self.name),
            || {
                client
                    .get_raw_transaction(txid)
                    .ok()
                    .and_then(|info| info.height)
            },
        )
    }
}

impl Drop for NetNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A local network written by `settled testnet` in a temporary directory: validators
/// first, then full nodes, every process on loopback ports.
#[derive(Debug)]
pub struct TestNetwork {
    pub nodes: Vec<NetNode>,
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

/// Lowest port of a network's range.
const NETWORK_PORT_MIN: u16 = 20_000;
/// Ports at and above this are Linux's default ephemeral range, where the kernel
/// picks the source port of every outgoing connection and every bind to port 0: a
/// network's ports stay below it so no other process is handed one of them.
const NETWORK_PORT_END: u16 = 32_768;

/// A base port such that the `count` ports from it were free a moment ago.
fn free_port_range(count: u16) -> u16 {
    for _ in 0..50 {
        let base: u16 = rand::random_range(NETWORK_PORT_MIN..(NETWORK_PORT_END - count));
        if (base..base + count).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return base;
        }
    }
    panic!("no range of {count} free ports found");
}

impl TestNetwork {
    /// Writes a network of `validators` validators and `full_nodes` full nodes with
    /// [`FAST_NETWORK_CONFIG`] (plus `extra_config`) and starts every node.
    pub fn start(validators: usize, full_nodes: usize, extra_config: &str) -> TestNetwork {
        let mut net = Self::create(validators, full_nodes, extra_config);
        for node in &mut net.nodes {
            node.start();
        }
        net
    }

    /// Like [`TestNetwork::start`] but starts no node: the test starts each one.
    pub fn create(validators: usize, full_nodes: usize, extra_config: &str) -> TestNetwork {
        let tmp = tempfile::Builder::new()
            .prefix("settled-net-")
            .tempdir()
            .expect("temporary directory");
        let dir = tmp.path().join("net");
        let total = validators + full_nodes;
        let total_u16 = u16::try_from(total).expect("a small network");
        let base = free_port_range(2 * total_u16 + 2);
        let config = format!("{FAST_NETWORK_CONFIG}{extra_config}");
        let out = run_settled(&[
            "testnet",
            "--validators",
            &validators.to_string(),
            "--full-nodes",
            &full_nodes.to_string(),
            "--dir",
            dir.to_str().expect("utf-8 path"),
            "--base-port",
            &base.to_string(),
            "--extra-config",
            &config,
        ]);
        assert!(
            out.status.success(),
            "settled testnet failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let nodes: Vec<NetNode> = (0..total)
            .map(|i| {
                let rpc = base + 2 * u16::try_from(i).expect("a small network");
                NetNode::new(
                    &format!("node{i}"),
                    dir.join(format!("node{i}")),
                    rpc,
                    rpc + 1,
                    i < validators,
                )
            })
            .collect();
        TestNetwork {
            nodes,
            dir,
            _tmp: tmp,
        }
    }

    /// The cash issuer key `settled testnet` wrote.
    pub fn issuer_cash(&self) -> Keypair {
        read_key_file(&self.dir.join("keys").join("issuer-cash.key"))
    }

    pub fn chain_id(&self) -> ChainId {
        self.nodes[0].info().chain_id
    }

    /// Waits until every running node in `which` is at the same tip (hash and UTXO
    /// commitment) at height `min_height` or above; returns that tip's info.
    pub fn wait_converged(
        &mut self,
        which: &[usize],
        min_height: u64,
        timeout_ms: u64,
    ) -> BlockchainInfo {
        let clients: Vec<RpcClient> = which.iter().map(|&i| self.nodes[i].client()).collect();
        wait_until(
            timeout_ms,
            &format!("nodes {which:?} to agree on a tip at {min_height} or above"),
            || {
                let infos: Vec<BlockchainInfo> = clients
                    .iter()
                    .map(|c| c.get_blockchain_info().ok())
                    .collect::<Option<_>>()?;
                let first = &infos[0];
                let agree = first.blocks >= min_height
                    && infos.iter().all(|i| {
                        i.best_block_hash == first.best_block_hash
                            && i.utxo_commitment == first.utxo_commitment
                            && i.blocks == first.blocks
                    });
                agree.then(|| first.clone())
            },
        )
    }

    /// Every node's log, for a failing test.
    pub fn logs(&self) -> String {
        let mut s = String::new();
        for n in &self.nodes {
            s.push_str(&format!("--- {} ---\n{}\n", n.name, n.log()));
        }
        s
    }
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.logs());
        }
    }
}

/// `GET path` on 127.0.0.1:`port` (no authentication, e.g. `/metrics`): the raw
/// response.
pub fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}
