//! What a hostile or careless RPC client can do, and what it cannot: idle and half-sent
//! connections are closed and never lock out a new client; ambiguous requests (two
//! "method" keys, "jsonrpc":"1.0") are refused; a batch cannot multiply `verifychain`;
//! an out-of-range verbosity gets the code the spec's table names.

#![allow(clippy::panic)] // test code: a panic is how a test reports failure

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use settle_rpc::{Auth, RpcClient, codes};
use settle_tests::node::*;
use settle_tests::rogue::metric;

/// Header and body timeouts of the node under test: short, so the test takes seconds.
const TIMEOUT_MS: u64 = 600;
/// Its connection cap.
const MAX_CONNECTIONS: usize = 16;

fn error_of(body: &str) -> (i64, String) {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not json ({e}): {body}"));
    (
        v["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("no error code: {body}")),
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

/// Reads until the server closes the connection (or 10 s pass); what it sent.
fn read_until_closed(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server kept the connection open: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn idle_and_half_sent_connections_are_closed_and_never_lock_out_a_new_client() {
    let mut node = TestNode::start_dev();
    node.write_config(&format!(
        "[rpc]\nheader_timeout_ms = {TIMEOUT_MS}\nbody_timeout_ms = {TIMEOUT_MS}\n\
         max_connections = {MAX_CONNECTIONS}\n"
    ));
    node.restart();
    let port = node.rpc_port;
    let chain_id = node.chain_id();
    let auth = std::fs::read_to_string(node.datadir.join(".cookie")).expect("cookie");
    let basic = base64_encode(auth.trim());

    // The attacker: four times the cap in connections, idle, with headers cut off
    // halfway, and with a body announced and never finished.
    let mut idle = Vec::new();
    let mut half_headers = Vec::new();
    let mut half_bodies = Vec::new();
    for i in 0..4 * MAX_CONNECTIONS {
        let mut s = connect(port);
        match i % 3 {
            0 => idle.push(s),
            1 => {
                let _ = s.write_all(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty");
                half_headers.push(s);
            }
            _ => {
                let _ = write!(
                    s,
                    "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {basic}\r\n\
                     Content-Length: 100\r\n\r\n{{\"jsonrpc\""
                );
                half_bodies.push(s);
            }
        }
    }

    // A new client gets its answer within about one timeout, not never.
    let started = Instant::now();
    let client = RpcClient::with_timeout(node.url(), Auth::cookie_in(&node.datadir), 5_000);
    let info = wait_until(5 * TIMEOUT_MS + 3_000, "a new client to be served", || {
        client.get_blockchain_info().ok()
    });
    assert_eq!(info.chain_id, chain_id);
    assert!(
        started.elapsed() < Duration::from_millis(5 * TIMEOUT_MS + 3_000),
        "served after {:?}",
        started.elapsed()
    );

    // Every hostile connection is closed by the server; a half-sent body gets a 408.
    for s in idle.iter_mut().chain(half_headers.iter_mut()) {
        let answer = read_until_closed(s);
        assert!(!answer.contains("200 OK"), "{answer}");
    }
    let timed_out_bodies = half_bodies
        .iter_mut()
        .map(read_until_closed)
        .filter(|a| a.contains("408"))
        .count();
    assert!(
        timed_out_bodies >= 1,
        "no half-sent body was answered 408 (some were refused at the cap)"
    );

    // The metrics count it all, and the gauge comes back down.
    assert!(metric(port, "settle_rpc_connections_refused_total") >= 1);
    assert!(metric(port, "settle_rpc_connections_timed_out_total") >= 1);
    let open = wait_until(5_000, "connections to close", || {
        let n = metric(port, "settle_rpc_connections_open");
        (n <= 1).then_some(n)
    });
    assert!(open <= 1);
    assert!(node.is_running());
}

/// Standard base64 of `text` (for a hand-written Authorization header).
fn base64_encode(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn ambiguous_requests_are_refused_with_the_reason() {
    let node = TestNode::start_dev();
    let client = node.client();
    let before = node.info();

    // Two "method" keys: one parser runs the first, another the last. Refused.
    let (status, body) = client
        .post_raw(r#"{"jsonrpc":"2.0","id":1,"method":"getblockcount","method":"stop"}"#)
        .expect("answer");
    assert_eq!(status, 200);
    let (code, message) = error_of(&body);
    assert_eq!(code, codes::INVALID_REQUEST, "{message}");
    assert!(message.contains("\"method\" appears twice"), "{message}");
    // Duplicates inside params too, and inside a batch.
    let (_, body) = client
        .post_raw(r#"[{"jsonrpc":"2.0","id":1,"method":"getblockhash","params":{"height":0,"height":1}}]"#)
        .expect("answer");
    assert_eq!(error_of(&body).0, codes::INVALID_REQUEST);

    // JSON-RPC 1.0 (or any other version) is refused; 2.0 and none are served.
    for version in [json!("1.0"), json!("3.0"), json!(2), json!(null)] {
        let request = json!({"jsonrpc": version, "id": 7, "method": "getblockcount"});
        let (_, body) = client.post_raw(request.to_string()).expect("answer");
        let (code, message) = error_of(&body);
        assert_eq!(code, codes::INVALID_REQUEST, "{version}: {message}");
        assert!(message.contains("\"jsonrpc\" must be \"2.0\""), "{message}");
        let v: Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["id"], json!(7), "the id is echoed");
    }
    let (_, body) = client
        .post_raw(r#"{"id":1,"method":"getblockcount"}"#)
        .expect("answer");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["result"], json!(before.blocks));

    // verbosity 3: a number of the right type with a bad value, -8 as the table says.
    let hash = client.get_block_hash(0).expect("genesis");
    let err = client
        .call::<Value>("getblock", json!([hash, 3]))
        .expect_err("verbosity 3");
    assert_eq!(rpc_code(&err), codes::INVALID_PARAMETER, "{err}");
    let err = client
        .call::<Value>("getblock", json!([hash, "two"]))
        .expect_err("a string");
    assert_eq!(rpc_code(&err), codes::INVALID_PARAMS, "{err}");
    assert_eq!(node.info().blocks, before.blocks);
}

#[test]
fn a_batch_runs_verifychain_at_most_once() {
    let node = TestNode::start_dev();
    let client = node.client();
    // The largest batch allowed: 99 verifychain calls and one other.
    let batch: Vec<Value> = (0..99)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "verifychain"}))
        .chain(std::iter::once(
            json!({"jsonrpc": "2.0", "id": "count", "method": "getblockcount"}),
        ))
        .collect();
    let started = Instant::now();
    let (_, body) = client
        .post_raw(Value::Array(batch).to_string())
        .expect("answer");
    let answers: Vec<Value> = serde_json::from_str(&body).expect("json array");
    assert_eq!(answers.len(), 100);
    assert_eq!(
        answers[0]["result"]["ok"],
        json!(true),
        "the first one runs"
    );
    for a in &answers[1..99] {
        assert_eq!(a["error"]["code"], json!(codes::INVALID_REQUEST), "{a}");
        assert!(
            a["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("at most one verifychain")),
            "{a}"
        );
    }
    assert_eq!(answers[99]["id"], json!("count"));
    assert!(answers[99]["result"].is_u64(), "the rest of the batch runs");
    eprintln!(
        "a batch of 99 verifychain answered in {:?}",
        started.elapsed()
    );
}
