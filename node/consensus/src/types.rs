//! The consensus data types Malachite is instantiated with: heights, validator
//! addresses, the validator set, block ids, votes, proposals and proposal parts.
//!
//! Every type here is plain data. Signing lives in [`crate::signing`], the wire
//! encoding in [`crate::codec`].

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use malachitebft_core_types as mct;
use malachitebft_core_types::{NilOrVal, Round, SignedExtension, VoteType, VotingPower};
use secp256k1::XOnlyPublicKey;
use settle_assets::BlockHash;

use crate::context::SettleContext;
use crate::signing::Signature;

/// Most validators a set may hold (mirrors settle-chain's `MAX_VALIDATORS`).
pub const MAX_VALIDATORS: usize = 128;
/// Largest total voting power; keeps every quorum computation far from overflow.
pub const MAX_TOTAL_VOTING_POWER: u64 = 1 << 60;

/// A block height. Height 0 is the genesis block, which is never decided by
/// consensus; the first height consensus decides is 1.
#[derive(
    Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct Height(pub u64);

impl Height {
    pub const fn new(height: u64) -> Self {
        Height(height)
    }

    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Height({})", self.0)
    }
}

impl mct::Height for Height {
    const ZERO: Self = Height(0);
    const INITIAL: Self = Height(1);

    fn increment_by(&self, n: u64) -> Self {
        // Heights are u64 block counts; reaching u64::MAX is not a state a chain can be in.
        Height(self.0.saturating_add(n))
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Height)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

/// A validator's address: its 32-byte x-only (BIP340) public key, unchanged. Using
/// the key itself (not a hash of it) keeps certificates self-describing and equal to
/// settle-chain's `CommitSignature::validator`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Address(pub [u8; 32]);

impl Address {
    pub const fn from_byte_array(bytes: [u8; 32]) -> Self {
        Address(bytes)
    }

    pub const fn to_byte_array(self) -> [u8; 32] {
        self.0
    }

    pub fn from_public_key(key: &XOnlyPublicKey) -> Self {
        Address(key.serialize())
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl mct::Address for Address {}

/// The value consensus decides: a block, identified by its block hash. The block's
/// bytes travel beside the consensus messages (proposal parts and sync responses);
/// votes, proposals and certificates carry only this id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct BlockId(pub [u8; 32]);

impl BlockId {
    pub const fn from_block_hash(hash: BlockHash) -> Self {
        BlockId(hash.0)
    }

    pub const fn block_hash(self) -> BlockHash {
        BlockHash(self.0)
    }
}

impl From<BlockHash> for BlockId {
    fn from(hash: BlockHash) -> Self {
        BlockId(hash.0)
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockId({self})")
    }
}

impl mct::Value for BlockId {
    type Id = BlockId;

    fn id(&self) -> BlockId {
        *self
    }
}

/// One validator: its key (which is also its address) and voting power.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Validator {
    pub address: Address,
    pub public_key: XOnlyPublicKey,
    pub power: VotingPower,
}

impl Validator {
    /// A validator from its x-only key bytes and power.
    pub fn new(key: [u8; 32], power: VotingPower) -> Result<Self, ValidatorSetError> {
        let public_key =
            XOnlyPublicKey::from_byte_array(key).map_err(|_| ValidatorSetError::InvalidKey {
                key: hex::encode(key),
            })?;
        Ok(Validator {
            address: Address(key),
            public_key,
            power,
        })
    }
}

impl mct::Validator<SettleContext> for Validator {
    fn address(&self) -> &Address {
        &self.address
    }

    fn public_key(&self) -> &XOnlyPublicKey {
        &self.public_key
    }

    fn voting_power(&self) -> VotingPower {
        self.power
    }
}

/// Why a list of validators is not a usable validator set.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ValidatorSetError {
    #[error("the validator set is empty")]
    Empty,
    #[error("{count} validators exceed the limit of {MAX_VALIDATORS}")]
    TooMany { count: usize },
    #[error("validator {key} has voting power zero")]
    ZeroPower { key: String },
    #[error("validator key {key} is not a valid x-only public key")]
    InvalidKey { key: String },
    #[error("validator key {key} appears twice")]
    DuplicateKey { key: String },
    #[error("total voting power exceeds the limit of {MAX_TOTAL_VOTING_POWER}")]
    PowerOverflow,
}

/// The validators of one height, sorted by address (key bytes), the same order as
/// settle-chain's `ValidatorSet`. The order fixes proposer selection.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
    total_power: VotingPower,
}

impl ValidatorSet {
    /// Checks and sorts `(x-only key, power)` pairs: non-empty, at most
    /// [`MAX_VALIDATORS`], valid distinct keys, positive powers summing to at most
    /// [`MAX_TOTAL_VOTING_POWER`].
    pub fn new(
        members: impl IntoIterator<Item = ([u8; 32], VotingPower)>,
    ) -> Result<Self, ValidatorSetError> {
        let mut validators = Vec::new();
        let mut total: u64 = 0;
        for (key, power) in members {
            if validators.len() == MAX_VALIDATORS {
                return Err(ValidatorSetError::TooMany {
                    count: MAX_VALIDATORS + 1,
                });
            }
            if power == 0 {
                return Err(ValidatorSetError::ZeroPower {
                    key: hex::encode(key),
                });
            }
            total = total
                .checked_add(power)
                .filter(|t| *t <= MAX_TOTAL_VOTING_POWER)
                .ok_or(ValidatorSetError::PowerOverflow)?;
            validators.push(Validator::new(key, power)?);
        }
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        validators.sort_by_key(|v| v.address);
        if let Some(pair) = validators.windows(2).find(|w| w[0].address == w[1].address) {
            return Err(ValidatorSetError::DuplicateKey {
                key: pair[0].address.to_string(),
            });
        }
        Ok(ValidatorSet {
            validators,
            total_power: total,
        })
    }

    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    pub fn len(&self) -> usize {
        self.validators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    pub fn total_power(&self) -> VotingPower {
        self.total_power
    }

    pub fn get(&self, address: &Address) -> Option<&Validator> {
        self.validators
            .binary_search_by(|v| v.address.cmp(address))
            .ok()
            .map(|i| &self.validators[i])
    }

    /// The proposer of `height` and `round`: round-robin over the set in address
    /// order, `(height + round) mod n`. Voting power does not weight the choice.
    pub fn proposer(&self, height: Height, round: Round) -> &Validator {
        // A set is never empty (checked in `new`), and n <= MAX_VALIDATORS.
        let n = self.validators.len() as u64;
        let round = u64::from(round.as_u32().unwrap_or(0));
        let index = (height.0 % n + round % n) % n;
        &self.validators[usize::try_from(index).unwrap_or(0)]
    }
}

impl mct::ValidatorSet<SettleContext> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }

    fn total_voting_power(&self) -> VotingPower {
        self.total_power
    }

    fn get_by_address(&self, address: &Address) -> Option<&Validator> {
        self.get(address)
    }

    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

/// A prevote or precommit by one validator, for a block or for nil. Settle uses no
/// vote extensions: a vote never carries one, and one offered by the engine is
/// dropped.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Vote {
    pub vote_type: VoteType,
    pub height: Height,
    pub round: Round,
    pub value: NilOrVal<BlockId>,
    pub validator: Address,
}

impl mct::Vote<SettleContext> for Vote {
    fn height(&self) -> Height {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &NilOrVal<BlockId> {
        &self.value
    }

    fn take_value(self) -> NilOrVal<BlockId> {
        self.value
    }

    fn vote_type(&self) -> VoteType {
        self.vote_type
    }

    fn validator_address(&self) -> &Address {
        &self.validator
    }

    fn extension(&self) -> Option<&SignedExtension<SettleContext>> {
        None
    }

    fn take_extension(&mut self) -> Option<SignedExtension<SettleContext>> {
        None
    }

    fn extend(self, _extension: SignedExtension<SettleContext>) -> Self {
        // Vote extensions are disabled for every height (VoteExtensionPolicy::Disabled).
        self
    }
}

/// A proposal: the proposer offers the block `value` at `height` and `round`;
/// `pol_round` is the round of the proof of lock it re-proposes, or nil.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct Proposal {
    pub height: Height,
    pub round: Round,
    pub value: BlockId,
    pub pol_round: Round,
    pub proposer: Address,
}

impl mct::Proposal<SettleContext> for Proposal {
    fn height(&self) -> Height {
        self.height
    }

    fn round(&self) -> Round {
        self.round
    }

    fn value(&self) -> &BlockId {
        &self.value
    }

    fn take_value(self) -> BlockId {
        self.value
    }

    fn pol_round(&self) -> Round {
        self.pol_round
    }

    fn validator_address(&self) -> &Address {
        &self.proposer
    }
}

/// One message of the stream that carries a proposed block: `Init`, then the
/// block's bytes cut into `Data` chunks, then `Fin` with the proposer's signature.
///
/// `Transactions` is not part of a block stream: Malachite's network has no channel
/// for transactions, so they are gossiped as one-message streams on the same
/// proposal-parts topic, reaching exactly the permitted peers consensus reaches.
///
/// `Undecodable` is never sent: the codec hands it to the driver in place of
/// proposal-part gossip whose bytes do not decode, so that the publisher can be
/// charged with it (`spec/consensus.md`, "Misbehaving peers"). Its Borsh tag (4) is
/// reserved; a peer that sends it is treated as having sent undecodable bytes.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub enum ProposalPart {
    Init(ProposalInit),
    Data(ProposalData),
    Fin(ProposalFin),
    Transactions(TxBatch),
    Undecodable(UndecodablePart),
}

/// Stands for proposal-part gossip that did not decode (see [`ProposalPart`]).
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct UndecodablePart {
    /// Length of the bytes received.
    pub len: u32,
    /// Why they did not decode.
    pub reason: String,
}

/// Most transactions in one gossiped batch.
pub const MAX_GOSSIP_BATCH_TXS: usize = 1_000;

/// Transactions gossiped between nodes: each is its canonical encoding, decoded and
/// fully validated by the receiving node's mempool.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct TxBatch {
    pub txs: Vec<Vec<u8>>,
}

/// Opens a proposal stream: whose block, for which height and round, and how long.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct ProposalInit {
    pub height: Height,
    pub round: Round,
    pub pol_round: Round,
    pub proposer: Address,
    /// Length of the encoded block in bytes.
    pub block_len: u32,
}

/// A chunk of the encoded block.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct ProposalData {
    pub bytes: Vec<u8>,
}

/// Closes a proposal stream: the proposer's BIP340 signature over
/// [`crate::signing::proposal_parts_digest`], which binds the stream to the hash, the
/// length and every byte of the block it carries.
#[derive(Clone, PartialEq, Eq, Debug, BorshSerialize, BorshDeserialize)]
pub struct ProposalFin {
    pub signature: Signature,
}

impl mct::ProposalPart<SettleContext> for ProposalPart {
    fn is_first(&self) -> bool {
        matches!(self, ProposalPart::Init(_))
    }

    fn is_last(&self) -> bool {
        matches!(self, ProposalPart::Fin(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> [u8; 32] {
        let sk = secp256k1::SecretKey::from_byte_array([seed; 32]).expect("valid secret");
        let kp = secp256k1::Keypair::from_secret_key(secp256k1::SECP256K1, &sk);
        kp.x_only_public_key().0.serialize()
    }

    #[test]
    fn validator_set_is_sorted_and_checked() {
        let set = ValidatorSet::new([(key(3), 1), (key(1), 2), (key(2), 3)]).expect("valid set");
        let addrs: Vec<_> = set.validators().iter().map(|v| v.address).collect();
        let mut sorted = addrs.clone();
        sorted.sort();
        assert_eq!(addrs, sorted);
        assert_eq!(set.total_power(), 6);

        assert_eq!(ValidatorSet::new(Vec::new()), Err(ValidatorSetError::Empty));
        assert!(matches!(
            ValidatorSet::new([(key(1), 0)]),
            Err(ValidatorSetError::ZeroPower { .. })
        ));
        assert!(matches!(
            ValidatorSet::new([(key(1), 1), (key(1), 1)]),
            Err(ValidatorSetError::DuplicateKey { .. })
        ));
        assert!(matches!(
            ValidatorSet::new([([0u8; 32], 1)]),
            Err(ValidatorSetError::InvalidKey { .. })
        ));
        assert_eq!(
            ValidatorSet::new([(key(1), MAX_TOTAL_VOTING_POWER), (key(2), 1)]),
            Err(ValidatorSetError::PowerOverflow)
        );
    }

    #[test]
    fn proposer_rotates_through_every_validator() {
        let set = ValidatorSet::new((1..=4).map(|s| (key(s), 1))).expect("valid set");
        let mut seen: Vec<Address> = (1..=4u64)
            .map(|h| set.proposer(Height(h), Round::new(0)).address)
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 4);
        // The next round at the same height moves to the next validator.
        assert_ne!(
            set.proposer(Height(7), Round::new(0)).address,
            set.proposer(Height(7), Round::new(1)).address
        );
    }
}
