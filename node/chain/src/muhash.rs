//! MuHash3072: a rolling hash of a multiset, used to commit to the UTXO set.
//!
//! Each element is hashed to a number modulo the prime `p = 2^3072 - 1103717` and the
//! set's hash is the product of its elements' numbers; removing an element multiplies
//! by its inverse. Adding and removing therefore commute, and the hash of a set does not
//! depend on the order in which it was built. Breaking it means solving a discrete
//! logarithm-style problem in a 3072-bit group, so generalised-birthday (Wagner) attacks
//! that break additive multiset hashes do not apply.
//!
//! A running hash keeps a numerator (product of added elements) and a denominator
//! (product of removed ones), so updates are one multiplication each; one modular
//! inverse is computed only when a digest is needed. See `spec/chain.md`, "UTXO-set
//! commitment", for the exact element encoding and hashing.

use bitcoin_hashes::HashEngine;
use settle_assets::encode::{Decode, DecodeError, Encode, Reader};
use settle_assets::hash::{Tag, finish};
use settle_assets::transaction::OutPoint;

use crate::coin::Coin;

/// Tag of the first hash of an element's bytes.
pub static ELEMENT_TAG: Tag = Tag::new("Settle/MuHash/Element");
/// Tag of the counter-mode expansion of the element hash to 384 bytes.
pub static EXPAND_TAG: Tag = Tag::new("Settle/MuHash/Expand");
/// Tag of the final 32-byte digest of the set's number.
pub static DIGEST_TAG: Tag = Tag::new("Settle/MuHash");

/// Number of 64-bit limbs in a 3072-bit number.
const LIMBS: usize = 48;
/// Bytes in a 3072-bit number.
pub const NUMBER_BYTES: usize = 384;
/// Bytes in a serialized running state (numerator then denominator).
pub const STATE_BYTES: usize = 2 * NUMBER_BYTES;
/// `p = 2^3072 - MODULUS_C`, the largest 3072-bit safe prime of this form (Bitcoin
/// Core's choice). Reduction uses `2^3072 = MODULUS_C (mod p)`.
const MODULUS_C: u64 = 1_103_717;
/// 32-byte blocks of the expansion of one element (12 * 32 = 384 bytes).
const EXPAND_BLOCKS: u8 = 12;

/// A number below `2^3072` in little-endian 64-bit limbs. It is kept below `2^3072` but
/// not always below `p`; [`Num::reduce_full`] makes it canonical.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Num([u64; LIMBS]);

const ONE: Num = {
    let mut limbs = [0u64; LIMBS];
    limbs[0] = 1;
    Num(limbs)
};

const P: Num = {
    let mut limbs = [u64::MAX; LIMBS];
    limbs[0] = u64::MAX - MODULUS_C + 1;
    Num(limbs)
};

// Limb arithmetic: taking the low 64 bits of a 128-bit intermediate is the point of the
// `as u64` casts below, never an accident.
#[allow(clippy::cast_possible_truncation)]
impl Num {
    fn from_le_bytes(bytes: &[u8; NUMBER_BYTES]) -> Num {
        let mut limbs = [0u64; LIMBS];
        for (limb, chunk) in limbs.iter_mut().zip(bytes.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            *limb = u64::from_le_bytes(b);
        }
        Num(limbs)
    }

    fn to_le_bytes(self) -> [u8; NUMBER_BYTES] {
        let mut out = [0u8; NUMBER_BYTES];
        for (chunk, limb) in out.chunks_exact_mut(8).zip(self.0) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        out
    }

    fn is_zero(&self) -> bool {
        self.0.iter().all(|&l| l == 0)
    }

    fn is_one(&self) -> bool {
        self.0[0] == 1 && self.0[1..].iter().all(|&l| l == 0)
    }

    fn is_even(&self) -> bool {
        self.0[0] & 1 == 0
    }

    /// `self >= other`.
    fn ge(&self, other: &Num) -> bool {
        for i in (0..LIMBS).rev() {
            if self.0[i] != other.0[i] {
                return self.0[i] > other.0[i];
            }
        }
        true
    }

    /// `self += other`, returning the carry out of bit 3072.
    fn add_assign(&mut self, other: &Num) -> bool {
        let mut carry = false;
        for (a, b) in self.0.iter_mut().zip(other.0) {
            let (s1, c1) = a.overflowing_add(b);
            let (s2, c2) = s1.overflowing_add(u64::from(carry));
            *a = s2;
            carry = c1 || c2;
        }
        carry
    }

    /// `self -= other`, returning the borrow.
    fn sub_assign(&mut self, other: &Num) -> bool {
        let mut borrow = false;
        for (a, b) in self.0.iter_mut().zip(other.0) {
            let (d1, b1) = a.overflowing_sub(b);
            let (d2, b2) = d1.overflowing_sub(u64::from(borrow));
            *a = d2;
            borrow = b1 || b2;
        }
        borrow
    }

    /// Shifts right by one bit, shifting `top` in as bit 3071.
    fn shr1(&mut self, top: bool) {
        for i in 0..LIMBS - 1 {
            self.0[i] = (self.0[i] >> 1) | (self.0[i + 1] << 63);
        }
        self.0[LIMBS - 1] = (self.0[LIMBS - 1] >> 1) | (u64::from(top) << 63);
    }

    /// Adds a small value, folding any carry past bit 3072 back in as `carry * C`. The
    /// result stays below `2^3072` and is congruent mod p.
    fn add_small_folding(&mut self, mut value: u128) {
        while value != 0 {
            let mut carry = value;
            for limb in self.0.iter_mut() {
                if carry == 0 {
                    break;
                }
                let v = u128::from(*limb) + carry;
                *limb = v as u64;
                carry = v >> 64;
            }
            // A carry out of the top limb is a multiple of 2^3072: fold it as carry * C.
            value = carry * u128::from(MODULUS_C);
        }
    }

    /// Makes the representation canonical: below p.
    fn reduce_full(&mut self) {
        // self < 2^3072 < 2p, so at most one subtraction of p is needed, and
        // self >= p exactly when self + C carries out of bit 3072.
        let mut c = Num([0; LIMBS]);
        c.0[0] = MODULUS_C;
        let mut sum = *self;
        if sum.add_assign(&c) {
            *self = sum;
        }
    }

    /// `self * other mod p` (not necessarily fully reduced).
    fn mul(&self, other: &Num) -> Num {
        // Product scanning (Comba): column k of the 96-limb product sums a[i] * b[k - i]
        // in a 192-bit accumulator (hi:lo), so no partial product is stored and reloaded.
        let mut wide = [0u64; 2 * LIMBS];
        let mut lo: u128 = 0;
        let mut hi: u64 = 0;
        for (k, out) in wide.iter_mut().enumerate().take(2 * LIMBS - 1) {
            let start = k.saturating_sub(LIMBS - 1);
            let end = k.min(LIMBS - 1);
            let a = &self.0[start..=end];
            let b = &other.0[k - end..=k - start];
            for (&x, &y) in a.iter().zip(b.iter().rev()) {
                let (sum, carry) = lo.overflowing_add(u128::from(x) * u128::from(y));
                lo = sum;
                hi += u64::from(carry);
            }
            *out = lo as u64;
            lo = (lo >> 64) | (u128::from(hi) << 64);
            hi = 0;
        }
        wide[2 * LIMBS - 1] = lo as u64;
        // wide = lo + hi * 2^3072 = lo + hi * C (mod p).
        let mut out = Num([0; LIMBS]);
        let mut carry: u128 = 0;
        for i in 0..LIMBS {
            let v =
                u128::from(wide[i]) + u128::from(wide[i + LIMBS]) * u128::from(MODULUS_C) + carry;
            out.0[i] = v as u64;
            carry = v >> 64;
        }
        // carry < 2^21: fold carry * 2^3072 = carry * C.
        out.add_small_folding(carry * u128::from(MODULUS_C));
        out
    }

    /// `self / 2 mod p` for a value below p.
    fn halve_mod_p(&mut self) {
        if self.is_even() {
            self.shr1(false);
        } else {
            let carry = self.add_assign(&P);
            self.shr1(carry);
        }
    }

    /// `self - other mod p` for values below p.
    fn sub_mod_p(&mut self, other: &Num) {
        if self.sub_assign(other) {
            // Wrapped below zero: adding p brings it back into [0, p); the carry out
            // of that addition cancels the borrow.
            self.add_assign(&P);
        }
    }

    /// The inverse mod p by the binary extended Euclidean algorithm (variable time:
    /// everything hashed here is public). Zero has no inverse and maps to zero; a
    /// hashed element is zero mod p with probability about 2^-3072.
    fn inverse(&self) -> Num {
        let mut u = *self;
        u.reduce_full();
        if u.is_zero() {
            return u;
        }
        let mut v = P;
        let mut x1 = ONE;
        let mut x2 = Num([0; LIMBS]);
        // Invariants: x1 * a = u and x2 * a = v (mod p); gcd(u, v) = 1 since p is prime.
        while !u.is_one() && !v.is_one() {
            while u.is_even() {
                u.shr1(false);
                x1.halve_mod_p();
            }
            while v.is_even() {
                v.shr1(false);
                x2.halve_mod_p();
            }
            if u.ge(&v) {
                u.sub_assign(&v);
                x1.sub_mod_p(&x2);
            } else {
                v.sub_assign(&u);
                x2.sub_mod_p(&x1);
            }
        }
        if u.is_one() { x1 } else { x2 }
    }
}

/// Hashes an element's bytes to its 3072-bit number, as 384 little-endian bytes:
/// `seed = TaggedHash("Settle/MuHash/Element", element)`, then block `i` (0..12) is
/// `TaggedHash("Settle/MuHash/Expand", seed || i as one byte)`, concatenated in order.
pub fn element_number_bytes(element: &[u8]) -> [u8; NUMBER_BYTES] {
    let seed = ELEMENT_TAG.hash(element);
    let mut out = [0u8; NUMBER_BYTES];
    for (i, chunk) in (0..EXPAND_BLOCKS).zip(out.chunks_exact_mut(32)) {
        let mut engine = EXPAND_TAG.engine();
        engine.input(&seed);
        engine.input(&[i]);
        chunk.copy_from_slice(&finish(engine));
    }
    out
}

fn element_number(element: &[u8]) -> Num {
    Num::from_le_bytes(&element_number_bytes(element))
}

/// The bytes that represent one unspent coin in the UTXO-set multiset: the outpoint's
/// encoding (36 bytes) followed by the coin's (output, height, time).
pub fn utxo_element(outpoint: &OutPoint, coin: &Coin) -> Vec<u8> {
    let mut out = Vec::with_capacity(36 + 32 + 8 + 1 + coin.output.script_pubkey.len() + 16);
    outpoint.encode(&mut out);
    coin.encode(&mut out);
    out
}

/// A running MuHash3072 of a multiset of byte strings.
///
/// Equality compares the sets hashed (cross-multiplying numerators and denominators),
/// not the representation.
#[derive(Clone)]
pub struct MuHash3072 {
    numerator: Num,
    denominator: Num,
}

impl std::fmt::Debug for MuHash3072 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MuHash3072({})", hex::encode(self.finalize()))
    }
}

impl Default for MuHash3072 {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for MuHash3072 {
    fn eq(&self, other: &Self) -> bool {
        let mut a = self.numerator.mul(&other.denominator);
        let mut b = other.numerator.mul(&self.denominator);
        a.reduce_full();
        b.reduce_full();
        a == b
    }
}

impl Eq for MuHash3072 {}

impl MuHash3072 {
    /// The hash of the empty set.
    pub fn new() -> Self {
        MuHash3072 {
            numerator: ONE,
            denominator: ONE,
        }
    }

    /// Adds one element.
    pub fn insert(&mut self, element: &[u8]) {
        self.numerator = self.numerator.mul(&element_number(element));
    }

    /// Removes one element (which should have been added; if it was not, the set
    /// hashed is a "negative" multiset and the digest will match no real UTXO set).
    pub fn remove(&mut self, element: &[u8]) {
        self.denominator = self.denominator.mul(&element_number(element));
    }

    /// Adds an unspent coin.
    pub fn insert_coin(&mut self, outpoint: &OutPoint, coin: &Coin) {
        self.insert(&utxo_element(outpoint, coin));
    }

    /// Removes a coin that was spent.
    pub fn remove_coin(&mut self, outpoint: &OutPoint, coin: &Coin) {
        self.remove(&utxo_element(outpoint, coin));
    }

    /// Adds every element of `other` and removes every element it removed: the hash
    /// of the union. Lets independent parts of a set be hashed in parallel.
    pub fn combine(&mut self, other: &MuHash3072) {
        self.numerator = self.numerator.mul(&other.numerator);
        self.denominator = self.denominator.mul(&other.denominator);
    }

    /// Folds the denominator into the numerator (one modular inverse), so the state
    /// has denominator 1. Does not change the set hashed.
    pub fn normalize(&mut self) {
        if self.denominator.is_one() {
            return;
        }
        self.numerator = self.numerator.mul(&self.denominator.inverse());
        self.numerator.reduce_full();
        self.denominator = ONE;
    }

    /// The set's number `numerator / denominator mod p`, as 384 little-endian bytes.
    pub fn number_bytes(&self) -> [u8; NUMBER_BYTES] {
        let mut n = if self.denominator.is_one() {
            self.numerator
        } else {
            self.numerator.mul(&self.denominator.inverse())
        };
        n.reduce_full();
        n.to_le_bytes()
    }

    /// The 32-byte digest: `TaggedHash("Settle/MuHash", number as 384 LE bytes)`.
    pub fn finalize(&self) -> [u8; 32] {
        DIGEST_TAG.hash(&self.number_bytes())
    }

    /// The running state for storage: numerator then denominator, 384 little-endian
    /// bytes each. Call [`MuHash3072::normalize`] first to store the canonical form.
    pub fn to_bytes(&self) -> [u8; STATE_BYTES] {
        let mut out = [0u8; STATE_BYTES];
        out[..NUMBER_BYTES].copy_from_slice(&self.numerator.to_le_bytes());
        out[NUMBER_BYTES..].copy_from_slice(&self.denominator.to_le_bytes());
        out
    }

    /// Reads a state written by [`MuHash3072::to_bytes`]. Refuses a denominator that
    /// is zero mod p (it has no inverse, so no sequence of updates produces it).
    pub fn from_bytes(bytes: &[u8; STATE_BYTES]) -> Result<MuHash3072, DecodeError> {
        let mut num = [0u8; NUMBER_BYTES];
        let mut den = [0u8; NUMBER_BYTES];
        num.copy_from_slice(&bytes[..NUMBER_BYTES]);
        den.copy_from_slice(&bytes[NUMBER_BYTES..]);
        let state = MuHash3072 {
            numerator: Num::from_le_bytes(&num),
            denominator: Num::from_le_bytes(&den),
        };
        let mut d = state.denominator;
        d.reduce_full();
        if d.is_zero() {
            return Err(DecodeError::Invalid {
                what: "muhash state",
                detail: "denominator is zero modulo p".into(),
            });
        }
        Ok(state)
    }
}

impl Encode for MuHash3072 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_bytes());
    }
}

impl Decode for MuHash3072 {
    const NAME: &'static str = "muhash state";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        MuHash3072::from_bytes(&r.read_array::<STATE_BYTES>("muhash state")?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use num_bigint::BigUint;

    fn big(n: &Num) -> BigUint {
        BigUint::from_bytes_le(&n.to_le_bytes())
    }

    fn p_big() -> BigUint {
        (BigUint::from(1u8) << 3072u32) - BigUint::from(MODULUS_C)
    }

    fn pseudo_random(seed: u8) -> Num {
        element_number(&[seed])
    }

    #[test]
    fn modulus_constant_is_two_to_the_3072_minus_c() {
        assert_eq!(big(&P), p_big());
    }

    #[test]
    fn multiplication_matches_bigint() {
        let p = p_big();
        for s in 0..20u8 {
            let a = pseudo_random(s);
            let b = pseudo_random(s.wrapping_add(100));
            let mut r = a.mul(&b);
            r.reduce_full();
            assert_eq!(big(&r), (big(&a) * big(&b)) % &p);
        }
        // Edge cases near the top of the range: (2^3072-1)^2.
        let max = Num([u64::MAX; LIMBS]);
        let mut r = max.mul(&max);
        r.reduce_full();
        assert_eq!(big(&r), (big(&max) * big(&max)) % &p);
    }

    #[test]
    fn inverse_matches_fermat() {
        let p = p_big();
        for s in 0..5u8 {
            let a = pseudo_random(s);
            let inv = a.inverse();
            let expected = big(&a).modpow(&(&p - BigUint::from(2u8)), &p);
            assert_eq!(big(&inv), expected);
            let mut one = a.mul(&inv);
            one.reduce_full();
            assert!(one.is_one());
        }
        assert!(Num([0; LIMBS]).inverse().is_zero());
        assert!(P.inverse().is_zero());
        assert!(ONE.inverse().is_one());
    }

    #[test]
    fn full_reduction_maps_p_and_above_into_range() {
        let mut x = P;
        x.reduce_full();
        assert!(x.is_zero());
        let mut y = Num([u64::MAX; LIMBS]);
        y.reduce_full();
        assert_eq!(big(&y), (BigUint::from(1u8) << 3072u32) - 1u8 - p_big());
    }

    #[test]
    fn add_then_remove_is_the_empty_set() {
        let mut h = MuHash3072::new();
        h.insert(b"a");
        h.insert(b"b");
        h.remove(b"a");
        h.remove(b"b");
        assert_eq!(h, MuHash3072::new());
        assert_eq!(h.finalize(), MuHash3072::new().finalize());
    }

    #[test]
    fn state_round_trips() {
        let mut h = MuHash3072::new();
        h.insert(b"x");
        h.remove(b"y");
        let back = MuHash3072::from_bytes(&h.to_bytes()).expect("valid state");
        assert_eq!(back.finalize(), h.finalize());
        let mut bytes = h.to_bytes();
        bytes[NUMBER_BYTES..].fill(0);
        assert!(MuHash3072::from_bytes(&bytes).is_err());
    }
}
