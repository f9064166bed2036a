//! The Settle transaction data model.
//!
//! Every output is *coloured*: it carries an [`AssetId`] and an [`Amount`]. This crate
//! holds the types, their canonical binary encoding (kept apart from serde), asset
//! contracts, identifiers and the per-asset conservation rule. It does no I/O.
//!
//! The normative description lives in `spec/encoding.md`, `spec/transactions.md` and
//! `spec/assets.md`; the vectors in `spec/vectors/` are checked against this crate.

pub mod amount;
pub mod check;
pub mod conservation;
pub mod contract;
pub mod encode;
pub mod hash;
pub mod limits;
pub mod transaction;

pub use amount::{Amount, AmountParseError};
pub use check::{TxCheckError, check_transaction};
pub use conservation::{AssetImbalance, ConservationError, check_conservation};
pub use contract::{AssetClass, AssetContract, ContractError, LendingTerms};
pub use encode::{Decode, DecodeError, Encode, Reader, deserialize, serialize};
pub use hash::{AssetId, BlockHash, ChainId, ContractHash, Txid, Wtxid, tagged_hash};
pub use transaction::{Issuance, IssuanceKind, OutPoint, Transaction, TxIn, TxOut, Witness};

/// The first byte of a provably unspendable output script (`OP_RETURN`). An output whose
/// script starts with it is a burn: it never enters the UTXO set and leaves the supply.
pub const OP_RETURN: u8 = 0x6a;
