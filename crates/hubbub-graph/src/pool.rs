//! The threads jobs run on: a fixed pool of its own (not tokio's blocking
//! pool, whose threads serve everyone), each at a lower scheduling priority
//! (`apps.algorithms.nice`, Linux), so that a busy job yields most of the
//! CPU to the hub's fan-out when both want it, and takes it all when the
//! hub is idle. Jobs beyond the threads wait in order. Graphs are built
//! (and their `graph` events encoded) on a second pool of the same kind, so
//! that a build never waits for a running job, nor competes with fan-out.

use std::sync::mpsc;
use std::sync::Arc;

use parking_lot::Mutex;

type Work = Box<dyn FnOnce() + Send>;

/// A fixed set of job threads.
pub(crate) struct Pool {
    tx: Mutex<mpsc::Sender<Work>>,
}

impl Pool {
    /// `threads` threads named `{name}-{i}` at niceness `nice` (Linux;
    /// elsewhere, or when the system refuses, at the process's own
    /// priority).
    pub(crate) fn new(name: &str, threads: usize, nice: i32) -> Pool {
        let (tx, rx) = mpsc::channel::<Work>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    lower_priority(nice);
                    loop {
                        // The lock is held only while waiting for work.
                        let work = rx.lock().recv();
                        match work {
                            Ok(w) => w(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "a job thread could not be started");
            }
        }
        Pool { tx: Mutex::new(tx) }
    }

    /// Runs `f` on a job thread; its result comes back through the receiver
    /// (closed without a value if `f` panicked).
    pub(crate) fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> tokio::sync::oneshot::Receiver<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let work: Work = Box::new(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
            if let Ok(v) = r {
                let _ = tx.send(v);
            }
        });
        let _ = self.tx.lock().send(work);
        rx
    }
}

#[cfg(target_os = "linux")]
fn lower_priority(nice: i32) {
    if nice == 0 {
        return;
    }
    // On Linux a thread id names one thread to `setpriority`.
    let tid = rustix::thread::gettid();
    if let Err(e) = rustix::process::setpriority_process(Some(tid), nice) {
        tracing::warn!(error = %e, nice, "job threads keep the process's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority(_nice: i32) {}
