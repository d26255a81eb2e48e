//! Error replies name the offending input by a short prefix only: a
//! megabyte channel name gets an error of a few hundred bytes, over the
//! WebSocket and over HTTP, whether the input is ASCII, multi-byte or full
//! of characters that need escaping. A witness is served meanwhile.

mod common;

use common::*;
use serde_json::{json, Value};

/// Largest error reply accepted from a megabyte of input.
const SMALL: usize = 1024;

fn inputs() -> Vec<String> {
    vec![
        "a".repeat(1_000_000),
        "é".repeat(400_000),
        "\u{1}\"".repeat(100_000),
        "日本".repeat(150_000),
    ]
}

/// Checks an error message: bounded, and it starts to show the input.
fn assert_short(r: &Value, size: usize) {
    assert!(
        size < SMALL,
        "an error of {size} bytes: {}",
        &r.to_string()[..200]
    );
    let m = r["message"]
        .as_str()
        .or(r["error"]["message"].as_str())
        .unwrap();
    assert!(
        m.len() <= hubbub_protocol::excerpt::MAX_MESSAGE_BYTES,
        "{m}"
    );
}

#[tokio::test]
async fn websocket_errors_quote_a_short_prefix() {
    let srv = TestServer::start(&[("namespaces.chat.publish", "true")]).await;
    let (mut witness, _) = connect(&srv.ws_url(""), None).await;
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    for input in inputs() {
        let name = serde_json::to_string(&input).unwrap();
        for (command, code) in [
            (
                format!(r#"{{"type":"subscribe","id":1,"channels":[{name}]}}"#),
                "bad_request",
            ),
            (
                format!(r#"{{"type":"unsubscribe","id":1,"channels":[{name}]}}"#),
                "bad_request",
            ),
            (
                format!(r#"{{"type":"history","id":1,"channel":{name}}}"#),
                "bad_request",
            ),
            (
                format!(
                    r#"{{"type":"publish","id":1,"channel":{name},"event_type":"e","data":1}}"#
                ),
                "bad_request",
            ),
            (
                format!(
                    r#"{{"type":"subscribe","id":1,"channels":["a"],"since":{{{name}:{{"offset":1,"epoch":"e"}}}}}}"#
                ),
                "bad_request",
            ),
            // serde's own messages quote input too.
            (
                format!(r#"{{"type":"history","id":1,"channel":"a","limit":{name}}}"#),
                "invalid_message",
            ),
            (format!(r#"{{"type":{name},"id":1}}"#), "unknown_type"),
        ] {
            let (r, size) = call_text(&mut ws, &command).await;
            assert_eq!(r["type"], "error");
            assert_eq!(r["code"], code, "{}", &command[..80]);
            assert_eq!(r["correlation_id"], 1);
            assert_short(&r, size);
        }
        let r = call(&mut witness, json!({"type": "ping"})).await;
        assert_eq!(r["type"], "pong");
    }
}

#[tokio::test]
async fn http_errors_quote_a_short_prefix() {
    let srv = TestServer::start(&[]).await;
    let (mut witness, _) = connect(&srv.ws_url(""), None).await;
    for input in inputs() {
        let s = serde_json::to_string(&input).unwrap();
        for (path, body) in [
            (
                "/api/publish",
                format!(r#"{{"channel":{s},"event_type":"e","data":1}}"#),
            ),
            (
                "/api/broadcast",
                format!(r#"{{"channels":["a",{s}],"event_type":"e","data":1}}"#),
            ),
            ("/api/users/u/disconnect", format!(r#"{{"reconnect":{s}}}"#)),
            (
                "/api/publish",
                format!(r#"{{"channel":"a","event_type":"e","data":1,{s}:"#),
            ),
        ] {
            let (status, answer, size) = post_text(&srv, path, &body).await;
            assert_eq!(status, 400, "{path}");
            assert_eq!(answer["error"]["code"], "bad_request");
            assert_short(&answer, size);
        }
        let r = call(&mut witness, json!({"type": "ping"})).await;
        assert_eq!(r["type"], "pong");
    }
    // A long query value.
    let long = "9".repeat(4_000);
    let r = reqwest::get(srv.http(&format!("/api/channels/a/history?since_offset={long}")))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let bytes = r.bytes().await.unwrap();
    assert!(bytes.len() < SMALL, "{}", bytes.len());
}
