//! The bodies of Settle's fuzz targets, one function per decoder of outside input.
//!
//! Each function takes arbitrary bytes, must never panic, and checks what a decoder
//! promises: whatever decodes re-encodes to the same bytes (canonical encodings) or at
//! least to bytes that decode to the same value. `cargo fuzz` drives them through the
//! binaries in `fuzz_targets/` (see `fuzz/README.md`); the normal test suite replays
//! every saved corpus and crash input through the same functions (`tests/replay.rs`),
//! so a fixed crash stays fixed.
//!
//! A failed check panics on purpose: that is how a fuzzer learns of a bug.

#![allow(clippy::panic, clippy::unwrap_used)]

use std::sync::OnceLock;

use bytes::Bytes;
use malachitebft_app_channel::app::types::codec::Codec;
use settle_assets::{AssetContract, Decode, Encode, Reader, Transaction, deserialize, serialize};
use settle_chain::{Block, ChainSpec};
use settle_consensus::codec::SettleCodec;

/// A fuzz target: takes any bytes, panics only on a bug.
pub type Target = fn(&[u8]);

/// Every target by name, as the replay test and the README list them.
pub const TARGETS: &[(&str, Target)] = &[
    ("transaction", transaction),
    ("block", block),
    ("pst", pst),
    ("consensus", consensus),
    ("contract", contract),
    ("chain_spec", chain_spec),
    ("script", script),
    ("rpc", rpc),
];

/// Decodes `data` as `T`; what decodes must re-encode to exactly `data` (one encoding
/// per value, `spec/encoding.md`).
fn canonical<T: Decode + Encode>(data: &[u8]) -> Option<T> {
    let value = deserialize::<T>(data).ok()?;
    assert_eq!(
        serialize(&value),
        data,
        "{} re-encodes differently",
        T::NAME
    );
    Some(value)
}

/// A transaction: canonical round trip, then the context-free checks and the hashes,
/// which must not panic on anything that decodes.
pub fn transaction(data: &[u8]) {
    // A prefix that decodes leaves the rest unread; a reader must stop cleanly.
    let mut reader = Reader::new(data);
    let _ = Transaction::decode(&mut reader);
    if let Some(tx) = canonical::<Transaction>(data) {
        let _ = settle_assets::check_transaction(&tx);
        let spent = vec![settle_assets::TxOut::NONE; tx.inputs.len()];
        let _ = settle_assets::check_conservation(&tx, &spent);
        let _ = (tx.txid(), tx.wtxid());
    }
}

/// A block: canonical round trip and the merkle root of what decodes.
pub fn block(data: &[u8]) {
    if let Some(block) = canonical::<Block>(data) {
        let _ = block.compute_merkle_root();
        let _ = block.hash();
        let _ = block.size_without_certificate();
    }
}

/// A partially signed transaction, binary and base64: what decodes re-encodes to the
/// same bytes (the PST encoding is canonical, `spec/pst.md`), and the analysis that
/// `settle pst analyze` prints never panics.
pub fn pst(data: &[u8]) {
    use settle_wallet::pst::Pst;
    if let Ok(pst) = Pst::deserialize(data) {
        assert_eq!(pst.serialize(), data, "a PST re-encodes differently");
        assert_eq!(Pst::from_base64(&pst.to_base64()).as_ref(), Ok(&pst));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Pst::from_base64(text);
    }
}

/// Encodes what `decode` produced and checks that encoding is stable: decoding the
/// encoding and encoding again gives the same bytes.
fn codec_round_trip<T>(data: &[u8])
where
    SettleCodec: Codec<T>,
{
    let codec = SettleCodec;
    let Ok(value) = codec.decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    // The undecodable-input marker is refused by the encoder on purpose.
    let Ok(first) = codec.encode(&value) else {
        return;
    };
    let again = codec
        .decode(first.clone())
        .unwrap_or_else(|_| panic!("an encoding does not decode"));
    let second = codec
        .encode(&again)
        .unwrap_or_else(|_| panic!("re-encoding failed"));
    assert_eq!(first, second, "the consensus encoding is not stable");
}

/// Every consensus message type a peer can send (and the WAL stores): the first byte
/// picks the type, the rest is the message.
pub fn consensus(data: &[u8]) {
    use malachitebft_app_channel::app::consensus::LivenessMsg;
    use malachitebft_app_channel::app::types::streaming::StreamMessage;
    use malachitebft_app_channel::app::types::sync::{Request, Response, Status};
    use malachitebft_app_channel::app::types::{ProposedValue, SignedConsensusMsg};
    use settle_consensus::SettleContext;
    use settle_consensus::types::ProposalPart;
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    match kind % 8 {
        0 => codec_round_trip::<SignedConsensusMsg<SettleContext>>(rest),
        1 => codec_round_trip::<LivenessMsg<SettleContext>>(rest),
        2 => codec_round_trip::<ProposalPart>(rest),
        3 => codec_round_trip::<StreamMessage<ProposalPart>>(rest),
        4 => codec_round_trip::<ProposedValue<SettleContext>>(rest),
        5 => codec_round_trip::<Status<SettleContext>>(rest),
        6 => codec_round_trip::<Request<SettleContext>>(rest),
        _ => codec_round_trip::<Response<SettleContext>>(rest),
    }
}

/// An asset contract, as JSON text and as canonical bytes: a contract that parses
/// has one canonical form, which parses back to the same contract.
pub fn contract(data: &[u8]) {
    if let Ok(parsed) = AssetContract::from_canonical_bytes(data) {
        let bytes = parsed
            .to_canonical_bytes()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            bytes, data,
            "canonical contract bytes re-encode differently"
        );
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(parsed) = AssetContract::from_json(text)
        && let Ok(bytes) = parsed.to_canonical_bytes()
    {
        assert_eq!(
            AssetContract::from_canonical_bytes(&bytes).as_ref(),
            Ok(&parsed)
        );
    }
}

/// A chain spec in TOML: what parses either fails validation with an error or yields
/// a genesis block, and writing it out and parsing again gives the same spec.
pub fn chain_spec(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(spec) = ChainSpec::from_toml_str(text) else {
        return;
    };
    let _ = spec.genesis();
    let _ = spec.chain_id();
    if let Ok(written) = spec.to_toml_string() {
        let again = ChainSpec::from_toml_str(&written).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            again.params_hash(),
            spec.params_hash(),
            "the spec changed on the way"
        );
    }
}

/// The script interpreter on a random script and witness under a fixed transaction
/// and sighash: the script is spent as pay-to-script-hash and as a bare output.
/// Layout: one byte for the witness item count (mod 8), then items as
/// `<len byte><bytes>`, the rest is the script.
pub fn script(data: &[u8]) {
    use settle_assets::{AssetId, ChainId, OutPoint, TxIn, TxOut, Txid, Witness};
    let Some((&count, mut rest)) = data.split_first() else {
        return;
    };
    let mut items = Vec::new();
    for _ in 0..count % 8 {
        let Some((&len, tail)) = rest.split_first() else {
            break;
        };
        let len = usize::from(len).min(tail.len());
        items.push(tail[..len].to_vec());
        rest = &tail[len..];
    }
    let script = rest.to_vec();
    for (witness, script_pubkey) in [
        (
            [items.clone(), vec![script.clone()]].concat(),
            settle_script::p2sh(&script),
        ),
        (items, script.clone()),
    ] {
        let tx = Transaction {
            version: 1,
            inputs: vec![TxIn {
                witness: Witness(witness),
                ..TxIn::spending(OutPoint::new(Txid([3; 32]), 0))
            }],
            outputs: vec![TxOut {
                asset: AssetId([1; 32]),
                amount: settle_assets::Amount::from_units(1).unwrap(),
                script_pubkey: vec![],
            }],
            lock_time: 500,
            expiry_height: 0,
        };
        let spent = [TxOut {
            asset: AssetId([1; 32]),
            amount: settle_assets::Amount::from_units(1).unwrap(),
            script_pubkey,
        }];
        if let Ok(cache) = settle_script::PrecomputedTx::new(&tx, &spent, ChainId::ZERO) {
            let _ = settle_script::verify_input(&cache, 0);
        }
    }
    let text = settle_script::disassemble(&script);
    assert_eq!(
        settle_script::assemble(&text).as_ref(),
        Ok(&script),
        "asm round trip"
    );
}

/// A development node on a temporary RocksDB, opened once per process.
struct RpcNode {
    _dir: tempfile::TempDir,
    node: settle_node::node::Node,
}

fn rpc_node() -> &'static RpcNode {
    static NODE: OnceLock<RpcNode> = OnceLock::new();
    NODE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let key = |b: u8| {
            secp256k1::Keypair::from_seckey_byte_array(secp256k1::SECP256K1, [b; 32]).unwrap()
        };
        let spec = ChainSpec::dev(
            &key(1).x_only_public_key().0,
            &key(2).x_only_public_key().0,
            1_700_000_000_000,
        );
        let mut config = settle_node::config::Config::default();
        config.storage.sync_writes = false;
        let node = settle_node::node::Node::open(
            &dir.path().join("chainstate"),
            spec,
            "spec",
            config,
            Some(key(1)),
        )
        .unwrap();
        RpcNode { _dir: dir, node }
    })
}

/// Methods whose effect reaches beyond the node's own state (stopping it, dialling
/// peers), left out so the fuzzer exercises parameters, not process control.
const RPC_SKIPPED: &[&str] = &["stop", "addpeer", "removepeer"];

/// A JSON-RPC call: the first byte picks a method, the rest is its params as JSON
/// text, handed to the same dispatcher the HTTP server uses, on a real node. Every
/// outcome is a result or an RPC error, never a panic. Also parses the rest as a
/// whole request envelope.
pub fn rpc(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let _ = serde_json::from_slice::<settle_rpc::Request>(rest);
    let methods = settle_node::rpc::METHODS;
    let method = methods[usize::from(pick) % methods.len()];
    if RPC_SKIPPED.contains(&method) {
        return;
    }
    let Ok(params) = serde_json::from_slice::<serde_json::Value>(rest) else {
        return;
    };
    let _ = settle_node::rpc::call(&rpc_node().node, method, &params);
}
