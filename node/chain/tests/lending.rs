//! Securities lending end to end with real keys and signatures, through
//! `validate_transaction` and block connection: the escrow's return, default and
//! agreement paths, what the node says to each attempt to cheat, and the positions
//! and holdings derived from the chain.
#![allow(clippy::panic)] // a test fails by panicking

mod common;

use common::*;
use settle_assets::contract::LendingTerms;
use settle_assets::hash::AssetId;
use settle_assets::transaction::{Issuance, IssuanceKind, OutPoint, Transaction, TxIn, TxOut};
use settle_chain::lending::{
    DeriveError, LendingState, MemoryHistory, MemorySource, PositionDefect, SecurityState,
    derive_book, derive_position, security_holdings,
};
use settle_chain::{Block, RejectClass, Rejection, TxEffects, validate_transaction};
use settle_script::lending::{
    CLAIM_SEQUENCE, Escrow, EscrowPath, LendingError, OpeningDefect, check_opening,
    position_contract,
};
use settle_script::sighash::{PrecomputedTx, SighashType};
use settle_script::sign::{sign_issuance, sign_p2k_input};
use settle_script::templates::p2k;

/// The chain plus the history the derivation reads.
struct Chain {
    fx: Fixture,
    history: MemoryHistory,
}

impl Chain {
    fn new() -> Self {
        let fx = Fixture::new();
        let mut history = MemoryHistory::new();
        history.record_block(&fx.genesis.block);
        Chain { fx, history }
    }

    fn tip(&self) -> u64 {
        self.fx.state.tip().height
    }

    fn check(&self, tx: &Transaction) -> Result<TxEffects, Rejection> {
        validate_transaction(tx, &self.fx.state, &self.fx.ctx())
    }

    fn reject(&self, tx: &Transaction) -> Rejection {
        self.check(tx)
            .expect_err("the transaction must be rejected")
    }

    fn mine(&mut self, txs: &[Transaction]) -> Block {
        let block = self.fx.mine(txs);
        self.history.record_block(&block);
        block
    }

    /// Mines empty blocks until the tip is at `height`.
    fn mine_to(&mut self, height: u64) {
        while self.tip() < height {
            self.mine(&[]);
        }
    }

    fn source(&self) -> MemorySource<'_> {
        MemorySource {
            state: &self.fx.state,
            history: &self.history,
        }
    }

    fn spent(&self, tx: &Transaction) -> Vec<TxOut> {
        self.fx.spent_outputs(tx, &self.fx.state, &[])
    }

    /// Units of `asset` in `owner`'s pay-to-key coins.
    fn balance(&self, owner: &Keypair, asset: AssetId) -> u64 {
        self.fx
            .coins(owner, asset)
            .iter()
            .map(|(_, c)| c.output.amount.units())
            .sum()
    }
}

/// Bob (the lender, 100 AAPL at genesis) lends `quantity` AAPL to Alice (the borrower,
/// 1,000.00 EUR) against `collateral` EUR cents and a fee of 10.00 EUR.
fn terms(
    fx: &Fixture,
    quantity: u64,
    collateral: u64,
    settlement: u32,
    maturity: u32,
    grace: u32,
) -> LendingTerms {
    LendingTerms {
        isin: "US0378331005".into(),
        security_asset: fx.bond,
        quantity,
        lender: key_bytes(&fx.bob),
        borrower: key_bytes(&fx.alice),
        collateral_asset: fx.eur,
        collateral_amount: collateral,
        fee_asset: fx.eur,
        fee: 1_000,
        interest_rate_bps: 250,
        settlement_height: settlement,
        maturity_height: maturity,
        grace_period_blocks: grace,
        negotiator: Some("Banco de Portugal".into()),
        lender_player: None,
    }
}

/// An opened loan, with what the borrower keeps: the lender's return pre-signature.
struct Loan {
    terms: LendingTerms,
    position: AssetId,
    escrow: Escrow,
    opening: Transaction,
    escrow_outpoint: OutPoint,
    escrow_output: TxOut,
    presignature: Vec<u8>,
}

/// The opening protocol: Bob proposes, Alice adds her coins, Bob co-signs (and the
/// registered issuer signs the position's issuance) and pre-signs the return, Alice
/// checks both and signs last.
fn open(chain: &Chain, terms: LendingTerms) -> Loan {
    let fx = &chain.fx;
    // Bob proposes: his AAPL coin carries the position's issuance.
    let (bond_outpoint, bond_coin) = fx.coin(&fx.bob, fx.bond);
    let contract = position_contract(&terms, key_bytes(&fx.issuer));
    let issuance = Issuance {
        kind: IssuanceKind::New {
            contract: contract.to_canonical_bytes().expect("valid contract"),
        },
        amount: amount(1),
        signature: None,
    };
    let position = issuance.asset_id(&bond_outpoint);
    let escrow = Escrow::new(position, &terms).expect("valid terms");
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn {
            issuance: Some(issuance),
            ..TxIn::spending(bond_outpoint)
        }],
        outputs: vec![
            pay(fx.bond, terms.quantity, &fx.alice),
            escrow
                .output(terms.collateral_asset, terms.collateral_amount)
                .expect("in range"),
            pay(position, 1, &fx.bob),
            pay(fx.eur, terms.fee, &fx.bob),
        ],
        lock_time: 0,
        expiry_height: terms.settlement_height,
    };
    let bond_change = bond_coin.output.amount.units() - terms.quantity;
    if bond_change > 0 {
        tx.outputs.push(pay(fx.bond, bond_change, &fx.bob));
    }
    // Alice accepts: she adds her EUR coin and her change.
    let (eur_outpoint, eur_coin) = fx.coin(&fx.alice, fx.eur);
    tx.inputs.push(TxIn::spending(eur_outpoint));
    let eur_change = eur_coin.output.amount.units() - terms.collateral_amount - terms.fee;
    tx.outputs.push(pay(fx.eur, eur_change, &fx.alice));
    // Bob co-signs: the opening is what he proposed, he signs his input, the issuer
    // signs the issuance, and Bob pre-signs the return of the escrow coin.
    let layout = check_opening(&tx, &terms).expect("well formed");
    let spent = chain.spent(&tx);
    let escrow_outpoint = OutPoint::new(tx.txid(), u32::try_from(layout.escrow).expect("small"));
    let escrow_output = tx.outputs[layout.escrow].clone();
    let presignature = escrow
        .sign_return(fx.chain_id, escrow_outpoint, &escrow_output, &fx.bob)
        .expect("signable");
    let (bob_witness, issuer_sig) = {
        let cache = PrecomputedTx::new(&tx, &spent, fx.chain_id).expect("counts");
        (
            sign_p2k_input(&cache, 0, &fx.bob, SighashType::All).expect("Bob's coin"),
            sign_issuance(&cache, 0, &fx.issuer).expect("issuance"),
        )
    };
    tx.inputs[0].witness = bob_witness;
    if let Some(issuance) = &mut tx.inputs[0].issuance {
        issuance.signature = Some(issuer_sig);
    }
    // Alice completes: the same checks, then the pre-signature, then her signature.
    assert_eq!(check_opening(&tx, &terms).map(|l| l.position), Ok(position));
    escrow
        .verify_return(fx.chain_id, escrow_outpoint, &escrow_output, &presignature)
        .expect("Bob's pre-signature verifies");
    let alice_witness = {
        let cache = PrecomputedTx::new(&tx, &spent, fx.chain_id).expect("counts");
        sign_p2k_input(&cache, 1, &fx.alice, SighashType::All).expect("Alice's coin")
    };
    tx.inputs[1].witness = alice_witness;
    Loan {
        terms,
        position,
        escrow,
        escrow_outpoint,
        escrow_output,
        opening: tx,
        presignature,
    }
}

/// Alice's return: the escrow coin and her delivered AAPL coin in, `returned` AAPL to
/// `to` at output 0 and the collateral to her. `presignature` is Bob's.
fn return_tx(
    chain: &Chain,
    loan: &Loan,
    returned: u64,
    to: Vec<u8>,
    presignature: &[u8],
) -> Transaction {
    let fx = &chain.fx;
    let mut tx = loan.escrow.return_skeleton(loan.escrow_outpoint);
    tx.outputs[0] = TxOut {
        asset: fx.bond,
        amount: amount(returned),
        script_pubkey: to,
    };
    let (coin, _) = fx
        .coins(&fx.alice, fx.bond)
        .into_iter()
        .find(|(_, c)| c.output.amount.units() >= returned)
        .expect("Alice holds the securities");
    tx.inputs.push(TxIn::spending(coin));
    let held = chain
        .fx
        .state
        .coins()
        .find(|(o, _)| **o == coin)
        .map(|(_, c)| c.output.amount.units())
        .expect("coin");
    tx.outputs.push(TxOut {
        asset: loan.escrow_output.asset,
        amount: loan.escrow_output.amount,
        script_pubkey: p2k(&xonly(&fx.alice)),
    });
    if held > returned {
        tx.outputs.push(pay(fx.bond, held - returned, &fx.alice));
    }
    let spent = chain.spent(&tx);
    let (borrower_sig, coin_witness) = {
        let cache = PrecomputedTx::new(&tx, &spent, fx.chain_id).expect("counts");
        (
            loan.escrow
                .sign_input(&cache, 0, &fx.alice, SighashType::All)
                .expect("signable"),
            sign_p2k_input(&cache, 1, &fx.alice, SighashType::All).expect("Alice's coin"),
        )
    };
    tx.inputs[0].witness = loan
        .escrow
        .return_witness(borrower_sig, presignature.to_vec());
    tx.inputs[1].witness = coin_witness;
    tx
}

/// Bob's default claim of the escrow coin with the given lock time, signed by `signer`.
fn claim_tx(chain: &Chain, loan: &Loan, lock_time: u32, signer: &Keypair) -> Transaction {
    let fx = &chain.fx;
    let mut tx = loan.escrow.claim_skeleton(
        loan.escrow_outpoint,
        &loan.escrow_output,
        p2k(&xonly(&fx.bob)),
    );
    tx.lock_time = lock_time;
    let spent = chain.spent(&tx);
    let sig = {
        let cache = PrecomputedTx::new(&tx, &spent, fx.chain_id).expect("counts");
        loan.escrow
            .sign_input(&cache, 0, signer, SighashType::All)
            .expect("signable")
    };
    tx.inputs[0].witness = loan.escrow.claim_witness(sig);
    tx
}

/// A collateral change by agreement: the escrow coin (plus Alice's EUR coin when
/// topping up) into a new escrow coin of `new_collateral`. Bob signs the escrow input
/// and pre-signs the return of the new coin; Alice checks that and signs last. The loan
/// then refers to the new coin.
fn margin(chain: &Chain, loan: &mut Loan, new_collateral: u64) -> Transaction {
    let fx = &chain.fx;
    let old = loan.escrow_output.amount.units();
    let mut tx = Transaction {
        version: 1,
        inputs: vec![TxIn::spending(loan.escrow_outpoint)],
        outputs: vec![
            loan.escrow
                .output(fx.eur, new_collateral)
                .expect("in range"),
        ],
        lock_time: 0,
        expiry_height: 0,
    };
    if new_collateral > old {
        let (coin, c) = fx.coin(&fx.alice, fx.eur);
        tx.inputs.push(TxIn::spending(coin));
        let change = c.output.amount.units() - (new_collateral - old);
        tx.outputs.push(pay(fx.eur, change, &fx.alice));
    } else {
        tx.outputs
            .push(pay(fx.eur, old - new_collateral, &fx.alice));
    }
    let spent = chain.spent(&tx);
    let new_outpoint = OutPoint::new(tx.txid(), 0);
    let new_output = tx.outputs[0].clone();
    let presignature = loan
        .escrow
        .sign_return(fx.chain_id, new_outpoint, &new_output, &fx.bob)
        .expect("signable");
    loan.escrow
        .verify_return(fx.chain_id, new_outpoint, &new_output, &presignature)
        .expect("Alice checks the new pre-signature before signing");
    let witnesses = {
        let cache = PrecomputedTx::new(&tx, &spent, fx.chain_id).expect("counts");
        let bob = loan
            .escrow
            .sign_input(&cache, 0, &fx.bob, SighashType::All)
            .expect("signable");
        let alice = loan
            .escrow
            .sign_input(&cache, 0, &fx.alice, SighashType::All)
            .expect("signable");
        let mut w = vec![loan.escrow.agreement_witness(alice, bob)];
        if tx.inputs.len() > 1 {
            w.push(sign_p2k_input(&cache, 1, &fx.alice, SighashType::All).expect("Alice's coin"));
        }
        w
    };
    for (input, w) in tx.inputs.iter_mut().zip(witnesses) {
        input.witness = w;
    }
    loan.escrow_outpoint = new_outpoint;
    loan.escrow_output = new_output;
    loan.presignature = presignature;
    tx
}

fn script_error(rejection: &Rejection) -> &str {
    assert_eq!(rejection.class, RejectClass::Consensus, "{rejection}");
    assert_eq!(rejection.code, "script-failed", "{rejection}");
    &rejection.message
}

#[test]
fn a_return_before_maturity_needs_only_the_borrower_and_the_lenders_presignature() {
    let mut chain = Chain::new();
    let t = terms(&chain.fx, 10, 50_000, 5, 20, 5);
    let loan = open(&chain, t);
    chain.mine(std::slice::from_ref(&loan.opening));

    let position = derive_position(&chain.source(), &loan.position).expect("a loan");
    assert_eq!(position.terms, loan.terms);
    assert_eq!(position.issuer, key_bytes(&chain.fx.issuer));
    assert_eq!(position.opening_txid, loan.opening.txid());
    assert_eq!(position.state, LendingState::Lent);
    assert_eq!(position.collateral(), 50_000);
    assert_eq!(position.opened_height, 1);
    assert_eq!(position.grace_end_height, 25);
    assert_eq!(
        position.escrow.as_ref().map(|c| c.outpoint),
        Some(loan.escrow_outpoint)
    );
    let timing = position.timing(chain.tip());
    assert_eq!(timing.blocks_to_maturity, 19);
    assert!(timing.can_return && !timing.can_claim && !timing.overdue);
    assert_eq!(chain.balance(&chain.fx.bob, chain.fx.bond), 90);
    assert_eq!(chain.balance(&chain.fx.alice, chain.fx.bond), 10);

    chain.mine_to(7);
    let ret = return_tx(
        &chain,
        &loan,
        10,
        p2k(&xonly(&chain.fx.bob)),
        &loan.presignature,
    );
    chain
        .check(&ret)
        .expect("the return is valid before maturity");
    chain.mine(std::slice::from_ref(&ret));

    let position = derive_position(&chain.source(), &loan.position).expect("a loan");
    assert_eq!(position.state, LendingState::Returned);
    assert_eq!(position.state.paper_name(), "Matured");
    assert_eq!(position.collateral(), 0);
    let closing = position.closing.expect("closed");
    assert_eq!(
        (closing.txid, closing.height, closing.path),
        (ret.txid(), 8, EscrowPath::Return)
    );
    // Bob has all his AAPL and the fee; Alice her EUR less the fee.
    assert_eq!(chain.balance(&chain.fx.bob, chain.fx.bond), 100);
    assert_eq!(chain.balance(&chain.fx.alice, chain.fx.bond), 0);
    assert_eq!(
        chain.balance(&chain.fx.alice, chain.fx.eur),
        100_000 - 1_000
    );
    assert_eq!(chain.balance(&chain.fx.bob, chain.fx.eur), 1_000);
    assert_eq!(chain.balance(&chain.fx.bob, loan.position), 1);
    assert!(
        chain
            .fx
            .state
            .coins()
            .all(|(_, c)| c.output.script_pubkey != loan.escrow.script_pubkey)
    );
}

#[test]
fn a_claim_before_maturity_plus_grace_is_premature() {
    let mut chain = Chain::new();
    let loan = open(&chain, terms(&chain.fx, 10, 50_000, 5, 12, 3));
    chain.mine(std::slice::from_ref(&loan.opening));
    let grace_end = loan.escrow.params.grace_end_height;
    assert_eq!(grace_end, 15);
    // Built as the protocol says (lock time = grace end): not final until the block
    // after the grace period, so the node answers "premature".
    while chain.tip() < u64::from(grace_end) {
        let next = chain.tip() + 1;
        let claim = claim_tx(&chain, &loan, grace_end, &chain.fx.bob);
        let r = chain.reject(&claim);
        assert_eq!(
            (r.class, r.code),
            (RejectClass::Premature, "non-final"),
            "at {next}: {r}"
        );
        assert!(r.message.contains(&format!("lock time {grace_end}")), "{r}");
        assert_eq!(
            loan.escrow.check_claim_height(next),
            Err(LendingError::ClaimTooEarly {
                first_height: 16,
                next_height: next
            })
        );
        // A lock time below the grace end can never satisfy the script: consensus.
        let early = claim_tx(
            &chain,
            &loan,
            u32::try_from(next - 1).expect("small"),
            &chain.fx.bob,
        );
        let r = chain.reject(&early);
        assert!(script_error(&r).contains("UNSATISFIED_LOCKTIME"), "{r}");
        // A block builder leaves the premature claim out.
        let built = chain.fx.build(&[claim]);
        assert_eq!(built.skipped.len(), 1);
        assert_eq!(built.skipped[0].rejection.class, RejectClass::Premature);
        chain.mine(&[]);
    }
    // The return is still possible up to the grace end; from the next block only
    // the claim is.
    let position = derive_position(&chain.source(), &loan.position).expect("a loan");
    let timing = position.timing(chain.tip());
    assert!(timing.overdue && timing.can_claim && !timing.can_return);
    let late = return_tx(
        &chain,
        &loan,
        10,
        p2k(&xonly(&chain.fx.bob)),
        &loan.presignature,
    );
    let r = chain.reject(&late);
    assert_eq!(
        (r.class, r.code),
        (RejectClass::Consensus, "expired"),
        "{r}"
    );
    // The borrower cannot use the default branch: it checks the lender's key.
    let r = chain.reject(&claim_tx(&chain, &loan, grace_end, &chain.fx.alice));
    assert!(script_error(&r).contains("SIG_INVALID"), "{r}");

    loan.escrow
        .check_claim_height(chain.tip() + 1)
        .expect("claimable now");
    let claim = claim_tx(&chain, &loan, grace_end, &chain.fx.bob);
    chain.check(&claim).expect("claim after the grace period");
    chain.mine(std::slice::from_ref(&claim));
    let position = derive_position(&chain.source(), &loan.position).expect("a loan");
    assert_eq!(position.state, LendingState::Defaulted);
    assert_eq!(position.closing.map(|c| c.path), Some(EscrowPath::Default));
    // Bob has the collateral and the fee; Alice keeps the 10 AAPL.
    assert_eq!(chain.balance(&chain.fx.bob, chain.fx.eur), 51_000);
    assert_eq!(chain.balance(&chain.fx.alice, chain.fx.bond), 10);

    // The return path is dead: the escrow coin is spent. (The pre-signed return also
    // expired at the grace end; judged at a height within its expiry, the spent coin
    // is what refuses it.)
    let r = chain.reject(&late);
    assert_eq!(r.code, "expired", "{r}");
    let mut ctx = chain.fx.ctx();
    ctx.height = u64::from(grace_end);
    let r = validate_transaction(&late, &chain.fx.state, &ctx).expect_err("coin spent");
    assert_eq!(
        (r.class, r.code),
        (RejectClass::MissingInputs, "missing-inputs"),
        "{r}"
    );
    assert!(r.message.contains(&loan.escrow_outpoint.to_string()), "{r}");
    assert_eq!(claim.inputs[0].sequence, CLAIM_SEQUENCE);
    let position = derive_position(&chain.source(), &loan.position).expect("a loan");
    assert_eq!(position.state, LendingState::Defaulted);
    assert!(!position.timing(chain.tip()).can_return);
}

#[test]
fn after_a_default_claim_no_path_of_the_escrow_is_left() {
    let mut chain = Chain::new();
    let mut loan = open(&chain, terms(&chain.fx, 10, 50_000, 3, 6, 0));
    chain.mine(std::slice::from_ref(&loan.opening));
    chain.mine_to(6);
    let claim = claim_tx(&chain, &loan, 6, &chain.fx.bob);
    chain.mine(&[claim]);
    // A second claim, and a late settlement by agreement ("default regulation"), both
    // find the coin gone.
    let again = claim_tx(&chain, &loan, 6, &chain.fx.bob);
    assert_eq!(chain.reject(&again).class, RejectClass::MissingInputs);
    let agreement = margin(&chain, &mut loan, 40_000);
    let r = chain.reject(&agreement);
    assert_eq!(
        (r.class, r.code),
        (RejectClass::MissingInputs, "missing-inputs"),
        "{r}"
    );
}

#[test]
fn the_borrower_cannot_release_the_collateral_without_returning_the_full_quantity() {
    let mut chain = Chain::new();
    let loan = open(&chain, terms(&chain.fx, 10, 50_000, 5, 20, 5));
    chain.mine(std::slice::from_ref(&loan.opening));
    let bob = p2k(&xonly(&chain.fx.bob));

    // Nine instead of ten: the pre-signature covers "10 AAPL to Bob" only.
    let r = chain.reject(&return_tx(
        &chain,
        &loan,
        9,
        bob.clone(),
        &loan.presignature,
    ));
    assert!(script_error(&r).contains("input 0"), "{r}");
    assert!(r.message.contains("SIG_INVALID"), "{r}");
    // Ten, but to Alice's own key.
    let r = chain.reject(&return_tx(
        &chain,
        &loan,
        10,
        p2k(&xonly(&chain.fx.alice)),
        &loan.presignature,
    ));
    assert!(script_error(&r).contains("SIG_INVALID"), "{r}");
    // The right output 0 but no securities put in: conservation refuses it.
    let mut unfunded = return_tx(&chain, &loan, 10, bob.clone(), &loan.presignature);
    unfunded.inputs.truncate(1);
    unfunded.outputs.truncate(2);
    let r = chain.reject(&unfunded);
    assert_eq!(
        (r.class, r.code),
        (RejectClass::Consensus, "unbalanced"),
        "{r}"
    );
    // Without the lender's signature at all (agreement branch, empty lender slot).
    let mut alone = return_tx(&chain, &loan, 10, bob.clone(), &loan.presignature);
    alone.inputs[0].witness.0[1] = Vec::new();
    let r = chain.reject(&alone);
    assert!(script_error(&r).contains("CHECKSIGVERIFY"), "{r}");
    // The lender's pre-signature moved to another index (output 0 no longer pays him).
    let mut moved = return_tx(&chain, &loan, 10, bob.clone(), &loan.presignature);
    moved.outputs.swap(0, 1);
    let r = chain.reject(&moved);
    assert!(script_error(&r).contains("SIG_INVALID"), "{r}");
    // A forged pre-signature (by Alice) does not pass the borrower's own check either.
    let forged = loan
        .escrow
        .sign_return(
            chain.fx.chain_id,
            loan.escrow_outpoint,
            &loan.escrow_output,
            &chain.fx.alice,
        )
        .expect("signable");
    assert!(matches!(
        loan.escrow.verify_return(
            chain.fx.chain_id,
            loan.escrow_outpoint,
            &loan.escrow_output,
            &forged
        ),
        Err(LendingError::BadReturnSignature(_))
    ));
    // Nothing changed: the full return still works.
    let state = derive_position(&chain.source(), &loan.position).expect("a loan");
    assert_eq!(state.state, LendingState::Lent);
    chain.mine(&[return_tx(&chain, &loan, 10, bob, &loan.presignature)]);
    assert_eq!(
        derive_position(&chain.source(), &loan.position)
            .expect("a loan")
            .state,
        LendingState::Returned
    );
}

#[test]
fn a_margin_top_up_replaces_the_escrow_coin_and_the_collateral() {
    let mut chain = Chain::new();
    let mut loan = open(&chain, terms(&chain.fx, 10, 50_000, 5, 20, 5));
    chain.mine(std::slice::from_ref(&loan.opening));
    let old_outpoint = loan.escrow_outpoint;
    let old_presignature = loan.presignature.clone();

    let top_up = margin(&chain, &mut loan, 60_000);
    chain.mine(std::slice::from_ref(&top_up));
    let position = derive_position(&chain.source(), &loan.position).expect("a loan");
    assert_eq!(position.state, LendingState::Lent);
    assert_eq!(position.collateral(), 60_000);
    assert_eq!(position.updates.len(), 1);
    assert_eq!(position.updates[0].txid, top_up.txid());
    let coin = position.escrow.expect("open");
    assert_eq!(coin.outpoint, OutPoint::new(top_up.txid(), 0));
    assert_ne!(coin.outpoint, old_outpoint);
    assert!(
        chain
            .fx
            .state
            .coins()
            .any(|(o, c)| *o == coin.outpoint && c.output.amount.units() == 60_000)
    );
    assert_eq!(
        chain.balance(&chain.fx.alice, chain.fx.eur),
        100_000 - 60_000 - 1_000
    );

    // The old pre-signature covered the old coin: it does not release the new one.
    let bob = p2k(&xonly(&chain.fx.bob));
    let r = chain.reject(&return_tx(
        &chain,
        &loan,
        10,
        bob.clone(),
        &old_presignature,
    ));
    assert!(script_error(&r).contains("SIG_INVALID"), "{r}");

    // A release by agreement back to 55,000.
    let release = margin(&chain, &mut loan, 55_000);
    chain.mine(&[release]);
    let position = derive_position(&chain.source(), &loan.position).expect("a loan");
    assert_eq!((position.collateral(), position.updates.len()), (55_000, 2));

    // The new pre-signature returns the loan.
    let ret = return_tx(&chain, &loan, 10, bob, &loan.presignature);
    chain.mine(&[ret]);
    let position = derive_position(&chain.source(), &loan.position).expect("a loan");
    assert_eq!(position.state, LendingState::Returned);
    assert_eq!(
        chain.balance(&chain.fx.alice, chain.fx.eur),
        100_000 - 1_000
    );
}

#[test]
fn holdings_show_what_is_free_to_lend() {
    let mut chain = Chain::new();
    let loan = open(&chain, terms(&chain.fx, 10, 50_000, 5, 4 + 2, 3));
    chain.mine(std::slice::from_ref(&loan.opening));
    let (bob, alice) = (key_bytes(&chain.fx.bob), key_bytes(&chain.fx.alice));
    let holdings = |chain: &Chain| {
        let book = derive_book(&chain.source()).expect("infallible");
        security_holdings(&chain.source(), &book, chain.tip()).expect("infallible")
    };
    let h = holdings(&chain);
    assert_eq!(h.len(), 2, "{h:?}");
    let of = |h: &[settle_chain::lending::Holding], k: [u8; 32]| {
        h.iter().find(|x| x.owner == k).cloned().expect("listed")
    };
    let b = of(&h, bob);
    assert_eq!(
        (b.held, b.lent, b.due, b.borrowed, b.available()),
        (90, 10, 0, 0, 90)
    );
    assert_eq!(b.state(), SecurityState::Available);
    let a = of(&h, alice);
    assert_eq!(
        (a.held, a.borrowed, a.available(), a.suspended()),
        (10, 10, 0, 10)
    );
    assert_eq!(a.state(), SecurityState::Suspended);
    assert_eq!(a.isin, "US0378331005");

    chain.mine_to(6);
    let b = of(&holdings(&chain), bob);
    assert_eq!((b.lent, b.due, b.matured()), (0, 10, 10));

    chain.mine(&[return_tx(
        &chain,
        &loan,
        10,
        p2k(&xonly(&chain.fx.bob)),
        &loan.presignature,
    )]);
    let h = holdings(&chain);
    let b = of(&h, bob);
    assert_eq!((b.held, b.lent, b.due, b.available()), (100, 0, 0, 100));
    // Alice holds nothing and owes nothing: no longer listed.
    assert!(h.iter().all(|x| x.owner != alice), "{h:?}");
}

#[test]
fn malformed_openings_are_refused_by_the_borrower_and_not_read_as_loans() {
    let mut chain = Chain::new();
    let t = terms(&chain.fx, 10, 50_000, 5, 20, 5);
    let loan = open(&chain, t.clone());

    // The borrower's checks on a proposal.
    let mut no_expiry = loan.opening.clone();
    no_expiry.expiry_height = 0;
    assert!(matches!(
        check_opening(&no_expiry, &t),
        Err(OpeningDefect::Expiry { .. })
    ));
    let mut short = loan.opening.clone();
    short.outputs[1].amount = amount(49_999);
    assert!(matches!(
        check_opening(&short, &t),
        Err(OpeningDefect::EscrowAmount { .. })
    ));
    let mut twice = loan.opening.clone();
    twice.outputs.push(twice.outputs[1].clone());
    assert_eq!(
        check_opening(&twice, &t).map(|_| ()),
        Err(OpeningDefect::EscrowCount { count: 2 })
    );
    let mut undelivered = loan.opening.clone();
    undelivered.outputs[0].script_pubkey = p2k(&xonly(&chain.fx.bob));
    assert_eq!(
        check_opening(&undelivered, &t).map(|_| ()),
        Err(OpeningDefect::NoDelivery { quantity: 10 })
    );
    let mut other_terms = t.clone();
    other_terms.fee = 999;
    assert_eq!(
        check_opening(&loan.opening, &other_terms).map(|_| ()),
        Err(OpeningDefect::NoPositionIssuance)
    );

    // The registered issuer issues a "position" for these terms without any loan.
    let fake = chain.fx.new_issuance(
        &position_contract(
            &terms(&chain.fx, 7, 1, 5, 20, 5),
            key_bytes(&chain.fx.issuer),
        ),
        1,
        &chain.fx.bob,
        Some(&chain.fx.issuer),
    );
    let fake_asset = fake.outputs[0].asset;
    chain.mine(&[fake, loan.opening.clone()]);
    let book = derive_book(&chain.source()).expect("infallible");
    assert_eq!(book.positions.len(), 1);
    assert_eq!(book.positions[0].asset, loan.position);
    assert_eq!(book.unrecognised.len(), 1);
    assert_eq!(book.unrecognised[0].asset, fake_asset);
    // Issued on a null input, like every `new_issuance` of the fixture: the first
    // rule it breaks.
    assert_eq!(
        book.unrecognised[0].defect,
        PositionDefect::Opening(OpeningDefect::NullIssuanceInput)
    );
    match derive_position(&chain.source(), &fake_asset) {
        Err(DeriveError::Defect(u)) => assert_eq!(*u, book.unrecognised[0]),
        other => panic!("not a loan: {other:?}"),
    }
    match derive_position(&chain.source(), &chain.fx.eur) {
        Err(DeriveError::Defect(u)) => assert_eq!(u.defect, PositionDefect::NotLendingPosition),
        other => panic!("not a loan: {other:?}"),
    }
    assert_eq!(
        derive_position(&chain.source(), &AssetId([7; 32])),
        Err(DeriveError::UnknownAsset(AssetId([7; 32])))
    );
}

/// A new issuance of the position contract of `terms` (unsigned).
fn position_issuance(chain: &Chain, terms: &LendingTerms) -> Issuance {
    let contract = position_contract(terms, key_bytes(&chain.fx.issuer));
    Issuance {
        kind: IssuanceKind::New {
            contract: contract.to_canonical_bytes().expect("valid contract"),
        },
        amount: amount(1),
        signature: None,
    }
}

/// The outputs every opening of `terms` for `position` needs except the delivery:
/// escrow, position unit to the lender, fee.
fn loan_outputs(chain: &Chain, terms: &LendingTerms, position: AssetId) -> Vec<TxOut> {
    let escrow = Escrow::new(position, terms).expect("valid terms");
    vec![
        escrow
            .output(terms.collateral_asset, terms.collateral_amount)
            .expect("in range"),
        pay(position, 1, &chain.fx.bob),
        pay(terms.fee_asset, terms.fee, &chain.fx.bob),
    ]
}

/// Mines `tx` signed by Bob (input 0), Alice (input 1) and the position issuer, and
/// returns the derived book.
fn mine_signed(chain: &mut Chain, mut tx: Transaction) -> settle_chain::lending::LendingBook {
    let (bob, alice, issuer) = (chain.fx.bob, chain.fx.alice, chain.fx.issuer);
    chain
        .fx
        .sign_with(&mut tx, &[Some(&bob), Some(&alice)], Some(&issuer), &[]);
    chain.check(&tx).expect("consensus accepts the transaction");
    chain.mine(&[tx]);
    derive_book(&chain.source()).expect("infallible")
}

#[test]
fn one_delivery_cannot_back_two_positions() {
    // The lender proposes two loans in one transaction, differing only in the interest
    // rate: one delivery of 10 AAPL satisfies both terms' "an output delivers", the
    // borrower locks collateral twice and two positions would be read as loans.
    let mut chain = Chain::new();
    let t1 = terms(&chain.fx, 10, 20_000, 5, 20, 5);
    let mut t2 = t1.clone();
    t2.interest_rate_bps = 300;
    let (bond_outpoint, bond_coin) = chain.fx.coin(&chain.fx.bob, chain.fx.bond);
    let (eur_outpoint, eur_coin) = chain.fx.coin(&chain.fx.alice, chain.fx.eur);
    let (i1, i2) = (
        position_issuance(&chain, &t1),
        position_issuance(&chain, &t2),
    );
    let (p1, p2) = (i1.asset_id(&bond_outpoint), i2.asset_id(&eur_outpoint));
    let mut outputs = vec![pay(chain.fx.bond, 10, &chain.fx.alice)];
    outputs.extend(loan_outputs(&chain, &t1, p1));
    outputs.extend(loan_outputs(&chain, &t2, p2));
    let bond_change = bond_coin.output.amount.units() - 10;
    outputs.push(pay(chain.fx.bond, bond_change, &chain.fx.bob));
    let eur_change = eur_coin.output.amount.units() - 2 * 20_000 - 2 * t1.fee;
    outputs.push(pay(chain.fx.eur, eur_change, &chain.fx.alice));
    let tx = Transaction {
        version: 1,
        inputs: vec![
            TxIn {
                issuance: Some(i1),
                ..TxIn::spending(bond_outpoint)
            },
            TxIn {
                issuance: Some(i2),
                ..TxIn::spending(eur_outpoint)
            },
        ],
        outputs,
        lock_time: 0,
        expiry_height: 5,
    };
    // The borrower refuses to sign either loan's opening.
    for t in [&t1, &t2] {
        assert_eq!(
            check_opening(&tx, t).map(|_| ()),
            Err(OpeningDefect::PositionCount { count: 2 })
        );
    }
    // Consensus lets the issuer issue any position; the chain reads neither as a loan.
    let book = mine_signed(&mut chain, tx);
    assert!(book.positions.is_empty(), "{:?}", book.positions);
    assert_eq!(book.unrecognised.len(), 2);
    for u in &book.unrecognised {
        assert!([p1, p2].contains(&u.asset));
        assert_eq!(
            u.defect,
            PositionDefect::Opening(OpeningDefect::PositionCount { count: 2 })
        );
    }
}

#[test]
fn a_position_issued_on_a_null_input_is_not_a_loan() {
    // The issuance rides on an added issuance-only input instead of the lender's coin:
    // the position id is then a function of the terms alone, known before any opening.
    let mut chain = Chain::new();
    let t = terms(&chain.fx, 10, 20_000, 5, 20, 5);
    let (bond_outpoint, bond_coin) = chain.fx.coin(&chain.fx.bob, chain.fx.bond);
    let (eur_outpoint, eur_coin) = chain.fx.coin(&chain.fx.alice, chain.fx.eur);
    let issuance = position_issuance(&chain, &t);
    let position = issuance.asset_id(&OutPoint::NULL);
    let mut outputs = vec![pay(chain.fx.bond, 10, &chain.fx.alice)];
    outputs.extend(loan_outputs(&chain, &t, position));
    outputs.push(pay(
        chain.fx.bond,
        bond_coin.output.amount.units() - 10,
        &chain.fx.bob,
    ));
    outputs.push(pay(
        chain.fx.eur,
        eur_coin.output.amount.units() - 20_000 - t.fee,
        &chain.fx.alice,
    ));
    let tx = Transaction {
        version: 1,
        inputs: vec![
            TxIn::spending(bond_outpoint),
            TxIn::spending(eur_outpoint),
            TxIn {
                issuance: Some(issuance),
                ..TxIn::spending(OutPoint::NULL)
            },
        ],
        outputs,
        lock_time: 0,
        expiry_height: 5,
    };
    assert_eq!(
        check_opening(&tx, &t).map(|_| ()),
        Err(OpeningDefect::NullIssuanceInput)
    );
    let book = mine_signed(&mut chain, tx);
    assert!(book.positions.is_empty(), "{:?}", book.positions);
    assert_eq!(book.unrecognised.len(), 1);
    assert_eq!(book.unrecognised[0].asset, position);
    assert_eq!(
        book.unrecognised[0].defect,
        PositionDefect::Opening(OpeningDefect::NullIssuanceInput)
    );
}
