//! The attacks of issue 10 (section 1) against the wallet's signing flows, each built as
//! the hostile counterparty would build it, each refused with its reason named
//! (`spec/pst.md` section 8 and `spec/lending.md` section 11 list them).

use settle_assets::{
    Amount, AssetId, LendingTerms, OutPoint, Transaction, TxIn, TxOut, transaction::TX_VERSION,
};
use settle_script::{Network, SighashType, p2k};

use crate::coins::WalletCoin;
use crate::keys::{DerivedKey, SigningKey, WalletKeys};
use crate::lending::{self, Completed, LendError, Opening};
use crate::policy::{self, PolicyError, SigningPolicy};
use crate::pst::Pst;
use crate::state::{LoanAgreement, LoanStep};
use crate::test_support::{BOND, CHAIN, EUR, change, coin, loan_terms, ours, wallet};

/// A worthless asset the attacker issued itself.
const JUNK: AssetId = AssetId([0x99; 32]);

struct Loan {
    lender: WalletKeys,
    borrower: WalletKeys,
    issuer: SigningKey,
    lender_key: DerivedKey,
    borrower_key: DerivedKey,
    terms: LendingTerms,
}

fn loan() -> Loan {
    let (lender, borrower) = (wallet(1), wallet(2));
    let lender_key = lender.derive(0, 3).expect("k");
    let borrower_key = borrower.derive(0, 3).expect("k");
    let terms = loan_terms(
        lender_key.key.x_only_bytes(),
        borrower_key.key.x_only_bytes(),
    );
    Loan {
        lender,
        borrower,
        issuer: SigningKey::from_secret_bytes([9; 32]).expect("issuer"),
        lender_key,
        borrower_key,
        terms,
    }
}

impl Loan {
    /// The lender's proposal from `bond` and what the lender's wallet stores.
    fn propose(&self, terms: &LendingTerms, bond: &WalletCoin) -> (Pst, Opening, LoanAgreement) {
        let (p, o) = lending::propose(
            terms,
            self.issuer.x_only_bytes(),
            std::slice::from_ref(bond),
            || Ok(change(&self.lender, 0)),
            CHAIN,
            Network::Dev,
        )
        .expect("propose");
        let mine = p.unsigned_tx().inputs.iter().map(|i| i.prevout).collect();
        let a = lending::opening_agreement(LoanStep::LenderProposed, &p, &o, mine).expect("a");
        (p, o, a)
    }

    /// The borrower's acceptance with coins at txids `n`, `n + 1`, and its agreement.
    fn accept(&self, proposal: &Pst, n: u8) -> (Pst, LoanAgreement) {
        let (acc, o) = lending::accept(
            proposal,
            &[
                coin(&self.borrower, 0, n, EUR, 600),
                coin(&self.borrower, 1, n + 1, EUR, 600),
            ],
            || Ok(change(&self.borrower, 0)),
        )
        .expect("accept");
        let mine = acc.unsigned_tx().inputs[proposal.inputs().len()..]
            .iter()
            .map(|i| i.prevout)
            .collect();
        let a = lending::opening_agreement(LoanStep::BorrowerAccepted, &acc, &o, mine).expect("a");
        (acc, a)
    }

    fn cosign(&self, accepted: &Pst, agreed: &LoanAgreement) -> Result<Pst, LendError> {
        lending::cosign_opening(
            accepted,
            agreed,
            &self.lender,
            &self.lender_key.key,
            &self.issuer,
            &ours(&self.lender),
        )
        .map(|(p, _)| p)
    }

    /// A first loan, opened honestly: its escrow coin is what the attacks go after.
    fn opened(&self) -> (Completed, Opening) {
        let (p, _, la) = self.propose(&self.terms, &coin(&self.lender, 0, 1, BOND, 25));
        let (acc, ba) = self.accept(&p, 2);
        let cos = self.cosign(&acc, &la).expect("cosign");
        lending::complete_opening(&cos, &ba, &self.borrower, &ours(&self.borrower))
            .expect("complete")
    }
}

/// Adds the escrow coin of `done` as an input (its script, and a key origin for `key`,
/// as the attacker can guess it) and an output paying its collateral to `to`.
fn add_escrow_theft(
    pst: &mut Pst,
    done: &Completed,
    opening: &Opening,
    key: &DerivedKey,
    to: Vec<u8>,
) -> usize {
    let i = pst
        .add_input(
            TxIn::spending(done.escrow),
            Some(done.escrow_output.clone()),
        )
        .expect("add input");
    pst.set_witness_script(i, opening.escrow().script.clone())
        .expect("script");
    pst.add_input_key_origin(i, &key.x_only(), key.origin.clone())
        .expect("origin");
    pst.add_output(TxOut {
        script_pubkey: to,
        ..done.escrow_output.clone()
    })
    .expect("add output");
    i
}

#[test]
fn cosigning_an_opening_does_not_sign_another_loans_escrow() {
    let l = loan();
    let (done, first) = l.opened();
    // Loan two: the borrower slips in loan one's escrow coin, claiming its collateral.
    let (p, _, la) = l.propose(&l.terms, &coin(&l.lender, 2, 10, BOND, 25));
    let (mut acc, _) = l.accept(&p, 11);
    let thief = p2k(&l.borrower.derive(0, 5).expect("k").x_only());
    let i = add_escrow_theft(&mut acc, &done, &first, &l.lender_key, thief.clone());
    assert!(lending::is_funded(&acc).expect("funded"));
    assert_eq!(
        l.cosign(&acc, &la).map(|_| ()),
        Err(LendError::Policy(PolicyError::NotAgreed {
            input: i,
            outpoint: done.escrow
        }))
    );
    // Without the key origin: the loan key in the escrow script is still refused.
    let (mut acc, _) = l.accept(&p, 11);
    let i = acc
        .add_input(
            TxIn::spending(done.escrow),
            Some(done.escrow_output.clone()),
        )
        .expect("input");
    acc.set_witness_script(i, first.escrow().script.clone())
        .expect("script");
    acc.add_output(TxOut {
        script_pubkey: thief,
        ..done.escrow_output.clone()
    })
    .expect("output");
    assert!(matches!(
        l.cosign(&acc, &la),
        Err(LendError::Policy(PolicyError::NotAgreed { input, .. })) if input == i
    ));
}

#[test]
fn completing_an_opening_does_not_sign_another_loans_escrow() {
    let l = loan();
    let (done, first) = l.opened();
    let (p, _, la) = l.propose(&l.terms, &coin(&l.lender, 2, 10, BOND, 25));
    let (acc, ba) = l.accept(&p, 11);
    // The lender, co-signing, adds loan one's escrow (borrower key origin) and pays the
    // collateral to itself, signs its side by hand and asks the borrower to sign last.
    let mut evil = acc.clone();
    let to = p2k(&l.lender.derive(0, 20).expect("k").x_only());
    add_escrow_theft(&mut evil, &done, &first, &l.borrower_key, to);
    let second = lending::read_opening(&evil).expect("opening");
    let issuing = evil.unsigned_tx().inputs[second.layout.issuance_input].prevout;
    let mut theirs = la.inputs.clone();
    theirs.push(done.escrow);
    let rules = SigningPolicy::all(theirs).with_issuance(issuing);
    policy::sign(&mut evil, Some(&l.lender), &[&l.lender_key.key], &rules).expect("sign");
    evil.sign_issuance(second.layout.issuance_input, &l.issuer)
        .expect("issuance");
    let at = second.layout.escrow;
    let presig = second
        .escrow()
        .sign_return(
            CHAIN,
            OutPoint::new(evil.txid(), u32::try_from(at).expect("vout")),
            &evil.unsigned_tx().outputs[at],
            l.lender_key.key.keypair(),
        )
        .expect("presig");
    evil.unknown.insert(lending::PRESIG_KEY.to_vec(), presig);
    let r = lending::complete_opening(&evil, &ba, &l.borrower, &ours(&l.borrower));
    assert!(
        matches!(
            &r,
            Err(LendError::NotAgreed {
                field: "transaction",
                ..
            })
        ),
        "{r:?}"
    );
    // Even with an agreement that does not pin the transaction, the policy refuses.
    let loose = LoanAgreement { txid: None, ..ba };
    let r = lending::complete_opening(&evil, &loose, &l.borrower, &ours(&l.borrower));
    assert!(
        matches!(&r, Err(LendError::Policy(PolicyError::NotAgreed { .. }))),
        "{r:?}"
    );
}

#[test]
fn a_borrower_cannot_rewrite_the_terms() {
    let l = loan();
    let bond = coin(&l.lender, 0, 1, BOND, 25);
    let (_, _, la) = l.propose(&l.terms, &bond);
    // The borrower rebuilds the proposal from the lender's own coin with collateral 1 and
    // no fee, and hands that back "accepted".
    let cheap = LendingTerms {
        collateral_amount: 1,
        fee: 0,
        ..l.terms.clone()
    };
    let (forged, _, _) = l.propose(&cheap, &bond);
    let (acc, _) = l.accept(&forged, 2);
    let r = l.cosign(&acc, &la);
    assert!(
        matches!(&r, Err(LendError::NotAgreed { field: "collateral amount", agreed, found })
            if agreed == "1000" && found == "1"),
        "{r:?}"
    );
    // A different fee alone is named as the fee.
    let no_fee = LendingTerms {
        fee: 0,
        ..l.terms.clone()
    };
    let (forged, _, _) = l.propose(&no_fee, &bond);
    let (acc, _) = l.accept(&forged, 2);
    assert!(matches!(
        l.cosign(&acc, &la),
        Err(LendError::NotAgreed { field: "fee", .. })
    ));
}

/// A margin "update" that swaps the EUR in escrow for 5,000 JUNK and pays the EUR out.
fn swap_margin(l: &Loan, done: &Completed, opening: &Opening) -> Pst {
    let escrow = opening.escrow();
    let junk = coin(&l.borrower, 4, 30, JUNK, 5_000);
    let tx = Transaction {
        version: TX_VERSION,
        inputs: vec![TxIn::spending(done.escrow), TxIn::spending(junk.outpoint)],
        outputs: vec![
            escrow.output(JUNK, 5_000).expect("escrow"),
            TxOut {
                asset: EUR,
                amount: done.escrow_output.amount,
                script_pubkey: p2k(&l.borrower.derive(0, 4).expect("k").x_only()),
            },
        ],
        lock_time: 0,
        expiry_height: 0,
    };
    let mut p = Pst::create(
        tx,
        vec![Some(done.escrow_output.clone()), Some(junk.txout.clone())],
        CHAIN,
        Network::Dev,
    )
    .expect("pst");
    p.set_witness_script(0, escrow.script.clone())
        .expect("script");
    p
}

#[test]
fn a_margin_update_cannot_swap_the_collateral_asset() {
    let l = loan();
    let (done, opening) = l.opened();
    let p = swap_margin(&l, &done, &opening);
    let r = lending::cosign_margin(
        &p,
        &l.terms,
        &l.lender,
        &l.lender_key.key,
        &ours(&l.lender),
        false,
    );
    assert_eq!(
        r.map(|_| ()),
        Err(LendError::CollateralAsset {
            which: "new escrow output",
            agreed: EUR,
            found: JUNK
        })
    );
}

#[test]
fn a_margin_release_below_the_agreed_collateral_needs_the_flag() {
    let l = loan();
    let (done, opening) = l.opened();
    let p = lending::propose_margin(
        opening.escrow(),
        (done.escrow, done.escrow_output.clone()),
        400,
        &[],
        Some(l.borrower_key.origin.clone()),
        || Ok(change(&l.borrower, 5)),
        CHAIN,
        Network::Dev,
    )
    .expect("release");
    let cosign = |allow| {
        lending::cosign_margin(
            &p,
            &l.terms,
            &l.lender,
            &l.lender_key.key,
            &ours(&l.lender),
            allow,
        )
    };
    assert_eq!(
        cosign(false).map(|_| ()),
        Err(LendError::BelowAgreed {
            new: 400,
            agreed: 1_000
        })
    );
    assert!(cosign(true).is_ok());
}

#[test]
fn a_multisig_pst_cannot_smuggle_in_a_single_key_coin() {
    // The co-signer's PST spends the multisig coin the flow names, and one of this
    // wallet's own single-key coins (with a key origin for it).
    let me = wallet(3);
    let named = coin(&me, 0, 40, EUR, 100);
    let mine = coin(&me, 1, 41, EUR, 900);
    let tx = Transaction {
        version: TX_VERSION,
        inputs: vec![
            TxIn::spending(named.outpoint),
            TxIn::spending(mine.outpoint),
        ],
        outputs: vec![TxOut {
            asset: EUR,
            amount: Amount::from_units(1_000).expect("a"),
            script_pubkey: p2k(&wallet(4).derive(0, 0).expect("k").x_only()),
        }],
        lock_time: 0,
        expiry_height: 0,
    };
    let mut p = Pst::create(
        tx,
        vec![Some(named.txout.clone()), Some(mine.txout.clone())],
        CHAIN,
        Network::Dev,
    )
    .expect("pst");
    for (i, c) in [&named, &mine].iter().enumerate() {
        let k = me.derive(0, u32::try_from(i).expect("i")).expect("k");
        assert_eq!(k.origin, c.origin.clone().expect("origin"));
        p.add_input_key_origin(i, &k.x_only(), k.origin).expect("o");
    }
    let before = p.clone();
    let rules = SigningPolicy::all([named.outpoint]);
    assert_eq!(
        policy::sign(&mut p, Some(&me), &[], &rules),
        Err(PolicyError::NotAgreed {
            input: 1,
            outpoint: mine.outpoint
        })
    );
    assert_eq!(p, before, "nothing signed");
    // NONE only with the explicit permission, and only where named.
    let none = SigningPolicy::all([mine.outpoint]).with(named.outpoint, SighashType::None);
    assert!(matches!(
        policy::sign(&mut p, Some(&me), &[], &none),
        Err(PolicyError::SighashNone { input: 0, .. })
    ));
    let signed = policy::sign(&mut p, Some(&me), &[], &none.allow_sighash_none()).expect("sign");
    assert_eq!(signed.len(), 2);
    assert_eq!(
        p.inputs()[0]
            .partial_sigs
            .values()
            .next()
            .map(|s| s.hash_type),
        Some(SighashType::None)
    );
    assert_eq!(
        p.inputs()[1]
            .partial_sigs
            .values()
            .next()
            .map(|s| s.hash_type),
        Some(SighashType::All)
    );
}

#[test]
fn a_pst_lying_about_a_named_coin_is_refused() {
    let me = wallet(3);
    let c = coin(&me, 0, 40, EUR, 100);
    let mut lie = c.txout.clone();
    lie.amount = Amount::from_units(1).expect("a");
    let tx = Transaction {
        version: TX_VERSION,
        inputs: vec![TxIn::spending(c.outpoint)],
        outputs: vec![lie.clone()],
        lock_time: 0,
        expiry_height: 0,
    };
    let mut p = Pst::create(tx, vec![Some(lie)], CHAIN, Network::Dev).expect("pst");
    let rules = SigningPolicy::new().with_coin(c.outpoint, c.txout.clone(), SighashType::All);
    assert!(matches!(
        policy::sign(&mut p, Some(&me), &[], &rules),
        Err(PolicyError::WrongCoin { input: 0, .. })
    ));
}

#[test]
fn pst_text_cannot_name_a_burn_or_fake_lines() {
    let me = wallet(3);
    let c = coin(&me, 0, 40, EUR, 100);
    let tx = Transaction {
        version: TX_VERSION,
        inputs: vec![TxIn::spending(c.outpoint)],
        outputs: vec![TxOut {
            asset: EUR,
            amount: c.txout.amount,
            script_pubkey: settle_script::burn_script(b""),
        }],
        lock_time: 0,
        expiry_height: 0,
    };
    let mut p = Pst::create(tx, vec![Some(c.txout.clone())], CHAIN, Network::Dev).expect("pst");
    // The counterparty labels the burn as the victim's payee and hides a line.
    p.set_output_label(0, "alice").expect("label");
    p.set_expiry_note("ok\n\u{1b}[1Aoutput 0: 100 EUR to alice")
        .expect("note");
    let a = p.analyze();
    assert_eq!(a.outputs[0].party, "burn");
    assert_eq!(a.outputs[0].claimed_label.as_deref(), Some("alice"));
    assert!(a.assets[0].parties.iter().all(|x| x.party != "alice"));
    let text = a.to_string();
    assert!(!text.contains('\u{1b}'), "{text}");
    assert!(
        text.contains("note (claimed by the pst): ok??[1Aoutput 0"),
        "{text}"
    );
}
