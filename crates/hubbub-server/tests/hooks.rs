//! Decision hooks over real sockets (docs/hooks.md): Rust hooks that
//! deny, rewrite and authenticate without a JWT; the same decisions from
//! an HTTP backend; backends that are down, slow or talk garbage under
//! both failure policies; the metrics.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::post;
use common::{call, connect, recv, send, subscribe, Raw, TestServer};
use hubbub_protocol::{CloseCode, ErrorCode};
use hubbub_server::auth::jwt::TokenSigner;
use hubbub_server::hooks::{
    ConnectDecision, ConnectRequest, PublishDecision, PublishRequest, SubscribeDecision,
    SubscribeRequest,
};
use parking_lot::Mutex;
use serde_json::{json, Value};

const SECRET: &str = "hooks-suite-secret-0123456789abcdef0123";

fn publish(id: &str, channel: &str, event_type: &str, data: Value) -> Value {
    json!({"type": "publish", "id": id, "channel": channel, "event_type": event_type, "data": data})
}

fn info(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// A raw upgrade to `/ws{query}` with `headers`; the close code and the
/// `disconnect` message the hub sent after its 101.
async fn refused(srv: &TestServer, query: &str, headers: &str) -> (Option<Value>, Option<u16>) {
    let (mut raw, head) = Raw::connect(srv.addr, &format!("/ws{query}"), headers).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    raw.until_close().await
}

/// A hub configured from `toml`, then `overrides`.
async fn with_file(name: &str, toml: &str, overrides: &[(&str, &str)]) -> TestServer {
    let dir = std::env::temp_dir().join(format!("hubbub-hooks-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hub.toml");
    std::fs::write(&file, toml).unwrap();
    let mut o = vec![("channels.publish", "true")];
    o.extend_from_slice(overrides);
    TestServer::start_with_file(&file, &o).await
}

#[tokio::test]
async fn a_rust_connect_hook_denies_with_its_close_code_and_sees_the_request() {
    let srv = TestServer::start(&[]).await;
    let seen: Arc<Mutex<Vec<ConnectRequest>>> = Arc::default();
    let log = seen.clone();
    srv.node.on_connect(move |req: ConnectRequest| {
        log.lock().push(req.clone());
        async move {
            match req.query_param("pass").as_deref() {
                Some("yes") => ConnectDecision::Allow,
                Some("later") => ConnectDecision::unauthorized("log in first"),
                _ => ConnectDecision::forbidden("not on the list"),
            }
        }
    });
    let (disconnect, code) = refused(&srv, "?pass=no", "").await;
    assert_eq!(code, Some(4003));
    let d = disconnect.expect("a disconnect before the close");
    assert_eq!(
        (d["type"].as_str(), d["code"].as_u64(), d["reason"].as_str()),
        (Some("disconnect"), Some(4003), Some("not on the list")),
        "{d}"
    );
    assert_eq!(d["reconnect"], false);
    let (disconnect, code) = refused(&srv, "?pass=later", "").await;
    assert_eq!(code, Some(4001));
    assert_eq!(disconnect.unwrap()["reconnect"], true);
    let (_ws, first) = connect(&srv.ws_url("?pass=yes&user_id=ann"), None).await;
    assert_eq!(first["user_id"], "ann");
    let last = seen.lock().last().cloned().unwrap();
    assert_eq!(last.connection_id, first["connection_id"].as_str().unwrap());
    assert_eq!(last.user_id.as_deref(), Some("ann"));
    assert!(!last.authenticated, "?user_id= is not a JWT");
    assert!(last.remote_addr.ip().is_loopback());
    assert_eq!(last.query, "pass=yes&user_id=ann");
    assert!(last.header("host").is_some());
    srv.assert_metrics(&[
        "hubbub_hook_calls_total{hook=\"connect\"} 3",
        "hubbub_hook_denials_total{hook=\"connect\"} 2",
    ])
    .await;
}

#[tokio::test]
async fn a_connect_hook_authenticates_in_place_of_a_jwt() {
    // Tokens required: a client without one gets through to the hook,
    // which must name its user.
    let srv = TestServer::start(&[
        ("auth.required", "true"),
        ("auth.hs256_secret", SECRET),
        ("namespaces.chat.presence", "true"),
    ])
    .await;
    let seen: Arc<Mutex<Vec<ConnectRequest>>> = Arc::default();
    let log = seen.clone();
    srv.node.on_connect(move |req: ConnectRequest| {
        log.lock().push(req.clone());
        async move {
            if req.authenticated {
                return ConnectDecision::Allow;
            }
            match req
                .header("cookie")
                .and_then(|c| c.strip_prefix("session="))
            {
                Some("s3cr3t") => ConnectDecision::As {
                    user_id: "ann".into(),
                    info: Some(info(json!({"name": "Ann"}))),
                },
                Some("nobody") => ConnectDecision::Allow,
                _ => ConnectDecision::unauthorized("no session"),
            }
        }
    });
    let (mut raw, head) = Raw::connect(srv.addr, "/ws", "Cookie: session=s3cr3t\r\n").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let first = raw.next_json().await.unwrap();
    assert_eq!(
        (first["type"].as_str(), first["user_id"].as_str()),
        (Some("connected"), Some("ann")),
        "{first}"
    );
    // Its own user channel is live: a send to the user reaches it.
    let sent = srv
        .post_json(
            "/api/users/ann/send",
            &json!({"event_type": "hello", "data": {"n": 1}}),
        )
        .await;
    assert_eq!(sent["connections"], 1, "{sent}");
    let ev = raw.next_json().await.unwrap();
    assert_eq!(
        (ev["channel"].as_str(), ev["event_type"].as_str()),
        (Some("user:ann"), Some("hello")),
        "{ev}"
    );
    // The hook's info shows in presence like a token's info claim.
    raw.send_json(json!({"type": "subscribe", "id": 1, "channels": ["chat:lobby"]}))
        .await;
    assert_eq!(raw.next_json().await.unwrap()["type"], "subscribed");
    raw.send_json(json!({"type": "presence", "id": 2, "channel": "chat:lobby"}))
        .await;
    let p = raw.next_json().await.unwrap();
    assert_eq!(p["members"][0]["user_id"], "ann", "{p}");
    assert_eq!(p["members"][0]["info"], json!({"name": "Ann"}), "{p}");
    // A bare allow for a connection with no user cannot satisfy
    // auth.required; no cookie at all is the hook's own 4001.
    let (_, code) = refused(&srv, "", "Cookie: session=nobody\r\n").await;
    assert_eq!(code, Some(4001));
    let (d, code) = refused(&srv, "", "").await;
    assert_eq!(code, Some(4001));
    assert_eq!(d.unwrap()["reason"], "no session");
    // A JWT still works, and the hook is told it was verified; the token
    // itself never reaches the hook.
    let token = TokenSigner::hs256(SECRET.as_bytes())
        .sign(&json!({"sub": "bob", "exp": hubbub_server::now_ms() / 1000 + 600}))
        .unwrap();
    let (_ws, first) = connect(&srv.ws_url(&format!("?token={token}&x=1")), None).await;
    assert_eq!(first["user_id"], "bob");
    let last = seen.lock().last().cloned().unwrap();
    assert!(last.authenticated);
    assert_eq!(last.user_id.as_deref(), Some("bob"));
    assert_eq!(last.query, "x=1");
    assert!(seen
        .lock()
        .iter()
        .all(|r| r.header("authorization").is_none()));
}

#[tokio::test]
async fn rust_subscribe_and_publish_hooks_deny_attach_info_and_rewrite() {
    let srv = TestServer::start(&[
        ("namespaces.chat.presence", "true"),
        ("channels.publish", "true"),
    ])
    .await;
    let asked: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = asked.clone();
    srv.node.on_subscribe(move |req: SubscribeRequest| {
        log.lock().push(req.channel.clone());
        async move {
            match req.channel.as_str() {
                "secret" => SubscribeDecision::Deny(ErrorCode::Forbidden, "not for you".into()),
                "chat:lobby" => SubscribeDecision::AllowWithInfo(info(
                    json!({"role": "moderator", "user": req.user_id}),
                )),
                _ => SubscribeDecision::Allow,
            }
        }
    });
    srv.node.on_publish(|req: PublishRequest| async move {
        match req.event_type.as_str() {
            "shout" => PublishDecision::Deny(ErrorCode::BadRequest, "no shouting".into()),
            "say" => {
                let said: Value = req.data_as().unwrap();
                PublishDecision::Replace(json!({"text": said["text"], "by": req.user_id}))
            }
            _ => PublishDecision::Allow,
        }
    });
    let (mut ann, _) = connect(&srv.ws_url("?user_id=ann"), None).await;
    // A refusal for one channel refuses the whole subscribe; nothing of it
    // is applied.
    let r = call(
        &mut ann,
        json!({"type": "subscribe", "id": "a", "channels": ["news", "secret"]}),
    )
    .await;
    assert_eq!(
        (
            r["code"].as_str(),
            r["message"].as_str(),
            r["correlation_id"].as_str()
        ),
        (Some("forbidden"), Some("not for you"), Some("a")),
        "{r}"
    );
    let r = call(&mut ann, json!({"type": "get_subscriptions"})).await;
    assert_eq!(r["channels"], json!(["user:ann"]), "{r}");
    // The user's own channel is never asked about.
    subscribe(&mut ann, &["news", "chat:lobby", "user:ann"]).await;
    assert!(!asked.lock().iter().any(|c| c == "user:ann"), "{asked:?}");
    let p = call(
        &mut ann,
        json!({"type": "presence", "id": "p", "channel": "chat:lobby"}),
    )
    .await;
    assert_eq!(
        p["members"][0]["info"],
        json!({"role": "moderator", "user": "ann"}),
        "{p}"
    );
    let (mut bob, _) = connect(&srv.ws_url("?user_id=bob"), None).await;
    let r = call(
        &mut bob,
        publish("1", "news", "shout", json!({"text": "HEY"})),
    )
    .await;
    assert_eq!(
        (r["code"].as_str(), r["message"].as_str()),
        (Some("bad_request"), Some("no shouting")),
        "{r}"
    );
    let r = call(
        &mut bob,
        publish("2", "news", "say", json!({"text": "hi", "x": 1})),
    )
    .await;
    assert_eq!(r["type"], "published", "{r}");
    let ev = recv(&mut ann).await;
    assert_eq!(
        (ev["event_type"].as_str(), &ev["data"]),
        (Some("say"), &json!({"text": "hi", "by": "bob"})),
        "subscribers get the replaced data: {ev}"
    );
    // History keeps what was published, the replacement.
    let h = call(
        &mut bob,
        json!({"type": "history", "id": "h", "channel": "news"}),
    )
    .await;
    assert_eq!(
        h["events"][0]["data"],
        json!({"text": "hi", "by": "bob"}),
        "{h}"
    );
    // The HTTP API's publications are the backend's own: not asked.
    srv.post_json(
        "/api/publish",
        &json!({"channel": "news", "event_type": "shout", "data": 1}),
    )
    .await;
    assert_eq!(recv(&mut ann).await["event_type"], "shout");
    srv.assert_metrics(&[
        "hubbub_hook_denials_total{hook=\"subscribe\"} 1",
        "hubbub_hook_calls_total{hook=\"publish\"} 2",
        "hubbub_hook_latency_seconds_count{hook=\"publish\"} 2",
    ])
    .await;
}

/// A hook's stand-in for a slow backend: it tells the test it was asked,
/// then holds its decision until the test lets it go.
#[derive(Clone)]
struct Gate {
    asked: Arc<tokio::sync::Notify>,
    open: Arc<tokio::sync::Semaphore>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            asked: Arc::default(),
            open: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }
}

impl Gate {
    async fn hold(&self) {
        self.asked.notify_one();
        self.open.acquire().await.unwrap().forget();
    }

    async fn asked(&self) {
        tokio::time::timeout(Duration::from_secs(10), self.asked.notified())
            .await
            .expect("the hook was asked");
    }

    fn release(&self) {
        self.open.add_permits(1);
    }
}

#[tokio::test]
async fn a_slow_hook_delays_its_own_command_and_no_one_elses() {
    let srv = TestServer::start(&[
        ("hooks.connect.timeout_ms", "10000"),
        ("hooks.publish.timeout_ms", "10000"),
        ("channels.publish", "true"),
    ])
    .await;
    let (connect_gate, publish_gate) = (Gate::default(), Gate::default());
    let g = connect_gate.clone();
    srv.node.on_connect(move |req: ConnectRequest| {
        let g = g.clone();
        async move {
            if req.query_param("slow").is_some() {
                g.hold().await;
            }
            ConnectDecision::Allow
        }
    });
    let g = publish_gate.clone();
    srv.node.on_publish(move |req: PublishRequest| {
        let g = g.clone();
        async move {
            if req.channel == "slow" {
                g.hold().await;
            }
            PublishDecision::Allow
        }
    });
    // A handshake held by its connect hook holds no other handshake.
    let url = srv.ws_url("?slow=1");
    let slow = tokio::spawn(async move { connect(&url, None).await });
    connect_gate.asked().await;
    let (mut fast, _) = connect(&srv.ws_url(""), None).await;
    connect_gate.release();
    let (mut slow, _) = slow.await.unwrap();
    // A publish held by its hook holds no other connection's publish.
    send(&mut slow, publish("s", "slow", "x", json!(1))).await;
    publish_gate.asked().await;
    let r = call(&mut fast, publish("f", "fast", "x", json!(1))).await;
    assert_eq!(r["type"], "published", "{r}");
    publish_gate.release();
    let r = recv(&mut slow).await;
    assert_eq!(
        (r["type"].as_str(), r["correlation_id"].as_str()),
        (Some("published"), Some("s"))
    );
}

#[tokio::test]
async fn a_subscribe_waiting_on_its_hook_goes_on_receiving_its_other_channels() {
    // A small outbound queue: were deliveries held while the hook waits,
    // the connection would be closed as a slow consumer.
    let srv = TestServer::start(&[
        ("hooks.subscribe.timeout_ms", "10000"),
        ("connection.outbound_queue_messages", "8"),
    ])
    .await;
    let gate = Gate::default();
    let g = gate.clone();
    srv.node.on_subscribe(move |req: SubscribeRequest| {
        let g = g.clone();
        async move {
            if req.channel == "gated" {
                g.hold().await;
            }
            SubscribeDecision::Allow
        }
    });
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    subscribe(&mut ws, &["busy"]).await;
    send(
        &mut ws,
        json!({"type": "subscribe", "id": "g", "channels": ["gated"]}),
    )
    .await;
    send(&mut ws, json!({"type": "ping", "id": "p"})).await;
    gate.asked().await;
    // Many times the queue's bound, each delivered while the hook waits.
    for n in 1..=64u64 {
        srv.node.publish("busy", "tick", &n).await.unwrap();
        let e = recv(&mut ws).await;
        assert_eq!(
            (
                e["type"].as_str(),
                e["channel"].as_str(),
                e["offset"].as_u64()
            ),
            (Some("event"), Some("busy"), Some(n)),
            "{e}"
        );
    }
    gate.release();
    // Commands are answered in the order they came.
    let r = recv(&mut ws).await;
    assert_eq!(
        (r["type"].as_str(), r["correlation_id"].as_str()),
        (Some("subscribed"), Some("g")),
        "{r}"
    );
    let r = recv(&mut ws).await;
    assert_eq!(
        (r["type"].as_str(), r["correlation_id"].as_str()),
        (Some("pong"), Some("p")),
        "{r}"
    );
    assert_eq!(srv.slow_consumer_disconnects(), 0);
}

/// A backend of the test's own, over a real socket.
async fn backend(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn decide(v: &Value) -> Value {
    match v["hook"].as_str().unwrap_or_default() {
        "connect" => match v["headers"]["cookie"].as_str() {
            Some("session=s3cr3t") => {
                json!({"result": "allow", "user_id": "ann", "info": {"name": "Ann"}})
            }
            Some(_) => json!({"result": "deny", "close_code": 4003, "reason": "banned"}),
            None => json!({"result": "allow"}),
        },
        "subscribe" => match v["channel"].as_str().unwrap_or_default() {
            "secret" => json!({"result": "deny", "code": "forbidden", "message": "not for you"}),
            "chat:lobby" => json!({"result": "allow", "info": {"seat": 7}}),
            _ => json!({"result": "allow"}),
        },
        "publish" => match v["event_type"].as_str().unwrap_or_default() {
            "shout" => json!({"result": "deny", "code": "bad_request", "message": "no shouting"}),
            "say" => json!({"result": "allow", "data": {"clean": v["data"]}}),
            _ => json!({"result": "allow"}),
        },
        _ => json!({"result": "nonsense"}),
    }
}

#[tokio::test]
async fn http_hooks_decide_like_rust_ones() {
    let requests: Arc<Mutex<Vec<Value>>> = Arc::default();
    let log = requests.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |axum::Json(v): axum::Json<Value>| {
            log.lock().push(v.clone());
            async move { axum::Json(decide(&v)) }
        }),
    );
    let addr = backend(app).await;
    let toml = format!(
        "[namespaces.chat]\npresence = true\n\
         [hooks.connect]\nurl = \"http://{addr}/hook\"\n\
         [hooks.subscribe]\nurl = \"http://{addr}/hook\"\n\
         [hooks.publish]\nurl = \"http://{addr}/hook\"\n"
    );
    let srv = with_file("decide", &toml, &[]).await;
    let (mut raw, _) = Raw::connect(
        srv.addr,
        "/ws?room=1",
        "Cookie: session=s3cr3t\r\nX-Other: 1\r\n",
    )
    .await;
    let first = raw.next_json().await.unwrap();
    assert_eq!(first["user_id"], "ann", "{first}");
    let req = requests.lock()[0].clone();
    assert_eq!(req["hook"], "connect");
    assert_eq!(req["connection_id"], first["connection_id"]);
    assert_eq!(req["authenticated"], false);
    assert_eq!(req["query"], "room=1");
    assert_eq!(
        req["headers"],
        json!({"cookie": "session=s3cr3t"}),
        "only the configured headers: {req}"
    );
    let (d, code) = refused(&srv, "", "Cookie: session=stolen\r\n").await;
    assert_eq!(code, Some(4003));
    assert_eq!(d.unwrap()["reason"], "banned");
    raw.send_json(json!({"type": "subscribe", "id": 1, "channels": ["secret"]}))
        .await;
    let r = raw.next_json().await.unwrap();
    assert_eq!(
        (r["code"].as_str(), r["message"].as_str()),
        (Some("forbidden"), Some("not for you"))
    );
    raw.send_json(json!({"type": "subscribe", "id": 2, "channels": ["chat:lobby", "news"]}))
        .await;
    assert_eq!(raw.next_json().await.unwrap()["type"], "subscribed");
    raw.send_json(json!({"type": "presence", "id": 3, "channel": "chat:lobby"}))
        .await;
    let p = raw.next_json().await.unwrap();
    assert_eq!(
        p["members"][0]["info"],
        json!({"name": "Ann", "seat": 7}),
        "{p}"
    );
    let (mut bob, _) = connect(&srv.ws_url(""), None).await;
    let r = call(&mut bob, publish("1", "news", "shout", json!("HEY"))).await;
    assert_eq!(
        (r["code"].as_str(), r["message"].as_str()),
        (Some("bad_request"), Some("no shouting"))
    );
    let r = call(&mut bob, publish("2", "news", "say", json!({"text": "hi"}))).await;
    assert_eq!(r["type"], "published", "{r}");
    let ev = raw.next_json().await.unwrap();
    assert_eq!(ev["data"], json!({"clean": {"text": "hi"}}), "{ev}");
    let r = call(&mut bob, publish("3", "news", "plain", json!([1, 2]))).await;
    assert_eq!(r["type"], "published", "{r}");
    assert_eq!(raw.next_json().await.unwrap()["data"], json!([1, 2]));
    let published = requests
        .lock()
        .iter()
        .find(|r| r["hook"] == "publish")
        .cloned()
        .unwrap();
    assert_eq!(
        (
            published["channel"].as_str(),
            published["event_type"].as_str(),
            &published["data"]
        ),
        (Some("news"), Some("shout"), &json!("HEY"))
    );
}

/// How a failing backend fails.
#[derive(Clone, Copy, Debug)]
enum Broken {
    Down,
    Slow,
    Garbage,
}

async fn broken_url(how: Broken) -> String {
    let app = axum::Router::new()
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                axum::Json(json!({"result": "allow"}))
            }),
        )
        .route("/garbage", post(|| async { "<html>oops</html>" }))
        .route(
            // Well-formed JSON with a field a subscribe hook does not take.
            "/wrong",
            post(|| async { axum::Json(json!({"result": "allow", "user_id": "root"})) }),
        );
    let addr = backend(app).await;
    match how {
        Broken::Down => {
            let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}/", dead.local_addr().unwrap())
        }
        Broken::Slow => format!("http://{addr}/slow"),
        Broken::Garbage => format!("http://{addr}/garbage"),
    }
}

#[tokio::test]
async fn failing_backends_follow_on_failure_for_every_hook() {
    for how in [Broken::Down, Broken::Slow, Broken::Garbage] {
        for policy in ["deny", "allow"] {
            let url = broken_url(how).await;
            let toml = format!(
                "[hooks.connect]\nurl = \"{url}\"\ntimeout_ms = 300\non_failure = \"{policy}\"\n\
                 [hooks.subscribe]\nurl = \"{url}\"\ntimeout_ms = 300\non_failure = \"{policy}\"\n\
                 [hooks.publish]\nurl = \"{url}\"\ntimeout_ms = 300\non_failure = \"{policy}\"\n"
            );
            let srv = with_file(&format!("{how:?}-{policy}"), &toml, &[]).await;
            let case = format!("{how:?} under {policy}");
            let started = Instant::now();
            if policy == "deny" {
                let (d, code) = refused(&srv, "", "").await;
                assert_eq!(code, Some(CloseCode::INTERNAL.0), "{case}");
                assert_eq!(d.unwrap()["reconnect"], true, "{case}");
            } else {
                let (_ws, first) = connect(&srv.ws_url("?user_id=ann"), None).await;
                assert_eq!(first["user_id"], "ann", "{case}: admitted as it came");
            }
            assert!(started.elapsed() < Duration::from_secs(3), "{case}");
            // A Rust connect hook wins over the backend: the commands'
            // hooks still go to it.
            srv.node
                .on_connect(|_r: ConnectRequest| async { ConnectDecision::Allow });
            let (mut ws, _) = connect(&srv.ws_url(""), None).await;
            let sub = call(
                &mut ws,
                json!({"type": "subscribe", "id": "s", "channels": ["news"]}),
            )
            .await;
            let pubd = call(&mut ws, publish("p", "news", "x", json!({"a": 1}))).await;
            if policy == "deny" {
                for r in [&sub, &pubd] {
                    assert_eq!(r["code"], "unavailable", "{case}: {r}");
                }
            } else {
                assert_eq!(sub["type"], "subscribed", "{case}: {sub}");
                // The event and the reply, in either order.
                let other = recv(&mut ws).await;
                let (reply, ev) = if pubd["type"] == "event" {
                    (other, pubd)
                } else {
                    (pubd, other)
                };
                assert_eq!(reply["type"], "published", "{case}: {reply}");
                assert_eq!(ev["data"], json!({"a": 1}), "{case}: data unchanged");
            }
            let reason = match how {
                Broken::Down => "unavailable",
                Broken::Slow => "timeout",
                Broken::Garbage => "bad_answer",
            };
            let m = srv.metrics().await;
            for hook in ["connect", "subscribe", "publish"] {
                let line =
                    format!("hubbub_hook_failures_total{{hook=\"{hook}\",reason=\"{reason}\"}} 1");
                assert!(m.contains(&line), "{case}: {line}\n{m}");
            }
            // The connection goes on.
            let r = call(&mut ws, json!({"type": "ping", "id": "x"})).await;
            assert_eq!(r["type"], "pong", "{case}");
        }
    }
}

#[tokio::test]
async fn answers_that_are_not_decisions_are_failures() {
    let app = axum::Router::new()
        .route(
            "/wrong-field",
            post(|| async { axum::Json(json!({"result": "allow", "user_id": "root"})) }),
        )
        .route(
            "/wrong-code",
            post(|| async { axum::Json(json!({"result": "deny", "code": "nope"})) }),
        )
        .route(
            "/status",
            post(|| async {
                (
                    axum::http::StatusCode::BAD_GATEWAY,
                    "{\"result\":\"allow\"}",
                )
            }),
        )
        .route(
            "/bad-data",
            post(|| async {
                let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
                format!("{{\"result\": \"allow\", \"data\": {deep}}}")
            }),
        )
        .route(
            "/bad-user",
            post(|| async {
                axum::Json(json!({"result": "allow", "user_id": "no spaces allowed"}))
            }),
        );
    let addr = backend(app).await;
    let toml = format!(
        "[hooks.connect]\nurl = \"http://{addr}/bad-user\"\n\
         [hooks.subscribe]\nurl = \"http://{addr}/wrong-field\"\n\
         [hooks.publish]\nurl = \"http://{addr}/wrong-code\"\n"
    );
    let srv = with_file("garbage", &toml, &[]).await;
    let (_, code) = refused(&srv, "", "").await;
    assert_eq!(code, Some(1011), "a user_id that cannot be one");
    srv.node
        .on_connect(|_r: ConnectRequest| async { ConnectDecision::Allow });
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    let r = call(
        &mut ws,
        json!({"type": "subscribe", "id": "s", "channels": ["news"]}),
    )
    .await;
    assert_eq!(r["code"], "unavailable", "{r}");
    let r = call(&mut ws, publish("p", "news", "x", json!(1))).await;
    assert_eq!(r["code"], "unavailable", "an unknown error code: {r}");
    let lines = ["connect", "subscribe", "publish"].map(|hook| {
        format!("hubbub_hook_failures_total{{hook=\"{hook}\",reason=\"bad_answer\"}} 1")
    });
    srv.assert_metrics(&lines).await;
    // Another status, and replaced data too deep to publish.
    let toml = format!(
        "[hooks.subscribe]\nurl = \"http://{addr}/status\"\n\
         [hooks.publish]\nurl = \"http://{addr}/bad-data\"\n"
    );
    let srv = with_file("garbage2", &toml, &[]).await;
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    let r = call(
        &mut ws,
        json!({"type": "subscribe", "id": "s", "channels": ["news"]}),
    )
    .await;
    assert_eq!(r["code"], "unavailable", "{r}");
    let r = call(&mut ws, publish("p", "news", "x", json!(1))).await;
    assert_eq!(r["code"], "unavailable", "{r}");
    srv.assert_metrics(&[
        "hubbub_hook_failures_total{hook=\"subscribe\",reason=\"unavailable\"} 1",
    ])
    .await;
}

#[tokio::test]
async fn a_rust_hook_that_panics_or_stalls_fails_by_its_policy() {
    let srv = TestServer::start(&[
        ("hooks.subscribe.timeout_ms", "200"),
        ("hooks.publish.on_failure", "allow"),
        ("channels.publish", "true"),
    ])
    .await;
    let calls = Arc::new(AtomicUsize::new(0));
    let n = calls.clone();
    srv.node.on_subscribe(move |_r: SubscribeRequest| {
        n.fetch_add(1, Relaxed);
        async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            SubscribeDecision::Allow
        }
    });
    srv.node.on_publish(|_r: PublishRequest| async {
        if true {
            panic!("a hook bug");
        }
        PublishDecision::Allow
    });
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    let started = Instant::now();
    let r = call(
        &mut ws,
        json!({"type": "subscribe", "id": "s", "channels": ["a", "b", "c"]}),
    )
    .await;
    assert_eq!(r["code"], "unavailable", "{r}");
    assert_eq!(calls.load(Relaxed), 3);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "channels are asked together, one timeout in all: {:?}",
        started.elapsed()
    );
    let r = call(&mut ws, publish("p", "news", "x", json!(1))).await;
    assert_eq!(r["type"], "published", "on_failure = allow: {r}");
    srv.assert_metrics(&[
        "hubbub_hook_failures_total{hook=\"publish\",reason=\"panic\"} 1",
        "hubbub_hook_failures_total{hook=\"subscribe\",reason=\"timeout\"} 3",
    ])
    .await;
}
