//! The node core: the chainstate and the mempool, tied together, with the two chain
//! changes consensus asks for (build the next block, connect a decided one).
//! Everything here is synchronous; the async edges (RPC server, consensus, signals)
//! live in `daemon.rs` and `chain_app.rs`.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use secp256k1::Keypair;
use settle_assets::hash::{ChainId, Txid};
use settle_assets::transaction::Transaction;
use settle_chain::{
    Block, BlockEffects, BuiltBlock, ChainSpec, ChainView, Membership, MembershipState,
    RejectClass, Rejection, SkippedTx, TxContext, build_block, validate_transaction,
};

use tokio::sync::{Notify, mpsc};

use crate::config::Config;
use crate::mempool::{Accepted, DOUBLE_SPEND, Mempool, MempoolRejection, RemovalReason};
use crate::metrics::{Gauges, Metrics};
use crate::script_cache::ScriptCache;
use crate::store::{ChainStore, PrefetchedView, StoreError, StoreOptions, Tip};

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
}

/// Why building a block failed. Never a verdict on a transaction.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error(transparent)]
    Store(#[from] StoreError),
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
            Err(SubmitError::Store(_)) => {}
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
        let txid = tx.txid();
        let mut mempool = self.mempool();
        if mempool.contains(&txid) {
            return Ok(Accepted::AlreadyKnown(txid));
        }
        if self.store.tx_location(&txid)?.is_some() {
            return Err(SubmitError::AlreadyInChain(txid));
        }
        let tip = self.tip()?;
        mempool
            .pre_check(&tx, tx.size_bytes())
            .map_err(SubmitError::Rejected)?;
        let tx = Arc::new(tx);
        let base = PrefetchedView::new(&self.store, &tip, std::slice::from_ref(&*tx))?;
        // A coin that is neither in the UTXO set nor created by a waiting transaction may
        // have been spent by a confirmed one: name it, rather than call the coin missing.
        for (i, input) in tx.inputs.iter().enumerate() {
            if input.prevout.is_null()
                || base.coin(&input.prevout).is_some()
                || mempool.created_coin(&input.prevout).is_some()
            {
                continue;
            }
            if let Some(spend) = self.store.spend_of(&input.prevout)? {
                return Err(SubmitError::Rejected(MempoolRejection {
                    rejection: Rejection::conflict(
                        DOUBLE_SPEND,
                        format!(
                            "input {i} spends {}, which confirmed transaction {} already spent in block {}",
                            input.prevout, spend.txid, spend.height
                        ),
                    ),
                    conflicting_txid: Some(spend.txid),
                }));
            }
        }
        let ctx = self.context(&tip);
        let checked = mempool.check(&tx, &base, &ctx, |t, v, c| validate_transaction(t, v, c));
        if let Some(e) = base.take_error() {
            // The verdict was reached on a failed read: report the storage error only.
            return Err(SubmitError::Store(e));
        }
        let effects = checked.map_err(SubmitError::Rejected)?;
        self.script_cache.insert(tx.wtxid());
        if insert {
            mempool.insert(Arc::clone(&tx), effects, tip.height, now_ms());
            Ok(Accepted::New(txid))
        } else {
            Ok(Accepted::New(txid))
        }
    }

    /// Builds the block after the tip from the mempool, with `proposer` as its
    /// proposer. Candidates that are no longer valid (consensus or conflict, not merely
    /// left out for lack of room) leave the mempool. The block's certificate is empty:
    /// consensus decides it.
    pub fn build_next_block(&self, proposer: [u8; 32]) -> Result<BuiltBlock, ProduceError> {
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
        let mut mempool = self.mempool();
        self.store.connect_block(block, effects)?;
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
        }
    }
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
}
