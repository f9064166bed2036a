//! Commit certificates in Settle's shape, and their conversion to and from
//! Malachite's `CommitCertificate`.
//!
//! [`Certificate`] has exactly the fields of settle-chain's `CommitCertificate`
//! (height, round, block hash, and per validator its x-only key and BIP340 precommit
//! signature over [`precommit_digest`]). Malachite's certificate carries the same
//! data with the validator address (= the x-only key) in place of the key, so the
//! conversion is lossless both ways.

use std::collections::HashSet;

use malachitebft_core_types::{CommitCertificate, CommitSignature as MalachiteSignature, Round};
use settle_assets::{BlockHash, ChainId};

use crate::context::SettleContext;
use crate::signing::{Signature, precommit_digest, verify_digest};
use crate::types::{Address, BlockId, Height, ValidatorSet};

/// One validator's precommit signature.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CommitSignature {
    /// The validator's x-only key.
    pub validator: [u8; 32],
    /// BIP340 signature over [`precommit_digest`].
    pub signature: [u8; 64],
}

/// Proof that a block was decided: precommits for it from validators holding more
/// than two thirds of the voting power.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Certificate {
    pub height: u64,
    pub round: u32,
    pub block_hash: BlockHash,
    pub signatures: Vec<CommitSignature>,
}

/// Why a certificate does not prove a decision.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("certificate for height {height} has no round")]
    NilRound { height: u64 },
    #[error("signature {index} is by {key}, which is not a validator")]
    UnknownValidator { index: usize, key: String },
    #[error("signatures {first} and {second} are both by validator {key}")]
    DuplicateSigner {
        first: usize,
        second: usize,
        key: String,
    },
    #[error("signature {index} by validator {key} is invalid")]
    BadSignature { index: usize, key: String },
    #[error("signers hold voting power {signed} of {total}: more than two thirds is needed")]
    InsufficientPower { signed: u64, total: u64 },
}

impl Certificate {
    /// Settle's form of a certificate Malachite produced (on a decision) or
    /// accepted (from sync).
    pub fn from_malachite(
        cert: &CommitCertificate<SettleContext>,
    ) -> Result<Self, CertificateError> {
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
    pub fn to_malachite(&self) -> CommitCertificate<SettleContext> {
        CommitCertificate {
            height: Height(self.height),
            round: Round::new(self.round),
            value_id: BlockId::from_block_hash(self.block_hash),
            commit_signatures: self
                .signatures
                .iter()
                .map(|s| MalachiteSignature::new(Address(s.validator), Signature(s.signature)))
                .collect(),
        }
    }

    /// Checks the signatures against `validators`: each by a distinct validator, each
    /// a valid precommit signature for this height, round and block on `chain_id`,
    /// together more than two thirds of the power. Returns the power that signed.
    pub fn verify(
        &self,
        validators: &ValidatorSet,
        chain_id: &ChainId,
    ) -> Result<u64, CertificateError> {
        let digest = precommit_digest(chain_id, self.height, self.round, &self.block_hash);
        let mut seen: HashSet<[u8; 32]> = HashSet::with_capacity(self.signatures.len());
        let mut signed: u64 = 0;
        for (index, s) in self.signatures.iter().enumerate() {
            let key = || hex::encode(s.validator);
            if !seen.insert(s.validator) {
                let first = self
                    .signatures
                    .iter()
                    .position(|o| o.validator == s.validator)
                    .unwrap_or(index);
                return Err(CertificateError::DuplicateSigner {
                    first,
                    second: index,
                    key: key(),
                });
            }
            let Some(validator) = validators.get(&Address(s.validator)) else {
                return Err(CertificateError::UnknownValidator { index, key: key() });
            };
            if !verify_digest(&validator.public_key, &digest, &Signature(s.signature)) {
                return Err(CertificateError::BadSignature { index, key: key() });
            }
            // Distinct validators' powers sum to at most the total, which is bounded.
            signed = signed.saturating_add(validator.power);
        }
        let total = validators.total_power();
        if u128::from(signed) * 3 <= u128::from(total) * 2 {
            return Err(CertificateError::InsufficientPower { signed, total });
        }
        Ok(signed)
    }
}
