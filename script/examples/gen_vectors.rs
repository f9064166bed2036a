//! Writes `spec/vectors/script_cases.json`, `sighash.json` and `addresses.json`.
//!
//! ```text
//! cargo run -p settle-script --example gen_vectors
//! ```
//!
//! The expected result of every script case is written by hand below; the VM is never
//! asked what it would say. Only signatures, digests and addresses are computed, and
//! deterministically (BIP340 without auxiliary randomness), so re-running the generator
//! reproduces the files byte for byte. `tests/vectors.rs` then checks the VM against
//! them, and `tests/sighash.rs` checks the digests against an independent re-reading of
//! `spec/sighash.md`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fs;

use bech32::primitives::iter::{ByteIterExt, Fe32IterExt};
use bech32::{Bech32, Bech32m, Fe32, Hrp};
use common::*;
use secp256k1::SECP256K1;
use settle_assets::encode::serialize;
use settle_assets::transaction::SEQUENCE_FINAL;
use settle_assets::{
    AssetId, ChainId, Issuance, IssuanceKind, OutPoint, Transaction, TxIn, TxOut, Txid, Witness,
};
use settle_script::addresses::{Address, Network};
use settle_script::sighash::sha256;
use settle_script::{
    PrecomputedTx, SighashType, assemble, disassemble, htlc_script, multisig_script,
    sign_schnorr_no_aux_rand,
};

const CHAIN: [u8; 32] = [0x5e; 32];
const PREIMAGE: [u8; 32] = *b"settle htlc preimage, 32 bytes!!";

#[derive(Clone, Copy)]
enum Tweak {
    None,
    /// Flip one bit of the signature.
    Corrupt,
    /// Sign for another chain id.
    OtherChain,
    /// Sign the digest of the given type but end the signature with this byte.
    ExplicitByte(u8),
    /// Drop the last byte.
    Truncate,
}

enum Item {
    Hex(String),
    Asm(String),
    Sig(u8, SighashType, Tweak),
}

struct Spec {
    name: &'static str,
    script_pubkey: String,
    witness: Vec<Item>,
    lock_time: u32,
    sequence: u32,
    no_outputs: bool,
    expected: &'static str,
}

fn case(
    name: &'static str,
    script_pubkey: &str,
    witness: Vec<Item>,
    expected: &'static str,
) -> Spec {
    Spec {
        name,
        script_pubkey: script_pubkey.to_string(),
        witness,
        lock_time: 0,
        sequence: SEQUENCE_FINAL,
        no_outputs: false,
        expected,
    }
}

impl Spec {
    fn lock(mut self, lock_time: u32, sequence: u32) -> Self {
        self.lock_time = lock_time;
        self.sequence = sequence;
        self
    }
    fn without_outputs(mut self) -> Self {
        self.no_outputs = true;
        self
    }
}

fn hex(s: &str) -> Item {
    Item::Hex(s.to_string())
}
fn asm(s: &str) -> Item {
    Item::Asm(s.to_string())
}
fn sig(key: u8, t: SighashType) -> Item {
    Item::Sig(key, t, Tweak::None)
}
fn sig_t(key: u8, t: SighashType, tweak: Tweak) -> Item {
    Item::Sig(key, t, tweak)
}
fn empty() -> Item {
    hex("")
}

/// Replaces `$K1`..`$K3`, `$BADKEY` and `$H` in a template.
fn expand(template: &str) -> String {
    template
        .replace("$K1", &format!("<{}>", hex::encode(xonly(1).serialize())))
        .replace("$K2", &format!("<{}>", hex::encode(xonly(2).serialize())))
        .replace("$K3", &format!("<{}>", hex::encode(xonly(3).serialize())))
        .replace("$BADKEY", &format!("<{}>", hex::encode(invalid_xonly())))
        .replace("$H", &format!("<{}>", hex::encode(sha256(&PREIMAGE))))
}

const HTLC: &str = "OP_IF OP_SHA256 $H OP_EQUALVERIFY $K1 OP_CHECKSIG OP_ELSE <e803> \
                    OP_CHECKLOCKTIMEVERIFY OP_DROP $K2 OP_CHECKSIG OP_ENDIF";
const MULTISIG: &str = "OP_2 $K1 $K2 $K3 OP_3 OP_CHECKMULTISIG";
/// Checks one witness signature twice against key 1, after dropping a padding item.
const TWICE: &str = "OP_DROP OP_DUP $K1 OP_CHECKSIGVERIFY $K1 OP_CHECKSIG";

fn specs() -> Vec<Spec> {
    use SighashType::*;
    let p2k1 = "OP_1 $K1";
    let preimage = hex::encode(PREIMAGE);
    let big = |n: usize| "00".repeat(n);
    let key1 = hex::encode(xonly(1).serialize());
    let amplifier = format!("{}OP_CHECKSIG", "OP_2DUP OP_CHECKSIGVERIFY ".repeat(99));
    let empty_checks = format!(
        "{}OP_CHECKSIG OP_NOT",
        "OP_2DUP OP_CHECKSIG OP_DROP ".repeat(20)
    );
    let s = |name, spk: &str, w, e| case(name, spk, w, e);
    vec![
        // Pay-to-key.
        s(
            "p2k: signature ALL (64 bytes)",
            p2k1,
            vec![sig(1, All)],
            "OK",
        ),
        s("p2k: signature NONE", p2k1, vec![sig(1, None)], "OK"),
        s("p2k: signature SINGLE", p2k1, vec![sig(1, Single)], "OK"),
        s(
            "p2k: signature ALL|ANYONECANPAY",
            p2k1,
            vec![sig(1, AllAnyoneCanPay)],
            "OK",
        ),
        s(
            "p2k: signature NONE|ANYONECANPAY",
            p2k1,
            vec![sig(1, NoneAnyoneCanPay)],
            "OK",
        ),
        s(
            "p2k: signature SINGLE|ANYONECANPAY",
            p2k1,
            vec![sig(1, SingleAnyoneCanPay)],
            "OK",
        ),
        s(
            "p2k: signature by another key",
            p2k1,
            vec![sig(2, All)],
            "SIG_INVALID",
        ),
        s(
            "p2k: one bit of the signature flipped",
            p2k1,
            vec![sig_t(1, All, Tweak::Corrupt)],
            "SIG_INVALID",
        ),
        s(
            "p2k: signature made for another chain id",
            p2k1,
            vec![sig_t(1, All, Tweak::OtherChain)],
            "SIG_INVALID",
        ),
        s(
            "p2k: ALL digest signed, NONE byte appended",
            p2k1,
            vec![sig_t(1, All, Tweak::ExplicitByte(0x02))],
            "SIG_INVALID",
        ),
        s(
            "p2k: explicit hash type byte 0x01 is not allowed",
            p2k1,
            vec![sig_t(1, All, Tweak::ExplicitByte(0x01))],
            "SIG_HASHTYPE",
        ),
        s(
            "p2k: undefined hash type byte 0x84",
            p2k1,
            vec![sig_t(1, All, Tweak::ExplicitByte(0x84))],
            "SIG_HASHTYPE",
        ),
        s(
            "p2k: undefined hash type byte 0x00",
            p2k1,
            vec![sig_t(1, All, Tweak::ExplicitByte(0x00))],
            "SIG_HASHTYPE",
        ),
        s(
            "p2k: 63-byte signature",
            p2k1,
            vec![sig_t(1, All, Tweak::Truncate)],
            "SIG_SIZE",
        ),
        s("p2k: empty witness", p2k1, vec![], "WITNESS_EMPTY"),
        s(
            "p2k: empty signature is false",
            p2k1,
            vec![empty()],
            "EVAL_FALSE",
        ),
        s(
            "p2k: an extra item below the signature",
            p2k1,
            vec![hex("01"), sig(1, All)],
            "CLEANSTACK",
        ),
        s(
            "p2k: witness item over 520 bytes",
            p2k1,
            vec![hex(&big(521))],
            "PUSH_SIZE",
        ),
        s(
            "p2k: program is not a valid x-only key",
            "OP_1 $BADKEY",
            vec![sig(1, All)],
            "PUBKEY_TYPE",
        ),
        s(
            "p2k: ALL signature on a transaction without outputs",
            p2k1,
            vec![sig(1, All)],
            "OK",
        )
        .without_outputs(),
        s(
            "p2k: SINGLE signature, transaction has no outputs",
            p2k1,
            vec![sig_t(1, All, Tweak::ExplicitByte(0x03))],
            "SIGHASH_SINGLE_NO_OUTPUT",
        )
        .without_outputs(),
        s(
            "p2k: SINGLE|ANYONECANPAY, transaction has no outputs",
            p2k1,
            vec![sig_t(1, All, Tweak::ExplicitByte(0x83))],
            "SIGHASH_SINGLE_NO_OUTPUT",
        )
        .without_outputs(),
        // Pay-to-script-hash.
        s(
            "p2sh: witness script OP_1",
            "$P2SH",
            vec![asm("OP_1")],
            "OK",
        ),
        s(
            "p2sh: empty witness",
            &format!("OP_0 <{}>", big(32)),
            vec![],
            "WITNESS_EMPTY",
        ),
        s(
            "p2sh: witness script does not match the program",
            &format!("OP_0 <{}>", big(32)),
            vec![asm("OP_1")],
            "WITNESS_PROGRAM_MISMATCH",
        ),
        s(
            "p2sh: witness script over 10,000 bytes",
            "$P2SH",
            vec![Item::Hex(format!("51{}", "61".repeat(10_000)))],
            "SCRIPT_SIZE",
        ),
        s(
            "p2sh: witness script of exactly 10,000 bytes may exceed 520",
            "$P2SH",
            vec![Item::Asm(format!(
                "OP_1 {}",
                format!("<{}> OP_DROP ", big(520)).repeat(19) + &format!("<{}> OP_DROP", big(41))
            ))],
            "OK",
        ),
        s(
            "p2sh: argument over 520 bytes",
            "$P2SH",
            vec![hex(&big(521)), asm("OP_DROP OP_1")],
            "PUSH_SIZE",
        ),
        s(
            "p2sh: witness items are data: an OP_RETURN byte is never run",
            "$P2SH",
            vec![hex("6a"), asm("OP_DROP OP_1")],
            "OK",
        ),
        s(
            "p2sh: two items left",
            "$P2SH",
            vec![hex("01"), asm("OP_1")],
            "CLEANSTACK",
        ),
        s(
            "p2sh: witness script starting with OP_RETURN is executed and fails",
            "$P2SH",
            vec![asm("OP_RETURN")],
            "OP_RETURN",
        ),
        s(
            "p2sh: 2-of-3 multisig, keys 1 and 3",
            "$P2SH",
            vec![sig(1, All), empty(), sig(3, All), asm(MULTISIG)],
            "OK",
        ),
        s(
            "p2sh: 2-of-3 multisig, all three sign",
            "$P2SH",
            vec![
                sig(1, All),
                sig(2, None),
                sig(3, SingleAnyoneCanPay),
                asm(MULTISIG),
            ],
            "OK",
        ),
        s(
            "p2sh: 2-of-3 multisig, only key 2 signs",
            "$P2SH",
            vec![empty(), sig(2, All), empty(), asm(MULTISIG)],
            "EVAL_FALSE",
        ),
        s(
            "p2sh: 2-of-3 multisig, key 1's signature in key 2's slot",
            "$P2SH",
            vec![empty(), sig(1, All), sig(3, All), asm(MULTISIG)],
            "SIG_INVALID",
        ),
        s(
            "p2sh: 2-of-3 multisig, one slot missing",
            "$P2SH",
            vec![sig(1, All), sig(2, All), asm(MULTISIG)],
            "INVALID_STACK_OPERATION",
        ),
        s(
            "p2sh: 2-of-3 multisig, a bad signature beside two good ones",
            "$P2SH",
            vec![
                sig(1, All),
                sig(2, All),
                sig_t(3, All, Tweak::Corrupt),
                asm(MULTISIG),
            ],
            "SIG_INVALID",
        ),
        s(
            "p2sh: CHECKMULTISIGVERIFY with too few signatures",
            "$P2SH",
            vec![
                sig(1, All),
                empty(),
                empty(),
                asm("OP_2 $K1 $K2 $K3 OP_3 OP_CHECKMULTISIGVERIFY OP_1"),
            ],
            "CHECKMULTISIGVERIFY",
        ),
        s(
            "p2sh: CHECKSIGVERIFY with an empty signature",
            "$P2SH",
            vec![empty(), asm("$K1 OP_CHECKSIGVERIFY OP_1")],
            "CHECKSIGVERIFY",
        ),
        s(
            "p2sh: CHECKSIGVERIFY then OP_1",
            "$P2SH",
            vec![sig(1, NoneAnyoneCanPay), asm("$K1 OP_CHECKSIGVERIFY OP_1")],
            "OK",
        ),
        // Signature-check budget: (41 + witness bytes) / 96 checks per input.
        s(
            "sig budget: one signature checked twice, witness 151 bytes (budget 2)",
            "$P2SH",
            vec![sig(1, All), hex(&big(13)), asm(TWICE)],
            "OK",
        ),
        s(
            "sig budget: one signature checked twice, witness 150 bytes (budget 1)",
            "$P2SH",
            vec![sig(1, All), hex(&big(12)), asm(TWICE)],
            "SIG_CHECK_BUDGET",
        ),
        s(
            "sig budget: OP_2DUP OP_CHECKSIGVERIFY 99 times over one signature",
            "$P2SH",
            vec![sig(1, All), hex(&key1), asm(&amplifier)],
            "SIG_CHECK_BUDGET",
        ),
        s(
            "sig budget: empty signatures cost nothing",
            "$P2SH",
            vec![empty(), hex(&key1), asm(&empty_checks)],
            "OK",
        ),
        s(
            "sig budget: a failing check is counted before the key is read",
            "$P2SH",
            vec![
                sig(1, All),
                asm("OP_DUP $K1 OP_CHECKSIGVERIFY $BADKEY OP_CHECKSIG"),
            ],
            "SIG_CHECK_BUDGET",
        ),
        s(
            "htlc: claim with the preimage",
            "$P2SH",
            vec![sig(1, All), hex(&preimage), hex("01"), asm(HTLC)],
            "OK",
        ),
        s(
            "htlc: claim with a wrong preimage",
            "$P2SH",
            vec![sig(1, All), hex(&"ab".repeat(32)), hex("01"), asm(HTLC)],
            "EQUALVERIFY",
        ),
        s(
            "htlc: claim branch signed by the refund key",
            "$P2SH",
            vec![sig(2, All), hex(&preimage), hex("01"), asm(HTLC)],
            "SIG_INVALID",
        ),
        s(
            "htlc: IF argument 0x02 is not minimal",
            "$P2SH",
            vec![sig(1, All), hex(&preimage), hex("02"), asm(HTLC)],
            "MINIMALIF",
        ),
        s(
            "htlc: refund at the timeout",
            "$P2SH",
            vec![sig(2, All), empty(), asm(HTLC)],
            "OK",
        )
        .lock(1000, 0),
        s(
            "htlc: refund after the timeout",
            "$P2SH",
            vec![sig(2, All), empty(), asm(HTLC)],
            "OK",
        )
        .lock(5000, 0xffff_fffe),
        s(
            "htlc: refund before the timeout",
            "$P2SH",
            vec![sig(2, All), empty(), asm(HTLC)],
            "UNSATISFIED_LOCKTIME",
        )
        .lock(999, 0),
        s(
            "htlc: refund with a final sequence",
            "$P2SH",
            vec![sig(2, All), empty(), asm(HTLC)],
            "UNSATISFIED_LOCKTIME",
        )
        .lock(1000, SEQUENCE_FINAL),
        s(
            "htlc: refund with a time lock time against a height timeout",
            "$P2SH",
            vec![sig(2, All), empty(), asm(HTLC)],
            "UNSATISFIED_LOCKTIME",
        )
        .lock(600_000_000, 0),
        s(
            "p2sh: relative lock of 10 blocks, sequence 10",
            "$P2SH",
            vec![
                sig(1, All),
                asm("10 OP_CHECKSEQUENCEVERIFY OP_DROP $K1 OP_CHECKSIG"),
            ],
            "OK",
        )
        .lock(0, 10),
        s(
            "p2sh: relative lock of 10 blocks, sequence 9",
            "$P2SH",
            vec![
                sig(1, All),
                asm("10 OP_CHECKSEQUENCEVERIFY OP_DROP $K1 OP_CHECKSIG"),
            ],
            "UNSATISFIED_LOCKTIME",
        )
        .lock(0, 9),
        // Burns and reserved versions.
        s(
            "burn: OP_RETURN with data",
            "OP_RETURN <dead>",
            vec![hex("01")],
            "UNSPENDABLE",
        ),
        s("burn: OP_RETURN alone", "OP_RETURN", vec![], "UNSPENDABLE"),
        s(
            "reserved: version 2, 2-byte program",
            "OP_2 <0000>",
            vec![hex("01")],
            "UNKNOWN_PROGRAM_VERSION",
        ),
        s(
            "reserved: version 16, 40-byte program",
            &format!("OP_16 <{}>", big(40)),
            vec![],
            "UNKNOWN_PROGRAM_VERSION",
        ),
        s(
            "bare: version 2 with a 41-byte push is a bare script",
            &format!("OP_2 <{}>", big(41)),
            vec![],
            "CLEANSTACK",
        ),
        s(
            "bare: OP_1 with a 20-byte push is a bare script",
            &format!("OP_1 <{}>", big(20)),
            vec![],
            "CLEANSTACK",
        ),
        // Bare scripts.
        s("bare: OP_1, empty witness", "OP_1", vec![], "OK"),
        s(
            "bare: empty script, witness [01]",
            "",
            vec![hex("01")],
            "OK",
        ),
        s(
            "bare: empty script, empty witness",
            "",
            vec![],
            "CLEANSTACK",
        ),
        s("bare: OP_0", "OP_0", vec![], "EVAL_FALSE"),
        s("bare: negative zero is false", "<80>", vec![], "EVAL_FALSE"),
        s("bare: two items left", "OP_1 OP_1", vec![], "CLEANSTACK"),
        s(
            "bare: key CHECKSIG signed over the output script",
            "$K1 OP_CHECKSIG",
            vec![sig(1, All)],
            "OK",
        ),
        s(
            "bare: CHECKSIG with a 33-byte key",
            &format!("<02{}> OP_CHECKSIG", hex::encode(xonly(1).serialize())),
            vec![sig(1, All)],
            "PUBKEY_TYPE",
        ),
        s(
            "bare: CHECKSIG key size checked even for an empty signature",
            "<aabb> OP_CHECKSIG OP_NOT",
            vec![empty()],
            "PUBKEY_TYPE",
        ),
        s(
            "bare: SHA256 hash lock",
            "OP_SHA256 $H OP_EQUAL",
            vec![hex(&preimage)],
            "OK",
        ),
        s(
            "bare: HASH160 of empty",
            "OP_0 OP_HASH160 <b472a266d0bd89c13706a4132ccfb16f7c3b9fcb> OP_EQUAL",
            vec![],
            "OK",
        ),
        s(
            "bare: HASH256 of empty",
            "OP_0 OP_HASH256 <5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456> OP_EQUAL",
            vec![],
            "OK",
        ),
        s(
            "bare: undefined opcode 0xff",
            "OP_1 0xff",
            vec![],
            "BAD_OPCODE",
        ),
        s(
            "bare: undefined opcode in an unexecuted branch",
            "OP_0 OP_IF 0xba OP_ENDIF OP_1",
            vec![],
            "BAD_OPCODE",
        ),
        s(
            "bare: OP_PUSHDATA4 is undefined",
            "OP_1 0x4e01000000ff",
            vec![],
            "BAD_OPCODE",
        ),
        s(
            "bare: push running past the end",
            "OP_1 0x02aa",
            vec![],
            "BAD_OPCODE",
        ),
        s("bare: non-minimal push of 5", "<05>", vec![], "MINIMALDATA"),
        s(
            "bare: OP_PUSHDATA1 for a 1-byte push",
            "0x4c01aa OP_DROP OP_1",
            vec![],
            "MINIMALDATA",
        ),
        s(
            "bare: non-minimal push in an unexecuted branch",
            "OP_0 OP_IF 0x4c01aa OP_ENDIF OP_1",
            vec![],
            "MINIMALDATA",
        ),
        s(
            "bare: non-minimal number operand",
            "<0100> OP_1ADD",
            vec![],
            "MINIMALDATA",
        ),
        s(
            "bare: push over 520 bytes",
            &format!("<{}> OP_DROP OP_1", big(521)),
            vec![],
            "PUSH_SIZE",
        ),
        s(
            "bare: 201 operations",
            &format!("OP_1 {}", "OP_DUP OP_DROP ".repeat(100) + "OP_VERIFY OP_1"),
            vec![],
            "OK",
        ),
        s(
            "bare: 202 operations",
            &format!("OP_1 {}", "OP_DUP OP_DROP ".repeat(101)),
            vec![],
            "OP_COUNT",
        ),
        s(
            "bare: 1,000 stack items are allowed (then CLEANSTACK)",
            &"OP_1 ".repeat(1000),
            vec![],
            "CLEANSTACK",
        ),
        s(
            "bare: 1,001 stack items",
            &"OP_1 ".repeat(1001),
            vec![],
            "STACK_SIZE",
        ),
        s(
            "bare: VERIFY on false",
            "OP_0 OP_VERIFY OP_1",
            vec![],
            "VERIFY",
        ),
        s(
            "bare: EQUALVERIFY on unequal items",
            "<aa> <bb> OP_EQUALVERIFY OP_1",
            vec![],
            "EQUALVERIFY",
        ),
        s(
            "bare: NUMEQUALVERIFY on unequal numbers",
            "OP_1 OP_2 OP_NUMEQUALVERIFY OP_1",
            vec![],
            "NUMEQUALVERIFY",
        ),
        s(
            "bare: executed OP_RETURN",
            "OP_1 OP_RETURN",
            vec![],
            "OP_RETURN",
        ),
        s(
            "bare: OP_RETURN in an unexecuted branch",
            "OP_0 OP_IF OP_RETURN OP_ENDIF OP_1",
            vec![],
            "OK",
        ),
        s(
            "bare: DROP on an empty stack",
            "OP_DROP OP_1",
            vec![],
            "INVALID_STACK_OPERATION",
        ),
        s(
            "bare: FROMALTSTACK on an empty alt stack",
            "OP_FROMALTSTACK",
            vec![],
            "INVALID_ALTSTACK_OPERATION",
        ),
        s(
            "bare: IF without ENDIF",
            "OP_1 OP_IF OP_1",
            vec![],
            "UNBALANCED_CONDITIONAL",
        ),
        s(
            "bare: ENDIF without IF",
            "OP_1 OP_ENDIF",
            vec![],
            "UNBALANCED_CONDITIONAL",
        ),
        s(
            "bare: IF on an empty stack",
            "OP_IF OP_1 OP_ENDIF",
            vec![],
            "UNBALANCED_CONDITIONAL",
        ),
        s(
            "bare: IF argument from the witness must be minimal",
            "OP_IF OP_1 OP_ELSE OP_0 OP_ENDIF",
            vec![hex("0100")],
            "MINIMALIF",
        ),
        s(
            "bare: NOTIF with an empty argument",
            "OP_NOTIF OP_1 OP_ELSE OP_0 OP_ENDIF",
            vec![empty()],
            "OK",
        ),
        s(
            "bare: 5-byte number operand",
            "<0000008000> OP_1ADD",
            vec![],
            "NUMBER_OVERFLOW",
        ),
        s(
            "bare: arithmetic",
            "OP_2 OP_3 OP_ADD OP_5 OP_NUMEQUALVERIFY -1 OP_ABS OP_1 OP_3 OP_WITHIN",
            vec![],
            "OK",
        ),
        s(
            "bare: stack shuffles",
            "OP_1 OP_2 OP_3 OP_ROT OP_SWAP OP_2DUP OP_2DROP OP_SUB OP_NIP -2 OP_NUMEQUAL",
            vec![],
            "OK",
        ),
        s(
            "bare: PICK and ROLL",
            "OP_1 OP_2 OP_3 OP_2 OP_PICK OP_3 OP_ROLL OP_NUMEQUALVERIFY OP_2DROP OP_1",
            vec![],
            "OK",
        ),
        s(
            "bare: PICK out of range",
            "OP_1 OP_1 OP_PICK",
            vec![],
            "INVALID_STACK_OPERATION",
        ),
        s(
            "bare: SIZE of a witness item",
            "OP_SIZE <20> OP_EQUALVERIFY OP_DROP OP_1",
            vec![hex(&big(32))],
            "OK",
        ),
        s(
            "bare: multisig with m = 0",
            "OP_0 OP_0 $K1 OP_1 OP_CHECKMULTISIG",
            vec![],
            "SIG_COUNT",
        ),
        s(
            "bare: multisig with m > n",
            "OP_0 OP_2 $K1 OP_1 OP_CHECKMULTISIG",
            vec![],
            "SIG_COUNT",
        ),
        s(
            "bare: multisig with n = 0",
            "OP_0 OP_0 OP_CHECKMULTISIG",
            vec![],
            "PUBKEY_COUNT",
        ),
        s(
            "bare: multisig with n = 21",
            &format!(
                "{}OP_1 {}21 OP_CHECKMULTISIG",
                "OP_0 ".repeat(21),
                "$K1 ".repeat(21)
            ),
            vec![],
            "PUBKEY_COUNT",
        ),
        // Lock times.
        s(
            "cltv: height lock met",
            "100 OP_CHECKLOCKTIMEVERIFY",
            vec![],
            "OK",
        )
        .lock(100, 0),
        s(
            "cltv: height lock not met",
            "101 OP_CHECKLOCKTIMEVERIFY",
            vec![],
            "UNSATISFIED_LOCKTIME",
        )
        .lock(100, 0),
        s(
            "cltv: time lock met",
            "<0065cd1d> OP_CHECKLOCKTIMEVERIFY",
            vec![],
            "OK",
        )
        .lock(600_000_000, 0),
        s(
            "cltv: time lock against a height lock time",
            "<0065cd1d> OP_CHECKLOCKTIMEVERIFY",
            vec![],
            "UNSATISFIED_LOCKTIME",
        )
        .lock(400_000_000, 0),
        s(
            "cltv: disabled by a final sequence",
            "100 OP_CHECKLOCKTIMEVERIFY",
            vec![],
            "UNSATISFIED_LOCKTIME",
        )
        .lock(100, SEQUENCE_FINAL),
        s(
            "cltv: negative operand",
            "-1 OP_CHECKLOCKTIMEVERIFY",
            vec![],
            "NEGATIVE_LOCKTIME",
        )
        .lock(100, 0),
        s(
            "cltv: 5-byte operand 2^32-1",
            "<ffffffff00> OP_CHECKLOCKTIMEVERIFY",
            vec![],
            "OK",
        )
        .lock(u32::MAX, 0),
        s(
            "cltv: 6-byte operand",
            "<000000000001> OP_CHECKLOCKTIMEVERIFY",
            vec![],
            "NUMBER_OVERFLOW",
        )
        .lock(u32::MAX, 0),
        s(
            "csv: time-based lock met",
            "<050040> OP_CHECKSEQUENCEVERIFY",
            vec![],
            "OK",
        )
        .lock(0, 0x0040_0005),
        s(
            "csv: time-based lock against a block-based sequence",
            "<050040> OP_CHECKSEQUENCEVERIFY",
            vec![],
            "UNSATISFIED_LOCKTIME",
        )
        .lock(0, 5),
        s(
            "csv: sequence with the disable flag",
            "OP_1 OP_CHECKSEQUENCEVERIFY",
            vec![],
            "UNSATISFIED_LOCKTIME",
        )
        .lock(0, 0x8000_0001),
        s(
            "csv: operand with the disable flag passes",
            "<0000008000> OP_CHECKSEQUENCEVERIFY",
            vec![],
            "OK",
        )
        .lock(0, 0),
        s(
            "csv: negative operand",
            "-1 OP_CHECKSEQUENCEVERIFY",
            vec![],
            "NEGATIVE_LOCKTIME",
        ),
    ]
}

fn resolve(ctx: &ScriptContext, spec: &Spec) -> ScriptCase {
    // Non-signature witness items first: the witness script decides the program.
    let mut witness: Vec<String> = spec
        .witness
        .iter()
        .map(|item| match item {
            Item::Hex(h) => h.clone(),
            Item::Asm(a) => format!("asm:{}", expand(a)),
            Item::Sig(..) => String::new(),
        })
        .collect();
    let script_pubkey = if spec.script_pubkey == "$P2SH" {
        let script = witness_item(witness.last().expect("p2sh case has a witness script"));
        disassemble(&settle_script::p2sh(&script))
    } else {
        expand(&spec.script_pubkey)
    };
    let mut case = ScriptCase {
        name: spec.name.to_string(),
        script_pubkey,
        witness: witness.clone(),
        lock_time: spec.lock_time,
        sequence: spec.sequence,
        no_outputs: spec.no_outputs,
        expected: spec.expected.to_string(),
    };
    let (tx, spent) = case_transaction(ctx, &case);
    let spk = &spent[0].script_pubkey;
    let script_code = match settle_script::classify(spk) {
        settle_script::ScriptKind::PayToScriptHash(_) => {
            witness.last().map(|w| witness_item(w)).unwrap_or_default()
        }
        _ => spk.clone(),
    };
    for (slot, item) in witness.iter_mut().zip(&spec.witness) {
        let Item::Sig(key, hash_type, tweak) = item else {
            continue;
        };
        let chain = match tweak {
            Tweak::OtherChain => ChainId([0x00; 32]),
            _ => ctx.chain_id,
        };
        let cache = PrecomputedTx::new(&tx, &spent, chain).expect("one spent output");
        let digest = cache
            .sighash(0, *hash_type, &script_code)
            .expect("signable case");
        let mut bytes = sign_schnorr_no_aux_rand(&keypair(*key), &digest, *hash_type);
        match tweak {
            Tweak::None | Tweak::OtherChain => {}
            Tweak::Corrupt => bytes[10] ^= 0x01,
            Tweak::ExplicitByte(b) => {
                bytes.truncate(64);
                bytes.push(*b);
            }
            Tweak::Truncate => {
                bytes.pop();
            }
        }
        *slot = hex::encode(bytes);
    }
    case.witness = witness;
    case
}

fn script_vectors() -> ScriptVectors {
    let ctx = ScriptContext {
        chain_id: ChainId(CHAIN),
        prevout: OutPoint::new(Txid([0x11; 32]), 0),
        spent_asset: AssetId([0xa5; 32]),
        spent_amount: 1_000,
        output_asset: AssetId([0xa5; 32]),
        output_amount: 1_000,
        output_script_pubkey: expand("OP_1 $K3"),
        keys: (1..=3)
            .map(|i| VectorKey {
                secret_key: hex::encode([i; 32]),
                xonly: hex::encode(xonly(i).serialize()),
            })
            .collect(),
    };
    // The asm templates must be what the library's templates build.
    let htlc = htlc_script(sha256(&PREIMAGE), &xonly(1), &xonly(2), 1000);
    assert_eq!(assemble(&expand(HTLC)).expect("htlc asm"), htlc);
    let ms = multisig_script(2, &[xonly(1), xonly(2), xonly(3)]).expect("2-of-3");
    assert_eq!(assemble(&expand(MULTISIG)).expect("multisig asm"), ms);
    let cases = specs().iter().map(|spec| resolve(&ctx, spec)).collect();
    ScriptVectors {
        comment: vec![
            "Script cases: each spends one coloured output whose script_pubkey is given, with the given witness.".into(),
            "See spec/script.md, 'Test vectors', for how the spending transaction is built from the context.".into(),
            "Witness items are hex, or 'asm:' followed by a script in the asm form of spec/script.md.".into(),
            "expected is OK or a ScriptError name. Generated by script/examples/gen_vectors.rs; expectations are hand-written.".into(),
        ],
        context: ctx,
        cases,
    }
}

fn sighash_tx() -> (Transaction, Vec<TxOut>) {
    let p2k1 = settle_script::p2k(&xonly(1));
    let ms = multisig_script(2, &[xonly(1), xonly(2), xonly(3)]).expect("2-of-3");
    let tx = Transaction {
        version: 1,
        inputs: vec![
            TxIn {
                prevout: OutPoint::NULL,
                sequence: SEQUENCE_FINAL,
                issuance: Some(Issuance {
                    kind: IssuanceKind::New {
                        contract: br#"{"class":"cash","name":"Test"}"#.to_vec(),
                    },
                    amount: units(1_000_000),
                    signature: Some([0x77; 64]),
                }),
                witness: Witness::default(),
            },
            TxIn {
                prevout: OutPoint::new(Txid([0x22; 32]), 1),
                sequence: 0xffff_fffe,
                issuance: None,
                witness: Witness(vec![vec![0x99; 64]]),
            },
            TxIn {
                prevout: OutPoint::new(Txid([0x33; 32]), 7),
                sequence: 5,
                issuance: Some(Issuance {
                    kind: IssuanceKind::Reissue {
                        asset: AssetId([0x44; 32]),
                    },
                    amount: units(50),
                    signature: None,
                }),
                witness: Witness(vec![vec![], vec![0x98; 64], ms.clone()]),
            },
        ],
        outputs: vec![
            TxOut {
                asset: AssetId([0x44; 32]),
                amount: units(50),
                script_pubkey: settle_script::p2k(&xonly(2)),
            },
            TxOut {
                asset: AssetId([0x55; 32]),
                amount: units(700),
                script_pubkey: settle_script::burn_script(b"redeemed"),
            },
        ],
        lock_time: 1234,
        expiry_height: 5678,
    };
    let spent = vec![
        TxOut::NONE,
        TxOut {
            asset: AssetId([0x55; 32]),
            amount: units(700),
            script_pubkey: p2k1,
        },
        TxOut {
            asset: AssetId([0x66; 32]),
            amount: units(3),
            script_pubkey: settle_script::p2sh(&ms),
        },
    ];
    (tx, spent)
}

fn sighash_vectors() -> SighashVectors {
    let (tx, spent) = sighash_tx();
    let tx_hex = hex::encode(serialize(&tx));
    let spent_hex: Vec<String> = spent.iter().map(|o| hex::encode(serialize(o))).collect();
    let ms = multisig_script(2, &[xonly(1), xonly(2), xonly(3)]).expect("2-of-3");
    let mut cases = Vec::new();
    let mut add =
        |description: String, chain: [u8; 32], input: usize, t: SighashType, code: &[u8]| {
            let cache = PrecomputedTx::new(&tx, &spent, ChainId(chain)).expect("counts match");
            let result = cache.sighash(input, t, code);
            cases.push(SighashCase {
                description,
                tx: tx_hex.clone(),
                spent: spent_hex.clone(),
                chain_id: ChainId(chain),
                input,
                hash_type: t.name().to_string(),
                script_code: hex::encode(code),
                digest: result.ok().map(hex::encode),
                error: result.err().map(|e| e.name().to_string()),
            });
        };
    for t in SighashType::ALL_TYPES {
        add(
            format!("input 1 (pay-to-key), {t}"),
            CHAIN,
            1,
            t,
            &spent[1].script_pubkey,
        );
    }
    add(
        "input 1, ALL, another chain id".into(),
        [0x01; 32],
        1,
        SighashType::All,
        &spent[1].script_pubkey,
    );
    for t in [
        SighashType::All,
        SighashType::NoneAnyoneCanPay,
        SighashType::AllAnyoneCanPay,
    ] {
        add(
            format!("input 2 (pay-to-script-hash, reissuance), {t}, witness script as script code"),
            CHAIN,
            2,
            t,
            &ms,
        );
    }
    add(
        "input 2, SINGLE: no output 2".into(),
        CHAIN,
        2,
        SighashType::Single,
        &ms,
    );
    add(
        "input 2, SINGLE|ANYONECANPAY: no output 2".into(),
        CHAIN,
        2,
        SighashType::SingleAnyoneCanPay,
        &ms,
    );
    add(
        "input 0 (null, new issuance), ALL|ANYONECANPAY: its spent output is TxOut::NONE".into(),
        CHAIN,
        0,
        SighashType::AllAnyoneCanPay,
        &[],
    );
    add(
        "input 0 (null, new issuance), SINGLE".into(),
        CHAIN,
        0,
        SighashType::Single,
        &[],
    );

    let issuer = keypair(9);
    let issuance = [0usize, 2]
        .into_iter()
        .map(|input| {
            let cache = PrecomputedTx::new(&tx, &spent, ChainId(CHAIN)).expect("counts match");
            let digest = cache.issuance_digest(input).expect("input in range");
            let sig = SECP256K1.sign_schnorr_no_aux_rand(&digest, &issuer);
            IssuanceCase {
                description: format!("issuance digest of input {input}"),
                tx: tx_hex.clone(),
                spent: spent_hex.clone(),
                chain_id: ChainId(CHAIN),
                input,
                digest: hex::encode(digest),
                issuer: hex::encode(issuer.x_only_public_key().0.serialize()),
                signature: hex::encode(sig.to_byte_array()),
            }
        })
        .collect();
    SighashVectors {
        comment: vec![
            "Signature hash vectors: tx is the full canonical encoding (its witness data is not committed),".into(),
            "spent the canonical TxOut encodings one per input (TxOut::NONE for the null input).".into(),
            "digest is the Settle/Sighash tagged hash of the message in spec/sighash.md, or error names the failure.".into(),
            "issuance: the Settle/Issuance digest of an input, and a BIP340 signature of it by the issuer key.".into(),
        ],
        sighash: cases,
        issuance,
    }
}

fn bech32m_of(hrp: &str, data: &[u8]) -> String {
    bech32::encode::<Bech32m>(Hrp::parse(hrp).expect("valid hrp"), data).expect("short enough")
}

fn address_vectors() -> AddressVectors {
    let ms = multisig_script(2, &[xonly(1), xonly(2), xonly(3)]).expect("2-of-3");
    let valid_addrs = [
        Address::p2k(Network::Main, &xonly(1)),
        Address::p2k(Network::Test, &xonly(2)),
        Address::p2k(Network::Dev, &xonly(3)),
        Address::p2sh(Network::Main, &ms),
        Address::p2sh(Network::Test, &assemble("OP_1").expect("asm")),
        Address::p2sh(Network::Dev, &ms),
    ];
    let valid = valid_addrs
        .iter()
        .map(|a| ValidAddress {
            address: a.to_string(),
            network: a.network().to_string(),
            version: a.version(),
            program: hex::encode(a.program()),
            script_pubkey: hex::encode(a.script_pubkey()),
        })
        .collect();
    let key = xonly(1).serialize();
    let with_version = |v: u8, program: &[u8]| {
        let mut d = vec![v];
        d.extend_from_slice(program);
        d
    };
    let main_p2k = valid_addrs[0].to_string();
    let test_p2k = valid_addrs[1].to_string();
    let mut bad_checksum = main_p2k.clone();
    let last = bad_checksum.pop().expect("non-empty");
    bad_checksum.push(if last == 'q' { 'p' } else { 'q' });
    let mut mixed = main_p2k.clone();
    mixed.replace_range(4..5, &mixed[4..5].to_uppercase());
    // 33 bytes = 264 bits = 53 five-bit groups with 1 padding bit; set that bit.
    let padded = {
        let hrp = Hrp::parse("stl").expect("hrp");
        let mut fes: Vec<Fe32> = with_version(0, &[0x42; 32])
            .into_iter()
            .bytes_to_fes()
            .collect();
        let last = fes.pop().expect("non-empty");
        fes.push(Fe32::try_from(last.to_u8() | 1).expect("5 bits"));
        fes.into_iter()
            .with_checksum::<Bech32m>(&hrp)
            .chars()
            .collect::<String>()
    };
    let inv = |description: &str, address: String, network: Option<Network>, error: &str| {
        InvalidAddress {
            description: description.into(),
            address,
            network: network.map(|n| n.to_string()),
            error: error.into(),
        }
    };
    let invalid = vec![
        inv(
            "test network address where a main network one is expected",
            test_p2k.clone(),
            Some(Network::Main),
            "WRONG_NETWORK",
        ),
        inv(
            "main network address where a dev network one is expected",
            main_p2k.clone(),
            Some(Network::Dev),
            "WRONG_NETWORK",
        ),
        inv(
            "unknown prefix bc",
            bech32m_of("bc", &with_version(1, &key)),
            None,
            "UNKNOWN_PREFIX",
        ),
        inv(
            "bech32 (not bech32m) checksum",
            bech32::encode::<Bech32>(Hrp::parse("stl").expect("hrp"), &with_version(1, &key))
                .expect("encodes"),
            None,
            "NOT_BECH32M",
        ),
        inv("last character changed", bad_checksum, None, "CHECKSUM"),
        inv("mixed case", mixed, None, "MALFORMED"),
        inv("no separator", "stlqqqqqq".into(), None, "MALFORMED"),
        inv(
            "invalid character b",
            format!("{}b", &main_p2k[..main_p2k.len() - 1]),
            None,
            "MALFORMED",
        ),
        inv(
            "no data: missing version",
            bech32m_of("stl", &[]),
            None,
            "MISSING_VERSION",
        ),
        inv(
            "reserved version 2",
            bech32m_of("stl", &with_version(2, &key)),
            None,
            "UNKNOWN_VERSION",
        ),
        inv(
            "version 17",
            bech32m_of("tstl", &with_version(17, &key)),
            None,
            "UNKNOWN_VERSION",
        ),
        inv(
            "pay-to-key with a 20-byte program",
            bech32m_of("stl", &with_version(1, &key[..20])),
            None,
            "PROGRAM_LENGTH",
        ),
        inv(
            "pay-to-script-hash with a 33-byte program",
            bech32m_of("dstl", &with_version(0, &[7; 33])),
            None,
            "PROGRAM_LENGTH",
        ),
        inv(
            "pay-to-key program that is not a curve point",
            bech32m_of("stl", &with_version(1, &invalid_xonly())),
            None,
            "INVALID_KEY",
        ),
        inv("non-zero padding bits", padded, None, "PADDING"),
    ];
    AddressVectors {
        comment: vec![
            "Addresses: bech32m(hrp, [version] ++ program) with hrp stl (main), tstl (test), dstl (dev). See spec/addresses.md.".into(),
            "invalid: error is the AddressError name; when network is given the address is parsed for that network.".into(),
        ],
        valid,
        invalid,
    }
}

fn write(name: &str, value: &impl serde::Serialize) {
    let path = vectors_dir().join(name);
    let mut text = serde_json::to_string_pretty(value).expect("serializes");
    text.push('\n');
    fs::write(&path, text).expect("writes the vector file");
    println!("wrote {}", path.display());
}

fn main() {
    let scripts = script_vectors();
    println!("{} script cases", scripts.cases.len());
    write("script_cases.json", &scripts);
    write("sighash.json", &sighash_vectors());
    write("addresses.json", &address_vectors());
}
