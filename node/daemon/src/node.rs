//! The node core: the chainstate and the mempool, tied together, with the two chain
//! changes consensus asks for (build the next block, connect a decided one).
//! Everything here is synchronous; the async edges (RPC server, consensus, signals)
//! live in `daemon.rs` and `chain_app.rs`.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use secp256k1::Keypair;
use settle_assets::hash::{ChainId, Txid};
use settle_assets::transaction::Transaction;
use settle_chain::{
    Block, BlockEffects, BuiltBlock, ChainSpec, ChainView, Membership, MembershipState,
    RejectClass, Rejection, SkippedTx, TxContext, build_block, validate_transaction,
};

use tokio::sync::{Notify, mpsc};

use crate::config::Config;
use crate::mempool::{
    Accepted, DOUBLE_SPEND, Mempool, MempoolRejection, MempoolSlice, RemovalReason,
};
use crate::metrics::{Gauges, Metrics};
use crate::script_cache::ScriptCache;
use crate::store::{
    ChainStore, PrefetchedView, SpendRecord, StoreError, StoreOptions, StoreSnapshot, Tip,
};

/// Attempts at a multi-part read without holding the mempool lock over the store read
/// before the last one, which holds it (blocks connecting faster than one read is fast).
const MAX_OPTIMISTIC_READS: usize = 3;
/// Admission attempts with the scripts verified outside the mempool lock; the last one
/// holds the lock throughout, so a stream of blocks cannot starve a transaction.
const MAX_ADMISSION_ATTEMPTS: usize = 3;
/// While the disk is full, a decided block's write is tried again at most this often
/// (consensus asks again at once after each failure).
const STORAGE_RETRY_INTERVAL_MS: u64 = 1_000;
/// Free bytes on the chainstate's file system below which the disk counts as still
/// full: a block write needs room for its batch and RocksDB's log.
const MIN_FREE_BYTES_TO_RESUME: u64 = 8 * 1024 * 1024;

/// Test hook: whole seconds (may be negative) added to this node's clock, so that a
/// functional test can run a validator whose clock is wrong (`tests/tests/feature_clock.rs`).
/// Unset means 0; never set it in production.
pub const CLOCK_OFFSET_ENV: &str = "SETTLE_CLOCK_OFFSET_SECS";

/// The [`CLOCK_OFFSET_ENV`] offset in milliseconds, read once; an unparsable value is an
/// error that `settled` reports at start-up.
pub fn clock_offset_ms() -> Result<i64, String> {
    static OFFSET: std::sync::OnceLock<Result<i64, String>> = std::sync::OnceLock::new();
    OFFSET
        .get_or_init(|| match std::env::var(CLOCK_OFFSET_ENV) {
            Err(_) => Ok(0),
            Ok(text) => text
                .trim()
                .parse::<i32>()
                .map(|secs| i64::from(secs) * 1000)
                .map_err(|e| {
                    format!("{CLOCK_OFFSET_ENV}={text:?} is not a whole number of seconds: {e}")
                }),
        })
        .clone()
}

/// Milliseconds since the UNIX epoch by the local clock (shifted by the test hook
/// [`CLOCK_OFFSET_ENV`] when set). Used for block times this node proposes, mempool
/// ages and the vote-time clock bound (`spec/consensus.md`, "Clock"), never to judge
/// the validity of a decided block.
pub fn now_ms() -> u64 {
    let system = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0);
    system.saturating_add_signed(clock_offset_ms().unwrap_or(0))
}

/// Why a submitted transaction was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    #[error("transaction rejected ({}): {}", .0.rejection.class, .0.rejection)]
    Rejected(MempoolRejection),
    #[error("transaction {0} is already confirmed")]
    AlreadyInChain(Txid),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The disk is full: nothing is admitted until the node can write again.
    #[error("{0}")]
    StorageFull(String),
}

/// Why building a block failed. Never a verdict on a transaction.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The disk is full: this node proposes nothing until it can store blocks again.
    #[error("{0}")]
    StorageFull(String),
}

/// Why the node stopped writing: its disk filled up (`spec/storage.md`, "A full disk").
#[derive(Clone, Debug)]
pub struct StorageHalt {
    /// When the first write failed, UNIX ms.
    pub since_ms: u64,
    /// The database's error.
    pub error: String,
    /// The disk has room again but the database still refuses writes: only a restart
    /// (which reopens it) resumes.
    pub needs_restart: bool,
    /// Consensus stopped because this validator could not durably record what it was
    /// about to sign or decide: nothing resumes it but a restart.
    pub consensus_stopped: bool,
}

impl StorageHalt {
    /// What the node says about it (log, RPC warnings, refusals).
    pub fn describe(&self) -> String {
        if self.consensus_stopped {
            format!(
                "storage full: consensus stopped on this node because it could not durably \
                 record what it signs or decides ({}); it admits no transaction, connects no \
                 block and serves reads; free space, then restart settled to resume",
                self.error
            )
        } else if self.needs_restart {
            format!(
                "the disk has room again, but the database still refuses writes ({}): restart \
                 settled to resume; until then it admits no transaction and connects no block",
                self.error
            )
        } else {
            format!(
                "storage full: the database cannot write ({}); the node admits no transaction \
                 and connects no block until space is freed, keeps its mempool in memory and \
                 serves reads, and resumes by itself",
                self.error
            )
        }
    }
}

/// The node core.
#[derive(Debug)]
pub struct Node {
    pub store: ChainStore,
    pub spec: ChainSpec,
    pub chain_id: ChainId,
    pub config: Config,
    pub metrics: Metrics,
    validator: Option<Keypair>,
    /// The mempool; its lock also orders mempool changes against block connection, so a
    /// transaction is never judged against half of a block.
    mempool: Mutex<Mempool>,
    /// Notified whenever a transaction enters the mempool (wakes a waiting proposer).
    pub tx_arrived: Arc<Notify>,
    /// Where transactions submitted here (not those gossiped to us) go to be gossiped.
    relay: OnceLock<mpsc::Sender<Arc<Transaction>>>,
    /// The running consensus node, once started.
    pub consensus: OnceLock<Arc<settle_consensus::NodeHandle>>,
    /// Transactions whose scripts verified on admission: a block of them is not
    /// verified again.
    pub script_cache: ScriptCache,
    /// The membership that decides the block after the tip. The network layer watches
    /// it to admit and drop peers when a membership change takes effect.
    membership: tokio::sync::watch::Sender<Membership>,
    /// Set while the disk is full.
    halt: Mutex<Option<StorageHalt>>,
    /// When a block write was last tried while halted (retries are paced).
    last_halted_write: Mutex<Option<Instant>>,
}

impl Node {
    /// Opens the chainstate at `store_path` for `spec`, writing its genesis block into a
    /// fresh database.
    pub fn open(
        store_path: &std::path::Path,
        spec: ChainSpec,
        spec_toml: &str,
        config: Config,
        validator: Option<Keypair>,
    ) -> Result<Node, StoreError> {
        let genesis = spec.genesis().map_err(|e| StoreError::Corrupt {
            what: "chain spec".into(),
            detail: e.to_string(),
        })?;
        let store = ChainStore::open(
            store_path,
            StoreOptions {
                sync_writes: config.storage.sync_writes,
            },
        )?;
        store.init_genesis(&genesis, spec_toml)?;
        let tip = store.require_tip()?;
        let next = tip.height + 1;
        let in_force = tip.membership.as_ref().map_or_else(
            || spec.genesis_membership(),
            |m| m.in_force_at(next).clone(),
        );
        Ok(Node {
            membership: tokio::sync::watch::Sender::new(in_force),
            script_cache: ScriptCache::default(),
            store,
            chain_id: genesis.chain_id,
            mempool: Mutex::new(Mempool::new(config.mempool.clone())),
            spec,
            config,
            metrics: Metrics::default(),
            validator,
            tx_arrived: Arc::new(Notify::new()),
            relay: OnceLock::new(),
            consensus: OnceLock::new(),
            halt: Mutex::new(None),
            last_halted_write: Mutex::new(None),
        })
    }

    pub fn mempool(&self) -> MutexGuard<'_, Mempool> {
        // Mempool updates keep its indexes consistent at every step that can panic, so a
        // poisoned lock still guards valid data.
        self.mempool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// This node's validator key pair (`keys/validator.key`), if it holds one. It signs
    /// only at heights where the key is in the validator set in force.
    pub fn validator(&self) -> Option<&Keypair> {
        self.validator.as_ref()
    }

    /// The membership state after the block at `height` (the spec's genesis one until
    /// a block changes it).
    pub fn membership_after(&self, height: u64) -> Result<MembershipState, StoreError> {
        Ok(self
            .store
            .membership_after(height)?
            .unwrap_or_else(|| MembershipState::settled(self.spec.genesis_membership())))
    }

    /// The membership that decides the block at `height`: the validator set whose
    /// certificate it needs, and the nodes that may connect meanwhile.
    pub fn membership_for(&self, height: u64) -> Result<Membership, StoreError> {
        Ok(self
            .membership_after(height.saturating_sub(1))?
            .in_force_at(height)
            .clone())
    }

    /// Follows the membership in force for the next block as blocks connect.
    pub fn watch_membership(&self) -> tokio::sync::watch::Receiver<Membership> {
        self.membership.subscribe()
    }

    pub fn tip(&self) -> Result<Tip, StoreError> {
        self.store.require_tip()
    }

    /// The storage halt, while the disk is full.
    pub fn storage_halt(&self) -> Option<StorageHalt> {
        let mut halt = self.halt.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(h) = halt.as_mut()
            && h.consensus_stopped
        {
            // Stopped consensus never retries a write that could notice the space.
            h.needs_restart = self.space_returned();
        }
        halt
    }

    /// Consensus stopped on a full disk (see [`StorageHalt::consensus_stopped`]):
    /// admission stops too and the node says so, once, loudly.
    pub fn halt_consensus_for_full_disk(&self, reason: &str) {
        let h = StorageHalt {
            since_ms: now_ms(),
            error: reason.to_string(),
            needs_restart: false,
            consensus_stopped: true,
        };
        tracing::error!(path = %self.store.path().display(), "{}", h.describe());
        *self.halt.lock().unwrap_or_else(|e| e.into_inner()) = Some(h);
    }

    /// Conditions an operator must act on, for `getblockchaininfo.warnings`.
    pub fn warnings(&self) -> Vec<String> {
        self.storage_halt()
            .map(|h| h.describe())
            .into_iter()
            .collect()
    }

    /// Records a write that failed for lack of space; says so once, loudly.
    fn enter_halt(&self, error: &StoreError) {
        let mut halt = self.halt.lock().unwrap_or_else(|e| e.into_inner());
        let space_back = self.space_returned();
        match halt.as_mut() {
            None => {
                let h = StorageHalt {
                    since_ms: now_ms(),
                    error: error.to_string(),
                    needs_restart: false,
                    consensus_stopped: false,
                };
                tracing::error!(path = %self.store.path().display(), "{}", h.describe());
                *halt = Some(h);
            }
            Some(h) if space_back && !h.needs_restart => {
                h.needs_restart = true;
                tracing::error!(path = %self.store.path().display(), "{}", h.describe());
            }
            Some(_) => {}
        }
    }

    /// Clears the halt after a block was written again.
    fn leave_halt(&self) {
        if let Some(h) = self.halt.lock().unwrap_or_else(|e| e.into_inner()).take() {
            tracing::warn!(
                halted_for_ms = now_ms().saturating_sub(h.since_ms),
                "storage writable again: connecting blocks and admitting transactions"
            );
        }
    }

    /// Free bytes on the chainstate's file system, if it can be asked.
    fn free_bytes(&self) -> Option<u64> {
        fs4::available_space(self.store.path()).ok()
    }

    /// Whether the chainstate's file system has room for blocks again.
    fn space_returned(&self) -> bool {
        self.free_bytes()
            .is_some_and(|b| b >= MIN_FREE_BYTES_TO_RESUME)
    }

    /// While halted, waits until the last write attempt is `STORAGE_RETRY_INTERVAL_MS`
    /// old, so a full disk costs one attempt (and one log line) a second, not a spin.
    fn pace_halted_write(&self) {
        if self.storage_halt().is_none() {
            return;
        }
        let wait = {
            let mut last = self
                .last_halted_write
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let interval = Duration::from_millis(STORAGE_RETRY_INTERVAL_MS);
            let wait = last.map_or(Duration::ZERO, |t| interval.saturating_sub(t.elapsed()));
            *last = Some(Instant::now() + wait);
            wait
        };
        std::thread::sleep(wait);
    }

    /// Runs a read of several parts on one picture of the node: `chain` reads a store
    /// snapshot (without the mempool lock, so a long scan delays no admission), then
    /// `pool` reads the mempool at the same tip. Blocks connect under the mempool lock,
    /// so the tip seen under that lock tells whether the two parts agree; if a block
    /// connected in between, the read starts again, and the last attempt reads the
    /// store under the lock.
    pub fn consistent_read<S, T, E: From<StoreError>>(
        &self,
        mut chain: impl FnMut(&StoreSnapshot<'_>) -> Result<S, E>,
        pool: impl FnOnce(S, &StoreSnapshot<'_>, &Mempool) -> Result<T, E>,
    ) -> Result<T, E> {
        for _ in 1..MAX_OPTIMISTIC_READS {
            let snapshot = self.store.snapshot()?;
            let part = chain(&snapshot)?;
            let mempool = self.mempool();
            if self
                .store
                .tip()
                .is_some_and(|t| t.hash == snapshot.tip.hash)
            {
                return pool(part, &snapshot, &mempool);
            }
        }
        let mempool = self.mempool();
        let snapshot = self.store.snapshot()?;
        let part = chain(&snapshot)?;
        pool(part, &snapshot, &mempool)
    }

    /// The context a transaction is judged in: the block after the tip.
    fn context(&self, tip: &Tip) -> TxContext<'_> {
        TxContext {
            chain_id: self.chain_id,
            spec: &self.spec,
            height: tip.height + 1,
            time_ms: now_ms().max(tip.header.time_ms + 1),
        }
    }

    /// Sends transactions submitted to this node to `relay` for gossip (set once).
    pub fn set_relay(&self, relay: mpsc::Sender<Arc<Transaction>>) {
        let _ = self.relay.set(relay);
    }

    /// Validates `tx` fully and adds it to the mempool; a new transaction is gossiped
    /// to the network.
    pub fn submit(&self, tx: Transaction) -> Result<Accepted, SubmitError> {
        self.submit_from(tx, true)
    }

    /// Like [`Node::submit`] for a transaction a peer gossiped: gossip relays it
    /// further by itself, so it is not published again.
    pub fn submit_gossiped(&self, tx: Transaction) -> Result<Accepted, SubmitError> {
        self.submit_from(tx, false)
    }

    fn submit_from(&self, tx: Transaction, publish: bool) -> Result<Accepted, SubmitError> {
        let relayed = publish.then(|| Arc::new(tx.clone()));
        let result = self.check_or_submit(tx, true);
        if let Ok(Accepted::New(_)) = &result {
            self.tx_arrived.notify_one();
            if let (Some(relay), Some(tx)) = (self.relay.get(), relayed)
                && relay.try_send(tx).is_err()
            {
                tracing::warn!("the gossip queue is full; a transaction is not relayed");
            }
        }
        match &result {
            Ok(Accepted::New(_)) => Metrics::inc(&self.metrics.txs_accepted, 1),
            Ok(Accepted::AlreadyKnown(_)) => {}
            Err(SubmitError::Rejected(r)) => self
                .metrics
                .rejected(r.rejection.class.as_str(), r.rejection.code),
            Err(SubmitError::AlreadyInChain(_)) => {
                self.metrics.rejected("policy", "already-confirmed")
            }
            Err(SubmitError::Store(_) | SubmitError::StorageFull(_)) => {}
        }
        result
    }

    /// Runs every check `submit` runs, without adding the transaction.
    pub fn test_accept(&self, tx: Transaction) -> Result<Txid, SubmitError> {
        self.check_or_submit(tx, false).map(|a| match a {
            Accepted::New(t) | Accepted::AlreadyKnown(t) => t,
        })
    }

    fn check_or_submit(&self, tx: Transaction, insert: bool) -> Result<Accepted, SubmitError> {
        if let Some(h) = self.storage_halt() {
            return Err(SubmitError::StorageFull(h.describe()));
        }
        let txid = tx.txid();
        if self.mempool().contains(&txid) {
            return Ok(Accepted::AlreadyKnown(txid));
        }
        if self.store.tx_location(&txid)?.is_some() {
            return Err(SubmitError::AlreadyInChain(txid));
        }
        let tx = Arc::new(tx);
        for _ in 1..MAX_ADMISSION_ATTEMPTS {
            if let Some(verdict) = self.try_admit(&tx, insert, false)? {
                return Ok(verdict);
            }
        }
        // Holding the lock throughout, nothing can change under the attempt: it decides.
        self.try_admit(&tx, insert, true)?.ok_or_else(|| {
            SubmitError::Rejected(MempoolRejection::from(Rejection::policy(
                "try-again",
                "the chain moved during every admission attempt; send the transaction again",
            )))
        })
    }

    /// One admission attempt. The coins are read before the mempool lock is taken, and
    /// the scripts verified with it released, against a copy of the part of the mempool
    /// the transaction reads; then, under the lock, that nothing it was judged on has
    /// changed (the tip, its waiting parents, the assets it names, conflicts, limits).
    /// `None` when something had: the caller tries again. With `hold_lock` the lock is
    /// held throughout, so the attempt always decides.
    fn try_admit(
        &self,
        tx: &Arc<Transaction>,
        insert: bool,
        hold_lock: bool,
    ) -> Result<Option<Accepted>, SubmitError> {
        let txid = tx.txid();
        let held = hold_lock.then(|| self.mempool());
        let tip = self.tip()?;
        let base = PrefetchedView::new(&self.store, &tip, std::slice::from_ref(&**tx))?;
        let confirmed_spends = self.confirmed_spends(tx, &base)?;
        let take_slice =
            |m: &Mempool| -> Result<Result<MempoolSlice, Option<Accepted>>, SubmitError> {
                if m.contains(&txid) {
                    // Admitted meanwhile by a concurrent submission of the same bytes.
                    return Ok(Err(Some(Accepted::AlreadyKnown(txid))));
                }
                // Under the lock no block connects: the coins read above belong to this tip.
                if !self.tip_is(&tip) {
                    return Ok(Err(None));
                }
                m.pre_check(tx, tx.size_bytes())
                    .map_err(SubmitError::Rejected)?;
                reject_confirmed_spends(tx, &confirmed_spends, m)?;
                Ok(Ok(m.slice_for(tx)))
            };
        let slice = match &held {
            Some(m) => take_slice(m)?,
            None => take_slice(&self.mempool())?,
        };
        let slice = match slice {
            Ok(slice) => slice,
            Err(decided) => return Ok(decided),
        };
        let checked = validate_transaction(tx, &slice.view(&base), &self.context(&tip));
        if let Some(e) = base.take_error() {
            // The verdict was reached on a failed read: report the storage error only.
            return Err(SubmitError::Store(e));
        }
        let effects = checked.map_err(|rejection| {
            let conflicting_txid = (rejection.code == "duplicate-asset")
                .then(|| slice.creator_of_issued_asset(tx))
                .flatten();
            SubmitError::Rejected(MempoolRejection {
                rejection,
                conflicting_txid,
            })
        })?;
        let mut mempool = match held {
            Some(m) => m,
            None => self.mempool(),
        };
        if !self.tip_is(&tip) || !mempool.slice_is_current(tx, &slice) {
            return Ok(None);
        }
        if mempool.contains(&txid) {
            return Ok(Some(Accepted::AlreadyKnown(txid)));
        }
        mempool
            .pre_check(tx, tx.size_bytes())
            .map_err(SubmitError::Rejected)?;
        self.script_cache.insert(tx.wtxid());
        if insert {
            mempool.insert(Arc::clone(tx), effects, tip.height, now_ms());
        }
        Ok(Some(Accepted::New(txid)))
    }

    /// Whether the store's tip is still `tip`.
    fn tip_is(&self, tip: &Tip) -> bool {
        self.store.tip().is_some_and(|t| t.hash == tip.hash)
    }

    /// For each input whose coin is not in the UTXO set, the confirmed transaction that
    /// spent it, if one did (read before the mempool lock is taken).
    fn confirmed_spends(
        &self,
        tx: &Transaction,
        base: &PrefetchedView<'_>,
    ) -> Result<Vec<(usize, SpendRecord)>, StoreError> {
        let mut out = Vec::new();
        for (i, input) in tx.inputs.iter().enumerate() {
            if input.prevout.is_null() || base.coin(&input.prevout).is_some() {
                continue;
            }
            if let Some(spend) = self.store.spend_of(&input.prevout)? {
                out.push((i, spend));
            }
        }
        Ok(out)
    }

    /// Builds the block after the tip from the mempool, with `proposer` as its
    /// proposer. Candidates that are no longer valid (consensus or conflict, not merely
    /// left out for lack of room) leave the mempool. The block's certificate is empty:
    /// consensus decides it.
    pub fn build_next_block(&self, proposer: [u8; 32]) -> Result<BuiltBlock, ProduceError> {
        // A block that cannot be stored is not proposed; once space returns, building
        // resumes and connecting it shows whether the database writes again.
        if let Some(h) = self.storage_halt()
            && !self.space_returned()
        {
            return Err(ProduceError::StorageFull(h.describe()));
        }
        let tip = self.tip()?;
        // The chain's limit, or this producer's own, lower one: a proposal must be
        // checked by every validator within the propose timeout, or its round fails.
        let max_txs =
            (self.spec.limits.max_block_txs as usize).min(self.config.producer.max_block_txs);
        let candidates: Vec<Transaction> = self
            .mempool()
            .candidates(max_txs)
            .into_iter()
            .map(|t| (*t).clone())
            .collect();
        let time_ms = now_ms().max(tip.header.time_ms + 1);
        let view = PrefetchedView::new(&self.store, &tip, &candidates)?
            .with_script_cache(&self.script_cache);
        let built = build_block(
            &tip.header,
            &candidates,
            time_ms,
            proposer,
            &view,
            &self.spec,
            &self.chain_id,
        );
        if let Some(e) = view.take_error() {
            return Err(ProduceError::Store(e));
        }
        let invalid: Vec<&SkippedTx> = built
            .skipped
            .iter()
            .filter(|s| s.rejection.class != RejectClass::Policy)
            .collect();
        if !invalid.is_empty() {
            let mut mempool = self.mempool();
            for s in invalid {
                tracing::info!(txid = %s.txid, reason = %s.rejection, "dropping a transaction that is no longer valid");
                for (_, why) in mempool.remove_with_descendants(&s.txid, RemovalReason::Invalid) {
                    self.metrics.removed(why.as_str());
                }
            }
        }
        Ok(built)
    }

    /// Connects a decided block (its certificate filled in) whose `effects` were
    /// computed on the current tip: one synced write batch, and the mempool updated
    /// under its lock so no transaction is judged against half of it.
    pub fn connect_decided(
        &self,
        block: &Block,
        effects: &BlockEffects,
    ) -> Result<Vec<(Txid, RemovalReason)>, StoreError> {
        self.pace_halted_write();
        let mut mempool = self.mempool();
        match self.store.connect_block(block, effects) {
            Ok(_) => self.leave_halt(),
            Err(e) => {
                if e.is_no_space() {
                    self.enter_halt(&e);
                }
                return Err(e);
            }
        }
        let removed = mempool.block_connected(&block.transactions, block.header.height, now_ms());
        // Counted before the lock is released, so whoever sees the block sees it counted.
        for (_, why) in &removed {
            self.metrics.removed(why.as_str());
        }
        Metrics::inc(&self.metrics.blocks_connected, 1);
        Metrics::inc(&self.metrics.txs_confirmed, block.transactions.len() as u64);
        drop(mempool);
        if let Some(pending) = effects.membership.as_ref().and_then(|m| m.pending.as_ref())
            && block
                .transactions
                .iter()
                .any(|tx| tx.txid() == pending.txid)
        {
            tracing::info!(
                txid = %pending.txid,
                activation_height = pending.activation_height,
                validators = pending.membership.validators.len(),
                permitted = pending.membership.permitted.len(),
                "membership change confirmed"
            );
        }
        let next = block.header.height + 1;
        let in_force = self.membership_for(next)?;
        self.membership.send_if_modified(|current| {
            if *current == in_force {
                return false;
            }
            tracing::info!(
                height = next,
                validators = in_force.validators.len(),
                permitted = in_force.permitted.len(),
                "a membership change takes effect"
            );
            *current = in_force;
            true
        });
        for (txid, why) in &removed {
            tracing::info!(%txid, reason = why.as_str(), "removed from the mempool");
        }
        tracing::info!(
            height = block.header.height,
            hash = %block.hash(),
            txs = block.transactions.len(),
            signatures = block.certificate.signatures.len(),
            "connected a block"
        );
        Ok(removed)
    }

    /// Drops mempool transactions past their age limit.
    pub fn expire_mempool(&self) -> Result<usize, StoreError> {
        let tip = self.tip()?;
        let removed = self.mempool().expire(tip.height, now_ms());
        for (_, why) in &removed {
            self.metrics.removed(why.as_str());
        }
        Ok(removed.len())
    }

    /// The gauges for `/metrics`.
    pub fn gauges(&self) -> Gauges {
        let tip = self.store.tip();
        let mempool = self.mempool();
        Gauges {
            height: tip.as_ref().map_or(0, |t| t.height),
            mempool_txs: mempool.len() as u64,
            mempool_bytes: mempool.bytes() as u64,
            utxo_count: tip.as_ref().map_or(0, |t| t.utxo_count),
            asset_count: tip.as_ref().map_or(0, |t| t.asset_count),
            storage_full: self.storage_halt().is_some(),
        }
    }
}

/// A coin that is neither in the UTXO set nor created by a waiting transaction, and
/// that a confirmed transaction spent: name that spend, rather than call the coin
/// missing.
fn reject_confirmed_spends(
    tx: &Transaction,
    spends: &[(usize, SpendRecord)],
    mempool: &Mempool,
) -> Result<(), SubmitError> {
    for (i, spend) in spends {
        let prevout = tx.inputs[*i].prevout;
        if mempool.created_coin(&prevout).is_some() {
            continue;
        }
        return Err(SubmitError::Rejected(MempoolRejection {
            rejection: Rejection::conflict(
                DOUBLE_SPEND,
                format!(
                    "input {i} spends {prevout}, which confirmed transaction {} already spent in block {}",
                    spend.txid, spend.height
                ),
            ),
            conflicting_txid: Some(spend.txid),
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use settle_assets::transaction::{OutPoint, TxIn};
    use settle_script::sighash::{PrecomputedTx, SighashType};

    struct Fixture {
        _tmp: tempfile::TempDir,
        node: Node,
        issuer: Keypair,
        alice: Keypair,
    }

    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().expect("tmp");
        let validator = Keypair::new(secp256k1::SECP256K1, &mut rand::rng());
        let issuer = Keypair::new(secp256k1::SECP256K1, &mut rand::rng());
        let spec = ChainSpec::dev(
            &validator.x_only_public_key().0,
            &issuer.x_only_public_key().0,
            1_700_000_000_000,
        );
        let mut config = Config::default();
        config.storage.sync_writes = false;
        let node = Node::open(
            &tmp.path().join("chainstate"),
            spec,
            "spec",
            config,
            Some(validator),
        )
        .expect("open");
        Fixture {
            _tmp: tmp,
            node,
            issuer,
            alice: Keypair::new(secp256k1::SECP256K1, &mut rand::rng()),
        }
    }

    fn issue(f: &Fixture, name: &str, units: u64) -> Transaction {
        crate::test_support::cash_issuance(
            f.node.chain_id,
            &f.issuer,
            name,
            "NODE",
            false,
            &f.alice,
            units,
        )
    }

    /// What consensus does on a one-validator chain: build, sign the precommit,
    /// connect. `None` when the block would be empty.
    fn produce(f: &Fixture) -> Result<Option<Block>, ProduceError> {
        let key = f.node.validator().expect("validator").x_only_public_key().0;
        let built = f.node.build_next_block(key.serialize())?;
        if built.block.transactions.is_empty() {
            return Ok(None);
        }
        let mut block = built.block;
        let hash = block.hash();
        let height = block.header.height;
        let keypair = f.node.validator().expect("validator");
        let sig = settle_chain::sign_precommit(keypair, &f.node.chain_id, height, 0, &hash);
        block.certificate.signatures = vec![sig];
        f.node.connect_decided(&block, &built.effects)?;
        Ok(Some(block))
    }

    fn spend(f: &Fixture, from: &Transaction) -> Transaction {
        let prev = from.outputs[0].clone();
        let mut tx = Transaction {
            version: 1,
            inputs: vec![TxIn::spending(OutPoint::new(from.txid(), 0))],
            outputs: vec![prev.clone()],
            lock_time: 0,
            expiry_height: 0,
        };
        let spent = [prev];
        let w = {
            let cache = PrecomputedTx::new(&tx, &spent, f.node.chain_id).expect("cache");
            settle_script::sign_p2k_input(&cache, 0, &f.alice, SighashType::All).expect("sign")
        };
        tx.inputs[0].witness = w;
        tx
    }

    #[test]
    fn a_submitted_transaction_is_produced_into_a_signed_block() {
        let f = fixture();
        assert!(
            produce(&f).expect("produce").is_none(),
            "nothing to include"
        );
        let tx = issue(&f, "Node euro", 10);
        assert_eq!(
            f.node.submit(tx.clone()).expect("accepted"),
            Accepted::New(tx.txid())
        );
        assert_eq!(f.node.mempool().len(), 1);
        // Its scripts verified on admission: building its block need not verify again.
        assert!(f.node.script_cache.contains(&tx.wtxid()));
        let produced = produce(&f).expect("produce").expect("a block");
        assert_eq!(
            (produced.header.height, produced.transactions.len()),
            (1, 1)
        );
        assert!(f.node.mempool().is_empty());
        let block = f.node.store.block_at(1).expect("read").expect("stored");
        block
            .certificate
            .verify_for(1, &block.hash(), &f.node.spec.validators, &f.node.chain_id)
            .expect("the certificate verifies");
        assert!(matches!(
            f.node.submit(tx.clone()),
            Err(SubmitError::AlreadyInChain(_))
        ));
        assert_eq!(
            f.node.test_accept(spend(&f, &tx)).expect("spendable"),
            spend(&f, &tx).txid()
        );
        assert!(f.node.mempool().is_empty(), "test_accept adds nothing");
    }

    #[test]
    fn a_storage_error_is_never_reported_as_an_invalid_transaction() {
        let f = fixture();
        let tx = issue(&f, "Corrupt euro", 10);
        f.node.submit(tx.clone()).expect("accepted");
        produce(&f).expect("produce").expect("block");
        let child = spend(&f, &tx);
        f.node.submit(child.clone()).expect("spend accepted");

        // The coin's stored bytes stop decoding.
        let coin = OutPoint::new(tx.txid(), 0);
        f.node
            .store
            .tamper_coin_bytes(&coin, b"garbage")
            .expect("tamper");
        let err = produce(&f).expect_err("storage error");
        assert!(
            matches!(err, ProduceError::Store(StoreError::Corrupt { .. })),
            "{err}"
        );
        assert!(
            f.node.mempool().contains(&child.txid()),
            "not dropped as invalid"
        );
        assert_eq!(f.node.tip().expect("tip").height, 1, "nothing connected");
        let again = spend(&f, &tx);
        f.node
            .mempool()
            .remove_with_descendants(&child.txid(), RemovalReason::Invalid);
        let err = f.node.submit(again).expect_err("storage error");
        assert!(matches!(err, SubmitError::Store(_)), "{err}");
        assert_eq!(
            f.node.metrics.rejected_total(),
            0,
            "no rejection was counted"
        );
    }

    #[test]
    fn two_competing_issuances_of_one_asset_are_not_both_admitted() {
        let f = fixture();
        // The same contract issued on the null outpoint twice, paying different keys:
        // one asset id, two transactions. A block could hold only one of them.
        let first = issue(&f, "Twin euro", 10);
        let bob = Keypair::new(secp256k1::SECP256K1, &mut rand::rng());
        let second = crate::test_support::cash_issuance(
            f.node.chain_id,
            &f.issuer,
            "Twin euro",
            "NODE",
            false,
            &bob,
            10,
        );
        assert_ne!(first.txid(), second.txid());
        f.node.submit(first.clone()).expect("the first issuance");
        let refused = f.node.submit(second.clone());
        assert!(
            matches!(&refused, Err(SubmitError::Rejected(r))
                if r.rejection.code == "duplicate-asset"
                    && r.conflicting_txid == Some(first.txid())),
            "refused as a duplicate naming the waiting one: {refused:?}"
        );
        assert!(matches!(
            f.node.test_accept(second.clone()),
            Err(SubmitError::Rejected(_))
        ));
        assert_eq!(f.node.mempool().len(), 1);
        f.node.mempool().check_consistency().expect("consistent");

        // Once the first leaves unconfirmed, the asset is free again.
        f.node
            .mempool()
            .remove_with_descendants(&first.txid(), RemovalReason::Invalid);
        f.node.mempool().check_consistency().expect("consistent");
        f.node.submit(second.clone()).expect("now admitted");
        let block = produce(&f).expect("produce").expect("a block");
        assert_eq!(block.transactions, vec![second]);
        // And once it is confirmed, a second issuance meets the chain's registry.
        let err = f.node.submit(first).expect_err("already issued");
        assert!(
            matches!(&err, SubmitError::Rejected(r) if r.rejection.code == "duplicate-asset"),
            "{err}"
        );
    }

    #[test]
    fn a_multi_part_read_sees_one_tip_and_the_mempool_at_that_tip() {
        let f = fixture();
        let tx = issue(&f, "Snapshot euro", 10);
        f.node.submit(tx.clone()).expect("accepted");
        let coin = OutPoint::new(tx.txid(), 0);
        // A block connects while the store part of a read runs: the read starts again
        // and never pairs the old chain with the new mempool.
        let mut calls = 0;
        let (height, in_chain, in_mempool) = f
            .node
            .consistent_read(
                |snap| {
                    calls += 1;
                    if calls == 1 {
                        produce(&f).expect("produce").expect("a block");
                    }
                    Ok::<_, StoreError>((snap.tip.height, snap.coin(&coin)?.is_some()))
                },
                |(height, in_chain), snap, m| {
                    assert_eq!(snap.tip.height, height);
                    Ok((height, in_chain, m.created_coin(&coin).is_some()))
                },
            )
            .expect("read");
        assert_eq!(calls, 2, "the first picture was thrown away");
        assert_eq!((height, in_chain, in_mempool), (1, true, false));
    }

    #[test]
    fn a_mempool_the_data_directory_cannot_take_is_saved_outside_and_read_back() {
        let f = fixture();
        let tx = issue(&f, "Saved euro", 10);
        f.node.submit(tx.clone()).expect("accepted");
        // A data directory that cannot take the file (here: it does not exist).
        let datadir = f._tmp.path().join("gone");
        let (count, path) =
            crate::mempool_file::save_for_restart(&f.node, &datadir).expect("saved somewhere");
        assert_eq!(count, 1);
        assert_eq!(path, crate::mempool_file::fallback_path(&datadir));
        assert!(!path.with_extension("tmp").exists(), "no partial file");
        let report = crate::mempool_file::restore(&f.node, &datadir);
        assert_eq!((report.accepted, report.dropped), (1, 0));
        assert!(!path.exists(), "read back once, then removed");
        assert!(f.node.mempool().contains(&tx.txid()));
    }
}
