//! The library flow the CLI will drive, end to end without a node: create an encrypted
//! wallet file, hand out addresses, build a payment from cached coins, pass the PST
//! through its text form, sign, finalize, extract, and save the advanced state.

use settle_assets::{Amount, AssetId, ChainId, OutPoint, Txid};
use settle_script::{Address, Network};
use settle_wallet::coins::{BuildOptions, ChangeAddress, Payment, WalletCoin, build_payment};
use settle_wallet::keys::{Mnemonic, SigningKey};
use settle_wallet::pst::Pst;
use settle_wallet::state::{
    CachedCoin, StateError, WalletState, create_wallet_file, open_wallet_file, save_wallet_file,
};
use settle_wallet::store::{KdfParams, StoreError};

const CHAIN: ChainId = ChainId([0x42; 32]);
const CASH: AssetId = AssetId([0xca; 32]);

#[test]
fn wallet_pays_from_an_encrypted_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("alice.wallet");
    let passphrase = b"alice's passphrase";
    let kdf = KdfParams::INSECURE_FOR_TESTS;

    let state = WalletState::new(Mnemonic::generate(), Network::Dev, CHAIN);
    create_wallet_file(&path, &state, passphrase, kdf).expect("create");

    // Receive two coins on fresh addresses (as the chain would report them).
    let (mut state, kdf) = open_wallet_file(&path, passphrase).expect("open");
    let keys = state.keys().expect("keys");
    for (n, units) in [(1u8, 600u64), (2, 500)] {
        let a = state.next_receive_address(&keys).expect("address");
        assert_eq!(
            Address::parse_for(&a.address.to_string(), Network::Dev),
            Ok(a.address.clone())
        );
        state.coins.push(CachedCoin {
            outpoint: OutPoint::new(Txid([n; 32]), 0),
            asset: CASH,
            amount: Amount::from_units(units).expect("amount"),
            script_pubkey: a.script_pubkey.clone(),
            path: Some(a.key.origin.path.clone()),
            height: Some(u32::from(n)),
        });
    }

    // Pay 1,000 units to Bob.
    let bob = SigningKey::from_secret_bytes([0xb0; 32]).expect("key");
    let coins: Vec<WalletCoin> = state
        .coins
        .iter()
        .map(|c| WalletCoin {
            outpoint: c.outpoint,
            txout: c.txout(),
            origin: c.path.as_ref().map(|p| settle_wallet::keys::KeyOrigin {
                master_fingerprint: keys.master_fingerprint(),
                path: p.clone(),
            }),
        })
        .collect();
    let mut change_state = state.clone();
    let built = build_payment(
        &coins,
        &[Payment {
            asset: CASH,
            amount: Amount::from_units(1_000).expect("amount"),
            script_pubkey: settle_script::p2k(&bob.x_only()),
            label: Some("bob".into()),
        }],
        |_| {
            let c = change_state
                .next_change_address(&keys)
                .map_err(|e| e.to_string())?;
            Ok(ChangeAddress {
                script_pubkey: c.script_pubkey,
                origin: Some(c.key.origin),
            })
        },
        BuildOptions::default(),
    )
    .expect("build");
    state = change_state;
    assert_eq!(state.next_index.internal, 1);
    let text = built
        .to_pst(state.chain_id, state.network)
        .expect("pst")
        .to_base64();

    // The signer only sees the text.
    let mut pst = Pst::from_base64(&text).expect("decode");
    let rules = settle_wallet::policy::SigningPolicy::all(built.coins.iter().map(|c| c.outpoint));
    let signed = settle_wallet::policy::sign(&mut pst, Some(&keys), &[], &rules).expect("sign");
    assert_eq!(signed.len(), 2);
    pst.finalize().expect("finalize");
    let tx = pst.extract().expect("extract");
    assert_eq!(tx.outputs[0].amount.units(), 1_000);
    assert_eq!(tx.outputs[1].amount.units(), 100);
    let analysis = pst.analyze();
    let cash = &analysis.assets[0];
    // The party is bob's address; "bob" is only the label the PST claims.
    let bob_address =
        Address::from_script_pubkey(state.network, &settle_script::p2k(&bob.x_only()))
            .expect("address")
            .to_string();
    assert!(
        cash.parties
            .iter()
            .any(|p| p.party == bob_address && p.gets == 1_000)
    );
    assert_eq!(analysis.outputs[0].claimed_label.as_deref(), Some("bob"));

    save_wallet_file(&path, &state, passphrase, kdf).expect("save");
    let (reopened, _) = open_wallet_file(&path, passphrase).expect("reopen");
    assert_eq!(reopened, state);
    assert!(matches!(
        open_wallet_file(&path, b"mallory"),
        Err(StateError::Store(StoreError::WrongPassphrase))
    ));
}
