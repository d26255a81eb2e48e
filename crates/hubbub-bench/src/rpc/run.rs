//! The run: the backend up, every connection open, then the phases
//! (warm-up, the windows, the drain) switched by one shared number while
//! the connections call, CPU read at each switch, and the connections'
//! own counts merged at the end.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::backend::Backend;
use super::client::{self, ConnStats, Ctx, Slot, STOP};
use super::report::{medians, BackendReport, RpcReport, RpcWindow};
use super::RpcArgs;
use crate::load::Latency;
use crate::nodes::{node_of, ws_targets, ServerProcs};
use crate::procfs;
use crate::workers::HostInfo;

/// Handshakes in flight at once.
const CONNECT_CONCURRENCY: usize = 64;

/// What is read at each switch of phase.
struct Reading {
    at: Instant,
    server: Vec<Option<f64>>,
    bench: Option<f64>,
    host: Option<(u64, u64)>,
    backend: Option<u64>,
}

impl Reading {
    fn now(procs: &ServerProcs, backend: Option<&Backend>) -> Reading {
        Reading {
            at: Instant::now(),
            server: procs.cpu_now(),
            bench: procfs::cpu_seconds(std::process::id()).ok(),
            host: procfs::host_cpu_ticks(),
            backend: backend.map(|b| b.requests.load(Relaxed)),
        }
    }
}

/// Sleeps `secs`, or until Ctrl-C when `ctrl_c` listens for it: true
/// when interrupted.
async fn wait(secs: f64, ctrl_c: &mut (impl std::future::Future<Output = ()> + Unpin)) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(Duration::from_secs_f64(secs)) => false,
        _ = ctrl_c => true,
    }
}

/// Runs the scenario of `args` on the current runtime. `cli`: progress on
/// stderr, and Ctrl-C ends the run early (with partial results).
pub(super) async fn run(args: RpcArgs, cli: bool) -> anyhow::Result<RpcReport> {
    let data = args.check()?;
    let (urls, targets) = ws_targets(&args.urls)?;
    let host = HostInfo::now();
    let backend = match args.backend_listen {
        Some(a) => Some(
            Backend::start(a)
                .await
                .with_context(|| format!("--backend-listen {a}"))?,
        ),
        None => None,
    };
    if let (true, Some(b)) = (cli, &backend) {
        eprintln!("backend listening on {}", b.addr);
    }
    let procs = ServerProcs::resolve(&args.server_pids, &urls, &targets, "CPU");
    let mut notes = procs.notes.clone();
    if procs.procs.iter().any(|p| p.pid == std::process::id()) {
        notes.push("the hub runs in the bench's own process: its CPU includes the bench's".into());
    }

    // Every connection first, so the calls start together.
    let timeout = Duration::from_secs_f64(args.handshake_timeout);
    let sem = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut opening = JoinSet::new();
    for k in 0..args.connections {
        let target = targets[node_of(k, targets.len())].clone();
        let sem = sem.clone();
        opening.spawn(async move {
            let _permit = sem.acquire_owned().await;
            (k, client::connect(&target, k, timeout).await)
        });
    }
    let mut conns = Vec::with_capacity(args.connections);
    let mut connect_failures: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(r) = opening.join_next().await {
        match r {
            Ok((k, Ok(c))) => conns.push((k, c)),
            Ok((_, Err(e))) => *connect_failures.entry(e).or_insert(0) += 1,
            Err(e) => *connect_failures.entry(format!("task: {e}")).or_insert(0) += 1,
        }
    }
    conns.sort_by_key(|(k, _)| *k);
    let connected = conns.len();
    if cli {
        eprintln!("connected {connected}/{}", args.connections);
    }

    let windows = args.repetitions as usize;
    let schedule = args.rate.map(|rate| {
        let stagger = Duration::from_secs_f64(1.0 / rate);
        (stagger * connected.max(1) as u32, stagger)
    });
    let ctx = Arc::new(Ctx {
        phase: AtomicU32::new(0),
        slots: windows + 2,
        start: Instant::now() + Duration::from_millis(20),
        in_flight: args.in_flight,
        schedule,
        tail: format!(
            ",\"method\":{},\"data\":{data}}}",
            serde_json::to_string(&args.method)?
        ),
        drain: Duration::from_secs_f64(args.drain),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut calling = JoinSet::new();
    for (pos, (_, c)) in conns.into_iter().enumerate() {
        calling.spawn(client::drive(c, ctx.clone(), pos, stop_rx.clone()));
    }

    let mut ctrl_c = Box::pin(async move {
        if cli {
            let _ = tokio::signal::ctrl_c().await;
        } else {
            std::future::pending::<()>().await;
        }
    });
    let mut interrupted = false;
    let mut readings: Vec<Reading> = Vec::new();
    if connected > 0 {
        tokio::time::sleep_until(ctx.start).await;
        if cli {
            eprintln!("warm-up {} s", args.warmup);
        }
        interrupted = wait(args.warmup, &mut ctrl_c).await;
        // Boundary r opens window r + 1 (the last one: the drain).
        for rep in 0..windows {
            if interrupted {
                break;
            }
            readings.push(Reading::now(&procs, backend.as_ref()));
            ctx.phase.store(rep as u32 + 1, Relaxed);
            if cli {
                eprintln!("window {} of {windows}: {} s", rep + 1, args.duration);
            }
            interrupted = wait(args.duration, &mut ctrl_c).await;
        }
        if !readings.is_empty() {
            readings.push(Reading::now(&procs, backend.as_ref()));
        }
    }
    ctx.phase.store(STOP, Relaxed);
    let _ = stop_tx.send(true);
    if cli && connected > 0 {
        eprintln!("draining (at most {} s)", args.drain);
    }
    let mut stats: Vec<ConnStats> = Vec::with_capacity(connected);
    while let Some(r) = calling.join_next().await {
        if let Ok(s) = r {
            stats.push(s);
        }
    }

    // Merge: per slot over connections.
    let mut slots = vec![Slot::default(); windows + 2];
    let (mut unanswered, mut unmatched, mut unparsed) = (0, 0, 0);
    let mut dropped: BTreeMap<String, u64> = BTreeMap::new();
    for s in &stats {
        for (into, from) in slots.iter_mut().zip(&s.slots) {
            into.sent += from.sent;
            into.answered += from.answered;
            for (k, v) in &from.errors {
                *into.errors.entry(k.clone()).or_insert(0) += v;
            }
            into.latency.merge(&from.latency);
            into.from_due.merge(&from.from_due);
            into.lag.merge(&from.lag);
        }
        unanswered += s.unanswered;
        unmatched += s.unmatched;
        unparsed += s.unparsed;
        if let Some(why) = &s.dropped {
            *dropped.entry(why.clone()).or_insert(0) += 1;
        }
    }
    let mut total_errors: BTreeMap<String, u64> = BTreeMap::new();
    for s in &slots {
        for (k, v) in &s.errors {
            *total_errors.entry(k.clone()).or_insert(0) += v;
        }
    }

    let per_call = |secs: Option<f64>, calls: u64| {
        secs.filter(|_| calls > 0)
            .map(|s| (s * 1e6 / calls as f64 * 10.0).round() / 10.0)
    };
    let mut report_windows = Vec::new();
    for (rep, pair) in readings.windows(2).enumerate() {
        let (a, b) = (&pair[0], &pair[1]);
        let slot = &slots[rep + 1];
        let seconds = (b.at - a.at).as_secs_f64();
        let handled = slot.answered + slot.errors.values().sum::<u64>();
        let (by_pid, server_cpu) = procs.cpu_used(&a.server, &b.server);
        let bench_cpu = match (a.bench, b.bench) {
            (Some(x), Some(y)) => Some(((y - x) * 1000.0).round() / 1000.0),
            _ => None,
        };
        // /proc/stat counts in USER_HZ, 100 a second on every common platform.
        let host_busy = match (a.host, b.host) {
            (Some((b0, _)), Some((b1, _))) => Some(b1.saturating_sub(b0) as f64 / 100.0),
            _ => None,
        };
        let other_cpu = match (host_busy, server_cpu, bench_cpu) {
            (Some(h), Some(s), Some(m)) => Some(((h - s - m) * 100.0).round() / 100.0),
            _ => None,
        };
        report_windows.push(RpcWindow {
            repetition: rep as u32,
            seconds: (seconds * 1000.0).round() / 1000.0,
            calls_sent: slot.sent,
            calls_answered: slot.answered,
            calls_per_second: (slot.answered as f64 / seconds).round(),
            errors: slot.errors.clone(),
            latency: Latency::of_rounds(&slot.latency),
            latency_from_due: schedule.map(|_| Latency::of_rounds(&slot.from_due)),
            send_lag: schedule.map(|_| Latency::of_rounds(&slot.lag)),
            server_cpu_seconds: server_cpu,
            server_cpu_by_pid: by_pid,
            server_cpu_us_per_call: per_call(server_cpu, handled),
            bench_cpu_seconds: bench_cpu,
            bench_cpu_us_per_call: per_call(bench_cpu, handled),
            host_cpu_busy: match (a.host, b.host) {
                (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => {
                    Some(((b1 - b0) as f64 / (t1 - t0) as f64 * 1000.0).round() / 1000.0)
                }
                _ => None,
            },
            other_cpu_seconds: other_cpu,
            backend_requests: match (a.backend, b.backend) {
                (Some(x), Some(y)) => Some(y - x),
                _ => None,
            },
        });
    }

    if total_errors.contains_key("rate_limited") {
        notes.push(
            "rate_limited: the hub's per-connection message limit refused calls; raise \
             connection.rate_limit_per_second and rate_limit_burst on the hub for a bench"
                .into(),
        );
    }
    if total_errors.contains_key("limit_exceeded") {
        notes.push(
            "limit_exceeded: more calls outstanding on one connection than the hub's \
             rpc.max_in_flight (default 32)"
                .into(),
        );
    }
    if total_errors.contains_key("unavailable") && backend.is_some() {
        notes.push(
            "unavailable: the hub's proxy did not get an answer from a backend (is \
             [[rpc.proxy]] pointing at --backend-listen?)"
                .into(),
        );
    }
    if schedule.is_some() {
        notes.push(
            "open loop: round trips count from each call's write; `from due` counts from \
             its place in the schedule, adding the send lag (tokio's timer fires up to \
             ~1-2 ms late; more lag means the bench, or a hub not reading, held calls back)"
                .into(),
        );
    }

    Ok(RpcReport {
        scenario: "rpc",
        urls,
        method: args.method.clone(),
        data_bytes: data.len(),
        connections: args.connections,
        connected,
        connect_failures,
        dropped,
        mode: if schedule.is_some() {
            "open-loop"
        } else {
            "closed-loop"
        },
        in_flight: schedule.is_none().then_some(args.in_flight),
        rate: args.rate,
        threads: args.threads,
        warmup_seconds: args.warmup,
        medians: medians(&report_windows),
        windows: report_windows,
        total_sent: slots.iter().map(|s| s.sent).sum(),
        total_answered: slots.iter().map(|s| s.answered).sum(),
        total_errors,
        unanswered,
        unmatched,
        unparsed,
        backend: backend.as_ref().map(|b| BackendReport {
            listen: b.addr.to_string(),
            requests: b.requests.load(Relaxed),
            refused: b.refused.load(Relaxed),
        }),
        server_pid: procs.first_pid(),
        server_processes: procs.procs.clone(),
        interrupted,
        notes,
        host,
    })
}
