//! Keys at rest and restore: the wallet file is private and encrypted (the passphrase
//! check is in `wallet_errors.rs`), and restoring from the mnemonic finds every coin
//! again, including coins on addresses past the first gap-limit window.

use settle_tests::node::TestNode;
use settle_tests::wallet::{TEST_PASSPHRASE, Wallet, balances, issuers};

#[test]
fn restore_from_the_mnemonic_shows_the_same_balances() {
    let node = TestNode::start_dev();
    let (cb, csd, _eur, _bond) = issuers(&node, "100,000.00", "500");
    let alice = Wallet::create(&node, "alice");

    // Coins on receiving addresses 1, 19 and 35, and change from a payment. A fresh copy
    // of the wallet watches addresses 0 to 19 (the gap limit is 20); seeing 19 used moves
    // the window to 39, so 35 is found too. (`wallet create` handed out address 0, so
    // `addresses[i]` is address i + 1.)
    let mut addresses = Vec::new();
    for _ in 1..=36 {
        addresses.push(alice.address());
    }
    cb.ok(&["send", "1,234.56", "EUR", &addresses[0], "--wait"]);
    csd.ok(&["send", "7", "BOND", &addresses[18], "--wait"]);
    cb.ok(&["send", "100.00", "EUR", &addresses[34], "--wait"]);
    let elsewhere = cb.address();
    alice.ok(&["send", "34.56", "EUR", &elsewhere, "--wait"]);
    let before = alice.balances();
    assert_eq!(before, balances(&[("EUR", "1,300.00"), ("BOND", "7")]));

    // The file is private and does not hold the mnemonic in the clear.
    let file = alice.dir.join("wallet.settle");
    let raw = std::fs::read(&file).expect("wallet file");
    let mnemonic = alice.mnemonic.clone().expect("mnemonic");
    assert!(
        !raw.windows(mnemonic.len())
            .any(|w| w == mnemonic.as_bytes())
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The passphrase does not leak into the output of any command.
    let info = alice.run(&["wallet", "info"]);
    assert!(info.ok);
    assert!(!info.stdout.contains(TEST_PASSPHRASE) && !info.stdout.contains(&mnemonic));
    assert!(
        info.stdout.contains("INSECURE TEST PARAMETERS"),
        "{}",
        info.stdout
    );

    // Restore into another directory, from the words alone.
    let restored = Wallet::new(&node, "alice-restored");
    let r = restored.run_json_stdin(&["wallet", "restore"], &format!("  {mnemonic}\n"));
    assert!(r.ok, "restore failed: {}", r.stderr);
    let v = r.json();
    assert_eq!(
        v["fingerprint"],
        alice.ok(&["wallet", "info"])["fingerprint"]
    );
    assert_eq!(restored.balances(), before);
    // The restored wallet can spend what it found.
    restored.ok(&["send", "7", "BOND", &elsewhere, "--wait"]);
    assert_eq!(restored.balances(), balances(&[("EUR", "1,300.00")]));
    // The last receiving address in use is 35 (alice handed out up to 36, unused).
    assert_eq!(v["next_index"]["external"], 36);

    // A mnemonic with a wrong word is refused without echoing it.
    let bad = Wallet::new(&node, "bad");
    let mut words: Vec<&str> = mnemonic.split(' ').collect();
    words[4] = "notaword";
    let r = bad.run_json_stdin(&["wallet", "restore"], &words.join(" "));
    let (kind, message) = r.error();
    assert_eq!(kind, "mnemonic");
    assert!(message.contains("word 5"), "{message}");
    assert!(!message.contains("notaword") && !r.stderr.contains(words[0]));
    assert!(!bad.dir.join("wallet.settle").exists());
}
