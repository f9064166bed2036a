//! The consensus test vectors of `spec/vectors/consensus.json`, and settle-chain's
//! precommit vector in `spec/vectors/blocks.json`: the digests validators sign, a
//! signature, a peer id and two wire encodings must come out byte for byte.

use malachitebft_app_channel::app::types::SignedConsensusMsg;
use malachitebft_app_channel::app::types::codec::Codec;
use malachitebft_core_types::{NilOrVal, Round, SignedMessage, VoteType};
use secp256k1::{Keypair, SECP256K1, SecretKey};
use settle_assets::{BlockHash, ChainId};
use settle_consensus::SettleContext;
use settle_consensus::codec::SettleCodec;
use settle_consensus::identity::peer_id_of;
use settle_consensus::signing::{
    PrivateKey, Signature, precommit_digest, proposal_digest, proposal_parts_digest, sign_digest,
    validator_proof_digest, verify_digest, vote_digest,
};
use settle_consensus::types::{
    Address, BlockId, Height, Proposal, ProposalInit, ProposalPart, TxBatch, Vote,
};

fn vectors(name: &str) -> serde_json::Value {
    let path = format!("{}/../../spec/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("read {path}: {e}"))
        .expect("the vector file is readable");
    serde_json::from_str(&text).expect("vectors are JSON")
}

fn hex32(v: &serde_json::Value, field: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_field(v, field), &mut out)
        .map_err(|e| format!("{field}: {e}"))
        .expect("a 32-byte hex field");
    out
}

fn hex_field(v: &serde_json::Value, field: &str) -> String {
    v[field]
        .as_str()
        .ok_or_else(|| format!("{field} is missing or not a string"))
        .expect("a string field")
        .to_string()
}

#[test]
fn consensus_vectors() {
    let v = vectors("consensus.json");
    let chain = ChainId(hex32(&v, "chain_id"));
    let block = BlockHash(hex32(&v, "block_hash"));
    let height = Height(v["height"].as_u64().expect("height"));
    let round = Round::new(u32::try_from(v["round"].as_u64().expect("round")).expect("u32"));
    let sk = SecretKey::from_byte_array(hex32(&v, "secret_key")).expect("secret");
    let key = PrivateKey::new(Keypair::from_secret_key(SECP256K1, &sk));
    let validator = key.address();
    assert_eq!(validator, Address(hex32(&v, "validator")));

    let id = BlockId::from_block_hash(block);
    let vote = |vote_type, value| Vote {
        vote_type,
        height,
        round,
        value,
        validator,
    };
    let precommit = vote(VoteType::Precommit, NilOrVal::Val(id));
    let digests = [
        ("precommit_digest", vote_digest(&chain, &precommit)),
        (
            "prevote_digest",
            vote_digest(&chain, &vote(VoteType::Prevote, NilOrVal::Val(id))),
        ),
        (
            "precommit_nil_digest",
            vote_digest(&chain, &vote(VoteType::Precommit, NilOrVal::Nil)),
        ),
        (
            "prevote_nil_digest",
            vote_digest(&chain, &vote(VoteType::Prevote, NilOrVal::Nil)),
        ),
    ];
    for (field, digest) in digests {
        assert_eq!(hex::encode(digest), hex_field(&v, field), "{field}");
    }

    let proposal = Proposal {
        height,
        round,
        value: id,
        pol_round: Round::Nil,
        proposer: validator,
    };
    assert_eq!(
        hex::encode(proposal_digest(&chain, &proposal)),
        hex_field(&v, "proposal_digest_pol_nil")
    );
    let relocked = Proposal {
        pol_round: Round::new(1),
        ..proposal
    };
    assert_eq!(
        hex::encode(proposal_digest(&chain, &relocked)),
        hex_field(&v, "proposal_digest_pol_1")
    );
    let block = hex::decode(hex_field(&v, "proposal_parts_block")).expect("hex block");
    assert_eq!(
        hex::encode(proposal_parts_digest(
            &chain,
            height,
            round,
            Round::Nil,
            &id,
            &block
        )),
        hex_field(&v, "proposal_parts_digest_pol_nil")
    );
    // Every byte of the block is signed: one more, one fewer or one changed byte
    // gives another digest (a replayed header with another body is refused).
    let digest = proposal_parts_digest(&chain, height, round, Round::Nil, &id, &block);
    let mut longer = block.clone();
    longer.push(0);
    let mut changed = block.clone();
    changed[0] ^= 1;
    for other in [&longer[..], &block[..block.len() - 1], &changed[..]] {
        assert_ne!(
            proposal_parts_digest(&chain, height, round, Round::Nil, &id, other),
            digest
        );
    }

    let peer = peer_id_of(&validator.0).expect("peer id");
    assert_eq!(peer.to_string(), hex_field(&v, "peer_id"));
    assert_eq!(
        hex::encode(validator_proof_digest(&validator.0, &peer.to_bytes())),
        hex_field(&v, "validator_proof_digest")
    );

    let signature = sign_digest(&key, &vote_digest(&chain, &precommit));
    assert_eq!(
        hex::encode(signature.0),
        hex_field(&v, "precommit_signature")
    );
    assert!(verify_digest(
        &key.public_key(),
        &vote_digest(&chain, &precommit),
        &signature
    ));
    let mut flipped = signature;
    flipped.0[0] ^= 1;
    assert!(!verify_digest(
        &key.public_key(),
        &vote_digest(&chain, &precommit),
        &flipped
    ));

    let message = SignedConsensusMsg::<SettleContext>::Vote(SignedMessage::new(
        precommit,
        Signature(signature.0),
    ));
    let encoded = SettleCodec.encode(&message).expect("encodes");
    assert_eq!(
        hex::encode(&encoded),
        hex_field(&v, "signed_precommit_message")
    );
    let decoded: SignedConsensusMsg<SettleContext> = SettleCodec.decode(encoded).expect("decodes");
    assert_eq!(decoded, message);

    let init = ProposalPart::Init(ProposalInit {
        height,
        round,
        pol_round: Round::Nil,
        proposer: validator,
        block_len: 1000,
    });
    assert_eq!(
        hex::encode(SettleCodec.encode(&init).expect("encodes")),
        hex_field(&v, "proposal_init_part")
    );

    let batch = ProposalPart::Transactions(TxBatch {
        txs: vec![vec![1, 2, 3], Vec::new()],
    });
    let encoded = SettleCodec.encode(&batch).expect("encodes");
    assert_eq!(hex::encode(&encoded), hex_field(&v, "transactions_part"));
    let decoded: ProposalPart = SettleCodec.decode(encoded).expect("decodes");
    assert_eq!(decoded, batch);
}

/// settle-chain's precommit vector: the digest consensus signs is the digest a
/// certificate is checked against.
#[test]
fn precommit_digest_matches_the_chain_vector() {
    let v = &vectors("blocks.json")["precommit"];
    let chain = ChainId(hex32(v, "chain_id"));
    let block = BlockHash(hex32(v, "block_hash"));
    let height = v["height"].as_u64().expect("height");
    let round = u32::try_from(v["round"].as_u64().expect("round")).expect("u32");
    assert_eq!(
        hex::encode(precommit_digest(&chain, height, round, &block)),
        hex_field(v, "digest")
    );
}
