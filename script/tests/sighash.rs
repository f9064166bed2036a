//! Signature hashes: the vectors in `spec/vectors/sighash.json`, an independent
//! re-implementation of the message layout of `spec/sighash.md`, and what each hash
//! type does and does not cover.

mod common;

use bitcoin_hashes::{HashEngine, sha256};
use common::*;
use settle_assets::encode::{deserialize, serialize};
use settle_assets::hash::tagged_hash;
use settle_assets::{ChainId, IssuanceKind, Transaction, TxIn, TxOut};
use settle_script::{PrecomputedTx, ScriptError, SighashType, verify_issuance_signature};

fn load() -> SighashVectors {
    let text = std::fs::read_to_string(vectors_dir().join("sighash.json")).expect("readable");
    serde_json::from_str(&text).expect("sighash.json parses")
}

fn decode_case(tx: &str, spent: &[String]) -> (Transaction, Vec<TxOut>) {
    let tx: Transaction = deserialize(&hex_decode(tx)).expect("vector transaction decodes");
    let spent = spent
        .iter()
        .map(|s| deserialize::<TxOut>(&hex_decode(s)).expect("vector output decodes"))
        .collect();
    (tx, spent)
}

fn sha(data: &[u8]) -> [u8; 32] {
    sha256::Hash::hash(data).to_byte_array()
}

/// The issuance entry exactly as `spec/sighash.md` words it.
fn issuance_entry(input: &TxIn) -> Vec<u8> {
    let Some(iss) = &input.issuance else {
        return vec![0];
    };
    let mut out = vec![1];
    match &iss.kind {
        IssuanceKind::New { contract } => {
            out.push(1);
            settle_assets::encode::write_var_bytes(&mut out, contract);
        }
        IssuanceKind::Reissue { asset } => {
            out.push(2);
            out.extend_from_slice(asset.as_bytes());
        }
    }
    out.extend_from_slice(&iss.amount.units().to_le_bytes());
    out
}

fn spent_or_none<'a>(tx: &Transaction, spent: &'a [TxOut], i: usize) -> &'a TxOut {
    static NONE: TxOut = TxOut::NONE;
    if tx.inputs[i].prevout.is_null() {
        &NONE
    } else {
        &spent[i]
    }
}

struct Shared {
    prevouts: [u8; 32],
    spent: [u8; 32],
    sequences: [u8; 32],
    issuances: [u8; 32],
    outputs: [u8; 32],
}

fn shared(tx: &Transaction, spent: &[TxOut]) -> Shared {
    let cat =
        |f: &dyn Fn(usize) -> Vec<u8>, n: usize| sha(&(0..n).flat_map(f).collect::<Vec<u8>>());
    let n = tx.inputs.len();
    Shared {
        prevouts: cat(&|i| serialize(&tx.inputs[i].prevout), n),
        spent: cat(&|i| serialize(spent_or_none(tx, spent, i)), n),
        sequences: cat(&|i| tx.inputs[i].sequence.to_le_bytes().to_vec(), n),
        issuances: cat(&|i| issuance_entry(&tx.inputs[i]), n),
        outputs: cat(&|i| serialize(&tx.outputs[i]), tx.outputs.len()),
    }
}

/// The sighash message of `spec/sighash.md`, built field by field.
fn reference_sighash(
    tx: &Transaction,
    spent: &[TxOut],
    chain: ChainId,
    input: usize,
    t: SighashType,
    script_code: &[u8],
) -> Result<[u8; 32], &'static str> {
    let s = shared(tx, spent);
    let mut m = Vec::new();
    m.extend_from_slice(chain.as_bytes());
    m.push(t.to_byte());
    m.extend_from_slice(&tx.version.to_le_bytes());
    m.extend_from_slice(&tx.lock_time.to_le_bytes());
    m.extend_from_slice(&tx.expiry_height.to_le_bytes());
    let acp = t.to_byte() & 0x80 != 0;
    let base = t.to_byte() & 0x7f;
    if !acp {
        for h in [s.prevouts, s.spent, s.sequences, s.issuances] {
            m.extend_from_slice(&h);
        }
    }
    if base == 1 {
        m.extend_from_slice(&s.outputs);
    }
    if acp {
        m.extend(serialize(&tx.inputs[input].prevout));
        m.extend(serialize(spent_or_none(tx, spent, input)));
        m.extend_from_slice(&tx.inputs[input].sequence.to_le_bytes());
        m.extend(issuance_entry(&tx.inputs[input]));
    } else {
        m.extend_from_slice(&u32::try_from(input).expect("small index").to_le_bytes());
    }
    if base == 3 {
        let out = tx.outputs.get(input).ok_or("SIGHASH_SINGLE_NO_OUTPUT")?;
        m.extend_from_slice(&sha(&serialize(out)));
    }
    m.extend_from_slice(&sha(script_code));
    Ok(tagged_hash("Settle/Sighash", &m))
}

fn reference_issuance_digest(
    tx: &Transaction,
    spent: &[TxOut],
    chain: ChainId,
    input: usize,
) -> [u8; 32] {
    let s = shared(tx, spent);
    let mut m = Vec::new();
    m.extend_from_slice(chain.as_bytes());
    m.extend_from_slice(&tx.version.to_le_bytes());
    m.extend_from_slice(&tx.lock_time.to_le_bytes());
    m.extend_from_slice(&tx.expiry_height.to_le_bytes());
    for h in [s.prevouts, s.spent, s.sequences, s.issuances, s.outputs] {
        m.extend_from_slice(&h);
    }
    m.extend_from_slice(&u32::try_from(input).expect("small index").to_le_bytes());
    tagged_hash("Settle/Issuance", &m)
}

#[test]
fn sighash_vectors_match_the_library_and_the_spec_text() {
    let v = load();
    assert!(v.sighash.len() >= 10);
    let mut seen_types = std::collections::BTreeSet::new();
    let mut errors = 0;
    for case in &v.sighash {
        let (tx, spent) = decode_case(&case.tx, &case.spent);
        let t: SighashType = case.hash_type.parse().expect("hash type name");
        seen_types.insert(t.to_byte());
        let code = hex_decode(&case.script_code);
        let cache = PrecomputedTx::new(&tx, &spent, case.chain_id).expect("counts match");
        let got = cache.sighash(case.input, t, &code);
        let reference = reference_sighash(&tx, &spent, case.chain_id, case.input, t, &code);
        match (&case.digest, &case.error) {
            (Some(d), None) => {
                assert_eq!(
                    got.map(hex::encode).as_deref(),
                    Ok(d.as_str()),
                    "{}",
                    case.description
                );
                assert_eq!(
                    reference.map(hex::encode).as_deref(),
                    Ok(d.as_str()),
                    "{}",
                    case.description
                );
            }
            (None, Some(e)) => {
                errors += 1;
                assert_eq!(
                    got.map_err(|x| x.name()),
                    Err(e.as_str()),
                    "{}",
                    case.description
                );
                assert_eq!(
                    reference.map_err(|x| x.to_string()),
                    Err(e.clone()),
                    "{}",
                    case.description
                );
            }
            _ => unreachable!("a case has a digest or an error"),
        }
    }
    assert_eq!(seen_types.len(), 6, "all six hash types appear");
    assert!(errors >= 1, "SINGLE without an output appears");
}

#[test]
fn issuance_vectors_match_and_their_signatures_verify() {
    let v = load();
    assert!(!v.issuance.is_empty());
    for case in &v.issuance {
        let (tx, spent) = decode_case(&case.tx, &case.spent);
        let cache = PrecomputedTx::new(&tx, &spent, case.chain_id).expect("counts match");
        let digest = cache.issuance_digest(case.input).expect("in range");
        assert_eq!(hex::encode(digest), case.digest, "{}", case.description);
        assert_eq!(
            reference_issuance_digest(&tx, &spent, case.chain_id, case.input),
            digest
        );
        let issuer: [u8; 32] = hex_decode(&case.issuer).try_into().expect("32 bytes");
        let mut sig: [u8; 64] = hex_decode(&case.signature).try_into().expect("64 bytes");
        assert_eq!(verify_issuance_signature(&digest, &sig, &issuer), Ok(()));
        sig[0] ^= 1;
        assert_eq!(
            verify_issuance_signature(&digest, &sig, &issuer),
            Err(ScriptError::SigInvalid)
        );
        sig[0] ^= 1;
        assert_eq!(
            verify_issuance_signature(&digest, &sig, &invalid_xonly()),
            Err(ScriptError::PubkeyType)
        );
        let other = cache
            .issuance_digest(1 - case.input.min(1))
            .expect("in range");
        assert_ne!(other, digest, "the digest commits to the input index");
    }
}

/// Digests of input `i` for every hash type, with a placeholder script code.
fn all_digests(tx: &Transaction, spent: &[TxOut], i: usize) -> Vec<Result<[u8; 32], ScriptError>> {
    let cache = PrecomputedTx::new(tx, spent, ChainId([0x5e; 32])).expect("counts");
    SighashType::ALL_TYPES
        .iter()
        .map(|t| cache.sighash(i, *t, b"code"))
        .collect()
}

/// Which of the six digests (ALL, NONE, SINGLE, and the ANYONECANPAY forms) of input
/// `i` change when `edit` is applied.
fn changed(edit: impl Fn(&mut Transaction, &mut Vec<TxOut>), i: usize) -> [bool; 6] {
    let v = load();
    let (tx, spent) = decode_case(&v.sighash[0].tx, &v.sighash[0].spent);
    let before = all_digests(&tx, &spent, i);
    let (mut tx2, mut spent2) = (tx.clone(), spent.clone());
    edit(&mut tx2, &mut spent2);
    let after = all_digests(&tx2, &spent2, i);
    let mut out = [false; 6];
    for k in 0..6 {
        out[k] = before[k] != after[k];
    }
    out
}

#[test]
fn each_hash_type_covers_what_it_says() {
    // Order: ALL, NONE, SINGLE, ALL|ACP, NONE|ACP, SINGLE|ACP. Input 1 of the vector
    // transaction; it has output 1 at its index.
    let t = true;
    let f = false;
    // Witness data is never committed.
    assert_eq!(
        changed(|tx, _| tx.inputs[1].witness.0.push(vec![1]), 1),
        [f; 6]
    );
    assert_eq!(
        changed(
            |tx, _| tx.inputs[0].issuance.as_mut().expect("issuance").signature = None,
            1
        ),
        [f; 6]
    );
    // Transaction-wide fields are always committed.
    assert_eq!(changed(|tx, _| tx.lock_time += 1, 1), [t; 6]);
    assert_eq!(changed(|tx, _| tx.expiry_height += 1, 1), [t; 6]);
    // This input's own spent output (asset, amount, script) and sequence: always.
    assert_eq!(changed(|_, s| s[1].amount = units(701), 1), [t; 6]);
    assert_eq!(changed(|_, s| s[1].asset.0[0] ^= 1, 1), [t; 6]);
    assert_eq!(changed(|tx, _| tx.inputs[1].sequence ^= 1, 1), [t; 6]);
    // Another input: only without ANYONECANPAY.
    assert_eq!(
        changed(|tx, _| tx.inputs[2].sequence ^= 1, 1),
        [t, t, t, f, f, f]
    );
    assert_eq!(
        changed(|_, s| s[2].amount = units(4), 1),
        [t, t, t, f, f, f]
    );
    assert_eq!(
        changed(|tx, _| tx.inputs[2].issuance = None, 1),
        [t, t, t, f, f, f]
    );
    // The output at this input's index: ALL and SINGLE; another output: ALL only.
    assert_eq!(
        changed(|tx, _| tx.outputs[1].amount = units(1), 1),
        [t, f, t, t, f, t]
    );
    assert_eq!(
        changed(|tx, _| tx.outputs[1].script_pubkey.push(0), 1),
        [t, f, t, t, f, t]
    );
    assert_eq!(
        changed(|tx, _| tx.outputs[0].asset.0[0] ^= 1, 1),
        [t, f, f, t, f, f]
    );
    // The null input's spent-output filler is ignored (TxOut::NONE is hashed).
    assert_eq!(changed(|_, s| s[0].amount = units(99), 1), [f; 6]);
}

#[test]
fn script_code_and_chain_are_committed() {
    let v = load();
    let (tx, spent) = decode_case(&v.sighash[0].tx, &v.sighash[0].spent);
    let a = PrecomputedTx::new(&tx, &spent, ChainId([1; 32])).expect("counts");
    let b = PrecomputedTx::new(&tx, &spent, ChainId([2; 32])).expect("counts");
    for t in SighashType::ALL_TYPES {
        assert_ne!(a.sighash(1, t, b"x"), b.sighash(1, t, b"x"));
        assert_ne!(a.sighash(1, t, b"x"), a.sighash(1, t, b"y"));
    }
    assert_ne!(a.issuance_digest(0), b.issuance_digest(0));
}

#[test]
fn precomputation_refuses_a_wrong_spent_count() {
    let v = load();
    let (tx, mut spent) = decode_case(&v.sighash[0].tx, &v.sighash[0].spent);
    spent.pop();
    assert_eq!(
        PrecomputedTx::new(&tx, &spent, ChainId::ZERO).map(|_| ()),
        Err(ScriptError::SpentCount)
    );
}

#[test]
fn hash_engine_helper_is_plain_sha256() {
    // Guards the reference implementation above against a mistaken helper.
    let mut e = sha256::HashEngine::default();
    e.input(b"abc");
    assert_eq!(
        hex::encode(sha256::Hash::from_engine(e).to_byte_array()),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(sha(b"abc"), sha256::Hash::hash(b"abc").to_byte_array());
}
