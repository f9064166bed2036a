//! 32-byte identifiers and the tagged hash they are made with.
//!
//! Byte order, fixed once: an identifier is displayed as the hex of its bytes in the
//! order they are hashed out and serialized. Nothing is ever reversed for display (unlike
//! Bitcoin's txids), so the hex a user sees is the hex on the wire.

use std::fmt;
use std::sync::OnceLock;

use bitcoin_hashes::{HashEngine, sha256};

/// A BIP340-style tagged hash: `SHA256(SHA256(tag) || SHA256(tag) || data)`. The tag's
/// 64-byte prefix fills one SHA-256 block, so its midstate is computed once and cloned.
pub struct Tag {
    name: &'static str,
    midstate: OnceLock<sha256::HashEngine>,
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({:?})", self.name)
    }
}

impl Tag {
    pub const fn new(name: &'static str) -> Self {
        Tag {
            name,
            midstate: OnceLock::new(),
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// A hash engine that has already absorbed the tag prefix.
    pub fn engine(&self) -> sha256::HashEngine {
        self.midstate
            .get_or_init(|| {
                let tag_hash = sha256::Hash::hash(self.name.as_bytes()).to_byte_array();
                let mut engine = sha256::HashEngine::default();
                engine.input(&tag_hash);
                engine.input(&tag_hash);
                engine
            })
            .clone()
    }

    /// Hashes `data` under this tag.
    pub fn hash(&self, data: &[u8]) -> [u8; 32] {
        let mut engine = self.engine();
        engine.input(data);
        finish(engine)
    }
}

/// Completes a tagged (or plain) SHA-256 engine.
pub fn finish(engine: sha256::HashEngine) -> [u8; 32] {
    sha256::Hash::from_engine(engine).to_byte_array()
}

/// The tags Settle uses. Each names the structure it hashes, so a hash of one kind can
/// never be mistaken for another.
pub mod tags {
    use super::Tag;
    pub static TXID: Tag = Tag::new("Settle/Txid");
    pub static WTXID: Tag = Tag::new("Settle/Wtxid");
    pub static CONTRACT: Tag = Tag::new("Settle/Contract");
    pub static ASSET_ID: Tag = Tag::new("Settle/AssetId");
    pub static ISSUANCE: Tag = Tag::new("Settle/Issuance");
    pub static SIGHASH: Tag = Tag::new("Settle/Sighash");
}

/// Tagged hash of `data` under a tag given by name (uncached; for tests and tools).
pub fn tagged_hash(tag: &str, data: &[u8]) -> [u8; 32] {
    let tag_hash = sha256::Hash::hash(tag.as_bytes()).to_byte_array();
    let mut engine = sha256::HashEngine::default();
    engine.input(&tag_hash);
    engine.input(&tag_hash);
    engine.input(data);
    finish(engine)
}

/// Defines a 32-byte identifier with hex display, parsing, serde and canonical encoding.
#[macro_export]
macro_rules! hash_newtype {
    ($(#[$meta:meta])* $name:ident, $what:literal) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// All zero bytes.
            pub const ZERO: $name = $name([0u8; 32]);

            pub const fn from_byte_array(bytes: [u8; 32]) -> Self {
                $name(bytes)
            }

            pub const fn to_byte_array(self) -> [u8; 32] {
                self.0
            }

            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                $crate::hash::write_hex(f, &self.0)
            }
        }

        impl ::std::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self)
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::hash::HexError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $crate::hash::parse_hex32(s, $what).map($name)
            }
        }

        impl $crate::encode::Encode for $name {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.0);
            }
        }

        impl $crate::encode::Decode for $name {
            const NAME: &'static str = $what;
            fn decode(r: &mut $crate::encode::Reader<'_>) -> Result<Self, $crate::encode::DecodeError> {
                r.read_array::<32>($what).map($name)
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(::serde::de::Error::custom)
            }
        }
    };
}

/// A 64-character hex string that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what}: expected 64 hex characters, got {input:?}")]
pub struct HexError {
    pub what: &'static str,
    pub input: String,
}

#[doc(hidden)]
pub fn parse_hex32(s: &str, what: &'static str) -> Result<[u8; 32], HexError> {
    let mut out = [0u8; 32];
    let shown: String = s.chars().take(80).collect();
    hex::decode_to_slice(s, &mut out).map_err(|_| HexError { what, input: shown })?;
    Ok(out)
}

#[doc(hidden)]
pub fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        write!(f, "{b:02x}")?;
    }
    Ok(())
}

hash_newtype!(
    /// A transaction id: the tagged hash of the transaction without its witness data.
    Txid,
    "txid"
);
hash_newtype!(
    /// The tagged hash of the whole transaction, witness data included.
    Wtxid,
    "wtxid"
);
hash_newtype!(
    /// An asset id: the tagged hash of the issuing outpoint and the contract hash.
    AssetId,
    "asset id"
);
hash_newtype!(
    /// The tagged hash of an asset contract's canonical JSON bytes.
    ContractHash,
    "contract hash"
);
hash_newtype!(
    /// A chain id: the hash of the chain's genesis block. Every signature commits to it.
    ChainId,
    "chain id"
);
hash_newtype!(
    /// The hash of a block header.
    BlockHash,
    "block hash"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_tag_matches_the_uncached_definition() {
        assert_eq!(tags::TXID.hash(b"abc"), tagged_hash("Settle/Txid", b"abc"));
        assert_eq!(tags::SIGHASH.hash(b""), tagged_hash("Settle/Sighash", b""));
    }

    #[test]
    fn display_is_the_serialized_byte_order() {
        let mut bytes = [0u8; 32];
        bytes[0] = 0xab;
        let id = AssetId(bytes);
        assert!(id.to_string().starts_with("ab00"));
        assert_eq!(id.to_string().parse::<AssetId>(), Ok(id));
        assert!("zz".parse::<AssetId>().is_err());
    }
}
