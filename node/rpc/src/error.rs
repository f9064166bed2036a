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
    /// "2.0"; may be left out (bitcoind's clients send "1.0" or nothing).
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
