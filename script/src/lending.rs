//! The securities-lending escrow: its script, the witnesses of its three ways out, the
//! lender's return pre-signature, and the shape of a well-formed loan opening.
//!
//! The escrow is a pay-to-script-hash output holding the collateral of one loan:
//!
//! ```text
//! <position asset id> OP_DROP
//! OP_IF
//!     <lender> OP_CHECKSIGVERIFY <borrower> OP_CHECKSIG
//! OP_ELSE
//!     <grace end height> OP_CHECKLOCKTIMEVERIFY OP_DROP <lender> OP_CHECKSIG
//! OP_ENDIF
//! ```
//!
//! - **Return**: the borrower spends it with the lender's `SINGLE|ANYONECANPAY`
//!   signature, made when the loan opened, which binds the escrow coin to an output at
//!   the same index paying the full quantity of the security back to the lender, plus
//!   the borrower's own signature. No help from the lender is needed.
//! - **Agreement** (margin top-up or release, recall, early or late return): both
//!   parties sign the spend as they please (the same branch; the lender's signature
//!   type tells the two apart in the record).
//! - **Default**: after the grace period (`maturity + grace`) the lender alone takes
//!   the coin; `OP_CHECKLOCKTIMEVERIFY` holds it back until then.
//!
//! The first push commits the script to the loan's position asset, so each loan has
//! its own escrow address and the chain can be read back unambiguously. The normative
//! text is `spec/lending.md`; `spec/vectors/lending.json` pins the bytes.

use secp256k1::{Keypair, SECP256K1, XOnlyPublicKey, schnorr};
use settle_assets::Amount;
use settle_assets::contract::{AssetClass, AssetContract, LendingTerms};
use settle_assets::hash::{AssetId, ChainId};
use settle_assets::transaction::{
    Issuance, IssuanceKind, LOCKTIME_THRESHOLD, OutPoint, SEQUENCE_FINAL, TX_VERSION, Transaction,
    TxIn, TxOut, Witness,
};

use crate::error::ScriptError;
use crate::instruction::{Instruction, Instructions};
use crate::interpreter::parse_signature;
use crate::limits::{KEY_BYTES, MAX_LOCKTIME_NUM_BYTES};
use crate::num;
use crate::opcodes::{
    OP_1, OP_16, OP_CHECKLOCKTIMEVERIFY, OP_CHECKSIG, OP_CHECKSIGVERIFY, OP_DROP, OP_ELSE,
    OP_ENDIF, OP_IF,
};
use crate::sighash::{PrecomputedTx, SighashType};
use crate::sign::{SignError, sign_schnorr, sign_script_input};
use crate::templates::{Builder, p2k, p2sh, p2sh_witness};

/// The hash type of the lender's return pre-signature: this input and the output at
/// its index only, so the borrower may add its own inputs and outputs around them.
pub const RETURN_HASH_TYPE: SighashType = SighashType::SingleAnyoneCanPay;
/// The escrow input's sequence in a return transaction (committed by the
/// pre-signature). Final: the return has no lock time.
pub const RETURN_SEQUENCE: u32 = SEQUENCE_FINAL;
/// The `lock_time` of a return transaction (committed by the pre-signature).
pub const RETURN_LOCK_TIME: u32 = 0;
/// The escrow input's sequence in a default claim: not final, so the transaction's
/// `lock_time` is enforced (BIP65), and with bit 31 set, so no relative lock applies.
pub const CLAIM_SEQUENCE: u32 = SEQUENCE_FINAL - 1;
/// The witness item that selects the cooperative branch (return or agreement).
pub const COOPERATIVE_SELECTOR: &[u8] = &[1];
/// Units of the position asset a loan issues.
pub const POSITION_UNITS: u64 = 1;
/// Ticker of position assets made by [`position_contract`].
pub const POSITION_TICKER: &str = "LOAN";

/// Why a loan's scripts or transactions could not be built or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LendingError {
    #[error("the {role} key {key} is not a valid x-only public key")]
    BadKey { role: &'static str, key: String },
    #[error("lender and borrower must be different keys")]
    SameParty,
    #[error(
        "maturity height {maturity_height} plus a grace period of {grace_period_blocks} blocks must end at a block height from 1 to 499999999"
    )]
    GraceEnd {
        maturity_height: u32,
        grace_period_blocks: u32,
    },
    #[error("{field} of {units} units is more than the largest amount")]
    AmountTooLarge { field: &'static str, units: u64 },
    #[error("cannot compute the return pre-signature's hash: {0}")]
    Sighash(ScriptError),
    #[error("the lender's return pre-signature does not verify: {0}")]
    BadReturnSignature(ScriptError),
    #[error("the lender's return pre-signature must be a 65-byte SINGLE|ANYONECANPAY signature")]
    ReturnSignatureType,
    #[error(
        "the lender may claim the collateral from height {first_height}; the next block is at height {next_height}"
    )]
    ClaimTooEarly { first_height: u64, next_height: u64 },
    #[error(
        "the return pre-signature expired after height {grace_end_height}; the next block is at height {next_height}"
    )]
    ReturnExpired {
        grace_end_height: u32,
        next_height: u64,
    },
}

fn amount(field: &'static str, units: u64) -> Result<Amount, LendingError> {
    Amount::from_units(units).ok_or(LendingError::AmountTooLarge { field, units })
}

fn party_key(role: &'static str, key: &[u8; KEY_BYTES]) -> Result<XOnlyPublicKey, LendingError> {
    XOnlyPublicKey::from_byte_array(*key).map_err(|_| LendingError::BadKey {
        role,
        key: hex::encode(key),
    })
}

/// The last block of the grace period, `maturity + grace`: the borrower may return
/// up to and including it, the lender may claim from the block after it.
pub fn grace_end_height(terms: &LendingTerms) -> Result<u32, LendingError> {
    let err = LendingError::GraceEnd {
        maturity_height: terms.maturity_height,
        grace_period_blocks: terms.grace_period_blocks,
    };
    let end = terms
        .maturity_height
        .checked_add(terms.grace_period_blocks)
        .ok_or(err.clone())?;
    if end == 0 || end >= LOCKTIME_THRESHOLD {
        return Err(err);
    }
    Ok(end)
}

/// What an escrow script is made of.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct EscrowParams {
    /// The loan's `lending_position` asset.
    pub position: AssetId,
    pub lender: XOnlyPublicKey,
    pub borrower: XOnlyPublicKey,
    /// The `OP_CHECKLOCKTIMEVERIFY` operand, `maturity + grace`: a block height from 1
    /// to 499,999,999 when built by [`EscrowParams::from_terms`].
    pub grace_end_height: u32,
}

impl EscrowParams {
    /// The escrow parameters of the loan `position` with these terms.
    pub fn from_terms(position: AssetId, terms: &LendingTerms) -> Result<Self, LendingError> {
        let lender = party_key("lender", &terms.lender)?;
        let borrower = party_key("borrower", &terms.borrower)?;
        if lender == borrower {
            return Err(LendingError::SameParty);
        }
        Ok(EscrowParams {
            position,
            lender,
            borrower,
            grace_end_height: grace_end_height(terms)?,
        })
    }
}

/// The escrow's witness script (see the module documentation).
pub fn escrow_script(params: &EscrowParams) -> Vec<u8> {
    Builder::new()
        .push_slice(params.position.as_bytes())
        .push_opcode(OP_DROP)
        .push_opcode(OP_IF)
        .push_key(&params.lender)
        .push_opcode(OP_CHECKSIGVERIFY)
        .push_key(&params.borrower)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ELSE)
        .push_int(i64::from(params.grace_end_height))
        .push_opcode(OP_CHECKLOCKTIMEVERIFY)
        .push_opcode(OP_DROP)
        .push_key(&params.lender)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ENDIF)
        .into_script()
}

/// Reads the parameters back out of an escrow witness script. `None` unless the bytes
/// are exactly what [`escrow_script`] builds for some parameters with valid keys and
/// a lock time operand from 1 to 499,999,999 (so a recognised script is always one
/// the builder could have made, byte for byte).
pub fn parse_escrow_script(script: &[u8]) -> Option<EscrowParams> {
    // Short and bounded: the script has exactly 14 instructions.
    const INSTRUCTIONS: usize = 14;
    let mut items = Vec::with_capacity(INSTRUCTIONS);
    for item in Instructions::new(script) {
        let (_, instruction) = item.ok()?;
        if items.len() == INSTRUCTIONS {
            return None;
        }
        items.push(instruction);
    }
    let key = |i: &Instruction<'_>| match i {
        Instruction::Push { data, .. } => <[u8; KEY_BYTES]>::try_from(*data).ok(),
        Instruction::Op(_) => None,
    };
    let [
        position,
        Instruction::Op(OP_DROP),
        Instruction::Op(OP_IF),
        lender,
        Instruction::Op(OP_CHECKSIGVERIFY),
        borrower,
        Instruction::Op(OP_CHECKSIG),
        Instruction::Op(OP_ELSE),
        height,
        Instruction::Op(OP_CHECKLOCKTIMEVERIFY),
        Instruction::Op(OP_DROP),
        lender_again,
        Instruction::Op(OP_CHECKSIG),
        Instruction::Op(OP_ENDIF),
    ] = items.as_slice()
    else {
        return None;
    };
    let lender_bytes = key(lender)?;
    if key(lender_again)? != lender_bytes {
        return None;
    }
    let height = match height {
        Instruction::Op(op @ OP_1..=OP_16) => i64::from(op - OP_1 + 1),
        Instruction::Push { data, .. } => num::decode(data, MAX_LOCKTIME_NUM_BYTES).ok()?,
        Instruction::Op(_) => return None,
    };
    let grace_end_height = u32::try_from(height).ok()?;
    if grace_end_height == 0 || grace_end_height >= LOCKTIME_THRESHOLD {
        return None;
    }
    let params = EscrowParams {
        position: AssetId(key(position)?),
        lender: XOnlyPublicKey::from_byte_array(lender_bytes).ok()?,
        borrower: XOnlyPublicKey::from_byte_array(key(borrower)?).ok()?,
        grace_end_height,
    };
    // Rebuilding rules out non-minimal pushes and any other second spelling.
    (escrow_script(&params) == script).then_some(params)
}

/// The return witness: the borrower's signature, the lender's pre-signature
/// (`SINGLE|ANYONECANPAY`, made at opening), the cooperative selector, the script.
pub fn escrow_return_witness(
    borrower_signature: Vec<u8>,
    lender_presignature: Vec<u8>,
    script: &[u8],
) -> Witness {
    escrow_agreement_witness(borrower_signature, lender_presignature, script)
}

/// The agreement witness: both parties' signatures (any hash types), the cooperative
/// selector, the script. Same stack as the return; only the lender's hash type differs.
pub fn escrow_agreement_witness(
    borrower_signature: Vec<u8>,
    lender_signature: Vec<u8>,
    script: &[u8],
) -> Witness {
    p2sh_witness(
        vec![
            borrower_signature,
            lender_signature,
            COOPERATIVE_SELECTOR.to_vec(),
        ],
        script,
    )
}

/// The default claim witness: the lender's signature, the empty selector, the script.
/// The claiming transaction's `lock_time` must be at least the grace end height and
/// the escrow input's sequence not final ([`CLAIM_SEQUENCE`]).
pub fn escrow_claim_witness(lender_signature: Vec<u8>, script: &[u8]) -> Witness {
    p2sh_witness(vec![lender_signature, Vec::new()], script)
}

/// Which way an escrow coin was spent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum EscrowPath {
    /// Cooperative branch with the lender's `SINGLE|ANYONECANPAY` pre-signature: the
    /// borrower returned the securities.
    Return,
    /// Cooperative branch with any other lender signature: both parties agreed.
    Agreement,
    /// The default branch: the lender alone, after the grace period.
    Default,
}

impl EscrowPath {
    pub fn name(self) -> &'static str {
        match self {
            EscrowPath::Return => "return",
            EscrowPath::Agreement => "agreement",
            EscrowPath::Default => "default",
        }
    }
}

/// Reads which path a witness takes through an escrow, and the escrow's parameters.
/// `None` if the witness does not end in an escrow script or has the wrong shape (a
/// witness that passed verification always has the right shape).
pub fn classify_escrow_witness(witness: &Witness) -> Option<(EscrowPath, EscrowParams)> {
    let (script, args) = witness.0.split_last()?;
    let params = parse_escrow_script(script)?;
    let path = match args {
        [_, lender, selector] if selector.as_slice() == COOPERATIVE_SELECTOR => {
            if lender.len() == 65 && lender.last() == Some(&RETURN_HASH_TYPE.to_byte()) {
                EscrowPath::Return
            } else {
                EscrowPath::Agreement
            }
        }
        [_, selector] if selector.is_empty() => EscrowPath::Default,
        _ => return None,
    };
    Some((path, params))
}

/// A loan's escrow: its parameters and scripts, and the output a return must pay.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Escrow {
    pub params: EscrowParams,
    /// The witness script.
    pub script: Vec<u8>,
    /// `OP_0 <SHA256(script)>`: where the collateral is paid.
    pub script_pubkey: Vec<u8>,
    /// The output a return must have at the escrow input's index: the full quantity of
    /// the security, to the lender's key.
    pub return_output: TxOut,
}

impl Escrow {
    /// The escrow of loan `position` with these terms.
    pub fn new(position: AssetId, terms: &LendingTerms) -> Result<Self, LendingError> {
        let params = EscrowParams::from_terms(position, terms)?;
        let script = escrow_script(&params);
        Ok(Escrow {
            params,
            script_pubkey: p2sh(&script),
            script,
            return_output: TxOut {
                asset: terms.security_asset,
                amount: amount("quantity", terms.quantity)?,
                script_pubkey: p2k(&params.lender),
            },
        })
    }

    /// An output paying `units` of `asset` into the escrow.
    pub fn output(&self, asset: AssetId, units: u64) -> Result<TxOut, LendingError> {
        Ok(TxOut {
            asset,
            amount: amount("collateral", units)?,
            script_pubkey: self.script_pubkey.clone(),
        })
    }

    /// The first height at which a default claim can be in a block.
    pub fn first_claim_height(&self) -> u64 {
        u64::from(self.params.grace_end_height) + 1
    }

    /// Whether a return (with the pre-signature) can be in a block at `height`.
    pub fn can_return_at(&self, height: u64) -> bool {
        height <= u64::from(self.params.grace_end_height)
    }

    /// Whether a default claim can be in a block at `height`.
    pub fn can_claim_at(&self, height: u64) -> bool {
        height >= self.first_claim_height()
    }

    /// The return transaction's fixed part: input 0 spends the escrow coin, output 0
    /// pays the lender; `lock_time` 0 and `expiry_height` the grace end height. The
    /// borrower appends its security inputs and the outputs taking the collateral
    /// (appending never moves what the pre-signature covers).
    pub fn return_skeleton(&self, escrow: OutPoint) -> Transaction {
        Transaction {
            version: TX_VERSION,
            inputs: vec![TxIn {
                sequence: RETURN_SEQUENCE,
                ..TxIn::spending(escrow)
            }],
            outputs: vec![self.return_output.clone()],
            lock_time: RETURN_LOCK_TIME,
            expiry_height: self.params.grace_end_height,
        }
    }

    /// The digest the lender pre-signs for the escrow coin `escrow` (whose output is
    /// `escrow_output`) on chain `chain_id`.
    pub fn return_digest(
        &self,
        chain_id: ChainId,
        escrow: OutPoint,
        escrow_output: &TxOut,
    ) -> Result<[u8; 32], LendingError> {
        let tx = self.return_skeleton(escrow);
        let spent = [escrow_output.clone()];
        let cache = PrecomputedTx::new(&tx, &spent, chain_id).map_err(LendingError::Sighash)?;
        cache
            .sighash(0, RETURN_HASH_TYPE, &self.script)
            .map_err(LendingError::Sighash)
    }

    /// The lender's return pre-signature (65 bytes, `SINGLE|ANYONECANPAY`).
    pub fn sign_return(
        &self,
        chain_id: ChainId,
        escrow: OutPoint,
        escrow_output: &TxOut,
        lender: &Keypair,
    ) -> Result<Vec<u8>, LendingError> {
        let digest = self.return_digest(chain_id, escrow, escrow_output)?;
        Ok(sign_schnorr(lender, &digest, RETURN_HASH_TYPE))
    }

    /// Checks a return pre-signature before relying on it: the borrower does this
    /// before signing the opening (or a margin update) that creates `escrow`.
    pub fn verify_return(
        &self,
        chain_id: ChainId,
        escrow: OutPoint,
        escrow_output: &TxOut,
        signature: &[u8],
    ) -> Result<(), LendingError> {
        let (body, hash_type) =
            parse_signature(signature).map_err(LendingError::BadReturnSignature)?;
        if hash_type != RETURN_HASH_TYPE {
            return Err(LendingError::ReturnSignatureType);
        }
        let digest = self.return_digest(chain_id, escrow, escrow_output)?;
        SECP256K1
            .verify_schnorr(
                &schnorr::Signature::from_byte_array(*body),
                &digest,
                &self.params.lender,
            )
            .map_err(|_| LendingError::BadReturnSignature(ScriptError::SigInvalid))
    }

    /// A default claim's fixed part: input 0 spends the escrow coin with
    /// [`CLAIM_SEQUENCE`], `lock_time` is the grace end height, one output `to`.
    pub fn claim_skeleton(
        &self,
        escrow: OutPoint,
        escrow_output: &TxOut,
        to: Vec<u8>,
    ) -> Transaction {
        Transaction {
            version: TX_VERSION,
            inputs: vec![TxIn {
                sequence: CLAIM_SEQUENCE,
                ..TxIn::spending(escrow)
            }],
            outputs: vec![TxOut {
                asset: escrow_output.asset,
                amount: escrow_output.amount,
                script_pubkey: to,
            }],
            lock_time: self.params.grace_end_height,
            expiry_height: 0,
        }
    }

    /// Refuses a claim meant for a block at `next_height` that the node would refuse
    /// as not final (`non-final`, class premature).
    pub fn check_claim_height(&self, next_height: u64) -> Result<(), LendingError> {
        if self.can_claim_at(next_height) {
            Ok(())
        } else {
            Err(LendingError::ClaimTooEarly {
                first_height: self.first_claim_height(),
                next_height,
            })
        }
    }

    /// Refuses a return meant for a block at `next_height` after the pre-signature's
    /// expiry (`expired`).
    pub fn check_return_height(&self, next_height: u64) -> Result<(), LendingError> {
        if self.can_return_at(next_height) {
            Ok(())
        } else {
            Err(LendingError::ReturnExpired {
                grace_end_height: self.params.grace_end_height,
                next_height,
            })
        }
    }

    /// Signs input `input`, which spends an escrow coin of this loan.
    pub fn sign_input(
        &self,
        cache: &PrecomputedTx<'_>,
        input: usize,
        keypair: &Keypair,
        hash_type: SighashType,
    ) -> Result<Vec<u8>, SignError> {
        sign_script_input(cache, input, &self.script, keypair, hash_type)
    }

    pub fn return_witness(
        &self,
        borrower_signature: Vec<u8>,
        lender_presignature: Vec<u8>,
    ) -> Witness {
        escrow_return_witness(borrower_signature, lender_presignature, &self.script)
    }

    pub fn agreement_witness(
        &self,
        borrower_signature: Vec<u8>,
        lender_signature: Vec<u8>,
    ) -> Witness {
        escrow_agreement_witness(borrower_signature, lender_signature, &self.script)
    }

    pub fn claim_witness(&self, lender_signature: Vec<u8>) -> Witness {
        escrow_claim_witness(lender_signature, &self.script)
    }
}

/// The conventional contract of a position asset: class `lending_position` with the
/// terms, one indivisible unit, not reissuable, issued by `issuer` (a key the chain
/// spec lists under `lending_position`).
pub fn position_contract(terms: &LendingTerms, issuer: [u8; 32]) -> AssetContract {
    AssetContract {
        name: format!("Loan of {} {}", terms.quantity, terms.isin),
        ticker: POSITION_TICKER.into(),
        precision: 0,
        issuer,
        reissuable: false,
        class: AssetClass::LendingPosition(Box::new(terms.clone())),
    }
}

/// Where the parts of a well-formed opening are.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OpeningLayout {
    /// The position asset the opening issues.
    pub position: AssetId,
    /// The input carrying the position's issuance.
    pub issuance_input: usize,
    /// The output delivering the securities to the borrower.
    pub delivery: usize,
    /// The escrow output (the loan's first escrow coin).
    pub escrow: usize,
    /// The output paying the position unit to the lender.
    pub position_output: usize,
    /// The output paying the fee to the lender (`None` when the fee is 0).
    pub fee: Option<usize>,
    pub escrow_details: Escrow,
}

/// Why a transaction is not a well-formed opening of a loan with given terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpeningDefect {
    #[error("the terms cannot make an escrow: {0}")]
    Terms(LendingError),
    #[error("no input issues a new lending_position asset with these terms")]
    NoPositionIssuance,
    #[error("the position issuance rides on a null input; it must spend a real coin")]
    NullIssuanceInput,
    #[error("{count} inputs issue lending_position assets; an opening issues exactly 1")]
    PositionCount { count: usize },
    #[error("the position is issued {issued} units; a loan issues exactly 1")]
    PositionUnits { issued: u64 },
    #[error("the position contract is reissuable or has a precision other than 0")]
    PositionContract,
    #[error(
        "expiry height {expiry_height}: an opening must expire at or before the settlement height {settlement_height} (and not be 0)"
    )]
    Expiry {
        expiry_height: u32,
        settlement_height: u32,
    },
    #[error("no output delivers exactly {quantity} units of the security to the borrower's key")]
    NoDelivery { quantity: u64 },
    #[error("{count} outputs pay into the escrow; a loan opens exactly 1")]
    EscrowCount { count: usize },
    #[error(
        "the escrow output holds {amount} units of asset {asset}; the terms say {collateral_amount} units of {collateral_asset}"
    )]
    EscrowAmount {
        asset: AssetId,
        amount: u64,
        collateral_asset: AssetId,
        collateral_amount: u64,
    },
    #[error("no output pays the fee of exactly {fee} units to the lender's key")]
    NoFee { fee: u64 },
    #[error("no output pays the position unit to the lender's key")]
    NoPositionOutput,
}

impl OpeningDefect {
    /// A stable name for the vectors (`spec/lending.md`, "Opening").
    pub fn name(&self) -> &'static str {
        match self {
            OpeningDefect::Terms(_) => "TERMS",
            OpeningDefect::NoPositionIssuance => "NO_POSITION_ISSUANCE",
            OpeningDefect::NullIssuanceInput => "NULL_ISSUANCE_INPUT",
            OpeningDefect::PositionCount { .. } => "POSITION_COUNT",
            OpeningDefect::PositionUnits { .. } => "POSITION_UNITS",
            OpeningDefect::PositionContract => "POSITION_CONTRACT",
            OpeningDefect::Expiry { .. } => "EXPIRY",
            OpeningDefect::NoDelivery { .. } => "NO_DELIVERY",
            OpeningDefect::EscrowCount { .. } => "ESCROW_COUNT",
            OpeningDefect::EscrowAmount { .. } => "ESCROW_AMOUNT",
            OpeningDefect::NoFee { .. } => "NO_FEE",
            OpeningDefect::NoPositionOutput => "NO_POSITION_OUTPUT",
        }
    }
}

/// Whether the input carries a new issuance of a `lending_position` contract (any
/// terms).
fn issues_position(input: &TxIn) -> bool {
    let Some(Issuance {
        kind: IssuanceKind::New { contract },
        ..
    }) = &input.issuance
    else {
        return false;
    };
    AssetContract::from_canonical_bytes(contract)
        .is_ok_and(|c| matches!(c.class, AssetClass::LendingPosition(_)))
}

/// Checks that `tx` opens a loan with exactly these terms (`spec/lending.md`,
/// "Opening"): it issues one unit of a `lending_position` asset with the terms, on an
/// input spending a real coin and as the transaction's only position issuance, expires
/// at or before the settlement height, delivers the quantity to the borrower's key,
/// pays exactly the collateral into the escrow once, the fee and the position unit to
/// the lender's key. The borrower runs it before signing; the chain derivation runs it
/// on every position it lists.
pub fn check_opening(
    tx: &Transaction,
    terms: &LendingTerms,
) -> Result<OpeningLayout, OpeningDefect> {
    let issuing = tx.inputs.iter().enumerate().find_map(|(i, input)| {
        let issuance = input.issuance.as_ref()?;
        let IssuanceKind::New { contract } = &issuance.kind else {
            return None;
        };
        let contract = AssetContract::from_canonical_bytes(contract).ok()?;
        match &contract.class {
            AssetClass::LendingPosition(t) if **t == *terms => Some((
                i,
                issuance.asset_id(&input.prevout),
                issuance.amount,
                contract,
            )),
            _ => None,
        }
    });
    let Some((issuance_input, position, issued, contract)) = issuing else {
        return Err(OpeningDefect::NoPositionIssuance);
    };
    // On a null input the position id would depend on the contract alone: predictable
    // before the opening exists and shared by every opening with the same terms.
    if tx.inputs[issuance_input].prevout.is_null() {
        return Err(OpeningDefect::NullIssuanceInput);
    }
    // Every output rule below reads "an output pays": with a second position in the
    // same transaction, one delivery would back two loans.
    let count = tx.inputs.iter().filter(|i| issues_position(i)).count();
    if count != 1 {
        return Err(OpeningDefect::PositionCount { count });
    }
    if issued.units() != POSITION_UNITS {
        return Err(OpeningDefect::PositionUnits {
            issued: issued.units(),
        });
    }
    if contract.reissuable || contract.precision != 0 {
        return Err(OpeningDefect::PositionContract);
    }
    if tx.expiry_height == 0 || tx.expiry_height > terms.settlement_height {
        return Err(OpeningDefect::Expiry {
            expiry_height: tx.expiry_height,
            settlement_height: terms.settlement_height,
        });
    }
    let escrow = Escrow::new(position, terms).map_err(OpeningDefect::Terms)?;
    let lender = p2k(&escrow.params.lender);
    let borrower = p2k(&escrow.params.borrower);
    let find = |asset: AssetId, units: u64, script: &[u8]| {
        tx.outputs.iter().position(|o| {
            o.asset == asset && o.amount.units() == units && o.script_pubkey == script
        })
    };
    let delivery =
        find(terms.security_asset, terms.quantity, &borrower).ok_or(OpeningDefect::NoDelivery {
            quantity: terms.quantity,
        })?;
    let escrows: Vec<usize> = tx
        .outputs
        .iter()
        .enumerate()
        .filter(|(_, o)| o.script_pubkey == escrow.script_pubkey)
        .map(|(i, _)| i)
        .collect();
    let [escrow_index] = escrows.as_slice() else {
        return Err(OpeningDefect::EscrowCount {
            count: escrows.len(),
        });
    };
    let out = &tx.outputs[*escrow_index];
    if out.asset != terms.collateral_asset || out.amount.units() != terms.collateral_amount {
        return Err(OpeningDefect::EscrowAmount {
            asset: out.asset,
            amount: out.amount.units(),
            collateral_asset: terms.collateral_asset,
            collateral_amount: terms.collateral_amount,
        });
    }
    let fee = if terms.fee == 0 {
        None
    } else {
        Some(
            find(terms.fee_asset, terms.fee, &lender)
                .ok_or(OpeningDefect::NoFee { fee: terms.fee })?,
        )
    };
    let position_output =
        find(position, POSITION_UNITS, &lender).ok_or(OpeningDefect::NoPositionOutput)?;
    Ok(OpeningLayout {
        position,
        issuance_input,
        delivery,
        escrow: *escrow_index,
        position_output,
        fee,
        escrow_details: escrow,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asm::disassemble;

    fn key(i: u8) -> XOnlyPublicKey {
        Keypair::from_seckey_byte_array(secp256k1::SECP256K1, [i; 32])
            .expect("valid secret")
            .x_only_public_key()
            .0
    }

    fn params(height: u32) -> EscrowParams {
        EscrowParams {
            position: AssetId([0xab; 32]),
            lender: key(1),
            borrower: key(2),
            grace_end_height: height,
        }
    }

    #[test]
    fn script_reads_as_documented_and_parses_back() {
        for height in [
            1,
            16,
            17,
            127,
            128,
            1_000,
            0x7fff_ffff % LOCKTIME_THRESHOLD,
            LOCKTIME_THRESHOLD - 1,
        ] {
            let p = params(height);
            let script = escrow_script(&p);
            assert_eq!(parse_escrow_script(&script), Some(p), "height {height}");
            let push = if height <= 16 {
                1
            } else {
                1 + num::encode(i64::from(height)).len()
            };
            assert_eq!(script.len(), 141 + push, "height {height}");
            let text = disassemble(&script);
            assert!(
                text.starts_with(&format!("<{}> OP_DROP OP_IF <", "ab".repeat(32))),
                "{text}"
            );
            assert!(text.contains("OP_CHECKSIGVERIFY"), "{text}");
            assert!(text.contains("OP_CHECKLOCKTIMEVERIFY OP_DROP"), "{text}");
            assert!(text.ends_with("OP_CHECKSIG OP_ENDIF"), "{text}");
        }
    }

    #[test]
    fn near_misses_are_not_escrows() {
        let good = escrow_script(&params(1_000));
        assert_eq!(parse_escrow_script(&[]), None);
        assert_eq!(parse_escrow_script(&good[..good.len() - 1]), None);
        let mut extra = good.clone();
        extra.push(OP_DROP);
        assert_eq!(parse_escrow_script(&extra), None);
        // A different default key than the cooperative lender key.
        let other = Builder::new()
            .push_slice(&[0xab; 32])
            .push_opcode(OP_DROP)
            .push_opcode(OP_IF)
            .push_key(&key(1))
            .push_opcode(OP_CHECKSIGVERIFY)
            .push_key(&key(2))
            .push_opcode(OP_CHECKSIG)
            .push_opcode(OP_ELSE)
            .push_int(1_000)
            .push_opcode(OP_CHECKLOCKTIMEVERIFY)
            .push_opcode(OP_DROP)
            .push_key(&key(3))
            .push_opcode(OP_CHECKSIG)
            .push_opcode(OP_ENDIF)
            .into_script();
        assert_eq!(parse_escrow_script(&other), None);
        // Heights 0 and at or above the threshold (times) are refused.
        for height in [0, LOCKTIME_THRESHOLD] {
            assert_eq!(parse_escrow_script(&escrow_script(&params(height))), None);
        }
        // A non-minimal height push: 0x02 0xe8 0x03 is 1000, spelled 0x03 0xe8 0x03 0x00.
        let text = crate::asm::disassemble(&good).replace("<e803>", "0x03e80300");
        let spelled = crate::asm::assemble(&text).expect("assembles");
        assert_ne!(spelled, good);
        assert_eq!(parse_escrow_script(&spelled), None);
    }

    #[test]
    fn witness_paths_are_classified() {
        let script = escrow_script(&params(50));
        let p = params(50);
        let ret = escrow_return_witness(vec![1; 64], [vec![2; 64], vec![0x83]].concat(), &script);
        assert_eq!(classify_escrow_witness(&ret), Some((EscrowPath::Return, p)));
        let agree = escrow_agreement_witness(vec![1; 64], vec![2; 64], &script);
        assert_eq!(
            classify_escrow_witness(&agree),
            Some((EscrowPath::Agreement, p))
        );
        let claim = escrow_claim_witness(vec![2; 64], &script);
        assert_eq!(
            classify_escrow_witness(&claim),
            Some((EscrowPath::Default, p))
        );
        assert_eq!(
            classify_escrow_witness(&Witness(vec![script.clone()])),
            None
        );
        assert_eq!(classify_escrow_witness(&Witness::default()), None);
        assert_eq!(
            classify_escrow_witness(&Witness(vec![vec![1; 64], vec![2], script])),
            None
        );
    }

    #[test]
    fn grace_end_must_be_a_height() {
        let mut terms = LendingTerms {
            isin: "PTOTEVOE0018".into(),
            security_asset: AssetId([1; 32]),
            quantity: 10,
            lender: key(1).serialize(),
            borrower: key(2).serialize(),
            collateral_asset: AssetId([4; 32]),
            collateral_amount: 100,
            fee_asset: AssetId([4; 32]),
            fee: 1,
            interest_rate_bps: 100,
            settlement_height: 1,
            maturity_height: 20,
            grace_period_blocks: 5,
            negotiator: None,
            lender_player: None,
        };
        assert_eq!(grace_end_height(&terms), Ok(25));
        terms.grace_period_blocks = u32::MAX;
        assert!(matches!(
            grace_end_height(&terms),
            Err(LendingError::GraceEnd { .. })
        ));
        terms.grace_period_blocks = LOCKTIME_THRESHOLD - 20;
        assert!(matches!(
            grace_end_height(&terms),
            Err(LendingError::GraceEnd { .. })
        ));
        terms.grace_period_blocks = 0;
        terms.borrower = terms.lender;
        assert_eq!(
            Escrow::new(AssetId([9; 32]), &terms).map(|_| ()),
            Err(LendingError::SameParty)
        );
        terms.borrower = key(2).serialize();
        terms.quantity = u64::MAX;
        assert!(matches!(
            Escrow::new(AssetId([9; 32]), &terms),
            Err(LendingError::AmountTooLarge {
                field: "quantity",
                ..
            })
        ));
    }
}
