//! What streaming costs a job, and what a job delivers: runs Dijkstra on a
//! generated graph bare (a no-op observer) and as a hub job watched by
//! `watchers` WebSocket clients over loopback, and prints both.
//!
//! ```text
//! cargo run --release -p hubbub-graph --example job_cost -- [nodes] [watchers] [max_events_per_second] [generator]
//! ```
//!
//! Defaults: 100,000 nodes, 1,000 watchers, 20,000 events/s, `grid` (whose
//! `graph` event stays a few MB; a 100,000-node `random_geometric` one is
//! tens of MB, encoded when the graph is built, before the run). `max_events_per_second` 0 streams every step. Each
//! watcher counts the events it receives until the terminal one; the
//! figures are the job's wall time (graph built beforehand in both cases),
//! events emitted, and events delivered per second over all watchers.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hubbub_graph::algo::{self, Flow, Observer, Progress};
use hubbub_graph::graph::{Graph, Limits};
use hubbub_protocol::algorithm::{Algorithm, AlgorithmParameters};
use hubbub_protocol::graph::{GeneratedGraph, Generator, GraphSpec, NodeId};
use hubbub_server::{Config, JobCaller, Node, Server, Sources};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::protocol::Message;

struct Nothing;

impl Observer for Nothing {
    fn activate(&mut self, _: u32, _: f64) {}
    fn traverse(&mut self, _: u32, _: u32, _: f64) {}
    fn path(&mut self, _: &[u32], _: f64, _: bool) {}
    fn step(&mut self, _: &Progress<'_>) -> Flow {
        Flow::Continue
    }
}

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let nodes = arg(1, 100_000);
    let watchers = arg(2, 1_000) as usize;
    let cap = arg(3, 20_000);
    let generator = match std::env::args().nth(4).as_deref() {
        None | Some("grid") => Generator::Grid,
        Some("random_geometric") => Generator::RandomGeometric,
        Some("barabasi_albert") => Generator::BarabasiAlbert,
        Some(other) => return Err(format!("unknown generator {other:?}").into()),
    };
    let spec = GraphSpec::Generated(GeneratedGraph {
        generator,
        nodes,
        seed: 1,
    });
    let mut params = AlgorithmParameters::new(spec.clone());
    params.source = Some(NodeId::Int(0));
    params.target = Some(NodeId::Int(nodes as i64 - 1));
    params.max_events_per_second = (cap > 0).then_some(cap);

    // Bare: the algorithm alone, best of three.
    let graph = Graph::build(&spec, &Limits::default())?;
    let prepared = algo::prepare(&Algorithm::Dijkstra, &graph, &params)?;
    let mut bare = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let _ = algo::run(&Algorithm::Dijkstra, &graph, &prepared, &mut Nothing);
        bare = bare.min(t.elapsed());
    }
    let t = Instant::now();
    let encoded = serde_json::to_vec(&graph.event())?;
    println!(
        "graph event: {:.1} MB, built and encoded in {:.1} ms",
        encoded.len() as f64 / 1e6,
        t.elapsed().as_secs_f64() * 1e3
    );
    println!(
        "graph: {} nodes, {} edges; bare dijkstra: {:.1} ms",
        graph.node_count(),
        graph.edge_count(),
        bare.as_secs_f64() * 1e3
    );

    // Streamed: a hub job, watched over loopback.
    let config = Config::load(&Sources {
        overrides: vec![("server.listen".into(), "\"127.0.0.1:0\"".into())],
        ..Sources::default()
    })?;
    let node = Node::builder(config).build()?;
    let jobs = hubbub_graph::install(&node, hubbub_graph::JobsConfig::from_config(node.config())?);
    let server = Server::bind_node(node.clone()).await?;
    let addr = server.local_addr()?;
    tokio::spawn(server.run_until(std::future::pending()));
    let parameters = hubbub_protocol::JsonData::from_serialize(&params);
    let job = jobs
        .prepare(&JobCaller::operator(&node), "dijkstra", parameters)
        .await?;
    let channel = job.channel.clone();
    let mut tasks = Vec::with_capacity(watchers);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(watchers.max(1));
    for w in 0..watchers {
        let url = format!("ws://{addr}/ws");
        let channel = channel.clone();
        let ready = ready_tx.clone();
        // The first watcher takes the `graph` event and times the run from
        // it to the terminal event; the others take the work events only
        // (the graph is megabytes: a thousand copies would measure
        // loopback, not the job).
        let types = (w > 0).then(|| {
            json!([
                "node_activation",
                "node_activation_batch",
                "edge_traversal",
                "path_discovered",
                "algorithm_progress",
                "algorithm_complete",
                "algorithm_stopped",
                "algorithm_failed"
            ])
        });
        tasks.push(tokio::spawn(watch(url, channel, types, ready)));
    }
    drop(ready_tx);
    for _ in 0..watchers {
        ready_rx.recv().await;
    }
    let started = Instant::now();
    job.start();
    let mut delivered = 0u64;
    let mut run_phase = None;
    for t in tasks {
        let (n, phase) = t.await?;
        delivered += n;
        run_phase = run_phase.or(phase);
    }
    if let Some(p) = run_phase {
        println!(
            "run phase seen by a watcher (graph event to terminal event): {:.1} ms ({:.2}x bare)",
            p.as_secs_f64() * 1e3,
            p.as_secs_f64() / bare.as_secs_f64()
        );
    }
    let all_in = started.elapsed();
    // The job's record is final once its terminal event is out.
    let stats = loop {
        let listed = jobs.list();
        let job = listed.last().expect("the job");
        if job.status != hubbub_graph::Status::Running {
            break job.statistics;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    println!(
        "streamed job (cap {}): wall {} ms ({:.2}x bare), {} events emitted, {} coalesced",
        if cap > 0 {
            cap.to_string()
        } else {
            "none".into()
        },
        stats.wall_time_ms,
        stats.wall_time_ms as f64 / (bare.as_secs_f64() * 1e3),
        stats.events_emitted,
        stats.events_coalesced
    );
    println!(
        "{watchers} watchers: {delivered} events delivered in {:.2} s ({:.0} events/s delivered, {:.0} events/s emitted)",
        all_in.as_secs_f64(),
        delivered as f64 / all_in.as_secs_f64(),
        stats.events_emitted as f64 / all_in.as_secs_f64()
    );
    Ok(())
}

/// What a watcher reads of a message.
#[derive(serde::Deserialize)]
struct Head<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    event_type: Option<&'a str>,
}

/// One watcher: subscribes (to `types` only, when given), says when it is
/// ready, and counts events up to the terminal one; also how long after
/// the `graph` event that came, if it took the `graph` event.
async fn watch(
    url: String,
    channel: String,
    types: Option<Value>,
    ready: tokio::sync::mpsc::Sender<()>,
) -> (u64, Option<Duration>) {
    // The `graph` event of a large graph is one large frame.
    let big = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(big), false)
        .await
        .expect("connect");
    let mut sub = json!({"type": "subscribe", "id": 1, "channels": [channel]});
    if let Some(t) = types {
        sub["event_types"] = t;
    }
    ws.send(Message::Text(sub.to_string().into()))
        .await
        .unwrap();
    let (mut events, mut graph_at) = (0u64, None);
    let mut ready = Some(ready);
    while let Some(Ok(msg)) = ws.next().await {
        let Message::Text(t) = msg else { continue };
        // Only the head is read (the rest skipped without building a
        // tree): the watchers share the machine with the hub they measure.
        let v: Head<'_> = serde_json::from_str(&t).unwrap();
        if v.kind == "subscribed" {
            if let Some(r) = ready.take() {
                let _ = r.send(()).await;
            }
            continue;
        }
        if v.kind != "event" {
            continue;
        }
        events += 1;
        match v.event_type.unwrap_or("") {
            "graph" => graph_at = Some(Instant::now()),
            "algorithm_complete" | "algorithm_stopped" | "algorithm_failed" => break,
            _ => {}
        }
    }
    (events, graph_at.map(|g| g.elapsed()))
}
