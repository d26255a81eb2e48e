//! `rpc` over real sockets: handlers registered through the library API,
//! progress to the caller, timeouts, panics, bounds, typed errors, and
//! HTTP backends that answer, fail, stall or answer garbage.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::post;
use common::{call, connect, recv, send, TestServer};
use hubbub_protocol::ErrorCode;
use hubbub_server::rpc::{RpcCall, RpcError};
use serde_json::{json, Value};

fn rpc(id: &str, method: &str, data: Value) -> Value {
    json!({"type": "rpc", "id": id, "method": method, "data": data})
}

#[tokio::test]
async fn a_handler_reports_progress_then_answers_the_caller() {
    let srv = TestServer::start(&[]).await;
    srv.node.rpc("query.run", |call: RpcCall| async move {
        let q: Value = call.data_as()?;
        for stage in ["parsing", "validating", "executing", "formatting"] {
            call.progress("query_progress", &json!({"stage": stage}))?;
        }
        Ok(json!({"rows": [q["sql"].clone()], "user": call.user_id}))
    });
    let (mut ws, _) = connect(&srv.ws_url("?user_id=ann"), None).await;
    send(&mut ws, rpc("q1", "query.run", json!({"sql": "select 1"}))).await;
    for stage in ["parsing", "validating", "executing", "formatting"] {
        let m = recv(&mut ws).await;
        assert_eq!(
            (
                m["type"].as_str(),
                m["channel"].as_str(),
                m["correlation_id"].as_str()
            ),
            (Some("event"), Some("rpc:query.run"), Some("q1")),
            "{m}"
        );
        assert_eq!(m["data"]["stage"], stage);
        assert!(m.get("offset").is_none(), "progress is never stored: {m}");
    }
    let r = recv(&mut ws).await;
    assert_eq!(
        (r["type"].as_str(), r["correlation_id"].as_str()),
        (Some("rpc_result"), Some("q1")),
        "{r}"
    );
    assert_eq!(r["data"], json!({"rows": ["select 1"], "user": "ann"}));
}

#[tokio::test]
async fn errors_timeouts_and_panics_are_answered_and_harm_nothing_else() {
    let srv = TestServer::start(&[]).await;
    srv.node.rpc("typed", |call: RpcCall| async move {
        let n: u32 = call.data_as()?;
        Err(RpcError::new(ErrorCode::Conflict, format!("{n} is taken")))
    });
    srv.node.rpc_with_timeout(
        "slow",
        Duration::from_millis(100),
        |_call: RpcCall| async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok(json!(null))
        },
    );
    srv.node.rpc("boom", |_call: RpcCall| async move {
        if true {
            panic!("a handler bug");
        }
        Ok(json!(null))
    });
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    let r = call(&mut ws, rpc("t", "typed", json!(7))).await;
    assert_eq!(
        (r["code"].as_str(), r["message"].as_str()),
        (Some("conflict"), Some("7 is taken")),
        "{r}"
    );
    let r = call(&mut ws, rpc("b", "typed", json!("seven"))).await;
    assert_eq!(r["code"], "bad_request", "{r}");
    let r = call(&mut ws, rpc("s", "slow", json!(null))).await;
    assert_eq!(
        (r["code"].as_str(), r["correlation_id"].as_str()),
        (Some("unavailable"), Some("s")),
        "{r}"
    );
    let r = call(&mut ws, rpc("p", "boom", json!(null))).await;
    assert_eq!(
        (r["code"].as_str(), r["correlation_id"].as_str()),
        (Some("internal"), Some("p")),
        "{r}"
    );
    let r = call(&mut ws, rpc("n", "nope", json!(null))).await;
    assert_eq!(r["code"], "not_found", "{r}");
    let r = call(&mut ws, rpc("e", "", json!(null))).await;
    assert_eq!(r["code"], "bad_request", "{r}");
    // The connection, and the node, go on.
    let r = call(&mut ws, json!({"type": "ping", "id": "x"})).await;
    assert_eq!(r["type"], "pong");
    let r = call(&mut ws, rpc("t2", "typed", json!(8))).await;
    assert_eq!(r["code"], "conflict");
    srv.assert_metrics(&["hubbub_rpc_panics_total 1", "hubbub_rpc_timeouts_total 1"])
        .await;
}

#[tokio::test]
async fn a_slow_call_delays_only_itself_and_calls_per_connection_are_bounded() {
    let srv = TestServer::start(&[("rpc.max_in_flight", "2")]).await;
    let (release, wait) = tokio::sync::watch::channel(false);
    srv.node.rpc("wait", move |_call: RpcCall| {
        let mut wait = wait.clone();
        async move {
            let _ = wait.wait_for(|go| *go).await;
            Ok(json!("done"))
        }
    });
    let (mut ws, _) = connect(&srv.ws_url(""), None).await;
    send(&mut ws, rpc("w1", "wait", json!(null))).await;
    send(&mut ws, rpc("w2", "wait", json!(null))).await;
    // Two running: a third is refused at once, and other commands still answer.
    let r = call(&mut ws, rpc("w3", "wait", json!(null))).await;
    assert_eq!(
        (r["code"].as_str(), r["correlation_id"].as_str()),
        (Some("limit_exceeded"), Some("w3")),
        "{r}"
    );
    let r = call(&mut ws, json!({"type": "ping", "id": "x"})).await;
    assert_eq!(r["type"], "pong", "{r}");
    release.send_replace(true);
    let mut done = HashSet::new();
    for _ in 0..2 {
        let r = recv(&mut ws).await;
        assert_eq!(r["data"], "done", "{r}");
        done.insert(r["correlation_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(done, HashSet::from(["w1".to_owned(), "w2".to_owned()]));
    let r = call(&mut ws, rpc("w4", "wait", json!(null))).await;
    assert_eq!(r["data"], "done", "places are given back: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_calls_from_a_hundred_connections_each_get_their_own_answer() {
    let srv = TestServer::start(&[]).await;
    srv.node.rpc("echo", |call: RpcCall| async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(serde_json::from_str::<Value>(call.data.get()).unwrap())
    });
    let mut clients = Vec::new();
    for c in 0..100 {
        let url = srv.ws_url("");
        clients.push(tokio::spawn(async move {
            let (mut ws, _) = connect(&url, None).await;
            for i in 0..10 {
                send(
                    &mut ws,
                    rpc(&format!("c{c}-{i}"), "echo", json!({"c": c, "i": i})),
                )
                .await;
            }
            let mut seen = HashSet::new();
            for _ in 0..10 {
                let r = recv(&mut ws).await;
                let id = r["correlation_id"].as_str().unwrap().to_owned();
                let i = r["data"]["i"].as_u64().unwrap();
                assert_eq!(id, format!("c{c}-{i}"), "{r}");
                assert_eq!(r["data"]["c"], c);
                seen.insert(id);
            }
            seen.len()
        }));
    }
    let mut answered = 0;
    for c in clients {
        answered += c.await.unwrap();
    }
    assert_eq!(answered, 1000);
}

/// A backend of the test's own, over a real socket.
async fn backend(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn http_backends_answer_fail_stall_and_talk_garbage() {
    let app = axum::Router::new()
        .route(
            "/ok",
            post(|axum::Json(v): axum::Json<Value>| async move {
                let method = v["method"].as_str().unwrap_or_default().to_owned();
                if method == "shop.refuse" {
                    return axum::Json(
                        json!({"error": {"code": "forbidden", "message": "not yours"}}),
                    );
                }
                axum::Json(json!({"data": {"echo": v}}))
            }),
        )
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late"
            }),
        )
        .route("/garbage", post(|| async { "<html>oops</html>" }))
        .route(
            "/status",
            post(|| async { (axum::http::StatusCode::BAD_GATEWAY, "{}") }),
        );
    let addr = backend(app).await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let config = format!(
        "[[rpc.proxy]]\nprefix = \"shop.\"\nurl = \"http://{addr}/ok\"\n\
         [[rpc.proxy]]\nprefix = \"slow.\"\nurl = \"http://{addr}/slow\"\ntimeout_ms = 200\n\
         [[rpc.proxy]]\nprefix = \"junk.\"\nurl = \"http://{addr}/garbage\"\n\
         [[rpc.proxy]]\nprefix = \"bad.\"\nurl = \"http://{addr}/status\"\n\
         [[rpc.proxy]]\nprefix = \"down.\"\nurl = \"http://{dead}/\"\n"
    );
    let dir = std::env::temp_dir().join(format!("hubbub-rpc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hub.toml");
    std::fs::write(&file, config).unwrap();
    let srv = TestServer::start_with_file(&file, &[]).await;
    // A handler for the exact method wins over the backend's prefix.
    srv.node
        .rpc("shop.local", |_c: RpcCall| async { Ok(json!("local")) });
    let (mut ws, first) = connect(&srv.ws_url("?user_id=bob"), None).await;
    let r = call(&mut ws, rpc("a", "shop.cart", json!({"items": 2}))).await;
    assert_eq!(r["type"], "rpc_result", "{r}");
    let echo = &r["data"]["echo"];
    assert_eq!(
        (
            echo["method"].as_str(),
            echo["user_id"].as_str(),
            &echo["data"]
        ),
        (Some("shop.cart"), Some("bob"), &json!({"items": 2}))
    );
    assert_eq!(echo["connection_id"], first["connection_id"]);
    let r = call(&mut ws, rpc("b", "shop.refuse", json!(null))).await;
    assert_eq!(
        (r["code"].as_str(), r["message"].as_str()),
        (Some("forbidden"), Some("not yours")),
        "{r}"
    );
    let r = call(&mut ws, rpc("c", "shop.local", json!(null))).await;
    assert_eq!(r["data"], "local", "{r}");
    for (id, method) in [
        ("d", "slow.x"),
        ("e", "junk.x"),
        ("f", "bad.x"),
        ("g", "down.x"),
    ] {
        let r = call(&mut ws, rpc(id, method, json!(null))).await;
        assert_eq!(
            (r["code"].as_str(), r["correlation_id"].as_str()),
            (Some("unavailable"), Some(id)),
            "{method}: {r}"
        );
    }
    srv.assert_metrics(&["hubbub_rpc_backend_failures_total 4"])
        .await;
}
