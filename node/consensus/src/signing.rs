//! What validators sign, and the BIP340 signer and verifier Malachite calls.
//!
//! Every consensus signature is a BIP340 Schnorr signature over secp256k1 (the
//! `secp256k1` crate, x-only keys), made over a 32-byte tagged hash
//! `TaggedHash(tag, fields)` where the tag names the kind of message. All digests
//! but the validator proof commit to the chain id, so a signature made for one chain
//! is worthless on another. Integers are little-endian; a round that may be nil is
//! encoded as an i64 (nil = -1). See `spec/consensus.md`.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use bitcoin_hashes::HashEngine;
use borsh::{BorshDeserialize, BorshSerialize};
use malachitebft_core_types::{
    NilOrVal, Round, SignedMessage, SigningScheme, ValidatorProof, VoteExtensionScope, VoteType,
};
use malachitebft_signing::{Error as SigningError, Signer, VerificationResult, Verifier};
use secp256k1::{Keypair, SECP256K1, XOnlyPublicKey, schnorr};
use settle_assets::hash::Tag;
use settle_assets::{BlockHash, ChainId};
use tokio::sync::watch;

use crate::crash;
use crate::sign_guard::{GuardError, Record, SignGuard, SignedValue, Step};

use crate::context::SettleContext;
use crate::types::{Address, BlockId, Height, Proposal, Vote};

/// Tag of a precommit for a block. Equal to settle-chain's `PRECOMMIT_TAG`, so a
/// Malachite commit certificate is a settle-chain commit certificate.
pub static PRECOMMIT_TAG: Tag = Tag::new("Settle/Precommit");
/// Tag of a prevote for a block.
pub static PREVOTE_TAG: Tag = Tag::new("Settle/Prevote");
/// Tag of a precommit for nil.
pub static PRECOMMIT_NIL_TAG: Tag = Tag::new("Settle/PrecommitNil");
/// Tag of a prevote for nil.
pub static PREVOTE_NIL_TAG: Tag = Tag::new("Settle/PrevoteNil");
/// Tag of a signed proposal message.
pub static PROPOSAL_TAG: Tag = Tag::new("Settle/Proposal");
/// Tag of the signature that closes a proposal-part stream.
pub static PROPOSAL_PARTS_TAG: Tag = Tag::new("Settle/ProposalParts");
/// Tag of a proof that a libp2p peer id belongs to a validator key.
pub static VALIDATOR_PROOF_TAG: Tag = Tag::new("Settle/ValidatorProof");

/// A BIP340 signature (64 bytes), as carried in votes, proposals and certificates.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(self.0))
    }
}

impl Signature {
    pub const fn to_byte_array(self) -> [u8; 64] {
        self.0
    }
}

/// A validator's private key. Deliberately not `Debug`-printable with its secret:
/// keys are never logged.
#[derive(Clone)]
pub struct PrivateKey(Keypair);

impl PrivateKey {
    pub fn new(keypair: Keypair) -> Self {
        PrivateKey(keypair)
    }

    pub fn keypair(&self) -> &Keypair {
        &self.0
    }

    pub fn public_key(&self) -> XOnlyPublicKey {
        self.0.x_only_public_key().0
    }

    pub fn address(&self) -> Address {
        Address::from_public_key(&self.public_key())
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey(public {})", self.address())
    }
}

/// Bytes that do not decode as a BIP340 key or signature.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum DecodingError {
    #[error("a BIP340 signature is 64 bytes, got {0}")]
    SignatureLength(usize),
    #[error("a public key is 32 bytes (x-only), got {0}")]
    PublicKeyLength(usize),
    #[error("public key {0} is not on the curve")]
    InvalidPublicKey(String),
}

/// Malachite's signing scheme instantiated with BIP340 Schnorr over secp256k1.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Bip340;

impl SigningScheme for Bip340 {
    type DecodingError = DecodingError;
    type Signature = Signature;
    type PublicKey = XOnlyPublicKey;
    type PrivateKey = PrivateKey;

    fn decode_signature(bytes: &[u8]) -> Result<Signature, DecodingError> {
        let array: [u8; 64] = bytes
            .try_into()
            .map_err(|_| DecodingError::SignatureLength(bytes.len()))?;
        Ok(Signature(array))
    }

    fn encode_signature(signature: &Signature) -> Vec<u8> {
        signature.0.to_vec()
    }

    fn decode_public_key(bytes: &[u8]) -> Result<XOnlyPublicKey, DecodingError> {
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| DecodingError::PublicKeyLength(bytes.len()))?;
        XOnlyPublicKey::from_byte_array(array)
            .map_err(|_| DecodingError::InvalidPublicKey(hex::encode(array)))
    }

    fn encode_public_key(public_key: &XOnlyPublicKey) -> Vec<u8> {
        public_key.serialize().to_vec()
    }
}

fn round_u32(round: Round) -> u32 {
    // Votes and proposals always name a defined round; a nil round cannot be signed
    // by this code, and a peer's message with one maps to a digest nobody signed.
    round.as_u32().unwrap_or(u32::MAX)
}

/// `TaggedHash("Settle/Precommit", chain_id || height u64 LE || round u32 LE ||
/// block_hash)`: identical to settle-chain's `precommit_digest`.
pub fn precommit_digest(
    chain_id: &ChainId,
    height: u64,
    round: u32,
    block: &BlockHash,
) -> [u8; 32] {
    vote_for_value_digest(&PRECOMMIT_TAG, chain_id, height, round, block)
}

fn vote_for_value_digest(
    tag: &Tag,
    chain_id: &ChainId,
    height: u64,
    round: u32,
    block: &BlockHash,
) -> [u8; 32] {
    let mut data = [0u8; 32 + 8 + 4 + 32];
    data[..32].copy_from_slice(chain_id.as_bytes());
    data[32..40].copy_from_slice(&height.to_le_bytes());
    data[40..44].copy_from_slice(&round.to_le_bytes());
    data[44..].copy_from_slice(block.as_bytes());
    tag.hash(&data)
}

fn vote_for_nil_digest(tag: &Tag, chain_id: &ChainId, height: u64, round: u32) -> [u8; 32] {
    let mut data = [0u8; 32 + 8 + 4];
    data[..32].copy_from_slice(chain_id.as_bytes());
    data[32..40].copy_from_slice(&height.to_le_bytes());
    data[40..44].copy_from_slice(&round.to_le_bytes());
    tag.hash(&data)
}

/// The digest a validator signs for `vote`. The voter is not hashed: a BIP340
/// signature already commits to the signer's key.
pub fn vote_digest(chain_id: &ChainId, vote: &Vote) -> [u8; 32] {
    let height = vote.height.as_u64();
    let round = round_u32(vote.round);
    match (vote.vote_type, &vote.value) {
        (VoteType::Precommit, NilOrVal::Val(id)) => {
            precommit_digest(chain_id, height, round, &id.block_hash())
        }
        (VoteType::Prevote, NilOrVal::Val(id)) => {
            vote_for_value_digest(&PREVOTE_TAG, chain_id, height, round, &id.block_hash())
        }
        (VoteType::Precommit, NilOrVal::Nil) => {
            vote_for_nil_digest(&PRECOMMIT_NIL_TAG, chain_id, height, round)
        }
        (VoteType::Prevote, NilOrVal::Nil) => {
            vote_for_nil_digest(&PREVOTE_NIL_TAG, chain_id, height, round)
        }
    }
}

fn proposal_like_digest(
    tag: &Tag,
    chain_id: &ChainId,
    height: Height,
    round: Round,
    pol_round: Round,
    block: &BlockId,
) -> [u8; 32] {
    let mut data = [0u8; 32 + 8 + 4 + 8 + 32];
    data[..32].copy_from_slice(chain_id.as_bytes());
    data[32..40].copy_from_slice(&height.as_u64().to_le_bytes());
    data[40..44].copy_from_slice(&round_u32(round).to_le_bytes());
    data[44..52].copy_from_slice(&pol_round.as_i64().to_le_bytes());
    data[52..].copy_from_slice(&block.0);
    tag.hash(&data)
}

/// `TaggedHash("Settle/Proposal", chain_id || height u64 LE || round u32 LE ||
/// pol_round i64 LE || block_hash)`.
pub fn proposal_digest(chain_id: &ChainId, proposal: &Proposal) -> [u8; 32] {
    proposal_like_digest(
        &PROPOSAL_TAG,
        chain_id,
        proposal.height,
        proposal.round,
        proposal.pol_round,
        &proposal.value,
    )
}

/// `TaggedHash("Settle/ProposalParts", chain_id || height u64 LE || round u32 LE ||
/// pol_round i64 LE || block_hash || block_len u64 LE || block)`: signed by the
/// proposer in the `Fin` part of the stream. It covers every byte of the block, not
/// only its header, so a peer that replays the proposer's header and `Fin` with
/// another body (or another length) holds no valid signature and is charged itself,
/// never the proposer (`spec/consensus.md`, sections 3 and 9a).
pub fn proposal_parts_digest(
    chain_id: &ChainId,
    height: Height,
    round: Round,
    pol_round: Round,
    block_id: &BlockId,
    block: &[u8],
) -> [u8; 32] {
    // usize is at most 64 bits on every target Rust supports.
    let block_len = block.len() as u64;
    let mut engine = PROPOSAL_PARTS_TAG.engine();
    engine.input(chain_id.as_bytes());
    engine.input(&height.as_u64().to_le_bytes());
    engine.input(&round_u32(round).to_le_bytes());
    engine.input(&pol_round.as_i64().to_le_bytes());
    engine.input(&block_id.0);
    engine.input(&block_len.to_le_bytes());
    engine.input(block);
    settle_assets::hash::finish(engine)
}

/// `TaggedHash("Settle/ValidatorProof", preimage)` where the preimage is Malachite's
/// `ValidatorProof::signing_bytes(public_key, peer_id)`. No chain id: the proof only
/// binds a network identity to a key.
pub fn validator_proof_digest(public_key: &[u8], peer_id: &[u8]) -> [u8; 32] {
    VALIDATOR_PROOF_TAG.hash(&ValidatorProof::<SettleContext>::signing_bytes(
        public_key, peer_id,
    ))
}

/// Signs a 32-byte digest. Auxiliary randomness is omitted: BIP340 nonces are
/// derived from the key and message, so signing stays deterministic and testable.
pub fn sign_digest(key: &PrivateKey, digest: &[u8; 32]) -> Signature {
    Signature(
        SECP256K1
            .sign_schnorr_no_aux_rand(digest, key.keypair())
            .to_byte_array(),
    )
}

/// Checks a BIP340 signature over a 32-byte digest.
pub fn verify_digest(
    public_key: &XOnlyPublicKey,
    digest: &[u8; 32],
    signature: &Signature,
) -> bool {
    let sig = schnorr::Signature::from_byte_array(signature.0);
    SECP256K1.verify_schnorr(&sig, digest, public_key).is_ok()
}

/// Verifies consensus signatures for one chain. Every node has one.
#[derive(Clone, Debug)]
pub struct SettleVerifier {
    chain_id: ChainId,
}

impl SettleVerifier {
    pub fn new(chain_id: ChainId) -> Self {
        SettleVerifier { chain_id }
    }
}

#[async_trait]
impl Verifier<SettleContext> for SettleVerifier {
    async fn verify_signed_vote(
        &self,
        vote: &Vote,
        signature: &Signature,
        public_key: &XOnlyPublicKey,
    ) -> Result<VerificationResult, SigningError> {
        let digest = vote_digest(&self.chain_id, vote);
        Ok(VerificationResult::from_bool(verify_digest(
            public_key, &digest, signature,
        )))
    }

    async fn verify_signed_proposal(
        &self,
        proposal: &Proposal,
        signature: &Signature,
        public_key: &XOnlyPublicKey,
    ) -> Result<VerificationResult, SigningError> {
        let digest = proposal_digest(&self.chain_id, proposal);
        Ok(VerificationResult::from_bool(verify_digest(
            public_key, &digest, signature,
        )))
    }

    async fn verify_signed_vote_extension(
        &self,
        _scope: &VoteExtensionScope<SettleContext>,
        _extension: &(),
        _signature: &Signature,
        _public_key: &XOnlyPublicKey,
    ) -> Result<VerificationResult, SigningError> {
        // Settle runs with vote extensions disabled: no extension is ever valid.
        Ok(VerificationResult::Invalid)
    }

    async fn verify_validator_proof(
        &self,
        proof: &ValidatorProof<SettleContext>,
    ) -> Result<VerificationResult, SigningError> {
        let Ok(public_key) = Bip340::decode_public_key(&proof.public_key) else {
            return Ok(VerificationResult::Invalid);
        };
        let digest = validator_proof_digest(&proof.public_key, &proof.peer_id);
        Ok(VerificationResult::from_bool(verify_digest(
            &public_key,
            &digest,
            &proof.signature,
        )))
    }
}

/// Where a node reports the failure that stops it (a refused signature, a storage
/// failure): the first one is kept.
pub type FailureSlot = Arc<watch::Sender<Option<String>>>;

/// Records `failure` in `slot` unless an earlier one is there.
pub fn report_failure(slot: &FailureSlot, failure: String) {
    slot.send_if_modified(|current| {
        if current.is_some() {
            return false;
        }
        *current = Some(failure);
        true
    });
}

/// Whether a proposer may propose at a height and round, per its guard.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ProposalSlot {
    /// Nothing proposed there yet.
    Free,
    /// This block was proposed there (before a restart, perhaps): only it may be.
    Signed(BlockId),
    /// A later height was already proposed at: the guard refuses this one.
    Passed,
}

/// Signs votes, proposals and the validator proof with a validator's key.
#[derive(Clone, Debug)]
pub struct SettleSigner {
    key: PrivateKey,
    chain_id: ChainId,
    /// The double-sign guard, for a signer that votes (always, in a running node).
    guard: Option<Arc<SignGuard>>,
    /// Where a refused signature is reported, so the node stops.
    failure: Option<FailureSlot>,
}

impl SettleSigner {
    /// A signer without a double-sign guard (tests and tools that sign by hand).
    pub fn new(key: PrivateKey, chain_id: ChainId) -> Self {
        SettleSigner {
            key,
            chain_id,
            guard: None,
            failure: None,
        }
    }

    /// A signer whose every vote and proposal passes `guard` first; a refusal is
    /// reported to `failure`.
    pub fn guarded(
        key: PrivateKey,
        chain_id: ChainId,
        guard: Arc<SignGuard>,
        failure: FailureSlot,
    ) -> Self {
        SettleSigner {
            key,
            chain_id,
            guard: Some(guard),
            failure: Some(failure),
        }
    }

    /// What this signer's double-sign guard (which survives restarts) says about
    /// proposing at `height` and `round`.
    pub fn proposal_slot(&self, height: Height, round: Round) -> ProposalSlot {
        let Some(guard) = &self.guard else {
            return ProposalSlot::Free;
        };
        if guard.last_height(Step::Proposal) > height {
            return ProposalSlot::Passed;
        }
        match guard.signed_at(Step::Proposal, height, round_u32(round)) {
            Some(SignedValue::Proposal { block, .. }) => ProposalSlot::Signed(block),
            Some(_) => ProposalSlot::Passed,
            None => ProposalSlot::Free,
        }
    }

    /// Asks the guard (if any) to let a signature for `step` out.
    fn admit(&self, step: Step, record: Record) -> Result<(), GuardError> {
        let Some(guard) = &self.guard else {
            return Ok(());
        };
        guard.check_and_record(step, record).inspect_err(|e| {
            tracing::error!(error = %e, "double-sign guard refused a signature; stopping");
            if let Some(slot) = &self.failure {
                report_failure(slot, e.to_string());
            }
        })
    }

    pub fn address(&self) -> Address {
        self.key.address()
    }

    pub fn public_key(&self) -> XOnlyPublicKey {
        self.key.public_key()
    }

    /// The signature that closes a proposal-part stream.
    pub fn sign_proposal_parts(
        &self,
        height: Height,
        round: Round,
        pol_round: Round,
        block: &BlockId,
        bytes: &[u8],
    ) -> Result<Signature, GuardError> {
        let digest = proposal_parts_digest(&self.chain_id, height, round, pol_round, block, bytes);
        self.admit(
            Step::Proposal,
            Record {
                height,
                round: round_u32(round),
                value: SignedValue::Proposal {
                    pol_round: pol_round.as_i64(),
                    block: *block,
                },
            },
        )?;
        Ok(sign_digest(&self.key, &digest))
    }

    /// A validator proof for this key and a libp2p peer id (bytes of the peer id).
    pub fn validator_proof(&self, peer_id: Vec<u8>) -> ValidatorProof<SettleContext> {
        let public_key = self.public_key().serialize().to_vec();
        let digest = validator_proof_digest(&public_key, &peer_id);
        ValidatorProof::new(public_key, peer_id, sign_digest(&self.key, &digest))
    }
}

#[async_trait]
impl Signer<SettleContext> for SettleSigner {
    async fn sign_vote(
        &self,
        vote: Vote,
    ) -> Result<SignedMessage<SettleContext, Vote>, SigningError> {
        let (step, name) = match vote.vote_type {
            VoteType::Prevote => (Step::Prevote, "prevote"),
            VoteType::Precommit => (Step::Precommit, "precommit"),
        };
        crash::point(&format!("{name}-before-sign"));
        let value = match &vote.value {
            NilOrVal::Nil => SignedValue::Nil,
            NilOrVal::Val(id) => SignedValue::Block(*id),
        };
        let record = Record {
            height: vote.height,
            round: round_u32(vote.round),
            value,
        };
        self.admit(step, record)
            .map_err(SigningError::from_source)?;
        let signature = sign_digest(&self.key, &vote_digest(&self.chain_id, &vote));
        crash::point(&format!("{name}-after-sign"));
        Ok(SignedMessage::new(vote, signature))
    }

    async fn sign_proposal(
        &self,
        proposal: Proposal,
    ) -> Result<SignedMessage<SettleContext, Proposal>, SigningError> {
        let record = Record {
            height: proposal.height,
            round: round_u32(proposal.round),
            value: SignedValue::Proposal {
                pol_round: proposal.pol_round.as_i64(),
                block: proposal.value,
            },
        };
        self.admit(Step::Proposal, record)
            .map_err(SigningError::from_source)?;
        let signature = sign_digest(&self.key, &proposal_digest(&self.chain_id, &proposal));
        Ok(SignedMessage::new(proposal, signature))
    }

    async fn sign_vote_extension(
        &self,
        _scope: VoteExtensionScope<SettleContext>,
        _extension: (),
    ) -> Result<SignedMessage<SettleContext, ()>, SigningError> {
        // Never called while the policy is Disabled; refuse rather than sign.
        Err(SigningError::new())
    }

    async fn sign_validator_proof(
        &self,
        public_key: Vec<u8>,
        peer_id: Vec<u8>,
    ) -> Result<ValidatorProof<SettleContext>, SigningError> {
        if public_key != self.public_key().serialize() {
            // Only our own key can be proven.
            return Err(SigningError::new());
        }
        Ok(self.validator_proof(peer_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Address;

    fn key(seed: u8) -> PrivateKey {
        let sk = secp256k1::SecretKey::from_byte_array([seed; 32]).expect("valid secret");
        PrivateKey::new(Keypair::from_secret_key(SECP256K1, &sk))
    }

    fn vote(vote_type: VoteType, value: NilOrVal<BlockId>) -> Vote {
        Vote {
            vote_type,
            height: Height(5),
            round: Round::new(2),
            value,
            validator: key(1).address(),
        }
    }

    #[test]
    fn the_four_vote_kinds_have_distinct_digests() {
        let chain = ChainId([7; 32]);
        let id = NilOrVal::Val(BlockId([9; 32]));
        let digests = [
            vote_digest(&chain, &vote(VoteType::Prevote, id)),
            vote_digest(&chain, &vote(VoteType::Precommit, id)),
            vote_digest(&chain, &vote(VoteType::Prevote, NilOrVal::Nil)),
            vote_digest(&chain, &vote(VoteType::Precommit, NilOrVal::Nil)),
        ];
        for i in 0..digests.len() {
            for j in i + 1..digests.len() {
                assert_ne!(digests[i], digests[j], "digests {i} and {j} collide");
            }
        }
        // Another chain, another digest.
        assert_ne!(
            vote_digest(&ChainId([8; 32]), &vote(VoteType::Precommit, id)),
            digests[1]
        );
    }

    #[test]
    fn precommit_digest_follows_the_documented_layout() {
        let chain = ChainId([1; 32]);
        let block = BlockHash([2; 32]);
        let mut data = Vec::new();
        data.extend_from_slice(&[1; 32]);
        data.extend_from_slice(&9u64.to_le_bytes());
        data.extend_from_slice(&3u32.to_le_bytes());
        data.extend_from_slice(&[2; 32]);
        assert_eq!(
            precommit_digest(&chain, 9, 3, &block),
            settle_assets::tagged_hash("Settle/Precommit", &data)
        );
    }

    #[tokio::test]
    async fn signatures_verify_and_tampering_is_caught() {
        let chain = ChainId([3; 32]);
        let signer = SettleSigner::new(key(1), chain);
        let verifier = SettleVerifier::new(chain);
        let v = vote(VoteType::Precommit, NilOrVal::Val(BlockId([4; 32])));
        let signed = signer.sign_vote(v.clone()).await.expect("signs");
        let pk = signer.public_key();
        let ok = verifier
            .verify_signed_vote(&v, &signed.signature, &pk)
            .await
            .expect("verifies");
        assert!(ok.is_valid());

        let mut other = v.clone();
        other.round = Round::new(3);
        let bad = verifier
            .verify_signed_vote(&other, &signed.signature, &pk)
            .await
            .expect("verifies");
        assert!(bad.is_invalid());

        let wrong_key = key(2).public_key();
        let bad = verifier
            .verify_signed_vote(&v, &signed.signature, &wrong_key)
            .await
            .expect("verifies");
        assert!(bad.is_invalid());

        let proof = signer.validator_proof(b"peer".to_vec());
        assert!(
            verifier
                .verify_validator_proof(&proof)
                .await
                .expect("ok")
                .is_valid()
        );
        let mut forged = proof.clone();
        forged.peer_id = b"other peer".to_vec();
        assert!(
            verifier
                .verify_validator_proof(&forged)
                .await
                .expect("ok")
                .is_invalid()
        );
        let mut garbage = proof;
        garbage.public_key = vec![1, 2, 3];
        assert!(
            verifier
                .verify_validator_proof(&garbage)
                .await
                .expect("ok")
                .is_invalid()
        );
        assert_eq!(Address::from_public_key(&pk), signer.address());
    }
}
