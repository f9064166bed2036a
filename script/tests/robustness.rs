//! Bad input from outside never panics: random scripts, witnesses and address strings
//! (a fixed-seed generator, so a failure reproduces) go through the public entry points,
//! and every outcome is a result, never a crash.

mod common;

use common::*;
use settle_assets::{AssetId, ChainId, OutPoint, Transaction, TxIn, TxOut, Txid, Witness};
use settle_script::addresses::Address;
use settle_script::limits::MAX_STACK_ITEMS;
use settle_script::opcodes::DEFINED;
use settle_script::{PrecomputedTx, ScriptError, assemble, disassemble, verify_input};

/// xorshift64*: small, deterministic, good enough to explore.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).expect("fits")
    }
    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes()[0]
    }
}

/// A script that is mostly well-formed (so execution gets somewhere) with random bytes
/// mixed in.
fn random_script(rng: &mut Rng) -> Vec<u8> {
    let len = rng.below(40);
    let mut s = Vec::new();
    for _ in 0..len {
        match rng.below(10) {
            0..=4 => s.push(DEFINED[rng.below(DEFINED.len())].0),
            5 | 6 => {
                let n = rng.below(4);
                s.push(u8::try_from(n).expect("small"));
                s.extend((0..n).map(|_| rng.byte()));
            }
            7 => {
                s.push(0x20);
                s.extend(xonly(1 + u8::try_from(rng.below(3)).expect("small")).serialize());
            }
            _ => s.push(rng.byte()),
        }
    }
    s
}

fn random_item(rng: &mut Rng) -> Vec<u8> {
    match rng.below(6) {
        0 => vec![],
        1 => vec![1],
        2 => (0..64).map(|_| rng.byte()).collect(),
        3 => (0..65).map(|_| rng.byte()).collect(),
        _ => (0..rng.below(6)).map(|_| rng.byte()).collect(),
    }
}

#[test]
fn random_spends_never_panic() {
    let mut rng = Rng(0x5e77_1e5c_0ffe_e123);
    let mut outcomes = std::collections::BTreeMap::new();
    for round in 0..20_000 {
        let script = random_script(&mut rng);
        let script_pubkey = match round % 4 {
            0 => settle_script::p2sh(&script),
            1 => settle_script::p2k(&xonly(1)),
            _ => script.clone(),
        };
        let mut witness: Vec<Vec<u8>> = (0..rng.below(5)).map(|_| random_item(&mut rng)).collect();
        if round % 4 == 0 {
            witness.push(script.clone());
        }
        let tx = Transaction {
            version: 1,
            inputs: vec![TxIn {
                prevout: OutPoint::new(Txid([3; 32]), 0),
                sequence: u32::try_from(rng.next() >> 32).expect("32 bits"),
                issuance: None,
                witness: Witness(witness),
            }],
            outputs: vec![TxOut {
                asset: AssetId([1; 32]),
                amount: units(1),
                script_pubkey: vec![],
            }],
            lock_time: u32::try_from(rng.next() >> 32).expect("32 bits"),
            expiry_height: 0,
        };
        let spent = [TxOut {
            asset: AssetId([1; 32]),
            amount: units(1),
            script_pubkey,
        }];
        let cache = PrecomputedTx::new(&tx, &spent, ChainId::ZERO).expect("counts");
        let name = match verify_input(&cache, 0) {
            Ok(()) => "OK",
            Err(e) => e.name(),
        };
        *outcomes.entry(name).or_insert(0u32) += 1;
        // The text form round-trips whatever the bytes.
        assert_eq!(assemble(&disassemble(&script)).as_ref(), Ok(&script));
    }
    // The exploration reaches a variety of outcomes, successes included.
    assert!(outcomes.len() >= 12, "{outcomes:?}");
    assert!(outcomes.contains_key("OK"), "{outcomes:?}");
    assert!(outcomes.contains_key(ScriptError::BadOpcode.name()));
}

#[test]
fn huge_stacks_are_refused_not_processed() {
    let tx = Transaction {
        version: 1,
        inputs: vec![TxIn {
            witness: Witness(vec![vec![1]; MAX_STACK_ITEMS + 1]),
            ..TxIn::spending(OutPoint::new(Txid([3; 32]), 0))
        }],
        outputs: vec![],
        lock_time: 0,
        expiry_height: 0,
    };
    let spent = [TxOut {
        asset: AssetId([1; 32]),
        amount: units(1),
        script_pubkey: vec![0x51],
    }];
    let cache = PrecomputedTx::new(&tx, &spent, ChainId::ZERO).expect("counts");
    assert_eq!(verify_input(&cache, 0), Err(ScriptError::StackSize));
}

#[test]
fn random_address_strings_never_panic() {
    let mut rng = Rng(0xadd2_e55e_5000_0001);
    let valid = Address::p2k(settle_script::Network::Main, &xonly(1)).to_string();
    let charset = b"qpzry9x8gf2tvdw0s3jn54khce6mua7lSTL1bio";
    let mut accepted = 0;
    for _ in 0..20_000 {
        let mut s: Vec<u8> = valid.clone().into_bytes();
        for _ in 0..1 + rng.below(3) {
            let i = rng.below(s.len());
            match rng.below(3) {
                0 => s[i] = charset[rng.below(charset.len())],
                1 => {
                    s.remove(i);
                }
                _ => s.insert(i, charset[rng.below(charset.len())]),
            }
        }
        let text = String::from_utf8(s).expect("ascii");
        if text.to_lowercase() == valid {
            continue; // the edits cancelled out
        }
        if let Ok(addr) = text.parse::<Address>() {
            accepted += 1;
            assert_eq!(addr.to_string(), text.to_lowercase());
        }
    }
    // bech32m detects every substitution of up to 4 characters; insertions and deletions
    // are caught with overwhelming probability (and change the program length too).
    assert_eq!(accepted, 0, "{accepted} corrupted addresses accepted");
}
