//! A test hook: crash the process at a named point, to prove what survives a crash.
//!
//! `SETTLE_CRASH_AT=<point>[:<nth>]` in the environment of a `settled` process makes
//! the `nth` time (default 1) the code passes `point` call [`std::process::abort`],
//! which dies like `kill -9` (no destructors, no flushing). The variable is read once,
//! at the first crash point reached; without it every point is a no-op costing one
//! atomic load. The crash test (`tests/tests/feature_crash.rs`) uses it; operators
//! never set it.
//!
//! Points, in the order a height passes them ([`POINTS`]):
//! - `prevote-before-sign`, `prevote-after-sign`, `precommit-before-sign`,
//!   `precommit-after-sign`: in the signer, around the signature (after the
//!   double-sign guard recorded it, before the engine writes its WAL).
//! - `precommit-published`: once the engine has published this node's precommit.
//! - `candidate-stored`: a candidate block was written (synced), the value not yet
//!   handed to the engine.
//! - `decided-before-write`: the engine decided; the block is not yet written.
//! - `commit-after-write`: the decided block is written and synced, the engine not
//!   yet told.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable that arms a crash point.
pub const CRASH_AT_ENV: &str = "SETTLE_CRASH_AT";

/// Every crash point the code has, for the crash test to choose from.
pub const POINTS: [&str; 8] = [
    "prevote-before-sign",
    "prevote-after-sign",
    "precommit-before-sign",
    "precommit-after-sign",
    "precommit-published",
    "candidate-stored",
    "decided-before-write",
    "commit-after-write",
];

struct Armed {
    point: String,
    nth: u64,
    passes: AtomicU64,
}

static ARMED: OnceLock<Option<Armed>> = OnceLock::new();

fn armed() -> Option<&'static Armed> {
    ARMED
        .get_or_init(|| {
            let spec = std::env::var(CRASH_AT_ENV).ok()?;
            let (point, nth) = match spec.split_once(':') {
                Some((point, nth)) => (point.to_string(), nth.parse().ok()?),
                None => (spec, 1),
            };
            Some(Armed {
                point,
                nth,
                passes: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Aborts the process if `point` is the armed crash point and this is its `nth`
/// pass.
pub fn point(point: &str) {
    let Some(armed) = armed() else {
        return;
    };
    if armed.point != point {
        return;
    }
    let pass = armed.passes.fetch_add(1, Ordering::SeqCst) + 1;
    if pass == armed.nth {
        // Written straight to stderr (the log may buffer): the test reads it to know
        // the crash happened where it asked.
        eprintln!("SETTLE_CRASH_AT: crashing at {point} (pass {pass})");
        std::process::abort();
    }
}

/// The environment variable naming a file where a node appends every consensus vote
/// and proposal it receives from peers (test hook: the crash test reads what a
/// crashing validator signed from its peers' files, not from its own word).
pub const VOTE_LOG_ENV: &str = "SETTLE_VOTE_LOG";

static VOTE_LOG: OnceLock<Option<std::sync::Mutex<std::fs::File>>> = OnceLock::new();

/// Whether [`VOTE_LOG_ENV`] names a file (read once).
pub fn vote_log_enabled() -> bool {
    vote_log().is_some()
}

fn vote_log() -> Option<&'static std::sync::Mutex<std::fs::File>> {
    VOTE_LOG
        .get_or_init(|| {
            let path = std::env::var_os(VOTE_LOG_ENV)?;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .ok()?;
            Some(std::sync::Mutex::new(file))
        })
        .as_ref()
}

/// Appends `line` to the vote log, if one is configured. Best effort: a test hook
/// must never stop a node.
pub fn record_seen(line: &str) {
    use std::io::Write as _;
    if let Some(file) = vote_log() {
        let mut file = file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = writeln!(file, "{line}");
    }
}

/// Whether a crash point is armed at all (so that watchers can be skipped).
pub fn armed_at(point_name: &str) -> bool {
    armed().is_some_and(|a| a.point == point_name)
}
