//! The asset life cycle through `settle`, against a real `settled`: issue (cash and a
//! security, with the node's dev issuer keys), look up (`asset list|info`), reissue, burn,
//! pay, and the wallet's `history` of all of it. Then `--json` on every command, including
//! a command line that does not parse.

use serde_json::Value;
use settle_tests::node::TestNode;
use settle_tests::wallet::{Wallet, balances, issuers};

/// The entry of `asset list` with this ticker.
fn listed<'a>(list: &'a Value, ticker: &str) -> &'a Value {
    let found = list
        .as_array()
        .expect("asset list is an array")
        .iter()
        .find(|a| a["ticker"] == ticker);
    assert!(found.is_some(), "{ticker} not listed: {list}");
    found.expect("listed")
}

/// Writes a secret key file with the given mode.
fn key_file(w: &Wallet, name: &str, hex_key: &str, mode: u32) -> String {
    let path = w.file(name);
    std::fs::write(&path, format!("{hex_key}\n")).expect("write key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    #[cfg(not(unix))]
    let _ = mode;
    path.to_str().expect("utf-8").to_owned()
}

#[test]
fn issue_reissue_burn_pay_and_history() {
    let node = TestNode::start_dev();
    let (cb, csd, eur, bond) = issuers(&node, "1,000.00", "100");
    let alice = Wallet::create(&node, "alice");

    // Both assets are on the chain, with their contracts.
    let list = alice.ok(&["asset", "list"]);
    let e = listed(&list, "EUR");
    assert_eq!(e["asset"], eur.as_str());
    assert_eq!(e["class"], "cash");
    assert_eq!(e["contract"]["currency"], "EUR");
    assert_eq!(e["precision"], 2);
    assert_eq!(e["reissuable"], true);
    assert_eq!(e["outstanding_amount"], "1,000.00");
    let b = listed(&list, "BOND");
    assert_eq!(b["asset"], bond.as_str());
    assert_eq!(b["class"], "security");
    assert_eq!(b["contract"]["isin"], "US0378331005");
    assert_eq!(b["precision"], 0);
    assert_eq!(b["reissuable"], false);
    // By ticker (any case) or by id: the same asset.
    let by_ticker = alice.ok(&["asset", "info", "eur"]);
    let by_id = alice.ok(&["asset", "info", &eur]);
    assert_eq!(by_ticker, by_id);
    let text = alice.run(&["asset", "info", "BOND"]);
    assert!(text.ok, "{}", text.stderr);
    assert!(text.stdout.contains("ISIN US0378331005"), "{}", text.stdout);
    assert!(
        text.stdout.contains("outstanding  100 BOND"),
        "{}",
        text.stdout
    );

    // The central bank issues 500.00 EUR more.
    let r = cb.ok(&["asset", "reissue", "EUR", "500.00", "--wait"]);
    assert!(r["height"].as_u64().is_some(), "{r}");
    assert_eq!(r["amount"], "500.00");
    assert_eq!(cb.balances(), balances(&[("EUR", "1,500.00")]));
    let info = cb.ok(&["asset", "info", "EUR"]);
    assert_eq!(info["issued_amount"], "1,500.00");
    assert_eq!(info["outstanding_amount"], "1,500.00");

    // The bond's contract forbids reissuing it.
    let (kind, message) = csd.fails(&["asset", "reissue", "BOND", "1"]);
    assert_eq!(kind, "usage", "{message}");
    assert!(message.contains("not reissuable"), "{message}");
    // A key that is not the asset's issuer is refused before anything is sent...
    let stranger = key_file(&cb, "stranger.key", &"42".repeat(32), 0o600);
    let (kind, message) = cb.fails(&["asset", "reissue", "EUR", "1.00", "--issuer-key", &stranger]);
    assert_eq!(kind, "issuer_key", "{message}");
    assert!(message.contains("not the issuer of EUR"), "{message}");
    // ...and a key file others may read is not used at all.
    #[cfg(unix)]
    {
        let open = key_file(&cb, "open.key", &"42".repeat(32), 0o644);
        let (kind, message) = cb.fails(&["asset", "reissue", "EUR", "1.00", "--issuer-key", &open]);
        assert_eq!(kind, "issuer_key", "{message}");
        assert!(message.contains("chmod 600"), "{message}");
    }

    // Burn 200.00 EUR: it leaves the wallet and the supply.
    let r = cb.ok(&["asset", "burn", "200.00", "EUR", "--wait"]);
    assert!(r["height"].as_u64().is_some(), "{r}");
    assert_eq!(cb.balances(), balances(&[("EUR", "1,300.00")]));
    let info = cb.ok(&["asset", "info", &eur]);
    assert_eq!(info["burned"], 20_000);
    assert_eq!(info["outstanding_amount"], "1,300.00");
    // Burning more than the wallet holds: insufficient funds, nothing burned.
    let (kind, message) = cb.fails(&["asset", "burn", "1,300.01", "EUR"]);
    assert_eq!(kind, "insufficient_funds", "{message}");
    assert!(
        message.contains("you have 1,300.00 EUR and need 1,300.01 EUR"),
        "{message}"
    );

    // Pay Alice, who sees it in her balance and history.
    let to = alice.address();
    let sent = cb.ok(&["send", "250.50", "eur", &to, "--label", "alice", "--wait"]);
    assert_eq!(sent["amount"], "250.50");
    assert_eq!(alice.balances(), balances(&[("EUR", "250.50")]));
    assert_eq!(cb.balances(), balances(&[("EUR", "1,049.50")]));

    let h = alice.ok(&["history"]);
    let h = h.as_array().expect("history entries");
    assert_eq!(h.len(), 1, "{h:?}");
    assert_eq!(h[0]["txid"], sent["txid"]);
    assert_eq!(h[0]["height"], sent["height"]);
    assert_eq!(h[0]["flows"][0]["net"], "+250.50");
    assert_eq!(h[0]["flows"][0]["ticker"], "EUR");

    // The central bank's history: issue, reissue, burn, send; newest first, each with what
    // it did to the balance.
    let h = cb.ok(&["history"]);
    let h = h.as_array().expect("history entries");
    let notes: Vec<&str> = h.iter().map(|e| e["note"].as_str().unwrap_or("")).collect();
    assert_eq!(notes, ["send", "burn", "reissue", "issue"], "{h:?}");
    let nets: Vec<&str> = h
        .iter()
        .map(|e| e["flows"][0]["net"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        nets,
        ["-250.50", "-200.00", "+500.00", "+1,000.00"],
        "{h:?}"
    );
    let heights: Vec<u64> = h
        .iter()
        .map(|e| e["height"].as_u64().expect("confirmed"))
        .collect();
    assert!(heights.windows(2).all(|w| w[0] > w[1]), "{heights:?}");
    assert_eq!(
        cb.ok(&["history", "--limit", "2"]).as_array().map(Vec::len),
        Some(2)
    );
    let text = cb.run(&["history"]);
    assert!(text.ok, "{}", text.stderr);
    assert!(text.stdout.contains("-250.50 EUR"), "{}", text.stdout);
    assert!(text.stdout.contains("(burn)"), "{}", text.stdout);

    // The addresses handed out, with the label given.
    let labelled = alice.ok(&["address", "new", "--label", "from bob"]);
    let list = alice.ok(&["address", "list"]);
    let list = list.as_array().expect("addresses");
    // `wallet create` handed out the first, `address` the second, then the labelled one.
    assert_eq!(list.len(), 3, "{list:?}");
    assert_eq!(list[1]["address"], to.as_str());
    assert_eq!(list[1]["coins"], 1);
    assert_eq!(list[2]["address"], labelled["address"]);
    assert_eq!(list[2]["label"], "from bob");
}

#[test]
fn every_command_speaks_json() {
    let node = TestNode::start_dev();
    let (cb, _csd, _eur, _bond) = issuers(&node, "1,000.00", "10");
    // `ok` and `fails` parse stdout (or the error on stderr) as JSON; the other wallet
    // tests cover send, asset issue, offer, pst and multisig. These are the rest.
    let info = cb.ok(&["wallet", "info"]);
    assert_eq!(info["kdf"]["algorithm"], "argon2id");
    assert_eq!(info["network"], "dev");
    assert!(cb.ok(&["address", "list"]).is_array());
    assert!(cb.ok(&["asset", "list"]).is_array());
    assert!(cb.ok(&["history"]).is_array());
    assert!(cb.ok(&["balance"])["assets"].is_array());
    assert_eq!(cb.ok(&["multisig", "list"]), serde_json::json!([]));
    let to = cb.address();
    let p = cb.file("pay.pst");
    let p = p.to_str().expect("utf-8");
    // A one-of-one multisig gives a PST to walk through decode, analyze, finalize and
    // broadcast by hand.
    let key = cb.ok(&["multisig", "key"])["key"]
        .as_str()
        .expect("key")
        .to_owned();
    let made = cb.ok(&[
        "multisig",
        "create",
        "--threshold",
        "1",
        "--key",
        &key,
        "--name",
        "solo",
    ]);
    let solo = made["address"].as_str().expect("address").to_owned();
    cb.ok(&["send", "10.00", "EUR", &solo, "--wait"]);
    let spend = cb.ok(&["multisig", "spend", "solo", "4.00", "EUR", &to, "--out", p]);
    assert_eq!(spend["signed_inputs"], 1, "{spend}");
    let decoded = cb.ok(&["pst", "decode", p]);
    assert_eq!(decoded["network"], "dev");
    assert!(decoded["inputs"].is_array());
    let analysis = cb.ok(&["pst", "analyze", p]);
    assert!(
        analysis["missing"].as_array().is_some_and(Vec::is_empty),
        "{analysis}"
    );
    let fin = cb.ok(&["pst", "finalize", p]);
    assert_eq!(fin["finalized"], true);
    let sent = cb.ok(&["pst", "broadcast", p, "--wait"]);
    assert!(sent["height"].as_u64().is_some(), "{sent}");
    assert_eq!(cb.ok(&["multisig", "list"])[0]["name"], "solo");
    let bal = cb.ok(&["balance"]);
    assert_eq!(bal["multisig"][0]["amount"], "6.00", "{bal}");

    // A command line that does not parse: with --json, the error is JSON too (status 2).
    let r = cb.run_json(&["send", "1.00"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr);
    let (kind, message) = r.error();
    assert_eq!(kind, "usage");
    assert!(message.contains("required"), "{message}");
    let r = cb.run_json(&["no-such-command"]);
    assert_eq!(r.code, Some(2));
    assert_eq!(r.error().0, "usage");
    // Without --json, clap's own text.
    let r = cb.run(&["send", "1.00"]);
    assert_eq!(r.code, Some(2));
    assert!(r.stderr.contains("required"), "{}", r.stderr);
    assert!(!r.stderr.trim_start().starts_with('{'), "{}", r.stderr);
}
