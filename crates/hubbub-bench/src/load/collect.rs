//! The end of a run: stopping the workers, waiting for their final reports
//! and merging their histograms per window.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::time::Instant;

use super::coordinate::Run;
use super::parent::{apply, Link};
use super::payload::{hist_from_b64, new_hist};
use super::worker::Ctl;
use crate::nodes::ServerProcs;
use crate::workers::HostInfo;

/// Per window tag: deliveries received and their latency histogram.
pub(super) type PerWindow = BTreeMap<u32, (u64, Histogram<u64>)>;

/// What the workers said at the end of a run.
pub(super) struct Finished {
    pub(super) subscribed: u64,
    pub(super) subscribe_failures: BTreeMap<String, u64>,
    pub(super) dropped: u64,
    pub(super) unparsed: u64,
    pub(super) per_window: PerWindow,
    pub(super) worker_errors: Vec<String>,
    /// The processes whose CPU was measured, and why some were not.
    pub(super) servers: ServerProcs,
    pub(super) host: HostInfo,
}

/// Adds up the workers' `(tag, received, histogram in base64)` lists;
/// histograms that do not decode go to `errors`.
pub(super) fn merge_windows<'a>(
    lists: impl Iterator<Item = &'a Vec<(u32, u64, String)>>,
    errors: &mut Vec<String>,
) -> PerWindow {
    let mut per_window = PerWindow::new();
    for list in lists {
        for (w, n, h) in list {
            let e = per_window.entry(*w).or_insert_with(|| (0, new_hist()));
            e.0 += n;
            match hist_from_b64(h) {
                Ok(h) => {
                    let _ = e.1.add(&h);
                }
                Err(err) => errors.push(err.to_string()),
            }
        }
    }
    per_window
}

impl Run {
    /// Stops the workers, waits for their final reports (40 s at most, then
    /// kills what is left) and merges them.
    pub(super) async fn finish(mut self) -> Finished {
        self.say("closing".into());
        self.end_line();
        for l in &mut self.links {
            l.send(Ctl::Stop).await;
        }
        let deadline = Instant::now() + Duration::from_secs(40);
        while !self.views.iter().all(|v| v.exited) {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(ev)) => apply(&mut self.views, ev),
                _ => break,
            }
        }
        let mut worker_errors = Vec::new();
        for (i, l) in self.links.iter_mut().enumerate() {
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
        self.interrupt.abort();

        let mut subscribe_failures = BTreeMap::new();
        let (mut subscribed, mut dropped, mut unparsed) = (0, 0, 0);
        let mut finals = Vec::new();
        for (i, v) in self.views.iter().enumerate() {
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
            finals.push(&f.windows);
        }
        let per_window = merge_windows(finals.into_iter(), &mut worker_errors);
        Finished {
            subscribed,
            subscribe_failures,
            dropped,
            unparsed,
            per_window,
            worker_errors,
            servers: self.servers.clone(),
            host: self.host.clone(),
        }
    }
}
