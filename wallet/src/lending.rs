//! Securities lending in the wallet (`spec/lending.md`, sections 5 to 8 and 11): the
//! opening as a PST passed between lender and borrower, the return, the default claim and
//! margin updates.
//!
//! Opening: the lender *proposes* (its security coins, the first carrying the position
//! issuance, and the outputs of the loan), the borrower *accepts* (adds its collateral
//! and fee coins and its change), the lender *co-signs* (its inputs with `ALL`, the
//! position issuance, and the return pre-signature for the escrow coin, carried in the
//! PST), and the borrower *completes* (checks the opening and the pre-signature, then
//! signs last). A margin update goes the same way with the borrower proposing.
//!
//! Each party signs only after checking what the transaction does to it
//! ([`check_flows`]): the net amount of every asset its own scripts give and get. This
//! does not trust indices or labels in the PST, so a counterparty cannot slip in another
//! of the signer's coins.
//!
//! Pure functions from PSTs, coins and keys to PSTs and transactions; the CLI fetches
//! coins, keeps the pre-signatures and broadcasts.

use std::collections::BTreeMap;

use secp256k1::XOnlyPublicKey;
use settle_assets::transaction::TX_VERSION;
use settle_assets::{
    Amount, AssetClass, AssetContract, AssetId, ChainId, Issuance, IssuanceKind, LendingTerms,
    OutPoint, Transaction, TxIn, TxOut, Witness, check_conservation, check_transaction,
};
use settle_script::lending::{
    Escrow, LendingError, OpeningDefect, OpeningLayout, POSITION_UNITS, check_opening,
    parse_escrow_script, position_contract,
};
use settle_script::{Network, ScriptKind, SighashType, classify, p2k, verify_transaction};

use crate::coins::{BuildError, ChangeAddress, Strategy, WalletCoin, select_coins};
use crate::keys::{KeyOrigin, SigningKey, WalletKeys};
use crate::policy::{self, PolicyError, SigningPolicy};
use crate::pst::{Pst, PstError};
use crate::state::{LoanAgreement, LoanStep};

/// The global PST entry carrying the lender's return pre-signature: a private type
/// (`fc`, `spec/pst.md` 1) followed by this tag.
pub const PRESIG_KEY: &[u8] = b"\xfcsettle/lending/return-presig";
/// Owner and label names in lending PSTs.
pub const LENDER: &str = "lender";
pub const BORROWER: &str = "borrower";

/// Why a lending step could not be done. Nothing changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LendError {
    #[error("not a loan opening: {0}")]
    NotAnOpening(String),
    #[error("the opening does not match its terms: {0}")]
    Opening(#[from] OpeningDefect),
    #[error("not a margin update: {0}")]
    NotAMarginUpdate(String),
    #[error(transparent)]
    Lending(#[from] LendingError),
    #[error("this pst is at the wrong step: {0}")]
    Step(String),
    #[error(
        "the transaction does not do what this party agreed to: {asset} nets {actual} units for you, expected {expected}"
    )]
    Flows {
        asset: AssetId,
        actual: i128,
        expected: i128,
    },
    #[error("the {role} key of the loan is not one of this wallet's keys")]
    NotOurKey { role: &'static str },
    #[error("no return pre-signature in the pst: the lender has not co-signed yet")]
    NoPresignature,
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Pst(#[from] PstError),
    #[error("the finished transaction does not verify: {0}")]
    Invalid(String),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(
        "the {field} differs from what you agreed: you agreed {agreed}, the pst now says {found}"
    )]
    NotAgreed {
        field: &'static str,
        agreed: String,
        found: String,
    },
    #[error("this wallet has no record of agreeing to {0}: run the step that makes it first")]
    NoAgreement(String),
    #[error(
        "the margin update changes the collateral asset: the loan's collateral is {agreed}, the \
         {which} holds {found}"
    )]
    CollateralAsset {
        which: &'static str,
        agreed: AssetId,
        found: AssetId,
    },
    #[error(
        "the margin update releases collateral down to {new} units, below the {agreed} units \
         agreed in the loan's terms; pass the explicit allow-below-agreed flag to co-sign it"
    )]
    BelowAgreed { new: u64, agreed: u64 },
}

/// The opening a PST proposes, read from its position issuance.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Opening {
    pub terms: LendingTerms,
    pub layout: OpeningLayout,
}

impl Opening {
    pub fn escrow(&self) -> &Escrow {
        &self.layout.escrow_details
    }

    /// The loan's position asset id.
    pub fn position(&self) -> AssetId {
        self.layout.position
    }
}

fn key_of(bytes: &[u8; 32], role: &'static str) -> Result<XOnlyPublicKey, LendError> {
    XOnlyPublicKey::from_byte_array(*bytes)
        .map_err(|_| LendError::NotAnOpening(format!("the {role} key is not a valid key")))
}

fn add_input_origin(pst: &mut Pst, input: usize, coin: &WalletCoin) -> Result<(), PstError> {
    if let (Some(origin), ScriptKind::PayToKey(k)) =
        (&coin.origin, classify(&coin.txout.script_pubkey))
        && let Ok(key) = XOnlyPublicKey::from_byte_array(k)
    {
        pst.add_input_key_origin(input, &key, origin.clone())?;
    }
    Ok(())
}

fn add_output_origin(pst: &mut Pst, output: usize, c: &ChangeAddress) -> Result<(), PstError> {
    if let (Some(origin), ScriptKind::PayToKey(k)) = (&c.origin, classify(&c.script_pubkey))
        && let Ok(key) = XOnlyPublicKey::from_byte_array(k)
    {
        pst.add_output_key_origin(output, &key, origin.clone())?;
    }
    Ok(())
}

fn units(units: u64) -> Result<Amount, LendError> {
    Amount::from_units(units).ok_or(LendError::Lending(LendingError::AmountTooLarge {
        field: "amount",
        units,
    }))
}

/// The lender's proposal: `lender_coins` of the security (the first selected carries the
/// issuance of the position asset, whose contract names `issuer`), the delivery to the
/// borrower, the escrow output, the position unit (and fee) to the lender, the lender's
/// change. `lock_time` 0, `expiry_height` the settlement height. Unsigned.
pub fn propose(
    terms: &LendingTerms,
    issuer: [u8; 32],
    lender_coins: &[WalletCoin],
    change: impl FnOnce() -> Result<ChangeAddress, String>,
    chain_id: ChainId,
    network: Network,
) -> Result<(Pst, Opening), LendError> {
    let lender = key_of(&terms.lender, "lender")?;
    let borrower = key_of(&terms.borrower, "borrower")?;
    let quantity = units(terms.quantity)?;
    let selection = select_coins(
        lender_coins,
        terms.security_asset,
        quantity,
        Strategy::LargestFirst,
    )?;
    let contract = position_contract(terms, issuer);
    let contract_bytes = contract
        .to_canonical_bytes()
        .map_err(|e| LendError::NotAnOpening(format!("the position contract is invalid: {e}")))?;
    let issuance = Issuance {
        kind: IssuanceKind::New {
            contract: contract_bytes,
        },
        amount: units(POSITION_UNITS)?,
        signature: None,
    };
    let position = issuance.asset_id(&selection.coins[0].outpoint);
    let escrow = Escrow::new(position, terms)?;
    let mut inputs: Vec<TxIn> = selection
        .coins
        .iter()
        .map(|c| TxIn::spending(c.outpoint))
        .collect();
    inputs[0].issuance = Some(issuance);
    let mut outputs = vec![
        TxOut {
            asset: terms.security_asset,
            amount: quantity,
            script_pubkey: p2k(&borrower),
        },
        escrow.output(terms.collateral_asset, terms.collateral_amount)?,
        TxOut {
            asset: position,
            amount: units(POSITION_UNITS)?,
            script_pubkey: p2k(&lender),
        },
    ];
    if terms.fee > 0 {
        outputs.push(TxOut {
            asset: terms.fee_asset,
            amount: units(terms.fee)?,
            script_pubkey: p2k(&lender),
        });
    }
    let mut change_out = None;
    if selection.change > Amount::ZERO {
        let c = change().map_err(BuildError::Change)?;
        outputs.push(TxOut {
            asset: terms.security_asset,
            amount: selection.change,
            script_pubkey: c.script_pubkey.clone(),
        });
        change_out = Some((outputs.len() - 1, c));
    }
    let tx = Transaction {
        version: TX_VERSION,
        inputs,
        outputs,
        lock_time: 0,
        expiry_height: terms.settlement_height,
    };
    let spent = selection
        .coins
        .iter()
        .map(|c| Some(c.txout.clone()))
        .collect();
    let mut pst = Pst::create(tx, spent, chain_id, network)?;
    for (i, coin) in selection.coins.iter().enumerate() {
        add_input_origin(&mut pst, i, coin)?;
        pst.set_input_owner(i, LENDER)?;
    }
    pst.set_output_label(0, BORROWER)?;
    pst.set_output_label(1, "escrow")?;
    pst.set_output_witness_script(1, escrow.script.clone())?;
    for o in 2..pst.unsigned_tx().outputs.len() {
        pst.set_output_label(o, LENDER)?;
    }
    if let Some((o, c)) = change_out {
        add_output_origin(&mut pst, o, &c)?;
    }
    pst.set_expiry_note(&format!(
        "this loan opening can settle up to and including block {}",
        terms.settlement_height
    ))?;
    let opening = read_opening(&pst)?;
    Ok((pst, opening))
}

/// Reads the loan a PST opens: the terms of its `lending_position` issuance, checked with
/// `check_opening`.
pub fn read_opening(pst: &Pst) -> Result<Opening, LendError> {
    let tx = pst.unsigned_tx();
    let terms = tx
        .inputs
        .iter()
        .filter_map(|i| match &i.issuance.as_ref()?.kind {
            IssuanceKind::New { contract } => AssetContract::from_canonical_bytes(contract).ok(),
            IssuanceKind::Reissue { .. } => None,
        })
        .find_map(|c| match c.class {
            AssetClass::LendingPosition(t) => Some(*t),
            _ => None,
        })
        .ok_or_else(|| {
            LendError::NotAnOpening("no input issues a lending_position asset".into())
        })?;
    let layout = check_opening(tx, &terms)?;
    Ok(Opening { terms, layout })
}

/// The canonical bytes of the lending-position contract an opening PST issues.
fn opening_contract(pst: &Pst) -> Option<Vec<u8>> {
    pst.unsigned_tx()
        .inputs
        .iter()
        .find_map(|i| match &i.issuance.as_ref()?.kind {
            IssuanceKind::New { contract } => {
                let c = AssetContract::from_canonical_bytes(contract).ok()?;
                matches!(c.class, AssetClass::LendingPosition(_)).then(|| contract.clone())
            }
            IssuanceKind::Reissue { .. } => None,
        })
}

/// What this wallet agrees to at an opening step (`LenderProposed` after `propose`,
/// `BorrowerAccepted` after `accept`): the contract, the position, its own coins `inputs`,
/// and for the borrower, whose acceptance fixes the whole transaction, the txid.
pub fn opening_agreement(
    step: LoanStep,
    pst: &Pst,
    opening: &Opening,
    inputs: Vec<OutPoint>,
) -> Result<LoanAgreement, LendError> {
    let contract = opening_contract(pst)
        .ok_or_else(|| LendError::NotAnOpening("no lending_position issuance".into()))?;
    Ok(LoanAgreement {
        step,
        position: opening.position(),
        contract,
        inputs,
        txid: (step != LoanStep::LenderProposed).then(|| pst.txid()),
    })
}

/// What the borrower agrees to when it proposes a margin update: that exact transaction
/// (the contract is not repeated: the loan's terms are on chain).
pub fn margin_agreement(pst: &Pst, position: AssetId) -> LoanAgreement {
    LoanAgreement {
        step: LoanStep::BorrowerMargin,
        position,
        contract: Vec::new(),
        inputs: pst.unsigned_tx().inputs.iter().map(|i| i.prevout).collect(),
        txid: Some(pst.txid()),
    }
}

fn differs(field: &'static str, agreed: String, found: String) -> Result<(), LendError> {
    if agreed == found {
        Ok(())
    } else {
        Err(LendError::NotAgreed {
            field,
            agreed,
            found,
        })
    }
}

/// Compares two sets of terms field by field, naming the first that differs.
pub fn compare_terms(agreed: &LendingTerms, found: &LendingTerms) -> Result<(), LendError> {
    let key = hex::encode;
    let (a, f) = (agreed, found);
    differs("isin", a.isin.clone(), f.isin.clone())?;
    differs(
        "security asset",
        a.security_asset.to_string(),
        f.security_asset.to_string(),
    )?;
    differs("quantity", a.quantity.to_string(), f.quantity.to_string())?;
    differs("lender key", key(a.lender), key(f.lender))?;
    differs("borrower key", key(a.borrower), key(f.borrower))?;
    differs(
        "collateral asset",
        a.collateral_asset.to_string(),
        f.collateral_asset.to_string(),
    )?;
    differs(
        "collateral amount",
        a.collateral_amount.to_string(),
        f.collateral_amount.to_string(),
    )?;
    differs(
        "fee asset",
        a.fee_asset.to_string(),
        f.fee_asset.to_string(),
    )?;
    differs("fee", a.fee.to_string(), f.fee.to_string())?;
    differs(
        "interest rate (bps)",
        a.interest_rate_bps.to_string(),
        f.interest_rate_bps.to_string(),
    )?;
    differs(
        "settlement height",
        a.settlement_height.to_string(),
        f.settlement_height.to_string(),
    )?;
    differs(
        "maturity height",
        a.maturity_height.to_string(),
        f.maturity_height.to_string(),
    )?;
    differs(
        "grace period",
        a.grace_period_blocks.to_string(),
        f.grace_period_blocks.to_string(),
    )?;
    differs(
        "negotiator",
        format!("{:?}", a.negotiator),
        format!("{:?}", f.negotiator),
    )?;
    differs(
        "lender player",
        format!("{:?}", a.lender_player),
        format!("{:?}", f.lender_player),
    )
}

fn position_terms(contract: &[u8], what: &str) -> Result<(AssetContract, LendingTerms), LendError> {
    let c = AssetContract::from_canonical_bytes(contract)
        .map_err(|e| LendError::NotAnOpening(format!("{what} contract: {e}")))?;
    match &c.class {
        AssetClass::LendingPosition(t) => {
            let t = (**t).clone();
            Ok((c, t))
        }
        _ => Err(LendError::NotAnOpening(format!(
            "{what} contract is not a lending position"
        ))),
    }
}

/// Refuses `pst` unless it is what `agreed` records: the same terms (field by field), the
/// same issuer and contract, the same position, this wallet's coins all in it, and, when
/// the agreement fixed the whole transaction, the same transaction.
pub fn check_agreement(agreed: &LoanAgreement, pst: &Pst) -> Result<(), LendError> {
    if !agreed.contract.is_empty() {
        let found = opening_contract(pst).ok_or_else(|| LendError::NotAgreed {
            field: "position contract",
            agreed: "a lending position issuance".into(),
            found: "none".into(),
        })?;
        let (ac, at) = position_terms(&agreed.contract, "the agreed")?;
        let (fc, ft) = position_terms(&found, "the pst's")?;
        compare_terms(&at, &ft)?;
        differs(
            "position issuer",
            hex::encode(ac.issuer),
            hex::encode(fc.issuer),
        )?;
        let hash = |b: &[u8]| hex::encode(bitcoin_hashes::sha256::Hash::hash(b).to_byte_array());
        differs(
            "position contract hash",
            hash(&agreed.contract),
            hash(&found),
        )?;
        let opening = read_opening(pst)?;
        differs(
            "position asset",
            agreed.position.to_string(),
            opening.position().to_string(),
        )?;
    }
    let present: Vec<OutPoint> = pst.unsigned_tx().inputs.iter().map(|i| i.prevout).collect();
    if let Some(missing) = agreed.inputs.iter().find(|o| !present.contains(o)) {
        return Err(LendError::NotAgreed {
            field: "inputs",
            agreed: format!("your coin {missing} among them"),
            found: "it is missing".into(),
        });
    }
    if let Some(txid) = agreed.txid {
        differs("transaction", txid.to_string(), pst.txid().to_string())?;
    }
    Ok(())
}

/// The outputs each input spends, all known (an error names the first unknown one).
pub fn spent_outputs(pst: &Pst) -> Result<Vec<TxOut>, LendError> {
    pst.unsigned_tx()
        .inputs
        .iter()
        .zip(pst.inputs())
        .enumerate()
        .map(|(i, (txin, inp))| {
            if txin.prevout.is_null() {
                return Ok(TxOut::NONE);
            }
            inp.spent_output
                .clone()
                .ok_or(LendError::Pst(PstError::SpentOutputUnknown { input: i }))
        })
        .collect()
}

/// Whether every asset balances (inputs plus issuance equal outputs).
pub fn is_funded(pst: &Pst) -> Result<bool, LendError> {
    let spent = spent_outputs(pst)?;
    Ok(check_conservation(pst.unsigned_tx(), &spent).is_ok())
}

/// Per asset, what the scripts `ours` recognises get minus what they give.
pub fn net_flows(
    tx: &Transaction,
    spent: &[TxOut],
    ours: &dyn Fn(&[u8]) -> bool,
) -> BTreeMap<AssetId, i128> {
    let mut m: BTreeMap<AssetId, i128> = BTreeMap::new();
    for s in spent.iter().filter(|s| ours(&s.script_pubkey)) {
        *m.entry(s.asset).or_default() -= i128::from(s.amount.units());
    }
    for o in tx.outputs.iter().filter(|o| ours(&o.script_pubkey)) {
        *m.entry(o.asset).or_default() += i128::from(o.amount.units());
    }
    m
}

/// Refuses a transaction whose net effect on `ours` differs from `expected` (assets not
/// named must net to 0).
pub fn check_flows(
    tx: &Transaction,
    spent: &[TxOut],
    ours: &dyn Fn(&[u8]) -> bool,
    expected: &BTreeMap<AssetId, i128>,
) -> Result<(), LendError> {
    let actual = net_flows(tx, spent, ours);
    let assets: std::collections::BTreeSet<&AssetId> =
        actual.keys().chain(expected.keys()).collect();
    for asset in assets {
        let a = actual.get(asset).copied().unwrap_or(0);
        let e = expected.get(asset).copied().unwrap_or(0);
        if a != e {
            return Err(LendError::Flows {
                asset: *asset,
                actual: a,
                expected: e,
            });
        }
    }
    Ok(())
}

fn add(m: &mut BTreeMap<AssetId, i128>, asset: AssetId, units: u64, sign: i128) {
    *m.entry(asset).or_default() += sign * i128::from(units);
}

/// What the opening does to the lender: gives the quantity, gets the fee and the position.
pub fn lender_expected(o: &Opening) -> BTreeMap<AssetId, i128> {
    let mut m = BTreeMap::new();
    add(&mut m, o.terms.security_asset, o.terms.quantity, -1);
    add(&mut m, o.terms.fee_asset, o.terms.fee, 1);
    add(&mut m, o.position(), POSITION_UNITS, 1);
    m.retain(|_, v| *v != 0);
    m
}

/// What the opening does to the borrower: gets the quantity, gives collateral and fee.
pub fn borrower_expected(o: &Opening) -> BTreeMap<AssetId, i128> {
    let mut m = BTreeMap::new();
    add(&mut m, o.terms.security_asset, o.terms.quantity, 1);
    add(
        &mut m,
        o.terms.collateral_asset,
        o.terms.collateral_amount,
        -1,
    );
    add(&mut m, o.terms.fee_asset, o.terms.fee, -1);
    m.retain(|_, v| *v != 0);
    m
}

/// The borrower's acceptance: appends coins of the collateral and fee assets and the
/// change. Unsigned: the borrower signs last ([`complete_opening`]).
pub fn accept(
    proposal: &Pst,
    borrower_coins: &[WalletCoin],
    mut change: impl FnMut() -> Result<ChangeAddress, String>,
) -> Result<(Pst, Opening), LendError> {
    let opening = read_opening(proposal)?;
    if is_funded(proposal)? {
        return Err(LendError::Step(
            "the proposal is already funded (accepted before?)".into(),
        ));
    }
    let t = &opening.terms;
    let mut needs: BTreeMap<AssetId, u64> = BTreeMap::new();
    for (asset, amount) in [
        (t.collateral_asset, t.collateral_amount),
        (t.fee_asset, t.fee),
    ] {
        if amount > 0 {
            let slot = needs.entry(asset).or_default();
            *slot = slot
                .checked_add(amount)
                .ok_or(LendingError::AmountTooLarge {
                    field: "collateral plus fee",
                    units: u64::MAX,
                })?;
        }
    }
    let mut pst = proposal.clone();
    for (asset, need) in needs {
        let selection = select_coins(
            borrower_coins,
            asset,
            units(need)?,
            Strategy::BranchAndBound,
        )?;
        for coin in &selection.coins {
            let i = pst.add_input(TxIn::spending(coin.outpoint), Some(coin.txout.clone()))?;
            add_input_origin(&mut pst, i, coin)?;
            pst.set_input_owner(i, BORROWER)?;
        }
        if selection.change > Amount::ZERO {
            let c = change().map_err(BuildError::Change)?;
            let o = pst.add_output(TxOut {
                asset,
                amount: selection.change,
                script_pubkey: c.script_pubkey.clone(),
            })?;
            add_output_origin(&mut pst, o, &c)?;
            pst.set_output_label(o, BORROWER)?;
        }
    }
    if !is_funded(&pst)? {
        return Err(LendError::Step(
            "the proposal does not balance even with the borrower's coins".into(),
        ));
    }
    Ok((pst, opening))
}

/// The return pre-signature a PST carries.
pub fn presignature(pst: &Pst) -> Option<&Vec<u8>> {
    pst.unknown.get(PRESIG_KEY)
}

/// The lender's co-signature of an accepted opening: checks it against the lender's own
/// stored proposal `agreed` (terms field by field, contract, position, its coins), what it
/// does to the lender, then signs exactly the lender's agreed coins with `ALL` through the
/// signing policy (an input not among them that asks for a lender key refuses the PST),
/// the position issuance with `issuer`, and makes the return pre-signature with
/// `lender_key` (the key `terms.lender`).
pub fn cosign_opening(
    accepted: &Pst,
    agreed: &LoanAgreement,
    keys: &WalletKeys,
    lender_key: &SigningKey,
    issuer: &SigningKey,
    ours: &dyn Fn(&[u8]) -> bool,
) -> Result<(Pst, Opening), LendError> {
    let opening = read_opening(accepted)?;
    if !is_funded(accepted)? {
        return Err(LendError::Step(
            "the borrower has not accepted it yet (its collateral and fee are missing)".into(),
        ));
    }
    if agreed.step != LoanStep::LenderProposed {
        return Err(LendError::NoAgreement("this loan as its lender".into()));
    }
    check_agreement(agreed, accepted)?;
    if lender_key.x_only_bytes() != opening.terms.lender {
        return Err(LendError::NotOurKey { role: "lender" });
    }
    let spent = spent_outputs(accepted)?;
    check_flows(
        accepted.unsigned_tx(),
        &spent,
        ours,
        &lender_expected(&opening),
    )?;
    let issuing = accepted.unsigned_tx().inputs[opening.layout.issuance_input].prevout;
    let rules = SigningPolicy::all(agreed.inputs.iter().copied()).with_issuance(issuing);
    let mut pst = accepted.clone();
    policy::sign(&mut pst, Some(keys), &[lender_key], &rules)?;
    pst.sign_issuance(opening.layout.issuance_input, issuer)?;
    let escrow_index = opening.layout.escrow;
    let outpoint = OutPoint::new(pst.txid(), vout(escrow_index));
    let sig = opening.escrow().sign_return(
        pst.chain_id,
        outpoint,
        &pst.unsigned_tx().outputs[escrow_index],
        lender_key.keypair(),
    )?;
    pst.unknown.insert(PRESIG_KEY.to_vec(), sig);
    Ok((pst, opening))
}

fn vout(index: usize) -> u32 {
    u32::try_from(index).unwrap_or(u32::MAX)
}

/// What the borrower ends up with: the finished transaction and the pre-signature of the
/// escrow coin it creates.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Completed {
    pub tx: Transaction,
    pub escrow: OutPoint,
    pub escrow_output: TxOut,
    pub presignature: Vec<u8>,
}

/// The borrower's completion of a co-signed opening: checks the opening, what it does to
/// the borrower and the pre-signature, and only then signs the borrower's inputs.
pub fn complete_opening(
    cosigned: &Pst,
    agreed: &LoanAgreement,
    keys: &WalletKeys,
    ours: &dyn Fn(&[u8]) -> bool,
) -> Result<(Completed, Opening), LendError> {
    let opening = read_opening(cosigned)?;
    if agreed.step != LoanStep::BorrowerAccepted {
        return Err(LendError::NoAgreement("this loan as its borrower".into()));
    }
    check_agreement(agreed, cosigned)?;
    let presig = presignature(cosigned)
        .ok_or(LendError::NoPresignature)?
        .clone();
    let spent = spent_outputs(cosigned)?;
    check_flows(
        cosigned.unsigned_tx(),
        &spent,
        ours,
        &borrower_expected(&opening),
    )?;
    let escrow_index = opening.layout.escrow;
    let outpoint = OutPoint::new(cosigned.txid(), vout(escrow_index));
    let escrow_output = cosigned.unsigned_tx().outputs[escrow_index].clone();
    opening
        .escrow()
        .verify_return(cosigned.chain_id, outpoint, &escrow_output, &presig)?;
    let mut pst = cosigned.clone();
    let rules = SigningPolicy::all(agreed.inputs.iter().copied());
    policy::sign(&mut pst, Some(keys), &[], &rules)?;
    pst.finalize()?;
    let tx = pst.extract()?;
    Ok((
        Completed {
            tx,
            escrow: outpoint,
            escrow_output,
            presignature: presig,
        },
        opening,
    ))
}

/// The escrow of a loan read from a PST input's witness script and the loan's terms.
pub fn escrow_of_input(pst: &Pst, input: usize, terms: &LendingTerms) -> Result<Escrow, LendError> {
    let bad = |m: &str| LendError::NotAMarginUpdate(m.to_owned());
    let inp = pst
        .inputs()
        .get(input)
        .ok_or_else(|| bad("no escrow input"))?;
    let script = inp
        .witness_script
        .as_ref()
        .ok_or_else(|| bad("input 0 carries no escrow script"))?;
    let params = parse_escrow_script(script).ok_or_else(|| bad("input 0 is not an escrow"))?;
    let escrow = Escrow::new(params.position, terms)?;
    if escrow.script != *script {
        return Err(bad("the escrow script is not the loan's"));
    }
    Ok(escrow)
}

/// The position a margin PST updates, read from its first input's escrow script.
pub fn margin_position(pst: &Pst) -> Option<AssetId> {
    let script = pst.inputs().first()?.witness_script.as_ref()?;
    parse_escrow_script(script).map(|p| p.position)
}

/// The borrower's margin proposal: the escrow coin `escrow_coin` (input 0) into a new
/// escrow coin of `new_amount` (output 0); a top-up adds the borrower's coins, a release
/// pays the excess to `release_to`. Unsigned.
#[allow(clippy::too_many_arguments)]
pub fn propose_margin(
    escrow: &Escrow,
    escrow_coin: (OutPoint, TxOut),
    new_amount: u64,
    borrower_coins: &[WalletCoin],
    borrower_origin: Option<KeyOrigin>,
    mut address: impl FnMut() -> Result<ChangeAddress, String>,
    chain_id: ChainId,
    network: Network,
) -> Result<Pst, LendError> {
    let (outpoint, coin) = escrow_coin;
    if coin.script_pubkey != escrow.script_pubkey {
        return Err(LendError::NotAMarginUpdate(
            "the coin is not at the loan's escrow address".into(),
        ));
    }
    let old = coin.amount.units();
    if new_amount == 0 || new_amount == old {
        return Err(LendError::NotAMarginUpdate(format!(
            "the new collateral must be more than 0 and differ from the {old} units in escrow"
        )));
    }
    let tx = Transaction {
        version: TX_VERSION,
        inputs: vec![TxIn::spending(outpoint)],
        outputs: vec![escrow.output(coin.asset, new_amount)?],
        lock_time: 0,
        expiry_height: 0,
    };
    let mut pst = Pst::create(tx, vec![Some(coin.clone())], chain_id, network)?;
    pst.set_witness_script(0, escrow.script.clone())?;
    pst.set_output_witness_script(0, escrow.script.clone())?;
    pst.set_input_owner(0, "escrow")?;
    pst.set_output_label(0, "escrow")?;
    if let Some(origin) = borrower_origin {
        pst.add_input_key_origin(0, &escrow.params.borrower, origin)?;
    }
    if new_amount > old {
        let selection = select_coins(
            borrower_coins,
            coin.asset,
            units(new_amount - old)?,
            Strategy::BranchAndBound,
        )?;
        for c in &selection.coins {
            let i = pst.add_input(TxIn::spending(c.outpoint), Some(c.txout.clone()))?;
            add_input_origin(&mut pst, i, c)?;
            pst.set_input_owner(i, BORROWER)?;
        }
        if selection.change > Amount::ZERO {
            let c = address().map_err(BuildError::Change)?;
            let o = pst.add_output(TxOut {
                asset: coin.asset,
                amount: selection.change,
                script_pubkey: c.script_pubkey.clone(),
            })?;
            add_output_origin(&mut pst, o, &c)?;
            pst.set_output_label(o, BORROWER)?;
        }
    } else {
        let c = address().map_err(BuildError::Change)?;
        let o = pst.add_output(TxOut {
            asset: coin.asset,
            amount: units(old - new_amount)?,
            script_pubkey: c.script_pubkey.clone(),
        })?;
        add_output_origin(&mut pst, o, &c)?;
        pst.set_output_label(o, BORROWER)?;
    }
    Ok(pst)
}

/// What a margin PST changes: the old and new collateral in escrow. Both escrow coins
/// must hold the loan's collateral asset (a swap to another asset is refused, naming it)
/// and nothing may be issued.
pub fn margin_amounts(
    pst: &Pst,
    escrow: &Escrow,
    terms: &LendingTerms,
) -> Result<(u64, u64), LendError> {
    let bad = |m: &str| LendError::NotAMarginUpdate(m.to_owned());
    let tx = pst.unsigned_tx();
    let old = pst
        .inputs()
        .first()
        .and_then(|i| i.spent_output.as_ref())
        .ok_or_else(|| bad("the escrow coin is not described"))?;
    let new = tx
        .outputs
        .first()
        .ok_or_else(|| bad("no new escrow output"))?;
    if old.script_pubkey != escrow.script_pubkey || new.script_pubkey != escrow.script_pubkey {
        return Err(bad("input 0 and output 0 must be the loan's escrow"));
    }
    if tx
        .outputs
        .iter()
        .skip(1)
        .any(|o| o.script_pubkey == escrow.script_pubkey)
    {
        return Err(bad("only output 0 may pay the escrow"));
    }
    if tx.inputs.iter().any(|i| i.issuance.is_some()) {
        return Err(bad("a margin update issues nothing"));
    }
    for (which, coin) in [("escrow coin spent", old), ("new escrow output", new)] {
        if coin.asset != terms.collateral_asset {
            return Err(LendError::CollateralAsset {
                which,
                agreed: terms.collateral_asset,
                found: coin.asset,
            });
        }
    }
    Ok((old.amount.units(), new.amount.units()))
}

/// The lender's co-signature of a margin update: checks the collateral asset, that a
/// release does not go below the agreed collateral unless `allow_below_agreed`, that it
/// neither takes from nor pays the lender, then signs only the escrow input with `ALL`
/// (through the signing policy) and pre-signs the return of the new escrow coin.
pub fn cosign_margin(
    proposal: &Pst,
    terms: &LendingTerms,
    keys: &WalletKeys,
    lender_key: &SigningKey,
    ours: &dyn Fn(&[u8]) -> bool,
    allow_below_agreed: bool,
) -> Result<Pst, LendError> {
    let escrow = escrow_of_input(proposal, 0, terms)?;
    let (_, new) = margin_amounts(proposal, &escrow, terms)?;
    if new < terms.collateral_amount && !allow_below_agreed {
        return Err(LendError::BelowAgreed {
            new,
            agreed: terms.collateral_amount,
        });
    }
    if lender_key.x_only_bytes() != terms.lender {
        return Err(LendError::NotOurKey { role: "lender" });
    }
    if !is_funded(proposal)? {
        return Err(LendError::NotAMarginUpdate(
            "it does not balance: the borrower's coins are missing".into(),
        ));
    }
    let spent = spent_outputs(proposal)?;
    check_flows(proposal.unsigned_tx(), &spent, ours, &BTreeMap::new())?;
    let mut pst = proposal.clone();
    let escrow_coin = pst.unsigned_tx().inputs[0].prevout;
    let rules = SigningPolicy::new().with_coin(escrow_coin, spent[0].clone(), SighashType::All);
    policy::sign(&mut pst, Some(keys), &[lender_key], &rules)?;
    let outpoint = OutPoint::new(pst.txid(), 0);
    let sig = escrow.sign_return(
        pst.chain_id,
        outpoint,
        &pst.unsigned_tx().outputs[0],
        lender_key.keypair(),
    )?;
    pst.unknown.insert(PRESIG_KEY.to_vec(), sig);
    Ok(pst)
}

/// The borrower's completion of a co-signed margin update: checks what it does to the
/// borrower and the new pre-signature, signs, and builds the escrow input's agreement
/// witness.
pub fn complete_margin(
    cosigned: &Pst,
    agreed: &LoanAgreement,
    terms: &LendingTerms,
    borrower_key: &SigningKey,
    keys: &WalletKeys,
    ours: &dyn Fn(&[u8]) -> bool,
) -> Result<Completed, LendError> {
    if agreed.step != LoanStep::BorrowerMargin {
        return Err(LendError::NoAgreement("this margin update".into()));
    }
    check_agreement(agreed, cosigned)?;
    let escrow = escrow_of_input(cosigned, 0, terms)?;
    let (old, new) = margin_amounts(cosigned, &escrow, terms)?;
    let presig = presignature(cosigned)
        .ok_or(LendError::NoPresignature)?
        .clone();
    let spent = spent_outputs(cosigned)?;
    let asset = spent[0].asset;
    let mut expected = BTreeMap::new();
    expected.insert(asset, i128::from(old) - i128::from(new));
    expected.retain(|_, v| *v != 0);
    check_flows(cosigned.unsigned_tx(), &spent, ours, &expected)?;
    let outpoint = OutPoint::new(cosigned.txid(), 0);
    let escrow_output = cosigned.unsigned_tx().outputs[0].clone();
    escrow.verify_return(cosigned.chain_id, outpoint, &escrow_output, &presig)?;
    let lender_sig = cosigned.inputs()[0]
        .partial_sigs
        .get(&terms.lender)
        .copied()
        .ok_or(LendError::Step(
            "the lender has not signed the escrow input".into(),
        ))?;
    let mut pst = cosigned.clone();
    let rules = SigningPolicy::all(agreed.inputs.iter().copied());
    policy::sign(&mut pst, Some(keys), &[borrower_key], &rules)?;
    let borrower_sig = pst.inputs()[0]
        .partial_sigs
        .get(&terms.borrower)
        .copied()
        .ok_or(LendError::NotOurKey { role: "borrower" })?;
    let witness = escrow.agreement_witness(borrower_sig.encoded(), lender_sig.encoded());
    let tx = assemble(&pst, &BTreeMap::from([(0, witness)]))?;
    Ok(Completed {
        tx,
        escrow: outpoint,
        escrow_output,
        presignature: presig,
    })
}

/// The finished transaction of `pst`: the escrow inputs get the witnesses in `escrow`,
/// every other input is finalized by the PST finalizer. Checked as a node would without
/// the chain (context-free checks, conservation, every script).
pub fn assemble(pst: &Pst, escrow: &BTreeMap<usize, Witness>) -> Result<Transaction, LendError> {
    let mut work = pst.clone();
    for i in 0..work.inputs().len() {
        if !escrow.contains_key(&i) {
            work.finalize_input(i)?;
        }
    }
    let mut tx = work.unsigned_tx().clone();
    for (i, txin) in tx.inputs.iter_mut().enumerate() {
        txin.witness = match escrow.get(&i) {
            Some(w) => w.clone(),
            None => work.inputs()[i]
                .final_witness
                .clone()
                .ok_or(PstError::NotFinalized { input: i })?,
        };
    }
    let spent = spent_outputs(pst)?;
    check_transaction(&tx).map_err(|e| LendError::Invalid(e.to_string()))?;
    check_conservation(&tx, &spent).map_err(|e| LendError::Invalid(e.to_string()))?;
    verify_transaction(&tx, &spent, pst.chain_id).map_err(|e| LendError::Invalid(e.to_string()))?;
    Ok(tx)
}

/// The borrower's return: the pre-signed skeleton (escrow coin in, the full quantity to
/// the lender out), plus the borrower's security coins, the collateral to `collateral_to`
/// and the security change. Signed and checked.
#[allow(clippy::too_many_arguments)]
pub fn build_return(
    escrow: &Escrow,
    escrow_coin: (OutPoint, TxOut),
    presignature: &[u8],
    borrower_key: &SigningKey,
    borrower_coins: &[WalletCoin],
    keys: &WalletKeys,
    collateral_to: ChangeAddress,
    change: impl FnOnce() -> Result<ChangeAddress, String>,
    chain_id: ChainId,
    network: Network,
) -> Result<Transaction, LendError> {
    let (outpoint, coin) = escrow_coin;
    escrow.verify_return(chain_id, outpoint, &coin, presignature)?;
    let mut tx = escrow.return_skeleton(outpoint);
    let selection = select_coins(
        borrower_coins,
        escrow.return_output.asset,
        escrow.return_output.amount,
        Strategy::BranchAndBound,
    )?;
    tx.inputs
        .extend(selection.coins.iter().map(|c| TxIn::spending(c.outpoint)));
    tx.outputs.push(TxOut {
        asset: coin.asset,
        amount: coin.amount,
        script_pubkey: collateral_to.script_pubkey.clone(),
    });
    if selection.change > Amount::ZERO {
        let c = change().map_err(BuildError::Change)?;
        tx.outputs.push(TxOut {
            asset: escrow.return_output.asset,
            amount: selection.change,
            script_pubkey: c.script_pubkey,
        });
    }
    let mut spent = vec![Some(coin)];
    spent.extend(selection.coins.iter().map(|c| Some(c.txout.clone())));
    let mut pst = Pst::create(tx, spent, chain_id, network)?;
    pst.set_witness_script(0, escrow.script.clone())?;
    for (i, c) in selection.coins.iter().enumerate() {
        add_input_origin(&mut pst, i + 1, c)?;
    }
    let rules = SigningPolicy::all(pst.unsigned_tx().inputs.iter().map(|i| i.prevout));
    policy::sign(&mut pst, Some(keys), &[borrower_key], &rules)?;
    let borrower_sig = pst.inputs()[0]
        .partial_sigs
        .get(&borrower_key.x_only_bytes())
        .copied()
        .ok_or(LendError::NotOurKey { role: "borrower" })?;
    let witness = escrow.return_witness(borrower_sig.encoded(), presignature.to_vec());
    assemble(&pst, &BTreeMap::from([(0, witness)]))
}

/// The lender's default claim: the escrow coin to `to`, lock time the grace end height.
pub fn build_claim(
    escrow: &Escrow,
    escrow_coin: (OutPoint, TxOut),
    lender_key: &SigningKey,
    to: Vec<u8>,
    chain_id: ChainId,
    network: Network,
) -> Result<Transaction, LendError> {
    let (outpoint, coin) = escrow_coin;
    let tx = escrow.claim_skeleton(outpoint, &coin, to);
    let mut pst = Pst::create(tx, vec![Some(coin)], chain_id, network)?;
    pst.set_witness_script(0, escrow.script.clone())?;
    let rules = SigningPolicy::all([outpoint]);
    policy::sign(&mut pst, None, &[lender_key], &rules)?;
    let sig = pst.inputs()[0]
        .partial_sigs
        .get(&lender_key.x_only_bytes())
        .copied()
        .ok_or(LendError::NotOurKey { role: "lender" })?;
    let witness = escrow.claim_witness(sig.encoded());
    assemble(&pst, &BTreeMap::from([(0, witness)]))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::{BOND, CHAIN, EUR, change, coin, loan_terms, ours, wallet};

    #[test]
    fn an_opening_goes_through_propose_accept_cosign_complete() {
        let (lender, borrower) = (wallet(1), wallet(2));
        let issuer = SigningKey::from_secret_bytes([9; 32]).expect("issuer");
        let lender_key = lender.derive(0, 3).expect("k");
        let borrower_key = borrower.derive(0, 3).expect("k");
        let terms = loan_terms(
            lender_key.key.x_only_bytes(),
            borrower_key.key.x_only_bytes(),
        );
        let (proposal, opening) = propose(
            &terms,
            issuer.x_only_bytes(),
            &[coin(&lender, 0, 1, BOND, 25)],
            || Ok(change(&lender, 0)),
            CHAIN,
            Network::Dev,
        )
        .expect("propose");
        assert_eq!(opening.terms, terms);
        assert!(!is_funded(&proposal).expect("funded?"));
        let lender_agreed = opening_agreement(
            LoanStep::LenderProposed,
            &proposal,
            &opening,
            proposal
                .unsigned_tx()
                .inputs
                .iter()
                .map(|i| i.prevout)
                .collect(),
        )
        .expect("agreement");
        // Too early for the lender to co-sign.
        assert!(matches!(
            cosign_opening(
                &proposal,
                &lender_agreed,
                &lender,
                &lender_key.key,
                &issuer,
                &ours(&lender)
            ),
            Err(LendError::Step(_))
        ));
        let text = proposal.to_base64();
        let proposal = Pst::from_base64(&text).expect("decode");
        let (accepted, _) = accept(
            &proposal,
            &[
                coin(&borrower, 0, 2, EUR, 600),
                coin(&borrower, 1, 3, EUR, 600),
            ],
            || Ok(change(&borrower, 0)),
        )
        .expect("accept");
        let borrower_agreed = opening_agreement(
            LoanStep::BorrowerAccepted,
            &accepted,
            &opening,
            accepted.unsigned_tx().inputs[proposal.inputs().len()..]
                .iter()
                .map(|i| i.prevout)
                .collect(),
        )
        .expect("agreement");
        // The borrower cannot complete before the lender's pre-signature.
        assert!(matches!(
            complete_opening(&accepted, &borrower_agreed, &borrower, &ours(&borrower)),
            Err(LendError::NoPresignature)
        ));
        let (cosigned, _) = cosign_opening(
            &accepted,
            &lender_agreed,
            &lender,
            &lender_key.key,
            &issuer,
            &ours(&lender),
        )
        .expect("cosign");
        // A tampered pre-signature is refused before the borrower signs anything.
        let mut forged = cosigned.clone();
        let mut bad = presignature(&cosigned).expect("presig").clone();
        bad[0] ^= 1;
        forged.unknown.insert(PRESIG_KEY.to_vec(), bad);
        assert!(matches!(
            complete_opening(&forged, &borrower_agreed, &borrower, &ours(&borrower)),
            Err(LendError::Lending(LendingError::BadReturnSignature(_)))
        ));
        let (done, _) = complete_opening(&cosigned, &borrower_agreed, &borrower, &ours(&borrower))
            .expect("complete");
        assert_eq!(done.tx.txid(), accepted.txid());
        assert_eq!(done.escrow_output.amount.units(), 1_000);

        // The return and the claim verify against the escrow coin.
        let escrow = opening.escrow();
        let coin_b = coin(&borrower, 2, 4, BOND, 10);
        let ret = build_return(
            escrow,
            (done.escrow, done.escrow_output.clone()),
            &done.presignature,
            &borrower_key.key,
            &[coin_b],
            &borrower,
            change(&borrower, 1),
            || Ok(change(&borrower, 2)),
            CHAIN,
            Network::Dev,
        )
        .expect("return");
        assert_eq!(ret.outputs[0], escrow.return_output);
        // Not enough securities: nothing is built.
        assert!(matches!(
            build_return(
                escrow,
                (done.escrow, done.escrow_output.clone()),
                &done.presignature,
                &borrower_key.key,
                &[coin(&borrower, 2, 4, BOND, 9)],
                &borrower,
                change(&borrower, 1),
                || Ok(change(&borrower, 2)),
                CHAIN,
                Network::Dev,
            ),
            Err(LendError::Build(BuildError::InsufficientFunds { .. }))
        ));
        let claim = build_claim(
            escrow,
            (done.escrow, done.escrow_output.clone()),
            &lender_key.key,
            p2k(&lender_key.x_only()),
            CHAIN,
            Network::Dev,
        )
        .expect("claim");
        assert_eq!(claim.lock_time, escrow.params.grace_end_height);

        // Margin top-up: borrower proposes, lender co-signs, borrower completes.
        let m = propose_margin(
            escrow,
            (done.escrow, done.escrow_output.clone()),
            1_200,
            &[coin(&borrower, 0, 5, EUR, 500)],
            Some(borrower_key.origin.clone()),
            || Ok(change(&borrower, 3)),
            CHAIN,
            Network::Dev,
        )
        .expect("margin");
        assert_eq!(margin_position(&m), Some(opening.position()));
        let margin_agreed = margin_agreement(&m, opening.position());
        assert!(matches!(
            complete_margin(
                &m,
                &margin_agreed,
                &terms,
                &borrower_key.key,
                &borrower,
                &ours(&borrower)
            ),
            Err(LendError::NoPresignature)
        ));
        let m = cosign_margin(&m, &terms, &lender, &lender_key.key, &ours(&lender), false)
            .expect("cosign");
        let done_m = complete_margin(
            &m,
            &margin_agreed,
            &terms,
            &borrower_key.key,
            &borrower,
            &ours(&borrower),
        )
        .expect("complete margin");
        assert_eq!(done_m.escrow_output.amount.units(), 1_200);
        assert_eq!(done_m.escrow, OutPoint::new(done_m.tx.txid(), 0));
        // The lender refuses to co-sign an update that takes from it.
        let m2 = propose_margin(
            escrow,
            (done.escrow, done.escrow_output.clone()),
            900,
            &[],
            Some(borrower_key.origin.clone()),
            || Ok(change(&lender, 1)),
            CHAIN,
            Network::Dev,
        )
        .expect("release proposal");
        assert!(matches!(
            cosign_margin(&m2, &terms, &lender, &lender_key.key, &ours(&lender), true),
            Err(LendError::Flows { .. })
        ));
        // A release below the agreed 1,000 needs the explicit flag.
        assert!(matches!(
            cosign_margin(&m2, &terms, &lender, &lender_key.key, &ours(&lender), false),
            Err(LendError::BelowAgreed {
                new: 900,
                agreed: 1_000
            })
        ));
    }
}
