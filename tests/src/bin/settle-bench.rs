//! `settle-bench`: Settle's benchmark harness.
//!
//! ```text
//! settle-bench connect [--blocks N] [--txs-per-block T] [--no-fsync]
//! settle-bench network [--duration-secs S] [--rate TX_PER_S] [--clients N] ...
//! settle-bench wallet [--rounds N]
//! settle-bench sigops [--inputs N]
//! ```
//!
//! `connect` builds `N` blocks of `T` two-input delivery-versus-payment transactions
//! (cash for securities, each input signed with BIP340), then connects them into a fresh
//! RocksDB chainstate the way the node does (decode, full validation with every
//! signature checked, one synced write batch per block). It prints one JSON line with
//! the transactions per second, the raw secp256k1 Schnorr verification rate measured in
//! the same run on one thread (the baseline), and the ratio of the first to the
//! signature-bound limit (raw verifications per second / signatures per transaction).
//!
//! Run it optimised: `cargo run --release -p settle-tests --bin settle-bench -- connect`.
//!
//! `network` starts 4 validators on loopback (`settled testnet --validators 4`), offers
//! them a sustained rate of the same DvP transactions over RPC and prints the finalized
//! rate and the median and 99th-percentile time to finality, with this `connect` rate
//! measured first in the same run as the baseline (see `tests/src/bench/network.rs`).
//! It runs the `settled` binary built beside it:
//! `cargo build --release -p settle-node -p settle-tests`, then
//! `cargo run --release -p settle-tests --bin settle-bench -- network [--duration-secs S]
//! [--rate TX_PER_S] [--clients N] [--config TOML]`.
//!
//! `wallet` (the wallet's scenario, `settle_tests::wallet::bench`) times `settle offer
//! create` and `settle offer take` as processes against a local dev node, with the real
//! wallet KDF and with the cheap test KDF as the baseline. It runs the `settled` and
//! `settle` binaries beside it: `cargo build --release -p settle-node -p settle-wallet`
//! first.
//!
//! `sigops` builds the worst transaction a peer can craft under the signature-check
//! budget (every input at its budget with the fewest bytes) and a plain two-input DvP,
//! and reports each one's decode-and-verify cost per byte, measured interleaved in the
//! same run, and their ratio (target: at most 3; see `tests/src/bench/sigops.rs`).

#[path = "../bench/network.rs"]
mod network;
#[path = "../bench/sigops.rs"]
mod sigops;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use secp256k1::{Keypair, XOnlyPublicKey, schnorr};
use settle_assets::{deserialize, serialize};
use settle_chain::{
    Block, ChainSpec, CommitCertificate, MemoryState, build_block, sign_precommit, validate_block,
};
use settle_node::store::{ChainStore, PrefetchedView, StoreOptions};
use settle_tests::node::{
    Owned, cash_contract, issue_tx, new_key, owned, p2k, pay, security_contract, spend_tx,
};

/// Signatures each DvP transaction carries (one per input).
const SIGS_PER_TX: usize = 2;
/// Outputs per setup issuance (below the 2,500-output transaction limit).
const SETUP_OUTPUTS_PER_TX: usize = 2_000;
/// Distinct parties owning the coins.
const PARTIES: usize = 256;
/// How long the raw verification baseline runs.
const BASELINE_MS: u64 = 1_500;

struct Args {
    blocks: usize,
    txs_per_block: usize,
    fsync: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut argv = std::env::args().skip(1);
    match argv.next().as_deref() {
        Some("connect") => {}
        Some(other) => {
            return Err(format!(
                "unknown scenario {other:?}: the scenarios are `connect`, `network`, `wallet` and `sigops`"
            ));
        }
        None => {
            return Err(
                "usage: settle-bench connect|network|wallet|sigops [options] (connect: [--blocks N] \
                 [--txs-per-block T] [--no-fsync])"
                    .into(),
            );
        }
    }
    let mut args = Args {
        blocks: 20,
        txs_per_block: 1_000,
        fsync: true,
    };
    while let Some(flag) = argv.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            argv.next()
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name} needs a positive integer"))
        };
        match flag.as_str() {
            "--blocks" => args.blocks = number("--blocks")?,
            "--txs-per-block" => args.txs_per_block = number("--txs-per-block")?,
            "--no-fsync" => args.fsync = false,
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if args.txs_per_block > 40_000 {
        return Err("--txs-per-block must be at most 40000 (the default block limits)".into());
    }
    Ok(args)
}

/// Single-thread BIP340 verifications per second, over distinct keys and messages.
fn raw_verify_rate() -> f64 {
    let items: Vec<(schnorr::Signature, [u8; 32], XOnlyPublicKey)> = (0..256u32)
        .map(|i| {
            let k = new_key();
            let mut msg = [0u8; 32];
            msg[..4].copy_from_slice(&i.to_le_bytes());
            let sig = secp256k1::SECP256K1.sign_schnorr(&msg, &k);
            (sig, msg, k.x_only_public_key().0)
        })
        .collect();
    let start = Instant::now();
    let budget = Duration::from_millis(BASELINE_MS);
    let mut count = 0u64;
    while start.elapsed() < budget {
        for (sig, msg, pk) in &items {
            let ok = secp256k1::SECP256K1.verify_schnorr(sig, msg, pk).is_ok();
            assert!(ok, "baseline signature must verify");
            count += 1;
        }
    }
    count as f64 / start.elapsed().as_secs_f64()
}

fn sign_block(mut block: Block, validator: &Keypair, chain_id: &settle_assets::ChainId) -> Block {
    let hash = block.hash();
    let height = block.header.height;
    block.certificate = CommitCertificate {
        height,
        round: 0,
        block_hash: hash,
        signatures: vec![sign_precommit(validator, chain_id, height, 0, &hash)],
    };
    block
}

fn run_connect(args: &Args) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let n_txs = args.blocks * args.txs_per_block;
    let validator = new_key();
    let issuer = new_key();
    let spec = ChainSpec::dev(
        &validator.x_only_public_key().0,
        &issuer.x_only_public_key().0,
        1_700_000_000_000,
    );
    let genesis = spec.genesis()?;
    let chain_id = genesis.chain_id;
    let proposer = validator.x_only_public_key().0.serialize();
    let parties: Vec<Keypair> = (0..PARTIES).map(|_| new_key()).collect();

    // Setup: cash coins for buyers, security coins for sellers, issued at height 1.
    let mut setup_txs = Vec::new();
    let mut cash_coins: Vec<Owned> = Vec::with_capacity(n_txs);
    let mut security_coins: Vec<Owned> = Vec::with_capacity(n_txs);
    let mut chunk = 0;
    while cash_coins.len() < n_txs {
        let count = SETUP_OUTPUTS_PER_TX.min(n_txs - cash_coins.len());
        for (coins, contract, owner_offset) in [
            (
                &mut cash_coins,
                cash_contract(&issuer, &format!("Bench euro {chunk}"), "BEUR"),
                0,
            ),
            (
                &mut security_coins,
                security_contract(&issuer, &format!("Bench bond {chunk}"), "BBND"),
                1,
            ),
        ] {
            let start = coins.len();
            let owners: Vec<&Keypair> = (0..count)
                .map(|i| &parties[(start + i + owner_offset) % PARTIES])
                .collect();
            let outputs: Vec<(Vec<u8>, u64)> = owners.iter().map(|k| (p2k(k), 100)).collect();
            let (tx, _) = issue_tx(chain_id, &contract, &issuer, &outputs);
            for (vout, k) in owners.iter().enumerate() {
                coins.push(owned(&tx, u32::try_from(vout).expect("few outputs"), k));
            }
            setup_txs.push(tx);
        }
        chunk += 1;
    }
    let mut state = MemoryState::from_genesis(&genesis);
    let built = build_block(
        &genesis.block.header,
        &setup_txs,
        genesis.block.header.time_ms + 1_000,
        proposer,
        &state,
        &spec,
        &chain_id,
    );
    if let Some(s) = built.skipped.first() {
        return Err(format!("setup transaction {} skipped: {}", s.txid, s.rejection).into());
    }
    let setup_block = sign_block(built.block, &validator, &chain_id);
    state.apply(&setup_block.header, &built.effects);
    let setup_effects = built.effects;

    // The DvP blocks: buyer pays cash to the seller, seller delivers the security.
    let sign_start = Instant::now();
    let mut blocks_bytes = Vec::with_capacity(args.blocks);
    let mut parent = setup_block.header;
    for b in 0..args.blocks {
        let txs: Vec<_> = (0..args.txs_per_block)
            .map(|i| {
                let k = b * args.txs_per_block + i;
                let (cash, sec) = (&cash_coins[k], &security_coins[k]);
                spend_tx(
                    chain_id,
                    &[cash.clone(), sec.clone()],
                    vec![
                        pay(cash.output.asset, cash.output.amount.units(), &sec.key),
                        pay(sec.output.asset, sec.output.amount.units(), &cash.key),
                    ],
                    0,
                )
            })
            .collect();
        let built = build_block(
            &parent,
            &txs,
            parent.time_ms + 1_000,
            proposer,
            &state,
            &spec,
            &chain_id,
        );
        if let Some(s) = built.skipped.first() {
            return Err(format!("DvP transaction {} skipped: {}", s.txid, s.rejection).into());
        }
        let block = sign_block(built.block, &validator, &chain_id);
        state.apply(&block.header, &built.effects);
        parent = block.header;
        blocks_bytes.push(serialize(&block));
    }
    let build_secs = sign_start.elapsed().as_secs_f64();

    // The baseline, measured in this run.
    let raw_per_sec = raw_verify_rate();

    // A fresh chainstate holding genesis and the setup block.
    let tmp = tempfile::Builder::new().prefix("settle-bench-").tempdir()?;
    let store = ChainStore::open(
        &tmp.path().join("chainstate"),
        StoreOptions {
            sync_writes: args.fsync,
        },
    )?;
    store.init_genesis(&genesis, &spec.to_toml_string()?)?;
    store.connect_block(&setup_block, &setup_effects)?;

    let start = Instant::now();
    for (i, bytes) in blocks_bytes.iter().enumerate() {
        let block: Block =
            deserialize(bytes).map_err(|e| format!("block {i} does not decode: {e}"))?;
        let tip = store.require_tip()?;
        let view = PrefetchedView::new(&store, &tip, &block.transactions)?;
        let effects = validate_block(&block, &tip.header, &view, &spec, &chain_id)
            .map_err(|e| format!("block {} invalid: {e}", block.header.height))?;
        if let Some(e) = view.take_error() {
            return Err(e.into());
        }
        store.connect_block(&block, &effects)?;
    }
    let secs = start.elapsed().as_secs_f64();
    let tip = store.require_tip()?;
    if tip.header.utxo_commitment != state.recompute_commitment() {
        return Err("the chainstate's commitment differs from the in-memory replay".into());
    }
    let tps = n_txs as f64 / secs;
    let limit = raw_per_sec / SIGS_PER_TX as f64;
    Ok(serde_json::json!({
        "scenario": "connect",
        "blocks": args.blocks,
        "txs_per_block": args.txs_per_block,
        "txs": n_txs,
        "sigs_per_tx": SIGS_PER_TX,
        "fsync": args.fsync,
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "connect_secs": (secs * 1000.0).round() / 1000.0,
        "tx_per_sec": tps.round(),
        "raw_verify_per_sec_one_thread": raw_per_sec.round(),
        "signature_bound_tx_per_sec": limit.round(),
        "ratio_to_signature_bound": (tps / limit * 1000.0).round() / 1000.0,
        "build_and_sign_secs": (build_secs * 1000.0).round() / 1000.0,
    }))
}

/// The `connect` rate (tx/s) over `blocks` blocks of 1,000 DvP transactions, synced
/// writes: the network scenario's single-node baseline.
fn connect_baseline(blocks: usize) -> Result<f64, Box<dyn std::error::Error>> {
    let line = run_connect(&Args {
        blocks,
        txs_per_block: 1_000,
        fsync: true,
    })?;
    line["tx_per_sec"]
        .as_f64()
        .ok_or_else(|| "the connect scenario reported no rate".into())
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("wallet") {
        let rest: Vec<String> = std::env::args().skip(2).collect();
        return match settle_tests::wallet::bench::run(&rest) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("settle-bench: {e}");
                ExitCode::from(2)
            }
        };
    }
    if std::env::args().nth(1).as_deref() == Some("sigops") {
        let rest: Vec<String> = std::env::args().skip(2).collect();
        let result = sigops::parse_args(&rest).and_then(|args| sigops::run(&args));
        return match result {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("settle-bench: {e}");
                ExitCode::from(1)
            }
        };
    }
    if std::env::args().nth(1).as_deref() == Some("network") {
        let rest: Vec<String> = std::env::args().skip(2).collect();
        let args = match network::parse_args(&rest) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("settle-bench: {e}");
                return ExitCode::from(2);
            }
        };
        return match network::run(&args, connect_baseline) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("settle-bench: {e}");
                ExitCode::from(1)
            }
        };
    }
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("settle-bench: {e}");
            return ExitCode::from(2);
        }
    };
    match run_connect(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("settle-bench: {e}");
            ExitCode::from(1)
        }
    }
}
