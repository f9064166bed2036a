//! Settle's script VM.
//!
//! - [`interpreter`]: the stack machine (no loops, bounded by the [`limits`]);
//! - [`sighash`]: what signatures commit to, with per-transaction precomputation;
//! - [`verify`]: spending rules of the output programs, `verify_input` /
//!   `verify_transaction`, and the lock time helpers for the node;
//! - [`templates`]: pay-to-key, pay-to-script-hash, multisig, HTLC and burn scripts, their
//!   witnesses, a script [`Builder`], and [`classify`];
//! - [`lending`]: the securities-lending escrow (script, witnesses, the lender's return
//!   pre-signature) and the shape of a loan opening;
//! - [`sign`]: signing helpers; [`asm`]: the text form; [`addresses`]: bech32m addresses.
//!
//! The normative text is `spec/script.md`, `spec/sighash.md`, `spec/addresses.md` and
//! `spec/lending.md`; the vectors in `spec/vectors/` are checked against this crate by
//! its tests.

pub mod addresses;
pub mod asm;
pub mod error;
pub mod instruction;
pub mod interpreter;
pub mod lending;
pub mod limits;
pub mod num;
pub mod opcodes;
pub mod sighash;
pub mod sign;
pub mod templates;
pub mod verify;

pub use addresses::{Address, AddressError, Network};
pub use asm::{AsmError, assemble, disassemble};
pub use error::{InputError, ScriptError};
pub use interpreter::{Checker, execute};
pub use sighash::{PrecomputedTx, SighashType, verify_issuance_signature};
pub use sign::{
    SignError, sign_issuance, sign_p2k_input, sign_schnorr, sign_schnorr_no_aux_rand,
    sign_script_input,
};
pub use templates::{
    Builder, ScriptKind, TemplateError, burn_script, classify, htlc_claim_witness,
    htlc_refund_witness, htlc_script, multisig_script, multisig_witness, p2k, p2k_witness, p2sh,
    p2sh_witness,
};
pub use verify::{
    CoinConfirmation, SequenceLock, TransactionChecker, is_final, sequence_lock, sig_check_budget,
    verify_input, verify_transaction, witness_encoded_bytes,
};

/// Re-exported so users name the same key types the API takes.
pub use secp256k1;

/// Issuance digest of input `input` of a prepared transaction (see
/// [`PrecomputedTx::issuance_digest`]).
pub fn issuance_digest(cache: &PrecomputedTx<'_>, input: usize) -> Result<[u8; 32], ScriptError> {
    cache.issuance_digest(input)
}
