//! Graph-algorithm jobs over real sockets (PROTOCOL.md section 7): each
//! algorithm's event sequence, stopping, the limits, invalid parameters,
//! who may start jobs, coalescing, and `/api/algorithms`.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hubbub_server::auth::jwt::TokenSigner;
use hubbub_server::{Config, Node, Server, Sources};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const WAIT: Duration = Duration::from_secs(20);
const SECRET: &str = "graph-jobs-suite-secret-0123456789abcdef";

struct Hub {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A hub with jobs installed; anyone may start jobs unless `overrides`
/// say otherwise (`channels.publish` is what lets them).
async fn hub(overrides: &[(&str, &str)]) -> Hub {
    let mut o: Vec<(String, String)> = vec![
        ("server.listen".into(), "\"127.0.0.1:0\"".into()),
        ("channels.publish".into(), "true".into()),
    ];
    o.extend(
        overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let config = Config::load(&Sources {
        overrides: o,
        ..Sources::default()
    })
    .expect("config");
    let node = Node::builder(config).build().expect("node");
    let jobs = hubbub_graph::JobsConfig::from_config(node.config()).expect("jobs config");
    hubbub_graph::install(&node, jobs);
    let server = Server::bind_node(node).await.expect("bind");
    let addr = server.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(server.run_until(async {
        let _ = rx.await;
    }));
    Hub {
        addr,
        stop: Some(tx),
    }
}

impl Hub {
    async fn ws(&self, query: &str) -> Ws {
        let url = format!("ws://{}/ws{query}", self.addr);
        let (mut ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect");
        let first = recv(&mut ws).await;
        assert_eq!(first["type"], "connected", "{first}");
        ws
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The job as `GET /api/algorithms` lists it.
    async fn listed(&self, http: &reqwest::Client, job_id: &str) -> Value {
        let list: Value = http
            .get(self.url("/api/algorithms"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .find(|j| j["job_id"] == job_id)
            .expect("the job is listed")
            .clone()
    }
}

async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("no error");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// Sends a command and returns its answer, passing over the events of
/// jobs already running on the connection.
async fn call(ws: &mut Ws, v: Value) -> Value {
    send(ws, v).await;
    loop {
        let m = recv(ws).await;
        if m["type"] != "event" {
            return m;
        }
    }
}

fn start(algorithm: &str, parameters: Value) -> Value {
    json!({"type": "algorithm_start", "id": "start", "algorithm": algorithm, "parameters": parameters})
}

fn grid(n: u64) -> Value {
    json!({"generator": "grid", "nodes": n, "seed": 1})
}

/// A BFS paced to last seconds: a job still running when the test acts.
fn slow_bfs() -> Value {
    json!({"graph": grid(400), "source": 0, "step_delay_ms": 20})
}

/// Starts a job and collects its channel's events up to the terminal one.
async fn run_job(ws: &mut Ws, algorithm: &str, parameters: Value) -> (String, Vec<Value>) {
    let r = call(ws, start(algorithm, parameters)).await;
    assert_eq!(r["type"], "algorithm_started", "{r}");
    assert_eq!(r["correlation_id"], "start");
    let job_id = r["job_id"].as_str().unwrap().to_owned();
    let channel = r["channel"].as_str().unwrap().to_owned();
    assert_eq!(channel, format!("algorithm_{job_id}"));
    (job_id, collect(ws, &channel).await)
}

const TERMINAL: [&str; 3] = [
    "algorithm_complete",
    "algorithm_stopped",
    "algorithm_failed",
];

async fn collect(ws: &mut Ws, channel: &str) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let m = recv(ws).await;
        if m["type"] != "event" || m["channel"] != channel {
            continue;
        }
        let terminal = TERMINAL.contains(&m["event_type"].as_str().unwrap());
        events.push(m);
        if terminal {
            return events;
        }
    }
}

/// The order every job's stream keeps: `graph` first, exactly one terminal
/// event last, kept events with increasing offsets, progress never
/// decreasing.
fn check_sequence(events: &[Value]) {
    assert_eq!(events[0]["event_type"], "graph", "{}", events[0]);
    let terminals = events
        .iter()
        .filter(|e| TERMINAL.contains(&e["event_type"].as_str().unwrap()))
        .count();
    assert_eq!(terminals, 1);
    let offsets: Vec<u64> = events.iter().filter_map(|e| e["offset"].as_u64()).collect();
    assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
    assert_eq!(offsets.len(), 2, "graph and terminal are kept: {offsets:?}");
    let progress: Vec<f64> = events
        .iter()
        .filter(|e| e["event_type"] == "algorithm_progress")
        .map(|e| e["data"]["progress"].as_f64().unwrap())
        .collect();
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
}

fn types(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn every_algorithm_streams_graph_work_and_one_terminal_event() {
    let hub = hub(&[]).await;
    let mut ws = hub.ws("").await;
    let cases = [
        ("bfs", json!({"graph": grid(16), "source": 0})),
        ("dfs", json!({"graph": grid(16), "source": 0})),
        (
            "dijkstra",
            json!({"graph": grid(16), "source": 0, "target": 15}),
        ),
        (
            "astar",
            json!({"graph": grid(16), "source": 0, "target": 15}),
        ),
        ("pagerank", json!({"graph": grid(16)})),
        ("connected_components", json!({"graph": grid(16)})),
    ];
    for (algorithm, parameters) in cases {
        let (job_id, events) = run_job(&mut ws, algorithm, parameters).await;
        check_sequence(&events);
        let kinds = types(&events);
        let last = events.last().unwrap();
        assert_eq!(
            last["event_type"], "algorithm_complete",
            "{algorithm}: {last}"
        );
        let data = &last["data"];
        assert_eq!(data["job_id"], job_id.as_str());
        assert!(data["statistics"]["events_emitted"].as_u64().unwrap() >= 3);
        let graph = &events[0]["data"];
        assert_eq!(graph["nodes"].as_array().unwrap().len(), 16);
        assert_eq!(graph["edges"].as_array().unwrap().len(), 24, "a 4x4 grid");
        assert_eq!(graph["directed"], false);
        assert!(
            kinds.contains(&"algorithm_progress"),
            "{algorithm}: {kinds:?}"
        );
        assert!(kinds.contains(&"node_activation"), "{algorithm}: {kinds:?}");
        let result = &data["result"];
        match algorithm {
            "bfs" | "dfs" => {
                let order = result["order"].as_array().unwrap();
                assert_eq!(order.len(), 16);
                assert_eq!(order[0], 0);
                assert!(kinds.contains(&"edge_traversal"));
            }
            "dijkstra" | "astar" => {
                assert_eq!(result["cost"], 6.0, "{result}");
                let path = result["path"].as_array().unwrap();
                assert_eq!(
                    (path[0].as_i64(), path.last().unwrap().as_i64()),
                    (Some(0), Some(15))
                );
                let found = events
                    .iter()
                    .find(|e| e["event_type"] == "path_discovered")
                    .expect("path_discovered");
                assert_eq!(found["data"]["is_optimal"], true);
                assert_eq!(found["data"]["cost"], 6.0);
            }
            "pagerank" => {
                let ranks = result["ranks"].as_object().unwrap();
                assert_eq!(ranks.len(), 16);
                let sum: f64 = ranks.values().map(|v| v.as_f64().unwrap()).sum();
                assert!((sum - 1.0).abs() < 1e-9, "{sum}");
                assert_eq!(result["converged"], true);
            }
            _ => {
                let components = result["components"].as_array().unwrap();
                assert_eq!(components.len(), 1);
                assert_eq!(components[0].as_array().unwrap().len(), 16);
            }
        }
    }
}

#[tokio::test]
async fn a_late_reader_finds_the_graph_and_the_result_in_history() {
    let hub = hub(&[]).await;
    let mut ws = hub.ws("").await;
    let (job_id, _) = run_job(&mut ws, "bfs", json!({"graph": grid(9), "source": 0})).await;
    let r = call(
        &mut ws,
        json!({"type": "history", "id": "h", "channel": format!("algorithm_{job_id}"), "since_offset": 0}),
    )
    .await;
    assert_eq!(r["type"], "history", "{r}");
    let kinds: Vec<&str> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["graph", "algorithm_complete"]);
}

#[tokio::test]
async fn a_job_stops_on_request_and_at_its_time_limit() {
    let hub = hub(&[("apps.algorithms.max_duration_ms", "1500")]).await;
    let mut ws = hub.ws("").await;
    let r = call(&mut ws, start("bfs", slow_bfs())).await;
    let job_id = r["job_id"].as_str().unwrap().to_owned();
    let channel = r["channel"].as_str().unwrap().to_owned();
    // Wait for work to be under way, then stop.
    loop {
        let m = recv(&mut ws).await;
        if m["event_type"] == "node_activation" {
            break;
        }
    }
    send(
        &mut ws,
        json!({"type": "algorithm_stop", "id": "stop", "job_id": job_id}),
    )
    .await;
    let mut replied = false;
    let events = loop {
        let m = recv(&mut ws).await;
        if m["type"] == "algorithm_stopped" {
            assert_eq!(
                (m["correlation_id"].as_str(), m["job_id"].as_str()),
                (Some("stop"), Some(job_id.as_str()))
            );
            replied = true;
        } else if m["type"] == "event" && m["event_type"] == "algorithm_stopped" {
            break m;
        }
    };
    assert!(replied);
    assert_eq!(events["channel"], channel.as_str());
    // Out of time: the same run, left alone.
    let (_, events) = run_job(&mut ws, "bfs", slow_bfs()).await;
    let last = events.last().unwrap();
    assert_eq!(last["event_type"], "algorithm_failed", "{last}");
    assert!(last["data"]["error"]
        .as_str()
        .unwrap()
        .contains("time limit"));
    // An unknown job.
    let r = call(
        &mut ws,
        json!({"type": "algorithm_stop", "id": "x", "job_id": "nope"}),
    )
    .await;
    assert_eq!(
        (r["type"].as_str(), r["code"].as_str()),
        (Some("error"), Some("not_found")),
        "{r}"
    );
}

#[tokio::test]
async fn the_limits_answer_limit_exceeded_and_bad_request() {
    let hub = hub(&[
        ("apps.algorithms.max_running_per_user", "1"),
        ("apps.algorithms.max_running", "2"),
        ("apps.algorithms.max_nodes", "1000"),
    ])
    .await;
    let slow = slow_bfs();
    let mut cy = hub.ws("?user_id=cy").await;
    let r = call(
        &mut cy,
        start("bfs", json!({"graph": grid(5000), "source": 0})),
    )
    .await;
    assert_eq!(r["code"], "bad_request", "{r}");
    assert!(r["message"].as_str().unwrap().contains("1000"), "{r}");
    let mut ann = hub.ws("?user_id=ann").await;
    let r = call(&mut ann, start("bfs", slow.clone())).await;
    assert_eq!(r["type"], "algorithm_started", "{r}");
    let r = call(&mut ann, start("bfs", slow.clone())).await;
    assert_eq!(r["code"], "limit_exceeded", "{r}");
    assert!(r["message"].as_str().unwrap().contains("per user"), "{r}");
    let mut bob = hub.ws("?user_id=bob").await;
    let r = call(&mut bob, start("bfs", slow.clone())).await;
    assert_eq!(r["type"], "algorithm_started", "{r}");
    let r = call(&mut cy, start("bfs", slow.clone())).await;
    assert_eq!(r["code"], "limit_exceeded", "{r}");
    assert!(r["message"].as_str().unwrap().contains("at once"), "{r}");
}

#[tokio::test]
async fn invalid_parameters_are_bad_requests_that_name_the_problem() {
    let hub = hub(&[]).await;
    let mut ws = hub.ws("").await;
    let explicit = json!({"nodes": ["a", "b", "c"], "edges": [["a", "b", 2], ["b", "c", -1]]});
    let cases = [
        ("quicksort", json!({"graph": grid(4)}), "quicksort"),
        ("bfs", json!({}), "graph"),
        ("bfs", json!({"graph": grid(4), "source": 99}), "99"),
        (
            "dijkstra",
            json!({"graph": explicit, "source": "a", "target": "c"}),
            "weighs -1",
        ),
        ("dijkstra", json!({"graph": grid(4), "source": 0}), "target"),
        ("bfs", json!({"graph": {"nodes": [1, 1], "edges": []}}), "1"),
        (
            "bfs",
            json!({"graph": {"nodes": [1], "edges": [[1, 2]]}}),
            "2",
        ),
        (
            "bfs",
            json!({"graph": {"generator": "grid", "nodes": 1_000_000_000_000u64, "seed": 1}}),
            "200000",
        ),
        (
            "bfs",
            json!({"graph": grid(4), "step_delay_ms": 100_000}),
            "step_delay_ms",
        ),
        (
            "bfs",
            json!({"graph": grid(4), "max_events_per_second": 0}),
            "max_events_per_second",
        ),
        (
            "pagerank",
            json!({"graph": grid(4), "damping": 1.5}),
            "damping",
        ),
    ];
    for (algorithm, parameters, named) in cases {
        let r = call(&mut ws, start(algorithm, parameters.clone())).await;
        assert_eq!(
            (
                r["type"].as_str(),
                r["code"].as_str(),
                r["correlation_id"].as_str()
            ),
            (Some("error"), Some("bad_request"), Some("start")),
            "{algorithm} {parameters}: {r}"
        );
        let message = r["message"].as_str().unwrap().to_lowercase();
        assert!(
            message.contains(&named.to_lowercase()),
            "{algorithm} {parameters}: {r}"
        );
    }
}

#[tokio::test]
async fn starting_jobs_needs_the_jobs_right_or_publish_rights() {
    let hub = hub(&[
        ("channels.publish", "false"),
        ("auth.hs256_secret", &format!("\"{SECRET}\"")),
    ])
    .await;
    let signer = TokenSigner::hs256(SECRET.as_bytes());
    let exp = hubbub_server::now_ms() / 1000 + 600;
    let plain = signer.sign(&json!({"sub": "ann", "exp": exp})).unwrap();
    let jobs = signer
        .sign(&json!({"sub": "bob", "exp": exp, "jobs": true}))
        .unwrap();
    let mut ws = hub.ws(&format!("?token={plain}")).await;
    let r = call(&mut ws, start("bfs", json!({"graph": grid(4)}))).await;
    assert_eq!(r["code"], "forbidden", "{r}");
    let mut ws = hub.ws(&format!("?token={jobs}")).await;
    let (_, events) = run_job(&mut ws, "bfs", json!({"graph": grid(4)})).await;
    assert_eq!(events.last().unwrap()["event_type"], "algorithm_complete");
}

#[tokio::test]
async fn a_capped_stream_coalesces_activations_into_batches() {
    let hub = hub(&[]).await;
    let mut ws = hub.ws("").await;
    let (_, events) = run_job(
        &mut ws,
        "bfs",
        json!({"graph": grid(2500), "source": 0, "max_events_per_second": 100}),
    )
    .await;
    check_sequence(&events);
    let batches: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "node_activation_batch")
        .collect();
    assert!(!batches.is_empty());
    let singles = events
        .iter()
        .filter(|e| e["event_type"] == "node_activation")
        .count();
    let batched: usize = batches
        .iter()
        .map(|b| b["data"]["activations"].as_array().unwrap().len())
        .sum();
    // Every node is activated, one way or the other (the latest level per
    // node per tick: a node activated twice in a tick is sent once).
    assert!(singles + batched >= 2500 - 1, "{singles} + {batched}");
    let stats = &events.last().unwrap()["data"]["statistics"];
    assert!(stats["events_coalesced"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["events_emitted"].as_u64().unwrap() < 2500, "{stats}");
}

#[tokio::test]
async fn the_http_api_starts_lists_and_stops_jobs() {
    let hub = hub(&[]).await;
    let http = reqwest::Client::new();
    let mut ws = hub.ws("").await;
    let r = http
        .post(hub.url("/api/algorithms"))
        .json(&json!({"algorithm": "bfs", "parameters": slow_bfs()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let started: Value = r.json().await.unwrap();
    let job_id = started["job_id"].as_str().unwrap().to_owned();
    let channel = started["channel"].as_str().unwrap().to_owned();
    // A watcher who comes late still gets the graph first (recovery from 0).
    let r = call(
        &mut ws,
        json!({"type": "subscribe", "id": "s", "channels": [channel], "since": {channel.clone(): {"offset": 0, "epoch": ""}}}),
    )
    .await;
    assert_eq!(r["type"], "subscribed", "{r}");
    let mine = hub.listed(&http, &job_id).await;
    assert_eq!(
        (mine["algorithm"].as_str(), mine["status"].as_str()),
        (Some("bfs"), Some("running")),
        "{mine}"
    );
    let r = http
        .delete(hub.url(&format!("/api/algorithms/{job_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let events = collect(&mut ws, &channel).await;
    assert_eq!(events[0]["event_type"], "graph");
    assert_eq!(events.last().unwrap()["event_type"], "algorithm_stopped");
    let mine = hub.listed(&http, &job_id).await;
    assert_eq!(mine["status"], "stopped", "{mine}");
    let r = http
        .delete(hub.url("/api/algorithms/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http
        .post(hub.url("/api/algorithms"))
        .json(&json!({"algorithm": "bfs", "parameters": {"graph": {"nodes": [], "edges": []}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
    let doc: Value = http
        .get(hub.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/algorithms"]["post"].is_object());
}

#[tokio::test]
async fn a_job_stops_when_its_starter_leaves_if_so_configured() {
    let hub = hub(&[("apps.algorithms.stop_on_disconnect", "true")]).await;
    let http = reqwest::Client::new();
    let mut ws = hub.ws("").await;
    let r = call(&mut ws, start("bfs", slow_bfs())).await;
    let job_id = r["job_id"].as_str().unwrap().to_owned();
    drop(ws);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = hub.listed(&http, &job_id).await["status"].clone();
        if status == "stopped" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn graphs_over_the_kept_budget_are_delivered_live_only() {
    let hub = hub(&[("apps.algorithms.keep_graph_bytes", "100")]).await;
    let mut ws = hub.ws("").await;
    let (job_id, events) = run_job(&mut ws, "bfs", json!({"graph": grid(9), "source": 0})).await;
    assert_eq!(events[0]["event_type"], "graph");
    assert!(events[0]["offset"].is_null(), "{}", events[0]);
    let r = call(
        &mut ws,
        json!({"type": "history", "id": "h", "channel": format!("algorithm_{job_id}"), "since_offset": 0}),
    )
    .await;
    let kinds: Vec<&str> = r["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["algorithm_complete"]);
}
