//! `mempool.dat`: the waiting transactions survive a clean restart. A participant who
//! submitted a payment and then saw the node restart must not have to find out that it
//! silently vanished (`spec/storage.md`, "Data directory").

use std::path::{Path, PathBuf};

use settle_assets::encode::{Reader, write_compact_size, write_var_bytes};
use settle_assets::limits::MAX_TX_SIZE_BYTES;
use settle_assets::{Transaction, deserialize, serialize};

use crate::datadir::{DataDirError, write_atomic};
use crate::node::{Node, SubmitError};

/// The file's name in the data directory.
pub const MEMPOOL_FILE: &str = "mempool.dat";
const MAGIC: &[u8] = b"settle-mempool";
const FORMAT_VERSION: u32 = 1;

/// What loading the file did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Transactions back in the mempool.
    pub accepted: usize,
    /// Transactions confirmed or made invalid while the node was down.
    pub dropped: usize,
}

/// Writes every waiting transaction, parents first, and returns how many.
pub fn save(node: &Node, path: &Path) -> Result<usize, DataDirError> {
    let txs: Vec<Vec<u8>> = node
        .mempool()
        .entries_in_order()
        .map(|e| serialize(&*e.tx))
        .collect();
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    write_compact_size(&mut out, txs.len() as u64);
    for tx in &txs {
        write_var_bytes(&mut out, tx);
    }
    write_atomic(path, &out, 0o600)?;
    Ok(txs.len())
}

/// Where the mempool is written when the data directory's disk is full: the system's
/// temporary directory, under a name fixed by the data directory's path, so the next
/// start on that directory finds it (`spec/storage.md`, "A full disk").
pub fn fallback_path(datadir: &Path) -> PathBuf {
    let canonical = datadir
        .canonicalize()
        .unwrap_or_else(|_| datadir.to_path_buf());
    let tag = settle_assets::hash::tagged_hash(
        "Settle/MempoolFallback",
        canonical.as_os_str().as_encoded_bytes(),
    );
    std::env::temp_dir().join(format!("settled-mempool-{}.dat", hex::encode(&tag[..8])))
}

/// Saves the mempool at a stop: into the data directory, or, when that fails (a full
/// disk), into [`fallback_path`]. A partial file is never left behind. Returns the count
/// and where; when neither place takes it, logs every transaction dropped and returns
/// how many.
pub fn save_for_restart(node: &Node, datadir: &Path) -> Result<(usize, PathBuf), usize> {
    let primary = datadir.join(MEMPOOL_FILE);
    let fallback = fallback_path(datadir);
    for path in [&primary, &fallback] {
        match save(node, path) {
            Ok(count) => return Ok((count, path.clone())),
            Err(e) => {
                let _ = std::fs::remove_file(path.with_extension("tmp"));
                tracing::warn!(path = %path.display(), error = %e, "cannot save the mempool here");
            }
        }
    }
    let txids: Vec<String> = node
        .mempool()
        .entries_in_order()
        .map(|e| e.txid.to_string())
        .collect();
    tracing::error!(
        count = txids.len(),
        txids = %txids.join(","),
        "the mempool could not be saved anywhere: these transactions are dropped and must be sent again"
    );
    Err(txids.len())
}

/// Removes what an interrupted save leaves (`mempool.tmp`, in the data directory or
/// beside the fallback file), saying so.
pub fn clean_temporary_files(datadir: &Path) {
    let partial = [
        datadir.join(MEMPOOL_FILE).with_extension("tmp"),
        fallback_path(datadir).with_extension("tmp"),
    ];
    for path in partial {
        match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!(path = %path.display(), "removed a partial file an interrupted save left")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a partial file")
            }
        }
    }
}

/// Reads back the mempool saved at the last stop: the data directory's file, then the
/// fallback file a full disk made the node write.
pub fn restore(node: &Node, datadir: &Path) -> LoadReport {
    let mut report = load(node, &datadir.join(MEMPOOL_FILE));
    let fallback = fallback_path(datadir);
    if fallback.exists() {
        tracing::info!(path = %fallback.display(), "restoring the mempool saved outside the data directory while its disk was full");
        let more = load(node, &fallback);
        report.accepted += more.accepted;
        report.dropped += more.dropped;
    }
    report
}

fn decode(bytes: &[u8], max_count: usize) -> Result<Vec<Transaction>, String> {
    let mut r = Reader::new(bytes);
    let magic = r
        .read_bytes(MAGIC.len(), "magic")
        .map_err(|e| e.to_string())?;
    if magic != MAGIC {
        return Err("not a settle mempool file".into());
    }
    let version = r.read_u32("format version").map_err(|e| e.to_string())?;
    if version != FORMAT_VERSION {
        return Err(format!(
            "format version {version}; this settled reads {FORMAT_VERSION}"
        ));
    }
    let count = r
        .read_count("transactions", max_count, 1)
        .map_err(|e| e.to_string())?;
    let mut txs = Vec::with_capacity(count);
    for i in 0..count {
        let raw = r
            .read_var_bytes("transaction", MAX_TX_SIZE_BYTES)
            .map_err(|e| format!("transaction {i}: {e}"))?;
        txs.push(deserialize(raw).map_err(|e| format!("transaction {i}: {e}"))?);
    }
    if r.remaining() != 0 {
        return Err(format!(
            "{} bytes after the last transaction",
            r.remaining()
        ));
    }
    Ok(txs)
}

/// Submits the transactions of a file written by [`save`] again, then removes it. A
/// file that does not decode is set aside as `mempool.dat.bad`, never fatal: the chain
/// is intact, only waiting transactions are lost, and the log says so.
pub fn load(node: &Node, path: &Path) -> LoadReport {
    let mut report = LoadReport::default();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return report,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the saved mempool");
            return report;
        }
    };
    let max_count = node.mempool().config().max_count;
    match decode(&bytes, max_count) {
        Ok(txs) => {
            for tx in txs {
                match node.submit(tx) {
                    Ok(_) => report.accepted += 1,
                    Err(SubmitError::Store(e)) => {
                        tracing::error!(error = %e, "storage error while restoring the mempool");
                        report.dropped += 1;
                    }
                    Err(SubmitError::StorageFull(e)) => {
                        tracing::error!(error = %e, "storage error while restoring the mempool");
                        report.dropped += 1;
                    }
                    Err(_) => report.dropped += 1,
                }
            }
            if let Err(e) = std::fs::remove_file(path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove the saved mempool");
            }
            tracing::info!(
                restored = report.accepted,
                dropped = report.dropped,
                "mempool restored from {MEMPOOL_FILE}"
            );
        }
        Err(reason) => {
            let bad = path.with_extension("dat.bad");
            let _ = std::fs::rename(path, &bad);
            tracing::warn!(
                path = %bad.display(),
                %reason,
                "the saved mempool does not decode; set aside, its transactions must be sent again"
            );
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_and_foreign_files_are_refused_with_a_reason() {
        assert!(decode(b"", 10).is_err());
        assert!(decode(b"something else entirely", 10).is_err());
        let mut wrong_version = MAGIC.to_vec();
        wrong_version.extend_from_slice(&9u32.to_le_bytes());
        wrong_version.push(0);
        assert!(
            decode(&wrong_version, 10)
                .expect_err("version 9")
                .contains("version 9")
        );
        let mut empty = MAGIC.to_vec();
        empty.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        empty.push(0);
        assert_eq!(decode(&empty, 10), Ok(Vec::new()));
        let mut too_many = empty.clone();
        *too_many.last_mut().expect("count") = 11;
        assert!(decode(&too_many, 10).is_err());
        let mut trailing = empty;
        trailing.push(7);
        assert!(decode(&trailing, 10).is_err());
    }
}
