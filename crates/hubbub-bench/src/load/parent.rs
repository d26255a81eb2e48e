//! The parent: starts the workers (processes, or threads in-process) and
//! follows what they report.

use std::net::IpAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tokio::sync::{mpsc, oneshot};

use super::coordinate::coordinate;
use super::report::{print_table, write_report, LoadReport};
use super::setup::Setup;
use super::worker::{run_worker, Emit, WFinal, WMsg};
use super::{Kind, LoadArgs, Protocol};
use crate::workers::{spawn_process, stdout_emit, stop_on_stdin, Event};

pub(super) enum Link {
    Process {
        child: Box<tokio::process::Child>,
        stdin: Option<tokio::process::ChildStdin>,
    },
    Thread {
        stop: Option<oneshot::Sender<()>>,
        join: Option<std::thread::JoinHandle<()>>,
    },
}

#[derive(Default)]
pub(super) struct View {
    pub(super) opened: u64,
    pub(super) failed: u64,
    pub(super) received: u64,
    pub(super) ready: bool,
    pub(super) exited: bool,
    pub(super) last: Option<Box<WFinal>>,
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
    vec![
        "bench".into(),
        kind.name().into(),
        format!("--url={}", a.url),
        format!("--subscribers={}", s.subscribers),
        format!("--channels={}", s.channels),
        format!("--channel={}", a.channel),
        format!(
            "--protocol={}",
            match a.protocol {
                Protocol::Hubbub => "hubbub",
                Protocol::Socketio => "socketio",
                Protocol::Pusher => "pusher",
            }
        ),
        format!("--source-addrs={}", sources.join(",")),
        format!("--max-in-flight={}", a.max_in_flight),
        format!("--handshake-timeout={}", a.handshake_timeout),
        format!("--worker-index={index}"),
        format!("--worker-count={}", s.workers),
    ]
}

/// Runs a publish scenario with its workers as threads of this process
/// instead of processes. Exists for tests; returns the same report.
pub async fn run_in_process(kind: Kind, args: LoadArgs) -> anyhow::Result<LoadReport> {
    let mut args = args;
    args.workers = Some(args.workers.unwrap_or(1));
    let setup = Setup::new(kind, &args)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let links = if setup.subscribers == 0 {
        Vec::new()
    } else {
        (0..setup.workers)
            .map(|i| {
                let (stop_tx, stop_rx) = oneshot::channel();
                let msgs = tx.clone();
                let emit: Emit = Arc::new(move |m| {
                    let m = serde_json::to_string(&m)
                        .and_then(|l| serde_json::from_str(&l))
                        .unwrap_or_else(|e| WMsg::Fatal {
                            message: format!("unreadable: {e}"),
                        });
                    let _ = msgs.send(Ev::Msg(i, m));
                });
                let (s, a, exited) = (setup.clone(), args.clone(), tx.clone());
                let join = std::thread::spawn(move || {
                    run_worker(s, a, i, emit, stop_rx);
                    let _ = exited.send(Ev::Exited(i));
                });
                Link::Thread {
                    stop: Some(stop_tx),
                    join: Some(join),
                }
            })
            .collect()
    };
    drop(tx);
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
        let emit: Emit = stdout_emit();
        let _ = rlimit::increase_nofile_limit(u64::MAX);
        let rx = stop_on_stdin();
        run_worker(setup, args, index, emit, rx);
        return ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hubbub bench: runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let out = args.out.clone();
    let result = rt.block_on(async move {
        let exe = std::env::current_exe().context("finding the bench's own executable")?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut links = Vec::new();
        if setup.subscribers > 0 {
            for i in 0..setup.workers {
                let (child, stdin) = spawn_process(
                    &exe,
                    worker_argv(kind, &args, &setup, i),
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
        drop(tx);
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
            if report.interrupted {
                ExitCode::from(130)
            } else if report.clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("hubbub bench: {e:#}");
            ExitCode::from(2)
        }
    }
}
