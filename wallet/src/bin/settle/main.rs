//! `settle`: Settle's command-line wallet and client.
//!
//! ```text
//! settle wallet create|restore|info
//! settle address new|list
//! settle balance
//! settle send AMOUNT ASSET ADDRESS
//! settle asset issue|reissue|burn|info|list
//! settle history
//! settle pst decode|analyze|sign|combine|finalize|broadcast FILE
//! settle offer create|show|take|cancel
//! settle multisig key|create|import|list|spend
//! settle lend propose|accept|cosign|return|claim|margin|positions
//! ```
//!
//! Every command prints text for people, or JSON with `--json`. Errors go to standard
//! error (as JSON `{"error": {"kind", "message"}}` with `--json`) with exit status 1;
//! bad arguments exit with 2. The wallet talks to a node only through the RPC types
//! (`settle-rpc`); nothing secret is ever printed except the mnemonic, once, by
//! `wallet create`.

mod cli;
mod commands;
mod ctx;
mod error;
mod sync;

use std::process::ExitCode;

use clap::Parser as _;
use serde_json::Value;

use crate::cli::{Cli, Command};
use crate::ctx::Ctx;

/// What a command reports: JSON for programs, text for people.
#[derive(Debug)]
pub struct Report {
    pub json: Value,
    pub text: String,
}

impl Report {
    pub fn new(json: Value, text: impl Into<String>) -> Report {
        Report {
            json,
            text: text.into(),
        }
    }
}

fn run(cli: Cli) -> error::Result<Report> {
    let ctx = Ctx::new(cli.global);
    match cli.command {
        Command::Wallet(c) => commands::wallet::run(&ctx, c),
        Command::Address(c) => commands::wallet::address(&ctx, c),
        Command::Balance => commands::pay::balance(&ctx),
        Command::Send(a) => commands::pay::send(&ctx, a),
        Command::History(a) => commands::pay::history(&ctx, a),
        Command::Asset(c) => commands::asset::run(&ctx, c),
        Command::Pst(c) => commands::pst::run(&ctx, c),
        Command::Offer(c) => commands::offer::run(&ctx, c),
        Command::Multisig(c) => commands::multisig::run(&ctx, c),
        Command::Lend(c) => commands::lend::run(&ctx, c),
    }
}

/// Exit status of a command line that does not parse (clap's convention).
const USAGE_EXIT: u8 = 2;

/// Parses the command line. With `--json` anywhere on it, a command line that does not
/// parse is reported as `{"error": {"kind": "usage", ...}}` on stderr like every other
/// error, so scripts read one format; help and version are printed as usual.
fn parse() -> Result<Cli, ExitCode> {
    match Cli::try_parse() {
        Ok(cli) => Ok(cli),
        Err(e) => {
            use clap::error::ErrorKind;
            let wants_json = std::env::args_os().skip(1).any(|a| a == "--json");
            let informational = matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            );
            if !wants_json || informational {
                e.exit();
            }
            let text = e.render().to_string();
            // clap's first line ("error: ...") says what was wrong; drop its prefix.
            let message = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("invalid arguments")
                .trim_start_matches("error: ")
                .to_owned();
            let v =
                serde_json::json!({ "error": { "kind": error::kind::USAGE, "message": message } });
            eprintln!("{v}");
            Err(ExitCode::from(USAGE_EXIT))
        }
    }
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let json = cli.global.json;
    match run(cli) {
        Ok(report) => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report.json).unwrap_or_default()
                );
            } else if !report.text.is_empty() {
                println!("{}", report.text.trim_end());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            if json {
                let v = serde_json::json!({ "error": { "kind": e.kind, "message": e.message } });
                eprintln!("{v}");
            } else {
                eprintln!("settle: error: {}", e.message);
            }
            ExitCode::from(1)
        }
    }
}
