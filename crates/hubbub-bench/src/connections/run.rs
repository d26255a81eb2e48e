//! The entry points: in-process (tests), the CLI parent that starts worker
//! processes, and a worker process itself.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context as _};
use tokio::sync::{mpsc, oneshot};

use super::coordinate::coordinate;
use super::msg::WorkerMsg;
use super::parent::{Event, Link};
use super::report::{print_table, write_report, ConnectionsReport};
use super::sample::sample_before;
use super::worker::{self, Emit, Plan};
use super::{ConnectionsArgs, Setup};
use crate::workers::{spawn_process, stdout_emit, stop_on_stdin};

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

pub(super) async fn parent(args: ConnectionsArgs) -> anyhow::Result<ExitCode> {
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
        let (child, stdin) = spawn_process(
            &exe,
            args.worker_argv(i, setup.workers, &setup.sources),
            i,
            tx.clone(),
            // Counted as the worker failing, so the parent never waits for
            // a summary it could not read.
            |e, line| WorkerMsg::Fatal {
                message: format!("unreadable output ({e}): {line:.200}"),
            },
        )
        .with_context(|| format!("starting worker {i} ({})", exe.display()))?;
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

/// A worker process: reports on stdout, stops at a line or EOF on stdin.
pub(super) fn worker_process(args: &ConnectionsArgs, index: usize, count: usize) -> ExitCode {
    let emit: Emit = stdout_emit();
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
    let rx = stop_on_stdin();
    rt.block_on(worker::work(plan, emit.clone(), async {
        let _ = rx.await;
    }));
    ExitCode::SUCCESS
}
