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
    /// The hub's WebSocket URL.
    pub url: String,
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
/// `notes`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerSample {
    /// The hub's pid (given or discovered).
    pub pid: Option<u32>,
    /// `VmRSS` before any connection, in bytes.
    pub rss_before_bytes: Option<u64>,
    /// `VmRSS` with every connection open and held, in bytes.
    pub rss_after_bytes: Option<u64>,
    /// `(after - before) / open_at_sample`: the figure this scenario is for.
    pub rss_per_connection_bytes: Option<f64>,
    /// `RssAnon` before, in bytes (heap and stacks only).
    pub rss_anon_before_bytes: Option<u64>,
    /// `RssAnon` after, in bytes.
    pub rss_anon_after_bytes: Option<u64>,
    /// Anonymous memory per connection, in bytes.
    pub rss_anon_per_connection_bytes: Option<f64>,
    /// `active_connections` from `GET /api/stats` before the run.
    pub hub_active_connections_before: Option<u64>,
    /// `active_connections` from `GET /api/stats` at the second sample.
    pub hub_active_connections: Option<u64>,
    /// `subscribers` from `GET /api/channels/{channel}` at the second sample.
    pub hub_channel_subscribers: Option<u64>,
    /// Why a figure is missing.
    pub notes: Vec<String>,
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
        ("server pid", s.pid.map_or("n/a".into(), |p| p.to_string())),
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
