//! Durability: restarts, clean shutdown, `kill -9` in the middle of a transaction
//! stream, and the data-directory lock.

#![allow(clippy::panic)] // test code: a panic is how a test reports failure

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use settle_assets::Txid;
use settle_tests::node::*;

#[test]
fn data_survives_a_restart() {
    let mut node = TestNode::start_dev();
    let client = node.client();
    let keys = node.keys();
    let chain_id = node.chain_id();
    let (alice, bob) = (new_key(), new_key());
    let contract = security_contract(&keys.issuer_security, "Restart bond", "RB");
    let (issue, asset) = issue_tx(
        chain_id,
        &contract,
        &keys.issuer_security,
        &[(p2k(&alice), 70)],
    );
    node.wait_confirmed(&client.send_raw_transaction(&issue).expect("issue"));
    let transfer = spend_tx(
        chain_id,
        &[owned(&issue, 0, &alice)],
        vec![pay(asset, 70, &bob)],
        0,
    );
    let height = node.wait_confirmed(&client.send_raw_transaction(&transfer).expect("transfer"));
    let before = node.info();

    node.restart();
    let client = node.client();
    let after = node.info();
    assert_eq!(after.chain_id, chain_id);
    assert_eq!(after.blocks, before.blocks);
    assert_eq!(after.best_block_hash, before.best_block_hash);
    assert_eq!(after.utxo_commitment, before.utxo_commitment);
    assert_eq!(
        (after.utxo_count, after.asset_count),
        (before.utxo_count, before.asset_count)
    );
    let tx = client
        .get_raw_transaction(&transfer.txid())
        .expect("transfer still indexed");
    assert_eq!(tx.height, Some(height));
    let info = client
        .get_asset_info(&asset)
        .expect("asset still registered");
    assert_eq!(info.outstanding, 70);
    // The chain keeps growing on top of the restarted state.
    let back = spend_tx(
        chain_id,
        &[owned(&transfer, 0, &bob)],
        vec![pay(asset, 70, &alice)],
        0,
    );
    let h2 = node.wait_confirmed(
        &client
            .send_raw_transaction(&back)
            .expect("spend after restart"),
    );
    assert_eq!(h2, after.blocks + 1);

    node.stop();
    let out = node.verify();
    assert!(
        out.status.success(),
        "verify failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn sigterm_shuts_down_cleanly_and_removes_the_cookie() {
    let mut node = TestNode::start_dev();
    let cookie = node.datadir.join(".cookie");
    assert!(cookie.exists());
    node.signal("-TERM");
    let status = node.wait_exit();
    assert!(
        status.success(),
        "exit status {status}; log:\n{}",
        node.log()
    );
    assert!(!cookie.exists(), "cookie left behind");
    assert!(node.log().contains("SIGTERM"), "{}", node.log());
    node.start();
    node.signal("-INT");
    assert!(node.wait_exit().success());
}

#[test]
fn a_second_process_on_the_same_data_directory_is_refused() {
    let node = TestNode::start_dev();
    let out = run_settled(&[
        "--dev",
        "--datadir",
        node.datadir.to_str().expect("utf-8"),
        "--rpc-port",
        &free_port().to_string(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("in use by another settled process"),
        "{stderr}"
    );
    // The running node is unaffected.
    assert_eq!(node.info().blocks, 0);
}

#[test]
fn kill_9_mid_stream_loses_no_confirmed_transaction() {
    let mut node = TestNode::start_dev();
    let keys = node.keys();
    let chain_id = node.chain_id();
    let url = node.url();
    let datadir = node.datadir.clone();

    // A stream of issuances (independent, so every one is valid whatever confirms).
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = Arc::clone(&stop);
        let issuer = keys.issuer_cash;
        std::thread::spawn(move || {
            let client = settle_rpc::RpcClient::with_timeout(
                url,
                settle_rpc::Auth::cookie_in(&datadir),
                5_000,
            );
            let holder = new_key();
            let mut sent: Vec<Txid> = Vec::new();
            for i in 0..10_000u32 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let c = cash_contract(&issuer, &format!("Stream euro {i}"), "STRM");
                let (tx, _) = issue_tx(chain_id, &c, &issuer, &[(p2k(&holder), 1)]);
                match client.send_raw_transaction(&tx) {
                    Ok(txid) => sent.push(txid),
                    Err(_) => break, // the node died under us
                }
            }
            sent
        })
    };

    // Let several blocks through, note what is confirmed, then kill the node mid-stream.
    let client = node.client();
    wait_until(WAIT_TIMEOUT_MS, "a few blocks", || {
        (node.info().blocks >= 3).then_some(())
    });
    let tip = client.get_block_count().expect("height");
    let mut confirmed: Vec<Txid> = Vec::new();
    for h in 1..=tip {
        let hash = client.get_block_hash(h).expect("hash");
        confirmed.extend(client.get_block(&hash).expect("block").txids);
    }
    assert!(!confirmed.is_empty());
    node.kill9();
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().expect("sender thread");
    assert!(sent.len() >= confirmed.len());

    // The database opens cleanly and verifies.
    let out = node.verify();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "verify after kill -9 failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("ok:"), "{stdout}");

    node.start();
    let client = node.client();
    assert!(node.info().blocks >= tip);
    for txid in &confirmed {
        let info = client
            .get_raw_transaction(txid)
            .unwrap_or_else(|e| panic!("confirmed {txid} lost after kill -9: {e}"));
        assert!(info.height.is_some(), "{txid} no longer confirmed");
    }
    // And the node still works.
    let c = cash_contract(&keys.issuer_cash, "After the crash", "AFTR");
    let (tx, _) = issue_tx(chain_id, &c, &keys.issuer_cash, &[(p2k(&new_key()), 1)]);
    node.wait_confirmed(
        &client
            .send_raw_transaction(&tx)
            .expect("accepted after restart"),
    );
}
