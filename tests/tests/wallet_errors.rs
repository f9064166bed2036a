//! The errors a user meets, as the user reads them: insufficient funds in the asset's
//! precision, unknown asset, malformed amount and address, malformed and foreign-chain
//! PSTs, offers that cannot be made or taken, an unreachable node, bad credentials, a
//! node on another chain, a wrong passphrase. Each one exits
//! with status 1, a stable `--json` kind and a message that says what is wrong, and
//! changes nothing.

use settle_assets::{Amount, AssetId, ChainId, OutPoint, Transaction, TxIn, TxOut, Txid};
use settle_script::Network;
use settle_tests::node::TestNode;
use settle_tests::wallet::{TEST_PASSPHRASE, Wallet, balances, issuers};
use settle_wallet::pst::Pst;

#[test]
fn errors_a_user_meets_read_well() {
    let node = TestNode::start_dev();
    let (cb, _csd, _eur, _bond) = issuers(&node, "1,000.00", "10");
    let alice = Wallet::create(&node, "alice");
    let to = alice.address();
    let before = cb.balances();

    let (kind, message) = cb.fails(&["send", "1,000.01", "EUR", &to]);
    assert_eq!(kind, "insufficient_funds");
    assert_eq!(
        message,
        "insufficient funds: you have 1,000.00 EUR and need 1,000.01 EUR"
    );
    let (kind, message) = cb.fails(&["send", "5", "BOND", &to]);
    assert_eq!(kind, "insufficient_funds", "{message}");
    assert!(
        message.contains("you have 0 BOND and need 5 BOND"),
        "{message}"
    );

    let (kind, message) = cb.fails(&["send", "1", "USD", &to]);
    assert_eq!(kind, "unknown_asset");
    assert!(message.contains("unknown asset \"USD\""), "{message}");
    assert!(message.contains("known: BOND, EUR"), "{message}");
    let (kind, _) = cb.fails(&["send", "1", &"ab".repeat(32), &to]);
    assert_eq!(kind, "unknown_asset");

    for bad in ["1.001", "1,00.00", "abc", "-5", "0", "1e3"] {
        let (kind, message) = cb.fails(&["send", bad, "EUR", &to]);
        assert_eq!(kind, "bad_amount", "{bad}: {message}");
    }
    let (_, message) = cb.fails(&["send", "1.001", "EUR", &to]);
    assert!(message.contains("precision 2"), "{message}");

    let (kind, message) = cb.fails(&["send", "1.00", "EUR", "stl1notanaddress"]);
    assert_eq!(kind, "bad_address", "{message}");
    let (kind, message) = cb.fails(&[
        "offer", "create", "--give", "1 EUR", "--want", "10", "--out", "/tmp/x",
    ]);
    assert_eq!(kind, "bad_amount");
    assert!(message.contains("expected \"AMOUNT ASSET\""), "{message}");

    // Malformed PSTs.
    let junk = alice.file("junk.pst");
    std::fs::write(&junk, "this is not a pst").expect("write");
    let (kind, message) = alice.fails(&["pst", "decode", junk.to_str().expect("utf-8")]);
    assert_eq!(kind, "bad_pst");
    assert!(message.starts_with("not a valid pst ("), "{message}");
    let truncated = alice.file("truncated.pst");
    std::fs::write(&truncated, b"stlpst\xff\x01\x01").expect("write");
    let (kind, message) = alice.fails(&["pst", "analyze", truncated.to_str().expect("utf-8")]);
    assert_eq!(kind, "bad_pst");
    assert!(message.starts_with("not a valid pst ("), "{message}");

    // A PST for another chain.
    let foreign = Pst::create(
        Transaction {
            version: 1,
            inputs: vec![TxIn::spending(OutPoint::new(Txid([1; 32]), 0))],
            outputs: vec![TxOut {
                asset: AssetId([2; 32]),
                amount: Amount::from_units(5).expect("amount"),
                script_pubkey: vec![0x6a],
            }],
            lock_time: 0,
            expiry_height: 0,
        },
        vec![None],
        ChainId([0x77; 32]),
        Network::Dev,
    )
    .expect("pst");
    let fpath = alice.file("foreign.pst");
    std::fs::write(&fpath, foreign.to_base64()).expect("write");
    let f = fpath.to_str().expect("utf-8");
    for args in [
        vec!["pst", "sign", f],
        vec!["pst", "broadcast", f],
        vec!["pst", "analyze", f],
    ] {
        let (kind, message) = alice.fails(&args);
        assert_eq!(kind, "foreign_pst", "{args:?}: {message}");
        assert!(
            message.contains(&ChainId([0x77; 32]).to_string()),
            "{message}"
        );
    }
    let (kind, _) = alice.fails(&["offer", "take", "--yes", f]);
    assert!(kind == "foreign_pst" || kind == "offer", "{kind}");

    // Offers: an unknown asset, a taker short of what the maker wants (in its precision),
    // and a stranger trying to cancel someone else's offer.
    let offer = cb.file("offer.pst");
    let offer = offer.to_str().expect("utf-8");
    let (kind, message) = cb.fails(&[
        "offer",
        "create",
        "--give",
        "100.00 EUR",
        "--want",
        "10 GOLD",
        "--out",
        offer,
    ]);
    assert_eq!(kind, "unknown_asset", "{message}");
    assert!(message.contains("unknown asset \"GOLD\""), "{message}");
    let (kind, message) = cb.fails(&[
        "offer",
        "create",
        "--give",
        "100.00 EUR",
        "--want",
        "1.5 BOND",
        "--out",
        offer,
    ]);
    assert_eq!(kind, "bad_amount", "{message}");
    assert!(message.contains("BOND have 0 decimal places"), "{message}");
    let (kind, message) = cb.fails(&[
        "offer",
        "create",
        "--give",
        "2,000.00 EUR",
        "--want",
        "1 BOND",
        "--out",
        offer,
    ]);
    assert_eq!(kind, "insufficient_funds", "{message}");
    assert!(
        message.contains("you have 1,000.00 EUR and need 2,000.00 EUR"),
        "{message}"
    );
    cb.ok(&[
        "offer",
        "create",
        "--give",
        "100.00 EUR",
        "--want",
        "10 BOND",
        "--out",
        offer,
    ]);
    let (kind, message) = alice.fails(&["offer", "take", "--yes", offer]);
    assert_eq!(kind, "insufficient_funds", "{message}");
    assert_eq!(
        message,
        "insufficient funds: you have 0 BOND and need 10 BOND"
    );
    let (kind, message) = alice.fails(&["offer", "cancel", offer]);
    assert_eq!(kind, "offer", "{message}");
    assert!(message.contains("only the maker can cancel"), "{message}");

    // Nothing above moved a coin.
    assert_eq!(cb.balances(), before);
    assert_eq!(alice.balances(), balances(&[]));
}

#[test]
fn node_problems_read_well() {
    let node = TestNode::start_dev();
    let mut w = Wallet::create(&node, "w");

    // Nobody listening.
    let url = w.rpc_url.clone();
    w.rpc_url = "http://127.0.0.1:1".into();
    let (kind, message) = w.fails(&["balance"]);
    assert_eq!(kind, "node_unreachable");
    assert!(
        message.contains("cannot reach the node at http://127.0.0.1:1"),
        "{message}"
    );
    w.rpc_url = url;

    // A wrong cookie.
    let cookie = w.file("wrong.cookie");
    std::fs::write(&cookie, "__cookie__:00000000000000000000000000000000").expect("write");
    let r = w.run_json(&["--rpc-cookie", cookie.to_str().expect("utf-8"), "balance"]);
    let (kind, message) = r.error();
    assert_eq!(kind, "bad_credentials");
    assert!(message.contains("refused the credentials"), "{message}");

    // A node of another chain.
    let other = TestNode::start_dev();
    assert_ne!(other.chain_id(), node.chain_id());
    w.rpc_url = other.url();
    w.node_datadir = other.datadir.clone();
    let (kind, message) = w.fails(&["balance"]);
    assert_eq!(kind, "wrong_chain");
    assert!(message.contains("is on another chain"), "{message}");
    assert!(message.contains(&node.chain_id().to_string()), "{message}");
}

#[test]
fn wrong_passphrase_is_a_clear_error_and_changes_nothing() {
    let node = TestNode::start_dev();
    let mut w = Wallet::create(&node, "w");
    let file = w.dir.join("wallet.settle");
    let before = std::fs::read(&file).expect("file");
    w.passphrase = "not the passphrase".into();
    let (kind, message) = w.fails(&["balance"]);
    assert_eq!(kind, "wrong_passphrase");
    assert!(message.starts_with("wrong passphrase"), "{message}");
    assert_eq!(std::fs::read(&file).expect("file"), before);
    let text = w.run(&["address", "new"]);
    assert!(!text.ok);
    assert!(
        text.stderr.contains("settle: error: wrong passphrase"),
        "{}",
        text.stderr
    );
    // A second wallet cannot be created over the first.
    w.passphrase = TEST_PASSPHRASE.into();
    let (kind, _) = w.fails(&["wallet", "create"]);
    assert_eq!(kind, "wallet_exists");
    assert!(w.ok(&["wallet", "info"])["fingerprint"].is_string());
}
