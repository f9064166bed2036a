//! Only permitted node keys may connect: a node whose key is neither a validator's nor
//! a permitted node's in the chain's membership is refused by the network and learns
//! nothing. No operator can admit it alone (`addpeer` refuses; a membership change
//! signed by the validators must permit it, see `feature_membership`), while any
//! operator may shut out a peer of its own node with `removepeer`.

use serde_json::Value;
use settle_tests::node::*;

#[test]
fn a_node_that_is_not_permitted_cannot_connect() {
    let net = TestNetwork::start(1, 1, "");
    let chain_id = net.chain_id();
    let issuer = net.issuer_cash();

    // The permitted full node connects and follows.
    let follower = net.nodes[1].client();
    wait_until(30_000, "the full node to connect", || {
        let peers: Vec<Value> = follower.call("getpeerinfo", serde_json::json!([])).ok()?;
        (peers.len() == 1).then_some(())
    });

    // An outsider: the same chain spec, the validator as bootstrap peer, its own key.
    let outsider_dir = net.dir.join("outsider");
    std::fs::create_dir_all(&outsider_dir).expect("mkdir");
    std::fs::copy(
        net.nodes[0].datadir.join("chainspec.toml"),
        outsider_dir.join("chainspec.toml"),
    )
    .expect("copy the chain spec");
    let validator_addr = format!(
        "/ip4/127.0.0.1/tcp/{}/p2p/{}",
        net.nodes[0].p2p_port,
        net.nodes[0]
            .client()
            .call::<Value>("getnetworkinfo", serde_json::json!([]))
            .expect("getnetworkinfo")["peer_id"]
            .as_str()
            .expect("peer id")
    );
    let ports = (free_port(), free_port());
    std::fs::write(
        outsider_dir.join("settled.toml"),
        format!(
            "rpc_port = {}\np2p_port = {}\n[p2p]\nbootstrap = [\"{validator_addr}\"]\n{FAST_NETWORK_CONFIG}",
            ports.0, ports.1
        ),
    )
    .expect("write config");
    let mut outsider = NetNode::new("outsider", outsider_dir, ports.0, ports.1, false);
    outsider.start();

    // The network moves on; the outsider learns nothing and holds no connection.
    let (tx, _) = issue_tx(
        chain_id,
        &cash_contract(&issuer, "Private euro", "PEUR"),
        &issuer,
        &[(p2k(&new_key()), 5)],
    );
    let txid = net.nodes[0]
        .client()
        .send_raw_transaction(&tx)
        .expect("issue");
    net.nodes[1].wait_confirmed(&txid, 30_000);
    // Give the outsider's dialling (with backoff) time to fail more than once.
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(outsider.info().blocks, 0, "the outsider synced blocks");
    let outsider_id = outsider
        .client()
        .call::<Value>("getnetworkinfo", serde_json::json!([]))
        .expect("getnetworkinfo")["peer_id"]
        .as_str()
        .expect("peer id")
        .to_string();
    for node in &net.nodes {
        let peers: Vec<Value> = node
            .client()
            .call("getpeerinfo", serde_json::json!([]))
            .expect("getpeerinfo");
        assert!(
            peers
                .iter()
                .all(|p| p["peer_id"] != Value::String(outsider_id.clone())),
            "{} lists the outsider: {peers:?}",
            node.name
        );
    }
    let outsider_peers: Vec<Value> = outsider
        .client()
        .call("getpeerinfo", serde_json::json!([]))
        .expect("getpeerinfo");
    assert!(
        outsider_peers.is_empty(),
        "the outsider holds connections: {outsider_peers:?}"
    );

    // An operator cannot admit it alone, and malformed addresses are refused.
    let validator = net.nodes[0].client();
    let bad = validator
        .call::<Value>("addpeer", serde_json::json!(["/ip4/127.0.0.1/tcp/1"]))
        .expect_err("an address without /p2p/<id> is refused");
    assert_eq!(rpc_code(&bad), -32602, "{bad}");
    let outsider_addr = format!("/ip4/127.0.0.1/tcp/{}/p2p/{outsider_id}", outsider.p2p_port);
    let refused = validator
        .call::<Value>("addpeer", serde_json::json!([outsider_addr]))
        .expect_err("an outsider is not permitted");
    assert_eq!(rpc_code(&refused), -32602, "{refused}");
    assert!(
        refused
            .to_string()
            .contains("not in the chain's permitted set"),
        "{refused}"
    );

    // The operator of the validator shuts out the permitted full node: it is
    // disconnected without a restart.
    let follower_info: Value = net.nodes[1]
        .client()
        .call("getnetworkinfo", serde_json::json!([]))
        .expect("getnetworkinfo");
    let follower_id = follower_info["peer_id"]
        .as_str()
        .expect("peer id")
        .to_string();
    let listed = |client: &settle_rpc::RpcClient| {
        client
            .call::<Vec<Value>>("getpeerinfo", serde_json::json!([]))
            .expect("getpeerinfo")
            .iter()
            .any(|p| p["peer_id"] == Value::String(follower_id.clone()))
    };
    assert!(listed(&validator));
    let follower_addr = format!(
        "/ip4/127.0.0.1/tcp/{}/p2p/{follower_id}",
        net.nodes[1].p2p_port
    );
    validator
        .call::<Value>("removepeer", serde_json::json!([follower_addr]))
        .expect("removepeer");
    wait_until(30_000, "the removed node to be disconnected", || {
        (!listed(&validator)).then_some(())
    });
    outsider.stop();
}
