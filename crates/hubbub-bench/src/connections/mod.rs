//! `hubbub bench connections`: what an idle, subscribed connection costs
//! the hub.
//!
//! The parent process samples the server's RSS, spawns worker processes
//! (one process may hold at most 20,000 descriptors, and each needs its own
//! source address to stay clear of the ephemeral-port limit), follows their
//! progress, samples the RSS again once every connection has been held for
//! `--hold` seconds, and reports `(after - before) / connections`.
//!
//! Tests and embedding applications use [`run_in_process`], which runs the
//! same workers as tasks instead of processes.

mod msg;
pub(crate) mod worker;

use std::collections::BTreeMap;
use std::future::Future;
use std::io::{IsTerminal as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use self::msg::{Counts, WorkerMsg, WorkerSummary};
use self::worker::{unix_us, Emit, Plan};
use crate::hist::Histogram;
pub use crate::hist::LatencySummary;
use crate::procfs;
use crate::target::{get_json, WsTarget};

/// Connections one worker opens by default (`--workers` defaults to
/// `ceil(N / 9000)`), well under the 20,000 descriptors a process may hold.
const PER_WORKER: u64 = 9_000;
/// How long the parent waits for workers to close and exit.
const STOP_WAIT: Duration = Duration::from_secs(60);

/// Options of `hubbub bench connections`. Exists as a clap struct so the
/// `hubbub` binary mounts it unchanged and the parent can rebuild a
/// worker's command line from the parsed values.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectionsArgs {
    /// WebSocket URL of the hub; its HTTP API is read on the same host and
    /// port (`/api/stats`).
    #[arg(long, default_value = "ws://127.0.0.1:8000/ws")]
    pub url: String,
    /// Connections to open in total.
    #[arg(short = 'n', long = "connections", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub connections: u64,
    /// Channel every connection subscribes to.
    #[arg(long, default_value = "bench")]
    pub channel: String,
    /// Worker processes [default: ceil(N / 9000)].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..4096))]
    pub workers: Option<u64>,
    /// Source addresses, one per worker in turn (comma-separated)
    /// [default: 127.0.0.1, 127.0.0.2, ... one per worker].
    #[arg(long, value_delimiter = ',')]
    pub source_addrs: Vec<IpAddr>,
    /// Pid of the hub, for its RSS [default: the process listening on the
    /// URL's port, found through /proc].
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Seconds to hold every connection idle before sampling the RSS.
    #[arg(long, default_value_t = 5.0)]
    pub hold: f64,
    /// Target handshakes per second over all workers [default: unlimited,
    /// bounded by --max-in-flight].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Handshakes in flight at once, per worker.
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
    /// Seconds one handshake (connect to `subscribed`) may take.
    #[arg(long, default_value_t = 30.0)]
    pub handshake_timeout: f64,
    /// API key for the hub's HTTP API, when it has one.
    #[arg(long)]
    pub api_key: Option<String>,
    /// Write the full report as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Internal: run as worker INDEX of the parent's workers.
    #[arg(long, hide = true, requires = "worker_count")]
    pub worker_index: Option<usize>,
    /// Internal: how many workers the parent started.
    #[arg(long, hide = true)]
    pub worker_count: Option<usize>,
}

impl ConnectionsArgs {
    /// The arguments with every default, as if given no flags. Exists for
    /// tests and embedding code that set a few fields.
    pub fn new(url: impl Into<String>, connections: u64) -> Self {
        ConnectionsArgs {
            url: url.into(),
            connections,
            channel: "bench".into(),
            workers: None,
            source_addrs: Vec::new(),
            server_pid: None,
            hold: 5.0,
            rate: None,
            max_in_flight: 256,
            handshake_timeout: 30.0,
            api_key: None,
            out: None,
            worker_index: None,
            worker_count: None,
        }
    }

    /// The command line of worker `index` (after the executable): only what
    /// a worker needs, taken from the parsed values.
    fn worker_argv(&self, index: usize, count: usize, sources: &[IpAddr]) -> Vec<String> {
        let sources: Vec<String> = sources.iter().map(IpAddr::to_string).collect();
        let mut v = vec![
            "bench".to_owned(),
            "connections".to_owned(),
            format!("--url={}", self.url),
            format!("--connections={}", self.connections),
            format!("--channel={}", self.channel),
            format!("--source-addrs={}", sources.join(",")),
            format!("--max-in-flight={}", self.max_in_flight),
            format!("--handshake-timeout={}", self.handshake_timeout),
            format!("--worker-index={index}"),
            format!("--worker-count={count}"),
        ];
        if let Some(r) = self.rate {
            v.push(format!("--rate={r}"));
        }
        v
    }
}

/// Resolved settings shared by the parent and its workers.
struct Setup {
    target: WsTarget,
    workers: usize,
    sources: Vec<IpAddr>,
}

impl Setup {
    fn new(args: &ConnectionsArgs, workers: Option<usize>) -> anyhow::Result<Setup> {
        let target = WsTarget::parse(&args.url)?;
        let workers = workers
            .or(args.workers.map(|w| w as usize))
            .unwrap_or_else(|| args.connections.div_ceil(PER_WORKER) as usize)
            .max(1);
        let sources = if args.source_addrs.is_empty() {
            default_sources(target.addr.ip(), workers)
        } else {
            args.source_addrs.clone()
        };
        if sources.iter().any(|s| s.is_ipv4() != target.addr.is_ipv4()) {
            bail!("source addresses and {} must be of one IP family", args.url);
        }
        if !(args.hold.is_finite() && args.hold >= 0.0) {
            bail!("--hold must be a number of seconds");
        }
        if !(args.handshake_timeout.is_finite() && args.handshake_timeout > 0.0) {
            bail!("--handshake-timeout must be a positive number of seconds");
        }
        if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            bail!("--rate must be positive");
        }
        hubbub_protocol::validate_channel(&args.channel)
            .map_err(|e| anyhow::anyhow!("--channel: {e}"))?;
        Ok(Setup {
            target,
            workers,
            sources,
        })
    }

    fn plan(&self, args: &ConnectionsArgs, index: usize) -> Plan {
        Plan {
            index,
            target: self.target.clone(),
            source: self.sources[index % self.sources.len()],
            connections: Plan::share(args.connections, index, self.workers),
            channel: args.channel.clone(),
            rate: args.rate.map(|r| r / self.workers as f64),
            max_in_flight: args.max_in_flight,
            handshake_timeout: Duration::from_secs_f64(args.handshake_timeout),
        }
    }
}

/// 127.0.0.1, 127.0.0.2, ... for a loopback IPv4 hub (each its own
/// ephemeral-port space); the unspecified address otherwise.
pub(crate) fn default_sources(target: IpAddr, workers: usize) -> Vec<IpAddr> {
    match target {
        IpAddr::V4(v4) if v4.is_loopback() => (0..workers.min(254))
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + i as u8)))
            .collect(),
        IpAddr::V4(_) => vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)],
        IpAddr::V6(v6) if v6.is_loopback() => vec![IpAddr::V6(Ipv6Addr::LOCALHOST)],
        IpAddr::V6(_) => vec![IpAddr::V6(Ipv6Addr::UNSPECIFIED)],
    }
}

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

/// The machine the run was on, so a figure can be compared with another.
#[derive(Debug, Clone, Serialize)]
pub struct HostInfo {
    /// CPUs available to the bench.
    pub nproc: usize,
    /// `/proc/sys/kernel/osrelease`.
    pub kernel: String,
    /// When the run started, UTC, RFC 3339.
    pub date_utc: String,
}

impl HostInfo {
    pub(crate) fn now() -> HostInfo {
        HostInfo {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: procfs::kernel(),
            date_utc: utc_rfc3339(unix_us() / 1_000_000),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` from Unix seconds (Howard Hinnant's civil_from_days).
fn utc_rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// What a worker sends the coordinator.
enum Event {
    Msg(usize, WorkerMsg),
    /// The worker's output ended (it exited or its task returned).
    Exited(usize),
}

/// How the coordinator stops and waits for one worker.
enum Link {
    Process {
        child: Box<tokio::process::Child>,
        stdin: Option<tokio::process::ChildStdin>,
    },
    Task {
        stop: Option<oneshot::Sender<()>>,
        join: tokio::task::JoinHandle<()>,
    },
}

impl Link {
    /// Tells the worker to close its connections and finish: a line on
    /// its stdin, then EOF (either one is enough).
    async fn stop(&mut self) {
        match self {
            Link::Process { stdin, .. } => {
                if let Some(mut s) = stdin.take() {
                    let _ = s.write_all(b"stop\n").await;
                    let _ = s.flush().await;
                }
            }
            Link::Task { stop, .. } => {
                if let Some(s) = stop.take() {
                    let _ = s.send(());
                }
            }
        }
    }

    /// Waits for the worker to end, killing (or aborting) it after `within`.
    async fn reap(&mut self, within: Duration) -> Option<String> {
        match self {
            Link::Process { child, .. } => match tokio::time::timeout(within, child.wait()).await {
                Ok(Ok(status)) if status.success() => None,
                Ok(Ok(status)) => Some(format!("exited with {status}")),
                Ok(Err(e)) => Some(format!("wait: {e}")),
                Err(_) => {
                    let _ = child.kill().await;
                    Some("did not exit in time; killed".into())
                }
            },
            Link::Task { join, .. } => match tokio::time::timeout(within, &mut *join).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(format!("task failed: {e}")),
                Err(_) => {
                    join.abort();
                    Some("did not finish in time; aborted".into())
                }
            },
        }
    }
}

/// What the parent knows about one worker.
#[derive(Default)]
struct WorkerView {
    counts: Counts,
    ramp: Option<WorkerSummary>,
    last: Option<WorkerSummary>,
    exited: bool,
    fatal: Option<String>,
}

impl WorkerView {
    fn ramp_over(&self) -> bool {
        self.ramp.is_some() || self.exited || self.fatal.is_some()
    }

    fn best(&self) -> Option<&WorkerSummary> {
        self.last.as_ref().or(self.ramp.as_ref())
    }
}

/// Everything sampled before the workers start.
struct Before {
    pid: Option<u32>,
    memory: Option<procfs::Memory>,
    active: Option<u64>,
    notes: Vec<String>,
    host: HostInfo,
}

async fn sample_before(args: &ConnectionsArgs, setup: &Setup) -> Before {
    let mut notes = Vec::new();
    let pid = args.server_pid.or_else(|| {
        let found = procfs::pid_listening_on(setup.target.addr.port());
        if found.is_none() {
            notes.push(format!(
                "no process on this machine listens on port {}: RSS not measured (give --server-pid)",
                setup.target.addr.port()
            ));
        }
        found
    });
    let memory = pid.and_then(|p| match procfs::memory(p) {
        Ok(m) => Some(m),
        Err(e) => {
            notes.push(format!("reading /proc/{p}/status: {e}"));
            None
        }
    });
    let active = active_connections(args, setup, &mut notes).await;
    Before {
        pid,
        memory,
        active,
        notes,
        host: HostInfo::now(),
    }
}

async fn active_connections(
    args: &ConnectionsArgs,
    setup: &Setup,
    notes: &mut Vec<String>,
) -> Option<u64> {
    match get_json(&setup.target, "/api/stats", args.api_key.as_deref()).await {
        Ok(Some(v)) => v["active_connections"].as_u64(),
        Ok(None) => {
            note_once(notes, "GET /api/stats: 404 (the hub does not serve it yet)");
            None
        }
        Err(e) => {
            note_once(notes, &format!("{e:#}"));
            None
        }
    }
}

fn note_once(notes: &mut Vec<String>, note: &str) {
    if !notes.iter().any(|n| n == note) {
        notes.push(note.to_owned());
    }
}

/// Runs the scenario with its workers as tasks of the current runtime
/// instead of processes, and calls `at_hold` once every connection is
/// established and has been held for `--hold` seconds, right after the
/// second RSS sample and before anything is closed. Exists so tests (and
/// applications embedding a hub) can run the real scenario without the
/// `hubbub` binary and check the hub's own view while the connections are
/// up. `--workers` defaults to 1 here; the RSS is that of whichever process
/// listens on the port, usually the caller itself.
pub async fn run_in_process<T>(
    args: ConnectionsArgs,
    at_hold: impl FnOnce() -> T,
) -> anyhow::Result<(ConnectionsReport, T)> {
    let setup = Setup::new(&args, Some(args.workers.unwrap_or(1) as usize))?;
    let before = sample_before(&args, &setup).await;
    let (tx, rx) = mpsc::unbounded_channel();
    let links = (0..setup.workers)
        .map(|i| {
            let plan = setup.plan(&args, i);
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            let msgs = tx.clone();
            // Through JSON as between processes, so tests cover the wire format.
            let emit: Emit = Arc::new(move |m| {
                let m = serde_json::to_string(&m)
                    .and_then(|line| serde_json::from_str(&line))
                    .unwrap_or_else(|e| WorkerMsg::Fatal {
                        message: format!("unreadable output: {e}"),
                    });
                let _ = msgs.send(Event::Msg(i, m));
            });
            let exited = tx.clone();
            let join = tokio::spawn(async move {
                worker::work(plan, emit, async {
                    let _ = stop_rx.await;
                })
                .await;
                let _ = exited.send(Event::Exited(i));
            });
            Link::Task {
                stop: Some(stop_tx),
                join,
            }
        })
        .collect();
    drop(tx);
    let (report, value) = coordinate(
        &args,
        &setup,
        before,
        links,
        rx,
        Box::pin(std::future::pending()),
        at_hold,
        false,
    )
    .await;
    if let Some(path) = &args.out {
        write_report(path, &report)?;
    }
    Ok((report, value))
}

/// The CLI entry: a worker when the hidden worker flags are set, else the
/// parent.
pub(crate) fn run_cli(args: ConnectionsArgs) -> ExitCode {
    if let Some(index) = args.worker_index {
        return worker_process(&args, index, args.worker_count.unwrap_or(1));
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hubbub bench: cannot start a runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(parent(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hubbub bench connections: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn parent(args: ConnectionsArgs) -> anyhow::Result<ExitCode> {
    let setup = Setup::new(&args, None)?;
    // Workers inherit the limit; raise the soft one as far as allowed.
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(u64::MAX);
    let biggest = Plan::share(args.connections, 0, setup.workers);
    if biggest + 64 > limit {
        bail!(
            "a worker would hold {biggest} sockets but a process may open {limit} descriptors: \
             use more --workers"
        );
    }
    let exe = std::env::current_exe().context("finding the executable to run workers")?;
    let before = sample_before(&args, &setup).await;

    let (tx, rx) = mpsc::unbounded_channel();
    let mut links = Vec::with_capacity(setup.workers);
    for i in 0..setup.workers {
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.args(args.worker_argv(i, setup.workers, &setup.sources))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            // Its own process group: Ctrl-C at the terminal reaches only
            // the parent, which then stops the workers in order.
            .process_group(0);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting worker {i} ({})", exe.display()))?;
        let stdout = child.stdout.take().expect("piped");
        let stdin = child.stdin.take();
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<WorkerMsg>(&line) {
                    Ok(m) => {
                        let _ = tx.send(Event::Msg(i, m));
                    }
                    Err(e) => {
                        // Counted as the worker failing, so the parent never
                        // waits for a summary it could not read.
                        let message = format!("unreadable output ({e}): {line:.200}");
                        let _ = tx.send(Event::Msg(i, WorkerMsg::Fatal { message }));
                    }
                }
            }
            let _ = tx.send(Event::Exited(i));
        });
        links.push(Link::Process {
            child: Box::new(child),
            stdin,
        });
    }
    drop(tx);

    let interrupt = Box::pin(async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        // A second Ctrl-C while stopping ends the parent at once; workers
        // see their stdin close and exit by themselves.
        tokio::spawn(async {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!("\ninterrupted again: exiting without waiting for workers");
            std::process::exit(130);
        });
    });
    let (report, ()) = coordinate(&args, &setup, before, links, rx, interrupt, || (), true).await;
    print_table(&report);
    if let Some(path) = &args.out {
        write_report(path, &report)?;
        println!("report written to {}", path.display());
    }
    Ok(if report.interrupted {
        ExitCode::from(130)
    } else if report.failures > 0
        || report.established < report.target_connections
        || !report.worker_errors.is_empty()
    {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn write_report(path: &std::path::Path, report: &ConnectionsReport) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The parent's side of a run, the same for processes and tasks: ramp-up
/// with progress, hold, second sample, stop, report.
#[allow(clippy::too_many_arguments)]
async fn coordinate<T>(
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

fn apply(views: &mut [WorkerView], ev: Event) {
    match ev {
        Event::Msg(i, m) => {
            let Some(v) = views.get_mut(i) else { return };
            match m {
                WorkerMsg::Progress(c) => v.counts = c,
                WorkerMsg::Summary(s) => {
                    v.counts = s.counts;
                    if s.is_final {
                        v.last = Some(*s);
                    } else {
                        v.ramp = Some(*s);
                    }
                }
                WorkerMsg::Fatal { message } => v.fatal = Some(message),
            }
        }
        Event::Exited(i) => {
            if let Some(v) = views.get_mut(i) {
                v.exited = true;
            }
        }
    }
}

/// The ramp-up line on stderr: redrawn in place on a terminal, one line a
/// second otherwise (logs, CI).
struct Progress {
    target: u64,
    enabled: bool,
    tty: bool,
    started: Instant,
    last_line: Instant,
    drawn: bool,
}

impl Progress {
    fn new(target: u64, enabled: bool) -> Progress {
        let now = Instant::now();
        Progress {
            target,
            enabled,
            tty: std::io::stderr().is_terminal(),
            started: now,
            last_line: now,
            drawn: false,
        }
    }

    fn line(&self, views: &[WorkerView]) -> String {
        let opened: u64 = views.iter().map(|v| v.counts.opened).sum();
        let failed: u64 = views.iter().map(|v| v.counts.failed).sum();
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        format!(
            "ramp-up: {opened}/{} established, {failed} failed, {:.0} handshakes/s",
            self.target,
            opened as f64 / secs
        )
    }

    fn show(&mut self, views: &[WorkerView]) {
        if !self.enabled {
            return;
        }
        if self.tty {
            eprint!("\r{:<78}", self.line(views));
            let _ = std::io::stderr().flush();
            self.drawn = true;
        } else if self.last_line.elapsed() >= Duration::from_secs(1) {
            eprintln!("{}", self.line(views));
            self.last_line = Instant::now();
        }
    }

    fn finish(&mut self, views: &[WorkerView]) {
        if !self.enabled {
            return;
        }
        if self.tty && self.drawn {
            eprintln!("\r{:<78}", self.line(views));
        } else {
            eprintln!("{}", self.line(views));
        }
    }
}

fn thousands(n: u64) -> String {
    let digits: Vec<char> = n.to_string().chars().collect();
    let groups: Vec<String> = digits
        .rchunks(3)
        .rev()
        .map(|g| g.iter().collect())
        .collect();
    groups.join(",")
}

fn bytes_cell(b: Option<u64>) -> String {
    match b {
        Some(b) => format!("{:.1} MiB ({} B)", b as f64 / 1048576.0, thousands(b)),
        None => "n/a".into(),
    }
}

fn print_table(r: &ConnectionsReport) {
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

/// A worker process: reports on stdout, stops at a line or EOF on stdin.
fn worker_process(args: &ConnectionsArgs, index: usize, count: usize) -> ExitCode {
    let emit: Emit = Arc::new(|m| {
        if let Ok(line) = serde_json::to_string(&m) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    });
    let fatal = |message: String| {
        emit(WorkerMsg::Fatal { message });
        ExitCode::from(2)
    };
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let setup = match Setup::new(args, Some(count)) {
        Ok(s) if index < count => s,
        Ok(_) => return fatal(format!("worker index {index} out of {count}")),
        Err(e) => return fatal(format!("{e:#}")),
    };
    let plan = setup.plan(args, index);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fatal(format!("runtime: {e}")),
    };
    // A plain thread, so the runtime never waits on a blocking stdin read.
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = tx.send(());
    });
    rt.block_on(worker::work(plan, emit.clone(), async {
        let _ = rx.await;
    }));
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Top,
    }
    #[derive(clap::Subcommand)]
    enum Top {
        Bench(crate::BenchArgs),
    }

    fn parse(argv: &[String]) -> ConnectionsArgs {
        let cli =
            Cli::try_parse_from(std::iter::once("hubbub".to_owned()).chain(argv.iter().cloned()))
                .unwrap();
        let Top::Bench(b) = cli.cmd;
        match b.scenario {
            crate::Scenario::Connections(c) => c,
            other => panic!("not connections: {other:?}"),
        }
    }

    #[test]
    fn defaults_and_worker_argv_round_trip() {
        let a = parse(&["bench", "connections", "-n", "19500", "--rate", "5000"].map(String::from));
        let s = Setup::new(&a, None).unwrap();
        assert_eq!(s.workers, 3);
        assert_eq!(
            s.sources,
            ["127.0.0.1", "127.0.0.2", "127.0.0.3"].map(|x| x.parse::<IpAddr>().unwrap())
        );
        let w = parse(&a.worker_argv(2, 3, &s.sources));
        assert_eq!((w.worker_index, w.worker_count), (Some(2), Some(3)));
        let ws = Setup::new(&w, w.worker_count).unwrap();
        let plan = ws.plan(&w, 2);
        assert_eq!(plan.source, "127.0.0.3".parse::<IpAddr>().unwrap());
        assert_eq!(plan.connections, 6500);
        assert_eq!(plan.rate, Some(5000.0 / 3.0));
        assert_eq!(plan.target.request_target, "/ws");
        assert_eq!(plan.channel, "bench");
    }

    #[test]
    fn bad_options_are_refused() {
        let mut a = ConnectionsArgs::new("ws://127.0.0.1:1/ws", 10);
        a.channel = "no spaces".into();
        assert!(Setup::new(&a, None).is_err());
        let mut a = ConnectionsArgs::new("ws://127.0.0.1:1/ws", 10);
        a.source_addrs = vec!["::1".parse().unwrap()];
        assert!(Setup::new(&a, None).is_err());
    }

    #[test]
    fn dates() {
        assert_eq!(utc_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(thousands(19500), "19,500");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
