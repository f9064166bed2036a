//! What every comparing `settle-bench` scenario shares: the raw BIP340 verification
//! rate measured in short bursts (on as many threads as block validation uses, and on
//! one), the min/median/max of repeated measurements, and the repetition of a whole
//! scenario (`--runs N`).
//!
//! A baseline is only worth comparing against when it is measured under the same
//! conditions as the thing it is compared with: the same threads and the same machine
//! load. So the scenarios measure it in bursts interleaved with their own rounds, and
//! report the spread of both rather than one number each.

use std::time::{Duration, Instant};

use secp256k1::{XOnlyPublicKey, schnorr};

/// Distinct keys and messages the raw verification rate cycles through.
pub const BASELINE_ITEMS: usize = 256;
/// Repetitions of a whole scenario when `--runs` is not given.
pub const DEFAULT_RUNS: usize = 3;
/// Most repetitions of a whole scenario.
const MAX_RUNS: usize = 100;

/// The ratio of a measured rate to the signature bound of the raw verification rate on
/// as many threads as validation uses.
pub const RATIO_SAME_THREADS: &str = "ratio_to_bound_same_threads";
/// The ratio of a measured rate to the signature bound of one thread's raw rate.
pub const RATIO_ONE_THREAD: &str = "ratio_to_bound_one_thread";

/// Threads block validation spreads its signature checks over (`settle_chain`'s
/// `parallel_checks` uses every core the system offers).
pub fn validation_threads() -> usize {
    std::thread::available_parallelism()
        .map(std::num::NonZero::get)
        .unwrap_or(1)
}

/// The smallest, middle and largest of a set of measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    /// The spread of `values` (the median of an even count is the mean of the middle
    /// two); `None` when there are none or one is not a number.
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() || values.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        let median = if sorted.len().is_multiple_of(2) {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        } else {
            sorted[mid]
        };
        Some(Spread {
            min: sorted[0],
            median,
            max: sorted[sorted.len() - 1],
        })
    }

    /// `{"min", "median", "max"}` rounded to `decimals` places.
    pub fn json(&self, decimals: i32) -> serde_json::Value {
        let scale = 10f64.powi(decimals);
        let r = |x: f64| (x * scale).round() / scale;
        serde_json::json!({ "min": r(self.min), "median": r(self.median), "max": r(self.max) })
    }
}

/// The spread of `values` as JSON (`null` when there are none).
pub fn spread_json(values: &[f64], decimals: i32) -> serde_json::Value {
    Spread::of(values).map_or(serde_json::Value::Null, |s| s.json(decimals))
}

/// Signed BIP340 items over distinct keys and messages, verified by the bursts.
pub struct VerifyItems(Vec<(schnorr::Signature, [u8; 32], XOnlyPublicKey)>);

impl VerifyItems {
    pub fn new() -> VerifyItems {
        let items = (0..BASELINE_ITEMS)
            .map(|i| {
                let k = settle_tests::node::new_key();
                let mut msg = [0u8; 32];
                msg[..8].copy_from_slice(&(i as u64).to_le_bytes());
                let sig = secp256k1::SECP256K1.sign_schnorr(&msg, &k);
                (sig, msg, k.x_only_public_key().0)
            })
            .collect();
        VerifyItems(items)
    }

    /// Verifications per second of one thread cycling through the items for `burst`.
    fn verify_for(&self, burst: Duration) -> u64 {
        let start = Instant::now();
        let mut count = 0u64;
        while start.elapsed() < burst {
            for (sig, msg, pk) in &self.0 {
                let ok = secp256k1::SECP256K1.verify_schnorr(sig, msg, pk).is_ok();
                assert!(ok, "a baseline signature must verify");
                count += 1;
            }
        }
        count
    }

    /// Raw BIP340 verifications per second of `threads` threads verifying at once for
    /// `burst` (all of them together, over the wall time until the last one is done).
    pub fn rate(&self, threads: usize, burst: Duration) -> f64 {
        let start = Instant::now();
        let total: u64 = std::thread::scope(|s| {
            let workers: Vec<_> = (0..threads.max(1))
                .map(|_| s.spawn(|| self.verify_for(burst)))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .sum()
        });
        total as f64 / start.elapsed().as_secs_f64()
    }
}

/// One burst on the validation threads and one on a single thread.
#[derive(Debug, Clone, Copy)]
pub struct Burst {
    pub same_threads: f64,
    pub one_thread: f64,
}

impl Burst {
    pub fn measure(items: &VerifyItems, burst: Duration) -> Burst {
        Burst {
            same_threads: items.rate(validation_threads(), burst),
            one_thread: items.rate(1, burst),
        }
    }
}

/// Takes `--runs N` out of `argv` (the other options are the scenario's).
pub fn take_runs(argv: &mut Vec<String>) -> Result<usize, String> {
    let Some(at) = argv.iter().position(|a| a == "--runs") else {
        return Ok(DEFAULT_RUNS);
    };
    let runs = argv
        .get(at + 1)
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| (1..=MAX_RUNS).contains(n))
        .ok_or_else(|| format!("--runs needs an integer from 1 to {MAX_RUNS}"))?;
    argv.drain(at..at + 2);
    Ok(runs)
}

/// Runs a scenario `runs` times and prints nothing: returns one JSON object with every
/// run's line under `per_run` and the min/median/max over the runs of each of the
/// `headline` fields (top-level numbers of a run's line) under `summary`.
pub fn repeat(
    scenario: &str,
    runs: usize,
    headline: &[&str],
    mut once: impl FnMut(usize) -> Result<serde_json::Value, Box<dyn std::error::Error>>,
) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
    let mut lines = Vec::with_capacity(runs);
    for run in 1..=runs {
        eprintln!("settle-bench {scenario}: run {run} of {runs}");
        lines.push(once(run)?);
    }
    Ok(serde_json::json!({
        "scenario": scenario,
        "runs": runs,
        "summary": summarize(&lines, headline),
        "per_run": lines,
    }))
}

/// The min/median/max over `lines` of each `headline` field; a run where the field is
/// not a number (a latency that never came) is counted under `missing`.
fn summarize(lines: &[serde_json::Value], headline: &[&str]) -> serde_json::Value {
    let mut summary = serde_json::Map::new();
    for key in headline {
        let values: Vec<f64> = lines.iter().filter_map(|l| l[*key].as_f64()).collect();
        let mut entry = spread_json(&values, 3);
        if values.len() < lines.len()
            && let Some(obj) = entry.as_object_mut()
        {
            obj.insert("missing".into(), (lines.len() - values.len()).into());
        }
        summary.insert((*key).to_string(), entry);
    }
    serde_json::Value::Object(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_takes_min_median_and_max() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).expect("three values");
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        let s = Spread::of(&[4.0, 1.0, 2.0, 10.0]).expect("four values");
        assert_eq!((s.min, s.median, s.max), (1.0, 3.0, 10.0));
        let s = Spread::of(&[7.5]).expect("one value");
        assert_eq!((s.min, s.median, s.max), (7.5, 7.5, 7.5));
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[1.0, f64::NAN]), None);
        assert_eq!(
            spread_json(&[0.12345, 0.5], 2),
            serde_json::json!({"min": 0.12, "median": 0.31, "max": 0.5})
        );
    }

    #[test]
    fn runs_are_taken_out_of_the_options() {
        let mut argv: Vec<String> = ["--blocks", "4", "--runs", "5", "--no-fsync"]
            .map(String::from)
            .to_vec();
        assert_eq!(take_runs(&mut argv), Ok(5));
        assert_eq!(argv, ["--blocks", "4", "--no-fsync"]);
        assert_eq!(take_runs(&mut argv), Ok(DEFAULT_RUNS));
        let mut bad: Vec<String> = vec!["--runs".into(), "0".into()];
        assert!(
            take_runs(&mut bad)
                .expect_err("zero runs")
                .contains("--runs")
        );
    }

    #[test]
    fn the_summary_spans_the_runs_and_counts_missing_figures() {
        let lines = vec![
            serde_json::json!({"tx_per_sec": 10.0, "median_ms": 1.0}),
            serde_json::json!({"tx_per_sec": 30.0, "median_ms": null}),
            serde_json::json!({"tx_per_sec": 20.0, "median_ms": 3.0}),
        ];
        let s = summarize(&lines, &["tx_per_sec", "median_ms"]);
        assert_eq!(
            s["tx_per_sec"],
            serde_json::json!({"min": 10.0, "median": 20.0, "max": 30.0})
        );
        assert_eq!(s["median_ms"]["median"], 2.0);
        assert_eq!(s["median_ms"]["missing"], 1);
    }
}
