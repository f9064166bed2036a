//! The mempool: fully validated transactions waiting for a block.
//!
//! A transaction enters only after every check a block would run (scripts included),
//! against the chain tip plus the outputs of transactions already waiting. A second spend
//! of a coin is rejected naming the transaction that holds it. Count and byte limits are
//! hard: a full mempool refuses new transactions with a "mempool full" rejection rather
//! than evicting. When a block connects, confirmed transactions leave, and so do those
//! the block made invalid (their coin was spent by another transaction, their expiry
//! height passed) together with everything that spends their outputs.
//!
//! This module holds only data and decisions; the caller supplies the chain view and does
//! the I/O.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use settle_assets::hash::{AssetId, Txid, Wtxid};
use settle_assets::transaction::{OutPoint, Transaction};
use settle_chain::{AssetInfo, ChainView, Coin, MuHash3072, Rejection, TxContext, TxEffects};

use crate::config::MempoolConfig;

/// Rejection code of a transaction refused because the mempool is at a limit.
pub const MEMPOOL_FULL: &str = "mempool-full";
/// Rejection code of a second spend of a coin (the chain crate's code for it).
pub const DOUBLE_SPEND: &str = "double-spend";

/// One waiting transaction.
#[derive(Clone, Debug)]
pub struct MempoolEntry {
    pub tx: Arc<Transaction>,
    pub txid: Txid,
    pub wtxid: Wtxid,
    pub size_bytes: usize,
    /// Tip height when it entered.
    pub entry_height: u64,
    pub entry_time_ms: u64,
    /// Waiting transactions whose outputs it spends.
    pub parents: Vec<Txid>,
    /// Insertion order: parents always come before their children.
    seq: u64,
    /// Coins it creates (burns excluded).
    created: Vec<OutPoint>,
    /// Units it issues per asset, and whether it creates the asset.
    issues: Vec<(AssetId, u128, bool)>,
}

/// What waiting transactions do to one asset's registry entry: the entry a waiting
/// issuance creates, and the units waiting issuances and reissuances add. Waiting burns
/// are not counted: a burn may still leave, and a supply limit must hold without it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PendingAsset {
    /// The waiting transaction creating the asset, and its registry entry.
    pub created: Option<(Txid, AssetInfo)>,
    /// Units issued by waiting transactions.
    pub issued: u128,
}

impl PendingAsset {
    /// The registry entry as the next block would see it after the waiting
    /// transactions, given the chain's (`base`).
    fn apply(&self, base: Option<AssetInfo>) -> Option<AssetInfo> {
        let mut info = match &self.created {
            Some((_, info)) => info.clone(),
            None => base?,
        };
        info.issued += self.issued;
        Some(info)
    }
}

/// Why a transaction left the mempool without being confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RemovalReason {
    /// A block spent one of its coins with another transaction.
    Conflict,
    /// Its expiry height passed.
    Expired,
    /// It waited longer than the configured age limit.
    TooOld,
    /// Block building found it invalid.
    Invalid,
    /// A transaction it depends on left for one of the reasons above.
    ParentRemoved,
}

impl RemovalReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RemovalReason::Conflict => "conflict",
            RemovalReason::Expired => "expired",
            RemovalReason::TooOld => "too-old",
            RemovalReason::Invalid => "invalid",
            RemovalReason::ParentRemoved => "parent-removed",
        }
    }
}

/// A refused transaction: the chain's rejection, plus the conflicting transaction when
/// the refusal is a double spend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MempoolRejection {
    pub rejection: Rejection,
    pub conflicting_txid: Option<Txid>,
}

impl From<Rejection> for MempoolRejection {
    fn from(rejection: Rejection) -> Self {
        MempoolRejection {
            rejection,
            conflicting_txid: None,
        }
    }
}

/// The waiting transactions and the indexes over them.
#[derive(Debug)]
pub struct Mempool {
    config: MempoolConfig,
    entries: HashMap<Txid, MempoolEntry>,
    /// seq -> txid, in insertion order.
    order: BTreeMap<u64, Txid>,
    /// Coin -> the waiting transaction spending it.
    spent_by: HashMap<OutPoint, Txid>,
    /// Coins created by waiting transactions.
    created: HashMap<OutPoint, Coin>,
    /// Assets waiting transactions create or issue more of.
    assets: HashMap<AssetId, PendingAsset>,
    bytes: usize,
    next_seq: u64,
}

/// A chain view with the outputs of waiting transactions on top of the chain's coins.
pub struct MempoolView<'a, V: ChainView> {
    base: V,
    created: &'a HashMap<OutPoint, Coin>,
    assets: &'a HashMap<AssetId, PendingAsset>,
}

impl<V: ChainView> std::fmt::Debug for MempoolView<'_, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MempoolView").finish_non_exhaustive()
    }
}

impl<V: ChainView> ChainView for MempoolView<'_, V> {
    fn coin(&self, outpoint: &OutPoint) -> Option<Coin> {
        match self.created.get(outpoint) {
            Some(c) => Some(c.clone()),
            None => self.base.coin(outpoint),
        }
    }
    fn asset(&self, asset: &AssetId) -> Option<AssetInfo> {
        match self.assets.get(asset) {
            Some(pending) => pending.apply(self.base.asset(asset)),
            None => self.base.asset(asset),
        }
    }
    fn utxo_muhash(&self) -> MuHash3072 {
        self.base.utxo_muhash()
    }
    fn membership(&self) -> Option<settle_chain::MembershipState> {
        self.base.membership()
    }
}

/// The part of the mempool one transaction's validation reads (the waiting coins it
/// spends, the waiting changes to assets it names), copied so that its scripts can be
/// verified without holding the mempool lock.
#[derive(Clone, Debug, Default)]
pub struct MempoolSlice {
    created: HashMap<OutPoint, Coin>,
    assets: HashMap<AssetId, PendingAsset>,
}

impl MempoolSlice {
    /// A chain view of `base` with this slice on top.
    pub fn view<V: ChainView>(&self, base: V) -> MempoolView<'_, V> {
        MempoolView {
            base,
            created: &self.created,
            assets: &self.assets,
        }
    }

    /// The waiting transaction that creates an asset `tx` issues anew, if any: a
    /// `duplicate-asset` rejection names it.
    pub fn creator_of_issued_asset(&self, tx: &Transaction) -> Option<Txid> {
        tx.inputs
            .iter()
            .filter_map(|i| i.issuance.as_ref().map(|iss| iss.asset_id(&i.prevout)))
            .find_map(|a| self.assets.get(&a).and_then(|p| p.created.as_ref()))
            .map(|(txid, _)| *txid)
    }
}

/// The outcome of a successful [`Mempool::accept`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accepted {
    New(Txid),
    /// The same transaction was already waiting.
    AlreadyKnown(Txid),
}

impl Mempool {
    pub fn new(config: MempoolConfig) -> Self {
        Mempool {
            config,
            entries: HashMap::new(),
            order: BTreeMap::new(),
            spent_by: HashMap::new(),
            created: HashMap::new(),
            assets: HashMap::new(),
            bytes: 0,
            next_seq: 0,
        }
    }

    pub fn config(&self) -> &MempoolConfig {
        &self.config
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
    pub fn bytes(&self) -> usize {
        self.bytes
    }
    pub fn get(&self, txid: &Txid) -> Option<&MempoolEntry> {
        self.entries.get(txid)
    }
    pub fn contains(&self, txid: &Txid) -> bool {
        self.entries.contains_key(txid)
    }

    /// The waiting transaction spending `outpoint`, if any.
    pub fn spender_of(&self, outpoint: &OutPoint) -> Option<Txid> {
        self.spent_by.get(outpoint).copied()
    }

    /// An unconfirmed coin created by a waiting transaction.
    pub fn created_coin(&self, outpoint: &OutPoint) -> Option<&Coin> {
        self.created.get(outpoint)
    }

    /// Every unconfirmed coin, for `listunspent`.
    pub fn created_coins(&self) -> impl Iterator<Item = (&OutPoint, &Coin)> {
        self.created.iter()
    }

    /// Entries in insertion order (parents before children).
    pub fn entries_in_order(&self) -> impl Iterator<Item = &MempoolEntry> {
        self.order.values().filter_map(|t| self.entries.get(t))
    }

    /// When the first waiting transaction (in insertion order, so the one that has
    /// waited longest) arrived, UNIX ms.
    pub fn oldest_entry_time_ms(&self) -> Option<u64> {
        self.entries_in_order().next().map(|e| e.entry_time_ms)
    }

    /// Up to `max` transactions for the next block, parents first.
    pub fn candidates(&self, max: usize) -> Vec<Arc<Transaction>> {
        self.entries_in_order()
            .take(max)
            .map(|e| Arc::clone(&e.tx))
            .collect()
    }

    /// A chain view of `base` with the waiting transactions' outputs on top.
    pub fn view<V: ChainView>(&self, base: V) -> MempoolView<'_, V> {
        MempoolView {
            base,
            created: &self.created,
            assets: &self.assets,
        }
    }

    /// Copies what validating `tx` reads of the mempool (see [`MempoolSlice`]).
    pub fn slice_for(&self, tx: &Transaction) -> MempoolSlice {
        let mut slice = MempoolSlice::default();
        for input in &tx.inputs {
            if let Some(coin) = self.created.get(&input.prevout) {
                slice.created.insert(input.prevout, coin.clone());
            }
        }
        for asset in Self::assets_named(tx) {
            if let Some(p) = self.assets.get(&asset) {
                slice.assets.insert(asset, p.clone());
            }
        }
        slice
    }

    /// Whether `slice` still shows what the mempool holds for `tx`: the waiting coins it
    /// spends are still waiting, and the assets it names have not changed.
    pub fn slice_is_current(&self, tx: &Transaction, slice: &MempoolSlice) -> bool {
        slice
            .created
            .keys()
            .all(|outpoint| self.created.contains_key(outpoint))
            && Self::assets_named(tx)
                .iter()
                .all(|a| self.assets.get(a) == slice.assets.get(a))
    }

    /// The assets `tx` issues, reissues or pays out.
    fn assets_named(tx: &Transaction) -> Vec<AssetId> {
        let mut assets: Vec<AssetId> = tx
            .inputs
            .iter()
            .filter_map(|i| i.issuance.as_ref().map(|iss| iss.asset_id(&i.prevout)))
            .chain(tx.outputs.iter().map(|o| o.asset))
            .collect();
        assets.sort();
        assets.dedup();
        assets
    }

    /// What waiting transactions do to `asset`, if anything.
    pub fn pending_asset(&self, asset: &AssetId) -> Option<&PendingAsset> {
        self.assets.get(asset)
    }

    /// Checks the limits and the waiting transactions for a conflict: what can be
    /// decided before the (costly) full validation.
    pub fn pre_check(&self, tx: &Transaction, size_bytes: usize) -> Result<(), MempoolRejection> {
        if self.entries.len() >= self.config.max_count {
            return Err(Rejection::policy(
                MEMPOOL_FULL,
                format!(
                    "mempool full: it holds {} transactions, the limit is {}",
                    self.entries.len(),
                    self.config.max_count
                ),
            )
            .into());
        }
        if self.bytes + size_bytes > self.config.max_bytes {
            return Err(Rejection::policy(
                MEMPOOL_FULL,
                format!(
                    "mempool full: it holds {} bytes, this transaction's {} would pass the limit of {}",
                    self.bytes, size_bytes, self.config.max_bytes
                ),
            )
            .into());
        }
        for (i, input) in tx.inputs.iter().enumerate() {
            if let Some(other) = self.spent_by.get(&input.prevout) {
                return Err(MempoolRejection {
                    rejection: Rejection::conflict(
                        DOUBLE_SPEND,
                        format!(
                            "input {i} spends {}, which mempool transaction {other} already spends",
                            input.prevout
                        ),
                    ),
                    conflicting_txid: Some(*other),
                });
            }
        }
        Ok(())
    }

    /// Validates `tx` with `validate` (which sees the chain plus waiting outputs) without
    /// adding it. `validate` is the chain crate's `validate_transaction` in production.
    pub fn check<V: ChainView>(
        &self,
        tx: &Transaction,
        base: V,
        ctx: &TxContext<'_>,
        validate: impl FnOnce(
            &Transaction,
            &MempoolView<'_, V>,
            &TxContext<'_>,
        ) -> Result<TxEffects, Rejection>,
    ) -> Result<TxEffects, MempoolRejection> {
        self.pre_check(tx, tx.size_bytes())?;
        let view = self.view(base);
        Ok(validate(tx, &view, ctx)?)
    }

    /// Validates `tx` as [`Mempool::check`] does and adds it.
    pub fn accept<V: ChainView>(
        &mut self,
        tx: Arc<Transaction>,
        base: V,
        ctx: &TxContext<'_>,
        now_ms: u64,
        validate: impl FnOnce(
            &Transaction,
            &MempoolView<'_, V>,
            &TxContext<'_>,
        ) -> Result<TxEffects, Rejection>,
    ) -> Result<Accepted, MempoolRejection> {
        let txid = tx.txid();
        if self.entries.contains_key(&txid) {
            return Ok(Accepted::AlreadyKnown(txid));
        }
        let effects = self.check(&tx, base, ctx, validate)?;
        self.insert(tx, effects, ctx.height.saturating_sub(1), now_ms);
        Ok(Accepted::New(txid))
    }

    /// Adds a transaction that passed [`Mempool::check`] against the current state.
    pub fn insert(
        &mut self,
        tx: Arc<Transaction>,
        effects: TxEffects,
        tip_height: u64,
        now_ms: u64,
    ) {
        let txid = effects.txid;
        debug_assert_eq!(txid, tx.txid(), "effects of another transaction");
        if self.entries.contains_key(&txid) {
            return;
        }
        let size_bytes = tx.size_bytes();
        let mut parents: Vec<Txid> = tx
            .inputs
            .iter()
            .filter(|i| self.created.contains_key(&i.prevout))
            .map(|i| i.prevout.txid)
            .collect();
        parents.sort();
        parents.dedup();
        for input in &tx.inputs {
            if !input.prevout.is_null() {
                self.spent_by.insert(input.prevout, txid);
            }
        }
        let mut created = Vec::with_capacity(effects.created.len());
        for (outpoint, coin) in effects.created {
            created.push(outpoint);
            self.created.insert(outpoint, coin);
        }
        let mut issues = Vec::new();
        for delta in effects.assets {
            if delta.issued == 0 && delta.created.is_none() {
                continue;
            }
            let pending = self.assets.entry(delta.asset).or_default();
            pending.issued += delta.issued;
            let creates = delta.created.is_some();
            if let Some(info) = delta.created {
                pending.created = Some((txid, info));
            }
            issues.push((delta.asset, delta.issued, creates));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.order.insert(seq, txid);
        self.bytes += size_bytes;
        self.entries.insert(
            txid,
            MempoolEntry {
                wtxid: effects.wtxid,
                tx,
                txid,
                size_bytes,
                entry_height: tip_height,
                entry_time_ms: now_ms,
                parents,
                seq,
                created,
                issues,
            },
        );
    }

    /// Removes one entry and its indexes (not its children). Returns it.
    fn remove_one(&mut self, txid: &Txid) -> Option<MempoolEntry> {
        let entry = self.entries.remove(txid)?;
        self.order.remove(&entry.seq);
        self.bytes -= entry.size_bytes;
        for input in &entry.tx.inputs {
            if self.spent_by.get(&input.prevout) == Some(txid) {
                self.spent_by.remove(&input.prevout);
            }
        }
        for outpoint in &entry.created {
            self.created.remove(outpoint);
        }
        for (asset, issued, creates) in &entry.issues {
            if let Some(pending) = self.assets.get_mut(asset) {
                pending.issued -= issued;
                if *creates {
                    pending.created = None;
                }
                if pending.created.is_none() && pending.issued == 0 {
                    self.assets.remove(asset);
                }
            }
        }
        Some(entry)
    }

    /// Removes `txid` and every waiting transaction that depends on it.
    pub fn remove_with_descendants(
        &mut self,
        txid: &Txid,
        reason: RemovalReason,
    ) -> Vec<(Txid, RemovalReason)> {
        let mut removed = Vec::new();
        let mut stack = vec![(*txid, reason)];
        while let Some((t, why)) = stack.pop() {
            let Some(entry) = self.remove_one(&t) else {
                continue;
            };
            removed.push((t, why));
            for vout in 0..entry.tx.outputs.len() {
                let outpoint = OutPoint::new(
                    t,
                    u32::try_from(vout).expect("output count bounded by MAX_TX_OUTPUTS"),
                );
                if let Some(child) = self.spent_by.get(&outpoint) {
                    stack.push((*child, RemovalReason::ParentRemoved));
                }
            }
        }
        removed
    }

    /// Updates the mempool after `block_txs` were confirmed at `height`: confirmed
    /// transactions leave; so do waiting transactions that spend a coin the block spent,
    /// those whose expiry height is below the next block's height, those older than the
    /// age limit, and everything depending on them. Returns the (txid, reason) of each
    /// transaction removed unconfirmed.
    pub fn block_connected(
        &mut self,
        block_txs: &[Transaction],
        height: u64,
        now_ms: u64,
    ) -> Vec<(Txid, RemovalReason)> {
        let confirmed: HashSet<Txid> = block_txs.iter().map(Transaction::txid).collect();
        for txid in &confirmed {
            // A confirmed transaction's children stay: its outputs are now chain coins.
            self.remove_one(txid);
        }
        let mut removed = Vec::new();
        for tx in block_txs {
            for input in &tx.inputs {
                if input.prevout.is_null() {
                    continue;
                }
                if let Some(other) = self.spent_by.get(&input.prevout).copied()
                    && !confirmed.contains(&other)
                {
                    removed.extend(self.remove_with_descendants(&other, RemovalReason::Conflict));
                }
            }
        }
        removed.extend(self.expire(height, now_ms));
        removed
    }

    /// Removes transactions that can no longer be included after a tip at `tip_height`
    /// (expiry height passed) or that waited longer than the age limit.
    pub fn expire(&mut self, tip_height: u64, now_ms: u64) -> Vec<(Txid, RemovalReason)> {
        let max_age_ms = self.config.expiry_secs.saturating_mul(1000);
        let doomed: Vec<(Txid, RemovalReason)> = self
            .entries
            .values()
            .filter_map(|e| {
                let expiry = u64::from(e.tx.expiry_height);
                if expiry != 0 && expiry < tip_height + 1 {
                    Some((e.txid, RemovalReason::Expired))
                } else if now_ms.saturating_sub(e.entry_time_ms) > max_age_ms {
                    Some((e.txid, RemovalReason::TooOld))
                } else {
                    None
                }
            })
            .collect();
        let mut removed = Vec::new();
        for (txid, reason) in doomed {
            removed.extend(self.remove_with_descendants(&txid, reason));
        }
        removed
    }

    /// Checks the indexes agree with the entries (for tests and debug assertions).
    pub fn check_consistency(&self) -> Result<(), String> {
        let bytes: usize = self.entries.values().map(|e| e.size_bytes).sum();
        if bytes != self.bytes {
            return Err(format!("bytes {} but entries sum to {bytes}", self.bytes));
        }
        if self.order.len() != self.entries.len() {
            return Err("order index and entries differ in length".into());
        }
        for (outpoint, txid) in &self.spent_by {
            let Some(e) = self.entries.get(txid) else {
                return Err(format!("{outpoint} spent by missing {txid}"));
            };
            if !e.tx.inputs.iter().any(|i| i.prevout == *outpoint) {
                return Err(format!("{txid} does not spend {outpoint}"));
            }
        }
        for outpoint in self.created.keys() {
            if !self.entries.contains_key(&outpoint.txid) {
                return Err(format!("created coin {outpoint} of a missing transaction"));
            }
        }
        let mut issued: HashMap<AssetId, (u128, Option<Txid>)> = HashMap::new();
        for e in self.entries.values() {
            for (asset, units, creates) in &e.issues {
                let slot = issued.entry(*asset).or_default();
                slot.0 += units;
                if *creates {
                    slot.1 = Some(e.txid);
                }
            }
        }
        issued.retain(|_, (units, creator)| *units > 0 || creator.is_some());
        let index: HashMap<AssetId, (u128, Option<Txid>)> = self
            .assets
            .iter()
            .map(|(a, p)| (*a, (p.issued, p.created.as_ref().map(|c| c.0))))
            .collect();
        if issued != index {
            return Err("the pending asset index disagrees with the entries".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use settle_assets::Amount;
    use settle_assets::transaction::{TxIn, TxOut};
    use settle_chain::spec::ChainSpec;

    /// A chain of plain coins; the stand-in validation only checks that inputs exist.
    #[derive(Default)]
    struct Coins(HashMap<OutPoint, Coin>);

    impl ChainView for Coins {
        fn coin(&self, outpoint: &OutPoint) -> Option<Coin> {
            self.0.get(outpoint).cloned()
        }
        fn asset(&self, _: &AssetId) -> Option<AssetInfo> {
            None
        }
        fn utxo_muhash(&self) -> MuHash3072 {
            MuHash3072::new()
        }
    }

    fn out(units: u64) -> TxOut {
        TxOut {
            asset: AssetId([1; 32]),
            amount: Amount::from_units(units).expect("amount"),
            script_pubkey: vec![0x51],
        }
    }

    fn coin(units: u64) -> Coin {
        Coin {
            output: out(units),
            height: 1,
            time_ms: 1,
        }
    }

    fn tx(inputs: &[OutPoint], n_out: usize, expiry_height: u32, tag: u32) -> Transaction {
        Transaction {
            version: 1,
            inputs: inputs.iter().map(|p| TxIn::spending(*p)).collect(),
            outputs: (0..n_out).map(|_| out(1)).collect(),
            lock_time: tag,
            expiry_height,
        }
    }

    fn fake_validate<V: ChainView>(
        tx: &Transaction,
        view: &V,
        ctx: &TxContext<'_>,
    ) -> Result<TxEffects, Rejection> {
        let mut spent = Vec::new();
        for (i, input) in tx.inputs.iter().enumerate() {
            let c = view.coin(&input.prevout).ok_or_else(|| {
                Rejection::missing_inputs("missing-inputs", format!("input {i} missing"))
            })?;
            spent.push((input.prevout, c));
        }
        let txid = tx.txid();
        Ok(TxEffects {
            txid,
            wtxid: tx.wtxid(),
            spent,
            created: tx
                .outputs
                .iter()
                .enumerate()
                .map(|(v, o)| {
                    (
                        OutPoint::new(txid, u32::try_from(v).expect("few outputs")),
                        Coin {
                            output: o.clone(),
                            height: ctx.height,
                            time_ms: ctx.time_ms,
                        },
                    )
                })
                .collect(),
            assets: Vec::new(),
            membership: None,
        })
    }

    struct Fixture {
        spec: ChainSpec,
        chain: Coins,
        funding: Vec<OutPoint>,
    }

    fn fixture() -> Fixture {
        let k = secp256k1::Keypair::new(secp256k1::SECP256K1, &mut rand::rng());
        let spec = ChainSpec::dev(&k.x_only_public_key().0, &k.x_only_public_key().0, 1);
        let mut chain = Coins::default();
        let funding: Vec<OutPoint> = (0..4u8)
            .map(|i| OutPoint::new(Txid([i + 10; 32]), 0))
            .collect();
        for p in &funding {
            chain.0.insert(*p, coin(5));
        }
        Fixture {
            spec,
            chain,
            funding,
        }
    }

    fn ctx(spec: &ChainSpec, height: u64) -> TxContext<'_> {
        TxContext {
            chain_id: settle_assets::ChainId([9; 32]),
            spec,
            height,
            time_ms: 1_000,
        }
    }

    fn accept(
        m: &mut Mempool,
        f: &Fixture,
        t: &Transaction,
        height: u64,
        now: u64,
    ) -> Result<Accepted, MempoolRejection> {
        m.accept(
            Arc::new(t.clone()),
            &f.chain,
            &ctx(&f.spec, height),
            now,
            |t, v, c| fake_validate(t, v, c),
        )
    }

    #[test]
    fn a_second_spend_names_the_first() {
        let f = fixture();
        let mut m = Mempool::new(MempoolConfig::default());
        let a = tx(&[f.funding[0]], 1, 0, 1);
        let b = tx(&[f.funding[0]], 1, 0, 2);
        assert_eq!(accept(&mut m, &f, &a, 1, 0), Ok(Accepted::New(a.txid())));
        assert_eq!(
            accept(&mut m, &f, &a, 1, 0),
            Ok(Accepted::AlreadyKnown(a.txid()))
        );
        let err = accept(&mut m, &f, &b, 1, 0).expect_err("conflict");
        assert_eq!(err.rejection.class, settle_chain::RejectClass::Conflict);
        assert_eq!(err.conflicting_txid, Some(a.txid()));
        assert!(err.rejection.message.contains(&a.txid().to_string()));
        assert_eq!(m.len(), 1);
        m.check_consistency().expect("consistent");
    }

    #[test]
    fn limits_refuse_with_mempool_full() {
        let f = fixture();
        let mut m = Mempool::new(MempoolConfig {
            max_count: 2,
            ..MempoolConfig::default()
        });
        accept(&mut m, &f, &tx(&[f.funding[0]], 1, 0, 0), 1, 0).expect("first");
        accept(&mut m, &f, &tx(&[f.funding[1]], 1, 0, 0), 1, 0).expect("second");
        let err = accept(&mut m, &f, &tx(&[f.funding[2]], 1, 0, 0), 1, 0).expect_err("full");
        assert_eq!(err.rejection.code, MEMPOOL_FULL);
        assert!(err.rejection.message.contains("mempool full"));

        let small = tx(&[f.funding[0]], 1, 0, 0);
        let mut m = Mempool::new(MempoolConfig {
            max_bytes: small.size_bytes() + 10,
            ..MempoolConfig::default()
        });
        accept(&mut m, &f, &small, 1, 0).expect("fits");
        let err = accept(&mut m, &f, &tx(&[f.funding[1]], 1, 0, 0), 1, 0).expect_err("bytes");
        assert_eq!(err.rejection.code, MEMPOOL_FULL);
        assert!(err.rejection.message.contains("bytes"));
    }

    #[test]
    fn children_spend_unconfirmed_outputs_and_leave_with_their_parent() {
        let f = fixture();
        let mut m = Mempool::new(MempoolConfig::default());
        let parent = tx(&[f.funding[0]], 2, 0, 0);
        let child = tx(&[OutPoint::new(parent.txid(), 0)], 1, 0, 0);
        let grandchild = tx(&[OutPoint::new(child.txid(), 0)], 1, 0, 0);
        let other = tx(&[f.funding[1]], 1, 0, 0);
        for t in [&parent, &child, &grandchild, &other] {
            accept(&mut m, &f, t, 1, 0).expect("accepted");
        }
        assert_eq!(
            m.get(&child.txid()).expect("child").parents,
            vec![parent.txid()]
        );
        let order: Vec<Txid> = m.candidates(10).iter().map(|t| t.txid()).collect();
        assert_eq!(
            order,
            vec![parent.txid(), child.txid(), grandchild.txid(), other.txid()]
        );
        let removed = m.remove_with_descendants(&parent.txid(), RemovalReason::Invalid);
        assert_eq!(removed.len(), 3);
        assert_eq!(m.len(), 1);
        assert!(m.created_coin(&OutPoint::new(parent.txid(), 1)).is_none());
        m.check_consistency().expect("consistent");
    }

    #[test]
    fn a_block_removes_confirmed_conflicting_and_expired_transactions() {
        let f = fixture();
        let mut m = Mempool::new(MempoolConfig::default());
        let confirmed = tx(&[f.funding[0]], 1, 0, 0);
        let child_of_confirmed = tx(&[OutPoint::new(confirmed.txid(), 0)], 1, 0, 0);
        let loser = tx(&[f.funding[1]], 1, 0, 1);
        let loser_child = tx(&[OutPoint::new(loser.txid(), 0)], 1, 0, 0);
        let expiring = tx(&[f.funding[2]], 1, 2, 0);
        let lasting = tx(&[f.funding[3]], 1, 3, 0);
        for t in [
            &confirmed,
            &child_of_confirmed,
            &loser,
            &loser_child,
            &expiring,
            &lasting,
        ] {
            accept(&mut m, &f, t, 1, 0).expect("accepted");
        }
        // Block 2 confirms `confirmed` and a different spend of funding[1].
        let winner = tx(&[f.funding[1]], 1, 0, 2);
        let removed = m.block_connected(&[confirmed.clone(), winner], 2, 0);
        let mut removed_ids: Vec<(Txid, RemovalReason)> = removed;
        removed_ids.sort();
        let mut want = vec![
            (loser.txid(), RemovalReason::Conflict),
            (loser_child.txid(), RemovalReason::ParentRemoved),
            (expiring.txid(), RemovalReason::Expired),
        ];
        want.sort();
        assert_eq!(removed_ids, want);
        let left: HashSet<Txid> = m.entries_in_order().map(|e| e.txid).collect();
        assert_eq!(
            left,
            HashSet::from([child_of_confirmed.txid(), lasting.txid()])
        );
        m.check_consistency().expect("consistent");
    }

    #[test]
    fn old_transactions_expire_by_age() {
        let f = fixture();
        let mut m = Mempool::new(MempoolConfig {
            expiry_secs: 10,
            ..MempoolConfig::default()
        });
        let old = tx(&[f.funding[0]], 1, 0, 0);
        let young = tx(&[f.funding[1]], 1, 0, 0);
        accept(&mut m, &f, &old, 1, 0).expect("old");
        accept(&mut m, &f, &young, 1, 5_000).expect("young");
        let removed = m.expire(0, 12_000);
        assert_eq!(removed, vec![(old.txid(), RemovalReason::TooOld)]);
        assert!(m.contains(&young.txid()));
        m.check_consistency().expect("consistent");
    }
}
