//! A harness for the wallet's functional tests: real `settle` processes, each wallet in
//! its own temporary directory, talking to a real `settled` ([`crate::node::TestNode`]).
//!
//! The `settle` binary is the one cargo built into the same target directory as the test
//! executable (`cargo test --workspace` builds it; alone, `cargo build -p settle-wallet`);
//! `SETTLE_BIN` picks another. Wallet files are made with the cheap test KDF parameters
//! (`SETTLE_INSECURE_FAST_KDF=1`, documented in `spec/wallet.md`) so the suite stays fast.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::node::TestNode;

/// The passphrase every test wallet gets unless a test picks another.
pub const TEST_PASSPHRASE: &str = "correct horse battery staple";

/// The `settle` binary: `SETTLE_BIN`, or `settle` beside the running test executable.
pub fn settle_bin() -> PathBuf {
    crate::node::workspace_bin("settle", "SETTLE_BIN", "settle-wallet")
}

/// What one `settle` run did.
#[derive(Debug)]
pub struct Run {
    pub ok: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    fn from(out: Output, elapsed: Duration) -> Run {
        Run {
            ok: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            elapsed,
        }
    }

    /// The JSON on stdout (for `--json` runs that succeeded).
    pub fn json(&self) -> Value {
        let parsed = serde_json::from_str(&self.stdout);
        assert!(
            parsed.is_ok(),
            "stdout is not json:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        parsed.expect("json")
    }

    /// The `{"error": {"kind", "message"}}` of a failed `--json` run.
    pub fn error(&self) -> (String, String) {
        assert!(
            !self.ok,
            "expected a failure, got success:\n{}",
            self.stdout
        );
        let line = self.stderr.lines().rev().find(|l| l.starts_with('{'));
        assert!(line.is_some(), "no json error on stderr:\n{}", self.stderr);
        let v: Value = serde_json::from_str(line.expect("line")).expect("error json");
        (
            v["error"]["kind"].as_str().unwrap_or_default().to_owned(),
            v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    }
}

/// One wallet: its own directory, talking to one node.
#[derive(Debug)]
pub struct Wallet {
    _tmp: tempfile::TempDir,
    pub name: String,
    pub dir: PathBuf,
    pub rpc_url: String,
    pub node_datadir: PathBuf,
    pub passphrase: String,
    /// The mnemonic `create` showed (kept by the test, as a person would write it down).
    pub mnemonic: Option<String>,
    /// New wallet files get the cheap test KDF parameters (`SETTLE_INSECURE_FAST_KDF=1`).
    pub fast_kdf: bool,
}

impl Wallet {
    /// A wallet directory for `node` (nothing created yet).
    pub fn new(node: &TestNode, name: &str) -> Wallet {
        let tmp = tempfile::Builder::new()
            .prefix(&format!("settle-wallet-{name}-"))
            .tempdir()
            .expect("temporary directory");
        Wallet {
            dir: tmp.path().join("wallet"),
            _tmp: tmp,
            name: name.to_owned(),
            rpc_url: node.url(),
            node_datadir: node.datadir.clone(),
            passphrase: TEST_PASSPHRASE.to_owned(),
            mnemonic: None,
            fast_kdf: true,
        }
    }

    /// A fresh wallet, created.
    pub fn create(node: &TestNode, name: &str) -> Wallet {
        Self::create_with(node, name, true)
    }

    /// A fresh wallet, created with the cheap test KDF parameters or the real ones.
    pub fn create_with(node: &TestNode, name: &str, fast_kdf: bool) -> Wallet {
        let mut w = Wallet::new(node, name);
        w.fast_kdf = fast_kdf;
        let v = w.ok(&["wallet", "create"]);
        w.mnemonic = Some(v["mnemonic"].as_str().expect("mnemonic").to_owned());
        w
    }

    /// The command with this wallet's directory, node and passphrase.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(settle_bin());
        c.arg("--datadir")
            .arg(&self.dir)
            .arg("--rpc-url")
            .arg(&self.rpc_url)
            .arg("--node-datadir")
            .arg(&self.node_datadir)
            .args(args)
            .env("SETTLE_PASSPHRASE", &self.passphrase)
            .env_remove("SETTLE_DATADIR")
            .env_remove("SETTLE_RPC_URL")
            .env_remove("SETTLE_RPC_COOKIE")
            .env_remove("SETTLE_NODE_DATADIR")
            .stdin(Stdio::null());
        if self.fast_kdf {
            c.env("SETTLE_INSECURE_FAST_KDF", "1");
        } else {
            c.env_remove("SETTLE_INSECURE_FAST_KDF");
        }
        c
    }

    /// Runs `settle ARGS` (text output).
    pub fn run(&self, args: &[&str]) -> Run {
        let start = Instant::now();
        let out = self.command(args).output().expect("settle runs");
        Run::from(out, start.elapsed())
    }

    /// Runs `settle --json ARGS`.
    pub fn run_json(&self, args: &[&str]) -> Run {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.run(&all)
    }

    /// Runs `settle --json ARGS` with `stdin` as standard input.
    pub fn run_json_stdin(&self, args: &[&str], stdin: &str) -> Run {
        use std::io::Write as _;
        let start = Instant::now();
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let mut child = self
            .command(&all)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("settle runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        let out = child.wait_with_output().expect("settle finishes");
        Run::from(out, start.elapsed())
    }

    /// `settle --json ARGS`, which must succeed; its JSON.
    pub fn ok(&self, args: &[&str]) -> Value {
        let r = self.run_json(args);
        assert!(
            r.ok,
            "settle {} ({}) failed:\n{}{}",
            args.join(" "),
            self.name,
            r.stderr,
            r.stdout
        );
        r.json()
    }

    /// `settle --json ARGS`, which must fail; its error kind and message.
    pub fn fails(&self, args: &[&str]) -> (String, String) {
        let r = self.run_json(args);
        assert!(
            !r.ok,
            "settle {} ({}) should have failed:\n{}",
            args.join(" "),
            self.name,
            r.stdout
        );
        assert_eq!(r.code, Some(1), "exit status of a refused command");
        r.error()
    }

    /// A new receiving address.
    pub fn address(&self) -> String {
        self.ok(&["address", "new"])["address"]
            .as_str()
            .expect("address")
            .to_owned()
    }

    /// Balances by ticker, as the wallet prints them (`1,000.00`).
    pub fn balances(&self) -> BTreeMap<String, String> {
        let v = self.ok(&["balance"]);
        v["assets"]
            .as_array()
            .expect("assets")
            .iter()
            .map(|a| {
                (
                    a["ticker"].as_str().expect("ticker").to_owned(),
                    a["amount"].as_str().expect("amount").to_owned(),
                )
            })
            .collect()
    }

    /// A file in this wallet's temporary directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.parent().expect("tmp").join(name)
    }
}

/// `[("EUR", "1,000.00"), ...]` as a map, for comparing balances.
pub fn balances(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(t, a)| ((*t).to_owned(), (*a).to_owned()))
        .collect()
}

/// A central bank wallet with EUR and a CSD wallet with BOND, both issued with the node's
/// dev issuer keys and confirmed. Returns (central bank, CSD, EUR id, BOND id).
pub fn issuers(node: &TestNode, eur: &str, bonds: &str) -> (Wallet, Wallet, String, String) {
    let cb = Wallet::create(node, "central-bank");
    let csd = Wallet::create(node, "csd");
    let e = cb.ok(&[
        "asset",
        "issue",
        "--class",
        "cash",
        "--currency",
        "EUR",
        "--name",
        "Euro",
        "--ticker",
        "EUR",
        "--amount",
        eur,
        "--reissuable",
        "--wait",
    ]);
    let b = csd.ok(&[
        "asset",
        "issue",
        "--class",
        "security",
        "--isin",
        "US0378331005",
        "--name",
        "Settle Bond 2030",
        "--ticker",
        "BOND",
        "--amount",
        bonds,
        "--wait",
    ]);
    (
        cb,
        csd,
        e["asset"].as_str().expect("asset").to_owned(),
        b["asset"].as_str().expect("asset").to_owned(),
    )
}

/// The `wallet` scenario of `settle-bench`: how long `settle offer create` and
/// `settle offer take` take against a local dev node, as a person runs them (a new
/// process each time, the wallet file unlocked with its KDF, a sync, signing,
/// broadcasting). Wallets with the real KDF parameters are measured beside wallets with the
/// cheap test parameters, the baseline that shows what the passphrase stretch costs.
pub mod bench {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::{Wallet, issuers};
    use crate::node::TestNode;

    /// Rounds measured per wallet pair unless `--rounds` says otherwise.
    pub const DEFAULT_ROUNDS: usize = 10;
    /// Most rounds accepted.
    pub const MAX_ROUNDS: usize = 1_000;

    fn ms(d: Duration) -> f64 {
        (d.as_secs_f64() * 1_000.0 * 10.0).round() / 10.0
    }

    /// The sample at quantile `q` (nearest rank) of sorted `v`.
    fn quantile(v: &[f64], q: f64) -> f64 {
        if v.is_empty() {
            return 0.0;
        }
        // q is in [0, 1] and v is a benchmark's sample list, so the rank fits in usize.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let rank = (q * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    }

    fn stats(mut v: Vec<f64>) -> Value {
        v.sort_by(f64::total_cmp);
        let n = v.len().max(1);
        json!({
            "median_ms": quantile(&v, 0.5),
            "p99_ms": quantile(&v, 0.99),
            "mean_ms": ((v.iter().sum::<f64>() / n as f64) * 10.0).round() / 10.0,
            "min_ms": v.first().copied().unwrap_or(0.0),
            "max_ms": v.last().copied().unwrap_or(0.0),
        })
    }

    fn measure(node: &TestNode, cb: &Wallet, csd: &Wallet, fast_kdf: bool, rounds: usize) -> Value {
        let tag = if fast_kdf { "fast" } else { "real" };
        let alice = Wallet::create_with(node, &format!("alice-{tag}"), fast_kdf);
        let bob = Wallet::create_with(node, &format!("bob-{tag}"), fast_kdf);
        cb.ok(&["send", "100,000.00", "EUR", &alice.address(), "--wait"]);
        csd.ok(&["send", "100,000", "BOND", &bob.address(), "--wait"]);
        let (mut create, mut take, mut unlock) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..rounds {
            let file = alice.file(&format!("offer-{i}.pst"));
            let file = file.to_str().expect("utf-8 path");
            let r = alice.run(&[
                "offer",
                "create",
                "--give",
                "10.00 EUR",
                "--want",
                "1 BOND",
                "--out",
                file,
            ]);
            assert!(r.ok, "offer create: {}", r.stderr);
            create.push(ms(r.elapsed));
            let r = bob.run_json(&["offer", "take", "--yes", file]);
            assert!(r.ok, "offer take: {}", r.stderr);
            take.push(ms(r.elapsed));
            let txid: settle_assets::Txid = r.json()["txid"]
                .as_str()
                .expect("txid")
                .parse()
                .expect("txid");
            node.wait_confirmed(&txid);
            let r = alice.run(&["wallet", "info"]);
            assert!(r.ok, "wallet info: {}", r.stderr);
            unlock.push(ms(r.elapsed));
        }
        json!({
            "kdf": if fast_kdf { "insecure test parameters (baseline)" } else { "default (argon2id 128 MiB, 2 passes)" },
            "offer_create": stats(create),
            "offer_take": stats(take),
            "wallet_info_unlock_only": stats(unlock),
        })
    }

    /// Runs the scenario; `args` are the options after `wallet` (`--rounds N`).
    pub fn run(args: &[String]) -> Result<Value, String> {
        let mut rounds = DEFAULT_ROUNDS;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--rounds" => {
                    rounds = it
                        .next()
                        .and_then(|v| v.parse().ok())
                        .filter(|n| (1..=MAX_ROUNDS).contains(n))
                        .ok_or_else(|| format!("--rounds needs 1 to {MAX_ROUNDS}"))?;
                }
                other => return Err(format!("unknown option {other:?} for the wallet scenario")),
            }
        }
        let node = TestNode::start_dev();
        let (cb, csd, _, _) = issuers(&node, "100,000,000.00", "10,000,000");
        let real = measure(&node, &cb, &csd, false, rounds);
        let fast = measure(&node, &cb, &csd, true, rounds);
        Ok(json!({
            "scenario": "wallet",
            "rounds": rounds,
            "note": "wall-clock time of one settle process each, against a local dev node",
            "default_kdf": real,
            "baseline_fast_kdf": fast,
        }))
    }
}
