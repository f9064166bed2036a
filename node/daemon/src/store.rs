//! The chainstate on RocksDB: blocks, headers, undo data, the UTXO set with a script
//! index, the asset registry, a transaction index and metadata, in column families.
//!
//! Every block is connected (and disconnected) with one synced `WriteBatch`, so a crash at
//! any moment leaves the last connected block intact. The layout is specified in
//! `spec/storage.md`; [`SCHEMA_VERSION`] changes whenever it does.
//!
//! Errors here are storage errors ([`StoreError`]): they are never reported as a verdict
//! on a block or transaction.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DB, Direction, IteratorMode,
    Options, WriteBatch, WriteOptions,
};
use settle_assets::encode::{Decode, DecodeError, Encode, Reader, write_compact_size};
use settle_assets::hash::{AssetId, BlockHash, ChainId, Tag, Txid, Wtxid};
use settle_assets::transaction::{OutPoint, Transaction};
use settle_assets::{deserialize, serialize};
use settle_chain::muhash::STATE_BYTES;

use crate::script_cache::ScriptCache;
use settle_chain::{
    AssetInfo, Block, BlockEffects, ChainView, Coin, Header, MembershipState, MuHash3072,
};

/// The layout version this code reads and writes. Bump it with every change to
/// `spec/storage.md`; a database of another version is refused, never guessed at.
pub const SCHEMA_VERSION: u32 = 2;

/// Column families. Keys and values are described in `spec/storage.md`.
pub mod cf {
    /// height (u64 BE) -> header (180 bytes).
    pub const HEADERS: &str = "headers";
    /// block hash -> height (u64 BE).
    pub const BLOCK_INDEX: &str = "block_index";
    /// height (u64 BE) -> encoded block, certificate included.
    pub const BLOCKS: &str = "blocks";
    /// height (u64 BE) -> undo record.
    pub const UNDO: &str = "undo";
    /// outpoint key -> coin.
    pub const UTXOS: &str = "utxos";
    /// script hash (32) ++ outpoint key -> empty.
    pub const SCRIPT_INDEX: &str = "script_index";
    /// asset id -> registry entry.
    pub const ASSETS: &str = "assets";
    /// txid -> location (height, index, byte offset and length in the block).
    pub const TX_INDEX: &str = "tx_index";
    /// outpoint key -> txid of the confirmed transaction that spent it, ++ height.
    pub const SPENDS: &str = "spends";
    /// named values: schema version, chain id, tip, UTXO hash state, counters.
    pub const META: &str = "meta";

    pub const ALL: [&str; 10] = [
        HEADERS,
        BLOCK_INDEX,
        BLOCKS,
        UNDO,
        UTXOS,
        SCRIPT_INDEX,
        ASSETS,
        TX_INDEX,
        SPENDS,
        META,
    ];
}

mod meta {
    pub const SCHEMA_VERSION: &[u8] = b"schema_version";
    pub const CHAIN_ID: &[u8] = b"chain_id";
    pub const CHAIN_SPEC: &[u8] = b"chain_spec";
    pub const TIP: &[u8] = b"tip";
    pub const MUHASH: &[u8] = b"utxo_muhash";
    pub const UTXO_COUNT: &[u8] = b"utxo_count";
    pub const ASSET_COUNT: &[u8] = b"asset_count";
    /// The membership after the tip (absent: the chain spec's).
    pub const MEMBERSHIP: &[u8] = b"membership";
    /// Followed by a height (8 bytes, big-endian): the membership after each block that
    /// changed it, so the validator set of any height can be found.
    pub const MEMBERSHIP_AT: &[u8] = b"membership_at/";

    pub fn membership_at(height_key: &[u8; 8]) -> Vec<u8> {
        [MEMBERSHIP_AT, &height_key[..]].concat()
    }

    /// Followed by a height (8 bytes, big-endian) and a block hash: a candidate block
    /// (consensus bytes) this validator may vote for at that height, kept until the
    /// height is connected (`spec/storage.md`, "Candidate blocks").
    pub const CANDIDATE: &[u8] = b"candidate/";

    pub fn candidate(height_key: &[u8; 8], hash: &[u8; 32]) -> Vec<u8> {
        [CANDIDATE, &height_key[..], &hash[..]].concat()
    }
}

/// Tag of the script index's key prefix: fixed-size keys whatever the script length.
static SCRIPT_INDEX_TAG: Tag = Tag::new("Settle/ScriptIndex");

/// Version byte of the undo record encoding.
const UNDO_VERSION: u8 = 1;
/// Bytes of an outpoint key: txid, then the output index big-endian so a transaction's
/// outputs sort in order.
pub const OUTPOINT_KEY_BYTES: usize = 36;
/// Size of the block cache shared by all column families.
const BLOCK_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Most coins a single `listunspent` scan returns, so one request cannot exhaust memory.
pub const MAX_COINS_PER_SCRIPT_SCAN: usize = 100_000;

/// A storage failure. Never a verdict on the data being stored.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error while {context}: {source}")]
    Db {
        context: &'static str,
        source: rocksdb::Error,
    },
    #[error(
        "the database in {} has schema version {found}, but this settled reads only version {expected}; \
         use a matching settled or start from a new data directory",
        path.display()
    )]
    SchemaVersion {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    #[error(
        "the database in {} has column families this settled does not know ({unknown}); it was written \
         by another program or version",
        path.display()
    )]
    UnknownColumnFamilies { path: PathBuf, unknown: String },
    #[error("the database in {} holds no chain (no genesis block)", path.display())]
    Uninitialised { path: PathBuf },
    #[error("the database belongs to chain {stored}, but the chain spec describes chain {spec}")]
    WrongChain { stored: ChainId, spec: ChainId },
    #[error("stored {what} is corrupt: {detail}")]
    Corrupt { what: String, detail: String },
    #[error("block {height} ({hash}) does not extend the tip {tip_height} ({tip_hash})")]
    NotOnTip {
        height: u64,
        hash: BlockHash,
        tip_height: u64,
        tip_hash: BlockHash,
    },
    #[error("the genesis block cannot be disconnected")]
    DisconnectGenesis,
}

impl StoreError {
    /// Whether the failure is the disk being full (ENOSPC, as RocksDB reports it):
    /// not a verdict and not corruption, a condition that ends when space returns.
    pub fn is_no_space(&self) -> bool {
        match self {
            StoreError::Db { source, .. } => {
                let text = source.to_string();
                text.contains("No space left on device") || text.contains("NoSpace")
            }
            _ => false,
        }
    }

    fn db(context: &'static str) -> impl FnOnce(rocksdb::Error) -> StoreError {
        move |source| StoreError::Db { context, source }
    }

    fn corrupt(what: impl Into<String>, detail: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

/// The chain tip as the store last wrote it.
#[derive(Clone, Debug)]
pub struct Tip {
    pub height: u64,
    pub hash: BlockHash,
    pub header: Header,
    /// Running hash of the UTXO set at the tip.
    pub muhash: MuHash3072,
    pub utxo_count: u64,
    pub asset_count: u64,
    /// The membership after the tip; `None` while it is still the chain spec's genesis
    /// membership.
    pub membership: Option<MembershipState>,
}

/// Where a confirmed transaction is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxLocation {
    pub height: u64,
    /// Position in the block.
    pub index: u32,
    /// Byte offset and length of its encoding inside the encoded block.
    pub offset: u32,
    pub len: u32,
}

/// A confirmed spend of an outpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpendRecord {
    pub txid: Txid,
    pub height: u64,
}

/// How the store writes.
#[derive(Clone, Copy, Debug)]
pub struct StoreOptions {
    /// fsync every block's batch before reporting it connected. Off only for tests and
    /// benchmarks that say so.
    pub sync_writes: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { sync_writes: true }
    }
}

/// The RocksDB chainstate.
pub struct ChainStore {
    db: DB,
    path: PathBuf,
    options: StoreOptions,
    /// The tip; also serialises writers, so two batches never race on the same tip.
    tip: Mutex<Option<Tip>>,
}

impl std::fmt::Debug for ChainStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The key of an outpoint in `utxos`, `spends` and the script index.
pub fn outpoint_key(outpoint: &OutPoint) -> [u8; OUTPOINT_KEY_BYTES] {
    let mut key = [0u8; OUTPOINT_KEY_BYTES];
    key[..32].copy_from_slice(outpoint.txid.as_bytes());
    key[32..].copy_from_slice(&outpoint.vout.to_be_bytes());
    key
}

/// The outpoint an `utxos` key names.
pub fn outpoint_from_key(key: &[u8]) -> Option<OutPoint> {
    if key.len() != OUTPOINT_KEY_BYTES {
        return None;
    }
    let mut txid = [0u8; 32];
    txid.copy_from_slice(&key[..32]);
    let mut vout = [0u8; 4];
    vout.copy_from_slice(&key[32..]);
    Some(OutPoint::new(Txid(txid), u32::from_be_bytes(vout)))
}

/// The script index prefix for coins paying `script_pubkey`.
pub fn script_hash(script_pubkey: &[u8]) -> [u8; 32] {
    SCRIPT_INDEX_TAG.hash(script_pubkey)
}

fn script_index_key(script_pubkey: &[u8], outpoint: &OutPoint) -> [u8; 32 + OUTPOINT_KEY_BYTES] {
    let mut key = [0u8; 32 + OUTPOINT_KEY_BYTES];
    key[..32].copy_from_slice(&script_hash(script_pubkey));
    key[32..].copy_from_slice(&outpoint_key(outpoint));
    key
}

fn height_key(height: u64) -> [u8; 8] {
    height.to_be_bytes()
}

fn decode_height(bytes: &[u8], what: &str) -> Result<u64, StoreError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| StoreError::corrupt(what, format!("{} bytes, expected 8", bytes.len())))?;
    Ok(u64::from_be_bytes(array))
}

fn decode_stored<T: Decode>(bytes: &[u8], what: impl Into<String>) -> Result<T, StoreError> {
    deserialize::<T>(bytes).map_err(|e| StoreError::corrupt(what, e))
}

/// Undo data of one block: what connecting it changed, so it can be reversed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UndoRecord {
    /// Coins the block spent that existed before it.
    pub spent: Vec<(OutPoint, Coin)>,
    /// Registry entries of the assets the block touched, as they were before it (`None`:
    /// the block created the asset).
    pub assets_before: Vec<(AssetId, Option<AssetInfo>)>,
    pub muhash_before: MuHash3072,
    pub utxo_count_before: u64,
    pub asset_count_before: u64,
}

impl Encode for UndoRecord {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(UNDO_VERSION);
        write_compact_size(out, self.spent.len() as u64);
        for (outpoint, coin) in &self.spent {
            outpoint.encode(out);
            coin.encode(out);
        }
        write_compact_size(out, self.assets_before.len() as u64);
        for (asset, before) in &self.assets_before {
            asset.encode(out);
            match before {
                None => out.push(0),
                Some(info) => {
                    out.push(1);
                    info.encode(out);
                }
            }
        }
        out.extend_from_slice(&self.muhash_before.to_bytes());
        out.extend_from_slice(&self.utxo_count_before.to_le_bytes());
        out.extend_from_slice(&self.asset_count_before.to_le_bytes());
    }
}

impl Decode for UndoRecord {
    const NAME: &'static str = "undo record";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.read_u8("undo version")?;
        if version != UNDO_VERSION {
            return Err(DecodeError::Invalid {
                what: "undo version",
                detail: format!("{version} is not {UNDO_VERSION}"),
            });
        }
        // An outpoint and the smallest coin take at least 36 + 41 + 16 bytes.
        let n = r.read_count("undo coins", usize::MAX, 93)?;
        let mut spent = Vec::with_capacity(n);
        for _ in 0..n {
            spent.push((OutPoint::decode(r)?, Coin::decode(r)?));
        }
        let n = r.read_count("undo assets", usize::MAX, 33)?;
        let mut assets_before = Vec::with_capacity(n);
        for _ in 0..n {
            let asset = AssetId::decode(r)?;
            let before = match r.read_u8("undo asset flag")? {
                0 => None,
                1 => Some(AssetInfo::decode(r)?),
                other => {
                    return Err(DecodeError::Invalid {
                        what: "undo asset flag",
                        detail: format!("{other} is not 0 or 1"),
                    });
                }
            };
            assets_before.push((asset, before));
        }
        let state: [u8; STATE_BYTES] = r.read_array("undo utxo hash")?;
        let muhash_before = MuHash3072::from_bytes(&state)?;
        Ok(UndoRecord {
            spent,
            assets_before,
            muhash_before,
            utxo_count_before: r.read_u64("undo utxo count")?,
            asset_count_before: r.read_u64("undo asset count")?,
        })
    }
}

/// Encodes a block as [`Block::encode`] does, noting each transaction's byte range.
fn encode_block_with_offsets(block: &Block) -> (Vec<u8>, Vec<(u32, u32)>) {
    let mut out = Vec::with_capacity(block.size_without_certificate() + 256);
    block.header.encode(&mut out);
    write_compact_size(&mut out, block.transactions.len() as u64);
    let mut ranges = Vec::with_capacity(block.transactions.len());
    for tx in &block.transactions {
        let start = out.len();
        tx.encode(&mut out);
        // Blocks are bounded far below 4 GiB (MAX_BLOCK_BYTES), so offsets fit in u32.
        let offset = u32::try_from(start).expect("block size bounded by MAX_BLOCK_BYTES");
        let len = u32::try_from(out.len() - start).expect("block size bounded by MAX_BLOCK_BYTES");
        ranges.push((offset, len));
    }
    block.certificate.encode(&mut out);
    (out, ranges)
}

impl ChainStore {
    /// Opens (creating if needed) the chainstate in `path`. A database of another schema
    /// version, or with column families this code does not know, is refused.
    pub fn open(path: &Path, options: StoreOptions) -> Result<ChainStore, StoreError> {
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.increase_parallelism(2);
        db_opts.set_max_background_jobs(2);
        // Keep file handles bounded: the node also holds sockets.
        db_opts.set_max_open_files(512);
        db_opts.set_keep_log_file_num(3);

        let existing = if path.join("CURRENT").exists() {
            DB::list_cf(&db_opts, path).map_err(StoreError::db("listing column families"))?
        } else {
            Vec::new()
        };
        let unknown: Vec<&String> = existing
            .iter()
            .filter(|name| name.as_str() != "default" && !cf::ALL.contains(&name.as_str()))
            .collect();
        if !unknown.is_empty() {
            return Err(StoreError::UnknownColumnFamilies {
                path: path.to_path_buf(),
                unknown: unknown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }

        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let descriptors = cf::ALL.iter().map(|name| {
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            if matches!(
                *name,
                cf::UTXOS | cf::SPENDS | cf::TX_INDEX | cf::BLOCK_INDEX
            ) {
                // Point look-ups dominate, mostly for keys that exist or were just
                // deleted: bloom filters skip files that cannot hold the key.
                table.set_bloom_filter(10.0, false);
            }
            let mut cf_opts = Options::default();
            cf_opts.set_block_based_table_factory(&table);
            ColumnFamilyDescriptor::new(*name, cf_opts)
        });
        let db = DB::open_cf_descriptors(&db_opts, path, descriptors)
            .map_err(StoreError::db("opening the database"))?;
        let store = ChainStore {
            db,
            path: path.to_path_buf(),
            options,
            tip: Mutex::new(None),
        };
        match store.get(cf::META, meta::SCHEMA_VERSION, "reading the schema version")? {
            None => {
                // A new database: the schema version goes in at once, the chain with the
                // genesis block.
                let mut batch = WriteBatch::default();
                batch.put_cf(
                    store.cf(cf::META),
                    meta::SCHEMA_VERSION,
                    SCHEMA_VERSION.to_le_bytes(),
                );
                store.write(batch, "writing the schema version")?;
            }
            Some(bytes) => {
                let found = <[u8; 4]>::try_from(bytes.as_slice())
                    .map(u32::from_le_bytes)
                    .map_err(|_| StoreError::corrupt("schema version", "not 4 bytes"))?;
                if found != SCHEMA_VERSION {
                    return Err(StoreError::SchemaVersion {
                        path: path.to_path_buf(),
                        found,
                        expected: SCHEMA_VERSION,
                    });
                }
            }
        }
        let tip = store.load_tip()?;
        *store.lock_tip() = tip;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn options(&self) -> StoreOptions {
        self.options
    }

    fn lock_tip(&self) -> MutexGuard<'_, Option<Tip>> {
        // A panic while holding the lock cannot leave the tip half-written: it is only
        // replaced after a batch is durable.
        self.tip.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn cf(&self, name: &'static str) -> &ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("every column family in cf::ALL is opened in ChainStore::open")
    }

    fn get(
        &self,
        cf_name: &'static str,
        key: &[u8],
        context: &'static str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.db
            .get_cf(self.cf(cf_name), key)
            .map_err(StoreError::db(context))
    }

    fn write(&self, batch: WriteBatch, context: &'static str) -> Result<(), StoreError> {
        let mut wo = WriteOptions::default();
        wo.set_sync(self.options.sync_writes);
        self.db
            .write_opt(batch, &wo)
            .map_err(StoreError::db(context))
    }

    fn load_tip(&self) -> Result<Option<Tip>, StoreError> {
        let Some(bytes) = self.get(cf::META, meta::TIP, "reading the tip")? else {
            return Ok(None);
        };
        if bytes.len() != 40 {
            return Err(StoreError::corrupt(
                "tip",
                format!("{} bytes, expected 40", bytes.len()),
            ));
        }
        let height = decode_height(&bytes[..8], "tip height")?;
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&bytes[8..]);
        let hash = BlockHash(hash);
        let header = self.header_at(height)?.ok_or_else(|| {
            StoreError::corrupt("tip", format!("no header at tip height {height}"))
        })?;
        if header.hash() != hash {
            return Err(StoreError::corrupt(
                "tip",
                format!(
                    "header at height {height} hashes to {}, the tip says {hash}",
                    header.hash()
                ),
            ));
        }
        let state = self
            .get(cf::META, meta::MUHASH, "reading the utxo hash")?
            .ok_or_else(|| StoreError::corrupt("utxo hash", "missing"))?;
        let state: [u8; STATE_BYTES] = state
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::corrupt("utxo hash", "wrong length"))?;
        let muhash =
            MuHash3072::from_bytes(&state).map_err(|e| StoreError::corrupt("utxo hash", e))?;
        Ok(Some(Tip {
            height,
            hash,
            header,
            muhash,
            utxo_count: self.meta_u64(meta::UTXO_COUNT)?,
            asset_count: self.meta_u64(meta::ASSET_COUNT)?,
            membership: self
                .get(cf::META, meta::MEMBERSHIP, "reading the membership")?
                .map(|b| decode_stored(&b, "membership"))
                .transpose()?,
        }))
    }

    /// The membership after the block at `height` (`None`: the chain spec's genesis
    /// membership), from the records of the blocks that changed it.
    pub fn membership_after(&self, height: u64) -> Result<Option<MembershipState>, StoreError> {
        let key = meta::membership_at(&height_key(height));
        let mut iter = self.db.iterator_cf(
            self.cf(cf::META),
            IteratorMode::From(&key, Direction::Reverse),
        );
        match iter.next() {
            Some(Ok((k, v))) if k.starts_with(meta::MEMBERSHIP_AT) => {
                decode_stored(&v, format!("membership record {}", hex::encode(&k))).map(Some)
            }
            Some(Err(e)) => Err(StoreError::db("reading the membership history")(e)),
            _ => Ok(None),
        }
    }

    fn meta_u64(&self, key: &'static [u8]) -> Result<u64, StoreError> {
        match self.get(cf::META, key, "reading a counter")? {
            None => Ok(0),
            Some(b) => <[u8; 8]>::try_from(b.as_slice())
                .map(u64::from_le_bytes)
                .map_err(|_| StoreError::corrupt(String::from_utf8_lossy(key), "not 8 bytes")),
        }
    }

    /// The tip, or `None` before genesis.
    pub fn tip(&self) -> Option<Tip> {
        self.lock_tip().clone()
    }

    /// The tip; an error if the database holds no chain.
    pub fn require_tip(&self) -> Result<Tip, StoreError> {
        self.tip().ok_or_else(|| StoreError::Uninitialised {
            path: self.path.clone(),
        })
    }

    /// The chain id recorded at genesis.
    pub fn chain_id(&self) -> Result<Option<ChainId>, StoreError> {
        match self.get(cf::META, meta::CHAIN_ID, "reading the chain id")? {
            None => Ok(None),
            Some(b) => <[u8; 32]>::try_from(b.as_slice())
                .map(|a| Some(ChainId(a)))
                .map_err(|_| StoreError::corrupt("chain id", "not 32 bytes")),
        }
    }

    /// The chain spec (TOML) recorded at genesis.
    pub fn chain_spec_toml(&self) -> Result<Option<String>, StoreError> {
        match self.get(cf::META, meta::CHAIN_SPEC, "reading the chain spec")? {
            None => Ok(None),
            Some(b) => String::from_utf8(b)
                .map(Some)
                .map_err(|_| StoreError::corrupt("chain spec", "not UTF-8")),
        }
    }

    /// Writes the genesis block of a fresh database, or checks that an initialised one
    /// belongs to the same chain.
    pub fn init_genesis(
        &self,
        genesis: &settle_chain::Genesis,
        spec_toml: &str,
    ) -> Result<(), StoreError> {
        let mut tip_guard = self.lock_tip();
        if tip_guard.is_some() {
            let stored = self
                .chain_id()?
                .ok_or_else(|| StoreError::corrupt("chain id", "missing"))?;
            if stored != genesis.chain_id {
                return Err(StoreError::WrongChain {
                    stored,
                    spec: genesis.chain_id,
                });
            }
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(cf::META),
            meta::CHAIN_ID,
            genesis.chain_id.as_bytes(),
        );
        batch.put_cf(self.cf(cf::META), meta::CHAIN_SPEC, spec_toml.as_bytes());
        let tip = self.stage_connect(
            &mut batch,
            &genesis.block,
            &genesis.effects,
            None,
            MuHash3072::new(),
        )?;
        self.write(batch, "writing the genesis block")?;
        *tip_guard = Some(tip);
        Ok(())
    }

    /// Connects `block`, whose effects `validate_block` computed against this store's tip,
    /// with one synced batch.
    pub fn connect_block(&self, block: &Block, effects: &BlockEffects) -> Result<Tip, StoreError> {
        let mut tip_guard = self.lock_tip();
        let tip = tip_guard
            .as_ref()
            .ok_or_else(|| StoreError::Uninitialised {
                path: self.path.clone(),
            })?;
        let hash = block.hash();
        if block.header.height != tip.height + 1 || block.header.prev_hash != tip.hash {
            return Err(StoreError::NotOnTip {
                height: block.header.height,
                hash,
                tip_height: tip.height,
                tip_hash: tip.hash,
            });
        }
        // The effects must be those of this very block: applying another block's effects
        // would corrupt the UTXO set silently.
        assert_eq!(effects.block_hash, hash, "effects of another block");
        assert_eq!(
            effects.height, block.header.height,
            "effects of another height"
        );
        let before = tip.clone();
        let mut batch = WriteBatch::default();
        let new_tip = self.stage_connect(
            &mut batch,
            block,
            effects,
            Some(&before),
            before.muhash.clone(),
        )?;
        self.write(batch, "connecting a block")?;
        *tip_guard = Some(new_tip.clone());
        Ok(new_tip)
    }

    fn stage_connect(
        &self,
        batch: &mut WriteBatch,
        block: &Block,
        effects: &BlockEffects,
        before: Option<&Tip>,
        muhash_before: MuHash3072,
    ) -> Result<Tip, StoreError> {
        let height = block.header.height;
        let hash = block.hash();
        let hk = height_key(height);
        let (encoded, ranges) = encode_block_with_offsets(block);
        batch.put_cf(self.cf(cf::HEADERS), hk, serialize(&block.header));
        batch.put_cf(self.cf(cf::BLOCK_INDEX), hash.as_bytes(), hk);
        batch.put_cf(self.cf(cf::BLOCKS), hk, &encoded);

        let tx_index = self.cf(cf::TX_INDEX);
        let spends = self.cf(cf::SPENDS);
        for (i, (tx, (offset, len))) in block.transactions.iter().zip(&ranges).enumerate() {
            let txid = effects.txids.get(i).copied().unwrap_or_else(|| tx.txid());
            let mut loc = Vec::with_capacity(20);
            loc.extend_from_slice(&hk);
            // A block holds at most MAX_BLOCK_TXS transactions, far below u32::MAX.
            loc.extend_from_slice(
                &u32::try_from(i)
                    .expect("bounded by MAX_BLOCK_TXS")
                    .to_le_bytes(),
            );
            loc.extend_from_slice(&offset.to_le_bytes());
            loc.extend_from_slice(&len.to_le_bytes());
            batch.put_cf(tx_index, txid.as_bytes(), &loc);
            let mut spend = Vec::with_capacity(40);
            spend.extend_from_slice(txid.as_bytes());
            spend.extend_from_slice(&hk);
            for input in &tx.inputs {
                if !input.prevout.is_null() {
                    batch.put_cf(spends, outpoint_key(&input.prevout), &spend);
                }
            }
        }

        let utxos = self.cf(cf::UTXOS);
        let script_index = self.cf(cf::SCRIPT_INDEX);
        for (outpoint, coin) in &effects.spent {
            batch.delete_cf(utxos, outpoint_key(outpoint));
            batch.delete_cf(
                script_index,
                script_index_key(&coin.output.script_pubkey, outpoint),
            );
        }
        for (outpoint, coin) in &effects.created {
            batch.put_cf(utxos, outpoint_key(outpoint), serialize(coin));
            batch.put_cf(
                script_index,
                script_index_key(&coin.output.script_pubkey, outpoint),
                b"",
            );
        }

        let assets = self.cf(cf::ASSETS);
        let asset_count_before = before.map_or(0, |t| t.asset_count);
        let mut asset_count = asset_count_before;
        let mut assets_before = Vec::with_capacity(effects.assets.len());
        for delta in &effects.assets {
            let current = self.asset(&delta.asset)?;
            let mut entry = match (&current, &delta.created) {
                (Some(existing), None) => existing.clone(),
                (None, Some(created)) => {
                    asset_count += 1;
                    created.clone()
                }
                (Some(_), Some(_)) => {
                    return Err(StoreError::corrupt(
                        format!("asset {}", delta.asset),
                        "the block creates it but the registry already holds it",
                    ));
                }
                (None, None) => {
                    return Err(StoreError::corrupt(
                        format!("asset {}", delta.asset),
                        "the block changes it but the registry does not hold it",
                    ));
                }
            };
            entry.issued = entry.issued.checked_add(delta.issued).ok_or_else(|| {
                StoreError::corrupt(format!("asset {}", delta.asset), "issued overflows")
            })?;
            entry.burned = entry.burned.checked_add(delta.burned).ok_or_else(|| {
                StoreError::corrupt(format!("asset {}", delta.asset), "burned overflows")
            })?;
            batch.put_cf(assets, delta.asset.as_bytes(), serialize(&entry));
            assets_before.push((delta.asset, current));
        }

        let utxo_count_before = before.map_or(0, |t| t.utxo_count);
        let utxo_count = (utxo_count_before + effects.created.len() as u64)
            .checked_sub(effects.spent.len() as u64)
            .ok_or_else(|| StoreError::corrupt("utxo count", "more coins spent than exist"))?;
        let undo = UndoRecord {
            spent: effects.spent.clone(),
            assets_before,
            muhash_before,
            utxo_count_before,
            asset_count_before,
        };
        batch.put_cf(self.cf(cf::UNDO), hk, serialize(&undo));

        let meta_cf = self.cf(cf::META);
        let mut tip_bytes = Vec::with_capacity(40);
        tip_bytes.extend_from_slice(&hk);
        tip_bytes.extend_from_slice(hash.as_bytes());
        batch.put_cf(meta_cf, meta::TIP, &tip_bytes);
        batch.put_cf(meta_cf, meta::MUHASH, effects.muhash.to_bytes());
        batch.put_cf(meta_cf, meta::UTXO_COUNT, utxo_count.to_le_bytes());
        batch.put_cf(meta_cf, meta::ASSET_COUNT, asset_count.to_le_bytes());
        let membership = match &effects.membership {
            Some(state) => {
                let bytes = serialize(state);
                batch.put_cf(meta_cf, meta::membership_at(&hk), &bytes);
                batch.put_cf(meta_cf, meta::MEMBERSHIP, &bytes);
                Some(state.clone())
            }
            None => before.and_then(|t| t.membership.clone()),
        };
        Ok(Tip {
            height,
            hash,
            header: block.header,
            muhash: effects.muhash.clone(),
            utxo_count,
            asset_count,
            membership,
        })
    }

    /// Disconnects the tip block using its undo data, with one synced batch. Returns the
    /// block that was disconnected.
    pub fn disconnect_tip(&self) -> Result<Block, StoreError> {
        let mut tip_guard = self.lock_tip();
        let tip = tip_guard.clone().ok_or_else(|| StoreError::Uninitialised {
            path: self.path.clone(),
        })?;
        if tip.height == 0 {
            return Err(StoreError::DisconnectGenesis);
        }
        let hk = height_key(tip.height);
        let block = self.block_at(tip.height)?.ok_or_else(|| {
            StoreError::corrupt("block", format!("no block at tip height {}", tip.height))
        })?;
        let undo: UndoRecord = decode_stored(
            &self
                .get(cf::UNDO, &hk, "reading undo data")?
                .ok_or_else(|| {
                    StoreError::corrupt("undo data", format!("none at height {}", tip.height))
                })?,
            format!("undo data at height {}", tip.height),
        )?;
        let parent = self.header_at(tip.height - 1)?.ok_or_else(|| {
            StoreError::corrupt("header", format!("none at height {}", tip.height - 1))
        })?;

        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(cf::HEADERS), hk);
        batch.delete_cf(self.cf(cf::BLOCK_INDEX), tip.hash.as_bytes());
        batch.delete_cf(self.cf(cf::BLOCKS), hk);
        batch.delete_cf(self.cf(cf::UNDO), hk);
        let utxos = self.cf(cf::UTXOS);
        let script_index = self.cf(cf::SCRIPT_INDEX);
        for tx in &block.transactions {
            let txid = tx.txid();
            batch.delete_cf(self.cf(cf::TX_INDEX), txid.as_bytes());
            for input in &tx.inputs {
                if !input.prevout.is_null() {
                    batch.delete_cf(self.cf(cf::SPENDS), outpoint_key(&input.prevout));
                }
            }
            for (vout, output) in tx.outputs.iter().enumerate() {
                // Outputs spent within the block are not stored; deleting them is harmless.
                let outpoint = OutPoint::new(
                    txid,
                    u32::try_from(vout).expect("output count bounded by MAX_TX_OUTPUTS"),
                );
                batch.delete_cf(utxos, outpoint_key(&outpoint));
                batch.delete_cf(
                    script_index,
                    script_index_key(&output.script_pubkey, &outpoint),
                );
            }
        }
        for (outpoint, coin) in &undo.spent {
            batch.put_cf(utxos, outpoint_key(outpoint), serialize(coin));
            batch.put_cf(
                script_index,
                script_index_key(&coin.output.script_pubkey, outpoint),
                b"",
            );
        }
        let assets = self.cf(cf::ASSETS);
        for (asset, before) in &undo.assets_before {
            match before {
                Some(info) => batch.put_cf(assets, asset.as_bytes(), serialize(info)),
                None => batch.delete_cf(assets, asset.as_bytes()),
            }
        }
        let meta_cf = self.cf(cf::META);
        let membership = if tip.membership.is_some() {
            let previous = self.membership_after(parent.height)?;
            batch.delete_cf(meta_cf, meta::membership_at(&hk));
            match &previous {
                Some(state) => batch.put_cf(meta_cf, meta::MEMBERSHIP, serialize(state)),
                None => batch.delete_cf(meta_cf, meta::MEMBERSHIP),
            }
            previous
        } else {
            None
        };
        let parent_hash = parent.hash();
        let mut tip_bytes = Vec::with_capacity(40);
        tip_bytes.extend_from_slice(&height_key(parent.height));
        tip_bytes.extend_from_slice(parent_hash.as_bytes());
        batch.put_cf(meta_cf, meta::TIP, &tip_bytes);
        batch.put_cf(meta_cf, meta::MUHASH, undo.muhash_before.to_bytes());
        batch.put_cf(
            meta_cf,
            meta::UTXO_COUNT,
            undo.utxo_count_before.to_le_bytes(),
        );
        batch.put_cf(
            meta_cf,
            meta::ASSET_COUNT,
            undo.asset_count_before.to_le_bytes(),
        );
        self.write(batch, "disconnecting a block")?;
        *tip_guard = Some(Tip {
            height: parent.height,
            hash: parent_hash,
            header: parent,
            muhash: undo.muhash_before,
            utxo_count: undo.utxo_count_before,
            asset_count: undo.asset_count_before,
            membership,
        });
        Ok(block)
    }

    // ---- Reads ----

    pub fn header_at(&self, height: u64) -> Result<Option<Header>, StoreError> {
        self.get(cf::HEADERS, &height_key(height), "reading a header")?
            .map(|b| decode_stored(&b, format!("header at height {height}")))
            .transpose()
    }

    pub fn height_of(&self, hash: &BlockHash) -> Result<Option<u64>, StoreError> {
        self.get(cf::BLOCK_INDEX, hash.as_bytes(), "reading the block index")?
            .map(|b| decode_height(&b, "block index entry"))
            .transpose()
    }

    pub fn block_bytes_at(&self, height: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(cf::BLOCKS, &height_key(height), "reading a block")
    }

    pub fn block_at(&self, height: u64) -> Result<Option<Block>, StoreError> {
        self.block_bytes_at(height)?
            .map(|b| decode_stored(&b, format!("block at height {height}")))
            .transpose()
    }

    pub fn tx_location(&self, txid: &Txid) -> Result<Option<TxLocation>, StoreError> {
        let Some(b) = self.get(cf::TX_INDEX, txid.as_bytes(), "reading the tx index")? else {
            return Ok(None);
        };
        parse_tx_location(txid, &b).map(Some)
    }
}

/// Decodes a `tx_index` entry.
fn parse_tx_location(txid: &Txid, b: &[u8]) -> Result<TxLocation, StoreError> {
    if b.len() != 20 {
        return Err(StoreError::corrupt(
            format!("tx index entry of {txid}"),
            "not 20 bytes",
        ));
    }
    let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    Ok(TxLocation {
        height: decode_height(&b[..8], "tx index height")?,
        index: u32_at(8),
        offset: u32_at(12),
        len: u32_at(16),
    })
}

impl ChainStore {
    /// A confirmed transaction and where it is.
    pub fn transaction(
        &self,
        txid: &Txid,
    ) -> Result<Option<(Transaction, TxLocation)>, StoreError> {
        let Some(loc) = self.tx_location(txid)? else {
            return Ok(None);
        };
        let block = self.block_bytes_at(loc.height)?.ok_or_else(|| {
            StoreError::corrupt(
                format!("tx index entry of {txid}"),
                format!("no block at height {}", loc.height),
            )
        })?;
        let start = loc.offset as usize;
        let end = start.saturating_add(loc.len as usize);
        let bytes = block.get(start..end).ok_or_else(|| {
            StoreError::corrupt(
                format!("tx index entry of {txid}"),
                "points outside its block",
            )
        })?;
        let tx: Transaction = decode_stored(bytes, format!("transaction {txid}"))?;
        Ok(Some((tx, loc)))
    }

    pub fn spend_of(&self, outpoint: &OutPoint) -> Result<Option<SpendRecord>, StoreError> {
        let Some(b) = self.get(
            cf::SPENDS,
            &outpoint_key(outpoint),
            "reading the spend index",
        )?
        else {
            return Ok(None);
        };
        if b.len() != 40 {
            return Err(StoreError::corrupt(
                format!("spend record of {outpoint}"),
                "not 40 bytes",
            ));
        }
        let mut txid = [0u8; 32];
        txid.copy_from_slice(&b[..32]);
        Ok(Some(SpendRecord {
            txid: Txid(txid),
            height: decode_height(&b[32..], "spend height")?,
        }))
    }

    pub fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StoreError> {
        self.get(cf::UTXOS, &outpoint_key(outpoint), "reading a coin")?
            .map(|b| decode_stored(&b, format!("coin {outpoint}")))
            .transpose()
    }

    /// Many coins at once (one RocksDB multi-get).
    pub fn coins(&self, outpoints: &[OutPoint]) -> Result<Vec<Option<Coin>>, StoreError> {
        let cf = self.cf(cf::UTXOS);
        let keys: Vec<[u8; OUTPOINT_KEY_BYTES]> = outpoints.iter().map(outpoint_key).collect();
        let results = self
            .db
            .multi_get_cf(keys.iter().map(|k| (cf, k.as_slice())));
        outpoints
            .iter()
            .zip(results)
            .map(|(outpoint, r)| {
                r.map_err(StoreError::db("reading coins"))?
                    .map(|b| decode_stored(&b, format!("coin {outpoint}")))
                    .transpose()
            })
            .collect()
    }

    pub fn asset(&self, asset: &AssetId) -> Result<Option<AssetInfo>, StoreError> {
        self.get(cf::ASSETS, asset.as_bytes(), "reading the asset registry")?
            .map(|b| decode_stored(&b, format!("registry entry of asset {asset}")))
            .transpose()
    }

    /// Every asset in the registry, by id.
    pub fn assets(&self) -> Result<Vec<(AssetId, AssetInfo)>, StoreError> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(cf::ASSETS), IteratorMode::Start)
        {
            let (k, v) = item.map_err(StoreError::db("listing assets"))?;
            let id = <[u8; 32]>::try_from(&*k)
                .map(AssetId)
                .map_err(|_| StoreError::corrupt("asset registry key", "not 32 bytes"))?;
            out.push((
                id,
                decode_stored(&v, format!("registry entry of asset {id}"))?,
            ));
        }
        Ok(out)
    }

    /// Coins paying `script_pubkey`, at most `limit` of them.
    pub fn coins_by_script(
        &self,
        script_pubkey: &[u8],
        limit: usize,
    ) -> Result<Vec<(OutPoint, Coin)>, StoreError> {
        let prefix = script_hash(script_pubkey);
        let mut outpoints = Vec::new();
        let iter = self.db.iterator_cf(
            self.cf(cf::SCRIPT_INDEX),
            IteratorMode::From(&prefix[..], Direction::Forward),
        );
        for item in iter {
            let (k, _) = item.map_err(StoreError::db("scanning the script index"))?;
            if !k.starts_with(&prefix) || outpoints.len() >= limit {
                break;
            }
            let outpoint = outpoint_from_key(&k[32..])
                .ok_or_else(|| StoreError::corrupt("script index key", "wrong length"))?;
            outpoints.push(outpoint);
        }
        let coins = self.coins(&outpoints)?;
        let mut out = Vec::with_capacity(outpoints.len());
        for (outpoint, coin) in outpoints.into_iter().zip(coins) {
            let coin = coin.ok_or_else(|| {
                StoreError::corrupt(
                    format!("script index entry {outpoint}"),
                    "names a coin that is not in the UTXO set",
                )
            })?;
            if coin.output.script_pubkey == script_pubkey {
                out.push((outpoint, coin));
            }
        }
        Ok(out)
    }

    /// Visits every coin in the UTXO set in key order. Stops at the first error, whether
    /// the database's or the visitor's.
    pub fn for_each_coin<E: From<StoreError>>(
        &self,
        mut visit: impl FnMut(OutPoint, Result<Coin, StoreError>) -> Result<(), E>,
    ) -> Result<(), E> {
        for item in self.db.iterator_cf(self.cf(cf::UTXOS), IteratorMode::Start) {
            let (k, v) = item.map_err(StoreError::db("scanning the utxo set"))?;
            let outpoint = outpoint_from_key(&k)
                .ok_or_else(|| StoreError::corrupt("utxo key", format!("{} bytes", k.len())))?;
            let coin = decode_stored::<Coin>(&v, format!("coin {outpoint}"));
            visit(outpoint, coin)?;
        }
        Ok(())
    }

    /// Overwrites one stored coin, bypassing validation. Only for tests that check that
    /// tampering is detected.
    #[doc(hidden)]
    pub fn tamper_coin(&self, outpoint: &OutPoint, coin: &Coin) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(cf::UTXOS), outpoint_key(outpoint), serialize(coin));
        self.write(batch, "overwriting a coin")
    }

    /// Overwrites one stored coin with raw bytes (which need not decode). Only for tests
    /// of how storage corruption is reported.
    #[doc(hidden)]
    pub fn tamper_coin_bytes(&self, outpoint: &OutPoint, bytes: &[u8]) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(cf::UTXOS), outpoint_key(outpoint), bytes);
        self.write(batch, "overwriting a coin")
    }

    /// Stores a candidate block for `height` in one write, synced like a block.
    pub fn put_candidate(
        &self,
        height: u64,
        hash: &BlockHash,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(cf::META),
            meta::candidate(&height_key(height), &hash.0),
            bytes,
        );
        self.write(batch, "storing a candidate block")
    }

    /// The candidate blocks stored for `height` (consensus bytes), in hash order.
    pub fn candidates_at(&self, height: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let prefix = [meta::CANDIDATE, &height_key(height)[..]].concat();
        let mut out = Vec::new();
        let iter = self.db.iterator_cf(
            self.cf(cf::META),
            IteratorMode::From(&prefix, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item.map_err(StoreError::db("reading candidate blocks"))?;
            if !key.starts_with(&prefix) {
                break;
            }
            out.push(value.to_vec());
        }
        Ok(out)
    }

    /// Deletes the candidate blocks of every height up to `height`. Not synced: a
    /// candidate left behind by a crash is only read back for its own height, which
    /// is connected, and the next prune deletes it.
    pub fn prune_candidates(&self, height: u64) -> Result<(), StoreError> {
        let from = meta::CANDIDATE.to_vec();
        let to = [meta::CANDIDATE, &height_key(height.saturating_add(1))[..]].concat();
        let mut batch = WriteBatch::default();
        batch.delete_range_cf(self.cf(cf::META), from, to);
        let mut wo = WriteOptions::default();
        wo.set_sync(false);
        self.db
            .write_opt(batch, &wo)
            .map_err(StoreError::db("pruning candidate blocks"))
    }

    /// Flushes memtables to disk (for a clean shutdown; a crash loses nothing synced).
    pub fn flush(&self) -> Result<(), StoreError> {
        for name in cf::ALL {
            self.db
                .flush_cf(self.cf(name))
                .map_err(StoreError::db("flushing"))?;
        }
        Ok(())
    }
}

/// One consistent picture of the chainstate: a RocksDB snapshot and the tip it shows,
/// taken together under the tip lock (a block's batch and the tip move together there),
/// so a read of several parts never mixes two tips.
pub struct StoreSnapshot<'a> {
    store: &'a ChainStore,
    snapshot: rocksdb::Snapshot<'a>,
    pub tip: Tip,
}

impl std::fmt::Debug for StoreSnapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSnapshot")
            .field("tip", &self.tip.height)
            .finish_non_exhaustive()
    }
}

impl ChainStore {
    /// A snapshot of the database at the current tip.
    pub fn snapshot(&self) -> Result<StoreSnapshot<'_>, StoreError> {
        let guard = self.lock_tip();
        let tip = guard.clone().ok_or_else(|| StoreError::Uninitialised {
            path: self.path.clone(),
        })?;
        let snapshot = self.db.snapshot();
        drop(guard);
        Ok(StoreSnapshot {
            store: self,
            snapshot,
            tip,
        })
    }
}

impl StoreSnapshot<'_> {
    fn get(
        &self,
        cf_name: &'static str,
        key: &[u8],
        context: &'static str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        self.snapshot
            .get_cf(self.store.cf(cf_name), key)
            .map_err(StoreError::db(context))
    }

    pub fn header_at(&self, height: u64) -> Result<Option<Header>, StoreError> {
        self.get(cf::HEADERS, &height_key(height), "reading a header")?
            .map(|b| decode_stored(&b, format!("header at height {height}")))
            .transpose()
    }

    pub fn height_of(&self, hash: &BlockHash) -> Result<Option<u64>, StoreError> {
        self.get(cf::BLOCK_INDEX, hash.as_bytes(), "reading the block index")?
            .map(|b| decode_height(&b, "block index entry"))
            .transpose()
    }

    pub fn block_at(&self, height: u64) -> Result<Option<Block>, StoreError> {
        self.get(cf::BLOCKS, &height_key(height), "reading a block")?
            .map(|b| decode_stored(&b, format!("block at height {height}")))
            .transpose()
    }

    pub fn coin(&self, outpoint: &OutPoint) -> Result<Option<Coin>, StoreError> {
        self.get(cf::UTXOS, &outpoint_key(outpoint), "reading a coin")?
            .map(|b| decode_stored(&b, format!("coin {outpoint}")))
            .transpose()
    }

    /// A confirmed transaction and the height of its block.
    pub fn transaction(&self, txid: &Txid) -> Result<Option<(Transaction, u64)>, StoreError> {
        let Some(b) = self.get(cf::TX_INDEX, txid.as_bytes(), "reading the tx index")? else {
            return Ok(None);
        };
        let loc = parse_tx_location(txid, &b)?;
        let block = self
            .get(cf::BLOCKS, &height_key(loc.height), "reading a block")?
            .ok_or_else(|| {
                StoreError::corrupt(
                    format!("tx index entry of {txid}"),
                    format!("no block at height {}", loc.height),
                )
            })?;
        let start = loc.offset as usize;
        let bytes = block
            .get(start..start.saturating_add(loc.len as usize))
            .ok_or_else(|| {
                StoreError::corrupt(
                    format!("tx index entry of {txid}"),
                    "points outside its block",
                )
            })?;
        let tx: Transaction = decode_stored(bytes, format!("transaction {txid}"))?;
        Ok(Some((tx, loc.height)))
    }

    /// Coins paying `script_pubkey`, at most `limit` of them, as of this snapshot.
    pub fn coins_by_script(
        &self,
        script_pubkey: &[u8],
        limit: usize,
    ) -> Result<Vec<(OutPoint, Coin)>, StoreError> {
        let prefix = script_hash(script_pubkey);
        let mut outpoints = Vec::new();
        let iter = self.snapshot.iterator_cf(
            self.store.cf(cf::SCRIPT_INDEX),
            IteratorMode::From(&prefix[..], Direction::Forward),
        );
        for item in iter {
            let (k, _) = item.map_err(StoreError::db("scanning the script index"))?;
            if !k.starts_with(&prefix) || outpoints.len() >= limit {
                break;
            }
            outpoints.push(
                outpoint_from_key(&k[32..])
                    .ok_or_else(|| StoreError::corrupt("script index key", "wrong length"))?,
            );
        }
        let cf = self.store.cf(cf::UTXOS);
        let keys: Vec<[u8; OUTPOINT_KEY_BYTES]> = outpoints.iter().map(outpoint_key).collect();
        let found = self
            .snapshot
            .multi_get_cf(keys.iter().map(|k| (cf, k.as_slice())));
        let mut out = Vec::with_capacity(outpoints.len());
        for (outpoint, bytes) in outpoints.into_iter().zip(found) {
            let bytes = bytes
                .map_err(StoreError::db("reading coins"))?
                .ok_or_else(|| {
                    StoreError::corrupt(
                        format!("script index entry {outpoint}"),
                        "names a coin that is not in the UTXO set",
                    )
                })?;
            let coin: Coin = decode_stored(&bytes, format!("coin {outpoint}"))?;
            if coin.output.script_pubkey == script_pubkey {
                out.push((outpoint, coin));
            }
        }
        Ok(out)
    }
}

/// A [`ChainView`] over the store that remembers the first storage error instead of
/// reporting it as a missing coin. Callers check [`StoreView::take_error`] after
/// validating: if it is set, the verdict is void and the storage error is reported.
pub struct StoreView<'a> {
    store: &'a ChainStore,
    muhash: MuHash3072,
    membership: Option<MembershipState>,
    scripts: Option<&'a ScriptCache>,
    error: Mutex<Option<StoreError>>,
}

impl std::fmt::Debug for StoreView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreView").finish_non_exhaustive()
    }
}

impl<'a> StoreView<'a> {
    pub fn new(store: &'a ChainStore, tip: &Tip) -> Self {
        StoreView {
            store,
            muhash: tip.muhash.clone(),
            membership: tip.membership.clone(),
            scripts: None,
            error: Mutex::new(None),
        }
    }

    /// Lets validation skip the scripts of transactions in `cache`.
    pub fn with_script_cache(mut self, cache: &'a ScriptCache) -> Self {
        self.scripts = Some(cache);
        self
    }

    fn note<T>(&self, r: Result<Option<T>, StoreError>) -> Option<T> {
        match r {
            Ok(v) => v,
            Err(e) => {
                let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
                if slot.is_none() {
                    *slot = Some(e);
                }
                None
            }
        }
    }

    /// The first storage error met while validating, if any.
    pub fn take_error(&self) -> Option<StoreError> {
        self.error.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl ChainView for StoreView<'_> {
    fn coin(&self, outpoint: &OutPoint) -> Option<Coin> {
        self.note(self.store.coin(outpoint))
    }
    fn asset(&self, asset: &AssetId) -> Option<AssetInfo> {
        self.note(self.store.asset(asset))
    }
    fn utxo_muhash(&self) -> MuHash3072 {
        self.muhash.clone()
    }
    fn membership(&self) -> Option<MembershipState> {
        self.membership.clone()
    }
    fn scripts_verified(&self, wtxid: &Wtxid) -> bool {
        self.scripts.is_some_and(|c| c.contains(wtxid))
    }
}

/// A view with every coin a set of transactions may read fetched up front (one
/// multi-get), over the store for anything else. Validation then runs on memory.
pub struct PrefetchedView<'a> {
    inner: StoreView<'a>,
    coins: HashMap<OutPoint, Option<Coin>>,
}

impl std::fmt::Debug for PrefetchedView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefetchedView")
            .field("coins", &self.coins.len())
            .finish_non_exhaustive()
    }
}

impl<'a> PrefetchedView<'a> {
    /// Fetches every coin the inputs of `txs` spend.
    pub fn new(store: &'a ChainStore, tip: &Tip, txs: &[Transaction]) -> Result<Self, StoreError> {
        let outpoints: Vec<OutPoint> = txs
            .iter()
            .flat_map(|tx| tx.inputs.iter().map(|i| i.prevout))
            .filter(|p| !p.is_null())
            .collect();
        let coins = store.coins(&outpoints)?;
        Ok(PrefetchedView {
            inner: StoreView::new(store, tip),
            coins: outpoints.into_iter().zip(coins).collect(),
        })
    }

    pub fn take_error(&self) -> Option<StoreError> {
        self.inner.take_error()
    }

    /// Lets validation skip the scripts of transactions in `cache`.
    pub fn with_script_cache(mut self, cache: &'a ScriptCache) -> Self {
        self.inner = self.inner.with_script_cache(cache);
        self
    }
}

impl ChainView for PrefetchedView<'_> {
    fn coin(&self, outpoint: &OutPoint) -> Option<Coin> {
        match self.coins.get(outpoint) {
            Some(c) => c.clone(),
            None => self.inner.coin(outpoint),
        }
    }
    fn asset(&self, asset: &AssetId) -> Option<AssetInfo> {
        self.inner.asset(asset)
    }
    fn utxo_muhash(&self) -> MuHash3072 {
        self.inner.utxo_muhash()
    }
    fn membership(&self) -> Option<MembershipState> {
        self.inner.membership()
    }
    fn scripts_verified(&self, wtxid: &Wtxid) -> bool {
        self.inner.scripts_verified(wtxid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secp256k1::Keypair;
    use settle_assets::transaction::{TxIn, TxOut};
    use settle_chain::{ChainSpec, CommitCertificate, build_block, sign_precommit};
    use settle_script::sighash::{PrecomputedTx, SighashType};

    struct Chain {
        spec: ChainSpec,
        genesis: settle_chain::Genesis,
        validator: Keypair,
        issuer: Keypair,
    }

    fn chain() -> Chain {
        let validator = Keypair::new(secp256k1::SECP256K1, &mut rand::rng());
        let issuer = Keypair::new(secp256k1::SECP256K1, &mut rand::rng());
        let spec = ChainSpec::dev(
            &validator.x_only_public_key().0,
            &issuer.x_only_public_key().0,
            1_700_000_000_000,
        );
        let genesis = spec.genesis().expect("genesis");
        Chain {
            spec,
            genesis,
            validator,
            issuer,
        }
    }

    fn issue(c: &Chain, name: &str, to: &Keypair, units: u64) -> Transaction {
        crate::test_support::cash_issuance(
            c.genesis.chain_id,
            &c.issuer,
            name,
            "TST",
            true,
            to,
            units,
        )
    }

    fn transfer(c: &Chain, from: &Transaction, key: &Keypair, to: &Keypair) -> Transaction {
        let prev = from.outputs[0].clone();
        let mut tx = Transaction {
            version: 1,
            inputs: vec![TxIn::spending(OutPoint::new(from.txid(), 0))],
            outputs: vec![TxOut {
                script_pubkey: settle_script::p2k(&to.x_only_public_key().0),
                ..prev.clone()
            }],
            lock_time: 0,
            expiry_height: 0,
        };
        let spent = [prev];
        let w = {
            let cache = PrecomputedTx::new(&tx, &spent, c.genesis.chain_id).expect("cache");
            settle_script::sign_p2k_input(&cache, 0, key, SighashType::All).expect("sign")
        };
        tx.inputs[0].witness = w;
        tx
    }

    /// Builds, signs and connects a block of `txs`; every one must be included.
    fn connect(store: &ChainStore, c: &Chain, txs: &[Transaction]) -> Block {
        let tip = store.require_tip().expect("tip");
        let view = StoreView::new(store, &tip);
        let built = build_block(
            &tip.header,
            txs,
            tip.header.time_ms + 1_000,
            c.validator.x_only_public_key().0.serialize(),
            &view,
            &c.spec,
            &c.genesis.chain_id,
        );
        assert!(built.skipped.is_empty(), "{:?}", built.skipped);
        let mut block = built.block;
        let hash = block.hash();
        block.certificate = CommitCertificate {
            height: block.header.height,
            round: 0,
            block_hash: hash,
            signatures: vec![sign_precommit(
                &c.validator,
                &c.genesis.chain_id,
                block.header.height,
                0,
                &hash,
            )],
        };
        store
            .connect_block(&block, &built.effects)
            .expect("connect");
        block
    }

    fn dump(store: &ChainStore) -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        for name in cf::ALL {
            for item in store.db.iterator_cf(store.cf(name), IteratorMode::Start) {
                let (k, v) = item.expect("iterate");
                out.push((name, k.to_vec(), v.to_vec()));
            }
        }
        out
    }

    fn open(dir: &Path) -> ChainStore {
        ChainStore::open(dir, StoreOptions { sync_writes: false }).expect("open")
    }

    #[test]
    fn genesis_is_written_once_and_survives_reopening() {
        let tmp = tempfile::tempdir().expect("tmp");
        let c = chain();
        {
            let store = open(tmp.path());
            assert!(store.tip().is_none());
            store.init_genesis(&c.genesis, "spec").expect("genesis");
            store
                .init_genesis(&c.genesis, "spec")
                .expect("same chain again is fine");
            assert_eq!(store.require_tip().expect("tip").height, 0);
        }
        let store = open(tmp.path());
        let tip = store.require_tip().expect("tip");
        assert_eq!((tip.height, tip.hash), (0, c.genesis.block.hash()));
        assert_eq!(store.chain_id().expect("id"), Some(c.genesis.chain_id));
        assert_eq!(
            store.chain_spec_toml().expect("spec").as_deref(),
            Some("spec")
        );
        let other = chain();
        assert!(matches!(
            store.init_genesis(&other.genesis, "x"),
            Err(StoreError::WrongChain { .. })
        ));
    }

    #[test]
    fn an_unknown_schema_version_is_refused_with_a_clear_message() {
        let tmp = tempfile::tempdir().expect("tmp");
        {
            let store = open(tmp.path());
            let mut batch = WriteBatch::default();
            batch.put_cf(
                store.cf(cf::META),
                meta::SCHEMA_VERSION,
                (SCHEMA_VERSION + 1).to_le_bytes(),
            );
            store.write(batch, "test").expect("write");
        }
        let err = ChainStore::open(tmp.path(), StoreOptions::default()).expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains(&format!("schema version {}", SCHEMA_VERSION + 1))
                && text.contains(&format!("only version {SCHEMA_VERSION}")),
            "{text}"
        );
    }

    #[test]
    fn connect_and_disconnect_restore_the_exact_state() {
        let tmp = tempfile::tempdir().expect("tmp");
        let c = chain();
        let store = open(tmp.path());
        store.init_genesis(&c.genesis, "spec").expect("genesis");
        let at_genesis = dump(&store);
        let (alice, bob) = (
            Keypair::new(secp256k1::SECP256K1, &mut rand::rng()),
            Keypair::new(secp256k1::SECP256K1, &mut rand::rng()),
        );
        let t1 = issue(&c, "Store euro", &alice, 1_000);
        let b1 = connect(&store, &c, std::slice::from_ref(&t1));
        let at_1 = dump(&store);
        let t2 = transfer(&c, &t1, &alice, &bob);
        let b2 = connect(&store, &c, std::slice::from_ref(&t2));
        let tip = store.require_tip().expect("tip");
        assert_eq!((tip.height, tip.utxo_count, tip.asset_count), (2, 1, 1));
        assert_eq!(tip.muhash.finalize(), b2.header.utxo_commitment);

        // Reads see the new state.
        let bob_script = settle_script::p2k(&bob.x_only_public_key().0);
        let coins = store.coins_by_script(&bob_script, 10).expect("scan");
        assert_eq!(coins.len(), 1);
        assert_eq!(coins[0].0, OutPoint::new(t2.txid(), 0));
        let (found, loc) = store
            .transaction(&t2.txid())
            .expect("read")
            .expect("indexed");
        assert_eq!((found, loc.height), (t2.clone(), 2));
        let spend = store
            .spend_of(&OutPoint::new(t1.txid(), 0))
            .expect("read")
            .expect("spent");
        assert_eq!((spend.txid, spend.height), (t2.txid(), 2));
        assert_eq!(store.height_of(&b1.hash()).expect("read"), Some(1));
        assert_eq!(store.block_at(2).expect("read"), Some(b2.clone()));

        assert_eq!(store.disconnect_tip().expect("disconnect 2"), b2);
        assert_eq!(dump(&store), at_1);
        assert_eq!(store.disconnect_tip().expect("disconnect 1"), b1);
        assert_eq!(dump(&store), at_genesis);
        assert!(matches!(
            store.disconnect_tip(),
            Err(StoreError::DisconnectGenesis)
        ));
        drop(store);
        let reopened = open(tmp.path());
        assert_eq!(reopened.require_tip().expect("tip").height, 0);
    }

    #[test]
    fn a_block_that_does_not_extend_the_tip_is_refused() {
        let tmp = tempfile::tempdir().expect("tmp");
        let c = chain();
        let store = open(tmp.path());
        store.init_genesis(&c.genesis, "spec").expect("genesis");
        let alice = Keypair::new(secp256k1::SECP256K1, &mut rand::rng());
        let b1 = connect(&store, &c, &[issue(&c, "Tip euro", &alice, 5)]);
        let effects = BlockEffects {
            block_hash: b1.hash(),
            height: 1,
            txids: Vec::new(),
            spent: Vec::new(),
            created: Vec::new(),
            assets: Vec::new(),
            muhash: MuHash3072::new(),
            utxo_commitment: [0; 32],
            membership: None,
        };
        assert!(matches!(
            store.connect_block(&b1, &effects),
            Err(StoreError::NotOnTip { .. })
        ));
    }

    #[test]
    fn the_undo_record_round_trips() {
        let c = chain();
        let alice = Keypair::new(secp256k1::SECP256K1, &mut rand::rng());
        let t = issue(&c, "Undo euro", &alice, 7);
        let coin = Coin {
            output: t.outputs[0].clone(),
            height: 3,
            time_ms: 4,
        };
        let record = UndoRecord {
            spent: vec![(OutPoint::new(t.txid(), 0), coin)],
            assets_before: vec![(AssetId([1; 32]), None)],
            muhash_before: MuHash3072::new(),
            utxo_count_before: 9,
            asset_count_before: 2,
        };
        let bytes = serialize(&record);
        assert_eq!(deserialize::<UndoRecord>(&bytes).expect("decode"), record);
        assert!(deserialize::<UndoRecord>(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn offsets_match_the_canonical_block_encoding() {
        let c = chain();
        let alice = Keypair::new(secp256k1::SECP256K1, &mut rand::rng());
        let mut block = c.genesis.block.clone();
        block.transactions = vec![
            issue(&c, "Offset a", &alice, 1),
            issue(&c, "Offset b", &alice, 2),
        ];
        let (bytes, ranges) = encode_block_with_offsets(&block);
        assert_eq!(bytes, serialize(&block));
        for (tx, (off, len)) in block.transactions.iter().zip(ranges) {
            let slice = &bytes[off as usize..(off + len) as usize];
            assert_eq!(deserialize::<Transaction>(slice).expect("tx"), *tx);
        }
    }

    #[test]
    fn candidates_survive_reopening_by_height_and_are_pruned_with_their_height() {
        let tmp = tempfile::tempdir().expect("tmp");
        {
            let store = open(tmp.path());
            store
                .put_candidate(11, &BlockHash([0xb; 32]), b"block B")
                .expect("put");
            store
                .put_candidate(11, &BlockHash([0xa; 32]), b"block A")
                .expect("put");
            store
                .put_candidate(12, &BlockHash([0xc; 32]), b"block C")
                .expect("put");
            store
                .put_candidate(11, &BlockHash([0xa; 32]), b"block A")
                .expect("storing the same block again is harmless");
        }
        let store = open(tmp.path());
        assert_eq!(
            store.candidates_at(11).expect("read"),
            vec![b"block A".to_vec(), b"block B".to_vec()],
            "both blocks of height 11, in hash order, nothing of 12"
        );
        assert!(store.candidates_at(10).expect("read").is_empty());
        store.prune_candidates(11).expect("prune");
        assert!(store.candidates_at(11).expect("read").is_empty());
        assert_eq!(
            store.candidates_at(12).expect("read"),
            vec![b"block C".to_vec()]
        );
        // Other meta records are untouched by the range delete.
        assert_eq!(store.chain_id().expect("chain id"), None);
        store.prune_candidates(12).expect("prune");
        assert!(store.candidates_at(12).expect("read").is_empty());
    }
}
