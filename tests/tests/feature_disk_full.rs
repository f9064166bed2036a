//! A full disk (`spec/storage.md`, "A full disk"): the node's data directory lives on a
//! small tmpfs the test mounts and fills. The node must notice, stop connecting and
//! admitting, say so in its log, over RPC and on `/metrics`, keep serving reads, keep
//! its mempool (saving it outside the full disk at a stop, exiting non-zero), clean up
//! its partial files at the next start, and resume when space returns.
//!
//! Mounting needs root (as in CI); a test that cannot mount fails, naming why.

#![allow(clippy::panic)] // test code: a panic is how a test reports failure

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use settle_assets::{Transaction, Txid};
use settle_rpc::{Auth, RpcClient, codes};
use settle_tests::node::*;
use settle_tests::rogue::metric;

/// Size of the file system the data directory lives on.
const TMPFS_MIB: u64 = 64;
/// Transactions waiting when the disk fills.
const WAITING_TXS: usize = 12;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Mount {
    path: PathBuf,
}

impl Mount {
    fn new(path: &Path) -> Mount {
        std::fs::create_dir_all(path).expect("mount point");
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={TMPFS_MIB}m"), "tmpfs"])
            .arg(path)
            .output();
        match out {
            Ok(o) if o.status.success() => Mount {
                path: path.to_path_buf(),
            },
            Ok(o) => panic!(
                "feature_disk_full needs to mount a {TMPFS_MIB} MiB tmpfs (run the tests as root, \
                 as CI does): `mount -t tmpfs` failed: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => panic!(
                "feature_disk_full needs to mount a tmpfs (run the tests as root, as CI does): \
                 cannot run `mount`: {e}"
            ),
        }
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// `settled --dev` on a data directory of the test's choosing, logging to a file
/// outside it (a log on the full disk would say nothing).
struct DiskNode {
    datadir: PathBuf,
    log: PathBuf,
    rpc_port: u16,
    child: Option<Child>,
}

impl DiskNode {
    fn start(&mut self) {
        self.rpc_port = free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let child = Command::new(settled_bin())
            .args(["--dev", "--datadir"])
            .arg(&self.datadir)
            .args(["--rpc-port", &self.rpc_port.to_string()])
            .args(["--p2p-port", &free_port().to_string()])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawn settled");
        self.child = Some(child);
        let client = RpcClient::with_timeout(self.url(), Auth::cookie_in(&self.datadir), 2_000);
        wait_until(START_TIMEOUT_MS, "settled to answer", || {
            client.get_blockchain_info().ok()
        });
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.rpc_port)
    }

    fn client(&self) -> RpcClient {
        RpcClient::with_timeout(self.url(), Auth::cookie_in(&self.datadir), 20_000)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn health(&self) -> Value {
        self.client()
            .call("gethealth", json!([]))
            .expect("gethealth")
    }

    /// Stops with the `stop` RPC; the exit status.
    fn stop(&mut self) -> ExitStatus {
        let _ = self.client().stop();
        let mut child = self.child.take().expect("running");
        wait_until(STOP_TIMEOUT_MS, "settled to exit", || {
            child.try_wait().ok().flatten()
        })
    }
}

impl Drop for DiskNode {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- settled log ---\n{}", self.log());
        }
    }
}

/// Fills the file system holding `dir` to the last byte; returns the filler's path.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let chunk = vec![0xA5u8; 1 << 20];
    while f.write_all(&chunk).is_ok() {}
    for size in [4096usize, 512, 1] {
        let small = vec![0u8; size];
        while f.write_all(&small).is_ok() {}
    }
    let _ = f.sync_all();
    path
}

/// Fills whatever the file system holding `dir` has left, in a second file.
fn fill_more(dir: &Path) -> PathBuf {
    let path = dir.join("filler-2");
    let mut f = std::fs::File::create(&path).expect("filler");
    for size in [1usize << 16, 4096, 512, 1] {
        let chunk = vec![0u8; size];
        while f.write_all(&chunk).is_ok() {}
    }
    let _ = f.sync_all();
    path
}

fn issuance(node: &DiskNode, keys: &DevKeys, name: &str) -> Transaction {
    let chain_id = node.client().get_blockchain_info().expect("info").chain_id;
    let c = cash_contract(&keys.issuer_cash, name, "DISK");
    issue_tx(chain_id, &c, &keys.issuer_cash, &[(p2k(&new_key()), 100)]).0
}

/// Submits until the node halts; returns the transactions it admitted.
fn submit_until_halted(node: &DiskNode, keys: &DevKeys, tag: &str) -> Vec<Txid> {
    let client = node.client();
    let mut admitted = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "the node never noticed the full disk"
        );
        if node.health()["status"] != json!("ok") {
            return admitted;
        }
        if admitted.len() < WAITING_TXS {
            i += 1;
            let tx = issuance(node, keys, &format!("{tag} {i}"));
            match client.send_raw_transaction(&tx) {
                Ok(txid) => admitted.push(txid),
                Err(e) => assert_eq!(rpc_code(&e), codes::STORAGE_FULL, "{e}"),
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_full_disk_stops_the_node_honestly_and_it_resumes_when_space_returns() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mount = Mount::new(&tmp.path().join("disk"));
    let datadir = mount.path.join("node");
    let out = run_settled(&[
        "init",
        "--dev",
        "--datadir",
        datadir.to_str().expect("utf-8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut node = DiskNode {
        datadir: datadir.clone(),
        log: tmp.path().join("settled.log"),
        rpc_port: 0,
        child: None,
    };
    node.start();
    let keys = DevKeys {
        validator: read_key_file(&datadir.join("keys/validator.key")),
        issuer_cash: read_key_file(&datadir.join("keys/issuer-cash.key")),
        issuer_security: read_key_file(&datadir.join("keys/issuer-security.key")),
    };
    assert_eq!(node.health()["status"], json!("ok"));

    // The disk fills; transactions keep coming.
    let filler = fill(&mount.path);
    let waiting = submit_until_halted(&node, &keys, "Full");
    let client = node.client();
    let halted_at = client.get_blockchain_info().expect("reads still work");
    let health = node.health();
    assert_eq!(health["status"], json!("storage-full"), "{health}");
    assert_eq!(
        (&health["admitting"], &health["connecting"]),
        (&json!(false), &json!(false))
    );
    assert!(
        halted_at
            .warnings
            .iter()
            .any(|w| w.contains("storage full")),
        "{:?}",
        halted_at.warnings
    );
    assert_eq!(metric(node.rpc_port, "settle_storage_full"), 1);
    // Refused with the reason, and nothing decided or admitted meanwhile.
    let err = client
        .send_raw_transaction(&issuance(&node, &keys, "Refused"))
        .expect_err("refused while full");
    assert_eq!(rpc_code(&err), codes::STORAGE_FULL, "{err}");
    std::thread::sleep(Duration::from_secs(2));
    let later = client.get_blockchain_info().expect("info");
    assert_eq!(later.blocks, halted_at.blocks, "no block connected");
    assert_eq!(
        later.mempool_size,
        waiting.len() as u64,
        "the mempool is kept whole"
    );
    // Said once, loudly; retried calmly (one attempt a second at most).
    let log = node.log();
    let loud = log.lines().filter(|l| l.contains("storage full")).count();
    assert!(
        (1..=3).contains(&loud),
        "{loud} 'storage full' lines:\n{log}"
    );

    // A stop while full: the mempool goes outside the full disk, the exit says so.
    // (What RocksDB's failed writes left free is filled too.)
    let last_bytes = fill_more(&mount.path);
    let status = node.stop();
    assert_eq!(
        status.code(),
        Some(1),
        "a stop while the disk is full exits 1"
    );
    // Into the data directory if the stop freed room there (the engine's log is
    // closed first), else beside the system's temporary files; never lost, never half.
    let fallback = settle_node::mempool_file::fallback_path(&datadir);
    let primary = datadir.join("mempool.dat");
    assert!(
        primary.exists() || fallback.exists(),
        "mempool saved neither at {} nor at {}:\n{}",
        primary.display(),
        fallback.display(),
        node.log()
    );
    assert!(
        node.log().contains(&format!("count={}", waiting.len())),
        "all of it saved"
    );
    assert!(
        !datadir.join("mempool.tmp").exists(),
        "no partial file is left"
    );

    // Space returns; a partial file left by a crash is cleaned at the start.
    std::fs::remove_file(&filler).expect("free space");
    std::fs::remove_file(&last_bytes).expect("free space");
    std::fs::write(datadir.join("mempool.tmp"), b"partial").expect("stale tmp");
    node.start();
    assert!(!datadir.join("mempool.tmp").exists(), "cleaned at start");
    assert!(!fallback.exists(), "the saved mempool was read back");
    let client = node.client();
    for txid in &waiting {
        wait_until(WAIT_TIMEOUT_MS, "a saved transaction to confirm", || {
            client.get_raw_transaction(txid).ok().and_then(|i| i.height)
        });
    }
    assert_eq!(node.health()["status"], json!("ok"));
    assert!(
        client
            .get_blockchain_info()
            .expect("info")
            .warnings
            .is_empty()
    );
    assert_eq!(metric(node.rpc_port, "settle_storage_full"), 0);

    // Full again, then space returns while it runs: it resumes by itself, or says a
    // restart is needed and resumes after one.
    let filler = fill(&mount.path);
    let waiting = submit_until_halted(&node, &keys, "Again");
    std::fs::remove_file(&filler).expect("free space");
    let status = wait_until(10_000, "the node to see the space", || {
        let s = node.health()["status"].clone();
        (s != json!("storage-full")).then_some(s)
    });
    eprintln!("with space back the node reports {status}");
    if status == json!("restart-needed") {
        assert_eq!(node.stop().code(), Some(1));
        node.start();
    } else {
        assert_eq!(status, json!("ok"));
        assert!(node.log().contains("storage writable again"));
    }
    let client = node.client();
    for txid in &waiting {
        wait_until(WAIT_TIMEOUT_MS, "a waiting transaction to confirm", || {
            client.get_raw_transaction(txid).ok().and_then(|i| i.height)
        });
    }
    assert_eq!(node.stop().code(), Some(0), "a healthy stop exits 0");
    let out = run_settled(&["verify", "--datadir", datadir.to_str().expect("utf-8")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
