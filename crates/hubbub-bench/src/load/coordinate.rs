//! The parent's side of a run: ramp-up, warm-up and measured windows,
//! drain, then (in `collect`) stopping the workers and merging their
//! histograms. [`Run`] holds the steps so that `fanout` and friends
//! ([`coordinate`]) and the rate sweep compose the same ones.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::churn::churn;
use super::collect::{merge_windows, PerWindow};
use super::parent::{apply, Ev, Link, View};
use super::payload::Latency;
use super::publish::{publish_window, PubConn};
use super::report::{LoadReport, WindowReport};
use super::setup::{Setup, Window};
use super::worker::Ctl;
use super::LoadArgs;
use crate::nodes::ServerProcs;
use crate::workers::HostInfo;

/// The parent's side of a run, the same for processes and threads.
pub(super) async fn coordinate(
    setup: Setup,
    args: LoadArgs,
    links: Vec<Link>,
    rx: mpsc::UnboundedReceiver<Ev>,
    progress: bool,
) -> LoadReport {
    let mut run = Run::new(setup, args, links, rx, progress);
    run.ramp_up().await;
    let (setup, args) = (run.setup.clone(), run.args.clone());
    run.warm_up(&setup).await;
    let mut windows = Vec::new();
    let plan = setup.windows(args.repetitions);
    for (i, win) in plan.iter().enumerate() {
        if run.stopped() {
            break;
        }
        run.say(format!(
            "window {}/{}{}: {:.0} s",
            i + 1,
            plan.len(),
            if win.churn { " (churn)" } else { "" },
            args.duration
        ));
        windows.push(run.window(&setup, i as u32 + 1, *win).await);
    }
    let interrupted = run.stopped();
    run.drain(if interrupted { 1.0 } else { args.drain }).await;
    let done = run.finish().await;
    for (i, w) in windows.iter_mut().enumerate() {
        fill_window(w, i as u32 + 1, &done.per_window);
    }
    LoadReport {
        scenario: setup.kind,
        url: setup.urls.join(","),
        api: apis_joined(&setup),
        urls: setup.urls.clone(),
        nodes: setup.nodes(),
        via: args.via,
        subscribers: setup.subscribers,
        subscribed: done.subscribed,
        subscribe_failures: done.subscribe_failures,
        dropped: done.dropped,
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
        server_pid: done.servers.first_pid(),
        server_processes: done.servers.procs.clone(),
        windows,
        unparsed_events: done.unparsed,
        worker_errors: done.worker_errors,
        notes: done.servers.notes,
        host: done.host,
    }
}

/// The nodes' HTTP API addresses, comma-separated: the report's `api`
/// (one address, as before, when there is one node).
pub(super) fn apis_joined(setup: &Setup) -> String {
    setup
        .apis
        .iter()
        .map(|a| a.addr.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

/// Puts what the subscribers saw of window `tag` into its report.
pub(super) fn fill_window(w: &mut WindowReport, tag: u32, per_window: &PerWindow) {
    if let Some((n, h)) = per_window.get(&tag) {
        w.received_deliveries = *n;
        w.latency = Latency::of(h);
    }
    w.missing = w.expected_deliveries as i64 - w.received_deliveries as i64;
    w.deliveries_per_second = (w.received_deliveries as f64 / w.seconds.max(1e-9)).round();
}

/// A run in progress: the workers, what they said so far, the publishers'
/// connections and the Ctrl-C flag. Its steps are the scenarios' building
/// blocks; [`Run::finish`] ends it.
pub(super) struct Run {
    /// The resolved settings (a sweep runs copies with other rates).
    pub(super) setup: Arc<Setup>,
    pub(super) args: Arc<LoadArgs>,
    /// The workers, and what they said so far (same order).
    pub(super) links: Vec<Link>,
    pub(super) rx: mpsc::UnboundedReceiver<Ev>,
    pub(super) views: Vec<View>,
    /// Set by Ctrl-C; every step returns early once it is.
    pub(super) stop: Arc<AtomicBool>,
    pub(super) interrupt: tokio::task::JoinHandle<()>,
    progress: bool,
    tty: bool,
    /// The processes whose CPU time is measured: the node(s), and any
    /// other `--server-pid` (Redis).
    pub(super) servers: ServerProcs,
    pub(super) host: HostInfo,
    /// The publishers' connections, kept from window to window.
    conns: Vec<Option<PubConn>>,
    /// Deliveries expected over every measured window so far.
    expected_total: u64,
}

impl Run {
    /// Starts following the workers in `links` and watching for Ctrl-C.
    pub(super) fn new(
        setup: Setup,
        args: LoadArgs,
        links: Vec<Link>,
        rx: mpsc::UnboundedReceiver<Ev>,
        progress: bool,
    ) -> Run {
        let stop = Arc::new(AtomicBool::new(false));
        let interrupt = {
            let stop = stop.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    stop.store(true, Relaxed);
                }
            })
        };
        let servers = ServerProcs::resolve(&args.server_pids, &setup.urls, &setup.targets, "CPU");
        Run {
            host: HostInfo::now(),
            views: (0..links.len()).map(|_| View::default()).collect(),
            conns: (0..setup.publishers).map(|_| None).collect(),
            setup: Arc::new(setup),
            args: Arc::new(args),
            links,
            rx,
            stop,
            interrupt,
            progress,
            tty: std::io::stderr().is_terminal(),
            servers,
            expected_total: 0,
        }
    }

    /// Whether Ctrl-C asked to stop.
    pub(super) fn stopped(&self) -> bool {
        self.stop.load(Relaxed)
    }

    /// A progress line on stderr (one line rewritten on a terminal).
    pub(super) fn say(&self, s: String) {
        if self.progress {
            if self.tty {
                eprint!("\r{s:<100}");
            } else {
                eprintln!("{s}");
            }
        }
    }

    /// Ends a line of [`Run::say`] on a terminal.
    pub(super) fn end_line(&self) {
        if self.progress && self.tty {
            eprintln!();
        }
    }

    /// Waits until every worker has opened its subscribers (or failed).
    pub(super) async fn ramp_up(&mut self) {
        let mut last_line = Instant::now();
        while !self
            .views
            .iter()
            .all(|v| v.ready || v.exited || v.fatal.is_some())
        {
            if self.stopped() {
                break;
            }
            if let Ok(Some(ev)) =
                tokio::time::timeout(Duration::from_millis(200), self.rx.recv()).await
            {
                apply(&mut self.views, ev);
            } else if self.rx.is_closed() && self.rx.is_empty() && !self.links.is_empty() {
                break;
            }
            if last_line.elapsed() >= Duration::from_secs(1) || self.tty {
                let o: u64 = self.views.iter().map(|v| v.opened).sum();
                let f: u64 = self.views.iter().map(|v| v.failed).sum();
                self.say(format!(
                    "ramp-up: {o}/{} subscribed, {f} failed",
                    self.setup.subscribers
                ));
                last_line = Instant::now();
            }
        }
        self.end_line();
    }

    /// Publishes `--warmup` seconds at `setup`'s rate, tagged 0 (not counted).
    pub(super) async fn warm_up(&mut self, setup: &Arc<Setup>) {
        if self.stopped() || self.args.warmup <= 0.0 {
            return;
        }
        self.say(format!("warm-up {} s", self.args.warmup));
        let args = self.args.clone();
        let _ = publish_window(setup, &args, &mut self.conns, 0, args.warmup, &self.stop).await;
    }

    /// One measured window of `--duration` seconds at `setup`'s rate, its
    /// publications tagged `tag`. The deliveries are filled in later
    /// ([`fill_window`]), from the workers' histograms.
    pub(super) async fn window(
        &mut self,
        setup: &Arc<Setup>,
        tag: u32,
        win: Window,
    ) -> WindowReport {
        let args = self.args.clone();
        let (churn_tx, churn_rx) = watch::channel(false);
        let churner = (win.churn && setup.churn_rate > 0.0).then(|| {
            tokio::spawn(churn(
                setup.clone(),
                args.clone(),
                setup.churn_rate,
                churn_rx,
            ))
        });
        let cpu0 = self.servers.cpu_now();
        let t0 = Instant::now();
        let ps = publish_window(
            setup,
            &args,
            &mut self.conns,
            tag,
            args.duration,
            &self.stop,
        )
        .await;
        let secs = t0.elapsed().as_secs_f64();
        let (cpu_by_pid, cpu) = self.servers.cpu_used(&cpu0, &self.servers.cpu_now());
        let _ = churn_tx.send(true);
        let (churn_cycles, churn_failures) = match churner {
            Some(j) => j.await.unwrap_or_default(),
            None => Default::default(),
        };
        while let Ok(ev) = self.rx.try_recv() {
            apply(&mut self.views, ev);
        }
        self.expected_total += ps.expected;
        let per = if setup.subscribers > 0 {
            ps.expected
        } else {
            ps.accepted
        };
        WindowReport {
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
            server_cpu_by_pid: cpu_by_pid,
            server_cpu_us_per_delivery: cpu
                .filter(|_| per > 0)
                .map(|c| (c * 1e6 / per as f64 * 100.0).round() / 100.0),
            churn_cycles,
            churn_failures,
        }
    }

    /// Waits until every delivery expected so far arrived, or `secs` passed.
    pub(super) async fn drain(&mut self, secs: f64) {
        let until = Instant::now() + Duration::from_secs_f64(secs);
        while !self.links.is_empty() && Instant::now() < until {
            let got: u64 = self.views.iter().map(|v| v.received).sum();
            if got >= self.expected_total {
                break;
            }
            if let Ok(Some(ev)) =
                tokio::time::timeout(Duration::from_millis(100), self.rx.recv()).await
            {
                apply(&mut self.views, ev);
            }
        }
    }

    /// The workers' histograms so far, merged per window tag, and the
    /// subscribers dropped so far: asks every live worker for a snapshot
    /// and waits (up to 10 s) for the answers.
    pub(super) async fn snapshot(&mut self) -> (PerWindow, u64) {
        let before: Vec<u64> = self.views.iter().map(|v| v.snapshots).collect();
        for (l, v) in self.links.iter_mut().zip(&self.views) {
            if !v.exited {
                l.send(Ctl::Snapshot).await;
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self
            .views
            .iter()
            .zip(&before)
            .all(|(v, b)| v.exited || v.snapshots > *b)
        {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(ev)) => apply(&mut self.views, ev),
                _ => break,
            }
        }
        let mut errors = Vec::new();
        let per_window = merge_windows(
            self.views
                .iter()
                .filter_map(|v| v.snapshot.as_ref().map(|s| &s.windows)),
            &mut errors,
        );
        let dropped = self
            .views
            .iter()
            .filter_map(|v| v.snapshot.as_ref().map(|s| s.dropped))
            .sum();
        (per_window, dropped)
    }
}
