//! A network of real `settled` processes on loopback: four validators deciding blocks
//! with Tendermint (Malachite) and one full node following them.

#![allow(clippy::panic)] // test code: a panic is how a test reports failure

use serde_json::Value;
use settle_tests::node::*;

/// Bound on waiting for a transaction or a tip to reach every node.
const NETWORK_WAIT_MS: u64 = 60_000;

#[test]
fn transactions_confirm_everywhere_and_a_killed_validator_catches_up() {
    let mut net = TestNetwork::start(4, 1, "");
    let chain_id = net.chain_id();
    let issuer = net.issuer_cash();
    let all: Vec<usize> = (0..5).collect();
    let (alice, bob) = (new_key(), new_key());

    // The network is connected: every node sees the four others.
    for node in &net.nodes {
        let client = node.client();
        wait_until(
            NETWORK_WAIT_MS,
            &format!("{} to see 4 peers", node.name),
            || {
                let peers: Vec<Value> = client.call("getpeerinfo", serde_json::json!([])).ok()?;
                (peers.len() == 4).then_some(())
            },
        );
    }
    let info: Value = net.nodes[0]
        .client()
        .call("getconsensusinfo", serde_json::json!([]))
        .expect("getconsensusinfo");
    assert_eq!(
        info["validators"].as_array().map(Vec::len),
        Some(4),
        "{info}"
    );
    assert_eq!(info["validator"], Value::Bool(true), "{info}");

    // A transaction sent to a validator confirms on every node.
    let contract = cash_contract(&issuer, "Network euro", "NEUR");
    let (issue, asset) = issue_tx(chain_id, &contract, &issuer, &[(p2k(&alice), 100)]);
    let txid = net.nodes[2]
        .client()
        .send_raw_transaction(&issue)
        .expect("issue accepted");
    let height = net.nodes[2].wait_confirmed(&txid, NETWORK_WAIT_MS);
    for node in &net.nodes {
        assert_eq!(
            node.wait_confirmed(&txid, NETWORK_WAIT_MS),
            height,
            "{}",
            node.name
        );
    }

    // One sent to the full node reaches the validators through gossip.
    let to_bob = spend_tx(
        chain_id,
        &[owned(&issue, 0, &alice)],
        vec![pay(asset, 60, &bob), pay(asset, 40, &alice)],
        0,
    );
    let txid = net.nodes[4]
        .client()
        .send_raw_transaction(&to_bob)
        .expect("spend accepted by the full node");
    for node in &net.nodes {
        node.wait_confirmed(&txid, NETWORK_WAIT_MS);
    }
    let tip = net.wait_converged(&all, height + 1, NETWORK_WAIT_MS);
    let block = net.nodes[0]
        .client()
        .get_block(&tip.best_block_hash)
        .expect("tip block");
    assert!(
        block.certificate.signers.len() >= 3,
        "a quorum of 3 of 4 signed: {:?}",
        block.certificate
    );

    // kill -9 one validator: the three others still decide blocks.
    net.nodes[1].kill9();
    let mut last = owned(&to_bob, 1, &alice);
    let mut confirmed_while_down = 0;
    for (i, via) in [0usize, 2, 3, 4, 0, 2].into_iter().enumerate() {
        let next = spend_tx(
            chain_id,
            std::slice::from_ref(&last),
            vec![pay(asset, 40, &alice)],
            0,
        );
        let txid = net.nodes[via]
            .client()
            .send_raw_transaction(&next)
            .unwrap_or_else(|e| panic!("transfer {i} via node{via}: {e}"));
        for n in [0usize, 2, 3, 4] {
            net.nodes[n].wait_confirmed(&txid, NETWORK_WAIT_MS);
        }
        confirmed_while_down += 1;
        last = owned(&next, 0, &alice);
    }
    assert_eq!(confirmed_while_down, 6);
    let live = [0usize, 2, 3, 4];
    let before_restart = net.wait_converged(&live, tip.blocks + 6, NETWORK_WAIT_MS);

    // Restarted, it catches up with the network and agrees on the tip.
    net.nodes[1].start();
    let caught_up = net.wait_converged(&all, before_restart.blocks, NETWORK_WAIT_MS);
    assert!(caught_up.blocks >= before_restart.blocks);

    // And it takes part again: a transaction sent to it confirms everywhere.
    let next = spend_tx(
        chain_id,
        std::slice::from_ref(&last),
        vec![pay(asset, 40, &bob)],
        0,
    );
    let txid = net.nodes[1]
        .client()
        .send_raw_transaction(&next)
        .expect("accepted by the restarted validator");
    for node in &net.nodes {
        node.wait_confirmed(&txid, NETWORK_WAIT_MS);
    }
    net.wait_converged(&all, caught_up.blocks + 1, NETWORK_WAIT_MS);
}
