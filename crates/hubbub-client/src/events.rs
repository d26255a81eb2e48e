//! What the client tells the application: connection state changes, and
//! per subscription the events with recovery outcomes and gaps.

use std::time::Duration;

use hubbub_protocol::algorithm::{
    AlgorithmComplete, AlgorithmFailed, AlgorithmProgress, AlgorithmStopped, EdgeTraversal, Graph,
    NodeActivation, PathDiscovered,
};
use hubbub_protocol::payload::EventPayload;
pub use hubbub_protocol::{EventMessage, StreamPosition};

/// The connection's state machine, as events (PROTOCOL.md section 9 for
/// the codes). Read them from [`crate::Client::events`].
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// A connection attempt starts (`attempt` counts from 1 since the last
    /// successful connection).
    Connecting {
        /// Attempt number.
        attempt: u32,
    },
    /// The hub sent `connected`.
    Connected {
        /// This connection's id.
        connection_id: String,
        /// The authenticated user, if any.
        user_id: Option<String>,
    },
    /// The connection ended (or an attempt failed).
    Disconnected {
        /// The close code, when a close frame came.
        code: Option<u16>,
        /// The reason (from `disconnect`, the close frame, or the error).
        reason: String,
    },
    /// The next attempt starts after `delay`.
    Reconnecting {
        /// The chosen delay.
        delay: Duration,
        /// The attempt it precedes.
        attempt: u32,
    },
    /// The client will not connect again.
    Closed {
        /// Why.
        reason: String,
    },
    /// An `error` that answered no command of this client.
    Error {
        /// The error code.
        code: hubbub_protocol::ErrorCode,
        /// Its text.
        message: String,
    },
}

/// Why a subscription did not get every offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapReason {
    /// Resubscribing with `since` could not recover (new epoch, history
    /// too short): reload state, e.g. with [`crate::Client::history`].
    NotRecovered,
    /// The application read too slowly and events were dropped here.
    Overflow,
    /// Offsets jumped with no explanation (a room rejoined, a hub bug).
    Skipped,
}

/// A stretch of a channel the application did not get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// Why.
    pub reason: GapReason,
    /// The last position delivered before the gap, if any.
    pub last_seen: Option<StreamPosition>,
    /// Where delivery resumes: the next event has an offset after this one
    /// (`None` when unknown).
    pub resume_after: Option<StreamPosition>,
}

/// One item of a [`crate::Subscription`].
#[derive(Debug, Clone, PartialEq)]
pub enum SubEvent {
    /// An event of the channel; each offset once, in increasing order.
    Event(EventMessage),
    /// After a reconnect the channel was resubscribed with `since` and
    /// everything missed is being delivered (`missed` events follow).
    Recovered {
        /// How many missed events follow.
        missed: u64,
    },
    /// Events the application will not get (see [`GapReason`]).
    Gap(Gap),
    /// The hub ended the subscription (the token no longer allows it, the
    /// room was deleted); no more items follow.
    Unsubscribed,
}

/// One item of a graph job's stream (PROTOCOL.md section 7), typed.
#[derive(Debug, Clone, PartialEq)]
pub enum JobEvent {
    /// The graph, first.
    Graph(Graph),
    /// Progress.
    Progress(AlgorithmProgress),
    /// A node touched.
    Activation(NodeActivation),
    /// An edge followed.
    Traversal(EdgeTraversal),
    /// A path found.
    Path(PathDiscovered),
    /// Terminal: finished with a result.
    Complete(AlgorithmComplete),
    /// Terminal: stopped.
    Stopped(AlgorithmStopped),
    /// Terminal: failed.
    Failed(AlgorithmFailed),
    /// An event type this version does not know, or whose data did not fit.
    Other(EventMessage),
    /// A recovery outcome or gap of the job's channel.
    Stream(SubEvent),
}

impl JobEvent {
    /// Whether this is the job's last event.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            JobEvent::Complete(_) | JobEvent::Stopped(_) | JobEvent::Failed(_)
        )
    }

    /// Types a job channel's item.
    pub fn from_sub(item: SubEvent) -> JobEvent {
        let e = match item {
            SubEvent::Event(e) => e,
            other => return JobEvent::Stream(other),
        };
        fn typed<T: EventPayload>(e: &EventMessage, f: fn(T) -> JobEvent) -> Option<JobEvent> {
            e.payload::<T>().and_then(Result::ok).map(f)
        }
        let parsed = match e.event_type.as_str() {
            "graph" => typed(&e, JobEvent::Graph),
            "algorithm_progress" => typed(&e, JobEvent::Progress),
            "node_activation" => typed(&e, JobEvent::Activation),
            "edge_traversal" => typed(&e, JobEvent::Traversal),
            "path_discovered" => typed(&e, JobEvent::Path),
            "algorithm_complete" => typed(&e, JobEvent::Complete),
            "algorithm_stopped" => typed(&e, JobEvent::Stopped),
            "algorithm_failed" => typed(&e, JobEvent::Failed),
            _ => None,
        };
        parsed.unwrap_or(JobEvent::Other(e))
    }
}
