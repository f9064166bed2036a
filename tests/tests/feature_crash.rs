//! A validator killed at any moment never signs two different values for one height,
//! round and step, and the network ends with one chain (issue 11; `spec/consensus.md`,
//! "After a crash").
//!
//! Real `settled` processes. The crashing validator (node 0) is started with the
//! `SETTLE_CRASH_AT=<point>:<nth>` test hook, which aborts the process at a named point
//! of a height (around each signature, after the decision, around the block write), or
//! is killed with `kill -9` at a random moment, under a steady transaction load. What it
//! signed is read from its peers: every node runs with `SETTLE_VOTE_LOG`, where it
//! appends each vote (signature checked) and each signed proposal it receives.
//!
//! CI runs a short slice. The full campaign:
//! `SETTLE_CRASH_POINTS=120 cargo test -p settle-tests --test feature_crash -- --nocapture`
//! runs that many kill points on a 1-validator and on a 4-validator network and prints
//! the figures.

#![allow(clippy::panic)] // test code: a panic is how a test reports failure

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use settle_assets::Txid;
use settle_tests::node::*;

/// Every crash point `settled` has (`settle_consensus::crash::POINTS`).
const CRASH_POINTS: [&str; 8] = settle_consensus::crash::POINTS;
/// Kill points per network in CI.
const CI_KILL_POINTS: usize = 5;
/// Producer settings: a height every quarter second even without transactions, so
/// every crash point is reached soon.
const CRASH_NETWORK_CONFIG: &str =
    "[producer]\nempty_blocks = true\nempty_block_interval_ms = 250\nbatch_delay_ms = 50\n";
/// How long an armed node may run before the test gives up on its crash point (and
/// kills it with `kill -9` instead).
const CRASH_WAIT_MS: u64 = 20_000;
/// Bound on the network agreeing again after the campaign.
const CONVERGE_MS: u64 = 90_000;
/// Interval between load transactions.
const LOAD_INTERVAL_MS: u64 = 60;
/// Coins the funding issuance creates (one per load transaction).
const FUNDING_OUTPUTS: usize = 800;

/// One signed message as a peer logged it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    /// `vote prevote`, `vote precommit` or `proposal`.
    kind: String,
    signer: String,
    height: u64,
    round: i64,
}

/// What a peer saw signed, by (kind, signer, height, round): every value.
type Signed = BTreeMap<Seen, BTreeSet<String>>;

/// Parses vote logs: `vote <signer> <height> <round> <type> <value>` and
/// `proposal <signer> <height> <round> <pol_round> <block>`.
fn read_vote_logs(paths: &[PathBuf]) -> Signed {
    let mut signed = Signed::new();
    for path in paths {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for line in text.lines() {
            let f: Vec<&str> = line.split(' ').collect();
            let (kind, value) = match f.as_slice() {
                ["vote", _, _, _, step, value] => (format!("vote {step}"), value.to_string()),
                ["proposal", _, _, _, pol, block] => ("proposal".into(), format!("{block}@{pol}")),
                // A line cut short by a crash of the logging node.
                _ => continue,
            };
            let (Ok(height), Ok(round)) = (f[2].parse(), f[3].parse()) else {
                continue;
            };
            let seen = Seen {
                kind,
                signer: f[1].to_string(),
                height,
                round,
            };
            signed.entry(seen).or_default().insert(value);
        }
    }
    signed
}

/// Every (kind, signer, height, round) with more than one value.
fn double_signatures(signed: &Signed) -> Vec<String> {
    signed
        .iter()
        .filter(|(_, values)| values.len() > 1)
        .map(|(seen, values)| format!("{seen:?}: {values:?}"))
        .collect()
}

/// A network under test, with its load and what it confirmed.
struct Campaign {
    net: TestNetwork,
    /// The node asked about confirmations (never killed).
    observer: usize,
    /// The node that receives the load: the lone validator itself (a follower does
    /// not relay again to a validator that restarted), else the observer.
    load_target: usize,
    /// Unspent funding coins, one per load transaction.
    coins: Vec<Owned>,
    sink: secp256k1::Keypair,
    /// Accepted by a node, not yet seen confirmed.
    pending: Vec<Txid>,
    /// Seen confirmed at some point: must be in every node's final chain.
    confirmed: HashSet<Txid>,
    rng_state: u64,
    chain_id: settle_assets::ChainId,
    /// Kill points run, and how many reached their crash point.
    kills: usize,
    crashes_reached: usize,
}

impl Campaign {
    fn start(validators: usize, full_nodes: usize) -> Campaign {
        let mut net = TestNetwork::create(validators, full_nodes, CRASH_NETWORK_CONFIG);
        let total = validators + full_nodes;
        for i in 0..total {
            let env = [("SETTLE_VOTE_LOG", vote_log(&net, i))];
            net.nodes[i].spawn_with_env(&env);
        }
        for i in 0..total {
            assert!(
                net.nodes[i].wait_rpc(START_TIMEOUT_MS),
                "node{i} did not start"
            );
        }
        let observer = 1;
        let chain_id = net.chain_id();
        let issuer = net.issuer_cash();
        let holder = new_key();
        let contract = cash_contract(&issuer, "Crash cash", "CRSH");
        let outputs: Vec<(Vec<u8>, u64)> =
            (0..FUNDING_OUTPUTS).map(|_| (p2k(&holder), 1)).collect();
        let (funding, _) = issue_tx(chain_id, &contract, &issuer, &outputs);
        // Sent to a validator: a follower relays only to peers connected when the
        // transaction arrives, and right after start-up there may be none yet.
        let load_target = if validators == 1 { 0 } else { observer };
        let txid = net.nodes[load_target]
            .client()
            .send_raw_transaction(&funding)
            .expect("the funding issuance is accepted");
        net.nodes[observer].wait_confirmed(&txid, CONVERGE_MS);
        let coins = (0..FUNDING_OUTPUTS)
            .map(|i| owned(&funding, u32::try_from(i).expect("few outputs"), &holder))
            .rev()
            .collect();
        Campaign {
            load_target,
            net,
            observer,
            coins,
            sink: new_key(),
            pending: Vec::new(),
            confirmed: HashSet::from([txid]),
            rng_state: u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15,
            chain_id,
            kills: 0,
            crashes_reached: 0,
        }
    }

    fn random(&mut self, below: u64) -> u64 {
        // xorshift: enough to spread kill moments; the seed is printed on failure.
        self.rng_state ^= self.rng_state << 13;
        self.rng_state ^= self.rng_state >> 7;
        self.rng_state ^= self.rng_state << 17;
        self.rng_state % below
    }

    /// Sends one load transaction to the observer (a refusal is fine: a coin may
    /// already be spent by a transaction a crash left in some mempool).
    fn send_one(&mut self) {
        let Some(coin) = self.coins.pop() else {
            return;
        };
        let chain_id = self.chain_id;
        let tx = spend_tx(
            chain_id,
            std::slice::from_ref(&coin),
            vec![pay(coin.output.asset, 1, &self.sink)],
            0,
        );
        let target = &self.net.nodes[self.load_target];
        let client = settle_rpc::RpcClient::with_timeout(
            target.url(),
            settle_rpc::Auth::cookie_in(&target.datadir),
            2_000,
        );
        match client.send_raw_transaction(&tx) {
            Ok(txid) => self.pending.push(txid),
            // Refused (its coin spent by a transaction a crash left in some
            // mempool): the coin is used up.
            Err(e) if e.rpc().is_some() => {}
            // Not reached (the node is down or starting): the coin is kept.
            Err(_) => self.coins.push(coin),
        }
    }

    /// Moves the pending transactions the observer reports confirmed to `confirmed`.
    fn note_confirmations(&mut self) {
        let client = self.net.nodes[self.observer].client();
        let confirmed = &mut self.confirmed;
        self.pending.retain(|txid| {
            let height = client.get_raw_transaction(txid).ok().and_then(|i| i.height);
            if height.is_some() {
                confirmed.insert(*txid);
            }
            height.is_none()
        });
    }

    /// Runs node 0 under load until it dies at its crash point (or, for `kill-9`,
    /// until a random moment when the test kills it).
    fn kill_once(&mut self, point: &str, nth: u64) {
        self.kills += 1;
        let mut env = vec![("SETTLE_VOTE_LOG", vote_log(&self.net, 0))];
        let armed = point != "kill-9";
        if armed {
            env.push(("SETTLE_CRASH_AT", format!("{point}:{nth}")));
        }
        self.net.nodes[0].spawn_with_env(&env);
        let run_ms = if armed {
            CRASH_WAIT_MS
        } else {
            300 + self.random(1_700)
        };
        let deadline = Instant::now() + Duration::from_millis(run_ms);
        let mut exited = None;
        while Instant::now() < deadline {
            self.send_one();
            if let Some(status) = self.net.nodes[0].wait_exit_for(LOAD_INTERVAL_MS) {
                exited = Some(status);
                break;
            }
        }
        match exited {
            Some(status) => {
                assert!(
                    armed,
                    "node0 exited by itself ({status}) without a crash point"
                );
                assert!(!status.success(), "a crash is not a clean exit");
                self.crashes_reached += 1;
            }
            None => self.net.nodes[0].kill9(),
        }
        self.note_confirmations();
    }

    /// Restarts node 0 without hooks, lets the network agree, and checks everything
    /// the issue asks: one chain, every confirmed transaction kept, no double
    /// signature seen by any peer, `settled verify` on every data directory. Returns
    /// the figures.
    fn finish(mut self, label: &str) -> String {
        let env = [("SETTLE_VOTE_LOG", vote_log(&self.net, 0))];
        self.net.nodes[0].spawn_with_env(&env);
        assert!(
            self.net.nodes[0].wait_rpc(START_TIMEOUT_MS),
            "node0 restarts clean"
        );
        for _ in 0..5 {
            self.send_one();
        }
        let height = self.net.nodes[self.observer].info().blocks;
        let all: Vec<usize> = (0..self.net.nodes.len()).collect();
        let tip = self.net.wait_converged(&all, height + 1, CONVERGE_MS);
        self.note_confirmations();

        let mut lost = Vec::new();
        for node in &self.net.nodes {
            let client = node.client();
            for txid in &self.confirmed {
                let kept = client
                    .get_raw_transaction(txid)
                    .ok()
                    .and_then(|i| i.height)
                    .is_some();
                if !kept {
                    lost.push(format!("{txid} on {}", node.name));
                }
            }
        }
        // Observers only: what node 0 signed is taken from its peers.
        let logs: Vec<PathBuf> = (1..self.net.nodes.len())
            .map(|i| PathBuf::from(vote_log(&self.net, i)))
            .collect();
        let signed = read_vote_logs(&logs);
        let doubles = double_signatures(&signed);
        let signers: BTreeSet<&str> = signed.keys().map(|s| s.signer.as_str()).collect();
        let equivocations: usize = (1..self.net.nodes.len())
            .map(|i| {
                self.net.nodes[i]
                    .log()
                    .matches("validator equivocated")
                    .count()
            })
            .sum();

        for node in &mut self.net.nodes {
            node.stop();
        }
        for node in &self.net.nodes {
            let out = run_settled(&["verify", "--datadir", node.datadir.to_str().expect("utf-8")]);
            assert!(
                out.status.success(),
                "settled verify failed on {}: {}{}",
                node.name,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let figures = format!(
            "crash campaign ({label}): kill points {} (crash points reached {}), height {}, \
             signed messages checked {} from {} signers, double signatures {}, \
             equivocation reports {equivocations}, confirmed transactions {}, lost {}",
            self.kills,
            self.crashes_reached,
            tip.blocks,
            signed.len(),
            signers.len(),
            doubles.len(),
            self.confirmed.len(),
            lost.len()
        );
        eprintln!("{figures}");
        assert!(
            doubles.is_empty(),
            "double signatures seen by peers: {doubles:#?}"
        );
        assert_eq!(equivocations, 0, "a peer reported equivocation");
        assert!(lost.is_empty(), "confirmed transactions lost: {lost:?}");
        assert!(
            signers.len() == self.net.nodes.iter().filter(|n| n.validator).count(),
            "every validator's messages were seen: {signers:?}"
        );
        figures
    }
}

fn vote_log(net: &TestNetwork, node: usize) -> String {
    let path: &Path = &net.dir;
    path.join(format!("node{node}.votes"))
        .to_str()
        .expect("utf-8 path")
        .to_string()
}

/// The kill points of a run: each crash point in turn with a small `nth`, and a
/// `kill -9` every ninth time.
fn kill_plan(count: usize, campaign: &mut Campaign) -> Vec<(String, u64)> {
    (0..count)
        .map(|i| {
            let slot = i % (CRASH_POINTS.len() + 1);
            let point = CRASH_POINTS.get(slot).copied().unwrap_or("kill-9");
            (point.to_string(), 1 + campaign.random(3))
        })
        .collect()
}

fn kill_points() -> usize {
    std::env::var("SETTLE_CRASH_POINTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CI_KILL_POINTS)
}

fn run_campaign(validators: usize, full_nodes: usize, label: &str) {
    let mut campaign = Campaign::start(validators, full_nodes);
    // node 0 is killed over and over: stop its first run.
    campaign.net.nodes[0].kill9();
    let plan = kill_plan(kill_points(), &mut campaign);
    for (point, nth) in plan {
        campaign.kill_once(&point, nth);
    }
    assert!(campaign.crashes_reached > 0, "no crash point was reached");
    campaign.finish(label);
}

#[test]
fn a_lone_validator_killed_anywhere_never_signs_twice_and_keeps_its_chain() {
    // A follower watches the validator's votes and proposals.
    run_campaign(1, 1, "1 validator + 1 follower");
}

#[test]
fn a_validator_of_four_killed_anywhere_never_signs_twice_and_rejoins_the_chain() {
    run_campaign(4, 0, "4 validators");
}

/// The regression of issue 11: a validator killed after deciding a block but before
/// writing it used to find the block unknown after the restart, restart the height
/// (resetting its consensus WAL) and propose and vote for another block at the same
/// height and round. Its follower must see one proposal and one vote per step.
#[test]
fn a_validator_killed_between_decision_and_block_write_reconnects_the_same_block() {
    let mut campaign = Campaign::start(1, 1);
    campaign.net.nodes[0].kill9();
    for nth in [1, 2] {
        campaign.kill_once("decided-before-write", nth);
    }
    assert_eq!(
        campaign.crashes_reached, 2,
        "both crashes happened where asked"
    );
    let log = campaign.net.nodes[0].log();
    assert_eq!(
        log.matches("SETTLE_CRASH_AT: crashing at decided-before-write")
            .count(),
        2
    );
    assert!(
        !log.contains("is not stored on this node"),
        "the decided block was read back from the candidates"
    );
    assert!(log.contains("candidate blocks read back"), "{log}");
    campaign.finish("decision without block write");
}

/// What an attacker with write access to a data directory (or an operator restoring
/// an old backup) could do to the double-sign guard: a state file that went
/// backwards or was damaged makes the validator stop with a clear error and a
/// non-zero exit, having signed nothing.
#[test]
fn a_validator_with_a_tampered_signed_state_stops_without_signing() {
    let cases = [
        (
            "settle-signed-state 1\nprevote 1000 height - -\nprecommit 1000 height - -\n",
            "refusing to sign a prevote at height 1 round 0",
        ),
        ("not a guard file\n", "is damaged"),
    ];
    for (state, expected) in cases {
        let mut net = TestNetwork::create(1, 0, CRASH_NETWORK_CONFIG);
        let consensus_dir = net.nodes[0].datadir.join("consensus");
        std::fs::create_dir_all(&consensus_dir).expect("consensus dir");
        std::fs::write(consensus_dir.join("signed_state"), state).expect("write state");
        let votes = vote_log(&net, 0);
        net.nodes[0].spawn_with_env(&[("SETTLE_VOTE_LOG", votes)]);
        let status = net.nodes[0]
            .wait_exit_for(CRASH_WAIT_MS)
            .unwrap_or_else(|| panic!("the validator kept running; log:\n{}", net.nodes[0].log()));
        let log = net.nodes[0].log();
        assert_eq!(status.code(), Some(1), "{log}");
        assert!(
            log.contains(expected),
            "{expected:?} not in the log:\n{log}"
        );
        let out = run_settled(&[
            "verify",
            "--datadir",
            net.nodes[0].datadir.to_str().expect("utf-8"),
        ]);
        assert!(out.status.success(), "the chain is intact");
        assert!(
            !log.contains("block connected"),
            "no block was decided:\n{log}"
        );
    }
}
