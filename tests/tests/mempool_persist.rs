//! Waiting transactions survive a clean restart (`mempool.dat`, `spec/storage.md`):
//! they come back validated again, and the ones that stopped being valid meanwhile are
//! dropped rather than restored.

use settle_tests::node::*;

#[test]
fn waiting_transactions_survive_a_clean_restart() {
    let mut node = TestNode::start_dev();
    // No producer: what is submitted waits in the mempool.
    node.write_config("[producer]\nenabled = false\n");
    node.restart();
    let client = node.client();
    let keys = node.keys();
    let chain_id = node.chain_id();
    let alice = new_key();
    let c = cash_contract(&keys.issuer_cash, "Waiting euro", "WEUR");
    let (parent, _) = issue_tx(chain_id, &c, &keys.issuer_cash, &[(p2k(&alice), 10)]);
    let parent_txid = client.send_raw_transaction(&parent).expect("issue");
    // A child spending the parent's output, still unconfirmed: order must survive too.
    let bob = new_key();
    let child = spend_tx(
        chain_id,
        &[owned(&parent, 0, &alice)],
        vec![pay(parent.outputs[0].asset, 10, &bob)],
        0,
    );
    let child_txid = client.send_raw_transaction(&child).expect("child");

    node.stop();
    let saved = node.datadir.join("mempool.dat");
    assert!(saved.exists(), "a clean stop writes the mempool");
    node.start();
    let mut pool = node.client().get_raw_mempool().expect("getrawmempool");
    pool.sort();
    let mut want = vec![parent_txid, child_txid];
    want.sort();
    assert_eq!(pool, want, "both waiting transactions are back");
    assert!(!saved.exists(), "the file is consumed at start");
    assert!(node.log().contains("mempool restored"), "{}", node.log());

    // With the producer back, both confirm.
    node.write_config("");
    node.restart();
    node.wait_confirmed(&child_txid);
    assert!(node.client().get_raw_mempool().expect("pool").is_empty());
}

#[test]
fn a_damaged_mempool_file_is_set_aside_and_the_node_starts() {
    let mut node = TestNode::start_dev();
    node.stop();
    std::fs::write(node.datadir.join("mempool.dat"), b"not a mempool").expect("write");
    node.start();
    assert!(node.client().get_raw_mempool().expect("pool").is_empty());
    assert!(node.datadir.join("mempool.dat.bad").exists());
    assert!(node.log().contains("does not decode"), "{}", node.log());
}
