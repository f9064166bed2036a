//! Block validation speed: a block of 2-in-2-out transfers validated with
//! `validate_block` (scripts and the UTXO hash on all cores), against the baseline of
//! validating the same transactions one by one on one thread with
//! `validate_transaction`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use settle_assets::transaction::{Transaction, TxIn, TxOut};
use settle_chain::{validate_block, validate_transaction};

#[path = "../tests/common/mod.rs"]
mod common;
use common::*;

const TXS: usize = 500;

fn bench(c: &mut Criterion) {
    let mut fx = Fixture::new();
    // Split Alice's EUR into 2 * TXS coins of 10 units.
    let (outpoint, coin) = fx.coin(&fx.alice, fx.eur);
    let mut outputs: Vec<TxOut> = (0..2 * TXS).map(|_| pay(fx.eur, 10, &fx.alice)).collect();
    outputs.push(pay(
        fx.eur,
        coin.output.amount.units() - 10 * 2 * TXS as u64,
        &fx.alice,
    ));
    let mut split = Transaction {
        version: 1,
        inputs: vec![TxIn::spending(outpoint)],
        outputs,
        lock_time: 0,
        expiry_height: 0,
    };
    fx.sign(&mut split, &[&fx.alice]);
    fx.mine(&[split]);

    let coins: Vec<_> = fx
        .coins(&fx.alice, fx.eur)
        .into_iter()
        .filter(|(_, c)| c.output.amount.units() == 10)
        .collect();
    let txs: Vec<Transaction> = coins
        .chunks(2)
        .map(|pair| {
            let mut tx = Transaction {
                version: 1,
                inputs: pair.iter().map(|(o, _)| TxIn::spending(*o)).collect(),
                outputs: vec![pay(fx.eur, 12, &fx.bob), pay(fx.eur, 8, &fx.alice)],
                lock_time: 0,
                expiry_height: 0,
            };
            fx.sign(&mut tx, &[&fx.alice, &fx.alice]);
            tx
        })
        .collect();
    let built = fx.build(&txs);
    assert!(built.skipped.is_empty());
    let block = built.block;

    let mut group = c.benchmark_group("validate 500 2-in-2-out transactions");
    group.throughput(Throughput::Elements(TXS as u64));
    group.sample_size(10);
    group.bench_function(
        "baseline: validate_transaction one by one, one thread",
        |b| {
            let ctx = fx.ctx();
            b.iter(|| {
                for tx in &txs {
                    black_box(validate_transaction(tx, &fx.state, &ctx).expect("valid"));
                }
            })
        },
    );
    group.bench_function("validate_block (all cores, with UTXO commitment)", |b| {
        b.iter(|| {
            black_box(
                validate_block(&block, fx.state.tip(), &fx.state, &fx.spec, &fx.chain_id)
                    .expect("valid"),
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
