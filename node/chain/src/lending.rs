//! Securities lending read back from the chain: every loan's terms, state (lent,
//! returned, defaulted), collateral in escrow and timing, and how much of each ISIN
//! each owner holds, has lent out or owes. Nothing here is stored beside the chain:
//! states are derived from the position assets, their opening transactions and the
//! spends of their escrow coins (`spec/lending.md`, "Reading loans from the chain").
//!
//! The input is a [`LendingSource`], which the node's store implements over its
//! column families (`assets`, `tx_index` + `blocks`, `spends`, `utxos`);
//! [`MemorySource`] implements it over a [`MemoryState`] and a [`MemoryHistory`].

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;

use settle_assets::contract::{AssetClass, LendingTerms};
use settle_assets::hash::{AssetId, Txid};
use settle_assets::transaction::{OutPoint, Transaction};
use settle_script::lending::{
    Escrow, EscrowPath, OpeningDefect, check_opening, classify_escrow_witness,
};
use settle_script::templates::{ScriptKind, classify};

use crate::block::Block;
use crate::coin::{AssetInfo, ChainView, Coin};
use crate::memory::MemoryState;

/// Most escrow updates (margin calls, collateral substitutions) followed for one loan.
/// Each update is a transaction both parties signed, so a longer chain is not expected;
/// the limit bounds the work of reading one position.
pub const MAX_ESCROW_UPDATES: usize = 10_000;

/// What the derivation reads. The node's store implements it over RocksDB; every
/// method reads the state at one tip (the caller passes that tip's height to the
/// derivation). Errors are the store's own (I/O, undecodable values): the derivation
/// passes them through and never mistakes them for a malformed loan.
pub trait LendingSource {
    type Error;
    /// Every asset whose contract class is `lending_position`, in any order.
    fn lending_positions(&self) -> Result<Vec<(AssetId, AssetInfo)>, Self::Error>;
    /// The registry entry of `asset`.
    fn asset(&self, asset: &AssetId) -> Result<Option<AssetInfo>, Self::Error>;
    /// A confirmed transaction and the height of its block (the `tx_index`).
    fn transaction(&self, txid: &Txid) -> Result<Option<(Transaction, u64)>, Self::Error>;
    /// The confirmed transaction that spent `outpoint`; `None` while it is unspent
    /// (the `spends` column family).
    fn spent_by(&self, outpoint: &OutPoint) -> Result<Option<Txid>, Self::Error>;
    /// Calls `visit` once for every unspent coin, in any order.
    fn for_each_coin(&self, visit: &mut dyn FnMut(&OutPoint, &Coin)) -> Result<(), Self::Error>;
}

/// The state of a loan (the SecLending study's lending life cycle, section 8.2).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LendingState {
    /// The securities are with the borrower and the collateral in escrow.
    Lent,
    /// Closed by the borrower's return or by both parties' agreement: the study's
    /// "Matured" (the counterparty fulfilled the agreed conditions).
    Returned,
    /// Closed by the lender's claim after maturity plus grace: the study's "Default".
    Defaulted,
}

impl LendingState {
    /// The stable snake_case name (`lent`, `returned`, `defaulted`).
    pub fn name(self) -> &'static str {
        match self {
            LendingState::Lent => "lent",
            LendingState::Returned => "returned",
            LendingState::Defaulted => "defaulted",
        }
    }

    /// The study's name for the state (`Lent`, `Matured`, `Default`).
    pub fn paper_name(self) -> &'static str {
        match self {
            LendingState::Lent => "Lent",
            LendingState::Returned => "Matured",
            LendingState::Defaulted => "Default",
        }
    }
}

/// An escrow coin of a loan.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EscrowCoin {
    pub outpoint: OutPoint,
    pub asset: AssetId,
    pub amount: u64,
    /// Height of the block that created it.
    pub height: u64,
}

/// A collateral change both parties signed (margin top-up or release, substitution):
/// the escrow coin was spent by agreement into a new escrow coin.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EscrowUpdate {
    pub txid: Txid,
    pub height: u64,
    /// The new escrow coin.
    pub coin: EscrowCoin,
}

/// How and where a loan ended.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Closing {
    pub txid: Txid,
    pub height: u64,
    /// `Return` (lender's pre-signature), `Agreement` (both signed) or `Default`.
    pub path: EscrowPath,
}

/// One loan as the chain shows it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Position {
    /// The `lending_position` asset.
    pub asset: AssetId,
    pub terms: LendingTerms,
    /// The key that issued the position (the lender, or a registered lending agent).
    pub issuer: [u8; 32],
    /// The opening transaction: the position's issuing transaction.
    pub opening_txid: Txid,
    pub opened_height: u64,
    /// The escrow's witness script and its pay-to-script-hash output script.
    pub escrow_script: Vec<u8>,
    pub escrow_script_pubkey: Vec<u8>,
    /// `maturity + grace`: the last height a return may be in; claims come after it.
    pub grace_end_height: u32,
    pub state: LendingState,
    /// The escrow coin holding the collateral now (`Some` exactly while `Lent`).
    pub escrow: Option<EscrowCoin>,
    /// Agreed collateral changes, oldest first.
    pub updates: Vec<EscrowUpdate>,
    /// How the loan ended (`Some` exactly when not `Lent`).
    pub closing: Option<Closing>,
}

/// Where a loan stands in time, seen from a tip height (the next block is one above).
#[derive(Clone, Copy, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct Timing {
    /// Blocks from the tip to the maturity height (0 once reached).
    pub blocks_to_maturity: u64,
    /// Blocks from the tip until a default claim can be in the next block (0 once it
    /// can).
    pub blocks_to_claim: u64,
    /// Open and the tip is at or past maturity.
    pub overdue: bool,
    /// Open and the borrower's return (with the pre-signature) can be in the next block.
    pub can_return: bool,
    /// Open and the lender's default claim can be in the next block.
    pub can_claim: bool,
}

impl Position {
    /// Units of collateral in escrow now (0 once closed).
    pub fn collateral(&self) -> u64 {
        self.escrow.as_ref().map_or(0, |c| c.amount)
    }

    /// The first height at which the lender may claim the collateral.
    pub fn first_claim_height(&self) -> u64 {
        u64::from(self.grace_end_height) + 1
    }

    /// The loan's timing seen from `tip_height`.
    pub fn timing(&self, tip_height: u64) -> Timing {
        let open = self.state == LendingState::Lent;
        let next = tip_height.saturating_add(1);
        Timing {
            blocks_to_maturity: u64::from(self.terms.maturity_height).saturating_sub(tip_height),
            blocks_to_claim: self.first_claim_height().saturating_sub(next),
            overdue: open && tip_height >= u64::from(self.terms.maturity_height),
            can_return: open && next <= u64::from(self.grace_end_height),
            can_claim: open && next >= self.first_claim_height(),
        }
    }
}

/// Why a `lending_position` asset is not read as a loan. Consensus lets any
/// registered issuer issue such an asset; only one whose opening transaction has the
/// shape of `spec/lending.md` is a loan.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum PositionDefect {
    #[error("the asset is not of class lending_position")]
    NotLendingPosition,
    #[error("the position was issued {issued} units in total; a loan is exactly 1")]
    Supply { issued: u128 },
    #[error("the issuing transaction {txid} is not in the chain")]
    OpeningMissing { txid: Txid },
    #[error("the issuing transaction is not a loan opening: {0}")]
    Opening(OpeningDefect),
    #[error("the opening issues asset {found}, not this position")]
    OtherPosition { found: AssetId },
    #[error("the lent asset {asset} is not a registered security")]
    NotASecurity { asset: AssetId },
    #[error("the terms name ISIN {terms} but the lent security's contract says {contract}")]
    IsinMismatch { terms: String, contract: String },
    #[error("escrow coin {outpoint} is spent by {txid}, which cannot be read")]
    EscrowSpend { outpoint: OutPoint, txid: Txid },
    #[error("more than {MAX_ESCROW_UPDATES} escrow updates")]
    TooManyUpdates,
}

/// A `lending_position` asset that is not read as a loan, and why.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Unrecognised {
    pub asset: AssetId,
    pub defect: PositionDefect,
}

/// Why one position could not be derived.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum DeriveError<E> {
    /// The source failed (a storage error): nothing is known about the position.
    #[error("reading the chain failed: {0}")]
    Source(E),
    #[error("no asset {0} on this chain")]
    UnknownAsset(AssetId),
    /// The asset is a `lending_position` (or not), but not a loan.
    #[error("asset {} is not a loan: {}", .0.asset, .0.defect)]
    Defect(Box<Unrecognised>),
}

/// Derives the loan whose position asset is `asset`.
pub fn derive_position<S: LendingSource + ?Sized>(
    source: &S,
    asset: &AssetId,
) -> Result<Position, DeriveError<S::Error>> {
    let info = source
        .asset(asset)
        .map_err(DeriveError::Source)?
        .ok_or(DeriveError::UnknownAsset(*asset))?;
    match derive_from_info(source, asset, &info).map_err(DeriveError::Source)? {
        Ok(position) => Ok(position),
        Err(defect) => Err(DeriveError::Defect(Box::new(Unrecognised {
            asset: *asset,
            defect,
        }))),
    }
}

fn derive_from_info<S: LendingSource + ?Sized>(
    source: &S,
    asset: &AssetId,
    info: &AssetInfo,
) -> Result<Result<Position, PositionDefect>, S::Error> {
    let AssetClass::LendingPosition(terms) = &info.contract.class else {
        return Ok(Err(PositionDefect::NotLendingPosition));
    };
    let terms: &LendingTerms = terms;
    if info.issued != 1 {
        return Ok(Err(PositionDefect::Supply {
            issued: info.issued,
        }));
    }
    let Some((opening, opened_height)) = source.transaction(&info.issuing_txid)? else {
        return Ok(Err(PositionDefect::OpeningMissing {
            txid: info.issuing_txid,
        }));
    };
    let layout = match check_opening(&opening, terms) {
        Ok(layout) => layout,
        Err(defect) => return Ok(Err(PositionDefect::Opening(defect))),
    };
    if layout.position != *asset {
        return Ok(Err(PositionDefect::OtherPosition {
            found: layout.position,
        }));
    }
    match source.asset(&terms.security_asset)? {
        Some(security) => match &security.contract.class {
            AssetClass::Security { isin } if *isin == terms.isin => {}
            AssetClass::Security { isin } => {
                return Ok(Err(PositionDefect::IsinMismatch {
                    terms: terms.isin.clone(),
                    contract: isin.clone(),
                }));
            }
            _ => {
                return Ok(Err(PositionDefect::NotASecurity {
                    asset: terms.security_asset,
                }));
            }
        },
        None => {
            return Ok(Err(PositionDefect::NotASecurity {
                asset: terms.security_asset,
            }));
        }
    }
    let escrow: Escrow = layout.escrow_details;
    let first = &opening.outputs[layout.escrow];
    let mut current = EscrowCoin {
        outpoint: OutPoint::new(info.issuing_txid, vout(layout.escrow)),
        asset: first.asset,
        amount: first.amount.units(),
        height: opened_height,
    };
    let mut updates = Vec::new();
    let mut closing = None;
    loop {
        let Some(txid) = source.spent_by(&current.outpoint)? else {
            break;
        };
        let unreadable = PositionDefect::EscrowSpend {
            outpoint: current.outpoint,
            txid,
        };
        let Some((spender, height)) = source.transaction(&txid)? else {
            return Ok(Err(unreadable));
        };
        let path = spender
            .inputs
            .iter()
            .find(|i| i.prevout == current.outpoint)
            .and_then(|i| classify_escrow_witness(&i.witness))
            .filter(|(_, params)| *params == escrow.params)
            .map(|(path, _)| path);
        let Some(path) = path else {
            return Ok(Err(unreadable));
        };
        // Only an agreement both parties signed carries the loan on into a new escrow
        // coin; a return or a default claim ends it whatever else it pays.
        let next = match path {
            EscrowPath::Agreement => spender
                .outputs
                .iter()
                .position(|o| o.script_pubkey == escrow.script_pubkey),
            EscrowPath::Return | EscrowPath::Default => None,
        };
        match next {
            Some(index) => {
                if updates.len() == MAX_ESCROW_UPDATES {
                    return Ok(Err(PositionDefect::TooManyUpdates));
                }
                let out = &spender.outputs[index];
                current = EscrowCoin {
                    outpoint: OutPoint::new(txid, vout(index)),
                    asset: out.asset,
                    amount: out.amount.units(),
                    height,
                };
                updates.push(EscrowUpdate {
                    txid,
                    height,
                    coin: current.clone(),
                });
            }
            None => {
                closing = Some(Closing { txid, height, path });
                break;
            }
        }
    }
    let state = match &closing {
        None => LendingState::Lent,
        Some(Closing {
            path: EscrowPath::Default,
            ..
        }) => LendingState::Defaulted,
        Some(_) => LendingState::Returned,
    };
    Ok(Ok(Position {
        asset: *asset,
        terms: terms.clone(),
        issuer: info.contract.issuer,
        opening_txid: info.issuing_txid,
        opened_height,
        grace_end_height: escrow.params.grace_end_height,
        escrow_script: escrow.script,
        escrow_script_pubkey: escrow.script_pubkey,
        state,
        escrow: closing.is_none().then_some(current),
        updates,
        closing,
    }))
}

fn vout(index: usize) -> u32 {
    // Outputs are bounded far below 2^32 by the transaction size limit.
    u32::try_from(index).unwrap_or(u32::MAX)
}

/// Every loan on the chain, and the position assets that are not loans.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LendingBook {
    /// Ordered by opening height, then opening txid, then position asset.
    pub positions: Vec<Position>,
    /// Ordered by asset id.
    pub unrecognised: Vec<Unrecognised>,
}

impl LendingBook {
    pub fn position(&self, asset: &AssetId) -> Option<&Position> {
        self.positions.iter().find(|p| p.asset == *asset)
    }
}

/// Derives every loan.
pub fn derive_book<S: LendingSource + ?Sized>(source: &S) -> Result<LendingBook, S::Error> {
    let mut positions = Vec::new();
    let mut unrecognised = Vec::new();
    for (asset, info) in source.lending_positions()? {
        match derive_from_info(source, &asset, &info)? {
            Ok(position) => positions.push(position),
            Err(defect) => unrecognised.push(Unrecognised { asset, defect }),
        }
    }
    positions.sort_by(|a, b| {
        (a.opened_height, a.opening_txid, a.asset).cmp(&(b.opened_height, b.opening_txid, b.asset))
    });
    unrecognised.sort_by_key(|u| u.asset);
    Ok(LendingBook {
        positions,
        unrecognised,
    })
}

/// The security life-cycle states of the study (section 8.1) as Settle derives them
/// for one owner and one security.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecurityState {
    /// Some units are free to lend.
    Available,
    /// Nothing free, but the owner holds units it owes back on loans it borrowed.
    Suspended,
    /// Nothing free or held, but units lent out are past their loan's maturity (due
    /// back, or claimable as a default after the grace period).
    Matured,
    /// Nothing free to lend: everything is lent out, or there is nothing.
    Unavailable,
}

impl SecurityState {
    pub fn name(self) -> &'static str {
        match self {
            SecurityState::Available => "available",
            SecurityState::Suspended => "suspended",
            SecurityState::Matured => "matured",
            SecurityState::Unavailable => "unavailable",
        }
    }
}

/// What one owner (an x-only key) has of one security, in units.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Holding {
    pub owner: [u8; 32],
    pub isin: String,
    pub security_asset: AssetId,
    /// In the owner's pay-to-key coins.
    pub held: u64,
    /// Lent out on open loans that have not reached maturity.
    pub lent: u64,
    /// Lent out on open loans at or past maturity.
    pub due: u64,
    /// Borrowed on open loans: held by the owner (or passed on) but owed back.
    pub borrowed: u64,
}

impl Holding {
    /// Units free to lend (Available): held and not owed back.
    pub fn available(&self) -> u64 {
        self.held.saturating_sub(self.borrowed)
    }

    /// Units held but owed back on open loans (Suspended): on the ledger, not lendable
    /// by this holder.
    pub fn suspended(&self) -> u64 {
        self.held.min(self.borrowed)
    }

    /// Units lent out before maturity (Unavailable until returned).
    pub fn unavailable(&self) -> u64 {
        self.lent
    }

    /// Units lent out past maturity (Matured: the lending period has ended).
    pub fn matured(&self) -> u64 {
        self.due
    }

    /// The owner's state for this security: the first of Available, Suspended,
    /// Matured that has units, else Unavailable.
    pub fn state(&self) -> SecurityState {
        if self.available() > 0 {
            SecurityState::Available
        } else if self.suspended() > 0 {
            SecurityState::Suspended
        } else if self.matured() > 0 {
            SecurityState::Matured
        } else {
            SecurityState::Unavailable
        }
    }
}

/// What every owner holds, has lent and has borrowed of every security, at `tip_height`
/// (the same tip the `book` was derived at). Owners are pay-to-key keys and the terms'
/// lender and borrower keys; coins under other scripts (multisig, HTLC, escrows) have
/// no single owner and are not counted. Ordered by ISIN, owner, asset.
pub fn security_holdings<S: LendingSource + ?Sized>(
    source: &S,
    book: &LendingBook,
    tip_height: u64,
) -> Result<Vec<Holding>, S::Error> {
    // Which assets are securities, looked up once each.
    let mut isins: HashMap<AssetId, Option<String>> = HashMap::new();
    let mut coins: Vec<([u8; 32], AssetId, u64)> = Vec::new();
    source.for_each_coin(&mut |_, coin| {
        if let ScriptKind::PayToKey(owner) = classify(&coin.output.script_pubkey) {
            coins.push((owner, coin.output.asset, coin.output.amount.units()));
        }
    })?;
    let mut held: BTreeMap<(String, [u8; 32], AssetId), u64> = BTreeMap::new();
    for (owner, asset, units) in coins {
        let isin = match isins.get(&asset) {
            Some(known) => known.clone(),
            None => {
                let found = source
                    .asset(&asset)?
                    .and_then(|info| match info.contract.class {
                        AssetClass::Security { isin } => Some(isin),
                        _ => None,
                    });
                isins.insert(asset, found.clone());
                found
            }
        };
        if let Some(isin) = isin {
            let slot = held.entry((isin, owner, asset)).or_insert(0);
            *slot = slot.saturating_add(units);
        }
    }
    let mut table: BTreeMap<(String, [u8; 32], AssetId), Holding> = BTreeMap::new();
    let blank = |key: &(String, [u8; 32], AssetId)| Holding {
        owner: key.1,
        isin: key.0.clone(),
        security_asset: key.2,
        held: 0,
        lent: 0,
        due: 0,
        borrowed: 0,
    };
    for (key, units) in held {
        let mut h = blank(&key);
        h.held = units;
        table.insert(key, h);
    }
    for p in book
        .positions
        .iter()
        .filter(|p| p.state == LendingState::Lent)
    {
        let t = &p.terms;
        let lender_key = (t.isin.clone(), t.lender, t.security_asset);
        let lender = table
            .entry(lender_key.clone())
            .or_insert_with(|| blank(&lender_key));
        if tip_height >= u64::from(t.maturity_height) {
            lender.due = lender.due.saturating_add(t.quantity);
        } else {
            lender.lent = lender.lent.saturating_add(t.quantity);
        }
        let borrower_key = (t.isin.clone(), t.borrower, t.security_asset);
        let borrower = table
            .entry(borrower_key.clone())
            .or_insert_with(|| blank(&borrower_key));
        borrower.borrowed = borrower.borrowed.saturating_add(t.quantity);
    }
    Ok(table.into_values().collect())
}

// ---- In memory ----

/// The transaction index and spend index of a chain kept in memory: what the node's
/// `tx_index` and `spends` column families hold. Fed block by block.
#[derive(Clone, Debug, Default)]
pub struct MemoryHistory {
    txs: HashMap<Txid, (Transaction, u64)>,
    spends: HashMap<OutPoint, Txid>,
}

impl MemoryHistory {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a connected block (the genesis block included).
    pub fn record_block(&mut self, block: &Block) {
        for tx in &block.transactions {
            let txid = tx.txid();
            for input in tx.inputs.iter().filter(|i| !i.prevout.is_null()) {
                self.spends.insert(input.prevout, txid);
            }
            self.txs.insert(txid, (tx.clone(), block.header.height));
        }
    }
}

/// A [`LendingSource`] over an in-memory chain state and its history.
#[derive(Clone, Copy, Debug)]
pub struct MemorySource<'a> {
    pub state: &'a MemoryState,
    pub history: &'a MemoryHistory,
}

impl LendingSource for MemorySource<'_> {
    type Error = Infallible;

    fn lending_positions(&self) -> Result<Vec<(AssetId, AssetInfo)>, Infallible> {
        Ok(self
            .state
            .assets()
            .filter(|(_, info)| matches!(info.contract.class, AssetClass::LendingPosition(_)))
            .map(|(id, info)| (*id, info.clone()))
            .collect())
    }

    fn asset(&self, asset: &AssetId) -> Result<Option<AssetInfo>, Infallible> {
        Ok(ChainView::asset(self.state, asset))
    }

    fn transaction(&self, txid: &Txid) -> Result<Option<(Transaction, u64)>, Infallible> {
        Ok(self.history.txs.get(txid).cloned())
    }

    fn spent_by(&self, outpoint: &OutPoint) -> Result<Option<Txid>, Infallible> {
        Ok(self.history.spends.get(outpoint).copied())
    }

    fn for_each_coin(&self, visit: &mut dyn FnMut(&OutPoint, &Coin)) -> Result<(), Infallible> {
        for (outpoint, coin) in self.state.coins() {
            visit(outpoint, coin);
        }
        Ok(())
    }
}
