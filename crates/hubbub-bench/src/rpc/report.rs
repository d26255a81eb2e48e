//! The report of an `rpc` run: what was measured, the table printed at
//! its end and the JSON written to `--out`, in the style of the publish
//! scenarios' (one row per window, then the medians).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::load::report::median_spread_to;
use crate::load::Latency;
use crate::nodes::{PidCpu, ServerProcess};
use crate::workers::HostInfo;

/// One measured window.
#[derive(Debug, Clone, Serialize)]
pub struct RpcWindow {
    /// Repetition (0-based).
    pub repetition: u32,
    /// Seconds it lasted.
    pub seconds: f64,
    /// Calls sent during it.
    pub calls_sent: u64,
    /// `rpc_result`s received during it.
    pub calls_answered: u64,
    /// `rpc_result`s per second.
    pub calls_per_second: f64,
    /// `error`s answering calls during it, by code.
    pub errors: BTreeMap<String, u64>,
    /// Round trip of each `rpc_result`, from when its call's frame was
    /// written. Milliseconds to the µs.
    pub latency: Latency,
    /// Open loop only: the same from when each call was due in the
    /// schedule, so that a call the bench sent late still counts its
    /// whole wait (`latency` plus `send_lag`). The figure without
    /// coordinated omission when `send_lag` is more than timer noise.
    pub latency_from_due: Option<Latency>,
    /// Open loop only: how late the calls sent in the window were
    /// written after their place in the schedule. A p99 within tokio's
    /// timer resolution (1-2 ms) says the schedule was kept, and with it
    /// the load asked for; more says the bench, or a hub that stopped
    /// reading, held calls back.
    pub send_lag: Option<Latency>,
    /// The hub's CPU seconds during the window (user + system), summed
    /// over the server processes; absent unless every one was read.
    pub server_cpu_seconds: Option<f64>,
    /// Each server process's share, in the order of
    /// [`RpcReport::server_processes`].
    pub server_cpu_by_pid: Vec<PidCpu>,
    /// Server CPU per answered call (results and errors), µs.
    pub server_cpu_us_per_call: Option<f64>,
    /// The bench process's own CPU seconds (the callers, and the backend
    /// when it serves one).
    pub bench_cpu_seconds: Option<f64>,
    /// Bench CPU per answered call, µs.
    pub bench_cpu_us_per_call: Option<f64>,
    /// How busy the whole machine was: busy CPU time over all CPUs'
    /// time, 0 to 1 (hub, bench, and anything else running).
    pub host_cpu_busy: Option<f64>,
    /// CPU seconds the machine spent on anything but the server processes
    /// and the bench: the host's busy time less theirs. Approximate (the
    /// host's and the processes' counters are kept differently; a few
    /// tenths of a core either way, below zero included, is noise); well
    /// above zero, something else competed for the CPUs and the window is
    /// suspect.
    pub other_cpu_seconds: Option<f64>,
    /// Requests the bench's backend answered during the window.
    pub backend_requests: Option<u64>,
}

/// Medians over the windows: the figures to quote.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RpcMedians {
    /// `rpc_result`s per second.
    pub calls_per_second: f64,
    /// Round trip median, ms.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// 99.9th percentile, ms.
    pub p999_ms: f64,
    /// Largest, ms.
    pub max_ms: f64,
    /// Server CPU per call, µs.
    pub server_cpu_us_per_call: Option<f64>,
    /// Bench CPU per call, µs.
    pub bench_cpu_us_per_call: Option<f64>,
    /// Share of the machine's CPU in use.
    pub host_cpu_busy: Option<f64>,
}

/// The bench's own backend (`--backend-listen`).
#[derive(Debug, Clone, Serialize)]
pub struct BackendReport {
    /// Where it listened.
    pub listen: String,
    /// Requests answered with data over the whole run.
    pub requests: u64,
    /// Requests refused (unreadable) over the whole run.
    pub refused: u64,
}

/// The outcome of one run, as printed and written to `--out`.
#[derive(Debug, Clone, Serialize)]
pub struct RpcReport {
    /// Always `rpc`.
    pub scenario: &'static str,
    /// Every node's WebSocket URL.
    pub urls: Vec<String>,
    /// The method called.
    pub method: String,
    /// Size of each call's `data` JSON, bytes.
    pub data_bytes: usize,
    /// Connections asked for.
    pub connections: usize,
    /// Connections established.
    pub connected: usize,
    /// Connections that failed to open, by reason.
    pub connect_failures: BTreeMap<String, u64>,
    /// Connections the hub or the network ended during the run, by reason.
    pub dropped: BTreeMap<String, u64>,
    /// `closed-loop` or `open-loop`.
    pub mode: &'static str,
    /// Closed loop: calls each connection kept outstanding.
    pub in_flight: Option<usize>,
    /// Open loop: calls per second asked for, in total.
    pub rate: Option<f64>,
    /// Threads of the bench's runtime.
    pub threads: usize,
    /// Seconds of warm-up.
    pub warmup_seconds: f64,
    /// Measured windows.
    pub windows: Vec<RpcWindow>,
    /// Medians over the windows (none measured: zeros).
    pub medians: RpcMedians,
    /// Calls sent over the whole run (warm-up and drain included).
    pub total_sent: u64,
    /// `rpc_result`s over the whole run.
    pub total_answered: u64,
    /// `error`s over the whole run, by code.
    pub total_errors: BTreeMap<String, u64>,
    /// Calls never answered (still pending at the end of the drain, or on
    /// a connection that was dropped).
    pub unanswered: u64,
    /// Answers with a correlation id that matched no pending call.
    pub unmatched: u64,
    /// Frames that were not JSON with a `type`.
    pub unparsed: u64,
    /// The backend the bench served, if any.
    pub backend: Option<BackendReport>,
    /// The hub's pid, when found (several: the first).
    pub server_pid: Option<u32>,
    /// Every process whose CPU time was measured.
    pub server_processes: Vec<ServerProcess>,
    /// Whether Ctrl-C cut the run short.
    pub interrupted: bool,
    /// Why a figure is missing, and other things to know.
    pub notes: Vec<String>,
    /// Where it ran.
    pub host: HostInfo,
}

impl RpcReport {
    /// True when every connection opened and stayed, and every call was
    /// answered with a result: the exit status.
    pub fn clean(&self) -> bool {
        !self.interrupted
            && self.connected == self.connections
            && self.dropped.is_empty()
            && self.total_errors.is_empty()
            && self.unanswered == 0
            && self.unmatched == 0
            && self.total_sent == self.total_answered
    }
}

/// The median of some values (the upper one of an even count, as the
/// other scenarios' tables take it); `None` when any is missing.
fn median(v: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let mut v: Vec<f64> = v.collect::<Option<_>>()?;
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    Some(v[v.len() / 2])
}

/// The medians of `windows`.
pub(super) fn medians(windows: &[RpcWindow]) -> RpcMedians {
    let m =
        |f: &dyn Fn(&RpcWindow) -> f64| median(windows.iter().map(|w| Some(f(w)))).unwrap_or(0.0);
    let o = |f: &dyn Fn(&RpcWindow) -> Option<f64>| median(windows.iter().map(f));
    RpcMedians {
        calls_per_second: m(&|w| w.calls_per_second),
        p50_ms: m(&|w| w.latency.p50_ms),
        p90_ms: m(&|w| w.latency.p90_ms),
        p99_ms: m(&|w| w.latency.p99_ms),
        p999_ms: m(&|w| w.latency.p999_ms),
        max_ms: m(&|w| w.latency.max_ms),
        server_cpu_us_per_call: o(&|w| w.server_cpu_us_per_call),
        bench_cpu_us_per_call: o(&|w| w.bench_cpu_us_per_call),
        host_cpu_busy: o(&|w| w.host_cpu_busy),
    }
}

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or("n/a".into(), |x| format!("{x:.decimals$}"))
}

/// The table on stdout.
pub(super) fn print_table(r: &RpcReport) {
    let load = match (r.rate, r.in_flight) {
        (Some(rate), _) => format!("{rate} calls/s (open loop)"),
        (None, Some(k)) => format!("{k} in flight each (closed loop)"),
        (None, None) => String::new(),
    };
    println!(
        "hubbub bench rpc: {} with {} B of data, {} connection(s), {load}, {} node(s)",
        r.method,
        r.data_bytes,
        r.connections,
        r.urls.len()
    );
    if r.interrupted {
        println!("  INTERRUPTED: partial results");
    }
    let pids: Vec<String> = r
        .server_processes
        .iter()
        .map(|p| p.pid.to_string())
        .collect();
    println!(
        "  connected {}/{} ({} failed, {} dropped), bench {} thread(s), {}{}",
        r.connected,
        r.connections,
        r.connect_failures.values().sum::<u64>(),
        r.dropped.values().sum::<u64>(),
        r.threads,
        match pids.len() {
            0 => "server pid n/a".to_owned(),
            1 => format!("server pid {}", pids[0]),
            _ => format!("server pids {}", pids.join(", ")),
        },
        r.backend.as_ref().map_or(String::new(), |b| format!(
            ", backend {} ({} requests, {} refused)",
            b.listen, b.requests, b.refused
        )),
    );
    println!(
        "  {:<4} {:>9} {:>10} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10} {:>6} {:>7} {:>9}",
        "rep",
        "calls/s",
        "answered",
        "errors",
        "p50ms",
        "p90ms",
        "p99ms",
        "p999ms",
        "maxms",
        "hub us/c",
        "bench us/c",
        "host%",
        "other s",
        "backend"
    );
    for w in &r.windows {
        println!(
            "  {:<4} {:>9.0} {:>10} {:>7} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>10} {:>10} {:>6} {:>7} {:>9}",
            w.repetition,
            w.calls_per_second,
            w.calls_answered,
            w.errors.values().sum::<u64>(),
            w.latency.p50_ms,
            w.latency.p90_ms,
            w.latency.p99_ms,
            w.latency.p999_ms,
            w.latency.max_ms,
            opt(w.server_cpu_us_per_call, 1),
            opt(w.bench_cpu_us_per_call, 1),
            opt(w.host_cpu_busy.map(|b| b * 100.0), 0),
            opt(w.other_cpu_seconds, 2),
            w.backend_requests.map_or("-".into(), |n| n.to_string()),
        );
    }
    for w in &r.windows {
        if let (Some(d), Some(l)) = (&w.latency_from_due, &w.send_lag) {
            println!(
                "  rep {} from due: p50 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms; send lag p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
                w.repetition, d.p50_ms, d.p99_ms, d.p999_ms, d.max_ms, l.p50_ms, l.p99_ms, l.max_ms
            );
        }
    }
    if r.server_processes.len() > 1 {
        for w in &r.windows {
            let each: Vec<String> = w
                .server_cpu_by_pid
                .iter()
                .map(|c| format!("pid {} {}", c.pid, opt(c.cpu_seconds, 3)))
                .collect();
            println!(
                "  cpu s rep {}: {} = total {}",
                w.repetition,
                each.join(", "),
                opt(w.server_cpu_seconds, 3)
            );
        }
    }
    if r.windows.len() > 1 {
        let f = |g: &dyn Fn(&RpcWindow) -> f64, decimals: usize| {
            median_spread_to(r.windows.iter().map(g).collect(), decimals)
        };
        println!(
            "  median: calls/s {}, p50 {} ms, p99 {} ms, p99.9 {} ms, hub cpu us/call {}",
            f(&|w| w.calls_per_second, 0),
            f(&|w| w.latency.p50_ms, 3),
            f(&|w| w.latency.p99_ms, 3),
            f(&|w| w.latency.p999_ms, 3),
            f(&|w| w.server_cpu_us_per_call.unwrap_or(f64::NAN), 1),
        );
    }
    println!(
        "  whole run: {} sent, {} answered, {} errors, {} unanswered, {} unmatched",
        r.total_sent,
        r.total_answered,
        r.total_errors.values().sum::<u64>(),
        r.unanswered,
        r.unmatched
    );
    for (k, v) in &r.total_errors {
        println!("  error: {v} x {k}");
    }
    for (k, v) in &r.connect_failures {
        println!("  connect failed: {v} x {k}");
    }
    for (k, v) in &r.dropped {
        println!("  dropped: {v} x {k}");
    }
    for n in &r.notes {
        println!("  note: {n}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hist::Histogram;
    use std::time::Duration;

    #[test]
    fn latency_to_the_microsecond() {
        let mut h = Histogram::default();
        for us in [100u64, 110, 120, 130, 2_000] {
            h.record(Duration::from_micros(us));
        }
        let l = Latency::of_rounds(&h);
        assert_eq!(l.count, 5);
        assert!((l.p50_ms - 0.12).abs() < 0.004, "{l:?}");
        assert_eq!(l.max_ms, 2.0);
        assert_eq!(l.p999_ms, 2.0);
        assert_eq!(
            Latency::of_rounds(&Histogram::default()),
            Latency::default()
        );
    }

    #[test]
    fn medians_skip_nothing_and_need_every_value() {
        assert_eq!(
            median([Some(3.0), Some(1.0), Some(2.0)].into_iter()),
            Some(2.0)
        );
        assert_eq!(median([Some(3.0), None].into_iter()), None);
        assert_eq!(median(std::iter::empty()), None);
    }
}
