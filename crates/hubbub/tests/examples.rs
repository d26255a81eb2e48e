//! The embedding examples, run as the programs they are and talked to over
//! real sockets: `hubbub subscribe` as the WebSocket client, a plain HTTP
//! request for the task queue's own route.

mod common;
#[path = "cluster/net.rs"]
mod net;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;

use common::*;
use serde_json::Value;

/// The example's binary, built first when this test runs alone (a plain
/// `cargo test` builds examples already).
fn example(name: &str, args: &[&str]) -> Command {
    let exe = std::env::current_exe().expect("test binary");
    let dir: PathBuf = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("examples");
    let path = dir.join(name);
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "-p", "hubbub", "--example", name])
            .status()
            .expect("cargo")
            .success();
        assert!(ok, "building example {name}");
    }
    let mut cmd = Command::new(path);
    cmd.args(args);
    cmd
}

fn listening(proc: &Proc) -> String {
    let line = proc.wait_line(false, |l| l.starts_with("listening on "));
    line["listening on ".len()..].trim().to_owned()
}

fn events(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "event")
        .collect()
}

/// A subscriber through `hubbub subscribe`, ready once it says so.
fn watch(url: &str, channels: &[&str], count: usize) -> Proc {
    let count = count.to_string();
    let mut args = vec!["subscribe", "--url", url, "--count", &count];
    args.extend_from_slice(channels);
    let p = Proc::spawn("subscribe", hubbub(&args));
    p.wait_line(true, |l| l.contains("subscribed to"));
    p
}

fn post(addr: &str, path: &str, body: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text[9..12].parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[test]
fn embedded_task_queue_pushes_progress_to_both_audiences() {
    let mut app = Proc::spawn(
        "embedded_task_queue",
        example("embedded_task_queue", &["127.0.0.1:0"]),
    );
    let addr = listening(&app);
    let url = format!("ws://{addr}/hub/ws");
    // created, three updates, completed: five events on each channel.
    let mut all = watch(&url, &["tasks"], 5);
    let mut one = watch(&url, &["tasks:1"], 5);
    let (status, created) = post(
        &addr,
        "/tasks",
        r#"{"name":"resize","steps":3,"step_ms":10}"#,
    );
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["task"]["task_id"], "1");
    assert_eq!(created["reached"], 2, "both watchers reached: {created}");
    all.expect_exit(0);
    one.expect_exit(0);
    for p in [&all, &one] {
        let ev = events(&p.stdout());
        let types: Vec<_> = ev
            .iter()
            .map(|e| e["event_type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "task_created",
                "task_updated",
                "task_updated",
                "task_updated",
                "task_completed"
            ]
        );
        let progress: Vec<f64> = ev
            .iter()
            .map(|e| e["data"]["progress"].as_f64().unwrap())
            .collect();
        assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
        assert_eq!(ev[4]["data"]["status"], "completed");
        let offsets: Vec<_> = ev.iter().map(|e| e["offset"].as_u64().unwrap()).collect();
        assert_eq!(offsets, [1, 2, 3, 4, 5], "kept in history, in order");
    }
    // Ctrl-C: every client is told 1001 and the program exits cleanly.
    let mut late = Proc::spawn("subscribe", hubbub(&["subscribe", "--url", &url, "tasks"]));
    late.wait_line(true, |l| l.contains("subscribed to"));
    app.signal("INT");
    app.expect_exit(0);
    let status = late.wait_exit(WAIT);
    assert!(
        late.stderr().contains("1001") || status.code() == Some(1),
        "{}",
        late.dump()
    );
}

#[test]
fn embedded_graph_streams_a_whole_run() {
    let mut app = Proc::spawn(
        "embedded_graph",
        example("embedded_graph", &["127.0.0.1:0", "4", "1"]),
    );
    let addr = listening(&app);
    let url = format!("ws://{addr}/ws");
    // graph, 16 activations, 15 traversals, progress every tenth (10), complete.
    let mut job = Proc::spawn(
        "subscribe",
        hubbub(&[
            "subscribe",
            "--url",
            &url,
            "algorithm_demo",
            "node_activations",
        ]),
    );
    job.wait_line(true, |l| l.contains("subscribed to"));
    app.expect_exit(0);
    job.wait_exit(WAIT);
    let ev = events(&job.stdout());
    let on = |ch: &str| -> Vec<&Value> { ev.iter().filter(|e| e["channel"] == ch).collect() };
    let run = on("algorithm_demo");
    assert_eq!(run[0]["event_type"], "graph");
    assert_eq!(run[0]["data"]["nodes"].as_array().unwrap().len(), 16);
    assert_eq!(run.last().unwrap()["event_type"], "algorithm_complete");
    let order = run.last().unwrap()["data"]["result"]["order"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(order, 16);
    let count = |t: &str| run.iter().filter(|e| e["event_type"] == t).count();
    assert_eq!(count("node_activation"), 16);
    assert_eq!(count("edge_traversal"), 15, "a spanning tree");
    let progress: Vec<f64> = run
        .iter()
        .filter(|e| e["event_type"] == "algorithm_progress")
        .map(|e| e["data"]["progress"].as_f64().unwrap())
        .collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(progress.last().copied(), Some(1.0));
    assert_eq!(
        on("node_activations").len(),
        16,
        "activations also on node_activations"
    );
    assert!(app
        .stdout()
        .iter()
        .any(|l| l.starts_with("complete: 16 nodes")));
}

/// The query's stages as the caller saw them (events carrying the
/// call's correlation id), then the answer.
async fn query(c: &mut net::Client, data: Value) -> (Vec<Value>, Value) {
    c.send(serde_json::json!({"type": "rpc", "id": "q", "method": "query.run", "data": data}))
        .await;
    let mut progress = Vec::new();
    loop {
        match c.next().await {
            net::Next::Message(m) if m["correlation_id"] == "q" && m["type"] == "event" => {
                progress.push(m)
            }
            net::Next::Message(m) if m["correlation_id"] == "q" => return (progress, m),
            net::Next::Message(_) => continue,
            net::Next::Closed(code) => panic!("closed {code:?}"),
        }
    }
}

/// A query's stages, as both RPC examples report them.
const EVERY_STAGE: [&str; 5] = [
    "parsing",
    "validating",
    "executing",
    "formatting",
    "completed",
];

fn stages(progress: &[Value]) -> Vec<&str> {
    progress
        .iter()
        .map(|m| m["data"]["stage"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn rpc_query_progress_reports_each_stage_then_answers() {
    let app = Proc::spawn(
        "rpc_query_progress",
        example("rpc_query_progress", &["127.0.0.1:0", "5"]),
    );
    let addr = listening(&app);
    let mut c = net::Client::connect(&addr, "ann").await.unwrap();
    let sql = "select n, n * n from numbers";
    let (progress, r) = query(&mut c, serde_json::json!({"sql": sql})).await;
    assert_eq!(stages(&progress), EVERY_STAGE);
    for m in &progress {
        assert_eq!(
            (m["channel"].as_str(), m["correlation_id"].as_str()),
            (Some("rpc:query.run"), Some("q"))
        );
    }
    assert_eq!(r["type"], "rpc_result", "{r}");
    assert_eq!(
        r["data"]["rows"],
        serde_json::json!([[1, 1], [2, 4], [3, 9]])
    );
    let (progress, r) = query(&mut c, serde_json::json!({"sql": "drop table numbers"})).await;
    assert_eq!(stages(&progress), ["parsing", "validating"]);
    assert_eq!(r["code"], "forbidden", "{r}");
    let (_, r) = query(&mut c, serde_json::json!({"sql": " "})).await;
    assert_eq!(r["code"], "bad_request", "{r}");
}

/// A port nobody listens on now (for a process that binds it next).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn rpc_proxy_is_answered_by_a_python_backend() {
    let dir = std::env::temp_dir().join(format!("hubbub-rpc-proxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let backend_port = free_port();
    let config = dir.join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "[[rpc.proxy]]\nprefix = \"query.\"\nurl = \"http://127.0.0.1:{backend_port}/rpc\"\ntimeout_ms = 5000\n"
        ),
    )
    .unwrap();
    let hub = Hub::start(&["--config", config.to_str().unwrap()], &[]);
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/rpc_proxy/backend.py");
    let port = backend_port.to_string();
    let hub_url = hub.http();
    let mut py = Command::new("python3");
    py.args([
        script.to_str().unwrap(),
        "--port",
        &port,
        "--hub",
        &hub_url,
        "--step-ms",
        "5",
    ]);
    let backend = Proc::spawn("backend.py", py);
    backend.wait_line(false, |l| l.starts_with("listening on "));
    let mut c = net::Client::connect(&hub.addr, "bob").await.unwrap();
    let r = c
        .call(
            serde_json::json!({"type": "subscribe", "channels": ["query:7"]}),
            "s",
        )
        .await;
    assert_eq!(r["type"], "subscribed", "{r}");
    let sql = "select n from numbers";
    let r = c
        .call(
            serde_json::json!({"type": "rpc", "method": "query.run", "data": {"sql": sql, "query_id": "7"}}),
            "q",
        )
        .await;
    assert_eq!(r["type"], "rpc_result", "{r}");
    assert_eq!(
        (r["data"]["sql"].as_str(), r["data"]["user_id"].as_str()),
        (Some(sql), Some("bob"))
    );
    // Published before the answer: all five stages are here, in order.
    let progress: Vec<Value> = std::mem::take(&mut c.seen)
        .into_iter()
        .filter(|m| m["channel"] == "query:7")
        .collect();
    assert_eq!(stages(&progress), EVERY_STAGE);
    let r = c
        .call(
            serde_json::json!({"type": "rpc", "method": "query.run", "data": {"sql": "drop it", "query_id": "7"}}),
            "x",
        )
        .await;
    assert_eq!(r["code"], "forbidden", "{r}");
    let r = c
        .call(
            serde_json::json!({"type": "rpc", "method": "query.nope", "data": null}),
            "n",
        )
        .await;
    assert_eq!(r["code"], "not_found", "the backend's own answer: {r}");
    drop(backend);
    let r = c
        .call(serde_json::json!({"type": "rpc", "method": "query.run", "data": {"sql": sql, "query_id": "7"}}), "d")
        .await;
    assert_eq!(r["code"], "unavailable", "backend gone: {r}");
}
