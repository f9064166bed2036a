//! Validator sets, precommit signatures and commit certificates.
//!
//! A block is final once validators holding more than two thirds of the voting power
//! have signed a precommit for it. The certificate mirrors Malachite's
//! `CommitCertificate` (height, round, value id, commit signatures) so the BFT engine
//! can produce and consume it unchanged.

use std::collections::HashMap;

use secp256k1::{Keypair, XOnlyPublicKey, schnorr};
use settle_assets::encode::{Decode, DecodeError, Encode, Reader, write_compact_size};
use settle_assets::hash::{BlockHash, ChainId, Tag};

use crate::limits::{COMMIT_SIGNATURE_BYTES, MAX_TOTAL_VOTING_POWER, MAX_VALIDATORS};

/// Tag of the digest a validator signs to precommit a block.
pub static PRECOMMIT_TAG: Tag = Tag::new("Settle/Precommit");
/// Tag of the validator-set hash carried in every header.
pub static VALIDATOR_SET_TAG: Tag = Tag::new("Settle/ValidatorSet");

/// One validator: a label, its x-only key and its voting power.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Validator {
    /// A label for logs and tools; not part of the validator-set hash.
    pub name: String,
    pub key: [u8; 32],
    pub power: u64,
}

/// Why a validator set was refused.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ValidatorSetError {
    #[error("the validator set is empty")]
    Empty,
    #[error("{count} validators exceed the limit of {MAX_VALIDATORS}")]
    TooMany { count: usize },
    #[error("validator {name:?} has voting power zero")]
    ZeroPower { name: String },
    #[error("validator {name:?} key {key} is not a valid x-only public key")]
    InvalidKey { name: String, key: String },
    #[error("validators {first:?} and {second:?} have the same key {key}")]
    DuplicateKey {
        first: String,
        second: String,
        key: String,
    },
    #[error("total voting power exceeds the limit of {MAX_TOTAL_VOTING_POWER}")]
    PowerOverflow,
}

/// A validated set of validators, sorted by key.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total_power: u64,
}

impl ValidatorSet {
    /// Checks and sorts the validators: non-empty, at most [`MAX_VALIDATORS`], valid
    /// distinct keys, positive powers whose total is at most [`MAX_TOTAL_VOTING_POWER`].
    pub fn new(mut validators: Vec<Validator>) -> Result<ValidatorSet, ValidatorSetError> {
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        if validators.len() > MAX_VALIDATORS {
            return Err(ValidatorSetError::TooMany {
                count: validators.len(),
            });
        }
        let mut total: u64 = 0;
        for v in &validators {
            if v.power == 0 {
                return Err(ValidatorSetError::ZeroPower {
                    name: v.name.clone(),
                });
            }
            if XOnlyPublicKey::from_byte_array(v.key).is_err() {
                return Err(ValidatorSetError::InvalidKey {
                    name: v.name.clone(),
                    key: hex::encode(v.key),
                });
            }
            total = total
                .checked_add(v.power)
                .filter(|t| *t <= MAX_TOTAL_VOTING_POWER)
                .ok_or(ValidatorSetError::PowerOverflow)?;
        }
        validators.sort_by_key(|v| v.key);
        if let Some(pair) = validators.windows(2).find(|w| w[0].key == w[1].key) {
            return Err(ValidatorSetError::DuplicateKey {
                first: pair[0].name.clone(),
                second: pair[1].name.clone(),
                key: hex::encode(pair[0].key),
            });
        }
        Ok(ValidatorSet {
            validators,
            total_power: total,
        })
    }

    /// The validators, sorted by key.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    pub fn len(&self) -> usize {
        self.validators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    pub fn total_power(&self) -> u64 {
        self.total_power
    }

    /// The validator with this key.
    pub fn get(&self, key: &[u8; 32]) -> Option<&Validator> {
        self.validators
            .binary_search_by(|v| v.key.cmp(key))
            .ok()
            .map(|i| &self.validators[i])
    }

    /// Whether `power` is more than two thirds of the total.
    pub fn is_quorum(&self, power: u64) -> bool {
        u128::from(power) * 3 > u128::from(self.total_power) * 2
    }

    /// `TaggedHash("Settle/ValidatorSet", count || (key || power u64 LE) ...)`, in key
    /// order. Names are not hashed.
    pub fn hash(&self) -> [u8; 32] {
        let mut data = Vec::with_capacity(3 + self.validators.len() * 40);
        write_compact_size(&mut data, self.validators.len() as u64);
        for v in &self.validators {
            data.extend_from_slice(&v.key);
            data.extend_from_slice(&v.power.to_le_bytes());
        }
        VALIDATOR_SET_TAG.hash(&data)
    }
}

/// One validator's precommit signature in a certificate.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CommitSignature {
    /// The validator's x-only key.
    pub validator: [u8; 32],
    /// BIP340 signature over [`precommit_digest`].
    pub signature: [u8; 64],
}

/// Proof that a block was decided: precommits for it from more than two thirds of the
/// voting power.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct CommitCertificate {
    pub height: u64,
    /// The consensus round in which the block was decided.
    pub round: u32,
    pub block_hash: BlockHash,
    pub signatures: Vec<CommitSignature>,
}

/// Why a certificate does not prove that a block was decided.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("certificate is for height {certificate} but the block is at height {block}")]
    WrongHeight { certificate: u64, block: u64 },
    #[error("certificate is for block {certificate} but the block hash is {block}")]
    WrongBlock {
        certificate: BlockHash,
        block: BlockHash,
    },
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

/// The digest a validator signs to precommit `block_hash` at `height` and `round`:
/// `TaggedHash("Settle/Precommit", chain_id || height u64 LE || round u32 LE ||
/// block_hash)`.
pub fn precommit_digest(
    chain_id: &ChainId,
    height: u64,
    round: u32,
    block_hash: &BlockHash,
) -> [u8; 32] {
    let mut data = [0u8; 32 + 8 + 4 + 32];
    data[..32].copy_from_slice(chain_id.as_bytes());
    data[32..40].copy_from_slice(&height.to_le_bytes());
    data[40..44].copy_from_slice(&round.to_le_bytes());
    data[44..].copy_from_slice(block_hash.as_bytes());
    PRECOMMIT_TAG.hash(&data)
}

/// Signs a precommit with a validator's key pair.
pub fn sign_precommit(
    keypair: &Keypair,
    chain_id: &ChainId,
    height: u64,
    round: u32,
    block_hash: &BlockHash,
) -> CommitSignature {
    let digest = precommit_digest(chain_id, height, round, block_hash);
    let sig = secp256k1::SECP256K1.sign_schnorr_no_aux_rand(&digest, keypair);
    CommitSignature {
        validator: keypair.x_only_public_key().0.serialize(),
        signature: sig.to_byte_array(),
    }
}

impl CommitCertificate {
    /// A certificate with no signatures yet (genesis has one; a producer fills it).
    pub fn empty(height: u64, round: u32, block_hash: BlockHash) -> Self {
        CommitCertificate {
            height,
            round,
            block_hash,
            signatures: Vec::new(),
        }
    }

    /// Checks the signatures: each by a distinct validator of `validators`, each a
    /// valid BIP340 signature over the precommit digest, together holding more than two
    /// thirds of the voting power. Returns the power that signed. Does not check which
    /// block the certificate is for; see [`CommitCertificate::verify_for`].
    pub fn verify(
        &self,
        validators: &ValidatorSet,
        chain_id: &ChainId,
    ) -> Result<u64, CertificateError> {
        let digest = precommit_digest(chain_id, self.height, self.round, &self.block_hash);
        verify_signatures(&self.signatures, &digest, validators)
    }

    /// [`CommitCertificate::verify`], and that the certificate is for this block.
    pub fn verify_for(
        &self,
        height: u64,
        block_hash: &BlockHash,
        validators: &ValidatorSet,
        chain_id: &ChainId,
    ) -> Result<u64, CertificateError> {
        if self.height != height {
            return Err(CertificateError::WrongHeight {
                certificate: self.height,
                block: height,
            });
        }
        if self.block_hash != *block_hash {
            return Err(CertificateError::WrongBlock {
                certificate: self.block_hash,
                block: *block_hash,
            });
        }
        self.verify(validators, chain_id)
    }
}

impl Encode for CommitCertificate {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.height.to_le_bytes());
        out.extend_from_slice(&self.round.to_le_bytes());
        self.block_hash.encode(out);
        encode_signatures(&self.signatures, out);
    }
}

/// `compact_size(m) ‖ m × (validator key (32) ‖ BIP340 signature (64))`: the signature
/// list of a certificate and of a membership change.
pub(crate) fn encode_signatures(signatures: &[CommitSignature], out: &mut Vec<u8>) {
    write_compact_size(out, signatures.len() as u64);
    for s in signatures {
        out.extend_from_slice(&s.validator);
        out.extend_from_slice(&s.signature);
    }
}

/// Reads a list written by [`encode_signatures`], at most [`MAX_VALIDATORS`] long.
pub(crate) fn decode_signatures(
    r: &mut Reader<'_>,
    what: &'static str,
) -> Result<Vec<CommitSignature>, DecodeError> {
    let count = r.read_count(what, MAX_VALIDATORS, COMMIT_SIGNATURE_BYTES)?;
    let mut signatures = Vec::with_capacity(count);
    for _ in 0..count {
        signatures.push(CommitSignature {
            validator: r.read_array("signer key")?,
            signature: r.read_array(what)?,
        });
    }
    Ok(signatures)
}

impl Decode for CommitCertificate {
    const NAME: &'static str = "commit certificate";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let height = r.read_u64("certificate height")?;
        let round = r.read_u32("certificate round")?;
        let block_hash = BlockHash::decode(r)?;
        let signatures = decode_signatures(r, "certificate signatures")?;
        Ok(CommitCertificate {
            height,
            round,
            block_hash,
            signatures,
        })
    }
}

/// Checks `signatures` over `digest`: each by a distinct validator of `validators`,
/// each a valid BIP340 signature, together holding more than two thirds of the voting
/// power. Returns the power that signed. Commit certificates and membership changes
/// use the same rule.
pub fn verify_signatures(
    signatures: &[CommitSignature],
    digest: &[u8; 32],
    validators: &ValidatorSet,
) -> Result<u64, CertificateError> {
    let mut first_index = HashMap::with_capacity(signatures.len());
    let mut signed: u64 = 0;
    for (index, s) in signatures.iter().enumerate() {
        let key = || hex::encode(s.validator);
        if let Some(&first) = first_index.get(&s.validator) {
            return Err(CertificateError::DuplicateSigner {
                first,
                second: index,
                key: key(),
            });
        }
        first_index.insert(s.validator, index);
        let Some(validator) = validators.get(&s.validator) else {
            return Err(CertificateError::UnknownValidator { index, key: key() });
        };
        let ok = XOnlyPublicKey::from_byte_array(s.validator)
            .ok()
            .is_some_and(|pk| {
                let sig = schnorr::Signature::from_byte_array(s.signature);
                secp256k1::SECP256K1
                    .verify_schnorr(&sig, digest, &pk)
                    .is_ok()
            });
        if !ok {
            return Err(CertificateError::BadSignature { index, key: key() });
        }
        // Cannot overflow: distinct validators' powers sum to at most the total.
        signed += validator.power;
    }
    if !validators.is_quorum(signed) {
        return Err(CertificateError::InsufficientPower {
            signed,
            total: validators.total_power(),
        });
    }
    Ok(signed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secp256k1::SECP256K1;

    fn key(seed: u8) -> [u8; 32] {
        Keypair::from_seckey_byte_array(SECP256K1, [seed; 32])
            .expect("valid")
            .x_only_public_key()
            .0
            .serialize()
    }

    fn v(seed: u8, power: u64) -> Validator {
        Validator {
            name: format!("v{seed}"),
            key: key(seed),
            power,
        }
    }

    #[test]
    fn validator_sets_refuse_what_they_cannot_hold() {
        assert_eq!(ValidatorSet::new(vec![]), Err(ValidatorSetError::Empty));
        assert!(matches!(
            ValidatorSet::new(vec![v(1, 0)]),
            Err(ValidatorSetError::ZeroPower { .. })
        ));
        let mut bad = v(1, 1);
        bad.key = [0xff; 32];
        assert!(matches!(
            ValidatorSet::new(vec![bad]),
            Err(ValidatorSetError::InvalidKey { .. })
        ));
        assert!(matches!(
            ValidatorSet::new(vec![v(1, 1), v(2, 1), v(1, 5)]),
            Err(ValidatorSetError::DuplicateKey { .. })
        ));
        assert_eq!(
            ValidatorSet::new(vec![v(1, MAX_TOTAL_VOTING_POWER), v(2, 1)]),
            Err(ValidatorSetError::PowerOverflow)
        );
        // The count is checked before anything else, so these keys need not be valid.
        let many: Vec<Validator> = (0..=MAX_VALIDATORS)
            .map(|i| Validator {
                name: format!("v{i}"),
                key: [0; 32],
                power: 1,
            })
            .collect();
        assert_eq!(
            ValidatorSet::new(many),
            Err(ValidatorSetError::TooMany {
                count: MAX_VALIDATORS + 1
            })
        );
    }

    #[test]
    fn quorum_is_strictly_more_than_two_thirds() {
        let set = ValidatorSet::new(vec![v(1, 1), v(2, 1), v(3, 1)]).expect("valid");
        assert!(!set.is_quorum(2));
        assert!(set.is_quorum(3));
        let set = ValidatorSet::new(vec![v(1, 3), v(2, 3)]).expect("valid");
        assert!(!set.is_quorum(3));
        assert!(set.is_quorum(5));
        assert_eq!(set.total_power(), 6);
        assert_eq!(set.get(&key(2)).map(|x| x.power), Some(3));
        assert!(set.get(&key(9)).is_none());
    }

    #[test]
    fn the_set_hash_ignores_names_and_order() {
        let a = ValidatorSet::new(vec![v(1, 1), v(2, 2)]).expect("valid");
        let mut renamed = v(2, 2);
        renamed.name = "other".into();
        let b = ValidatorSet::new(vec![renamed, v(1, 1)]).expect("valid");
        assert_eq!(a.hash(), b.hash());
        let c = ValidatorSet::new(vec![v(1, 1), v(2, 3)]).expect("valid");
        assert_ne!(a.hash(), c.hash());
    }
}
