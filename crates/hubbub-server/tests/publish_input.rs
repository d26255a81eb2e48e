//! Bad input on the publish paths and in error replies, over real sockets:
//! payloads some encoding cannot carry are refused at publish (HTTP and
//! WebSocket, JSON and MessagePack), bodies must be objects, history
//! events carry their timestamp, and errors never echo a large input.
//! Every case checks that the subscribers and a witness are served.

mod common;

use common::*;
use futures_util::SinkExt;
use hubbub_protocol::MAX_DATA_DEPTH;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::Message as TMessage;

const MSGPACK: Option<&str> = Some("hubbub.msgpack.v1");

/// A hub where clients may publish to `chat:`.
async fn hub() -> TestServer {
    TestServer::start(&[("namespaces.chat.publish", "true")]).await
}

fn nested(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// Payloads valid as JSON that some encoding cannot carry alike, with a
/// word the refusal must contain.
fn unencodable() -> Vec<(String, &'static str)> {
    vec![
        (nested(MAX_DATA_DEPTH + 1), "deeper than"),
        (nested(128), "deeper than"),
        (nested(100_000), "deeper than"),
        (r#"{"s":"\ud800"}"#.into(), "lone surrogate"),
        (r#"["ok","\udfff"]"#.into(), "lone surrogate"),
        ("1e999".into(), "beyond a 64-bit float"),
        ("[-1E400]".into(), "beyond a 64-bit float"),
        ("18446744073709551616".into(), "beyond 64 bits"),
        (r#"{"n":-9223372036854775809}"#.into(), "beyond 64 bits"),
        (r#"{"a":1,"a":2}"#.into(), "twice"),
        (r#"{"k":{"x":1,"\u0078":2}}"#.into(), "twice"),
    ]
}

/// A MessagePack `publish` to `chat:x` whose data nests `depth` arrays.
fn msgpack_publish(depth: usize) -> Vec<u8> {
    let mut b = vec![0x85];
    for (k, v) in [("type", "publish"), ("id", "mp"), ("channel", "chat:x")] {
        b.push(0xa0 | k.len() as u8);
        b.extend_from_slice(k.as_bytes());
        b.push(0xa0 | v.len() as u8);
        b.extend_from_slice(v.as_bytes());
    }
    b.extend_from_slice(b"\xaaevent_type\xa1e\xa4data");
    b.extend(std::iter::repeat_n(0x91, depth));
    b.push(0x01);
    b
}

/// Subscribers in both encodings and a witness on another channel.
struct Audience {
    json: Ws,
    msgpack: Ws,
    witness: Ws,
}

impl Audience {
    async fn join(srv: &TestServer) -> Audience {
        let (mut json, _) = connect(&srv.ws_url(""), None).await;
        subscribe(&mut json, &["chat:x"]).await;
        let (mut msgpack, _) = connect(&srv.ws_url(""), MSGPACK).await;
        send(
            &mut msgpack,
            json!({"type": "subscribe", "channels": ["chat:x"]}),
        )
        .await;
        assert_eq!(recv(&mut msgpack).await["type"], "subscribed");
        let (witness, _) = connect(&srv.ws_url(""), None).await;
        Audience {
            json,
            msgpack,
            witness,
        }
    }

    /// Both subscribers get `data` as their very next message (nothing
    /// refused slipped through before it), and the witness is answered.
    async fn next_is(&mut self, data: &Value) {
        for ws in [&mut self.json, &mut self.msgpack] {
            let ev = recv(ws).await;
            assert_eq!(ev["type"], "event", "{ev}");
            assert_eq!(&ev["data"], data, "{ev}");
        }
        let r = call(&mut self.witness, json!({"type": "ping", "id": "w"})).await;
        assert_eq!(r["type"], "pong", "{r}");
    }
}

#[tokio::test]
async fn payloads_an_encoding_cannot_carry_are_refused_on_every_path() {
    let srv = hub().await;
    let mut a = Audience::join(&srv).await;
    let (mut publisher, _) = connect(&srv.ws_url("?user_id=pub"), None).await;
    let (_user, _) = connect(&srv.ws_url("?user_id=u"), None).await;
    for (data, says) in unencodable() {
        let publish = format!(r#"{{"channel":"chat:x","event_type":"e","data":{data}}}"#);
        let broadcast = format!(r#"{{"channels":["chat:x"],"event_type":"e","data":{data}}}"#);
        let to_user = format!(r#"{{"event_type":"e","data":{data}}}"#);
        for (path, body) in [
            ("/api/publish", &publish),
            ("/api/broadcast", &broadcast),
            ("/api/users/u/send", &to_user),
        ] {
            let (status, answer, _) = post_text(&srv, path, body).await;
            assert_eq!(
                status,
                400,
                "{path} {}: {answer}",
                &data[..data.len().min(40)]
            );
            assert_eq!(answer["error"]["code"], "bad_request", "{answer}");
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains(says), "{path}: {message}");
        }
        let command = format!(
            r#"{{"type":"publish","id":7,"channel":"chat:x","event_type":"e","data":{data}}}"#
        );
        let (r, _) = call_text(&mut publisher, &command).await;
        assert_eq!(r["type"], "error", "{r}");
        assert_eq!(r["code"], "bad_request", "{r}");
        assert_eq!(r["correlation_id"], 7, "{r}");
        assert!(r["message"].as_str().unwrap().contains(says), "{r}");
    }
    // The same from a MessagePack client.
    let (mut mp, _) = connect(&srv.ws_url(""), MSGPACK).await;
    mp.send(TMessage::Binary(msgpack_publish(MAX_DATA_DEPTH + 1).into()))
        .await
        .unwrap();
    let r = recv(&mut mp).await;
    assert_eq!(
        (r["code"].as_str(), r["correlation_id"].as_str()),
        (Some("bad_request"), Some("mp")),
        "{r}"
    );
    mp.send(TMessage::Binary(msgpack_publish(MAX_DATA_DEPTH).into()))
        .await
        .unwrap();
    assert_eq!(recv(&mut mp).await["type"], "published");
    a.next_is(&json!(serde_json::from_str::<Value>(&nested(
        MAX_DATA_DEPTH
    ))
    .unwrap()))
        .await;
    // Nothing refused took an offset: the next event is the second.
    let (status, answer, _) = post_text(
        &srv,
        "/api/publish",
        r#"{"channel":"chat:x","event_type":"e","data":{"ok":18446744073709551615}}"#,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["offset"], 2, "{answer}");
    assert_eq!(answer["subscribers"], 2, "{answer}");
    // The largest integer reaches MessagePack as the same integer.
    a.next_is(&json!({"ok": 18446744073709551615u64})).await;
}

#[tokio::test]
async fn recovery_and_history_count_every_event_in_both_encodings() {
    let srv = hub().await;
    let mut a = Audience::join(&srv).await;
    for n in 1..=3 {
        let (status, r, _) = post_text(
            &srv,
            "/api/publish",
            &format!(r#"{{"channel":"chat:x","event_type":"e","data":{{"n":{n}}}}}"#),
        )
        .await;
        assert_eq!(status, 200, "{r}");
        a.next_is(&json!({"n": n})).await;
    }
    let (status, r, _) = post_text(
        &srv,
        "/api/publish",
        r#"{"channel":"chat:x","event_type":"e","data":"\ud83d"}"#,
    )
    .await;
    assert_eq!(
        (status, r["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    let http = srv.get_json("/api/channels/chat:x/history").await;
    let epoch = http["epoch"].as_str().unwrap().to_owned();
    assert_eq!(http["events"].as_array().unwrap().len(), 3, "{http}");
    for protocol in [None, MSGPACK] {
        let (mut ws, _) = connect(&srv.ws_url(""), protocol).await;
        send(
            &mut ws,
            json!({"type": "subscribe", "channels": ["chat:x"],
                   "since": {"chat:x": {"offset": 0, "epoch": epoch}}}),
        )
        .await;
        let reply = recv(&mut ws).await;
        assert_eq!(reply["channels"][0]["recovered"], true, "{reply}");
        assert_eq!(reply["channels"][0]["missed"], 3, "{reply}");
        let mut live = Vec::new();
        for _ in 0..3 {
            live.push(recv(&mut ws).await);
        }
        // `history` answers in every encoding, each event with the
        // timestamp it carried live, and so does the HTTP history.
        send(
            &mut ws,
            json!({"type": "history", "id": 1, "channel": "chat:x"}),
        )
        .await;
        let h = recv(&mut ws).await;
        assert_eq!(h["type"], "history", "{h}");
        assert_eq!(h["correlation_id"], 1, "{h}");
        for (i, ev) in live.iter().enumerate() {
            assert!(ev["timestamp"].as_u64().is_some(), "{ev}");
            for listed in [&h["events"][i], &http["events"][i]] {
                assert_eq!(listed["timestamp"], ev["timestamp"], "{listed}");
                assert_eq!(listed["offset"], ev["offset"], "{listed}");
                assert_eq!(listed["data"], ev["data"], "{listed}");
            }
        }
    }
    // The subscribers from before are still served.
    let (status, _, _) = post_text(
        &srv,
        "/api/publish",
        r#"{"channel":"chat:x","event_type":"e","data":{"n":4}}"#,
    )
    .await;
    assert_eq!(status, 200);
    a.next_is(&json!({"n": 4})).await;
}

#[tokio::test]
async fn bodies_that_are_not_objects_are_refused() {
    let srv = hub().await;
    let mut a = Audience::join(&srv).await;
    // Read by position, this would publish 1 to chat:x.
    for (path, body) in [
        ("/api/publish", r#"["chat:x","e",1]"#),
        ("/api/broadcast", r#"[["chat:x"],"e",1]"#),
        ("/api/users/u/send", r#"["e",1]"#),
        ("/api/users/u/disconnect", r#"["bye",false]"#),
        ("/api/connections/1/disconnect", "[]"),
        ("/api/publish", r#""chat:x""#),
        ("/api/publish", "  \n[]"),
    ] {
        let (status, answer, _) = post_text(&srv, path, body).await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert_eq!(answer["error"]["code"], "bad_request", "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("must be a JSON object"),
            "{answer}"
        );
    }
    let (status, _, _) = post_text(
        &srv,
        "/api/publish",
        r#"{"channel":"chat:x","event_type":"e","data":[1]}"#,
    )
    .await;
    assert_eq!(status, 200);
    a.next_is(&json!([1])).await;
}
