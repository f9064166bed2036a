//! Double spends and mempool limits against a real `settled --dev` process.

use settle_rpc::codes;
use settle_tests::node::*;

/// The producer waits this long after a transaction arrives, so a second one sent right
/// after meets the first still in the mempool.
const SLOW_PRODUCER: &str = "[producer]\nbatch_delay_ms = 3000\n";

#[test]
fn a_double_spend_is_rejected_with_the_conflicting_txid() {
    let mut node = TestNode::start_dev();
    node.write_config(SLOW_PRODUCER);
    node.restart();
    let client = node.client();
    let keys = node.keys();
    let chain_id = node.chain_id();
    let (alice, bob, carol) = (new_key(), new_key(), new_key());

    let contract = cash_contract(&keys.issuer_cash, "Conflict euro", "CEUR");
    let (issue, asset) = issue_tx(chain_id, &contract, &keys.issuer_cash, &[(p2k(&alice), 50)]);
    node.wait_confirmed(&client.send_raw_transaction(&issue).expect("issue"));
    let coin = owned(&issue, 0, &alice);

    let to_bob = spend_tx(
        chain_id,
        std::slice::from_ref(&coin),
        vec![pay(asset, 50, &bob)],
        0,
    );
    let to_carol = spend_tx(
        chain_id,
        std::slice::from_ref(&coin),
        vec![pay(asset, 50, &carol)],
        0,
    );
    let first = client
        .send_raw_transaction(&to_bob)
        .expect("first spend accepted");

    // While the first waits in the mempool.
    let err = client
        .send_raw_transaction(&to_carol)
        .expect_err("second spend rejected");
    assert_eq!(rpc_code(&err), codes::TX_REJECTED);
    let rpc = err.rpc().expect("rpc error");
    let data = rpc.reject_data().expect("reject data");
    assert_eq!(data.reject_class, "conflict");
    assert_eq!(data.conflicting_txid, Some(first));
    assert!(rpc.message.contains(&first.to_string()), "{}", rpc.message);
    let mempool = client.get_raw_mempool().expect("getrawmempool");
    assert_eq!(
        mempool,
        vec![first],
        "the mempool keeps only the first spend"
    );

    // testmempoolaccept reports the conflict too.
    let r = client
        .test_mempool_accept(std::slice::from_ref(&to_carol))
        .expect("testmempoolaccept");
    assert_eq!(r[0].conflicting_txid, Some(first));

    // After the first confirms, the second still names it.
    node.wait_confirmed(&first);
    let err = client
        .send_raw_transaction(&to_carol)
        .expect_err("spent coin rejected");
    let data = err
        .rpc()
        .and_then(|e| e.reject_data())
        .expect("reject data");
    assert_eq!(data.reject_class, "conflict", "{err}");
    assert_eq!(data.conflicting_txid, Some(first));

    // Re-sending the confirmed transaction is not a new spend either.
    let err = client
        .send_raw_transaction(&to_bob)
        .expect_err("already confirmed");
    assert_eq!(rpc_code(&err), codes::TX_ALREADY_IN_CHAIN);
}

#[test]
fn a_full_mempool_refuses_with_a_clear_error() {
    let mut node = TestNode::start_dev();
    node.write_config("[mempool]\nmax_count = 2\n[producer]\nenabled = false\n");
    node.restart();
    let client = node.client();
    let keys = node.keys();
    let chain_id = node.chain_id();
    let alice = new_key();
    let mut txids = Vec::new();
    for i in 0..2 {
        let c = cash_contract(&keys.issuer_cash, &format!("Full euro {i}"), "FULL");
        let (tx, _) = issue_tx(chain_id, &c, &keys.issuer_cash, &[(p2k(&alice), 1)]);
        txids.push(client.send_raw_transaction(&tx).expect("fits"));
    }
    let c = cash_contract(&keys.issuer_cash, "Full euro 2", "FULL");
    let (tx, _) = issue_tx(chain_id, &c, &keys.issuer_cash, &[(p2k(&alice), 1)]);
    let err = client.send_raw_transaction(&tx).expect_err("mempool full");
    let rpc = err.rpc().expect("rpc error");
    assert!(rpc.message.contains("mempool full"), "{}", rpc.message);
    let data = rpc.reject_data().expect("reject data");
    assert_eq!(
        (data.reject_class.as_str(), data.reject_code.as_str()),
        ("policy", "mempool-full")
    );

    let info = client.get_mempool_info().expect("getmempoolinfo");
    assert_eq!((info.size, info.max_count), (2, 2));
    assert_eq!(info.rejected_total, 1);
    let mut pool = client.get_raw_mempool().expect("getrawmempool");
    pool.sort();
    txids.sort();
    assert_eq!(pool, txids);
    assert_eq!(node.info().blocks, 0, "the producer is disabled");
}

#[test]
fn a_chain_of_unconfirmed_transactions_confirms_in_order() {
    let mut node = TestNode::start_dev();
    node.write_config(SLOW_PRODUCER);
    node.restart();
    let client = node.client();
    let keys = node.keys();
    let chain_id = node.chain_id();
    let (a, b, c) = (new_key(), new_key(), new_key());
    let contract = cash_contract(&keys.issuer_cash, "Chain euro", "CHN");
    let (issue, asset) = issue_tx(chain_id, &contract, &keys.issuer_cash, &[(p2k(&a), 9)]);
    client.send_raw_transaction(&issue).expect("issue");
    // Spend the unconfirmed issuance, then spend that.
    let t1 = spend_tx(
        chain_id,
        &[owned(&issue, 0, &a)],
        vec![pay(asset, 9, &b)],
        0,
    );
    client
        .send_raw_transaction(&t1)
        .expect("child of a mempool transaction");
    let t2 = spend_tx(chain_id, &[owned(&t1, 0, &b)], vec![pay(asset, 9, &c)], 0);
    client.send_raw_transaction(&t2).expect("grandchild");
    let unconfirmed = client
        .call::<Vec<settle_rpc::UnspentInfo>>(
            "listunspent",
            serde_json::json!({"scripts": [hex::encode(p2k(&c))], "include_mempool": true}),
        )
        .expect("listunspent with mempool");
    assert_eq!(unconfirmed.len(), 1);
    assert_eq!(unconfirmed[0].confirmations, 0);
    let h0 = node.wait_confirmed(&issue.txid());
    let h2 = node.wait_confirmed(&t2.txid());
    assert!(h2 >= h0);
    node.wait_mempool_empty();
}

#[test]
fn two_competing_issuances_of_one_asset_are_not_both_admitted() {
    let mut node = TestNode::start_dev();
    // Nothing confirms: both issuances meet in the mempool.
    node.write_config("[producer]\nenabled = false\n");
    node.restart();
    let client = node.client();
    let keys = node.keys();
    let chain_id = node.chain_id();
    // The attacker's pair: one contract issued twice on the null outpoint, paying
    // different keys. One asset id, two transactions; a block can hold one.
    let contract = cash_contract(&keys.issuer_cash, "Twin euro", "TWIN");
    let (first, asset) = issue_tx(
        chain_id,
        &contract,
        &keys.issuer_cash,
        &[(p2k(&new_key()), 10)],
    );
    let (second, same) = issue_tx(
        chain_id,
        &contract,
        &keys.issuer_cash,
        &[(p2k(&new_key()), 99)],
    );
    assert_eq!(asset, same);
    assert_ne!(first.txid(), second.txid());
    let first_txid = client
        .send_raw_transaction(&first)
        .expect("the first issuance");
    let err = client
        .send_raw_transaction(&second)
        .expect_err("the competing issuance");
    assert_eq!(rpc_code(&err), codes::TX_REJECTED, "{err}");
    let data = err
        .rpc()
        .and_then(|r| r.reject_data())
        .expect("reject data");
    assert_eq!(data.reject_code, "duplicate-asset");
    assert_eq!(
        data.conflicting_txid,
        Some(first_txid),
        "names the waiting one"
    );
    let verdict = client
        .test_mempool_accept(&[second])
        .expect("testmempoolaccept");
    assert!(!verdict[0].allowed);
    assert_eq!(verdict[0].reject_code.as_deref(), Some("duplicate-asset"));
    assert_eq!(client.get_raw_mempool().expect("pool"), vec![first_txid]);
}
