//! Every RPC method of `spec/rpc.md` against a real node, plus `/metrics`.

use serde_json::{Value, json};
use settle_tests::node::*;

#[test]
fn the_documented_methods_answer_as_specified() {
    let mut node = TestNode::start_dev();
    let client = node.client();
    let keys = node.keys();
    let info = node.info();
    assert_eq!(
        (info.network.as_str(), info.blocks, info.mempool_size),
        ("dev", 0, 0)
    );
    let genesis = client.get_block_hash(0).expect("getblockhash 0");
    assert_eq!(
        genesis.to_byte_array(),
        info.chain_id.to_byte_array(),
        "the chain id is the genesis hash"
    );
    assert_eq!(
        client
            .call::<Value>("getbestblockhash", json!([]))
            .expect("best"),
        json!(genesis)
    );

    let chain_id = info.chain_id;
    let (alice, bob) = (new_key(), new_key());
    let c = cash_contract(&keys.issuer_cash, "Method euro", "MEUR");
    let (issue, asset) = issue_tx(chain_id, &c, &keys.issuer_cash, &[(p2k(&alice), 40)]);

    // testmempoolaccept does not add.
    let r = client
        .test_mempool_accept(std::slice::from_ref(&issue))
        .expect("testmempoolaccept");
    assert!(r[0].allowed, "{r:?}");
    assert_eq!(r[0].txid, Some(issue.txid()));
    assert_eq!(client.get_mempool_info().expect("mempoolinfo").size, 0);

    // decoderawtransaction shows the issuance.
    let decoded: settle_rpc::TxInfo = client
        .call(
            "decoderawtransaction",
            json!([hex::encode(settle_assets::serialize(&issue))]),
        )
        .expect("decode");
    assert_eq!(decoded.txid, issue.txid());
    let iss = decoded.inputs[0].issuance.as_ref().expect("issuance");
    assert_eq!(
        (iss.kind.as_str(), iss.asset, iss.amount, iss.signed),
        ("new", asset, 40, true)
    );
    assert_eq!(
        iss.contract.as_ref().expect("contract")["ticker"],
        json!("MEUR")
    );
    assert!(
        decoded.outputs[0]
            .address
            .as_deref()
            .is_some_and(|a| a.starts_with("dstl1"))
    );

    let txid = client.send_raw_transaction(&issue).expect("send");
    // The same transaction again is not an error (already known or already confirmed).
    match client.send_raw_transaction(&issue) {
        Ok(t) => assert_eq!(t, txid),
        Err(e) => assert_eq!(rpc_code(&e), settle_rpc::codes::TX_ALREADY_IN_CHAIN),
    }
    let height = node.wait_confirmed(&txid);
    let hash = client.get_block_hash(height).expect("getblockhash");

    let block = client.get_block(&hash).expect("getblock 2");
    assert_eq!(block.header.hash, hash);
    assert_eq!(block.header.height, height);
    assert_eq!(
        block.header.previous_block_hash,
        client.get_block_hash(height - 1).expect("parent")
    );
    assert!(block.txids.contains(&txid));
    let txs = block
        .txs
        .as_ref()
        .expect("verbosity 2 decodes transactions");
    assert!(txs.iter().any(|t| t.txid == txid));
    let v1: Value = client.call("getblock", json!([hash])).expect("getblock 1");
    assert!(v1.get("txs").is_none() && v1["txids"].is_array());
    let raw = client.get_block_hex(&hash).expect("getblock 0");
    assert_eq!(raw.len() as u64, 2 * block.size_bytes);

    let header = client.get_block_header(&hash).expect("getblockheader");
    assert_eq!(header, block.header);
    assert_eq!(header.confirmations, 1);
    let header_hex: String = client
        .call("getblockheader", json!([hash, false]))
        .expect("hex header");
    assert_eq!(header_hex.len(), 2 * 180);

    let tx = client
        .get_raw_transaction(&txid)
        .expect("getrawtransaction");
    assert_eq!(
        (tx.height, tx.block_hash, tx.in_mempool),
        (Some(height), Some(hash), false)
    );
    let tx_hex: String = client
        .call("getrawtransaction", json!([txid]))
        .expect("hex");
    assert_eq!(tx_hex, hex::encode(settle_assets::serialize(&issue)));

    // A transaction waiting in the mempool (producer disabled after a restart).
    node.write_config("[producer]\nenabled = false\n");
    node.restart();
    let client = node.client();
    let transfer = spend_tx(
        chain_id,
        &[owned(&issue, 0, &alice)],
        vec![pay(asset, 40, &bob)],
        0,
    );
    let t2 = client.send_raw_transaction(&transfer).expect("transfer");
    assert_eq!(client.get_raw_mempool().expect("mempool"), vec![t2]);
    let verbose: Vec<settle_rpc::MempoolEntryInfo> = client
        .call("getrawmempool", json!([true]))
        .expect("verbose mempool");
    assert_eq!(verbose[0].txid, t2);
    assert_eq!(verbose[0].entry_height, height);
    let pending = client.get_raw_transaction(&t2).expect("mempool tx");
    assert!(pending.in_mempool && pending.height.is_none() && pending.confirmations == 0);
    let mi = client.get_mempool_info().expect("mempoolinfo");
    assert_eq!(mi.size, 1);
    assert_eq!(mi.bytes, transfer.size_bytes() as u64);
    // listunspent marks alice's coin as being spent; gettxout hides it by default.
    let alice_script = hex::encode(p2k(&alice));
    let coins: Vec<settle_rpc::UnspentInfo> = client
        .call("listunspent", json!({"scripts": [alice_script]}))
        .expect("listunspent");
    assert_eq!(coins.len(), 1);
    assert_eq!(coins[0].spent_by_mempool, Some(t2));
    let out: Value = client.call("gettxout", json!([txid, 0])).expect("gettxout");
    assert!(out.is_null());
    let out: Value = client
        .call("gettxout", json!([txid, 0, false]))
        .expect("gettxout chain only");
    assert_eq!(out["amount"], json!(40));

    let spec: Value = client
        .call("getchainspec", json!([]))
        .expect("getchainspec");
    assert_eq!(spec["chain_id"], json!(chain_id));
    assert!(spec["toml"].as_str().is_some_and(|t| t.contains("issuers")));
    let methods: Vec<String> = client.call("help", json!([])).expect("help");
    for m in [
        "getblockchaininfo",
        "sendrawtransaction",
        "listunspent",
        "verifychain",
        "stop",
    ] {
        assert!(methods.iter().any(|x| x == m), "{m}");
    }
    let report = client.verify_chain().expect("verifychain");
    assert!(report.ok, "{report:?}");
    assert_eq!(report.height, height);
    node.stop();
}

#[test]
fn metrics_are_served_in_prometheus_text_format() {
    let node = TestNode::start_dev();
    let client = node.client();
    let keys = node.keys();
    let chain_id = node.chain_id();
    let c = cash_contract(&keys.issuer_cash, "Metric euro", "MTR");
    let (tx, _) = issue_tx(chain_id, &c, &keys.issuer_cash, &[(p2k(&new_key()), 1)]);
    node.wait_confirmed(&client.send_raw_transaction(&tx).expect("send"));
    let _ = client.send_raw_transaction_hex("00");
    let outsider = new_key();
    let bad = cash_contract(&outsider, "Bad euro", "BAD");
    let (bad_tx, _) = issue_tx(chain_id, &bad, &outsider, &[(p2k(&outsider), 1)]);
    let _ = client.send_raw_transaction(&bad_tx);

    let text = http_get(node.rpc_port, "/metrics");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    for needle in [
        "# TYPE settle_chain_height gauge",
        "\nsettle_chain_height 1\n",
        "\nsettle_mempool_transactions 0\n",
        "\nsettle_blocks_connected_total 1\n",
        "\nsettle_transactions_accepted_total 1\n",
        "settle_transactions_rejected_total{class=\"consensus\",code=\"unauthorised-issuer\"} 1",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn empty_blocks_are_produced_only_when_configured() {
    let mut node = TestNode::start_dev();
    node.write_config("[producer]\nempty_blocks = true\nempty_block_interval_ms = 50\n");
    node.restart();
    wait_until(WAIT_TIMEOUT_MS, "three empty blocks", || {
        (node.info().blocks >= 3).then_some(())
    });
    let client = node.client();
    let hash = client.get_block_hash(2).expect("hash");
    assert_eq!(client.get_block(&hash).expect("block").header.tx_count, 0);
}
