//! Amounts in an asset's smallest unit, with exact decimal parsing and display.
//!
//! An asset's contract fixes its precision (decimal places). "1,000.50" with precision 2
//! is 100050 units. No floating point is involved anywhere, so display and parsing
//! round-trip exactly.

use std::fmt;

use crate::encode::{Decode, DecodeError, Encode, Reader};
use crate::limits::MAX_PRECISION;

/// A number of an asset's smallest units, at most [`Amount::MAX`].
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct Amount(u64);

/// Why a decimal amount did not parse. Messages name the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountParseError {
    #[error("empty amount")]
    Empty,
    #[error("malformed amount {input:?}: {reason}")]
    Malformed { input: String, reason: &'static str },
    #[error("amount {input:?} has {places} decimal places but the asset has precision {precision}")]
    TooPrecise {
        input: String,
        places: usize,
        precision: u8,
    },
    #[error("amount {input:?} is larger than the maximum {max}")]
    TooLarge { input: String, max: String },
    #[error("precision {0} is out of range (0 to {MAX_PRECISION})")]
    BadPrecision(u8),
}

impl Amount {
    /// The largest amount: 2^63 - 1 units, so that sums over a transaction and signed
    /// differences in tools never overflow.
    pub const MAX: Amount = Amount(i64::MAX as u64);
    pub const ZERO: Amount = Amount(0);
    pub const ONE: Amount = Amount(1);

    /// An amount of `units`, if it is within range.
    pub const fn from_units(units: u64) -> Option<Amount> {
        if units <= Self::MAX.0 {
            Some(Amount(units))
        } else {
            None
        }
    }

    pub const fn units(self) -> u64 {
        self.0
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).and_then(Amount::from_units)
    }

    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    /// Parses a decimal amount such as `1,000.50` or `1000.5` for an asset with
    /// `precision` decimal places. Thousands separators are optional but, when used,
    /// must group by three. More decimal places than the precision is an error, never a
    /// silent rounding.
    pub fn parse_decimal(input: &str, precision: u8) -> Result<Amount, AmountParseError> {
        if precision > MAX_PRECISION {
            return Err(AmountParseError::BadPrecision(precision));
        }
        if input.is_empty() {
            return Err(AmountParseError::Empty);
        }
        let malformed = |reason| AmountParseError::Malformed {
            input: input.to_owned(),
            reason,
        };
        let (int_part, frac_part) = match input.split_once('.') {
            Some((i, f)) => (i, Some(f)),
            None => (input, None),
        };
        if int_part.is_empty() {
            return Err(malformed("a digit must come before the decimal point"));
        }
        let mut digits = String::with_capacity(int_part.len());
        if int_part.contains(',') {
            let groups: Vec<&str> = int_part.split(',').collect();
            let first_ok = (1..=3).contains(&groups[0].len());
            if !first_ok || groups[1..].iter().any(|g| g.len() != 3) {
                return Err(malformed("thousands separators must group digits by three"));
            }
            // "0,500" is never a grouped number; it is most likely a decimal comma, and
            // reading it as 500 would be a costly surprise.
            if groups[0].starts_with('0') {
                return Err(malformed(
                    "a number with thousands separators must not start with 0",
                ));
            }
            for g in groups {
                digits.push_str(g);
            }
        } else {
            digits.push_str(int_part);
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed(
                "only digits, one decimal point and thousands separators are allowed",
            ));
        }
        let frac = frac_part.unwrap_or("");
        if frac_part.is_some() && frac.is_empty() {
            return Err(malformed("a digit must follow the decimal point"));
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed("only digits may follow the decimal point"));
        }
        if frac.len() > usize::from(precision) {
            return Err(AmountParseError::TooPrecise {
                input: input.to_owned(),
                places: frac.len(),
                precision,
            });
        }
        let too_large = || AmountParseError::TooLarge {
            input: input.to_owned(),
            max: Amount::MAX.to_decimal_string(precision),
        };
        let mut units: u64 = 0;
        let padding = usize::from(precision) - frac.len();
        for b in digits
            .bytes()
            .chain(frac.bytes())
            .chain(std::iter::repeat_n(b'0', padding))
        {
            units = units
                .checked_mul(10)
                .and_then(|u| u.checked_add(u64::from(b - b'0')))
                .ok_or_else(too_large)?;
        }
        Amount::from_units(units).ok_or_else(too_large)
    }

    /// Displays the amount with thousands separators and exactly `precision` decimals:
    /// `1,000.50`. `parse_decimal` reads it back to the same amount.
    pub fn to_decimal_string(self, precision: u8) -> String {
        self.format(precision, true)
    }

    /// Like [`Amount::to_decimal_string`] without thousands separators: `1000.50`.
    pub fn to_plain_string(self, precision: u8) -> String {
        self.format(precision, false)
    }

    fn format(self, precision: u8, grouping: bool) -> String {
        let precision = precision.min(MAX_PRECISION);
        let scale = 10u64.pow(u32::from(precision));
        let int = self.0 / scale;
        let frac = self.0 % scale;
        let int_digits = int.to_string();
        let mut out = String::with_capacity(int_digits.len() * 4 / 3 + 24);
        for (i, c) in int_digits.chars().enumerate() {
            if grouping && i > 0 && (int_digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        if precision > 0 {
            out.push('.');
            out.push_str(&format!("{frac:0width$}", width = usize::from(precision)));
        }
        out
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({})", self.0)
    }
}

impl fmt::Display for Amount {
    /// Plain units; use [`Amount::to_decimal_string`] when the precision is known.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Encode for Amount {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0.to_le_bytes());
    }
}

impl Decode for Amount {
    const NAME: &'static str = "amount";
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let units = r.read_u64("amount")?;
        Amount::from_units(units).ok_or_else(|| DecodeError::Invalid {
            what: "amount",
            detail: format!("{units} exceeds the maximum {}", Amount::MAX.0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str, precision: u8) -> Result<u64, AmountParseError> {
        Amount::parse_decimal(s, precision).map(Amount::units)
    }

    #[test]
    fn parses_grouped_and_plain_forms() {
        assert_eq!(p("1,000.50", 2), Ok(100_050));
        assert_eq!(p("1000.5", 2), Ok(100_050));
        assert_eq!(p("1000", 2), Ok(100_000));
        assert_eq!(p("0.01", 2), Ok(1));
        assert_eq!(p("10", 0), Ok(10));
        assert_eq!(p("1,234,567", 0), Ok(1_234_567));
    }

    #[test]
    fn refuses_what_it_cannot_represent_exactly() {
        assert!(matches!(
            p("1.005", 2),
            Err(AmountParseError::TooPrecise { places: 3, .. })
        ));
        assert!(matches!(
            p("1.5", 0),
            Err(AmountParseError::TooPrecise { .. })
        ));
        assert!(matches!(
            p("1,00.5", 2),
            Err(AmountParseError::Malformed { .. })
        ));
        assert!(matches!(
            p("0,500", 3),
            Err(AmountParseError::Malformed { .. })
        ));
        assert!(matches!(
            p("-1", 2),
            Err(AmountParseError::Malformed { .. })
        ));
        assert!(matches!(
            p("1e3", 2),
            Err(AmountParseError::Malformed { .. })
        ));
        assert!(matches!(
            p(".5", 2),
            Err(AmountParseError::Malformed { .. })
        ));
        assert!(matches!(
            p("5.", 2),
            Err(AmountParseError::Malformed { .. })
        ));
        assert!(matches!(
            p(" 5", 2),
            Err(AmountParseError::Malformed { .. })
        ));
        assert_eq!(p("", 2), Err(AmountParseError::Empty));
        assert!(matches!(
            p("9223372036854775808", 0),
            Err(AmountParseError::TooLarge { .. })
        ));
        assert!(matches!(
            p("99999999999999999999999", 0),
            Err(AmountParseError::TooLarge { .. })
        ));
        assert_eq!(p("1", 19), Err(AmountParseError::BadPrecision(19)));
    }

    #[test]
    fn displays_with_exact_precision() {
        assert_eq!(Amount(100_050).to_decimal_string(2), "1,000.50");
        assert_eq!(Amount(100_050).to_plain_string(2), "1000.50");
        assert_eq!(Amount(5).to_decimal_string(3), "0.005");
        assert_eq!(Amount(999).to_decimal_string(0), "999");
        assert_eq!(Amount(1_000).to_decimal_string(0), "1,000");
        assert_eq!(Amount::MAX.to_decimal_string(18), "9.223372036854775807");
        assert_eq!(
            p(&Amount::MAX.to_decimal_string(4), 4),
            Ok(Amount::MAX.units())
        );
    }
}
