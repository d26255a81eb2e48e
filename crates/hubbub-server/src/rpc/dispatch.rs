//! Running a call: finding what answers the method, bounding the calls
//! of one connection, the timeout, a panic, and the answer queued on the
//! caller's connection like any other message.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use hubbub_protocol::excerpt::quote;
use hubbub_protocol::message::Rpc;
use hubbub_protocol::{CorrelationId, ErrorCode, JsonData, ServerMessage};

use super::{Method, RpcCall, RpcError, RpcReply, MAX_METHOD_LEN};
use crate::conn::handle::ConnHandle;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::session::send_to;
use crate::state::Shared;

/// What answers a method.
enum Target {
    Handler(Method),
    Proxy(usize),
}

fn resolve(shared: &Shared, method: &str) -> Option<Target> {
    if let Some(m) = shared.rpc.get(method) {
        return Some(Target::Handler(m));
    }
    shared
        .rpc_backends
        .iter()
        .position(|b| method.starts_with(&b.prefix))
        .map(Target::Proxy)
}

/// Gives a connection's place back when its call ends, however it ends.
struct InFlight(Arc<AtomicUsize>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Starts `rpc` for `caller`. `Ok` when the call runs (its answer, with
/// the correlation id, comes when it ends); `Err` to answer at once.
pub(crate) fn start(
    shared: &Arc<Shared>,
    caller: &Arc<ConnHandle>,
    in_flight: &Arc<AtomicUsize>,
    rpc: Rpc,
    id: Option<CorrelationId>,
) -> Result<(), (ErrorCode, String)> {
    let method = rpc.method;
    if method.is_empty() || method.len() > MAX_METHOD_LEN || method.chars().any(char::is_control) {
        return Err((
            ErrorCode::BadRequest,
            format!("method must be 1 to {MAX_METHOD_LEN} printable characters"),
        ));
    }
    let target = resolve(shared, &method)
        .ok_or_else(|| (ErrorCode::NotFound, format!("no method {}", quote(&method))))?;
    let max = shared.config.rpc.max_in_flight;
    if in_flight.fetch_add(1, Relaxed) >= max {
        in_flight.fetch_sub(1, Relaxed);
        Metrics::inc(&shared.metrics.rpc_refused);
        return Err((
            ErrorCode::LimitExceeded,
            format!("at most {max} calls unanswered per connection"),
        ));
    }
    let place = InFlight(in_flight.clone());
    let (shared, caller) = (shared.clone(), caller.clone());
    tokio::spawn(async move {
        let _place = place;
        let started = Instant::now();
        let user_id = caller.user_id.as_deref().map(str::to_owned);
        let connection_id = shared.conns.connection_id(caller.seq);
        let reply = match target {
            Target::Handler(m) => {
                let timeout = m
                    .timeout
                    .unwrap_or(Duration::from_millis(shared.config.rpc.timeout_ms));
                let call = RpcCall {
                    method: method.clone(),
                    data: rpc.data,
                    user_id,
                    connection_id,
                    node: Node::from_shared(shared.clone()),
                    caller: caller.clone(),
                    correlation: id.clone(),
                };
                let handler = m.handler;
                run(
                    &shared,
                    &method,
                    Box::pin(async move { handler(call).await }),
                    timeout,
                )
                .await
            }
            Target::Proxy(i) => {
                let backend = &shared.rpc_backends[i];
                let answered = backend
                    .call(&method, &rpc.data, user_id.as_deref(), &connection_id)
                    .await;
                if answered
                    .as_ref()
                    .is_err_and(|e| e.code == ErrorCode::Unavailable)
                {
                    Metrics::inc(&shared.metrics.rpc_backend_failures);
                }
                answered
            }
        };
        shared.metrics.rpc_latency.observe(started.elapsed());
        let msg = match reply {
            Ok(v) => ServerMessage::RpcResult {
                data: JsonData::from_serialize(&v),
            },
            Err(e) => {
                Metrics::inc(&shared.metrics.rpc_failed);
                Metrics::inc(&shared.metrics.errors_sent);
                ServerMessage::error(e.code, &e.message)
            }
        };
        Metrics::inc(&shared.metrics.rpc_calls);
        send_to(&shared, &caller, shared.queue_limits(), &msg, id.as_ref());
    });
    Ok(())
}

/// A handler's future, bounded by `timeout`, a panic caught.
async fn run(
    shared: &Shared,
    method: &str,
    fut: crate::engine::BoxFuture<'static, RpcReply>,
    timeout: Duration,
) -> RpcReply {
    match tokio::time::timeout(timeout, AssertUnwindSafe(fut).catch_unwind()).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(_)) => {
            Metrics::inc(&shared.metrics.rpc_panics);
            tracing::error!(method, "an rpc handler panicked");
            Err(RpcError::internal("the method failed"))
        }
        Err(_) => {
            Metrics::inc(&shared.metrics.rpc_timeouts);
            Err(RpcError::new(
                ErrorCode::Unavailable,
                format!("no answer within {} ms", timeout.as_millis()),
            ))
        }
    }
}
