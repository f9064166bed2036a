//! `settle wallet create|restore|info` and `settle address new|list`.

use serde_json::json;
use settle_script::Network;
use settle_wallet::keys::{EXTERNAL_CHAIN, Mnemonic};
use settle_wallet::scan::GAP_LIMIT;
use settle_wallet::state::{ScanTip, WalletState};
use settle_wallet::store::KdfParams;

use crate::Report;
use crate::cli::{AddressCmd, WalletCmd};
use crate::commands::pay::balance_report;
use crate::ctx::{Ctx, read_mnemonic};
use crate::error::{CliError, Result, kind};
use crate::sync;

pub fn run(ctx: &Ctx, cmd: WalletCmd) -> Result<Report> {
    match cmd {
        WalletCmd::Create { words } => create(ctx, words),
        WalletCmd::Restore => restore(ctx),
        WalletCmd::Info => info(ctx),
    }
}

fn node_network(info: &settle_rpc::BlockchainInfo) -> Result<Network> {
    info.network.parse().map_err(|_| {
        CliError::new(
            kind::NODE,
            format!("the node reports an unknown network {:?}", info.network),
        )
    })
}

fn create(ctx: &Ctx, words: usize) -> Result<Report> {
    if ctx.wallet_path().exists() {
        return Err(CliError::new(
            kind::WALLET_EXISTS,
            format!(
                "a wallet already exists at {}; choose another --datadir",
                ctx.wallet_path().display()
            ),
        ));
    }
    let info = ctx.node_info(None)?;
    let network = node_network(&info)?;
    let mnemonic = Mnemonic::generate_words(words)?;
    let mut state = WalletState::new(mnemonic, network, info.chain_id);
    // A fresh mnemonic has no coins: start reading the chain at its tip.
    state.scan = Some(ScanTip {
        height: info.blocks,
        block_hash: info.best_block_hash,
    });
    let mut open = ctx.create(state)?;
    let first = open.state.next_receive_address(&open.keys)?;
    open.save()?;
    let fingerprint = open.keys.master_fingerprint().to_string();
    let phrase = open.state.mnemonic.phrase().to_owned();
    let text = format!(
        "created a wallet for the {network} chain {} in {}\n\
         fingerprint {fingerprint}; first address {}\n\n\
         Write down these {} words and keep them offline. They are shown only now, and\n\
         they are the only way to restore this wallet if the file or its passphrase is lost:\n\n\
         {}\n",
        info.chain_id,
        open.path.display(),
        first.address,
        open.state.mnemonic.word_count(),
        numbered(&phrase),
    );
    Ok(Report::new(
        json!({
            "wallet": open.path,
            "network": network,
            "chain_id": info.chain_id,
            "fingerprint": fingerprint,
            "address": first.address.to_string(),
            "mnemonic": phrase,
        }),
        text,
    ))
}

fn numbered(phrase: &str) -> String {
    phrase
        .split(' ')
        .enumerate()
        .map(|(i, w)| format!("{:>2}. {w:<10}", i + 1))
        .collect::<Vec<_>>()
        .chunks(6)
        .map(|row| row.join(" ").trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n")
}

fn restore(ctx: &Ctx) -> Result<Report> {
    if ctx.wallet_path().exists() {
        return Err(CliError::new(
            kind::WALLET_EXISTS,
            format!(
                "a wallet already exists at {}; restore into another --datadir",
                ctx.wallet_path().display()
            ),
        ));
    }
    let phrase = read_mnemonic()?;
    let mnemonic = Mnemonic::parse(&phrase)?;
    let info = ctx.node_info(None)?;
    let network = node_network(&info)?;
    let state = WalletState::new(mnemonic, network, info.chain_id);
    let mut open = ctx.create(state)?;
    let live = sync::sync(ctx, &mut open)?;
    open.save()?;
    let assets = crate::ctx::Assets::load(ctx.client())?;
    let (bal_json, bal_text) = balance_report(&assets, &live, &open.state);
    let text = format!(
        "restored the wallet {} for the {network} chain {} in {}\n\
         read {} blocks: {} receiving and {} change addresses in use, {} coins\n{bal_text}",
        open.keys.master_fingerprint(),
        info.chain_id,
        open.path.display(),
        info.blocks + 1,
        open.state.next_index.external,
        open.state.next_index.internal,
        live.coins.len(),
    );
    Ok(Report::new(
        json!({
            "wallet": open.path,
            "fingerprint": open.keys.master_fingerprint().to_string(),
            "network": network,
            "chain_id": info.chain_id,
            "height": info.blocks,
            "next_index": open.state.next_index,
            "balances": bal_json,
        }),
        text,
    ))
}

fn info(ctx: &Ctx) -> Result<Report> {
    let open = ctx.open()?;
    let s = &open.state;
    let kdf = open.kdf();
    let insecure = kdf == KdfParams::INSECURE_FOR_TESTS;
    let scanned = s.scan.map(|t| t.height);
    let text = format!(
        "wallet      {}\n\
         fingerprint {}\n\
         network     {} (chain id {})\n\
         addresses   {} receiving, {} change handed out (gap limit {GAP_LIMIT})\n\
         coins       {} known, chain read up to {}\n\
         multisig    {}\n\
         offers      {} open\n\
         encryption  argon2id {}, {} pass(es), {} lane(s){}",
        open.path.display(),
        open.keys.master_fingerprint(),
        s.network,
        s.chain_id,
        s.next_index.external,
        s.next_index.internal,
        s.coins.len(),
        scanned.map_or_else(|| "nothing yet".to_owned(), |h| format!("block {h}")),
        s.multisig.len(),
        s.offers.len(),
        if kdf.memory_kib >= 1024 {
            format!("{} MiB", kdf.memory_kib / 1024)
        } else {
            format!("{} KiB", kdf.memory_kib)
        },
        kdf.passes,
        kdf.lanes,
        if insecure {
            " -- INSECURE TEST PARAMETERS"
        } else {
            ""
        },
    );
    Ok(Report::new(
        json!({
            "wallet": open.path,
            "fingerprint": open.keys.master_fingerprint().to_string(),
            "network": s.network,
            "chain_id": s.chain_id,
            "account": s.account,
            "next_index": s.next_index,
            "gap_limit": GAP_LIMIT,
            "coins": s.coins.len(),
            "scanned_height": scanned,
            "multisig": s.multisig.len(),
            "offers": s.offers.len(),
            "kdf": {
                "algorithm": "argon2id",
                "memory_kib": kdf.memory_kib,
                "passes": kdf.passes,
                "lanes": kdf.lanes,
                "insecure_test_parameters": insecure,
            },
        }),
        text,
    ))
}

pub fn address(ctx: &Ctx, cmd: AddressCmd) -> Result<Report> {
    let mut open = ctx.open()?;
    match cmd {
        AddressCmd::New { label } => {
            let a = open.state.next_receive_address(&open.keys)?;
            let text = a.address.to_string();
            if let Some(l) = &label {
                open.state.set_label(&text, l)?;
            }
            open.save()?;
            Ok(Report::new(
                json!({
                    "address": text,
                    "path": a.key.origin.path.to_string(),
                    "label": label,
                }),
                text.clone(),
            ))
        }
        AddressCmd::List => {
            let mut rows = Vec::new();
            let mut lines = Vec::new();
            for index in 0..open.state.next_index.external {
                let a = open.state.address_at(&open.keys, EXTERNAL_CHAIN, index)?;
                let text = a.address.to_string();
                let label = open.state.labels.get(&text).cloned();
                let coins = open
                    .state
                    .coins
                    .iter()
                    .filter(|c| c.script_pubkey == a.script_pubkey)
                    .count();
                lines.push(format!(
                    "{index:>4}  {text}  {coins} coin(s){}",
                    label
                        .as_deref()
                        .map(|l| format!("  ({l})"))
                        .unwrap_or_default()
                ));
                rows.push(json!({
                    "index": index,
                    "address": text,
                    "label": label,
                    "coins": coins,
                }));
            }
            let text = if lines.is_empty() {
                "no addresses handed out yet (settle address new)".to_owned()
            } else {
                lines.join("\n")
            };
            Ok(Report::new(json!(rows), text))
        }
    }
}
