//! Writes the seed corpus of every fuzz target into `fuzz/corpus/<target>/`, from the
//! spec's vectors and from values built here (a genesis block, consensus messages):
//!
//! ```sh
//! cargo run -p settle-fuzz --example seed_corpus
//! ```
//!
//! Files are named by the SHA-256 of their content, as `cargo fuzz` names the inputs
//! it adds, so running this again adds nothing twice.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use bitcoin_hashes::sha256;
use malachitebft_app_channel::app::streaming::StreamContent;
use malachitebft_app_channel::app::types::codec::Codec;
use malachitebft_app_channel::app::types::streaming::{StreamId, StreamMessage};
use malachitebft_core_types::{NilOrVal, Round, SignedMessage, VoteType};
use serde_json::Value;
use settle_chain::ChainSpec;
use settle_consensus::codec::SettleCodec;
use settle_consensus::signing::Signature;
use settle_consensus::types::{
    Address, BlockId, Height, ProposalData, ProposalFin, ProposalInit, ProposalPart, TxBatch, Vote,
};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn vectors(name: &str) -> Value {
    let path = root().join("../spec/vectors").join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).expect("vector file")).expect("json")
}

/// Every string under `value` stored at a key for which `pick` says yes.
fn strings(value: &Value, pick: &dyn Fn(&str) -> bool, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match v {
                    Value::String(s) if pick(key) => out.push(s.clone()),
                    _ => strings(v, pick, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| strings(v, pick, out)),
        _ => {}
    }
}

fn hex_fields(file: &str, pick: &dyn Fn(&str) -> bool) -> Vec<Vec<u8>> {
    let mut found = Vec::new();
    strings(&vectors(file), pick, &mut found);
    found.iter().filter_map(|s| hex::decode(s).ok()).collect()
}

fn write(target: &str, seeds: &[Vec<u8>]) {
    let dir = root().join("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("corpus directory");
    for seed in seeds {
        let name = sha256::Hash::hash(seed).to_string();
        std::fs::write(dir.join(name), seed).expect("write a seed");
    }
    println!("{target}: {} seeds", seeds.len());
}

fn consensus_seeds(tx: &[u8]) -> Vec<Vec<u8>> {
    let codec = SettleCodec;
    let address = Address::from_byte_array([7; 32]);
    let vote = Vote {
        vote_type: VoteType::Precommit,
        height: Height::new(3),
        round: Round::new(0),
        value: NilOrVal::Val(BlockId([9; 32])),
        validator: address,
    };
    let signed = malachitebft_app_channel::app::types::SignedConsensusMsg::Vote(
        SignedMessage::new(vote, Signature([5; 64])),
    );
    let init = ProposalPart::Init(ProposalInit {
        height: Height::new(3),
        round: Round::new(0),
        pol_round: Round::Nil,
        proposer: address,
        block_len: 4,
    });
    let parts = [
        init,
        ProposalPart::Data(ProposalData {
            bytes: vec![1, 2, 3, 4],
        }),
        ProposalPart::Fin(ProposalFin {
            signature: Signature([6; 64]),
        }),
        ProposalPart::Transactions(TxBatch {
            txs: vec![tx.to_vec()],
        }),
    ];
    let mut seeds = vec![[vec![0], codec.encode(&signed).unwrap().to_vec()].concat()];
    for part in &parts {
        seeds.push([vec![2], codec.encode(part).unwrap().to_vec()].concat());
        let msg = StreamMessage::new(
            StreamId::new(bytes::Bytes::from_static(&[1, 2])),
            0,
            StreamContent::Data(part.clone()),
        );
        seeds.push([vec![3], codec.encode(&msg).unwrap().to_vec()].concat());
    }
    seeds
}

/// One seed per script case: its witness items (all but a P2SH script) and the script
/// that runs, in the target's layout.
fn write_script_seeds() {
    let parse = |text: &str| match text.strip_prefix("asm:") {
        Some(asm) => settle_script::assemble(asm).ok(),
        None => hex::decode(text).ok(),
    };
    let mut seeds = vec![vec![1, 1, 1, 0x87]];
    let cases = vectors("script_cases.json");
    for case in cases["cases"].as_array().expect("cases") {
        let Some(spk) = case["script_pubkey"]
            .as_str()
            .and_then(|s| settle_script::assemble(s).ok())
        else {
            continue;
        };
        let mut items: Vec<Vec<u8>> = case["witness"]
            .as_array()
            .map(|w| {
                w.iter()
                    .filter_map(|i| i.as_str().and_then(parse))
                    .collect()
            })
            .unwrap_or_default();
        let is_p2sh = case["witness"]
            .as_array()
            .and_then(|w| w.last())
            .and_then(Value::as_str)
            .is_some_and(|s| s.starts_with("asm:"));
        let script = if is_p2sh {
            items.pop().unwrap_or_default()
        } else {
            spk
        };
        let mut seed = vec![u8::try_from(items.len().min(7)).expect("small")];
        for item in items.iter().take(7) {
            let len = item.len().min(255);
            seed.push(u8::try_from(len).expect("at most 255"));
            seed.extend_from_slice(&item[..len]);
        }
        seed.extend_from_slice(&script);
        seeds.push(seed);
    }
    write("script", &seeds);
}

fn rpc_seeds() -> Vec<Vec<u8>> {
    let params = [
        "[]",
        "[0]",
        "[1, true]",
        "[\"00\"]",
        "{\"height\": 0}",
        "[\"0000000000000000000000000000000000000000000000000000000000000000\", 2]",
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"getblock\",\"params\":[]}",
    ];
    let methods = u8::try_from(settle_node::rpc::METHODS.len()).expect("few methods");
    (0..methods)
        .flat_map(|m| {
            params
                .iter()
                .map(move |p| [vec![m], p.as_bytes().to_vec()].concat())
        })
        .collect()
}

fn main() {
    let transactions = hex_fields("transactions.json", &|k| k == "hex" || k == "base_hex");
    write("transaction", &transactions);
    let keypair =
        |b: u8| secp256k1::Keypair::from_seckey_byte_array(secp256k1::SECP256K1, [b; 32]).unwrap();
    let spec = ChainSpec::dev(
        &keypair(1).x_only_public_key().0,
        &keypair(2).x_only_public_key().0,
        1_700_000_000_000,
    );
    let genesis = spec.genesis().expect("dev genesis");
    write("block", &[settle_assets::serialize(&genesis.block)]);
    let mut pst = hex_fields("pst.json", &|k| k == "hex");
    let mut base64 = Vec::new();
    strings(&vectors("pst.json"), &|k| k == "base64", &mut base64);
    pst.extend(base64.into_iter().map(String::into_bytes));
    write("pst", &pst);
    write("consensus", &consensus_seeds(&transactions[0]));
    let mut contracts = Vec::new();
    strings(
        &vectors("contracts.json"),
        &|k| k == "json" || k == "canonical",
        &mut contracts,
    );
    write(
        "contract",
        &contracts
            .into_iter()
            .map(String::into_bytes)
            .collect::<Vec<_>>(),
    );
    let mut specs = vec![spec.to_toml_string().expect("toml").into_bytes()];
    let example = root().join("../spec/vectors/chainspec-example.toml");
    specs.push(std::fs::read(example).expect("example spec"));
    let mut broken = Vec::new();
    strings(
        &vectors("chainspec-errors.json"),
        &|k| k == "spec" || k == "toml",
        &mut broken,
    );
    specs.extend(broken.into_iter().map(String::into_bytes));
    write("chain_spec", &specs);
    write_script_seeds();
    write("rpc", &rpc_seeds());
}
