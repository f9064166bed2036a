//! The chain's clock bound (`spec/consensus.md`, "Clock"): a validator whose clock runs
//! an hour ahead proposes blocks dated an hour ahead; the honest validators refuse to
//! vote for them (and say why), the chain goes on without its proposals, and no block
//! is dated beyond the honest clocks plus the chain's `max_clock_drift_ms`.
//!
//! The fast validator is `settled` with the test hook `SETTLE_CLOCK_OFFSET_SECS`, which
//! shifts that process's clock; the other three are unchanged. Three of four equal
//! validators are a quorum, so the chain stays live.

use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use settle_tests::node::*;

/// Empty blocks keep heights (and so proposer turns) coming without transactions.
const EMPTY_BLOCKS: &str = "[producer]\nempty_blocks = true\nempty_block_interval_ms = 200\n";
const AHEAD: usize = 3;
const HONEST: [usize; 3] = [0, 1, 2];
/// How far the fast validator's clock runs ahead.
const AHEAD_SECS: u64 = 3_600;
/// The chain spec's default `max_clock_drift_ms`, which `settled testnet` keeps.
const MAX_DRIFT_MS: u64 = 30_000;
/// What an honest node logs when it votes nil for a proposal dated too far ahead.
const REFUSAL: &str = "dated too far ahead of this node's clock";

/// The fast validator's process, killed when the test ends.
struct FastNode(Child);

impl Drop for FastNode {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts node `AHEAD` of `net` with its clock shifted, logging where `NetNode::log`
/// reads, and waits for its RPC.
fn start_fast(net: &TestNetwork) -> FastNode {
    let node = &net.nodes[AHEAD];
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(node.datadir.with_extension("log"))
        .expect("log file");
    let child = Command::new(settled_bin())
        .args(["--datadir", node.datadir.to_str().expect("utf-8 path")])
        .env("RUST_LOG", "info")
        .env("SETTLE_CLOCK_OFFSET_SECS", AHEAD_SECS.to_string())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("spawn settled");
    let fast = FastNode(child);
    let client = node.client();
    wait_until(30_000, "the fast validator to answer rpc", || {
        client.get_blockchain_info().ok()
    });
    fast
}

fn now_ms() -> u64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970");
    u64::try_from(since.as_millis()).expect("fits")
}

#[test]
fn feature_a_validator_whose_clock_runs_ahead_cannot_date_the_chain_ahead() {
    let mut net = TestNetwork::create(4, 0, EMPTY_BLOCKS);
    for i in HONEST {
        net.nodes[i].start();
    }
    let _fast = start_fast(&net);
    let fast_key = hex::encode(
        xonly(&read_key_file(
            &net.nodes[AHEAD].datadir.join("keys").join("validator.key"),
        ))
        .serialize(),
    );
    assert!(
        net.nodes[AHEAD]
            .log()
            .contains("SETTLE_CLOCK_OFFSET_SECS shifts this node's clock"),
        "the hook is in effect"
    );

    // The fast validator's turn comes within a few heights; every honest node refuses
    // its proposal and names the reason.
    wait_until(
        90_000,
        "every honest node to refuse a fast proposal",
        || {
            HONEST
                .iter()
                .all(|&i| net.nodes[i].log().contains(REFUSAL))
                .then_some(())
        },
    );
    // The chain goes on after that, and the fast validator follows it (it votes for
    // blocks dated behind its clock: there is no lower bound).
    let refused_at = net.wait_converged(&HONEST, 1, 30_000).blocks;
    let tip = net
        .wait_converged(&[0, 1, 2, AHEAD], refused_at + 4, 90_000)
        .blocks;

    // No block carries the fast validator's time, and none is dated beyond the honest
    // clocks plus the allowed drift.
    let client = net.nodes[0].client();
    let bound = now_ms() + MAX_DRIFT_MS;
    let mut previous = 0;
    for height in 1..=tip {
        let hash: String = client
            .call("getblockhash", json!([height]))
            .expect("getblockhash");
        let block: Value = client.call("getblock", json!([hash, 1])).expect("getblock");
        let time_ms = block["time_ms"].as_u64().expect("time_ms");
        assert!(
            time_ms <= bound,
            "block {height} is dated {time_ms}, beyond {bound}"
        );
        assert!(time_ms > previous, "block {height}: time goes forward");
        previous = time_ms;
        assert_ne!(
            block["proposer"].as_str(),
            Some(fast_key.as_str()),
            "block {height} was proposed by the fast validator"
        );
    }
    let log = net.nodes[0].log();
    let line = log
        .lines()
        .find(|l| l.contains(REFUSAL))
        .expect("a refusal line");
    assert!(
        line.contains("limits.max_clock_drift_ms"),
        "the reason names the chain spec limit: {line}"
    );
}
