//! The security suite (issue 5; PROTOCOL.md sections 1, 3, 5, 9;
//! HTTP_API.md "Who may call"). Every case is a real connection to a real
//! hub and asserts the exact status or code of the spec; and in every case
//! a client connected beforehand is still served afterwards.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use hubbub_server::auth::jwt::TokenSigner;
use serde_json::{json, Value};

const SECRET: &str = "security-suite-secret-0123456789abcdef";
/// The API key of production hubs, which refuse to start without one.
const API_KEY: &str = "security-suite-api-key";

fn key_file(name: &str) -> String {
    format!("{}/tests/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn now_s() -> u64 {
    hubbub_server::now_ms() / 1000
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// An HS256 token for `sub`, valid for an hour, with `extra` claims.
fn token(sub: &str, extra: Value) -> String {
    let mut claims = json!({"sub": sub, "exp": now_s() + 3600});
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    TokenSigner::hs256(SECRET.as_bytes()).sign(&claims).unwrap()
}

/// A hub that requires HS256 tokens (production mode), plus `extra` settings.
async fn secured(extra: &[(&str, &str)]) -> TestServer {
    let mut o = vec![
        ("server.mode", "production"),
        ("api.key", API_KEY),
        ("auth.hs256_secret", SECRET),
    ];
    o.extend_from_slice(extra);
    TestServer::start(&o).await
}

/// A client connected before the case, to show the hub keeps serving.
struct Witness(Ws);

impl Witness {
    async fn new(srv: &TestServer) -> Witness {
        let url = srv.ws_url(&format!("?token={}", token("witness", json!({}))));
        Witness(connect(&url, None).await.0)
    }

    async fn still_served(&mut self) {
        let r = call(&mut self.0, json!({"type": "ping", "id": "w"})).await;
        assert_eq!(r["type"], "pong", "{r}");
    }
}

/// A WebSocket upgrade on a fresh socket: (status, head, JSON body). An
/// accepted upgrade (101) is closed at once; a refusal is read to its end
/// (the hub closes the socket after it).
async fn handshake(srv: &TestServer, path: &str, extra: &str) -> (u16, String, Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    s.write_all(ws_request(srv.addr, path, extra).as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = async {
        loop {
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await.unwrap_or(0);
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf);
            if n == 0 || (text.starts_with("HTTP/1.1 101") && text.contains("\r\n\r\n")) {
                break;
            }
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("an answer in time");
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let head = text.split("\r\n\r\n").next().unwrap_or("").to_owned();
    (status, head, json_of(&text))
}

/// Asserts a refusal with `status` and `code`, and that the body does not
/// echo `secret` (the token).
async fn refused(
    srv: &TestServer,
    path: &str,
    extra: &str,
    status: u16,
    code: &str,
    secret: &str,
) -> String {
    let (got, head, body) = handshake(srv, path, extra).await;
    assert_eq!(got, status, "{head}\n{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    if !secret.is_empty() {
        let text = body.to_string();
        assert!(
            !text.contains(secret),
            "the refusal echoes the token: {text}"
        );
        // Not even a recognizable part of it.
        for part in secret.split('.').filter(|p| p.len() > 8) {
            assert!(
                !text.contains(part),
                "the refusal echoes part of the token: {text}"
            );
        }
    }
    head
}

async fn refused_token(srv: &TestServer, t: &str) {
    refused(srv, &format!("/ws?token={t}"), "", 401, "unauthorized", t).await;
    // The same through the header.
    refused(
        srv,
        "/ws",
        &format!("Authorization: Bearer {t}\r\n"),
        401,
        "unauthorized",
        t,
    )
    .await;
}

/// Sends a command and returns its reply, skipping channel events.
async fn reply(ws: &mut Ws, v: Value) -> Value {
    send(ws, v).await;
    loop {
        let m = recv(ws).await;
        if m["type"] != "event" {
            return m;
        }
    }
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in metrics"))
}

async fn metrics(srv: &TestServer) -> String {
    reqwest::get(srv.http("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------
// Tokens at the handshake

#[tokio::test]
async fn valid_tokens_connect_by_query_or_header() {
    let srv = secured(&[]).await;
    let t = token("alice", json!({}));
    let (_ws, c) = connect(&srv.ws_url(&format!("?token={t}")), None).await;
    assert_eq!(c["user_id"], "alice");
    let (status, head, _) = handshake(&srv, "/ws", &format!("Authorization: Bearer {t}\r\n")).await;
    assert_eq!(status, 101, "{head}");
    // Both at once is ambiguous.
    let (status, _, body) = handshake(
        &srv,
        &format!("/ws?token={t}"),
        &format!("Authorization: Bearer {t}\r\n"),
    )
    .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn missing_token_when_required_is_401() {
    let srv = secured(&[]).await;
    let mut w = Witness::new(&srv).await;
    let head = refused(&srv, "/ws", "", 401, "unauthorized", "").await;
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: bearer"),
        "{head}"
    );
    // ?user_id= is a development shortcut: refused in production...
    refused(&srv, "/ws?user_id=alice", "", 401, "unauthorized", "").await;
    w.still_served().await;
    // ...and in development when auth is required.
    let dev = TestServer::start(&[("auth.required", "true"), ("auth.hs256_secret", SECRET)]).await;
    refused(&dev, "/ws?user_id=alice", "", 401, "unauthorized", "").await;
    refused(&dev, "/ws", "", 401, "unauthorized", "").await;
    assert!(metric(&metrics(&srv).await, "hubbub_auth_failures_total") >= 2);
}

#[tokio::test]
async fn alg_none_is_refused() {
    let srv = secured(&[]).await;
    let mut w = Witness::new(&srv).await;
    let payload = b64(
        json!({"sub": "alice", "exp": now_s() + 3600, "admin": true})
            .to_string()
            .as_bytes(),
    );
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "None"}),
        json!({"alg": "NONE"}),
    ] {
        let t = format!("{}.{payload}.", b64(header.to_string().as_bytes()));
        refused_token(&srv, &t).await;
        // With a signature part that is not empty, too.
        refused_token(&srv, &format!("{t}c2ln")).await;
    }
    w.still_served().await;
}

#[tokio::test]
async fn hs256_signed_with_the_rs256_public_key_is_refused() {
    // Key confusion: the hub verifies RS256 with this public key; a token
    // claiming HS256 and "signed" with the public key's PEM text as the
    // HMAC secret must not pass.
    let srv = TestServer::start(&[
        ("server.mode", "production"),
        ("api.key", API_KEY),
        ("auth.rs256_public_key_file", &key_file("rs256_public.pem")),
    ])
    .await;
    let private = std::fs::read(key_file("rs256_private.pem")).unwrap();
    let rs = TokenSigner::from_private_key_pem(&private).unwrap();
    assert_eq!(rs.algorithm(), "RS256");
    let good = rs
        .sign(&json!({"sub": "witness", "exp": now_s() + 3600}))
        .unwrap();
    let (mut w, c) = connect(&srv.ws_url(&format!("?token={good}")), None).await;
    assert_eq!(c["user_id"], "witness");

    let public = std::fs::read(key_file("rs256_public.pem")).unwrap();
    let forged = TokenSigner::hs256(&public)
        .sign(&json!({"sub": "mallory", "exp": now_s() + 3600, "admin": true}))
        .unwrap();
    refused_token(&srv, &forged).await;
    // Also with the key's DER bytes and the PEM without its trailing newline.
    let trimmed = String::from_utf8(public.clone()).unwrap();
    let forged = TokenSigner::hs256(trimmed.trim_end().as_bytes())
        .sign(&json!({"sub": "mallory", "exp": now_s() + 3600}))
        .unwrap();
    refused_token(&srv, &forged).await;
    assert_eq!(call(&mut w, json!({"type": "ping"})).await["type"], "pong");
}

#[tokio::test]
async fn es256_tokens_from_a_pem_key() {
    let srv = TestServer::start(&[
        ("server.mode", "production"),
        ("api.key", API_KEY),
        ("auth.es256_public_key_file", &key_file("es256_public.pem")),
    ])
    .await;
    let private = std::fs::read(key_file("es256_private.pem")).unwrap();
    let es = TokenSigner::from_private_key_pem(&private).unwrap();
    assert_eq!(es.algorithm(), "ES256");
    let t = es
        .sign(&json!({"sub": "erin", "exp": now_s() + 60}))
        .unwrap();
    let (_ws, c) = connect(&srv.ws_url(&format!("?token={t}")), None).await;
    assert_eq!(c["user_id"], "erin");
    // An HS256 token is not accepted by an ES256-only hub.
    refused_token(&srv, &token("erin", json!({}))).await;
}

#[tokio::test]
async fn expired_and_not_yet_valid_are_refused() {
    let srv = secured(&[("auth.leeway_s", "5")]).await;
    let mut w = Witness::new(&srv).await;
    refused_token(&srv, &token("alice", json!({"exp": now_s() - 60}))).await;
    refused_token(&srv, &token("alice", json!({"nbf": now_s() + 60}))).await;
    // Within the leeway both pass.
    let t = token("alice", json!({"exp": now_s() - 2, "nbf": now_s() + 2}));
    let (status, head, _) = handshake(&srv, &format!("/ws?token={t}"), "").await;
    assert_eq!(status, 101, "{head}");
    // No exp at all: refused.
    let no_exp = TokenSigner::hs256(SECRET.as_bytes())
        .sign(&json!({"sub": "alice"}))
        .unwrap();
    refused_token(&srv, &no_exp).await;
    w.still_served().await;
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let srv = secured(&[]).await;
    let mut w = Witness::new(&srv).await;
    let t = token("alice", json!({"channels": ["metrics"]}));
    let parts: Vec<&str> = t.split('.').collect();
    let mut claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(parts[1])
            .unwrap(),
    )
    .unwrap();
    claims["sub"] = json!("mallory");
    claims["admin"] = json!(true);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(claims.to_string().as_bytes()),
        parts[2]
    );
    refused_token(&srv, &tampered).await;
    // A changed signature character (in the middle: every bit counts there).
    let mut sig: Vec<char> = parts[2].chars().collect();
    sig[10] = if sig[10] == 'A' { 'B' } else { 'A' };
    let sig: String = sig.into_iter().collect();
    refused_token(&srv, &format!("{}.{}.{sig}", parts[0], parts[1])).await;
    // Signed with another secret.
    let other = TokenSigner::hs256(b"not-the-secret-not-the-secret-not")
        .sign(&json!({"sub": "alice", "exp": now_s() + 60}))
        .unwrap();
    refused_token(&srv, &other).await;
    w.still_served().await;
}

#[tokio::test]
async fn wrong_issuer_and_audience_are_refused() {
    let srv = secured(&[
        ("auth.issuer", "https://idp.example"),
        ("auth.audience", "hubbub"),
    ])
    .await;
    let iss_aud = json!({"iss": "https://idp.example", "aud": "hubbub"});
    let url = srv.ws_url(&format!("?token={}", token("witness", iss_aud)));
    let (mut w, _) = connect(&url, None).await;
    refused_token(
        &srv,
        &token(
            "alice",
            json!({"iss": "https://evil.example", "aud": "hubbub"}),
        ),
    )
    .await;
    refused_token(
        &srv,
        &token(
            "alice",
            json!({"iss": "https://idp.example", "aud": "other"}),
        ),
    )
    .await;
    refused_token(&srv, &token("alice", json!({"aud": "hubbub"}))).await;
    refused_token(&srv, &token("alice", json!({"iss": "https://idp.example"}))).await;
    let ok = token(
        "alice",
        json!({"iss": "https://idp.example", "aud": ["x", "hubbub"]}),
    );
    let (status, _, _) = handshake(&srv, &format!("/ws?token={ok}"), "").await;
    assert_eq!(status, 101);
    assert_eq!(call(&mut w, json!({"type": "ping"})).await["type"], "pong");
}

#[tokio::test]
async fn garbage_tokens_are_refused() {
    let srv = secured(&[]).await;
    let mut w = Witness::new(&srv).await;
    for t in [
        "x",
        "a.b.c",
        "...",
        "e30.e30.e30",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.x.y",
        "%00%ff",
        "%E2%98%83.%E2%98%83.%E2%98%83",
        "Bearer",
    ] {
        refused(&srv, &format!("/ws?token={t}"), "", 401, "unauthorized", "").await;
    }
    // An empty token is a malformed one, not a missing one.
    refused(&srv, "/ws?token=", "", 401, "unauthorized", "").await;
    w.still_served().await;
}

#[tokio::test]
async fn an_oversized_token_is_401_not_431() {
    let srv = secured(&[]).await;
    let mut w = Witness::new(&srv).await;
    // A validly signed token just over 8 KiB, and a 13 KB one: 401, since
    // the request head (16 KiB at most) is still small enough to read.
    for pad in [6200, 10_000] {
        let t = token("alice", json!({"pad": "x".repeat(pad)}));
        assert!(t.len() > 8192 && t.len() < 15_000, "{}", t.len());
        let (status, _, body) = handshake(&srv, &format!("/ws?token={t}"), "").await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["code"], "unauthorized");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("8192"),
            "{body}"
        );
        let (status, _, _) =
            handshake(&srv, "/ws", &format!("Authorization: Bearer {t}\r\n")).await;
        assert_eq!(status, 401);
    }
    // A large token within the limit is fine.
    let t = token("alice", json!({"pad": "x".repeat(5000)}));
    assert!(t.len() < 8192);
    let (status, _, _) = handshake(&srv, &format!("/ws?token={t}"), "").await;
    assert_eq!(status, 101);
    w.still_served().await;
}

#[tokio::test]
async fn tokens_never_reach_the_logs_or_the_api() {
    // The connection list shows users, never credentials.
    let srv = secured(&[]).await;
    let t = token("alice", json!({}));
    let (_ws, _) = connect(&srv.ws_url(&format!("?token={t}")), None).await;
    let list = reqwest::Client::new()
        .get(srv.http("/api/connections"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains("alice"), "{list}");
    assert!(!list.contains(&t[..20]), "{list}");
}

// ---------------------------------------------------------------------------
// Authorization on a live connection

#[tokio::test]
async fn subscribe_and_publish_outside_the_claims_are_forbidden() {
    let srv = secured(&[
        ("namespaces.chat.publish", "true"),
        ("namespaces.news.publish", "true"),
    ])
    .await;
    let mut w = Witness::new(&srv).await;
    let t = token(
        "alice",
        json!({"channels": ["metrics", "room:*", "chat:*"], "publish": ["chat:*"]}),
    );
    let (mut ws, _) = connect(&srv.ws_url(&format!("?token={t}")), None).await;
    subscribe(&mut ws, &["metrics", "room:42", "chat:general"]).await;
    let r = call(
        &mut ws,
        json!({"type": "subscribe", "id": 7, "channels": ["news:x"]}),
    )
    .await;
    assert_eq!(r["type"], "error", "{r}");
    assert_eq!(r["code"], "forbidden");
    assert_eq!(r["correlation_id"], 7);
    // One forbidden channel refuses the whole command.
    let r = call(
        &mut ws,
        json!({"type": "subscribe", "channels": ["metrics", "news:x"]}),
    )
    .await;
    assert_eq!(r["code"], "forbidden", "{r}");
    let r = call(&mut ws, json!({"type": "history", "channel": "news:x"})).await;
    assert_eq!(r["code"], "forbidden", "{r}");
    // Publishing: the claim and the namespace option must both allow it.
    let r = reply(
        &mut ws,
        json!({"type": "publish", "id": 1, "channel": "chat:general", "event_type": "m", "data": 1}),
    )
    .await;
    assert_eq!(r["type"], "published", "{r}");
    let r = call(
        &mut ws,
        json!({"type": "publish", "id": 2, "channel": "news:x", "event_type": "m", "data": 1}),
    )
    .await;
    assert_eq!(r["code"], "forbidden", "{r}");
    let r = call(
        &mut ws,
        json!({"type": "publish", "id": 3, "channel": "room:42", "event_type": "m", "data": 1}),
    )
    .await;
    assert_eq!(r["code"], "forbidden", "{r}");
    w.still_served().await;
    let m = metrics(&srv).await;
    assert!(metric(&m, "hubbub_forbidden_total") >= 5, "{m}");
}

#[tokio::test]
async fn user_channels_belong_to_their_user() {
    let srv = secured(&[]).await;
    let mut w = Witness::new(&srv).await;
    let t = token("alice", json!({"channels": ["metrics"]}));
    let (mut ws, _) = connect(&srv.ws_url(&format!("?token={t}")), None).await;
    // Subscribed to its own on connect.
    let subs = call(&mut ws, json!({"type": "get_subscriptions"})).await;
    assert_eq!(subs["channels"], json!(["user:alice"]), "{subs}");
    let r = call(
        &mut ws,
        json!({"type": "subscribe", "channels": ["user:bob"]}),
    )
    .await;
    assert_eq!(r["code"], "forbidden", "{r}");
    let r = call(&mut ws, json!({"type": "history", "channel": "user:bob"})).await;
    assert_eq!(r["code"], "forbidden", "{r}");
    // Its own is always allowed, whatever `channels` says.
    subscribe(&mut ws, &["user:alice"]).await;
    // Clients never publish to user channels, not even their own.
    let r = call(
        &mut ws,
        json!({"type": "publish", "channel": "user:alice", "event_type": "m", "data": 1}),
    )
    .await;
    assert_eq!(r["code"], "forbidden", "{r}");
    // What the API publishes there arrives.
    let resp = reqwest::Client::new()
        .post(srv.http("/api/publish"))
        .bearer_auth(API_KEY)
        .json(&json!({"channel": "user:alice", "event_type": "note", "data": {"n": 1}}))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let ev = recv(&mut ws).await;
    assert_eq!(ev["channel"], "user:alice", "{ev}");
    assert_eq!(ev["data"]["n"], 1);
    w.still_served().await;
}

#[tokio::test]
async fn private_namespaces_need_a_claim() {
    let srv = secured(&[
        ("namespaces.vip.private", "true"),
        ("namespaces.vip.publish", "true"),
    ])
    .await;
    let mut w = Witness::new(&srv).await;
    // A token without `channels`: public channels only.
    let plain = token("bob", json!({}));
    let (mut ws, _) = connect(&srv.ws_url(&format!("?token={plain}")), None).await;
    subscribe(&mut ws, &["lobby"]).await;
    let r = call(
        &mut ws,
        json!({"type": "subscribe", "channels": ["vip:lounge"]}),
    )
    .await;
    assert_eq!(r["code"], "forbidden", "{r}");
    let r = call(
        &mut ws,
        json!({"type": "publish", "channel": "vip:lounge", "event_type": "m", "data": 1}),
    )
    .await;
    assert_eq!(r["code"], "forbidden", "{r}");
    // A token that names it.
    let vip = token(
        "carol",
        json!({"channels": ["vip:*"], "publish": ["vip:lounge"]}),
    );
    let (mut ws, _) = connect(&srv.ws_url(&format!("?token={vip}")), None).await;
    subscribe(&mut ws, &["vip:lounge"]).await;
    // The event itself arrives too (carol is subscribed): skip it.
    let r = reply(
        &mut ws,
        json!({"type": "publish", "channel": "vip:lounge", "event_type": "m", "data": 1}),
    )
    .await;
    assert_eq!(r["type"], "published", "{r}");
    w.still_served().await;
}

#[tokio::test]
async fn anonymous_connections_never_get_private_channels() {
    let srv = TestServer::start(&[
        ("namespaces.vip.private", "true"),
        ("namespaces.vip.publish", "true"),
        ("auth.hs256_secret", SECRET),
    ])
    .await;
    let (mut anon, c) = connect(&srv.ws_url(""), None).await;
    assert!(c["user_id"].is_null());
    subscribe(&mut anon, &["lobby"]).await;
    for ch in ["vip:lounge", "connections", "logs", "user:alice"] {
        let r = call(&mut anon, json!({"type": "subscribe", "channels": [ch]})).await;
        assert_eq!(r["code"], "forbidden", "{ch}: {r}");
    }
    let r = call(
        &mut anon,
        json!({"type": "publish", "channel": "vip:lounge", "event_type": "m", "data": 1}),
    )
    .await;
    assert_eq!(r["code"], "forbidden", "{r}");
    // A development ?user_id= has no claims either.
    let (mut dev, c) = connect(&srv.ws_url("?user_id=dave"), None).await;
    assert_eq!(c["user_id"], "dave");
    let r = call(
        &mut dev,
        json!({"type": "subscribe", "channels": ["vip:lounge"]}),
    )
    .await;
    assert_eq!(r["code"], "forbidden", "{r}");
    let subs = call(&mut dev, json!({"type": "get_subscriptions"})).await;
    assert_eq!(subs["channels"], json!(["user:dave"]));
    // `auth` cannot turn an anonymous connection into a user.
    let r = call(
        &mut anon,
        json!({"type": "auth", "token": token("alice", json!({}))}),
    )
    .await;
    assert_eq!(r["code"], "forbidden", "{r}");
    assert_eq!(
        call(&mut anon, json!({"type": "ping"})).await["type"],
        "pong"
    );
}

#[tokio::test]
async fn admin_streams_are_for_admins() {
    let srv = secured(&[]).await;
    let mut w = Witness::new(&srv).await;
    let admin = token("root", json!({"admin": true, "channels": ["metrics"]}));
    let (mut a, _) = connect(&srv.ws_url(&format!("?token={admin}")), None).await;
    subscribe(&mut a, &["connections", "logs", "metrics"]).await;
    let user = token("al", json!({}));
    let (mut u, _) = connect(&srv.ws_url(&format!("?token={user}")), None).await;
    for ch in ["connections", "logs"] {
        let r = call(&mut u, json!({"type": "subscribe", "channels": [ch]})).await;
        assert_eq!(r["code"], "forbidden", "{r}");
    }
    subscribe(&mut u, &["metrics"]).await;
    w.still_served().await;
}

// ---------------------------------------------------------------------------
// `auth` and expiry

#[tokio::test]
async fn auth_refreshes_the_same_user_only() {
    let srv = secured(&[]).await;
    let mut w = Witness::new(&srv).await;
    let first = token("alice", json!({"exp": now_s() + 60}));
    let (mut ws, _) = connect(&srv.ws_url(&format!("?token={first}")), None).await;
    let exp = now_s() + 7200;
    let fresh = token("alice", json!({"exp": exp, "channels": ["metrics"]}));
    let r = call(&mut ws, json!({"type": "auth", "id": "a1", "token": fresh})).await;
    assert_eq!(r["type"], "authenticated", "{r}");
    assert_eq!(r["user_id"], "alice");
    assert_eq!(r["expires_at"], exp * 1000);
    assert_eq!(r["correlation_id"], "a1");
    // The new claims apply.
    let r = call(&mut ws, json!({"type": "subscribe", "channels": ["news"]})).await;
    assert_eq!(r["code"], "forbidden", "{r}");
    subscribe(&mut ws, &["metrics"]).await;
    // Another user's token: forbidden, and the connection stays.
    let bob = token("bob", json!({}));
    let r = call(&mut ws, json!({"type": "auth", "id": "a2", "token": bob})).await;
    assert_eq!(r["type"], "error", "{r}");
    assert_eq!(r["code"], "forbidden");
    // A bad token: unauthorized, without echoing it.
    let bad = token("alice", json!({"exp": now_s() - 100}));
    let r = call(&mut ws, json!({"type": "auth", "id": "a3", "token": bad})).await;
    assert_eq!(r["code"], "unauthorized", "{r}");
    assert!(!r.to_string().contains(&bad[..30]));
    assert_eq!(call(&mut ws, json!({"type": "ping"})).await["type"], "pong");
    w.still_served().await;
}

#[tokio::test]
async fn narrower_claims_drop_subscriptions() {
    let srv = secured(&[]).await;
    let t = token("alice", json!({}));
    let (mut ws, _) = connect(&srv.ws_url(&format!("?token={t}")), None).await;
    subscribe(&mut ws, &["news", "metrics"]).await;
    let narrower = token("alice", json!({"channels": ["metrics"]}));
    let r = call(&mut ws, json!({"type": "auth", "token": narrower})).await;
    assert_eq!(r["type"], "unsubscribed", "{r}");
    assert_eq!(r["channels"], json!(["news"]));
    assert_eq!(recv(&mut ws).await["type"], "authenticated");
    let subs = call(&mut ws, json!({"type": "get_subscriptions"})).await;
    assert_eq!(subs["channels"], json!(["user:alice", "metrics"]));
}

#[tokio::test]
async fn an_expired_token_closes_with_4001() {
    let srv = secured(&[("auth.leeway_s", "0")]).await;
    let mut w = Witness::new(&srv).await;
    let t = token("alice", json!({"exp": now_s() + 2}));
    let (mut raw, head) = Raw::connect(srv.addr, &format!("/ws?token={t}"), "").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert_eq!(raw.next_json().await.unwrap()["type"], "connected");
    let started = std::time::Instant::now();
    let (disconnect, code) = raw.until_close().await;
    assert_eq!(code, Some(4001));
    let d = disconnect.unwrap();
    assert_eq!(d["type"], "disconnect");
    assert_eq!(d["code"], 4001);
    assert!(started.elapsed() < Duration::from_secs(4));
    w.still_served().await;
    assert_eq!(
        metric(
            &metrics(&srv).await,
            "hubbub_auth_expired_disconnects_total"
        ),
        1
    );
}

#[tokio::test]
async fn a_refreshed_token_keeps_the_connection() {
    let srv = secured(&[("auth.leeway_s", "0")]).await;
    let t = token("alice", json!({"exp": now_s() + 2}));
    let (mut ws, _) = connect(&srv.ws_url(&format!("?token={t}")), None).await;
    let fresh = token("alice", json!({"exp": now_s() + 60}));
    let r = call(&mut ws, json!({"type": "auth", "token": fresh})).await;
    assert_eq!(r["type"], "authenticated", "{r}");
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(call(&mut ws, json!({"type": "ping"})).await["type"], "pong");
}

// ---------------------------------------------------------------------------
// The HTTP API

#[tokio::test]
async fn admin_tokens_on_the_http_api() {
    let srv = secured(&[("api.key", "the-api-key-1234")]).await;
    let client = reqwest::Client::new();
    let get = |bearer: Option<String>| {
        let mut r = client.get(srv.http("/api/stats"));
        if let Some(b) = bearer {
            r = r.bearer_auth(b);
        }
        r.send()
    };
    let admin = token("root", json!({"admin": true}));
    assert_eq!(get(Some(admin)).await.unwrap().status(), 200);
    assert_eq!(
        get(Some("the-api-key-1234".into())).await.unwrap().status(),
        200
    );
    let user = token("al", json!({}));
    let r = get(Some(user)).await.unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    let expired = token("root", json!({"admin": true, "exp": now_s() - 100}));
    let r = get(Some(expired.clone())).await.unwrap();
    assert_eq!(r.status(), 401);
    let text = r.text().await.unwrap();
    assert!(text.contains("unauthorized"), "{text}");
    assert!(!text.contains(&expired[..30]), "{text}");
    let r = get(Some("wrong-key".into())).await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(!r.text().await.unwrap().contains("wrong-key"));
    assert_eq!(get(None).await.unwrap().status(), 401);
    // Open paths stay open.
    assert_eq!(
        client
            .get(srv.http("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let m = metrics(&srv).await;
    assert!(metric(&m, "hubbub_api_refused_total") >= 4, "{m}");
}

#[tokio::test]
async fn the_api_without_a_key_refuses_non_loopback_clients() {
    // The hub sits behind a proxy on loopback; the proxy says the client
    // is 10.1.2.3 (a non-loopback address): 403 without a key.
    let srv = TestServer::start(&[("server.trusted_proxies", "[\"127.0.0.1\"]")]).await;
    let client = reqwest::Client::new();
    let r = client
        .get(srv.http("/api/stats"))
        .header("X-Forwarded-For", "10.1.2.3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");
    // A loopback client through the proxy, or directly: answered.
    let r = client
        .get(srv.http("/api/stats"))
        .header("X-Forwarded-For", "127.0.0.1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        client
            .get(srv.http("/api/stats"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Without trusted proxies the header proves nothing.
    let plain = TestServer::start(&[]).await;
    let r = client
        .get(plain.http("/api/stats"))
        .header("X-Forwarded-For", "10.1.2.3")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

// ---------------------------------------------------------------------------
// Limits

fn retry_after(head: &str) -> u64 {
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after:")
                .map(|v| v.trim().to_owned())
        })
        .expect("Retry-After")
        .parse()
        .unwrap()
}

#[tokio::test]
async fn the_per_address_connection_rate_is_429_with_retry_after() {
    // Clients reach the hub through a proxy on loopback, which names them
    // in X-Forwarded-For; the rate applies to each client address.
    let srv = secured(&[
        ("limits.connections_per_ip_per_minute", "5"),
        ("server.trusted_proxies", "[\"127.0.0.1\"]"),
    ])
    .await;
    let mut w = Witness::new(&srv).await;
    let from = |ip: &str| format!("X-Forwarded-For: {ip}\r\n");
    for i in 0..5 {
        let t = token(&format!("u{i}"), json!({}));
        let (status, head, _) =
            handshake(&srv, &format!("/ws?token={t}"), &from("192.0.2.1")).await;
        assert_eq!(status, 101, "{i}: {head}");
    }
    let t = token("u9", json!({}));
    let head = refused(
        &srv,
        &format!("/ws?token={t}"),
        &from("192.0.2.1"),
        429,
        "rate_limited",
        &t,
    )
    .await;
    assert!((1..=60).contains(&retry_after(&head)), "{head}");
    // Even without credentials: the rate is checked before the token.
    refused(&srv, "/ws", &from("192.0.2.1"), 429, "rate_limited", "").await;
    // IPv6 clients count per /64.
    for i in 0..5 {
        let (status, _, _) = handshake(
            &srv,
            &format!("/ws?token={t}"),
            &from(&format!("2001:db8:1:2::{i}")),
        )
        .await;
        assert_eq!(status, 101);
    }
    refused(
        &srv,
        &format!("/ws?token={t}"),
        &from("2001:db8:1:2:ffff::9"),
        429,
        "rate_limited",
        "",
    )
    .await;
    // Another client address has its own allowance; the proxy itself
    // (loopback) is exempt by default.
    let (status, _, _) = handshake(&srv, &format!("/ws?token={t}"), &from("192.0.2.10")).await;
    assert_eq!(status, 101);
    let (status, _, _) = handshake(&srv, &format!("/ws?token={t}"), "").await;
    assert_eq!(status, 101);
    // Live connections are untouched, and HTTP is not rate-limited.
    w.still_served().await;
    assert_eq!(
        reqwest::get(srv.http("/healthz")).await.unwrap().status(),
        200
    );
    assert!(
        metric(
            &metrics(&srv).await,
            "hubbub_connection_rate_limited_ip_total"
        ) >= 3
    );

    // Loopback counts like any address when not exempt.
    let srv = secured(&[
        ("limits.connections_per_ip_per_minute", "3"),
        ("limits.exempt_loopback", "false"),
    ])
    .await;
    let mut w = Witness::new(&srv).await;
    for _ in 0..2 {
        let (status, _, _) = handshake(&srv, &format!("/ws?token={t}"), "").await;
        assert_eq!(status, 101);
    }
    let head = refused(&srv, &format!("/ws?token={t}"), "", 429, "rate_limited", &t).await;
    assert_eq!(retry_after(&head), 20, "{head}");
    w.still_served().await;
}

#[tokio::test]
async fn the_per_user_connection_rate_defaults_to_10_per_minute() {
    let srv = secured(&[]).await;
    let mut w = Witness::new(&srv).await;
    let t = token("alice", json!({}));
    let mut keep = Vec::new();
    for _ in 0..10 {
        keep.push(connect(&srv.ws_url(&format!("?token={t}")), None).await.0);
    }
    let head = refused(&srv, &format!("/ws?token={t}"), "", 429, "rate_limited", &t).await;
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 6"),
        "{head}"
    );
    // Another user is not affected.
    let (status, _, _) =
        handshake(&srv, &format!("/ws?token={}", token("bob", json!({}))), "").await;
    assert_eq!(status, 101);
    w.still_served().await;
    assert_eq!(
        metric(
            &metrics(&srv).await,
            "hubbub_connection_rate_limited_user_total"
        ),
        1
    );
}

#[tokio::test]
async fn the_per_user_connection_limit_is_503_server_full() {
    let srv = secured(&[("limits.max_connections_per_user", "2")]).await;
    let mut w = Witness::new(&srv).await;
    let t = token("alice", json!({}));
    let (a1, _) = connect(&srv.ws_url(&format!("?token={t}")), None).await;
    let (_a2, _) = connect(&srv.ws_url(&format!("?token={t}")), None).await;
    let head = refused(&srv, &format!("/ws?token={t}"), "", 503, "server_full", &t).await;
    assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
    // One leaves: room again.
    drop(a1);
    let mut ok = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if handshake(&srv, &format!("/ws?token={t}"), "").await.0 == 101 {
            ok = true;
            break;
        }
    }
    assert!(ok, "a slot came back");
    w.still_served().await;
}

#[tokio::test]
async fn a_disallowed_origin_is_403() {
    let srv = secured(&[(
        "server.allowed_origins",
        "[\"https://app.example.com\", \"http://localhost:3000\"]",
    )])
    .await;
    let mut w = Witness::new(&srv).await;
    let t = token("alice", json!({}));
    let path = format!("/ws?token={t}");
    refused(
        &srv,
        &path,
        "Origin: https://evil.example\r\n",
        403,
        "forbidden",
        &t,
    )
    .await;
    refused(
        &srv,
        &path,
        "Origin: https://app.example.com.evil.example\r\n",
        403,
        "forbidden",
        &t,
    )
    .await;
    refused(&srv, &path, "Origin: null\r\n", 403, "forbidden", "").await;
    for ok in [
        "Origin: https://app.example.com\r\n",
        "Origin: http://localhost:3000\r\n",
        "",
    ] {
        let (status, head, _) = handshake(&srv, &path, ok).await;
        assert_eq!(status, 101, "{ok}: {head}");
    }
    w.still_served().await;
    assert_eq!(
        metric(&metrics(&srv).await, "hubbub_origin_refused_total"),
        3
    );
}

#[tokio::test]
async fn the_handshake_timeout_defaults_to_10_s() {
    let c = hubbub_server::Config::default();
    assert_eq!(c.server.handshake_timeout_ms, 10_000);
    // And a slow peer is dropped at it, while others are served.
    let srv = secured(&[("server.handshake_timeout_ms", "300")]).await;
    let mut w = Witness::new(&srv).await;
    let n = half_request_head(srv.addr, WAIT).await;
    assert_eq!(n, 0);
    w.still_served().await;
    assert_eq!(
        metric(&metrics(&srv).await, "hubbub_handshake_timeouts_total"),
        1
    );
}

// ---------------------------------------------------------------------------
// JWKS

fn jwk(private_pem: &str, kid: &str) -> Value {
    use jsonwebtoken::jwk::Jwk;
    let pem = std::fs::read(key_file(private_pem)).unwrap();
    let (key, alg) = match jsonwebtoken::EncodingKey::from_rsa_pem(&pem) {
        Ok(k) => (k, jsonwebtoken::Algorithm::RS256),
        Err(_) => (
            jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap(),
            jsonwebtoken::Algorithm::ES256,
        ),
    };
    let mut v = serde_json::to_value(Jwk::from_encoding_key(&key, alg).unwrap()).unwrap();
    v["kid"] = json!(kid);
    v
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("hubbub-security-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn jwks_keys_by_kid_reload_on_change() {
    let dir = temp_dir("jwks");
    let file = dir.join("jwks.json");
    std::fs::write(
        &file,
        json!({"keys": [jwk("rs256_private.pem", "rsa-1")]}).to_string(),
    )
    .unwrap();
    let srv = TestServer::start(&[
        ("server.mode", "production"),
        ("api.key", API_KEY),
        ("auth.jwks_file", file.to_str().unwrap()),
    ])
    .await;
    let rsa =
        TokenSigner::from_private_key_pem(&std::fs::read(key_file("rs256_private.pem")).unwrap())
            .unwrap()
            .with_kid("rsa-1");
    let ec =
        TokenSigner::from_private_key_pem(&std::fs::read(key_file("es256_private.pem")).unwrap())
            .unwrap()
            .with_kid("ec-1");
    let claims = json!({"sub": "alice", "exp": now_s() + 600});
    let t_rsa = rsa.sign(&claims).unwrap();
    let t_ec = ec.sign(&claims).unwrap();
    let (mut w, c) = connect(&srv.ws_url(&format!("?token={t_rsa}")), None).await;
    assert_eq!(c["user_id"], "alice");
    refused_token(&srv, &t_ec).await;
    // Rotate: the EC key replaces the RSA key.
    tokio::time::sleep(Duration::from_millis(50)).await;
    std::fs::write(
        &file,
        json!({"keys": [jwk("es256_private.pem", "ec-1")], "note": "rotated"}).to_string(),
    )
    .unwrap();
    let mut switched = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if handshake(&srv, &format!("/ws?token={t_ec}"), "").await.0 == 101 {
            switched = true;
            break;
        }
    }
    assert!(switched, "the new key was picked up");
    refused_token(&srv, &t_rsa).await;
    // A broken file keeps the keys in force.
    std::fs::write(&file, "{ not json").unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (status, _, _) = handshake(&srv, &format!("/ws?token={t_ec}"), "").await;
    assert_eq!(status, 101);
    assert_eq!(call(&mut w, json!({"type": "ping"})).await["type"], "pong");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn bad_key_configuration_fails_at_start() {
    let load = |o: &[(&str, &str)]| {
        hubbub_server::Config::load(&hubbub_server::Sources {
            overrides: o
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        })
        .unwrap()
    };
    // Production without any token key: refuse to start rather than
    // refuse everyone.
    let e = hubbub_server::Server::bind(load(&[
        ("server.listen", "127.0.0.1:0"),
        ("server.mode", "production"),
        ("api.key", API_KEY),
    ]))
    .await
    .err()
    .unwrap();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("auth"), "{e}");
    for (k, v) in [
        ("auth.rs256_public_key_file", "/nonexistent.pem"),
        (
            "auth.rs256_public_key_file",
            key_file("es256_public.pem").as_str(),
        ),
        ("auth.jwks_file", key_file("rs256_public.pem").as_str()),
        ("server.tls_cert", key_file("rs256_public.pem").as_str()),
    ] {
        let mut o = vec![("server.listen", "127.0.0.1:0"), (k, v)];
        if k == "server.tls_cert" {
            o.push(("server.tls_key", v));
        }
        let e = hubbub_server::Server::bind(load(&o)).await.err().unwrap();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{k}: {e}");
    }
}

// ---------------------------------------------------------------------------
// TLS

mod tls {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use std::sync::Arc;
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
    use tokio_tungstenite::tungstenite::Message;

    struct Cert {
        dir: PathBuf,
        der: CertificateDer<'static>,
    }

    fn self_signed(name: &str) -> Cert {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let dir = temp_dir(name);
        std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), ck.key_pair.serialize_pem()).unwrap();
        Cert {
            dir,
            der: ck.cert.der().clone(),
        }
    }

    fn connector(cert: &Cert) -> tokio_rustls::TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.der.clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }

    async fn tls_server(cert: &Cert, extra: &[(&str, &str)]) -> TestServer {
        let c = cert.dir.join("cert.pem");
        let k = cert.dir.join("key.pem");
        let mut o = vec![
            ("server.tls_cert", c.to_str().unwrap()),
            ("server.tls_key", k.to_str().unwrap()),
        ];
        o.extend_from_slice(extra);
        TestServer::start(&o).await
    }

    #[tokio::test]
    async fn wss_works() {
        let cert = self_signed("wss");
        let srv = tls_server(
            &cert,
            &[
                ("server.mode", "production"),
                ("api.key", API_KEY),
                ("auth.hs256_secret", SECRET),
            ],
        )
        .await;
        let tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
        let tls = connector(&cert)
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        let t = token("alice", json!({}));
        let url = format!("wss://localhost:{}/ws?token={t}", srv.addr.port());
        let (mut ws, resp) = tokio_tungstenite::client_async(url, tls).await.unwrap();
        assert_eq!(resp.status(), 101);
        let first = tokio::time::timeout(WAIT, ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
        assert_eq!(v["type"], "connected", "{v}");
        assert_eq!(v["user_id"], "alice");
        ws.send(Message::Text(
            json!({"type": "subscribe", "channels": ["metrics"]})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
        loop {
            let m = tokio::time::timeout(WAIT, ws.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(&t).unwrap();
                assert_eq!(v["type"], "subscribed", "{v}");
                break;
            }
        }
        // HTTPS on the same port.
        let tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
        let mut tls = connector(&cert)
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(WAIT, tls.read_to_end(&mut out))
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        // Plain WebSocket on a TLS port does not get through.
        let (status, _, _) = handshake(&srv, "/ws", "").await;
        assert_ne!(status, 101);
        let _ = std::fs::remove_dir_all(&cert.dir);
    }

    #[tokio::test]
    async fn a_silent_tls_peer_is_dropped_at_the_handshake_timeout() {
        let cert = self_signed("tls-slow");
        let srv = tls_server(&cert, &[("server.handshake_timeout_ms", "300")]).await;
        use tokio::io::AsyncReadExt;
        let mut s = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(WAIT, s.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0);
        let _ = std::fs::remove_dir_all(&cert.dir);
    }
}
