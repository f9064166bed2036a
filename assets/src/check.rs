//! Context-free transaction checks: what can be judged from the transaction alone,
//! before looking at the chain. See `spec/transactions.md`, "Validity".

use crate::contract::{AssetContract, ContractError};
use crate::encode::serialize;
use crate::hash::AssetId;
use crate::limits::MAX_TX_SIZE_BYTES;
use crate::transaction::{IssuanceKind, MEMBERSHIP_TX_VERSION, OutPoint, TX_VERSION, Transaction};

/// Why a transaction is invalid on its own. Messages name the input or output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxCheckError {
    #[error(
        "unsupported transaction version {0} ({TX_VERSION} moves assets, {MEMBERSHIP_TX_VERSION} changes membership)"
    )]
    UnsupportedVersion(u32),
    #[error("membership transaction is malformed: {0}")]
    MembershipShape(&'static str),
    #[error("transaction has no inputs")]
    NoInputs,
    #[error("transaction has no outputs")]
    NoOutputs,
    #[error("transaction is {size} bytes, more than the limit of {max}")]
    TooLarge { size: usize, max: usize },
    #[error("output {output} has amount zero")]
    ZeroOutput { output: usize },
    #[error("input {input} issues an amount of zero")]
    ZeroIssuance { input: usize },
    #[error("inputs {first} and {second} both spend {outpoint}")]
    DuplicateInput {
        outpoint: OutPoint,
        first: usize,
        second: usize,
    },
    #[error("input {input} spends nothing (null outpoint) but carries no new issuance")]
    NullInputWithoutNewIssuance { input: usize },
    #[error("input {input} spends nothing (null outpoint) but has witness data")]
    NullInputWithWitness { input: usize },
    #[error("input {input} carries an invalid asset contract: {error}")]
    InvalidContract { input: usize, error: ContractError },
    #[error("inputs {first} and {second} both issue the new asset {asset}")]
    DuplicateNewAsset {
        asset: AssetId,
        first: usize,
        second: usize,
    },
}

/// Checks what can be checked without the chain. Returns the parsed contract of every
/// new issuance, by input index, so callers need not parse them again.
pub fn check_transaction(tx: &Transaction) -> Result<Vec<(usize, AssetContract)>, TxCheckError> {
    if tx.version == MEMBERSHIP_TX_VERSION {
        check_membership_shape(tx)?;
        return Ok(Vec::new());
    }
    if tx.version != TX_VERSION {
        return Err(TxCheckError::UnsupportedVersion(tx.version));
    }
    if tx.inputs.is_empty() {
        return Err(TxCheckError::NoInputs);
    }
    if tx.outputs.is_empty() {
        return Err(TxCheckError::NoOutputs);
    }
    let size = serialize(tx).len();
    if size > MAX_TX_SIZE_BYTES {
        return Err(TxCheckError::TooLarge {
            size,
            max: MAX_TX_SIZE_BYTES,
        });
    }
    if let Some(output) = tx.outputs.iter().position(|o| o.amount.units() == 0) {
        return Err(TxCheckError::ZeroOutput { output });
    }
    let mut seen = std::collections::HashMap::with_capacity(tx.inputs.len());
    let mut new_assets: Vec<(AssetId, usize)> = Vec::new();
    let mut contracts = Vec::new();
    for (i, input) in tx.inputs.iter().enumerate() {
        if input.prevout.is_null() {
            if !matches!(
                input.issuance.as_ref().map(|x| &x.kind),
                Some(IssuanceKind::New { .. })
            ) {
                return Err(TxCheckError::NullInputWithoutNewIssuance { input: i });
            }
            if !input.witness.is_empty() {
                return Err(TxCheckError::NullInputWithWitness { input: i });
            }
        } else if let Some(first) = seen.insert(input.prevout, i) {
            return Err(TxCheckError::DuplicateInput {
                outpoint: input.prevout,
                first,
                second: i,
            });
        }
        if let Some(issuance) = &input.issuance {
            if issuance.amount.units() == 0 {
                return Err(TxCheckError::ZeroIssuance { input: i });
            }
            if let IssuanceKind::New { contract } = &issuance.kind {
                let parsed = AssetContract::from_canonical_bytes(contract)
                    .map_err(|error| TxCheckError::InvalidContract { input: i, error })?;
                let asset = issuance.asset_id(&input.prevout);
                if let Some((_, first)) = new_assets.iter().find(|(a, _)| *a == asset) {
                    return Err(TxCheckError::DuplicateNewAsset {
                        asset,
                        first: *first,
                        second: i,
                    });
                }
                new_assets.push((asset, i));
                contracts.push((i, parsed));
            }
        }
    }
    Ok(contracts)
}

/// The shape of a membership transaction: it moves no asset, so it has no inputs and
/// one output of the zero asset, amount zero, whose script is `OP_RETURN` and the body.
fn check_membership_shape(tx: &Transaction) -> Result<(), TxCheckError> {
    let shape = TxCheckError::MembershipShape;
    if !tx.inputs.is_empty() {
        return Err(shape("it must have no inputs"));
    }
    let [output] = tx.outputs.as_slice() else {
        return Err(shape("it must have exactly one output"));
    };
    if output.asset != AssetId::ZERO || output.amount.units() != 0 {
        return Err(shape(
            "its output must carry the zero asset with amount zero",
        ));
    }
    if tx.membership_body().is_none_or(<[u8]>::is_empty) {
        return Err(shape(
            "its output script must be OP_RETURN followed by the body",
        ));
    }
    if tx.lock_time != 0 {
        return Err(shape("its lock time must be zero"));
    }
    let size = serialize(tx).len();
    if size > MAX_TX_SIZE_BYTES {
        return Err(TxCheckError::TooLarge {
            size,
            max: MAX_TX_SIZE_BYTES,
        });
    }
    Ok(())
}
