//! `settled verify` and the `verifychain` RPC detect tampering with the node's own data.

use settle_chain::Coin;
use settle_node::store::{ChainStore, StoreOptions};
use settle_tests::node::*;

#[test]
fn verify_names_a_tampered_coin() {
    let mut node = TestNode::start_dev();
    let client = node.client();
    let keys = node.keys();
    let chain_id = node.chain_id();
    let alice = new_key();
    let contract = cash_contract(&keys.issuer_cash, "Tamper euro", "TAMP");
    let (issue, asset) = issue_tx(
        chain_id,
        &contract,
        &keys.issuer_cash,
        &[(p2k(&alice), 10), (p2k(&alice), 20), (p2k(&alice), 30)],
    );
    node.wait_confirmed(&client.send_raw_transaction(&issue).expect("issue"));
    let online = client.verify_chain().expect("verifychain");
    assert!(online.ok, "{online:?}");
    assert_eq!(online.coins_checked, 3);
    assert_eq!(online.utxo_commitment, node.info().utxo_commitment);
    node.stop();

    let clean = node.verify();
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );

    // Give one coin more money than the blocks gave it.
    let victim = settle_assets::OutPoint::new(issue.txid(), 1);
    {
        let store = ChainStore::open(&node.datadir.join("chainstate"), StoreOptions::default())
            .expect("open chainstate");
        let mut coin: Coin = store.coin(&victim).expect("read").expect("coin exists");
        assert_eq!(coin.output.asset, asset);
        coin.output.amount = amount(20_000);
        store.tamper_coin(&victim, &coin).expect("tamper");
    }
    let out = node.verify();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success(),
        "verify passed a tampered database: {stdout}"
    );
    assert!(stdout.contains("FAILED"), "{stdout}");
    assert!(
        stdout.contains(&victim.to_string()),
        "verify must name the coin {victim}: {stdout}"
    );
    assert!(stdout.contains("20000"), "{stdout}");

    // The running node reports the same through verifychain.
    node.start();
    let report = node.client().verify_chain().expect("verifychain");
    assert!(!report.ok);
    assert!(
        report
            .problem
            .expect("problem")
            .contains(&victim.to_string())
    );
}

#[test]
fn verify_names_a_coin_that_no_block_created() {
    let mut node = TestNode::start_dev();
    let client = node.client();
    let keys = node.keys();
    let chain_id = node.chain_id();
    let alice = new_key();
    let contract = cash_contract(&keys.issuer_cash, "Extra euro", "XTRA");
    let (issue, _) = issue_tx(chain_id, &contract, &keys.issuer_cash, &[(p2k(&alice), 10)]);
    node.wait_confirmed(&client.send_raw_transaction(&issue).expect("issue"));
    node.stop();

    let real = settle_assets::OutPoint::new(issue.txid(), 0);
    let forged = settle_assets::OutPoint::new(issue.txid(), 7);
    {
        let store = ChainStore::open(&node.datadir.join("chainstate"), StoreOptions::default())
            .expect("open chainstate");
        let coin = store.coin(&real).expect("read").expect("coin");
        store
            .tamper_coin(&forged, &coin)
            .expect("insert a forged coin");
    }
    let out = node.verify();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains(&forged.to_string()), "{stdout}");
}
