//! Keys: BIP39 mnemonics, BIP32-style hierarchical derivation on secp256k1, and the
//! x-only keys Settle's pay-to-key outputs and BIP340 signatures use.
//!
//! Wallet keys live at `m/86'/COIN_TYPE'/account'/change/index` (`spec/wallet.md`). The
//! derived key is used as it is: a pay-to-key output holds its plain x-only public key,
//! with no taproot-style tweak, and signing uses the even-y form of the key pair.
//!
//! Every secret here is wiped from memory when dropped, and none of them prints: their
//! `Debug` shows `[redacted]`.

use std::fmt;
use std::str::FromStr;

use bitcoin_hashes::{GeneralHash as _, Hash as _, HashEngine as _, hash160, hmac, sha512};
use secp256k1::{Keypair, Parity, PublicKey, SECP256K1, Scalar, SecretKey, XOnlyPublicKey};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The purpose level of every wallet path (`86'`, as for BIP86 single-key outputs; Settle's
/// outputs hold the untweaked key, see the module documentation).
pub const PURPOSE: u32 = 86;
/// Settle's coin type, the second level of every wallet path: ASCII "ST" (0x5354).
pub const COIN_TYPE: u32 = 0x5354;
/// The change level for addresses handed out to receive payments.
pub const EXTERNAL_CHAIN: u32 = 0;
/// The change level for change outputs the wallet pays to itself.
pub const INTERNAL_CHAIN: u32 = 1;
/// Words in a newly generated mnemonic (256 bits of entropy).
pub const DEFAULT_MNEMONIC_WORDS: usize = 24;
/// Deepest derivation path accepted from outside (BIP32 itself allows 255).
pub const MAX_PATH_DEPTH: usize = 32;
/// The first hardened child index.
pub const HARDENED: u32 = 0x8000_0000;
/// The HMAC key that turns a seed into a master key (BIP32).
const MASTER_HMAC_KEY: &[u8] = b"Bitcoin seed";

/// Why a key operation failed. Messages are lowercase and never contain secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("invalid mnemonic: {0}")]
    Mnemonic(String),
    #[error("a mnemonic has 12, 15, 18, 21 or 24 words, not {0}")]
    WordCount(usize),
    #[error("seed must be 16 to 64 bytes, got {0}")]
    SeedLength(usize),
    #[error("invalid derivation path {path:?}: {reason}")]
    Path { path: String, reason: &'static str },
    #[error("derivation path is {depth} levels deep, more than the limit of {max}")]
    PathTooDeep { depth: usize, max: usize },
    #[error("child {index} cannot be derived (the key would be invalid); use the next index")]
    InvalidChild { index: ChildNumber },
    #[error("invalid master key derived from the seed; use another seed")]
    InvalidMaster,
    #[error("derivation depth would exceed 255")]
    DepthOverflow,
}

// ---------------------------------------------------------------------------------------
// Mnemonic and seed
// ---------------------------------------------------------------------------------------

/// A BIP39 mnemonic (English word list). The phrase is a secret.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Mnemonic {
    phrase: String,
}

impl Mnemonic {
    /// A new mnemonic of [`DEFAULT_MNEMONIC_WORDS`] words from the operating system's
    /// random number generator.
    pub fn generate() -> Mnemonic {
        Self::generate_words(DEFAULT_MNEMONIC_WORDS).expect("24 is a valid word count")
    }

    /// A new mnemonic with `words` words (12, 15, 18, 21 or 24).
    pub fn generate_words(words: usize) -> Result<Mnemonic, KeyError> {
        if !(12..=24).contains(&words) || !words.is_multiple_of(3) {
            return Err(KeyError::WordCount(words));
        }
        let mut entropy = Zeroizing::new([0u8; 32]);
        let len = words / 3 * 4;
        rand::fill(&mut entropy[..len]);
        Self::from_entropy(&entropy[..len])
    }

    /// The mnemonic encoding `entropy` (16 to 32 bytes, a multiple of 4).
    pub fn from_entropy(entropy: &[u8]) -> Result<Mnemonic, KeyError> {
        let m = bip39::Mnemonic::from_entropy(entropy)
            .map_err(|e| KeyError::Mnemonic(e.to_string()))?;
        Ok(Mnemonic {
            phrase: m.to_string(),
        })
    }

    /// Parses a phrase, checking every word and the checksum. Case and runs of spaces are
    /// normalised.
    pub fn parse(phrase: &str) -> Result<Mnemonic, KeyError> {
        let normalized = Zeroizing::new(
            phrase
                .split_whitespace()
                .map(str::to_lowercase)
                .collect::<Vec<_>>()
                .join(" "),
        );
        let words = normalized.split(' ').filter(|w| !w.is_empty()).count();
        if !matches!(words, 12 | 15 | 18 | 21 | 24) {
            return Err(KeyError::WordCount(words));
        }
        let m = bip39::Mnemonic::parse_in(bip39::Language::English, normalized.as_str())
            .map_err(|e| KeyError::Mnemonic(describe_bip39_error(&e)))?;
        Ok(Mnemonic {
            phrase: m.to_string(),
        })
    }

    /// The words, separated by single spaces. Show it to a person only on request.
    pub fn phrase(&self) -> &str {
        &self.phrase
    }

    pub fn word_count(&self) -> usize {
        self.phrase.split(' ').count()
    }

    /// The BIP39 seed for this mnemonic and an optional BIP39 passphrase (often empty;
    /// unrelated to the passphrase that encrypts the wallet file).
    pub fn to_seed(&self, bip39_passphrase: &str) -> Seed {
        let m = bip39::Mnemonic::parse_in_normalized(bip39::Language::English, &self.phrase)
            .expect("the phrase was validated when the mnemonic was made");
        Seed(m.to_seed_normalized(bip39_passphrase))
    }
}

/// Describes a bip39 parse error without echoing the phrase back (it is secret).
fn describe_bip39_error(e: &bip39::Error) -> String {
    match e {
        bip39::Error::UnknownWord(i) => format!("word {} is not in the word list", i + 1),
        bip39::Error::BadWordCount(n) => format!("bad word count {n}"),
        bip39::Error::InvalidChecksum => "checksum does not match".into(),
        bip39::Error::BadEntropyBitCount(n) => format!("bad entropy bit count {n}"),
        bip39::Error::AmbiguousLanguages(_) => "ambiguous language".into(),
    }
}

impl fmt::Debug for Mnemonic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mnemonic([redacted])")
    }
}

impl PartialEq for Mnemonic {
    fn eq(&self, other: &Self) -> bool {
        self.phrase == other.phrase
    }
}
impl Eq for Mnemonic {}

/// A 64-byte BIP39 seed. A secret.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Seed([u8; 64]);

impl Seed {
    pub fn from_bytes(bytes: [u8; 64]) -> Seed {
        Seed(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Seed([redacted])")
    }
}

// ---------------------------------------------------------------------------------------
// Derivation paths
// ---------------------------------------------------------------------------------------

/// One step of a derivation path: a normal or hardened child index.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChildNumber(u32);

impl ChildNumber {
    /// A normal child; `index` must be below 2^31.
    pub fn normal(index: u32) -> Option<ChildNumber> {
        (index < HARDENED).then_some(ChildNumber(index))
    }

    /// A hardened child; `index` must be below 2^31.
    pub fn hardened(index: u32) -> Option<ChildNumber> {
        (index < HARDENED).then_some(ChildNumber(index | HARDENED))
    }

    /// From the raw 32-bit value (hardened when the top bit is set).
    pub const fn from_raw(raw: u32) -> ChildNumber {
        ChildNumber(raw)
    }

    pub const fn raw(self) -> u32 {
        self.0
    }

    pub const fn is_hardened(self) -> bool {
        self.0 >= HARDENED
    }

    /// The index without the hardened bit.
    pub const fn index(self) -> u32 {
        self.0 & !HARDENED
    }
}

impl fmt::Display for ChildNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_hardened() {
            write!(f, "{}'", self.index())
        } else {
            write!(f, "{}", self.index())
        }
    }
}

impl fmt::Debug for ChildNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChildNumber({self})")
    }
}

/// A derivation path from the master key, such as `m/86'/21332'/0'/0/5`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DerivationPath(Vec<ChildNumber>);

impl DerivationPath {
    /// The master key itself (`m`).
    pub fn master() -> DerivationPath {
        DerivationPath(Vec::new())
    }

    pub fn from_children(children: Vec<ChildNumber>) -> Result<DerivationPath, KeyError> {
        if children.len() > MAX_PATH_DEPTH {
            return Err(KeyError::PathTooDeep {
                depth: children.len(),
                max: MAX_PATH_DEPTH,
            });
        }
        Ok(DerivationPath(children))
    }

    /// The path of a wallet key: `m/86'/COIN_TYPE'/account'/chain/index`.
    pub fn wallet(account: u32, chain: u32, index: u32) -> Result<DerivationPath, KeyError> {
        let bad = |reason| KeyError::Path {
            path: format!("m/{PURPOSE}'/{COIN_TYPE}'/{account}'/{chain}/{index}"),
            reason,
        };
        Ok(DerivationPath(vec![
            ChildNumber(PURPOSE | HARDENED),
            ChildNumber(COIN_TYPE | HARDENED),
            ChildNumber::hardened(account).ok_or_else(|| bad("account must be below 2^31"))?,
            ChildNumber::normal(chain).ok_or_else(|| bad("chain must be below 2^31"))?,
            ChildNumber::normal(index).ok_or_else(|| bad("index must be below 2^31"))?,
        ]))
    }

    pub fn children(&self) -> &[ChildNumber] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// This path extended by one child.
    pub fn child(&self, child: ChildNumber) -> Result<DerivationPath, KeyError> {
        let mut children = self.0.clone();
        children.push(child);
        DerivationPath::from_children(children)
    }

    /// For a wallet path (`m/86'/COIN_TYPE'/account'/chain/index`): (account, chain, index).
    pub fn as_wallet_path(&self) -> Option<(u32, u32, u32)> {
        match self.0.as_slice() {
            [p, c, a, ch, i]
                if *p == ChildNumber(PURPOSE | HARDENED)
                    && *c == ChildNumber(COIN_TYPE | HARDENED)
                    && a.is_hardened()
                    && !ch.is_hardened()
                    && !i.is_hardened() =>
            {
                Some((a.index(), ch.index(), i.index()))
            }
            _ => None,
        }
    }
}

impl fmt::Display for DerivationPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("m")?;
        for c in &self.0 {
            write!(f, "/{c}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for DerivationPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DerivationPath({self})")
    }
}

impl FromStr for DerivationPath {
    type Err = KeyError;

    /// Parses `m/86'/21332'/0'/0/5`; `h` or `H` may stand for `'`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| KeyError::Path {
            path: s.chars().take(120).collect(),
            reason,
        };
        let mut parts = s.split('/');
        if parts.next() != Some("m") {
            return Err(bad("a path starts with \"m\""));
        }
        let mut children = Vec::new();
        for part in parts {
            if children.len() == MAX_PATH_DEPTH {
                return Err(KeyError::PathTooDeep {
                    depth: s.split('/').count() - 1,
                    max: MAX_PATH_DEPTH,
                });
            }
            let (digits, hardened) = match part.strip_suffix(['\'', 'h', 'H']) {
                Some(d) => (d, true),
                None => (part, false),
            };
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad(
                    "each step is a decimal index, optionally followed by '",
                ));
            }
            if digits.len() > 1 && digits.starts_with('0') {
                return Err(bad("an index has no leading zeros"));
            }
            let index: u32 = digits
                .parse()
                .map_err(|_| bad("an index must be below 2^31"))?;
            let child = if hardened {
                ChildNumber::hardened(index)
            } else {
                ChildNumber::normal(index)
            };
            children.push(child.ok_or_else(|| bad("an index must be below 2^31"))?);
        }
        Ok(DerivationPath(children))
    }
}

impl serde::Serialize for DerivationPath {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DerivationPath {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

// ---------------------------------------------------------------------------------------
// Extended keys
// ---------------------------------------------------------------------------------------

/// The first four bytes of HASH160 of a compressed public key (BIP32), used to recognise
/// which master key a derivation path starts from.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fingerprint(pub [u8; 4]);

impl Fingerprint {
    pub fn of(key: &PublicKey) -> Fingerprint {
        let h = hash160::Hash::hash(&key.serialize()).to_byte_array();
        Fingerprint([h[0], h[1], h[2], h[3]])
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

impl FromStr for Fingerprint {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 4];
        hex::decode_to_slice(s, &mut out).map_err(|_| KeyError::Path {
            path: s.chars().take(20).collect(),
            reason: "a fingerprint is 8 hex characters",
        })?;
        Ok(Fingerprint(out))
    }
}

/// An extended private key: a secret key and its chain code, with where it sits in the
/// tree. A secret.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ExtendedPrivKey {
    #[zeroize(skip)]
    depth: u8,
    #[zeroize(skip)]
    parent_fingerprint: Fingerprint,
    #[zeroize(skip)]
    child_number: ChildNumber,
    chain_code: [u8; 32],
    secret: [u8; 32],
}

impl fmt::Debug for ExtendedPrivKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExtendedPrivKey")
            .field("depth", &self.depth)
            .field("parent_fingerprint", &self.parent_fingerprint)
            .field("child_number", &self.child_number)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// Splits an HMAC-SHA512 output into (key material, chain code), both wiped after use.
fn hmac_sha512(key: &[u8], parts: &[&[u8]]) -> Zeroizing<[u8; 64]> {
    let mut engine = hmac::HmacEngine::<sha512::Hash>::new(key);
    for p in parts {
        engine.input(p);
    }
    Zeroizing::new(hmac::Hmac::<sha512::Hash>::from_engine(engine).to_byte_array())
}

fn split_il_ir(i: &[u8; 64]) -> (Zeroizing<[u8; 32]>, [u8; 32]) {
    let mut il = Zeroizing::new([0u8; 32]);
    let mut ir = [0u8; 32];
    il.copy_from_slice(&i[..32]);
    ir.copy_from_slice(&i[32..]);
    (il, ir)
}

impl ExtendedPrivKey {
    /// The master key of a seed (BIP32: HMAC-SHA512 keyed with "Bitcoin seed").
    pub fn master(seed: &[u8]) -> Result<ExtendedPrivKey, KeyError> {
        if !(16..=64).contains(&seed.len()) {
            return Err(KeyError::SeedLength(seed.len()));
        }
        let i = hmac_sha512(MASTER_HMAC_KEY, &[seed]);
        let (il, chain_code) = split_il_ir(&i);
        // IL must be a valid secret key: non-zero and below the curve order.
        SecretKey::from_byte_array(*il).map_err(|_| KeyError::InvalidMaster)?;
        Ok(ExtendedPrivKey {
            depth: 0,
            parent_fingerprint: Fingerprint::default(),
            child_number: ChildNumber(0),
            chain_code,
            secret: *il,
        })
    }

    /// The master key of a BIP39 seed.
    pub fn from_seed(seed: &Seed) -> Result<ExtendedPrivKey, KeyError> {
        Self::master(seed.as_bytes())
    }

    pub fn depth(&self) -> u8 {
        self.depth
    }

    pub fn parent_fingerprint(&self) -> Fingerprint {
        self.parent_fingerprint
    }

    pub fn child_number(&self) -> ChildNumber {
        self.child_number
    }

    pub fn chain_code(&self) -> &[u8; 32] {
        &self.chain_code
    }

    /// The raw secret key bytes. Handle with care: wipe copies after use.
    pub fn secret_bytes(&self) -> &[u8; 32] {
        &self.secret
    }

    fn secret_key(&self) -> SecretKey {
        SecretKey::from_byte_array(self.secret).expect("an extended key always holds a valid key")
    }

    /// The full (compressed) public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_secret_key(SECP256K1, &self.secret_key())
    }

    /// This key's fingerprint (of its public key).
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of(&self.public_key())
    }

    /// Private child derivation (BIP32 CKDpriv), hardened or normal.
    pub fn derive_child(&self, child: ChildNumber) -> Result<ExtendedPrivKey, KeyError> {
        let depth = self.depth.checked_add(1).ok_or(KeyError::DepthOverflow)?;
        let index = child.raw().to_be_bytes();
        let i = if child.is_hardened() {
            let mut data = Zeroizing::new([0u8; 33]);
            data[1..].copy_from_slice(&self.secret);
            hmac_sha512(&self.chain_code, &[&data[..], &index])
        } else {
            hmac_sha512(&self.chain_code, &[&self.public_key().serialize(), &index])
        };
        let (il, chain_code) = split_il_ir(&i);
        // BIP32: if IL >= n or the resulting key is zero, this child is invalid and the
        // caller moves on to the next index.
        let tweak =
            Scalar::from_be_bytes(*il).map_err(|_| KeyError::InvalidChild { index: child })?;
        let child_key = self
            .secret_key()
            .add_tweak(&tweak)
            .map_err(|_| KeyError::InvalidChild { index: child })?;
        Ok(ExtendedPrivKey {
            depth,
            parent_fingerprint: self.fingerprint(),
            child_number: child,
            chain_code,
            secret: child_key.secret_bytes(),
        })
    }

    /// Derives along `path` from this key.
    pub fn derive_path(&self, path: &DerivationPath) -> Result<ExtendedPrivKey, KeyError> {
        let mut key = self.clone();
        for child in path.children() {
            key = key.derive_child(*child)?;
        }
        Ok(key)
    }

    /// The key pair for BIP340 signing, normalised to an even-y public key (the secret is
    /// negated when the point has odd y), so the pair and the x-only key always agree.
    pub fn keypair(&self) -> SigningKey {
        SigningKey::from_secret_key(&self.secret_key())
    }
}

// ---------------------------------------------------------------------------------------
// Signing keys
// ---------------------------------------------------------------------------------------

/// A BIP340 key pair with an even-y public key: what pay-to-key outputs and multisig
/// scripts are signed with. A secret.
#[derive(Clone)]
pub struct SigningKey {
    keypair: Keypair,
}

impl SigningKey {
    /// The even-y key pair for `secret`.
    pub fn from_secret_key(secret: &SecretKey) -> SigningKey {
        let keypair = Keypair::from_secret_key(SECP256K1, secret);
        let (_, parity) = keypair.x_only_public_key();
        let keypair = if parity == Parity::Odd {
            Keypair::from_secret_key(SECP256K1, &secret.negate())
        } else {
            keypair
        };
        SigningKey { keypair }
    }

    /// The even-y form of any key pair (for keys that do not come from this wallet).
    pub fn from_keypair(keypair: &Keypair) -> SigningKey {
        Self::from_secret_key(&keypair.secret_key())
    }

    /// From 32 secret bytes (for tests and key import).
    pub fn from_secret_bytes(bytes: [u8; 32]) -> Option<SigningKey> {
        SecretKey::from_byte_array(bytes)
            .ok()
            .map(|sk| Self::from_secret_key(&sk))
    }

    /// A fresh random key (tests, throwaway keys).
    pub fn random() -> SigningKey {
        let mut bytes = Zeroizing::new([0u8; 32]);
        loop {
            rand::fill(&mut bytes[..]);
            if let Some(k) = Self::from_secret_bytes(*bytes) {
                return k;
            }
        }
    }

    /// The underlying even-y key pair.
    pub fn keypair(&self) -> &Keypair {
        &self.keypair
    }

    /// The x-only public key that outputs and signatures name.
    pub fn x_only(&self) -> XOnlyPublicKey {
        self.keypair.x_only_public_key().0
    }

    /// The x-only public key as 32 bytes.
    pub fn x_only_bytes(&self) -> [u8; 32] {
        self.x_only().serialize()
    }
}

impl Drop for SigningKey {
    fn drop(&mut self) {
        self.keypair.non_secure_erase();
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningKey {{ x_only: {}, secret: [redacted] }}",
            hex::encode(self.x_only_bytes())
        )
    }
}

/// Where a key came from: the master fingerprint and the path below it (BIP174's key
/// origin). Carried in PSTs so a signer can find its key, and an analyst its owner.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct KeyOrigin {
    pub master_fingerprint: Fingerprint,
    pub path: DerivationPath,
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.to_string();
        write!(f, "[{}{}]", self.master_fingerprint, &path[1..])
    }
}

/// The keys of one wallet: the master key and the account level below it.
#[derive(Clone)]
pub struct WalletKeys {
    master_fingerprint: Fingerprint,
    account: u32,
    /// `m/86'/COIN_TYPE'/account'`: every wallet key is two normal steps below it.
    account_key: ExtendedPrivKey,
}

impl fmt::Debug for WalletKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WalletKeys")
            .field("master_fingerprint", &self.master_fingerprint)
            .field("account", &self.account)
            .field("keys", &"[redacted]")
            .finish()
    }
}

/// A wallet key derived at a path, with its origin.
#[derive(Clone, Debug)]
pub struct DerivedKey {
    pub origin: KeyOrigin,
    pub key: SigningKey,
}

impl DerivedKey {
    pub fn x_only(&self) -> XOnlyPublicKey {
        self.key.x_only()
    }
}

impl WalletKeys {
    /// The keys of `account` under `seed`.
    pub fn new(seed: &Seed, account: u32) -> Result<WalletKeys, KeyError> {
        let master = ExtendedPrivKey::from_seed(seed)?;
        let account_path = DerivationPath::from_children(vec![
            ChildNumber(PURPOSE | HARDENED),
            ChildNumber(COIN_TYPE | HARDENED),
            ChildNumber::hardened(account).ok_or(KeyError::Path {
                path: format!("m/{PURPOSE}'/{COIN_TYPE}'/{account}'"),
                reason: "account must be below 2^31",
            })?,
        ])?;
        Ok(WalletKeys {
            master_fingerprint: master.fingerprint(),
            account,
            account_key: master.derive_path(&account_path)?,
        })
    }

    pub fn master_fingerprint(&self) -> Fingerprint {
        self.master_fingerprint
    }

    pub fn account(&self) -> u32 {
        self.account
    }

    /// The key at `m/86'/COIN_TYPE'/account'/chain/index`.
    pub fn derive(&self, chain: u32, index: u32) -> Result<DerivedKey, KeyError> {
        let path = DerivationPath::wallet(self.account, chain, index)?;
        let key = self
            .account_key
            .derive_child(ChildNumber(chain))?
            .derive_child(ChildNumber(index))?;
        Ok(DerivedKey {
            origin: KeyOrigin {
                master_fingerprint: self.master_fingerprint,
                path,
            },
            key: key.keypair(),
        })
    }

    /// The key at a full path, if the path belongs to this wallet's account.
    pub fn derive_path(&self, path: &DerivationPath) -> Option<Result<DerivedKey, KeyError>> {
        let (account, chain, index) = path.as_wallet_path()?;
        (account == self.account).then(|| self.derive(chain, index))
    }

    /// The key for `origin`, if it is one of this wallet's.
    pub fn derive_origin(&self, origin: &KeyOrigin) -> Option<Result<DerivedKey, KeyError>> {
        if origin.master_fingerprint != self.master_fingerprint {
            return None;
        }
        self.derive_path(&origin.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).expect("hex")
    }

    /// BIP32 test vector 1: seed 000102...0f, chain m/0H/1/2H (private keys and chain
    /// codes, as published in BIP32 and repeated in SLIP-0010).
    #[test]
    fn bip32_test_vector_1() {
        let master = ExtendedPrivKey::master(&h("000102030405060708090a0b0c0d0e0f")).expect("m");
        assert_eq!(
            hex::encode(master.secret_bytes()),
            "e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35"
        );
        assert_eq!(
            hex::encode(master.chain_code()),
            "873dff81c02f525623fd1fe5167eac3a55a049de3d314bb42ee227ffed37d508"
        );
        assert_eq!(
            hex::encode(master.public_key().serialize()),
            "0339a36013301597daef41fbe593a02cc513d0b55527ec2df1050e2e8ff49c85c2"
        );
        assert_eq!(master.fingerprint().to_string(), "3442193e");
        let expected = [
            (
                "m/0'",
                "edb2e14f9ee77d26dd93b4ecede8d16ed408ce149b6cd80b0715a2d911a0afea",
                "47fdacbd0f1097043b78c63c20c34ef4ed9a111d980047ad16282c7ae6236141",
            ),
            (
                "m/0'/1",
                "3c6cb8d0f6a264c91ea8b5030fadaa8e538b020f0a387421a12de9319dc93368",
                "2a7857631386ba23dacac34180dd1983734e444fdbf774041578e9b6adb37c19",
            ),
            (
                "m/0h/1/2H",
                "cbce0d719ecf7431d88e6a89fa1483e02e35092af60c042b1df2ff59fa424dca",
                "04466b9cc8e161e966409ca52986c584f07e9dc81f735db683c3ff6ec7b1503f",
            ),
            (
                "m/0'/1/2'/2",
                "0f479245fb19a38a1954c5c7c0ebab2f9bdfd96a17563ef28a6a4b1a2a764ef4",
                "cfb71883f01676f587d023cc53a35bc7f88f724b1f8c2892ac1275ac822a3edd",
            ),
            (
                "m/0'/1/2'/2/1000000000",
                "471b76e389e528d6de6d816857e012c5455051cad6660850e58372a6c3e6e7c8",
                "c783e67b921d2beb8f6b389cc646d7263b4145701dadd2161548a8b078e65e9e",
            ),
        ];
        for (path, secret, chain_code) in expected {
            let path: DerivationPath = path.parse().expect("path");
            let key = master.derive_path(&path).expect("derive");
            assert_eq!(hex::encode(key.secret_bytes()), secret, "{path}");
            assert_eq!(hex::encode(key.chain_code()), chain_code, "{path}");
            assert_eq!(key.depth() as usize, path.len());
        }
        let first = master
            .derive_child(ChildNumber::hardened(0).expect("index"))
            .expect("child");
        assert_eq!(first.parent_fingerprint(), master.fingerprint());
    }

    /// BIP39 reference vector (trezor): 32 zero bytes of entropy, passphrase "TREZOR".
    #[test]
    fn bip39_reference_vector() {
        let m = Mnemonic::from_entropy(&[0u8; 32]).expect("entropy");
        let mut words = vec!["abandon"; 23];
        words.push("art");
        assert_eq!(m.phrase(), words.join(" "));
        assert_eq!(
            hex::encode(m.to_seed("TREZOR").as_bytes()),
            "bda85446c68413707090a52022edd26a1c9462295029f2e60cd7c4f2bbd3097170af7a4d73245cafa9c3cca8d561a7c3de6f5d4a10be8ed2a5e608d68f92fcc8"
        );
    }

    #[test]
    fn mnemonic_generation_and_parsing() {
        let m = Mnemonic::generate();
        assert_eq!(m.word_count(), 24);
        let upper = m.phrase().to_uppercase().replace(' ', "   ");
        assert_eq!(Mnemonic::parse(&upper).expect("parses"), m);
        assert_ne!(Mnemonic::generate(), m);
        assert_eq!(Mnemonic::generate_words(12).expect("12").word_count(), 12);
        assert_eq!(
            Mnemonic::generate_words(13).map(|_| ()),
            Err(KeyError::WordCount(13))
        );
    }

    #[test]
    fn bad_mnemonics_are_refused_without_echoing_them() {
        let mut words = vec!["abandon"; 24];
        let err = Mnemonic::parse(&words.join(" ")).expect_err("bad checksum");
        assert_eq!(err.to_string(), "invalid mnemonic: checksum does not match");
        words[3] = "notaword";
        let err = Mnemonic::parse(&words.join(" ")).expect_err("bad word");
        assert!(!err.to_string().contains("notaword"), "{err}");
        assert!(err.to_string().contains("word 4"), "{err}");
        assert_eq!(
            Mnemonic::parse("abandon abandon").map(|_| ()),
            Err(KeyError::WordCount(2))
        );
    }

    #[test]
    fn secrets_never_print() {
        let m = Mnemonic::from_entropy(&[0u8; 32]).expect("entropy");
        let seed = m.to_seed("");
        let master = ExtendedPrivKey::from_seed(&seed).expect("m");
        let keys = WalletKeys::new(&seed, 0).expect("keys");
        let derived = keys.derive(0, 0).expect("key");
        let secret_hex = hex::encode(derived.key.keypair().secret_bytes());
        for shown in [
            format!("{m:?}"),
            format!("{seed:?}"),
            format!("{master:?}"),
            format!("{keys:?}"),
            format!("{derived:?}"),
        ] {
            assert!(shown.contains("[redacted]"), "{shown}");
            assert!(!shown.contains("abandon"), "{shown}");
            assert!(!shown.contains(&secret_hex), "{shown}");
            assert!(
                !shown.contains(&hex::encode(master.secret_bytes())),
                "{shown}"
            );
        }
    }

    #[test]
    fn wallet_paths_and_even_y_keys() {
        let seed = Mnemonic::from_entropy(&[7u8; 32]).expect("e").to_seed("");
        let keys = WalletKeys::new(&seed, 0).expect("keys");
        let master = ExtendedPrivKey::from_seed(&seed).expect("m");
        for index in 0..8 {
            let k = keys.derive(EXTERNAL_CHAIN, index).expect("derive");
            assert_eq!(
                k.origin.path.to_string(),
                format!("m/86'/{COIN_TYPE}'/0'/0/{index}")
            );
            // Same key as a full derivation from the master.
            let full = master.derive_path(&k.origin.path).expect("full");
            assert_eq!(full.public_key().x_only_public_key().0, k.x_only());
            // The signing key pair always has an even-y public key.
            assert_eq!(k.key.keypair().x_only_public_key().1, Parity::Even);
            let odd = Keypair::from_secret_key(SECP256K1, &k.key.keypair().secret_key().negate());
            assert_eq!(odd.x_only_public_key().1, Parity::Odd);
            let normalised = SigningKey::from_keypair(&odd);
            assert_eq!(normalised.keypair().x_only_public_key().1, Parity::Even);
            assert_eq!(normalised.x_only(), k.x_only());
            assert_eq!(
                keys.derive_origin(&k.origin)
                    .expect("ours")
                    .expect("ok")
                    .x_only(),
                k.x_only()
            );
        }
        let other = KeyOrigin {
            master_fingerprint: Fingerprint([1, 2, 3, 4]),
            path: DerivationPath::wallet(0, 0, 0).expect("p"),
        };
        assert!(keys.derive_origin(&other).is_none());
        assert_ne!(
            keys.derive(EXTERNAL_CHAIN, 0).expect("a").x_only(),
            keys.derive(INTERNAL_CHAIN, 0).expect("b").x_only()
        );
    }

    #[test]
    fn path_parsing() {
        let p: DerivationPath = "m/86'/21332'/0'/1/7".parse().expect("p");
        assert_eq!(p.as_wallet_path(), Some((0, 1, 7)));
        assert_eq!(p.to_string(), "m/86'/21332'/0'/1/7");
        assert_eq!("m".parse::<DerivationPath>(), Ok(DerivationPath::master()));
        for bad in [
            "",
            "86'/0",
            "m/",
            "m/x",
            "m/01",
            "m/2147483648",
            "m/-1",
            "m/1''",
        ] {
            assert!(bad.parse::<DerivationPath>().is_err(), "{bad}");
        }
        let deep = format!("m{}", "/1".repeat(MAX_PATH_DEPTH + 1));
        assert!(matches!(
            deep.parse::<DerivationPath>(),
            Err(KeyError::PathTooDeep { .. })
        ));
    }
}
