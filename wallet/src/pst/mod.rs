//! Partially signed transactions (PSTs): a BIP174-style container that carries an
//! unsigned transaction between the people who must complete and sign it.
//!
//! Roles, each a method on [`Pst`]:
//! - Creator: [`Pst::create`] from an unsigned transaction and the outputs it spends;
//! - Updater: `set_*`/`add_*` methods that attach scripts, preimages, key origins, labels;
//! - Signer: [`Pst::sign_input`], [`Pst::sign_with_key`], [`Pst::sign_with_wallet`],
//!   [`Pst::sign_issuance`];
//! - Combiner: [`Pst::combine`];
//! - Finalizer: [`Pst::finalize`] builds each input's witness and verifies it;
//! - Extractor: [`Pst::extract`] returns the complete, checked transaction.
//!
//! A taker completes an offer with [`Pst::add_input`] and [`Pst::add_output`], which keep
//! `SINGLE|ANYONECANPAY` signatures and refuse any change that would invalidate an
//! existing signature. [`Pst::analyze`] describes a PST for a person.
//!
//! Every method that can fail leaves the PST unchanged when it does.
//! The binary format is in [`encode`] and `spec/pst.md`.

pub mod analyze;
pub mod encode;
mod finalize;
pub mod templates;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;

use secp256k1::{SECP256K1, XOnlyPublicKey, schnorr};
use serde::Serialize;
use settle_assets::limits::{MAX_TX_INPUTS, MAX_TX_OUTPUTS, MAX_TX_SIZE_BYTES};
use settle_assets::{
    AssetContract, ChainId, ConservationError, IssuanceKind, OutPoint, Transaction, TxCheckError,
    TxIn, TxOut, Txid, Witness,
};
use settle_script::instruction::{Instruction, Instructions};
use settle_script::limits::{MAX_ELEMENT_BYTES, MAX_SCRIPT_BYTES};
use settle_script::sighash::sha256;
use settle_script::{
    InputError, Network, PrecomputedTx, ScriptError, ScriptKind, SighashType, classify,
};

use crate::keys::{KeyOrigin, SigningKey, WalletKeys};
pub use analyze::{AssetSummary, InputSummary, OutputSummary, PartyFlow, PstAnalysis};
pub use encode::{Location, PstDecodeError};

/// A 32-byte x-only public key as it appears in scripts and PST keys.
pub type XOnly = [u8; 32];

/// A signature collected for one key of one input.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PartialSig {
    /// The 64-byte BIP340 signature.
    pub signature: [u8; 64],
    /// The sighash type it was made with.
    pub hash_type: SighashType,
}

impl PartialSig {
    /// The signature as a witness carries it: 64 bytes for ALL, else 65 with the type.
    pub fn encoded(&self) -> Vec<u8> {
        let sig = schnorr::Signature::from_byte_array(self.signature);
        settle_script::sign::encode_signature(&sig, self.hash_type)
    }
}

/// Everything known about one input.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct PstInput {
    /// The output this input spends (asset, amount, script).
    pub spent_output: Option<TxOut>,
    /// Signatures by x-only key.
    pub partial_sigs: BTreeMap<XOnly, PartialSig>,
    /// The script a pay-to-script-hash output commits to.
    pub witness_script: Option<Vec<u8>>,
    /// SHA-256 preimages (for hashlocks), by hash.
    pub sha256_preimages: BTreeMap<[u8; 32], Vec<u8>>,
    /// Where the keys that can sign this input come from.
    pub key_origins: BTreeMap<XOnly, KeyOrigin>,
    /// Who gives this input, for people reading the PST.
    pub owner: Option<String>,
    /// The complete witness, once finalized.
    pub final_witness: Option<Witness>,
    /// The issuer's signature over the issuance on this input.
    pub issuance_signature: Option<[u8; 64]>,
    /// Entries of types this version does not define, kept as they came.
    pub unknown: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// Everything known about one output.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct PstOutput {
    /// Who receives this output (owner or label), for people reading the PST.
    pub label: Option<String>,
    /// Where the keys the output pays to come from (hints for the receiver's wallet).
    pub key_origins: BTreeMap<XOnly, KeyOrigin>,
    /// The script of a pay-to-script-hash output.
    pub witness_script: Option<Vec<u8>>,
    /// Entries of types this version does not define, kept as they came.
    pub unknown: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// A partially signed transaction.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Pst {
    /// The unsigned transaction: no witnesses, no issuance signatures.
    tx: Transaction,
    pub chain_id: ChainId,
    pub network: Network,
    /// A free-text note about when the offer lapses (the binding expiry is the
    /// transaction's `expiry_height`).
    pub expiry_note: Option<String>,
    /// Global entries of unknown types.
    pub unknown: BTreeMap<Vec<u8>, Vec<u8>>,
    inputs: Vec<PstInput>,
    outputs: Vec<PstOutput>,
}

/// Something a PST still needs before it can be finalized.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[serde(tag = "missing", rename_all = "snake_case")]
pub enum Missing {
    SpentOutput {
        input: usize,
    },
    Signature {
        input: usize,
        key: String,
    },
    Signatures {
        input: usize,
        have: usize,
        need: usize,
    },
    WitnessScript {
        input: usize,
    },
    /// An HTLC input has neither a claim (recipient's signature and the preimage) nor a
    /// refund (refund key's signature).
    HtlcSpend {
        input: usize,
        recipient: String,
        refund: String,
        hash: String,
    },
    IssuanceSignature {
        input: usize,
    },
    UnsupportedScript {
        input: usize,
    },
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::SpentOutput { input } => {
                write!(f, "input {input}: the output it spends is unknown")
            }
            Missing::Signature { input, key } => {
                write!(f, "input {input}: signature by key {key}")
            }
            Missing::Signatures { input, have, need } => {
                write!(f, "input {input}: {need} signatures needed, {have} present")
            }
            Missing::WitnessScript { input } => {
                write!(
                    f,
                    "input {input}: the witness script of its pay-to-script-hash output"
                )
            }
            Missing::HtlcSpend {
                input,
                recipient,
                refund,
                hash,
            } => write!(
                f,
                "input {input}: a claim (signature by {recipient} and the preimage of {hash}) \
                 or a refund (signature by {refund})"
            ),
            Missing::IssuanceSignature { input } => {
                write!(f, "input {input}: the issuer's signature over the issuance")
            }
            Missing::UnsupportedScript { input } => write!(
                f,
                "input {input}: a witness for a script this wallet cannot finalize"
            ),
        }
    }
}

/// Why a PST role could not do its work. Nothing was changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PstError {
    #[error("the transaction is not unsigned: input {input} has witness data")]
    NotUnsigned { input: usize },
    #[error("{given} spent outputs given for {inputs} inputs")]
    SpentCount { inputs: usize, given: usize },
    #[error("input {input} does not exist (the pst has {count} inputs)")]
    NoSuchInput { input: usize, count: usize },
    #[error("output {output} does not exist (the pst has {count} outputs)")]
    NoSuchOutput { output: usize, count: usize },
    #[error("input {input} spends nothing (null outpoint): {what}")]
    NullInput { input: usize, what: &'static str },
    #[error("the output spent by input {input} is unknown: add it before signing or finalizing")]
    SpentOutputUnknown { input: usize },
    #[error("input {input} is signed with SINGLE but there is no output {input}")]
    SingleWithoutOutput { input: usize },
    #[error("key {key} cannot sign input {input}: it does not appear in the input's script")]
    KeyNotInScript { input: usize, key: String },
    #[error("input {input} spends a pay-to-script-hash output but its witness script is unknown")]
    WitnessScriptMissing { input: usize },
    #[error("{location}: the witness script does not hash to the output's program")]
    WitnessScriptMismatch { location: Location },
    #[error("{location}: a witness script may only be attached to a pay-to-script-hash output")]
    NotScriptHash { location: Location },
    #[error("input {input} spends an unspendable output ({kind})")]
    Unspendable { input: usize, kind: &'static str },
    #[error("the signature by key {key} on input {input} does not verify")]
    BadSignature { input: usize, key: String },
    #[error("input {input} is already finalized")]
    AlreadyFinalized { input: usize },
    #[error("input {input} carries no issuance")]
    NoIssuance { input: usize },
    #[error("key {key} is not the issuer key {issuer} of the asset contract on input {input}")]
    WrongIssuer {
        input: usize,
        key: String,
        issuer: String,
    },
    #[error("cannot combine psts of different transactions: {ours} and {theirs}")]
    TxidMismatch { ours: Txid, theirs: Txid },
    #[error("cannot combine psts of different chains: {ours} and {theirs}")]
    ChainMismatch { ours: ChainId, theirs: ChainId },
    #[error("cannot combine psts of different networks: {ours} and {theirs}")]
    NetworkMismatch { ours: Network, theirs: Network },
    #[error("the psts disagree on the {field} of the {location}")]
    Conflict {
        location: Location,
        field: &'static str,
    },
    #[error("cannot finalize: {0}")]
    Incomplete(Missing),
    #[error("input {input} is not finalized")]
    NotFinalized { input: usize },
    #[error("input {input} does not verify: {error}")]
    Verify { input: usize, error: ScriptError },
    #[error("the issuance signature on input {input} does not verify")]
    BadIssuanceSignature { input: usize },
    #[error(
        "refusing to {action}: the {hash_type} signature on input {input} commits to {reason} \
         and would no longer be valid"
    )]
    WouldInvalidate {
        action: &'static str,
        input: usize,
        hash_type: SighashType,
        reason: &'static str,
    },
    #[error(
        "refusing to {action}: input {input} is finalized with a witness whose signatures cannot be checked"
    )]
    OpaqueWitness { action: &'static str, input: usize },
    #[error("input {input} already spends {outpoint}")]
    DuplicateInput { input: usize, outpoint: OutPoint },
    #[error("too many {what}: the limit is {max}")]
    TooMany { what: &'static str, max: usize },
    #[error("{field} is {len} bytes, more than the limit of {max}")]
    TooLong {
        field: &'static str,
        len: usize,
        max: usize,
    },
    #[error("the transaction is invalid: {0}")]
    Check(#[from] TxCheckError),
    #[error("the transaction does not balance: {0}")]
    Conservation(#[from] ConservationError),
    #[error("signature hash of input {input}: {error}")]
    Sighash { input: usize, error: ScriptError },
}

impl From<InputError> for PstError {
    fn from(e: InputError) -> Self {
        PstError::Verify {
            input: e.input,
            error: e.error,
        }
    }
}

fn hex32(b: &[u8; 32]) -> String {
    hex::encode(b)
}

/// Whether `script` pushes `key` anywhere (so that key can take part in spending it).
pub(crate) fn script_pushes_key(script: &[u8], key: &XOnly) -> bool {
    Instructions::new(script)
        .any(|ins| matches!(ins, Ok((_, Instruction::Push { data, .. })) if data == key.as_slice()))
}

fn check_text(field: &'static str, text: &str) -> Result<(), PstError> {
    if text.len() > encode::MAX_TEXT_BYTES {
        return Err(PstError::TooLong {
            field,
            len: text.len(),
            max: encode::MAX_TEXT_BYTES,
        });
    }
    Ok(())
}

/// Signatures found in a finalized witness: items of 64 bytes (ALL) or 65 bytes ending in a
/// defined sighash byte. Used only to judge, conservatively, what a change would break.
fn witness_signature_types(w: &Witness) -> Vec<SighashType> {
    w.0.iter()
        .filter_map(|item| match item.len() {
            64 => Some(SighashType::All),
            65 => SighashType::from_explicit_byte(item[64]),
            _ => None,
        })
        .collect()
}

impl Pst {
    // -----------------------------------------------------------------------------------
    // Creator
    // -----------------------------------------------------------------------------------

    /// A PST for the unsigned `tx`, whose inputs spend `spent` (one entry per input, in
    /// order; `None` where the spent output is not known yet and for null inputs).
    pub fn create(
        tx: Transaction,
        spent: Vec<Option<TxOut>>,
        chain_id: ChainId,
        network: Network,
    ) -> Result<Pst, PstError> {
        if spent.len() != tx.inputs.len() {
            return Err(PstError::SpentCount {
                inputs: tx.inputs.len(),
                given: spent.len(),
            });
        }
        if tx.inputs.len() > MAX_TX_INPUTS {
            return Err(PstError::TooMany {
                what: "inputs",
                max: MAX_TX_INPUTS,
            });
        }
        if tx.outputs.len() > MAX_TX_OUTPUTS {
            return Err(PstError::TooMany {
                what: "outputs",
                max: MAX_TX_OUTPUTS,
            });
        }
        for (i, txin) in tx.inputs.iter().enumerate() {
            let signed = txin
                .issuance
                .as_ref()
                .is_some_and(|x| x.signature.is_some());
            if !txin.witness.is_empty() || signed {
                return Err(PstError::NotUnsigned { input: i });
            }
            if txin.prevout.is_null() && spent[i].is_some() {
                return Err(PstError::NullInput {
                    input: i,
                    what: "it has no spent output",
                });
            }
        }
        let size = tx.size_bytes();
        if size > MAX_TX_SIZE_BYTES {
            return Err(PstError::TooLong {
                field: "transaction",
                len: size,
                max: MAX_TX_SIZE_BYTES,
            });
        }
        let inputs = spent
            .into_iter()
            .map(|spent_output| PstInput {
                spent_output,
                ..PstInput::default()
            })
            .collect();
        let outputs = vec![PstOutput::default(); tx.outputs.len()];
        Ok(Pst {
            tx,
            chain_id,
            network,
            expiry_note: None,
            unknown: BTreeMap::new(),
            inputs,
            outputs,
        })
    }

    /// The unsigned transaction.
    pub fn unsigned_tx(&self) -> &Transaction {
        &self.tx
    }

    /// The id the transaction will have (witnesses are not part of it).
    pub fn txid(&self) -> Txid {
        self.tx.txid()
    }

    pub fn inputs(&self) -> &[PstInput] {
        &self.inputs
    }

    pub fn outputs(&self) -> &[PstOutput] {
        &self.outputs
    }

    fn check_input(&self, input: usize) -> Result<(), PstError> {
        if input >= self.inputs.len() {
            return Err(PstError::NoSuchInput {
                input,
                count: self.inputs.len(),
            });
        }
        Ok(())
    }

    fn check_output(&self, output: usize) -> Result<(), PstError> {
        if output >= self.outputs.len() {
            return Err(PstError::NoSuchOutput {
                output,
                count: self.outputs.len(),
            });
        }
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Updater
    // -----------------------------------------------------------------------------------

    /// Records the output input `input` spends.
    pub fn set_spent_output(&mut self, input: usize, spent: TxOut) -> Result<(), PstError> {
        self.check_input(input)?;
        if self.tx.inputs[input].prevout.is_null() {
            return Err(PstError::NullInput {
                input,
                what: "it has no spent output",
            });
        }
        let inp = &self.inputs[input];
        if inp.spent_output.as_ref().is_some_and(|s| *s != spent) {
            return Err(PstError::Conflict {
                location: Location::Input(input),
                field: "spent output",
            });
        }
        if let Some(ws) = &inp.witness_script {
            check_witness_script(Location::Input(input), &spent.script_pubkey, ws)?;
        }
        self.inputs[input].spent_output = Some(spent);
        Ok(())
    }

    /// Attaches the witness script of the pay-to-script-hash output input `input` spends.
    pub fn set_witness_script(&mut self, input: usize, script: Vec<u8>) -> Result<(), PstError> {
        self.check_input(input)?;
        check_script_len(&script)?;
        let location = Location::Input(input);
        if let Some(spent) = &self.inputs[input].spent_output {
            check_witness_script(location, &spent.script_pubkey, &script)?;
        }
        if self.inputs[input]
            .witness_script
            .as_ref()
            .is_some_and(|w| *w != script)
        {
            return Err(PstError::Conflict {
                location,
                field: "witness script",
            });
        }
        self.inputs[input].witness_script = Some(script);
        Ok(())
    }

    /// Adds the SHA-256 preimage a hashlock on input `input` needs.
    pub fn add_preimage(&mut self, input: usize, preimage: Vec<u8>) -> Result<(), PstError> {
        self.check_input(input)?;
        if preimage.len() > MAX_ELEMENT_BYTES {
            return Err(PstError::TooLong {
                field: "preimage",
                len: preimage.len(),
                max: MAX_ELEMENT_BYTES,
            });
        }
        self.inputs[input]
            .sha256_preimages
            .insert(sha256(&preimage), preimage);
        Ok(())
    }

    /// Records where a key that can sign input `input` comes from.
    pub fn add_input_key_origin(
        &mut self,
        input: usize,
        key: &XOnlyPublicKey,
        origin: KeyOrigin,
    ) -> Result<(), PstError> {
        self.check_input(input)?;
        self.inputs[input]
            .key_origins
            .insert(key.serialize(), origin);
        Ok(())
    }

    /// Names who gives input `input`.
    pub fn set_input_owner(&mut self, input: usize, owner: &str) -> Result<(), PstError> {
        self.check_input(input)?;
        check_text("owner", owner)?;
        self.inputs[input].owner = Some(owner.to_owned());
        Ok(())
    }

    /// Names who receives output `output`.
    pub fn set_output_label(&mut self, output: usize, label: &str) -> Result<(), PstError> {
        self.check_output(output)?;
        check_text("label", label)?;
        self.outputs[output].label = Some(label.to_owned());
        Ok(())
    }

    /// Records where a key output `output` pays to comes from.
    pub fn add_output_key_origin(
        &mut self,
        output: usize,
        key: &XOnlyPublicKey,
        origin: KeyOrigin,
    ) -> Result<(), PstError> {
        self.check_output(output)?;
        self.outputs[output]
            .key_origins
            .insert(key.serialize(), origin);
        Ok(())
    }

    /// Attaches the witness script of pay-to-script-hash output `output`.
    pub fn set_output_witness_script(
        &mut self,
        output: usize,
        script: Vec<u8>,
    ) -> Result<(), PstError> {
        self.check_output(output)?;
        check_script_len(&script)?;
        let location = Location::Output(output);
        check_witness_script(location, &self.tx.outputs[output].script_pubkey, &script)?;
        self.outputs[output].witness_script = Some(script);
        Ok(())
    }

    /// Sets the free-text expiry note.
    pub fn set_expiry_note(&mut self, note: &str) -> Result<(), PstError> {
        check_text("expiry note", note)?;
        self.expiry_note = Some(note.to_owned());
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Signer
    // -----------------------------------------------------------------------------------

    /// The spent outputs, one per input, for the sighash: `TxOut::NONE` for null inputs,
    /// and for unknown ones unless `require_all` (an unknown one is then an error).
    fn spent_vector(&self, require_all: bool) -> Result<Vec<TxOut>, PstError> {
        self.tx
            .inputs
            .iter()
            .zip(&self.inputs)
            .enumerate()
            .map(|(i, (txin, inp))| {
                if txin.prevout.is_null() {
                    return Ok(TxOut::NONE);
                }
                match &inp.spent_output {
                    Some(o) => Ok(o.clone()),
                    None if require_all => Err(PstError::SpentOutputUnknown { input: i }),
                    None => Ok(TxOut::NONE),
                }
            })
            .collect()
    }

    /// The script a signature by `key` on input `input` commits to, after checking that
    /// the key takes part in spending it.
    fn script_code(&self, input: usize, key: &XOnly) -> Result<Vec<u8>, PstError> {
        self.check_input(input)?;
        if self.tx.inputs[input].prevout.is_null() {
            return Err(PstError::NullInput {
                input,
                what: "there is nothing to sign for",
            });
        }
        let inp = &self.inputs[input];
        let spent = inp
            .spent_output
            .as_ref()
            .ok_or(PstError::SpentOutputUnknown { input })?;
        let not_in_script = || PstError::KeyNotInScript {
            input,
            key: hex32(key),
        };
        match classify(&spent.script_pubkey) {
            ScriptKind::PayToKey(k) if k == *key => Ok(spent.script_pubkey.clone()),
            ScriptKind::PayToKey(_) => Err(not_in_script()),
            ScriptKind::PayToScriptHash(_) => {
                let ws = inp
                    .witness_script
                    .as_ref()
                    .ok_or(PstError::WitnessScriptMissing { input })?;
                if script_pushes_key(ws, key) {
                    Ok(ws.clone())
                } else {
                    Err(not_in_script())
                }
            }
            ScriptKind::Bare if script_pushes_key(&spent.script_pubkey, key) => {
                Ok(spent.script_pubkey.clone())
            }
            ScriptKind::Bare => Err(not_in_script()),
            ScriptKind::Burn => Err(PstError::Unspendable {
                input,
                kind: "a burn",
            }),
            ScriptKind::Reserved { .. } => Err(PstError::Unspendable {
                input,
                kind: "a reserved program version",
            }),
        }
    }

    /// Whether `key` takes part in the script input `input` spends (its spent output and,
    /// for a script hash, its witness script known).
    pub fn key_in_input_script(&self, input: usize, key: &XOnly) -> bool {
        self.script_code(input, key).is_ok()
    }

    /// The digest a signature by `key` of type `hash_type` on input `input` signs.
    pub fn sighash(
        &self,
        input: usize,
        key: &XOnly,
        hash_type: SighashType,
    ) -> Result<[u8; 32], PstError> {
        let script_code = self.script_code(input, key)?;
        if hash_type.is_single() && input >= self.tx.outputs.len() {
            return Err(PstError::SingleWithoutOutput { input });
        }
        // Without ANYONECANPAY the digest commits to every spent output.
        let spent = self.spent_vector(!hash_type.anyone_can_pay())?;
        let cache = PrecomputedTx::new(&self.tx, &spent, self.chain_id)
            .map_err(|error| PstError::Sighash { input, error })?;
        cache
            .sighash(input, hash_type, &script_code)
            .map_err(|error| match error {
                ScriptError::SighashSingleNoOutput => PstError::SingleWithoutOutput { input },
                error => PstError::Sighash { input, error },
            })
    }

    /// Whether `sig` by `key` is valid on input `input` as the PST stands.
    pub fn verify_partial_sig(
        &self,
        input: usize,
        key: &XOnly,
        sig: &PartialSig,
    ) -> Result<bool, PstError> {
        let digest = self.sighash(input, key, sig.hash_type)?;
        let Ok(pk) = XOnlyPublicKey::from_byte_array(*key) else {
            return Ok(false);
        };
        let s = schnorr::Signature::from_byte_array(sig.signature);
        Ok(SECP256K1.verify_schnorr(&s, &digest, &pk).is_ok())
    }

    /// Signs input `input` with `key` and `hash_type`. Refuses an input whose spent output
    /// is unknown (and, without ANYONECANPAY, any unknown spent output), a key that is not
    /// in the input's script, SINGLE without a matching output, and finalized inputs.
    pub fn sign_input(
        &mut self,
        input: usize,
        key: &SigningKey,
        hash_type: SighashType,
    ) -> Result<(), PstError> {
        self.check_input(input)?;
        if self.inputs[input].final_witness.is_some() {
            return Err(PstError::AlreadyFinalized { input });
        }
        let x = key.x_only_bytes();
        let digest = self.sighash(input, &x, hash_type)?;
        let encoded = settle_script::sign_schnorr(key.keypair(), &digest, hash_type);
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&encoded[..64]);
        self.inputs[input].partial_sigs.insert(
            x,
            PartialSig {
                signature,
                hash_type,
            },
        );
        Ok(())
    }

    /// Adds a signature made elsewhere (another device, another program) after checking
    /// that it verifies for this input as the PST stands.
    pub fn add_partial_sig(
        &mut self,
        input: usize,
        key: &XOnlyPublicKey,
        sig: PartialSig,
    ) -> Result<(), PstError> {
        self.check_input(input)?;
        if self.inputs[input].final_witness.is_some() {
            return Err(PstError::AlreadyFinalized { input });
        }
        let x = key.serialize();
        if !self.verify_partial_sig(input, &x, &sig)? {
            return Err(PstError::BadSignature {
                input,
                key: hex32(&x),
            });
        }
        self.inputs[input].partial_sigs.insert(x, sig);
        Ok(())
    }

    /// Signs every unfinalized input whose script `key` takes part in. Returns the
    /// indices signed (empty if none).
    pub fn sign_with_key(
        &mut self,
        key: &SigningKey,
        hash_type: SighashType,
    ) -> Result<Vec<usize>, PstError> {
        let x = key.x_only_bytes();
        let mut next = self.clone();
        let mut signed = Vec::new();
        for i in 0..self.inputs.len() {
            if self.inputs[i].final_witness.is_some() || self.tx.inputs[i].prevout.is_null() {
                continue;
            }
            match self.script_code(i, &x) {
                Ok(_) => {}
                Err(PstError::KeyNotInScript { .. } | PstError::SpentOutputUnknown { .. }) => {
                    continue;
                }
                Err(e) => return Err(e),
            }
            next.sign_input(i, key, hash_type)?;
            signed.push(i);
        }
        *self = next;
        Ok(signed)
    }

    /// Signs every unfinalized input that has a key origin belonging to `keys` (matching
    /// master fingerprint and account, and a key that derives to the recorded one).
    /// Returns (input, key) for each signature made. A primitive of the signer role: the
    /// wallet's flows never use it on a PST from someone else, since a key origin is
    /// whatever the PST's author wrote; they sign through [`crate::policy::sign`].
    pub fn sign_with_wallet(
        &mut self,
        keys: &WalletKeys,
        hash_type: SighashType,
    ) -> Result<Vec<(usize, XOnly)>, PstError> {
        let mut next = self.clone();
        let mut signed = Vec::new();
        for (i, inp) in self.inputs.iter().enumerate() {
            if inp.final_witness.is_some() {
                continue;
            }
            for (x, origin) in &inp.key_origins {
                let Some(Ok(derived)) = keys.derive_origin(origin) else {
                    continue;
                };
                if derived.key.x_only_bytes() != *x {
                    continue;
                }
                next.sign_input(i, &derived.key, hash_type)?;
                signed.push((i, *x));
            }
        }
        *self = next;
        Ok(signed)
    }

    /// Signs the issuance on input `input` as its issuer. For a new asset, `key` must be
    /// the contract's issuer key. The issuance digest commits to the whole transaction, so
    /// every spent output must be known.
    pub fn sign_issuance(&mut self, input: usize, key: &SigningKey) -> Result<(), PstError> {
        self.check_input(input)?;
        let issuance = self.tx.inputs[input]
            .issuance
            .as_ref()
            .ok_or(PstError::NoIssuance { input })?;
        // The transaction check refuses unparsable contracts later; here only a parsed
        // contract can name its issuer.
        if let IssuanceKind::New { contract } = &issuance.kind
            && let Ok(c) = AssetContract::from_canonical_bytes(contract)
            && c.issuer != key.x_only_bytes()
        {
            return Err(PstError::WrongIssuer {
                input,
                key: hex32(&key.x_only_bytes()),
                issuer: hex32(&c.issuer),
            });
        }
        let spent = self.spent_vector(true)?;
        let cache = PrecomputedTx::new(&self.tx, &spent, self.chain_id)
            .map_err(|error| PstError::Sighash { input, error })?;
        let sig = settle_script::sign_issuance(&cache, input, key.keypair()).map_err(|e| {
            PstError::Sighash {
                input,
                error: match e {
                    settle_script::SignError::Sighash { error, .. } => error,
                    _ => ScriptError::InputIndex,
                },
            }
        })?;
        self.inputs[input].issuance_signature = Some(sig);
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Combiner
    // -----------------------------------------------------------------------------------

    /// Merges what `other` knows into this PST. Both must be of the same unsigned
    /// transaction, chain and network; data that disagrees is an error, except two
    /// different valid signatures by the same key with the same type (BIP340 signatures
    /// use fresh randomness), where the one already here is kept.
    pub fn combine(&mut self, other: &Pst) -> Result<(), PstError> {
        let (ours, theirs) = (self.txid(), other.txid());
        if ours != theirs {
            return Err(PstError::TxidMismatch { ours, theirs });
        }
        if self.chain_id != other.chain_id {
            return Err(PstError::ChainMismatch {
                ours: self.chain_id,
                theirs: other.chain_id,
            });
        }
        if self.network != other.network {
            return Err(PstError::NetworkMismatch {
                ours: self.network,
                theirs: other.network,
            });
        }
        let mut next = self.clone();
        let g = Location::Global;
        merge_opt(&mut next.expiry_note, &other.expiry_note, g, "expiry note")?;
        merge_map(&mut next.unknown, &other.unknown, g, "unknown entries")?;
        for (i, theirs) in other.inputs.iter().enumerate() {
            let loc = Location::Input(i);
            let ours = &mut next.inputs[i];
            merge_opt(
                &mut ours.spent_output,
                &theirs.spent_output,
                loc,
                "spent output",
            )?;
            merge_opt(
                &mut ours.witness_script,
                &theirs.witness_script,
                loc,
                "witness script",
            )?;
            merge_map(
                &mut ours.sha256_preimages,
                &theirs.sha256_preimages,
                loc,
                "preimages",
            )?;
            merge_map(
                &mut ours.key_origins,
                &theirs.key_origins,
                loc,
                "key origins",
            )?;
            merge_opt(&mut ours.owner, &theirs.owner, loc, "owner")?;
            merge_opt(
                &mut ours.final_witness,
                &theirs.final_witness,
                loc,
                "final witness",
            )?;
            merge_opt(
                &mut ours.issuance_signature,
                &theirs.issuance_signature,
                loc,
                "issuance signature",
            )?;
            merge_map(&mut ours.unknown, &theirs.unknown, loc, "unknown entries")?;
        }
        if let Some(ws) = next.inputs.iter().enumerate().find_map(|(i, inp)| {
            let spent = inp.spent_output.as_ref()?;
            let ws = inp.witness_script.as_ref()?;
            check_witness_script(Location::Input(i), &spent.script_pubkey, ws).err()
        }) {
            return Err(ws);
        }
        // Signatures last: checking them needs the merged spent outputs and scripts.
        for (i, theirs) in other.inputs.iter().enumerate() {
            for (key, sig) in &theirs.partial_sigs {
                match next.inputs[i].partial_sigs.get(key).copied() {
                    None => {
                        next.inputs[i].partial_sigs.insert(*key, *sig);
                    }
                    Some(ours) if ours == *sig => {}
                    Some(ours) => {
                        let conflict = PstError::Conflict {
                            location: Location::Input(i),
                            field: "partial signature",
                        };
                        if ours.hash_type != sig.hash_type {
                            return Err(conflict);
                        }
                        let ours_ok = next.verify_partial_sig(i, key, &ours).unwrap_or(false);
                        let theirs_ok = next.verify_partial_sig(i, key, sig).unwrap_or(false);
                        match (ours_ok, theirs_ok) {
                            (true, _) => {}
                            (false, true) => {
                                next.inputs[i].partial_sigs.insert(*key, *sig);
                            }
                            (false, false) => return Err(conflict),
                        }
                    }
                }
            }
        }
        for (o, theirs) in other.outputs.iter().enumerate() {
            let loc = Location::Output(o);
            let ours = &mut next.outputs[o];
            merge_opt(&mut ours.label, &theirs.label, loc, "label")?;
            merge_map(
                &mut ours.key_origins,
                &theirs.key_origins,
                loc,
                "key origins",
            )?;
            merge_opt(
                &mut ours.witness_script,
                &theirs.witness_script,
                loc,
                "witness script",
            )?;
            merge_map(&mut ours.unknown, &theirs.unknown, loc, "unknown entries")?;
        }
        *self = next;
        Ok(())
    }

    // -----------------------------------------------------------------------------------
    // Completing an offer
    // -----------------------------------------------------------------------------------

    /// Every signature already made, with its input: partial signatures, and those read
    /// off finalized witnesses. An input finalized with partial signatures recorded is
    /// judged by them.
    fn existing_signatures(
        &self,
        action: &'static str,
    ) -> Result<Vec<(usize, SighashType)>, PstError> {
        let mut out = Vec::new();
        for (i, inp) in self.inputs.iter().enumerate() {
            out.extend(inp.partial_sigs.values().map(|s| (i, s.hash_type)));
            if let Some(w) = &inp.final_witness {
                let types = witness_signature_types(w);
                if inp.partial_sigs.is_empty() && types.is_empty() && !w.is_empty() {
                    return Err(PstError::OpaqueWitness { action, input: i });
                }
                out.extend(types.into_iter().map(|t| (i, t)));
            }
            if inp.issuance_signature.is_some() {
                // Issuance digests commit to the whole transaction.
                out.push((i, SighashType::All));
            }
        }
        Ok(out)
    }

    /// Appends an input (the taker's side of an offer). Existing signatures survive only
    /// if they all use ANYONECANPAY (they do not commit to the other inputs); otherwise
    /// nothing changes and the offending signature is named. Returns the new index.
    pub fn add_input(&mut self, txin: TxIn, spent: Option<TxOut>) -> Result<usize, PstError> {
        let action = "add an input";
        let index = self.inputs.len();
        if index >= MAX_TX_INPUTS {
            return Err(PstError::TooMany {
                what: "inputs",
                max: MAX_TX_INPUTS,
            });
        }
        let signed = txin
            .issuance
            .as_ref()
            .is_some_and(|x| x.signature.is_some());
        if !txin.witness.is_empty() || signed {
            return Err(PstError::NotUnsigned { input: index });
        }
        if txin.prevout.is_null() && spent.is_some() {
            return Err(PstError::NullInput {
                input: index,
                what: "it has no spent output",
            });
        }
        if !txin.prevout.is_null()
            && let Some(i) = self
                .tx
                .inputs
                .iter()
                .position(|x| x.prevout == txin.prevout)
        {
            return Err(PstError::DuplicateInput {
                input: i,
                outpoint: txin.prevout,
            });
        }
        for (input, hash_type) in self.existing_signatures(action)? {
            if !hash_type.anyone_can_pay() {
                return Err(PstError::WouldInvalidate {
                    action,
                    input,
                    hash_type,
                    reason: "every input",
                });
            }
        }
        let mut next = self.clone();
        next.tx.inputs.push(txin);
        next.inputs.push(PstInput {
            spent_output: spent,
            ..PstInput::default()
        });
        next.check_size()?;
        *self = next;
        Ok(index)
    }

    /// Appends an output (the taker's side of an offer). Signatures that cover every
    /// output (ALL, ALL|ANYONECANPAY) would break, so the PST is left unchanged if one
    /// exists; SINGLE and NONE signatures survive, because an appended output never moves
    /// an existing one. Returns the new index.
    pub fn add_output(&mut self, txout: TxOut) -> Result<usize, PstError> {
        let action = "add an output";
        let index = self.outputs.len();
        if index >= MAX_TX_OUTPUTS {
            return Err(PstError::TooMany {
                what: "outputs",
                max: MAX_TX_OUTPUTS,
            });
        }
        for (input, hash_type) in self.existing_signatures(action)? {
            if hash_type.covers_all_outputs() {
                return Err(PstError::WouldInvalidate {
                    action,
                    input,
                    hash_type,
                    reason: "every output",
                });
            }
        }
        let mut next = self.clone();
        next.tx.outputs.push(txout);
        next.outputs.push(PstOutput::default());
        next.check_size()?;
        *self = next;
        Ok(index)
    }

    fn check_size(&self) -> Result<(), PstError> {
        let size = self.tx.size_bytes();
        if size > MAX_TX_SIZE_BYTES {
            return Err(PstError::TooLong {
                field: "transaction",
                len: size,
                max: MAX_TX_SIZE_BYTES,
            });
        }
        Ok(())
    }
}

fn check_script_len(script: &[u8]) -> Result<(), PstError> {
    if script.len() > MAX_SCRIPT_BYTES {
        return Err(PstError::TooLong {
            field: "witness script",
            len: script.len(),
            max: MAX_SCRIPT_BYTES,
        });
    }
    Ok(())
}

fn check_witness_script(
    location: Location,
    script_pubkey: &[u8],
    script: &[u8],
) -> Result<(), PstError> {
    match classify(script_pubkey) {
        ScriptKind::PayToScriptHash(h) if h == sha256(script) => Ok(()),
        ScriptKind::PayToScriptHash(_) => Err(PstError::WitnessScriptMismatch { location }),
        _ => Err(PstError::NotScriptHash { location }),
    }
}

fn merge_opt<T: PartialEq + Clone>(
    ours: &mut Option<T>,
    theirs: &Option<T>,
    location: Location,
    field: &'static str,
) -> Result<(), PstError> {
    match (ours.as_ref(), theirs) {
        (_, None) => Ok(()),
        (None, Some(t)) => {
            *ours = Some(t.clone());
            Ok(())
        }
        (Some(o), Some(t)) if o == t => Ok(()),
        (Some(_), Some(_)) => Err(PstError::Conflict { location, field }),
    }
}

fn merge_map<K: Ord + Clone, V: PartialEq + Clone>(
    ours: &mut BTreeMap<K, V>,
    theirs: &BTreeMap<K, V>,
    location: Location,
    field: &'static str,
) -> Result<(), PstError> {
    for (k, v) in theirs {
        match ours.get(k) {
            None => {
                ours.insert(k.clone(), v.clone());
            }
            Some(o) if o == v => {}
            Some(_) => return Err(PstError::Conflict { location, field }),
        }
    }
    Ok(())
}
