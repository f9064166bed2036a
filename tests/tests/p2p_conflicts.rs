//! Conflicts and faults across a network of real `settled` processes on loopback: the
//! same coin spent through two different validators, and a network that loses its
//! quorum and gets it back.

#![allow(clippy::panic)] // test code: a panic is how a test reports failure

use settle_assets::Txid;
use settle_tests::node::*;

/// Bound on waiting for a transaction or a tip to reach every node.
const NETWORK_WAIT_MS: u64 = 60_000;
/// How long a network without a quorum is watched for a block it must not decide. Several
/// full rounds of the fast test timeouts (propose 1 s, prevote and precommit 0.3 s).
const NO_QUORUM_WATCH_MS: u64 = 4_000;

/// The height of the block holding `txid` on `node`, if it is in one.
fn confirmed_height(node: &NetNode, txid: &Txid) -> Option<u64> {
    node.client()
        .get_raw_transaction(txid)
        .ok()
        .and_then(|i| i.height)
}

#[test]
fn one_coin_spent_through_two_validators_confirms_once_everywhere() {
    let mut net = TestNetwork::start(4, 0, "");
    let chain_id = net.chain_id();
    let issuer = net.issuer_cash();
    let (alice, bob, carol) = (new_key(), new_key(), new_key());
    let all: Vec<usize> = (0..4).collect();

    let contract = cash_contract(&issuer, "Conflict euro", "CEUR");
    let (issue, asset) = issue_tx(chain_id, &contract, &issuer, &[(p2k(&alice), 100)]);
    let txid = net.nodes[0]
        .client()
        .send_raw_transaction(&issue)
        .expect("issue accepted");
    for node in &net.nodes {
        node.wait_confirmed(&txid, NETWORK_WAIT_MS);
    }

    // Alice signs two transactions spending the same coin and hands them to two
    // different validators at once.
    let coin = owned(&issue, 0, &alice);
    let to_bob = spend_tx(
        chain_id,
        std::slice::from_ref(&coin),
        vec![pay(asset, 100, &bob)],
        0,
    );
    let to_carol = spend_tx(
        chain_id,
        std::slice::from_ref(&coin),
        vec![pay(asset, 100, &carol)],
        0,
    );
    let (c0, c3) = (net.nodes[0].client(), net.nodes[3].client());
    let (sent_bob, sent_carol) = std::thread::scope(|s| {
        let a = s.spawn(|| c0.send_raw_transaction(&to_bob));
        let b = s.spawn(|| c3.send_raw_transaction(&to_carol));
        (
            a.join().expect("sender thread"),
            b.join().expect("sender thread"),
        )
    });
    assert!(
        sent_bob.is_ok() || sent_carol.is_ok(),
        "at least one of the two is accepted somewhere: {sent_bob:?} / {sent_carol:?}"
    );

    // Exactly one of them ends up in a block, the same one on every node.
    let (bob_txid, carol_txid) = (to_bob.txid(), to_carol.txid());
    let winner = wait_until(NETWORK_WAIT_MS, "one of the two to confirm", || {
        match (
            confirmed_height(&net.nodes[0], &bob_txid),
            confirmed_height(&net.nodes[0], &carol_txid),
        ) {
            (Some(_), None) => Some((bob_txid, carol_txid)),
            (None, Some(_)) => Some((carol_txid, bob_txid)),
            (Some(_), Some(_)) => panic!("both spends of one coin confirmed"),
            (None, None) => None,
        }
    });
    let (won, lost) = winner;
    let height = net.nodes[0].wait_confirmed(&won, NETWORK_WAIT_MS);
    for node in &net.nodes {
        assert_eq!(
            node.wait_confirmed(&won, NETWORK_WAIT_MS),
            height,
            "{}",
            node.name
        );
    }
    net.wait_converged(&all, height, NETWORK_WAIT_MS);

    // The loser is in no block and no mempool, and every node refuses it as a conflict
    // naming the coin's spender.
    let loser = if lost == bob_txid { &to_bob } else { &to_carol };
    for node in &net.nodes {
        let client = node.client();
        assert_eq!(
            confirmed_height(node, &lost),
            None,
            "{} confirmed the loser",
            node.name
        );
        let mempool = client.get_raw_mempool().expect("getrawmempool");
        assert!(
            !mempool.contains(&lost),
            "{} still holds the loser",
            node.name
        );
        let verdict = client
            .test_mempool_accept(std::slice::from_ref(loser))
            .expect("testmempoolaccept");
        assert!(!verdict[0].allowed, "{}: {:?}", node.name, verdict[0]);
        assert_eq!(
            verdict[0].reject_class.as_deref(),
            Some("conflict"),
            "{}: {:?}",
            node.name,
            verdict[0]
        );
        let reason = verdict[0].reject_reason.clone().unwrap_or_default();
        assert!(
            reason.contains(&won.to_string()),
            "{}: the reason names the confirmed spender {won}: {reason}",
            node.name
        );
    }
}

#[test]
fn two_of_four_validators_down_decides_nothing_until_one_returns() {
    let mut net = TestNetwork::start(4, 0, "");
    let chain_id = net.chain_id();
    let issuer = net.issuer_cash();
    let alice = new_key();
    let contract = cash_contract(&issuer, "Quorum euro", "QEUR");

    // A first block, so every node is past genesis and agrees.
    let (first, _) = issue_tx(chain_id, &contract, &issuer, &[(p2k(&alice), 10)]);
    let txid = net.nodes[0]
        .client()
        .send_raw_transaction(&first)
        .expect("issue accepted");
    for node in &net.nodes {
        node.wait_confirmed(&txid, NETWORK_WAIT_MS);
    }
    let before = net.wait_converged(&[0, 1, 2, 3], 1, NETWORK_WAIT_MS);

    // Two of four down: 2 of 4 voting power is below the two-thirds quorum.
    net.nodes[2].kill9();
    net.nodes[3].kill9();
    let second = cash_contract(&issuer, "Quorum euro, second issue", "QEU2");
    let (pending, _) = issue_tx(chain_id, &second, &issuer, &[(p2k(&alice), 20)]);
    let pending_txid = net.nodes[0]
        .client()
        .send_raw_transaction(&pending)
        .expect("a live node still accepts transactions into its mempool");
    std::thread::sleep(std::time::Duration::from_millis(NO_QUORUM_WATCH_MS));
    for i in [0usize, 1] {
        let info = net.nodes[i].info();
        assert_eq!(
            info.blocks, before.blocks,
            "node{i} decided a block without a quorum"
        );
        assert_eq!(
            info.best_block_hash, before.best_block_hash,
            "node{i} forked"
        );
        assert_eq!(confirmed_height(&net.nodes[i], &pending_txid), None);
    }

    // One comes back: three of four is a quorum again, and the waiting transaction is
    // decided on all three, on one chain.
    net.nodes[2].start();
    for i in [0usize, 1, 2] {
        net.nodes[i].wait_confirmed(&pending_txid, NETWORK_WAIT_MS);
    }
    let after = net.wait_converged(&[0, 1, 2], before.blocks + 1, NETWORK_WAIT_MS);
    let block = net.nodes[2]
        .client()
        .get_block_hash(before.blocks)
        .expect("getblockhash");
    assert_eq!(
        block, before.best_block_hash,
        "the chain resumed from the same block, no fork"
    );
    assert!(after.blocks > before.blocks);
}

/// Blocks the network decides before the late full node starts.
const BLOCKS_BEFORE_LATE_NODE: u64 = 200;

#[test]
fn a_full_node_started_after_200_blocks_syncs_from_genesis() {
    // Empty blocks on a short interval, so 200 blocks do not need 200 transactions.
    let mut net = TestNetwork::create(
        4,
        1,
        "[producer]\nempty_blocks = true\nempty_block_interval_ms = 20\n",
    );
    for i in 0..4 {
        net.nodes[i].start();
    }
    let chain_id = net.chain_id();
    let issuer = net.issuer_cash();
    let alice = new_key();
    let contract = cash_contract(&issuer, "Late euro", "LEUR");
    let (issue, _) = issue_tx(chain_id, &contract, &issuer, &[(p2k(&alice), 10)]);
    let txid = net.nodes[1]
        .client()
        .send_raw_transaction(&issue)
        .expect("issue accepted");
    let issued_at = net.nodes[1].wait_confirmed(&txid, NETWORK_WAIT_MS);
    let target = wait_until(
        2 * NETWORK_WAIT_MS,
        "the validators to decide 200 blocks",
        || {
            let h = net.nodes[0].info().blocks;
            (h >= BLOCKS_BEFORE_LATE_NODE).then_some(h)
        },
    );

    // The full node starts from genesis and follows the network to (at least) that height,
    // agreeing on every block hash it is asked about, the transaction included.
    net.nodes[4].start();
    let full = &net.nodes[4];
    wait_until(2 * NETWORK_WAIT_MS, "the late full node to sync", || {
        (full.info().blocks >= target).then_some(())
    });
    let (c0, c4) = (net.nodes[0].client(), full.client());
    for h in [1, issued_at, target / 2, target] {
        assert_eq!(
            c4.get_block_hash(h).expect("full node has the block"),
            c0.get_block_hash(h).expect("validator has the block"),
            "block {h} differs"
        );
    }
    assert_eq!(confirmed_height(full, &txid), Some(issued_at));
    assert!(
        full.log().contains("sync: catching up"),
        "the full node logs its sync progress"
    );
    let header = c4
        .get_block_header(&c4.get_block_hash(target).expect("hash"))
        .expect("header");
    let theirs = c0
        .get_block_header(&c0.get_block_hash(target).expect("hash"))
        .expect("header");
    assert_eq!(header.utxo_commitment, theirs.utxo_commitment);
}
