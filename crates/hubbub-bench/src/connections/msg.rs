//! What a worker tells its parent: one JSON object per line on the worker's
//! stdout (or through a channel when the worker runs in-process).
//!
//! Lines rather than one final document, so the parent can show progress
//! while connections ramp up and still has the last summary of a worker
//! that was interrupted or died.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hist::Histogram;

/// One line from a worker.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum WorkerMsg {
    /// Counters, sent periodically while ramping and on any change later.
    Progress(Counts),
    /// Sent when every handshake of the worker has finished (`final` false),
    /// and again after it closed its connections (`final` true).
    Summary(Box<WorkerSummary>),
    /// The worker could not run at all (bad arguments, no runtime).
    Fatal {
        /// Why.
        message: String,
    },
}

/// Running counters of one worker.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Handshakes completed (101, `connected`, `subscribed`).
    pub opened: u64,
    /// Handshakes that failed.
    pub failed: u64,
    /// Connections open right now.
    pub open: u64,
    /// Connections the server (or the network) ended while held.
    pub dropped: u64,
}

/// Everything a worker measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct WorkerSummary {
    /// Which worker.
    pub index: usize,
    /// The source address its sockets were bound to.
    pub source: String,
    /// Its share of the connections.
    pub target: u64,
    /// Counters at the time of the summary.
    pub counts: Counts,
    /// Failure reason to count.
    pub failures: BTreeMap<String, u64>,
    /// Connect to `subscribed`, per established connection.
    pub handshake: Histogram,
    /// Connect to the `101` response, per upgraded connection.
    pub upgrade: Histogram,
    /// When the first connect started, µs since the Unix epoch.
    pub ramp_start_us: u64,
    /// When the last handshake finished, µs since the Unix epoch (absent
    /// when the ramp was cut short).
    pub ramp_end_us: Option<u64>,
    /// Connections closed cleanly at the end.
    pub closed: u64,
    /// Whether this is the last summary (after closing).
    #[serde(rename = "final")]
    pub is_final: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_survive_the_wire() {
        let mut s = WorkerSummary::default();
        s.handshake.record(std::time::Duration::from_micros(1234));
        s.failures.insert("connect: refused".into(), 2);
        s.is_final = true;
        let line = serde_json::to_string(&WorkerMsg::Summary(Box::new(s.clone()))).unwrap();
        match serde_json::from_str::<WorkerMsg>(&line) {
            Ok(WorkerMsg::Summary(back)) => {
                assert_eq!(back.handshake, s.handshake);
                assert!(back.is_final);
            }
            other => panic!("{other:?} from {line}"),
        }
    }
}
