//! JSON-RPC error objects and the codes `settled` uses.
//!
//! Codes follow JSON-RPC 2.0 for protocol errors and bitcoind's numbering for application
//! errors, so tools written for bitcoind read them the same way. `spec/rpc.md` lists them.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use settle_assets::Txid;

/// The error codes. Stable: clients match on them.
pub mod codes {
    /// The request body is not valid JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON is not a valid JSON-RPC request (or the batch is empty or too large).
    pub const INVALID_REQUEST: i64 = -32600;
    /// No method of that name.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Wrong number or type of parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// A bug or an unexpected failure inside the node.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// The HTTP request body is larger than the server accepts.
    pub const REQUEST_TOO_LARGE: i64 = -32001;
    /// Anything else that went wrong.
    pub const MISC_ERROR: i64 = -1;
    /// The node's storage failed (disk, database). Never a verdict on the data sent.
    pub const DATABASE_ERROR: i64 = -20;
    /// No block, transaction or asset with that id (bitcoind's RPC_INVALID_ADDRESS_OR_KEY).
    pub const NOT_FOUND: i64 = -5;
    /// A parameter has the right type but an invalid value (a bad address, height, ...).
    pub const INVALID_PARAMETER: i64 = -8;
    /// Bytes that do not decode: malformed hex, a truncated or overlong transaction.
    pub const DESERIALIZATION_ERROR: i64 = -22;
    /// The transaction was rejected; `data` carries the reject class and code.
    pub const TX_REJECTED: i64 = -26;
    /// The transaction is already confirmed.
    pub const TX_ALREADY_IN_CHAIN: i64 = -27;
    /// The node's disk is full: it admits and connects nothing until space returns
    /// (`spec/storage.md`, "A full disk"). Reads still work.
    pub const STORAGE_FULL: i64 = -31;
}

/// A JSON-RPC error object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("rpc error {code}: {message}")]
pub struct RpcError {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub fn with_data(mut self, data: impl Serialize) -> Self {
        self.data = serde_json::to_value(data).ok();
        self
    }

    pub fn parse_error(detail: impl std::fmt::Display) -> Self {
        Self::new(
            codes::PARSE_ERROR,
            format!("request is not valid json: {detail}"),
        )
    }

    pub fn invalid_request(detail: impl std::fmt::Display) -> Self {
        Self::new(
            codes::INVALID_REQUEST,
            format!("invalid json-rpc request: {detail}"),
        )
    }

    pub fn method_not_found(method: &str) -> Self {
        let shown: String = method.chars().take(64).collect();
        Self::new(
            codes::METHOD_NOT_FOUND,
            format!("method not found: {shown:?}"),
        )
    }

    pub fn invalid_params(detail: impl std::fmt::Display) -> Self {
        Self::new(codes::INVALID_PARAMS, format!("invalid params: {detail}"))
    }

    pub fn invalid_parameter(detail: impl Into<String>) -> Self {
        Self::new(codes::INVALID_PARAMETER, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(codes::NOT_FOUND, detail)
    }

    pub fn deserialization(detail: impl Into<String>) -> Self {
        Self::new(codes::DESERIALIZATION_ERROR, detail)
    }

    pub fn database(detail: impl std::fmt::Display) -> Self {
        Self::new(codes::DATABASE_ERROR, format!("storage error: {detail}"))
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::new(codes::INTERNAL_ERROR, format!("internal error: {detail}"))
    }

    /// The reject class and code of a transaction rejection, if this is one.
    pub fn reject_data(&self) -> Option<RejectData> {
        if self.code != codes::TX_REJECTED {
            return None;
        }
        serde_json::from_value(self.data.clone()?).ok()
    }
}

/// The `data` of a [`codes::TX_REJECTED`] error and the rejection fields of a
/// `testmempoolaccept` result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectData {
    /// `consensus`, `policy`, `missing_inputs`, `conflict` or `premature`.
    pub reject_class: String,
    /// A stable, short code such as `missing-inputs` or `double-spend`.
    pub reject_code: String,
    /// For a conflict: the transaction already holding the disputed coin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflicting_txid: Option<Txid>,
}

/// A JSON-RPC 2.0 request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// "2.0", or left out; the server refuses any other value (`spec/rpc.md`).
    #[serde(default)]
    pub jsonrpc: String,
    pub method: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub params: Value,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub id: Value,
}

/// A JSON-RPC 2.0 response: exactly one of `result` and `error` is present.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub jsonrpc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RpcError>,
    pub id: Value,
}

impl Response {
    pub fn ok(id: Value, result: Value) -> Self {
        Response {
            jsonrpc: "2.0".into(),
            result: Some(result),
            error: None,
            id,
        }
    }

    pub fn err(id: Value, error: RpcError) -> Self {
        Response {
            jsonrpc: "2.0".into(),
            result: None,
            error: Some(error),
            id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_with_optional_fields() {
        let r: Request = serde_json::from_str(r#"{"method":"getblockcount"}"#).expect("parses");
        assert_eq!(
            (r.method.as_str(), r.params.is_null(), r.id.is_null()),
            ("getblockcount", true, true)
        );
        assert!(serde_json::from_str::<Request>(r#"{"id":1}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"method":7}"#).is_err());
    }

    #[test]
    fn rejections_carry_class_code_and_conflict() {
        let txid = Txid([7; 32]);
        let e = RpcError::new(codes::TX_REJECTED, "transaction rejected").with_data(RejectData {
            reject_class: "conflict".into(),
            reject_code: "double-spend".into(),
            conflicting_txid: Some(txid),
        });
        let round: RpcError =
            serde_json::from_str(&serde_json::to_string(&e).expect("json")).expect("parses");
        let data = round.reject_data().expect("reject data");
        assert_eq!(data.conflicting_txid, Some(txid));
        assert!(RpcError::not_found("x").reject_data().is_none());
    }

    #[test]
    fn responses_hold_a_result_or_an_error() {
        let ok = serde_json::to_value(Response::ok(Value::from(1), Value::from(5))).expect("json");
        assert_eq!(
            ok,
            serde_json::json!({"jsonrpc": "2.0", "result": 5, "id": 1})
        );
        let err = serde_json::to_value(Response::err(Value::Null, RpcError::method_not_found("x")))
            .expect("json");
        assert_eq!(
            err["error"]["code"],
            serde_json::json!(codes::METHOD_NOT_FOUND)
        );
        assert!(err.get("result").is_none());
    }
}

/// A JSON value parsed by [`parse_json_strict`].
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Strict::deserialize(d).map(|s| s.0)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(v)) = seq.next_element()? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                let shown: String = key.chars().take(40).collect();
                return Err(serde::de::Error::custom(format!(
                    "the key {shown:?} appears twice in one object"
                )));
            }
            let Strict(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

/// Parses JSON, refusing an object that holds a key twice: `{"method": "a", "method":
/// "b"}` means different things to different parsers (first or last wins), so a
/// request that a proxy checked as one method could run as another. A refusal is a
/// data error (`serde_json::Error::is_data`); bad syntax is a syntax error.
pub fn parse_json_strict(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<Strict>(bytes).map(|s| s.0)
}

#[cfg(test)]
mod strict_tests {
    use super::*;

    #[test]
    fn duplicate_keys_are_refused_at_any_depth_and_the_rest_parses_as_usual() {
        let ok =
            br#"{"jsonrpc":"2.0","method":"help","params":[1,2.5,null,true,{"a":"b"}],"id":-1}"#;
        let plain: Value = serde_json::from_slice(ok).expect("plain");
        assert_eq!(parse_json_strict(ok).expect("strict"), plain);
        for dup in [
            &br#"{"method":"help","method":"stop"}"#[..],
            br#"[{"id":1,"params":{"x":1,"x":2},"method":"getblock"}]"#,
        ] {
            let e = parse_json_strict(dup).expect_err("duplicate");
            assert!(e.is_data(), "{e}");
            assert!(e.to_string().contains("appears twice"), "{e}");
        }
        assert!(parse_json_strict(b"{").expect_err("eof").is_eof());
        assert!(parse_json_strict(b"{x}").expect_err("syntax").is_syntax());
    }
}
