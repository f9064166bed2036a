//! A 2-of-3 multisig between three wallets: each hands out a key, one creates the address,
//! the others import its descriptor. Spending needs two of them: one signature is refused
//! (by the wallet and by the node), two pass, and PSTs signed separately combine.

use settle_tests::node::TestNode;
use settle_tests::wallet::{Wallet, balances, issuers};
use settle_wallet::pst::Pst;

fn key(w: &Wallet) -> String {
    w.ok(&["multisig", "key"])["key"]
        .as_str()
        .expect("key")
        .to_owned()
}

#[test]
fn two_of_three_needs_two_wallets() {
    let node = TestNode::start_dev();
    let (cb, _csd, _eur, _bond) = issuers(&node, "10,000.00", "1");
    let (a, b, c) = (
        Wallet::create(&node, "a"),
        Wallet::create(&node, "b"),
        Wallet::create(&node, "c"),
    );
    let (ka, kb, kc) = (key(&a), key(&b), key(&c));
    let made = a.ok(&[
        "multisig",
        "create",
        "--threshold",
        "2",
        "--key",
        &ka,
        "--key",
        &kb,
        "--key",
        &kc,
        "--name",
        "treasury",
    ]);
    let address = made["address"].as_str().expect("address").to_owned();
    let descriptor = made["descriptor"].as_str().expect("descriptor").to_owned();
    assert_eq!(made["ours"], 1);
    for w in [&b, &c] {
        let imported = w.ok(&["multisig", "import", &descriptor, "--name", "treasury"]);
        assert_eq!(
            imported["address"],
            address.as_str(),
            "same address everywhere"
        );
        assert_eq!(imported["ours"], 1);
    }
    // A mistyped descriptor is caught by its checksum.
    let mut typo = descriptor.clone();
    typo.insert(10, '0');
    let (kind, message) = c.fails(&["multisig", "import", &typo, "--name", "other"]);
    assert_eq!(kind, "multisig", "{message}");

    cb.ok(&["send", "1,000.00", "EUR", &address, "--wait"]);
    let held = a.ok(&["balance"]);
    assert_eq!(held["multisig"][0]["amount"], "1,000.00", "{held}");

    // A starts a payment of 250.00 EUR to the central bank and signs it.
    let dest = cb.address();
    let p = a.file("spend.pst");
    let p = p.to_str().expect("utf-8");
    let started = a.ok(&[
        "multisig", "spend", "treasury", "250.00", "EUR", &dest, "--out", p,
    ]);
    assert_eq!(started["signed_inputs"], 1);
    // One signature is not enough: the wallet says what is missing...
    let (kind, message) = a.fails(&["pst", "finalize", p]);
    assert_eq!(kind, "incomplete", "{message}");
    assert!(
        message.contains("2 signatures needed, 1 present"),
        "{message}"
    );
    let (kind, _) = a.fails(&["pst", "broadcast", p]);
    assert_eq!(kind, "incomplete");
    let analysis = a.run(&["pst", "analyze", p]);
    assert!(
        analysis.stdout.contains("2 signatures needed, 1 present"),
        "{}",
        analysis.stdout
    );
    // ...and the node refuses the transaction with one signature in its witness.
    let one = Pst::from_base64(&std::fs::read_to_string(p).expect("read")).expect("pst");
    let mut tx = one.unsigned_tx().clone();
    let sig = one.inputs()[0]
        .partial_sigs
        .values()
        .next()
        .expect("a's signature");
    let ws = one.inputs()[0]
        .witness_script
        .clone()
        .expect("witness script");
    let template = settle_wallet::pst::templates::recognise(&ws);
    let Some(settle_wallet::pst::templates::WitnessTemplate::Multisig {
        keys: keys_in_order,
        ..
    }) = template.clone()
    else {
        unreachable!("not a multisig script: {template:?}");
    };
    let signer = *one.inputs()[0].partial_sigs.keys().next().expect("key");
    let slots = keys_in_order
        .iter()
        .map(|k| (*k == signer).then(|| sig.encoded()))
        .collect();
    tx.inputs[0].witness = settle_script::multisig_witness(slots, &ws);
    let e = node
        .client()
        .send_raw_transaction(&tx)
        .expect_err("one signature");
    let data = e.rpc().and_then(|r| r.reject_data()).expect("rejection");
    assert_eq!(data.reject_code, "script-failed", "{e}");

    // B and C each sign their own copy; combined, the payment goes through.
    let pb = b.file("b.pst");
    let pc = c.file("c.pst");
    b.ok(&[
        "pst",
        "sign",
        "--yes",
        p,
        "--out",
        pb.to_str().expect("utf-8"),
    ]);
    c.ok(&[
        "pst",
        "sign",
        "--yes",
        p,
        "--out",
        pc.to_str().expect("utf-8"),
    ]);
    let all = a.file("all.pst");
    let all = all.to_str().expect("utf-8");
    let combined = a.ok(&[
        "pst",
        "combine",
        pb.to_str().expect("utf-8"),
        pc.to_str().expect("utf-8"),
        "--out",
        all,
    ]);
    assert_eq!(combined["missing"].as_array().map(Vec::len), Some(0));
    let sent = c.ok(&["pst", "broadcast", all, "--wait"]);
    assert!(sent["height"].as_u64().is_some());

    let after = b.ok(&["balance"]);
    assert_eq!(after["multisig"][0]["amount"], "750.00", "{after}");
    assert_eq!(cb.balances(), balances(&[("EUR", "9,250.00")]));
}
