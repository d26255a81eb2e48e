//! A program that runs its own graph algorithm and streams its work through
//! an embedded hub, as a graph engine with live visualization does.
//!
//! ```text
//! cargo run --example embedded_graph                 # 127.0.0.1:3001, a 20x20 grid
//! cargo run --example embedded_graph -- 127.0.0.1:0 8 5
//! hubbub subscribe --url ws://127.0.0.1:3001/ws algorithm_demo all_algorithms
//! ```
//!
//! Arguments: listen address, grid side, milliseconds per step. The program
//! serves the hub standalone, waits for a first watcher on
//! `algorithm_demo` (at most ten seconds), then runs a breadth-first
//! search over the grid: the `graph` event first, then `node_activation`
//! and `edge_traversal` per step and `algorithm_progress` every tenth of
//! the way, and `algorithm_complete` last (PROTOCOL.md section 7), all
//! through [`hubbub::JobUpdates`]. Then it shuts down (1001 to every
//! client) and exits.

use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hubbub::protocol::algorithm::{
    Algorithm, AlgorithmComplete, AlgorithmProgress, AlgorithmResult, AlgorithmStatistics,
    EdgeTraversal, Graph, NodeActivation,
};
use hubbub::protocol::graph::{GraphEdge, GraphNode, NodeId};
use hubbub::{Node, Sources};

const JOB: &str = "demo";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A side x side grid: node `r * side + c` at (c, r), edges to the right
/// and down, each of length 1.
fn grid(side: i64) -> Graph {
    let id = |r: i64, c: i64| NodeId::Int(r * side + c);
    let mut nodes = Vec::new();
    let mut edges = Vec::new();
    for r in 0..side {
        for c in 0..side {
            nodes.push(GraphNode {
                id: id(r, c),
                x: Some(c as f64),
                y: Some(r as f64),
            });
            if c + 1 < side {
                edges.push(GraphEdge {
                    from: id(r, c),
                    to: id(r, c + 1),
                    weight: 1.0,
                });
            }
            if r + 1 < side {
                edges.push(GraphEdge {
                    from: id(r, c),
                    to: id(r + 1, c),
                    weight: 1.0,
                });
            }
        }
    }
    Graph {
        directed: false,
        nodes,
        edges,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:3001".into());
    let side: i64 = args.next().map_or(Ok(20), |s| s.parse())?;
    let step = Duration::from_millis(args.next().map_or(Ok(20), |s| s.parse())?);
    let node = Node::from_sources(&Sources {
        overrides: vec![("server.listen".into(), listen)],
        ..Sources::default()
    })?;
    let server = node.clone().bind().await?;
    println!("listening on {}", server.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));

    let job = node.job_updates(JOB, Algorithm::Bfs);
    let deadline = Instant::now() + Duration::from_secs(10);
    while job.active_connections() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let graph = grid(side);
    let n = graph.nodes.len();
    let mut neighbours = vec![Vec::new(); n];
    for e in &graph.edges {
        if let (NodeId::Int(a), NodeId::Int(b)) = (&e.from, &e.to) {
            neighbours[*a as usize].push(*b as usize);
            neighbours[*b as usize].push(*a as usize);
        }
    }
    job.graph(&graph).await?;
    let started = Instant::now();
    let mut seen = vec![false; n];
    let mut order = Vec::with_capacity(n);
    let mut queue = VecDeque::from([0usize]);
    seen[0] = true;
    let (mut edges_processed, mut last_tenth) = (0u64, 0usize);
    while let Some(v) = queue.pop_front() {
        order.push(NodeId::Int(v as i64));
        job.node_activation(&NodeActivation {
            node_id: NodeId::Int(v as i64),
            activation_level: 1.0,
            timestamp: now_ms(),
            algorithm: Algorithm::Bfs,
        })
        .await?;
        for &w in &neighbours[v] {
            edges_processed += 1;
            if !seen[w] {
                seen[w] = true;
                queue.push_back(w);
                job.edge_traversal(&EdgeTraversal {
                    from_node: NodeId::Int(v as i64),
                    to_node: NodeId::Int(w as i64),
                    weight: 1.0,
                    timestamp: now_ms(),
                    algorithm: Algorithm::Bfs,
                })
                .await?;
            }
        }
        let tenth = order.len() * 10 / n;
        if tenth > last_tenth {
            last_tenth = tenth;
            job.progress(&AlgorithmProgress {
                job_id: JOB.into(),
                progress: order.len() as f64 / n as f64,
                current_step: order.len() as u64,
                nodes_processed: order.len() as u64,
                edges_processed,
                intermediate_results: None,
            })
            .await?;
        }
        tokio::time::sleep(step).await;
    }
    let reached = job
        .complete(&AlgorithmComplete {
            job_id: JOB.into(),
            result: AlgorithmResult::Order { order },
            execution_time_ms: started.elapsed().as_millis() as u64,
            statistics: AlgorithmStatistics {
                nodes_processed: n as u64,
                edges_processed,
                wall_time_ms: started.elapsed().as_millis() as u64,
                ..AlgorithmStatistics::default()
            },
        })
        .await?;
    println!("complete: {n} nodes, {edges_processed} edges, {reached} watchers told");
    let _ = stop.send(());
    serving.await??;
    Ok(())
}
