//! Signing helpers for the wallet and the tests. Secret keys never leave the
//! `Keypair`; nothing here logs or stores them.

use secp256k1::{Keypair, SECP256K1, schnorr};
use settle_assets::Witness;

use crate::error::ScriptError;
use crate::sighash::{PrecomputedTx, SighashType};
use crate::templates::{ScriptKindRef, classify_ref, p2k_witness};

/// Why an input could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    #[error("cannot compute the signature hash of input {input}: {error}")]
    Sighash { input: usize, error: ScriptError },
    #[error("input {input} spends nothing (null outpoint): there is no output to sign for")]
    NullInput { input: usize },
    #[error("input {input} does not spend a pay-to-key output")]
    NotPayToKey { input: usize },
    #[error("input {input} is locked to another key than the one given")]
    WrongKey { input: usize },
}

/// Appends the hash type byte unless the type is ALL (whose signature is 64 bytes).
pub fn encode_signature(sig: &schnorr::Signature, hash_type: SighashType) -> Vec<u8> {
    let mut out = Vec::with_capacity(65);
    out.extend_from_slice(sig.as_byte_array());
    if hash_type != SighashType::All {
        out.push(hash_type.to_byte());
    }
    out
}

/// Signs `digest` with fresh auxiliary randomness (BIP340's recommended form) and
/// encodes the signature for `hash_type` (64 bytes for ALL, else 65).
pub fn sign_schnorr(keypair: &Keypair, digest: &[u8; 32], hash_type: SighashType) -> Vec<u8> {
    encode_signature(&SECP256K1.sign_schnorr(digest, keypair), hash_type)
}

/// Like [`sign_schnorr`] but deterministic (no auxiliary randomness): for test vectors.
pub fn sign_schnorr_no_aux_rand(
    keypair: &Keypair,
    digest: &[u8; 32],
    hash_type: SighashType,
) -> Vec<u8> {
    encode_signature(
        &SECP256K1.sign_schnorr_no_aux_rand(digest, keypair),
        hash_type,
    )
}

/// Signs input `input` for a script other than pay-to-key (pay-to-script-hash: the
/// witness script; bare: the output script). Returns the encoded signature.
pub fn sign_script_input(
    cache: &PrecomputedTx<'_>,
    input: usize,
    script_code: &[u8],
    keypair: &Keypair,
    hash_type: SighashType,
) -> Result<Vec<u8>, SignError> {
    let digest = cache
        .sighash(input, hash_type, script_code)
        .map_err(|error| SignError::Sighash { input, error })?;
    Ok(sign_schnorr(keypair, &digest, hash_type))
}

/// Signs input `input`, which spends a pay-to-key output locked to `keypair`'s key,
/// and returns its complete witness.
pub fn sign_p2k_input(
    cache: &PrecomputedTx<'_>,
    input: usize,
    keypair: &Keypair,
    hash_type: SighashType,
) -> Result<Witness, SignError> {
    let txin = cache.tx().inputs.get(input).ok_or(SignError::Sighash {
        input,
        error: ScriptError::InputIndex,
    })?;
    if txin.prevout.is_null() {
        return Err(SignError::NullInput { input });
    }
    let script_pubkey = &cache
        .spent_output(input)
        .ok_or(SignError::Sighash {
            input,
            error: ScriptError::InputIndex,
        })?
        .script_pubkey;
    let ScriptKindRef::PayToKey(key) = classify_ref(script_pubkey) else {
        return Err(SignError::NotPayToKey { input });
    };
    if *key != keypair.x_only_public_key().0.serialize() {
        return Err(SignError::WrongKey { input });
    }
    let sig = sign_script_input(cache, input, script_pubkey, keypair, hash_type)?;
    Ok(p2k_witness(sig))
}

/// Signs the issuance on input `input` as its issuer.
pub fn sign_issuance(
    cache: &PrecomputedTx<'_>,
    input: usize,
    keypair: &Keypair,
) -> Result<[u8; 64], SignError> {
    let digest = cache
        .issuance_digest(input)
        .map_err(|error| SignError::Sighash { input, error })?;
    Ok(SECP256K1.sign_schnorr(&digest, keypair).to_byte_array())
}
