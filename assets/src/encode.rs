//! Canonical binary encoding.
//!
//! Integers are little-endian; lengths and counts are Bitcoin-style compact sizes that
//! must use their shortest form. Decoding is strict: every count is checked against a
//! limit and against the bytes that remain before anything is allocated, and a value
//! has exactly one encoding. See `spec/encoding.md`.

use crate::limits::MAX_COMPACT_SIZE;

/// [`MAX_COMPACT_SIZE`] as a `usize` (it is far below `u32::MAX`, so the cast is exact on
/// every target this code runs on).
#[allow(clippy::cast_possible_truncation)]
const MAX_COMPACT_SIZE_USIZE: usize = MAX_COMPACT_SIZE as usize;

/// Why bytes could not be decoded. Messages are lowercase and name the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unexpected end of data reading {what}: needed {needed} bytes, {remaining} left")]
    UnexpectedEnd {
        what: &'static str,
        needed: usize,
        remaining: usize,
    },
    #[error("non-canonical compact size for {what}: {value} must use the shortest form")]
    NonCanonicalCompactSize { what: &'static str, value: u64 },
    #[error("too many {what}: {count} exceeds the limit of {max}")]
    TooMany {
        what: &'static str,
        count: u64,
        max: usize,
    },
    #[error("{what} too large: {size} bytes exceeds the limit of {max}")]
    TooLarge {
        what: &'static str,
        size: u64,
        max: usize,
    },
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    #[error("{count} trailing bytes after the end of the {what}")]
    TrailingBytes { what: &'static str, count: usize },
}

/// Appends the canonical encoding of a value to a buffer.
pub trait Encode {
    fn encode(&self, out: &mut Vec<u8>);
}

/// Reads a value back from its canonical encoding.
pub trait Decode: Sized {
    /// A short name for error messages ("transaction", "outpoint", ...).
    const NAME: &'static str;
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

/// Encodes a value into a fresh vector.
pub fn serialize<T: Encode + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    value.encode(&mut out);
    out
}

/// Decodes a value that must use up all of `bytes`.
pub fn deserialize<T: Decode>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut r = Reader::new(bytes);
    let value = T::decode(&mut r)?;
    if r.remaining() != 0 {
        return Err(DecodeError::TrailingBytes {
            what: T::NAME,
            count: r.remaining(),
        });
    }
    Ok(value)
}

/// A cursor over bytes being decoded. It never reads past the end and never panics.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn read_bytes(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if len > self.remaining() {
            return Err(DecodeError::UnexpectedEnd {
                what,
                needed: len,
                remaining: self.remaining(),
            });
        }
        let slice = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(slice)
    }

    pub fn read_array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.read_bytes(N, what)?);
        Ok(out)
    }

    pub fn read_u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.read_array::<1>(what)?[0])
    }

    pub fn read_u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.read_array(what)?))
    }

    pub fn read_u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.read_array(what)?))
    }

    pub fn read_u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.read_array(what)?))
    }

    /// Reads a compact size in its shortest form, no larger than [`MAX_COMPACT_SIZE`].
    pub fn read_compact_size(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let first = self.read_u8(what)?;
        let (value, min) = match first {
            0xfd => (u64::from(self.read_u16(what)?), 0xfd),
            0xfe => (u64::from(self.read_u32(what)?), 0x1_0000),
            0xff => (self.read_u64(what)?, 0x1_0000_0000),
            n => (u64::from(n), 0),
        };
        if value < min {
            return Err(DecodeError::NonCanonicalCompactSize { what, value });
        }
        if value > MAX_COMPACT_SIZE {
            return Err(DecodeError::TooLarge {
                what,
                size: value,
                max: MAX_COMPACT_SIZE_USIZE,
            });
        }
        Ok(value)
    }

    /// Reads a count of items, each taking at least `min_item_bytes`, bounded by `max`.
    /// The result can be used as an allocation size: it never exceeds what the remaining
    /// bytes could hold.
    pub fn read_count(
        &mut self,
        what: &'static str,
        max: usize,
        min_item_bytes: usize,
    ) -> Result<usize, DecodeError> {
        let count = self.read_compact_size(what)?;
        // `count <= max`, a usize, so the conversion cannot fail.
        let count = match usize::try_from(count) {
            Ok(n) if n <= max => n,
            _ => return Err(DecodeError::TooMany { what, count, max }),
        };
        let needed = count.saturating_mul(min_item_bytes.max(1));
        if min_item_bytes > 0 && needed > self.remaining() {
            return Err(DecodeError::UnexpectedEnd {
                what,
                needed,
                remaining: self.remaining(),
            });
        }
        Ok(count)
    }

    /// Reads length-prefixed bytes no longer than `max`.
    pub fn read_var_bytes(
        &mut self,
        what: &'static str,
        max: usize,
    ) -> Result<&'a [u8], DecodeError> {
        let size = self.read_compact_size(what)?;
        match usize::try_from(size) {
            Ok(len) if len <= max => self.read_bytes(len, what),
            _ => Err(DecodeError::TooLarge { what, size, max }),
        }
    }
}

/// Appends a compact size in its shortest form.
// Each arm's range fits the width it is cast to.
#[allow(clippy::cast_possible_truncation)]
pub fn write_compact_size(out: &mut Vec<u8>, value: u64) {
    match value {
        0..=0xfc => out.push(value as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(value as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(value as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
}

/// Appends length-prefixed bytes.
pub fn write_var_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    write_compact_size(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// The number of bytes [`write_compact_size`] uses for `value`.
pub fn compact_size_len(value: u64) -> usize {
    match value {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_size_round_trips_at_the_boundaries() {
        for v in [
            0u64,
            0xfc,
            0xfd,
            0xffff,
            0x1_0000,
            0x01ff_ffff,
            MAX_COMPACT_SIZE,
        ] {
            let mut out = Vec::new();
            write_compact_size(&mut out, v);
            assert_eq!(out.len(), compact_size_len(v));
            assert_eq!(Reader::new(&out).read_compact_size("n"), Ok(v));
        }
    }

    #[test]
    fn compact_size_rejects_long_forms() {
        assert!(matches!(
            Reader::new(&[0xfd, 0x10, 0x00]).read_compact_size("n"),
            Err(DecodeError::NonCanonicalCompactSize { value: 0x10, .. })
        ));
        assert!(matches!(
            Reader::new(&[0xff, 0, 0, 0, 0, 0, 0, 0, 0x10]).read_compact_size("n"),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn counts_larger_than_the_remaining_bytes_are_refused_before_allocating() {
        let mut r = Reader::new(&[0xfd, 0xd0, 0x07]);
        assert!(matches!(
            r.read_count("inputs", 2_500, 41),
            Err(DecodeError::UnexpectedEnd { .. })
        ));
    }
}
