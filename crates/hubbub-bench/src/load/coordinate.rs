//! The parent's side of a run: ramp-up, warm-up and measured windows,
//! drain, stopping the workers and merging their histograms.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::churn::churn;
use super::parent::{apply, Ev, Link, View};
use super::payload::{hist_from_b64, new_hist, Latency};
use super::publish::{publish_window, PubConn};
use super::report::{LoadReport, WindowReport};
use super::setup::Setup;
use super::LoadArgs;
use crate::procfs;
use crate::workers::HostInfo;

/// The parent's side of a run, the same for processes and threads.
pub(super) async fn coordinate(
    setup: Setup,
    args: LoadArgs,
    mut links: Vec<Link>,
    mut rx: mpsc::UnboundedReceiver<Ev>,
    progress: bool,
) -> LoadReport {
    let host = HostInfo::now();
    let setup = Arc::new(setup);
    let args = Arc::new(args);
    let mut views: Vec<View> = (0..links.len()).map(|_| View::default()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let interrupt = {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Relaxed);
            }
        })
    };
    let tty = std::io::stderr().is_terminal();
    let say = |s: String| {
        if progress {
            if tty {
                eprint!("\r{s:<100}");
            } else {
                eprintln!("{s}");
            }
        }
    };
    let server_pid = args
        .server_pid
        .or_else(|| procfs::pid_listening_on(setup.target.addr.port()));

    // Ramp-up.
    let mut last_line = Instant::now();
    while !views
        .iter()
        .all(|v| v.ready || v.exited || v.fatal.is_some())
    {
        if stop.load(Relaxed) {
            break;
        }
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            apply(&mut views, ev);
        } else if rx.is_closed() && rx.is_empty() && !links.is_empty() {
            break;
        }
        if last_line.elapsed() >= Duration::from_secs(1) || tty {
            let o: u64 = views.iter().map(|v| v.opened).sum();
            let f: u64 = views.iter().map(|v| v.failed).sum();
            say(format!(
                "ramp-up: {o}/{} subscribed, {f} failed",
                setup.subscribers
            ));
            last_line = Instant::now();
        }
    }
    if progress && tty {
        eprintln!();
    }

    // Publish: warm-up then the windows.
    let mut conns: Vec<Option<PubConn>> = (0..setup.publishers).map(|_| None).collect();
    let mut windows = Vec::new();
    let plan = setup.windows(args.repetitions);
    if !stop.load(Relaxed) && args.warmup > 0.0 {
        say(format!("warm-up {:.0} s", args.warmup));
        let _ = publish_window(&setup, &args, &mut conns, 0, args.warmup, &stop).await;
    }
    let mut expected_total = 0u64;
    for (i, win) in plan.iter().enumerate() {
        if stop.load(Relaxed) {
            break;
        }
        say(format!(
            "window {}/{}{}: {:.0} s",
            i + 1,
            plan.len(),
            if win.churn { " (churn)" } else { "" },
            args.duration
        ));
        let (churn_tx, churn_rx) = watch::channel(false);
        let churner = (win.churn && setup.churn_rate > 0.0).then(|| {
            tokio::spawn(churn(
                setup.clone(),
                args.clone(),
                setup.churn_rate,
                churn_rx,
            ))
        });
        let cpu0 = server_pid.and_then(|p| procfs::cpu_seconds(p).ok());
        let t0 = Instant::now();
        let ps = publish_window(
            &setup,
            &args,
            &mut conns,
            i as u32 + 1,
            args.duration,
            &stop,
        )
        .await;
        let secs = t0.elapsed().as_secs_f64();
        let cpu = match (cpu0, server_pid.and_then(|p| procfs::cpu_seconds(p).ok())) {
            (Some(a), Some(b)) => Some(((b - a) * 1000.0).round() / 1000.0),
            _ => None,
        };
        let _ = churn_tx.send(true);
        let (churn_cycles, churn_failures) = match churner {
            Some(j) => j.await.unwrap_or_default(),
            None => (0, BTreeMap::new()),
        };
        while let Ok(ev) = rx.try_recv() {
            apply(&mut views, ev);
        }
        expected_total += ps.expected;
        let per = if setup.subscribers > 0 {
            ps.expected
        } else {
            ps.accepted
        };
        windows.push(WindowReport {
            repetition: win.rep,
            churn: win.churn,
            seconds: (secs * 1000.0).round() / 1000.0,
            publishes_sent: ps.sent,
            publishes_accepted: ps.accepted,
            publishes_per_second: (ps.accepted as f64 / secs).round(),
            publish_failures: ps.failures,
            publish_request: ps.request.as_ref().map(Latency::of).unwrap_or_default(),
            expected_deliveries: ps.expected,
            received_deliveries: 0,
            missing: 0,
            deliveries_per_second: 0.0,
            latency: Latency::default(),
            server_cpu_seconds: cpu,
            server_cpu_us_per_delivery: cpu
                .filter(|_| per > 0)
                .map(|c| (c * 1e6 / per as f64 * 100.0).round() / 100.0),
            churn_cycles,
            churn_failures,
        });
    }
    let interrupted = stop.load(Relaxed);

    // Drain: until every expected delivery arrived, or --drain seconds.
    let drain = if interrupted { 1.0 } else { args.drain };
    let until = Instant::now() + Duration::from_secs_f64(drain);
    while !links.is_empty() && Instant::now() < until {
        let got: u64 = views.iter().map(|v| v.received).sum();
        if got >= expected_total {
            break;
        }
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
            apply(&mut views, ev);
        }
    }
    say("closing".into());
    if progress && tty {
        eprintln!();
    }

    // Stop the workers and collect their histograms.
    for l in &mut links {
        match l {
            Link::Process { stdin, .. } => {
                if let Some(mut s) = stdin.take() {
                    let _ = s.write_all(b"stop\n").await;
                }
            }
            Link::Thread { stop, .. } => {
                if let Some(s) = stop.take() {
                    let _ = s.send(());
                }
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    while !views.iter().all(|v| v.exited) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) => apply(&mut views, ev),
            _ => break,
        }
    }
    let mut worker_errors = Vec::new();
    for (i, l) in links.iter_mut().enumerate() {
        match l {
            Link::Process { child, .. } => {
                match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
                    Ok(Ok(s)) if s.success() => {}
                    Ok(Ok(s)) => worker_errors.push(format!("worker {i}: exited with {s}")),
                    _ => {
                        let _ = child.kill().await;
                        worker_errors.push(format!("worker {i}: killed"));
                    }
                }
            }
            Link::Thread { join, .. } => {
                if let Some(j) = join.take() {
                    let _ = tokio::task::spawn_blocking(move || j.join()).await;
                }
            }
        }
    }
    interrupt.abort();

    let mut subscribe_failures = BTreeMap::new();
    let (mut subscribed, mut dropped, mut unparsed) = (0, 0, 0);
    let mut per_window: BTreeMap<u32, (u64, Histogram<u64>)> = BTreeMap::new();
    for (i, v) in views.iter().enumerate() {
        if let Some(f) = &v.fatal {
            worker_errors.push(format!("worker {i}: {f}"));
        }
        let Some(f) = &v.last else {
            worker_errors.push(format!("worker {i}: sent no final report"));
            subscribed += v.opened;
            continue;
        };
        subscribed += f.opened;
        dropped += f.dropped;
        unparsed += f.unparsed;
        for (k, n) in &f.failures {
            *subscribe_failures.entry(k.clone()).or_insert(0) += n;
        }
        for (w, n, h) in &f.windows {
            let e = per_window.entry(*w).or_insert_with(|| (0, new_hist()));
            e.0 += n;
            match hist_from_b64(h) {
                Ok(h) => {
                    let _ = e.1.add(&h);
                }
                Err(err) => worker_errors.push(format!("worker {i}: {err}")),
            }
        }
    }
    for (i, w) in windows.iter_mut().enumerate() {
        if let Some((n, h)) = per_window.get(&(i as u32 + 1)) {
            w.received_deliveries = *n;
            w.latency = Latency::of(h);
        }
        w.missing = w.expected_deliveries as i64 - w.received_deliveries as i64;
        w.deliveries_per_second = (w.received_deliveries as f64 / w.seconds.max(1e-9)).round();
    }
    LoadReport {
        scenario: setup.kind,
        url: args.url.clone(),
        api: setup.api.addr.to_string(),
        via: args.via,
        subscribers: setup.subscribers,
        subscribed,
        subscribe_failures,
        dropped,
        channels: setup.channels,
        rate: setup.rate,
        payload_bytes: args.payload,
        publishers: setup.publishers,
        churn_rate: setup.churn_rate,
        workers: if setup.subscribers == 0 {
            0
        } else {
            setup.workers
        },
        warmup_seconds: args.warmup,
        interrupted,
        server_pid,
        windows,
        unparsed_events: unparsed,
        worker_errors,
        host,
    }
}
