//! A human text form of scripts, used by the test vectors and tools.
//!
//! Tokens, separated by whitespace:
//! - an opcode name, with or without `OP_` (`OP_CHECKSIG`, `checksig`);
//! - a decimal number: -1..=16 become `OP_1NEGATE`/`OP_0`/`OP_1..OP_16`, other numbers
//!   the shortest push of their script number encoding;
//! - `<hex>`: a push of exactly those bytes using the opcode their length calls for
//!   (`OP_0` for `<>`, a direct push up to 75 bytes, then `OP_PUSHDATA1`/`2`). It never
//!   turns into a small-number opcode, so `<05>` is a (non-minimal) direct push;
//! - `0x<hex>`: raw bytes copied into the script as they are, for malformed scripts.
//!
//! [`disassemble`] writes that form back: pushes as `<hex>` when their opcode is the one
//! the length calls for, and anything else (non-canonical pushes, undefined bytes, a
//! truncated push) as `0x<hex>`, so `assemble(disassemble(s)) == s` for every script.

use crate::instruction::{Instruction, Instructions, push_opcode_for_len};
use crate::num;
use crate::opcodes;

/// Why a text script did not assemble.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsmError {
    #[error("unknown opcode {0:?}")]
    UnknownOpcode(String),
    #[error("invalid hex in {0:?}")]
    BadHex(String),
    #[error("number {0:?} is out of range")]
    BadNumber(String),
    #[error("push of {0} bytes is longer than any push opcode allows")]
    TooLong(usize),
}

/// Parses the text form into script bytes.
pub fn assemble(text: &str) -> Result<Vec<u8>, AsmError> {
    let mut out = Vec::new();
    for token in text.split_whitespace() {
        let shown = || token.chars().take(80).collect::<String>();
        if let Some(inner) = token.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
            let data = hex::decode(inner).map_err(|_| AsmError::BadHex(shown()))?;
            push_by_length(&mut out, &data)?;
        } else if let Some(raw) = token.strip_prefix("0x") {
            out.extend(hex::decode(raw).map_err(|_| AsmError::BadHex(shown()))?);
        } else if let Some(op) = opcodes::from_name(token) {
            // Names first: "1ADD" and "2DROP" are opcodes, "1" is OP_1 either way.
            out.push(op);
        } else if token.starts_with(|c: char| c.is_ascii_digit() || c == '-') {
            let n: i64 = token.parse().map_err(|_| AsmError::BadNumber(shown()))?;
            if n.unsigned_abs() > u64::from(u32::MAX) {
                return Err(AsmError::BadNumber(shown()));
            }
            match opcodes::small_int_opcode(n) {
                Some(op) => out.push(op),
                None => push_by_length(&mut out, &num::encode(n))?,
            }
        } else {
            return Err(AsmError::UnknownOpcode(shown()));
        }
    }
    Ok(out)
}

fn push_by_length(out: &mut Vec<u8>, data: &[u8]) -> Result<(), AsmError> {
    let op = push_opcode_for_len(data.len()).ok_or(AsmError::TooLong(data.len()))?;
    out.push(op);
    let len = data.len() as u64;
    match op {
        opcodes::OP_PUSHDATA1 => out.extend_from_slice(&len.to_le_bytes()[..1]),
        opcodes::OP_PUSHDATA2 => out.extend_from_slice(&len.to_le_bytes()[..2]),
        _ => {}
    }
    out.extend_from_slice(data);
    Ok(())
}

/// Writes the text form of a script.
pub fn disassemble(script: &[u8]) -> String {
    let mut parts: Vec<String> = Vec::new();
    for item in Instructions::new(script) {
        match item {
            Ok((at, Instruction::Push { opcode, data })) => {
                if opcode == opcodes::OP_0 {
                    parts.push("OP_0".into());
                } else if push_opcode_for_len(data.len()) == Some(opcode) {
                    parts.push(format!("<{}>", hex::encode(data)));
                } else {
                    let end = at + instruction_len(opcode, data.len());
                    parts.push(format!("0x{}", hex::encode(&script[at..end])));
                }
            }
            Ok((_, Instruction::Op(op))) => match opcodes::name(op) {
                Some(name) if opcodes::is_defined(op) => parts.push(name.into()),
                _ => parts.push(format!("0x{op:02x}")),
            },
            Err(truncated) => {
                parts.push(format!("0x{}", hex::encode(&script[truncated.at..])));
            }
        }
    }
    parts.join(" ")
}

fn instruction_len(opcode: u8, data_len: usize) -> usize {
    let header = match opcode {
        opcodes::OP_PUSHDATA1 => 2,
        opcodes::OP_PUSHDATA2 => 3,
        _ => 1,
    };
    header + data_len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembles_each_token_kind() {
        assert_eq!(
            assemble("OP_DUP sha256 <abcd> 0 -1 16 17 -17 1000 <> <05> 0x4c0105 OP_TRUE"),
            Ok(vec![
                0x76, 0xa8, 0x02, 0xab, 0xcd, 0x00, 0x4f, 0x60, 0x01, 0x11, 0x01, 0x91, 0x02, 0xe8,
                0x03, 0x00, 0x01, 0x05, 0x4c, 0x01, 0x05, 0x51
            ])
        );
        assert_eq!(assemble(""), Ok(vec![]));
        assert_eq!(
            assemble(&format!("<{}>", "00".repeat(76))).map(|s| s[..2].to_vec()),
            Ok(vec![0x4c, 76])
        );
        assert_eq!(
            assemble(&format!("<{}>", "00".repeat(256))).map(|s| s[..3].to_vec()),
            Ok(vec![0x4d, 0, 1])
        );
    }

    #[test]
    fn rejects_bad_tokens() {
        assert!(matches!(
            assemble("OP_CAT"),
            Err(AsmError::UnknownOpcode(_))
        ));
        assert!(matches!(assemble("<abc>"), Err(AsmError::BadHex(_))));
        assert!(matches!(assemble("0xzz"), Err(AsmError::BadHex(_))));
        assert!(matches!(
            assemble("99999999999"),
            Err(AsmError::BadNumber(_))
        ));
        assert!(matches!(assemble("12ab"), Err(AsmError::BadNumber(_))));
    }

    #[test]
    fn disassembly_round_trips_any_bytes() {
        let scripts: Vec<Vec<u8>> = vec![
            vec![],
            vec![0x00, 0x51, 0x4f, 0x60, 0x76],
            vec![0x01, 0x05],
            vec![0x4c, 0x01, 0x05],
            vec![0x4d, 0x02, 0x00, 0xaa, 0xbb],
            vec![0xff, 0x50, 0x4e],
            vec![0x76, 0x05, 0x01],
            vec![0x4c],
            (0..=255u8).collect(),
        ];
        for s in scripts {
            let text = disassemble(&s);
            assert_eq!(assemble(&text), Ok(s.clone()), "{text}");
        }
        assert_eq!(disassemble(&[0x01, 0x05, 0x76, 0xff]), "<05> OP_DUP 0xff");
        assert_eq!(disassemble(&[0x4c, 0x01, 0x05]), "0x4c0105");
    }
}
