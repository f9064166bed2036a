//! Network identities: a node's libp2p identity is its secp256k1 node key, so the
//! permitted set (x-only keys from the chain spec) maps to libp2p peer ids without
//! any extra registry.
//!
//! libp2p's secp256k1 identities use compressed keys (`02`/`03` prefix) while Settle
//! uses x-only keys. A node therefore derives its libp2p key from the secret whose
//! public key has an even Y (negating the secret when the Y is odd, as BIP340 does),
//! and every x-only key `x` maps to exactly one peer id: that of `02 || x`.

use libp2p_identity::{Keypair as Libp2pKeypair, PeerId, secp256k1 as p2p_secp};
use secp256k1::{Parity, SecretKey};

use crate::signing::PrivateKey;

/// A key that libp2p refused (cannot happen for a valid secp256k1 key; reported
/// rather than assumed).
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("x-only key {key} is not a valid secp256k1 public key for libp2p")]
    PublicKey { key: String },
    #[error("the node key was refused by libp2p")]
    SecretKey,
}

/// The libp2p identity of the node whose key is `key`.
pub fn libp2p_keypair(key: &PrivateKey) -> Result<Libp2pKeypair, IdentityError> {
    let keypair = key.keypair();
    let secret = SecretKey::from_keypair(keypair);
    let (_, parity) = keypair.x_only_public_key();
    let even_secret = match parity {
        Parity::Even => secret,
        Parity::Odd => secret.negate(),
    };
    // try_from_bytes zeroes the buffer it is given.
    let p2p_secret = p2p_secp::SecretKey::try_from_bytes(even_secret.secret_bytes())
        .map_err(|_| IdentityError::SecretKey)?;
    Ok(Libp2pKeypair::from(p2p_secp::Keypair::from(p2p_secret)))
}

/// The libp2p peer id of the node whose x-only key is `key`.
pub fn peer_id_of(key: &[u8; 32]) -> Result<PeerId, IdentityError> {
    let mut compressed = [0u8; 33];
    compressed[0] = 0x02;
    compressed[1..].copy_from_slice(key);
    let public =
        p2p_secp::PublicKey::try_from_bytes(&compressed).map_err(|_| IdentityError::PublicKey {
            key: hex::encode(key),
        })?;
    Ok(libp2p_identity::PublicKey::from(public).to_peer_id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use secp256k1::{Keypair, SECP256K1};

    #[test]
    fn peer_id_from_the_key_matches_the_nodes_own_identity() {
        // Try enough seeds to cover both parities of Y.
        let mut parities = std::collections::HashSet::new();
        for seed in 1..=16u8 {
            let sk = SecretKey::from_byte_array([seed; 32]).expect("valid secret");
            let keypair = Keypair::from_secret_key(SECP256K1, &sk);
            let (xonly, parity) = keypair.x_only_public_key();
            parities.insert(parity == Parity::Even);
            let key = PrivateKey::new(keypair);
            let own = libp2p_keypair(&key)
                .expect("identity")
                .public()
                .to_peer_id();
            assert_eq!(own, peer_id_of(&xonly.serialize()).expect("peer id"));
        }
        assert_eq!(parities.len(), 2, "both parities exercised");
    }

    #[test]
    fn invalid_key_is_an_error() {
        assert!(matches!(
            peer_id_of(&[0u8; 32]),
            Err(IdentityError::PublicKey { .. })
        ));
    }
}
