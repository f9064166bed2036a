//! Writes the asset-layer test vectors: `spec/vectors/{transactions,asset_ids,amounts,
//! contracts}.json`, the membership-change vectors `spec/vectors/membership.json`, and
//! the expected results of the example chain spec, `chainspec-example.json` (from
//! `chainspec-example.toml`; the chain id quoted in `chainspec-errors.json` with it).
//!
//! Run `cargo run -p settle-tests --bin gen_vectors [OUT_DIR]` after a deliberate protocol
//! change, review the diff, and commit it together with the spec change. The tests never
//! run this: they compare the code against the committed files.
//!
//! Every vector states its intent (which error, which field) and the generator asserts
//! that the code agrees before writing it, so a vector can never record an accident.

use std::path::PathBuf;

use serde::Serialize;
use settle_assets::contract::{ISO_4217_CODES, canonical_json, isin_check_digit, validate_isin};
use settle_assets::encode::{Reader, write_compact_size};
use settle_assets::hash::tagged_hash;
use settle_assets::limits::{
    MAX_COMPACT_SIZE, MAX_CONTRACT_BYTES, MAX_SCRIPT_PUBKEY_BYTES, MAX_TX_INPUTS, MAX_TX_OUTPUTS,
    MAX_WITNESS_ITEM_BYTES, MAX_WITNESS_ITEMS,
};
use settle_assets::transaction::{SEQUENCE_FINAL, TX_VERSION, contract_hash, new_asset_id};
use settle_assets::{
    Amount, AssetClass, AssetContract, AssetId, Issuance, IssuanceKind, LendingTerms, OP_RETURN,
    OutPoint, Transaction, TxIn, TxOut, Txid, Witness, check_conservation, check_transaction,
    deserialize, serialize,
};
use settle_tests::asset_vectors::*;

// ---------------------------------------------------------------------------------------
// Fixed example keys and values. The keys are the x coordinates of 1G..4G on secp256k1,
// so they are valid x-only public keys that anyone can recompute.

const KEY_CENTRAL_BANK: &str = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
const KEY_CSD: &str = "c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5";
const KEY_ALICE: &str = "f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9";
const KEY_BOB: &str = "e493dbf1c10d80f3581e4904930b1404cc6c13900ee0758474fa94abe8c4cd13";

fn key(hex_key: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_key, &mut out).expect("constant key");
    out
}

/// An example locking script (version-1 program with a 32-byte key). Scripts are opaque
/// to the asset layer; `spec/script.md` defines what they mean.
fn p2k(hex_key: &str) -> Vec<u8> {
    let mut s = vec![0x51, 0x20];
    s.extend_from_slice(&key(hex_key));
    s
}

/// Deterministic placeholder bytes standing in for a signature or other witness data.
/// The asset layer never verifies them; `spec/sighash.md` has real signatures.
fn filler(label: &str, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 32);
    let mut counter = 0u32;
    while out.len() < len {
        let data = format!("{label}/{counter}");
        out.extend_from_slice(&tagged_hash("Settle/Example", data.as_bytes()));
        counter += 1;
    }
    out.truncate(len);
    out
}

fn sig64(label: &str) -> [u8; 64] {
    filler(label, 64).try_into().expect("64 bytes")
}

fn units(n: u64) -> Amount {
    Amount::from_units(n).expect("in range")
}

fn out(asset: AssetId, amount: u64, script: Vec<u8>) -> TxOut {
    TxOut {
        asset,
        amount: units(amount),
        script_pubkey: script,
    }
}

fn burn(asset: AssetId, amount: u64) -> TxOut {
    out(asset, amount, vec![OP_RETURN])
}

fn spend(prevout: OutPoint, witness: Vec<Vec<u8>>) -> TxIn {
    TxIn {
        prevout,
        sequence: SEQUENCE_FINAL,
        issuance: None,
        witness: Witness(witness),
    }
}

fn tx(inputs: Vec<TxIn>, outputs: Vec<TxOut>) -> Transaction {
    Transaction {
        version: TX_VERSION,
        inputs,
        outputs,
        lock_time: 0,
        expiry_height: 0,
    }
}

fn contract_bytes(c: &AssetContract) -> Vec<u8> {
    c.to_canonical_bytes().expect("valid example contract")
}

fn eur_contract() -> AssetContract {
    AssetContract {
        class: AssetClass::Cash {
            currency: "EUR".into(),
        },
        name: "Euro central bank money".into(),
        ticker: "EUR".into(),
        precision: 2,
        issuer: key(KEY_CENTRAL_BANK),
        reissuable: true,
    }
}

fn bond_contract() -> AssetContract {
    AssetContract {
        class: AssetClass::Security {
            isin: "PTOTEVOE0018".into(),
        },
        name: "Portuguese Treasury bond OT 2037".into(),
        ticker: "BOND".into(),
        precision: 0,
        issuer: key(KEY_CSD),
        reissuable: true,
    }
}

fn share_contract() -> AssetContract {
    AssetContract {
        class: AssetClass::Security {
            isin: "US0378331005".into(),
        },
        name: "Apple Inc. common stock".into(),
        ticker: "AAPL".into(),
        precision: 0,
        issuer: key(KEY_CSD),
        reissuable: false,
    }
}

fn quoted_name_contract() -> AssetContract {
    AssetContract {
        class: AssetClass::Security {
            isin: "FR0000130809".into(),
        },
        name: "Société Générale \"green\" bond €/2030".into(),
        ticker: "GLE.GB-30".into(),
        precision: 3,
        issuer: key(KEY_CSD),
        reissuable: false,
    }
}

fn loan_contract(bond: AssetId, eur: AssetId, roles: bool) -> AssetContract {
    AssetContract {
        class: AssetClass::LendingPosition(Box::new(LendingTerms {
            isin: "PTOTEVOE0018".into(),
            security_asset: bond,
            quantity: 10,
            lender: key(KEY_ALICE),
            borrower: key(KEY_BOB),
            collateral_asset: eur,
            collateral_amount: 110_000,
            fee_asset: eur,
            fee: 500,
            interest_rate_bps: 150,
            settlement_height: 100,
            maturity_height: 1_100,
            grace_period_blocks: 144,
            negotiator: roles.then(|| "Banco Exemplo".into()),
            lender_player: roles.then(|| "Custodian A".into()),
        })),
        name: "Loan of 10 BOND to Bob".into(),
        ticker: "LOAN-1".into(),
        precision: 0,
        issuer: key(KEY_ALICE),
        reissuable: false,
    }
}

// ---------------------------------------------------------------------------------------
// A small example chain: the transactions below spend each other, so the conservation
// vectors can give every input's real spent coin.

struct Chain {
    eur: AssetId,
    bond: AssetId,
    /// (name, comment, transaction, the coins its inputs spend)
    txs: Vec<(&'static str, &'static str, Transaction, Vec<TxOut>)>,
}

fn example_chain() -> Chain {
    let eur_bytes = contract_bytes(&eur_contract());
    let bond_bytes = contract_bytes(&bond_contract());

    // 1. The central bank issues 1,000,000.00 EUR on a null input.
    let eur = new_asset_id(&OutPoint::NULL, &contract_hash(&eur_bytes));
    let t1 = tx(
        vec![TxIn {
            prevout: OutPoint::NULL,
            sequence: SEQUENCE_FINAL,
            issuance: Some(Issuance {
                kind: IssuanceKind::New {
                    contract: eur_bytes.clone(),
                },
                amount: units(100_000_000),
                signature: Some(sig64("t1 issuance")),
            }),
            witness: Witness::default(),
        }],
        vec![
            out(eur, 99_000_000, p2k(KEY_CENTRAL_BANK)),
            out(eur, 100_000, p2k(KEY_ALICE)),
            out(eur, 900_000, p2k(KEY_CSD)),
        ],
    );
    let t1_id = t1.txid();

    // 2. The CSD spends its EUR coin and issues 1,000 BOND on it (the asset id comes from
    //    that coin's outpoint).
    let csd_coin = OutPoint::new(t1_id, 2);
    let bond = new_asset_id(&csd_coin, &contract_hash(&bond_bytes));
    let t2 = tx(
        vec![TxIn {
            prevout: csd_coin,
            sequence: SEQUENCE_FINAL,
            issuance: Some(Issuance {
                kind: IssuanceKind::New {
                    contract: bond_bytes.clone(),
                },
                amount: units(1_000),
                signature: Some(sig64("t2 issuance")),
            }),
            witness: Witness(vec![filler("t2 input 0 signature", 64)]),
        }],
        vec![
            out(eur, 900_000, p2k(KEY_CSD)),
            out(bond, 990, p2k(KEY_CSD)),
            out(bond, 10, p2k(KEY_BOB)),
        ],
    );
    let t2_id = t2.txid();

    // 3. Alice pays Bob 250.00 EUR out of her 1,000.00 and keeps the change.
    let t3 = tx(
        vec![spend(
            OutPoint::new(t1_id, 1),
            vec![filler("t3 input 0 signature", 64)],
        )],
        vec![
            out(eur, 25_000, p2k(KEY_BOB)),
            out(eur, 75_000, p2k(KEY_ALICE)),
        ],
    );
    let t3_id = t3.txid();

    // 4. DvP: Alice gives 750.00 EUR, Bob gives 10 BOND, in one transaction that expires
    //    at height 5,000. Alice's witness signature carries a sighash byte (65 bytes).
    let mut t4 = tx(
        vec![
            spend(
                OutPoint::new(t3_id, 1),
                vec![filler("t4 input 0 signature single|anyonecanpay", 65)],
            ),
            spend(
                OutPoint::new(t2_id, 2),
                vec![filler("t4 input 1 signature", 64)],
            ),
        ],
        vec![
            out(bond, 10, p2k(KEY_ALICE)),
            out(eur, 75_000, p2k(KEY_BOB)),
        ],
    );
    t4.expiry_height = 5_000;
    let t4_id = t4.txid();

    // 5. The central bank reissues 50,000.00 EUR while spending one of its coins.
    let t5 = tx(
        vec![TxIn {
            prevout: OutPoint::new(t1_id, 0),
            sequence: SEQUENCE_FINAL,
            issuance: Some(Issuance {
                kind: IssuanceKind::Reissue { asset: eur },
                amount: units(5_000_000),
                signature: Some(sig64("t5 reissuance")),
            }),
            witness: Witness(vec![filler("t5 input 0 signature", 64)]),
        }],
        vec![
            out(eur, 100_000_000, p2k(KEY_CENTRAL_BANK)),
            out(eur, 4_000_000, p2k(KEY_CSD)),
        ],
    );

    // 6. The CSD redeems 90 BOND: a burn output, and the rest back to itself.
    let t6 = tx(
        vec![spend(
            OutPoint::new(t2_id, 1),
            vec![filler("t6 input 0 signature", 64)],
        )],
        vec![burn(bond, 90), out(bond, 900, p2k(KEY_CSD))],
    );

    // 7. Lending: Alice lends her 10 BOND to Bob and issues herself the one-unit lending
    //    position recording the terms, on a null input, in the same transaction.
    let loan_bytes = contract_bytes(&loan_contract(bond, eur, true));
    let loan = new_asset_id(&OutPoint::NULL, &contract_hash(&loan_bytes));
    let t7 = tx(
        vec![
            spend(
                OutPoint::new(t4_id, 0),
                vec![filler("t7 input 0 signature", 64)],
            ),
            TxIn {
                prevout: OutPoint::NULL,
                sequence: SEQUENCE_FINAL,
                issuance: Some(Issuance {
                    kind: IssuanceKind::New {
                        contract: loan_bytes,
                    },
                    amount: units(1),
                    signature: Some(sig64("t7 issuance")),
                }),
                witness: Witness::default(),
            },
        ],
        vec![out(bond, 10, p2k(KEY_BOB)), out(loan, 1, p2k(KEY_ALICE))],
    );

    let none = TxOut::NONE;
    let coin = |t: &Transaction, vout: usize| t.outputs[vout].clone();
    let chain = vec![
        (
            "issue_cash_on_null_input",
            "The central bank issues 1,000,000.00 EUR (precision 2) on a null input and pays three holders. The null input has no witness stack; the issuance signature is in the witness part.",
            t1.clone(),
            vec![none.clone()],
        ),
        (
            "issue_security_on_spent_coin",
            "The CSD spends an EUR coin and issues 1,000 BOND on that input: the BOND asset id derives from the coin's outpoint. The EUR passes through unchanged.",
            t2.clone(),
            vec![coin(&t1, 2)],
        ),
        (
            "transfer_with_change",
            "Alice pays Bob 250.00 EUR from a 1,000.00 EUR coin and takes 750.00 EUR change. No fee: outputs equal inputs exactly.",
            t3.clone(),
            vec![coin(&t1, 1)],
        ),
        (
            "dvp_swap_with_expiry",
            "Delivery versus payment: Alice's 750.00 EUR for Bob's 10 BOND. Alice's 65-byte witness item stands for a SINGLE|ANYONECANPAY signature. expiry_height 5000.",
            t4.clone(),
            vec![coin(&t3, 1), coin(&t2, 2)],
        ),
        (
            "reissue_cash",
            "The central bank reissues 50,000.00 EUR on an input that also spends one of its EUR coins (reissuance record kind 2).",
            t5,
            vec![coin(&t1, 0)],
        ),
        (
            "burn_security",
            "The CSD burns 90 BOND: output 0 starts with OP_RETURN (0x6a), counts for conservation and never enters the UTXO set.",
            t6,
            vec![coin(&t2, 1)],
        ),
        (
            "open_loan_with_lending_position",
            "Alice lends 10 BOND to Bob and, on a null input of the same transaction, issues herself one unit of a lending_position asset holding the loan's terms.",
            t7,
            vec![coin(&t4, 0), none],
        ),
    ];
    Chain {
        eur,
        bond,
        txs: chain,
    }
}

// ---------------------------------------------------------------------------------------
// transactions.json

fn valid_tx(name: &str, comment: &str, t: &Transaction) -> ValidTx {
    check_transaction(t).unwrap_or_else(|e| panic_msg(&format!("{name}: {e}")));
    let full = serialize(t);
    let mut base = Vec::new();
    t.encode_base(&mut base);
    assert_eq!(deserialize::<Transaction>(&full).as_ref(), Ok(t), "{name}");
    let description = TxJson::from_tx(t);
    assert_eq!(description.to_tx().as_ref(), Ok(t), "{name}: JSON model");
    ValidTx {
        name: name.into(),
        comment: comment.into(),
        tx: description,
        hex: hex::encode(&full),
        base_hex: hex::encode(&base),
        size: full.len(),
        base_size: base.len(),
        txid: t.txid().to_string(),
        wtxid: t.wtxid().to_string(),
        issued: t
            .issuances()
            .map(|(input, asset, amount)| IssuedJson {
                input,
                asset: asset.to_string(),
                amount: amount.units(),
            })
            .collect(),
        burns: t
            .outputs
            .iter()
            .enumerate()
            .filter(|(_, o)| o.is_burn())
            .map(|(i, _)| i)
            .collect(),
    }
}

/// A failed expectation in the generator: the code and the intended vector disagree.
fn panic_msg(msg: &str) -> ! {
    eprintln!("gen_vectors: {msg}");
    std::process::exit(1)
}

fn invalid_encoding(
    name: &str,
    comment: &str,
    bytes: &[u8],
    error: &str,
    what: &str,
) -> InvalidEncoding {
    let got = deserialize::<Transaction>(bytes);
    match &got {
        Err(e) if decode_error_kind(e) == (error, what) => {}
        other => panic_msg(&format!("{name}: expected {error}({what}), got {other:?}")),
    }
    InvalidEncoding {
        name: name.into(),
        comment: comment.into(),
        hex: hex::encode(bytes),
        error: error.into(),
        what: what.into(),
    }
}

fn invalid_check(
    name: &str,
    comment: &str,
    t: &Transaction,
    error: &str,
    index: Option<usize>,
    contract_error: Option<&str>,
) -> InvalidCheck {
    let bytes = serialize(t);
    assert_eq!(deserialize::<Transaction>(&bytes).as_ref(), Ok(t), "{name}");
    let got = check_transaction(t);
    let Err(e) = &got else {
        panic_msg(&format!("{name}: expected {error}, the transaction passed"))
    };
    if check_error_kind(e) != (error, index) {
        panic_msg(&format!("{name}: expected {error} {index:?}, got {e:?}"));
    }
    if let Some(kind) = contract_error {
        match e {
            settle_assets::TxCheckError::InvalidContract { error, .. }
                if contract_error_kind(error).0 == kind => {}
            other => panic_msg(&format!("{name}: expected contract {kind}, got {other:?}")),
        }
    }
    let description = TxJson::from_tx(t);
    assert_eq!(description.to_tx().as_ref(), Ok(t), "{name}: JSON model");
    InvalidCheck {
        name: name.into(),
        comment: comment.into(),
        tx: description,
        hex: hex::encode(bytes),
        error: error.into(),
        index,
        contract_error: contract_error.map(str::to_owned),
    }
}

/// Replaces `remove` bytes at `at` with `insert`.
fn splice(bytes: &[u8], at: usize, remove: usize, insert: &[u8]) -> Vec<u8> {
    let mut out = bytes[..at].to_vec();
    out.extend_from_slice(insert);
    out.extend_from_slice(&bytes[at + remove..]);
    out
}

fn compact(value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    write_compact_size(&mut out, value);
    out
}

fn compact_size_vectors() -> CompactSizeVectors {
    let valid = [
        0u64,
        1,
        0xfc,
        0xfd,
        0xff,
        0x1234,
        0xffff,
        0x1_0000,
        0x0123_4567,
        MAX_COMPACT_SIZE,
    ]
    .iter()
    .map(|&value| {
        let bytes = compact(value);
        assert_eq!(
            Reader::new(&bytes).read_compact_size("compact size"),
            Ok(value)
        );
        CompactSizeValid {
            value,
            hex: hex::encode(bytes),
        }
    })
    .collect();
    let cases: [(&str, &str, &str, &str); 9] = [
        ("empty", "", "UnexpectedEnd", "no byte at all"),
        (
            "truncated_u16",
            "fd00",
            "UnexpectedEnd",
            "0xfd announces two more bytes; one is there",
        ),
        (
            "truncated_u32",
            "fe000001",
            "UnexpectedEnd",
            "0xfe announces four more bytes; three are there",
        ),
        (
            "non_canonical_u16",
            "fdfc00",
            "NonCanonicalCompactSize",
            "252 fits in one byte, so the three-byte form is refused",
        ),
        (
            "non_canonical_u32",
            "feffff0000",
            "NonCanonicalCompactSize",
            "65535 fits in the three-byte form",
        ),
        (
            "non_canonical_u64",
            "ff0100000000000000",
            "NonCanonicalCompactSize",
            "1 in the nine-byte form",
        ),
        (
            "over_max_u32",
            "fe01000002",
            "TooLarge",
            "0x02000001 is one more than the largest compact size 0x02000000",
        ),
        (
            "over_max_u64",
            "ff0000000001000000",
            "TooLarge",
            "2^32 is canonical in the nine-byte form but far over the largest compact size",
        ),
        (
            "max_u64",
            "ffffffffffffffffff",
            "TooLarge",
            "2^64-1: refused without any arithmetic overflow",
        ),
    ];
    let invalid = cases
        .iter()
        .map(|(name, hex_str, error, comment)| {
            let bytes = hex::decode(hex_str).expect("hex");
            match Reader::new(&bytes).read_compact_size("compact size") {
                Err(e) if decode_error_kind(&e) == (*error, "compact size") => {}
                other => panic_msg(&format!("compact size {name}: got {other:?}")),
            }
            InvalidEncoding {
                name: (*name).into(),
                comment: (*comment).into(),
                hex: (*hex_str).into(),
                error: (*error).into(),
                what: "compact size".into(),
            }
        })
        .collect();
    CompactSizeVectors { valid, invalid }
}

fn transaction_vectors(chain: &Chain) -> TransactionVectors {
    let mut valid: Vec<ValidTx> = chain
        .txs
        .iter()
        .map(|(name, comment, t, _)| valid_tx(name, comment, t))
        .collect();

    // Encoding corner cases that the example chain does not reach.
    let some_txid = Txid(tagged_hash("Settle/Example", b"an earlier transaction"));
    let mut minimal = tx(
        vec![spend(OutPoint::new(some_txid, 0), vec![])],
        vec![out(chain.eur, 1, vec![])],
    );
    minimal.inputs[0].sequence = 0;
    valid.push(valid_tx(
        "minimal",
        "The smallest shape: one input with sequence 0 and an empty witness stack, one output with an empty script.",
        &minimal,
    ));

    let mut timelocked = tx(
        vec![
            spend(
                OutPoint::new(some_txid, 7),
                vec![
                    vec![],
                    filler("multisig signature a", 64),
                    filler("multisig signature b", 64),
                    filler("witness script", 300),
                ],
            ),
            spend(OutPoint::new(some_txid, 0x0102_0304), vec![vec![0x01]]),
        ],
        vec![
            out(chain.bond, 5, filler("long output script", 300)),
            out(chain.eur, 123_456_789, p2k(KEY_BOB)),
        ],
    );
    timelocked.inputs[0].sequence = 0xffff_fffe;
    timelocked.inputs[1].sequence = 144;
    timelocked.lock_time = 1_735_689_600;
    timelocked.expiry_height = 0x00ab_cdef;
    valid.push(valid_tx(
        "timelocked_long_scripts",
        "lock_time is a UNIX time (>= 500,000,000), sequences are not final, a 300-byte output script and a 300-byte witness item use the 3-byte compact size 0xfd2c01, the first witness item is empty.",
        &timelocked,
    ));

    let mut unsigned = chain.txs[0].2.clone();
    if let Some(iss) = &mut unsigned.inputs[0].issuance {
        iss.signature = None;
    }
    valid.push(valid_tx(
        "unsigned_issuance",
        "The first transaction before the issuer signed: signature flag 0. Same txid as issue_cash_on_null_input, different wtxid. It decodes and passes the context-free checks; the node refuses it for the missing signature.",
        &unsigned,
    ));
    assert_eq!(unsigned.txid(), chain.txs[0].2.txid());

    let share_bytes = contract_bytes(&share_contract());
    let quoted_bytes = contract_bytes(&quoted_name_contract());
    let two_issuances = tx(
        vec![
            TxIn {
                prevout: OutPoint::NULL,
                sequence: SEQUENCE_FINAL,
                issuance: Some(Issuance {
                    kind: IssuanceKind::New {
                        contract: share_bytes.clone(),
                    },
                    amount: units(1_000_000),
                    signature: Some(sig64("share issuance")),
                }),
                witness: Witness::default(),
            },
            TxIn {
                prevout: OutPoint::NULL,
                sequence: SEQUENCE_FINAL,
                issuance: Some(Issuance {
                    kind: IssuanceKind::New {
                        contract: quoted_bytes.clone(),
                    },
                    amount: Amount::MAX,
                    signature: Some(sig64("green bond issuance")),
                }),
                witness: Witness::default(),
            },
        ],
        vec![
            out(
                new_asset_id(&OutPoint::NULL, &contract_hash(&share_bytes)),
                1_000_000,
                p2k(KEY_CSD),
            ),
            out(
                new_asset_id(&OutPoint::NULL, &contract_hash(&quoted_bytes)),
                Amount::MAX.units(),
                p2k(KEY_CSD),
            ),
        ],
    );
    valid.push(valid_tx(
        "two_new_issuances_max_amount",
        "Two null inputs issue two different assets in one transaction; the second issues the largest amount, 2^63-1 units, and its contract has non-ASCII characters and escaped quotes.",
        &two_issuances,
    ));

    // Invalid encodings, made by editing the valid ones at known offsets.
    let t1 = serialize(&chain.txs[0].2);
    let t3_tx = &chain.txs[2].2;
    let t3 = serialize(t3_tx);
    let mut t3_base = Vec::new();
    t3_tx.encode_base(&mut t3_base);
    let mut t1_base = Vec::new();
    chain.txs[0].2.encode_base(&mut t1_base);
    // Offsets in t3 (one plain input, two outputs).
    let t3_inputs_count = 4;
    let t3_outputs_count = 4 + 1 + 41;
    let t3_out0_amount = t3_outputs_count + 1 + 32;
    let t3_out0_script_len = t3_out0_amount + 8;
    let t3_witness = t3_base.len();
    // Offsets in t1 (one null input with a new issuance).
    let t1_flag = 4 + 1 + 36 + 4;
    let t1_contract_len = t1_flag + 1;
    let contract_len = match &chain.txs[0].2.inputs[0].issuance {
        Some(Issuance {
            kind: IssuanceKind::New { contract },
            ..
        }) => contract.len(),
        _ => unreachable_msg(),
    };
    let t1_issued_amount = t1_contract_len + compact(contract_len as u64).len() + contract_len;
    let t1_sig_flag = t1_base.len() + 1;

    let invalid_encoding_vectors = vec![
        invalid_encoding("empty", "No bytes at all.", &[], "UnexpectedEnd", "version"),
        invalid_encoding(
            "truncated_last_byte",
            "transfer_with_change without its last byte.",
            &t3[..t3.len() - 1],
            "UnexpectedEnd",
            "witness item",
        ),
        invalid_encoding(
            "truncated_in_first_output",
            "transfer_with_change cut inside the first output's amount: two outputs need at least 82 bytes and fewer remain, so the output count is refused.",
            &t3[..t3_out0_amount + 3],
            "UnexpectedEnd",
            "outputs",
        ),
        invalid_encoding(
            "truncated_in_second_output",
            "transfer_with_change cut inside the second output's amount.",
            &t3[..t3_out0_script_len + 1 + 34 + 32 + 3],
            "UnexpectedEnd",
            "amount",
        ),
        invalid_encoding(
            "base_encoding_as_full",
            "The base encoding of transfer_with_change given where the full encoding is expected: the witness part is missing.",
            &t3_base,
            "UnexpectedEnd",
            "witness items",
        ),
        invalid_encoding(
            "trailing_byte",
            "transfer_with_change followed by one extra zero byte.",
            &[t3.as_slice(), &[0]].concat(),
            "TrailingBytes",
            "transaction",
        ),
        invalid_encoding(
            "non_canonical_input_count",
            "The input count 1 written as 0xfd0100.",
            &splice(&t3, t3_inputs_count, 1, &[0xfd, 0x01, 0x00]),
            "NonCanonicalCompactSize",
            "inputs",
        ),
        invalid_encoding(
            "non_canonical_script_length",
            "The first output's 34-byte script length written as 0xfd2200.",
            &splice(&t3, t3_out0_script_len, 1, &[0xfd, 0x22, 0x00]),
            "NonCanonicalCompactSize",
            "output script",
        ),
        invalid_encoding(
            "compact_size_over_max",
            "The input count is 0x02000001, over the largest compact size.",
            &splice(&t3, t3_inputs_count, 1, &[0xfe, 0x01, 0x00, 0x00, 0x02]),
            "TooLarge",
            "inputs",
        ),
        invalid_encoding(
            "too_many_inputs",
            "An input count of 2,501 (0xfdc509), one over the limit; refused before reading any input.",
            &[&1u32.to_le_bytes()[..], &compact(MAX_TX_INPUTS as u64 + 1)].concat(),
            "TooMany",
            "inputs",
        ),
        invalid_encoding(
            "input_count_beyond_data",
            "An input count of 2,500 followed by 4 bytes: 2,500 inputs need at least 102,500 bytes, so nothing is allocated.",
            &[
                &1u32.to_le_bytes()[..],
                &compact(MAX_TX_INPUTS as u64),
                &[0, 0, 0, 0],
            ]
            .concat(),
            "UnexpectedEnd",
            "inputs",
        ),
        invalid_encoding(
            "too_many_outputs",
            "No inputs, then an output count of 2,501.",
            &[
                &1u32.to_le_bytes()[..],
                &[0],
                &compact(MAX_TX_OUTPUTS as u64 + 1),
            ]
            .concat(),
            "TooMany",
            "outputs",
        ),
        invalid_encoding(
            "bad_issuance_flag",
            "issue_cash_on_null_input with issuance flag 3 (only 0, 1, 2 exist).",
            &splice(&t1, t1_flag, 1, &[3]),
            "Invalid",
            "issuance flag",
        ),
        invalid_encoding(
            "bad_issuance_signature_flag",
            "issue_cash_on_null_input with issuance signature flag 2 (only 0 and 1 exist).",
            &splice(&t1, t1_sig_flag, 1, &[2]),
            "Invalid",
            "issuance signature flag",
        ),
        invalid_encoding(
            "truncated_issuance_signature",
            "issue_cash_on_null_input cut 10 bytes into the issuance signature.",
            &t1[..t1_sig_flag + 1 + 10],
            "UnexpectedEnd",
            "issuance signature",
        ),
        invalid_encoding(
            "output_amount_over_max",
            "The first output's amount is 2^63, one over Amount::MAX.",
            &splice(&t3, t3_out0_amount, 8, &(1u64 << 63).to_le_bytes()),
            "Invalid",
            "amount",
        ),
        invalid_encoding(
            "issued_amount_over_max",
            "The issued amount is 2^64-1.",
            &splice(&t1, t1_issued_amount, 8, &u64::MAX.to_le_bytes()),
            "Invalid",
            "amount",
        ),
        invalid_encoding(
            "script_too_large",
            "The first output's script length is 10,001 bytes, over the limit; refused from the length alone.",
            &splice(
                &t3,
                t3_out0_script_len,
                1,
                &compact(MAX_SCRIPT_PUBKEY_BYTES as u64 + 1),
            ),
            "TooLarge",
            "output script",
        ),
        invalid_encoding(
            "contract_too_large",
            "The contract length is 4,097 bytes, over the limit; refused from the length alone.",
            &splice(
                &t1,
                t1_contract_len,
                compact(contract_len as u64).len(),
                &compact(MAX_CONTRACT_BYTES as u64 + 1),
            ),
            "TooLarge",
            "asset contract",
        ),
        invalid_encoding(
            "too_many_witness_items",
            "A witness stack of 101 items, one over the limit.",
            &splice(&t3, t3_witness, 1, &compact(MAX_WITNESS_ITEMS as u64 + 1)),
            "TooMany",
            "witness items",
        ),
        invalid_encoding(
            "witness_item_too_large",
            "A witness item of 10,001 bytes, over the limit.",
            &splice(
                &t3,
                t3_witness + 1,
                1,
                &compact(MAX_WITNESS_ITEM_BYTES as u64 + 1),
            ),
            "TooLarge",
            "witness item",
        ),
    ];

    // Transactions that decode but fail the context-free checks.
    let base = t3_tx.clone();
    let eur_bytes = contract_bytes(&eur_contract());
    let null_new = |contract: Vec<u8>, amount: u64| TxIn {
        prevout: OutPoint::NULL,
        sequence: SEQUENCE_FINAL,
        issuance: Some(Issuance {
            kind: IssuanceKind::New { contract },
            amount: units(amount),
            signature: None,
        }),
        witness: Witness::default(),
    };
    let mut v3 = base.clone();
    v3.version = 3;
    let mut membership_with_inputs = base.clone();
    membership_with_inputs.version = 2;
    let mut v0 = base.clone();
    v0.version = 0;
    let mut no_inputs = base.clone();
    no_inputs.inputs.clear();
    let mut no_outputs = base.clone();
    no_outputs.outputs.clear();
    let mut zero_output = base.clone();
    zero_output.outputs[1].amount = Amount::ZERO;
    let mut zero_issuance = chain.txs[1].2.clone();
    if let Some(iss) = &mut zero_issuance.inputs[0].issuance {
        iss.amount = Amount::ZERO;
    }
    let mut duplicate_input = chain.txs[3].2.clone();
    duplicate_input
        .inputs
        .push(duplicate_input.inputs[0].clone());
    let mut null_plain = base.clone();
    null_plain.inputs.push(spend(OutPoint::NULL, vec![]));
    let mut null_reissue = base.clone();
    null_reissue.inputs.push(TxIn {
        prevout: OutPoint::NULL,
        sequence: SEQUENCE_FINAL,
        issuance: Some(Issuance {
            kind: IssuanceKind::Reissue { asset: chain.eur },
            amount: units(1),
            signature: None,
        }),
        witness: Witness::default(),
    });
    let mut null_witness = chain.txs[0].2.clone();
    null_witness.inputs[0].witness = Witness(vec![vec![0x01]]);
    let spaced = String::from_utf8(eur_bytes.clone())
        .expect("utf8")
        .replace(',', ", ");
    let not_canonical = tx(
        vec![null_new(spaced.into_bytes(), 100)],
        vec![out(chain.eur, 100, p2k(KEY_ALICE))],
    );
    let bad_isin = String::from_utf8(contract_bytes(&bond_contract()))
        .expect("utf8")
        .replace("PTOTEVOE0018", "PTOTEVOE0017");
    let bad_isin_tx = tx(
        vec![null_new(bad_isin.into_bytes(), 100)],
        vec![out(chain.bond, 100, p2k(KEY_ALICE))],
    );
    let not_json = tx(
        vec![null_new(b"EUR".to_vec(), 100)],
        vec![out(chain.eur, 100, p2k(KEY_ALICE))],
    );
    let duplicate_new = tx(
        vec![
            null_new(eur_bytes.clone(), 100),
            null_new(eur_bytes.clone(), 200),
        ],
        vec![out(chain.eur, 300, p2k(KEY_ALICE))],
    );
    let mut late_version = no_outputs.clone();
    late_version.version = 7;

    let invalid_check_vectors = vec![
        invalid_check(
            "version_3",
            "Only versions 1 (moving assets) and 2 (membership changes) are defined.",
            &v3,
            "UnsupportedVersion",
            None,
            None,
        ),
        invalid_check(
            "membership_with_inputs",
            "Version 2 is a membership transaction: no inputs, one zero OP_RETURN output.",
            &membership_with_inputs,
            "MembershipShape",
            None,
            None,
        ),
        invalid_check(
            "version_0",
            "Only versions 1 and 2 are defined.",
            &v0,
            "UnsupportedVersion",
            None,
            None,
        ),
        invalid_check(
            "version_checked_first",
            "Version 7 and no outputs: the version is checked first.",
            &late_version,
            "UnsupportedVersion",
            None,
            None,
        ),
        invalid_check(
            "no_inputs",
            "A transaction must have an input.",
            &no_inputs,
            "NoInputs",
            None,
            None,
        ),
        invalid_check(
            "no_outputs",
            "A transaction must have an output.",
            &no_outputs,
            "NoOutputs",
            None,
            None,
        ),
        invalid_check(
            "zero_output",
            "Output 1 has amount 0.",
            &zero_output,
            "ZeroOutput",
            Some(1),
            None,
        ),
        invalid_check(
            "zero_issuance",
            "An issuance of 0 units.",
            &zero_issuance,
            "ZeroIssuance",
            Some(0),
            None,
        ),
        invalid_check(
            "duplicate_input",
            "Input 2 spends the same outpoint as input 0.",
            &duplicate_input,
            "DuplicateInput",
            Some(2),
            None,
        ),
        invalid_check(
            "null_input_without_issuance",
            "Input 1 has the null outpoint and no issuance.",
            &null_plain,
            "NullInputWithoutNewIssuance",
            Some(1),
            None,
        ),
        invalid_check(
            "null_input_with_reissuance",
            "Input 1 has the null outpoint and a reissuance: only a new issuance may stand on a null input.",
            &null_reissue,
            "NullInputWithoutNewIssuance",
            Some(1),
            None,
        ),
        invalid_check(
            "null_input_with_witness",
            "A null input with a witness stack item.",
            &null_witness,
            "NullInputWithWitness",
            Some(0),
            None,
        ),
        invalid_check(
            "contract_not_canonical",
            "The issued contract has spaces after its commas.",
            &not_canonical,
            "InvalidContract",
            Some(0),
            Some("NotCanonical"),
        ),
        invalid_check(
            "contract_bad_isin",
            "The issued contract's ISIN has a wrong check digit.",
            &bad_isin_tx,
            "InvalidContract",
            Some(0),
            Some("Invalid"),
        ),
        invalid_check(
            "contract_not_json",
            "The issued contract is the three bytes EUR.",
            &not_json,
            "InvalidContract",
            Some(0),
            Some("Json"),
        ),
        invalid_check(
            "duplicate_new_asset",
            "Two null inputs issue the same contract, which would give the same asset id twice.",
            &duplicate_new,
            "DuplicateNewAsset",
            Some(1),
            None,
        ),
    ];

    TransactionVectors {
        comment: vec![
            "Settle transaction vectors; see spec/transactions.md and spec/encoding.md.".into(),
            "valid: decodes from hex to tx, encodes back to hex, passes check_transaction; base_hex is the encoding without witness data; txid = tagged hash 'Settle/Txid' of base_hex, wtxid = tagged hash 'Settle/Wtxid' of hex.".into(),
            "Scripts, witness items and issuance signatures are example bytes: this layer does not interpret them (spec/script.md and spec/sighash.md do).".into(),
            "invalid_encoding: decoding hex as a transaction fails with error kind 'error' naming field 'what'.".into(),
            "invalid_check: decodes, but check_transaction fails with 'error' naming input/output 'index'.".into(),
            "conservation: check_conservation(tx, spent) gives 'result' with the flows or imbalances per asset, ordered by asset id bytes.".into(),
            "compact_size: read as a bare compact size.".into(),
        ],
        compact_size: compact_size_vectors(),
        valid,
        invalid_encoding: invalid_encoding_vectors,
        invalid_check: invalid_check_vectors,
        conservation: conservation_vectors(chain),
    }
}

fn unreachable_msg() -> ! {
    panic_msg("example chain changed shape")
}

fn conservation_case(
    name: &str,
    comment: &str,
    t: &Transaction,
    spent: &[TxOut],
    expect: &str,
) -> ConservationCase {
    let result = check_conservation(t, spent);
    let (got, flows, imbalances) = conservation_outcome(&result);
    if got != expect {
        panic_msg(&format!("{name}: expected {expect}, got {result:?}"));
    }
    ConservationCase {
        name: name.into(),
        comment: comment.into(),
        tx: TxJson::from_tx(t),
        spent: spent.iter().map(TxOutJson::from_txout).collect(),
        result: got,
        flows,
        imbalances,
    }
}

fn conservation_vectors(chain: &Chain) -> Vec<ConservationCase> {
    let mut cases: Vec<ConservationCase> = chain
        .txs
        .iter()
        .map(|(name, _, t, spent)| {
            conservation_case(
                name,
                "The example transaction of the same name in 'valid', with the coins it spends.",
                t,
                spent,
                "ok",
            )
        })
        .collect();
    let (_, _, t3, t3_spent) = &chain.txs[2];
    let mut excess = t3.clone();
    excess.outputs[0].amount = units(25_001);
    cases.push(conservation_case(
        "output_exceeds_input",
        "transfer_with_change paying Bob one unit more than Alice spends.",
        &excess,
        t3_spent,
        "Imbalance",
    ));
    let mut short = t3.clone();
    short.outputs[1].amount = units(74_000);
    cases.push(conservation_case(
        "outputs_fall_short",
        "transfer_with_change keeping 10.00 EUR back: there are no fees, a shortfall is as invalid as an excess.",
        &short,
        t3_spent,
        "Imbalance",
    ));
    let (_, _, t4, t4_spent) = &chain.txs[3];
    let mut swapped = t4.clone();
    swapped.outputs[0].asset = chain.eur;
    cases.push(conservation_case(
        "output_asset_changed",
        "dvp_swap_with_expiry with output 0 relabelled from BOND to EUR: both assets are out of balance.",
        &swapped,
        t4_spent,
        "Imbalance",
    ));
    let (_, _, t5, t5_spent) = &chain.txs[4];
    let mut over_issue = t5.clone();
    over_issue.outputs[1].amount = units(4_000_001);
    cases.push(conservation_case(
        "more_than_issued",
        "reissue_cash paying out one unit more than it spends and issues.",
        &over_issue,
        t5_spent,
        "Imbalance",
    ));
    let (_, _, t6, t6_spent) = &chain.txs[5];
    let mut unburned = t6.clone();
    unburned.outputs.remove(0);
    cases.push(conservation_case(
        "burn_dropped",
        "burn_security without its burn output: the 90 BOND vanish, which is not a burn.",
        &unburned,
        t6_spent,
        "Imbalance",
    ));
    let (_, _, t7, t7_spent) = &chain.txs[6];
    let mut swapped_loan = t7.clone();
    swapped_loan.outputs[1].asset = chain.bond;
    swapped_loan.outputs[1].amount = units(1);
    cases.push(conservation_case(
        "issued_asset_replaced",
        "open_loan_with_lending_position paying one BOND instead of the lending position it issues.",
        &swapped_loan,
        t7_spent,
        "Imbalance",
    ));
    cases.push(conservation_case(
        "spent_count_mismatch",
        "dvp_swap_with_expiry given only one spent coin for its two inputs.",
        t4,
        &t4_spent[..1],
        "SpentCountMismatch",
    ));
    cases
}

// ---------------------------------------------------------------------------------------
// asset_ids.json

fn asset_id_vectors(chain: &Chain) -> AssetIdVectors {
    let mut tagged = Vec::new();
    for tag in [
        "Settle/Txid",
        "Settle/Wtxid",
        "Settle/Contract",
        "Settle/AssetId",
        "Settle/Issuance",
        "Settle/Sighash",
    ] {
        for data in [&b""[..], b"abc"] {
            tagged.push(TaggedHashCase {
                tag: tag.into(),
                data_hex: hex::encode(data),
                hash: hex::encode(tagged_hash(tag, data)),
            });
        }
    }
    let t1 = chain.txs[0].2.txid();
    let some_txid = Txid(tagged_hash("Settle/Example", b"an earlier transaction"));
    let cases: Vec<(&str, OutPoint, AssetContract)> = vec![
        ("eur_on_null_outpoint", OutPoint::NULL, eur_contract()),
        ("bond_on_coin", OutPoint::new(t1, 2), bond_contract()),
        (
            "bond_contract_on_another_output",
            OutPoint::new(t1, 1),
            bond_contract(),
        ),
        ("share_on_coin", OutPoint::new(t1, 2), share_contract()),
        (
            "quoted_name_on_high_vout",
            OutPoint::new(some_txid, 0xdead_beef),
            quoted_name_contract(),
        ),
        (
            "lending_position_on_null_outpoint",
            OutPoint::NULL,
            loan_contract(chain.bond, chain.eur, true),
        ),
    ];
    let asset_ids = cases
        .into_iter()
        .map(|(name, outpoint, contract)| {
            let bytes = contract_bytes(&contract);
            let hash = contract_hash(&bytes);
            let outpoint_bytes = serialize(&outpoint);
            let preimage = [outpoint_bytes.as_slice(), hash.as_bytes()].concat();
            let id = new_asset_id(&outpoint, &hash);
            assert_eq!(id.0, tagged_hash("Settle/AssetId", &preimage));
            AssetIdCase {
                name: name.into(),
                outpoint: outpoint.to_string(),
                outpoint_hex: hex::encode(outpoint_bytes),
                contract: String::from_utf8(bytes).expect("utf8"),
                contract_hash: hash.to_string(),
                preimage_hex: hex::encode(preimage),
                asset_id: id.to_string(),
            }
        })
        .collect();
    AssetIdVectors {
        comment: vec![
            "tagged_hashes: SHA256(SHA256(tag) || SHA256(tag) || data), shown as the 32 bytes in order.".into(),
            "asset_ids: contract_hash = tagged hash 'Settle/Contract' of the contract's canonical bytes; asset_id = tagged hash 'Settle/AssetId' of outpoint (txid bytes || vout u32 LE) || contract_hash.".into(),
            "Every id is displayed as the hex of its bytes in wire order; nothing is reversed.".into(),
        ],
        tagged_hashes: tagged,
        asset_ids,
    }
}

// ---------------------------------------------------------------------------------------
// amounts.json

fn amount_vectors() -> AmountVectors {
    let parse_ok: &[(&str, u8, u64)] = &[
        ("1,000.50", 2, 100_050),
        ("1000.50", 2, 100_050),
        ("1000.5", 2, 100_050),
        ("1000", 2, 100_000),
        ("0.01", 2, 1),
        ("0", 2, 0),
        ("0.00", 2, 0),
        ("007", 0, 7),
        ("10", 0, 10),
        ("1,234,567", 0, 1_234_567),
        ("999", 0, 999),
        ("1,000", 0, 1_000),
        ("12,345.678", 3, 12_345_678),
        ("0.000000000000000001", 18, 1),
        ("9.223372036854775807", 18, i64::MAX as u64),
        ("9,223,372,036,854,775,807", 0, i64::MAX as u64),
        ("92,233,720,368,547.75807", 5, i64::MAX as u64),
    ];
    let parse_err: &[(&str, u8, &str)] = &[
        ("", 2, "Empty"),
        ("1.005", 2, "TooPrecise"),
        ("1.5", 0, "TooPrecise"),
        ("1.000", 2, "TooPrecise"),
        ("1,00.5", 2, "Malformed"),
        ("1000,000", 2, "Malformed"),
        ("1,0000", 2, "Malformed"),
        (",100", 2, "Malformed"),
        ("1,", 2, "Malformed"),
        ("0,500", 3, "Malformed"),
        ("-1", 2, "Malformed"),
        ("+1", 2, "Malformed"),
        ("1e3", 2, "Malformed"),
        (".5", 2, "Malformed"),
        ("5.", 2, "Malformed"),
        (" 5", 2, "Malformed"),
        ("5 ", 2, "Malformed"),
        ("1.2.3", 2, "Malformed"),
        ("1.000,50", 2, "Malformed"),
        ("1 000", 0, "Malformed"),
        ("١٢", 0, "Malformed"),
        ("EUR", 2, "Malformed"),
        ("9223372036854775808", 0, "TooLarge"),
        ("9.223372036854775808", 18, "TooLarge"),
        ("10", 18, "TooLarge"),
        ("99999999999999999999999", 0, "TooLarge"),
        ("1", 19, "BadPrecision"),
    ];
    let mut parse = Vec::new();
    for &(input, precision, expect) in parse_ok {
        let got = Amount::parse_decimal(input, precision).map(Amount::units);
        assert_eq!(got, Ok(expect), "parse {input:?} at {precision}");
        parse.push(AmountParseCase {
            input: input.into(),
            precision,
            units: Some(expect),
            error: None,
        });
    }
    for &(input, precision, kind) in parse_err {
        match Amount::parse_decimal(input, precision) {
            Err(e) if amount_error_kind(&e) == kind => {}
            other => panic_msg(&format!(
                "parse {input:?} at {precision}: expected {kind}, got {other:?}"
            )),
        }
        parse.push(AmountParseCase {
            input: input.into(),
            precision,
            units: None,
            error: Some(kind.into()),
        });
    }
    let display_cases: &[(u64, u8)] = &[
        (0, 0),
        (0, 2),
        (1, 2),
        (5, 3),
        (999, 0),
        (1_000, 0),
        (100_050, 2),
        (123_456_789, 2),
        (1_000_000_000, 0),
        (1_000_000_000, 9),
        (i64::MAX as u64, 0),
        (i64::MAX as u64, 2),
        (i64::MAX as u64, 18),
        (1, 18),
    ];
    let display = display_cases
        .iter()
        .map(|&(n, precision)| {
            let a = units(n);
            let decimal = a.to_decimal_string(precision);
            let plain = a.to_plain_string(precision);
            assert_eq!(Amount::parse_decimal(&decimal, precision), Ok(a));
            assert_eq!(Amount::parse_decimal(&plain, precision), Ok(a));
            AmountDisplayCase {
                units: n,
                precision,
                decimal,
                plain,
            }
        })
        .collect();
    let encoding = [0u64, 1, 100_050, 0x0102_0304_0506_0708, i64::MAX as u64]
        .iter()
        .map(|&n| AmountEncodingCase {
            units: n,
            hex: hex::encode(serialize(&units(n))),
        })
        .collect();
    let bad: &[(&str, &str, &str, &str)] = &[
        (
            "two_to_the_63",
            "0000000000000080",
            "Invalid",
            "2^63 is one over the maximum 2^63-1",
        ),
        ("all_ones", "ffffffffffffffff", "Invalid", "2^64-1"),
        (
            "seven_bytes",
            "01000000000000",
            "UnexpectedEnd",
            "an amount is always 8 bytes",
        ),
    ];
    let invalid_encoding = bad
        .iter()
        .map(|&(name, hex_str, error, comment)| {
            let bytes = hex::decode(hex_str).expect("hex");
            match deserialize::<Amount>(&bytes) {
                Err(e) if decode_error_kind(&e) == (error, "amount") => {}
                other => panic_msg(&format!("amount {name}: got {other:?}")),
            }
            InvalidEncoding {
                name: name.into(),
                comment: comment.into(),
                hex: hex_str.into(),
                error: error.into(),
                what: "amount".into(),
            }
        })
        .collect();
    AmountVectors {
        comment: vec![
            "parse: Amount::parse_decimal(input, precision) gives units or the error kind.".into(),
            "display: to_decimal_string (thousands separators) and to_plain_string (none); both parse back to units.".into(),
            "encoding: an amount is its units as u64 little-endian, at most 2^63-1.".into(),
        ],
        parse,
        display,
        encoding,
        invalid_encoding,
    }
}

// ---------------------------------------------------------------------------------------
// contracts.json

fn contract_vectors(chain: &Chain) -> ContractVectors {
    let people_style = |c: &AssetContract| -> String {
        // Pretty-printed with the keys in reverse order: what a person might write.
        let canonical = String::from_utf8(contract_bytes(c)).expect("utf8");
        let value: serde_json::Value = serde_json::from_str(&canonical).expect("json");
        let mut text = String::from("{\n");
        let map = value.as_object().expect("object");
        let entries: Vec<_> = map.iter().rev().collect();
        for (i, (k, v)) in entries.iter().enumerate() {
            let v = serde_json::to_string_pretty(v).expect("json");
            text.push_str(&format!("  \"{k}\": {}", v.replace('\n', "\n  ")));
            text.push_str(if i + 1 < entries.len() { ",\n" } else { "\n" });
        }
        text.push('}');
        text
    };
    let examples: Vec<(&str, AssetContract)> = vec![
        ("cash_eur", eur_contract()),
        ("security_bond", bond_contract()),
        ("security_share_not_reissuable", share_contract()),
        ("security_quoted_non_ascii_name", quoted_name_contract()),
        (
            "lending_position_with_roles",
            loan_contract(chain.bond, chain.eur, true),
        ),
        (
            "lending_position_without_roles",
            loan_contract(chain.bond, chain.eur, false),
        ),
    ];
    let valid = examples
        .iter()
        .map(|(name, c)| {
            let json = people_style(c);
            let parsed = AssetContract::from_json(&json).expect("valid");
            assert_eq!(&parsed, c);
            let canonical = contract_bytes(c);
            assert_eq!(
                AssetContract::from_canonical_bytes(&canonical).as_ref(),
                Ok(c)
            );
            let text = String::from_utf8(canonical.clone()).expect("utf8");
            ValidContract {
                name: (*name).into(),
                json,
                canonical: text,
                contract_hash: contract_hash(&canonical).to_string(),
                class: c.class.name().into(),
                ticker: c.ticker.clone(),
                precision: c.precision,
                reissuable: c.reissuable,
            }
        })
        .collect();

    let eur = String::from_utf8(contract_bytes(&eur_contract())).expect("utf8");
    let bond = String::from_utf8(contract_bytes(&bond_contract())).expect("utf8");
    let loan = String::from_utf8(contract_bytes(&loan_contract(chain.bond, chain.eur, true)))
        .expect("utf8");
    let with = |base: &str, from: &str, to: &str| -> String {
        assert!(base.contains(from), "{from} not in {base}");
        base.replacen(from, to, 1)
    };
    let eur_value: serde_json::Value = serde_json::from_str(&eur).expect("json");
    let mut reordered = String::from("{");
    let obj = eur_value.as_object().expect("object");
    for (i, (k, v)) in obj.iter().rev().enumerate() {
        if i > 0 {
            reordered.push(',');
        }
        reordered.push_str(&format!("{}:{}", serde_json::Value::from(k.as_str()), v));
    }
    reordered.push('}');
    let oversized = with(
        &eur,
        "\"name\":\"Euro central bank money\"",
        &format!("\"name\":\"{}\"", "x".repeat(MAX_CONTRACT_BYTES)),
    );
    let long_name = format!("\"name\":\"{}\"", "n".repeat(65));
    let terms_start = "\"terms\":{";
    let cases: Vec<(&str, &str, String, &str, Option<&str>)> = vec![
        (
            "spaces",
            "canonical",
            eur.replace(',', ", "),
            "NotCanonical",
            None,
        ),
        (
            "keys_out_of_order",
            "canonical",
            reordered,
            "NotCanonical",
            None,
        ),
        (
            "trailing_newline",
            "canonical",
            format!("{eur}\n"),
            "NotCanonical",
            None,
        ),
        (
            "escaped_letter",
            "canonical",
            with(&eur, "\"EUR\",\"issuer\"", "\"\\u0045UR\",\"issuer\""),
            "NotCanonical",
            None,
        ),
        (
            "duplicate_key",
            "canonical",
            with(&eur, "{", "{\"class\":\"cash\","),
            "NotCanonical",
            None,
        ),
        (
            "negative_zero",
            "canonical",
            with(&bond, "\"precision\":0", "\"precision\":-0"),
            "Invalid",
            Some("precision"),
        ),
        ("too_large", "canonical", oversized, "TooLarge", None),
        ("not_json", "canonical", "{\"class\":".into(), "Json", None),
        ("not_an_object", "canonical", "[]".into(), "Json", None),
        (
            "float_precision",
            "canonical",
            with(&eur, "\"precision\":2", "\"precision\":2.0"),
            "Invalid",
            Some("precision"),
        ),
        (
            "unknown_field",
            "json",
            with(&eur, "{", "{\"extra\":1,"),
            "Unknown",
            Some("extra"),
        ),
        (
            "field_of_another_class",
            "json",
            with(&bond, "{", "{\"currency\":\"EUR\","),
            "Unknown",
            Some("currency"),
        ),
        (
            "missing_class",
            "json",
            with(&eur, "\"class\":\"cash\",", ""),
            "Missing",
            Some("class"),
        ),
        (
            "unknown_class",
            "json",
            with(&eur, "\"class\":\"cash\"", "\"class\":\"bond\""),
            "Invalid",
            Some("class"),
        ),
        (
            "missing_isin",
            "json",
            with(&bond, "\"isin\":\"PTOTEVOE0018\",", ""),
            "Missing",
            Some("isin"),
        ),
        (
            "isin_check_digit",
            "json",
            with(&bond, "PTOTEVOE0018", "PTOTEVOE0019"),
            "Invalid",
            Some("isin"),
        ),
        (
            "isin_lowercase",
            "json",
            with(&bond, "PTOTEVOE0018", "ptotevoe0018"),
            "Invalid",
            Some("isin"),
        ),
        (
            "missing_currency",
            "json",
            with(&eur, "\"currency\":\"EUR\",", ""),
            "Missing",
            Some("currency"),
        ),
        (
            "currency_not_iso",
            "json",
            with(&eur, "\"currency\":\"EUR\"", "\"currency\":\"EUX\""),
            "Invalid",
            Some("currency"),
        ),
        (
            "currency_lowercase",
            "json",
            with(&eur, "\"currency\":\"EUR\"", "\"currency\":\"eur\""),
            "Invalid",
            Some("currency"),
        ),
        (
            "ticker_lowercase",
            "json",
            with(&eur, "\"ticker\":\"EUR\"", "\"ticker\":\"eur\""),
            "Invalid",
            Some("ticker"),
        ),
        (
            "ticker_too_long",
            "json",
            with(&eur, "\"ticker\":\"EUR\"", "\"ticker\":\"ABCDEFGHIJKLM\""),
            "Invalid",
            Some("ticker"),
        ),
        (
            "ticker_leading_dash",
            "json",
            with(&eur, "\"ticker\":\"EUR\"", "\"ticker\":\"-EUR\""),
            "Invalid",
            Some("ticker"),
        ),
        (
            "name_empty",
            "json",
            with(
                &eur,
                "\"name\":\"Euro central bank money\"",
                "\"name\":\"\"",
            ),
            "Invalid",
            Some("name"),
        ),
        (
            "name_too_long",
            "json",
            with(&eur, "\"name\":\"Euro central bank money\"", &long_name),
            "Invalid",
            Some("name"),
        ),
        (
            "name_leading_space",
            "json",
            with(&eur, "\"name\":\"Euro", "\"name\":\" Euro"),
            "Invalid",
            Some("name"),
        ),
        (
            "name_control_character",
            "json",
            with(&eur, "\"name\":\"Euro ", "\"name\":\"Euro\\n"),
            "Invalid",
            Some("name"),
        ),
        (
            "name_not_a_string",
            "json",
            with(&eur, "\"name\":\"Euro central bank money\"", "\"name\":42"),
            "Invalid",
            Some("name"),
        ),
        (
            "precision_19",
            "json",
            with(&eur, "\"precision\":2", "\"precision\":19"),
            "Invalid",
            Some("precision"),
        ),
        (
            "precision_256",
            "json",
            with(&eur, "\"precision\":2", "\"precision\":256"),
            "Invalid",
            Some("precision"),
        ),
        (
            "precision_negative",
            "json",
            with(&eur, "\"precision\":2", "\"precision\":-1"),
            "Invalid",
            Some("precision"),
        ),
        (
            "issuer_uppercase",
            "json",
            with(&eur, KEY_CENTRAL_BANK, &KEY_CENTRAL_BANK.to_uppercase()),
            "Invalid",
            Some("issuer"),
        ),
        (
            "issuer_short",
            "json",
            with(&eur, KEY_CENTRAL_BANK, &KEY_CENTRAL_BANK[..62]),
            "Invalid",
            Some("issuer"),
        ),
        (
            "reissuable_not_bool",
            "json",
            with(&eur, "\"reissuable\":true", "\"reissuable\":\"yes\""),
            "Invalid",
            Some("reissuable"),
        ),
        (
            "missing_reissuable",
            "json",
            with(&eur, ",\"reissuable\":true", ""),
            "Missing",
            Some("reissuable"),
        ),
        (
            "missing_terms",
            "json",
            with(
                &eur,
                "\"class\":\"cash\",\"currency\":\"EUR\"",
                "\"class\":\"lending_position\"",
            ),
            "Missing",
            Some("terms"),
        ),
        (
            "terms_not_an_object",
            "json",
            with(
                &eur,
                "\"class\":\"cash\",\"currency\":\"EUR\"",
                "\"class\":\"lending_position\",\"terms\":[]",
            ),
            "Invalid",
            Some("terms"),
        ),
        (
            "terms_missing_security_asset",
            "json",
            with(
                &loan,
                &format!("\"security_asset\":\"{}\",", chain.bond),
                "",
            ),
            "Missing",
            Some("terms.security_asset"),
        ),
        (
            "terms_bad_collateral_asset",
            "json",
            with(
                &loan,
                &format!("\"collateral_asset\":\"{}\"", chain.eur),
                "\"collateral_asset\":\"EUR\"",
            ),
            "Invalid",
            Some("terms.collateral_asset"),
        ),
        (
            "terms_unknown_field",
            "json",
            with(&loan, terms_start, "\"terms\":{\"state\":\"lent\","),
            "Unknown",
            Some("terms.state"),
        ),
        (
            "terms_same_lender_and_borrower",
            "json",
            with(&loan, KEY_BOB, KEY_ALICE),
            "Invalid",
            Some("terms.borrower"),
        ),
        (
            "terms_maturity_not_after_settlement",
            "json",
            with(&loan, "\"maturity_height\":1100", "\"maturity_height\":100"),
            "Invalid",
            Some("terms.maturity_height"),
        ),
        (
            "terms_zero_quantity",
            "json",
            with(&loan, "\"quantity\":10", "\"quantity\":0"),
            "Invalid",
            Some("terms.quantity"),
        ),
        (
            "terms_zero_collateral",
            "json",
            with(
                &loan,
                "\"collateral_amount\":110000",
                "\"collateral_amount\":0",
            ),
            "Invalid",
            Some("terms.collateral_amount"),
        ),
        (
            "terms_rate_over_u32",
            "json",
            with(
                &loan,
                "\"interest_rate_bps\":150",
                "\"interest_rate_bps\":4294967296",
            ),
            "Invalid",
            Some("terms.interest_rate_bps"),
        ),
        (
            "terms_bad_isin",
            "json",
            with(
                &loan,
                "\"isin\":\"PTOTEVOE0018\"",
                "\"isin\":\"PTOTEVOE0010\"",
            ),
            "Invalid",
            Some("terms.isin"),
        ),
        (
            "terms_empty_negotiator",
            "json",
            with(
                &loan,
                "\"negotiator\":\"Banco Exemplo\"",
                "\"negotiator\":\"\"",
            ),
            "Invalid",
            Some("terms.negotiator"),
        ),
    ];
    let invalid = cases
        .into_iter()
        .map(|(name, parser, input, error, field)| {
            let got = match parser {
                "canonical" => AssetContract::from_canonical_bytes(input.as_bytes()),
                _ => AssetContract::from_json(&input),
            };
            match &got {
                Err(e) if contract_error_kind(e) == (error, field.map(str::to_owned)) => {}
                other => panic_msg(&format!(
                    "contract {name}: expected {error} {field:?}, got {other:?}"
                )),
            }
            // A case for the lenient parser must fail the strict one too.
            if parser == "json" {
                assert!(AssetContract::from_canonical_bytes(input.as_bytes()).is_err());
            }
            InvalidContract {
                name: name.into(),
                parser: parser.into(),
                input,
                error: error.into(),
                field: field.map(str::to_owned),
            }
        })
        .collect();

    let isins = [
        "US0378331005",
        "US5949181045",
        "DE000BAY0017",
        "PTOTEVOE0018",
        "GB0002634946",
        "AU0000XVGZA3",
        "FR0000130809",
        "XS2021896011",
        "US0378331006",
        "AU0000XVGZA4",
        "us0378331005",
        "US037833100",
        "US03783310055",
        "1S0378331005",
        "US037833100X",
        "US03783310_5",
    ];
    let isin = isins
        .iter()
        .map(|s| {
            let bytes = s.as_bytes();
            let well_formed = bytes.len() >= 11
                && bytes[..2].iter().all(u8::is_ascii_uppercase)
                && bytes[2..11]
                    .iter()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
            IsinCase {
                isin: (*s).into(),
                valid: validate_isin(s, "isin").is_ok(),
                check_digit: well_formed.then(|| isin_check_digit(&bytes[..11])),
            }
        })
        .collect();

    // The canonical writer must agree with the documented rule on a nested value.
    let nested: serde_json::Value =
        serde_json::from_str(r#"{"b":[1,{"d":true,"c":"x"}],"a":"é\"\\/"}"#).expect("json");
    assert_eq!(
        canonical_json(&nested),
        r#"{"a":"é\"\\/","b":[1,{"c":"x","d":true}]}"#
    );

    ContractVectors {
        comment: vec![
            "valid: from_json(json) gives the contract whose canonical bytes are 'canonical'; contract_hash = tagged hash 'Settle/Contract' of those bytes.".into(),
            "invalid: parser 'canonical' is from_canonical_bytes (what the chain accepts), 'json' is from_json (what tools accept); error is the ContractError kind and field the field it names.".into(),
            "isin: ISO 6166 with the Luhn check digit; check_digit is what the first 11 characters call for.".into(),
            "currencies: every ISO 4217 code a cash contract may name.".into(),
        ],
        valid,
        invalid,
        isin,
        currencies: ISO_4217_CODES.iter().map(|c| (*c).to_owned()).collect(),
    }
}

// ---------------------------------------------------------------------------------------
// membership.json (spec/chain.md, "Membership changes")

fn membership_vectors() -> serde_json::Value {
    use settle_chain::{Membership, MembershipChange, MembershipOp, Validator, ValidatorSet};
    let keypair = |i: u8| {
        secp256k1::Keypair::from_seckey_byte_array(secp256k1::SECP256K1, [i; 32])
            .expect("a valid secret")
    };
    let xonly = |i: u8| keypair(i).x_only_public_key().0.serialize();
    let chain_id = settle_assets::hash::ChainId([0x5e; 32]);
    let validators = ValidatorSet::new(
        (1..=4)
            .map(|i| Validator {
                name: format!("validator-{i}"),
                key: xonly(i),
                power: 10,
            })
            .collect(),
    )
    .expect("valid set");
    let membership = Membership::new(validators, vec![xonly(9)]).expect("valid membership");
    let mut change = MembershipChange {
        activation_height: 120,
        base: membership.hash(),
        ops: vec![
            MembershipOp::SetValidator {
                key: xonly(4),
                power: 0,
            },
            MembershipOp::SetValidator {
                key: xonly(5),
                power: 20,
            },
            MembershipOp::Permit { key: xonly(8) },
            MembershipOp::Revoke { key: xonly(9) },
        ],
        signatures: Vec::new(),
    };
    let digest = change.digest(&chain_id);
    for i in 1..=3 {
        change.sign(&keypair(i), &chain_id);
    }
    let result = change.apply(&membership).expect("applies");
    let tx = change.to_transaction();
    let pending = change.check(
        &settle_chain::MembershipState::settled(membership.clone()),
        100,
        &chain_id,
        tx.txid(),
    );
    assert!(pending.is_ok(), "the example change is valid: {pending:?}");
    let body = serialize(&change);
    let mut bad_version = body.clone();
    bad_version[0] = 2;
    let mut bad_kind = body.clone();
    bad_kind[1 + 8 + 32 + 1] = 4;
    let mut permit_with_power = body.clone();
    // The third edit (a permit): its power field is its last 8 bytes.
    let third_power = 1 + 8 + 32 + 1 + 3 * 41 - 8;
    permit_with_power[third_power] = 1;
    let keys = |m: &Membership| -> Vec<serde_json::Value> {
        m.validators
            .validators()
            .iter()
            .map(|v| serde_json::json!({"key": hex::encode(v.key), "power": v.power}))
            .collect()
    };
    serde_json::json!({
        "description": "A membership change (spec/chain.md, 'Membership changes'). Validator i has the secret key of 32 bytes all equal to i; signatures are BIP340 with no auxiliary randomness. The change removes validator 4, adds validator 5 with power 20, permits node 8 and revokes node 9; validators 1 to 3 (30 of 40) sign.",
        "chain_id": chain_id.to_string(),
        "membership": {
            "validators": keys(&membership),
            "permitted": membership.permitted.iter().map(hex::encode).collect::<Vec<_>>(),
            "validator_set_hash": hex::encode(membership.validators.hash()),
            "hash": hex::encode(membership.hash()),
        },
        "change": {
            "activation_height": change.activation_height,
            "included_at_height": 100,
            "digest": hex::encode(digest),
            "body": hex::encode(&body),
            "transaction": hex::encode(serialize(&tx)),
            "txid": tx.txid().to_string(),
        },
        "result": {
            "validators": keys(&result),
            "permitted": result.permitted.iter().map(hex::encode).collect::<Vec<_>>(),
            "hash": hex::encode(result.hash()),
        },
        "invalid_bodies": [
            {"name": "unknown body version", "body": hex::encode(&bad_version), "error": "membership change version"},
            {"name": "unknown edit kind", "body": hex::encode(&bad_kind), "error": "membership edit kind"},
            {"name": "a permit carrying power", "body": hex::encode(&permit_with_power), "error": "membership edit power"},
            {"name": "truncated", "body": hex::encode(&body[..body.len() - 1]), "error": "membership signature"},
        ],
    })
}

// ---------------------------------------------------------------------------------------

fn write_json<T: Serialize>(dir: &std::path::Path, name: &str, value: &T) {
    let mut text = serde_json::to_string_pretty(value).expect("serializable");
    text.push('\n');
    let path = dir.join(name);
    std::fs::write(&path, text)
        .unwrap_or_else(|e| panic_msg(&format!("cannot write {}: {e}", path.display())));
    println!("wrote {}", path.display());
}

#[derive(Serialize)]
struct ChainspecExample {
    description: &'static str,
    spec: &'static str,
    chain_id: String,
    params_hash: String,
    validator_set_hash: String,
    merkle_root: String,
    utxo_commitment: String,
    total_voting_power: u64,
    allocations: Vec<ChainspecAllocation>,
    genesis_block: String,
}

#[derive(Serialize)]
struct ChainspecAllocation {
    asset: String,
    txid: String,
    units: Vec<u64>,
}

#[derive(Serialize, serde::Deserialize)]
struct ChainspecErrors {
    description: String,
    spec: String,
    cases: Vec<ChainspecErrorCase>,
}

#[derive(Serialize, serde::Deserialize)]
struct ChainspecErrorCase {
    description: String,
    replace: String,
    with: String,
    error_contains: Vec<String>,
}

/// `chainspec-example.json` from `chainspec-example.toml`.
fn chainspec_example_vectors(dir: &std::path::Path) -> ChainspecExample {
    use settle_chain::ChainSpec;
    let path = dir.join("chainspec-example.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic_msg(&format!("cannot read {}: {e}", path.display())));
    let spec = ChainSpec::from_toml_str(&text)
        .unwrap_or_else(|e| panic_msg(&format!("chainspec-example.toml: {e}")));
    let genesis = spec
        .genesis()
        .unwrap_or_else(|e| panic_msg(&format!("genesis: {e}")));
    let header = &genesis.block.header;
    let allocations = genesis
        .block
        .transactions
        .iter()
        .map(|tx| ChainspecAllocation {
            asset: tx.outputs[0].asset.to_string(),
            txid: tx.txid().to_string(),
            units: tx.outputs.iter().map(|o| o.amount.units()).collect(),
        })
        .collect();
    ChainspecExample {
        description: "Expected results for chainspec-example.toml (spec/chain.md, 'Chain spec' and 'Genesis'). genesis_block is the full canonical encoding of the genesis block, certificate included.",
        spec: "chainspec-example.toml",
        chain_id: genesis.chain_id.to_string(),
        params_hash: hex::encode(spec.params_hash()),
        validator_set_hash: hex::encode(spec.validators.hash()),
        merkle_root: hex::encode(header.merkle_root),
        utxo_commitment: hex::encode(header.utxo_commitment),
        total_voting_power: spec.validators.total_power(),
        allocations,
        genesis_block: hex::encode(serialize(&genesis.block)),
    }
}

/// `chainspec-errors.json` (hand-written cases) with the chain id its mismatch case
/// expects brought up to date.
fn chainspec_errors_with_chain_id(dir: &std::path::Path, chain_id: &str) -> ChainspecErrors {
    let path = dir.join("chainspec-errors.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic_msg(&format!("cannot read {}: {e}", path.display())));
    let mut errors: ChainspecErrors = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic_msg(&format!("chainspec-errors.json: {e}")));
    let case = errors
        .cases
        .iter_mut()
        .find(|c| c.description == "a chain id that does not match")
        .unwrap_or_else(|| panic_msg("no chain id mismatch case"));
    case.error_contains = vec!["chain_id".into(), chain_id.into()];
    errors
}

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(vectors_dir);
    if !dir.is_dir() {
        panic_msg(&format!("{} is not a directory", dir.display()));
    }
    let chain = example_chain();
    write_json(&dir, "transactions.json", &transaction_vectors(&chain));
    write_json(&dir, "asset_ids.json", &asset_id_vectors(&chain));
    write_json(&dir, "amounts.json", &amount_vectors());
    write_json(&dir, "contracts.json", &contract_vectors(&chain));
    write_json(&dir, "membership.json", &membership_vectors());
    let example = chainspec_example_vectors(&dir);
    write_json(&dir, "chainspec-example.json", &example);
    let errors = chainspec_errors_with_chain_id(&dir, &example.chain_id);
    write_json(&dir, "chainspec-errors.json", &errors);
}
