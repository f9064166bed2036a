//! The wallet signs only what its user agreed to (issue 10, section 1), through the real
//! `settle` binary against a real dev node: a multisig PST that smuggles in one of the
//! co-signer's own coins, sighash types the user did not ask for, a second asset with the
//! ticker EUR, and a borrower who rewrites the loan's terms before the lender co-signs.

use settle_assets::{Amount, LendingTerms, TxOut};
use settle_script::addresses::Address;
use settle_tests::lending::Desk;
use settle_tests::node::TestNode;
use settle_tests::wallet::{Wallet, issuers};
use settle_wallet::coins::{ChangeAddress, WalletCoin};
use settle_wallet::lending as lend;
use settle_wallet::pst::Pst;

fn read(path: &str) -> Pst {
    Pst::from_base64(std::fs::read_to_string(path).expect("read").trim()).expect("pst")
}

fn write(path: &str, pst: &Pst) {
    std::fs::write(path, pst.to_base64()).expect("write");
}

/// The coin paying `address` (one, confirmed).
fn coin_at(node: &TestNode, address: &str) -> (settle_assets::OutPoint, TxOut) {
    let list = node
        .client()
        .list_unspent(&[address.to_owned()])
        .expect("listunspent");
    let u = list.first().expect("a coin");
    (
        u.outpoint,
        TxOut {
            asset: u.asset,
            amount: Amount::from_units(u.amount).expect("amount"),
            script_pubkey: hex::decode(&u.script_pubkey).expect("hex"),
        },
    )
}

#[test]
fn pst_sign_shows_and_asks_and_keeps_sighash_to_named_inputs() {
    let node = TestNode::start_dev();
    let (cb, _csd, _eur, _bond) = issuers(&node, "10,000.00", "1");
    let (a, b) = (Wallet::create(&node, "a"), Wallet::create(&node, "b"));
    let key = |w: &Wallet| {
        w.ok(&["multisig", "key"])["key"]
            .as_str()
            .expect("k")
            .to_owned()
    };
    let (ka, kb) = (key(&a), key(&b));
    let made = a.ok(&[
        "multisig",
        "create",
        "--threshold",
        "2",
        "--key",
        &ka,
        "--key",
        &kb,
        "--name",
        "m",
    ]);
    let address = made["address"].as_str().expect("address").to_owned();
    let descriptor = made["descriptor"].as_str().expect("descriptor").to_owned();
    b.ok(&["multisig", "import", &descriptor, "--name", "m"]);
    cb.ok(&["send", "100.00", "EUR", &address, "--wait"]);
    let b_own = b.address();
    cb.ok(&["send", "900.00", "EUR", &b_own, "--wait"]);

    // A starts a multisig payment to itself, then smuggles in B's own single-key coin and
    // an output paying that coin to A as well.
    let p = a.file("spend.pst");
    let p = p.to_str().expect("utf-8");
    let a_addr = a.address();
    a.ok(&[
        "multisig", "spend", "m", "100.00", "EUR", &a_addr, "--out", p,
    ]);
    let honest = read(p);
    let (outpoint, txout) = coin_at(&node, &b_own);
    // A's signature (ALL) would forbid the edit: the attacker rebuilds it unsigned.
    let spent = honest
        .inputs()
        .iter()
        .map(|x| x.spent_output.clone())
        .collect();
    let mut evil = Pst::create(
        honest.unsigned_tx().clone(),
        spent,
        honest.chain_id,
        honest.network,
    )
    .expect("rebuild");
    for (n, x) in honest.inputs().iter().enumerate() {
        evil.set_witness_script(n, x.witness_script.clone().expect("script"))
            .expect("script");
    }
    let i = evil
        .add_input(settle_assets::TxIn::spending(outpoint), Some(txout.clone()))
        .expect("add input");
    evil.add_output(TxOut {
        script_pubkey: Address::parse_for(&a_addr, settle_script::Network::Dev)
            .expect("address")
            .script_pubkey(),
        ..txout
    })
    .expect("add output");
    let e = a.file("evil.pst");
    let e = e.to_str().expect("utf-8");
    write(e, &evil);

    // Without --yes and without a terminal, B signs nothing and is shown its own loss.
    let (kind, message) = b.fails(&["pst", "sign", e]);
    assert_eq!(kind, "not_confirmed", "{message}");
    // The multisig coin (100.00, B watches it) and B's own 900.00 both go to A.
    assert!(message.contains("-1,000.00 EUR"), "{message}");
    assert!(message.contains("900.00 EUR [cash"), "{message}");
    assert!(message.contains(&format!("to {a_addr}\n")), "{message}");
    assert!(
        message.contains(&format!("signs input {i}: your coin {outpoint}")),
        "{message}"
    );
    assert!(
        read(e).inputs().iter().all(|x| x.partial_sigs.is_empty()),
        "nothing written"
    );

    // pst analyze names parties by address, marks B's own, and says what sign would do.
    let shown = b.run(&["pst", "analyze", e]);
    assert!(shown.ok, "{}", shown.stderr);
    assert!(
        shown.stdout.contains(&format!("{b_own} (this wallet)")),
        "{}",
        shown.stdout
    );
    assert!(
        shown.stdout.contains("settle pst sign would sign input(s)"),
        "{}",
        shown.stdout
    );

    // A sighash other than ALL only for inputs named, NONE only with the loud flag.
    let (kind, message) = b.fails(&["pst", "sign", "--yes", "--sighash", "NONE", p]);
    assert_eq!(kind, "usage", "{message}");
    let (kind, message) = b.fails(&[
        "pst",
        "sign",
        "--yes",
        "--sighash",
        "NONE",
        "--input",
        "0",
        p,
    ]);
    assert_eq!(kind, "refused", "{message}");
    assert!(
        message.contains("input 0") && message.contains("NONE"),
        "{message}"
    );
    let signed = b.ok(&[
        "pst",
        "sign",
        "--yes",
        "--sighash",
        "SINGLE",
        "--input",
        "0",
        p,
    ]);
    assert_eq!(signed["signed"][0]["sighash"], "SINGLE", "{signed}");
}

#[test]
fn a_second_eur_is_shown_apart_and_never_picked_by_ticker() {
    let node = TestNode::start_dev();
    let (cb, csd, eur, _bond) = issuers(&node, "10,000.00", "1000");
    // The CSD, authorised for securities, issues a "security" with the ticker EUR.
    let fake = csd.ok(&[
        "asset",
        "issue",
        "--class",
        "security",
        "--isin",
        "US0231351067",
        "--name",
        "Euro",
        "--ticker",
        "EUR",
        "--amount",
        "100000",
        "--wait",
    ]);
    let fake = fake["asset"].as_str().expect("asset").to_owned();
    let (kind, message) = cb.fails(&["send", "1.00", "EUR", &csd.address()]);
    assert_eq!(kind, "unknown_asset", "{message}");
    assert!(
        message.contains(&eur) && message.contains(&fake),
        "{message}"
    );
    assert!(message.contains("asset id"), "{message}");

    // An offer of the fake EUR: `offer show` says what it is and warns.
    let alice = Wallet::create(&node, "alice");
    let o = csd.file("fake.pst");
    let o = o.to_str().expect("utf-8");
    csd.ok(&[
        "offer",
        "create",
        "--give",
        &format!("1000 {fake}"),
        "--want",
        &format!("10.00 {eur}"),
        "--out",
        o,
    ]);
    let shown = alice.run(&["offer", "show", o]);
    assert!(shown.ok, "{}", shown.stderr);
    assert!(shown.stdout.contains("EUR [security"), "{}", shown.stdout);
    assert!(
        shown.stdout.contains("shared or imitated"),
        "{}",
        shown.stdout
    );
    assert!(shown.stdout.contains(&fake[..12]), "{}", shown.stdout);

    // Pinning the real EUR marks it trusted wherever it is shown.
    alice.ok(&["asset", "trust", &eur]);
    let (kind, _) = alice.fails(&["asset", "trust", "EUR"]);
    assert_eq!(kind, "usage");
    cb.ok(&["send", "20.00", &eur, &alice.address(), "--wait"]);
    let (kind, message) = alice.fails(&["offer", "take", o]);
    assert_eq!(kind, "not_confirmed", "{message}");
    assert!(message.contains("trusted]"), "{message}");
    assert!(message.contains("shared or imitated"), "{message}");
}

/// The borrower's coins as a `lend::accept` needs them, read back from the accepted PST.
fn coins_of(pst: &Pst, from: usize) -> Vec<WalletCoin> {
    (from..pst.inputs().len())
        .map(|i| WalletCoin {
            outpoint: pst.unsigned_tx().inputs[i].prevout,
            txout: pst.inputs()[i].spent_output.clone().expect("spent"),
            origin: pst.inputs()[i].key_origins.values().next().cloned(),
        })
        .collect()
}

#[test]
fn a_lender_does_not_cosign_terms_the_borrower_rewrote() {
    let d = Desk::new();
    let file = d.lender.file("loan.pst");
    let file = file.to_str().expect("utf-8");
    let borrower = d.borrower.address();
    d.lender.ok(&[
        "lend",
        "propose",
        "--borrower",
        &borrower,
        "--security",
        "BOND",
        "--quantity",
        "10",
        "--collateral",
        "1,000.00 EUR",
        "--fee",
        "5.00 EUR",
        "--maturity-in",
        "20",
        "--settle-within",
        "5",
        "--out",
        file,
    ]);
    let proposal = read(file);
    d.borrower.ok(&["lend", "accept", file]);
    let accepted = read(file);
    // The borrower rebuilds the proposal from the lender's own coins with collateral
    // 0.01 EUR and no fee, accepts it itself, and hands it back.
    let opening = lend::read_opening(&proposal).expect("opening");
    let cheap = LendingTerms {
        collateral_amount: 1,
        fee: 0,
        ..opening.terms.clone()
    };
    let issuer = settle_assets::AssetContract::from_canonical_bytes(
        match &proposal.unsigned_tx().inputs[0]
            .issuance
            .as_ref()
            .expect("issuance")
            .kind
        {
            settle_assets::IssuanceKind::New { contract } => contract,
            settle_assets::IssuanceKind::Reissue { .. } => unreachable!("a new position"),
        },
    )
    .expect("contract")
    .issuer;
    let lender_coins = coins_of(&proposal, 0);
    let spare = ChangeAddress {
        script_pubkey: proposal
            .unsigned_tx()
            .outputs
            .last()
            .expect("o")
            .script_pubkey
            .clone(),
        origin: None,
    };
    let (forged, _) = lend::propose(
        &cheap,
        issuer,
        &lender_coins,
        || Ok(spare.clone()),
        proposal.chain_id,
        proposal.network,
    )
    .expect("forged proposal");
    let borrower_coins = coins_of(&accepted, proposal.inputs().len());
    let back = ChangeAddress {
        script_pubkey: accepted
            .unsigned_tx()
            .outputs
            .last()
            .expect("o")
            .script_pubkey
            .clone(),
        origin: None,
    };
    let (forged, _) = lend::accept(&forged, &borrower_coins, || Ok(back.clone())).expect("accept");
    write(file, &forged);
    let (kind, message) = d.lender.fails(&["lend", "cosign", "--yes", file]);
    assert_eq!(kind, "lending", "{message}");
    assert!(message.contains("collateral amount differs"), "{message}");
    assert!(
        read(file)
            .inputs()
            .iter()
            .all(|x| x.partial_sigs.is_empty())
    );

    // The honest file: without --yes the lender is shown the terms and its flows first.
    write(file, &accepted);
    let (kind, message) = d.lender.fails(&["lend", "cosign", file]);
    assert_eq!(kind, "not_confirmed", "{message}");
    assert!(message.contains("-10 BOND [security"), "{message}");
    assert!(message.contains("1,000.00 EUR [cash"), "{message}");
    d.lender.ok(&["lend", "cosign", "--yes", file]);
}

/// The key of `w` that locks `script` (searched among its first receive keys).
fn key_for(w: &Wallet, script: &[u8]) -> settle_wallet::keys::DerivedKey {
    let m = settle_wallet::keys::Mnemonic::parse(w.mnemonic.as_deref().expect("mnemonic"))
        .expect("mnemonic");
    let keys = settle_wallet::keys::WalletKeys::new(&m.to_seed(""), 0).expect("keys");
    (0..20)
        .map(|i| keys.derive(0, i).expect("key"))
        .find(|k| settle_script::p2k(&k.x_only()) == script)
        .expect("the wallet's key")
}

#[test]
fn offer_show_checks_the_makers_coin_on_chain_and_shows_what_is_unusual() {
    let node = TestNode::start_dev();
    let (cb, csd, _eur, bond) = issuers(&node, "10,000.00", "1000");
    let alice = Wallet::create(&node, "alice");
    let bob = Wallet::create(&node, "bob");
    let a_addr = alice.address();
    cb.ok(&["send", "100.00", "EUR", &a_addr, "--wait"]);
    csd.ok(&["send", "10", "BOND", &bob.address(), "--wait"]);
    let (outpoint, coin) = coin_at(&node, &a_addr);
    let k = key_for(&alice, &coin.script_pubkey);
    let want = TxOut {
        asset: bond.parse().expect("bond id"),
        amount: Amount::from_units(1).expect("amount"),
        script_pubkey: coin.script_pubkey.clone(),
    };
    // A maker's offer that claims its 100.00 EUR coin holds 10,000.00 EUR, signed over
    // that claim, with a lock time far ahead and an odd sequence.
    let mut claim = coin.clone();
    claim.amount = Amount::from_units(1_000_000).expect("amount");
    let tx = settle_assets::Transaction {
        version: settle_assets::transaction::TX_VERSION,
        inputs: vec![settle_assets::TxIn {
            sequence: 7,
            ..settle_assets::TxIn::spending(outpoint)
        }],
        outputs: vec![want],
        lock_time: 5_000,
        expiry_height: 0,
    };
    let chain = node.chain_id();
    let mut lie =
        Pst::create(tx, vec![Some(claim)], chain, settle_script::Network::Dev).expect("pst");
    lie.sign_input(0, &k.key, settle_script::SighashType::SingleAnyoneCanPay)
        .expect("maker signs");
    let f = alice.file("lie.pst");
    let f = f.to_str().expect("utf-8");
    write(f, &lie);
    let shown = bob.ok(&["offer", "show", f]);
    assert_eq!(shown["status"], "mismatch", "{shown}");
    assert_eq!(shown["lock_time"], 5_000);
    let text = bob.run(&["offer", "show", f]).stdout;
    assert!(text.contains("lock time 5000"), "{text}");
    assert!(text.contains("unusual sequence 7"), "{text}");
    assert!(text.contains("not what the offer claims"), "{text}");
    let (kind, message) = bob.fails(&["offer", "take", "--yes", f]);
    assert_eq!(kind, "offer", "{message}");
    assert!(message.contains("not what the offer claims"), "{message}");
    assert_eq!(bob.balances().get("BOND").map(String::as_str), Some("10"));
}
