//! The report: what a run measured, as printed at its end and written to
//! `--out`.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde::Serialize;

use super::{HostInfo, LatencySummary};

/// The outcome of one run, as printed and as written to `--out`.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionsReport {
    /// Always `connections`; there so files of several scenarios can be told apart.
    pub scenario: String,
    /// The hub's WebSocket URL (several nodes: every URL, comma-separated).
    pub url: String,
    /// Every node's WebSocket URL, in `--url` order.
    pub urls: Vec<String>,
    /// The channel every connection subscribed to.
    pub channel: String,
    /// Connections asked for.
    pub target_connections: u64,
    /// Worker processes (or tasks, in-process).
    pub workers: usize,
    /// Source address of each worker.
    pub source_addrs: Vec<String>,
    /// Whether Ctrl-C cut the run short (the figures are partial).
    pub interrupted: bool,
    /// Handshakes completed (101, `connected`, `subscribed`).
    pub established: u64,
    /// Handshakes that failed.
    pub failures: u64,
    /// Failure reason to count.
    pub failure_reasons: BTreeMap<String, u64>,
    /// Connections open when the RSS was sampled: the divisor of the
    /// per-connection figure (from the workers' counters, at most 200 ms
    /// old; exact once the ramp is over).
    pub open_at_sample: u64,
    /// Connections the server or the network ended while they were held.
    pub dropped: u64,
    /// Connections closed with a complete closing handshake at the end.
    pub closed_cleanly: u64,
    /// From the first connect to the last finished handshake, in seconds.
    pub ramp_seconds: f64,
    /// `established / ramp_seconds`: the overall ramp-up rate.
    pub handshakes_per_second: f64,
    /// Connect to `subscribed`, per established connection.
    pub handshake_ms: LatencySummary,
    /// Connect to the `101` response, per upgraded connection.
    pub upgrade_ms: LatencySummary,
    /// Seconds every connection was held idle before the second sample.
    pub hold_seconds: f64,
    /// The hub's memory and its own counts.
    pub server: ServerSample,
    /// Workers that failed or exited early, and why.
    pub worker_errors: Vec<String>,
    /// Where it ran.
    pub host: HostInfo,
}

/// The hub as seen from outside: its memory from `/proc` and its counts
/// from the HTTP API. Each field is absent when it could not be read (see
/// `notes`). With several server processes or nodes, the top-level figures
/// are sums over all of them (absent unless every one was read), and
/// `processes` and `nodes` hold each one's.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerSample {
    /// The hub's pid (given or discovered; several: the first).
    pub pid: Option<u32>,
    /// `VmRSS` before any connection, in bytes (several: summed).
    pub rss_before_bytes: Option<u64>,
    /// `VmRSS` with every connection open and held, in bytes (summed).
    pub rss_after_bytes: Option<u64>,
    /// `(after - before) / open_at_sample`: the figure this scenario is
    /// for; with several processes, their summed growth over every
    /// connection held.
    pub rss_per_connection_bytes: Option<f64>,
    /// `RssAnon` before, in bytes (heap and stacks only; summed).
    pub rss_anon_before_bytes: Option<u64>,
    /// `RssAnon` after, in bytes (summed).
    pub rss_anon_after_bytes: Option<u64>,
    /// Anonymous memory per connection, in bytes.
    pub rss_anon_per_connection_bytes: Option<f64>,
    /// `active_connections` from `GET /api/stats` before the run (summed
    /// over the nodes).
    pub hub_active_connections_before: Option<u64>,
    /// `active_connections` from `GET /api/stats` at the second sample
    /// (summed over the nodes).
    pub hub_active_connections: Option<u64>,
    /// `subscribers` from `GET /api/channels/{channel}` at the second
    /// sample (summed over the nodes, each counting its own).
    pub hub_channel_subscribers: Option<u64>,
    /// Why a figure is missing.
    pub notes: Vec<String>,
    /// Every server process read, with its own memory figures.
    pub processes: Vec<ProcessMemory>,
    /// Every node (`--url`), with its connections and its own counts.
    pub nodes: Vec<NodeSample>,
}

/// One server process's memory. Exists so a cluster's figure (nodes and,
/// say, Redis summed) can be taken apart.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessMemory {
    /// The pid.
    pub pid: u32,
    /// The `--url`s it serves (listens on their port); empty for Redis.
    pub urls: Vec<String>,
    /// `VmRSS` before any connection, in bytes.
    pub rss_before_bytes: Option<u64>,
    /// `VmRSS` at the second sample, in bytes.
    pub rss_after_bytes: Option<u64>,
    /// `RssAnon` before, in bytes.
    pub rss_anon_before_bytes: Option<u64>,
    /// `RssAnon` after, in bytes.
    pub rss_anon_after_bytes: Option<u64>,
    /// Connections held on the nodes it serves (absent when it serves none).
    pub connections_held: Option<u64>,
    /// Its RSS growth over `connections_held`, in bytes.
    pub rss_per_connection_bytes: Option<f64>,
}

/// One node as the run saw it. Exists so the spread over the nodes, and
/// each node's own figure, can be checked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeSample {
    /// Its WebSocket URL.
    pub url: String,
    /// Workers that connected to it (worker w to node w mod N).
    pub workers: usize,
    /// Connections it was given.
    pub target_connections: u64,
    /// Handshakes completed on it.
    pub established: u64,
    /// Connections open on it at the second sample.
    pub open_at_sample: u64,
    /// The process serving it, when found among those read.
    pub pid: Option<u32>,
    /// That process's RSS growth per connection it holds, in bytes.
    pub rss_per_connection_bytes: Option<f64>,
    /// `active_connections` from its `GET /api/stats` before the run.
    pub hub_active_connections_before: Option<u64>,
    /// `active_connections` from its `GET /api/stats` at the second sample.
    pub hub_active_connections: Option<u64>,
    /// `subscribers` from its `GET /api/channels/{channel}`.
    pub hub_channel_subscribers: Option<u64>,
}

pub(super) fn write_report(
    path: &std::path::Path,
    report: &ConnectionsReport,
) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

pub(super) fn thousands(n: u64) -> String {
    let digits: Vec<char> = n.to_string().chars().collect();
    let groups: Vec<String> = digits
        .rchunks(3)
        .rev()
        .map(|g| g.iter().collect())
        .collect();
    groups.join(",")
}

pub(super) fn bytes_cell(b: Option<u64>) -> String {
    match b {
        Some(b) => format!("{:.1} MiB ({} B)", b as f64 / 1048576.0, thousands(b)),
        None => "n/a".into(),
    }
}

pub(super) fn print_table(r: &ConnectionsReport) {
    let s = &r.server;
    let opt = |v: Option<u64>| v.map_or("n/a".to_owned(), thousands);
    let per = |v: Option<f64>| v.map_or("n/a".to_owned(), |b| format!("{b:.0} B"));
    let mut rows: Vec<(&str, String)> = vec![
        ("url", r.url.clone()),
        (
            "workers",
            format!("{} ({})", r.workers, r.source_addrs.join(", ")),
        ),
        (
            "connections established",
            format!(
                "{} / {}",
                thousands(r.established),
                thousands(r.target_connections)
            ),
        ),
        ("failures", thousands(r.failures)),
        (
            "handshakes/s",
            format!(
                "{:.0} (ramp {:.2} s)",
                r.handshakes_per_second, r.ramp_seconds
            ),
        ),
        (
            "handshake p50/p90/p99",
            format!(
                "{:.2} / {:.2} / {:.2} ms (max {:.2})",
                r.handshake_ms.p50_ms,
                r.handshake_ms.p90_ms,
                r.handshake_ms.p99_ms,
                r.handshake_ms.max_ms
            ),
        ),
        (
            "held",
            format!("{:.1} s, {} dropped", r.hold_seconds, r.dropped),
        ),
        (
            if s.processes.len() > 1 {
                "server pids"
            } else {
                "server pid"
            },
            if s.processes.len() > 1 {
                s.processes
                    .iter()
                    .map(|p| p.pid.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                s.pid.map_or("n/a".into(), |p| p.to_string())
            },
        ),
        ("server RSS before", bytes_cell(s.rss_before_bytes)),
        ("server RSS after", bytes_cell(s.rss_after_bytes)),
        (
            "RSS per connection",
            format!(
                "{} (anonymous: {}, over {} open)",
                per(s.rss_per_connection_bytes),
                per(s.rss_anon_per_connection_bytes),
                thousands(r.open_at_sample)
            ),
        ),
        ("hub active_connections", opt(s.hub_active_connections)),
        ("hub channel subscribers", opt(s.hub_channel_subscribers)),
    ];
    if r.interrupted {
        rows.insert(0, ("INTERRUPTED", "partial results".into()));
    }
    println!("hubbub bench connections");
    for (k, v) in rows {
        println!("  {k:<26}{v}");
    }
    if s.processes.len() > 1 {
        for p in &s.processes {
            let growth = match (p.rss_before_bytes, p.rss_after_bytes) {
                (Some(b), Some(a)) if a >= b => format!("+{}", thousands(a - b)),
                (Some(b), Some(a)) => format!("-{}", thousands(b - a)),
                _ => "n/a".into(),
            };
            let k = format!("pid {}", p.pid);
            println!(
                "  {k:<26}RSS after {}, growth {growth} B, {} per connection{}",
                bytes_cell(p.rss_after_bytes),
                per(p.rss_per_connection_bytes),
                if p.urls.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", p.urls.join(", "))
                }
            );
        }
    }
    if s.nodes.len() > 1 {
        for (k, n) in s.nodes.iter().enumerate() {
            let k = format!("node {k}");
            println!(
                "  {k:<26}{}: {} / {} established, {} open, {} worker(s), pid {}, RSS per connection {}, hub active_connections {}",
                n.url,
                thousands(n.established),
                thousands(n.target_connections),
                thousands(n.open_at_sample),
                n.workers,
                n.pid.map_or("n/a".into(), |p| p.to_string()),
                per(n.rss_per_connection_bytes),
                opt(n.hub_active_connections),
            );
        }
    }
    for (reason, n) in &r.failure_reasons {
        println!("  failed: {n:>8} x {reason}");
    }
    for e in &r.worker_errors {
        println!("  {e}");
    }
    for n in &s.notes {
        println!("  note: {n}");
    }
}
