//! Opcode bytes. Numbering follows Bitcoin, but only the opcodes listed in
//! [`DEFINED`] (plus the data pushes) exist: every other byte is `BAD_OPCODE` wherever it
//! appears in a script, executed or not. See the opcode table in `spec/script.md`.

/// Pushes an empty element (also the number zero and "false").
pub const OP_0: u8 = 0x00;
/// Bytes `0x01..=0x4b` push that many following bytes.
pub const OP_PUSHBYTES_MAX: u8 = 0x4b;
/// The next byte is the length of the data that follows.
pub const OP_PUSHDATA1: u8 = 0x4c;
/// The next two bytes (little-endian) are the length of the data that follows.
pub const OP_PUSHDATA2: u8 = 0x4d;
/// Pushes the number -1.
pub const OP_1NEGATE: u8 = 0x4f;
/// Pushes the number 1; `OP_1 + (n - 1)` pushes `n` for `n` in 1..=16.
pub const OP_1: u8 = 0x51;
pub const OP_2: u8 = 0x52;
pub const OP_3: u8 = 0x53;
pub const OP_16: u8 = 0x60;

pub const OP_IF: u8 = 0x63;
pub const OP_NOTIF: u8 = 0x64;
pub const OP_ELSE: u8 = 0x67;
pub const OP_ENDIF: u8 = 0x68;
pub const OP_VERIFY: u8 = 0x69;
/// Fails the script when executed; an output script starting with it is a burn.
pub const OP_RETURN: u8 = settle_assets::OP_RETURN;

pub const OP_TOALTSTACK: u8 = 0x6b;
pub const OP_FROMALTSTACK: u8 = 0x6c;
pub const OP_2DROP: u8 = 0x6d;
pub const OP_2DUP: u8 = 0x6e;
pub const OP_3DUP: u8 = 0x6f;
pub const OP_2OVER: u8 = 0x70;
pub const OP_2SWAP: u8 = 0x72;
pub const OP_IFDUP: u8 = 0x73;
pub const OP_DEPTH: u8 = 0x74;
pub const OP_DROP: u8 = 0x75;
pub const OP_DUP: u8 = 0x76;
pub const OP_NIP: u8 = 0x77;
pub const OP_OVER: u8 = 0x78;
pub const OP_PICK: u8 = 0x79;
pub const OP_ROLL: u8 = 0x7a;
pub const OP_ROT: u8 = 0x7b;
pub const OP_SWAP: u8 = 0x7c;
pub const OP_TUCK: u8 = 0x7d;

pub const OP_SIZE: u8 = 0x82;
pub const OP_EQUAL: u8 = 0x87;
pub const OP_EQUALVERIFY: u8 = 0x88;

pub const OP_1ADD: u8 = 0x8b;
pub const OP_1SUB: u8 = 0x8c;
pub const OP_NEGATE: u8 = 0x8f;
pub const OP_ABS: u8 = 0x90;
pub const OP_NOT: u8 = 0x91;
pub const OP_0NOTEQUAL: u8 = 0x92;
pub const OP_ADD: u8 = 0x93;
pub const OP_SUB: u8 = 0x94;
pub const OP_BOOLAND: u8 = 0x9a;
pub const OP_BOOLOR: u8 = 0x9b;
pub const OP_NUMEQUAL: u8 = 0x9c;
pub const OP_NUMEQUALVERIFY: u8 = 0x9d;
pub const OP_NUMNOTEQUAL: u8 = 0x9e;
pub const OP_LESSTHAN: u8 = 0x9f;
pub const OP_GREATERTHAN: u8 = 0xa0;
pub const OP_LESSTHANOREQUAL: u8 = 0xa1;
pub const OP_GREATERTHANOREQUAL: u8 = 0xa2;
pub const OP_MIN: u8 = 0xa3;
pub const OP_MAX: u8 = 0xa4;
pub const OP_WITHIN: u8 = 0xa5;

pub const OP_SHA256: u8 = 0xa8;
pub const OP_HASH160: u8 = 0xa9;
pub const OP_HASH256: u8 = 0xaa;
pub const OP_CHECKSIG: u8 = 0xac;
pub const OP_CHECKSIGVERIFY: u8 = 0xad;
pub const OP_CHECKMULTISIG: u8 = 0xae;
pub const OP_CHECKMULTISIGVERIFY: u8 = 0xaf;
pub const OP_CHECKLOCKTIMEVERIFY: u8 = 0xb1;
pub const OP_CHECKSEQUENCEVERIFY: u8 = 0xb2;

/// Every defined opcode that is not a data push (`OP_0`, `0x01..=0x4b`, `OP_PUSHDATA1`,
/// `OP_PUSHDATA2`), with its name.
pub const DEFINED: &[(u8, &str)] = &[
    (OP_1NEGATE, "OP_1NEGATE"),
    (0x51, "OP_1"),
    (0x52, "OP_2"),
    (0x53, "OP_3"),
    (0x54, "OP_4"),
    (0x55, "OP_5"),
    (0x56, "OP_6"),
    (0x57, "OP_7"),
    (0x58, "OP_8"),
    (0x59, "OP_9"),
    (0x5a, "OP_10"),
    (0x5b, "OP_11"),
    (0x5c, "OP_12"),
    (0x5d, "OP_13"),
    (0x5e, "OP_14"),
    (0x5f, "OP_15"),
    (0x60, "OP_16"),
    (OP_IF, "OP_IF"),
    (OP_NOTIF, "OP_NOTIF"),
    (OP_ELSE, "OP_ELSE"),
    (OP_ENDIF, "OP_ENDIF"),
    (OP_VERIFY, "OP_VERIFY"),
    (OP_RETURN, "OP_RETURN"),
    (OP_TOALTSTACK, "OP_TOALTSTACK"),
    (OP_FROMALTSTACK, "OP_FROMALTSTACK"),
    (OP_2DROP, "OP_2DROP"),
    (OP_2DUP, "OP_2DUP"),
    (OP_3DUP, "OP_3DUP"),
    (OP_2OVER, "OP_2OVER"),
    (OP_2SWAP, "OP_2SWAP"),
    (OP_IFDUP, "OP_IFDUP"),
    (OP_DEPTH, "OP_DEPTH"),
    (OP_DROP, "OP_DROP"),
    (OP_DUP, "OP_DUP"),
    (OP_NIP, "OP_NIP"),
    (OP_OVER, "OP_OVER"),
    (OP_PICK, "OP_PICK"),
    (OP_ROLL, "OP_ROLL"),
    (OP_ROT, "OP_ROT"),
    (OP_SWAP, "OP_SWAP"),
    (OP_TUCK, "OP_TUCK"),
    (OP_SIZE, "OP_SIZE"),
    (OP_EQUAL, "OP_EQUAL"),
    (OP_EQUALVERIFY, "OP_EQUALVERIFY"),
    (OP_1ADD, "OP_1ADD"),
    (OP_1SUB, "OP_1SUB"),
    (OP_NEGATE, "OP_NEGATE"),
    (OP_ABS, "OP_ABS"),
    (OP_NOT, "OP_NOT"),
    (OP_0NOTEQUAL, "OP_0NOTEQUAL"),
    (OP_ADD, "OP_ADD"),
    (OP_SUB, "OP_SUB"),
    (OP_BOOLAND, "OP_BOOLAND"),
    (OP_BOOLOR, "OP_BOOLOR"),
    (OP_NUMEQUAL, "OP_NUMEQUAL"),
    (OP_NUMEQUALVERIFY, "OP_NUMEQUALVERIFY"),
    (OP_NUMNOTEQUAL, "OP_NUMNOTEQUAL"),
    (OP_LESSTHAN, "OP_LESSTHAN"),
    (OP_GREATERTHAN, "OP_GREATERTHAN"),
    (OP_LESSTHANOREQUAL, "OP_LESSTHANOREQUAL"),
    (OP_GREATERTHANOREQUAL, "OP_GREATERTHANOREQUAL"),
    (OP_MIN, "OP_MIN"),
    (OP_MAX, "OP_MAX"),
    (OP_WITHIN, "OP_WITHIN"),
    (OP_SHA256, "OP_SHA256"),
    (OP_HASH160, "OP_HASH160"),
    (OP_HASH256, "OP_HASH256"),
    (OP_CHECKSIG, "OP_CHECKSIG"),
    (OP_CHECKSIGVERIFY, "OP_CHECKSIGVERIFY"),
    (OP_CHECKMULTISIG, "OP_CHECKMULTISIG"),
    (OP_CHECKMULTISIGVERIFY, "OP_CHECKMULTISIGVERIFY"),
    (OP_CHECKLOCKTIMEVERIFY, "OP_CHECKLOCKTIMEVERIFY"),
    (OP_CHECKSEQUENCEVERIFY, "OP_CHECKSEQUENCEVERIFY"),
];

/// Whether `op` is defined: a data push or one of [`DEFINED`].
pub const fn is_defined(op: u8) -> bool {
    DEFINED_TABLE[op as usize]
}

const DEFINED_TABLE: [bool; 256] = {
    let mut table = [false; 256];
    let mut op = 0;
    while op <= OP_PUSHDATA2 as usize {
        table[op] = true;
        op += 1;
    }
    let mut i = 0;
    while i < DEFINED.len() {
        table[DEFINED[i].0 as usize] = true;
        i += 1;
    }
    table
};

/// The name of a non-push opcode (`OP_0`, `OP_PUSHDATA1` and `OP_PUSHDATA2` included),
/// or `None` for direct pushes and undefined bytes.
pub fn name(op: u8) -> Option<&'static str> {
    match op {
        OP_0 => Some("OP_0"),
        OP_PUSHDATA1 => Some("OP_PUSHDATA1"),
        OP_PUSHDATA2 => Some("OP_PUSHDATA2"),
        _ => DEFINED.iter().find(|(b, _)| *b == op).map(|(_, n)| *n),
    }
}

/// The opcode named `name`, with or without the `OP_` prefix, case-insensitive.
/// `OP_FALSE`/`OP_TRUE` are accepted for `OP_0`/`OP_1`, and `OP_CLTV`/`OP_CSV` for the
/// lock time opcodes.
pub fn from_name(name: &str) -> Option<u8> {
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("OP_").unwrap_or(&upper);
    match bare {
        "0" | "FALSE" => return Some(OP_0),
        "TRUE" => return Some(OP_1),
        "PUSHDATA1" => return Some(OP_PUSHDATA1),
        "PUSHDATA2" => return Some(OP_PUSHDATA2),
        "CLTV" => return Some(OP_CHECKLOCKTIMEVERIFY),
        "CSV" => return Some(OP_CHECKSEQUENCEVERIFY),
        _ => {}
    }
    DEFINED
        .iter()
        .find(|(_, n)| n.strip_prefix("OP_") == Some(bare))
        .map(|(b, _)| *b)
}

/// The opcode that pushes the small number `n` (-1 and 0..=16), if there is one.
#[allow(clippy::cast_possible_truncation)] // n is in 1..=16 where it is cast
pub const fn small_int_opcode(n: i64) -> Option<u8> {
    match n {
        -1 => Some(OP_1NEGATE),
        0 => Some(OP_0),
        1..=16 => Some(OP_1 + (n as u8) - 1),
        _ => None,
    }
}

/// The small number pushed by `op`, if it is `OP_1NEGATE` or `OP_1..=OP_16`.
pub const fn small_int_value(op: u8) -> Option<i64> {
    match op {
        OP_1NEGATE => Some(-1),
        OP_1..=OP_16 => Some((op - OP_1) as i64 + 1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_the_listed_opcodes_are_defined() {
        let defined: Vec<u8> = (0..=255u8).filter(|op| is_defined(*op)).collect();
        // 78 pushes (0x00..=0x4d), then the table.
        assert_eq!(defined.len(), 78 + DEFINED.len());
        for bad in [
            0x4e, 0x50, 0x61, 0x62, 0x65, 0x66, 0x71, 0x7e, 0x95, 0xab, 0xb0, 0xb3, 0xff,
        ] {
            assert!(!is_defined(bad), "{bad:#x} must be undefined");
        }
    }

    #[test]
    fn names_round_trip() {
        for (op, n) in DEFINED {
            assert_eq!(name(*op), Some(*n));
            assert_eq!(from_name(n), Some(*op));
            assert_eq!(from_name(&n[3..].to_ascii_lowercase()), Some(*op));
        }
        assert_eq!(from_name("OP_CAT"), None);
        assert_eq!(from_name("OP_CSV"), Some(OP_CHECKSEQUENCEVERIFY));
    }

    #[test]
    fn small_ints() {
        for n in -1..=16 {
            let op = small_int_opcode(n).expect("small");
            if n == 0 {
                assert_eq!(op, OP_0);
            } else {
                assert_eq!(small_int_value(op), Some(n));
            }
        }
        assert_eq!(small_int_opcode(17), None);
        assert_eq!(small_int_opcode(-2), None);
    }
}
