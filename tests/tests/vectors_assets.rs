//! Checks the asset layer against the committed vectors in `spec/vectors/`
//! (transactions, asset ids, amounts, contracts). The files are only read here, never
//! written: if code and vectors disagree, one of them has a bug (or the protocol changed
//! and the vectors must be regenerated with `gen_vectors` in the same commit).

// A test reports a failed expectation by panicking, with the vector's name.
#![allow(clippy::panic)]

use std::collections::BTreeSet;

use serde::de::DeserializeOwned;
use settle_assets::contract::{ISO_4217_CODES, isin_check_digit, validate_isin};
use settle_assets::encode::{Reader, write_compact_size};
use settle_assets::limits::{MAX_TX_SIZE_BYTES, MAX_WITNESS_ITEM_BYTES};
use settle_assets::transaction::{contract_hash, new_asset_id};
use settle_assets::{
    Amount, AssetContract, DecodeError, Issuance, IssuanceKind, OutPoint, Transaction,
    TxCheckError, TxIn, TxOut, Witness, check_conservation, check_transaction, deserialize,
    serialize, tagged_hash,
};
use settle_tests::asset_vectors::*;

fn load<T: DeserializeOwned>(name: &str) -> T {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} does not parse: {e}"))
}

fn bytes(hex_str: &str) -> Vec<u8> {
    hex::decode(hex_str).expect("vector hex")
}

fn transactions() -> TransactionVectors {
    load("transactions.json")
}

#[test]
fn valid_transactions_decode_encode_and_hash_as_recorded() {
    let v = transactions();
    assert!(v.valid.len() >= 10, "too few valid transactions");
    for case in &v.valid {
        let name = &case.name;
        let full = bytes(&case.hex);
        let tx: Transaction = deserialize(&full).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(case.tx.to_tx().as_ref(), Ok(&tx), "{name}: fields");
        assert_eq!(serialize(&tx), full, "{name}: re-encoding");
        let mut base = Vec::new();
        tx.encode_base(&mut base);
        assert_eq!(hex::encode(&base), case.base_hex, "{name}: base encoding");
        assert!(full.starts_with(&base), "{name}: base is a prefix of full");
        assert_eq!(
            (full.len(), base.len()),
            (case.size, case.base_size),
            "{name}"
        );
        assert_eq!(tx.size_bytes(), case.size, "{name}");
        assert_eq!(tx.txid().to_string(), case.txid, "{name}: txid");
        assert_eq!(tx.wtxid().to_string(), case.wtxid, "{name}: wtxid");
        // The definitions, independently of the methods.
        assert_eq!(hex::encode(tagged_hash("Settle/Txid", &base)), case.txid);
        assert_eq!(hex::encode(tagged_hash("Settle/Wtxid", &full)), case.wtxid);
        assert_eq!(
            case.txid
                .parse::<settle_assets::Txid>()
                .map(|t| t == tx.txid()),
            Ok(true)
        );
        check_transaction(&tx).unwrap_or_else(|e| panic!("{name}: {e}"));
        let issued: Vec<IssuedJson> = tx
            .issuances()
            .map(|(input, asset, amount)| IssuedJson {
                input,
                asset: asset.to_string(),
                amount: amount.units(),
            })
            .collect();
        assert_eq!(issued, case.issued, "{name}: issuances");
        let burns: Vec<usize> = (0..tx.outputs.len())
            .filter(|&i| tx.outputs[i].is_burn())
            .collect();
        assert_eq!(burns, case.burns, "{name}: burns");
    }
}

#[test]
fn witness_data_is_outside_the_txid() {
    let v = transactions();
    let find = |n: &str| {
        v.valid
            .iter()
            .find(|c| c.name == n)
            .unwrap_or_else(|| panic!("vector {n} missing"))
    };
    let signed = find("issue_cash_on_null_input");
    let unsigned = find("unsigned_issuance");
    assert_eq!(signed.txid, unsigned.txid);
    assert_eq!(signed.base_hex, unsigned.base_hex);
    assert_ne!(signed.wtxid, unsigned.wtxid);
}

#[test]
fn invalid_encodings_fail_with_the_recorded_error() {
    let v = transactions();
    for case in &v.invalid_encoding {
        let got = deserialize::<Transaction>(&bytes(&case.hex));
        match &got {
            Err(e) => assert_eq!(
                decode_error_kind(e),
                (case.error.as_str(), case.what.as_str()),
                "{}: {e}",
                case.name
            ),
            Ok(tx) => panic!("{} decoded: {tx:?}", case.name),
        }
    }
}

#[test]
fn check_failures_are_the_recorded_variant() {
    let v = transactions();
    for case in &v.invalid_check {
        let name = &case.name;
        let tx: Transaction =
            deserialize(&bytes(&case.hex)).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(case.tx.to_tx().as_ref(), Ok(&tx), "{name}: fields");
        let err = check_transaction(&tx).expect_err(name);
        assert_eq!(
            check_error_kind(&err),
            (case.error.as_str(), case.index),
            "{name}: {err}"
        );
        match (&err, &case.contract_error) {
            (TxCheckError::InvalidContract { error, .. }, Some(kind)) => {
                assert_eq!(contract_error_kind(error).0, kind, "{name}")
            }
            (TxCheckError::InvalidContract { .. }, None) => panic!("{name}: no contract error"),
            (_, Some(_)) => panic!("{name}: contract error recorded for {err}"),
            (_, None) => {}
        }
    }
}

#[test]
fn conservation_verdicts_match() {
    let v = transactions();
    assert!(v.conservation.iter().any(|c| c.result == "ok"));
    assert!(v.conservation.iter().any(|c| c.result == "Imbalance"));
    for case in &v.conservation {
        let tx = case.tx.to_tx().expect("tx");
        let spent: Vec<TxOut> = case
            .spent
            .iter()
            .map(|o| o.to_txout().expect("coin"))
            .collect();
        let result = check_conservation(&tx, &spent);
        let (verdict, flows, imbalances) = conservation_outcome(&result);
        assert_eq!(verdict, case.result, "{}: {result:?}", case.name);
        assert_eq!(flows, case.flows, "{}: flows", case.name);
        assert_eq!(imbalances, case.imbalances, "{}: imbalances", case.name);
    }
}

#[test]
fn compact_sizes() {
    let v = transactions();
    for case in &v.compact_size.valid {
        let mut out = Vec::new();
        write_compact_size(&mut out, case.value);
        assert_eq!(hex::encode(&out), case.hex, "writing {}", case.value);
        let encoded = bytes(&case.hex);
        let mut r = Reader::new(&encoded);
        assert_eq!(r.read_compact_size("compact size"), Ok(case.value));
        assert_eq!(r.remaining(), 0);
    }
    for case in &v.compact_size.invalid {
        let encoded = bytes(&case.hex);
        let err = Reader::new(&encoded)
            .read_compact_size("compact size")
            .expect_err(&case.name);
        assert_eq!(
            decode_error_kind(&err),
            (case.error.as_str(), case.what.as_str()),
            "{}",
            case.name
        );
    }
}

/// The vectors must keep covering every error the code can give, so a regenerated file
/// cannot quietly lose a case.
#[test]
fn vectors_cover_every_error_kind() {
    let v = transactions();
    let decode: BTreeSet<&str> = v
        .invalid_encoding
        .iter()
        .chain(&v.compact_size.invalid)
        .map(|c| c.error.as_str())
        .collect();
    for kind in [
        "UnexpectedEnd",
        "NonCanonicalCompactSize",
        "TooMany",
        "TooLarge",
        "Invalid",
        "TrailingBytes",
    ] {
        assert!(decode.contains(kind), "no invalid encoding with {kind}");
    }
    let check: BTreeSet<&str> = v.invalid_check.iter().map(|c| c.error.as_str()).collect();
    // TooLarge cannot be reached by bytes that decode: see `oversized_transaction_*`.
    for kind in [
        "UnsupportedVersion",
        "NoInputs",
        "NoOutputs",
        "ZeroOutput",
        "ZeroIssuance",
        "DuplicateInput",
        "NullInputWithoutNewIssuance",
        "NullInputWithWitness",
        "InvalidContract",
        "DuplicateNewAsset",
    ] {
        assert!(check.contains(kind), "no invalid_check vector for {kind}");
    }
    let c: ContractVectors = load("contracts.json");
    let contract: BTreeSet<&str> = c.invalid.iter().map(|c| c.error.as_str()).collect();
    for kind in [
        "TooLarge",
        "Json",
        "NotCanonical",
        "Missing",
        "Unknown",
        "Invalid",
    ] {
        assert!(contract.contains(kind), "no invalid contract with {kind}");
    }
    let a: AmountVectors = load("amounts.json");
    let amount: BTreeSet<&str> = a.parse.iter().filter_map(|c| c.error.as_deref()).collect();
    for kind in [
        "Empty",
        "Malformed",
        "TooPrecise",
        "TooLarge",
        "BadPrecision",
    ] {
        assert!(amount.contains(kind), "no amount parse case with {kind}");
    }
}

/// A transaction over the size limit is too big for a vector file; it is built here.
fn oversized_transaction() -> Transaction {
    let items = MAX_TX_SIZE_BYTES / MAX_WITNESS_ITEM_BYTES + 1;
    let mut input = TxIn::spending(OutPoint::new(settle_assets::Txid([1; 32]), 0));
    input.witness = Witness(vec![vec![0x55; MAX_WITNESS_ITEM_BYTES]; items]);
    Transaction {
        version: 1,
        inputs: vec![input],
        outputs: vec![TxOut {
            asset: settle_assets::AssetId([2; 32]),
            amount: Amount::ONE,
            script_pubkey: vec![0x51],
        }],
        lock_time: 0,
        expiry_height: 0,
    }
}

#[test]
fn oversized_transaction_is_refused_by_decoding() {
    let tx = oversized_transaction();
    let encoded = serialize(&tx);
    assert!(encoded.len() > MAX_TX_SIZE_BYTES);
    let err = deserialize::<Transaction>(&encoded).expect_err("too large");
    assert!(
        matches!(
            err,
            DecodeError::TooLarge { what: "transaction", size, max: MAX_TX_SIZE_BYTES }
                if size > MAX_TX_SIZE_BYTES as u64
        ),
        "{err:?}"
    );
    // Two items fewer fit (each item costs 3 bytes of length prefix too), and decode.
    let mut fits = tx.clone();
    let items = fits.inputs[0].witness.0.len();
    fits.inputs[0].witness.0.truncate(items - 2);
    assert!(fits.size_bytes() <= MAX_TX_SIZE_BYTES);
    assert_eq!(deserialize::<Transaction>(&serialize(&fits)), Ok(fits));
}

#[test]
fn oversized_transaction_is_refused_by_the_checks() {
    let err = check_transaction(&oversized_transaction()).expect_err("too large");
    assert!(
        matches!(err, TxCheckError::TooLarge { size, max: MAX_TX_SIZE_BYTES } if size > MAX_TX_SIZE_BYTES),
        "{err:?}"
    );
}

#[test]
fn asset_ids_derive_as_recorded() {
    let v: AssetIdVectors = load("asset_ids.json");
    assert!(v.tagged_hashes.len() >= 6);
    for case in &v.tagged_hashes {
        assert_eq!(
            hex::encode(tagged_hash(&case.tag, &bytes(&case.data_hex))),
            case.hash,
            "tag {}",
            case.tag
        );
    }
    let mut seen = BTreeSet::new();
    for case in &v.asset_ids {
        let name = &case.name;
        let outpoint: OutPoint = case.outpoint.parse().expect("outpoint");
        assert_eq!(
            hex::encode(serialize(&outpoint)),
            case.outpoint_hex,
            "{name}"
        );
        assert_eq!(
            deserialize::<OutPoint>(&bytes(&case.outpoint_hex)),
            Ok(outpoint)
        );
        let contract = case.contract.as_bytes();
        AssetContract::from_canonical_bytes(contract).unwrap_or_else(|e| panic!("{name}: {e}"));
        let hash = contract_hash(contract);
        assert_eq!(
            hash.to_string(),
            case.contract_hash,
            "{name}: contract hash"
        );
        let preimage = [serialize(&outpoint), hash.to_byte_array().to_vec()].concat();
        assert_eq!(
            hex::encode(&preimage),
            case.preimage_hex,
            "{name}: preimage"
        );
        let id = new_asset_id(&outpoint, &hash);
        assert_eq!(id.to_string(), case.asset_id, "{name}: asset id");
        assert_eq!(
            hex::encode(tagged_hash("Settle/AssetId", &preimage)),
            case.asset_id
        );
        let issuance = Issuance {
            kind: IssuanceKind::New {
                contract: contract.to_vec(),
            },
            amount: Amount::ONE,
            signature: None,
        };
        assert_eq!(issuance.asset_id(&outpoint), id, "{name}: via the issuance");
        assert!(seen.insert(id), "{name}: asset id repeats");
        // One byte order: the displayed hex is the byte sequence.
        assert_eq!(hex::encode(id.to_byte_array()), case.asset_id);
    }
}

#[test]
fn amounts_parse_display_and_encode_as_recorded() {
    let v: AmountVectors = load("amounts.json");
    for case in &v.parse {
        let got = Amount::parse_decimal(&case.input, case.precision);
        match (&case.units, &case.error, &got) {
            (Some(units), None, Ok(a)) => assert_eq!(a.units(), *units, "{:?}", case.input),
            (None, Some(kind), Err(e)) => {
                assert_eq!(amount_error_kind(e), kind, "{:?}: {e}", case.input)
            }
            _ => panic!("{:?} at {}: got {got:?}", case.input, case.precision),
        }
    }
    for case in &v.display {
        let a = Amount::from_units(case.units).expect("in range");
        assert_eq!(a.to_decimal_string(case.precision), case.decimal);
        assert_eq!(a.to_plain_string(case.precision), case.plain);
        assert_eq!(Amount::parse_decimal(&case.decimal, case.precision), Ok(a));
        assert_eq!(Amount::parse_decimal(&case.plain, case.precision), Ok(a));
    }
    for case in &v.encoding {
        let a = Amount::from_units(case.units).expect("in range");
        assert_eq!(hex::encode(serialize(&a)), case.hex);
        assert_eq!(deserialize::<Amount>(&bytes(&case.hex)), Ok(a));
    }
    for case in &v.invalid_encoding {
        let err = deserialize::<Amount>(&bytes(&case.hex)).expect_err(&case.name);
        assert_eq!(
            decode_error_kind(&err),
            (case.error.as_str(), case.what.as_str()),
            "{}",
            case.name
        );
    }
}

#[test]
fn contracts_as_recorded() {
    let v: ContractVectors = load("contracts.json");
    let classes: BTreeSet<&str> = v.valid.iter().map(|c| c.class.as_str()).collect();
    assert_eq!(
        classes,
        BTreeSet::from(["cash", "lending_position", "security"])
    );
    for case in &v.valid {
        let name = &case.name;
        let parsed = AssetContract::from_json(&case.json).unwrap_or_else(|e| panic!("{name}: {e}"));
        let canonical = parsed.to_canonical_bytes().expect("valid");
        assert_eq!(
            String::from_utf8(canonical).as_deref(),
            Ok(case.canonical.as_str())
        );
        assert_eq!(
            AssetContract::from_canonical_bytes(case.canonical.as_bytes()).as_ref(),
            Ok(&parsed),
            "{name}"
        );
        assert_eq!(
            parsed.hash().map(|h| h.to_string()),
            Ok(case.contract_hash.clone())
        );
        assert_eq!(
            (
                parsed.class.name(),
                parsed.ticker.as_str(),
                parsed.precision,
                parsed.reissuable
            ),
            (
                case.class.as_str(),
                case.ticker.as_str(),
                case.precision,
                case.reissuable
            ),
            "{name}"
        );
        // The person-written form is not canonical and the chain would refuse it.
        assert_ne!(case.json, case.canonical);
        assert!(AssetContract::from_canonical_bytes(case.json.as_bytes()).is_err());
    }
    for case in &v.invalid {
        let got = match case.parser.as_str() {
            "canonical" => AssetContract::from_canonical_bytes(case.input.as_bytes()),
            "json" => AssetContract::from_json(&case.input),
            other => panic!("{}: unknown parser {other}", case.name),
        };
        let err = got.expect_err(&case.name);
        assert_eq!(
            contract_error_kind(&err),
            (case.error.as_str(), case.field.clone()),
            "{}: {err}",
            case.name
        );
    }
    for case in &v.isin {
        assert_eq!(
            validate_isin(&case.isin, "isin").is_ok(),
            case.valid,
            "{}",
            case.isin
        );
        if let Some(digit) = case.check_digit {
            assert_eq!(isin_check_digit(&case.isin.as_bytes()[..11]), digit);
        }
    }
    let codes: Vec<&str> = v.currencies.iter().map(String::as_str).collect();
    assert_eq!(codes, ISO_4217_CODES, "the currency list in contracts.json");
}
