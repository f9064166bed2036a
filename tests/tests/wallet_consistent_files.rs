//! The wallet file stays what the wallet wrote (`spec/wallet.md`, section 2): a header
//! tampered to demand absurd key stretching is refused before any work, temporary files
//! a killed `settle` left are removed at the next open, and an amount typed with
//! surrounding spaces is refused rather than guessed at.

use std::time::Duration;

use settle_tests::node::TestNode;
use settle_tests::wallet::{Wallet, issuers};

/// Offsets of the argon2 parameters in the wallet file header (`spec/wallet.md`).
const MEMORY_OFFSET: usize = 9;
const PASSES_OFFSET: usize = 13;

fn tamper(wallet: &Wallet, offset: usize, value: u32) -> Vec<u8> {
    let path = wallet.dir.join("wallet.settle");
    let original = std::fs::read(&path).expect("wallet file");
    let mut bytes = original.clone();
    bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
    std::fs::write(&path, bytes).expect("tamper");
    original
}

#[test]
fn a_header_demanding_absurd_key_stretching_is_refused_before_any_work() {
    let node = TestNode::start_dev();
    let w = Wallet::create(&node, "tampered");
    // The attack: 4 GiB x 64 passes. Then each just over the cap.
    for (offset, value, named) in [
        (MEMORY_OFFSET, 4 * 1024 * 1024, "memory 4194304 KiB"),
        (PASSES_OFFSET, 64, "passes 64"),
        (MEMORY_OFFSET, 256 * 1024 + 1, "memory 262145 KiB"),
        (PASSES_OFFSET, 5, "passes 5"),
    ] {
        let original = tamper(&w, offset, value);
        let run = w.run_json(&["balance"]);
        let (kind, message) = run.error();
        assert_eq!(kind, "wallet_file", "{message}");
        assert!(
            message.contains("key derivation parameters out of range"),
            "{message}"
        );
        assert!(message.contains(named), "{message}");
        assert!(
            run.elapsed < Duration::from_secs(5),
            "refused only after {:?}",
            run.elapsed
        );
        std::fs::write(w.dir.join("wallet.settle"), original).expect("restore");
    }
    w.ok(&["balance"]);
}

#[test]
fn temporary_files_of_a_killed_save_are_removed_at_the_next_open() {
    let node = TestNode::start_dev();
    let w = Wallet::create(&node, "crashed");
    // What `kill -9` between creating and renaming the temporary file leaves.
    let stale = w.dir.join(".wallet.settle.tmp-00112233aabbccdd");
    std::fs::write(&stale, b"half a wallet").expect("stale");
    let unrelated = w.dir.join(".wallet.settle.tmp-mine");
    std::fs::write(&unrelated, b"not settle's").expect("unrelated");
    let run = w.run_json(&["balance"]);
    assert!(run.ok, "{}", run.stderr);
    assert!(!stale.exists(), "the stale temporary file is removed");
    assert!(
        run.stderr.contains("left by an interrupted save"),
        "{}",
        run.stderr
    );
    assert!(unrelated.exists(), "a file of another name is left alone");
}

#[test]
fn an_amount_with_surrounding_spaces_is_refused() {
    let node = TestNode::start_dev();
    let (cb, _csd, _eur, _bond) = issuers(&node, "1,000.00", "10");
    let to = Wallet::create(&node, "payee").address();
    for amount in [" 10.00", "10.00 ", "\t10.00", ""] {
        let (kind, message) = cb.fails(&["send", amount, "EUR", &to]);
        assert_eq!(kind, "bad_amount", "{amount:?}: {message}");
        assert!(message.contains("invalid amount"), "{message}");
    }
    // Nothing was paid.
    assert_eq!(
        cb.balances().get("EUR").map(String::as_str),
        Some("1,000.00")
    );
}
