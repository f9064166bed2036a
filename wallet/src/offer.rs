//! Delivery-versus-payment offers (`spec/pst.md`, section 6).
//!
//! The maker spends one whole coin ("I give 1,000.00 EUR") into one output paying her what
//! she wants ("I must receive 10 BOND") and signs that input with
//! `SINGLE|ANYONECANPAY`: the signature covers her coin and that output only. A taker
//! completes the offer by appending his own inputs (coins of the wanted asset) and
//! outputs (the offered coin's value to himself, his change), signs his inputs with
//! `ALL`, and broadcasts. Per-asset conservation and the maker's signature together mean
//! nobody can get more than agreed: changing the maker's output breaks her signature, and
//! taking more than she gives breaks conservation.
//!
//! Pure functions from PSTs and coins to PSTs; the CLI fetches coins and broadcasts.

use secp256k1::XOnlyPublicKey;
use serde::Serialize;
use settle_assets::transaction::TX_VERSION;
use settle_assets::{Amount, AssetId, ChainId, OutPoint, Transaction, TxIn, TxOut};
use settle_script::{Network, ScriptKind, SighashType, classify};

use crate::coins::{BuildError, ChangeAddress, Strategy, WalletCoin, select_coins};
use crate::keys::{KeyOrigin, WalletKeys};
use crate::policy::{self, PolicyError, SigningPolicy};
use crate::pst::{Pst, PstError, XOnly};

/// The sighash type of the maker's signature.
pub const OFFER_SIGHASH: SighashType = SighashType::SingleAnyoneCanPay;
/// The owner and label the maker's side carries in the PST.
pub const MAKER: &str = "maker";
/// The owner and label the taker's side carries in the PST.
pub const TAKER: &str = "taker";

/// Why an offer could not be made, read or taken. Nothing changed when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfferError {
    #[error("not an offer: {0}")]
    NotAnOffer(String),
    #[error("an offer must want a different asset from the one it gives")]
    SameAsset,
    #[error("the wanted amount must be more than zero")]
    ZeroAmount,
    #[error(
        "the maker's signature on the offer does not verify: the offer was changed after it was signed"
    )]
    BadMakerSignature,
    #[error("the offered coin {0} is not one of this wallet's coins")]
    NotOurs(OutPoint),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Pst(#[from] PstError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// What an offer says.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct OfferTerms {
    /// The coin the maker gives.
    pub maker_coin: OutPoint,
    /// The script of that coin, as the PST claims it (compare it with the chain).
    #[serde(serialize_with = "hex_ser")]
    pub maker_coin_script: Vec<u8>,
    pub give_asset: AssetId,
    pub give_amount: Amount,
    pub want_asset: AssetId,
    pub want_amount: Amount,
    /// Where the maker receives (her bound output's script, hex in JSON).
    #[serde(serialize_with = "hex_ser")]
    pub maker_script: Vec<u8>,
    /// The x-only key that signed the maker's side.
    #[serde(serialize_with = "hex_ser")]
    pub maker_key: XOnly,
    /// Last block height at which the offer can be taken (0 = never expires).
    pub expiry_height: u32,
    pub note: Option<String>,
}

fn hex_ser<S: serde::Serializer, T: AsRef<[u8]>>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(v.as_ref()))
}

/// Where one side of an offer receives.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Receive {
    pub script_pubkey: Vec<u8>,
    pub origin: Option<KeyOrigin>,
}

impl From<ChangeAddress> for Receive {
    fn from(c: ChangeAddress) -> Self {
        Receive {
            script_pubkey: c.script_pubkey,
            origin: c.origin,
        }
    }
}

fn add_output_origin(pst: &mut Pst, output: usize, r: &Receive) -> Result<(), PstError> {
    if let (Some(origin), ScriptKind::PayToKey(k)) = (&r.origin, classify(&r.script_pubkey))
        && let Ok(key) = XOnlyPublicKey::from_byte_array(k)
    {
        pst.add_output_key_origin(output, &key, origin.clone())?;
    }
    Ok(())
}

fn add_input_origin(pst: &mut Pst, input: usize, coin: &WalletCoin) -> Result<(), PstError> {
    if let (Some(origin), ScriptKind::PayToKey(k)) =
        (&coin.origin, classify(&coin.txout.script_pubkey))
        && let Ok(key) = XOnlyPublicKey::from_byte_array(k)
    {
        pst.add_input_key_origin(input, &key, origin.clone())?;
    }
    Ok(())
}

/// Makes an offer: `coin` (whole) for `want_amount` of `want_asset` paid to `receive`,
/// signed `SINGLE|ANYONECANPAY` with the wallet's key for the coin. `expiry_height` is
/// the last height at which it can be taken (0 = none); every signature covers it.
#[allow(clippy::too_many_arguments)]
pub fn make_offer(
    coin: &WalletCoin,
    want_asset: AssetId,
    want_amount: Amount,
    receive: &Receive,
    expiry_height: u32,
    chain_id: ChainId,
    network: Network,
    keys: &WalletKeys,
) -> Result<Pst, OfferError> {
    if want_asset == coin.txout.asset {
        return Err(OfferError::SameAsset);
    }
    if want_amount == Amount::ZERO {
        return Err(OfferError::ZeroAmount);
    }
    let tx = Transaction {
        version: TX_VERSION,
        inputs: vec![TxIn::spending(coin.outpoint)],
        outputs: vec![TxOut {
            asset: want_asset,
            amount: want_amount,
            script_pubkey: receive.script_pubkey.clone(),
        }],
        lock_time: 0,
        expiry_height,
    };
    let mut pst = Pst::create(tx, vec![Some(coin.txout.clone())], chain_id, network)?;
    add_input_origin(&mut pst, 0, coin)?;
    add_output_origin(&mut pst, 0, receive)?;
    pst.set_input_owner(0, MAKER)?;
    pst.set_output_label(0, MAKER)?;
    if expiry_height != 0 {
        pst.set_expiry_note(&format!(
            "this offer can be taken up to and including block {expiry_height}"
        ))?;
    }
    let rules = SigningPolicy::new().with_coin(coin.outpoint, coin.txout.clone(), OFFER_SIGHASH);
    let signed = policy::sign(&mut pst, Some(keys), &[], &rules)?;
    if signed.is_empty() {
        return Err(OfferError::NotOurs(coin.outpoint));
    }
    Ok(pst)
}

/// Reads and checks an offer: one input (the maker's coin, its spent output known) signed
/// `SINGLE|ANYONECANPAY` by the key its script names, with a valid signature, and its
/// bound output.
pub fn read_offer(pst: &Pst) -> Result<OfferTerms, OfferError> {
    let tx = pst.unsigned_tx();
    if tx.inputs.len() != 1 || tx.outputs.len() != 1 {
        return Err(OfferError::NotAnOffer(format!(
            "an offer has one input and one output, this pst has {} and {} \
             (was it taken already?)",
            tx.inputs.len(),
            tx.outputs.len()
        )));
    }
    if tx.inputs[0].prevout.is_null() || tx.inputs[0].issuance.is_some() {
        return Err(OfferError::NotAnOffer(
            "the maker's input must spend a coin and issue nothing".into(),
        ));
    }
    let inp = &pst.inputs()[0];
    let spent = inp.spent_output.as_ref().ok_or_else(|| {
        OfferError::NotAnOffer("the coin the maker gives is not described".into())
    })?;
    let ScriptKind::PayToKey(maker_key) = classify(&spent.script_pubkey) else {
        return Err(OfferError::NotAnOffer(
            "the maker's coin must be a pay-to-key coin".into(),
        ));
    };
    let sig = inp
        .partial_sigs
        .get(&maker_key)
        .ok_or_else(|| OfferError::NotAnOffer("the maker has not signed her side".into()))?;
    if sig.hash_type != OFFER_SIGHASH {
        return Err(OfferError::NotAnOffer(format!(
            "the maker signed with {}, an offer is signed {OFFER_SIGHASH}",
            sig.hash_type
        )));
    }
    if !pst.verify_partial_sig(0, &maker_key, sig)? {
        return Err(OfferError::BadMakerSignature);
    }
    let out = &tx.outputs[0];
    if out.asset == spent.asset {
        return Err(OfferError::SameAsset);
    }
    Ok(OfferTerms {
        maker_coin: tx.inputs[0].prevout,
        maker_coin_script: spent.script_pubkey.clone(),
        give_asset: spent.asset,
        give_amount: spent.amount,
        want_asset: out.asset,
        want_amount: out.amount,
        maker_script: out.script_pubkey.clone(),
        maker_key,
        expiry_height: tx.expiry_height,
        note: pst.expiry_note.clone(),
    })
}

/// What a taker's completion adds.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Taken {
    pub terms: OfferTerms,
    /// The taker's coins spent.
    pub taker_coins: Vec<OutPoint>,
    /// The taker's change of the wanted asset, if any.
    pub change: Option<Amount>,
}

/// Completes an offer from the taker's coins: appends coins of the wanted asset, an output
/// paying the offered coin's value to `receive`, change to `change` if the coins hold more,
/// signs the taker's inputs with `ALL` and finalizes. The result is ready to extract.
pub fn take_offer<F>(
    offer: &Pst,
    taker_coins: &[WalletCoin],
    receive: &Receive,
    change: F,
    keys: &WalletKeys,
) -> Result<(Pst, Taken), OfferError>
where
    F: FnOnce() -> Result<Receive, String>,
{
    let terms = read_offer(offer)?;
    let selection = select_coins(
        taker_coins,
        terms.want_asset,
        terms.want_amount,
        Strategy::BranchAndBound,
    )?;
    let mut pst = offer.clone();
    for coin in &selection.coins {
        let i = pst.add_input(TxIn::spending(coin.outpoint), Some(coin.txout.clone()))?;
        add_input_origin(&mut pst, i, coin)?;
        pst.set_input_owner(i, TAKER)?;
    }
    let o = pst.add_output(TxOut {
        asset: terms.give_asset,
        amount: terms.give_amount,
        script_pubkey: receive.script_pubkey.clone(),
    })?;
    add_output_origin(&mut pst, o, receive)?;
    pst.set_output_label(o, TAKER)?;
    let mut change_amount = None;
    if selection.change > Amount::ZERO {
        let c = change().map_err(|e| OfferError::Build(BuildError::Change(e)))?;
        let o = pst.add_output(TxOut {
            asset: terms.want_asset,
            amount: selection.change,
            script_pubkey: c.script_pubkey.clone(),
        })?;
        add_output_origin(&mut pst, o, &c)?;
        pst.set_output_label(o, TAKER)?;
        change_amount = Some(selection.change);
    }
    let mut rules = SigningPolicy::new();
    for c in &selection.coins {
        rules = rules.with_coin(c.outpoint, c.txout.clone(), SighashType::All);
    }
    let signed = policy::sign(&mut pst, Some(keys), &[], &rules)?;
    if signed.len() != selection.coins.len() {
        return Err(OfferError::NotAnOffer(
            "the taker's coins could not all be signed by this wallet".into(),
        ));
    }
    pst.finalize()?;
    Ok((
        pst,
        Taken {
            terms,
            taker_coins: selection.coins.iter().map(|c| c.outpoint).collect(),
            change: change_amount,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::test_support::{BOND, CHAIN, EUR, coin, wallet};

    fn receive(keys: &WalletKeys, index: u32) -> Receive {
        let k = keys.derive(0, index).expect("k");
        Receive {
            script_pubkey: settle_script::p2k(&k.x_only()),
            origin: Some(k.origin),
        }
    }

    #[test]
    fn offer_round_trip_and_tampering() {
        let (alice, bob) = (wallet(1), wallet(2));
        let eur = coin(&alice, 0, 1, EUR, 100_000);
        let offer = make_offer(
            &eur,
            BOND,
            Amount::from_units(10).expect("a"),
            &receive(&alice, 1),
            50,
            CHAIN,
            Network::Dev,
            &alice,
        )
        .expect("offer");
        let text = offer.to_base64();
        let offer = Pst::from_base64(&text).expect("decode");
        let terms = read_offer(&offer).expect("terms");
        assert_eq!(
            (terms.give_asset, terms.give_amount.units()),
            (EUR, 100_000)
        );
        assert_eq!((terms.want_asset, terms.want_amount.units()), (BOND, 10));
        assert_eq!(terms.expiry_height, 50);

        let bonds = vec![coin(&bob, 0, 2, BOND, 7), coin(&bob, 1, 3, BOND, 5)];
        let (done, taken) = take_offer(
            &offer,
            &bonds,
            &receive(&bob, 2),
            || Ok(receive(&bob, 3)),
            &bob,
        )
        .expect("take");
        assert_eq!(taken.change.map(Amount::units), Some(2));
        let tx = done.extract().expect("complete and valid");
        assert_eq!(tx.inputs.len(), 3);
        assert_eq!(tx.outputs[0].amount.units(), 10);
        assert_eq!(tx.outputs[1].amount.units(), 100_000);

        // Not enough of the wanted asset.
        assert!(matches!(
            take_offer(
                &offer,
                &bonds[..1],
                &receive(&bob, 2),
                || Ok(receive(&bob, 3)),
                &bob
            ),
            Err(OfferError::Build(BuildError::InsufficientFunds {
                have: 7,
                need: 10,
                ..
            }))
        ));
        // A taken offer is no longer an offer.
        assert!(matches!(read_offer(&done), Err(OfferError::NotAnOffer(_))));
        // Someone else's coin cannot be offered.
        assert!(matches!(
            make_offer(
                &eur,
                BOND,
                Amount::ONE,
                &receive(&bob, 0),
                0,
                CHAIN,
                Network::Dev,
                &bob
            ),
            Err(OfferError::NotOurs(_))
        ));
        assert!(matches!(
            make_offer(
                &eur,
                EUR,
                Amount::ONE,
                &receive(&alice, 0),
                0,
                CHAIN,
                Network::Dev,
                &alice
            ),
            Err(OfferError::SameAsset)
        ));
    }
}
