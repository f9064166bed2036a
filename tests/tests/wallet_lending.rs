//! Securities lending between two wallets against a real `settled` (`spec/lending.md`):
//! every step is a `settle` process. A loan returned before maturity (with a margin
//! top-up on the way), a loan not returned and claimed after maturity plus grace, and
//! what must not work: a premature claim, a return after the claim, and the borrower
//! taking the collateral without giving back the full quantity (refused by the wallet
//! and, built by hand, by the node).
//!
//! The dev chain makes a block only when a transaction arrives, so the tests pass
//! maturity heights by making small unrelated payments (`Desk::block`).

use settle_assets::AssetId;
use settle_rpc::PositionFilter;
use settle_tests::lending::{Desk, coin_to, hand_return, key_of, loan, presignature, reject_code};
use settle_tests::wallet::balances;

const ISIN: &str = "US0378331005";

fn id(position: &str) -> AssetId {
    position.parse().expect("position id")
}

#[test]
fn a_loan_returned_before_maturity_gives_both_sides_back() {
    let d = Desk::new();
    let (pos, borrower_address) = d.open_loan("10", "1,100.00 EUR", "5.00 EUR", 30, 5);
    assert_eq!(
        d.lender.balances(),
        balances(&[("BOND", "90"), ("EUR", "5.00"), ("LOAN", "1")])
    );
    assert_eq!(
        d.borrower.balances(),
        balances(&[("BOND", "10"), ("EUR", "8,895.00")])
    );

    // Both sides see the loan, with its state, time to maturity and collateral.
    for (w, role) in [(&d.lender, "lender"), (&d.borrower, "borrower")] {
        let p = d.position_of(w, &pos);
        assert_eq!(p["role"], role);
        assert_eq!(p["state"], "lent");
        assert_eq!(p["lending_state"], "Lent");
        assert_eq!(p["collateral"]["amount"], "1,100.00");
        assert_eq!(p["collateral"]["ticker"], "EUR");
        let to_maturity = p["blocks_to_maturity"].as_u64().expect("blocks");
        assert!((1..=30).contains(&to_maturity), "{p}");
        assert_eq!(p["can_return"], true);
        assert_eq!(p["can_claim"], false);
    }

    // The node's view: the position, filters, and every owner's lendable securities.
    let rpc = d.node.client();
    let info = rpc.get_position(&id(&pos)).expect("getposition");
    assert_eq!(info.state, "lent");
    assert_eq!(info.isin, ISIN);
    assert_eq!(info.quantity, 10);
    assert_eq!(info.collateral, 110_000);
    assert_eq!(info.fee, 500);
    assert_eq!(info.interest_rate_bps, 150);
    assert_eq!(
        info.borrower_address.as_deref(),
        Some(borrower_address.as_str())
    );
    let by_party = rpc
        .list_positions(&PositionFilter {
            party: Some(borrower_address.clone()),
            ..PositionFilter::default()
        })
        .expect("listpositions");
    assert_eq!(by_party.positions.len(), 1);
    let by_state = rpc
        .list_positions(&PositionFilter {
            state: Some("Matured".into()),
            ..PositionFilter::default()
        })
        .expect("listpositions");
    assert!(by_state.positions.is_empty());
    let lendable = rpc.list_lendable(Some(ISIN), None).expect("listlendable");
    let lender_row = lendable
        .holdings
        .iter()
        .find(|h| h.owner == info.lender)
        .expect("lender's row");
    assert_eq!(
        (
            lender_row.held,
            lender_row.available,
            lender_row.unavailable
        ),
        (0, 0, 10),
        "the lender's loan key holds none of the 90 left (they are at another key)"
    );
    assert_eq!(lender_row.state, "unavailable");
    let borrower_row = lendable
        .holdings
        .iter()
        .find(|h| h.owner == info.borrower)
        .expect("borrower's row");
    assert_eq!(
        (
            borrower_row.held,
            borrower_row.borrowed,
            borrower_row.suspended,
            borrower_row.available
        ),
        (10, 10, 10, 0)
    );
    assert_eq!(borrower_row.state, "suspended");
    let free: u64 = lendable
        .holdings
        .iter()
        .filter(|h| h.state == "available")
        .map(|h| h.available)
        .sum();
    assert_eq!(
        free,
        1000 - 10,
        "every unit not lent is available to someone"
    );

    // Margin top-up: the borrower proposes, the lender co-signs, the borrower finishes.
    let m = d.borrower.file("margin.pst");
    let m = m.to_str().expect("utf-8");
    let proposed = d.borrower.ok(&[
        "lend",
        "margin",
        &pos,
        "--collateral",
        "1,300.00",
        "--out",
        m,
    ]);
    assert_eq!(proposed["collateral_after"], "1,300.00");
    let (kind, msg) = d.borrower.fails(&["lend", "accept", m]);
    assert_eq!(kind, "lending", "{msg}");
    assert!(msg.contains("not co-signed"), "{msg}");
    d.lender.ok(&["lend", "cosign", "--yes", m]);
    d.borrower.ok(&["lend", "accept", "--yes", m, "--wait"]);
    for w in [&d.lender, &d.borrower] {
        let p = d.position_of(w, &pos);
        assert_eq!(p["collateral"]["amount"], "1,300.00", "{p}");
        assert_eq!(p["state"], "lent");
    }
    assert_eq!(d.borrower.balances()["EUR"], "8,695.00");
    let info = rpc.get_position(&id(&pos)).expect("getposition");
    assert_eq!(info.updates.len(), 1);
    assert_eq!(info.collateral, 130_000);

    // The full quantity must come back: with 9 BOND the wallet refuses to build a return.
    let csd_address = d.csd.address();
    d.borrower
        .ok(&["send", "1", "BOND", &csd_address, "--wait"]);
    let (kind, msg) = d.borrower.fails(&["lend", "return", &pos]);
    assert_eq!(kind, "insufficient_funds", "{msg}");
    assert!(msg.contains("full quantity"), "{msg}");
    assert_eq!(d.position_of(&d.borrower, &pos)["state"], "lent");
    d.csd
        .ok(&["send", "1", "BOND", &d.borrower.address(), "--wait"]);

    // The return, before maturity, by the borrower alone.
    let returned = d.borrower.ok(&["lend", "return", &pos, "--wait"]);
    assert_eq!(returned["collateral"], "1,300.00");
    for w in [&d.lender, &d.borrower] {
        let p = d.position_of(w, &pos);
        assert_eq!(p["state"], "returned");
        assert_eq!(p["lending_state"], "Matured");
        assert_eq!(p["collateral"]["amount"], "0.00");
    }
    assert!(
        d.position_of(&d.lender, &pos)["blocks_to_maturity"]
            .as_u64()
            .expect("blocks")
            > 0,
        "returned before maturity"
    );
    assert_eq!(
        d.lender.balances(),
        balances(&[("BOND", "100"), ("EUR", "5.00"), ("LOAN", "1")])
    );
    assert_eq!(d.borrower.balances(), balances(&[("EUR", "9,995.00")]));
    let info = rpc.get_position(&id(&pos)).expect("getposition");
    assert_eq!(info.state, "returned");
    assert_eq!(info.closing.expect("closed").path, "return");
    // Nothing is left to claim or return.
    let (kind, _) = d.lender.fails(&["lend", "claim", &pos]);
    assert_eq!(kind, "lending");
    let (kind, _) = d.borrower.fails(&["lend", "return", &pos]);
    assert_eq!(kind, "lending");
    d.node.wait_mempool_empty();
}

#[test]
fn a_loan_not_returned_is_claimed_after_maturity_and_grace() {
    let d = Desk::new();
    let (pos, borrower_address) = d.open_loan("10", "1,100.00 EUR", "5.00 EUR", 3, 2);
    let (_, escrow) = loan(&d.node, &pos);
    let grace_end = u64::from(escrow.params.grace_end_height);
    let info = d
        .node
        .client()
        .get_position(&id(&pos))
        .expect("getposition");
    let escrow_coin = coin_to(
        &d.node,
        &info.opening_txid,
        info.escrow_address.as_deref().expect("escrow address"),
    );

    // Before maturity plus grace the claim is premature: the wallet says so and shows
    // that the node refuses it too.
    let (kind, msg) = d.lender.fails(&["lend", "claim", &pos]);
    assert_eq!(kind, "premature", "{msg}");
    assert!(msg.contains("premature, non-final"), "{msg}");
    // In the last block of the grace period it is still too early.
    d.advance_to(grace_end - 1);
    let (kind, msg) = d.lender.fails(&["lend", "claim", &pos]);
    assert_eq!(kind, "premature", "{msg}");
    let p = d.position_of(&d.borrower, &pos);
    assert_eq!(p["blocks_to_maturity"], 0);
    assert_eq!(p["can_return"], true);

    // From the block after it, the lender alone takes the collateral.
    d.advance_to(grace_end);
    assert_eq!(d.position_of(&d.lender, &pos)["can_claim"], true);
    let claimed = d.lender.ok(&["lend", "claim", &pos, "--wait"]);
    assert_eq!(claimed["collateral"], "1,100.00");
    for w in [&d.lender, &d.borrower] {
        let p = d.position_of(w, &pos);
        assert_eq!(p["state"], "defaulted");
        assert_eq!(p["lending_state"], "Default");
        assert_eq!(p["collateral"]["amount"], "0.00");
    }
    assert_eq!(
        d.lender.balances(),
        balances(&[("BOND", "90"), ("EUR", "1,105.00"), ("LOAN", "1")])
    );
    assert_eq!(
        d.borrower.balances(),
        balances(&[("BOND", "10"), ("EUR", "8,895.00")])
    );
    let info = d
        .node
        .client()
        .get_position(&id(&pos))
        .expect("getposition");
    assert_eq!(info.closing.expect("closed").path, "default");

    // The return path is dead: the wallet has nothing to return, and the pre-signed
    // return built by hand is refused by the node.
    let (kind, msg) = d.borrower.fails(&["lend", "return", &pos]);
    assert_eq!(kind, "lending", "{msg}");
    let presig = presignature(&d.borrower, &escrow_coin.0);
    let key = key_of(&d.borrower, &borrower_address);
    let delivery = coin_to(&d.node, &info.opening_txid, &borrower_address);
    let tx = hand_return(&d.node, &escrow, &escrow_coin, &delivery, &key, 10, presig);
    let code = reject_code(d.node.client().send_raw_transaction(&tx));
    assert!(
        ["missing-inputs", "double-spend", "expired"].contains(&code.as_str()),
        "{code}"
    );
}

#[test]
fn the_borrower_cannot_take_the_collateral_without_returning_the_full_quantity() {
    let d = Desk::new();
    let (pos, borrower_address) = d.open_loan("10", "1,100.00 EUR", "0.01 EUR", 50, 5);
    let (terms, escrow) = loan(&d.node, &pos);
    let rpc = d.node.client();
    let info = rpc.get_position(&id(&pos)).expect("getposition");
    let escrow_coin = coin_to(
        &d.node,
        &info.opening_txid,
        info.escrow_address.as_deref().expect("escrow address"),
    );
    let presig = presignature(&d.borrower, &escrow_coin.0);
    let key = key_of(&d.borrower, &borrower_address);
    let delivery = coin_to(&d.node, &info.opening_txid, &borrower_address);
    assert_eq!(delivery.1.amount.units(), terms.quantity);

    // 9 of the 10 units to the lender: the pre-signature covers output 0 exactly.
    let short = hand_return(
        &d.node,
        &escrow,
        &escrow_coin,
        &delivery,
        &key,
        9,
        presig.clone(),
    );
    assert_eq!(
        reject_code(rpc.send_raw_transaction(&short)),
        "script-failed"
    );
    // The full quantity, but a forged lender pre-signature.
    let mut forged = presig.clone();
    forged[10] ^= 0x40;
    let alone = hand_return(&d.node, &escrow, &escrow_coin, &delivery, &key, 10, forged);
    assert_eq!(
        reject_code(rpc.send_raw_transaction(&alone)),
        "script-failed"
    );
    // A margin release to almost nothing, without the lender: the wallet will not finish it.
    let m = d.borrower.file("release.pst");
    let m = m.to_str().expect("utf-8");
    d.borrower
        .ok(&["lend", "margin", &pos, "--collateral", "0.01", "--out", m]);
    let (kind, _) = d.borrower.fails(&["lend", "accept", m]);
    assert_eq!(kind, "lending");
    // Nothing moved.
    let p = d.position_of(&d.borrower, &pos);
    assert_eq!(p["state"], "lent");
    assert_eq!(p["collateral"]["amount"], "1,100.00");
    assert_eq!(
        d.borrower.balances(),
        balances(&[("BOND", "10"), ("EUR", "8,899.99")])
    );
    // The honest, hand-built return with the full quantity and the pre-signature is
    // accepted: the refusals above were about what they changed.
    let honest = hand_return(&d.node, &escrow, &escrow_coin, &delivery, &key, 10, presig);
    let txid = rpc.send_raw_transaction(&honest).expect("the full return");
    d.node.wait_confirmed(&txid);
    assert_eq!(d.position_of(&d.lender, &pos)["state"], "returned");
}
