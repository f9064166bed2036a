//! `settle-bench sigops`: the worst transaction a peer can craft under the
//! signature-check budget (`spec/script.md`, 5.1), against a plain two-input DvP.
//!
//! The worst case spends the whole budget of every input with as few bytes as the rules
//! allow: each input checks one signature `CHECKS_PER_INPUT` times (`OP_2DUP
//! OP_CHECKSIGVERIFY` ... `OP_CHECKSIG`, one signature and key in the witness) and pads
//! its witness script (pushes in an unexecuted branch, which cost no operations) to
//! exactly the bytes that budget needs. Cost is what a node pays for a transaction
//! from a peer before any state is read: decode plus every input's script, on one
//! thread. Both transactions are measured in the same run, interleaved round by round,
//! and the line reports nanoseconds per byte and their ratio (target: at most 3).

use std::time::{Duration, Instant};

use secp256k1::Keypair;
use settle_assets::{
    AssetId, ChainId, OutPoint, Transaction, TxIn, TxOut, Txid, Witness, deserialize, serialize,
};
use settle_script::limits::{BYTES_PER_SIG_CHECK, MAX_ELEMENT_BYTES, SIG_CHECK_BASE_BYTES};
use settle_script::opcodes::{OP_0, OP_2DUP, OP_CHECKSIG, OP_CHECKSIGVERIFY, OP_ENDIF, OP_IF};
use settle_script::{
    Builder, PrecomputedTx, SighashType, p2k, p2sh, sig_check_budget, sign_p2k_input,
    sign_script_input, verify_transaction,
};

const CHAIN: ChainId = ChainId([0x5b; 32]);
/// Checks per input: 99 `OP_2DUP OP_CHECKSIGVERIFY` pairs and the final `OP_CHECKSIG`,
/// within the 201-operation limit with the padding branch's `OP_IF`/`OP_ENDIF`.
const CHECKS_PER_INPUT: usize = 100;
/// Rounds of the interleaved measurement.
const ROUNDS: usize = 10;
/// Time spent on each transaction per round.
const ROUND_MS: u64 = 200;
/// The figures of a run whose min/median/max over the runs the summary gives.
pub const HEADLINE: [&str; 1] = ["cost_per_byte_ratio"];

pub struct Args {
    /// Inputs of the worst transaction (40 fill about 385 kB of the 400 kB limit).
    inputs: usize,
}

pub fn parse_args(rest: &[String]) -> Result<Args, String> {
    let mut args = Args { inputs: 40 };
    let mut it = rest.iter();
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--inputs" => {
                args.inputs = it
                    .next()
                    .and_then(|v| v.parse::<usize>().ok())
                    .filter(|n| (1..=41).contains(n))
                    .ok_or("--inputs needs an integer from 1 to 41 (the 400 kB limit)")?;
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(args)
}

fn coin(asset: u8, script_pubkey: Vec<u8>) -> TxOut {
    TxOut {
        asset: AssetId([asset; 32]),
        amount: settle_assets::Amount::from_units(1_000).expect("in range"),
        script_pubkey,
    }
}

fn outpoint(i: usize) -> OutPoint {
    let mut txid = [0x11; 32];
    txid[..8].copy_from_slice(&(i as u64).to_le_bytes());
    OutPoint::new(Txid(txid), 0)
}

/// A plain DvP: Alice's cash for Bob's bond, two pay-to-key inputs signed ALL.
fn dvp() -> (Transaction, Vec<TxOut>) {
    let (alice, bob) = (settle_tests::node::new_key(), settle_tests::node::new_key());
    let spent = vec![coin(0xe0, p2k_of(&alice)), coin(0xb0, p2k_of(&bob))];
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn::spending(outpoint(0)), TxIn::spending(outpoint(1))],
        outputs: vec![coin(0xb0, p2k_of(&alice)), coin(0xe0, p2k_of(&bob))],
        lock_time: 0,
        expiry_height: 0,
    };
    let witnesses: Vec<Witness> = {
        let cache = PrecomputedTx::new(&tx, &spent, CHAIN).expect("one spent per input");
        [&alice, &bob]
            .iter()
            .enumerate()
            .map(|(i, k)| sign_p2k_input(&cache, i, k, SighashType::All).expect("sign"))
            .collect()
    };
    for (input, w) in tx.inputs.iter_mut().zip(witnesses) {
        input.witness = w;
    }
    (tx, spent)
}

fn p2k_of(key: &Keypair) -> Vec<u8> {
    p2k(&key.x_only_public_key().0)
}

/// The witness script checking one signature `checks` times, padded with `pad` bytes of
/// pushes in an unexecuted branch.
fn amplifier_script(checks: usize, pad: usize) -> Vec<u8> {
    let mut b = Builder::new().push_opcode(OP_0).push_opcode(OP_IF);
    let mut left = pad;
    while left > 0 {
        let n = left.min(MAX_ELEMENT_BYTES);
        b = b.push_slice(&vec![0x5a; n]);
        left -= n;
    }
    b = b.push_opcode(OP_ENDIF);
    for _ in 1..checks {
        b = b.push_opcode(OP_2DUP).push_opcode(OP_CHECKSIGVERIFY);
    }
    b.push_opcode(OP_CHECKSIG).into_script()
}

/// The smallest padded script whose witness `[sig, key, script]` pays for `checks`.
fn budgeted_script(checks: usize) -> Vec<u8> {
    let need = checks * BYTES_PER_SIG_CHECK - SIG_CHECK_BASE_BYTES;
    let witness_bytes = |script: &[u8]| {
        settle_script::witness_encoded_bytes(&[vec![0; 64], vec![0; 32], script.to_vec()])
    };
    let mut pad = 0;
    loop {
        let script = amplifier_script(checks, pad);
        let have = witness_bytes(&script);
        if have >= need {
            return script;
        }
        // Push headers make the size step unevenly: approach from below.
        pad += (need - have).max(1);
    }
}

/// The worst transaction: `inputs` inputs, each at exactly its budget of checks.
fn worst(inputs: usize) -> Result<(Transaction, Vec<TxOut>), String> {
    let key = settle_tests::node::new_key();
    let script = budgeted_script(CHECKS_PER_INPUT);
    let spent: Vec<TxOut> = (0..inputs).map(|_| coin(0xe0, p2sh(&script))).collect();
    let mut tx = Transaction {
        version: 1,
        inputs: (0..inputs).map(|i| TxIn::spending(outpoint(i))).collect(),
        outputs: vec![coin(0xe0, p2k_of(&key))],
        lock_time: 0,
        expiry_height: 0,
    };
    let sigs: Vec<Vec<u8>> = {
        let cache = PrecomputedTx::new(&tx, &spent, CHAIN).map_err(|e| e.to_string())?;
        (0..inputs)
            .map(|i| sign_script_input(&cache, i, &script, &key, SighashType::All))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?
    };
    let xonly = key.x_only_public_key().0.serialize().to_vec();
    for (input, sig) in tx.inputs.iter_mut().zip(sigs) {
        input.witness = Witness(vec![sig, xonly.clone(), script.clone()]);
        let budget = sig_check_budget(&input.witness.0);
        if budget != CHECKS_PER_INPUT {
            return Err(format!(
                "an input's budget is {budget}, not {CHECKS_PER_INPUT}"
            ));
        }
    }
    Ok((tx, spent))
}

/// Decodes and verifies `bytes` until `budget` has passed; (nanoseconds, runs).
fn time_verify(bytes: &[u8], spent: &[TxOut], budget: Duration) -> Result<(u128, u64), String> {
    let start = Instant::now();
    let mut runs = 0u64;
    while runs == 0 || start.elapsed() < budget {
        let tx: Transaction = deserialize(bytes).map_err(|e| e.to_string())?;
        verify_transaction(&tx, spent, CHAIN).map_err(|e| e.to_string())?;
        runs += 1;
    }
    Ok((start.elapsed().as_nanos(), runs))
}

struct Measured {
    bytes: usize,
    checks: usize,
    nanos: u128,
    runs: u64,
}

impl Measured {
    fn ns_per_byte(&self) -> f64 {
        self.nanos as f64 / self.runs as f64 / self.bytes as f64
    }
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "bytes": self.bytes,
            "sig_checks": self.checks,
            "bytes_per_sig_check": self.bytes as f64 / self.checks as f64,
            "us_per_tx": self.nanos as f64 / self.runs as f64 / 1_000.0,
            "ns_per_byte": self.ns_per_byte(),
        })
    }
}

pub fn run(args: &Args) -> Result<serde_json::Value, String> {
    let (dvp_tx, dvp_spent) = dvp();
    let (worst_tx, worst_spent) = worst(args.inputs)?;
    let dvp_bytes = serialize(&dvp_tx);
    let worst_bytes = serialize(&worst_tx);
    let mut dvp = Measured {
        bytes: dvp_bytes.len(),
        checks: 2,
        nanos: 0,
        runs: 0,
    };
    let mut bad = Measured {
        bytes: worst_bytes.len(),
        checks: args.inputs * CHECKS_PER_INPUT,
        nanos: 0,
        runs: 0,
    };
    let slice = Duration::from_millis(ROUND_MS);
    let mut round_ratios = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let (dn, dr) = time_verify(&dvp_bytes, &dvp_spent, slice)?;
        dvp.nanos += dn;
        dvp.runs += dr;
        let (wn, wr) = time_verify(&worst_bytes, &worst_spent, slice)?;
        bad.nanos += wn;
        bad.runs += wr;
        let per_byte = |n: u128, r: u64, bytes: usize| n as f64 / r as f64 / bytes as f64;
        round_ratios.push(per_byte(wn, wr, bad.bytes) / per_byte(dn, dr, dvp.bytes));
    }
    let ratio = bad.ns_per_byte() / dvp.ns_per_byte();
    Ok(serde_json::json!({
        "scenario": "sigops",
        "bytes_per_sig_check_rule": BYTES_PER_SIG_CHECK,
        "dvp": dvp.json(),
        "worst": bad.json(),
        "cost_per_byte_ratio": ratio,
        "rounds": {
            "count": ROUNDS,
            "cost_per_byte_ratio": crate::baseline::spread_json(&round_ratios, 3),
        },
        "target_ratio": 3.0,
    }))
}
