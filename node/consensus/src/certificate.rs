//! Commit certificates: settle-chain's `CommitCertificate` (height, round, block
//! hash, and per validator its x-only key and BIP340 precommit signature), converted
//! to and from Malachite's `CommitCertificate`. Malachite's carries the same data with
//! the validator address (= the x-only key) in place of the key, so the conversion is
//! lossless both ways, and the chain's rule is the one certificate rule.

use malachitebft_core_types::{CommitCertificate, CommitSignature as MalachiteSignature, Round};
use settle_assets::ChainId;
pub use settle_chain::{CommitCertificate as Certificate, CommitSignature};

use crate::context::SettleContext;
use crate::signing::Signature;
use crate::types::{Address, BlockId, Height, ValidatorSet};

/// Why a certificate does not prove a decision.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("certificate for height {height} has no round")]
    NilRound { height: u64 },
    #[error(transparent)]
    Invalid(#[from] settle_chain::CertificateError),
}

/// Settle's form of a certificate Malachite produced (on a decision) or accepted
/// (from sync).
pub fn from_malachite(
    cert: &CommitCertificate<SettleContext>,
) -> Result<Certificate, CertificateError> {
    let round = cert.round.as_u32().ok_or(CertificateError::NilRound {
        height: cert.height.as_u64(),
    })?;
    Ok(Certificate {
        height: cert.height.as_u64(),
        round,
        block_hash: cert.value_id.block_hash(),
        signatures: cert
            .commit_signatures
            .iter()
            .map(|s| CommitSignature {
                validator: s.address.to_byte_array(),
                signature: s.signature.to_byte_array(),
            })
            .collect(),
    })
}

/// Malachite's form, for serving the block to peers that sync.
pub fn to_malachite(cert: &Certificate) -> CommitCertificate<SettleContext> {
    CommitCertificate {
        height: Height(cert.height),
        round: Round::new(cert.round),
        value_id: BlockId::from_block_hash(cert.block_hash),
        commit_signatures: cert
            .signatures
            .iter()
            .map(|s| MalachiteSignature::new(Address(s.validator), Signature(s.signature)))
            .collect(),
    }
}

/// Checks `cert` against the consensus form of a validator set with the chain's rule
/// (`settle_chain::CommitCertificate::verify`). Returns the power that signed.
pub fn verify(
    cert: &Certificate,
    validators: &ValidatorSet,
    chain_id: &ChainId,
) -> Result<u64, CertificateError> {
    let set = settle_chain::ValidatorSet::new(
        validators
            .validators()
            .iter()
            .map(|v| settle_chain::Validator {
                name: String::new(),
                key: v.address.to_byte_array(),
                power: v.power,
            })
            .collect(),
    )
    // Both sets have the same rules (non-empty, bounded, distinct valid keys), so a
    // consensus set always converts; say so if that ever stops being true.
    .map_err(|e| settle_chain::CertificateError::UnknownValidator {
        index: 0,
        key: format!("(the validator set does not convert: {e})"),
    })?;
    Ok(cert.verify(&set, chain_id)?)
}
