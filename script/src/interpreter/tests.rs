//! Unit tests of the interpreter, one family of opcodes at a time, and of every limit.
//! Signatures are checked by a stand-in checker here (a signature is "valid" when its
//! first 32 bytes equal the key) so the interpreter's own rules are tested apart from
//! the cryptography; `tests/` runs the same rules with real BIP340 signatures.

use super::*;
use crate::asm::assemble;
use crate::verify::{check_clean_stack, check_lock_time, check_sequence};
use ScriptError as E;

/// Lock time fields of the pretend transaction, and the stand-in signature rule.
struct FakeTx {
    lock_time: u32,
    sequence: u32,
    checked: usize,
}

impl Checker for FakeTx {
    fn check_signature(
        &mut self,
        signature: &[u8; SIG_BYTES],
        _: SighashType,
        key: &[u8; KEY_BYTES],
    ) -> Result<(), ScriptError> {
        self.checked += 1;
        if key == &[0xee; 32] {
            return Err(E::PubkeyType);
        }
        if signature[..32] == key[..] {
            Ok(())
        } else {
            Err(E::SigInvalid)
        }
    }
    fn check_lock_time(&self, lock_time: i64) -> Result<(), ScriptError> {
        check_lock_time(self.lock_time, self.sequence, lock_time)
    }
    fn check_sequence(&self, sequence: i64) -> Result<(), ScriptError> {
        check_sequence(self.sequence, sequence)
    }
}

fn fake() -> FakeTx {
    FakeTx {
        lock_time: 1_000,
        sequence: 10,
        checked: 0,
    }
}

/// Runs `asm` on an initial stack and returns the final stack.
fn run_with(asm: &str, initial: &[&[u8]]) -> Result<Stack, ScriptError> {
    let script = assemble(asm).expect("test script assembles");
    let mut stack: Stack = initial.iter().map(|i| i.to_vec()).collect();
    execute(&script, &mut stack, &mut fake())?;
    Ok(stack)
}

fn run(asm: &str) -> Result<Stack, ScriptError> {
    run_with(asm, &[])
}

/// Runs `asm` and applies the clean-stack rule, as a spend does.
fn eval(asm: &str) -> Result<(), ScriptError> {
    check_clean_stack(&run(asm)?)
}

fn stack_of(items: &[&[u8]]) -> Stack {
    items.iter().map(|i| i.to_vec()).collect()
}

fn hexs(h: &str) -> Vec<u8> {
    hex::decode(h).expect("hex")
}

#[test]
fn pushes_and_small_numbers() {
    assert_eq!(
        run("0 -1 1 16 <aabb> 17").expect("runs"),
        stack_of(&[&[], &[0x81], &[1], &[16], &[0xaa, 0xbb], &[17]])
    );
    let big = format!("<{}>", "11".repeat(300));
    assert_eq!(run(&big).expect("runs")[0].len(), 300);
}

#[test]
fn pushes_must_be_minimal_even_when_not_executed() {
    assert_eq!(run("<05>"), Err(E::MinimalData));
    assert_eq!(run("<81>"), Err(E::MinimalData));
    assert_eq!(run("0x4c0105"), Err(E::MinimalData));
    assert_eq!(run("0x4c01aa"), Err(E::MinimalData), "PUSHDATA1 for 1 byte");
    assert_eq!(run("0x4c00"), Err(E::MinimalData), "PUSHDATA1 for nothing");
    assert_eq!(run("0x4d0100aa"), Err(E::MinimalData));
    assert_eq!(run("0 IF <05> ENDIF 1"), Err(E::MinimalData));
    assert_eq!(run("<10>"), Err(E::MinimalData), "0x10 is OP_16");
    assert_eq!(
        run("<00> <11>").map(|s| s.len()),
        Ok(2),
        "0x00 and 0x11 have no small opcode"
    );
}

#[test]
fn push_size_limit() {
    let ok = format!("<{}>", "00".repeat(MAX_ELEMENT_BYTES));
    assert!(run(&ok).is_ok());
    let too_big = format!("<{}>", "00".repeat(MAX_ELEMENT_BYTES + 1));
    assert_eq!(run(&too_big), Err(E::PushSize));
    assert_eq!(run(&format!("0 IF {too_big} ENDIF")), Err(E::PushSize));
    let item = vec![0u8; MAX_ELEMENT_BYTES + 1];
    assert_eq!(
        run_with("1", &[&item]),
        Err(E::PushSize),
        "initial stack item"
    );
}

#[test]
fn undefined_opcodes_fail_even_when_not_executed() {
    for bad in [
        0x4e, 0x50, 0x61, 0x62, 0x65, 0x66, 0x71, 0x7e, 0x89, 0x95, 0xa6, 0xab, 0xb0, 0xb3, 0xff,
    ] {
        assert_eq!(
            run(&format!("1 0x{bad:02x}")),
            Err(E::BadOpcode),
            "{bad:#x}"
        );
        assert_eq!(
            run(&format!("0 IF 0x{bad:02x} ENDIF")),
            Err(E::BadOpcode),
            "{bad:#x}"
        );
    }
    assert_eq!(run("0x02aa"), Err(E::BadOpcode), "truncated push");
    assert_eq!(run("0x4d01"), Err(E::BadOpcode), "truncated length");
    // Errors come in script order: a failing VERIFY before the bad byte wins.
    assert_eq!(run("0 VERIFY 0xff"), Err(E::Verify));
}

#[test]
fn conditionals() {
    assert_eq!(run("1 IF 2 ELSE 3 ENDIF").expect("runs"), stack_of(&[&[2]]));
    assert_eq!(run("0 IF 2 ELSE 3 ENDIF").expect("runs"), stack_of(&[&[3]]));
    assert_eq!(
        run("0 NOTIF 2 ELSE 3 ENDIF").expect("runs"),
        stack_of(&[&[2]])
    );
    assert_eq!(
        run("1 IF 0 IF 2 ELSE 3 ENDIF ENDIF").expect("runs"),
        stack_of(&[&[3]])
    );
    assert_eq!(
        run("0 IF 1 IF 2 ELSE 3 ENDIF ELSE 4 ENDIF").expect("runs"),
        stack_of(&[&[4]])
    );
    // Repeated ELSE toggles the branch.
    assert_eq!(
        run("1 IF 2 ELSE 3 ELSE 4 ENDIF").expect("runs"),
        stack_of(&[&[2], &[4]])
    );
    // Unexecuted branches do not pop their argument.
    assert_eq!(run("0 IF IF 5 ENDIF ENDIF").expect("runs"), stack_of(&[]));
    // RETURN in an unexecuted branch is harmless.
    assert_eq!(eval("0 IF RETURN ENDIF 1"), Ok(()));
}

#[test]
fn conditional_arguments_must_be_minimal() {
    assert_eq!(run("2 IF 1 ENDIF"), Err(E::MinimalIf));
    assert_eq!(run("<00> IF 1 ENDIF"), Err(E::MinimalIf));
    assert_eq!(run("<0100> NOTIF 1 ENDIF"), Err(E::MinimalIf));
    assert_eq!(run("-1 IF 1 ENDIF"), Err(E::MinimalIf));
}

#[test]
fn unbalanced_conditionals() {
    assert_eq!(run("1 ELSE"), Err(E::UnbalancedConditional));
    assert_eq!(run("1 ENDIF"), Err(E::UnbalancedConditional));
    assert_eq!(run("1 IF 1"), Err(E::UnbalancedConditional));
    assert_eq!(
        run("IF 1 ENDIF"),
        Err(E::UnbalancedConditional),
        "IF on an empty stack"
    );
    assert_eq!(run("1 IF ENDIF ENDIF"), Err(E::UnbalancedConditional));
}

#[test]
fn clean_stack_rule() {
    assert_eq!(eval("1"), Ok(()));
    assert_eq!(eval("1 1"), Err(E::Cleanstack));
    assert_eq!(eval(""), Err(E::Cleanstack), "nothing left");
    assert_eq!(eval("0"), Err(E::EvalFalse));
    assert_eq!(eval("<0080>"), Err(E::EvalFalse), "negative zero");
    // The alt stack does not count for the clean-stack rule.
    assert_eq!(eval("1 1 TOALTSTACK"), Ok(()));
}

#[test]
fn verify_and_return() {
    assert_eq!(run("1 VERIFY").expect("runs"), stack_of(&[]));
    assert_eq!(run("0 VERIFY"), Err(E::Verify));
    assert_eq!(
        run("<0080> VERIFY"),
        Err(E::Verify),
        "negative zero is false"
    );
    assert_eq!(run("VERIFY"), Err(E::InvalidStackOperation));
    assert_eq!(run("1 RETURN"), Err(E::OpReturn));
    assert_eq!(run("RETURN"), Err(E::OpReturn));
}

#[test]
fn stack_operations() {
    let cases: &[(&str, &[&[u8]])] = &[
        ("1 2 TOALTSTACK 3 FROMALTSTACK", &[&[1], &[3], &[2]]),
        ("1 2 3 2DROP", &[&[1]]),
        ("1 2 2DUP", &[&[1], &[2], &[1], &[2]]),
        ("1 2 3 3DUP", &[&[1], &[2], &[3], &[1], &[2], &[3]]),
        ("1 2 3 4 2OVER", &[&[1], &[2], &[3], &[4], &[1], &[2]]),
        ("1 2 3 4 2SWAP", &[&[3], &[4], &[1], &[2]]),
        ("1 IFDUP", &[&[1], &[1]]),
        ("0 IFDUP", &[&[]]),
        ("1 2 DEPTH", &[&[1], &[2], &[2]]),
        ("DEPTH", &[&[]]),
        ("1 2 DROP", &[&[1]]),
        ("1 DUP", &[&[1], &[1]]),
        ("1 2 NIP", &[&[2]]),
        ("1 2 OVER", &[&[1], &[2], &[1]]),
        ("1 2 3 2 PICK", &[&[1], &[2], &[3], &[1]]),
        ("1 2 3 0 PICK", &[&[1], &[2], &[3], &[3]]),
        ("1 2 3 2 ROLL", &[&[2], &[3], &[1]]),
        ("1 2 3 0 ROLL", &[&[1], &[2], &[3]]),
        ("1 2 3 ROT", &[&[2], &[3], &[1]]),
        ("1 2 SWAP", &[&[2], &[1]]),
        ("1 2 TUCK", &[&[2], &[1], &[2]]),
    ];
    for (asm, want) in cases {
        assert_eq!(run(asm).expect(asm), stack_of(want), "{asm}");
    }
}

#[test]
fn stack_operations_need_their_operands() {
    for asm in [
        "TOALTSTACK",
        "1 2DROP",
        "1 2DUP",
        "1 2 3DUP",
        "1 2 3 2OVER",
        "1 2 3 2SWAP",
        "IFDUP",
        "DROP",
        "DUP",
        "1 NIP",
        "1 OVER",
        "1 PICK",
        "1 ROLL",
        "1 2 ROT",
        "1 SWAP",
        "1 TUCK",
        "SIZE",
        "1 EQUAL",
        "1 EQUALVERIFY",
        "1ADD",
        "1 ADD",
        "1 2 WITHIN",
        "SHA256",
        "HASH160",
        "HASH256",
        "1 CHECKSIG",
        "CHECKLOCKTIMEVERIFY",
        "CHECKSEQUENCEVERIFY",
        "1 1 1 CHECKMULTISIG",
        "0 PICK",
        "1 2 2 PICK",
        "1 2 -1 PICK",
        "1 2 2 ROLL",
    ] {
        assert_eq!(run(asm), Err(E::InvalidStackOperation), "{asm}");
    }
    assert_eq!(run("FROMALTSTACK"), Err(E::InvalidAltstackOperation));
    assert_eq!(
        run("1 TOALTSTACK FROMALTSTACK FROMALTSTACK"),
        Err(E::InvalidAltstackOperation)
    );
}

#[test]
fn size_and_equality() {
    assert_eq!(run("<aabbcc> SIZE").expect("runs")[1], vec![3]);
    assert_eq!(run("0 SIZE").expect("runs")[1], Vec::<u8>::new());
    assert_eq!(run("<aa> <aa> EQUAL").expect("runs"), stack_of(&[&[1]]));
    assert_eq!(run("<aa> <ab> EQUAL").expect("runs"), stack_of(&[&[]]));
    assert_eq!(run("<aa> <aa> EQUALVERIFY").expect("runs"), stack_of(&[]));
    assert_eq!(run("<aa> <ab> EQUALVERIFY"), Err(E::EqualVerify));
    // EQUAL compares bytes, not numbers.
    assert_eq!(run("0 <00> EQUAL").expect("runs"), stack_of(&[&[]]));
}

#[test]
fn arithmetic() {
    let cases: &[(&str, i64)] = &[
        ("5 1ADD", 6),
        ("5 1SUB", 4),
        ("5 NEGATE", -5),
        ("-1 ABS", 1),
        ("0 NOT", 1),
        ("7 NOT", 0),
        ("7 0NOTEQUAL", 1),
        ("0 0NOTEQUAL", 0),
        ("2 3 ADD", 5),
        ("2 3 SUB", -1),
        ("1 0 BOOLAND", 0),
        ("1 7 BOOLAND", 1),
        ("0 7 BOOLOR", 1),
        ("0 0 BOOLOR", 0),
        ("4 4 NUMEQUAL", 1),
        ("4 5 NUMEQUAL", 0),
        ("4 5 NUMNOTEQUAL", 1),
        ("4 5 LESSTHAN", 1),
        ("5 5 LESSTHAN", 0),
        ("5 4 GREATERTHAN", 1),
        ("5 5 LESSTHANOREQUAL", 1),
        ("4 5 GREATERTHANOREQUAL", 0),
        ("4 9 MIN", 4),
        ("4 9 MAX", 9),
        ("3 3 5 WITHIN", 1),
        ("5 3 5 WITHIN", 0),
        ("2 3 5 WITHIN", 0),
        ("-1000 -1 1ADD 1ADD ADD", -999),
        ("2147483647 2147483647 ADD", 4_294_967_294),
    ];
    for (asm, want) in cases {
        let stack = run(asm).expect(asm);
        assert_eq!(stack, vec![num::encode(*want)], "{asm}");
    }
    assert_eq!(run("4 4 NUMEQUALVERIFY").expect("runs"), stack_of(&[]));
    assert_eq!(run("4 5 NUMEQUALVERIFY"), Err(E::NumEqualVerify));
}

#[test]
fn number_operands_are_bounded_and_minimal() {
    assert_eq!(run("<0000008000> 1ADD"), Err(E::NumberOverflow));
    assert_eq!(
        run("2147483647 2147483647 ADD 1ADD"),
        Err(E::NumberOverflow),
        "5-byte result reused"
    );
    assert_eq!(run("<0100> 1ADD"), Err(E::MinimalData));
    assert_eq!(run("1 <0100> ADD"), Err(E::MinimalData));
    assert_eq!(run("1 2 <0080> PICK"), Err(E::MinimalData));
    assert_eq!(
        run("<ffffff7f> 1ADD").expect("runs"),
        vec![hexs("0000008000")]
    );
}

#[test]
fn hashes() {
    assert_eq!(
        run("0 SHA256").expect("runs")[0],
        hexs("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    );
    assert_eq!(
        run("<616263> SHA256").expect("runs")[0],
        hexs("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    );
    assert_eq!(
        run("0 HASH160").expect("runs")[0],
        hexs("b472a266d0bd89c13706a4132ccfb16f7c3b9fcb")
    );
    assert_eq!(
        run("0 HASH256").expect("runs")[0],
        hexs("5df6e0e2761359d30a8275058e299fcc0381534545f55cf43e41983f5d4c9456")
    );
}

fn key_hex(b: u8) -> String {
    hex::encode([b; 32])
}

/// A stand-in signature for key `[b; 32]`, with an optional hash type byte.
fn sig_hex(b: u8, hash_type: Option<u8>) -> String {
    let mut s = hex::encode([b; 64]);
    if let Some(t) = hash_type {
        s.push_str(&format!("{t:02x}"));
    }
    s
}

#[test]
fn checksig_rules() {
    let k = key_hex(7);
    let good = sig_hex(7, None);
    assert_eq!(eval(&format!("<{good}> <{k}> CHECKSIG")), Ok(()));
    for t in [0x02, 0x03, 0x81, 0x82, 0x83] {
        assert_eq!(
            eval(&format!("<{}> <{k}> CHECKSIG", sig_hex(7, Some(t)))),
            Ok(())
        );
    }
    assert_eq!(
        eval(&format!("0 <{k}> CHECKSIG")),
        Err(E::EvalFalse),
        "empty signature is false"
    );
    assert_eq!(eval(&format!("0 <{k}> CHECKSIG NOT")), Ok(()));
    assert_eq!(
        run(&format!("<{}> <{k}> CHECKSIG", sig_hex(8, None))),
        Err(E::SigInvalid)
    );
    assert_eq!(
        run(&format!("<{}> <{k}> CHECKSIG", &good[..126])),
        Err(E::SigSize)
    );
    assert_eq!(
        run(&format!("<{good}0000> <{k}> CHECKSIG")),
        Err(E::SigSize)
    );
    assert_eq!(
        run(&format!("<{}> <{k}> CHECKSIG", sig_hex(7, Some(0x01)))),
        Err(E::SigHashtype)
    );
    for t in [0x00, 0x04, 0x80, 0x84, 0xff] {
        assert_eq!(
            run(&format!("<{}> <{k}> CHECKSIG", sig_hex(7, Some(t)))),
            Err(E::SigHashtype)
        );
    }
    assert_eq!(
        run(&format!("<{good}> <{}> CHECKSIG", &k[..62])),
        Err(E::PubkeyType)
    );
    assert_eq!(
        run(&format!("0 <{}00> CHECKSIG", k)),
        Err(E::PubkeyType),
        "checked even if empty"
    );
    assert_eq!(
        run(&format!(
            "<{}> <{}> CHECKSIG",
            sig_hex(0xee, None),
            key_hex(0xee)
        )),
        Err(E::PubkeyType)
    );
    assert_eq!(eval(&format!("<{good}> <{k}> CHECKSIGVERIFY 1")), Ok(()));
    assert_eq!(
        run(&format!("0 <{k}> CHECKSIGVERIFY")),
        Err(E::CheckSigVerify)
    );
    assert_eq!(
        run(&format!("<{}> <{k}> CHECKSIGVERIFY", sig_hex(8, None))),
        Err(E::SigInvalid)
    );
}

fn multisig(m: i64, keys: &[u8], slots: &[Option<u8>]) -> String {
    let slots: Vec<String> = slots
        .iter()
        .map(|s| s.map_or("0".to_string(), |b| format!("<{}>", sig_hex(b, None))))
        .collect();
    let keys: Vec<String> = keys.iter().map(|b| format!("<{}>", key_hex(*b))).collect();
    format!(
        "{} {m} {} {} CHECKMULTISIG",
        slots.join(" "),
        keys.join(" "),
        keys.len()
    )
}

#[test]
fn multisig_rules() {
    let keys = [1, 2, 3];
    assert_eq!(eval(&multisig(2, &keys, &[Some(1), None, Some(3)])), Ok(()));
    assert_eq!(
        eval(&multisig(2, &keys, &[Some(1), Some(2), Some(3)])),
        Ok(())
    );
    assert_eq!(
        eval(&multisig(2, &keys, &[None, None, Some(3)])),
        Err(E::EvalFalse)
    );
    assert_eq!(
        eval(&multisig(2, &keys, &[None, None, None])),
        Err(E::EvalFalse)
    );
    // Slot i belongs to key i: key 1's signature in slot 2 is invalid there.
    assert_eq!(
        run(&multisig(2, &keys, &[None, Some(1), Some(3)])),
        Err(E::SigInvalid)
    );
    assert_eq!(
        run(&multisig(1, &keys, &[Some(1), Some(9), None])),
        Err(E::SigInvalid)
    );
    // Exactly n slots are taken: with one missing, the stack runs short.
    assert_eq!(run("1 <aa> 1 CHECKMULTISIG"), Err(E::InvalidStackOperation));
    let two_slots = format!(
        "0 <{}> 1 <{}> <{}> 2 CHECKMULTISIG",
        sig_hex(2, None),
        key_hex(1),
        key_hex(2)
    );
    assert_eq!(eval(&two_slots), Ok(()));
    assert_eq!(
        run(&multisig(0, &keys, &[None, None, None])),
        Err(E::SigCount)
    );
    assert_eq!(
        run(&multisig(4, &keys, &[None, None, None])),
        Err(E::SigCount)
    );
    assert_eq!(run("0 0 0 CHECKMULTISIG"), Err(E::PubkeyCount));
    assert_eq!(run("0 -1 CHECKMULTISIG"), Err(E::PubkeyCount));
    assert_eq!(
        run(&format!(
            "{} 1 {} 21 CHECKMULTISIG",
            "0 ".repeat(21),
            "<aa> ".repeat(21)
        )),
        Err(E::PubkeyCount)
    );
    let bad_key = format!("0 1 <{}> <{}00> 2 CHECKMULTISIG", key_hex(1), key_hex(2));
    assert_eq!(run(&format!("0 {bad_key}")), Err(E::PubkeyType));
    let verify =
        multisig(2, &keys, &[Some(1), None, None]).replace("CHECKMULTISIG", "CHECKMULTISIGVERIFY");
    assert_eq!(run(&verify), Err(E::CheckMultiSigVerify));
    let verify = multisig(1, &keys, &[Some(1), None, None])
        .replace("CHECKMULTISIG", "CHECKMULTISIGVERIFY 1");
    assert_eq!(eval(&verify), Ok(()));
}

#[test]
fn multisig_checks_every_non_empty_signature() {
    let script = assemble(&multisig(1, &[1, 2, 3], &[Some(1), Some(2), Some(3)])).expect("asm");
    let mut checker = fake();
    let mut stack = Stack::new();
    execute(&script, &mut stack, &mut checker).expect("valid");
    assert_eq!(checker.checked, 3);
}

#[test]
fn lock_time_opcodes() {
    // The pretend transaction has lock time 1000 and sequence 10.
    assert_eq!(
        run("1000 CHECKLOCKTIMEVERIFY").expect("runs"),
        vec![num::encode(1000)],
        "does not pop"
    );
    assert_eq!(eval("999 CHECKLOCKTIMEVERIFY DROP 1"), Ok(()));
    assert_eq!(run("1001 CHECKLOCKTIMEVERIFY"), Err(E::UnsatisfiedLocktime));
    assert_eq!(
        run("500000000 CHECKLOCKTIMEVERIFY"),
        Err(E::UnsatisfiedLocktime)
    );
    assert_eq!(run("-1 CHECKLOCKTIMEVERIFY"), Err(E::NegativeLocktime));
    assert_eq!(run("<0000000000> CHECKLOCKTIMEVERIFY"), Err(E::MinimalData));
    assert_eq!(
        run("<000000000001> CHECKLOCKTIMEVERIFY"),
        Err(E::NumberOverflow)
    );
    assert_eq!(
        run("<ffffffff00> CHECKLOCKTIMEVERIFY"),
        Err(E::UnsatisfiedLocktime),
        "5 bytes decode"
    );
    assert_eq!(run("10 CHECKSEQUENCEVERIFY").map(|s| s.len()), Ok(1));
    assert_eq!(run("11 CHECKSEQUENCEVERIFY"), Err(E::UnsatisfiedLocktime));
    assert_eq!(run("-1 CHECKSEQUENCEVERIFY"), Err(E::NegativeLocktime));
    assert_eq!(
        run("<ffffffff> CHECKSEQUENCEVERIFY"),
        Err(E::NegativeLocktime)
    );
    assert_eq!(
        run("<00000080> CHECKSEQUENCEVERIFY"),
        Err(E::MinimalData),
        "negative zero"
    );
    // The disable flag makes CHECKSEQUENCEVERIFY pass whatever the sequence.
    assert_eq!(
        run("<0000008000> CHECKSEQUENCEVERIFY").map(|s| s.len()),
        Ok(1)
    );
}

#[test]
fn script_size_limit() {
    // OP_1, 19 pushes of 520 bytes each dropped, one 41-byte push dropped: 10,000 bytes.
    let big = format!("<{}> DROP ", "00".repeat(520)).repeat(19);
    let exact = format!("1 {big} <{}> DROP", "00".repeat(41));
    assert_eq!(assemble(&exact).expect("asm").len(), MAX_SCRIPT_BYTES);
    assert_eq!(eval(&exact), Ok(()));
    let over = format!("1 {big} <{}> DROP", "00".repeat(42));
    assert_eq!(eval(&over), Err(E::ScriptSize));
}

#[test]
fn stack_size_limit() {
    let full = "1 ".repeat(MAX_STACK_ITEMS);
    assert_eq!(run(&full).map(|s| s.len()), Ok(MAX_STACK_ITEMS));
    assert_eq!(run(&format!("{full} 1")), Err(E::StackSize));
    // The alt stack counts too.
    assert_eq!(run(&format!("{full} TOALTSTACK 1 1")), Err(E::StackSize));
    let items = vec![vec![1u8]; MAX_STACK_ITEMS + 1];
    let mut stack = items.clone();
    assert_eq!(
        execute(&[], &mut stack, &mut fake()),
        Err(E::StackSize),
        "initial stack"
    );
}

#[test]
fn op_count_limit() {
    let ok = format!("1 {} DUP", "DUP DROP ".repeat(100));
    assert_eq!(run(&ok).map(|s| s.len()), Ok(2));
    let over = format!("1 {} DUP DROP", "DUP DROP ".repeat(100));
    assert_eq!(run(&over), Err(E::OpCount));
    // Unexecuted opcodes count; pushes and small numbers do not.
    let unexecuted = format!("0 IF {} ENDIF 1", "DUP ".repeat(200));
    assert_eq!(run(&unexecuted), Err(E::OpCount));
    let pushes = format!("{} 1", "16 DROP ".repeat(201));
    assert_eq!(
        run(&pushes).map(|s| s.len()),
        Ok(1),
        "201 DROPs; the pushes are free"
    );
    let pushes = format!("{} 1", "16 DROP ".repeat(202));
    assert_eq!(run(&pushes), Err(E::OpCount));
}

#[test]
fn multisig_keys_count_as_operations() {
    let keys: String = (0..20).map(|_| format!("<{}> ", key_hex(1))).collect();
    let slots = "0 ".repeat(20);
    let base = format!("{slots} 1 {keys} 20 CHECKMULTISIG");
    // 1 (CHECKMULTISIG) + 20 keys = 21 operations; 180 more fit, 181 do not.
    let fits = format!("{} {base}", "1 DROP ".repeat(180));
    assert_eq!(run(&fits).map(|s| s.len()), Ok(1));
    let over = format!("{} {base}", "1 DROP ".repeat(181));
    assert_eq!(run(&over), Err(E::OpCount));
}
