//! MuHash3072 speed: coins added per second, with the element hashing alone as the
//! baseline (so the share of the 3072-bit multiplication is visible), and the cost of
//! the one modular inverse per block.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use settle_assets::amount::Amount;
use settle_assets::hash::{AssetId, Txid};
use settle_assets::transaction::{OutPoint, TxOut};
use settle_chain::muhash::element_number_bytes;
use settle_chain::{Coin, MuHash3072, utxo_element};

fn coin(i: u32) -> (OutPoint, Coin) {
    let mut txid = [7u8; 32];
    txid[..4].copy_from_slice(&i.to_le_bytes());
    let mut script = vec![0x51, 0x20];
    script.extend_from_slice(&[0x11; 32]);
    (
        OutPoint::new(Txid(txid), i % 4),
        Coin {
            output: TxOut {
                asset: AssetId([0xaa; 32]),
                amount: Amount::from_units(u64::from(i) + 1).expect("in range"),
                script_pubkey: script,
            },
            height: 1_000,
            time_ms: 1_700_000_000_000,
        },
    )
}

fn bench(c: &mut Criterion) {
    const N: u32 = 1_000;
    let coins: Vec<(OutPoint, Coin)> = (0..N).map(coin).collect();
    let elements: Vec<Vec<u8>> = coins.iter().map(|(o, c)| utxo_element(o, c)).collect();
    let mut group = c.benchmark_group("muhash");
    group.throughput(Throughput::Elements(u64::from(N)));
    group.bench_function("baseline: hash 1000 elements to 3072-bit numbers", |b| {
        b.iter(|| {
            for e in &elements {
                black_box(element_number_bytes(black_box(e)));
            }
        })
    });
    group.bench_function("insert 1000 coins", |b| {
        b.iter(|| {
            let mut h = MuHash3072::new();
            for (o, c) in &coins {
                h.insert_coin(o, c);
            }
            black_box(h)
        })
    });
    group.bench_function("remove 1000 coins", |b| {
        b.iter(|| {
            let mut h = MuHash3072::new();
            for (o, c) in &coins {
                h.remove_coin(o, c);
            }
            black_box(h)
        })
    });
    group.finish();

    let mut state = MuHash3072::new();
    for (o, c) in &coins[..10] {
        state.insert_coin(o, c);
        state.remove_coin(&c_outpoint(o), c);
    }
    let mut group = c.benchmark_group("muhash per block");
    group.bench_function("normalize (one inverse) + finalize", |b| {
        b.iter(|| {
            let mut h = state.clone();
            h.normalize();
            black_box(h.finalize())
        })
    });
    group.finish();
}

fn c_outpoint(o: &OutPoint) -> OutPoint {
    OutPoint::new(o.txid, o.vout + 100)
}

criterion_group!(benches, bench);
criterion_main!(benches);
