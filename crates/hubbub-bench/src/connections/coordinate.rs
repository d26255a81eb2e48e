//! The parent's side of a run, the same for processes and tasks: ramp-up
//! with progress, hold, second sample, stop, report.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::parent::{apply, Event, Link, Progress, WorkerView};
use super::report::{ConnectionsReport, ServerSample};
use super::sample::{active_connections, Before};
use super::worker::unix_us;
use super::{ConnectionsArgs, Setup, STOP_WAIT};
use crate::hist::Histogram;
use crate::procfs;
use crate::target::get_json;

/// The parent's side of a run, the same for processes and tasks: ramp-up
/// with progress, hold, second sample, stop, report.
#[allow(clippy::too_many_arguments)]
pub(super) async fn coordinate<T>(
    args: &ConnectionsArgs,
    setup: &Setup,
    before: Before,
    mut links: Vec<Link>,
    mut rx: mpsc::UnboundedReceiver<Event>,
    mut interrupt: Pin<Box<dyn Future<Output = ()> + Send>>,
    at_hold: impl FnOnce() -> T,
    show_progress: bool,
) -> (ConnectionsReport, T) {
    let mut views: Vec<WorkerView> = (0..links.len()).map(|_| WorkerView::default()).collect();
    let mut interrupted = false;
    let mut progress = Progress::new(args.connections, show_progress);
    let mut tick = tokio::time::interval(Duration::from_millis(250));

    // Ramp-up.
    while !views.iter().all(WorkerView::ramp_over) {
        tokio::select! {
            ev = rx.recv() => match ev {
                Some(ev) => apply(&mut views, ev),
                None => break,
            },
            _ = tick.tick() => progress.show(&views),
            _ = &mut interrupt => { interrupted = true; break; }
        }
    }
    let interrupted_at_us = interrupted.then(unix_us);
    progress.finish(&views);

    // Hold.
    let hold_started = Instant::now();
    if !interrupted {
        let until = hold_started + Duration::from_secs_f64(args.hold);
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(ev) => apply(&mut views, ev),
                    None => { tokio::time::sleep_until(until).await; break; }
                },
                _ = tokio::time::sleep_until(until) => break,
                _ = &mut interrupt => { interrupted = true; break; }
            }
        }
    }
    // Pick up counters the workers sent while we slept.
    while let Ok(ev) = rx.try_recv() {
        apply(&mut views, ev);
    }
    let held = hold_started.elapsed().as_secs_f64();

    // Second sample, with the hub's own view.
    let mut server = ServerSample {
        pid: before.pid,
        rss_before_bytes: before.memory.map(|m| m.rss),
        rss_anon_before_bytes: before.memory.and_then(|m| m.anon),
        hub_active_connections_before: before.active,
        notes: before.notes,
        ..ServerSample::default()
    };
    let open_at_sample: u64 = views.iter().map(|v| v.counts.open).sum();
    if let Some(pid) = before.pid {
        match procfs::memory(pid) {
            Ok(m) => {
                server.rss_after_bytes = Some(m.rss);
                server.rss_anon_after_bytes = m.anon;
            }
            Err(e) => server
                .notes
                .push(format!("reading /proc/{pid}/status after: {e}")),
        }
    }
    let per_conn = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) if open_at_sample > 0 => {
            Some(((a as f64 - b as f64) / open_at_sample as f64 * 10.0).round() / 10.0)
        }
        _ => None,
    };
    server.rss_per_connection_bytes = per_conn(server.rss_after_bytes, server.rss_before_bytes);
    server.rss_anon_per_connection_bytes =
        per_conn(server.rss_anon_after_bytes, server.rss_anon_before_bytes);
    server.hub_active_connections = active_connections(args, setup, &mut server.notes).await;
    let channel_path = format!("/api/channels/{}", args.channel);
    server.hub_channel_subscribers =
        match get_json(&setup.target, &channel_path, args.api_key.as_deref()).await {
            Ok(Some(v)) => v["subscribers"].as_u64(),
            Ok(None) => {
                server.notes.push(format!(
                    "GET {channel_path}: 404 (not served yet, or the channel is unknown)"
                ));
                None
            }
            Err(e) => {
                server.notes.push(format!("{e:#}"));
                None
            }
        };
    let value = at_hold();

    // Stop: every worker closes its connections, sends its last summary and exits.
    if show_progress {
        eprintln!("closing {open_at_sample} connections...");
    }
    for link in &mut links {
        link.stop().await;
    }
    let deadline = Instant::now() + STOP_WAIT;
    while !views.iter().all(|v| v.exited) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) => apply(&mut views, ev),
            Ok(None) | Err(_) => break,
        }
    }
    let mut worker_errors = Vec::new();
    for (i, link) in links.iter_mut().enumerate() {
        let within = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(1);
        if let Some(e) = link.reap(within).await {
            worker_errors.push(format!("worker {i}: {e}"));
        }
    }
    for (i, v) in views.iter().enumerate() {
        if let Some(f) = &v.fatal {
            worker_errors.push(format!("worker {i}: {f}"));
        } else if v.best().is_none() {
            worker_errors.push(format!("worker {i}: sent no summary"));
        }
    }

    // Merge.
    let mut handshake = Histogram::default();
    let mut upgrade = Histogram::default();
    let mut failure_reasons = BTreeMap::new();
    let (mut established, mut failures, mut dropped, mut closed) = (0, 0, 0, 0);
    let mut ramp_start: Option<u64> = None;
    let mut ramp_end: Option<u64> = Some(0);
    for v in &views {
        let counts = v.best().map_or(v.counts, |s| s.counts);
        established += counts.opened;
        failures += counts.failed;
        dropped += counts.dropped;
        match v.best() {
            Some(s) => {
                handshake.merge(&s.handshake);
                upgrade.merge(&s.upgrade);
                for (k, n) in &s.failures {
                    *failure_reasons.entry(k.clone()).or_insert(0) += n;
                }
                closed += s.closed;
                ramp_start = Some(ramp_start.map_or(s.ramp_start_us, |r| r.min(s.ramp_start_us)));
                ramp_end = match (ramp_end, s.ramp_end_us) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    _ => None,
                };
            }
            None => ramp_end = None,
        }
    }
    let ramp_seconds = match (ramp_start, ramp_end.or(interrupted_at_us)) {
        (Some(s), Some(e)) if e > s => (e - s) as f64 / 1e6,
        _ => 0.0,
    };
    let report = ConnectionsReport {
        scenario: "connections".into(),
        url: args.url.clone(),
        channel: args.channel.clone(),
        target_connections: args.connections,
        workers: setup.workers,
        source_addrs: (0..setup.workers)
            .map(|i| setup.sources[i % setup.sources.len()].to_string())
            .collect(),
        interrupted,
        established,
        failures,
        failure_reasons,
        open_at_sample,
        dropped,
        closed_cleanly: closed,
        ramp_seconds: (ramp_seconds * 1000.0).round() / 1000.0,
        handshakes_per_second: if ramp_seconds > 0.0 {
            (established as f64 / ramp_seconds).round()
        } else {
            0.0
        },
        handshake_ms: handshake.summary(),
        upgrade_ms: upgrade.summary(),
        hold_seconds: (held * 100.0).round() / 100.0,
        server,
        worker_errors,
        host: before.host,
    };
    (report, value)
}
