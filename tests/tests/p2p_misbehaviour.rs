//! A peer that sends invalid data is disconnected and banned for a while, and the
//! network goes on (`spec/consensus.md`, "Misbehaving peers").
//!
//! Three validators are real `settled` processes; the fourth validator's key is held
//! by a rogue built in the test process (`settle_tests::rogue`), which gossips bad
//! transactions or proposes blocks the honest nodes must refuse. Three honest
//! validators of four are a quorum, so blocks keep coming without the rogue.

use serde_json::{Value, json};
use settle_tests::node::*;
use settle_tests::rogue::{BadBlock, Rogue, metric};

/// Empty blocks keep heights coming without transactions.
const EMPTY_BLOCKS: &str = "[producer]\nempty_blocks = true\nempty_block_interval_ms = 200\n";
const ROGUE: usize = 3;
const HONEST: [usize; 3] = [0, 1, 2];
/// Longer than a first ban (`BAN_DURATION_MS`, 30 s) plus a reconnection.
const REJOIN_TIMEOUT_MS: u64 = 90_000;

fn peers(net: &TestNetwork, node: usize) -> Vec<Value> {
    net.nodes[node]
        .client()
        .call("getpeerinfo", json!([]))
        .expect("getpeerinfo")
}

fn peer_entry(net: &TestNetwork, node: usize, peer_id: &str) -> Option<Value> {
    peers(net, node)
        .into_iter()
        .find(|p| p["peer_id"].as_str() == Some(peer_id))
}

fn wait_connected_to_all(net: &TestNetwork, rogue: &Rogue, what: &str) {
    let id = rogue.peer_id();
    wait_until(REJOIN_TIMEOUT_MS, what, || {
        HONEST
            .iter()
            .all(|&i| peer_entry(net, i, &id).is_some())
            .then_some(())
    });
}

fn wait_disconnected_from_all(net: &TestNetwork, rogue: &Rogue, what: &str) {
    let id = rogue.peer_id();
    wait_until(30_000, what, || {
        HONEST
            .iter()
            .all(|&i| peer_entry(net, i, &id).is_none())
            .then_some(())
    });
}

fn offences(net: &TestNetwork, node: usize, offence: &str) -> u64 {
    metric(
        net.nodes[node].rpc_port,
        &format!("settle_peer_misbehaviour_total{{offence=\"{offence}\"}}"),
    )
}

fn bans(net: &TestNetwork, node: usize) -> u64 {
    metric(net.nodes[node].rpc_port, "settle_peer_bans_total")
}

fn start_honest(net: &mut TestNetwork) {
    for i in HONEST {
        net.nodes[i].start();
    }
}

/// Waits until every honest node has connected `above` + 3 blocks.
fn blocks_keep_coming(net: &mut TestNetwork, above: u64) -> u64 {
    net.wait_converged(&HONEST, above + 3, 60_000).blocks
}

#[test]
fn p2p_invalid_transactions_get_their_author_banned_and_the_network_goes_on() {
    let mut net = TestNetwork::create(4, 0, EMPTY_BLOCKS);
    start_honest(&mut net);
    net.wait_converged(&HONEST, 1, 60_000);
    let rogue = Rogue::start(&net, ROGUE, BadBlock::Nothing);
    let id = rogue.peer_id();
    wait_connected_to_all(&net, &rogue, "the rogue to connect to every honest node");

    let chain_id = net.chain_id();
    let issuer = net.issuer_cash();
    let owner = new_key();
    let (issue, asset) = issue_tx(
        chain_id,
        &cash_contract(&issuer, "Misbehaviour euro", "MBE"),
        &issuer,
        &[(p2k(&owner), 10)],
    );
    let txid = net.nodes[0]
        .client()
        .send_raw_transaction(&issue)
        .expect("issue");
    for i in HONEST {
        net.nodes[i].wait_confirmed(&txid, 60_000);
    }

    // Not punished: a transaction whose input no honest node knows (it may be a
    // parent that has not arrived yet).
    let (unknown_parent, _) = issue_tx(
        chain_id,
        &cash_contract(&issuer, "Never sent", "NVR"),
        &issuer,
        &[(p2k(&owner), 1)],
    );
    let orphan = spend_tx(
        chain_id,
        &[owned(&unknown_parent, 0, &owner)],
        vec![pay(unknown_parent.outputs[0].asset, 1, &new_key())],
        0,
    );
    rogue.gossip(vec![settle_assets::serialize(&orphan)]);
    let height = blocks_keep_coming(&mut net, 0);
    blocks_keep_coming(&mut net, height);
    for i in HONEST {
        let entry = peer_entry(&net, i, &id).expect("the rogue is still connected");
        assert_eq!(entry["misbehaviour_score"], 0, "node{i}: {entry}");
        assert_eq!(entry["offences"], 0, "node{i}: {entry}");
        assert_eq!(offences(&net, i, "invalid_transaction"), 0);
        assert_eq!(bans(&net, i), 0);
    }

    // Punished: a spend of a real coin whose signature is corrupted (script-failed,
    // a consensus rejection).
    let mut forged = spend_tx(
        chain_id,
        &[owned(&issue, 0, &owner)],
        vec![pay(asset, 10, &new_key())],
        0,
    );
    let signature = forged.inputs[0].witness.0.first_mut().expect("a signature");
    signature[10] ^= 0x01;
    rogue.gossip(vec![settle_assets::serialize(&forged)]);
    wait_disconnected_from_all(&net, &rogue, "every honest node to drop the rogue");
    for i in HONEST {
        assert!(offences(&net, i, "invalid_transaction") >= 1, "node{i}");
        assert_eq!(bans(&net, i), 1, "node{i}");
        assert_eq!(
            metric(net.nodes[i].rpc_port, "settle_peers_banned"),
            1,
            "node{i}"
        );
    }

    // The network goes on: blocks, and a valid spend of the same coin.
    let now = net.wait_converged(&HONEST, 1, 60_000).blocks;
    let good = spend_tx(
        chain_id,
        &[owned(&issue, 0, &owner)],
        vec![pay(asset, 10, &new_key())],
        0,
    );
    let good_id = net.nodes[1]
        .client()
        .send_raw_transaction(&good)
        .expect("a valid transaction is accepted");
    for i in HONEST {
        net.nodes[i].wait_confirmed(&good_id, 60_000);
    }
    let after = blocks_keep_coming(&mut net, now);
    assert!(after >= now + 3);
    assert!(
        peer_entry(&net, 0, &id).is_none(),
        "still banned while the ban lasts"
    );

    // The ban ends and the permitted peer may reconnect; its score shows the offence.
    wait_connected_to_all(&net, &rogue, "the rogue to be re-admitted after its ban");
    for i in HONEST {
        let entry = peer_entry(&net, i, &id).expect("reconnected");
        assert!(
            entry["misbehaviour_score"].as_i64().expect("score") < 0,
            "node{i}: {entry}"
        );
        assert!(entry["offences"].as_u64().expect("offences") >= 1);
        assert_eq!(metric(net.nodes[i].rpc_port, "settle_peers_banned"), 0);
    }

    // Garbage bytes as a transaction: banned again.
    let score_before = peer_entry(&net, 0, &id).expect("connected")["misbehaviour_score"]
        .as_i64()
        .expect("score");
    rogue.gossip(vec![b"\xde\xad\xbe\xef not a transaction".to_vec()]);
    wait_disconnected_from_all(&net, &rogue, "the rogue to be dropped again");
    for i in HONEST {
        assert_eq!(bans(&net, i), 2, "node{i}");
        assert!(offences(&net, i, "invalid_transaction") >= 2, "node{i}");
    }
    let later = net.wait_converged(&HONEST, 1, 60_000).blocks;
    blocks_keep_coming(&mut net, later);
    assert!(score_before < 0);
    drop(rogue);
}

fn rogue_proposer_is_banned(bad: BadBlock, offence: &str) {
    let mut net = TestNetwork::create(4, 0, EMPTY_BLOCKS);
    start_honest(&mut net);
    net.wait_converged(&HONEST, 1, 60_000);
    let rogue = Rogue::start(&net, ROGUE, bad);
    wait_connected_to_all(&net, &rogue, "the rogue validator to connect");

    // Proposers rotate: the rogue gets its turn and proposes a bad block.
    wait_until(60_000, "the rogue to propose", || {
        (rogue.built.load(std::sync::atomic::Ordering::Relaxed) > 0).then_some(())
    });
    wait_disconnected_from_all(&net, &rogue, "every honest node to drop the rogue");
    for i in HONEST {
        assert!(offences(&net, i, offence) >= 1, "node{i}: {offence}");
        assert!(bans(&net, i) >= 1, "node{i}");
    }

    // Blocks keep coming with three of four validators, and they agree.
    let now = net.wait_converged(&HONEST, 1, 60_000).blocks;
    let after = blocks_keep_coming(&mut net, now);
    blocks_keep_coming(&mut net, after);
    let consensus: Value = net.nodes[0]
        .client()
        .call("getconsensusinfo", json!([]))
        .expect("getconsensusinfo");
    let online = consensus["validators"]
        .as_array()
        .expect("validators")
        .iter()
        .filter(|v| v["online"] == true)
        .count();
    assert_eq!(online, 3, "the rogue is not online for node0: {consensus}");
    drop(rogue);
}

#[test]
fn p2p_a_validator_proposing_an_invalid_block_is_banned_and_blocks_keep_coming() {
    rogue_proposer_is_banned(BadBlock::Invalid, "invalid_block");
}

#[test]
fn p2p_a_validator_proposing_a_malformed_block_is_banned_and_blocks_keep_coming() {
    rogue_proposer_is_banned(BadBlock::Malformed, "malformed_block");
}
