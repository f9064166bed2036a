//! Properties of the canonical encoding (`spec/encoding.md`): every encodable type
//! round-trips; decoding arbitrary or mutated bytes never panics, stays within a memory
//! bound proportional to its input, and whatever decodes re-encodes to exactly the same
//! bytes (so no value has two encodings). Also the text forms: ids, amounts, contracts.

use std::mem::size_of;

use proptest::prelude::*;
use settle_assets::contract::{ISO_4217_CODES, isin_check_digit};
use settle_assets::encode::{Reader, compact_size_len, write_compact_size};
use settle_assets::limits::{MAX_COMPACT_SIZE, MAX_PRECISION, MAX_TX_INPUTS};
use settle_assets::{
    Amount, AssetClass, AssetContract, AssetId, BlockHash, ChainId, ContractHash, Decode,
    DecodeError, Encode, Issuance, IssuanceKind, LendingTerms, OutPoint, Transaction, TxIn, TxOut,
    Txid, Witness, Wtxid, deserialize, serialize, tagged_hash,
};

// ---------------------------------------------------------------------------------------
// Strategies

fn arb_amount() -> impl Strategy<Value = Amount> {
    prop_oneof![
        3 => 0..=Amount::MAX.units(),
        1 => 0..1_000u64,
        1 => Just(Amount::MAX.units()),
        1 => (Amount::MAX.units() - 1_000)..=Amount::MAX.units(),
    ]
    .prop_map(|u| Amount::from_units(u).expect("in range"))
}

fn arb_outpoint() -> impl Strategy<Value = OutPoint> {
    prop_oneof![
        1 => Just(OutPoint::NULL),
        6 => (any::<[u8; 32]>(), any::<u32>()).prop_map(|(t, v)| OutPoint::new(Txid(t), v)),
    ]
}

/// Short byte strings mostly, sometimes long enough for the 3-byte compact size.
fn arb_var_bytes(short: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => proptest::collection::vec(any::<u8>(), 0..short),
        1 => proptest::collection::vec(any::<u8>(), 250..300),
    ]
}

fn arb_txout() -> impl Strategy<Value = TxOut> {
    (any::<[u8; 32]>(), arb_amount(), arb_var_bytes(48)).prop_map(|(a, amount, script)| TxOut {
        asset: AssetId(a),
        amount,
        script_pubkey: script,
    })
}

fn arb_issuance() -> impl Strategy<Value = Issuance> {
    let kind = prop_oneof![
        arb_var_bytes(64).prop_map(|contract| IssuanceKind::New { contract }),
        any::<[u8; 32]>().prop_map(|a| IssuanceKind::Reissue { asset: AssetId(a) }),
    ];
    let signature = proptest::option::of(proptest::array::uniform::<_, 64>(any::<u8>()));
    (kind, arb_amount(), signature).prop_map(|(kind, amount, signature)| Issuance {
        kind,
        amount,
        signature,
    })
}

fn arb_txin() -> impl Strategy<Value = TxIn> {
    (
        arb_outpoint(),
        any::<u32>(),
        proptest::option::of(arb_issuance()),
        proptest::collection::vec(arb_var_bytes(72), 0..4),
    )
        .prop_map(|(prevout, sequence, issuance, witness)| TxIn {
            prevout,
            sequence,
            issuance,
            witness: Witness(witness),
        })
}

/// Any encodable transaction: the encoding does not care whether it is valid.
fn arb_tx() -> impl Strategy<Value = Transaction> {
    (
        prop_oneof![3 => Just(1u32), 1 => any::<u32>()],
        proptest::collection::vec(arb_txin(), 0..4),
        proptest::collection::vec(arb_txout(), 0..4),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(version, inputs, outputs, lock_time, expiry_height)| Transaction {
                version,
                inputs,
                outputs,
                lock_time,
                expiry_height,
            },
        )
}

/// One edit of a byte string.
#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: prop::sample::Index,
        mask: u8,
    },
    Set {
        at: prop::sample::Index,
        value: u8,
    },
    Insert {
        at: prop::sample::Index,
        value: u8,
    },
    Remove {
        at: prop::sample::Index,
    },
    Truncate {
        at: prop::sample::Index,
    },
    /// Overwrites 1, 3, 5 or 9 bytes with a compact-size-like prefix: the edits that
    /// reach counts and lengths.
    Prefix {
        at: prop::sample::Index,
        bytes: Vec<u8>,
    },
}

fn arb_mutation() -> impl Strategy<Value = Mutation> {
    let idx = any::<prop::sample::Index>;
    prop_oneof![
        3 => (idx(), 1..=255u8).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        2 => (idx(), any::<u8>()).prop_map(|(at, value)| Mutation::Set { at, value }),
        1 => (idx(), any::<u8>()).prop_map(|(at, value)| Mutation::Insert { at, value }),
        1 => idx().prop_map(|at| Mutation::Remove { at }),
        1 => idx().prop_map(|at| Mutation::Truncate { at }),
        2 => (idx(), prop_oneof![
            Just(vec![0xfd, 0xff, 0xff]),
            Just(vec![0xfe, 0xff, 0xff, 0xff, 0xff]),
            Just(vec![0xff; 9]),
            Just(vec![0xfd, 0x01, 0x00]),
            Just(vec![0xfe, 0x00, 0x00, 0x00, 0x02]),
            Just(vec![0xfc]),
        ]).prop_map(|(at, bytes)| Mutation::Prefix { at, bytes }),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        if let Mutation::Insert { value, .. } = m {
            bytes.push(*value);
        }
        return;
    }
    match m {
        Mutation::Flip { at, mask } => {
            let i = at.index(bytes.len());
            bytes[i] ^= mask;
        }
        Mutation::Set { at, value } => {
            let i = at.index(bytes.len());
            bytes[i] = *value;
        }
        Mutation::Insert { at, value } => {
            let i = at.index(bytes.len() + 1);
            bytes.insert(i, *value);
        }
        Mutation::Remove { at } => {
            let i = at.index(bytes.len());
            bytes.remove(i);
        }
        Mutation::Truncate { at } => {
            let i = at.index(bytes.len());
            bytes.truncate(i);
        }
        Mutation::Prefix { at, bytes: prefix } => {
            let i = at.index(bytes.len());
            for (k, b) in prefix.iter().enumerate() {
                match bytes.get_mut(i + k) {
                    Some(slot) => *slot = *b,
                    None => bytes.push(*b),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Helpers

fn round_trips<T: Encode + Decode + PartialEq + std::fmt::Debug>(
    value: &T,
) -> Result<(), TestCaseError> {
    let bytes = serialize(value);
    prop_assert_eq!(&deserialize::<T>(&bytes)?, value);
    Ok(())
}

/// Memory a decoded transaction holds on the heap, by capacity: what decoding allocated
/// for it and kept.
fn heap_bytes(tx: &Transaction) -> usize {
    let mut total =
        tx.inputs.capacity() * size_of::<TxIn>() + tx.outputs.capacity() * size_of::<TxOut>();
    for input in &tx.inputs {
        total += input.witness.0.capacity() * size_of::<Vec<u8>>();
        total += input.witness.0.iter().map(Vec::capacity).sum::<usize>();
        if let Some(Issuance {
            kind: IssuanceKind::New { contract },
            ..
        }) = &input.issuance
        {
            total += contract.capacity();
        }
    }
    total
        + tx.outputs
            .iter()
            .map(|o| o.script_pubkey.capacity())
            .sum::<usize>()
}

/// The most heap a decoded transaction may hold per byte of its encoding. The worst case
/// is an empty witness item: one byte on the wire, one `Vec` header in memory.
const HEAP_BYTES_PER_ENCODED_BYTE: usize = size_of::<Vec<u8>>() + size_of::<TxIn>() / 41 + 8;

/// Decodes `bytes` as a transaction and, when that succeeds, checks that the value
/// re-encodes to exactly `bytes` and stays within the memory bound.
fn decode_is_canonical_and_bounded(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(tx) = deserialize::<Transaction>(bytes) {
        prop_assert_eq!(
            serialize(&tx),
            bytes,
            "a decoded value has a second encoding"
        );
        prop_assert!(
            heap_bytes(&tx) <= HEAP_BYTES_PER_ENCODED_BYTE * bytes.len(),
            "{} heap bytes for {} encoded bytes",
            heap_bytes(&tx),
            bytes.len()
        );
    }
    Ok(())
}

fn check_all_types_on(bytes: &[u8]) -> Result<(), TestCaseError> {
    decode_is_canonical_and_bounded(bytes)?;
    if let Ok(v) = deserialize::<TxOut>(bytes) {
        prop_assert_eq!(serialize(&v), bytes);
    }
    if let Ok(v) = deserialize::<OutPoint>(bytes) {
        prop_assert_eq!(serialize(&v), bytes);
    }
    if let Ok(v) = deserialize::<Amount>(bytes) {
        prop_assert_eq!(serialize(&v), bytes);
    }
    if let Ok(v) = deserialize::<AssetId>(bytes) {
        prop_assert_eq!(serialize(&v), bytes);
    }
    let mut r = Reader::new(bytes);
    if let Ok(v) = r.read_compact_size("compact size") {
        let mut out = Vec::new();
        write_compact_size(&mut out, v);
        prop_assert_eq!(out.as_slice(), &bytes[..r.position()]);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Round trips

proptest! {
    #[test]
    fn outpoint_round_trips(op in arb_outpoint()) {
        round_trips(&op)?;
        prop_assert_eq!(serialize(&op).len(), 36);
        prop_assert_eq!(op.to_string().parse::<OutPoint>(), Ok(op));
    }

    #[test]
    fn txout_round_trips(out in arb_txout()) {
        round_trips(&out)?;
    }

    #[test]
    fn amount_round_trips(a in arb_amount()) {
        round_trips(&a)?;
        prop_assert_eq!(serialize(&a), a.units().to_le_bytes().to_vec());
    }

    #[test]
    fn ids_round_trip_in_one_byte_order(bytes in any::<[u8; 32]>()) {
        fn check<T>(id: T, bytes: [u8; 32]) -> Result<(), TestCaseError>
        where
            T: Encode + Decode + PartialEq + std::fmt::Debug + std::fmt::Display
                + std::str::FromStr + Copy,
            <T as std::str::FromStr>::Err: std::fmt::Debug,
        {
            round_trips(&id)?;
            // Wire order and display order are the same: no reversal anywhere.
            prop_assert_eq!(serialize(&id), bytes.to_vec());
            prop_assert_eq!(id.to_string(), hex::encode(bytes));
            prop_assert_eq!(id.to_string().parse::<T>().ok(), Some(id));
            prop_assert_eq!(hex::encode_upper(bytes).parse::<T>().ok(), Some(id));
            Ok(())
        }
        check(Txid(bytes), bytes)?;
        check(Wtxid(bytes), bytes)?;
        check(AssetId(bytes), bytes)?;
        check(ContractHash(bytes), bytes)?;
        check(ChainId(bytes), bytes)?;
        check(BlockHash(bytes), bytes)?;
    }

    #[test]
    fn transaction_round_trips(tx in arb_tx()) {
        round_trips(&tx)?;
        let full = serialize(&tx);
        let mut base = Vec::new();
        tx.encode_base(&mut base);
        prop_assert!(full.starts_with(&base));
        prop_assert_eq!(tx.size_bytes(), full.len());
        prop_assert_eq!(tx.txid().0, tagged_hash("Settle/Txid", &base));
        prop_assert_eq!(tx.wtxid().0, tagged_hash("Settle/Wtxid", &full));
        prop_assert!(heap_bytes(&deserialize::<Transaction>(&full)?)
            <= HEAP_BYTES_PER_ENCODED_BYTE * full.len());
    }

    /// Witness stacks and issuance signatures change the wtxid, never the txid.
    #[test]
    fn witness_data_stays_out_of_the_txid(
        tx in arb_tx(),
        extra in proptest::collection::vec(any::<u8>(), 0..80),
        sig in proptest::array::uniform::<_, 64>(any::<u8>()),
    ) {
        let mut signed = tx.clone();
        for input in &mut signed.inputs {
            input.witness.0.push(extra.clone());
            if let Some(iss) = &mut input.issuance {
                iss.signature = Some(sig);
            }
        }
        prop_assert_eq!(tx.txid(), signed.txid());
        if !tx.inputs.is_empty() {
            prop_assert_ne!(tx.wtxid(), signed.wtxid());
        }
    }

    /// The base encoding commits to every non-witness field: changing one changes the txid.
    #[test]
    fn txid_commits_to_the_base_fields(tx in arb_tx(), which in 0..4u8) {
        let mut changed = tx.clone();
        match which {
            0 => changed.version ^= 1,
            1 => changed.lock_time ^= 1,
            2 => changed.expiry_height ^= 1,
            _ => match changed.outputs.first_mut() {
                Some(o) => o.script_pubkey.push(0),
                None => changed.outputs.push(TxOut::NONE),
            },
        }
        prop_assert_ne!(tx.txid(), changed.txid());
    }

    #[test]
    fn compact_sizes_round_trip_in_their_shortest_form(v in prop_oneof![
        0..=0xffu64, 0..=0xffffu64, 0..=MAX_COMPACT_SIZE
    ]) {
        let mut out = Vec::new();
        write_compact_size(&mut out, v);
        prop_assert_eq!(out.len(), compact_size_len(v));
        let expected_len = match v { 0..=0xfc => 1, 0xfd..=0xffff => 3, _ => 5 };
        prop_assert_eq!(out.len(), expected_len);
        let mut r = Reader::new(&out);
        prop_assert_eq!(r.read_compact_size("n"), Ok(v));
        prop_assert_eq!(r.remaining(), 0);
    }

    #[test]
    fn compact_sizes_over_the_limit_are_refused(v in (MAX_COMPACT_SIZE + 1)..=u64::MAX) {
        let mut out = Vec::new();
        write_compact_size(&mut out, v);
        let refused = matches!(
            Reader::new(&out).read_compact_size("n"),
            Err(DecodeError::TooLarge { .. })
        );
        prop_assert!(refused);
    }
}

// ---------------------------------------------------------------------------------------
// Hostile bytes

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        check_all_types_on(&bytes)?;
    }

    /// Random bytes behind a plausible header reach further into the decoder.
    #[test]
    fn random_bytes_after_a_header_never_panic(
        n_in in 0..3u8,
        tail in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut bytes = 1u32.to_le_bytes().to_vec();
        bytes.push(n_in);
        bytes.extend_from_slice(&tail);
        check_all_types_on(&bytes)?;
    }

    #[test]
    fn mutated_encodings_never_panic_and_stay_canonical(
        tx in arb_tx(),
        mutations in proptest::collection::vec(arb_mutation(), 1..5),
    ) {
        let mut bytes = serialize(&tx);
        for m in &mutations {
            mutate(&mut bytes, m);
        }
        check_all_types_on(&bytes)?;
    }

    /// A count that the remaining bytes cannot hold is refused at the count, before any
    /// item is read or allocated for.
    #[test]
    fn claimed_counts_beyond_the_data_are_refused_at_the_count(
        count in 3..=MAX_COMPACT_SIZE,
        tail in proptest::collection::vec(any::<u8>(), 0..120),
    ) {
        let mut bytes = 1u32.to_le_bytes().to_vec();
        write_compact_size(&mut bytes, count);
        bytes.extend_from_slice(&tail);
        let header = bytes.len() - tail.len();
        let err = deserialize::<Transaction>(&bytes).expect_err("cannot hold the inputs");
        if count > MAX_TX_INPUTS as u64 {
            let refused = matches!(err, DecodeError::TooMany { what: "inputs", .. });
            prop_assert!(refused, "{:?}", err);
        } else {
            let refused = matches!(
                err,
                DecodeError::UnexpectedEnd { what: "inputs", remaining, .. } if remaining == bytes.len() - header
            );
            prop_assert!(refused, "{:?}", err);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Amounts as text

proptest! {
    #[test]
    fn amount_text_round_trips_at_every_precision(a in arb_amount(), precision in 0..=MAX_PRECISION) {
        let decimal = a.to_decimal_string(precision);
        let plain = a.to_plain_string(precision);
        prop_assert_eq!(Amount::parse_decimal(&decimal, precision), Ok(a));
        prop_assert_eq!(Amount::parse_decimal(&plain, precision), Ok(a));
        prop_assert_eq!(decimal.replace(',', ""), plain.clone());
        match plain.split_once('.') {
            Some((_, frac)) => prop_assert_eq!(frac.len(), usize::from(precision)),
            None => prop_assert_eq!(precision, 0),
        }
    }

    #[test]
    fn parsing_any_text_never_panics(s in "\\PC{0,40}", precision in 0..=20u8) {
        if let Ok(a) = Amount::parse_decimal(&s, precision) {
            prop_assert!(a <= Amount::MAX);
        }
    }

    #[test]
    fn parsing_number_like_text_is_exact(s in "[0-9,.]{1,30}", precision in 0..=MAX_PRECISION) {
        if let Ok(a) = Amount::parse_decimal(&s, precision) {
            // The value is the digits read as a decimal, scaled by the precision.
            let (int, frac) = s.split_once('.').unwrap_or((&s, ""));
            let digits: String = int.chars().filter(|c| *c != ',').chain(frac.chars()).collect();
            let padding = usize::from(precision) - frac.len();
            let value: u128 = digits.parse::<u128>().expect("digits")
                * (0..padding).fold(1u128, |acc, _| acc * 10);
            prop_assert_eq!(u128::from(a.units()), value);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Contracts

fn arb_text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9 .,éüß€/\"\\\\-]{0,40}[A-Za-z0-9]"
}

fn arb_isin() -> impl Strategy<Value = String> {
    "[A-Z]{2}[A-Z0-9]{9}".prop_map(|body| {
        let digit = isin_check_digit(body.as_bytes());
        format!("{body}{digit}")
    })
}

fn arb_class() -> impl Strategy<Value = AssetClass> {
    let terms = (
        arb_isin(),
        any::<[[u8; 32]; 5]>(),
        (1..=u64::MAX, 1..=u64::MAX, any::<u64>()),
        (any::<u32>(), 0..u32::MAX, 1..=1_000_000u32, any::<u32>()),
        (
            proptest::option::of(arb_text()),
            proptest::option::of(arb_text()),
        ),
    )
        .prop_filter("lender and borrower differ", |(_, keys, ..)| {
            keys[0] != keys[1]
        })
        .prop_map(
            |(
                isin,
                keys,
                (quantity, collateral_amount, fee),
                (rate, settle, term, grace),
                (n, p),
            )| {
                AssetClass::LendingPosition(Box::new(LendingTerms {
                    isin,
                    security_asset: AssetId(keys[2]),
                    quantity,
                    lender: keys[0],
                    borrower: keys[1],
                    collateral_asset: AssetId(keys[3]),
                    collateral_amount,
                    fee_asset: AssetId(keys[4]),
                    fee,
                    interest_rate_bps: rate,
                    settlement_height: settle,
                    maturity_height: settle.saturating_add(term),
                    grace_period_blocks: grace,
                    negotiator: n,
                    lender_player: p,
                }))
            },
        );
    prop_oneof![
        arb_isin().prop_map(|isin| AssetClass::Security { isin }),
        prop::sample::select(ISO_4217_CODES).prop_map(|c| AssetClass::Cash {
            currency: c.to_owned()
        }),
        terms,
    ]
}

fn arb_contract() -> impl Strategy<Value = AssetContract> {
    (
        arb_class(),
        arb_text(),
        "[A-Z0-9][A-Z0-9.-]{0,11}",
        0..=MAX_PRECISION,
        any::<[u8; 32]>(),
        any::<bool>(),
    )
        .prop_map(
            |(class, name, ticker, precision, issuer, reissuable)| AssetContract {
                class,
                name,
                ticker,
                precision,
                issuer,
                reissuable,
            },
        )
}

proptest! {
    #[test]
    fn contracts_have_one_canonical_form(c in arb_contract()) {
        let bytes = c.to_canonical_bytes().expect("generated contracts are valid");
        prop_assert_eq!(AssetContract::from_canonical_bytes(&bytes), Ok(c.clone()));
        // Any other spelling of the same JSON reads back to the same contract but is
        // refused as contract bytes.
        let text = String::from_utf8(bytes.clone()).expect("utf8");
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        let pretty = serde_json::to_string_pretty(&value).expect("json");
        prop_assert_eq!(AssetContract::from_json(&pretty), Ok(c.clone()));
        prop_assert!(AssetContract::from_canonical_bytes(pretty.as_bytes()).is_err());
        prop_assert_eq!(c.hash().map(|h| h.0), Ok(tagged_hash("Settle/Contract", &bytes)));
    }

    #[test]
    fn contract_parsing_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = AssetContract::from_canonical_bytes(&bytes);
        if let Ok(text) = std::str::from_utf8(&bytes) {
            let _ = AssetContract::from_json(text);
        }
    }

    #[test]
    fn isin_check_digit_never_panics(body in proptest::collection::vec(any::<u8>(), 0..40)) {
        prop_assert!(isin_check_digit(&body) <= 9);
    }
}
