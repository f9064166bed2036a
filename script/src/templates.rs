//! Output programs, standard scripts and the witnesses that spend them.
//!
//! Output programs (see `spec/script.md`):
//! - pay-to-key: `OP_1 <32-byte x-only key>`, witness `[signature]`;
//! - pay-to-script-hash: `OP_0 <SHA256(script)>`, witness `[args.., script]`;
//! - burn: anything starting with `OP_RETURN`;
//! - reserved: `OP_2..=OP_16` followed by one push of 2 to 40 bytes;
//! - anything else is a bare script.

use secp256k1::XOnlyPublicKey;
use settle_assets::Witness;

use crate::instruction::{push_opcode_for_len, small_push_opcode};
use crate::limits::{KEY_BYTES, MAX_MULTISIG_KEYS};
use crate::num;
use crate::opcodes::*;
use crate::sighash::sha256;

/// Length of the pay-to-key and pay-to-script-hash output scripts.
pub const PROGRAM_SCRIPT_BYTES: usize = 34;
/// Shortest and longest program of a reserved version.
pub const RESERVED_PROGRAM_BYTES: std::ops::RangeInclusive<usize> = 2..=40;

/// What an output script is.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum ScriptKind {
    /// `OP_1 <key>`: spent by a signature of the key. The key is not checked to be a
    /// valid point here (spending checks it).
    PayToKey([u8; 32]),
    /// `OP_0 <hash>`: spent by a script whose SHA-256 is the hash, and its arguments.
    PayToScriptHash([u8; 32]),
    /// Starts with `OP_RETURN`: never spendable.
    Burn,
    /// A reserved program version (2 to 16): not spendable until defined.
    Reserved { version: u8 },
    /// Any other script, run as it is.
    Bare,
}

/// [`ScriptKind`] borrowing from the script (no copies on the verification path).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ScriptKindRef<'a> {
    PayToKey(&'a [u8; 32]),
    PayToScriptHash(&'a [u8; 32]),
    Burn,
    Reserved { version: u8 },
    Bare,
}

pub(crate) fn classify_ref(script: &[u8]) -> ScriptKindRef<'_> {
    match script {
        [OP_RETURN, ..] => ScriptKindRef::Burn,
        [version @ (OP_0 | OP_1), 0x20, program @ ..] if program.len() == KEY_BYTES => {
            let Ok(program) = <&[u8; 32]>::try_from(program) else {
                return ScriptKindRef::Bare;
            };
            if *version == OP_1 {
                ScriptKindRef::PayToKey(program)
            } else {
                ScriptKindRef::PayToScriptHash(program)
            }
        }
        [op @ OP_2..=OP_16, len, program @ ..]
            if RESERVED_PROGRAM_BYTES.contains(&usize::from(*len))
                && program.len() == usize::from(*len) =>
        {
            ScriptKindRef::Reserved {
                version: op - OP_1 + 1,
            }
        }
        _ => ScriptKindRef::Bare,
    }
}

/// Classifies an output script.
pub fn classify(script_pubkey: &[u8]) -> ScriptKind {
    match classify_ref(script_pubkey) {
        ScriptKindRef::PayToKey(k) => ScriptKind::PayToKey(*k),
        ScriptKindRef::PayToScriptHash(h) => ScriptKind::PayToScriptHash(*h),
        ScriptKindRef::Burn => ScriptKind::Burn,
        ScriptKindRef::Reserved { version } => ScriptKind::Reserved { version },
        ScriptKindRef::Bare => ScriptKind::Bare,
    }
}

/// Builds scripts with minimal pushes.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Builder(Vec<u8>);

impl Builder {
    pub fn new() -> Self {
        Builder(Vec::new())
    }

    /// Appends a non-push opcode (or a small-number opcode).
    pub fn push_opcode(mut self, op: u8) -> Self {
        self.0.push(op);
        self
    }

    /// Appends the shortest push of `data`: `OP_0`, `OP_1NEGATE`, `OP_1..=OP_16`, a direct
    /// push, `OP_PUSHDATA1` or `OP_PUSHDATA2`. Data over 65,535 bytes has no push form;
    /// it is written after the undefined byte `0x4e` (`OP_PUSHDATA4` in Bitcoin), which
    /// makes the script fail with `BAD_OPCODE` rather than silently change meaning.
    pub fn push_slice(mut self, data: &[u8]) -> Self {
        if let Some(op) = small_push_opcode(data) {
            self.0.push(op);
            return self;
        }
        match push_opcode_for_len(data.len()) {
            Some(OP_PUSHDATA1) => {
                self.0.push(OP_PUSHDATA1);
                self.0
                    .extend_from_slice(&(data.len() as u64).to_le_bytes()[..1]);
            }
            Some(OP_PUSHDATA2) => {
                self.0.push(OP_PUSHDATA2);
                self.0
                    .extend_from_slice(&(data.len() as u64).to_le_bytes()[..2]);
            }
            Some(op) => self.0.push(op),
            None => {
                self.0.push(0x4e);
                self.0
                    .extend_from_slice(&(data.len() as u64).to_le_bytes()[..4]);
            }
        }
        self.0.extend_from_slice(data);
        self
    }

    /// Appends the shortest push of the number `n`.
    pub fn push_int(mut self, n: i64) -> Self {
        match small_int_opcode(n) {
            Some(op) => {
                self.0.push(op);
                self
            }
            None => self.push_slice(&num::encode(n)),
        }
    }

    /// Appends a push of an x-only key.
    pub fn push_key(self, key: &XOnlyPublicKey) -> Self {
        self.push_slice(&key.serialize())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn into_script(self) -> Vec<u8> {
        self.0
    }
}

/// `OP_1 <key>`: pay to a key.
pub fn p2k(key: &XOnlyPublicKey) -> Vec<u8> {
    p2k_from_bytes(&key.serialize())
}

/// `OP_1 <key>` from the key's bytes (not checked to be a valid point).
pub fn p2k_from_bytes(key: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PROGRAM_SCRIPT_BYTES);
    out.push(OP_1);
    out.push(0x20);
    out.extend_from_slice(key);
    out
}

/// `OP_0 <SHA256(script)>`: pay to a script.
pub fn p2sh(script: &[u8]) -> Vec<u8> {
    p2sh_from_hash(&sha256(script))
}

/// `OP_0 <hash>` from the script hash.
pub fn p2sh_from_hash(hash: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PROGRAM_SCRIPT_BYTES);
    out.push(OP_0);
    out.push(0x20);
    out.extend_from_slice(hash);
    out
}

/// `OP_RETURN <data>` (just `OP_RETURN` for empty data): a burn output script.
pub fn burn_script(data: &[u8]) -> Vec<u8> {
    let builder = Builder::new().push_opcode(OP_RETURN);
    if data.is_empty() {
        builder.into_script()
    } else {
        builder.push_slice(data).into_script()
    }
}

/// Why a standard script could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("multisig needs 1 to {MAX_MULTISIG_KEYS} keys, got {0}")]
    KeyCount(usize),
    #[error("multisig threshold {m} is not between 1 and the key count {n}")]
    Threshold { m: usize, n: usize },
}

/// `<m> <k1> .. <kn> <n> OP_CHECKMULTISIG`: at least `m` of the `n` keys must sign.
pub fn multisig_script(m: usize, keys: &[XOnlyPublicKey]) -> Result<Vec<u8>, TemplateError> {
    let n = keys.len();
    if !(1..=MAX_MULTISIG_KEYS).contains(&n) {
        return Err(TemplateError::KeyCount(n));
    }
    if !(1..=n).contains(&m) {
        return Err(TemplateError::Threshold { m, n });
    }
    // Both fit: n <= 20.
    let mut b = Builder::new().push_int(m as i64);
    for key in keys {
        b = b.push_key(key);
    }
    Ok(b.push_int(n as i64)
        .push_opcode(OP_CHECKMULTISIG)
        .into_script())
}

/// A hashed timelock contract:
/// `OP_IF OP_SHA256 <hash> OP_EQUALVERIFY <recipient> OP_CHECKSIG
///  OP_ELSE <timeout> OP_CHECKLOCKTIMEVERIFY OP_DROP <refund> OP_CHECKSIG OP_ENDIF`.
/// The recipient claims with the SHA-256 preimage of `hash`; the refund key takes the
/// coins back once the transaction's lock time reaches `timeout_lock_time` (a height
/// below 500,000,000, else a UNIX time).
pub fn htlc_script(
    hash: [u8; 32],
    recipient: &XOnlyPublicKey,
    refund: &XOnlyPublicKey,
    timeout_lock_time: u32,
) -> Vec<u8> {
    Builder::new()
        .push_opcode(OP_IF)
        .push_opcode(OP_SHA256)
        .push_slice(&hash)
        .push_opcode(OP_EQUALVERIFY)
        .push_key(recipient)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ELSE)
        .push_int(i64::from(timeout_lock_time))
        .push_opcode(OP_CHECKLOCKTIMEVERIFY)
        .push_opcode(OP_DROP)
        .push_key(refund)
        .push_opcode(OP_CHECKSIG)
        .push_opcode(OP_ENDIF)
        .into_script()
}

/// The witness of a pay-to-key spend.
pub fn p2k_witness(signature: Vec<u8>) -> Witness {
    Witness(vec![signature])
}

/// The witness of a pay-to-script-hash spend: the arguments (bottom of the stack
/// first), then the script.
pub fn p2sh_witness(args: Vec<Vec<u8>>, script: &[u8]) -> Witness {
    let mut items = args;
    items.push(script.to_vec());
    Witness(items)
}

/// The witness of a pay-to-script-hash multisig: one slot per key in key order, `None`
/// for a key that does not sign.
pub fn multisig_witness(slots: Vec<Option<Vec<u8>>>, script: &[u8]) -> Witness {
    p2sh_witness(
        slots.into_iter().map(Option::unwrap_or_default).collect(),
        script,
    )
}

/// The witness of an HTLC claim by the recipient with the preimage.
pub fn htlc_claim_witness(signature: Vec<u8>, preimage: Vec<u8>, script: &[u8]) -> Witness {
    p2sh_witness(vec![signature, preimage, vec![1]], script)
}

/// The witness of an HTLC refund after the timeout.
pub fn htlc_refund_witness(signature: Vec<u8>, script: &[u8]) -> Witness {
    p2sh_witness(vec![signature, Vec::new()], script)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asm::disassemble;

    fn key(i: u8) -> XOnlyPublicKey {
        let kp = secp256k1::Keypair::from_seckey_byte_array(secp256k1::SECP256K1, [i; 32])
            .expect("valid secret");
        kp.x_only_public_key().0
    }

    #[test]
    fn classification() {
        let k = key(1);
        assert_eq!(classify(&p2k(&k)), ScriptKind::PayToKey(k.serialize()));
        let script = [OP_1];
        assert_eq!(
            classify(&p2sh(&script)),
            ScriptKind::PayToScriptHash(sha256(&script))
        );
        assert_eq!(classify(&burn_script(b"gone")), ScriptKind::Burn);
        assert_eq!(classify(&[OP_RETURN]), ScriptKind::Burn);
        assert_eq!(
            classify(&[OP_2, 2, 0, 0]),
            ScriptKind::Reserved { version: 2 }
        );
        assert_eq!(
            classify(
                &[OP_16, 40]
                    .iter()
                    .copied()
                    .chain([0; 40])
                    .collect::<Vec<_>>()
            ),
            ScriptKind::Reserved { version: 16 }
        );
        // Not programs: wrong lengths, OP_1 with a 20-byte push, trailing bytes.
        assert_eq!(classify(&[OP_2, 1, 0]), ScriptKind::Bare);
        assert_eq!(
            classify(
                &[OP_2, 41]
                    .iter()
                    .copied()
                    .chain([0; 41])
                    .collect::<Vec<_>>()
            ),
            ScriptKind::Bare
        );
        assert_eq!(
            classify(
                &[OP_1, 20]
                    .iter()
                    .copied()
                    .chain([0; 20])
                    .collect::<Vec<_>>()
            ),
            ScriptKind::Bare
        );
        let mut long = p2k(&k);
        long.push(OP_1);
        assert_eq!(classify(&long), ScriptKind::Bare);
        assert_eq!(classify(&[]), ScriptKind::Bare);
        assert_eq!(classify(&[OP_1]), ScriptKind::Bare);
    }

    #[test]
    fn builder_uses_minimal_pushes() {
        let s = Builder::new()
            .push_int(0)
            .push_int(-1)
            .push_int(16)
            .push_int(17)
            .push_int(500)
            .push_slice(&[5])
            .push_slice(&[0x81])
            .push_slice(&[0; 80])
            .push_slice(&[0; 300])
            .into_script();
        assert_eq!(
            &s[..9],
            &[0x00, 0x4f, 0x60, 0x01, 0x11, 0x02, 0xf4, 0x01, 0x55]
        );
        assert_eq!(s[9], OP_1NEGATE);
        assert_eq!(&s[10..12], &[OP_PUSHDATA1, 80]);
        assert_eq!(&s[92..95], &[OP_PUSHDATA2, 0x2c, 0x01]);
        assert_eq!(s.len(), 95 + 300);
    }

    #[test]
    fn standard_scripts_read_as_documented() {
        let (a, b) = (key(1), key(2));
        let htlc = htlc_script([0xab; 32], &a, &b, 1_000);
        let text = disassemble(&htlc);
        assert!(text.starts_with("OP_IF OP_SHA256 <abab"), "{text}");
        assert!(
            text.contains("OP_ELSE <e803> OP_CHECKLOCKTIMEVERIFY OP_DROP"),
            "{text}"
        );
        assert!(text.ends_with("OP_CHECKSIG OP_ENDIF"), "{text}");
        let ms = multisig_script(2, &[a, b]).expect("valid");
        assert_eq!(ms[0], OP_2);
        assert_eq!(ms[ms.len() - 2], OP_2);
        assert_eq!(ms[ms.len() - 1], OP_CHECKMULTISIG);
        assert_eq!(
            multisig_script(0, &[a]),
            Err(TemplateError::Threshold { m: 0, n: 1 })
        );
        assert_eq!(
            multisig_script(2, &[a]),
            Err(TemplateError::Threshold { m: 2, n: 1 })
        );
        assert_eq!(multisig_script(1, &[]), Err(TemplateError::KeyCount(0)));
        assert_eq!(
            multisig_script(1, &[a; 21]),
            Err(TemplateError::KeyCount(21))
        );
        assert_eq!(burn_script(&[]), vec![OP_RETURN]);
    }
}
