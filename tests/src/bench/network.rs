//! The `network` scenario of `settle-bench`: a network of validators on loopback under a
//! sustained load of delivery-versus-payment transactions.
//!
//! ```text
//! settle-bench network [--duration-secs S] [--rate TX_PER_S] [--clients N] [--batch B]
//!                      [--drain-secs S] [--validators V]
//!                      [--config TOML] [--logs DIR]
//! ```
//!
//! It writes a network with `settled testnet --validators V` (4 by default; consensus
//! timeouts at `settled`'s defaults, see [`BENCH_NETWORK_CONFIG`], plus `--config`),
//! starts every node as its own process, funds 256 parties with cash and security
//! issuances, and waits until every node holds the coins. Then `--clients` threads
//! submit pre-signed two-input DvP transactions (cash for securities, both inputs
//! signed with BIP340) with `sendrawtransaction`, round-robin over the nodes, on a
//! schedule of `--rate` transactions per second for `--duration-secs`. Each client
//! waits for its call's answer, so when the nodes answer more slowly than the schedule
//! asks, the clients fall behind it (the achieved rate is reported) rather than pile
//! up requests; what is still unsent when the load phase ends is not sent. A tracker
//! polls the first node for new blocks: a transaction is final when the block holding
//! it is decided and connected (one-block finality), and its time to finality runs
//! from just before its `sendrawtransaction` call to the poll that first saw that
//! block. After the load phase, the run waits up to `--drain-secs` for the rest.
//!
//! It prints one JSON line: the finalized DvP rate sustained over the load window
//! (after a short warm-up), the median and 99th-percentile time to finality (a
//! transaction still unconfirmed when the drain ends counts as infinitely late), the
//! submission side (achieved rate, rejections, RPC call times), the blocks, the
//! raw BIP340 verification rate as the baseline (on as many threads as validation
//! uses and on one, in bursts before the nodes start and after they stop: bursts while
//! they run would take their cores) with the ratios of the finalized rate to the
//! network's signature bound (raw rate / (signatures per transaction × validators),
//! since every validator verifies every transaction once), and
//! the targets of issue 5 with whether they were met.
//!
//! The scenario runs the `settled` binary from the target directory settle-bench was
//! built into, so build both optimised first:
//!
//! ```text
//! cargo build --release -p settle-node -p settle-tests
//! cargo run --release -p settle-tests --bin settle-bench -- network
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::baseline::{
    Burst, RATIO_ONE_THREAD, RATIO_SAME_THREADS, Spread, VerifyItems, spread_json,
    validation_threads,
};
use secp256k1::Keypair;
use settle_assets::hash::ChainId;
use settle_assets::transaction::Transaction;
use settle_assets::{BlockHash, Txid, serialize};
use settle_rpc::BlockchainInfo;
use settle_rpc::{BlockInfo, ClientError, RpcClient};
use settle_tests::node::{
    NetNode, Owned, cash_contract, issue_tx, new_key, owned, p2k, pay, read_key_file, run_settled,
    security_contract, spend_tx,
};

/// The throughput target of issue 5 (DvP transactions finalized per second).
pub const TARGET_TX_PER_SEC: f64 = 2_000.0;
/// The latency target of issue 5 (median submission-to-finality time).
pub const TARGET_MEDIAN_FINALITY_MS: f64 = 2_000.0;

/// Signatures each DvP transaction carries (one per input).
const SIGS_PER_TX: usize = 2;
/// How long each raw verification burst runs (on the validation threads, then on one).
const BASELINE_BURST_MS: u64 = 250;
/// Raw verification bursts before the network starts, and as many after it stops.
const BASELINE_BURSTS: usize = 3;
/// The figures of a run whose min/median/max over the runs the summary gives.
pub const HEADLINE: [&str; 5] = [
    "finalized_tx_per_sec",
    "median_finality_ms",
    "p99_finality_ms",
    RATIO_SAME_THREADS,
    RATIO_ONE_THREAD,
];

/// Distinct parties owning the coins.
const PARTIES: usize = 256;
/// Outputs per funding issuance (below the 2,500-output transaction limit).
const FUNDING_OUTPUTS_PER_TX: usize = 2_000;
/// Most DvP transactions one run builds (memory and signing time).
const MAX_TXS: u64 = 400_000;
/// Most offered transactions per second.
const MAX_RATE: u64 = 50_000;
/// Longest load phase.
const MAX_DURATION_SECS: u64 = 600;
/// Most client threads.
const MAX_CLIENTS: usize = 64;
/// Most validators (`settled testnet` allows 64; this machine runs every process).
const MAX_VALIDATORS: usize = 16;
/// Longest wait for the funding issuances to confirm on every node.
const FUNDING_TIMEOUT_MS: u64 = 120_000;
/// Longest wait for every node to agree on the tip after the drain.
const CONVERGE_TIMEOUT_MS: u64 = 30_000;
/// Interval between the tracker's polls for new blocks.
const TRACK_POLL_MS: u64 = 10;
/// Interval between checks of the drain condition.
const DRAIN_POLL_MS: u64 = 50;
/// Longest warm-up left out of the sustained rate (a quarter of the load phase at most).
const MAX_WARMUP_MS: u64 = 2_000;
/// Most requests in one JSON-RPC batch (the node's limit, `spec/rpc.md`).
const MAX_RPC_BATCH: usize = 100;
/// Timeout of one `sendrawtransaction` call.
const SUBMIT_TIMEOUT_MS: u64 = 30_000;
/// Distinct rejection messages kept as examples.
const MAX_ERROR_EXAMPLES: usize = 5;
/// Lowest port of the network's range (below Linux's ephemeral ports, which start at
/// 32768, so no outgoing connection is handed one of them).
const PORT_MIN: u16 = 20_000;
const PORT_END: u16 = 32_768;

/// What every node's `settled.toml` gets before `--config`: the consensus timeouts are
/// `settled`'s defaults (a network as it would be deployed, not the short timeouts of
/// the functional tests), with peers' tips announced often enough for a laggard to
/// catch up within the run.
pub const BENCH_NETWORK_CONFIG: &str = "[consensus]\n\
sync_status_interval_ms = 500\n\
sync_request_timeout_ms = 5000\n";

/// The scenario's settings.
#[derive(Debug, Clone)]
pub struct NetworkArgs {
    pub duration_secs: u64,
    pub rate: u64,
    pub clients: usize,
    /// Transactions per `sendrawtransaction` call: with more than 1, each client sends
    /// its transactions as JSON-RPC batches of this many (as a back office submitting
    /// a file would), each sent once the last of them is due.
    pub batch: usize,
    pub drain_secs: u64,
    pub validators: usize,
    /// Appended to every node's `settled.toml` after [`BENCH_NETWORK_CONFIG`].
    pub config: String,
    /// Where to copy the nodes' logs at the end (they go with the network otherwise).
    pub logs: Option<std::path::PathBuf>,
}

impl Default for NetworkArgs {
    fn default() -> Self {
        NetworkArgs {
            duration_secs: 20,
            rate: 2_000,
            clients: 8,
            batch: 1,
            drain_secs: 30,
            validators: 4,
            config: String::new(),
            logs: None,
        }
    }
}

pub const USAGE: &str = "usage: settle-bench network [--duration-secs S] [--rate TX_PER_S] \
[--clients N] [--batch B] [--drain-secs S] [--validators V] [--config TOML] \
[--logs DIR]";

/// Parses the options after `network`.
pub fn parse_args(argv: &[String]) -> Result<NetworkArgs, String> {
    let mut args = NetworkArgs::default();
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut value = |name: &str| -> Result<&String, String> {
            it.next().ok_or_else(|| format!("{name} needs a value"))
        };
        let positive = |name: &str, v: &String| -> Result<u64, String> {
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name} needs a positive integer, got {v:?}"))
        };
        match flag.as_str() {
            "--duration-secs" => {
                args.duration_secs = positive(flag, value(flag)?)?;
            }
            "--rate" => args.rate = positive(flag, value(flag)?)?,
            "--clients" => args.clients = to_usize(positive(flag, value(flag)?)?)?,
            "--batch" => args.batch = to_usize(positive(flag, value(flag)?)?)?,
            "--drain-secs" => args.drain_secs = positive(flag, value(flag)?)?,
            "--validators" => args.validators = to_usize(positive(flag, value(flag)?)?)?,
            "--config" => args.config = value(flag)?.clone(),
            "--logs" => args.logs = Some(value(flag)?.into()),
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown option {other:?}\n{USAGE}")),
        }
    }
    if args.batch > MAX_RPC_BATCH {
        return Err(format!(
            "--batch must be at most {MAX_RPC_BATCH} (the node's JSON-RPC batch limit)"
        ));
    }
    if args.duration_secs > MAX_DURATION_SECS {
        return Err(format!(
            "--duration-secs must be at most {MAX_DURATION_SECS}"
        ));
    }
    if args.rate > MAX_RATE {
        return Err(format!("--rate must be at most {MAX_RATE}"));
    }
    if args.rate * args.duration_secs > MAX_TXS {
        return Err(format!(
            "--rate × --duration-secs must be at most {MAX_TXS} transactions"
        ));
    }
    if args.clients > MAX_CLIENTS {
        return Err(format!("--clients must be at most {MAX_CLIENTS}"));
    }
    if args.validators > MAX_VALIDATORS {
        return Err(format!("--validators must be at most {MAX_VALIDATORS}"));
    }
    if !args.config.is_empty() && !args.config.trim_start().starts_with('[') {
        return Err(
            "--config must start with a [section] (it follows the [consensus] section)".into(),
        );
    }
    Ok(args)
}

fn to_usize(n: u64) -> Result<usize, String> {
    usize::try_from(n).map_err(|_| format!("{n} is too large"))
}

/// The benchmark's network: `settled testnet` in a temporary directory, one process
/// per node (killed when dropped).
struct Network {
    nodes: Vec<NetNode>,
    dir: std::path::PathBuf,
    _tmp: tempfile::TempDir,
}

impl Network {
    /// Writes a network of `validators` validators on loopback with `config` appended
    /// to every node's `settled.toml`, and starts every node.
    fn start(validators: usize, config: &str) -> Result<Network, String> {
        let tmp = tempfile::Builder::new()
            .prefix("settle-bench-net-")
            .tempdir()
            .map_err(|e| format!("temporary directory: {e}"))?;
        let dir = tmp.path().join("net");
        let count = u16::try_from(2 * validators).map_err(|_| "too many validators")?;
        let base = free_port_range(count)?;
        let dir_str = dir.to_str().ok_or("temporary path is not utf-8")?;
        let out = run_settled(&[
            "testnet",
            "--validators",
            &validators.to_string(),
            "--dir",
            dir_str,
            "--base-port",
            &base.to_string(),
            "--extra-config",
            config,
        ]);
        if !out.status.success() {
            return Err(format!(
                "settled testnet failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let mut nodes = Vec::with_capacity(validators);
        for i in 0..count / 2 {
            let rpc = base + 2 * i;
            let mut node = NetNode::new(
                &format!("node{i}"),
                dir.join(format!("node{i}")),
                rpc,
                rpc + 1,
                true,
            );
            node.start();
            nodes.push(node);
        }
        Ok(Network {
            nodes,
            dir,
            _tmp: tmp,
        })
    }

    /// Waits until every node reports the same tip (hash and UTXO commitment) at
    /// `min_height` or above.
    fn wait_converged(
        &self,
        clients: &[RpcClient],
        min_height: u64,
        timeout_ms: u64,
    ) -> Result<BlockchainInfo, String> {
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        loop {
            let infos: Option<Vec<BlockchainInfo>> = clients
                .iter()
                .map(|c| c.get_blockchain_info().ok())
                .collect();
            if let Some(infos) = infos {
                let first = &infos[0];
                if first.blocks >= min_height
                    && infos.iter().all(|i| {
                        i.best_block_hash == first.best_block_hash
                            && i.utxo_commitment == first.utxo_commitment
                    })
                {
                    return Ok(first.clone());
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "the {} nodes did not agree on a tip at height {min_height} or above \
                     within {timeout_ms} ms",
                    self.nodes.len()
                ));
            }
            std::thread::sleep(Duration::from_millis(DRAIN_POLL_MS));
        }
    }
}

/// A base port such that the `count` ports from it were free a moment ago.
fn free_port_range(count: u16) -> Result<u16, String> {
    for _ in 0..50 {
        let base: u16 = rand::random_range(PORT_MIN..(PORT_END - count));
        if (base..base + count).all(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok()) {
            return Ok(base);
        }
    }
    Err(format!("no range of {count} free ports found"))
}

/// A DvP transaction ready to send.
struct Prepared {
    txid: Txid,
    hex: String,
}

/// What one client thread saw for one transaction.
struct Sent {
    index: usize,
    sent_at: Instant,
    call_ms: f64,
    accepted: bool,
}

/// What one client thread reports.
#[derive(Default)]
struct ClientReport {
    sent: Vec<Sent>,
    errors: BTreeMap<String, usize>,
    examples: Vec<String>,
}

/// A block the tracker saw, and when.
struct SeenBlock {
    height: u64,
    seen_at: Instant,
    txids: Vec<Txid>,
}

/// Funding issuances and the DvP transactions spending their coins.
struct Workload {
    funding: Vec<Transaction>,
    dvp: Vec<Prepared>,
}

/// Builds `n` DvP transactions over freshly issued coins, signing on every core.
fn build_workload(
    chain_id: ChainId,
    cash_issuer: &Keypair,
    security_issuer: &Keypair,
    n: usize,
) -> Workload {
    let parties: Vec<Keypair> = (0..PARTIES).map(|_| new_key()).collect();
    let mut funding = Vec::new();
    let mut cash_coins: Vec<Owned> = Vec::with_capacity(n);
    let mut security_coins: Vec<Owned> = Vec::with_capacity(n);
    let mut chunk = 0;
    while cash_coins.len() < n {
        let count = FUNDING_OUTPUTS_PER_TX.min(n - cash_coins.len());
        for (coins, contract, issuer, owner_offset) in [
            (
                &mut cash_coins,
                cash_contract(cash_issuer, &format!("Bench euro {chunk}"), "BEUR"),
                cash_issuer,
                0,
            ),
            (
                &mut security_coins,
                security_contract(security_issuer, &format!("Bench bond {chunk}"), "BBND"),
                security_issuer,
                1,
            ),
        ] {
            let start = coins.len();
            let owners: Vec<&Keypair> = (0..count)
                .map(|i| &parties[(start + i + owner_offset) % PARTIES])
                .collect();
            let outputs: Vec<(Vec<u8>, u64)> = owners.iter().map(|k| (p2k(k), 100)).collect();
            let (tx, _) = issue_tx(chain_id, &contract, issuer, &outputs);
            for (vout, k) in owners.iter().enumerate() {
                coins.push(owned(&tx, u32::try_from(vout).expect("few outputs"), k));
            }
            funding.push(tx);
        }
        chunk += 1;
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = n.div_ceil(threads).max(1);
    let mut dvp: Vec<Prepared> = Vec::with_capacity(n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..n)
            .step_by(per_thread)
            .map(|from| {
                let to = (from + per_thread).min(n);
                let (cash, sec) = (&cash_coins[from..to], &security_coins[from..to]);
                s.spawn(move || {
                    cash.iter()
                        .zip(sec)
                        .map(|(cash, sec)| {
                            let tx = spend_tx(
                                chain_id,
                                &[cash.clone(), sec.clone()],
                                vec![
                                    pay(cash.output.asset, cash.output.amount.units(), &sec.key),
                                    pay(sec.output.asset, sec.output.amount.units(), &cash.key),
                                ],
                                0,
                            );
                            Prepared {
                                txid: tx.txid(),
                                hex: hex::encode(serialize(&tx)),
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            dvp.extend(h.join().expect("a signing thread panicked"));
        }
    });
    Workload { funding, dvp }
}

/// Submits the funding issuances round-robin and waits until every node holds them.
fn fund(net: &Network, clients: &[RpcClient], funding: &[Transaction]) -> Result<(), String> {
    for (i, tx) in funding.iter().enumerate() {
        clients[i % clients.len()]
            .send_raw_transaction(tx)
            .map_err(|e| format!("funding issuance {i} was not accepted: {e}"))?;
    }
    let deadline = Instant::now() + Duration::from_millis(FUNDING_TIMEOUT_MS);
    let mut highest = 0;
    for tx in funding {
        let txid = tx.txid();
        loop {
            match clients[0].get_raw_transaction(&txid) {
                Ok(info) if info.height.is_some() => {
                    highest = highest.max(info.height.unwrap_or(0));
                    break;
                }
                Ok(_) | Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(DRAIN_POLL_MS));
                }
                Ok(_) => return Err(format!("funding issuance {txid} did not confirm")),
                Err(e) => return Err(format!("funding issuance {txid}: {e}")),
            }
        }
    }
    net.wait_converged(clients, highest, FUNDING_TIMEOUT_MS)?;
    Ok(())
}

/// `getblock` with verbosity 1: the header and the txids.
fn block_txids(client: &RpcClient, hash: &BlockHash) -> Result<BlockInfo, ClientError> {
    client.call("getblock", serde_json::json!([hash, 1]))
}

/// Polls `client` for blocks above `from_height` until `stop`, counting into
/// `confirmed` the transactions of `wanted` they hold.
fn track(
    client: &RpcClient,
    from_height: u64,
    wanted: &HashMap<Txid, usize>,
    confirmed: &AtomicUsize,
    stop: &AtomicBool,
) -> Result<Vec<SeenBlock>, String> {
    let mut seen = Vec::new();
    let mut next = from_height + 1;
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let count = client
            .get_block_count()
            .map_err(|e| format!("tracker: getblockcount: {e}"))?;
        let seen_at = Instant::now();
        while next <= count {
            let hash = client
                .get_block_hash(next)
                .map_err(|e| format!("tracker: getblockhash {next}: {e}"))?;
            let info =
                block_txids(client, &hash).map_err(|e| format!("tracker: getblock {next}: {e}"))?;
            let ours = info.txids.iter().filter(|t| wanted.contains_key(t)).count();
            confirmed.fetch_add(ours, Ordering::AcqRel);
            seen.push(SeenBlock {
                height: next,
                seen_at,
                txids: info.txids,
            });
            next += 1;
        }
        if stopping {
            return Ok(seen);
        }
        std::thread::sleep(Duration::from_millis(TRACK_POLL_MS));
    }
}

impl ClientReport {
    /// Counts `count` refusals of kind `kind`, keeping the first few messages.
    fn error(&mut self, kind: String, example: String, count: usize) {
        *self.errors.entry(kind).or_default() += count;
        if self.examples.len() < MAX_ERROR_EXAMPLES {
            self.examples.push(example);
        }
    }
}

/// One client's part of the schedule: every `stride`-th transaction from `first`, in
/// calls of `batch`, the load phase running from `start` to `end`.
#[derive(Clone, Copy, Debug)]
struct Share {
    first: usize,
    stride: usize,
    batch: usize,
    start: Instant,
    interval_ns: f64,
    end: Instant,
}

impl Share {
    /// This client's transactions, by index.
    fn indices(&self, count: usize) -> std::iter::StepBy<std::ops::Range<usize>> {
        (self.first..count).step_by(self.stride)
    }

    /// Sleeps until the slot of transaction `index` on the schedule. `false` once the
    /// load phase is over: a client behind schedule at its end sends nothing more.
    fn wait_for(&self, index: usize) -> bool {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let due = self.start + Duration::from_nanos((index as f64 * self.interval_ns) as u64);
        let now = Instant::now();
        if now >= self.end {
            return false;
        }
        if due > now {
            std::thread::sleep(due - now);
        }
        true
    }
}

/// One client thread: its share of the transactions, each at its slot of the
/// schedule, to node `index % nodes`.
fn submit_share(clients: &[RpcClient], txs: &[Prepared], share: Share) -> ClientReport {
    if share.batch > 1 {
        return submit_share_batched(clients, txs, share);
    }
    let mut report = ClientReport::default();
    for index in share.indices(txs.len()) {
        if !share.wait_for(index) {
            break;
        }
        let sent_at = Instant::now();
        let result = clients[index % clients.len()].send_raw_transaction_hex(&txs[index].hex);
        let call_ms = sent_at.elapsed().as_secs_f64() * 1000.0;
        let accepted = match result {
            Ok(_) => true,
            Err(e) => {
                let kind = match e.rpc() {
                    Some(rpc) => match rpc.reject_data() {
                        Some(r) => format!("{}/{}", r.reject_class, r.reject_code),
                        None => format!("rpc {}", rpc.code),
                    },
                    None => "transport".to_string(),
                };
                report.error(kind, e.to_string(), 1);
                false
            }
        };
        report.sent.push(Sent {
            index,
            sent_at,
            call_ms,
            accepted,
        });
    }
    report
}

/// [`submit_share`] with JSON-RPC batches of `batch` transactions, each sent when its
/// last transaction is due, all sent to the node of its first.
fn submit_share_batched(clients: &[RpcClient], txs: &[Prepared], share: Share) -> ClientReport {
    let mut report = ClientReport::default();
    let mine: Vec<usize> = share.indices(txs.len()).collect();
    for group in mine.chunks(share.batch) {
        let last = *group.last().expect("chunks are not empty");
        if !share.wait_for(last) {
            break;
        }
        let body: Vec<serde_json::Value> = group
            .iter()
            .map(|&index| {
                serde_json::json!({
                    "jsonrpc": "2.0",
                    "id": index,
                    "method": "sendrawtransaction",
                    "params": [txs[index].hex],
                })
            })
            .collect();
        let sent_at = Instant::now();
        let client = &clients[group[0] % clients.len()];
        let answer = client.post_raw(serde_json::to_vec(&body).expect("json"));
        let call_ms = sent_at.elapsed().as_secs_f64() * 1000.0;
        let replies: HashMap<u64, serde_json::Value> =
            match answer.map_err(|e| e.to_string()).and_then(|(_, text)| {
                serde_json::from_str::<Vec<serde_json::Value>>(&text).map_err(|e| e.to_string())
            }) {
                Ok(list) => list
                    .into_iter()
                    .filter_map(|r| r["id"].as_u64().map(|id| (id, r)))
                    .collect(),
                Err(e) => {
                    report.error("transport".into(), e, group.len());
                    HashMap::new()
                }
            };
        for &index in group {
            let reply = replies.get(&(index as u64));
            let accepted = reply.is_some_and(|r| r.get("result").is_some_and(|v| !v.is_null()));
            if let Some(error) = reply.and_then(|r| r.get("error")) {
                let data = &error["data"];
                let kind = match (data["reject_class"].as_str(), data["reject_code"].as_str()) {
                    (Some(class), Some(code)) => format!("{class}/{code}"),
                    _ => format!("rpc {}", error["code"]),
                };
                report.error(kind, error.to_string(), 1);
            }
            report.sent.push(Sent {
                index,
                sent_at,
                call_ms,
                accepted,
            });
        }
    }
    report
}

/// The `q`-quantile (0..=1) of sorted `values`; `None` stands for "never", sorted last.
fn quantile(sorted: &[Option<f64>], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn sort_latencies(values: &mut [Option<f64>]) {
    values.sort_by(|a, b| match (a, b) {
        (Some(x), Some(y)) => x.total_cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    });
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Raw verification bursts before the nodes start, and again after they stop.
fn baseline_bursts(items: &VerifyItems) -> Vec<Burst> {
    eprintln!("settle-bench network: measuring the raw verification baseline");
    let burst = Duration::from_millis(BASELINE_BURST_MS);
    (0..BASELINE_BURSTS)
        .map(|_| Burst::measure(items, burst))
        .collect()
}

/// The baseline's fields: the raw verification rates (spread of the bursts before and
/// after the network ran) and the ratios of the finalized rate to the network's
/// signature bound, where every validator verifies every transaction once.
fn baseline_json(bursts: &[Burst], finalized: f64, validators: usize) -> serde_json::Value {
    let same: Vec<f64> = bursts.iter().map(|b| b.same_threads).collect();
    let one: Vec<f64> = bursts.iter().map(|b| b.one_thread).collect();
    let per_tx = (SIGS_PER_TX * validators) as f64;
    let bound = |v: &[f64]| Spread::of(v).map_or(f64::NAN, |s| s.median) / per_tx;
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    serde_json::json!({
        "baseline_measured": "before the nodes start and after they stop, not while they run \
            (a burst would take the nodes' cores)",
        "raw_verify_per_sec_same_threads": spread_json(&same, 0),
        "raw_verify_per_sec_one_thread": spread_json(&one, 0),
        "signature_bound_tx_per_sec_same_threads": bound(&same).round(),
        "signature_bound_tx_per_sec_one_thread": bound(&one).round(),
        RATIO_SAME_THREADS: round3(finalized / bound(&same)),
        RATIO_ONE_THREAD: round3(finalized / bound(&one)),
    })
}

/// Runs the scenario, with the raw verification baseline measured before and after.
pub fn run(args: &NetworkArgs) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let n = to_usize(args.rate * args.duration_secs)?;
    let items = VerifyItems::new();
    let mut bursts = baseline_bursts(&items);

    eprintln!(
        "settle-bench network: starting {} validators on loopback",
        args.validators
    );
    let net = Network::start(
        args.validators,
        &format!("{BENCH_NETWORK_CONFIG}{}", args.config),
    )?;
    let keys = net.dir.join("keys");
    let cash_issuer = read_key_file(&keys.join("issuer-cash.key"));
    let security_issuer = read_key_file(&keys.join("issuer-security.key"));
    let clients: Vec<RpcClient> = net
        .nodes
        .iter()
        .map(|node| {
            RpcClient::with_timeout(
                node.url(),
                settle_rpc::Auth::cookie_in(&node.datadir),
                SUBMIT_TIMEOUT_MS,
            )
        })
        .collect();
    let chain_id = clients[0].get_blockchain_info()?.chain_id;

    eprintln!("settle-bench network: building and signing {n} DvP transactions");
    let sign_start = Instant::now();
    let workload = build_workload(chain_id, &cash_issuer, &security_issuer, n);
    let sign_secs = sign_start.elapsed().as_secs_f64();

    eprintln!(
        "settle-bench network: funding ({} issuances)",
        workload.funding.len()
    );
    let fund_start = Instant::now();
    fund(&net, &clients, &workload.funding)?;
    let fund_secs = fund_start.elapsed().as_secs_f64();
    let start_height = clients[0].get_block_count()?;

    let wanted: HashMap<Txid, usize> = workload
        .dvp
        .iter()
        .enumerate()
        .map(|(i, p)| (p.txid, i))
        .collect();
    let confirmed = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let interval_ns = 1e9 / args.rate as f64;
    eprintln!(
        "settle-bench network: offering {} DvP tx/s for {} s from {} clients",
        args.rate, args.duration_secs, args.clients
    );

    let (reports, seen, load_start, load_end, drained) = std::thread::scope(|s| {
        let tracker = s.spawn(|| track(&clients[0], start_height, &wanted, &confirmed, &stop));
        let load_start = Instant::now();
        let load_deadline = load_start + Duration::from_secs(args.duration_secs);
        let workers: Vec<_> = (0..args.clients)
            .map(|first| {
                let (clients, txs) = (&clients, &workload.dvp);
                s.spawn(move || {
                    submit_share(
                        clients,
                        txs,
                        Share {
                            first,
                            stride: args.clients,
                            batch: args.batch,
                            start: load_start,
                            interval_ns,
                            end: load_deadline,
                        },
                    )
                })
            })
            .collect();
        let reports: Vec<ClientReport> = workers
            .into_iter()
            .map(|w| w.join().expect("a client thread panicked"))
            .collect();
        let load_end = Instant::now();
        let accepted = reports
            .iter()
            .flat_map(|r| &r.sent)
            .filter(|s| s.accepted)
            .count();
        let deadline = load_end + Duration::from_secs(args.drain_secs);
        let mut drained = false;
        while Instant::now() < deadline && !tracker.is_finished() {
            if confirmed.load(Ordering::Acquire) >= accepted {
                drained = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(DRAIN_POLL_MS));
        }
        stop.store(true, Ordering::Release);
        let seen = tracker.join().expect("the tracker panicked");
        (reports, seen, load_start, load_end, drained)
    });
    let seen = seen?;

    if let Some(dir) = &args.logs {
        std::fs::create_dir_all(dir)?;
        for node in &net.nodes {
            std::fs::write(dir.join(format!("{}.log", node.name)), node.log())?;
        }
    }
    // Every node agrees on the tip (hash and UTXO commitment) after the load.
    let final_height = seen.last().map_or(start_height, |b| b.height);
    let tip = net.wait_converged(&clients, final_height, CONVERGE_TIMEOUT_MS)?;
    // Dropping the network kills its processes and removes its directory.
    drop(net);
    bursts.extend(baseline_bursts(&items));

    // When each transaction was seen final.
    let mut final_at: Vec<Option<Instant>> = vec![None; workload.dvp.len()];
    for block in &seen {
        for txid in &block.txids {
            if let Some(&i) = wanted.get(txid) {
                final_at[i] = Some(block.seen_at);
            }
        }
    }
    let sent: Vec<&Sent> = reports.iter().flat_map(|r| &r.sent).collect();
    let accepted: Vec<&&Sent> = sent.iter().filter(|s| s.accepted).collect();
    let mut latencies: Vec<Option<f64>> = accepted
        .iter()
        .map(|s| final_at[s.index].map(|at| at.duration_since(s.sent_at).as_secs_f64() * 1000.0))
        .collect();
    sort_latencies(&mut latencies);
    let finalized = latencies.iter().filter(|l| l.is_some()).count();
    let mut calls: Vec<Option<f64>> = sent.iter().map(|s| Some(s.call_ms)).collect();
    sort_latencies(&mut calls);

    // The sustained rate: transactions finalized in the load window after the warm-up.
    let load_secs = load_end.duration_since(load_start).as_secs_f64();
    let warmup = Duration::from_millis(MAX_WARMUP_MS.min(args.duration_secs * 1000 / 4));
    let window_from = load_start + warmup;
    let window_secs = load_end.duration_since(window_from).as_secs_f64();
    let in_window: usize = seen
        .iter()
        .filter(|b| b.seen_at >= window_from && b.seen_at <= load_end)
        .map(|b| b.txids.iter().filter(|t| wanted.contains_key(t)).count())
        .sum();
    let sustained = in_window as f64 / window_secs;
    let last_final = final_at.iter().flatten().max().copied();
    let overall = last_final.map_or(0.0, |at| {
        finalized as f64 / at.duration_since(load_start).as_secs_f64()
    });
    let load_blocks: Vec<&SeenBlock> = seen
        .iter()
        .filter(|b| b.txids.iter().any(|t| wanted.contains_key(t)))
        .collect();
    let block_sizes: Vec<usize> = load_blocks
        .iter()
        .map(|b| b.txids.iter().filter(|t| wanted.contains_key(t)).count())
        .collect();
    let mean_interval_ms = match (load_blocks.first(), load_blocks.last()) {
        (Some(a), Some(b)) if load_blocks.len() > 1 => Some(round1(
            b.seen_at.duration_since(a.seen_at).as_secs_f64() * 1000.0
                / (load_blocks.len() - 1) as f64,
        )),
        _ => None,
    };
    let median = quantile(&latencies, 0.5);
    let p99 = quantile(&latencies, 0.99);
    let mut errors = BTreeMap::new();
    let mut examples = Vec::new();
    for r in &reports {
        for (k, v) in &r.errors {
            *errors.entry(k.clone()).or_insert(0usize) += v;
        }
        examples.extend(r.examples.iter().cloned());
    }
    examples.truncate(MAX_ERROR_EXAMPLES);
    let throughput_met = sustained >= TARGET_TX_PER_SEC;
    let median_met = median.is_some_and(|m| m < TARGET_MEDIAN_FINALITY_MS);

    let mut line = serde_json::json!({
        "scenario": "network",
        "validators": args.validators,
        "threads": validation_threads(),
        "offered_tx_per_sec": args.rate,
        "duration_secs": args.duration_secs,
        "clients": args.clients,
        "batch": args.batch,
        "sigs_per_tx": SIGS_PER_TX,
        "finalized_tx_per_sec": sustained.round(),
        "finalized_tx_per_sec_overall": overall.round(),
        "median_finality_ms": median.map(round1),
        "p99_finality_ms": p99.map(round1),
        "targets": {
            "min_tx_per_sec": TARGET_TX_PER_SEC,
            "max_median_finality_ms": TARGET_MEDIAN_FINALITY_MS,
            "tx_per_sec_met": throughput_met,
            "median_finality_met": median_met,
            "met": throughput_met && median_met,
        },
        "submitted": sent.len(),
        "not_sent_behind_schedule": workload.dvp.len() - sent.len(),
        "accepted": accepted.len(),
        "finalized": finalized,
        "drained": drained,
        "rejected": errors,
        "rejection_examples": examples,
        "achieved_submit_tx_per_sec": (sent.len() as f64 / load_secs).round(),
        "submit_call_ms_p50": quantile(&calls, 0.5).map(round1),
        "submit_call_ms_p99": quantile(&calls, 0.99).map(round1),
        "warmup_ms": warmup.as_millis(),
        "blocks": load_blocks.len(),
        "txs_per_block_mean": if block_sizes.is_empty() { 0.0 } else {
            round1(block_sizes.iter().sum::<usize>() as f64 / block_sizes.len() as f64)
        },
        "txs_per_block_max": block_sizes.iter().max().copied().unwrap_or(0),
        "block_interval_ms_mean": mean_interval_ms,
        "tip_height": tip.blocks,
        "nodes_agree_on_tip": true,
        "build_and_sign_secs": round1(sign_secs),
        "funding_secs": round1(fund_secs),
    });
    if let (Some(obj), serde_json::Value::Object(extra)) = (
        line.as_object_mut(),
        baseline_json(&bursts, sustained, args.validators),
    ) {
        obj.extend(extra);
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<NetworkArgs, String> {
        parse_args(&args.iter().map(|s| (*s).to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn options_parse_and_bad_ones_are_named() {
        let args = parse(&["--clients", "32", "--batch", "20", "--rate", "2500"]).expect("valid");
        assert_eq!((args.clients, args.batch, args.rate), (32, 20, 2500));
        assert_eq!(parse(&[]).expect("defaults").batch, 1);
        let err = parse(&["--batch", "101"]).expect_err("over the node's batch limit");
        assert!(err.contains("--batch"), "{err}");
        let err = parse(&["--batch", "0"]).expect_err("zero");
        assert!(err.contains("--batch"), "{err}");
        let err = parse(&["--clients"]).expect_err("no value");
        assert!(err.contains("--clients needs a value"), "{err}");
        assert!(parse(&["--frobnicate"]).is_err());
    }
}
