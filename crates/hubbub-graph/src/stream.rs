//! What a running job tells its watchers: the [`Observer`] that turns an
//! algorithm's steps into events, paced and capped, on the job's own
//! thread (so encoding costs the job, not the hub's async workers).
//!
//! - Every activation and traversal is an event of its own, unless the job
//!   set `max_events_per_second`. Then each tick (100 ms) may carry a
//!   tenth of that rate as events of their own; what is over goes into one
//!   `node_activation_batch` event at the tick's end: the latest level per
//!   node as `[node_id, level]` pairs, and how many traversals were folded
//!   in. The stream is then about
//!   `max_events_per_second` plus the batches and progress (at most 10 of
//!   each per second), however large the graph.
//! - `algorithm_progress` at least every `progress_interval_ms` and at
//!   every 1% of the work.
//! - `step_delay_ms` sleeps the job's thread after each step.
//! - A stop request or the wall-clock limit ends the run at the next step.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hubbub_protocol::algorithm::{
    Algorithm, AlgorithmProgress, EdgeTraversal, NodeActivation, PathDiscovered,
};
use hubbub_protocol::graph::NodeId;
use hubbub_protocol::JsonData;
use hubbub_server::CheckedData;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::algo::{Flow, Observer, Progress};
use crate::graph::Graph;

/// How long one tick of the event cap lasts.
const TICK: Duration = Duration::from_millis(100);

/// Calls between two readings of the clock: a step can take tens of
/// nanoseconds, less than reading the clock. Ticks, progress and the time
/// limit are seen that much later (microseconds).
const CLOCK_EVERY: u32 = 256;

/// Where an event goes besides the job's channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Also {
    /// Nowhere else, and not kept.
    None,
    /// Nowhere else, and kept on the job's channel (`graph`).
    Kept,
    /// `node_activations`.
    Activations,
    /// `all_algorithms`.
    AllAlgorithms,
}

/// One event for the job's publisher task, already encoded and checked
/// (on the job's thread: the publisher only hands it to the hub).
pub(crate) struct Out {
    pub event_type: &'static str,
    pub data: CheckedData,
    pub also: Also,
}

/// `node_activation_batch`: activations over the cap within one tick,
/// the latest level per node (in node order), and the traversals folded in
/// with them.
#[derive(Serialize)]
struct ActivationBatch<'a> {
    job_id: &'a str,
    algorithm: &'a Algorithm,
    timestamp: u64,
    /// `[node_id, activation_level]` pairs: a batch can hold every node
    /// of the graph, and pairs are a third of the bytes of objects.
    activations: Vec<(&'a NodeId, f64)>,
    edges_traversed: u64,
}

/// Why a run ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Halt {
    Stopped,
    OutOfTime,
    /// Nobody takes the events any more (the node is shutting down).
    Gone,
}

/// Counts for `statistics`.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub nodes: u64,
    pub edges: u64,
    pub emitted: u64,
    pub coalesced: u64,
}

/// The pace of one run.
pub(crate) struct Pace {
    pub max_events_per_second: Option<u64>,
    pub step_delay: Option<Duration>,
    pub progress_interval: Duration,
    pub deadline: Instant,
}

/// The observer of one run.
pub(crate) struct Streamer<'g> {
    graph: &'g Graph,
    job_id: String,
    algorithm: Algorithm,
    tx: mpsc::Sender<Out>,
    stop: Arc<AtomicBool>,
    pace: Pace,
    /// Events of their own per tick under the cap.
    budget: Option<u64>,
    /// The clock as last read (see `CLOCK_EVERY`).
    now: Instant,
    calls: u32,
    tick_started: Instant,
    sent_in_tick: u64,
    /// Activations held this tick: the latest level per node (NaN: none),
    /// made on the first one held, and which nodes have one.
    held: Vec<f64>,
    held_nodes: Vec<u32>,
    held_edges: u64,
    last_progress: Instant,
    last_fraction: f64,
    /// The step last paced: an algorithm may check in several times within
    /// one step (PageRank inside an iteration); only a new step pauses.
    last_step: u64,
    pub counts: Counts,
    pub halt: Option<Halt>,
}

impl<'g> Streamer<'g> {
    pub(crate) fn new(
        graph: &'g Graph,
        job_id: String,
        algorithm: Algorithm,
        tx: mpsc::Sender<Out>,
        stop: Arc<AtomicBool>,
        pace: Pace,
    ) -> Self {
        let now = Instant::now();
        Streamer {
            budget: pace
                .max_events_per_second
                .map(|r| (r / (1000 / TICK.as_millis() as u64)).max(1)),
            graph,
            job_id,
            algorithm,
            tx,
            stop,
            pace,
            now,
            calls: 0,
            tick_started: now,
            sent_in_tick: 0,
            held: Vec::new(),
            held_nodes: Vec::new(),
            held_edges: 0,
            last_progress: now,
            last_fraction: 0.0,
            last_step: 0,
            counts: Counts::default(),
            halt: None,
        }
    }

    /// Encodes and hands over one event (nothing once nobody takes them).
    pub(crate) fn emit<T: Serialize>(&mut self, event_type: &'static str, data: &T, also: Also) {
        if self.halt != Some(Halt::Gone) {
            self.send(event_type, JsonData::from_serialize(data), also);
        }
    }

    fn send(&mut self, event_type: &'static str, data: JsonData, also: Also) {
        match CheckedData::new(data) {
            Ok(data) => self.send_checked(event_type, data, also),
            // The job's own types always pass; nothing to send if not.
            Err(e) => {
                tracing::error!(error = %e, event_type, "a job's event failed the data check")
            }
        }
    }

    /// Hands over an event encoded and checked beforehand (the `graph`
    /// event, made when the graph was built).
    pub(crate) fn send_checked(&mut self, event_type: &'static str, data: CheckedData, also: Also) {
        if self.halt == Some(Halt::Gone) {
            return;
        }
        let out = Out {
            event_type,
            data,
            also,
        };
        if self.tx.blocking_send(out).is_err() {
            self.halt = Some(Halt::Gone);
        } else {
            self.counts.emitted += 1;
        }
    }

    /// Reads the clock once `CLOCK_EVERY` calls went by (at every step
    /// when steps are paced: the pause costs more); true when it was read.
    fn clock(&mut self) -> bool {
        self.calls += 1;
        if self.calls < CLOCK_EVERY && self.pace.step_delay.is_none() {
            return false;
        }
        self.calls = 0;
        self.now = Instant::now();
        true
    }

    /// Whether the cap lets one more event of its own out in this tick.
    /// Ticks end in `step`, which reads the clock once `CLOCK_EVERY` calls
    /// (steps, activations, traversals) went by: a call held costs a count,
    /// not a clock.
    fn admit(&mut self) -> bool {
        let Some(budget) = self.budget else {
            return true;
        };
        self.calls += 1;
        if self.sent_in_tick < budget {
            self.sent_in_tick += 1;
            true
        } else {
            false
        }
    }

    /// Holds `level` as `node`'s latest in this tick.
    fn hold(&mut self, node: u32, level: f64) {
        if self.held.is_empty() {
            self.held = vec![f64::NAN; self.graph.node_count()];
        }
        let slot = &mut self.held[node as usize];
        if slot.is_nan() {
            self.held_nodes.push(node);
        }
        *slot = level;
        self.counts.coalesced += 1;
    }

    /// Sends what the tick held as one batch and starts the next tick.
    pub(crate) fn flush(&mut self) {
        self.now = Instant::now();
        self.tick_started = self.now;
        self.sent_in_tick = 0;
        if self.held_nodes.is_empty() && self.held_edges == 0 {
            return;
        }
        let graph = self.graph;
        let mut nodes = std::mem::take(&mut self.held_nodes);
        let mut activations = Vec::with_capacity(nodes.len());
        if nodes.len() >= self.held.len() / 16 {
            // Many held: one pass over the levels in node order is cheaper
            // than sorting the nodes.
            for (n, slot) in self.held.iter_mut().enumerate() {
                if !slot.is_nan() {
                    activations.push((graph.id(n as u32), *slot));
                    *slot = f64::NAN;
                }
            }
            nodes.clear();
        } else {
            nodes.sort_unstable();
            for n in nodes.drain(..) {
                let slot = &mut self.held[n as usize];
                activations.push((graph.id(n), *slot));
                *slot = f64::NAN;
            }
        }
        self.held_nodes = nodes;
        let batch = ActivationBatch {
            job_id: &self.job_id,
            algorithm: &self.algorithm,
            timestamp: hubbub_server::now_ms(),
            activations,
            edges_traversed: std::mem::take(&mut self.held_edges),
        };
        let data = JsonData::from_serialize(&batch);
        drop(batch);
        self.send("node_activation_batch", data, Also::Activations);
    }

    /// The progress event at `fraction` (the final one at 1.0).
    pub(crate) fn progress_event(
        &mut self,
        fraction: f64,
        step: u64,
        intermediate: Option<serde_json::Value>,
    ) {
        let p = AlgorithmProgress {
            job_id: self.job_id.clone(),
            progress: fraction.clamp(self.last_fraction, 1.0),
            current_step: step,
            nodes_processed: self.counts.nodes,
            edges_processed: self.counts.edges,
            intermediate_results: intermediate,
        };
        self.last_fraction = p.progress;
        self.last_progress = self.now;
        self.emit("algorithm_progress", &p, Also::AllAlgorithms);
    }

    /// The fraction last reported.
    pub(crate) fn reported(&self) -> f64 {
        self.last_fraction
    }
}

impl Observer for Streamer<'_> {
    fn activate(&mut self, node: u32, level: f64) {
        if self.admit() {
            let a = NodeActivation {
                node_id: self.graph.id(node).clone(),
                activation_level: level,
                timestamp: hubbub_server::now_ms(),
                algorithm: self.algorithm.clone(),
            };
            self.emit("node_activation", &a, Also::Activations);
        } else {
            self.hold(node, level);
        }
    }

    fn traverse(&mut self, from: u32, to: u32, weight: f64) {
        if self.admit() {
            let e = EdgeTraversal {
                from_node: self.graph.id(from).clone(),
                to_node: self.graph.id(to).clone(),
                weight,
                timestamp: hubbub_server::now_ms(),
                algorithm: self.algorithm.clone(),
            };
            self.emit("edge_traversal", &e, Also::None);
        } else {
            self.held_edges += 1;
            self.counts.coalesced += 1;
        }
    }

    fn path(&mut self, path: &[u32], cost: f64, optimal: bool) {
        let p = PathDiscovered {
            job_id: self.job_id.clone(),
            path: path.iter().map(|n| self.graph.id(*n).clone()).collect(),
            cost,
            is_optimal: optimal,
        };
        self.emit("path_discovered", &p, Also::None);
    }

    fn step(&mut self, progress: &Progress<'_>) -> Flow {
        self.counts.nodes = progress.nodes;
        self.counts.edges = progress.edges;
        let read = self.clock();
        if self.stop.load(Relaxed) {
            self.halt.get_or_insert(Halt::Stopped);
        } else if read && self.now >= self.pace.deadline {
            self.halt.get_or_insert(Halt::OutOfTime);
        }
        if self.halt.is_some() {
            return Flow::Stop;
        }
        if read && self.budget.is_some() && self.now.duration_since(self.tick_started) >= TICK {
            self.flush();
        }
        let fraction = progress.fraction.clamp(0.0, 1.0);
        if fraction >= self.last_fraction + 0.01
            || (read && self.now.duration_since(self.last_progress) >= self.pace.progress_interval)
        {
            let intermediate = progress.intermediate.map(|f| f());
            self.progress_event(fraction, progress.step, intermediate);
        }
        if let Some(d) = self.pace.step_delay {
            if progress.step > self.last_step {
                self.last_step = progress.step;
                std::thread::sleep(d);
            }
        }
        if self.halt.is_some() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
}
