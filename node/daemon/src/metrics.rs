//! Counters served at `/metrics` in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Most distinct (class, code) label pairs kept: codes come from a fixed list, so this
/// only guards against a bug turning free text into labels.
const MAX_REJECT_LABELS: usize = 256;

#[derive(Debug, Default)]
pub struct Metrics {
    pub blocks_connected: AtomicU64,
    pub txs_accepted: AtomicU64,
    pub txs_confirmed: AtomicU64,
    pub rpc_requests: AtomicU64,
    /// RPC connections open now (a gauge).
    pub rpc_connections_open: AtomicU64,
    /// RPC connections closed at once because `rpc.max_connections` were open.
    pub rpc_connections_refused: AtomicU64,
    /// RPC connections closed because headers or a body did not arrive in time.
    pub rpc_connections_timed_out: AtomicU64,
    /// (reject class, reject code) -> count.
    rejected: Mutex<BTreeMap<(String, String), u64>>,
    /// Removal reason -> count of transactions that left the mempool unconfirmed.
    removed: Mutex<BTreeMap<&'static str, u64>>,
    /// The consensus node's misbehaviour records, once consensus runs.
    peers: OnceLock<Arc<settle_consensus::PeerGuard>>,
}

/// Gauges read at scrape time.
#[derive(Debug, Clone, Copy)]
pub struct Gauges {
    pub height: u64,
    pub mempool_txs: u64,
    pub mempool_bytes: u64,
    pub utxo_count: u64,
    pub asset_count: u64,
    /// The disk is full: the node admits and connects nothing (`spec/storage.md`).
    pub storage_full: bool,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64, by: u64) {
        counter.fetch_add(by, Ordering::Relaxed);
    }

    pub fn rejected(&self, class: &str, code: &str) {
        let mut map = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
        let key = (class.to_owned(), code.to_owned());
        if map.len() >= MAX_REJECT_LABELS && !map.contains_key(&key) {
            *map.entry(("other".into(), "other".into())).or_default() += 1;
            return;
        }
        *map.entry(key).or_default() += 1;
    }

    pub fn rejected_total(&self) -> u64 {
        self.rejected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum()
    }

    /// Where the peer misbehaviour counters are read from.
    pub fn set_peer_guard(&self, guard: Arc<settle_consensus::PeerGuard>) {
        let _ = self.peers.set(guard);
    }

    pub fn removed(&self, reason: &'static str) {
        *self
            .removed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    /// The Prometheus text exposition.
    pub fn render(&self, g: Gauges) -> String {
        let mut out = String::with_capacity(2048);
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "settle_chain_height",
            "gauge",
            "Height of the chain tip.",
            g.height,
        );
        metric(
            "settle_mempool_transactions",
            "gauge",
            "Transactions waiting in the mempool.",
            g.mempool_txs,
        );
        metric(
            "settle_mempool_bytes",
            "gauge",
            "Encoded size of the transactions in the mempool.",
            g.mempool_bytes,
        );
        metric(
            "settle_utxo_count",
            "gauge",
            "Coins in the UTXO set.",
            g.utxo_count,
        );
        metric(
            "settle_asset_count",
            "gauge",
            "Assets in the registry.",
            g.asset_count,
        );
        metric(
            "settle_storage_full",
            "gauge",
            "1 while the disk is full and the node admits and connects nothing.",
            u64::from(g.storage_full),
        );
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        metric(
            "settle_blocks_connected_total",
            "counter",
            "Blocks connected since the node started.",
            load(&self.blocks_connected),
        );
        metric(
            "settle_transactions_accepted_total",
            "counter",
            "Transactions accepted into the mempool since the node started.",
            load(&self.txs_accepted),
        );
        metric(
            "settle_transactions_confirmed_total",
            "counter",
            "Transactions confirmed in blocks connected since the node started.",
            load(&self.txs_confirmed),
        );
        metric(
            "settle_rpc_requests_total",
            "counter",
            "JSON-RPC requests served since the node started.",
            load(&self.rpc_requests),
        );
        metric(
            "settle_rpc_connections_open",
            "gauge",
            "JSON-RPC connections open now.",
            load(&self.rpc_connections_open),
        );
        metric(
            "settle_rpc_connections_refused_total",
            "counter",
            "JSON-RPC connections closed at once because the connection cap was reached.",
            load(&self.rpc_connections_refused),
        );
        metric(
            "settle_rpc_connections_timed_out_total",
            "counter",
            "JSON-RPC connections closed because headers or a body did not arrive in time.",
            load(&self.rpc_connections_timed_out),
        );
        out.push_str(
            "# HELP settle_transactions_rejected_total Transactions rejected, by reject class and code.\n\
             # TYPE settle_transactions_rejected_total counter\n",
        );
        for ((class, code), n) in self
            .rejected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "settle_transactions_rejected_total{{class=\"{class}\",code=\"{code}\"}} {n}"
            );
        }
        out.push_str(
            "# HELP settle_mempool_removed_total Transactions that left the mempool unconfirmed, by reason.\n\
             # TYPE settle_mempool_removed_total counter\n",
        );
        for (reason, n) in self
            .removed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "settle_mempool_removed_total{{reason=\"{reason}\"}} {n}"
            );
        }
        let peers = self.peers.get().map(|g| g.counts()).unwrap_or_default();
        out.push_str(
            "# HELP settle_peer_misbehaviour_total Offences by peers (invalid data they sent), by offence.\n\
             # TYPE settle_peer_misbehaviour_total counter\n",
        );
        for offence in settle_consensus::Offence::ALL {
            let n = peers.offences.get(&offence).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "settle_peer_misbehaviour_total{{offence=\"{offence}\"}} {n}"
            );
        }
        let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        };
        metric(
            "settle_peer_bans_total",
            "counter",
            "Peers disconnected and banned for misbehaviour since the node started.",
            peers.bans,
        );
        metric(
            "settle_peers_banned",
            "gauge",
            "Peers banned right now.",
            peers.banned_now,
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_lists_every_family_with_labels() {
        let m = Metrics::default();
        Metrics::inc(&m.blocks_connected, 3);
        m.rejected("conflict", "double-spend");
        m.rejected("conflict", "double-spend");
        let text = m.render(Gauges {
            height: 7,
            mempool_txs: 2,
            mempool_bytes: 300,
            utxo_count: 5,
            asset_count: 1,
            storage_full: true,
        });
        assert!(text.contains("\nsettle_chain_height 7\n"), "{text}");
        assert!(text.contains("\nsettle_storage_full 1\n"), "{text}");
        assert!(text.contains("\nsettle_rpc_connections_open 0\n"), "{text}");
        assert!(
            text.contains("\nsettle_blocks_connected_total 3\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "settle_transactions_rejected_total{class=\"conflict\",code=\"double-spend\"} 2"
            ),
            "{text}"
        );
        // Before consensus runs, the peer families are there with zeros.
        assert!(
            text.contains("settle_peer_misbehaviour_total{offence=\"invalid_transaction\"} 0"),
            "{text}"
        );
        assert!(text.contains("\nsettle_peer_bans_total 0\n"), "{text}");
    }
}
