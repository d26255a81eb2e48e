//! What a rate sweep found: one [`RateReport`] per rate tried, the verdict
//! on each against `--p99-max-ms`, the table and the closing line.

use std::collections::BTreeMap;

use serde::Serialize;

use super::report::{median_spread, print_nodes, print_subscribed, WindowReport};
use super::setup::NodeShare;
use super::{Protocol, Via};
use crate::nodes::ServerProcess;
use crate::workers::HostInfo;

/// A rate counts as kept up only if its publishers reached at least this
/// share of it: a hub that slows the HTTP answers down would otherwise be
/// credited with a rate it never took.
const MIN_RATE_SHARE: f64 = 0.9;

/// Medians over a rate's measured windows.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RateMedians {
    /// Publications accepted per second.
    pub publishes_per_second: f64,
    /// Deliveries received per second.
    pub deliveries_per_second: f64,
    /// Publish-to-receive p50, ms.
    pub p50_ms: f64,
    /// p99, ms: what `--p99-max-ms` is checked against.
    pub p99_ms: f64,
    /// p99.9, ms.
    pub p999_ms: f64,
    /// The hub's CPU per delivery, µs, when its pid was found (several
    /// server processes: from their sum).
    pub server_cpu_us_per_delivery: Option<f64>,
}

/// One rate of a sweep: its windows, their medians and the verdict.
#[derive(Debug, Clone, Serialize)]
pub struct RateReport {
    /// Target publishes per second.
    pub rate: f64,
    /// Target deliveries per second (rate x subscribers per channel).
    pub target_deliveries_per_second: f64,
    /// False when Ctrl-C cut this rate short.
    pub complete: bool,
    /// Measured windows, in order.
    pub windows: Vec<WindowReport>,
    /// Medians over the windows.
    pub median: RateMedians,
    /// Deliveries expected over the windows.
    pub expected_deliveries: u64,
    /// Deliveries seen (after the drain).
    pub received_deliveries: u64,
    /// `expected - received`.
    pub missing: i64,
    /// Failed publications over the windows.
    pub publish_failures: u64,
    /// Subscribers the hub (or network) dropped since the start of the sweep.
    pub dropped_so_far: u64,
    /// Median p99 within the limit, nothing missing or failed, nobody
    /// dropped, the rate reached.
    pub kept_up: bool,
    /// "kept up", or why not.
    pub verdict: String,
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

impl RateReport {
    /// Sums and medians of `windows` at `rate`, judged against `p99_max_ms`.
    pub(super) fn new(
        rate: f64,
        per_publish: f64,
        windows: Vec<WindowReport>,
        dropped_so_far: u64,
        complete: bool,
        p99_max_ms: f64,
    ) -> RateReport {
        let col = |f: fn(&WindowReport) -> f64| median(windows.iter().map(f).collect());
        let median = RateMedians {
            publishes_per_second: col(|w| w.publishes_per_second).unwrap_or(0.0),
            deliveries_per_second: col(|w| w.deliveries_per_second).unwrap_or(0.0),
            p50_ms: col(|w| w.latency.p50_ms).unwrap_or(0.0),
            p99_ms: col(|w| w.latency.p99_ms).unwrap_or(0.0),
            p999_ms: col(|w| w.latency.p999_ms).unwrap_or(0.0),
            server_cpu_us_per_delivery: col(|w| w.server_cpu_us_per_delivery.unwrap_or(f64::NAN)),
        };
        let expected: u64 = windows.iter().map(|w| w.expected_deliveries).sum();
        let received: u64 = windows.iter().map(|w| w.received_deliveries).sum();
        let missing: i64 = windows.iter().map(|w| w.missing.abs()).sum();
        let publish_failures = windows
            .iter()
            .flat_map(|w| w.publish_failures.values())
            .sum();
        let verdict = if !complete || windows.is_empty() {
            "interrupted".to_owned()
        } else if missing != 0 {
            format!("{missing} deliveries missing")
        } else if publish_failures > 0 {
            format!("{publish_failures} publishes failed")
        } else if dropped_so_far > 0 {
            format!("{dropped_so_far} subscribers dropped")
        } else if median.p99_ms > p99_max_ms {
            format!("p99 {:.2} ms > {p99_max_ms} ms", median.p99_ms)
        } else if median.publishes_per_second < rate * MIN_RATE_SHARE {
            format!(
                "publishers reached {:.0}/s of {rate}/s",
                median.publishes_per_second
            )
        } else {
            "kept up".to_owned()
        };
        RateReport {
            rate,
            target_deliveries_per_second: (rate * per_publish).round(),
            complete,
            kept_up: verdict == "kept up",
            verdict,
            median,
            expected_deliveries: expected,
            received_deliveries: received,
            missing: expected as i64 - received as i64,
            publish_failures,
            dropped_so_far,
            windows,
        }
    }
}

/// The highest rate a sweep kept up, as in its closing line.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KeptUp {
    /// Publishes per second asked for.
    pub rate: f64,
    /// Median deliveries per second measured.
    pub deliveries_per_second: f64,
    /// Median p99, ms.
    pub p99_ms: f64,
}

/// The outcome of `hubbub bench sweep`, as printed and written to `--out`.
#[derive(Debug, Clone, Serialize)]
pub struct SweepReport {
    /// Always `sweep`.
    pub scenario: &'static str,
    /// WebSocket URL (several nodes: every URL, comma-separated).
    pub url: String,
    /// HTTP API address used for publishing (several: comma-separated).
    pub api: String,
    /// Every node's WebSocket URL, in `--url` order.
    pub urls: Vec<String>,
    /// Per node (same order): what it was given.
    pub nodes: Vec<NodeShare>,
    /// How publications were sent.
    pub via: Via,
    /// What the subscribers spoke.
    pub protocol: Protocol,
    /// Subscribers asked for (kept for the whole sweep).
    pub subscribers: u64,
    /// Subscribers established.
    pub subscribed: u64,
    /// Subscribers that failed to connect, by reason.
    pub subscribe_failures: BTreeMap<String, u64>,
    /// Subscribers dropped during the sweep (from the workers' final reports).
    pub dropped: u64,
    /// Channels.
    pub channels: u64,
    /// Payload (`data`) size in bytes.
    pub payload_bytes: usize,
    /// Concurrent publishers.
    pub publishers: usize,
    /// Worker processes.
    pub workers: usize,
    /// Seconds of warm-up before each rate.
    pub warmup_seconds: f64,
    /// Seconds of each measured window.
    pub duration_seconds: f64,
    /// Measured windows per rate.
    pub repetitions: u32,
    /// The p99 limit, ms.
    pub p99_max_ms: f64,
    /// Whether the sweep went on past a rate not kept up.
    pub keep_going: bool,
    /// The rates asked for, in the order tried.
    pub rates_asked: Vec<f64>,
    /// The rates tried.
    pub rates: Vec<RateReport>,
    /// The highest rate kept up, if any.
    pub highest_kept_up: Option<KeptUp>,
    /// Why the sweep stopped before the last rate, if it did.
    pub stopped_early: Option<String>,
    /// Whether Ctrl-C cut the sweep short.
    pub interrupted: bool,
    /// The hub's pid, when found (several: the first of
    /// `server_processes`).
    pub server_pid: Option<u32>,
    /// Every process whose CPU time was measured, with the URLs each
    /// serves; each window has each one's CPU seconds.
    pub server_processes: Vec<ServerProcess>,
    /// Event frames without the bench's fields.
    pub unparsed_events: u64,
    /// Worker problems.
    pub worker_errors: Vec<String>,
    /// Why a figure is missing (a node whose pid was not found).
    pub notes: Vec<String>,
    /// Where it ran.
    pub host: HostInfo,
}

impl SweepReport {
    /// The highest complete rate that was kept up.
    pub(super) fn highest(rates: &[RateReport]) -> Option<KeptUp> {
        rates
            .iter()
            .filter(|r| r.kept_up)
            .max_by(|a, b| a.rate.total_cmp(&b.rate))
            .map(|r| KeptUp {
                rate: r.rate,
                deliveries_per_second: r.median.deliveries_per_second,
                p99_ms: r.median.p99_ms,
            })
    }

    /// True when the sweep itself worked (every subscriber connected, no
    /// worker trouble, not interrupted), whatever the rates' verdicts.
    pub fn clean(&self) -> bool {
        !self.interrupted && self.subscribed == self.subscribers && self.worker_errors.is_empty()
    }

    /// The closing line: `highest rate kept up: R publishes/s = D deliveries/s (p99 X ms)`.
    pub fn summary_line(&self) -> String {
        match &self.highest_kept_up {
            Some(k) => format!(
                "highest rate kept up: {} publishes/s = {:.0} deliveries/s (p99 {:.2} ms)",
                k.rate, k.deliveries_per_second, k.p99_ms
            ),
            None => format!(
                "highest rate kept up: none{}",
                self.rates
                    .first()
                    .map(|r| format!(" ({} publishes/s: {})", r.rate, r.verdict))
                    .unwrap_or_default()
            ),
        }
    }
}

/// The table on stdout: one line per rate, then the closing line.
pub(super) fn print_sweep(r: &SweepReport) {
    println!(
        "hubbub bench sweep: {} subscribers on {} channel(s), {} B via {}, protocol {}, {} publisher(s); \
         {} x {} s per rate after {} s warm-up; p99 limit {} ms",
        r.subscribers,
        r.channels,
        r.payload_bytes,
        match r.via {
            Via::Http => "http",
            Via::Ws => "ws",
        },
        r.protocol.name(),
        r.publishers,
        r.repetitions,
        r.duration_seconds,
        r.warmup_seconds,
        r.p99_max_ms,
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
        "  {:>8} {:>9} {:>11} {:>11} {:>11} {:>8} {:>7} {:>22} {:>7} {:>8}  verdict",
        "rate/s",
        "pub/s",
        "deliv/s",
        "expected",
        "received",
        "missing",
        "p50ms",
        "p99ms (min..max)",
        "p999ms",
        "cpu us/d"
    );
    for x in &r.rates {
        let p99 = median_spread(x.windows.iter().map(|w| w.latency.p99_ms).collect());
        println!(
            "  {:>8} {:>9.0} {:>11.0} {:>11} {:>11} {:>8} {:>7.2} {:>22} {:>7.2} {:>8}  {}",
            x.rate,
            x.median.publishes_per_second,
            x.median.deliveries_per_second,
            x.expected_deliveries,
            x.received_deliveries,
            x.missing,
            x.median.p50_ms,
            p99,
            x.median.p999_ms,
            x.median
                .server_cpu_us_per_delivery
                .map_or("n/a".into(), |c| format!("{c:.2}")),
            x.verdict,
        );
    }
    for x in &r.rates {
        for w in &x.windows {
            for (k, v) in &w.publish_failures {
                println!("  failed ({}/s, rep {}): {v} x {k}", x.rate, w.repetition);
            }
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
    if let Some(s) = &r.stopped_early {
        println!("  stopped early: {s} (--keep-going tries every rate)");
    }
    println!("{}", r.summary_line());
}

#[cfg(test)]
mod tests {
    use super::super::payload::Latency;
    use super::*;

    fn window(pub_s: f64, p99: f64, missing: i64) -> WindowReport {
        WindowReport {
            repetition: 0,
            churn: false,
            seconds: 1.0,
            publishes_sent: pub_s as u64,
            publishes_accepted: pub_s as u64,
            publishes_per_second: pub_s,
            publish_failures: BTreeMap::new(),
            publish_request: Latency::default(),
            expected_deliveries: 1000,
            received_deliveries: (1000 - missing) as u64,
            missing,
            deliveries_per_second: 1000.0,
            latency: Latency {
                p99_ms: p99,
                ..Latency::default()
            },
            server_cpu_seconds: None,
            server_cpu_by_pid: Vec::new(),
            server_cpu_us_per_delivery: Some(2.0),
            churn_cycles: 0,
            churn_failures: BTreeMap::new(),
        }
    }

    #[test]
    fn verdicts() {
        let ok = RateReport::new(100.0, 10.0, vec![window(100.0, 5.0, 0); 3], 0, true, 10.0);
        assert!(ok.kept_up, "{ok:?}");
        assert_eq!(ok.target_deliveries_per_second, 1000.0);
        assert_eq!(ok.median.server_cpu_us_per_delivery, Some(2.0));
        // The median decides: one bad window of three does not.
        let ws = vec![
            window(100.0, 5.0, 0),
            window(100.0, 50.0, 0),
            window(100.0, 6.0, 0),
        ];
        assert!(RateReport::new(100.0, 10.0, ws, 0, true, 10.0).kept_up);
        let slow = RateReport::new(100.0, 10.0, vec![window(100.0, 12.0, 0)], 0, true, 10.0);
        assert_eq!(slow.verdict, "p99 12.00 ms > 10 ms");
        let lost = RateReport::new(100.0, 10.0, vec![window(100.0, 1.0, 3)], 0, true, 10.0);
        assert_eq!(lost.verdict, "3 deliveries missing");
        let behind = RateReport::new(100.0, 10.0, vec![window(50.0, 1.0, 0)], 0, true, 10.0);
        assert!(!behind.kept_up);
        let cut = RateReport::new(100.0, 10.0, vec![window(100.0, 1.0, 0)], 0, false, 10.0);
        assert_eq!(cut.verdict, "interrupted");
        let rates = vec![ok.clone(), slow, {
            let mut r = ok;
            r.rate = 300.0;
            r
        }];
        assert_eq!(SweepReport::highest(&rates).unwrap().rate, 300.0);
    }
}
