//! Bad input over RPC gets an error, never crashes the node, and changes nothing.

#![allow(clippy::panic)] // test code: a panic is how a test reports failure

use serde_json::{Value, json};
use settle_rpc::{Auth, ClientError, MAX_REQUEST_BODY_BYTES, RpcClient, codes};
use settle_tests::node::*;

fn error_of(body: &str) -> (i64, String) {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not json ({e}): {body}"));
    let e = &v["error"];
    (
        e["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("no error code: {body}")),
        e["message"].as_str().unwrap_or_default().to_owned(),
    )
}

#[test]
fn malformed_and_truncated_transactions_are_rejected_without_effect() {
    let mut node = TestNode::start_dev();
    let client = node.client();
    let keys = node.keys();
    let chain_id = node.chain_id();
    let alice = new_key();
    let contract = cash_contract(&keys.issuer_cash, "Garbage euro", "GRBG");
    let (tx, _) = issue_tx(chain_id, &contract, &keys.issuer_cash, &[(p2k(&alice), 5)]);
    let good_hex = hex::encode(settle_assets::serialize(&tx));
    let before = node.info();

    let cases: Vec<(String, &str)> = vec![
        ("zz".into(), "not valid hex"),
        ("abc".into(), "not valid hex"),
        (String::new(), "does not decode"),
        (good_hex[..good_hex.len() - 10].into(), "does not decode"),
        (good_hex[..20].into(), "does not decode"),
        (format!("{good_hex}00"), "trailing"),
        ("ff".repeat(64), "does not decode"),
    ];
    for (hex, expected) in &cases {
        let err = client
            .send_raw_transaction_hex(hex)
            .expect_err("garbage rejected");
        assert_eq!(
            rpc_code(&err),
            codes::DESERIALIZATION_ERROR,
            "{hex:.40}: {err}"
        );
        let message = &err.rpc().expect("rpc").message;
        assert!(message.contains(expected), "{hex:.40}: {message}");
        let results: Vec<settle_rpc::MempoolAcceptResult> = client
            .call("testmempoolaccept", json!([[hex]]))
            .expect("testmempoolaccept answers");
        assert!(!results[0].allowed);
    }
    // Wrong parameter types and counts.
    for (method, params) in [
        ("sendrawtransaction", json!([])),
        ("sendrawtransaction", json!([42])),
        ("sendrawtransaction", json!([good_hex, 1, 2])),
        ("getblockhash", json!(["one"])),
        ("getblockhash", json!([-1])),
        ("getblock", json!(["00"])),
        ("getblock", json!([before.best_block_hash, 7])),
        ("listunspent", json!({"addresses": ["not-an-address"]})),
        ("listunspent", json!({"addresses": "dstl1..."})),
        ("listunspent", json!({"nonsense": true})),
        ("getassetinfo", json!(["xyz"])),
        ("testmempoolaccept", json!(["notalist"])),
    ] {
        let err = client
            .call::<Value>(method, params.clone())
            .expect_err("bad params rejected");
        let code = rpc_code(&err);
        assert!(
            [
                codes::INVALID_PARAMS,
                codes::INVALID_PARAMETER,
                codes::DESERIALIZATION_ERROR
            ]
            .contains(&code),
            "{method} {params}: {err}"
        );
    }
    let err = client
        .call::<Value>("getblockhash", json!([before.blocks + 100]))
        .expect_err("beyond tip");
    assert_eq!(rpc_code(&err), codes::INVALID_PARAMETER);
    let err = client
        .call::<Value>("nosuchmethod", json!([]))
        .expect_err("unknown method");
    assert_eq!(rpc_code(&err), codes::METHOD_NOT_FOUND);
    let err = client
        .call::<Value>("getrawtransaction", json!([tx.txid()]))
        .expect_err("unknown transaction");
    assert_eq!(rpc_code(&err), codes::NOT_FOUND);

    assert!(node.is_running());
    let after = node.info();
    assert_eq!(after.blocks, before.blocks);
    assert_eq!(after.mempool_size, 0);
    assert_eq!(after.utxo_commitment, before.utxo_commitment);
    // The good transaction still goes through afterwards.
    node.wait_confirmed(
        &client
            .send_raw_transaction_hex(&good_hex)
            .expect("valid tx accepted"),
    );
}

#[test]
fn malformed_requests_and_oversize_bodies_get_json_rpc_errors() {
    let mut node = TestNode::start_dev();
    let client = node.client();
    let before = node.info();

    let (status, body) = client.post_raw("{not json").expect("answer");
    assert_eq!(status, 200);
    assert_eq!(error_of(&body).0, codes::PARSE_ERROR);

    let (_, body) = client.post_raw("[]").expect("answer");
    assert_eq!(error_of(&body).0, codes::INVALID_REQUEST);

    let (_, body) = client
        .post_raw(r#"{"jsonrpc":"2.0","id":1}"#)
        .expect("answer");
    assert_eq!(error_of(&body).0, codes::INVALID_REQUEST);

    let (_, body) = client
        .post_raw(r#"{"jsonrpc":"2.0","id":1,"method":7}"#)
        .expect("answer");
    assert_eq!(error_of(&body).0, codes::INVALID_REQUEST);

    let (_, body) = client.post_raw("\u{0}\u{1}\u{2}binary").expect("answer");
    assert_eq!(error_of(&body).0, codes::PARSE_ERROR);

    // A batch answers each request in order.
    let (_, body) = client
        .post_raw(r#"[{"jsonrpc":"2.0","id":1,"method":"getblockcount"},{"jsonrpc":"2.0","id":2,"method":"nope"}]"#)
        .expect("answer");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v[0]["result"], json!(before.blocks));
    assert_eq!(v[1]["error"]["code"], json!(codes::METHOD_NOT_FOUND));
    assert_eq!(
        (v[0]["id"].clone(), v[1]["id"].clone()),
        (json!(1), json!(2))
    );

    // Over the body limit: a clear error, and the node carries on.
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"sendrawtransaction","params":["{}"]}}"#,
        "00".repeat(MAX_REQUEST_BODY_BYTES / 2 + 10)
    );
    let (status, body) = client.post_raw(huge).expect("answer");
    assert_eq!(status, 413);
    let (code, message) = error_of(&body);
    assert_eq!(code, codes::REQUEST_TOO_LARGE);
    assert!(message.contains("exceeds the limit"), "{message}");

    // A transaction hex under the body limit but over the transaction limit.
    let err = client
        .send_raw_transaction_hex(&"00".repeat(settle_assets::limits::MAX_TX_SIZE_BYTES + 1))
        .expect_err("oversize transaction");
    assert_eq!(rpc_code(&err), codes::DESERIALIZATION_ERROR);

    assert!(node.is_running());
    let after = node.info();
    assert_eq!((after.blocks, after.mempool_size), (before.blocks, 0));
}

#[test]
fn bad_credentials_and_an_unreachable_node_give_clear_client_errors() {
    let node = TestNode::start_dev();
    let wrong = RpcClient::new(
        node.url(),
        Auth::UserPass {
            user: "__cookie__".into(),
            password: "guess".into(),
        },
    );
    match wrong.get_blockchain_info() {
        Err(ClientError::BadCredentials { .. }) => {}
        other => panic!("expected BadCredentials, got {other:?}"),
    }
    let missing = RpcClient::new(
        node.url(),
        Auth::CookieFile(node.datadir.join("no-such-cookie")),
    );
    let err = missing.get_blockchain_info().expect_err("no cookie file");
    assert!(matches!(err, ClientError::Cookie { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-cookie"), "{err}");

    let nobody = RpcClient::with_timeout(
        format!("http://127.0.0.1:{}", free_port()),
        Auth::UserPass {
            user: "u".into(),
            password: "p".into(),
        },
        2_000,
    );
    let err = nobody.get_block_count().expect_err("nobody listening");
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("cannot reach the node"), "{err}");

    // A correct password works.
    let cookie = std::fs::read_to_string(node.datadir.join(".cookie")).expect("cookie");
    let (user, password) = cookie.trim().split_once(':').expect("user:password");
    let right = RpcClient::new(
        node.url(),
        Auth::UserPass {
            user: user.into(),
            password: password.into(),
        },
    );
    assert_eq!(right.get_block_count().expect("authorised"), 0);
}
