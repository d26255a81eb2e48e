//! Typed publishing for applications that stream their work: a payload
//! type of the protocol crate carries its own event type, and the channels
//! of PROTOCOL.md sections 7 and 8 are named once, here.
//!
//! Two shapes the systems we serve had: a graph engine's "realtime
//! updates" for one algorithm run ([`JobUpdates`]: the job's channel,
//! progress and terminal events also on `all_algorithms`, activations also
//! on `node_activations`), and a task queue's broadcast to everyone
//! watching the queue or to those watching one task ([`TaskUpdates`]).
//! Every method returns how many clients (and in-process subscribers) on
//! this node the event reached.

use hubbub_protocol::algorithm::{
    job_channel, Algorithm, AlgorithmComplete, AlgorithmFailed, AlgorithmProgress,
    AlgorithmStopped, EdgeTraversal, Graph, NodeActivation, PathDiscovered, ALL_ALGORITHMS_CHANNEL,
};
use hubbub_protocol::EventPayload;

use super::{Error, Node, Subscription};
use crate::engine::PublishOutcome;

/// The channel every job's `node_activation` events also go to.
pub const NODE_ACTIVATIONS_CHANNEL: &str = "node_activations";
/// The task queue's stream: every task event.
pub const TASKS_CHANNEL: &str = "tasks";

impl Node {
    /// Publishes a typed payload under its own event type.
    pub async fn emit<P: EventPayload>(
        &self,
        channel: &str,
        payload: &P,
    ) -> Result<PublishOutcome, Error> {
        self.publish_json(channel, P::EVENT_TYPE, payload.to_data())
            .await
    }

    /// The updates of one algorithm run, `job_id`, of `algorithm`.
    pub fn job_updates(&self, job_id: &str, algorithm: Algorithm) -> JobUpdates {
        JobUpdates {
            node: self.clone(),
            job_id: job_id.to_owned(),
            channel: job_channel(job_id),
            algorithm,
        }
    }

    /// The task queue's two audiences.
    pub fn task_updates(&self) -> TaskUpdates {
        TaskUpdates { node: self.clone() }
    }
}

/// One algorithm run's events, on the channels PROTOCOL.md section 7 names.
#[derive(Clone)]
pub struct JobUpdates {
    node: Node,
    job_id: String,
    channel: String,
    algorithm: Algorithm,
}

impl JobUpdates {
    async fn on_job<P: EventPayload>(&self, payload: &P) -> Result<usize, Error> {
        Ok(self.node.emit(&self.channel, payload).await?.subscribers)
    }

    async fn on_job_and<P: EventPayload>(&self, also: &str, payload: &P) -> Result<usize, Error> {
        let a = self.node.emit(&self.channel, payload).await?.subscribers;
        let b = self.node.emit(also, payload).await?.subscribers;
        Ok(a + b)
    }

    /// The job's id.
    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// The job's channel, `algorithm_<job_id>`.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The algorithm the job runs.
    pub fn algorithm(&self) -> &Algorithm {
        &self.algorithm
    }

    /// `graph`: the first event, so watchers can draw before work events
    /// refer to nodes and edges.
    pub async fn graph(&self, graph: &Graph) -> Result<usize, Error> {
        self.on_job(graph).await
    }

    /// `algorithm_progress`, also on `all_algorithms`.
    pub async fn progress(&self, progress: &AlgorithmProgress) -> Result<usize, Error> {
        self.on_job_and(ALL_ALGORITHMS_CHANNEL, progress).await
    }

    /// `node_activation`, also on `node_activations`.
    pub async fn node_activation(&self, activation: &NodeActivation) -> Result<usize, Error> {
        self.on_job_and(NODE_ACTIVATIONS_CHANNEL, activation).await
    }

    /// `edge_traversal`.
    pub async fn edge_traversal(&self, traversal: &EdgeTraversal) -> Result<usize, Error> {
        self.on_job(traversal).await
    }

    /// `path_discovered`.
    pub async fn path_discovered(&self, path: &PathDiscovered) -> Result<usize, Error> {
        self.on_job(path).await
    }

    /// `algorithm_complete`, the terminal event, also on `all_algorithms`.
    pub async fn complete(&self, complete: &AlgorithmComplete) -> Result<usize, Error> {
        self.on_job_and(ALL_ALGORITHMS_CHANNEL, complete).await
    }

    /// `algorithm_stopped`, the terminal event, also on `all_algorithms`.
    pub async fn stopped(&self) -> Result<usize, Error> {
        let stopped = AlgorithmStopped {
            job_id: self.job_id.clone(),
        };
        self.on_job_and(ALL_ALGORITHMS_CHANNEL, &stopped).await
    }

    /// `algorithm_failed`, the terminal event, also on `all_algorithms`.
    pub async fn failed(&self, error: impl Into<String>) -> Result<usize, Error> {
        let failed = AlgorithmFailed {
            job_id: self.job_id.clone(),
            error: error.into(),
        };
        self.on_job_and(ALL_ALGORITHMS_CHANNEL, &failed).await
    }

    /// Follows the job from Rust, as a watching client would.
    pub async fn subscribe(&self) -> Result<Subscription, Error> {
        self.node.subscribe(&self.channel).await
    }

    /// Clients (and in-process subscribers) watching the job on this node.
    pub fn active_connections(&self) -> usize {
        self.node.subscriber_count(&self.channel)
    }
}

/// The task queue's audiences: everyone watching the queue (`tasks`) and
/// those watching one task (`tasks:<task_id>`).
#[derive(Clone)]
pub struct TaskUpdates {
    node: Node,
}

impl TaskUpdates {
    /// To everyone watching the queue; returns how many it reached.
    pub async fn broadcast_to_all<P: EventPayload>(&self, payload: &P) -> Result<usize, Error> {
        Ok(self.node.emit(TASKS_CHANNEL, payload).await?.subscribers)
    }

    /// To those subscribed to one task's channel; returns how many it
    /// reached.
    pub async fn broadcast_to_subscribers<P: EventPayload>(
        &self,
        task_id: &str,
        payload: &P,
    ) -> Result<usize, Error> {
        let channel = format!("{TASKS_CHANNEL}:{task_id}");
        Ok(self.node.emit(&channel, payload).await?.subscribers)
    }

    /// Clients (and in-process subscribers) watching the queue on this node.
    pub fn active_connections(&self) -> usize {
        self.node.subscriber_count(TASKS_CHANNEL)
    }
}
