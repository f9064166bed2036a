//! Consistent reads under load (`spec/rpc.md`, "Consistent reads"): two wallets send back
//! to back while the dev node decides a block every few tens of milliseconds, so blocks
//! connect between the parts of every read a wallet makes. Before reads were served from
//! one snapshot, about 1 % of such sends failed with a spurious "double-spend" or
//! "insufficient funds: you have 0.00".
//!
//! `SETTLE_CONSISTENT_SENDS` sets the number of sends (both wallets together); CI runs
//! the default, a short slice. The campaign the issue asks for:
//!
//! ```sh
//! SETTLE_CONSISTENT_SENDS=1000 cargo test -p settle-tests --test wallet_consistent_reads -- --nocapture
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use settle_tests::node::TestNode;
use settle_tests::wallet::{Wallet, issuers};

/// Sends in CI: enough for blocks to connect during many of them, done in seconds.
const DEFAULT_SENDS: usize = 40;

fn sends_wanted() -> usize {
    std::env::var("SETTLE_CONSISTENT_SENDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n: &usize| *n >= 2)
        .unwrap_or(DEFAULT_SENDS)
}

/// One wallet's run: `count` sends of 0.01 EUR to `to`, back to back. Returns the
/// failures (their messages) and how many sends needed the wallet's one retry.
fn send_loop(from: &Wallet, to: &str, count: usize, retried: &AtomicUsize) -> Vec<String> {
    let mut failures = Vec::new();
    for _ in 0..count {
        let run = from.run_json(&["send", "0.01", "EUR", to]);
        if !run.ok {
            failures.push(format!("{}: {}", from.name, run.stderr.trim()));
            continue;
        }
        if run.json()["attempts"].as_u64() != Some(1) {
            retried.fetch_add(1, Ordering::Relaxed);
        }
    }
    failures
}

#[test]
fn back_to_back_sends_while_blocks_connect_never_fail_spuriously() {
    let mut node = TestNode::start_dev();
    // A block every 20 ms whether or not anything waits: blocks connect under the
    // wallets' feet all the time.
    node.write_config(
        "[producer]\nempty_blocks = true\nempty_block_interval_ms = 20\nbatch_delay_ms = 0\n\
         [storage]\nsync_writes = false\n",
    );
    node.restart();
    let (cb, _csd, _eur, _bond) = issuers(&node, "1,000,000.00", "10");
    let alice = Wallet::create(&node, "alice");
    let bob = Wallet::create(&node, "bob");
    let (a, b) = (alice.address(), bob.address());
    cb.ok(&["send", "1,000.00", "EUR", &a, "--wait"]);
    cb.ok(&["send", "1,000.00", "EUR", &b, "--wait"]);
    let start_height = node.info().blocks;

    let sends = sends_wanted();
    let retried = AtomicUsize::new(0);
    let started = Instant::now();
    let failures: Vec<String> = std::thread::scope(|s| {
        let one = s.spawn(|| send_loop(&alice, &b, sends / 2, &retried));
        let two = s.spawn(|| send_loop(&bob, &a, sends - sends / 2, &retried));
        let mut all = one.join().expect("alice's thread");
        all.extend(two.join().expect("bob's thread"));
        all
    });
    let blocks = node.info().blocks - start_height;
    eprintln!(
        "{sends} sends in {:.1} s while {blocks} blocks connected: {} spurious failures, {} \
         sends retried once after a stale view",
        started.elapsed().as_secs_f64(),
        failures.len(),
        retried.load(Ordering::Relaxed)
    );
    assert!(
        blocks >= (sends / 4) as u64,
        "blocks must connect during the sends for the test to mean anything: {blocks} blocks"
    );
    assert!(
        failures.is_empty(),
        "{} of {sends} sends failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    node.wait_mempool_empty();
    // Nothing was lost or made up: the two wallets still hold 2,000.00 EUR between them.
    let total: f64 = [&alice, &bob]
        .iter()
        .map(|w| {
            w.balances()
                .get("EUR")
                .map_or(0.0, |v| v.replace(',', "").parse::<f64>().expect("amount"))
        })
        .sum();
    assert!((total - 2_000.0).abs() < 1e-6, "alice and bob hold {total}");
}
