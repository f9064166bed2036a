//! Membership changes by transaction (Alastria's MEMB_001 and MEMB_002): validators
//! holding more than two thirds of the voting power sign a change with `settled
//! membership`; it is confirmed, stays pending until its activation height, and from
//! that height on every node decides with the new validator set, with no restart.

#![allow(clippy::panic)] // test code: a panic is how a test reports failure

use serde_json::Value;
use settle_tests::node::*;

/// Blocks between the block that confirms a change and the one it applies from.
const ACTIVATE_IN_BLOCKS: u64 = 3;
const NET_TIMEOUT_MS: u64 = 60_000;

/// Runs `settled membership ...` against `node`; returns stdout, panics on failure.
fn membership(node: &NetNode, args: &[&str]) -> String {
    let out = try_membership(node, args);
    assert!(
        out.status.success(),
        "settled membership {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn try_membership(node: &NetNode, args: &[&str]) -> std::process::Output {
    let datadir = node.datadir.to_str().expect("utf-8 path");
    let mut all = vec!["membership"];
    all.extend_from_slice(&args[..1]);
    all.extend_from_slice(&["--datadir", datadir]);
    all.extend_from_slice(&args[1..]);
    run_settled(&all)
}

fn call(node: &NetNode, method: &str) -> Value {
    node.client()
        .call(method, serde_json::json!([]))
        .unwrap_or_else(|e| panic!("{method} on {}: {e}", node.name))
}

fn node_key(node: &NetNode) -> String {
    call(node, "getnetworkinfo")["node_key"]
        .as_str()
        .expect("node key")
        .to_string()
}

/// Issues a small amount of a fresh asset through `node`, so that a block follows.
fn poke(net: &TestNetwork, via: usize, n: u64) {
    let issuer = net.issuer_cash();
    let (tx, _) = issue_tx(
        net.chain_id(),
        &cash_contract(&issuer, &format!("Poke {n}"), &format!("PK{n}")),
        &issuer,
        &[(p2k(&new_key()), 1)],
    );
    let txid = net.nodes[via]
        .client()
        .send_raw_transaction(&tx)
        .expect("issue");
    net.nodes[via].wait_confirmed(&txid, NET_TIMEOUT_MS);
}

#[test]
fn a_validator_removed_by_transaction_stops_counting_at_the_activation_height() {
    let mut net = TestNetwork::start(4, 1, "");
    let removed = node_key(&net.nodes[3]);
    let file = net.dir.join("remove-node3.hex");
    let file_arg = file.to_str().expect("utf-8 path");

    // Validator 0 proposes (and signs); one more signature is not yet a quorum.
    let shown = membership(
        &net.nodes[0],
        &[
            "propose",
            "--remove-validator",
            &removed,
            // It stays on as a follower: permitted, no longer a validator.
            "--permit",
            &removed,
            "--activate-in",
            &ACTIVATE_IN_BLOCKS.to_string(),
            "--out",
            file_arg,
        ],
    );
    assert!(
        shown.contains(&format!("remove validator {removed}")),
        "{shown}"
    );
    let shown = membership(&net.nodes[1], &["sign", file_arg]);
    assert!(shown.contains("signed power 2 of 4"), "{shown}");
    let refused = try_membership(&net.nodes[1], &["submit", file_arg]);
    assert!(
        !refused.status.success(),
        "two of four signatures were accepted"
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("membership-threshold") && stderr.contains("2 of 4"),
        "{stderr}"
    );
    // A full node holds no validator key, so it cannot sign.
    let no_key = try_membership(&net.nodes[4], &["sign", file_arg]);
    assert!(!no_key.status.success());
    assert!(
        String::from_utf8_lossy(&no_key.stderr).contains("no validator key"),
        "{}",
        String::from_utf8_lossy(&no_key.stderr)
    );

    let shown = membership(&net.nodes[2], &["sign", file_arg]);
    assert!(shown.contains("a quorum"), "{shown}");
    let submitted = membership(&net.nodes[2], &["submit", file_arg]);
    let txid: settle_assets::Txid = submitted
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .expect("a txid in the output");
    let confirmed_at = net.nodes[4].wait_confirmed(&txid, NET_TIMEOUT_MS);
    let info = call(&net.nodes[4], "getmembership");
    // Proposed when the next block was `confirmed_at` at the latest.
    let activation = info["pending"]["activation_height"]
        .as_u64()
        .expect("a pending change");
    assert!(
        activation > confirmed_at && activation <= confirmed_at + ACTIVATE_IN_BLOCKS,
        "{info}"
    );
    assert_eq!(
        info["current"]["validators"].as_array().map(Vec::len),
        Some(4)
    );
    let new_set_hash = info["pending"]["membership"]["validator_set_hash"]
        .as_str()
        .expect("hash")
        .to_string();
    // The same change cannot be submitted again: it is confirmed (and a second change
    // would conflict with the pending one).
    let again = try_membership(&net.nodes[0], &["submit", file_arg]);
    assert!(!again.status.success());

    // Drive the chain past the activation height; every node stays up throughout.
    let mut n = 0;
    while net.nodes[0].info().blocks < activation + 2 {
        poke(&net, n % 4, n as u64);
        n += 1;
    }
    let tip = net.wait_converged(&[0, 1, 2, 3, 4], activation + 2, NET_TIMEOUT_MS);
    let client = net.nodes[4].client();
    for height in (confirmed_at + 1)..=tip.blocks {
        let hash = client.get_block_hash(height).expect("hash");
        let block = client.get_block(&hash).expect("block");
        if height < activation {
            assert_ne!(
                block.header.validator_set_hash, new_set_hash,
                "height {height}"
            );
        } else {
            assert_eq!(
                block.header.validator_set_hash, new_set_hash,
                "height {height}"
            );
            assert!(
                !block.certificate.signers.contains(&removed),
                "height {height}: the removed validator's precommit counted"
            );
            assert_eq!(block.certificate.signers.len(), 3, "height {height}");
        }
    }
    for node in &net.nodes {
        let consensus = call(node, "getconsensusinfo");
        let keys: Vec<&str> = consensus["validators"]
            .as_array()
            .expect("validators")
            .iter()
            .filter_map(|v| v["key"].as_str())
            .collect();
        assert_eq!(keys.len(), 3, "{}: {consensus}", node.name);
        assert!(!keys.contains(&removed.as_str()), "{}", node.name);
        let info = call(node, "getmembership");
        assert!(info["pending"].is_null(), "{}: {info}", node.name);
        assert_eq!(
            info["current"]["permitted"].as_array().map(Vec::len),
            Some(2)
        );
    }
    // Without it the three remaining validators are all needed; they go on.
    poke(&net, 3, 1_000);
    net.wait_converged(&[0, 1, 2, 3, 4], tip.blocks + 1, NET_TIMEOUT_MS);

    // Replaying the chain from genesis checks every certificate against the validator
    // set in force at its height, across the change.
    net.nodes[4].stop();
    let datadir = net.nodes[4]
        .datadir
        .to_str()
        .expect("utf-8 path")
        .to_string();
    let out = run_settled(&["verify", "--datadir", &datadir]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("ok:"),
        "{stdout}"
    );
}

#[test]
fn permission_is_granted_and_withdrawn_by_transaction() {
    let net = TestNetwork::start(1, 1, "");
    let validator = &net.nodes[0];
    let follower = &net.nodes[1];
    let follower_key = node_key(follower);
    wait_until(NET_TIMEOUT_MS, "the full node to connect", || {
        let peers = call(validator, "getpeerinfo");
        (peers.as_array().map(Vec::len) == Some(1)).then_some(())
    });

    // An outsider: the same chain spec, its own fresh key, the validator as bootstrap.
    let outsider_dir = net.dir.join("outsider");
    std::fs::create_dir_all(&outsider_dir).expect("mkdir");
    std::fs::copy(
        validator.datadir.join("chainspec.toml"),
        outsider_dir.join("chainspec.toml"),
    )
    .expect("copy the chain spec");
    let validator_id = call(validator, "getnetworkinfo")["peer_id"]
        .as_str()
        .expect("peer id")
        .to_string();
    let ports = (free_port(), free_port());
    std::fs::write(
        outsider_dir.join("settled.toml"),
        format!(
            "rpc_port = {}\np2p_port = {}\n[p2p]\nbootstrap = [\"/ip4/127.0.0.1/tcp/{}/p2p/{validator_id}\"]\n{FAST_NETWORK_CONFIG}",
            ports.0, ports.1, validator.p2p_port
        ),
    )
    .expect("write config");
    let mut outsider = NetNode::new("outsider", outsider_dir, ports.0, ports.1, false);
    outsider.start();
    let outsider_key = node_key(&outsider);
    let outsider_id = call(&outsider, "getnetworkinfo")["peer_id"]
        .as_str()
        .expect("peer id")
        .to_string();
    let outsider_addr = format!("/ip4/127.0.0.1/tcp/{}/p2p/{outsider_id}", outsider.p2p_port);

    // An operator cannot admit it alone (MEMB_001).
    let refused = validator
        .client()
        .call::<Value>("addpeer", serde_json::json!([outsider_addr]))
        .expect_err("not permitted yet");
    assert_eq!(rpc_code(&refused), -32602, "{refused}");
    assert!(refused.to_string().contains("permitted set"), "{refused}");

    // The validators (here one) permit the outsider and withdraw the full node.
    let file = net.dir.join("change.hex");
    let file_arg = file.to_str().expect("utf-8 path");
    membership(
        validator,
        &[
            "propose",
            "--permit",
            &outsider_key,
            "--revoke",
            &follower_key,
            "--activate-in",
            "2",
            "--out",
            file_arg,
        ],
    );
    let submitted = membership(validator, &["submit", file_arg]);
    assert!(
        submitted.contains("submitted membership change"),
        "{submitted}"
    );
    let activation = wait_until(NET_TIMEOUT_MS, "the change to be pending", || {
        call(validator, "getmembership")["pending"]["activation_height"].as_u64()
    });
    let mut n = 0;
    while validator.info().blocks < activation {
        poke(&net, 0, n);
        n += 1;
    }

    // From the activation height: the outsider may be dialled and syncs...
    wait_until(NET_TIMEOUT_MS, "addpeer to accept the outsider", || {
        validator
            .client()
            .call::<Value>("addpeer", serde_json::json!([outsider_addr]))
            .ok()
    });
    let height = validator.info().blocks;
    wait_until(NET_TIMEOUT_MS, "the outsider to sync", || {
        (outsider.info().blocks >= height).then_some(())
    });
    // ...and the full node is dropped: it no longer follows the chain.
    let listed = |who: &str| {
        call(validator, "getpeerinfo")
            .as_array()
            .expect("peers")
            .iter()
            .any(|p| p["peer_id"].as_str() == Some(who))
    };
    let follower_id = call(follower, "getnetworkinfo")["peer_id"]
        .as_str()
        .expect("peer id")
        .to_string();
    wait_until(
        NET_TIMEOUT_MS,
        "the revoked node to be disconnected",
        || (!listed(&follower_id)).then_some(()),
    );
    let stuck_at = follower.info().blocks;
    poke(&net, 0, 100);
    poke(&net, 0, 101);
    let tip = validator.info().blocks;
    wait_until(NET_TIMEOUT_MS, "the outsider to follow", || {
        (outsider.info().blocks >= tip).then_some(())
    });
    assert_eq!(
        follower.info().blocks,
        stuck_at,
        "the revoked node still syncs"
    );
    assert!(listed(&outsider_id));
}

#[test]
fn a_validator_added_by_transaction_signs_from_the_activation_height() {
    // The second node holds a validator key the genesis set does not list: it follows
    // until the change makes it a validator, then signs, without a restart.
    let mut net = TestNetwork::create(1, 1, "");
    let keys = net.nodes[1].datadir.join("keys");
    std::fs::rename(keys.join("node.key"), keys.join("validator.key")).expect("rename key");
    for node in &mut net.nodes {
        node.start();
    }
    let newcomer = node_key(&net.nodes[1]);
    let file = net.dir.join("add.hex");
    let file_arg = file.to_str().expect("utf-8 path");
    membership(
        &net.nodes[0],
        &[
            "propose",
            "--set-validator",
            &format!("{newcomer}:1"),
            "--activate-in",
            "2",
            "--out",
            file_arg,
        ],
    );
    membership(&net.nodes[0], &["submit", file_arg]);
    let activation = wait_until(NET_TIMEOUT_MS, "the change to be pending", || {
        call(&net.nodes[1], "getmembership")["pending"]["activation_height"].as_u64()
    });
    let mut n = 0;
    while net.nodes[0].info().blocks < activation + 1 {
        poke(&net, n % 2, n as u64);
        n += 1;
    }
    let tip = net.wait_converged(&[0, 1], activation + 1, NET_TIMEOUT_MS);
    let client = net.nodes[0].client();
    for height in activation..=tip.blocks {
        let block = client
            .get_block(&client.get_block_hash(height).expect("hash"))
            .expect("block");
        // Two validators of power 1: both must sign.
        assert_eq!(block.certificate.signers.len(), 2, "height {height}");
        assert!(
            block.certificate.signers.contains(&newcomer),
            "height {height}"
        );
    }
    let consensus = call(&net.nodes[1], "getconsensusinfo");
    assert_eq!(
        consensus["validators"].as_array().map(Vec::len),
        Some(2),
        "{consensus}"
    );
}
