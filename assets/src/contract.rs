//! Asset contracts: what an asset is, who may issue it, and how it is displayed.
//!
//! A contract is canonical JSON: object keys sorted by their UTF-8 bytes, no whitespace,
//! no floats, no nulls (optional fields are left out). Canonical bytes mean one contract
//! has exactly one hash, and so exactly one asset id per issuing outpoint. The format is
//! specified in `spec/assets.md`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::hash::{AssetId, ContractHash};
use crate::limits::{MAX_CONTRACT_BYTES, MAX_PRECISION};
use crate::transaction::contract_hash;

/// Longest asset name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// Longest ticker, in characters.
pub const MAX_TICKER_CHARS: usize = 12;
/// Longest free-text role name in lending terms (negotiator, lender player).
pub const MAX_ROLE_CHARS: usize = 64;

/// Why contract bytes or fields were refused. Messages name the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    #[error("contract is {0} bytes, more than the limit of {MAX_CONTRACT_BYTES}")]
    TooLarge(usize),
    #[error("contract is not valid JSON: {0}")]
    Json(String),
    #[error("contract is not in canonical form (sorted keys, no whitespace)")]
    NotCanonical,
    #[error("contract field {field:?} is missing")]
    Missing { field: &'static str },
    #[error("contract field {field:?} is unknown")]
    Unknown { field: String },
    #[error("contract field {field:?} is invalid: {reason}")]
    Invalid { field: &'static str, reason: String },
}

/// A lending position's terms (Banco de Portugal's lending properties, appendix B.3 of
/// the SecLending paper); the transaction id and state are derived from the chain.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct LendingTerms {
    pub isin: String,
    /// The asset lent: a `security` asset with the ISIN above.
    pub security_asset: AssetId,
    /// Units of the security lent.
    pub quantity: u64,
    /// X-only public key of the lender (the owner of the securities).
    pub lender: [u8; 32],
    /// X-only public key of the borrower (the counterparty).
    pub borrower: [u8; 32],
    pub collateral_asset: AssetId,
    pub collateral_amount: u64,
    pub fee_asset: AssetId,
    pub fee: u64,
    /// Annual interest rate in basis points (1/100 of a percent).
    pub interest_rate_bps: u32,
    pub settlement_height: u32,
    pub maturity_height: u32,
    /// Blocks after maturity before the lender may claim the collateral.
    pub grace_period_blocks: u32,
    pub negotiator: Option<String>,
    pub lender_player: Option<String>,
}

/// The asset classes and what each one must say.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum AssetClass {
    /// A security identified by its ISIN (check digit validated).
    Security { isin: String },
    /// A cash token in an ISO 4217 currency.
    Cash { currency: String },
    /// A securities-lending position carrying the loan's terms.
    LendingPosition(Box<LendingTerms>),
}

impl AssetClass {
    /// The name used in contracts and in the chain spec's issuer registry.
    pub fn name(&self) -> &'static str {
        match self {
            AssetClass::Security { .. } => "security",
            AssetClass::Cash { .. } => "cash",
            AssetClass::LendingPosition(_) => "lending_position",
        }
    }
}

/// A parsed, validated asset contract.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct AssetContract {
    pub class: AssetClass,
    pub name: String,
    pub ticker: String,
    /// Decimal places used to display amounts.
    pub precision: u8,
    /// X-only public key that signs issuances of this asset.
    pub issuer: [u8; 32],
    /// Whether the issuer may issue more later.
    pub reissuable: bool,
}

impl AssetContract {
    /// Checks every field and returns the canonical bytes.
    pub fn to_canonical_bytes(&self) -> Result<Vec<u8>, ContractError> {
        self.validate()?;
        let bytes = canonical_json(&self.to_value()).into_bytes();
        if bytes.len() > MAX_CONTRACT_BYTES {
            return Err(ContractError::TooLarge(bytes.len()));
        }
        Ok(bytes)
    }

    /// Parses contract bytes, which must be canonical and valid.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<AssetContract, ContractError> {
        if bytes.len() > MAX_CONTRACT_BYTES {
            return Err(ContractError::TooLarge(bytes.len()));
        }
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| ContractError::Json(e.to_string()))?;
        let contract = AssetContract::from_value(&value)?;
        if canonical_json(&value).as_bytes() != bytes {
            return Err(ContractError::NotCanonical);
        }
        contract.validate()?;
        Ok(contract)
    }

    /// Parses a contract from any JSON text (whitespace and key order free). Tools use
    /// this to read a contract a person wrote; the chain only ever sees canonical bytes.
    pub fn from_json(text: &str) -> Result<AssetContract, ContractError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| ContractError::Json(e.to_string()))?;
        let contract = AssetContract::from_value(&value)?;
        contract.validate()?;
        Ok(contract)
    }

    /// The contract hash of the canonical bytes.
    pub fn hash(&self) -> Result<ContractHash, ContractError> {
        Ok(contract_hash(&self.to_canonical_bytes()?))
    }

    /// Checks every field's format.
    pub fn validate(&self) -> Result<(), ContractError> {
        validate_name(&self.name)?;
        validate_ticker(&self.ticker)?;
        if self.precision > MAX_PRECISION {
            return Err(ContractError::Invalid {
                field: "precision",
                reason: format!("{} is more than {MAX_PRECISION}", self.precision),
            });
        }
        match &self.class {
            AssetClass::Security { isin } => validate_isin(isin, "isin"),
            AssetClass::Cash { currency } => validate_currency(currency),
            AssetClass::LendingPosition(terms) => terms.validate(),
        }
    }

    fn to_value(&self) -> Value {
        let mut map = serde_json::Map::new();
        map.insert("class".into(), self.class.name().into());
        map.insert("name".into(), self.name.clone().into());
        map.insert("ticker".into(), self.ticker.clone().into());
        map.insert("precision".into(), self.precision.into());
        map.insert("issuer".into(), hex::encode(self.issuer).into());
        map.insert("reissuable".into(), self.reissuable.into());
        match &self.class {
            AssetClass::Security { isin } => {
                map.insert("isin".into(), isin.clone().into());
            }
            AssetClass::Cash { currency } => {
                map.insert("currency".into(), currency.clone().into());
            }
            AssetClass::LendingPosition(terms) => {
                map.insert("terms".into(), terms.to_value());
            }
        }
        Value::Object(map)
    }

    fn from_value(value: &Value) -> Result<AssetContract, ContractError> {
        let mut fields = Fields::new(value)?;
        let class_name = fields.string("class")?;
        let class = match class_name.as_str() {
            "security" => AssetClass::Security {
                isin: fields.string("isin")?,
            },
            "cash" => AssetClass::Cash {
                currency: fields.string("currency")?,
            },
            "lending_position" => {
                let terms = fields.take("terms")?;
                if !terms.is_object() {
                    return Err(ContractError::Invalid {
                        field: "terms",
                        reason: "expected a JSON object".into(),
                    });
                }
                AssetClass::LendingPosition(Box::new(LendingTerms::from_value(&terms)?))
            }
            other => {
                return Err(ContractError::Invalid {
                    field: "class",
                    reason: format!(
                        "{other:?} is not one of \"security\", \"cash\", \"lending_position\""
                    ),
                });
            }
        };
        let contract = AssetContract {
            class,
            name: fields.string("name")?,
            ticker: fields.string("ticker")?,
            precision: u8::try_from(fields.integer("precision")?).map_err(|_| {
                ContractError::Invalid {
                    field: "precision",
                    reason: "too large".into(),
                }
            })?,
            issuer: fields.key("issuer")?,
            reissuable: fields.boolean("reissuable")?,
        };
        fields.finish()?;
        Ok(contract)
    }
}

impl LendingTerms {
    fn validate(&self) -> Result<(), ContractError> {
        validate_isin(&self.isin, "terms.isin")?;
        if self.quantity == 0 {
            return Err(ContractError::Invalid {
                field: "terms.quantity",
                reason: "must be positive".into(),
            });
        }
        if self.collateral_amount == 0 {
            return Err(ContractError::Invalid {
                field: "terms.collateral_amount",
                reason: "must be positive".into(),
            });
        }
        if self.lender == self.borrower {
            return Err(ContractError::Invalid {
                field: "terms.borrower",
                reason: "lender and borrower must be different keys".into(),
            });
        }
        if self.maturity_height <= self.settlement_height {
            return Err(ContractError::Invalid {
                field: "terms.maturity_height",
                reason: format!(
                    "{} must be after the settlement height {}",
                    self.maturity_height, self.settlement_height
                ),
            });
        }
        for (field, role) in [
            ("terms.negotiator", &self.negotiator),
            ("terms.lender_player", &self.lender_player),
        ] {
            if let Some(role) = role {
                validate_text(role, field, MAX_ROLE_CHARS)?;
            }
        }
        Ok(())
    }

    fn to_value(&self) -> Value {
        let mut map = serde_json::Map::new();
        map.insert("isin".into(), self.isin.clone().into());
        map.insert(
            "security_asset".into(),
            self.security_asset.to_string().into(),
        );
        map.insert("quantity".into(), self.quantity.into());
        map.insert("lender".into(), hex::encode(self.lender).into());
        map.insert("borrower".into(), hex::encode(self.borrower).into());
        map.insert(
            "collateral_asset".into(),
            self.collateral_asset.to_string().into(),
        );
        map.insert("collateral_amount".into(), self.collateral_amount.into());
        map.insert("fee_asset".into(), self.fee_asset.to_string().into());
        map.insert("fee".into(), self.fee.into());
        map.insert("interest_rate_bps".into(), self.interest_rate_bps.into());
        map.insert("settlement_height".into(), self.settlement_height.into());
        map.insert("maturity_height".into(), self.maturity_height.into());
        map.insert(
            "grace_period_blocks".into(),
            self.grace_period_blocks.into(),
        );
        if let Some(n) = &self.negotiator {
            map.insert("negotiator".into(), n.clone().into());
        }
        if let Some(p) = &self.lender_player {
            map.insert("lender_player".into(), p.clone().into());
        }
        Value::Object(map)
    }

    fn from_value(value: &Value) -> Result<LendingTerms, ContractError> {
        // Field names in errors carry the "terms." prefix, as the validation errors do,
        // so a message always names the field by its full path.
        let mut f = Fields::nested(value, "terms.")?;
        let terms = LendingTerms {
            isin: f.string("terms.isin")?,
            security_asset: f.asset("terms.security_asset")?,
            quantity: f.integer("terms.quantity")?,
            lender: f.key("terms.lender")?,
            borrower: f.key("terms.borrower")?,
            collateral_asset: f.asset("terms.collateral_asset")?,
            collateral_amount: f.integer("terms.collateral_amount")?,
            fee_asset: f.asset("terms.fee_asset")?,
            fee: f.integer("terms.fee")?,
            interest_rate_bps: f.u32("terms.interest_rate_bps")?,
            settlement_height: f.u32("terms.settlement_height")?,
            maturity_height: f.u32("terms.maturity_height")?,
            grace_period_blocks: f.u32("terms.grace_period_blocks")?,
            negotiator: f.optional_string("terms.negotiator")?,
            lender_player: f.optional_string("terms.lender_player")?,
        };
        f.finish()?;
        Ok(terms)
    }
}

/// Reads named fields out of a JSON object and refuses any it did not read.
///
/// Fields are named by their full path (`"terms.isin"`); the object's own key is the
/// path without the object's `prefix`.
struct Fields {
    map: BTreeMap<String, Value>,
    prefix: &'static str,
}

impl Fields {
    fn new(value: &Value) -> Result<Fields, ContractError> {
        Fields::nested(value, "")
    }

    fn nested(value: &Value, prefix: &'static str) -> Result<Fields, ContractError> {
        match value {
            Value::Object(map) => Ok(Fields {
                map: map.clone().into_iter().collect(),
                prefix,
            }),
            _ => Err(ContractError::Json("expected a JSON object".into())),
        }
    }

    fn key_of(&self, field: &'static str) -> &'static str {
        field.strip_prefix(self.prefix).unwrap_or(field)
    }

    fn take(&mut self, field: &'static str) -> Result<Value, ContractError> {
        let key = self.key_of(field);
        self.map.remove(key).ok_or(ContractError::Missing { field })
    }

    fn string(&mut self, field: &'static str) -> Result<String, ContractError> {
        match self.take(field)? {
            Value::String(s) => Ok(s),
            _ => Err(ContractError::Invalid {
                field,
                reason: "expected a string".into(),
            }),
        }
    }

    fn optional_string(&mut self, field: &'static str) -> Result<Option<String>, ContractError> {
        if self.map.contains_key(self.key_of(field)) {
            self.string(field).map(Some)
        } else {
            Ok(None)
        }
    }

    fn integer(&mut self, field: &'static str) -> Result<u64, ContractError> {
        match self.take(field)? {
            Value::Number(n) => n.as_u64().ok_or_else(|| ContractError::Invalid {
                field,
                reason: "expected a non-negative integer".into(),
            }),
            _ => Err(ContractError::Invalid {
                field,
                reason: "expected an integer".into(),
            }),
        }
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, ContractError> {
        u32::try_from(self.integer(field)?).map_err(|_| ContractError::Invalid {
            field,
            reason: "larger than 4294967295".into(),
        })
    }

    fn boolean(&mut self, field: &'static str) -> Result<bool, ContractError> {
        match self.take(field)? {
            Value::Bool(b) => Ok(b),
            _ => Err(ContractError::Invalid {
                field,
                reason: "expected true or false".into(),
            }),
        }
    }

    fn key(&mut self, field: &'static str) -> Result<[u8; 32], ContractError> {
        let s = self.string(field)?;
        let mut out = [0u8; 32];
        if s.len() != 64 || s.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ContractError::Invalid {
                field,
                reason: "expected a 32-byte x-only public key as 64 lowercase hex characters"
                    .into(),
            });
        }
        hex::decode_to_slice(&s, &mut out).map_err(|_| ContractError::Invalid {
            field,
            reason: "expected a 32-byte x-only public key as 64 lowercase hex characters".into(),
        })?;
        Ok(out)
    }

    fn asset(&mut self, field: &'static str) -> Result<AssetId, ContractError> {
        // A missing field stays `Missing`; only a malformed one is reworded.
        self.key(field).map(AssetId).map_err(|e| match e {
            ContractError::Invalid { field, .. } => ContractError::Invalid {
                field,
                reason: "expected an asset id as 64 lowercase hex characters".into(),
            },
            other => other,
        })
    }

    fn finish(self) -> Result<(), ContractError> {
        match self.map.into_keys().next() {
            Some(key) => Err(ContractError::Unknown {
                field: format!("{}{key}", self.prefix),
            }),
            None => Ok(()),
        }
    }
}

/// Writes JSON with object keys sorted by their bytes and no whitespace. Sorting here,
/// rather than relying on the map type, keeps the output canonical whatever features of
/// `serde_json` other crates switch on.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn validate_text(s: &str, field: &'static str, max_chars: usize) -> Result<(), ContractError> {
    let chars = s.chars().count();
    if chars == 0 || chars > max_chars {
        return Err(ContractError::Invalid {
            field,
            reason: format!("must be 1 to {max_chars} characters, got {chars}"),
        });
    }
    if s.chars().any(char::is_control) || s.trim() != s {
        return Err(ContractError::Invalid {
            field,
            reason: "must not contain control characters or leading/trailing spaces".into(),
        });
    }
    Ok(())
}

fn validate_name(name: &str) -> Result<(), ContractError> {
    validate_text(name, "name", MAX_NAME_CHARS)
}

/// Tickers: 1 to 12 of `A-Z 0-9 . -`, starting with a letter or digit.
pub fn validate_ticker(ticker: &str) -> Result<(), ContractError> {
    let ok = !ticker.is_empty()
        && ticker.len() <= MAX_TICKER_CHARS
        && ticker
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
        && ticker.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(ContractError::Invalid {
            field: "ticker",
            reason: format!(
                "{ticker:?} must be 1 to {MAX_TICKER_CHARS} of A-Z, 0-9, '.', '-', starting with a letter or digit"
            ),
        })
    }
}

/// Validates an ISIN (ISO 6166): two letters, nine letters or digits, one check digit
/// computed with the Luhn algorithm over the digits after letters become 10..35.
pub fn validate_isin(isin: &str, field: &'static str) -> Result<(), ContractError> {
    let invalid = |reason: String| ContractError::Invalid { field, reason };
    let bytes = isin.as_bytes();
    if bytes.len() != 12 {
        return Err(invalid(format!("{isin:?} must be 12 characters")));
    }
    if !bytes[..2].iter().all(u8::is_ascii_uppercase)
        || !bytes[2..11]
            .iter()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        || !bytes[11].is_ascii_digit()
    {
        return Err(invalid(format!(
            "{isin:?} must be 2 capital letters, 9 capital letters or digits and a check digit"
        )));
    }
    let expected = isin_check_digit(&bytes[..11]);
    if bytes[11] - b'0' != expected {
        return Err(invalid(format!(
            "{isin:?} has check digit {} but should have {expected}",
            bytes[11] - b'0'
        )));
    }
    Ok(())
}

/// The ISIN check digit of the first eleven characters (`0-9`, `A-Z`). Other bytes give
/// a meaningless digit but never a panic: callers validate the characters first.
pub fn isin_check_digit(body: &[u8]) -> u8 {
    let mut digits = Vec::with_capacity(body.len() * 2);
    for &b in body {
        if b.is_ascii_digit() {
            digits.push(b - b'0');
        } else {
            // A..Z become 10..35, written as two digits.
            let v = b.saturating_sub(b'A').saturating_add(10);
            digits.push(v / 10);
            digits.push(v % 10);
        }
    }
    // Only the sum modulo 10 matters; reducing as we go keeps any input length safe.
    let mut sum = 0u8;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut d = *d;
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum = (sum + d) % 10;
    }
    (10 - sum) % 10
}

/// Active ISO 4217 alphabetic codes (plus XAU, XAG and XDR, which central banks hold).
pub const ISO_4217_CODES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT", "BGN",
    "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD", "CDF",
    "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD", "EGP",
    "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ", "GYD",
    "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD", "JPY",
    "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR", "LRD",
    "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR", "MWK",
    "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN", "PGK",
    "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR", "SDG",
    "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB", "TJS",
    "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS", "VES",
    "VND", "VUV", "WST", "XAF", "XAG", "XAU", "XCD", "XDR", "XOF", "XPF", "YER", "ZAR", "ZMW",
    "ZWG",
];

fn validate_currency(code: &str) -> Result<(), ContractError> {
    if ISO_4217_CODES.binary_search(&code).is_ok() {
        Ok(())
    } else {
        Err(ContractError::Invalid {
            field: "currency",
            reason: format!("{code:?} is not an ISO 4217 currency code"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bond() -> AssetContract {
        AssetContract {
            class: AssetClass::Security {
                isin: "US0378331005".into(),
            },
            name: "Apple Inc. common stock".into(),
            ticker: "AAPL".into(),
            precision: 0,
            issuer: [0x11; 32],
            reissuable: false,
        }
    }

    #[test]
    fn currency_list_is_sorted_for_binary_search() {
        assert!(ISO_4217_CODES.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn isin_check_digits() {
        assert!(validate_isin("US0378331005", "isin").is_ok());
        assert!(validate_isin("DE000BAY0017", "isin").is_ok());
        assert!(validate_isin("PTOTEVOE0018", "isin").is_ok());
        assert!(validate_isin("US0378331006", "isin").is_err());
        assert!(validate_isin("us0378331005", "isin").is_err());
        assert!(validate_isin("US037833100", "isin").is_err());
    }

    #[test]
    fn canonical_bytes_round_trip_and_are_sorted() {
        let bytes = bond().to_canonical_bytes().expect("valid");
        let text = String::from_utf8(bytes.clone()).expect("utf8");
        assert!(text.starts_with("{\"class\":\"security\",\"isin\":"));
        assert_eq!(AssetContract::from_canonical_bytes(&bytes), Ok(bond()));
    }

    #[test]
    fn non_canonical_and_unknown_fields_are_refused() {
        let text = String::from_utf8(bond().to_canonical_bytes().expect("valid")).expect("utf8");
        let spaced = text.replace(",", ", ");
        assert_eq!(
            AssetContract::from_canonical_bytes(spaced.as_bytes()),
            Err(ContractError::NotCanonical)
        );
        assert_eq!(AssetContract::from_json(&spaced), Ok(bond()));
        let extra = text.replacen('{', "{\"extra\":1,", 1);
        assert!(matches!(
            AssetContract::from_json(&extra),
            Err(ContractError::Unknown { .. })
        ));
    }

    #[test]
    fn terms_errors_name_the_full_field_path() {
        let terms = LendingTerms {
            isin: "PTOTEVOE0018".into(),
            security_asset: AssetId([1; 32]),
            quantity: 10,
            lender: [2; 32],
            borrower: [3; 32],
            collateral_asset: AssetId([4; 32]),
            collateral_amount: 100,
            fee_asset: AssetId([4; 32]),
            fee: 1,
            interest_rate_bps: 100,
            settlement_height: 1,
            maturity_height: 2,
            grace_period_blocks: 3,
            negotiator: None,
            lender_player: None,
        };
        let mut loan = bond();
        loan.class = AssetClass::LendingPosition(Box::new(terms));
        let text = String::from_utf8(loan.to_canonical_bytes().expect("valid")).expect("utf8");
        let asset = format!("\"security_asset\":\"{}\",", AssetId([1; 32]));
        assert_eq!(
            AssetContract::from_json(&text.replace(&asset, "")),
            Err(ContractError::Missing {
                field: "terms.security_asset"
            })
        );
        assert_eq!(
            AssetContract::from_json(&text.replace("\"terms\":{", "\"terms\":{\"x\":1,")),
            Err(ContractError::Unknown {
                field: "terms.x".into()
            })
        );
    }

    #[test]
    fn isin_check_digit_takes_any_bytes() {
        assert_eq!(isin_check_digit(b"US037833100"), 5);
        assert!(isin_check_digit(b"!@#\xff\x00 ") <= 9);
    }

    #[test]
    fn cash_needs_an_iso_currency() {
        let mut c = bond();
        c.class = AssetClass::Cash {
            currency: "EUR".into(),
        };
        assert!(c.validate().is_ok());
        c.class = AssetClass::Cash {
            currency: "EUX".into(),
        };
        assert!(matches!(
            c.validate(),
            Err(ContractError::Invalid {
                field: "currency",
                ..
            })
        ));
    }
}
