//! How long unlocking a wallet file takes with the default argon2id parameters, next to
//! the same file sealed with the cheap test parameters as the baseline (the difference is
//! the key derivation alone). The default parameters aim at 0.3-0.5 s in release builds.

use criterion::{Criterion, criterion_group, criterion_main};
use settle_wallet::store::{KdfParams, seal, unseal};

fn unlock(c: &mut Criterion) {
    let state = vec![0x42u8; 4096];
    let mut group = c.benchmark_group("wallet_unlock");
    group.sample_size(10);
    for (name, params) in [
        (
            "baseline_insecure_test_params",
            KdfParams::INSECURE_FOR_TESTS,
        ),
        ("default_params", KdfParams::DEFAULT),
    ] {
        let sealed = seal(&state, b"passphrase", params).expect("seal");
        group.bench_function(name, |b| {
            b.iter(|| unseal(&sealed, b"passphrase").expect("unseal"))
        });
    }
    group.finish();
}

criterion_group!(benches, unlock);
criterion_main!(benches);
