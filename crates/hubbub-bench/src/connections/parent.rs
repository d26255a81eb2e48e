//! What the parent knows of its workers: how it reaches each one (a process
//! or a task), what each last reported, and the ramp-up progress line.

use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::msg::{Counts, WorkerMsg, WorkerSummary};

/// What a worker sends the coordinator.
pub(super) type Event = crate::workers::Event<WorkerMsg>;

/// How the coordinator stops and waits for one worker.
pub(super) enum Link {
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
    pub(super) async fn stop(&mut self) {
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
    pub(super) async fn reap(&mut self, within: Duration) -> Option<String> {
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
pub(super) struct WorkerView {
    pub(super) counts: Counts,
    pub(super) ramp: Option<WorkerSummary>,
    pub(super) last: Option<WorkerSummary>,
    pub(super) exited: bool,
    pub(super) fatal: Option<String>,
}

impl WorkerView {
    pub(super) fn ramp_over(&self) -> bool {
        self.ramp.is_some() || self.exited || self.fatal.is_some()
    }

    pub(super) fn best(&self) -> Option<&WorkerSummary> {
        self.last.as_ref().or(self.ramp.as_ref())
    }
}

pub(super) fn apply(views: &mut [WorkerView], ev: Event) {
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
pub(super) struct Progress {
    pub(super) target: u64,
    pub(super) enabled: bool,
    pub(super) tty: bool,
    pub(super) started: Instant,
    pub(super) last_line: Instant,
    pub(super) drawn: bool,
}

impl Progress {
    pub(super) fn new(target: u64, enabled: bool) -> Progress {
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

    pub(super) fn line(&self, views: &[WorkerView]) -> String {
        let opened: u64 = views.iter().map(|v| v.counts.opened).sum();
        let failed: u64 = views.iter().map(|v| v.counts.failed).sum();
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        format!(
            "ramp-up: {opened}/{} established, {failed} failed, {:.0} handshakes/s",
            self.target,
            opened as f64 / secs
        )
    }

    pub(super) fn show(&mut self, views: &[WorkerView]) {
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

    pub(super) fn finish(&mut self, views: &[WorkerView]) {
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
