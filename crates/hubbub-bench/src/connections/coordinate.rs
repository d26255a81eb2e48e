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
use super::report::{NodeSample, ProcessMemory};
use super::sample::{active_connections, get_node_json, read_memory, Before};
use super::worker::{unix_us, Plan};
use super::{ConnectionsArgs, Setup, STOP_WAIT};
use crate::hist::Histogram;
use crate::nodes::ServerProcs;
use crate::procfs::Memory;

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

    // Second sample, with the hub's own view: every process, every node.
    let n = setup.targets.len();
    let mut notes = before.notes;
    let open_at_sample: u64 = views.iter().map(|v| v.counts.open).sum();
    let mut open_on = vec![0u64; n];
    for (i, v) in views.iter().enumerate() {
        open_on[setup.node_of_worker(i)] += v.counts.open;
    }
    let after = read_memory(&before.servers, " after", &mut notes);
    let active_after = active_connections(args, setup, &mut notes).await;
    let channel_path = format!("/api/channels/{}", args.channel);
    let mut subscribers_on = Vec::with_capacity(n);
    for k in 0..n {
        subscribers_on.push(
            get_node_json(args, setup, k, &channel_path, &mut notes)
                .await
                .and_then(|v| v["subscribers"].as_u64()),
        );
    }
    let mut server = server_sample(
        &before.servers,
        (&before.memory, &after),
        (&open_on, open_at_sample),
        (&before.active, &active_after, &subscribers_on),
        notes,
    );
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
    for (k, node) in server.nodes.iter_mut().enumerate() {
        let mine: Vec<&WorkerView> = views
            .iter()
            .enumerate()
            .filter(|(i, _)| setup.node_of_worker(*i) == k)
            .map(|(_, v)| v)
            .collect();
        node.url = setup.urls[k].clone();
        node.workers = mine.len();
        node.target_connections = (0..setup.workers)
            .filter(|i| setup.node_of_worker(*i) == k)
            .map(|i| Plan::share(args.connections, i, setup.workers))
            .sum();
        node.established = mine
            .iter()
            .map(|v| v.best().map_or(v.counts, |s| s.counts).opened)
            .sum();
    }
    let report = ConnectionsReport {
        scenario: "connections".into(),
        url: setup.urls.join(","),
        urls: setup.urls.clone(),
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

/// `(after - before) / held` to a tenth of a byte, when all is known.
fn per_connection(after: Option<u64>, before: Option<u64>, held: u64) -> Option<f64> {
    match (after, before) {
        (Some(a), Some(b)) if held > 0 => {
            Some(((a as f64 - b as f64) / held as f64 * 10.0).round() / 10.0)
        }
        _ => None,
    }
}

/// The sum of `values`, only when every one is known (and there is one):
/// a partial sum would pass for the whole cluster's.
fn sum_all(values: impl IntoIterator<Item = Option<u64>>) -> Option<u64> {
    let mut any = false;
    let mut total = 0u64;
    for v in values {
        total += v?;
        any = true;
    }
    any.then_some(total)
}

/// One figure per node, `None` where the node did not give it.
type PerNode<'a> = &'a [Option<u64>];

/// The memory figures of every process and node, and the totals: RSS
/// growth summed over the processes, over the connections held on every
/// node. `memory` is (before, after) per process, `open` per node and in
/// all, `counts` per node: active connections before and after and
/// channel subscribers.
fn server_sample(
    servers: &ServerProcs,
    (before, after): (&[Option<Memory>], &[Option<Memory>]),
    (open_on, open_at_sample): (&[u64], u64),
    (active_before, active_after, subscribers): (PerNode, PerNode, PerNode),
    notes: Vec<String>,
) -> ServerSample {
    let processes: Vec<ProcessMemory> = servers
        .procs
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (b, a) = (
                before.get(i).copied().flatten(),
                after.get(i).copied().flatten(),
            );
            let serves: Vec<usize> = (0..open_on.len())
                .filter(|k| servers.node_pid.get(*k) == Some(&Some(p.pid)))
                .collect();
            let held = (!serves.is_empty()).then(|| serves.iter().map(|k| open_on[*k]).sum());
            ProcessMemory {
                pid: p.pid,
                urls: p.urls.clone(),
                rss_before_bytes: b.map(|m| m.rss),
                rss_after_bytes: a.map(|m| m.rss),
                rss_anon_before_bytes: b.and_then(|m| m.anon),
                rss_anon_after_bytes: a.and_then(|m| m.anon),
                connections_held: held,
                rss_per_connection_bytes: held
                    .and_then(|h| per_connection(a.map(|m| m.rss), b.map(|m| m.rss), h)),
            }
        })
        .collect();
    // Totals only over a complete list, every process read.
    let total = |f: fn(&ProcessMemory) -> Option<u64>| {
        if servers.complete {
            sum_all(processes.iter().map(f))
        } else {
            None
        }
    };
    let (rss_before, rss_after) = (total(|p| p.rss_before_bytes), total(|p| p.rss_after_bytes));
    let (anon_before, anon_after) = (
        total(|p| p.rss_anon_before_bytes),
        total(|p| p.rss_anon_after_bytes),
    );
    let nodes = (0..open_on.len())
        .map(|k| {
            let pid = servers.node_pid[k].filter(|pid| processes.iter().any(|p| p.pid == *pid));
            NodeSample {
                pid,
                open_at_sample: open_on[k],
                rss_per_connection_bytes: pid.and_then(|pid| {
                    processes
                        .iter()
                        .find(|p| p.pid == pid)
                        .and_then(|p| p.rss_per_connection_bytes)
                }),
                hub_active_connections_before: active_before.get(k).copied().flatten(),
                hub_active_connections: active_after.get(k).copied().flatten(),
                hub_channel_subscribers: subscribers.get(k).copied().flatten(),
                ..NodeSample::default()
            }
        })
        .collect();
    ServerSample {
        pid: servers.first_pid(),
        rss_before_bytes: rss_before,
        rss_after_bytes: rss_after,
        rss_per_connection_bytes: per_connection(rss_after, rss_before, open_at_sample),
        rss_anon_before_bytes: anon_before,
        rss_anon_after_bytes: anon_after,
        rss_anon_per_connection_bytes: per_connection(anon_after, anon_before, open_at_sample),
        hub_active_connections_before: sum_all(active_before.iter().copied()),
        hub_active_connections: sum_all(active_after.iter().copied()),
        hub_channel_subscribers: sum_all(subscribers.iter().copied()),
        notes,
        processes,
        nodes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mem(rss: u64) -> Option<Memory> {
        Some(Memory {
            rss,
            anon: Some(rss / 2),
        })
    }

    #[test]
    fn rss_is_summed_over_every_process_and_split_per_node() {
        let urls: Vec<String> = ["ws://h:1/ws", "ws://h:2/ws"].map(String::from).to_vec();
        // Two nodes (pids 11, 12) and Redis (6379), given.
        let servers = ServerProcs::resolve_with(&[11, 12, 6379], &urls, &[1, 2], "RSS", |p| {
            Some(u32::from(p) + 10)
        });
        let s = server_sample(
            &servers,
            (
                &[mem(1000), mem(2000), mem(500)],
                &[mem(11_000), mem(7_000), mem(1_500)],
            ),
            (&[10, 5], 15),
            (&[Some(0), Some(1)], &[Some(10), Some(6)], &[Some(10), None]),
            Vec::new(),
        );
        assert_eq!(s.pid, Some(11));
        assert_eq!(
            (s.rss_before_bytes, s.rss_after_bytes),
            (Some(3500), Some(19_500))
        );
        // (10,000 + 5,000 + 1,000) / 15 connections.
        assert_eq!(s.rss_per_connection_bytes, Some(1066.7));
        assert_eq!(s.rss_anon_per_connection_bytes, Some(533.3));
        assert_eq!(s.processes.len(), 3);
        assert_eq!(s.processes[0].connections_held, Some(10));
        assert_eq!(s.processes[0].rss_per_connection_bytes, Some(1000.0));
        assert_eq!(s.processes[1].rss_per_connection_bytes, Some(1000.0));
        assert_eq!(s.processes[2].connections_held, None);
        assert_eq!(s.processes[2].rss_per_connection_bytes, None);
        assert_eq!(s.nodes[1].pid, Some(12));
        assert_eq!(s.nodes[1].open_at_sample, 5);
        assert_eq!(s.nodes[1].rss_per_connection_bytes, Some(1000.0));
        assert_eq!(s.hub_active_connections_before, Some(1));
        assert_eq!(s.hub_active_connections, Some(16));
        // One node did not say: no sum.
        assert_eq!(s.hub_channel_subscribers, None);
        assert_eq!(s.nodes[0].hub_channel_subscribers, Some(10));

        // A process not read: its own figures absent, and no total.
        let s = server_sample(
            &servers,
            (
                &[mem(1000), None, mem(500)],
                &[mem(11_000), mem(7_000), mem(1_500)],
            ),
            (&[10, 5], 15),
            (&[None, None], &[None, None], &[None, None]),
            Vec::new(),
        );
        assert_eq!(s.rss_per_connection_bytes, None);
        assert_eq!(s.processes[0].rss_per_connection_bytes, Some(1000.0));
        assert_eq!(s.processes[1].rss_per_connection_bytes, None);
    }

    #[test]
    fn one_process_reads_as_before() {
        let urls = vec!["ws://h:1/ws".to_owned()];
        let servers = ServerProcs::resolve_with(&[], &urls, &[1], "RSS", |_| Some(7));
        let s = server_sample(
            &servers,
            (&[mem(1000)], &[mem(3000)]),
            (&[4], 4),
            (&[Some(0)], &[Some(4)], &[Some(4)]),
            Vec::new(),
        );
        assert_eq!(s.pid, Some(7));
        assert_eq!(s.rss_per_connection_bytes, Some(500.0));
        assert_eq!(s.nodes[0].rss_per_connection_bytes, Some(500.0));
        assert_eq!(
            (s.hub_active_connections, s.hub_channel_subscribers),
            (Some(4), Some(4))
        );
    }
}
