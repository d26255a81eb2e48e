//! `algorithm_start` and `algorithm_stop` (PROTOCOL.md section 7), answered
//! by the application: the hub parses the commands, asks whoever
//! registered with [`Node::on_jobs`] and does the protocol's part
//! (subscribing the requester to the job's channel before the job's first
//! event, the replies and their errors). What a job is and how it runs is
//! the application's: the hub knows nothing of graphs (`hubbub-graph` is
//! such an application). Without a handler both commands answer
//! `unavailable`, as for any command a hub does not offer.

use std::sync::Arc;

use hubbub_protocol::JsonData;
use parking_lot::RwLock;

use crate::auth::Claims;
use crate::engine::BoxFuture;
use crate::node::Node;
use crate::rpc::RpcError;
use crate::state::Shared;

/// Who asks to start or stop a job, and what they may do: the application
/// decides from this who may run jobs (docs/algorithms.md).
#[derive(Clone)]
pub struct JobCaller {
    /// The caller's user; `None` for an anonymous connection or the HTTP API.
    pub user_id: Option<String>,
    /// The caller's connection; `None` for the HTTP API.
    pub connection_id: Option<String>,
    /// An operator: the HTTP API, or a token with `"admin": true`.
    pub admin: bool,
    /// The token's `"jobs": true` claim.
    pub jobs: bool,
    claims: Option<Arc<Claims>>,
    shared: Arc<Shared>,
}

impl JobCaller {
    pub(crate) fn connection(
        shared: &Arc<Shared>,
        claims: Option<&Claims>,
        user_id: Option<&str>,
        connection_id: String,
    ) -> Self {
        JobCaller {
            user_id: user_id.map(str::to_owned),
            connection_id: Some(connection_id),
            admin: claims.is_some_and(|c| c.admin),
            jobs: claims.is_some_and(|c| c.jobs),
            claims: claims.map(|c| Arc::new(c.clone())),
            shared: shared.clone(),
        }
    }

    /// The HTTP API: an operator.
    pub fn operator(node: &Node) -> Self {
        JobCaller {
            user_id: None,
            connection_id: None,
            admin: true,
            jobs: true,
            claims: None,
            shared: node.shared().clone(),
        }
    }

    /// Whether the rules a `publish` command answers to (the namespace's
    /// `publish` and `private` options, the token's `publish` claim) would
    /// let this caller publish to `channel`: the rule for callers with
    /// neither `admin` nor `jobs`. Always true for operators.
    pub fn may_publish_under_namespace(&self, channel: &str) -> bool {
        let class = crate::channel::classify(&self.shared.config, channel);
        self.admin || crate::auth::may_publish(self.claims.as_deref(), channel, &class).is_ok()
    }
}

/// A job the application accepted and has not started: the hub subscribes
/// the requester to `channel` and answers `algorithm_started`, then calls
/// `start`, so the requester sees the job's events from the first. If the
/// subscription cannot be made, `start` is dropped uncalled: the
/// application must treat that as the job abandoned.
pub struct JobStarted {
    /// The job's id.
    pub job_id: String,
    /// Where its events go (`algorithm_<job_id>`).
    pub channel: String,
    /// Sets the job going.
    pub start: Box<dyn FnOnce() + Send>,
}

/// What answers `algorithm_start` and `algorithm_stop`.
pub trait JobHandler: Send + Sync + 'static {
    /// Checks and prepares a job; errors answer the command (`bad_request`
    /// for invalid parameters, `forbidden`, `limit_exceeded`).
    fn start(
        &self,
        caller: JobCaller,
        algorithm: String,
        parameters: JsonData,
    ) -> BoxFuture<'static, Result<JobStarted, RpcError>>;

    /// Stops a running job (`not_found` for an unknown one).
    fn stop(&self, caller: JobCaller, job_id: String) -> BoxFuture<'static, Result<(), RpcError>>;
}

/// The registered handler, if any.
#[derive(Default)]
pub(crate) struct Jobs {
    handler: RwLock<Option<Arc<dyn JobHandler>>>,
}

impl Jobs {
    pub(crate) fn handler(&self) -> Option<Arc<dyn JobHandler>> {
        self.handler.read().clone()
    }
}

impl Node {
    /// Answers `algorithm_start` and `algorithm_stop` with `handler`
    /// (replacing any registered before).
    pub fn on_jobs(&self, handler: impl JobHandler) {
        *self.shared().jobs.handler.write() = Some(Arc::new(handler));
    }
}
