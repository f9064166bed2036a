//! Transaction and block validation: plain data in, effects (or a rejection) out.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};

use settle_assets::amount::Amount;
use settle_assets::check::{TxCheckError, check_transaction};
use settle_assets::conservation::check_conservation;
use settle_assets::contract::AssetContract;
use settle_assets::hash::{AssetId, BlockHash, ChainId, Txid, Wtxid};
use settle_assets::transaction::{IssuanceKind, LOCKTIME_THRESHOLD, OutPoint, Transaction, TxOut};
use settle_script::error::InputError;
use settle_script::sighash::{PrecomputedTx, verify_issuance_signature};
use settle_script::verify::{CoinConfirmation, is_final, sequence_lock, verify_transaction};

use crate::block::{Block, Header};
use crate::certificate::CertificateError;
use crate::coin::{AssetInfo, ChainView, Coin};
use crate::limits::BLOCK_VERSION;
use crate::membership::{Membership, MembershipChange, MembershipState, PendingChange};
use crate::muhash::MuHash3072;
use crate::reject::Rejection;
use crate::spec::{ChainSpec, SpecError};

/// Where a transaction would be included: the chain, and the height and time of the
/// block that would hold it.
#[derive(Clone, Copy, Debug)]
pub struct TxContext<'a> {
    pub chain_id: ChainId,
    pub spec: &'a ChainSpec,
    pub height: u64,
    /// The including block's `time_ms`.
    pub time_ms: u64,
}

/// A change to one asset's registry entry.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AssetDelta {
    pub asset: AssetId,
    /// Set when the asset is created: its registry entry with `issued` and `burned` at
    /// zero (the counts below then apply to it like to any other asset).
    pub created: Option<AssetInfo>,
    /// Units issued (first issuance or reissuance).
    pub issued: u128,
    /// Units burned.
    pub burned: u128,
}

/// What one valid transaction does to the chain state.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct TxEffects {
    pub txid: Txid,
    pub wtxid: Wtxid,
    /// Coins spent, with their outpoints (kept for undo data).
    pub spent: Vec<(OutPoint, Coin)>,
    /// Coins created (burns excluded: they never enter the UTXO set).
    pub created: Vec<(OutPoint, Coin)>,
    /// Asset registry changes, one entry per asset issued or burned, ordered by asset.
    pub assets: Vec<AssetDelta>,
    /// The pending membership change a membership transaction makes.
    pub membership: Option<PendingChange>,
}

/// What one valid block does to the chain state, for the store to apply in one batch.
/// Coins created and spent inside the block appear in neither list.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BlockEffects {
    pub block_hash: BlockHash,
    pub height: u64,
    /// The block's transaction ids, in block order.
    pub txids: Vec<Txid>,
    /// Coins that existed before the block and are spent by it (undo data).
    pub spent: Vec<(OutPoint, Coin)>,
    /// Coins created by the block and still unspent after it.
    pub created: Vec<(OutPoint, Coin)>,
    /// Asset registry changes, one entry per asset, ordered by asset id.
    pub assets: Vec<AssetDelta>,
    /// The UTXO set's running hash after the block (normalised, ready to store).
    pub muhash: MuHash3072,
    /// Its digest: the header's `utxo_commitment`.
    pub utxo_commitment: [u8; 32],
    /// The membership after the block, when the block changes it (a change activates
    /// at its height, or a membership transaction makes one pending); `None` when the
    /// parent's stands.
    pub membership: Option<MembershipState>,
}

/// A header that does not follow its parent or the chain spec.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("unsupported block version {0}")]
    BadVersion(u32),
    #[error("block height {got} does not follow the parent's height {parent}")]
    BadHeight { parent: u64, got: u64 },
    #[error("previous-block hash {got} is not the parent's hash {parent}")]
    BadPrevHash { parent: BlockHash, got: BlockHash },
    #[error("block time {time_ms} ms is not after the parent's time {parent_ms} ms")]
    TimeNotIncreasing { parent_ms: u64, time_ms: u64 },
    #[error("validator-set hash {got} is not that of the validators in force, {expected}")]
    BadValidatorSetHash { expected: String, got: String },
    #[error("proposer {0} is not a validator")]
    UnknownProposer(String),
}

/// Why a block is invalid. Every variant means the block itself breaks a rule; this
/// crate does no I/O, so nothing here is a storage or internal error.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum BlockError {
    #[error("bad header: {0}")]
    Header(#[from] HeaderError),
    #[error("block has {count} transactions, more than the limit of {max}")]
    TooManyTransactions { count: usize, max: usize },
    #[error("block is {size} bytes, more than the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("merkle root {header} in the header, but the transactions hash to {computed}")]
    BadMerkleRoot { header: String, computed: String },
    #[error("bad commit certificate: {0}")]
    Certificate(#[from] CertificateError),
    #[error("transaction {index} ({txid}) is invalid: {rejection}")]
    Transaction {
        index: usize,
        txid: Txid,
        rejection: Rejection,
    },
    #[error(
        "utxo commitment {header} in the header, but the UTXO set after the block hashes to {computed}"
    )]
    BadUtxoCommitment { header: String, computed: String },
}

// ---- Looking things up: the base view plus the earlier transactions of the block ----

/// What a coin lookup found.
enum CoinLookup {
    Found(Coin),
    /// Spent by an earlier transaction of the same block (its index).
    SpentInBlock(usize),
    Missing,
}

/// The chain state as a transaction in a block sees it: the view of the parent plus the
/// effects of the block's earlier transactions. Also accumulates the block's effects.
pub(crate) struct Overlay<'v, V: ?Sized> {
    base: &'v V,
    /// Coins created in this block and not yet spent in it.
    created: HashMap<OutPoint, Coin>,
    /// Every outpoint created in this block, in order (to list `created` in block order).
    created_order: Vec<OutPoint>,
    /// Outpoints spent in this block, with the spending transaction's index.
    spent: HashMap<OutPoint, usize>,
    /// Coins of the parent's UTXO set spent in this block, in order.
    spent_base: Vec<(OutPoint, Coin)>,
    /// Registry entries of the assets touched in this block, as they now stand.
    assets: HashMap<AssetId, AssetInfo>,
    /// The block's registry changes so far.
    deltas: BTreeMap<AssetId, AssetDelta>,
    txids: Vec<Txid>,
    /// The membership change made by a transaction of this block (its index): one per
    /// block at most.
    membership_change: Option<(usize, PendingChange)>,
}

impl<'v, V: ChainView + ?Sized> Overlay<'v, V> {
    pub(crate) fn new(base: &'v V) -> Self {
        Overlay {
            base,
            created: HashMap::new(),
            created_order: Vec::new(),
            spent: HashMap::new(),
            spent_base: Vec::new(),
            assets: HashMap::new(),
            deltas: BTreeMap::new(),
            txids: Vec::new(),
            membership_change: None,
        }
    }

    fn coin(&self, outpoint: &OutPoint) -> CoinLookup {
        if let Some(&index) = self.spent.get(outpoint) {
            return CoinLookup::SpentInBlock(index);
        }
        if let Some(coin) = self.created.get(outpoint) {
            return CoinLookup::Found(coin.clone());
        }
        match self.base.coin(outpoint) {
            Some(coin) => CoinLookup::Found(coin),
            None => CoinLookup::Missing,
        }
    }

    fn asset(&self, asset: &AssetId) -> Option<AssetInfo> {
        match self.assets.get(asset) {
            Some(info) => Some(info.clone()),
            None => self.base.asset(asset),
        }
    }

    /// Records a valid transaction's effects so later transactions see them.
    pub(crate) fn apply(&mut self, index: usize, effects: &TxEffects) {
        for (outpoint, coin) in &effects.spent {
            if self.created.remove(outpoint).is_none() {
                self.spent_base.push((*outpoint, coin.clone()));
            }
            self.spent.insert(*outpoint, index);
        }
        for (outpoint, coin) in &effects.created {
            self.created.insert(*outpoint, coin.clone());
            self.created_order.push(*outpoint);
        }
        for delta in &effects.assets {
            let current = match &delta.created {
                Some(info) => Some(info.clone()),
                None => self.asset(&delta.asset),
            };
            // Only assets the transaction found are reissued or burned; an unknown one
            // (an inconsistent store) still has its delta recorded below.
            if let Some(mut info) = current {
                info.issued += delta.issued;
                info.burned += delta.burned;
                self.assets.insert(delta.asset, info);
            }
            let entry = self
                .deltas
                .entry(delta.asset)
                .or_insert_with(|| AssetDelta {
                    asset: delta.asset,
                    created: None,
                    issued: 0,
                    burned: 0,
                });
            if delta.created.is_some() {
                entry.created.clone_from(&delta.created);
            }
            entry.issued += delta.issued;
            entry.burned += delta.burned;
        }
        if let Some(change) = &effects.membership {
            self.membership_change = Some((index, change.clone()));
        }
        self.txids.push(effects.txid);
    }

    /// The block's net effects: coins spent from the parent's set, coins created and
    /// still unspent, registry changes, txids.
    pub(crate) fn into_parts(self) -> OverlayParts {
        let mut created_map = self.created;
        let created = self
            .created_order
            .iter()
            .filter_map(|op| created_map.remove(op).map(|coin| (*op, coin)))
            .collect();
        OverlayParts {
            txids: self.txids,
            spent: self.spent_base,
            created,
            assets: self.deltas.into_values().collect(),
            membership_change: self.membership_change.map(|(_, change)| change),
        }
    }
}

pub(crate) struct OverlayParts {
    pub(crate) txids: Vec<Txid>,
    pub(crate) spent: Vec<(OutPoint, Coin)>,
    pub(crate) created: Vec<(OutPoint, Coin)>,
    pub(crate) assets: Vec<AssetDelta>,
    pub(crate) membership_change: Option<PendingChange>,
}

/// The membership `view` shows: its own, or the spec's genesis membership for a view
/// that keeps none (a chain that never changed it).
pub fn membership_of<V: ChainView + ?Sized>(view: &V, spec: &ChainSpec) -> MembershipState {
    view.membership()
        .unwrap_or_else(|| MembershipState::settled(spec.genesis_membership()))
}

/// The membership after the block at `height` on top of `before`, if it differs.
pub(crate) fn membership_after(
    before: &MembershipState,
    height: u64,
    change: Option<PendingChange>,
) -> Option<MembershipState> {
    let mut after = before.at_height(height);
    if let Some(change) = change {
        after.pending = Some(change);
    }
    (after != *before).then_some(after)
}

// ---- One transaction ----

/// A transaction that passed every check but its scripts.
pub(crate) struct Checked {
    pub(crate) effects: TxEffects,
    /// The output each input spends, one per input ([`TxOut::NONE`] for null inputs).
    pub(crate) spent_outputs: Vec<TxOut>,
}

fn height_u32(height: u64) -> u32 {
    u32::try_from(height).unwrap_or(u32::MAX)
}

fn context_free(tx: &Transaction) -> Result<Vec<(usize, AssetContract)>, Rejection> {
    check_transaction(tx).map_err(|e| {
        let code = match &e {
            TxCheckError::UnsupportedVersion(_) => "bad-version",
            TxCheckError::MembershipShape(_) => "bad-membership",
            TxCheckError::NoInputs => "no-inputs",
            TxCheckError::NoOutputs => "no-outputs",
            TxCheckError::TooLarge { .. } => "oversize",
            TxCheckError::ZeroOutput { .. } => "zero-output",
            TxCheckError::ZeroIssuance { .. } => "zero-issuance",
            TxCheckError::DuplicateInput { .. } => "duplicate-input",
            TxCheckError::NullInputWithoutNewIssuance { .. } => "null-input",
            TxCheckError::NullInputWithWitness { .. } => "null-input-witness",
            TxCheckError::InvalidContract { .. } => "bad-contract",
            TxCheckError::DuplicateNewAsset { .. } => "duplicate-asset",
        };
        Rejection::consensus(code, e.to_string())
    })
}

/// Every check except scripts, in the order of `spec/chain.md`, "Transaction
/// validation".
pub(crate) fn check_contextual<V: ChainView + ?Sized>(
    tx: &Transaction,
    view: &Overlay<'_, V>,
    ctx: &TxContext<'_>,
) -> Result<Checked, Rejection> {
    // 1. Context-free rules.
    let contracts = context_free(tx)?;
    let txid = tx.txid();

    // 2. Expiry: the last height at which the transaction may be included.
    if tx.expiry_height != 0 && ctx.height > u64::from(tx.expiry_height) {
        return Err(Rejection::consensus(
            "expired",
            format!(
                "transaction expired at height {}; the block is at height {}",
                tx.expiry_height, ctx.height
            ),
        ));
    }

    // A membership transaction moves no asset: its checks are its own.
    if tx.is_membership() {
        return check_membership(tx, txid, view, ctx);
    }

    // 3. Absolute lock time, against the block's height and time in seconds.
    let time_s = ctx.time_ms / 1000;
    if !is_final(tx, height_u32(ctx.height), time_s) {
        let against = if tx.lock_time < LOCKTIME_THRESHOLD {
            format!("block height {}", ctx.height)
        } else {
            format!("block time {time_s}")
        };
        return Err(Rejection::premature(
            "non-final",
            format!(
                "lock time {} is not yet passed at {against} and not every input is final",
                tx.lock_time
            ),
        ));
    }

    // 4. Inputs exist and are unspent.
    let mut spent = Vec::with_capacity(tx.inputs.len());
    let mut spent_outputs = Vec::with_capacity(tx.inputs.len());
    let mut confirmations = Vec::with_capacity(tx.inputs.len());
    for (i, input) in tx.inputs.iter().enumerate() {
        if input.prevout.is_null() {
            spent_outputs.push(TxOut::NONE);
            confirmations.push(CoinConfirmation::default());
            continue;
        }
        match view.coin(&input.prevout) {
            CoinLookup::Found(coin) => {
                confirmations.push(CoinConfirmation {
                    height: height_u32(coin.height),
                    time: coin.time_ms / 1000,
                });
                spent_outputs.push(coin.output.clone());
                spent.push((input.prevout, coin));
            }
            CoinLookup::SpentInBlock(by) => {
                return Err(Rejection::conflict(
                    "double-spend",
                    format!(
                        "input {i} spends {}, which transaction {by} of the same block already spends",
                        input.prevout
                    ),
                ));
            }
            CoinLookup::Missing => {
                return Err(Rejection::missing_inputs(
                    "missing-inputs",
                    format!(
                        "input {i} spends {}, which is not an unspent output",
                        input.prevout
                    ),
                ));
            }
        }
    }

    // 5. Relative lock times (BIP68), from each spent coin's block.
    let lock = sequence_lock(tx, &confirmations)
        .map_err(|e| Rejection::consensus("non-bip68-final", e.to_string()))?;
    if !lock.is_satisfied(height_u32(ctx.height), time_s) {
        let mut parts = Vec::new();
        if let Some(h) = lock.min_height {
            parts.push(format!("height above {h}"));
        }
        if let Some(t) = lock.min_time {
            parts.push(format!("time above {t}"));
        }
        return Err(Rejection::premature(
            "non-bip68-final",
            format!(
                "relative lock time needs a block with {}; the block has height {} and time {time_s}",
                parts.join(" and "),
                ctx.height
            ),
        ));
    }

    // 6. Issuances: authorised, signed, within supply limits.
    let mut new_assets: BTreeMap<AssetId, AssetInfo> = BTreeMap::new();
    // Units reissued so far in this transaction, per asset (several records may
    // reissue one asset; the supply limit applies to their sum).
    let mut reissued: BTreeMap<AssetId, u128> = BTreeMap::new();
    if tx.inputs.iter().any(|i| i.issuance.is_some()) {
        let cache = PrecomputedTx::new(tx, &spent_outputs, ctx.chain_id)
            .map_err(|e| Rejection::consensus("bad-issuer-signature", e.to_string()))?;
        for (i, input) in tx.inputs.iter().enumerate() {
            let Some(issuance) = &input.issuance else {
                continue;
            };
            let asset = issuance.asset_id(&input.prevout);
            let (contract, verb) = match &issuance.kind {
                IssuanceKind::New { contract: bytes } => {
                    if view.asset(&asset).is_some() {
                        return Err(Rejection::consensus(
                            "duplicate-asset",
                            format!("input {i} issues asset {asset}, which already exists"),
                        ));
                    }
                    let Some((_, contract)) = contracts.iter().find(|(k, _)| *k == i) else {
                        // check_transaction parses every new issuance's contract.
                        return Err(Rejection::consensus(
                            "bad-contract",
                            format!("input {i} carries a contract that did not parse"),
                        ));
                    };
                    new_assets.insert(
                        asset,
                        AssetInfo {
                            contract: contract.clone(),
                            contract_bytes: bytes.clone(),
                            issued: 0,
                            burned: 0,
                            issuing_txid: txid,
                            height: ctx.height,
                        },
                    );
                    (contract.clone(), "issues")
                }
                IssuanceKind::Reissue { .. } => {
                    let Some(info) = view.asset(&asset) else {
                        return Err(Rejection::missing_inputs(
                            "unknown-asset",
                            format!("input {i} reissues asset {asset}, which does not exist"),
                        ));
                    };
                    if !info.contract.reissuable {
                        return Err(Rejection::consensus(
                            "not-reissuable",
                            format!(
                                "input {i} reissues {} units of asset {asset} ({}), whose contract is not reissuable",
                                issuance.amount, info.contract.ticker
                            ),
                        ));
                    }
                    let outstanding = info.outstanding();
                    let so_far = reissued.entry(asset).or_insert(0);
                    *so_far += u128::from(issuance.amount.units());
                    if outstanding + *so_far > u128::from(Amount::MAX.units()) {
                        return Err(Rejection::consensus(
                            "supply-overflow",
                            format!(
                                "input {i} reissues {} units of asset {asset}: with {outstanding} outstanding the supply would exceed {}",
                                issuance.amount,
                                Amount::MAX
                            ),
                        ));
                    }
                    (info.contract, "reissues")
                }
            };
            if !ctx
                .spec
                .issuers
                .is_authorised(&contract.class, &contract.issuer)
            {
                return Err(Rejection::consensus(
                    "unauthorised-issuer",
                    format!(
                        "input {i} {verb} {} units of asset {asset}: issuer {} is not authorised to issue {} assets on this chain",
                        issuance.amount,
                        hex::encode(contract.issuer),
                        contract.class.name()
                    ),
                ));
            }
            let Some(signature) = &issuance.signature else {
                return Err(Rejection::consensus(
                    "bad-issuer-signature",
                    format!(
                        "input {i} {verb} {} units of asset {asset} without the issuer's signature",
                        issuance.amount
                    ),
                ));
            };
            let digest = cache
                .issuance_digest(i)
                .map_err(|e| Rejection::consensus("bad-issuer-signature", e.to_string()))?;
            if verify_issuance_signature(&digest, signature, &contract.issuer).is_err() {
                return Err(Rejection::consensus(
                    "bad-issuer-signature",
                    format!(
                        "input {i} {verb} {} units of asset {asset}: the signature is not valid for issuer {}",
                        issuance.amount,
                        hex::encode(contract.issuer)
                    ),
                ));
            }
        }
    }

    // 7. Conservation per asset.
    let flows = check_conservation(tx, &spent_outputs)
        .map_err(|e| Rejection::consensus("unbalanced", e.to_string()))?;

    let created = tx
        .outputs
        .iter()
        .enumerate()
        .filter(|(_, o)| !o.is_burn())
        .map(|(vout, o)| {
            (
                OutPoint::new(txid, u32::try_from(vout).unwrap_or(u32::MAX)),
                Coin {
                    output: o.clone(),
                    height: ctx.height,
                    time_ms: ctx.time_ms,
                },
            )
        })
        .collect();
    let assets = flows
        .iter()
        .filter(|(_, f)| f.issued > 0 || f.burned > 0)
        .map(|(asset, f)| AssetDelta {
            asset: *asset,
            created: new_assets.remove(asset),
            issued: f.issued,
            burned: f.burned,
        })
        .collect();
    Ok(Checked {
        effects: TxEffects {
            txid,
            wtxid: tx.wtxid(),
            spent,
            created,
            assets,
            membership: None,
        },
        spent_outputs,
    })
}

/// The membership rules (`spec/chain.md`, "Membership changes").
fn check_membership<V: ChainView + ?Sized>(
    tx: &Transaction,
    txid: Txid,
    view: &Overlay<'_, V>,
    ctx: &TxContext<'_>,
) -> Result<Checked, Rejection> {
    let change = MembershipChange::from_transaction(tx)
        .map_err(|e| Rejection::consensus("bad-membership", e.to_string()))?;
    if let Some((index, _)) = &view.membership_change {
        return Err(Rejection::conflict(
            "membership-pending",
            format!("transaction {index} of the same block already changes membership"),
        ));
    }
    let state = membership_of(view.base, ctx.spec);
    let pending = change.check(&state, ctx.height, &ctx.chain_id, txid)?;
    Ok(Checked {
        effects: TxEffects {
            txid,
            wtxid: tx.wtxid(),
            spent: Vec::new(),
            created: Vec::new(),
            assets: Vec::new(),
            membership: Some(pending),
        },
        spent_outputs: Vec::new(),
    })
}

pub(crate) fn script_rejection(error: &InputError, tx: &Transaction, spent: &[TxOut]) -> Rejection {
    let detail = match (tx.inputs.get(error.input), spent.get(error.input)) {
        (Some(input), Some(out)) => format!(
            "input {} spending {} ({} units of asset {}) fails its script: {}",
            error.input, input.prevout, out.amount, out.asset, error.error
        ),
        _ => format!("input {} fails its script: {}", error.input, error.error),
    };
    Rejection::consensus("script-failed", detail)
}

/// Validates one transaction for inclusion in the block described by `ctx`, against
/// the chain state in `view`. Runs every check, scripts included, in the order of
/// `spec/chain.md`; the first failure is returned.
pub fn validate_transaction<V: ChainView + ?Sized>(
    tx: &Transaction,
    view: &V,
    ctx: &TxContext<'_>,
) -> Result<TxEffects, Rejection> {
    let overlay = Overlay::new(view);
    let checked = check_contextual(tx, &overlay, ctx)?;
    verify_transaction(tx, &checked.spent_outputs, ctx.chain_id)
        .map_err(|e| script_rejection(&e, tx, &checked.spent_outputs))?;
    Ok(checked.effects)
}

// ---- Parallel work: scripts and the UTXO-set hash ----

/// Below this many inputs plus coins, parallel work runs on the calling thread: spawning
/// threads costs more than it saves.
const PARALLEL_THRESHOLD: usize = 64;
/// Coins hashed per work item when updating the UTXO-set hash in parallel.
const MUHASH_CHUNK: usize = 32;

/// The script checks of one transaction.
pub(crate) struct ScriptJob<'a> {
    /// The transaction's index in the block (or candidate list).
    pub(crate) index: usize,
    pub(crate) tx: &'a Transaction,
    pub(crate) spent: &'a [TxOut],
}

/// Runs the script checks of `jobs` and hashes the coin changes into a MuHash delta,
/// spread over all cores. Returns the failing jobs (by index, ascending; only the
/// lowest when `stop_at_first`) and the MuHash of `added` minus `removed`.
pub(crate) fn parallel_checks(
    jobs: &[ScriptJob<'_>],
    chain_id: ChainId,
    stop_at_first: bool,
    removed: &[(OutPoint, Coin)],
    added: &[(OutPoint, Coin)],
) -> (Vec<(usize, InputError)>, MuHash3072) {
    let coins = removed.len() + added.len();
    let work = jobs.iter().map(|j| j.tx.inputs.len()).sum::<usize>() + coins;
    let threads = std::thread::available_parallelism()
        .map(std::num::NonZero::get)
        .unwrap_or(1);
    let threads = if work < PARALLEL_THRESHOLD {
        1
    } else {
        threads
    };

    let next_job = AtomicUsize::new(0);
    let next_chunk = AtomicUsize::new(0);
    let lowest_failure = AtomicUsize::new(usize::MAX);
    let worker = || {
        let mut failures = Vec::new();
        loop {
            let j = next_job.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(j) else { break };
            if stop_at_first && lowest_failure.load(Ordering::Relaxed) < job.index {
                continue;
            }
            if let Err(e) = verify_transaction(job.tx, job.spent, chain_id) {
                lowest_failure.fetch_min(job.index, Ordering::Relaxed);
                failures.push((job.index, e));
            }
        }
        let mut muhash = MuHash3072::new();
        loop {
            let start = next_chunk.fetch_add(1, Ordering::Relaxed) * MUHASH_CHUNK;
            if start >= coins {
                break;
            }
            for k in start..(start + MUHASH_CHUNK).min(coins) {
                if k < removed.len() {
                    let (op, coin) = &removed[k];
                    muhash.remove_coin(op, coin);
                } else {
                    let (op, coin) = &added[k - removed.len()];
                    muhash.insert_coin(op, coin);
                }
            }
        }
        (failures, muhash)
    };

    let results: Vec<(Vec<(usize, InputError)>, MuHash3072)> = if threads == 1 {
        vec![worker()]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(worker)).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        })
    };
    let mut failures = Vec::new();
    let mut muhash = MuHash3072::new();
    for (f, m) in results {
        failures.extend(f);
        muhash.combine(&m);
    }
    failures.sort_by_key(|(index, _)| *index);
    if stop_at_first {
        failures.truncate(1);
    }
    (failures, muhash)
}

// ---- Blocks ----

fn check_header(
    header: &Header,
    parent: &Header,
    in_force: &Membership,
) -> Result<(), HeaderError> {
    if header.version != BLOCK_VERSION {
        return Err(HeaderError::BadVersion(header.version));
    }
    if Some(header.height) != parent.height.checked_add(1) {
        return Err(HeaderError::BadHeight {
            parent: parent.height,
            got: header.height,
        });
    }
    let parent_hash = parent.hash();
    if header.prev_hash != parent_hash {
        return Err(HeaderError::BadPrevHash {
            parent: parent_hash,
            got: header.prev_hash,
        });
    }
    if header.time_ms <= parent.time_ms {
        return Err(HeaderError::TimeNotIncreasing {
            parent_ms: parent.time_ms,
            time_ms: header.time_ms,
        });
    }
    let expected = in_force.validators.hash();
    if header.validator_set_hash != expected {
        return Err(HeaderError::BadValidatorSetHash {
            expected: hex::encode(expected),
            got: hex::encode(header.validator_set_hash),
        });
    }
    if in_force.validators.get(&header.proposer).is_none() {
        return Err(HeaderError::UnknownProposer(hex::encode(header.proposer)));
    }
    Ok(())
}

fn check_limits(block: &Block, spec: &ChainSpec) -> Result<(), BlockError> {
    let max_txs = spec.limits.max_block_txs as usize;
    if block.transactions.len() > max_txs {
        return Err(BlockError::TooManyTransactions {
            count: block.transactions.len(),
            max: max_txs,
        });
    }
    let size = block.size_without_certificate();
    let max = spec.limits.max_block_bytes as usize;
    if size > max {
        return Err(BlockError::TooLarge { size, max });
    }
    Ok(())
}

/// Validates a block on top of `parent`, whose chain state `view` shows: the header
/// against the parent and the spec, the commit certificate, then everything
/// [`validate_proposal`] checks. Script checks run in parallel on all cores.
pub fn validate_block<V: ChainView + ?Sized>(
    block: &Block,
    parent: &Header,
    view: &V,
    spec: &ChainSpec,
    chain_id: &ChainId,
) -> Result<BlockEffects, BlockError> {
    let membership = membership_of(view, spec);
    let in_force = membership.in_force_at(block.header.height);
    check_header(&block.header, parent, in_force)?;
    block.certificate.verify_for(
        block.header.height,
        &block.header.hash(),
        &in_force.validators,
        chain_id,
    )?;
    validate_proposal(block, parent, view, spec, chain_id)
}

/// Validates a proposed block that has no certificate yet (what a validator checks
/// before voting for it): header, limits, merkle root, every transaction in order (each
/// may spend outputs of earlier ones), scripts on all cores, and the UTXO commitment.
/// The certificate is ignored.
pub fn validate_proposal<V: ChainView + ?Sized>(
    block: &Block,
    parent: &Header,
    view: &V,
    spec: &ChainSpec,
    chain_id: &ChainId,
) -> Result<BlockEffects, BlockError> {
    let header = &block.header;
    let membership = membership_of(view, spec);
    check_header(header, parent, membership.in_force_at(header.height))?;
    check_limits(block, spec)?;
    let computed = block.compute_merkle_root();
    if computed != header.merkle_root {
        return Err(BlockError::BadMerkleRoot {
            header: hex::encode(header.merkle_root),
            computed: hex::encode(computed),
        });
    }

    let ctx = TxContext {
        chain_id: *chain_id,
        spec,
        height: header.height,
        time_ms: header.time_ms,
    };
    let mut overlay = Overlay::new(view);
    let mut spent_outputs = Vec::with_capacity(block.transactions.len());
    for (index, tx) in block.transactions.iter().enumerate() {
        let checked =
            check_contextual(tx, &overlay, &ctx).map_err(|rejection| BlockError::Transaction {
                index,
                txid: tx.txid(),
                rejection,
            })?;
        overlay.apply(index, &checked.effects);
        spent_outputs.push(checked.spent_outputs);
    }
    let parts = overlay.into_parts();

    let jobs: Vec<ScriptJob<'_>> = block
        .transactions
        .iter()
        .zip(&spent_outputs)
        .enumerate()
        .filter(|(_, (tx, _))| !view.scripts_verified(&tx.wtxid()))
        .map(|(index, (tx, spent))| ScriptJob { index, tx, spent })
        .collect();
    let (failures, delta) = parallel_checks(&jobs, *chain_id, true, &parts.spent, &parts.created);
    if let Some((index, error)) = failures.first() {
        let tx = &block.transactions[*index];
        return Err(BlockError::Transaction {
            index: *index,
            txid: tx.txid(),
            rejection: script_rejection(error, tx, &spent_outputs[*index]),
        });
    }

    let mut muhash = view.utxo_muhash();
    muhash.combine(&delta);
    muhash.normalize();
    let utxo_commitment = muhash.finalize();
    if utxo_commitment != header.utxo_commitment {
        return Err(BlockError::BadUtxoCommitment {
            header: hex::encode(header.utxo_commitment),
            computed: hex::encode(utxo_commitment),
        });
    }
    Ok(BlockEffects {
        block_hash: header.hash(),
        height: header.height,
        txids: parts.txids,
        spent: parts.spent,
        created: parts.created,
        assets: parts.assets,
        muhash,
        utxo_commitment,
        membership: membership_after(&membership, header.height, parts.membership_change),
    })
}

/// The empty chain state before genesis.
struct EmptyView;

impl ChainView for EmptyView {
    fn coin(&self, _: &OutPoint) -> Option<Coin> {
        None
    }
    fn asset(&self, _: &AssetId) -> Option<AssetInfo> {
        None
    }
    fn utxo_muhash(&self) -> MuHash3072 {
        MuHash3072::new()
    }
}

/// Fills in the genesis block's merkle root, UTXO commitment and certificate and returns
/// its effects. Allocations need no issuer signature; every other rule applies.
pub(crate) fn apply_genesis(
    block: &mut Block,
    spec: &ChainSpec,
) -> Result<BlockEffects, SpecError> {
    let bad = |i: usize, reason: String| SpecError::Field {
        field: format!("allocations[{i}]"),
        reason,
    };
    let mut overlay = Overlay::new(&EmptyView);
    for (i, tx) in block.transactions.iter().enumerate() {
        let contracts = context_free(tx).map_err(|r| bad(i, r.to_string()))?;
        let txid = tx.txid();
        let flows = check_conservation(tx, &vec![TxOut::NONE; tx.inputs.len()])
            .map_err(|e| bad(i, e.to_string()))?;
        let mut assets = Vec::new();
        for (k, input) in tx.inputs.iter().enumerate() {
            if let (Some(issuance), Some((_, contract))) =
                (&input.issuance, contracts.iter().find(|(j, _)| *j == k))
            {
                let asset = issuance.asset_id(&input.prevout);
                let contract_bytes = match &issuance.kind {
                    IssuanceKind::New { contract } => contract.clone(),
                    IssuanceKind::Reissue { .. } => continue,
                };
                if overlay.asset(&asset).is_some() {
                    return Err(bad(i, format!("asset {asset} is allocated twice")));
                }
                let flow = flows.get(&asset);
                assets.push(AssetDelta {
                    asset,
                    created: Some(AssetInfo {
                        contract: contract.clone(),
                        contract_bytes,
                        issued: 0,
                        burned: 0,
                        issuing_txid: txid,
                        height: 0,
                    }),
                    issued: flow.map_or(0, |f| f.issued),
                    burned: flow.map_or(0, |f| f.burned),
                });
            }
        }
        let created = tx
            .outputs
            .iter()
            .enumerate()
            .filter(|(_, o)| !o.is_burn())
            .map(|(vout, o)| {
                (
                    OutPoint::new(txid, u32::try_from(vout).unwrap_or(u32::MAX)),
                    Coin {
                        output: o.clone(),
                        height: 0,
                        time_ms: block.header.time_ms,
                    },
                )
            })
            .collect();
        let effects = TxEffects {
            txid,
            wtxid: tx.wtxid(),
            spent: Vec::new(),
            created,
            assets,
            membership: None,
        };
        overlay.apply(i, &effects);
    }
    let parts = overlay.into_parts();
    let (_, mut muhash) = parallel_checks(&[], ChainId::ZERO, true, &[], &parts.created);
    muhash.normalize();
    let utxo_commitment = muhash.finalize();
    block.header.merkle_root = block.compute_merkle_root();
    block.header.utxo_commitment = utxo_commitment;
    if block.transactions.len() > spec.limits.max_block_txs as usize
        || block.size_without_certificate() > spec.limits.max_block_bytes as usize
    {
        return Err(SpecError::Field {
            field: "allocations".into(),
            reason: "the genesis block they make exceeds the block limits".into(),
        });
    }
    let block_hash = block.header.hash();
    block.certificate = crate::certificate::CommitCertificate::empty(0, 0, block_hash);
    Ok(BlockEffects {
        block_hash,
        height: 0,
        txids: parts.txids,
        spent: parts.spent,
        created: parts.created,
        assets: parts.assets,
        muhash,
        utxo_commitment,
        membership: None,
    })
}
