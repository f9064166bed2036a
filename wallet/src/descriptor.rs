//! Multisig descriptors: the text co-signers pass around so each wallet can watch and
//! sign for the same m-of-n address (`spec/wallet.md`, section 5).
//!
//! ```text
//! multi(2,[3442193e/86'/21332'/0'/0/4]<64 hex>,<64 hex>,[0badf00d/86'/21332'/0'/0/0]<64 hex>)#1a2b3c4d
//! ```
//!
//! Keys are x-only, in script order, each optionally preceded by its key origin. The
//! suffix is the first 4 bytes of SHA-256 of everything before `#`, in hex: it catches a
//! mistyped or truncated copy. `multisig create` sorts the keys (by their bytes), so every
//! co-signer who starts from the same keys gets the same address.

use std::fmt;
use std::str::FromStr;

use secp256k1::XOnlyPublicKey;
use settle_script::sighash::sha256;

use crate::keys::KeyOrigin;
use crate::state::{HexKey, MultisigDescriptor, OriginEntry};

/// Longest descriptor text accepted (20 keys with origins fit easily).
pub const MAX_DESCRIPTOR_CHARS: usize = 4_096;
/// Most keys in a multisig (the script's own limit).
pub const MAX_MULTISIG_KEYS: usize = settle_script::limits::MAX_MULTISIG_KEYS;

/// Why a descriptor did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescriptorError {
    #[error("descriptor is {0} characters, more than the limit of {MAX_DESCRIPTOR_CHARS}")]
    TooLong(usize),
    #[error("malformed descriptor: {0}")]
    Malformed(String),
    #[error("descriptor checksum {found} does not match {expected}: the text was changed or cut")]
    Checksum { found: String, expected: String },
    #[error("invalid key {0:?} in the descriptor")]
    BadKey(String),
    #[error("the key {0} appears twice")]
    DuplicateKey(String),
    #[error("threshold {m} is not between 1 and the number of keys {n}")]
    Threshold { m: usize, n: usize },
    #[error("a multisig has 1 to {MAX_MULTISIG_KEYS} keys, not {0}")]
    KeyCount(usize),
}

/// One participant: an x-only key and, if known, where it comes from.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MultisigKey {
    pub key: XOnlyPublicKey,
    pub origin: Option<KeyOrigin>,
}

impl fmt::Display for MultisigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(o) = &self.origin {
            write!(f, "{o}")?;
        }
        f.write_str(&hex::encode(self.key.serialize()))
    }
}

impl FromStr for MultisigKey {
    type Err = DescriptorError;

    /// `[fingerprint/path]<64 hex>` or just `<64 hex>`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let bad = || DescriptorError::BadKey(s.chars().take(140).collect());
        let (origin, hex_key) = match s.strip_prefix('[') {
            Some(rest) => {
                let (inner, key) = rest.split_once(']').ok_or_else(bad)?;
                let origin: KeyOrigin = format!("[{inner}]").parse().map_err(|_| bad())?;
                (Some(origin), key)
            }
            None => (None, s),
        };
        let key: HexKey = hex_key.parse().map_err(|_| bad())?;
        Ok(MultisigKey { key: key.0, origin })
    }
}

/// A parsed descriptor: threshold and keys in script order.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Descriptor {
    pub threshold: usize,
    pub keys: Vec<MultisigKey>,
}

fn checksum(body: &str) -> String {
    hex::encode(&sha256(body.as_bytes())[..4])
}

impl Descriptor {
    /// Checks the threshold, the key count and that no key repeats.
    pub fn new(threshold: usize, keys: Vec<MultisigKey>) -> Result<Descriptor, DescriptorError> {
        if !(1..=MAX_MULTISIG_KEYS).contains(&keys.len()) {
            return Err(DescriptorError::KeyCount(keys.len()));
        }
        if !(1..=keys.len()).contains(&threshold) {
            return Err(DescriptorError::Threshold {
                m: threshold,
                n: keys.len(),
            });
        }
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.key == k.key) {
                return Err(DescriptorError::DuplicateKey(hex::encode(
                    k.key.serialize(),
                )));
            }
        }
        Ok(Descriptor { threshold, keys })
    }

    /// Like [`Descriptor::new`] with the keys sorted by their bytes, so the same set of
    /// keys always gives the same script and address.
    pub fn sorted(
        threshold: usize,
        mut keys: Vec<MultisigKey>,
    ) -> Result<Descriptor, DescriptorError> {
        keys.sort_by_key(|k| k.key.serialize());
        Self::new(threshold, keys)
    }

    /// The witness script.
    pub fn witness_script(&self) -> Vec<u8> {
        let keys: Vec<XOnlyPublicKey> = self.keys.iter().map(|k| k.key).collect();
        settle_script::multisig_script(self.threshold, &keys)
            .expect("threshold and key count were checked")
    }

    /// The wallet-state form, marking as ours the keys whose origin has `fingerprint`.
    pub fn to_state(
        &self,
        name: &str,
        fingerprint: crate::keys::Fingerprint,
    ) -> MultisigDescriptor {
        MultisigDescriptor {
            name: name.to_owned(),
            threshold: self.threshold,
            keys: self.keys.iter().map(|k| HexKey(k.key)).collect(),
            ours: self
                .keys
                .iter()
                .filter_map(|k| {
                    let o = k.origin.as_ref()?;
                    (o.master_fingerprint == fingerprint).then(|| OriginEntry {
                        key: HexKey(k.key),
                        origin: o.clone(),
                    })
                })
                .collect(),
            descriptor: Some(self.to_string()),
        }
    }
}

impl fmt::Display for Descriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self.keys.iter().map(ToString::to_string).collect();
        let body = format!("multi({},{})", self.threshold, keys.join(","));
        write!(f, "{body}#{}", checksum(&body))
    }
}

impl FromStr for Descriptor {
    type Err = DescriptorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.chars().count() > MAX_DESCRIPTOR_CHARS {
            return Err(DescriptorError::TooLong(s.chars().count()));
        }
        let (body, sum) = s.rsplit_once('#').ok_or_else(|| {
            DescriptorError::Malformed("no checksum: a descriptor ends with #<8 hex>".into())
        })?;
        let expected = checksum(body);
        if !sum.eq_ignore_ascii_case(&expected) {
            return Err(DescriptorError::Checksum {
                found: sum.chars().take(16).collect(),
                expected,
            });
        }
        let inner = body
            .strip_prefix("multi(")
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(|| {
                DescriptorError::Malformed("a descriptor reads multi(<m>,<key>,...)".into())
            })?;
        let mut parts = inner.split(',');
        let threshold: usize = parts
            .next()
            .and_then(|m| m.trim().parse().ok())
            .ok_or_else(|| DescriptorError::Malformed("the threshold is not a number".into()))?;
        let keys = parts
            .map(str::parse)
            .collect::<Result<Vec<MultisigKey>, _>>()?;
        Descriptor::new(threshold, keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{Mnemonic, WalletKeys};

    #[test]
    fn descriptors_round_trip_and_catch_mistakes() {
        let w = WalletKeys::new(&Mnemonic::from_entropy(&[4; 32]).expect("m").to_seed(""), 0)
            .expect("keys");
        let keys: Vec<MultisigKey> = (0..3)
            .map(|i| {
                let d = w.derive(0, i).expect("k");
                MultisigKey {
                    key: d.x_only(),
                    origin: (i != 1).then_some(d.origin),
                }
            })
            .collect();
        let d = Descriptor::sorted(2, keys.clone()).expect("descriptor");
        let text = d.to_string();
        assert!(text.starts_with("multi(2,"), "{text}");
        let back: Descriptor = text.parse().expect("parse");
        assert_eq!(back, d);
        // The same keys in another order give the same script.
        let mut reversed = keys.clone();
        reversed.reverse();
        assert_eq!(
            Descriptor::sorted(2, reversed).expect("d").witness_script(),
            d.witness_script()
        );
        let st = d.to_state("treasury", w.master_fingerprint());
        assert_eq!(st.ours.len(), 2);
        assert_eq!(st.witness_script().expect("ws"), d.witness_script());

        let mut tampered = text.clone();
        tampered.replace_range(7..8, if &text[7..8] == "a" { "b" } else { "a" });
        assert!(matches!(
            tampered.parse::<Descriptor>(),
            Err(DescriptorError::Checksum { .. })
        ));
        assert!(matches!(
            "multi(2,abc)".parse::<Descriptor>(),
            Err(DescriptorError::Malformed(_))
        ));
        assert!(matches!(
            Descriptor::new(3, keys[..2].to_vec()),
            Err(DescriptorError::Threshold { m: 3, n: 2 })
        ));
        assert!(matches!(
            Descriptor::new(1, vec![keys[0].clone(), keys[0].clone()]),
            Err(DescriptorError::DuplicateKey(_))
        ));
    }
}
