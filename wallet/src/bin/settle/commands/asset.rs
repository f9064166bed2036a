//! `settle asset issue|reissue|burn|info|list`.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use serde_json::json;
use settle_assets::transaction::TX_VERSION;
use settle_assets::{
    Amount, AssetClass, AssetContract, Issuance, IssuanceKind, OutPoint, Transaction, TxIn, TxOut,
};
use settle_rpc::AssetInfo;
use settle_script::{Network, SighashType, burn_script};
use settle_wallet::coins::{BuildOptions, Payment, build_payment};
use settle_wallet::keys::SigningKey;
use settle_wallet::policy::{self, SigningPolicy};
use settle_wallet::pst::Pst;
use zeroize::Zeroizing;

use crate::Report;
use crate::cli::{AssetCmd, IssueArgs, IssueClass};
use crate::commands::{
    broadcast, change_address, flows, maybe_wait, receive_address, sign_built, status_text,
};
use crate::ctx::{Assets, Ctx, Open, parse_address};
use crate::error::{CliError, Result, kind};
use crate::sync;

/// Longest issuer key file read.
const MAX_KEY_FILE_BYTES: u64 = 4_096;
/// The dev issuer key files `settled init --dev` writes under `<node datadir>/keys/`.
const DEV_CASH_KEY: &str = "issuer-cash.key";
const DEV_SECURITY_KEY: &str = "issuer-security.key";

pub fn run(ctx: &Ctx, cmd: AssetCmd) -> Result<Report> {
    match cmd {
        AssetCmd::Issue(a) => issue(ctx, a),
        AssetCmd::Reissue {
            asset,
            amount,
            to,
            issuer_key,
            wait,
        } => reissue(ctx, &asset, &amount, to.as_deref(), issuer_key, wait),
        AssetCmd::Burn {
            amount,
            asset,
            wait,
        } => burn(ctx, &amount, &asset, wait),
        AssetCmd::Info { asset } => info(ctx, &asset),
        AssetCmd::List => list(ctx),
        AssetCmd::Trust { asset } => trust(ctx, &asset, true),
        AssetCmd::Untrust { asset } => trust(ctx, &asset, false),
    }
}

/// Reads a secret key file: 64 hex characters (and a newline), readable by its owner only.
pub(crate) fn read_key_file(path: &Path) -> Result<SigningKey> {
    let bad = |detail: String| {
        CliError::new(
            kind::ISSUER_KEY,
            format!("issuer key file {}: {detail}", path.display()),
        )
    };
    let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = file
            .metadata()
            .map_err(|e| bad(e.to_string()))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            return Err(bad(format!(
                "mode {mode:o} lets others read it; it must be readable by its owner only (chmod 600)"
            )));
        }
    }
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_KEY_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| bad(e.to_string()))?;
    let mut bytes = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(text.trim(), &mut bytes[..])
        .map_err(|_| bad("expected 64 hex characters".into()))?;
    SigningKey::from_secret_bytes(*bytes).ok_or_else(|| bad("not a valid secret key".into()))
}

/// The issuer key: `--issuer-key`, else on a dev chain the node's dev key for `class`.
fn issuer_key(ctx: &Ctx, open: &Open, class: &str, given: Option<PathBuf>) -> Result<SigningKey> {
    if let Some(p) = given {
        return read_key_file(&p);
    }
    let file = match class {
        "cash" => DEV_CASH_KEY,
        "security" | "lending_position" => DEV_SECURITY_KEY,
        other => {
            return Err(CliError::new(
                kind::ISSUER_KEY,
                format!("no dev issuer key for class {other}; pass --issuer-key FILE"),
            ));
        }
    };
    match (&ctx.global.node_datadir, open.state.network) {
        (Some(dir), Network::Dev) => read_key_file(&dir.join("keys").join(file)),
        (Some(_), network) => Err(CliError::new(
            kind::ISSUER_KEY,
            format!(
                "the node's dev issuer keys are used only on dev chains, this is a {network} \
                 chain: pass --issuer-key FILE with a key the chain spec authorises for {class}"
            ),
        )),
        (None, _) => Err(CliError::new(
            kind::ISSUER_KEY,
            format!(
                "no issuer key: pass --issuer-key FILE (a key the chain spec authorises for \
                 {class}), or on a dev chain --node-datadir DIR to use the node's dev key"
            ),
        )),
    }
}

/// Where issued units go: `--to`, or a new address of this wallet.
fn issue_destination(
    open: &mut Open,
    to: Option<&str>,
    label: &str,
) -> Result<(Vec<u8>, String, bool)> {
    match to {
        Some(t) => {
            let a = parse_address(t, open.state.network)?;
            Ok((a.script_pubkey(), a.to_string(), false))
        }
        None => {
            let (c, text) = receive_address(&mut open.state, &open.keys, label)?;
            Ok((c.script_pubkey, text, true))
        }
    }
}

fn issue(ctx: &Ctx, args: IssueArgs) -> Result<Report> {
    let class = match args.class {
        IssueClass::Cash => AssetClass::Cash {
            currency: args
                .currency
                .clone()
                .ok_or_else(|| CliError::usage("cash needs --currency (ISO 4217, e.g. EUR)"))?,
        },
        IssueClass::Security => AssetClass::Security {
            isin: args
                .isin
                .clone()
                .ok_or_else(|| CliError::usage("a security needs --isin"))?,
        },
    };
    if args.class == IssueClass::Cash && args.isin.is_some() {
        return Err(CliError::usage("--isin is for securities, not cash"));
    }
    if args.class == IssueClass::Security && args.currency.is_some() {
        return Err(CliError::usage("--currency is for cash, not securities"));
    }
    let precision = args.precision.unwrap_or(match args.class {
        IssueClass::Cash => 2,
        IssueClass::Security => 0,
    });
    let amount = Amount::parse_decimal(args.amount.trim(), precision).map_err(|e| {
        CliError::new(
            kind::BAD_AMOUNT,
            format!("{e} (the asset has {precision} decimal places)"),
        )
    })?;
    if amount == Amount::ZERO {
        return Err(CliError::new(
            kind::BAD_AMOUNT,
            "the amount must be more than zero",
        ));
    }
    let mut open = ctx.open()?;
    let live = sync::sync(ctx, &mut open)?;
    let class_name = class.name();
    let key = issuer_key(ctx, &open, class_name, args.issuer_key.clone())?;
    let contract = AssetContract {
        class,
        name: args.name.clone(),
        ticker: args.ticker.clone(),
        precision,
        issuer: key.x_only_bytes(),
        reissuable: args.reissuable,
    };
    let contract_bytes = contract
        .to_canonical_bytes()
        .map_err(|e| CliError::new(kind::USAGE, format!("invalid asset contract: {e}")))?;
    let issuance = Issuance {
        kind: IssuanceKind::New {
            contract: contract_bytes,
        },
        amount,
        signature: None,
    };
    let asset = issuance.asset_id(&OutPoint::NULL);
    let (script, to_text, ours) = issue_destination(
        &mut open,
        args.to.as_deref(),
        &format!("issued {}", args.ticker),
    )?;
    let tx = Transaction {
        version: TX_VERSION,
        inputs: vec![TxIn {
            issuance: Some(issuance),
            ..TxIn::spending(OutPoint::NULL)
        }],
        outputs: vec![TxOut {
            asset,
            amount,
            script_pubkey: script,
        }],
        lock_time: 0,
        expiry_height: 0,
    };
    let mut pst = Pst::create(tx, vec![None], open.state.chain_id, open.state.network)?;
    pst.sign_issuance(0, &key)?;
    pst.finalize()?;
    let tx = pst.extract()?;
    let f = flows(&tx, &[TxOut::NONE], &live.watch);
    let f = if ours && f.is_empty() {
        vec![settle_wallet::state::AssetFlow {
            asset,
            gave: 0,
            got: amount.units(),
        }]
    } else {
        f
    };
    let txid = broadcast(ctx, &mut open, &tx, f, "issue").map_err(|e| {
        if e.message.contains("duplicate-asset") {
            CliError::new(
                e.kind,
                format!(
                    "{}: an asset with exactly this contract exists already (asset {asset}); \
                     change the name or ticker",
                    e.message
                ),
            )
        } else {
            e
        }
    })?;
    open.save()?;
    let height = maybe_wait(ctx, &txid, args.wait)?;
    let shown = amount.to_decimal_string(precision);
    Ok(Report::new(
        json!({
            "asset": asset,
            "txid": txid,
            "class": class_name,
            "ticker": args.ticker,
            "name": args.name,
            "precision": precision,
            "amount": shown,
            "to": to_text,
            "issuer": hex::encode(key.x_only_bytes()),
            "reissuable": args.reissuable,
            "height": height,
        }),
        format!(
            "issued {shown} {} ({class_name}, {}) to {to_text}\nasset id {asset}\ntxid {txid}\n{}",
            args.ticker,
            args.name,
            status_text(height)
        ),
    ))
}

fn reissue(
    ctx: &Ctx,
    asset: &str,
    amount: &str,
    to: Option<&str>,
    issuer_key_file: Option<PathBuf>,
    wait: bool,
) -> Result<Report> {
    let mut open = ctx.open()?;
    let live = sync::sync(ctx, &mut open)?;
    let assets = Assets::load(ctx.client())?;
    let info = assets.resolve(asset)?.clone();
    let amount = assets.parse_amount(&info, amount)?;
    if !info.reissuable {
        return Err(CliError::new(
            kind::USAGE,
            format!(
                "{} ({}) is not reissuable: its contract says so",
                info.ticker, info.asset
            ),
        ));
    }
    let key = issuer_key(ctx, &open, &info.class, issuer_key_file)?;
    if hex::encode(key.x_only_bytes()) != info.issuer {
        return Err(CliError::new(
            kind::ISSUER_KEY,
            format!(
                "the key given is not the issuer of {} (its issuer is {})",
                info.ticker, info.issuer
            ),
        ));
    }
    // A reissuance rides on an input that spends a coin (a null input may only carry a new
    // issuance): use one of the wallet's coins, preferably of the asset itself, and pay it
    // back to a change address.
    let coins = live.spendable();
    let carrier = coins
        .iter()
        .filter(|c| c.txout.asset == info.asset)
        .chain(coins.iter())
        .next()
        .cloned()
        .ok_or_else(|| {
            CliError::new(
                kind::INSUFFICIENT_FUNDS,
                "reissuing needs one coin of this wallet to carry the issuance record (a null \
                 input can only carry a new issuance); receive any coin first",
            )
        })?;
    let (script, to_text, _) =
        issue_destination(&mut open, to, &format!("issued {}", info.ticker))?;
    let back = change_address(&mut open.state, &open.keys)?;
    let tx = Transaction {
        version: TX_VERSION,
        inputs: vec![TxIn {
            issuance: Some(Issuance {
                kind: IssuanceKind::Reissue { asset: info.asset },
                amount,
                signature: None,
            }),
            ..TxIn::spending(carrier.outpoint)
        }],
        outputs: vec![
            TxOut {
                asset: info.asset,
                amount,
                script_pubkey: script,
            },
            TxOut {
                script_pubkey: back.script_pubkey.clone(),
                ..carrier.txout.clone()
            },
        ],
        lock_time: 0,
        expiry_height: 0,
    };
    let mut pst = Pst::create(
        tx,
        vec![Some(carrier.txout.clone())],
        open.state.chain_id,
        open.state.network,
    )?;
    if let (Some(origin), settle_script::ScriptKind::PayToKey(k)) = (
        &carrier.origin,
        settle_script::classify(&carrier.txout.script_pubkey),
    ) && let Ok(x) = secp256k1::XOnlyPublicKey::from_byte_array(k)
    {
        pst.add_input_key_origin(0, &x, origin.clone())?;
    }
    let rules = SigningPolicy::new()
        .with_coin(carrier.outpoint, carrier.txout.clone(), SighashType::All)
        .with_issuance(carrier.outpoint);
    policy::sign(&mut pst, Some(&open.keys), &[], &rules)?;
    pst.sign_issuance(0, &key)?;
    pst.finalize()?;
    let tx = pst.extract()?;
    let f = flows(&tx, std::slice::from_ref(&carrier.txout), &live.watch);
    let txid = broadcast(ctx, &mut open, &tx, f, "reissue")?;
    open.save()?;
    let height = maybe_wait(ctx, &txid, wait)?;
    let shown = assets.fmt(&info.asset, u128::from(amount.units()));
    Ok(Report::new(
        json!({
            "asset": info.asset,
            "txid": txid,
            "amount": assets.fmt_number(&info.asset, u128::from(amount.units())),
            "to": to_text,
            "height": height,
        }),
        format!(
            "reissued {shown} to {to_text}\ntxid {txid}\n{}",
            status_text(height)
        ),
    ))
}

fn burn(ctx: &Ctx, amount: &str, asset: &str, wait: bool) -> Result<Report> {
    let mut open = ctx.open()?;
    let live = sync::sync(ctx, &mut open)?;
    let assets = Assets::load(ctx.client())?;
    let info = assets.resolve(asset)?;
    let amount = assets.parse_amount(info, amount)?;
    let mut state = open.state.clone();
    let keys = open.keys.clone();
    let built = build_payment(
        &live.spendable(),
        &[Payment {
            asset: info.asset,
            amount,
            script_pubkey: burn_script(&[]),
            label: Some("burn".into()),
        }],
        |_| change_address(&mut state, &keys).map_err(|e| e.to_string()),
        BuildOptions::default(),
    )
    .map_err(|e| assets.build_error(e, ""))?;
    let (tx, f) = sign_built(&built, &state, &keys, &live.watch)?;
    open.state = state;
    let txid = broadcast(ctx, &mut open, &tx, f, "burn")?;
    open.save()?;
    let height = maybe_wait(ctx, &txid, wait)?;
    let shown = assets.fmt(&info.asset, u128::from(amount.units()));
    Ok(Report::new(
        json!({
            "asset": info.asset,
            "txid": txid,
            "amount": assets.fmt_number(&info.asset, u128::from(amount.units())),
            "height": height,
        }),
        format!("burned {shown}\ntxid {txid}\n{}", status_text(height)),
    ))
}

fn describe(assets: &Assets, a: &AssetInfo) -> (serde_json::Value, String) {
    let class_detail = match a.class.as_str() {
        "cash" => a.contract["currency"]
            .as_str()
            .map(|c| format!("currency {c}")),
        "security" => a.contract["isin"].as_str().map(|i| format!("ISIN {i}")),
        _ => None,
    };
    let text = format!(
        "{} ({})\n  asset id     {}\n  class        {}{}\n  precision    {}\n  issuer       {}\n  \
         reissuable   {}\n  issued       {}\n  burned       {}\n  outstanding  {}\n  \
         first issued in {} at block {}",
        a.ticker,
        a.name,
        a.asset,
        a.class,
        class_detail.map(|d| format!(", {d}")).unwrap_or_default(),
        a.precision,
        a.issuer,
        if a.reissuable { "yes" } else { "no" },
        assets.fmt(&a.asset, a.issued),
        assets.fmt(&a.asset, a.burned),
        assets.fmt(&a.asset, a.outstanding),
        a.issuance_txid,
        a.issuance_height,
    );
    let mut json = serde_json::to_value(a).unwrap_or_default();
    json["issued_amount"] = assets.fmt_number(&a.asset, a.issued).into();
    json["outstanding_amount"] = assets.fmt_number(&a.asset, a.outstanding).into();
    (json, text)
}

fn info(ctx: &Ctx, asset: &str) -> Result<Report> {
    ctx.node_info(None)?;
    let assets = Assets::load(ctx.client())?;
    let a = assets.resolve(asset)?;
    let (json, text) = describe(&assets, a);
    Ok(Report::new(json, text))
}

fn list(ctx: &Ctx) -> Result<Report> {
    ctx.node_info(None)?;
    let assets = Assets::load(ctx.client())?;
    let mut rows = Vec::new();
    let mut lines = vec![format!(
        "{:<8} {:<9} {:>24}  {:<64}  NAME",
        "TICKER", "CLASS", "OUTSTANDING", "ASSET ID"
    )];
    for a in assets.all() {
        rows.push(describe(&assets, a).0);
        lines.push(format!(
            "{:<8} {:<9} {:>24}  {}  {}",
            a.ticker,
            a.class,
            assets.fmt_number(&a.asset, a.outstanding),
            a.asset,
            a.name
        ));
    }
    let text = if rows.is_empty() {
        "no assets issued on this chain yet".to_owned()
    } else {
        lines.join("\n")
    };
    Ok(Report::new(json!(rows), text))
}

/// `asset trust|untrust ID`: pins (or unpins) an asset by its full id. A ticker is refused:
/// the point of pinning is to tell an asset from another with the same ticker.
fn trust(ctx: &Ctx, asset: &str, pin: bool) -> Result<Report> {
    let text = asset.trim();
    if !(text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())) {
        return Err(CliError::usage(
            "give the asset's full 64-hex id (see `settle asset list`), not its ticker: \
             tickers can be shared",
        ));
    }
    let mut open = ctx.open()?;
    let assets = Assets::load(ctx.client())?;
    let info = assets.resolve(text)?;
    let id = info.asset;
    open.state.trusted_assets.retain(|a| *a != id);
    if pin {
        if open.state.trusted_assets.len() >= settle_wallet::state::MAX_TRUSTED_ASSETS {
            return Err(CliError::usage(format!(
                "this wallet already trusts {} assets",
                settle_wallet::state::MAX_TRUSTED_ASSETS
            )));
        }
        open.state.trusted_assets.push(id);
    }
    open.save()?;
    let view = crate::commands::show::AssetView::new(&assets, Some(&open.state));
    Ok(Report::new(
        json!({ "asset": id, "trusted": pin }),
        format!(
            "{} {}",
            view.ident(&id),
            if pin {
                "is now trusted"
            } else {
                "is no longer trusted"
            }
        ),
    ))
}
