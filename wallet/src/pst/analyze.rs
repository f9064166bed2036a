//! What a PST does, as plain data for a person: per asset what each party gives and
//! gets, which inputs are signed with which sighash type, and what is still missing.
//!
//! Amounts are in units; the CLI formats them with each asset's precision.
//!
//! A *party* is named, in order of preference, by the owner (inputs) or label (outputs)
//! written into the PST, by the master fingerprint of a recorded key origin
//! (`wallet 3442193e`), or by the address of the script.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use settle_assets::{Amount, AssetId, ChainId, IssuanceKind, OutPoint, TxOut, Txid};
use settle_script::{Address, Network, ScriptKind, SighashType, classify};

use super::{Missing, Pst, PstInput, hex32};

/// A signature present on an input.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct SignatureSummary {
    pub key: String,
    pub hash_type: SighashType,
}

/// An issuance record on an input.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct IssuanceSummary {
    pub asset: AssetId,
    pub amount: Amount,
    /// A new asset (true) or more of an existing one (false).
    pub new_asset: bool,
    pub signed: bool,
}

/// One input, as a person would want to see it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct InputSummary {
    pub index: usize,
    pub prevout: OutPoint,
    /// Who gives this input, as the script says it: the address of the coin spent, or
    /// "unknown (input N)" when the PST does not describe it.
    pub party: String,
    /// The owner the PST claims for it: free text anyone could have written, never used
    /// to name the party.
    pub claimed_owner: Option<String>,
    /// The coin spent, when known.
    pub asset: Option<AssetId>,
    pub amount: Option<Amount>,
    /// What kind of script locks the coin ("pay-to-key", "pay-to-script-hash", ...).
    pub script_kind: &'static str,
    pub signatures: Vec<SignatureSummary>,
    pub finalized: bool,
    pub issuance: Option<IssuanceSummary>,
}

/// One output, as a person would want to see it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct OutputSummary {
    pub index: usize,
    /// Who receives this output, as its script says it: an address, "burn", or the script.
    pub party: String,
    /// The label the PST claims for it: free text, never used to name the party.
    pub claimed_label: Option<String>,
    pub asset: AssetId,
    pub amount: Amount,
    pub address: Option<String>,
    pub script_kind: &'static str,
    /// Inputs whose signatures commit to this output, with their sighash types.
    pub committed_by: Vec<(usize, SighashType)>,
}

/// What one party gives and gets of one asset.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct PartyFlow {
    pub party: String,
    pub gives: u128,
    pub gets: u128,
}

/// The movement of one asset.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct AssetSummary {
    pub asset: AssetId,
    /// Units in inputs whose spent outputs are known.
    pub inputs: u128,
    pub issued: u128,
    pub outputs: u128,
    /// Units in burn outputs (part of `outputs`).
    pub burned: u128,
    /// Whether inputs + issued = outputs, counting only known inputs.
    pub balanced: bool,
    pub parties: Vec<PartyFlow>,
}

/// The whole analysis.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct PstAnalysis {
    pub txid: Txid,
    pub chain_id: ChainId,
    pub network: Network,
    pub lock_time: u32,
    /// Last block height at which the transaction may be included (0 = none).
    pub expiry_height: u32,
    pub expiry_note: Option<String>,
    pub inputs: Vec<InputSummary>,
    pub outputs: Vec<OutputSummary>,
    pub assets: Vec<AssetSummary>,
    /// Everything still needed before the PST can be finalized.
    pub missing: Vec<Missing>,
    /// Every input's spent output is known and every asset balances.
    pub balanced: bool,
    /// Every input is finalized and every issuance signed.
    pub finalized: bool,
}

/// `text` with every control character (newline, escape) and bidirectional override
/// replaced by `?`, so free text from a PST cannot fake or hide lines on a terminal.
pub fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
            if c.is_control() || bidi { '?' } else { c }
        })
        .collect()
}

fn script_kind(script: &[u8]) -> &'static str {
    match classify(script) {
        ScriptKind::PayToKey(_) => "pay-to-key",
        ScriptKind::PayToScriptHash(_) => "pay-to-script-hash",
        ScriptKind::Burn => "burn",
        ScriptKind::Reserved { .. } => "reserved",
        ScriptKind::Bare => "bare script",
    }
}

fn script_party(network: Network, script: &[u8]) -> String {
    match classify(script) {
        ScriptKind::Burn => "burn".into(),
        _ => match Address::from_script_pubkey(network, script) {
            Ok(a) => a.to_string(),
            Err(_) => {
                let shown: String = hex::encode(script).chars().take(32).collect();
                format!("script {shown}")
            }
        },
    }
}

// Parties are named by their scripts only: owner and label fields and key origins are
// written by whoever made the PST, and a burn labelled "alice" is still a burn.
fn input_party(network: Network, index: usize, inp: &PstInput) -> String {
    match &inp.spent_output {
        Some(o) => script_party(network, &o.script_pubkey),
        None => format!("unknown (input {index})"),
    }
}

fn output_party(network: Network, txout: &TxOut) -> String {
    script_party(network, &txout.script_pubkey)
}

impl Pst {
    /// Describes the PST. Never fails: what cannot be known is reported as missing.
    pub fn analyze(&self) -> PstAnalysis {
        let network = self.network;
        let mut flows: BTreeMap<AssetId, AssetSummary> = BTreeMap::new();
        let mut party_flows: BTreeMap<(AssetId, String), (u128, u128)> = BTreeMap::new();
        let new_summary = |asset| AssetSummary {
            asset,
            inputs: 0,
            issued: 0,
            outputs: 0,
            burned: 0,
            balanced: false,
            parties: Vec::new(),
        };
        let mut all_known = true;
        let mut sig_types: Vec<(usize, SighashType)> = Vec::new();

        let mut inputs = Vec::with_capacity(self.inputs.len());
        for (index, (txin, inp)) in self.tx.inputs.iter().zip(&self.inputs).enumerate() {
            let party = input_party(network, index, inp);
            if let Some(spent) = &inp.spent_output {
                let f = flows
                    .entry(spent.asset)
                    .or_insert_with(|| new_summary(spent.asset));
                f.inputs += u128::from(spent.amount.units());
                party_flows
                    .entry((spent.asset, party.clone()))
                    .or_default()
                    .0 += u128::from(spent.amount.units());
            } else if !txin.prevout.is_null() {
                all_known = false;
            }
            let issuance = txin.issuance.as_ref().map(|iss| {
                let asset = iss.asset_id(&txin.prevout);
                let f = flows.entry(asset).or_insert_with(|| new_summary(asset));
                f.issued += u128::from(iss.amount.units());
                party_flows
                    .entry((asset, format!("issuance (input {index})")))
                    .or_default()
                    .0 += u128::from(iss.amount.units());
                IssuanceSummary {
                    asset,
                    amount: iss.amount,
                    new_asset: matches!(iss.kind, IssuanceKind::New { .. }),
                    signed: inp.issuance_signature.is_some(),
                }
            });
            let mut signatures: Vec<SignatureSummary> = inp
                .partial_sigs
                .iter()
                .map(|(k, s)| SignatureSummary {
                    key: hex32(k),
                    hash_type: s.hash_type,
                })
                .collect();
            if signatures.is_empty() {
                // A PST finalized elsewhere may carry only the witness.
                if let Some(w) = &inp.final_witness {
                    signatures.extend(super::witness_signature_types(w).into_iter().map(
                        |hash_type| SignatureSummary {
                            key: "(in final witness)".into(),
                            hash_type,
                        },
                    ));
                }
            }
            sig_types.extend(signatures.iter().map(|s| (index, s.hash_type)));
            inputs.push(InputSummary {
                index,
                prevout: txin.prevout,
                party,
                claimed_owner: inp.owner.clone(),
                asset: inp.spent_output.as_ref().map(|o| o.asset),
                amount: inp.spent_output.as_ref().map(|o| o.amount),
                script_kind: inp
                    .spent_output
                    .as_ref()
                    .map_or("unknown", |o| script_kind(&o.script_pubkey)),
                signatures,
                finalized: inp.final_witness.is_some(),
                issuance,
            });
        }

        let mut outputs = Vec::with_capacity(self.outputs.len());
        for (index, (txout, out)) in self.tx.outputs.iter().zip(&self.outputs).enumerate() {
            let party = output_party(network, txout);
            let f = flows
                .entry(txout.asset)
                .or_insert_with(|| new_summary(txout.asset));
            f.outputs += u128::from(txout.amount.units());
            if txout.is_burn() {
                f.burned += u128::from(txout.amount.units());
            }
            party_flows
                .entry((txout.asset, party.clone()))
                .or_default()
                .1 += u128::from(txout.amount.units());
            let committed_by = sig_types
                .iter()
                .filter(|(i, t)| t.covers_all_outputs() || (t.is_single() && *i == index))
                .copied()
                .collect();
            outputs.push(OutputSummary {
                index,
                party,
                claimed_label: out.label.clone(),
                asset: txout.asset,
                amount: txout.amount,
                address: Address::from_script_pubkey(network, &txout.script_pubkey)
                    .ok()
                    .map(|a| a.to_string()),
                script_kind: script_kind(&txout.script_pubkey),
                committed_by,
            });
        }

        for ((asset, party), (gives, gets)) in party_flows {
            if let Some(f) = flows.get_mut(&asset) {
                f.parties.push(PartyFlow { party, gives, gets });
            }
        }
        let mut balanced = all_known;
        for f in flows.values_mut() {
            f.balanced = f.inputs + f.issued == f.outputs;
            balanced &= f.balanced;
        }

        let missing = (0..self.inputs.len())
            .flat_map(|i| self.missing_for_input(i))
            .collect();
        PstAnalysis {
            txid: self.txid(),
            chain_id: self.chain_id,
            network,
            lock_time: self.tx.lock_time,
            expiry_height: self.tx.expiry_height,
            expiry_note: self.expiry_note.clone(),
            inputs,
            outputs,
            assets: flows.into_values().collect(),
            missing,
            balanced,
            finalized: self.is_finalized(),
        }
    }
}

impl fmt::Display for PstAnalysis {
    /// A plain-text report in units (the CLI prints amounts with each asset's precision).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "transaction {} on {} (chain {})",
            self.txid, self.network, self.chain_id
        )?;
        if self.expiry_height != 0 {
            writeln!(f, "expires after height {}", self.expiry_height)?;
        }
        if let Some(note) = &self.expiry_note {
            writeln!(f, "note (claimed by the pst): {}", printable(note))?;
        }
        for a in &self.assets {
            let state = if a.balanced {
                "balanced"
            } else {
                "NOT balanced"
            };
            writeln!(f, "asset {} ({state}):", a.asset)?;
            for p in &a.parties {
                writeln!(f, "  {}: gives {} gets {}", p.party, p.gives, p.gets)?;
            }
        }
        for i in &self.inputs {
            let sigs: Vec<String> = i
                .signatures
                .iter()
                .map(|s| format!("{} by {}", s.hash_type, s.key))
                .collect();
            let status = if i.finalized {
                "finalized"
            } else {
                "not finalized"
            };
            writeln!(
                f,
                "input {} ({}, {status}): {}",
                i.index,
                i.script_kind,
                if sigs.is_empty() {
                    "no signatures".into()
                } else {
                    sigs.join(", ")
                }
            )?;
        }
        if self.missing.is_empty() {
            writeln!(f, "nothing missing")?;
        } else {
            for m in &self.missing {
                writeln!(f, "missing: {m}")?;
            }
        }
        Ok(())
    }
}
