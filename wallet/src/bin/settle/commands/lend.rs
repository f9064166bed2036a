//! `settle lend propose|accept|cosign|return|claim|margin|positions`: securities lending
//! between two wallets (`spec/lending.md`, section 11).
//!
//! Opening: the lender runs `propose` and hands the file to the borrower; the borrower
//! runs `accept` (adds collateral and fee) and hands it back; the lender runs `cosign`
//! (signs, and pre-signs the return); the borrower runs `accept` again on the co-signed
//! file, which checks the pre-signature, signs last and broadcasts. A margin update
//! starts with the borrower's `margin`, then the lender's `cosign`, then the borrower's
//! `accept`. The borrower keeps each return pre-signature in `lending.json` in the wallet
//! directory (not secret: the escrow also needs the borrower's own signature).

use std::collections::BTreeMap;
use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use settle_assets::{AssetClass, AssetContract, AssetId, LendingTerms, OutPoint, TxOut};
use settle_rpc::{ClientError, PositionFilter, PositionInfo, codes};
use settle_script::lending::Escrow;
use settle_script::secp256k1::XOnlyPublicKey;
use settle_script::{Network, ScriptKind, classify, p2k};
use settle_wallet::keys::{KeyOrigin, SigningKey};
use settle_wallet::lending::{self as lend, Completed, LendError};
use settle_wallet::pst::Pst;
use settle_wallet::scan::Owner;
use settle_wallet::state::{AssetFlow, LoanAgreement, LoanStep};

use crate::Report;
use crate::commands::show::{AssetView, clean, confirm};
use crate::commands::{broadcast, change_address, flows, maybe_wait, receive_address, status_text};
use crate::ctx::{Assets, Ctx, Open, check_pst_chain, read_pst, write_pst};
use crate::error::{CliError, Result, kind};
use crate::sync::{self, Live};

/// Error kinds of lending commands (beside the shared ones of `error::kind`).
pub mod lend_kind {
    /// A lending step refused: wrong step, wrong party, terms or flows not as agreed.
    pub const LENDING: &str = "lending";
    /// A default claim before maturity plus grace.
    pub const PREMATURE: &str = "premature";
    /// A return after the grace period.
    pub const EXPIRED: &str = "expired";
}

/// The borrower's pre-signature file in the wallet directory.
pub const PRESIG_FILE: &str = "lending.json";
/// Most pre-signatures kept (one per open loan or margin update).
pub const MAX_PRESIGNATURES: usize = 10_000;
/// Longest pre-signature file read.
const MAX_PRESIG_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// The dev CSD key `settled init --dev` writes; it issues securities and positions.
const DEV_POSITION_ISSUER_KEY: &str = "issuer-security.key";
/// Default blocks from proposal to the last block the opening may settle in.
const DEFAULT_SETTLE_WITHIN_BLOCKS: u32 = 10;
/// Default grace period after maturity.
const DEFAULT_GRACE_BLOCKS: u32 = 10;

#[derive(Subcommand, Debug)]
pub enum LendCmd {
    /// (lender) Propose a loan of your securities; writes an unsigned PST for the borrower.
    Propose(ProposeArgs),
    /// (borrower) Accept a proposal (adds your collateral and fee); run it again on the
    /// file the lender co-signed to check the return pre-signature, sign last and
    /// broadcast. Also finishes a co-signed margin update.
    Accept {
        file: PathBuf,
        /// Write the result here (default: over FILE).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long)]
        wait: bool,
    },
    /// (lender) Co-sign an accepted opening (signs, and pre-signs the return) or a margin
    /// update.
    Cosign {
        file: PathBuf,
        #[arg(long)]
        out: Option<PathBuf>,
        /// The position issuer's secret key file. Default on a dev chain: the node's CSD key
        /// (needs --node-datadir).
        #[arg(long, value_name = "FILE")]
        issuer_key: Option<PathBuf>,
        /// Co-sign a margin release that leaves less collateral in escrow than the loan's
        /// terms agreed (refused without it).
        #[arg(long)]
        allow_below_agreed: bool,
    },
    /// (borrower) Return the full quantity and take the collateral back, alone.
    Return {
        /// The position asset id.
        position: String,
        #[arg(long)]
        wait: bool,
    },
    /// (lender) Take the collateral after maturity plus grace.
    Claim {
        position: String,
        #[arg(long)]
        wait: bool,
    },
    /// (borrower) Propose a new collateral amount (top-up or release); the lender
    /// co-signs, then `accept` finishes it.
    Margin {
        position: String,
        /// The collateral to hold in escrow from now on, in the collateral's precision.
        #[arg(long)]
        collateral: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Your loans (or with --all every loan): state, time to maturity, collateral.
    Positions {
        #[arg(long)]
        all: bool,
        /// Only loans in this state: lent, returned (matured) or defaulted (default).
        #[arg(long)]
        state: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct ProposeArgs {
    /// The borrower: a pay-to-key address (`settle address new`) or a 64-hex x-only key.
    #[arg(long)]
    pub borrower: String,
    /// The security lent (ticker or asset id).
    #[arg(long)]
    pub security: String,
    /// Units of the security lent, in its precision.
    #[arg(long)]
    pub quantity: String,
    /// Collateral: "AMOUNT ASSET", e.g. "1100.00 EUR".
    #[arg(long)]
    pub collateral: String,
    /// Lending fee paid at opening: "AMOUNT ASSET" (default: none).
    #[arg(long)]
    pub fee: Option<String>,
    /// Annual interest rate in basis points (recorded, not charged by the ledger).
    #[arg(long, default_value_t = 0)]
    pub rate_bps: u32,
    /// Maturity: this many blocks after the current tip.
    #[arg(long, value_name = "BLOCKS")]
    pub maturity_in: u32,
    /// Blocks after maturity the borrower may still return.
    #[arg(long, value_name = "BLOCKS", default_value_t = DEFAULT_GRACE_BLOCKS)]
    pub grace: u32,
    /// The opening must settle within this many blocks (it expires after).
    #[arg(long, value_name = "BLOCKS", default_value_t = DEFAULT_SETTLE_WITHIN_BLOCKS)]
    pub settle_within: u32,
    #[arg(long)]
    pub negotiator: Option<String>,
    #[arg(long)]
    pub lender_player: Option<String>,
    /// The position issuer's secret key file (default on a dev chain: the node's CSD key).
    #[arg(long, value_name = "FILE")]
    pub issuer_key: Option<PathBuf>,
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(ctx: &Ctx, cmd: LendCmd) -> Result<Report> {
    match cmd {
        LendCmd::Propose(a) => propose(ctx, &a),
        LendCmd::Accept { file, out, wait } => accept(ctx, &file, out.as_deref(), wait),
        LendCmd::Cosign {
            file,
            out,
            issuer_key,
            allow_below_agreed,
        } => cosign(ctx, &file, out.as_deref(), issuer_key, allow_below_agreed),
        LendCmd::Return { position, wait } => return_loan(ctx, &position, wait),
        LendCmd::Claim { position, wait } => claim(ctx, &position, wait),
        LendCmd::Margin {
            position,
            collateral,
            out,
        } => margin(ctx, &position, &collateral, &out),
        LendCmd::Positions { all, state } => positions(ctx, all, state.as_deref()),
    }
}

impl From<LendError> for CliError {
    fn from(e: LendError) -> Self {
        match e {
            LendError::Build(b) => b.into(),
            LendError::Pst(p) => p.into(),
            LendError::Policy(p) => p.into(),
            other => CliError::new(lend_kind::LENDING, other.to_string()),
        }
    }
}

fn lending(message: impl Into<String>) -> CliError {
    CliError::new(lend_kind::LENDING, message)
}

// ---- keys ----

use super::asset::read_key_file;

/// The position issuer's key: `--issuer-key`, else on a dev chain the node's CSD key.
fn position_issuer(ctx: &Ctx, network: Network, given: Option<PathBuf>) -> Result<SigningKey> {
    if let Some(p) = given {
        return read_key_file(&p);
    }
    match (&ctx.global.node_datadir, network) {
        (Some(dir), Network::Dev) => read_key_file(&dir.join("keys").join(DEV_POSITION_ISSUER_KEY)),
        _ => Err(CliError::new(
            kind::ISSUER_KEY,
            "no position issuer key: pass --issuer-key FILE (a key the chain spec authorises \
             for lending_position), or on a dev chain --node-datadir DIR to use the node's CSD key",
        )),
    }
}

/// The wallet key behind the pay-to-key script of `key`, if it is one of this wallet's.
fn wallet_key(open: &Open, live: &Live, key: &[u8; 32]) -> Option<(SigningKey, KeyOrigin)> {
    let x = XOnlyPublicKey::from_byte_array(*key).ok()?;
    let Some(Owner::Key { origin, .. }) = live.watch.owner(&p2k(&x)) else {
        return None;
    };
    let origin = KeyOrigin {
        master_fingerprint: open.keys.master_fingerprint(),
        path: origin.path.clone(),
    };
    let derived = open.keys.derive_origin(&origin)?.ok()?;
    (derived.key.x_only_bytes() == *key).then_some((derived.key, origin))
}

fn parse_party(text: &str, network: Network) -> Result<[u8; 32]> {
    let text = text.trim();
    let key = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut k = [0u8; 32];
        hex::decode_to_slice(text, &mut k).map_err(|_| CliError::usage("bad hex key"))?;
        k
    } else {
        let a = crate::ctx::parse_address(text, network)?;
        match classify(&a.script_pubkey()) {
            ScriptKind::PayToKey(k) => k,
            _ => {
                return Err(CliError::new(
                    kind::BAD_ADDRESS,
                    "the borrower must be given as a pay-to-key address (settle address new) \
                     or a 64-hex x-only key",
                ));
            }
        }
    };
    XOnlyPublicKey::from_byte_array(key).map_err(|_| {
        CliError::new(
            kind::BAD_ADDRESS,
            format!("{text} is not a valid x-only public key"),
        )
    })?;
    Ok(key)
}

fn parse_position(text: &str) -> Result<AssetId> {
    let t = text.trim();
    t.to_ascii_lowercase().parse().map_err(|_| {
        let shown: String = t.chars().take(80).collect();
        CliError::usage(format!(
            "a position is the 64-hex id of its lending_position asset, got {shown:?} \
             (see `settle lend positions`)"
        ))
    })
}

// ---- the borrower's pre-signatures ----

#[derive(Serialize, Deserialize, Default)]
struct PresigFile {
    /// By escrow outpoint (`txid:vout`).
    presignatures: BTreeMap<String, PresigEntry>,
}

#[derive(Serialize, Deserialize, Clone)]
struct PresigEntry {
    position: AssetId,
    /// Hex of the 65-byte `SINGLE|ANYONECANPAY` signature.
    signature: String,
}

fn presig_path(ctx: &Ctx) -> PathBuf {
    ctx.dir().join(PRESIG_FILE)
}

fn load_presigs(ctx: &Ctx) -> Result<PresigFile> {
    let path = presig_path(ctx);
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PresigFile::default()),
        Err(e) => {
            return Err(CliError::new(
                kind::IO,
                format!("cannot read {}: {e}", path.display()),
            ));
        }
    };
    let mut text = String::new();
    file.take(MAX_PRESIG_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| CliError::new(kind::IO, format!("cannot read {}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        CliError::new(
            kind::WALLET_FILE,
            format!(
                "{} is not a lending pre-signature file: {e}",
                path.display()
            ),
        )
    })
}

/// Records the pre-signature of a new escrow coin (the caller holds the wallet lock).
fn save_presig(ctx: &Ctx, position: AssetId, done: &Completed) -> Result<()> {
    let mut file = load_presigs(ctx)?;
    if file.presignatures.len() >= MAX_PRESIGNATURES {
        return Err(lending(format!(
            "{} already holds {MAX_PRESIGNATURES} pre-signatures",
            presig_path(ctx).display()
        )));
    }
    file.presignatures.insert(
        done.escrow.to_string(),
        PresigEntry {
            position,
            signature: hex::encode(&done.presignature),
        },
    );
    let path = presig_path(ctx);
    let text = serde_json::to_string_pretty(&file).map_err(|e| lending(e.to_string()))?;
    let tmp = path.with_extension("tmp-settle");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| CliError::new(kind::IO, format!("cannot write {}: {e}", path.display())))
}

// ---- reading a loan from the node ----

/// A loan's terms, escrow and current state, from the node.
struct Loan {
    info: PositionInfo,
    terms: LendingTerms,
    escrow: Escrow,
}

impl Loan {
    fn escrow_coin(&self) -> Option<(OutPoint, TxOut)> {
        let c = self.info.escrow.as_ref()?;
        Some((
            c.outpoint,
            TxOut {
                asset: c.asset,
                amount: settle_assets::Amount::from_units(c.amount)?,
                script_pubkey: self.escrow.script_pubkey.clone(),
            },
        ))
    }
}

fn load_loan(ctx: &Ctx, position: &AssetId) -> Result<Loan> {
    let info = ctx.client().get_position(position).map_err(|e| match &e {
        ClientError::Rpc(r) if r.code == codes::NOT_FOUND || r.code == codes::INVALID_PARAMETER => {
            lending(format!("no loan {position}: {}", r.message))
        }
        _ => e.into(),
    })?;
    let asset = ctx.client().get_asset_info(position)?;
    let bytes = hex::decode(&asset.contract_hex)
        .map_err(|_| CliError::new(kind::NODE, "the node sent a contract that is not hex"))?;
    let contract = AssetContract::from_canonical_bytes(&bytes)
        .map_err(|e| CliError::new(kind::NODE, format!("the node sent a bad contract: {e}")))?;
    let AssetClass::LendingPosition(terms) = contract.class else {
        return Err(lending(format!(
            "asset {position} is not a lending position"
        )));
    };
    let escrow = Escrow::new(*position, &terms).map_err(LendError::from)?;
    Ok(Loan {
        info,
        terms: *terms,
        escrow,
    })
}

fn units_text(assets: &Assets, asset: &AssetId, units: u64) -> String {
    assets.fmt(asset, u128::from(units))
}

fn terms_json(assets: &Assets, position: AssetId, t: &LendingTerms) -> Value {
    json!({
        "position": position,
        "isin": t.isin,
        "security": { "asset": t.security_asset, "ticker": assets.ticker(&t.security_asset), "quantity": assets.fmt_number(&t.security_asset, u128::from(t.quantity)) },
        "collateral": { "asset": t.collateral_asset, "ticker": assets.ticker(&t.collateral_asset), "amount": assets.fmt_number(&t.collateral_asset, u128::from(t.collateral_amount)) },
        "fee": { "asset": t.fee_asset, "ticker": assets.ticker(&t.fee_asset), "amount": assets.fmt_number(&t.fee_asset, u128::from(t.fee)) },
        "interest_rate_bps": t.interest_rate_bps,
        "lender": hex::encode(t.lender),
        "borrower": hex::encode(t.borrower),
        "settlement_height": t.settlement_height,
        "maturity_height": t.maturity_height,
        "grace_period_blocks": t.grace_period_blocks,
        "negotiator": t.negotiator,
        "lender_player": t.lender_player,
    })
}

fn terms_text(assets: &Assets, t: &LendingTerms) -> String {
    format!(
        "{} {} (ISIN {}) against {} collateral, fee {}, matures at block {} (grace {} blocks)",
        assets.fmt_number(&t.security_asset, u128::from(t.quantity)),
        assets.ticker(&t.security_asset),
        t.isin,
        units_text(assets, &t.collateral_asset, t.collateral_amount),
        units_text(assets, &t.fee_asset, t.fee),
        t.maturity_height,
        t.grace_period_blocks
    )
}

/// This wallet's stored agreement of `step` for `position`, else the one that spends one
/// of `pst`'s coins (then compared field by field, so a rewritten contract is named).
fn agreement<'a>(
    open: &'a Open,
    step: LoanStep,
    position: &AssetId,
    pst: &Pst,
) -> Result<&'a LoanAgreement> {
    let spends: Vec<OutPoint> = pst.unsigned_tx().inputs.iter().map(|i| i.prevout).collect();
    let found = open
        .state
        .agreement(step, position)
        .or_else(|| open.state.agreement_spending(step, &spends));
    found.ok_or_else(|| {
        let what = match step {
            LoanStep::LenderProposed => "proposed loan (as lender, with `settle lend propose`)",
            LoanStep::BorrowerAccepted => "accepted loan (as borrower, with `settle lend accept`)",
            LoanStep::BorrowerMargin => "margin update (with `settle lend margin`)",
        };
        lending(format!(
            "this wallet has no record of a {what} for position {position}: it signs only \
             what it agreed to"
        ))
    })
}

/// What a co-signing step shows before it signs: the step, the terms with every asset
/// identified beyond its ticker, and this wallet's own net flows.
fn summary(assets: &Assets, open: &Open, what: &str, t: &LendingTerms, f: &[AssetFlow]) -> String {
    let view = AssetView::new(assets, Some(&open.state));
    let mut text = format!(
        "{what}\nterms: {} of {} (ISIN {}) against {} collateral, fee {}, rate {} bps, \
         settles by block {}, matures at block {} (grace {} blocks)\nthis wallet's net flows:\n{}\n",
        assets.fmt_number(&t.security_asset, u128::from(t.quantity)),
        view.ident(&t.security_asset),
        clean(&t.isin),
        view.amount(&t.collateral_asset, u128::from(t.collateral_amount)),
        view.amount(&t.fee_asset, u128::from(t.fee)),
        t.interest_rate_bps,
        t.settlement_height,
        t.maturity_height,
        t.grace_period_blocks,
        view.flows_text(f)
    );
    for w in view.warnings(&[t.security_asset, t.collateral_asset, t.fee_asset]) {
        text.push_str(&format!("{w}\n"));
    }
    text
}

// ---- commands ----

fn propose(ctx: &Ctx, a: &ProposeArgs) -> Result<Report> {
    if a.maturity_in == 0 || a.settle_within == 0 || a.settle_within >= a.maturity_in {
        return Err(CliError::usage(
            "--settle-within and --maturity-in must be more than 0, and the opening must settle \
             before maturity (--settle-within < --maturity-in)",
        ));
    }
    let mut open = ctx.open()?;
    let live = sync::sync(ctx, &mut open)?;
    let assets = Assets::load(ctx.client())?;
    let network = open.state.network;
    let security = assets.resolve(&a.security)?;
    if security.class != "security" {
        return Err(lending(format!(
            "{} is a {} asset; only securities are lent",
            security.ticker, security.class
        )));
    }
    let isin = hex::decode(&security.contract_hex)
        .ok()
        .and_then(|b| AssetContract::from_canonical_bytes(&b).ok())
        .and_then(|c| match c.class {
            AssetClass::Security { isin } => Some(isin),
            _ => None,
        })
        .ok_or_else(|| CliError::new(kind::NODE, "the security's contract has no ISIN"))?;
    let quantity = assets.parse_amount(security, &a.quantity)?;
    let (collateral, collateral_amount) = assets.parse_leg(&a.collateral)?;
    let (fee_asset, fee) = match &a.fee {
        Some(f) => {
            let (i, amount) = assets.parse_leg(f)?;
            (i.asset, amount.units())
        }
        None => (collateral.asset, 0),
    };
    let borrower = parse_party(&a.borrower, network)?;
    let issuer = position_issuer(ctx, network, a.issuer_key.clone())?;
    let tip = u32::try_from(live.height())
        .map_err(|_| CliError::usage("the chain is too high for block-height lock times"))?;
    let height = |n: u32| {
        tip.checked_add(n)
            .ok_or_else(|| CliError::usage("the heights are too large"))
    };
    let mut state = open.state.clone();
    let keys = open.keys.clone();
    let lender = state.next_receive_address(&keys)?;
    state.set_label(&lender.address.to_string(), "loan (lender)")?;
    let terms = LendingTerms {
        isin,
        security_asset: security.asset,
        quantity: quantity.units(),
        lender: lender.key.key.x_only_bytes(),
        borrower,
        collateral_asset: collateral.asset,
        collateral_amount: collateral_amount.units(),
        fee_asset,
        fee,
        interest_rate_bps: a.rate_bps,
        settlement_height: height(a.settle_within)?,
        maturity_height: height(a.maturity_in)?,
        grace_period_blocks: a.grace,
        negotiator: a.negotiator.clone(),
        lender_player: a.lender_player.clone(),
    };
    if terms.lender == terms.borrower {
        return Err(lending("the borrower must be another key than the lender"));
    }
    let coins = live.spendable();
    let chain_id = state.chain_id;
    let (pst, opening) = lend::propose(
        &terms,
        issuer.x_only_bytes(),
        &coins,
        || change_address(&mut state, &keys).map_err(|e| e.to_string()),
        chain_id,
        network,
    )
    .map_err(|e| match e {
        LendError::Build(b) => assets.build_error(b, " of the security to lend"),
        other => other.into(),
    })?;
    let mine = pst.unsigned_tx().inputs.iter().map(|i| i.prevout).collect();
    state.record_agreement(lend::opening_agreement(
        LoanStep::LenderProposed,
        &pst,
        &opening,
        mine,
    )?);
    write_pst(&a.out, &pst)?;
    open.state = state;
    open.save()?;
    let mut json = terms_json(&assets, opening.position(), &terms);
    json["file"] = json!(a.out);
    json["txid"] = json!(pst.txid());
    Ok(Report::new(
        json,
        format!(
            "proposed loan {}: {}\nwrote {}: give it to the borrower, who runs `settle lend \
             accept {}`",
            opening.position(),
            terms_text(&assets, &terms),
            a.out.display(),
            a.out.display()
        ),
    ))
}

fn accept(ctx: &Ctx, file: &Path, out: Option<&Path>, wait: bool) -> Result<Report> {
    let pst = read_pst(file)?;
    let mut open = ctx.open()?;
    check_pst_chain(&pst, &open.state)?;
    let live = sync::sync(ctx, &mut open)?;
    let assets = Assets::load(ctx.client())?;
    if lend::presignature(&pst).is_some() {
        return complete(ctx, open, &live, &assets, &pst, wait);
    }
    if lend::margin_position(&pst).is_some() {
        return Err(lending(
            "this margin update is not co-signed yet: the lender runs `settle lend cosign` on it first",
        ));
    }
    let opening = lend::read_opening(&pst)?;
    if wallet_key(&open, &live, &opening.terms.borrower).is_none() {
        return Err(CliError::from(LendError::NotOurKey { role: "borrower" }));
    }
    let mut state = open.state.clone();
    let keys = open.keys.clone();
    let coins = live.spendable();
    let (accepted, opening) = lend::accept(&pst, &coins, || {
        change_address(&mut state, &keys).map_err(|e| e.to_string())
    })
    .map_err(|e| match e {
        LendError::Build(b) => assets.build_error(b, " for the collateral and fee"),
        other => other.into(),
    })?;
    let mine = accepted.unsigned_tx().inputs[pst.inputs().len()..]
        .iter()
        .map(|i| i.prevout)
        .collect();
    state.record_agreement(lend::opening_agreement(
        LoanStep::BorrowerAccepted,
        &accepted,
        &opening,
        mine,
    )?);
    let target = out.unwrap_or(file);
    write_pst(target, &accepted)?;
    open.state = state;
    open.save()?;
    let mut json = terms_json(&assets, opening.position(), &opening.terms);
    json["file"] = json!(target);
    json["step"] = json!("accepted");
    Ok(Report::new(
        json,
        format!(
            "accepted loan {}: {}\nwrote {}: give it to the lender, who runs `settle lend cosign`; \
             you sign last, with `settle lend accept` on the co-signed file",
            opening.position(),
            terms_text(&assets, &opening.terms),
            target.display()
        ),
    ))
}

/// The borrower's last step on a co-signed opening or margin update.
fn complete(
    ctx: &Ctx,
    mut open: Open,
    live: &Live,
    assets: &Assets,
    pst: &Pst,
    wait: bool,
) -> Result<Report> {
    let ours = |s: &[u8]| live.watch.owner(s).is_some();
    let (done, position, note, terms) = if let Some(position) = lend::margin_position(pst) {
        let loan = load_loan(ctx, &position)?;
        let (key, _) = wallet_key(&open, live, &loan.terms.borrower)
            .ok_or(LendError::NotOurKey { role: "borrower" })?;
        let agreed = agreement(&open, LoanStep::BorrowerMargin, &position, pst)?;
        let done = lend::complete_margin(pst, agreed, &loan.terms, &key, &open.keys, &ours)?;
        (done, position, "loan margin update", loan.terms)
    } else {
        let position = lend::read_opening(pst)?.position();
        let agreed = agreement(&open, LoanStep::BorrowerAccepted, &position, pst)?;
        let (done, opening) = lend::complete_opening(pst, agreed, &open.keys, &ours)?;
        (
            done,
            opening.position(),
            "loan opened (borrower)",
            opening.terms,
        )
    };
    let spent = lend::spent_outputs(pst)?;
    let f = flows(&done.tx, &spent, &live.watch);
    confirm(ctx, &summary(assets, &open, note, &terms, &f))?;
    // Keep the pre-signature before the transaction can confirm: without it the borrower
    // could not return alone.
    save_presig(ctx, position, &done)?;
    let txid = broadcast(ctx, &mut open, &done.tx, f, note)?;
    open.save()?;
    let height = maybe_wait(ctx, &txid, wait)?;
    let collateral = units_text(
        assets,
        &done.escrow_output.asset,
        done.escrow_output.amount.units(),
    );
    let mut json = terms_json(assets, position, &terms);
    json["txid"] = json!(txid);
    json["escrow"] = json!(done.escrow.to_string());
    json["collateral_in_escrow"] = json!(assets.fmt_number(
        &done.escrow_output.asset,
        u128::from(done.escrow_output.amount.units())
    ));
    json["height"] = json!(height);
    json["step"] = json!("completed");
    Ok(Report::new(
        json,
        format!(
            "{note}: position {position}, {collateral} in escrow {}\nthe lender's return \
             pre-signature is checked and kept in {}\ntxid {txid}\n{}",
            done.escrow,
            presig_path(ctx).display(),
            status_text(height)
        ),
    ))
}

/// The lender's co-signature of a margin update (`lend cosign` on a margin PST).
fn cosign_margin(
    ctx: &Ctx,
    pst: &Pst,
    position: AssetId,
    target: &Path,
    (assets, open, live): (&Assets, &Open, &Live),
    allow_below_agreed: bool,
) -> Result<Report> {
    let ours = |s: &[u8]| live.watch.owner(s).is_some();
    let loan = load_loan(ctx, &position)?;
    let (key, _) = wallet_key(open, live, &loan.terms.lender)
        .ok_or(LendError::NotOurKey { role: "lender" })?;
    let (old, new) = lend::margin_amounts(pst, &loan.escrow, &loan.terms)?;
    let signed = lend::cosign_margin(
        pst,
        &loan.terms,
        &open.keys,
        &key,
        &ours,
        allow_below_agreed,
    )?;
    let f = flows(pst.unsigned_tx(), &lend::spent_outputs(pst)?, &live.watch);
    let what = format!(
        "margin update of loan {position}: collateral {} -> {}",
        units_text(assets, &loan.terms.collateral_asset, old),
        units_text(assets, &loan.terms.collateral_asset, new)
    );
    confirm(ctx, &summary(assets, open, &what, &loan.terms, &f))?;
    write_pst(target, &signed)?;
    let asset = loan.terms.collateral_asset;
    Ok(Report::new(
        json!({
            "position": position,
            "file": target,
            "step": "cosigned",
            "collateral_before": assets.fmt_number(&asset, u128::from(old)),
            "collateral_after": assets.fmt_number(&asset, u128::from(new)),
        }),
        format!(
            "co-signed the margin update of loan {position}: collateral {} -> {}\nwrote {}: \
             the borrower finishes it with `settle lend accept`",
            units_text(assets, &asset, old),
            units_text(assets, &asset, new),
            target.display()
        ),
    ))
}

fn cosign(
    ctx: &Ctx,
    file: &Path,
    out: Option<&Path>,
    issuer_key: Option<PathBuf>,
    allow_below_agreed: bool,
) -> Result<Report> {
    let pst = read_pst(file)?;
    let mut open = ctx.open()?;
    check_pst_chain(&pst, &open.state)?;
    let live = sync::sync(ctx, &mut open)?;
    let assets = Assets::load(ctx.client())?;
    let ours = |s: &[u8]| live.watch.owner(s).is_some();
    let target = out.unwrap_or(file);
    if let Some(position) = lend::margin_position(&pst) {
        let shown = (&assets, &open, &live);
        return cosign_margin(ctx, &pst, position, target, shown, allow_below_agreed);
    }
    let opening = lend::read_opening(&pst)?;
    let (key, _) = wallet_key(&open, &live, &opening.terms.lender)
        .ok_or(LendError::NotOurKey { role: "lender" })?;
    let issuer = position_issuer(ctx, open.state.network, issuer_key)?;
    let agreed = agreement(&open, LoanStep::LenderProposed, &opening.position(), &pst)?;
    let (signed, opening) = lend::cosign_opening(&pst, agreed, &open.keys, &key, &issuer, &ours)?;
    let f = flows(pst.unsigned_tx(), &lend::spent_outputs(&pst)?, &live.watch);
    let what = format!("co-sign loan {}", opening.position());
    confirm(ctx, &summary(&assets, &open, &what, &opening.terms, &f))?;
    write_pst(target, &signed)?;
    let mut json = terms_json(&assets, opening.position(), &opening.terms);
    json["file"] = json!(target);
    json["step"] = json!("cosigned");
    json["txid"] = json!(signed.txid());
    Ok(Report::new(
        json,
        format!(
            "co-signed loan {} and pre-signed its return: {}\nwrote {}: the borrower signs last \
             and broadcasts with `settle lend accept {}`",
            opening.position(),
            terms_text(&assets, &opening.terms),
            target.display(),
            target.display()
        ),
    ))
}

fn return_loan(ctx: &Ctx, position: &str, wait: bool) -> Result<Report> {
    let position = parse_position(position)?;
    let mut open = ctx.open()?;
    let live = sync::sync(ctx, &mut open)?;
    let assets = Assets::load(ctx.client())?;
    let loan = load_loan(ctx, &position)?;
    let (key, _) = wallet_key(&open, &live, &loan.terms.borrower)
        .ok_or(LendError::NotOurKey { role: "borrower" })?;
    let Some(coin) = loan.escrow_coin() else {
        return Err(lending(format!(
            "loan {position} is {} ({}): there is nothing to return",
            loan.info.state, loan.info.lending_state
        )));
    };
    let next = live.height() + 1;
    loan.escrow.check_return_height(next).map_err(|e| {
        CliError::new(
            lend_kind::EXPIRED,
            format!("{e}: only a return both parties sign is possible now"),
        )
    })?;
    let presigs = load_presigs(ctx)?;
    let entry = presigs
        .presignatures
        .get(&coin.0.to_string())
        .ok_or_else(|| {
            lending(format!(
                "no return pre-signature for the escrow coin {} in {}",
                coin.0,
                presig_path(ctx).display()
            ))
        })?;
    let presig = hex::decode(&entry.signature)
        .map_err(|_| CliError::new(kind::WALLET_FILE, "a pre-signature is not hex"))?;
    let mut state = open.state.clone();
    let keys = open.keys.clone();
    let (to, _) = receive_address(&mut state, &keys, "loan collateral returned")?;
    let coins = live.spendable();
    let (chain_id, network) = (state.chain_id, state.network);
    let tx = lend::build_return(
        &loan.escrow,
        coin.clone(),
        &presig,
        &key,
        &coins,
        &keys,
        to,
        || change_address(&mut state, &keys).map_err(|e| e.to_string()),
        chain_id,
        network,
    )
    .map_err(|e| match e {
        LendError::Build(b) => assets.build_error(
            b,
            ": the full quantity must be returned to release the collateral",
        ),
        other => other.into(),
    })?;
    let mut spent = vec![coin.1.clone()];
    for input in tx.inputs.iter().skip(1) {
        let c = coins
            .iter()
            .find(|c| c.outpoint == input.prevout)
            .ok_or_else(|| lending("an input of the return is not a coin of this wallet"))?;
        spent.push(c.txout.clone());
    }
    let f = flows(&tx, &spent, &live.watch);
    open.state = state;
    let txid = broadcast(ctx, &mut open, &tx, f, "loan returned")?;
    open.save()?;
    let height = maybe_wait(ctx, &txid, wait)?;
    let t = &loan.terms;
    Ok(Report::new(
        json!({
            "position": position,
            "txid": txid,
            "returned": assets.fmt_number(&t.security_asset, u128::from(t.quantity)),
            "collateral": assets.fmt_number(&coin.1.asset, u128::from(coin.1.amount.units())),
            "height": height,
        }),
        format!(
            "returned {} to the lender and took back {} of collateral\ntxid {txid}\n{}",
            units_text(&assets, &t.security_asset, t.quantity),
            units_text(&assets, &coin.1.asset, coin.1.amount.units()),
            status_text(height)
        ),
    ))
}

fn claim(ctx: &Ctx, position: &str, wait: bool) -> Result<Report> {
    let position = parse_position(position)?;
    let mut open = ctx.open()?;
    let live = sync::sync(ctx, &mut open)?;
    let assets = Assets::load(ctx.client())?;
    let loan = load_loan(ctx, &position)?;
    let (key, _) = wallet_key(&open, &live, &loan.terms.lender)
        .ok_or(LendError::NotOurKey { role: "lender" })?;
    let Some(coin) = loan.escrow_coin() else {
        return Err(lending(format!(
            "loan {position} is {} ({}): there is no collateral in escrow to claim",
            loan.info.state, loan.info.lending_state
        )));
    };
    let mut state = open.state.clone();
    let keys = open.keys.clone();
    let (to, _) = receive_address(&mut state, &keys, "loan collateral claimed")?;
    let tx = lend::build_claim(
        &loan.escrow,
        coin.clone(),
        &key,
        to.script_pubkey,
        state.chain_id,
        state.network,
    )?;
    let next = live.height() + 1;
    if let Err(e) = loan.escrow.check_claim_height(next) {
        // Ask the node for its verdict too, so the refusal names the ledger's rule.
        let verdict = match ctx.client().test_mempool_accept(std::slice::from_ref(&tx)) {
            Ok(r) => r
                .first()
                .filter(|r| !r.allowed)
                .map(|r| {
                    format!(
                        "; the node refuses it too ({}, {})",
                        r.reject_class.as_deref().unwrap_or("?"),
                        r.reject_code.as_deref().unwrap_or("?")
                    )
                })
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        return Err(CliError::new(
            lend_kind::PREMATURE,
            format!(
                "too early to claim the collateral of loan {position}: {e} (maturity {}, grace \
                 {} blocks){verdict}",
                loan.terms.maturity_height, loan.terms.grace_period_blocks
            ),
        ));
    }
    let f = flows(&tx, std::slice::from_ref(&coin.1), &live.watch);
    open.state = state;
    let txid = broadcast(ctx, &mut open, &tx, f, "loan collateral claimed")?;
    open.save()?;
    let height = maybe_wait(ctx, &txid, wait)?;
    Ok(Report::new(
        json!({
            "position": position,
            "txid": txid,
            "collateral": assets.fmt_number(&coin.1.asset, u128::from(coin.1.amount.units())),
            "height": height,
        }),
        format!(
            "claimed {} of collateral: the borrower did not return {} by block {}\ntxid {txid}\n{}",
            units_text(&assets, &coin.1.asset, coin.1.amount.units()),
            units_text(&assets, &loan.terms.security_asset, loan.terms.quantity),
            loan.info.grace_end_height,
            status_text(height)
        ),
    ))
}

fn margin(ctx: &Ctx, position: &str, collateral: &str, out: &Path) -> Result<Report> {
    let position = parse_position(position)?;
    let mut open = ctx.open()?;
    let live = sync::sync(ctx, &mut open)?;
    let assets = Assets::load(ctx.client())?;
    let loan = load_loan(ctx, &position)?;
    let (_, origin) = wallet_key(&open, &live, &loan.terms.borrower)
        .ok_or(LendError::NotOurKey { role: "borrower" })?;
    let Some(coin) = loan.escrow_coin() else {
        return Err(lending(format!(
            "loan {position} is {}: its collateral is no longer in escrow",
            loan.info.state
        )));
    };
    let info = assets
        .get(&coin.1.asset)
        .ok_or_else(|| CliError::new(kind::UNKNOWN_ASSET, "the collateral asset is unknown"))?;
    let new = assets.parse_amount(info, collateral)?;
    let mut state = open.state.clone();
    let keys = open.keys.clone();
    let coins = live.spendable();
    let (chain_id, network) = (state.chain_id, state.network);
    let pst = lend::propose_margin(
        &loan.escrow,
        coin.clone(),
        new.units(),
        &coins,
        Some(origin),
        || change_address(&mut state, &keys).map_err(|e| e.to_string()),
        chain_id,
        network,
    )
    .map_err(|e| match e {
        LendError::Build(b) => assets.build_error(b, " for the margin top-up"),
        other => other.into(),
    })?;
    state.record_agreement(lend::margin_agreement(&pst, position));
    write_pst(out, &pst)?;
    open.state = state;
    open.save()?;
    let old = coin.1.amount.units();
    Ok(Report::new(
        json!({
            "position": position,
            "file": out,
            "collateral_before": assets.fmt_number(&coin.1.asset, u128::from(old)),
            "collateral_after": assets.fmt_number(&coin.1.asset, u128::from(new.units())),
        }),
        format!(
            "proposed new collateral for loan {position}: {} -> {}\nwrote {}: the lender runs \
             `settle lend cosign`, then you finish with `settle lend accept`",
            units_text(&assets, &coin.1.asset, old),
            units_text(&assets, &coin.1.asset, new.units()),
            out.display()
        ),
    ))
}

fn positions(ctx: &Ctx, all: bool, state: Option<&str>) -> Result<Report> {
    let mut open = ctx.open()?;
    let live = sync::sync(ctx, &mut open)?;
    open.save()?;
    let assets = Assets::load(ctx.client())?;
    let list = ctx.client().list_positions(&PositionFilter {
        state: state.map(str::to_owned),
        ..PositionFilter::default()
    })?;
    let role_of = |key_hex: &str| -> bool {
        let mut k = [0u8; 32];
        hex::decode_to_slice(key_hex, &mut k).is_ok()
            && XOnlyPublicKey::from_byte_array(k)
                .is_ok_and(|x| live.watch.owner(&p2k(&x)).is_some())
    };
    let mut rows = Vec::new();
    let mut lines = Vec::new();
    for p in &list.positions {
        let role = match (role_of(&p.lender), role_of(&p.borrower)) {
            (true, _) => Some("lender"),
            (false, true) => Some("borrower"),
            _ => None,
        };
        if role.is_none() && !all {
            continue;
        }
        let maturity = if p.state != "lent" {
            "closed".to_owned()
        } else if p.blocks_to_maturity > 0 {
            format!(
                "matures in {} block(s) (at {})",
                p.blocks_to_maturity, p.maturity_height
            )
        } else if p.can_claim {
            format!(
                "past maturity and grace (ended at {}): claimable",
                p.grace_end_height
            )
        } else {
            format!(
                "matured at {}; returnable up to block {}",
                p.maturity_height, p.grace_end_height
            )
        };
        let escrow_asset = p.escrow.as_ref().map_or(p.collateral_asset, |e| e.asset);
        rows.push(json!({
            "position": p.position,
            "role": role,
            "state": p.state,
            "lending_state": p.lending_state,
            "isin": p.isin,
            "security": { "asset": p.security_asset, "ticker": assets.ticker(&p.security_asset), "quantity": assets.fmt_number(&p.security_asset, u128::from(p.quantity)) },
            "collateral": {
                "asset": escrow_asset,
                "ticker": assets.ticker(&escrow_asset),
                "amount": assets.fmt_number(&escrow_asset, u128::from(p.collateral)),
                "units": p.collateral,
            },
            "maturity_height": p.maturity_height,
            "grace_end_height": p.grace_end_height,
            "blocks_to_maturity": p.blocks_to_maturity,
            "blocks_to_claim": p.blocks_to_claim,
            "can_return": p.can_return,
            "can_claim": p.can_claim,
            "escrow": p.escrow.as_ref().map(|e| e.outpoint.to_string()),
            "closing": p.closing,
        }));
        lines.push(format!(
            "{} {} {:<8} {} {} (ISIN {}), collateral {}, {}",
            p.position,
            role.unwrap_or("-"),
            p.lending_state,
            assets.fmt_number(&p.security_asset, u128::from(p.quantity)),
            assets.ticker(&p.security_asset),
            p.isin,
            units_text(&assets, &escrow_asset, p.collateral),
            maturity
        ));
    }
    let text = if lines.is_empty() {
        format!("no loans (chain at block {})", list.tip_height)
    } else {
        format!("at block {}:\n{}", list.tip_height, lines.join("\n"))
    };
    Ok(Report::new(
        json!({ "height": list.tip_height, "positions": rows }),
        text,
    ))
}
