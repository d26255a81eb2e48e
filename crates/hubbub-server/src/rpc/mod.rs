//! `rpc` (PROTOCOL.md section 2): a client calls a method, the
//! application answers, and may report progress while it works.
//!
//! Methods are answered by handlers the embedding application registers
//! ([`Node::rpc`]) or, for backends in any language, by an HTTP backend
//! per method prefix (`[[rpc.proxy]]`, module `proxy`). A call runs in a
//! task of its own beside the connection's other commands (a slow method
//! delays only its own answer), bounded per connection by
//! `rpc.max_in_flight` and in time by its method's timeout; a handler
//! that panics answers `internal` and harms nothing else.

pub(crate) mod dispatch;
pub(crate) mod proxy;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hubbub_protocol::{CorrelationId, ErrorCode, EventMessage, JsonData};
use parking_lot::RwLock;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::conn::handle::ConnHandle;
use crate::engine::BoxFuture;
use crate::node::Node;

/// One call, as a handler sees it.
pub struct RpcCall {
    /// The method called.
    pub method: String,
    /// Its arguments, as the client sent them.
    pub data: JsonData,
    /// The caller's user; `None` for an anonymous connection.
    pub user_id: Option<String>,
    /// The caller's connection.
    pub connection_id: String,
    node: Node,
    caller: Arc<ConnHandle>,
    correlation: Option<CorrelationId>,
}

/// Why a call failed, with the protocol's code the caller is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", code.as_str())]
pub struct RpcError {
    /// What the caller's `error` carries as `code`.
    pub code: ErrorCode,
    /// What it carries as `message`.
    pub message: String,
}

impl RpcError {
    /// An error with `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        RpcError {
            code,
            message: message.into(),
        }
    }

    /// The arguments were wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// The caller may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    /// What the call names does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    /// The application failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, message)
    }
}

/// Whatever the node refused while a handler used it.
impl From<crate::node::Error> for RpcError {
    fn from(e: crate::node::Error) -> Self {
        RpcError::new(e.code, e.message)
    }
}

/// What a handler answers: the `data` of `rpc_result`, or an error.
pub type RpcReply = Result<serde_json::Value, RpcError>;

impl RpcCall {
    /// The arguments as `T`; `bad_request` when they do not fit.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, RpcError> {
        serde_json::from_str(self.data.get())
            .map_err(|e| RpcError::bad_request(format!("data: {e}")))
    }

    /// The node, to publish to channels, send to users or read history
    /// while the call runs.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Tells the caller (and only the caller) how the call is going: an
    /// `event` on the channel `rpc:<method>` carrying the call's
    /// correlation id, never stored, before the `rpc_result`. False when
    /// the caller is gone (the handler may stop).
    pub fn progress<T: Serialize + ?Sized>(
        &self,
        event_type: &str,
        data: &T,
    ) -> Result<bool, RpcError> {
        let text = serde_json::to_string(data)
            .map_err(|e| RpcError::internal(format!("progress data: {e}")))?;
        let data = JsonData::from_json(&text).map_err(|e| RpcError::internal(e.to_string()))?;
        let shared = self.node.shared();
        let event = EventMessage {
            channel: format!("rpc:{}", self.method),
            event_type: event_type.to_owned(),
            data,
            message_id: shared.hub.next_message_id(),
            offset: None,
            epoch: None,
            publisher: None,
        };
        Ok(crate::session::send_to(
            shared,
            &self.caller,
            shared.queue_limits(),
            &event,
            self.correlation.as_ref(),
        ))
    }
}

type Handler = Arc<dyn Fn(RpcCall) -> BoxFuture<'static, RpcReply> + Send + Sync>;

/// A registered method.
#[derive(Clone)]
pub(crate) struct Method {
    handler: Handler,
    timeout: Option<Duration>,
}

/// The node's methods, registered by the application at any time.
#[derive(Default)]
pub(crate) struct Registry {
    methods: RwLock<HashMap<String, Method>>,
}

impl Registry {
    pub(crate) fn get(&self, method: &str) -> Option<Method> {
        self.methods.read().get(method).cloned()
    }

    fn insert(&self, method: &str, m: Method) {
        self.methods.write().insert(method.to_owned(), m);
    }
}

/// Longest method name.
pub(crate) const MAX_METHOD_LEN: usize = 128;

impl Node {
    /// Answers `rpc` calls of `method` with `handler`, bounded by
    /// `rpc.timeout_ms`. Registering a method again replaces its handler.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use hubbub_server::rpc::{RpcCall, RpcError};
    /// let node = hubbub_server::Node::new(hubbub_server::Config::default()).unwrap();
    /// node.rpc("math.double", |call: RpcCall| async move {
    ///     let n: i64 = call.data_as()?;
    ///     call.progress("working", &serde_json::json!({"n": n}))?;
    ///     Ok::<_, RpcError>(serde_json::json!(n * 2))
    /// });
    /// # });
    /// ```
    pub fn rpc<F, Fut>(&self, method: &str, handler: F)
    where
        F: Fn(RpcCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = RpcReply> + Send + 'static,
    {
        self.register(method, None, handler);
    }

    /// As [`Node::rpc`], with a timeout of the method's own.
    pub fn rpc_with_timeout<F, Fut>(&self, method: &str, timeout: Duration, handler: F)
    where
        F: Fn(RpcCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = RpcReply> + Send + 'static,
    {
        self.register(method, Some(timeout), handler);
    }

    fn register<F, Fut>(&self, method: &str, timeout: Option<Duration>, handler: F)
    where
        F: Fn(RpcCall) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = RpcReply> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |call| Box::pin(handler(call)));
        self.shared()
            .rpc
            .insert(method, Method { handler, timeout });
    }
}
