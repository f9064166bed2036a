//! What the user is shown before anything is signed (`spec/pst.md`, section 8): every
//! asset identified beyond its ticker (class, issuer, short id, trusted or not, a warning
//! when another asset shares or imitates its ticker), text a PST carries marked as
//! claimed and stripped of control characters, the wallet's own net flows, and the
//! confirmation a co-signing step asks for.

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use serde_json::{Value, json};
use settle_assets::AssetId;
use settle_wallet::pst::analyze::printable;
use settle_wallet::state::{AssetFlow, WalletState};

use crate::ctx::{Assets, Ctx};
use crate::error::{CliError, Result, kind};

/// Hex characters of an asset id or issuer key shown in text (the JSON has them whole).
pub const SHORT_ID_HEX_CHARS: usize = 12;
/// Longest free text taken from a PST into a line of output, in characters.
pub const MAX_CLAIMED_TEXT_CHARS: usize = 80;

/// `text` without control characters (newlines, escapes that could fake or hide lines on
/// a terminal) or bidirectional overrides, and at most [`MAX_CLAIMED_TEXT_CHARS`] long.
pub fn clean(text: &str) -> String {
    let mut out: String = printable(text)
        .chars()
        .take(MAX_CLAIMED_TEXT_CHARS)
        .collect();
    if text.chars().count() > MAX_CLAIMED_TEXT_CHARS {
        out.push('…');
    }
    out
}

/// Free text from a PST, cleaned and marked as the PST's claim, not the wallet's finding.
pub fn claimed(text: &str) -> String {
    format!("\"{}\" (claimed by the pst, unverified)", clean(text))
}

/// A ticker reduced to the letters a reader would confuse: case folded, digits that look
/// like letters mapped to them (B0ND and BOND, EURO and EUR0 compare equal).
fn skeleton(ticker: &str) -> String {
    ticker
        .chars()
        .map(|c| match c.to_ascii_uppercase() {
            '0' => 'O',
            '1' | 'L' => 'I',
            '5' => 'S',
            '8' => 'B',
            '2' => 'Z',
            other => other,
        })
        .collect()
}

fn short(hex_text: &str) -> &str {
    &hex_text[..hex_text.len().min(SHORT_ID_HEX_CHARS)]
}

/// The chain's assets and the user's trusted ones, for showing amounts.
pub struct AssetView<'a> {
    pub assets: &'a Assets,
    trusted: Vec<AssetId>,
}

impl<'a> AssetView<'a> {
    pub fn new(assets: &'a Assets, state: Option<&WalletState>) -> AssetView<'a> {
        AssetView {
            assets,
            trusted: state.map(|s| s.trusted_assets.clone()).unwrap_or_default(),
        }
    }

    /// `EUR [cash, issuer 1a2b3c4d5e6f, id e0e0e0e0e0e0, trusted]`.
    pub fn ident(&self, id: &AssetId) -> String {
        let id_text = id.to_string();
        let Some(a) = self.assets.get(id) else {
            return format!("[unknown asset, id {id_text}]");
        };
        format!(
            "{} [{}, issuer {}, id {}{}]",
            clean(&a.ticker),
            a.class,
            short(&a.issuer),
            short(&id_text),
            if self.trusted.contains(id) {
                ", trusted"
            } else {
                ""
            }
        )
    }

    /// `1,000.00 EUR [cash, issuer …, id …]`.
    pub fn amount(&self, id: &AssetId, units: u128) -> String {
        format!("{} {}", self.assets.fmt_number(id, units), self.ident(id))
    }

    /// The asset as JSON: id, ticker, class, issuer, trusted.
    pub fn json(&self, id: &AssetId) -> Value {
        let a = self.assets.get(id);
        json!({
            "asset": id,
            "ticker": a.map(|a| a.ticker.clone()),
            "class": a.map(|a| a.class.clone()),
            "issuer": a.map(|a| a.issuer.clone()),
            "trusted": self.trusted.contains(id),
        })
    }

    /// A warning for each of `ids` whose ticker another asset of the chain shares or
    /// imitates (EUR and EUR, B0ND and BOND).
    pub fn warnings(&self, ids: &[AssetId]) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen: Vec<AssetId> = Vec::new();
        for id in ids {
            if seen.contains(id) {
                continue;
            }
            seen.push(*id);
            let Some(a) = self.assets.get(id) else {
                out.push(format!(
                    "warning: asset {id} is not issued on this chain as far as the node knows"
                ));
                continue;
            };
            let twins: Vec<String> = self
                .assets
                .all()
                .filter(|o| o.asset != *id && skeleton(&o.ticker) == skeleton(&a.ticker))
                .map(|o| self.ident(&o.asset))
                .collect();
            if !twins.is_empty() {
                out.push(format!(
                    "warning: the ticker of {} is shared or imitated by {}: check the asset id",
                    self.ident(id),
                    twins.join(", ")
                ));
            }
        }
        out
    }

    /// The wallet's own net flows, one line per asset: `-10 BOND [...]`.
    pub fn flows_text(&self, flows: &[AssetFlow]) -> String {
        let lines: Vec<String> = flows
            .iter()
            .map(|f| {
                let (sign, units) = if f.got >= f.gave {
                    ("+", u128::from(f.got - f.gave))
                } else {
                    ("-", u128::from(f.gave - f.got))
                };
                format!("  {sign}{}", self.amount(&f.asset, units))
            })
            .collect();
        if lines.is_empty() {
            "  (no change to this wallet's balances)".to_owned()
        } else {
            lines.join("\n")
        }
    }
}

/// Shows `summary` and asks whether to sign. `--yes` answers for the user; without a
/// terminal to ask on and without `--yes` the step is refused, so a script never signs
/// something nobody looked at.
pub fn confirm(ctx: &Ctx, summary: &str) -> Result<()> {
    if ctx.global.yes {
        return Ok(());
    }
    let stdin = std::io::stdin();
    if !stdin.is_terminal() || !std::io::stderr().is_terminal() {
        return Err(CliError::new(
            kind::NOT_CONFIRMED,
            format!(
                "{summary}\nnot signed: this step needs confirmation; read the above and run \
                 it again with --yes"
            ),
        ));
    }
    let mut err = std::io::stderr();
    let _ = write!(err, "{summary}\nsign this? [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CliError::new(kind::IO, format!("reading the answer: {e}")))?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES") {
        Ok(())
    } else {
        Err(CliError::new(
            kind::NOT_CONFIRMED,
            "not signed: you said no",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alike_tickers_share_a_skeleton() {
        assert_eq!(skeleton("B0ND"), skeleton("BOND"));
        assert_eq!(skeleton("eur"), skeleton("EUR"));
        assert_eq!(skeleton("EURO"), skeleton("EUR0"));
        assert_eq!(skeleton("U5D"), skeleton("USD"));
        assert_ne!(skeleton("EUR"), skeleton("USD"));
    }

    #[test]
    fn claimed_text_is_cleaned_and_bounded() {
        let hostile = "alice\n\u{1b}[2Koutput 0: to bob\u{202e}";
        let shown = claimed(hostile);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        assert!(!shown.contains('\u{202e}'));
        assert!(shown.ends_with("(claimed by the pst, unverified)"));
        let long = "x".repeat(MAX_CLAIMED_TEXT_CHARS * 2);
        assert_eq!(clean(&long).chars().count(), MAX_CLAIMED_TEXT_CHARS + 1);
    }
}
