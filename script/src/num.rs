//! Script numbers: little-endian sign-magnitude, the sign in the top bit of the last
//! byte, zero as the empty element. Operands must be in their shortest encoding and at
//! most 4 bytes long (5 for lock times); results may be one byte longer (a sum of two
//! 4-byte numbers) and are only rejected if used as an operand again.

use crate::error::ScriptError;

/// Decodes a number operand of at most `max_len` bytes in its minimal encoding.
pub fn decode(bytes: &[u8], max_len: usize) -> Result<i64, ScriptError> {
    debug_assert!(max_len <= 8, "script numbers are at most 8 bytes");
    if bytes.len() > max_len {
        return Err(ScriptError::NumberOverflow);
    }
    let Some((&last, rest)) = bytes.split_last() else {
        return Ok(0);
    };
    // Minimal: the last byte must carry magnitude bits, unless it is only there because
    // the byte before it already uses its top bit (which would otherwise be the sign).
    if last & 0x7f == 0 && rest.last().is_none_or(|b| b & 0x80 == 0) {
        return Err(ScriptError::MinimalData);
    }
    let mut magnitude: u64 = 0;
    for (i, b) in bytes.iter().enumerate() {
        magnitude |= u64::from(*b) << (8 * i);
    }
    let sign_bit = 0x80u64 << (8 * (bytes.len() - 1));
    if magnitude & sign_bit != 0 {
        Ok(-i64::try_from(magnitude & !sign_bit).map_err(|_| ScriptError::NumberOverflow)?)
    } else {
        i64::try_from(magnitude).map_err(|_| ScriptError::NumberOverflow)
    }
}

/// Encodes a number minimally.
pub fn encode(value: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    let negative = value < 0;
    let mut magnitude = value.unsigned_abs();
    while magnitude > 0 {
        out.push((magnitude & 0xff) as u8);
        magnitude >>= 8;
    }
    if let Some(last) = out.last_mut() {
        if *last & 0x80 != 0 {
            out.push(if negative { 0x80 } else { 0x00 });
        } else if negative {
            *last |= 0x80;
        }
    }
    out
}

/// Script truth: false is any run of zero bytes, optionally ending in `0x80` (negative
/// zero); everything else is true.
pub fn cast_to_bool(bytes: &[u8]) -> bool {
    match bytes.split_last() {
        None => false,
        Some((&last, rest)) => rest.iter().any(|b| *b != 0) || (last != 0 && last != 0x80),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_encodings() {
        let cases: &[(i64, &[u8])] = &[
            (0, &[]),
            (1, &[0x01]),
            (-1, &[0x81]),
            (127, &[0x7f]),
            (128, &[0x80, 0x00]),
            (-128, &[0x80, 0x80]),
            (255, &[0xff, 0x00]),
            (256, &[0x00, 0x01]),
            (-256, &[0x00, 0x81]),
            (0x7fff_ffff, &[0xff, 0xff, 0xff, 0x7f]),
            (-0x7fff_ffff, &[0xff, 0xff, 0xff, 0xff]),
            (0x8000_0000, &[0x00, 0x00, 0x00, 0x80, 0x00]),
            (0xffff_ffff, &[0xff, 0xff, 0xff, 0xff, 0x00]),
        ];
        for (value, bytes) in cases {
            assert_eq!(encode(*value), *bytes, "encode {value}");
            assert_eq!(decode(bytes, 5), Ok(*value), "decode {value}");
        }
    }

    #[test]
    fn round_trip_over_a_range() {
        for v in (-70_000i64..70_000).chain([i64::from(i32::MAX), -i64::from(i32::MAX)]) {
            assert_eq!(decode(&encode(v), 4), Ok(v));
        }
    }

    #[test]
    fn non_minimal_and_long_operands_are_rejected() {
        assert_eq!(decode(&[0x00], 4), Err(ScriptError::MinimalData));
        assert_eq!(decode(&[0x80], 4), Err(ScriptError::MinimalData));
        assert_eq!(decode(&[0x01, 0x00], 4), Err(ScriptError::MinimalData));
        assert_eq!(decode(&[0x01, 0x80], 4), Err(ScriptError::MinimalData));
        assert_eq!(decode(&[0x80, 0x00], 4), Ok(128));
        assert_eq!(
            decode(&[0, 0, 0, 0x80, 0], 4),
            Err(ScriptError::NumberOverflow)
        );
        assert_eq!(decode(&[0, 0, 0, 0x80, 0], 5), Ok(0x8000_0000));
    }

    #[test]
    fn truth() {
        assert!(!cast_to_bool(&[]));
        assert!(!cast_to_bool(&[0]));
        assert!(!cast_to_bool(&[0, 0, 0x80]));
        assert!(cast_to_bool(&[0, 0x80, 0]));
        assert!(cast_to_bool(&[1]));
        assert!(cast_to_bool(&[0x81]));
    }
}
