//! The report: what a run measured, the table printed at its end and the
//! JSON written to `--out`.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde::Serialize;

use super::payload::Latency;
use super::setup::NodeShare;
use super::{Kind, Via};
use crate::nodes::{PidCpu, ServerProcess};
use crate::workers::HostInfo;

/// One measured window.
#[derive(Debug, Clone, Serialize)]
pub struct WindowReport {
    /// Repetition (0-based).
    pub repetition: u32,
    /// Whether connections churned during it.
    pub churn: bool,
    /// Seconds the publishers ran.
    pub seconds: f64,
    /// Publications attempted.
    pub publishes_sent: u64,
    /// Publications the hub accepted (2xx, or `published`).
    pub publishes_accepted: u64,
    /// Accepted publications per second.
    pub publishes_per_second: f64,
    /// Failed publications by reason.
    pub publish_failures: BTreeMap<String, u64>,
    /// Publish request round trip (HTTP answer, or `published` reply).
    pub publish_request: Latency,
    /// Sum over accepted publications of their channel's subscribers.
    pub expected_deliveries: u64,
    /// Deliveries the subscribers saw.
    pub received_deliveries: u64,
    /// `expected - received` (0: nothing missing).
    pub missing: i64,
    /// `received / seconds`.
    pub deliveries_per_second: f64,
    /// Publish to receive, per delivery.
    pub latency: Latency,
    /// The hub's CPU time during the window, in seconds (user + system);
    /// with several server processes (`--server-pid` repeated, or one node
    /// per `--url`), their sum, absent unless every one was read.
    pub server_cpu_seconds: Option<f64>,
    /// Each server process's share of `server_cpu_seconds`, in the order
    /// of [`LoadReport::server_processes`].
    pub server_cpu_by_pid: Vec<PidCpu>,
    /// Server CPU per delivery (per publish when nobody subscribes), µs:
    /// from the sum over every server process.
    pub server_cpu_us_per_delivery: Option<f64>,
    /// Churn cycles completed during the window.
    pub churn_cycles: u64,
    /// Churn cycles that failed, by reason.
    pub churn_failures: BTreeMap<String, u64>,
}

/// The outcome of one run, as printed and written to `--out`.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// The scenario.
    pub scenario: Kind,
    /// WebSocket URL (several nodes: every URL, comma-separated).
    pub url: String,
    /// HTTP API address used for publishing (several: comma-separated).
    pub api: String,
    /// Every node's WebSocket URL, in `--url` order.
    pub urls: Vec<String>,
    /// Per node (same order): its API address and the workers,
    /// subscribers and publishers it was given.
    pub nodes: Vec<NodeShare>,
    /// How publications were sent.
    pub via: Via,
    /// Subscribers asked for.
    pub subscribers: u64,
    /// Subscribers established.
    pub subscribed: u64,
    /// Subscribers that failed to connect, by reason.
    pub subscribe_failures: BTreeMap<String, u64>,
    /// Subscribers the server or network dropped during the run.
    pub dropped: u64,
    /// Channels.
    pub channels: u64,
    /// Target publishes per second (0: unlimited).
    pub rate: f64,
    /// Payload (`data`) size in bytes.
    pub payload_bytes: usize,
    /// Concurrent publishers.
    pub publishers: usize,
    /// Churn cycles per second in churn windows.
    pub churn_rate: f64,
    /// Worker processes.
    pub workers: usize,
    /// Seconds of warm-up.
    pub warmup_seconds: f64,
    /// Whether Ctrl-C cut the run short.
    pub interrupted: bool,
    /// The hub's pid, when found (several: the first of
    /// `server_processes`).
    pub server_pid: Option<u32>,
    /// Every process whose CPU time was measured: the nodes (found by
    /// port) or the `--server-pid`s as given, with the URLs each serves.
    pub server_processes: Vec<ServerProcess>,
    /// Measured windows.
    pub windows: Vec<WindowReport>,
    /// Event frames without the bench's fields (another publisher's).
    pub unparsed_events: u64,
    /// Worker problems.
    pub worker_errors: Vec<String>,
    /// Why a figure is missing (a node whose pid was not found).
    pub notes: Vec<String>,
    /// Where it ran.
    pub host: HostInfo,
}

impl LoadReport {
    /// True when nothing failed and nothing went missing: the exit status.
    pub fn clean(&self) -> bool {
        !self.interrupted
            && self.subscribed == self.subscribers
            && self.dropped == 0
            && self.worker_errors.is_empty()
            && self.windows.iter().all(|w| {
                w.missing == 0 && w.publish_failures.is_empty() && w.churn_failures.is_empty()
            })
    }
}

/// `median (lowest..highest)` of a window figure, with two decimals.
pub(super) fn median_spread(v: Vec<f64>) -> String {
    median_spread_to(v, 2)
}

/// `median (lowest..highest)` of a window figure, with the decimals the
/// figure needs (an rpc round trip is a fraction of a millisecond).
pub(crate) fn median_spread_to(mut v: Vec<f64>, decimals: usize) -> String {
    if v.is_empty() {
        return "n/a".into();
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v[v.len() / 2];
    if v.len() == 1 {
        format!("{m:.decimals$}")
    } else {
        format!(
            "{m:.decimals$} ({:.decimals$}..{:.decimals$})",
            v[0],
            v[v.len() - 1]
        )
    }
}

pub(super) fn print_table(r: &LoadReport) {
    println!(
        "hubbub bench {}: {} subscribers on {} channel(s), {} publishes/s of {} B via {}, {} publisher(s){}",
        r.scenario.name(),
        r.subscribers,
        r.channels,
        if r.rate > 0.0 { format!("{}", r.rate) } else { "max".into() },
        r.payload_bytes,
        match r.via {
            Via::Http => "http",
            Via::Ws => "ws",
        },
        r.publishers,
        if r.churn_rate > 0.0 {
            format!(", churn {}/s", r.churn_rate)
        } else {
            String::new()
        }
    );
    if r.interrupted {
        println!("  INTERRUPTED: partial results");
    }
    print_subscribed(
        (r.subscribed, r.subscribers),
        &r.subscribe_failures,
        r.dropped,
        r.workers,
        &r.server_processes,
    );
    print_nodes(&r.nodes);
    println!(
        "  {:<4} {:<6} {:>9} {:>9} {:>11} {:>11} {:>8} {:>11} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>7}",
        "rep", "churn", "pub/s", "pub fail", "expected", "received", "missing", "deliv/s",
        "p50ms", "p90ms", "p99ms", "p999ms", "maxms", "cpu us/d", "req p99"
    );
    for w in &r.windows {
        println!(
            "  {:<4} {:<6} {:>9.0} {:>9} {:>11} {:>11} {:>8} {:>11.0} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>8} {:>7.2}",
            w.repetition,
            if w.churn { format!("{}", w.churn_cycles) } else { "-".into() },
            w.publishes_per_second,
            w.publish_failures.values().sum::<u64>(),
            w.expected_deliveries,
            w.received_deliveries,
            w.missing,
            w.deliveries_per_second,
            w.latency.p50_ms,
            w.latency.p90_ms,
            w.latency.p99_ms,
            w.latency.p999_ms,
            w.latency.max_ms,
            w.server_cpu_us_per_delivery
                .map_or("n/a".into(), |c| format!("{c:.2}")),
            w.publish_request.p99_ms,
        );
    }
    print_cpu_by_pid(&r.server_processes, &r.windows);
    for churn in [false, true] {
        let ws: Vec<&WindowReport> = r.windows.iter().filter(|w| w.churn == churn).collect();
        if ws.is_empty() || (ws.len() < 2 && r.scenario != Kind::Churn) {
            continue;
        }
        let f = |g: &dyn Fn(&WindowReport) -> f64| median_spread(ws.iter().map(|w| g(w)).collect());
        println!(
            "  median{}: pub/s {}, deliv/s {}, p50 {} ms, p99 {} ms, p99.9 {} ms, cpu us/delivery {}",
            if churn { " with churn" } else { "" },
            f(&|w| w.publishes_per_second),
            f(&|w| w.deliveries_per_second),
            f(&|w| w.latency.p50_ms),
            f(&|w| w.latency.p99_ms),
            f(&|w| w.latency.p999_ms),
            f(&|w| w.server_cpu_us_per_delivery.unwrap_or(f64::NAN)),
        );
    }
    for w in &r.windows {
        for (k, v) in w.publish_failures.iter().chain(&w.churn_failures) {
            println!("  failed (rep {}): {v} x {k}", w.repetition);
        }
    }
    for (k, v) in &r.subscribe_failures {
        println!("  subscribe failed: {v} x {k}");
    }
    for e in &r.worker_errors {
        println!("  {e}");
    }
    for n in &r.notes {
        println!("  note: {n}");
    }
}

/// The line under a scenario's title saying how the subscribers fared: the
/// same for every publish scenario and the sweep, so their outputs read
/// alike. Names the server process, or every one when there are several.
pub(super) fn print_subscribed(
    (subscribed, subscribers): (u64, u64),
    failures: &BTreeMap<String, u64>,
    dropped: u64,
    workers: usize,
    servers: &[ServerProcess],
) {
    let pids: Vec<String> = servers.iter().map(|p| p.pid.to_string()).collect();
    println!(
        "  subscribed {subscribed}/{subscribers} ({} failed, {dropped} dropped), {workers} worker(s), {}",
        failures.values().sum::<u64>(),
        match pids.len() {
            0 => "server pid n/a".to_owned(),
            1 => format!("server pid {}", pids[0]),
            _ => format!("server pids {}", pids.join(", ")),
        }
    );
}

/// With several nodes, one line per node: what it was given. Nothing for
/// one node, whose line would repeat the title.
pub(super) fn print_nodes(nodes: &[NodeShare]) {
    if nodes.len() < 2 {
        return;
    }
    for (k, n) in nodes.iter().enumerate() {
        println!(
            "  node {k}: {} (api {}): {} subscribers in {} worker(s), {} publisher(s)",
            n.url, n.api, n.subscribers, n.workers, n.publishers
        );
    }
}

/// With several server processes, each one's CPU seconds per window next
/// to their total (the table's `cpu us/d` is from the total).
pub(super) fn print_cpu_by_pid(servers: &[ServerProcess], windows: &[WindowReport]) {
    if servers.len() < 2 {
        return;
    }
    for w in windows {
        let each: Vec<String> = w
            .server_cpu_by_pid
            .iter()
            .map(|c| {
                let what = servers
                    .iter()
                    .find(|p| p.pid == c.pid)
                    .filter(|p| !p.urls.is_empty())
                    .map_or(String::new(), |p| format!(" ({})", p.urls.join(", ")));
                format!(
                    "pid {}{what} {}",
                    c.pid,
                    c.cpu_seconds.map_or("n/a".into(), |s| format!("{s:.3}"))
                )
            })
            .collect();
        println!(
            "  cpu s rep {}{}: {} = total {}",
            w.repetition,
            if w.churn { " churn" } else { "" },
            each.join(", "),
            w.server_cpu_seconds
                .map_or("n/a".into(), |s| format!("{s:.3}"))
        );
    }
}

/// The exit status of a finished scenario: 130 when Ctrl-C ended it (after
/// its partial results were printed), 1 when subscribers or workers
/// failed, 0 otherwise.
pub(crate) fn exit_status(interrupted: bool, clean: bool) -> std::process::ExitCode {
    if interrupted {
        std::process::ExitCode::from(130)
    } else if clean {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}

/// Writes any report as pretty JSON (`--out`).
pub(crate) fn write_report<T: Serialize>(path: &std::path::Path, r: &T) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(r)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
