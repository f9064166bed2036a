//! Writes `spec/vectors/lending.json` (see `spec/lending.md`, "Test vectors").
//!
//! ```text
//! cargo run -p settle-script --example gen_lending_vectors
//! ```
//!
//! Expected results (`OK` or an error name, the path, the opening defect) are typed in
//! by hand below; only scripts, digests and BIP340 signatures (without auxiliary
//! randomness) are computed, so re-running the generator reproduces the file byte for
//! byte. `tests/lending.rs` checks the crate against it.
#![allow(clippy::print_stdout)]

use std::fs;
use std::path::PathBuf;

use secp256k1::{Keypair, SECP256K1};
use serde_json::{Value, json};
use settle_assets::encode::serialize;
use settle_assets::transaction::SEQUENCE_FINAL;
use settle_assets::{
    Amount, AssetClass, AssetId, ChainId, Issuance, IssuanceKind, LendingTerms, OutPoint,
    Transaction, TxIn, TxOut, Txid, Witness,
};
use settle_script::addresses::{Address, Network};
use settle_script::lending::{
    CLAIM_SEQUENCE, Escrow, EscrowParams, RETURN_HASH_TYPE, check_opening, escrow_script,
    position_contract,
};
use settle_script::{PrecomputedTx, SighashType, disassemble, p2k, sign_schnorr_no_aux_rand};

const CHAIN: ChainId = ChainId([0x5e; 32]);
const LENDER: u8 = 0x11;
const BORROWER: u8 = 0x12;
const STRANGER: u8 = 0x13;
const ISSUER: u8 = 0x14;
const SECURITY: AssetId = AssetId([0xb0; 32]);
const EUR: AssetId = AssetId([0xe0; 32]);

fn keypair(i: u8) -> Keypair {
    Keypair::from_seckey_byte_array(SECP256K1, [i; 32]).expect("valid secret key")
}

fn xonly(i: u8) -> [u8; 32] {
    keypair(i).x_only_public_key().0.serialize()
}

fn units(n: u64) -> Amount {
    Amount::from_units(n).expect("in range")
}

fn pay(asset: AssetId, n: u64, to: u8) -> TxOut {
    TxOut {
        asset,
        amount: units(n),
        script_pubkey: p2k(&keypair(to).x_only_public_key().0),
    }
}

fn terms() -> LendingTerms {
    LendingTerms {
        isin: "PTOTEVOE0018".into(),
        security_asset: SECURITY,
        quantity: 10,
        lender: xonly(LENDER),
        borrower: xonly(BORROWER),
        collateral_asset: EUR,
        collateral_amount: 50_000,
        fee_asset: EUR,
        fee: 1_000,
        interest_rate_bps: 250,
        settlement_height: 5,
        maturity_height: 20,
        grace_period_blocks: 5,
        negotiator: Some("Banco de Portugal".into()),
        lender_player: Some("BdP lending desk".into()),
    }
}

/// Signs input `input` of `tx` (spending `spent`) deterministically.
fn sign(
    tx: &Transaction,
    spent: &[TxOut],
    input: usize,
    code: &[u8],
    key: u8,
    ty: SighashType,
) -> Vec<u8> {
    let cache = PrecomputedTx::new(tx, spent, CHAIN).expect("one spent output per input");
    let digest = cache.sighash(input, ty, code).expect("digest");
    sign_schnorr_no_aux_rand(&keypair(key), &digest, ty)
}

fn hex_tx(tx: &Transaction) -> String {
    hex::encode(serialize(tx))
}

fn hex_outs(outs: &[TxOut]) -> Vec<String> {
    outs.iter().map(|o| hex::encode(serialize(o))).collect()
}

struct World {
    contract: Vec<u8>,
    issuing_outpoint: OutPoint,
    position: AssetId,
    escrow: Escrow,
    opening: Transaction,
    escrow_outpoint: OutPoint,
    escrow_output: TxOut,
    presignature: Vec<u8>,
    /// The borrower's coin of the 10 delivered units (the opening's output 0).
    delivered: (OutPoint, TxOut),
}

fn world() -> World {
    let t = terms();
    let contract = position_contract(&t, xonly(ISSUER))
        .to_canonical_bytes()
        .expect("valid contract");
    let issuing_outpoint = OutPoint::new(Txid([0x01; 32]), 0);
    let issuance = Issuance {
        kind: IssuanceKind::New {
            contract: contract.clone(),
        },
        amount: units(1),
        signature: None,
    };
    let position = issuance.asset_id(&issuing_outpoint);
    let escrow = Escrow::new(position, &t).expect("valid terms");
    let opening = Transaction {
        version: 1,
        inputs: vec![
            TxIn {
                issuance: Some(issuance),
                ..TxIn::spending(issuing_outpoint)
            },
            TxIn::spending(OutPoint::new(Txid([0x02; 32]), 3)),
        ],
        outputs: vec![
            pay(SECURITY, 10, BORROWER),
            escrow.output(EUR, 50_000).expect("in range"),
            pay(position, 1, LENDER),
            pay(EUR, 1_000, LENDER),
            pay(SECURITY, 90, LENDER),
            pay(EUR, 49_000, BORROWER),
        ],
        lock_time: 0,
        expiry_height: 5,
    };
    let escrow_outpoint = OutPoint::new(opening.txid(), 1);
    let escrow_output = opening.outputs[1].clone();
    let digest = escrow
        .return_digest(CHAIN, escrow_outpoint, &escrow_output)
        .expect("digest");
    let presignature = sign_schnorr_no_aux_rand(&keypair(LENDER), &digest, RETURN_HASH_TYPE);
    let delivered = (OutPoint::new(opening.txid(), 0), opening.outputs[0].clone());
    World {
        contract,
        issuing_outpoint,
        position,
        escrow,
        opening,
        escrow_outpoint,
        escrow_output,
        presignature,
        delivered,
    }
}

fn escrow_case(name: &str, params: &EscrowParams) -> Value {
    let script = escrow_script(params);
    json!({
        "name": name,
        "position": params.position.to_string(),
        "lender": hex::encode(params.lender.serialize()),
        "borrower": hex::encode(params.borrower.serialize()),
        "grace_end_height": params.grace_end_height,
        "script_hex": hex::encode(&script),
        "script_asm": disassemble(&script),
    })
}

/// What a return looks like: the escrow coin and the borrower's delivered coin in,
/// `returned` units to `to` at output 0, the collateral to the borrower.
fn return_tx(w: &World, returned: u64, to: u8) -> (Transaction, Vec<TxOut>) {
    let mut tx = w.escrow.return_skeleton(w.escrow_outpoint);
    tx.outputs[0] = pay(SECURITY, returned, to);
    tx.inputs.push(TxIn::spending(w.delivered.0));
    tx.outputs.push(TxOut {
        script_pubkey: p2k(&keypair(BORROWER).x_only_public_key().0),
        ..w.escrow_output.clone()
    });
    if returned < 10 {
        tx.outputs.push(pay(SECURITY, 10 - returned, BORROWER));
    }
    let spent = vec![w.escrow_output.clone(), w.delivered.1.clone()];
    (tx, spent)
}

fn spend_case(
    name: &str,
    comment: &str,
    tx: &Transaction,
    spent: &[TxOut],
    expected: Value,
    path: Value,
) -> Value {
    json!({
        "name": name,
        "comment": comment,
        "tx_hex": hex_tx(tx),
        "spent_hex": hex_outs(spent),
        "expected": expected,
        "path": path,
    })
}

fn err(input: usize, name: &str) -> Value {
    json!({ "input": input, "error": name })
}

fn spends(w: &World) -> Vec<Value> {
    let s = &w.escrow.script;
    let mut out = Vec::new();
    let borrower_p2k = p2k(&keypair(BORROWER).x_only_public_key().0);

    // Returns.
    let signed_return =
        |returned: u64, to: u8, lender_sig: Option<Vec<u8>>, borrower_signs: bool| {
            let (mut tx, spent) = return_tx(w, returned, to);
            let b = if borrower_signs {
                sign(&tx, &spent, 0, s, BORROWER, SighashType::All)
            } else {
                Vec::new()
            };
            tx.inputs[0].witness = w
                .escrow
                .return_witness(b, lender_sig.unwrap_or_else(|| w.presignature.clone()));
            let coin = sign(&tx, &spent, 1, &borrower_p2k, BORROWER, SighashType::All);
            tx.inputs[1].witness = Witness(vec![coin]);
            (tx, spent)
        };
    let (tx, spent) = signed_return(10, LENDER, None, true);
    out.push(spend_case(
        "return",
        "The borrower returns the 10 units with the lender's SINGLE|ANYONECANPAY pre-signature and signs ALL; the collateral goes to the borrower.",
        &tx, &spent, json!("OK"), json!("return"),
    ));
    let (tx, spent) = signed_return(9, LENDER, None, true);
    out.push(spend_case(
        "return_short",
        "Output 0 pays 9 units instead of 10: the pre-signature does not cover it.",
        &tx,
        &spent,
        err(0, "SIG_INVALID"),
        json!("return"),
    ));
    let (tx, spent) = signed_return(10, BORROWER, None, true);
    out.push(spend_case(
        "return_to_the_borrower",
        "Output 0 pays the 10 units to the borrower's own key.",
        &tx,
        &spent,
        err(0, "SIG_INVALID"),
        json!("return"),
    ));
    let (tx, spent) = signed_return(10, LENDER, Some(Vec::new()), true);
    out.push(spend_case(
        "return_without_the_lender",
        "The lender's slot is empty: OP_CHECKSIGVERIFY fails.",
        &tx,
        &spent,
        err(0, "CHECKSIGVERIFY"),
        json!("agreement"),
    ));
    let (tx, spent) = signed_return(10, LENDER, None, false);
    out.push(spend_case(
        "return_without_the_borrower",
        "The borrower's slot is empty: the final OP_CHECKSIG leaves false.",
        &tx,
        &spent,
        err(0, "EVAL_FALSE"),
        json!("return"),
    ));
    {
        let (mut tx, spent) = return_tx(w, 10, LENDER);
        let stranger = sign(&tx, &spent, 0, s, STRANGER, RETURN_HASH_TYPE);
        let b = sign(&tx, &spent, 0, s, BORROWER, SighashType::All);
        tx.inputs[0].witness = w.escrow.return_witness(b, stranger);
        let coin = sign(&tx, &spent, 1, &borrower_p2k, BORROWER, SighashType::All);
        tx.inputs[1].witness = Witness(vec![coin]);
        out.push(spend_case(
            "return_with_a_forged_presignature",
            "A SINGLE|ANYONECANPAY signature by another key in the lender's slot.",
            &tx,
            &spent,
            err(0, "SIG_INVALID"),
            json!("return"),
        ));
    }

    // Agreement: a margin release to 40,000, both sign ALL.
    {
        let mut tx = Transaction {
            version: 1,
            inputs: vec![TxIn::spending(w.escrow_outpoint)],
            outputs: vec![
                w.escrow.output(EUR, 40_000).expect("in range"),
                pay(EUR, 10_000, BORROWER),
            ],
            lock_time: 0,
            expiry_height: 0,
        };
        let spent = vec![w.escrow_output.clone()];
        let l = sign(&tx, &spent, 0, s, LENDER, SighashType::All);
        let b = sign(&tx, &spent, 0, s, BORROWER, SighashType::All);
        tx.inputs[0].witness = w.escrow.agreement_witness(b.clone(), l);
        out.push(spend_case(
            "agreement_release",
            "Both parties sign ALL: 40,000 back into the escrow (a new escrow coin), 10,000 released to the borrower.",
            &tx, &spent, json!("OK"), json!("agreement"),
        ));
        tx.inputs[0].witness = w.escrow.agreement_witness(b, Vec::new());
        out.push(spend_case(
            "agreement_borrower_alone",
            "The same release with the lender's slot empty.",
            &tx,
            &spent,
            err(0, "CHECKSIGVERIFY"),
            json!("agreement"),
        ));
    }

    // Default claims. The grace ends at height 25.
    let claim = |lock_time: u32, sequence: u32, key: u8| {
        let mut tx = w.escrow.claim_skeleton(
            w.escrow_outpoint,
            &w.escrow_output,
            p2k(&keypair(LENDER).x_only_public_key().0),
        );
        tx.lock_time = lock_time;
        tx.inputs[0].sequence = sequence;
        let spent = vec![w.escrow_output.clone()];
        let sig = sign(&tx, &spent, 0, s, key, SighashType::All);
        tx.inputs[0].witness = w.escrow.claim_witness(sig);
        (tx, spent)
    };
    let (tx, spent) = claim(25, CLAIM_SEQUENCE, LENDER);
    out.push(spend_case(
        "claim",
        "The lender alone with lock_time 25 (the grace end) and sequence 0xfffffffe; a node admits it from height 26.",
        &tx, &spent, json!("OK"), json!("default"),
    ));
    let (tx, spent) = claim(1_000, CLAIM_SEQUENCE, LENDER);
    out.push(spend_case(
        "claim_later_lock_time",
        "Any lock time height at or above 25 satisfies the script.",
        &tx,
        &spent,
        json!("OK"),
        json!("default"),
    ));
    let (tx, spent) = claim(24, CLAIM_SEQUENCE, LENDER);
    out.push(spend_case(
        "claim_lock_time_too_low",
        "lock_time 24 < 25: never valid, whatever the height.",
        &tx,
        &spent,
        err(0, "UNSATISFIED_LOCKTIME"),
        json!("default"),
    ));
    let (tx, spent) = claim(25, SEQUENCE_FINAL, LENDER);
    out.push(spend_case(
        "claim_final_sequence",
        "A final sequence would disable the lock time: OP_CHECKLOCKTIMEVERIFY refuses it.",
        &tx,
        &spent,
        err(0, "UNSATISFIED_LOCKTIME"),
        json!("default"),
    ));
    let (tx, spent) = claim(1_700_000_000, CLAIM_SEQUENCE, LENDER);
    out.push(spend_case(
        "claim_time_lock_time",
        "A UNIX-time lock time against a height operand.",
        &tx,
        &spent,
        err(0, "UNSATISFIED_LOCKTIME"),
        json!("default"),
    ));
    let (tx, spent) = claim(25, CLAIM_SEQUENCE, BORROWER);
    out.push(spend_case(
        "claim_by_the_borrower",
        "The default branch checks the lender's key.",
        &tx,
        &spent,
        err(0, "SIG_INVALID"),
        json!("default"),
    ));
    {
        // Another loan's escrow script presented for this coin.
        let mut other = w.escrow.params;
        other.position = AssetId([0x99; 32]);
        let other_script = escrow_script(&other);
        let (mut tx, spent) = claim(25, CLAIM_SEQUENCE, LENDER);
        tx.inputs[0].witness.0[2] = other_script;
        out.push(spend_case(
            "claim_with_another_loans_script",
            "The witness script of an escrow for another position does not hash to this coin's program. The witness alone still reads as a default claim (of that other escrow).",
            &tx, &spent, err(0, "WITNESS_PROGRAM_MISMATCH"), json!("default"),
        ));
    }
    out
}

fn main() {
    let w = world();
    let t = terms();
    let params = w.escrow.params;
    let key = |i: u8| keypair(i).x_only_public_key().0;
    let mut scripts = vec![escrow_case("loan", &params)];
    for (name, height) in [
        ("height_1", 1),
        ("height_16", 16),
        ("height_17", 17),
        ("height_128", 128),
        ("height_max", 499_999_999),
    ] {
        let p = EscrowParams {
            grace_end_height: height,
            ..params
        };
        scripts.push(escrow_case(name, &p));
    }
    scripts.push(escrow_case(
        "swapped_parties",
        &EscrowParams {
            lender: key(BORROWER),
            borrower: key(LENDER),
            ..params
        },
    ));
    let loan_script = w.escrow.script.clone();
    let mut trailing = loan_script.clone();
    trailing.push(0x75);
    let mut other_default_key = hex::encode(&loan_script);
    let lender_hex = hex::encode(xonly(LENDER));
    let last = other_default_key
        .rfind(&lender_hex)
        .expect("lender key in the default branch");
    other_default_key.replace_range(last..last + 64, &hex::encode(xonly(STRANGER)));
    let zero_height = EscrowParams {
        grace_end_height: 0,
        ..params
    };
    let time_height = EscrowParams {
        grace_end_height: 500_000_000,
        ..params
    };
    let non_minimal = {
        // 25 is 0x19: pushed as `01 19`; spelled here as `02 19 00`.
        let text = hex::encode(&loan_script);
        text.replacen("0119b1", "021900b1", 1)
    };
    let not_escrows = vec![
        json!({"name": "empty", "script_hex": ""}),
        json!({"name": "trailing_opcode", "script_hex": hex::encode(&trailing)}),
        json!({"name": "truncated", "script_hex": hex::encode(&loan_script[..loan_script.len() - 1])}),
        json!({"name": "other_default_key", "script_hex": other_default_key}),
        json!({"name": "height_zero", "script_hex": hex::encode(escrow_script(&zero_height))}),
        json!({"name": "height_is_a_time", "script_hex": hex::encode(escrow_script(&time_height))}),
        json!({"name": "non_minimal_height", "script_hex": non_minimal}),
        json!({"name": "htlc", "script_hex": hex::encode(settle_script::htlc_script([7; 32], &key(LENDER), &key(BORROWER), 25))}),
    ];
    let grace = vec![
        json!({"maturity_height": 20, "grace_period_blocks": 5, "grace_end_height": 25}),
        json!({"maturity_height": 20, "grace_period_blocks": 0, "grace_end_height": 20}),
        json!({"maturity_height": 499_999_990, "grace_period_blocks": 9, "grace_end_height": 499_999_999}),
        json!({"maturity_height": 499_999_990, "grace_period_blocks": 10, "error": "GraceEnd"}),
        json!({"maturity_height": 4_000_000_000u32, "grace_period_blocks": 400_000_000, "error": "GraceEnd"}),
    ];

    let layout = check_opening(&w.opening, &t).expect("well formed");
    let defect = |name: &str, comment: &str, edit: &dyn Fn(&mut Transaction), error: &str| {
        let mut tx = w.opening.clone();
        edit(&mut tx);
        let got = check_opening(&tx, &t).expect_err("a defect");
        assert_eq!(got.name(), error, "{name}");
        json!({"name": name, "comment": comment, "tx_hex": hex_tx(&tx), "error": error})
    };
    let defects = vec![
        defect(
            "no_expiry",
            "expiry_height 0: the proposal would never lapse.",
            &|tx| tx.expiry_height = 0,
            "EXPIRY",
        ),
        defect(
            "expires_after_settlement",
            "expiry_height 6 > settlement height 5.",
            &|tx| tx.expiry_height = 6,
            "EXPIRY",
        ),
        defect(
            "short_collateral",
            "49,999 into the escrow instead of 50,000.",
            &|tx| tx.outputs[1].amount = units(49_999),
            "ESCROW_AMOUNT",
        ),
        defect(
            "two_escrow_outputs",
            "The escrow output twice.",
            &|tx| {
                let o = tx.outputs[1].clone();
                tx.outputs.push(o)
            },
            "ESCROW_COUNT",
        ),
        defect(
            "no_escrow",
            "The collateral paid to the lender instead.",
            &|tx| tx.outputs[1].script_pubkey = p2k(&keypair(LENDER).x_only_public_key().0),
            "ESCROW_COUNT",
        ),
        defect(
            "delivered_to_the_lender",
            "The securities stay with the lender.",
            &|tx| tx.outputs[0].script_pubkey = p2k(&keypair(LENDER).x_only_public_key().0),
            "NO_DELIVERY",
        ),
        defect(
            "fee_short",
            "A fee of 999.",
            &|tx| tx.outputs[3].amount = units(999),
            "NO_FEE",
        ),
        defect(
            "position_to_the_borrower",
            "The position unit paid to the borrower.",
            &|tx| tx.outputs[2].script_pubkey = p2k(&keypair(BORROWER).x_only_public_key().0),
            "NO_POSITION_OUTPUT",
        ),
        defect(
            "two_position_units",
            "The position issued as 2 units.",
            &|tx| {
                if let Some(i) = &mut tx.inputs[0].issuance {
                    i.amount = units(2)
                }
            },
            "POSITION_UNITS",
        ),
        defect(
            "no_issuance",
            "No position issuance.",
            &|tx| tx.inputs[0].issuance = None,
            "NO_POSITION_ISSUANCE",
        ),
        defect(
            "issuance_on_a_null_input",
            "The position issuance moved to an added null (issuance-only) input: its id would depend on the contract alone.",
            &|tx| {
                let issuance = tx.inputs[0].issuance.take();
                tx.inputs.push(TxIn {
                    issuance,
                    ..TxIn::spending(OutPoint::NULL)
                });
            },
            "NULL_ISSUANCE_INPUT",
        ),
        defect(
            "second_position_issuance",
            "The borrower's coin carries a second position issuance: one delivery would back two loans.",
            &|tx| tx.inputs[1].issuance = tx.inputs[0].issuance.clone(),
            "POSITION_COUNT",
        ),
    ];

    let skeleton = w.escrow.return_skeleton(w.escrow_outpoint);
    let digest = w
        .escrow
        .return_digest(CHAIN, w.escrow_outpoint, &w.escrow_output)
        .expect("digest");
    let contract_class = match settle_assets::AssetContract::from_canonical_bytes(&w.contract)
        .expect("valid")
        .class
    {
        AssetClass::LendingPosition(_) => "lending_position",
        _ => "other",
    };
    let secret = |i: u8| hex::encode([i; 32]);
    let vectors = json!({
        "comment": [
            "Securities-lending vectors: spec/lending.md. Read by script/tests/lending.rs; written by `cargo run -p settle-script --example gen_lending_vectors`.",
            "Keys are BIP340 x-only keys of the secret keys given; signatures are made without auxiliary randomness.",
            "Transactions and outputs are in their canonical encodings (spec/transactions.md); asset ids and txids as displayed (spec/encoding.md).",
            "spends: verify_transaction(tx, spent, chain_id) gives `expected` (OK, or the failing input and the script error name); classify_escrow_witness(input 0's witness) gives `path` (null: not an escrow witness of this shape).",
        ],
        "chain_id": CHAIN.to_string(),
        "keys": {
            "lender": {"secret_key": secret(LENDER), "xonly": hex::encode(xonly(LENDER))},
            "borrower": {"secret_key": secret(BORROWER), "xonly": hex::encode(xonly(BORROWER))},
            "stranger": {"secret_key": secret(STRANGER), "xonly": hex::encode(xonly(STRANGER))},
            "issuer": {"secret_key": secret(ISSUER), "xonly": hex::encode(xonly(ISSUER))},
        },
        "position": {
            "class": contract_class,
            "contract": String::from_utf8(w.contract.clone()).expect("utf8"),
            "issuing_outpoint": w.issuing_outpoint.to_string(),
            "asset_id": w.position.to_string(),
        },
        "escrow": {
            "grace_end_height": params.grace_end_height,
            "script_hex": hex::encode(&w.escrow.script),
            "script_asm": disassemble(&w.escrow.script),
            "script_pubkey_hex": hex::encode(&w.escrow.script_pubkey),
            "address_dev": Address::from_script_pubkey(Network::Dev, &w.escrow.script_pubkey)
                .map(|a| a.to_string())
                .unwrap_or_default(),
            "return_output_hex": hex::encode(serialize(&w.escrow.return_output)),
        },
        "escrow_scripts": scripts,
        "not_escrow_scripts": not_escrows,
        "grace_end": grace,
        "opening": {
            "comment": "Unsigned (check_opening reads only the shape): the lender's 100-unit coin carries the position issuance, the borrower's EUR coin pays collateral, fee and change.",
            "tx_hex": hex_tx(&w.opening),
            "txid": w.opening.txid().to_string(),
            "layout": {
                "position": layout.position.to_string(),
                "issuance_input": layout.issuance_input,
                "delivery": layout.delivery,
                "escrow": layout.escrow,
                "position_output": layout.position_output,
                "fee": layout.fee,
            },
        },
        "opening_defects": defects,
        "return_presignature": {
            "escrow_outpoint": w.escrow_outpoint.to_string(),
            "escrow_output_hex": hex::encode(serialize(&w.escrow_output)),
            "skeleton_hex": hex_tx(&skeleton),
            "digest": hex::encode(digest),
            "signature": hex::encode(&w.presignature),
        },
        "spends": spends(&w),
    });
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("spec")
        .join("vectors")
        .join("lending.json");
    let mut text = serde_json::to_string_pretty(&vectors).expect("serializes");
    text.push('\n');
    fs::write(&path, text).expect("writes the vector file");
    println!("wrote {}", path.display());
}
