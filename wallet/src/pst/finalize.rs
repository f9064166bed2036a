//! Finalizer and Extractor: turning collected signatures into witnesses, and a complete
//! PST into a checked transaction.

use settle_assets::transaction::{LOCKTIME_THRESHOLD, SEQUENCE_FINAL};
use settle_assets::{
    AssetContract, IssuanceKind, Transaction, Witness, check_conservation, check_transaction,
};
use settle_script::{
    PrecomputedTx, ScriptError, ScriptKind, classify, htlc_claim_witness, htlc_refund_witness,
    multisig_witness, p2k_witness, p2sh_witness, verify_input, verify_issuance_signature,
    verify_transaction,
};

use super::templates::{WitnessTemplate, recognise};
use super::{Missing, Pst, PstError, XOnly, hex32};

impl Pst {
    /// The witness input `input` would get from what the PST holds now, or what is missing.
    fn build_witness(&self, input: usize) -> Result<Witness, PstError> {
        let inp = &self.inputs[input];
        let incomplete = |m| PstError::Incomplete(m);
        let spent = inp
            .spent_output
            .as_ref()
            .ok_or(incomplete(Missing::SpentOutput { input }))?;
        let sig = |key: &XOnly| inp.partial_sigs.get(key).map(|s| s.encoded());
        match classify(&spent.script_pubkey) {
            ScriptKind::PayToKey(key) => sig(&key).map(p2k_witness).ok_or_else(|| {
                incomplete(Missing::Signature {
                    input,
                    key: hex32(&key),
                })
            }),
            ScriptKind::PayToScriptHash(_) => {
                let script = inp
                    .witness_script
                    .as_ref()
                    .ok_or(incomplete(Missing::WitnessScript { input }))?;
                match recognise(script) {
                    Some(WitnessTemplate::SingleKey { key }) => sig(&key)
                        .map(|s| p2sh_witness(vec![s], script))
                        .ok_or_else(|| {
                            incomplete(Missing::Signature {
                                input,
                                key: hex32(&key),
                            })
                        }),
                    Some(WitnessTemplate::Multisig { threshold, keys }) => {
                        let slots: Vec<Option<Vec<u8>>> = keys.iter().map(sig).collect();
                        let have = slots.iter().filter(|s| s.is_some()).count();
                        if have < threshold {
                            return Err(incomplete(Missing::Signatures {
                                input,
                                have,
                                need: threshold,
                            }));
                        }
                        Ok(multisig_witness(slots, script))
                    }
                    Some(WitnessTemplate::Htlc {
                        hash,
                        recipient,
                        refund,
                        timeout_lock_time,
                    }) => {
                        let preimage = inp.sha256_preimages.get(&hash);
                        if let (Some(s), Some(p)) = (sig(&recipient), preimage) {
                            return Ok(htlc_claim_witness(s, p.clone(), script));
                        }
                        if let Some(s) = sig(&refund) {
                            self.check_refund_lock(input, timeout_lock_time)?;
                            return Ok(htlc_refund_witness(s, script));
                        }
                        Err(incomplete(Missing::HtlcSpend {
                            input,
                            recipient: hex32(&recipient),
                            refund: hex32(&refund),
                            hash: hex32(&hash),
                        }))
                    }
                    None => Err(incomplete(Missing::UnsupportedScript { input })),
                }
            }
            ScriptKind::Bare => Err(incomplete(Missing::UnsupportedScript { input })),
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

    /// An HTLC refund only verifies once the transaction's lock time reaches the timeout
    /// (same kind: height or time) and the input's sequence is not final. Saying so here
    /// beats a bare `UNSATISFIED_LOCKTIME` from the verifier.
    fn check_refund_lock(&self, input: usize, timeout: u32) -> Result<(), PstError> {
        let lock_time = self.tx.lock_time;
        let same_kind = (lock_time < LOCKTIME_THRESHOLD) == (timeout < LOCKTIME_THRESHOLD);
        if !same_kind || lock_time < timeout || self.tx.inputs[input].sequence == SEQUENCE_FINAL {
            return Err(PstError::Verify {
                input,
                error: ScriptError::UnsatisfiedLocktime,
            });
        }
        Ok(())
    }

    /// What input `input` still needs, if anything (nothing for a finalized input).
    pub(crate) fn missing_for_input(&self, input: usize) -> Vec<Missing> {
        let mut out = Vec::new();
        let txin = &self.tx.inputs[input];
        let inp = &self.inputs[input];
        if txin.issuance.is_some() && inp.issuance_signature.is_none() {
            out.push(Missing::IssuanceSignature { input });
        }
        if txin.prevout.is_null() || inp.final_witness.is_some() {
            return out;
        }
        if let Err(PstError::Incomplete(m)) = self.build_witness(input) {
            out.push(m);
        }
        out
    }

    /// Builds and verifies the witness of input `input`, and checks its issuance
    /// signature if it has one. Leaves the PST unchanged on error.
    pub fn finalize_input(&mut self, input: usize) -> Result<(), PstError> {
        self.check_input(input)?;
        let txin = &self.tx.inputs[input];
        let inp = &self.inputs[input];
        if txin.issuance.is_some() && inp.issuance_signature.is_none() {
            return Err(PstError::Incomplete(Missing::IssuanceSignature { input }));
        }
        if inp.issuance_signature.is_some() {
            self.check_issuance_signature(input)?;
        }
        if txin.prevout.is_null() || inp.final_witness.is_some() {
            return Ok(());
        }
        let witness = self.build_witness(input)?;
        // Verify against the transaction with this witness in place. A digest without
        // ANYONECANPAY needs every spent output; with it, unknown ones do not matter.
        let all_acp = inp
            .partial_sigs
            .values()
            .all(|s| s.hash_type.anyone_can_pay());
        let spent = self.spent_vector(!all_acp)?;
        let mut tx = self.tx.clone();
        tx.inputs[input].witness = witness.clone();
        let cache = PrecomputedTx::new(&tx, &spent, self.chain_id)
            .map_err(|error| PstError::Verify { input, error })?;
        verify_input(&cache, input).map_err(|error| PstError::Verify { input, error })?;
        self.inputs[input].final_witness = Some(witness);
        Ok(())
    }

    fn check_issuance_signature(&self, input: usize) -> Result<(), PstError> {
        let (Some(issuance), Some(sig)) = (
            self.tx.inputs[input].issuance.as_ref(),
            self.inputs[input].issuance_signature.as_ref(),
        ) else {
            return Ok(());
        };
        // Only a new asset's contract names its issuer; a reissuance's issuer is in the
        // chain's asset registry, which the node checks.
        let IssuanceKind::New { contract } = &issuance.kind else {
            return Ok(());
        };
        let Ok(contract) = AssetContract::from_canonical_bytes(contract) else {
            return Ok(());
        };
        let spent = self.spent_vector(true)?;
        let cache = PrecomputedTx::new(&self.tx, &spent, self.chain_id)
            .map_err(|error| PstError::Verify { input, error })?;
        let digest = cache
            .issuance_digest(input)
            .map_err(|error| PstError::Verify { input, error })?;
        verify_issuance_signature(&digest, sig, &contract.issuer)
            .map_err(|_| PstError::BadIssuanceSignature { input })
    }

    /// Finalizes every input that is not finalized yet. All or nothing: on error the PST
    /// is unchanged and the error names the first input that could not be finalized.
    pub fn finalize(&mut self) -> Result<(), PstError> {
        let mut next = self.clone();
        for input in 0..next.inputs.len() {
            next.finalize_input(input)?;
        }
        *self = next;
        Ok(())
    }

    /// Whether every input is finalized and every issuance signed.
    pub fn is_finalized(&self) -> bool {
        self.tx.inputs.iter().zip(&self.inputs).all(|(txin, inp)| {
            (txin.prevout.is_null() || inp.final_witness.is_some())
                && (txin.issuance.is_none() || inp.issuance_signature.is_some())
        })
    }

    /// The complete transaction, after checking it as a node would without the chain:
    /// the context-free checks, per-asset conservation against the spent outputs, and
    /// every input's script.
    pub fn extract(&self) -> Result<Transaction, PstError> {
        let mut tx = self.tx.clone();
        for (i, (txin, inp)) in tx.inputs.iter_mut().zip(&self.inputs).enumerate() {
            if !txin.prevout.is_null() {
                txin.witness = inp
                    .final_witness
                    .clone()
                    .ok_or(PstError::NotFinalized { input: i })?;
            }
            if let Some(issuance) = &mut txin.issuance {
                issuance.signature = Some(inp.issuance_signature.ok_or(PstError::Incomplete(
                    Missing::IssuanceSignature { input: i },
                ))?);
            }
        }
        check_transaction(&tx)?;
        let spent = self.spent_vector(true)?;
        check_conservation(&tx, &spent)?;
        verify_transaction(&tx, &spent, self.chain_id)?;
        for input in 0..tx.inputs.len() {
            self.check_issuance_signature(input)?;
        }
        Ok(tx)
    }
}
