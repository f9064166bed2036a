//! Splitting a script into instructions. This layer only finds instruction boundaries;
//! the rules about which instructions are allowed (defined opcodes, element sizes,
//! minimal pushes) are applied by the interpreter, so the disassembler can show any
//! bytes faithfully.

use crate::opcodes::{OP_0, OP_1, OP_1NEGATE, OP_16, OP_PUSHBYTES_MAX, OP_PUSHDATA1, OP_PUSHDATA2};

/// One instruction of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instruction<'a> {
    /// A data push: `OP_0`, a direct push (`0x01..=0x4b`), `OP_PUSHDATA1` or
    /// `OP_PUSHDATA2`, with the data it pushes.
    Push { opcode: u8, data: &'a [u8] },
    /// Any other byte, defined or not (small-number opcodes included).
    Op(u8),
}

/// A push whose length or data runs past the end of the script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("push at byte {at} runs past the end of the script")]
pub struct Truncated {
    /// Offset of the push opcode.
    pub at: usize,
}

/// Decodes the instruction at `pos`, returning it and the offset of the next one.
/// `pos` must be inside the script.
pub fn decode_at(script: &[u8], pos: usize) -> Result<(Instruction<'_>, usize), Truncated> {
    let truncated = Truncated { at: pos };
    let opcode = *script.get(pos).ok_or(truncated)?;
    let (len, data_start) = match opcode {
        OP_0 => return Ok((Instruction::Push { opcode, data: &[] }, pos + 1)),
        0x01..=OP_PUSHBYTES_MAX => (usize::from(opcode), pos + 1),
        OP_PUSHDATA1 => (usize::from(*script.get(pos + 1).ok_or(truncated)?), pos + 2),
        OP_PUSHDATA2 => {
            let bytes = script.get(pos + 1..pos + 3).ok_or(truncated)?;
            (
                usize::from(u16::from_le_bytes([bytes[0], bytes[1]])),
                pos + 3,
            )
        }
        _ => return Ok((Instruction::Op(opcode), pos + 1)),
    };
    let data = script.get(data_start..data_start + len).ok_or(truncated)?;
    Ok((Instruction::Push { opcode, data }, data_start + len))
}

/// Iterates over the instructions of a script with their offsets. After a truncated
/// push it yields the error once and stops.
#[derive(Debug, Clone)]
pub struct Instructions<'a> {
    script: &'a [u8],
    pos: usize,
}

impl<'a> Instructions<'a> {
    pub fn new(script: &'a [u8]) -> Self {
        Instructions { script, pos: 0 }
    }
}

impl<'a> Iterator for Instructions<'a> {
    type Item = Result<(usize, Instruction<'a>), Truncated>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.script.len() {
            return None;
        }
        let at = self.pos;
        match decode_at(self.script, at) {
            Ok((ins, next)) => {
                self.pos = next;
                Some(Ok((at, ins)))
            }
            Err(e) => {
                self.pos = self.script.len();
                Some(Err(e))
            }
        }
    }
}

/// The push opcode that the length of `data` calls for, ignoring small-number opcodes:
/// `OP_0` for empty data, a direct push up to 75 bytes, then `OP_PUSHDATA1` and
/// `OP_PUSHDATA2`. `None` above 65,535 bytes (no push can carry that much).
pub fn push_opcode_for_len(len: usize) -> Option<u8> {
    match len {
        0 => Some(OP_0),
        1..=75 => u8::try_from(len).ok(),
        76..=0xff => Some(OP_PUSHDATA1),
        0x100..=0xffff => Some(OP_PUSHDATA2),
        _ => None,
    }
}

/// The opcode that pushes exactly `data` with a single byte when there is one:
/// `OP_1NEGATE` for `[0x81]` and `OP_1..=OP_16` for `[1]..=[16]`.
pub fn small_push_opcode(data: &[u8]) -> Option<u8> {
    match data {
        [0x81] => Some(OP_1NEGATE),
        [n @ 1..=16] => Some(OP_1 + n - 1),
        _ => None,
    }
}

/// Whether `opcode` is the shortest way to push `data`.
pub fn is_minimal_push(opcode: u8, data: &[u8]) -> bool {
    if small_push_opcode(data).is_some() {
        return false;
    }
    push_opcode_for_len(data.len()) == Some(opcode)
}

const _: () = assert!(OP_16 == OP_1 + 15);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_push_form() {
        let script = [
            0x00, 0x02, 0xaa, 0xbb, 0x4c, 0x01, 0xcc, 0x4d, 0x01, 0x00, 0xdd, 0x76,
        ];
        let got: Vec<_> = Instructions::new(&script)
            .map(|r| r.expect("valid"))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    0,
                    Instruction::Push {
                        opcode: 0x00,
                        data: &[]
                    }
                ),
                (
                    1,
                    Instruction::Push {
                        opcode: 0x02,
                        data: &[0xaa, 0xbb]
                    }
                ),
                (
                    4,
                    Instruction::Push {
                        opcode: 0x4c,
                        data: &[0xcc]
                    }
                ),
                (
                    7,
                    Instruction::Push {
                        opcode: 0x4d,
                        data: &[0xdd]
                    }
                ),
                (11, Instruction::Op(0x76)),
            ]
        );
    }

    #[test]
    fn truncated_pushes_are_errors() {
        for script in [
            &[0x02, 0xaa][..],
            &[0x4c],
            &[0x4c, 0x02, 0x00],
            &[0x4d, 0x01],
            &[0x4d, 0x01, 0x00],
        ] {
            let last = Instructions::new(script).last().expect("one item");
            assert_eq!(last, Err(Truncated { at: 0 }), "{script:?}");
        }
    }

    #[test]
    fn minimal_pushes() {
        assert!(is_minimal_push(0x00, &[]));
        assert!(!is_minimal_push(0x4c, &[]));
        assert!(!is_minimal_push(0x01, &[0x05]));
        assert!(!is_minimal_push(0x01, &[0x81]));
        assert!(is_minimal_push(0x01, &[0x00]));
        assert!(is_minimal_push(0x01, &[0x11]));
        assert!(is_minimal_push(75, &[7; 75]));
        assert!(!is_minimal_push(OP_PUSHDATA1, &[7; 75]));
        assert!(is_minimal_push(OP_PUSHDATA1, &[7; 76]));
        assert!(is_minimal_push(OP_PUSHDATA2, &[7; 256]));
        assert!(!is_minimal_push(OP_PUSHDATA2, &[7; 255]));
    }
}
