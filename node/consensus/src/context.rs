//! Malachite's `Context` for Settle: which types consensus runs on and how votes and
//! proposals are built.

use malachitebft_core_types::{Context, LinearTimeouts, NilOrVal, Round, VoteType};
use settle_assets::ChainId;

use crate::signing::Bip340;
use crate::types::{
    Address, BlockId, Height, Proposal, ProposalPart, Validator, ValidatorSet, Vote,
};

/// The consensus context of one Settle chain. It carries the chain id so that the
/// votes Malachite rebuilds (to check a certificate) hash to what validators signed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SettleContext {
    chain_id: ChainId,
}

impl SettleContext {
    pub fn new(chain_id: ChainId) -> Self {
        SettleContext { chain_id }
    }

    pub fn chain_id(&self) -> &ChainId {
        &self.chain_id
    }
}

impl Context for SettleContext {
    type Address = Address;
    type Height = Height;
    type ProposalPart = ProposalPart;
    type Proposal = Proposal;
    type Validator = Validator;
    type ValidatorSet = ValidatorSet;
    type Timeouts = LinearTimeouts;
    type Value = BlockId;
    type Vote = Vote;
    type Extension = ();
    type SigningScheme = Bip340;

    fn select_proposer<'a>(
        &self,
        validator_set: &'a ValidatorSet,
        height: Height,
        round: Round,
    ) -> &'a Validator {
        validator_set.proposer(height, round)
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: BlockId,
        pol_round: Round,
        address: Address,
    ) -> Proposal {
        Proposal {
            height,
            round,
            value,
            pol_round,
            proposer: address,
        }
    }

    fn new_prevote(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<BlockId>,
        address: Address,
    ) -> Vote {
        Vote {
            vote_type: VoteType::Prevote,
            height,
            round,
            value: value_id,
            validator: address,
        }
    }

    fn new_precommit(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<BlockId>,
        address: Address,
    ) -> Vote {
        Vote {
            vote_type: VoteType::Precommit,
            height,
            round,
            value: value_id,
            validator: address,
        }
    }
}
