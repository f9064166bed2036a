//! Delivery versus payment between two wallets with separate data directories, against a
//! real `settled`: the central bank issues EUR, the CSD a bond, Alice and Bob are funded,
//! Alice offers EUR for the bond and Bob takes it. Then what must not work: taking twice,
//! taking a cancelled or an expired offer, and completions edited to pay the taker more or
//! to change what the maker receives (the node rejects them, with the reason).

use serde_json::Value;
use settle_assets::{Amount, TxOut};
use settle_rpc::{ClientError, codes};
use settle_script::PrecomputedTx;
use settle_script::sighash::SighashType;
use settle_tests::node::TestNode;
use settle_tests::wallet::{Wallet, balances, issuers};
use settle_wallet::keys::{Mnemonic, WalletKeys};
use settle_wallet::pst::Pst;

struct Market {
    node: TestNode,
    cb: Wallet,
    alice: Wallet,
    bob: Wallet,
}

/// Alice gets 5,000.00 EUR, Bob 20 BOND; both confirmed.
fn market() -> Market {
    let node = TestNode::start_dev();
    let (cb, csd, _eur, _bond) = issuers(&node, "1,000,000.00", "1000");
    let alice = Wallet::create(&node, "alice");
    let bob = Wallet::create(&node, "bob");
    let a = alice.address();
    let b = bob.address();
    cb.ok(&["send", "5,000.00", "EUR", &a, "--label", "alice", "--wait"]);
    csd.ok(&["send", "20", "BOND", &b, "--label", "bob", "--wait"]);
    Market {
        node,
        cb,
        alice,
        bob,
    }
}

fn reject_code(e: &ClientError) -> String {
    assert!(e.rpc().is_some(), "not an rpc error: {e}");
    let rpc = e.rpc().expect("rpc error");
    assert_eq!(rpc.code, codes::TX_REJECTED, "{rpc:?}");
    rpc.reject_data().expect("reject data").reject_code
}

#[test]
fn dvp_between_two_wallets_settles_both_legs_at_once() {
    let m = market();
    let (alice, bob) = (&m.alice, &m.bob);
    assert_eq!(alice.balances(), balances(&[("EUR", "5,000.00")]));
    assert_eq!(bob.balances(), balances(&[("BOND", "20")]));

    // Alice has no coin of exactly 1,000.00 EUR: the wallet splits one and says so.
    let offer = alice.file("offer.pst");
    let made = alice.ok(&[
        "offer",
        "create",
        "--give",
        "1000.00 EUR",
        "--want",
        "10 BOND",
        "--expires-in",
        "50",
        "--out",
        offer.to_str().expect("utf-8"),
    ]);
    assert!(made["split_txid"].is_string(), "{made}");
    assert_eq!(made["price"], "100.00 EUR per BOND");
    // The offer travels as a file; Bob reads it.
    let shown = bob.ok(&["offer", "show", offer.to_str().expect("utf-8")]);
    assert_eq!(shown["status"], "open");
    assert_eq!(shown["give"]["amount"], "1,000.00");
    assert_eq!(shown["want"]["amount"], "10");
    let text = bob.run(&["offer", "show", offer.to_str().expect("utf-8")]);
    assert!(
        text.stdout.contains("price: 100.00 EUR per BOND"),
        "{}",
        text.stdout
    );
    // The offered coin is kept out of Alice's ordinary payments.
    let bal = alice.ok(&["balance"]);
    let eur = &bal["assets"][0];
    assert_eq!(eur["amount"], "5,000.00");
    assert_eq!(eur["reserved_for_offers"], "1,000.00");

    let taken = bob.ok(&[
        "offer",
        "take",
        "--yes",
        offer.to_str().expect("utf-8"),
        "--wait",
    ]);
    let txid: settle_assets::Txid = taken["txid"].as_str().expect("txid").parse().expect("txid");
    let confirmed = m.node.wait_confirmed(&txid);
    assert!(confirmed > 0);

    assert_eq!(
        alice.balances(),
        balances(&[("EUR", "4,000.00"), ("BOND", "10")])
    );
    assert_eq!(
        bob.balances(),
        balances(&[("EUR", "1,000.00"), ("BOND", "10")])
    );
    // One transaction moved both legs.
    let tx = m.node.client().get_raw_transaction(&txid).expect("tx");
    assert_eq!(tx.tx.inputs.len(), 2);
    let history = alice.ok(&["history"]);
    assert!(
        history
            .as_array()
            .expect("entries")
            .iter()
            .any(|h| h["txid"] == taken["txid"]),
        "{history}"
    );

    // The same offer cannot be taken twice: its coin is gone.
    let shown = bob.ok(&["offer", "show", offer.to_str().expect("utf-8")]);
    assert_eq!(shown["status"], "spent");
    let (kind, message) = bob.fails(&["offer", "take", "--yes", offer.to_str().expect("utf-8")]);
    assert_eq!(kind, "rejected", "{message}");
    assert!(
        message.contains("double-spend") || message.contains("missing-inputs"),
        "{message}"
    );
    assert!(message.contains("already taken or cancelled"), "{message}");
    assert_eq!(bob.balances().get("BOND").map(String::as_str), Some("10"));

    // Prices read in whole units, whichever side the security is on.
    let back = bob.file("back.pst");
    let made = bob.ok(&[
        "offer",
        "create",
        "--give",
        "5 BOND",
        "--want",
        "520.00 EUR",
        "--out",
        back.to_str().expect("utf-8"),
    ]);
    assert_eq!(made["price"], "104.00 EUR per BOND");
    let third = alice.file("third.pst");
    let made = alice.ok(&[
        "offer",
        "create",
        "--give",
        "1,000.00 EUR",
        "--want",
        "3 BOND",
        "--out",
        third.to_str().expect("utf-8"),
    ]);
    assert_eq!(made["price"], "about 333.33 EUR per BOND");
}

#[test]
fn cancelled_and_expired_offers_cannot_be_taken() {
    let m = market();
    let (alice, bob) = (&m.alice, &m.bob);
    let offer = alice.file("cancelled.pst");
    let offer = offer.to_str().expect("utf-8");
    alice.ok(&[
        "offer",
        "create",
        "--give",
        "5,000.00 EUR",
        "--want",
        "10 BOND",
        "--out",
        offer,
    ]);
    let cancelled = alice.ok(&["offer", "cancel", offer, "--wait"]);
    assert!(cancelled["txid"].is_string());
    let (kind, message) = bob.fails(&["offer", "take", "--yes", offer]);
    assert_eq!(kind, "rejected", "{message}");
    assert!(message.contains("already taken or cancelled"), "{message}");
    assert_eq!(alice.balances(), balances(&[("EUR", "5,000.00")]));

    // An offer valid for one more block only; two blocks pass before Bob tries.
    let offer = alice.file("expiring.pst");
    let offer = offer.to_str().expect("utf-8");
    let made = alice.ok(&[
        "offer",
        "create",
        "--give",
        "5,000.00 EUR",
        "--want",
        "1 BOND",
        "--expires-in",
        "1",
        "--out",
        offer,
    ]);
    let expiry = made["expiry_height"].as_u64().expect("expiry");
    for _ in 0..2 {
        let to = m.cb.address();
        m.cb.ok(&["send", "1.00", "EUR", &to, "--wait"]);
    }
    assert!(m.node.info().blocks > expiry);
    assert_eq!(bob.ok(&["offer", "show", offer])["status"], "expired");
    let (kind, message) = bob.fails(&["offer", "take", "--yes", offer]);
    assert_eq!(kind, "rejected", "{message}");
    assert!(message.contains("(consensus, expired)"), "{message}");
    assert!(message.contains("the offer expired"), "{message}");
    assert_eq!(bob.balances(), balances(&[("BOND", "20")]));
}

/// Bob's keys, from the mnemonic his wallet showed at creation.
fn keys_of(w: &Wallet) -> WalletKeys {
    let m = Mnemonic::parse(w.mnemonic.as_deref().expect("mnemonic")).expect("mnemonic");
    WalletKeys::new(&m.to_seed(""), 0).expect("keys")
}

/// Re-signs every input after the first (the taker's) with ALL, keeping input 0's witness
/// (the maker's signature) as it was.
fn resign_taker(done: &Pst, tx: &mut settle_assets::Transaction, taker: &WalletKeys) {
    let spent: Vec<TxOut> = done
        .inputs()
        .iter()
        .map(|i| i.spent_output.clone().expect("spent output"))
        .collect();
    let witnesses: Vec<_> = {
        let cache = PrecomputedTx::new(tx, &spent, done.chain_id).expect("cache");
        (1..tx.inputs.len())
            .map(|i| {
                let origin = done.inputs()[i]
                    .key_origins
                    .values()
                    .next()
                    .expect("taker key origin");
                let key = taker
                    .derive_origin(origin)
                    .expect("taker's key")
                    .expect("derives");
                settle_script::sign_p2k_input(&cache, i, key.key.keypair(), SighashType::All)
                    .expect("sign")
            })
            .collect()
    };
    for (i, w) in witnesses.into_iter().enumerate() {
        tx.inputs[i + 1].witness = w;
    }
}

#[test]
fn edited_completions_are_rejected_by_the_node_with_the_reason() {
    let m = market();
    let (alice, bob) = (&m.alice, &m.bob);
    let offer = alice.file("offer.pst");
    let offer = offer.to_str().expect("utf-8");
    alice.ok(&[
        "offer",
        "create",
        "--give",
        "5,000.00 EUR",
        "--want",
        "10 BOND",
        "--out",
        offer,
    ]);
    // Bob completes the offer but keeps it: a finalized PST, valid as it stands.
    let done_path = bob.file("done.pst");
    let done_path = done_path.to_str().expect("utf-8");
    bob.ok(&[
        "offer",
        "take",
        "--yes",
        offer,
        "--no-broadcast",
        "--out",
        done_path,
    ]);
    let done = Pst::from_base64(&std::fs::read_to_string(done_path).expect("read")).expect("pst");
    let honest = done.extract().expect("the honest completion is valid");
    let client = m.node.client();
    let verdict = client
        .test_mempool_accept(std::slice::from_ref(&honest))
        .expect("rpc");
    assert!(verdict[0].allowed, "{verdict:?}");

    // 1. Pay the taker more EUR than the maker gives: conservation fails.
    let mut more = honest.clone();
    let eur_out = more
        .outputs
        .iter()
        .position(|o| o.asset == done.inputs()[0].spent_output.as_ref().expect("spent").asset)
        .expect("taker's EUR output");
    more.outputs[eur_out].amount =
        Amount::from_units(more.outputs[eur_out].amount.units() + 100).expect("amount");
    resign_taker(&done, &mut more, &keys_of(bob));
    let e = client.send_raw_transaction(&more).expect_err("unbalanced");
    assert_eq!(reject_code(&e), "unbalanced", "{e}");
    assert!(
        e.to_string()
            .contains("transaction rejected (consensus, unbalanced)"),
        "{e}"
    );

    // 2. Change the maker's bound output (9 BOND instead of 10, the tenth to Bob), with
    //    Bob's own inputs correctly re-signed: only Alice's signature breaks.
    let mut less = honest.clone();
    less.outputs[0].amount = Amount::from_units(9).expect("amount");
    let bond_to_bob = TxOut {
        asset: less.outputs[0].asset,
        amount: Amount::from_units(1).expect("amount"),
        script_pubkey: less.outputs[eur_out].script_pubkey.clone(),
    };
    less.outputs.push(bond_to_bob);
    resign_taker(&done, &mut less, &keys_of(bob));
    let e = client
        .send_raw_transaction(&less)
        .expect_err("bad maker signature");
    assert_eq!(reject_code(&e), "script-failed", "{e}");
    let rpc = e.rpc().expect("rpc");
    assert!(rpc.message.contains("input 0"), "{}", rpc.message);

    // The wallet refuses an edited offer file before anything reaches the node.
    let edited = {
        let text = std::fs::read_to_string(offer).expect("read");
        let pst = Pst::from_base64(&text).expect("pst");
        let mut bytes = pst.serialize();
        // The maker's output amount (10 units, little-endian) inside the unsigned tx.
        let ten = 10u64.to_le_bytes();
        let at = bytes
            .windows(8)
            .position(|w| w == ten)
            .expect("amount bytes");
        bytes[at] = 9;
        // Still a well-formed PST (the binary form is accepted as well as base64).
        Pst::deserialize(&bytes).expect("still decodes");
        let path = alice.file("edited.pst");
        std::fs::write(&path, &bytes).expect("write");
        path
    };
    let (kind, message) = bob.fails(&["offer", "take", "--yes", edited.to_str().expect("utf-8")]);
    assert_eq!(kind, "offer", "{message}");
    assert!(message.contains("signature"), "{message}");
    // Nothing moved.
    assert_eq!(bob.balances(), balances(&[("BOND", "20")]));
    let v: Value = alice.ok(&["balance"]);
    assert_eq!(v["assets"][0]["amount"], "5,000.00");
}
