//! Chain specs: parsing, clear errors naming the field, genesis and the chain id, read
//! from the vectors in `spec/vectors/chainspec-*`.
#![allow(clippy::panic)] // a test fails by panicking

use std::path::PathBuf;

use secp256k1::{Keypair, SECP256K1};
use serde_json::Value;
use settle_assets::encode::{deserialize, serialize};
use settle_assets::hash::{AssetId, BlockHash};
use settle_chain::{Block, ChainSpec, MemoryState, Network, SpecError, ValidatorSet};

fn vector_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../spec/vectors")
        .join(name)
}

fn read(name: &str) -> String {
    let path = vector_path(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn json(name: &str) -> Value {
    serde_json::from_str(&read(name)).expect("valid JSON")
}

fn hex32(v: &Value) -> [u8; 32] {
    hex::decode(v.as_str().expect("hex"))
        .expect("hex")
        .try_into()
        .expect("32 bytes")
}

#[test]
fn the_example_spec_gives_the_recorded_genesis_and_chain_id() {
    let expected = json("chainspec-example.json");
    let spec = ChainSpec::from_toml_str(&read("chainspec-example.toml")).expect("valid spec");
    assert_eq!(spec.network, Network::Test);
    assert_eq!(spec.validators.len(), 4);
    assert_eq!(
        spec.validators.total_power(),
        expected["total_voting_power"].as_u64().expect("n")
    );
    assert_eq!(
        spec.validators.hash(),
        hex32(&expected["validator_set_hash"])
    );
    assert_eq!(spec.params_hash(), hex32(&expected["params_hash"]));
    let genesis = spec.genesis().expect("genesis");
    assert_eq!(genesis.chain_id.0, hex32(&expected["chain_id"]));
    assert_eq!(genesis.chain_id.0, genesis.block.hash().0);
    let header = &genesis.block.header;
    assert_eq!(header.height, 0);
    assert_eq!(header.prev_hash, BlockHash(spec.params_hash()));
    assert_eq!(header.merkle_root, hex32(&expected["merkle_root"]));
    assert_eq!(header.utxo_commitment, hex32(&expected["utxo_commitment"]));
    assert!(genesis.block.certificate.signatures.is_empty());
    let encoded = hex::decode(expected["genesis_block"].as_str().expect("hex")).expect("hex");
    assert_eq!(serialize(&genesis.block), encoded);
    assert_eq!(deserialize::<Block>(&encoded), Ok(genesis.block.clone()));

    let allocations = expected["allocations"].as_array().expect("array");
    for (tx, a) in genesis.block.transactions.iter().zip(allocations) {
        assert_eq!(tx.txid().0, hex32(&a["txid"]));
        let units: Vec<u64> = tx.outputs.iter().map(|o| o.amount.units()).collect();
        let want: Vec<u64> = a["units"]
            .as_array()
            .expect("array")
            .iter()
            .map(|u| u.as_u64().expect("n"))
            .collect();
        assert_eq!(units, want);
        assert!(
            tx.outputs
                .iter()
                .all(|o| o.asset == AssetId(hex32(&a["asset"])))
        );
    }
    // The genesis effects register both assets with their full supply.
    let state = MemoryState::from_genesis(&genesis);
    assert_eq!(state.coins().count(), 3);
    assert_eq!(state.recompute_commitment(), header.utxo_commitment);
    let mut supplies: Vec<u128> = state.assets().map(|(_, a)| a.outstanding()).collect();
    supplies.sort_unstable();
    assert_eq!(supplies, vec![10_000, 125_000_050]);
}

#[test]
fn every_mistake_is_named() {
    let base = read("chainspec-example.toml");
    let cases = json("chainspec-errors.json");
    let cases = cases["cases"].as_array().expect("cases");
    assert!(cases.len() >= 15);
    for case in cases {
        let what = case["description"].as_str().expect("description");
        let from = case["replace"].as_str().expect("replace");
        let to = case["with"].as_str().expect("with");
        assert!(
            base.contains(from),
            "{what}: {from:?} is not in the example"
        );
        let text = base.replacen(from, to, 1);
        let err = ChainSpec::from_toml_str(&text).expect_err(what).to_string();
        for needle in case["error_contains"].as_array().expect("strings") {
            let needle = needle.as_str().expect("string");
            assert!(
                err.contains(needle),
                "{what}: {err:?} does not contain {needle:?}"
            );
        }
    }
}

#[test]
fn a_written_spec_reads_back_with_its_chain_id() {
    let spec = ChainSpec::from_toml_str(&read("chainspec-example.toml")).expect("valid");
    let text = spec.to_toml_string().expect("writable");
    assert!(text.contains(&format!("chain_id = \"{}\"", spec.chain_id().expect("id"))));
    let back = ChainSpec::from_toml_str(&text).expect("reads back");
    assert_eq!(back, spec);
    assert_eq!(back.chain_id(), spec.chain_id());
    // Editing a rule in the written file breaks the stated chain id.
    let edited = text.replace("max_block_txs = 20000", "max_block_txs = 19999");
    assert!(matches!(
        ChainSpec::from_toml_str(&edited),
        Err(SpecError::ChainIdMismatch { .. })
    ));
}

#[test]
fn the_dev_spec_has_one_validator_and_one_issuer_for_every_class() {
    let validator = Keypair::from_seckey_byte_array(SECP256K1, [1; 32]).expect("key");
    let issuer = Keypair::from_seckey_byte_array(SECP256K1, [2; 32]).expect("key");
    let spec = ChainSpec::dev(
        &validator.x_only_public_key().0,
        &issuer.x_only_public_key().0,
        1_700_000_000_000,
    );
    assert_eq!(spec.network, Network::Dev);
    assert_eq!(spec.validators.len(), 1);
    let issuer_key = issuer.x_only_public_key().0.serialize();
    assert_eq!(spec.issuers.cash, vec![issuer_key]);
    assert_eq!(spec.issuers.security, vec![issuer_key]);
    assert_eq!(spec.issuers.lending_position, vec![issuer_key]);
    let text = spec.to_toml_string().expect("writable");
    let back = ChainSpec::from_toml_str(&text).expect("reads back");
    assert_eq!(back, spec);
    let genesis = spec.genesis().expect("genesis");
    assert!(genesis.block.transactions.is_empty());
    assert_eq!(genesis.block.header.merkle_root, [0; 32]);
    assert_eq!(
        genesis.block.header.utxo_commitment,
        settle_chain::MuHash3072::new().finalize()
    );
    // Different keys, different chain.
    let other = ChainSpec::dev(
        &issuer.x_only_public_key().0,
        &validator.x_only_public_key().0,
        1_700_000_000_000,
    );
    assert_ne!(other.chain_id().expect("id"), genesis.chain_id);
}

#[test]
fn changing_any_rule_changes_the_chain_id() {
    let spec = ChainSpec::from_toml_str(&read("chainspec-example.toml")).expect("valid");
    let id = spec.chain_id().expect("id");
    let mut a = spec.clone();
    a.issuers.cash.push(a.issuers.security[0]);
    let mut b = spec.clone();
    b.limits.max_block_bytes -= 1;
    let mut c = spec.clone();
    c.genesis_time_ms += 1;
    let mut d = spec.clone();
    let mut validators = d.validators.validators().to_vec();
    validators[0].power += 1;
    d.validators = ValidatorSet::new(validators).expect("valid");
    let mut e = spec.clone();
    e.name = "another name".into();
    for changed in [&a, &b, &c, &d] {
        assert_ne!(changed.chain_id().expect("id"), id);
    }
    assert_eq!(e.chain_id().expect("id"), id, "the name is a label only");
    // The issuer registry is a set: order does not matter.
    let mut f = spec.clone();
    f.issuers.lending_position.reverse();
    assert_eq!(f.chain_id().expect("id"), id);
}

#[test]
fn oversized_or_garbage_specs_are_refused_without_panicking() {
    assert!(matches!(
        ChainSpec::from_toml_str(&"#".repeat(settle_chain::limits::MAX_CHAIN_SPEC_BYTES + 1)),
        Err(SpecError::TooLarge { .. })
    ));
    for garbage in [
        "",
        "name = ",
        "[[validators]]\nkey = 5",
        "\u{0}\u{1}",
        "name = \"x\"\nnetwork = \"dev\"\ngenesis_time_ms = 1\nvalidators = []",
    ] {
        assert!(ChainSpec::from_toml_str(garbage).is_err(), "{garbage:?}");
    }
}

#[test]
fn a_lending_position_allocation_round_trips_through_toml() {
    use settle_assets::amount::Amount;
    use settle_assets::contract::{AssetClass, AssetContract, LendingTerms};
    use settle_chain::{Allocation, AllocationOutput};
    use settle_script::addresses::Address;

    let key = |seed: u8| {
        Keypair::from_seckey_byte_array(SECP256K1, [seed; 32])
            .expect("key")
            .x_only_public_key()
            .0
    };
    let mut spec = ChainSpec::dev(&key(1), &key(2), 1_700_000_000_000);
    let terms = LendingTerms {
        isin: "US0378331005".into(),
        security_asset: AssetId([1; 32]),
        quantity: 10,
        lender: key(3).serialize(),
        borrower: key(4).serialize(),
        collateral_asset: AssetId([2; 32]),
        collateral_amount: 1_500,
        fee_asset: AssetId([2; 32]),
        fee: 15,
        interest_rate_bps: 125,
        settlement_height: 10,
        maturity_height: 1_000,
        grace_period_blocks: 20,
        negotiator: Some("desk 7".into()),
        lender_player: None,
    };
    spec.allocations.push(Allocation {
        contract: AssetContract {
            class: AssetClass::LendingPosition(Box::new(terms)),
            name: "Loan 1".into(),
            ticker: "LOAN1".into(),
            precision: 0,
            issuer: key(2).serialize(),
            reissuable: false,
        },
        outputs: vec![AllocationOutput {
            address: Address::p2k(Network::Dev, &key(3)).to_string(),
            script_pubkey: settle_script::templates::p2k(&key(3)),
            amount: Amount::ONE,
        }],
    });
    let text = spec.to_toml_string().expect("writable");
    let back = ChainSpec::from_toml_str(&text).expect("reads back");
    assert_eq!(back, spec);
    assert_eq!(back.chain_id(), spec.chain_id());
}
