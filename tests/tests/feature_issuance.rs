//! Issuance, transfers and conservation against a real `settled --dev` process.

use settle_rpc::codes;
use settle_tests::node::*;

#[test]
fn authorised_issuance_confirms_and_updates_the_registry() {
    let node = TestNode::start_dev();
    let client = node.client();
    let keys = node.keys();
    let chain_id = node.chain_id();
    let holder = new_key();

    let contract = cash_contract(&keys.issuer_cash, "Dev euro", "DEUR");
    let (tx, asset) = issue_tx(
        chain_id,
        &contract,
        &keys.issuer_cash,
        &[(p2k(&holder), 100_000)],
    );
    let txid = client
        .send_raw_transaction(&tx)
        .expect("authorised issuance accepted");
    assert_eq!(txid, tx.txid());
    let height = node.wait_confirmed(&txid);
    assert!(height >= 1);

    let info = client.get_asset_info(&asset).expect("getassetinfo");
    assert_eq!(info.class, "cash");
    assert_eq!(info.ticker, "DEUR");
    assert_eq!(
        (info.issued, info.burned, info.outstanding),
        (100_000, 0, 100_000)
    );
    assert_eq!(info.issuance_txid, txid);
    assert_eq!(info.issuance_height, height);
    let all = client.list_assets().expect("listassets");
    assert!(all.iter().any(|a| a.asset == asset));

    // The security issuer ("CSD") issues securities.
    let bond = security_contract(&keys.issuer_security, "Dev bond 2030", "DB30");
    let (tx2, bond_id) = issue_tx(
        chain_id,
        &bond,
        &keys.issuer_security,
        &[(p2k(&holder), 10)],
    );
    node.wait_confirmed(
        &client
            .send_raw_transaction(&tx2)
            .expect("security issuance"),
    );
    assert_eq!(
        client.get_asset_info(&bond_id).expect("bond").outstanding,
        10
    );
}

#[test]
fn issuance_by_an_unauthorised_key_is_rejected_and_changes_nothing() {
    let node = TestNode::start_dev();
    let client = node.client();
    let keys = node.keys();
    let chain_id = node.chain_id();
    let before = node.info();

    // A key the chain spec does not list at all.
    let outsider = new_key();
    let contract = cash_contract(&outsider, "Counterfeit euro", "FAKE");
    let (tx, asset) = issue_tx(chain_id, &contract, &outsider, &[(p2k(&outsider), 1_000)]);
    let err = client
        .send_raw_transaction(&tx)
        .expect_err("outsider issuance rejected");
    assert_eq!(rpc_code(&err), codes::TX_REJECTED);
    let data = err
        .rpc()
        .and_then(|e| e.reject_data())
        .expect("reject data");
    assert_eq!(data.reject_class, "consensus");
    assert_eq!(data.reject_code, "unauthorised-issuer", "{err}");

    // The CSD key is a real issuer, but not of cash.
    let contract = cash_contract(&keys.issuer_security, "CSD euro", "CSDE");
    let (tx, _) = issue_tx(
        chain_id,
        &contract,
        &keys.issuer_security,
        &[(p2k(&outsider), 5)],
    );
    let err = client
        .send_raw_transaction(&tx)
        .expect_err("wrong-class issuer rejected");
    let data = err
        .rpc()
        .and_then(|e| e.reject_data())
        .expect("reject data");
    assert_eq!(data.reject_code, "unauthorised-issuer", "{err}");

    // An authorised contract signed by someone else.
    let contract = cash_contract(&keys.issuer_cash, "Forged signature euro", "FORG");
    let (tx, _) = issue_tx(chain_id, &contract, &outsider, &[(p2k(&outsider), 5)]);
    let err = client
        .send_raw_transaction(&tx)
        .expect_err("forged signature rejected");
    let data = err
        .rpc()
        .and_then(|e| e.reject_data())
        .expect("reject data");
    assert_eq!(data.reject_class, "consensus", "{err}");

    let after = node.info();
    assert_eq!(after.blocks, before.blocks);
    assert_eq!(after.mempool_size, 0);
    assert_eq!(after.asset_count, 0);
    let err = client.get_asset_info(&asset).expect_err("no such asset");
    assert_eq!(rpc_code(&err), codes::NOT_FOUND);
}

#[test]
fn a_transfer_confirms_and_moves_the_coins() {
    let node = TestNode::start_dev();
    let client = node.client();
    let keys = node.keys();
    let chain_id = node.chain_id();
    let (alice, bob) = (new_key(), new_key());

    let contract = cash_contract(&keys.issuer_cash, "Transfer euro", "TEUR");
    let (issue, asset) = issue_tx(
        chain_id,
        &contract,
        &keys.issuer_cash,
        &[(p2k(&alice), 500)],
    );
    node.wait_confirmed(&client.send_raw_transaction(&issue).expect("issue"));

    let transfer = spend_tx(
        chain_id,
        &[owned(&issue, 0, &alice)],
        vec![pay(asset, 300, &bob), pay(asset, 200, &alice)],
        0,
    );
    let txid = client
        .send_raw_transaction(&transfer)
        .expect("transfer accepted");
    let height = node.wait_confirmed(&txid);

    let bob_addr = address(&node, &bob);
    let coins = client
        .list_unspent(std::slice::from_ref(&bob_addr))
        .expect("listunspent");
    assert_eq!(coins.len(), 1);
    assert_eq!(
        (coins[0].amount, coins[0].asset, coins[0].txid),
        (300, asset, txid)
    );
    assert_eq!(coins[0].height, Some(height));
    assert_eq!(coins[0].address.as_deref(), Some(bob_addr.as_str()));
    let alice_coins = client
        .list_unspent(&[address(&node, &alice)])
        .expect("listunspent");
    assert_eq!(alice_coins.iter().map(|c| c.amount).sum::<u64>(), 200);
    // The issued coin is spent.
    let spent: Option<serde_json::Value> = client
        .call("gettxout", serde_json::json!([issue.txid(), 0]))
        .expect("gettxout");
    assert!(spent.is_none());
    // Supply is unchanged by a transfer.
    assert_eq!(
        client.get_asset_info(&asset).expect("asset").outstanding,
        500
    );
}

#[test]
fn an_unbalanced_transaction_is_rejected_naming_the_asset() {
    let node = TestNode::start_dev();
    let client = node.client();
    let keys = node.keys();
    let chain_id = node.chain_id();
    let alice = new_key();
    let contract = cash_contract(&keys.issuer_cash, "Balance euro", "BEUR");
    let (issue, asset) = issue_tx(
        chain_id,
        &contract,
        &keys.issuer_cash,
        &[(p2k(&alice), 100)],
    );
    node.wait_confirmed(&client.send_raw_transaction(&issue).expect("issue"));
    let before = node.info();

    // 100 in, 101 out: creates money.
    let inflating = spend_tx(
        chain_id,
        &[owned(&issue, 0, &alice)],
        vec![pay(asset, 101, &alice)],
        0,
    );
    let err = client
        .send_raw_transaction(&inflating)
        .expect_err("inflation rejected");
    assert_eq!(rpc_code(&err), codes::TX_REJECTED);
    let rpc = err.rpc().expect("rpc error");
    let data = rpc.reject_data().expect("reject data");
    assert_eq!(
        (data.reject_class.as_str(), data.reject_code.as_str()),
        ("consensus", "unbalanced")
    );
    assert!(
        rpc.message.contains(&asset.to_string()),
        "message must name the asset: {}",
        rpc.message
    );

    // testmempoolaccept says the same without side effects.
    let results = client
        .test_mempool_accept(&[inflating])
        .expect("testmempoolaccept");
    assert!(!results[0].allowed);
    assert_eq!(results[0].reject_code.as_deref(), Some("unbalanced"));
    assert!(
        results[0]
            .reject_reason
            .as_deref()
            .is_some_and(|r| r.contains(&asset.to_string()))
    );

    let after = node.info();
    assert_eq!(
        (after.blocks, after.mempool_size, after.utxo_count),
        (before.blocks, 0, before.utxo_count)
    );
    // The coin is still spendable by a balanced transaction.
    let ok = spend_tx(
        chain_id,
        &[owned(&issue, 0, &alice)],
        vec![pay(asset, 100, &alice)],
        0,
    );
    node.wait_confirmed(&client.send_raw_transaction(&ok).expect("balanced spend"));
}

#[test]
fn blocks_follow_transactions_and_none_are_empty() {
    let node = TestNode::start_dev();
    let client = node.client();
    let keys = node.keys();
    let chain_id = node.chain_id();
    let alice = new_key();
    let mut heights = Vec::new();
    for i in 0..3 {
        let contract = cash_contract(&keys.issuer_cash, &format!("Block euro {i}"), "BLK");
        let (tx, _) = issue_tx(chain_id, &contract, &keys.issuer_cash, &[(p2k(&alice), 1)]);
        heights.push(node.wait_confirmed(&client.send_raw_transaction(&tx).expect("issue")));
    }
    let tip = client.get_block_count().expect("getblockcount");
    assert_eq!(tip, *heights.last().expect("three heights"));
    for h in 1..=tip {
        let hash = client.get_block_hash(h).expect("getblockhash");
        let block = client.get_block(&hash).expect("getblock");
        assert!(block.header.tx_count >= 1, "block {h} is empty");
        assert_eq!(block.certificate.signers.len(), 1, "one validator signs");
        assert_eq!(block.certificate.block_hash, hash);
    }
}

fn address(node: &TestNode, key: &secp256k1::Keypair) -> String {
    let network = match node.info().network.as_str() {
        "dev" => settle_script::Network::Dev,
        "test" => settle_script::Network::Test,
        _ => settle_script::Network::Main,
    };
    settle_script::Address::p2k(network, &xonly(key)).to_string()
}
