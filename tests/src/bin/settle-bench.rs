//! `settle-bench`: Settle's benchmark harness.
//!
//! ```text
//! settle-bench connect [--runs N] [--blocks N] [--txs-per-block T] [--rounds R] [--no-fsync]
//! settle-bench network [--runs N] [--duration-secs S] [--rate TX_PER_S] [--clients N] ...
//! settle-bench sigops [--runs N] [--inputs N]
//! settle-bench wallet [--rounds N]
//! ```
//!
//! Every comparing scenario measures its baseline under the same conditions as what it
//! compares (the same threads, the same machine load, interleaved with it), reports the
//! spread of its rounds (min/median/max), and repeats the whole scenario `--runs` times
//! (3 by default): the line's `summary` holds the min/median/max over the runs of the
//! headline figures, `per_run` every run's own line (see `tests/src/bench/baseline.rs`).
//!
//! `connect` builds `N` blocks of `T` two-input delivery-versus-payment transactions
//! (cash for securities, each input signed with BIP340), then connects them into a fresh
//! RocksDB chainstate the way the node does (decode, full validation with every
//! signature checked on every core, one synced write batch per block), in `R` rounds.
//! Before each round and after the last it measures the raw BIP340 verification rate
//! in a burst on as many threads as validation uses and in one on a single thread. The
//! signature bound is a raw rate divided by the signatures per transaction;
//! `ratio_to_bound_same_threads` compares the connect rate with the bound on the
//! validation threads (the honest "share of the machine's limit"),
//! `ratio_to_bound_one_thread` with the bound of one thread (how many cores' worth of
//! signature checking the connect rate amounts to). Each round's ratio uses the mean of
//! the bursts just before and after it.
//!
//! Run it optimised: `cargo run --release -p settle-tests --bin settle-bench -- connect`.
//!
//! `network` starts 4 validators on loopback (`settled testnet --validators 4`), offers
//! them a sustained rate of the same DvP transactions over RPC and prints the finalized
//! rate and the median and 99th-percentile time to finality, against the raw
//! verification rate measured before the nodes start and after they stop (see
//! `tests/src/bench/network.rs`). It runs the `settled` binary built beside it:
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

#[path = "../bench/baseline.rs"]
mod baseline;
#[path = "../bench/network.rs"]
mod network;
#[path = "../bench/sigops.rs"]
mod sigops;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use baseline::{
    Burst, RATIO_ONE_THREAD, RATIO_SAME_THREADS, Spread, VerifyItems, spread_json,
    validation_threads,
};
use secp256k1::Keypair;
use settle_assets::{Transaction, deserialize, serialize};
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
/// How long each raw verification burst runs (on the validation threads, then on one).
const BASELINE_BURST_MS: u64 = 250;
/// Connect rounds per run, each after a baseline burst, when `--rounds` is not given.
const DEFAULT_ROUNDS: usize = 5;
/// The figures of a run whose min/median/max over the runs the summary gives.
const CONNECT_HEADLINE: [&str; 5] = [
    "tx_per_sec",
    "raw_verify_per_sec_same_threads",
    "raw_verify_per_sec_one_thread",
    RATIO_SAME_THREADS,
    RATIO_ONE_THREAD,
];
const USAGE: &str = "usage: settle-bench connect|network|wallet|sigops [--runs N] [options]";
const CONNECT_USAGE: &str = "usage: settle-bench connect [--runs N] [--blocks N] [--txs-per-block T] [--rounds R] [--no-fsync]";

#[derive(Debug)]
struct Args {
    blocks: usize,
    txs_per_block: usize,
    fsync: bool,
    rounds: usize,
}

/// The options after `connect` (`--runs` already taken out).
fn parse_args(argv: &[String]) -> Result<Args, String> {
    let mut args = Args {
        blocks: 20,
        txs_per_block: 1_000,
        fsync: true,
        rounds: DEFAULT_ROUNDS,
    };
    let mut it = argv.iter();
    while let Some(flag) = it.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            it.next()
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{name} needs a positive integer"))
        };
        match flag.as_str() {
            "--blocks" => args.blocks = number("--blocks")?,
            "--txs-per-block" => args.txs_per_block = number("--txs-per-block")?,
            "--rounds" => args.rounds = number("--rounds")?,
            "--no-fsync" => args.fsync = false,
            other => return Err(format!("unknown option {other:?}\n{CONNECT_USAGE}")),
        }
    }
    if args.txs_per_block > 40_000 {
        return Err("--txs-per-block must be at most 40000 (the default block limits)".into());
    }
    if args.rounds > args.blocks {
        return Err("--rounds must be at most --blocks (each round connects whole blocks)".into());
    }
    Ok(args)
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

/// A chain ready to connect: genesis, the setup block issuing the coins, and the DvP
/// blocks (serialized, as they would arrive), with the commitment they must end at.
struct Prepared {
    spec: ChainSpec,
    genesis: settle_chain::Genesis,
    setup_block: Block,
    setup_effects: settle_chain::BlockEffects,
    blocks_bytes: Vec<Vec<u8>>,
    commitment: [u8; 32],
    build_secs: f64,
}

/// Issues `n` cash coins and `n` security coins to the parties in one setup block.
fn setup_block(
    n: usize,
    issuer: &Keypair,
    parties: &[Keypair],
    genesis: &settle_chain::Genesis,
) -> (Vec<Transaction>, Vec<Owned>, Vec<Owned>) {
    let chain_id = genesis.chain_id;
    let mut setup_txs = Vec::new();
    let mut cash_coins: Vec<Owned> = Vec::with_capacity(n);
    let mut security_coins: Vec<Owned> = Vec::with_capacity(n);
    let mut chunk = 0;
    while cash_coins.len() < n {
        let count = SETUP_OUTPUTS_PER_TX.min(n - cash_coins.len());
        for (coins, contract, owner_offset) in [
            (
                &mut cash_coins,
                cash_contract(issuer, &format!("Bench euro {chunk}"), "BEUR"),
                0,
            ),
            (
                &mut security_coins,
                security_contract(issuer, &format!("Bench bond {chunk}"), "BBND"),
                1,
            ),
        ] {
            let start = coins.len();
            let owners: Vec<&Keypair> = (0..count)
                .map(|i| &parties[(start + i + owner_offset) % PARTIES])
                .collect();
            let outputs: Vec<(Vec<u8>, u64)> = owners.iter().map(|k| (p2k(k), 100)).collect();
            let (tx, _) = issue_tx(chain_id, &contract, issuer, &outputs);
            for (vout, k) in owners.iter().enumerate() {
                coins.push(owned(&tx, u32::try_from(vout).expect("few outputs"), k));
            }
            setup_txs.push(tx);
        }
        chunk += 1;
    }
    (setup_txs, cash_coins, security_coins)
}

/// A DvP: the buyer pays cash to the seller, the seller delivers the security.
fn dvp_tx(chain_id: settle_assets::ChainId, cash: &Owned, sec: &Owned) -> Transaction {
    spend_tx(
        chain_id,
        &[cash.clone(), sec.clone()],
        vec![
            pay(cash.output.asset, cash.output.amount.units(), &sec.key),
            pay(sec.output.asset, sec.output.amount.units(), &cash.key),
        ],
        0,
    )
}

/// Builds `txs` into a signed block on `parent` and applies it to `state`.
fn next_block(
    parent: &settle_chain::Header,
    txs: &[Transaction],
    state: &mut MemoryState,
    spec: &ChainSpec,
    chain_id: settle_assets::ChainId,
    validator: &Keypair,
) -> Result<(Block, settle_chain::BlockEffects), String> {
    let proposer = validator.x_only_public_key().0.serialize();
    let built = build_block(
        parent,
        txs,
        parent.time_ms + 1_000,
        proposer,
        state,
        spec,
        &chain_id,
    );
    if let Some(s) = built.skipped.first() {
        return Err(format!("transaction {} skipped: {}", s.txid, s.rejection));
    }
    let block = sign_block(built.block, validator, &chain_id);
    state.apply(&block.header, &built.effects);
    Ok((block, built.effects))
}

/// Builds and signs the setup block and `args.blocks` blocks of DvP transactions.
fn prepare(args: &Args) -> Result<Prepared, Box<dyn std::error::Error>> {
    let n_txs = args.blocks * args.txs_per_block;
    let (validator, issuer) = (new_key(), new_key());
    let spec = ChainSpec::dev(
        &validator.x_only_public_key().0,
        &issuer.x_only_public_key().0,
        1_700_000_000_000,
    );
    let genesis = spec.genesis()?;
    let parties: Vec<Keypair> = (0..PARTIES).map(|_| new_key()).collect();
    let (setup_txs, cash, security) = setup_block(n_txs, &issuer, &parties, &genesis);
    let mut state = MemoryState::from_genesis(&genesis);
    let (setup_block, setup_effects) = next_block(
        &genesis.block.header,
        &setup_txs,
        &mut state,
        &spec,
        genesis.chain_id,
        &validator,
    )
    .map_err(|e| format!("setup: {e}"))?;

    let sign_start = Instant::now();
    let mut blocks_bytes = Vec::with_capacity(args.blocks);
    let mut parent = setup_block.header;
    for b in 0..args.blocks {
        let txs: Vec<Transaction> = (b * args.txs_per_block..(b + 1) * args.txs_per_block)
            .map(|k| dvp_tx(genesis.chain_id, &cash[k], &security[k]))
            .collect();
        let (block, _) = next_block(
            &parent,
            &txs,
            &mut state,
            &spec,
            genesis.chain_id,
            &validator,
        )
        .map_err(|e| format!("DvP block {b}: {e}"))?;
        parent = block.header;
        blocks_bytes.push(serialize(&block));
    }
    Ok(Prepared {
        commitment: state.recompute_commitment(),
        build_secs: sign_start.elapsed().as_secs_f64(),
        spec,
        genesis,
        setup_block,
        setup_effects,
        blocks_bytes,
    })
}

/// Decodes, fully validates and connects one serialized block, as the node does.
fn connect_one(
    store: &ChainStore,
    bytes: &[u8],
    spec: &ChainSpec,
    chain_id: &settle_assets::ChainId,
) -> Result<(), Box<dyn std::error::Error>> {
    let block: Block = deserialize(bytes).map_err(|e| format!("a block does not decode: {e}"))?;
    let tip = store.require_tip()?;
    let view = PrefetchedView::new(store, &tip, &block.transactions)?;
    let effects = validate_block(&block, &tip.header, &view, spec, chain_id)
        .map_err(|e| format!("block {} invalid: {e}", block.header.height))?;
    if let Some(e) = view.take_error() {
        return Err(e.into());
    }
    store.connect_block(&block, &effects)?;
    Ok(())
}

/// What one run measured: each round's connect time and transactions, and the
/// baseline bursts before each round and after the last.
struct Measured {
    round_secs: Vec<f64>,
    round_txs: Vec<usize>,
    bursts: Vec<Burst>,
}

/// Connects the prepared blocks into a fresh chainstate in `args.rounds` rounds, with
/// a baseline burst before each round and after the last, and checks the commitment.
fn connect_rounds(p: &Prepared, args: &Args) -> Result<Measured, Box<dyn std::error::Error>> {
    let tmp = tempfile::Builder::new().prefix("settle-bench-").tempdir()?;
    let store = ChainStore::open(
        &tmp.path().join("chainstate"),
        StoreOptions {
            sync_writes: args.fsync,
        },
    )?;
    store.init_genesis(&p.genesis, &p.spec.to_toml_string()?)?;
    store.connect_block(&p.setup_block, &p.setup_effects)?;
    let items = VerifyItems::new();
    let burst = Duration::from_millis(BASELINE_BURST_MS);
    let mut m = Measured {
        round_secs: Vec::new(),
        round_txs: Vec::new(),
        bursts: Vec::new(),
    };
    for r in 0..args.rounds {
        m.bursts.push(Burst::measure(&items, burst));
        let blocks =
            &p.blocks_bytes[r * args.blocks / args.rounds..(r + 1) * args.blocks / args.rounds];
        let start = Instant::now();
        for bytes in blocks {
            connect_one(&store, bytes, &p.spec, &p.genesis.chain_id)?;
        }
        m.round_secs.push(start.elapsed().as_secs_f64());
        m.round_txs.push(blocks.len() * args.txs_per_block);
    }
    m.bursts.push(Burst::measure(&items, burst));
    if store.require_tip()?.header.utxo_commitment != p.commitment {
        return Err("the chainstate's commitment differs from the in-memory replay".into());
    }
    Ok(m)
}

/// One run's line: the whole run's rate, the rounds' spreads, and the ratios of the
/// connect rate to the signature bound (raw verifications per second / signatures per
/// transaction) on the validation threads and on one thread.
fn connect_json(m: &Measured, args: &Args, build_secs: f64) -> serde_json::Value {
    let sigs = SIGS_PER_TX as f64;
    let round_tps: Vec<f64> = m
        .round_txs
        .iter()
        .zip(&m.round_secs)
        .map(|(n, s)| *n as f64 / s)
        .collect();
    // A round's bound: the mean of the bursts just before and just after it.
    let around = |f: fn(&Burst) -> f64| -> Vec<f64> {
        m.bursts
            .windows(2)
            .map(|w| (f(&w[0]) + f(&w[1])) / 2.0 / sigs)
            .collect()
    };
    let (bound_same, bound_one) = (around(|b| b.same_threads), around(|b| b.one_thread));
    let ratios =
        |bound: &[f64]| -> Vec<f64> { round_tps.iter().zip(bound).map(|(t, b)| t / b).collect() };
    let raw_same: Vec<f64> = m.bursts.iter().map(|b| b.same_threads).collect();
    let raw_one: Vec<f64> = m.bursts.iter().map(|b| b.one_thread).collect();
    let median = |v: &[f64]| Spread::of(v).map_or(f64::NAN, |s| s.median);
    let secs: f64 = m.round_secs.iter().sum();
    let tps = m.round_txs.iter().sum::<usize>() as f64 / secs;
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    serde_json::json!({
        "connect_secs": round3(secs),
        "tx_per_sec": tps.round(),
        "raw_verify_per_sec_same_threads": median(&raw_same).round(),
        "raw_verify_per_sec_one_thread": median(&raw_one).round(),
        "signature_bound_tx_per_sec_same_threads": (median(&raw_same) / sigs).round(),
        "signature_bound_tx_per_sec_one_thread": (median(&raw_one) / sigs).round(),
        RATIO_SAME_THREADS: round3(tps / (median(&raw_same) / sigs)),
        RATIO_ONE_THREAD: round3(tps / (median(&raw_one) / sigs)),
        "rounds": {
            "count": args.rounds,
            "tx_per_sec": spread_json(&round_tps, 0),
            "raw_verify_per_sec_same_threads": spread_json(&raw_same, 0),
            "raw_verify_per_sec_one_thread": spread_json(&raw_one, 0),
            RATIO_SAME_THREADS: spread_json(&ratios(&bound_same), 3),
            RATIO_ONE_THREAD: spread_json(&ratios(&bound_one), 3),
        },
        "build_and_sign_secs": round3(build_secs),
    })
}

/// The `connect` scenario, `runs` times.
fn run_connect(args: &Args, runs: usize) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let threads = validation_threads();
    let mut line = baseline::repeat("connect", runs, &CONNECT_HEADLINE, |_| {
        let prepared = prepare(args)?;
        let measured = connect_rounds(&prepared, args)?;
        Ok(connect_json(&measured, args, prepared.build_secs))
    })?;
    let settings = serde_json::json!({
        "blocks": args.blocks,
        "txs_per_block": args.txs_per_block,
        "txs": args.blocks * args.txs_per_block,
        "sigs_per_tx": SIGS_PER_TX,
        "fsync": args.fsync,
        "threads": threads,
        "baseline": format!(
            "raw BIP340 verifications/s over {} keys in bursts of {BASELINE_BURST_MS} ms on \
             {threads} threads (as many as validation uses) and on one, before each connect \
             round and after the last",
            baseline::BASELINE_ITEMS
        ),
    });
    if let (Some(obj), Some(extra)) = (line.as_object_mut(), settings.as_object()) {
        obj.extend(extra.clone());
    }
    Ok(line)
}

/// Prints a scenario's line, or its error with `code`.
fn finish(result: Result<serde_json::Value, Box<dyn std::error::Error>>, code: u8) -> ExitCode {
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("settle-bench: {e}");
            ExitCode::from(code)
        }
    }
}

/// Parses the scenario's options (`--runs` first) and runs it.
fn run_scenario(scenario: &str, mut rest: Vec<String>) -> ExitCode {
    let runs = match baseline::take_runs(&mut rest) {
        Ok(n) => n,
        Err(e) => return finish(Err(e.into()), 2),
    };
    match scenario {
        "connect" => match parse_args(&rest) {
            Ok(args) => finish(run_connect(&args, runs), 1),
            Err(e) => finish(Err(e.into()), 2),
        },
        "network" => match network::parse_args(&rest) {
            Ok(args) => finish(
                baseline::repeat("network", runs, &network::HEADLINE, |_| network::run(&args)),
                1,
            ),
            Err(e) => finish(Err(e.into()), 2),
        },
        "sigops" => match sigops::parse_args(&rest) {
            Ok(args) => finish(
                baseline::repeat("sigops", runs, &sigops::HEADLINE, |_| {
                    sigops::run(&args).map_err(Into::into)
                }),
                1,
            ),
            Err(e) => finish(Err(e.into()), 2),
        },
        other => finish(
            Err(format!(
                "unknown scenario {other:?}: the scenarios are `connect`, `network`, `wallet` and `sigops`"
            )
            .into()),
            2,
        ),
    }
}

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let Some(scenario) = argv.next() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let rest: Vec<String> = argv.collect();
    if scenario == "wallet" {
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
    run_scenario(&scenario, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        parse_args(&args.iter().map(|s| (*s).to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn connect_options_parse_and_bad_ones_are_named() {
        let args = parse(&["--blocks", "4", "--rounds", "2", "--no-fsync"]).expect("valid");
        assert_eq!((args.blocks, args.rounds, args.fsync), (4, 2, false));
        let defaults = parse(&[]).expect("defaults");
        assert_eq!((defaults.blocks, defaults.rounds), (20, DEFAULT_ROUNDS));
        let err = parse(&["--blocks", "2", "--rounds", "3"]).expect_err("more rounds than blocks");
        assert!(err.contains("--rounds"), "{err}");
        assert!(parse(&["--frobnicate"]).is_err());
    }
}
