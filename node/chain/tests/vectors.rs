//! The vectors in `spec/vectors/` (written by an independent implementation,
//! `node/chain/tools/gen_vectors.py`) checked against this crate.
#![allow(clippy::panic)] // a test fails by panicking

use std::path::PathBuf;

use secp256k1::{Keypair, SECP256K1};
use serde_json::Value;
use settle_assets::amount::Amount;
use settle_assets::encode::{deserialize, serialize};
use settle_assets::hash::{AssetId, BlockHash, ChainId, Txid, Wtxid};
use settle_assets::transaction::{OutPoint, TxOut};
use settle_chain::muhash::element_number_bytes;
use settle_chain::{
    Coin, Header, MuHash3072, Validator, ValidatorSet, merkle_root, precommit_digest,
    sign_precommit, utxo_element,
};

fn load(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../spec/vectors")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("valid JSON")
}

fn bytes(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn arr32(v: &Value) -> [u8; 32] {
    bytes(v).try_into().expect("32 bytes")
}

fn list(v: &Value) -> &Vec<Value> {
    v.as_array().expect("array")
}

fn u64_of(v: &Value) -> u64 {
    v.as_u64().expect("integer")
}

#[test]
fn muhash_element_numbers() {
    let v = load("muhash.json");
    let cases = list(&v["element_numbers"]);
    assert!(!cases.is_empty());
    for case in cases {
        let element = bytes(&case["element"]);
        assert_eq!(
            element_number_bytes(&element).to_vec(),
            bytes(&case["number"]),
            "element {}",
            hex::encode(&element)
        );
    }
}

#[test]
fn muhash_set_digests_in_any_order() {
    let v = load("muhash.json");
    let cases = list(&v["sets"]);
    assert!(cases.len() >= 5);
    for case in cases {
        let insert: Vec<Vec<u8>> = list(&case["insert"]).iter().map(bytes).collect();
        let remove: Vec<Vec<u8>> = list(&case["remove"]).iter().map(bytes).collect();
        let expected = arr32(&case["digest"]);
        let what = case["description"].as_str().unwrap_or("?");
        // Inserts first, removes first, and each in reverse: one digest.
        let mut a = MuHash3072::new();
        insert.iter().for_each(|e| a.insert(e));
        remove.iter().for_each(|e| a.remove(e));
        let mut b = MuHash3072::new();
        remove.iter().rev().for_each(|e| b.remove(e));
        insert.iter().rev().for_each(|e| b.insert(e));
        assert_eq!(a.finalize(), expected, "{what}");
        assert_eq!(b.finalize(), expected, "{what} (other order)");
        assert_eq!(a, b);
        // The stored, normalised state gives the same digest.
        a.normalize();
        let back = MuHash3072::from_bytes(&a.to_bytes()).expect("valid state");
        assert_eq!(back.finalize(), expected, "{what} (normalised)");
    }
}

#[test]
fn muhash_utxo_elements() {
    let v = load("muhash.json");
    for case in list(&v["utxo"]) {
        let c = &case["coin"];
        let outpoint = OutPoint::new(
            Txid(arr32(&c["txid"])),
            u32::try_from(u64_of(&c["vout"])).expect("u32"),
        );
        let coin = Coin {
            output: TxOut {
                asset: AssetId(arr32(&c["asset"])),
                amount: Amount::from_units(u64_of(&c["amount"])).expect("amount"),
                script_pubkey: bytes(&c["script_pubkey"]),
            },
            height: u64_of(&c["height"]),
            time_ms: u64_of(&c["time_ms"]),
        };
        assert_eq!(utxo_element(&outpoint, &coin), bytes(&case["element"]));
        let mut h = MuHash3072::new();
        h.insert_coin(&outpoint, &coin);
        assert_eq!(h.finalize(), arr32(&case["digest"]));
        assert_eq!(deserialize::<Coin>(&serialize(&coin)), Ok(coin));
    }
}

#[test]
fn merkle_roots() {
    let v = load("blocks.json");
    let cases = list(&v["merkle"]);
    assert!(cases.len() >= 6);
    for case in cases {
        let wtxids: Vec<Wtxid> = list(&case["wtxids"])
            .iter()
            .map(|w| Wtxid(arr32(w)))
            .collect();
        assert_eq!(
            merkle_root(&wtxids),
            arr32(&case["root"]),
            "{} leaves",
            wtxids.len()
        );
    }
}

#[test]
fn validator_set_hash() {
    let v = &load("blocks.json")["validator_set"];
    let mut validators = Vec::new();
    for (i, entry) in list(&v["validators"]).iter().enumerate() {
        let kp = Keypair::from_seckey_byte_array(SECP256K1, arr32(&entry["secret"]))
            .expect("valid secret");
        let key = kp.x_only_public_key().0.serialize();
        assert_eq!(key, arr32(&entry["key"]), "validator {i} key");
        validators.push(Validator {
            name: format!("v{i}"),
            key,
            power: u64_of(&entry["power"]),
        });
    }
    // The hash does not depend on the order the validators are listed in.
    validators.reverse();
    let set = ValidatorSet::new(validators).expect("valid set");
    assert_eq!(set.hash(), arr32(&v["hash"]));
}

#[test]
fn header_encoding_and_hash() {
    let v = &load("blocks.json")["header"];
    let f = &v["fields"];
    let header = Header {
        version: u32::try_from(u64_of(&f["version"])).expect("u32"),
        height: u64_of(&f["height"]),
        prev_hash: BlockHash(arr32(&f["prev_hash"])),
        time_ms: u64_of(&f["time_ms"]),
        merkle_root: arr32(&f["merkle_root"]),
        utxo_commitment: arr32(&f["utxo_commitment"]),
        validator_set_hash: arr32(&f["validator_set_hash"]),
        proposer: arr32(&f["proposer"]),
    };
    let encoding = bytes(&v["encoding"]);
    assert_eq!(serialize(&header), encoding);
    assert_eq!(encoding.len(), settle_chain::limits::HEADER_BYTES);
    assert_eq!(deserialize::<Header>(&encoding), Ok(header));
    assert_eq!(header.hash(), BlockHash(arr32(&v["hash"])));
}

#[test]
fn precommit_digest_and_signature() {
    let v = &load("blocks.json")["precommit"];
    let chain_id = ChainId(arr32(&v["chain_id"]));
    let height = u64_of(&v["height"]);
    let round = u32::try_from(u64_of(&v["round"])).expect("u32");
    let block_hash = BlockHash(arr32(&v["block_hash"]));
    let digest = precommit_digest(&chain_id, height, round, &block_hash);
    assert_eq!(digest, arr32(&v["digest"]));
    // A signature made by sign_precommit verifies as BIP340 over that digest.
    let kp = Keypair::from_seckey_byte_array(SECP256K1, [11; 32]).expect("valid");
    let sig = sign_precommit(&kp, &chain_id, height, round, &block_hash);
    let s = secp256k1::schnorr::Signature::from_byte_array(sig.signature);
    SECP256K1
        .verify_schnorr(&s, &digest, &kp.x_only_public_key().0)
        .expect("valid BIP340 signature");
}

/// `spec/chain.md`, "Membership changes": the membership hash, the signed digest, the
/// body and transaction encodings, the result of the edits, and bodies that must not
/// decode. The hash and digest are also recomputed here from the spec's formulas.
#[test]
fn membership_change() {
    use settle_chain::{Membership, MembershipChange, MembershipError, MembershipState};
    let v = load("membership.json");
    let chain_id = ChainId(arr32(&v["chain_id"]));
    let set = |list: &Value| {
        ValidatorSet::new(
            self::list(list)
                .iter()
                .map(|x| Validator {
                    name: String::new(),
                    key: arr32(&x["key"]),
                    power: u64_of(&x["power"]),
                })
                .collect(),
        )
        .expect("valid set")
    };
    let keys = |list: &Value| -> Vec<[u8; 32]> { self::list(list).iter().map(arr32).collect() };
    let m = &v["membership"];
    let membership =
        Membership::new(set(&m["validators"]), keys(&m["permitted"])).expect("membership");
    assert_eq!(
        membership.validators.hash(),
        arr32(&m["validator_set_hash"])
    );
    assert_eq!(membership.hash(), arr32(&m["hash"]));
    // TaggedHash("Settle/Membership", validator_set_hash || compact_size(k) || keys).
    let mut data = arr32(&m["validator_set_hash"]).to_vec();
    data.push(u8::try_from(membership.permitted.len()).expect("few"));
    for k in &membership.permitted {
        data.extend_from_slice(k);
    }
    assert_eq!(
        settle_assets::hash::tagged_hash("Settle/Membership", &data),
        membership.hash()
    );

    let c = &v["change"];
    let body = bytes(&c["body"]);
    let change: MembershipChange = deserialize(&body).expect("the body decodes");
    assert_eq!(serialize(&change), body);
    assert_eq!(change.activation_height, u64_of(&c["activation_height"]));
    assert_eq!(change.base, membership.hash());
    assert_eq!(change.digest(&chain_id), arr32(&c["digest"]));
    // The digest covers chain id || body without its signature list.
    let unsigned_len = 1 + 8 + 32 + 1 + change.ops.len() * 41;
    let mut data = chain_id.as_bytes().to_vec();
    data.extend_from_slice(&body[..unsigned_len]);
    assert_eq!(
        settle_assets::hash::tagged_hash("Settle/MembershipChange", &data),
        change.digest(&chain_id)
    );
    let tx = change.to_transaction();
    assert_eq!(serialize(&tx), bytes(&c["transaction"]));
    assert_eq!(tx.txid().to_string(), c["txid"].as_str().expect("txid"));
    assert_eq!(
        MembershipChange::from_transaction(&deserialize(&bytes(&c["transaction"])).expect("tx")),
        Ok(change.clone())
    );
    let pending = change
        .check(
            &MembershipState::settled(membership.clone()),
            u64_of(&c["included_at_height"]),
            &chain_id,
            tx.txid(),
        )
        .expect("a quorum signed");
    let r = &v["result"];
    assert_eq!(
        pending.membership.validators.hash(),
        set(&r["validators"]).hash()
    );
    assert_eq!(pending.membership.permitted, keys(&r["permitted"]));
    assert_eq!(pending.membership.hash(), arr32(&r["hash"]));

    for case in list(&v["invalid_bodies"]) {
        let err = deserialize::<MembershipChange>(&bytes(&case["body"]))
            .expect_err(case["name"].as_str().expect("name"));
        let want = case["error"].as_str().expect("error");
        assert!(
            MembershipError::Decode(err.clone())
                .to_string()
                .contains(want),
            "{}: {err} does not name {want}",
            case["name"]
        );
    }
}
