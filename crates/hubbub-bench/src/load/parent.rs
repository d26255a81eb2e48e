//! The parent: starts the workers (processes, or threads in-process) and
//! follows what they report.

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::io::AsyncWriteExt as _;
use tokio::sync::mpsc;

use super::coordinate::coordinate;
use super::report::{exit_status, print_table, write_report, LoadReport};
use super::setup::Setup;
use super::worker::{run_worker, Ctl, Emit, WFinal, WMsg, WSnapshot};
use super::{Kind, LoadArgs};
use crate::workers::{lines_on_stdin, spawn_process, stdout_emit, Event};

pub(super) enum Link {
    Process {
        child: Box<tokio::process::Child>,
        stdin: Option<tokio::process::ChildStdin>,
    },
    Thread {
        ctl: Option<mpsc::UnboundedSender<Ctl>>,
        join: Option<std::thread::JoinHandle<()>>,
    },
}

impl Link {
    /// Tells the worker `c`; [`Ctl::Stop`] also closes the control channel,
    /// so a worker that missed the line still sees EOF.
    pub(super) async fn send(&mut self, c: Ctl) {
        match self {
            Link::Process { stdin, .. } => {
                let line: &[u8] = match c {
                    Ctl::Snapshot => Ctl::SNAPSHOT_LINE,
                    Ctl::Stop => b"stop\n",
                };
                if let Some(s) = stdin.as_mut() {
                    let _ = s.write_all(line).await;
                    let _ = s.flush().await;
                }
                if c == Ctl::Stop {
                    stdin.take();
                }
            }
            Link::Thread { ctl, .. } => {
                if let Some(t) = ctl.as_ref() {
                    let _ = t.send(c);
                }
                if c == Ctl::Stop {
                    ctl.take();
                }
            }
        }
    }
}

#[derive(Default)]
pub(super) struct View {
    pub(super) opened: u64,
    pub(super) failed: u64,
    pub(super) received: u64,
    pub(super) ready: bool,
    pub(super) exited: bool,
    pub(super) last: Option<Box<WFinal>>,
    /// The latest [`WMsg::Snapshot`], and how many arrived so far.
    pub(super) snapshot: Option<Box<WSnapshot>>,
    pub(super) snapshots: u64,
    pub(super) fatal: Option<String>,
}

/// What the parent hears from a worker.
pub(super) type Ev = Event<WMsg>;

pub(super) fn apply(views: &mut [View], ev: Ev) {
    match ev {
        Ev::Msg(i, m) => {
            let Some(v) = views.get_mut(i) else { return };
            match m {
                WMsg::Progress {
                    opened,
                    failed,
                    received,
                } => {
                    v.opened = opened;
                    v.failed = failed;
                    v.received = received;
                }
                WMsg::Ready { opened, failed } => {
                    v.opened = opened;
                    v.failed = failed;
                    v.ready = true;
                }
                WMsg::Final(f) => {
                    v.opened = f.opened;
                    v.failed = f.failed;
                    v.last = Some(f);
                }
                WMsg::Snapshot(snap) => {
                    v.snapshot = Some(snap);
                    v.snapshots += 1;
                }
                WMsg::Fatal { message } => v.fatal = Some(message),
            }
        }
        Ev::Exited(i) => {
            if let Some(v) = views.get_mut(i) {
                v.exited = true;
            }
        }
    }
}

pub(super) fn worker_argv(kind: Kind, a: &LoadArgs, s: &Setup, index: usize) -> Vec<String> {
    let sources: Vec<String> = s.sources.iter().map(IpAddr::to_string).collect();
    let mut v: Vec<String> = vec!["bench".into(), kind.name().into()];
    // One flag per URL: a URL may hold a comma, so they are not joined.
    v.extend(s.urls.iter().map(|u| format!("--url={u}")));
    v.extend([
        format!("--subscribers={}", s.subscribers),
        format!("--channels={}", s.channels),
        format!("--channel={}", a.channel),
        format!("--protocol={}", a.protocol.name()),
        format!("--source-addrs={}", sources.join(",")),
        format!("--max-in-flight={}", a.max_in_flight),
        format!("--handshake-timeout={}", a.handshake_timeout),
        format!("--worker-index={index}"),
        format!("--worker-count={}", s.workers),
    ]);
    v
}

/// Starts the workers of `setup` as threads of this process (tests).
pub(super) fn thread_links(
    setup: &Setup,
    args: &LoadArgs,
) -> (Vec<Link>, mpsc::UnboundedReceiver<Ev>) {
    let (tx, rx) = mpsc::unbounded_channel();
    if setup.subscribers == 0 {
        return (Vec::new(), rx);
    }
    let links = (0..setup.workers)
        .map(|i| {
            let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
            let msgs = tx.clone();
            let emit: Emit = Arc::new(move |m| {
                // Through JSON, as from a process, so the wire format is tested.
                let m = serde_json::to_string(&m)
                    .and_then(|l| serde_json::from_str(&l))
                    .unwrap_or_else(|e| WMsg::Fatal {
                        message: format!("unreadable: {e}"),
                    });
                let _ = msgs.send(Ev::Msg(i, m));
            });
            let (s, a, exited) = (setup.clone(), args.clone(), tx.clone());
            let join = std::thread::spawn(move || {
                run_worker(s, a, i, emit, ctl_rx);
                let _ = exited.send(Ev::Exited(i));
            });
            Link::Thread {
                ctl: Some(ctl_tx),
                join: Some(join),
            }
        })
        .collect();
    (links, rx)
}

/// Starts the workers of `setup` as processes: this executable re-run as
/// `bench <kind> ... --worker-index I`.
pub(super) fn process_links(
    kind: Kind,
    setup: &Setup,
    args: &LoadArgs,
) -> anyhow::Result<(Vec<Link>, mpsc::UnboundedReceiver<Ev>)> {
    let (tx, rx) = mpsc::unbounded_channel();
    let mut links = Vec::new();
    if setup.subscribers > 0 {
        let exe = std::env::current_exe().context("finding the bench's own executable")?;
        for i in 0..setup.workers {
            let (child, stdin) = spawn_process(
                &exe,
                worker_argv(kind, args, setup, i),
                i,
                tx.clone(),
                |e, l| WMsg::Fatal {
                    message: format!("unreadable line ({e}): {l}"),
                },
            )
            .with_context(|| format!("starting worker {i}"))?;
            links.push(Link::Process {
                child: Box::new(child),
                stdin,
            });
        }
    }
    Ok((links, rx))
}

/// The parent's runtime: two threads, like the machine the figures come from.
pub(super) fn parent_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
}

/// A worker process: runs worker `index` of the scenario its flags
/// describe, reporting on stdout and taking commands from stdin.
pub(super) fn run_worker_process(setup: Setup, args: LoadArgs, index: usize) -> ExitCode {
    let emit: Emit = stdout_emit();
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    run_worker(setup, args, index, emit, lines_on_stdin(Ctl::parse));
    ExitCode::SUCCESS
}

/// Runs a publish scenario with its workers as threads of this process
/// instead of processes. Exists for tests; returns the same report.
pub async fn run_in_process(kind: Kind, args: LoadArgs) -> anyhow::Result<LoadReport> {
    let mut args = args;
    args.workers = Some(args.workers.unwrap_or(1));
    let setup = Setup::new(kind, &args)?;
    let (links, rx) = thread_links(&setup, &args);
    let report = coordinate(setup, args.clone(), links, rx, false).await;
    if let Some(p) = &args.out {
        write_report(p, &report)?;
    }
    Ok(report)
}

/// The CLI entry of the four scenarios.
pub(crate) fn run_cli(kind: Kind, args: LoadArgs) -> ExitCode {
    let setup = match Setup::new(kind, &args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hubbub bench {}: {e:#}", kind.name());
            return ExitCode::from(2);
        }
    };
    if let Some(index) = args.worker_index {
        return run_worker_process(setup, args, index);
    }
    let rt = match parent_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hubbub bench: runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let out = args.out.clone();
    let result = rt.block_on(async move {
        let (links, rx) = process_links(kind, &setup, &args)?;
        anyhow::Ok(coordinate(setup, args, links, rx, true).await)
    });
    match result {
        Ok(report) => {
            print_table(&report);
            if let Some(p) = &out {
                if let Err(e) = write_report(p, &report) {
                    eprintln!("hubbub bench: {e:#}");
                    return ExitCode::from(2);
                }
            }
            exit_status(report.interrupted, report.clean())
        }
        Err(e) => {
            eprintln!("hubbub bench: {e:#}");
            ExitCode::from(2)
        }
    }
}
