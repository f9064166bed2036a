//! End-to-end tests of the PST roles with real keys, real signatures and the script
//! crate's verifier.

use settle_assets::transaction::SEQUENCE_FINAL;
use settle_assets::{
    Amount, AssetClass, AssetContract, AssetId, ChainId, Issuance, IssuanceKind, OutPoint,
    Transaction, TxIn, TxOut, Txid, Witness,
};
use settle_script::sighash::sha256;
use settle_script::{Network, ScriptError, SighashType, htlc_script, multisig_script, p2k, p2sh};

use super::*;
use crate::coins::{BuildOptions, ChangeAddress, Payment, WalletCoin, build_payment};
use crate::keys::{Mnemonic, SigningKey, WalletKeys};

const CHAIN: ChainId = ChainId([0xc1; 32]);
const EUR: AssetId = AssetId([0xe0; 32]);
const BOND: AssetId = AssetId([0xb0; 32]);

fn key(i: u8) -> SigningKey {
    SigningKey::from_secret_bytes([i; 32]).expect("valid secret")
}

fn amt(u: u64) -> Amount {
    Amount::from_units(u).expect("amount")
}

fn out(asset: AssetId, units: u64, script: Vec<u8>) -> TxOut {
    TxOut {
        asset,
        amount: amt(units),
        script_pubkey: script,
    }
}

fn op(n: u8) -> OutPoint {
    OutPoint::new(Txid([n; 32]), u32::from(n))
}

fn tx(inputs: Vec<TxIn>, outputs: Vec<TxOut>) -> Transaction {
    Transaction {
        version: 1,
        inputs,
        outputs,
        lock_time: 0,
        expiry_height: 0,
    }
}

fn round_trip(pst: &Pst) -> Pst {
    let back = Pst::from_base64(&pst.to_base64()).expect("decodes");
    assert_eq!(&back, pst);
    back
}

/// The maker's half of a DvP: gives 1,000 EUR (input 0), must receive 10 BOND (output 0).
fn offer(maker: &SigningKey, hash_type: SighashType) -> Pst {
    let t = tx(
        vec![TxIn::spending(op(1))],
        vec![out(BOND, 10, p2k(&maker.x_only()))],
    );
    let mut pst = Pst::create(
        t,
        vec![Some(out(EUR, 1_000, p2k(&maker.x_only())))],
        CHAIN,
        Network::Dev,
    )
    .expect("create");
    pst.set_input_owner(0, "maker").expect("owner");
    pst.set_output_label(0, "maker").expect("label");
    pst.sign_input(0, maker, hash_type).expect("sign");
    pst
}

#[test]
fn wallet_payment_signs_finalizes_and_extracts() {
    let seed = Mnemonic::from_entropy(&[5u8; 32]).expect("m").to_seed("");
    let keys = WalletKeys::new(&seed, 0).expect("keys");
    let coins: Vec<WalletCoin> = (0..3u8)
        .map(|i| {
            let k = keys.derive(0, u32::from(i)).expect("k");
            WalletCoin {
                outpoint: op(i + 1),
                txout: out(EUR, 100 * u64::from(i + 1), p2k(&k.x_only())),
                origin: Some(k.origin),
            }
        })
        .collect();
    let change_key = keys.derive(1, 0).expect("change");
    let payee = key(9);
    let built = build_payment(
        &coins,
        &[Payment {
            asset: EUR,
            amount: amt(450),
            script_pubkey: p2k(&payee.x_only()),
            label: Some("payee".into()),
        }],
        |_| {
            Ok(ChangeAddress {
                script_pubkey: p2k(&change_key.x_only()),
                origin: Some(change_key.origin.clone()),
            })
        },
        BuildOptions::default(),
    )
    .expect("build");
    let mut pst = built.to_pst(CHAIN, Network::Dev).expect("pst");
    let before = pst.analyze();
    assert_eq!(before.missing.len(), pst.inputs().len());
    assert!(before.balanced);
    pst = round_trip(&pst);
    let signed = pst.sign_with_wallet(&keys, SighashType::All).expect("sign");
    assert_eq!(signed.len(), pst.inputs().len());
    // Another wallet's keys sign nothing.
    let other = WalletKeys::new(
        &Mnemonic::from_entropy(&[6u8; 32]).expect("m").to_seed(""),
        0,
    )
    .expect("keys");
    assert!(
        pst.sign_with_wallet(&other, SighashType::All)
            .expect("sign")
            .is_empty()
    );
    pst = round_trip(&pst);
    assert!(pst.analyze().missing.is_empty());
    pst.finalize().expect("finalize");
    assert!(pst.is_finalized());
    let pst = round_trip(&pst);
    let final_tx = pst.extract().expect("extract");
    assert_eq!(final_tx.txid(), built.tx.txid());
    let change = &pst.outputs()[built.change[0].0.output];
    assert_eq!(
        change.key_origins.get(&change_key.key.x_only_bytes()),
        Some(&change_key.origin)
    );
}

#[test]
fn dvp_offer_is_completed_by_the_taker() {
    let (maker, taker) = (key(1), key(2));
    let offer = round_trip(&offer(&maker, SighashType::SingleAnyoneCanPay));
    let a = offer.analyze();
    assert!(!a.balanced);
    assert_eq!(
        a.inputs[0].signatures[0].hash_type,
        SighashType::SingleAnyoneCanPay
    );
    assert_eq!(
        a.outputs[0].committed_by,
        vec![(0, SighashType::SingleAnyoneCanPay)]
    );

    // The taker adds the bonds it gives and the euros it gets.
    let mut pst = offer.clone();
    let i = pst
        .add_input(
            TxIn::spending(op(2)),
            Some(out(BOND, 10, p2k(&taker.x_only()))),
        )
        .expect("add input");
    let o = pst
        .add_output(out(EUR, 1_000, p2k(&taker.x_only())))
        .expect("add output");
    assert_eq!((i, o), (1, 1));
    assert_ne!(pst.txid(), offer.txid());
    pst.set_input_owner(1, "taker").expect("owner");
    pst.set_output_label(1, "taker").expect("label");
    // The maker's signature survived the change of txid.
    let maker_sig = pst.inputs()[0].partial_sigs[&maker.x_only_bytes()];
    assert!(
        pst.verify_partial_sig(0, &maker.x_only_bytes(), &maker_sig)
            .expect("verify")
    );
    pst.sign_input(1, &taker, SighashType::All)
        .expect("taker signs");

    // Now the taker's ALL signature forbids further changes, and nothing changes.
    let snapshot = pst.serialize();
    assert!(matches!(
        pst.add_output(out(EUR, 1, vec![0x51])),
        Err(PstError::WouldInvalidate {
            input: 1,
            hash_type: SighashType::All,
            ..
        })
    ));
    assert!(matches!(
        pst.add_input(TxIn::spending(op(3)), None),
        Err(PstError::WouldInvalidate { input: 1, .. })
    ));
    assert_eq!(pst.serialize(), snapshot);

    let analysis = pst.analyze();
    assert!(analysis.balanced);
    assert!(analysis.missing.is_empty());
    let flows = |asset: AssetId| {
        analysis
            .assets
            .iter()
            .find(|s| s.asset == asset)
            .expect("asset")
            .parties
            .iter()
            .map(|p| (p.party.clone(), p.gives, p.gets))
            .collect::<Vec<_>>()
    };
    // Parties are named by their addresses, never by the PST's own owner and label text.
    let addr = |k: &SigningKey| {
        settle_script::Address::from_script_pubkey(Network::Dev, &p2k(&k.x_only()))
            .expect("address")
            .to_string()
    };
    let (m, t) = (addr(&maker), addr(&taker));
    let mut expected_eur = vec![(m.clone(), 1_000, 0), (t.clone(), 0, 1_000)];
    expected_eur.sort();
    let mut expected_bond = vec![(m.clone(), 0, 10), (t.clone(), 10, 0)];
    expected_bond.sort();
    assert_eq!(flows(EUR), expected_eur);
    assert_eq!(flows(BOND), expected_bond);
    assert_eq!(analysis.inputs[1].claimed_owner.as_deref(), Some("taker"));
    assert_eq!(analysis.outputs[1].claimed_label.as_deref(), Some("taker"));
    let text = analysis.to_string();
    assert!(text.contains(&format!("{m}: gives 1000 gets 0")), "{text}");
    assert!(text.contains("SINGLE|ANYONECANPAY"), "{text}");

    pst.finalize().expect("finalize");
    let done = pst.extract().expect("extract");
    assert_eq!(done.inputs.len(), 2);
    assert_eq!(done.txid(), pst.txid());
}

#[test]
fn a_taker_cannot_change_what_the_maker_signed() {
    let (maker, taker) = (key(1), key(2));
    let offer = offer(&maker, SighashType::SingleAnyoneCanPay);
    let maker_sig = offer.inputs()[0].partial_sigs[&maker.x_only_bytes()];
    // A crafted PST where output 0 pays the maker 9 BOND instead of 10.
    let mut t = offer.unsigned_tx().clone();
    t.outputs[0].amount = amt(9);
    t.inputs.push(TxIn::spending(op(2)));
    t.outputs.push(out(EUR, 1_000, p2k(&taker.x_only())));
    let mut forged = Pst::create(
        t,
        vec![
            offer.inputs()[0].spent_output.clone(),
            Some(out(BOND, 9, p2k(&taker.x_only()))),
        ],
        CHAIN,
        Network::Dev,
    )
    .expect("create");
    assert!(matches!(
        forged.add_partial_sig(0, &maker.x_only(), maker_sig),
        Err(PstError::BadSignature { input: 0, .. })
    ));
    // Sneaking it in by editing the encoding fails at finalization.
    forged.inputs[0]
        .partial_sigs
        .insert(maker.x_only_bytes(), maker_sig);
    forged
        .sign_input(1, &taker, SighashType::All)
        .expect("sign");
    assert!(matches!(
        forged.finalize(),
        Err(PstError::Verify {
            input: 0,
            error: ScriptError::SigInvalid
        })
    ));
    assert!(!forged.is_finalized());
}

#[test]
fn which_signatures_survive_which_changes() {
    let maker = key(1);
    let add_in = |p: &mut Pst| p.add_input(TxIn::spending(op(7)), None);
    let add_out = |p: &mut Pst| p.add_output(out(EUR, 5, vec![0x51]));
    for (hash_type, input_ok, output_ok) in [
        (SighashType::All, false, false),
        (SighashType::None, false, true),
        (SighashType::Single, false, true),
        (SighashType::AllAnyoneCanPay, true, false),
        (SighashType::NoneAnyoneCanPay, true, true),
        (SighashType::SingleAnyoneCanPay, true, true),
    ] {
        let pst = offer(&maker, hash_type);
        let mut a = pst.clone();
        assert_eq!(add_in(&mut a).is_ok(), input_ok, "{hash_type} add input");
        let mut b = pst.clone();
        assert_eq!(add_out(&mut b).is_ok(), output_ok, "{hash_type} add output");
        // Where a change is allowed, the signature really still verifies.
        for changed in [a, b] {
            if changed != pst {
                let sig = changed.inputs()[0].partial_sigs[&maker.x_only_bytes()];
                let spent_known = changed.inputs().iter().all(|i| i.spent_output.is_some());
                if hash_type.anyone_can_pay() || spent_known {
                    assert!(
                        changed
                            .verify_partial_sig(0, &maker.x_only_bytes(), &sig)
                            .expect("verify"),
                        "{hash_type}"
                    );
                }
            } else {
                assert_eq!(changed.serialize(), pst.serialize());
            }
        }
    }
}

#[test]
fn signing_refuses_what_it_cannot_sign_safely() {
    let (a, b) = (key(1), key(2));
    let t = tx(
        vec![
            TxIn::spending(op(1)),
            TxIn::spending(op(2)),
            TxIn::spending(op(3)),
        ],
        vec![out(EUR, 30, p2k(&b.x_only()))],
    );
    let spent = vec![
        Some(out(EUR, 10, p2k(&a.x_only()))),
        None,
        Some(out(EUR, 20, p2k(&a.x_only()))),
    ];
    let mut pst = Pst::create(t, spent, CHAIN, Network::Dev).expect("create");
    let snapshot = pst.clone();
    assert_eq!(
        pst.sign_input(1, &a, SighashType::SingleAnyoneCanPay),
        Err(PstError::SpentOutputUnknown { input: 1 })
    );
    // ALL commits to every spent output, so input 1's must be known even to sign input 0.
    assert_eq!(
        pst.sign_input(0, &a, SighashType::All),
        Err(PstError::SpentOutputUnknown { input: 1 })
    );
    assert!(matches!(
        pst.sign_input(0, &b, SighashType::AllAnyoneCanPay),
        Err(PstError::KeyNotInScript { input: 0, .. })
    ));
    // SINGLE for input 2 needs an output 2.
    assert_eq!(
        pst.sign_input(2, &a, SighashType::SingleAnyoneCanPay),
        Err(PstError::SingleWithoutOutput { input: 2 })
    );
    assert!(matches!(
        pst.sign_input(5, &a, SighashType::All),
        Err(PstError::NoSuchInput { input: 5, count: 3 })
    ));
    assert_eq!(pst, snapshot);
    // ANYONECANPAY does not need the other inputs' spent outputs.
    pst.sign_input(0, &a, SighashType::AllAnyoneCanPay)
        .expect("acp");
    let signed = pst
        .sign_with_key(&a, SighashType::AllAnyoneCanPay)
        .expect("sign");
    assert_eq!(signed, vec![0, 2]);
}

fn multisig_fixture() -> (Vec<SigningKey>, Pst) {
    let keys = vec![key(11), key(12), key(13)];
    let xs: Vec<_> = keys.iter().map(SigningKey::x_only).collect();
    let script = multisig_script(2, &xs).expect("script");
    let t = tx(
        vec![TxIn::spending(op(4))],
        vec![out(BOND, 50, p2k(&key(20).x_only()))],
    );
    let mut pst = Pst::create(
        t,
        vec![Some(out(BOND, 50, p2sh(&script)))],
        CHAIN,
        Network::Dev,
    )
    .expect("create");
    let mut wrong = script.clone();
    wrong.pop();
    assert_eq!(
        pst.set_witness_script(0, wrong),
        Err(PstError::WitnessScriptMismatch {
            location: Location::Input(0)
        })
    );
    pst.set_witness_script(0, script).expect("script");
    (keys, pst)
}

#[test]
fn multisig_signers_combine_and_finalize_with_slots() {
    let (keys, pst) = multisig_fixture();
    let mut first = round_trip(&pst);
    let mut third = round_trip(&pst);
    first
        .sign_input(0, &keys[0], SighashType::All)
        .expect("sign");
    third
        .sign_input(0, &keys[2], SighashType::All)
        .expect("sign");
    // One signature is not enough, and a failed finalize changes nothing.
    let mut lone = first.clone();
    assert_eq!(
        lone.finalize(),
        Err(PstError::Incomplete(Missing::Signatures {
            input: 0,
            have: 1,
            need: 2
        }))
    );
    assert_eq!(lone, first);
    let mut combined = first.clone();
    combined.combine(&third).expect("combine");
    // Combining is idempotent and order does not matter.
    let mut other_way = third.clone();
    other_way.combine(&first).expect("combine");
    assert_eq!(combined, other_way);
    combined.combine(&first).expect("again");
    assert_eq!(combined, other_way);
    combined.finalize().expect("finalize");
    let w = combined.inputs()[0]
        .final_witness
        .as_ref()
        .expect("witness");
    assert_eq!(w.0.len(), 4);
    assert_eq!(w.0[0].len(), 64);
    assert!(w.0[1].is_empty());
    assert_eq!(w.0[2].len(), 64);
    combined.extract().expect("extract");
}

#[test]
fn combine_refuses_different_transactions_and_conflicts() {
    let (keys, pst) = multisig_fixture();
    let offer = offer(&keys[0], SighashType::SingleAnyoneCanPay);
    let mut a = pst.clone();
    assert!(matches!(
        a.combine(&offer),
        Err(PstError::TxidMismatch { .. })
    ));
    let mut other_chain = pst.clone();
    other_chain.chain_id = ChainId([2; 32]);
    assert!(matches!(
        a.combine(&other_chain),
        Err(PstError::ChainMismatch { .. })
    ));
    let mut other_net = pst.clone();
    other_net.network = Network::Test;
    assert!(matches!(
        a.combine(&other_net),
        Err(PstError::NetworkMismatch { .. })
    ));
    let mut x = pst.clone();
    x.set_input_owner(0, "alice").expect("owner");
    let mut y = pst.clone();
    y.set_input_owner(0, "bob").expect("owner");
    y.sign_input(0, &keys[1], SighashType::All).expect("sign");
    let before = x.clone();
    assert_eq!(
        x.combine(&y),
        Err(PstError::Conflict {
            location: Location::Input(0),
            field: "owner"
        })
    );
    assert_eq!(x, before);
    // Two valid signatures by one key with the same type (fresh randomness each time)
    // are not a conflict; different types are.
    let mut s1 = pst.clone();
    s1.sign_input(0, &keys[0], SighashType::All).expect("sign");
    let mut s2 = pst.clone();
    s2.sign_input(0, &keys[0], SighashType::All).expect("sign");
    assert_ne!(s1, s2);
    let kept = s1.clone();
    s1.combine(&s2).expect("combine");
    assert_eq!(s1, kept);
    let mut s3 = pst.clone();
    s3.sign_input(0, &keys[0], SighashType::None).expect("sign");
    assert!(matches!(
        s1.combine(&s3),
        Err(PstError::Conflict {
            field: "partial signature",
            ..
        })
    ));
}

fn htlc_fixture(lock_time: u32, sequence: u32) -> (SigningKey, SigningKey, Vec<u8>, Pst) {
    let (recipient, refund) = (key(31), key(32));
    let preimage = b"the secret of the trade".to_vec();
    let script = htlc_script(
        sha256(&preimage),
        &recipient.x_only(),
        &refund.x_only(),
        100,
    );
    let mut input = TxIn::spending(op(5));
    input.sequence = sequence;
    let mut t = tx(vec![input], vec![out(EUR, 70, p2k(&key(33).x_only()))]);
    t.lock_time = lock_time;
    let mut pst = Pst::create(
        t,
        vec![Some(out(EUR, 70, p2sh(&script)))],
        CHAIN,
        Network::Dev,
    )
    .expect("create");
    pst.set_witness_script(0, script).expect("script");
    (recipient, refund, preimage, pst)
}

#[test]
fn htlc_claim_needs_the_preimage() {
    let (recipient, _, preimage, mut pst) = htlc_fixture(0, SEQUENCE_FINAL);
    pst.sign_input(0, &recipient, SighashType::All)
        .expect("sign");
    assert!(matches!(
        pst.finalize(),
        Err(PstError::Incomplete(Missing::HtlcSpend { input: 0, .. }))
    ));
    assert!(matches!(
        pst.analyze().missing.as_slice(),
        [Missing::HtlcSpend { input: 0, .. }]
    ));
    pst.add_preimage(0, preimage.clone()).expect("preimage");
    let mut pst = round_trip(&pst);
    pst.finalize().expect("finalize");
    let w = &pst.inputs()[0].final_witness.as_ref().expect("witness").0;
    assert_eq!(w[1], preimage);
    pst.extract().expect("extract");
}

#[test]
fn htlc_refund_waits_for_the_timeout() {
    let (_, refund, _, mut early) = htlc_fixture(99, 0xffff_fffe);
    early
        .sign_input(0, &refund, SighashType::All)
        .expect("sign");
    assert_eq!(
        early.finalize(),
        Err(PstError::Verify {
            input: 0,
            error: ScriptError::UnsatisfiedLocktime
        })
    );
    let (_, refund, _, mut pst) = htlc_fixture(100, 0xffff_fffe);
    pst.sign_input(0, &refund, SighashType::All).expect("sign");
    pst.finalize().expect("finalize");
    pst.extract().expect("extract");
}

#[test]
fn issuance_is_signed_by_the_contract_issuer() {
    let issuer = key(40);
    let contract = AssetContract {
        class: AssetClass::Cash {
            currency: "EUR".into(),
        },
        name: "Euro token".into(),
        ticker: "EURT".into(),
        precision: 2,
        issuer: issuer.x_only_bytes(),
        reissuable: true,
    }
    .to_canonical_bytes()
    .expect("contract");
    let issuance = Issuance {
        kind: IssuanceKind::New { contract },
        amount: amt(1_000_000),
        signature: None,
    };
    let asset = issuance.asset_id(&OutPoint::NULL);
    let input = TxIn {
        prevout: OutPoint::NULL,
        sequence: SEQUENCE_FINAL,
        issuance: Some(issuance),
        witness: Witness::default(),
    };
    let t = tx(
        vec![input],
        vec![out(asset, 1_000_000, p2k(&key(41).x_only()))],
    );
    let mut pst = Pst::create(t, vec![None], CHAIN, Network::Dev).expect("create");
    assert!(matches!(
        pst.analyze().missing.as_slice(),
        [Missing::IssuanceSignature { input: 0 }]
    ));
    assert!(matches!(
        pst.sign_issuance(0, &key(42)),
        Err(PstError::WrongIssuer { input: 0, .. })
    ));
    assert!(matches!(
        pst.extract(),
        Err(PstError::Incomplete(Missing::IssuanceSignature {
            input: 0
        }))
    ));
    pst.sign_issuance(0, &issuer).expect("issuer signs");
    let mut pst = round_trip(&pst);
    let a = pst.analyze();
    assert!(a.balanced, "{a}");
    assert_eq!(a.assets[0].issued, 1_000_000);
    pst.finalize().expect("finalize");
    let t = pst.extract().expect("extract");
    assert!(
        t.inputs[0]
            .issuance
            .as_ref()
            .expect("issuance")
            .signature
            .is_some()
    );
    // A forged issuance signature is caught.
    let mut forged = pst.clone();
    forged.inputs[0].issuance_signature = Some([7; 64]);
    assert_eq!(
        forged.extract(),
        Err(PstError::BadIssuanceSignature { input: 0 })
    );
}

#[test]
fn extract_refuses_unbalanced_and_unfinalized() {
    let a = key(1);
    let t = tx(
        vec![TxIn::spending(op(1))],
        vec![out(EUR, 11, p2k(&a.x_only()))],
    );
    let mut pst = Pst::create(
        t,
        vec![Some(out(EUR, 10, p2k(&a.x_only())))],
        CHAIN,
        Network::Dev,
    )
    .expect("create");
    assert_eq!(pst.extract(), Err(PstError::NotFinalized { input: 0 }));
    pst.sign_input(0, &a, SighashType::All).expect("sign");
    pst.finalize().expect("finalize");
    assert!(!pst.analyze().balanced);
    assert!(matches!(pst.extract(), Err(PstError::Conservation(_))));
    assert_eq!(
        pst.sign_input(0, &a, SighashType::All),
        Err(PstError::AlreadyFinalized { input: 0 })
    );
}

#[test]
fn create_refuses_signed_transactions_and_bad_spent_lists() {
    let a = key(1);
    let mut t = tx(
        vec![TxIn::spending(op(1))],
        vec![out(EUR, 1, p2k(&a.x_only()))],
    );
    assert!(matches!(
        Pst::create(t.clone(), vec![], CHAIN, Network::Dev),
        Err(PstError::SpentCount {
            inputs: 1,
            given: 0
        })
    ));
    t.inputs[0].witness = Witness(vec![vec![1]]);
    assert_eq!(
        Pst::create(t, vec![None], CHAIN, Network::Dev),
        Err(PstError::NotUnsigned { input: 0 })
    );
}

#[test]
fn encoding_keeps_unknown_entries_and_is_strict() {
    let mut pst = offer(&key(1), SighashType::SingleAnyoneCanPay);
    pst.unknown
        .insert(vec![0xfc, 1, 2], b"proprietary".to_vec());
    pst.inputs[0].unknown.insert(vec![0x42], vec![1, 2, 3]);
    pst.outputs[0].unknown.insert(vec![0x99, 0], vec![]);
    pst.set_expiry_note("valid until height 500").expect("note");
    let back = round_trip(&pst);
    assert_eq!(
        back.unknown.get(&vec![0xfc, 1, 2]),
        Some(&b"proprietary".to_vec())
    );
    let bytes = pst.serialize();
    assert_eq!(&bytes[..8], b"stlpst\xff\x01");
    assert_eq!(
        Pst::deserialize(&bytes[..bytes.len() - 1])
            .map(|_| ())
            .map_err(|e| e.name()),
        Err("ENCODING")
    );
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        Pst::deserialize(&longer).map_err(|e| e.name()),
        Err("TRAILING_BYTES")
    );
    assert_eq!(
        Pst::from_base64("not base64!").map_err(|e| e.name()),
        Err("BASE64")
    );
    assert_eq!(
        Pst::deserialize(b"stlpsb").map_err(|e| e.name()),
        Err("BAD_MAGIC")
    );
}
