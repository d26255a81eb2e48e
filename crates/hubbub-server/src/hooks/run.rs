//! Asking a hook: the registered Rust hook, or else the backend; bounded
//! by the hook's timeout, a panic caught, the answer checked, counted,
//! and a failure turned into what `on_failure` says.

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use hubbub_protocol::{CloseCode, ErrorCode, JsonData};

use super::{
    ConnectDecision, ConnectRequest, Hook, HookKind, Info, PublishDecision, PublishRequest,
    SubscribeDecision, SubscribeRequest,
};
use crate::config::OnFailure;
use crate::engine::BoxFuture;
use crate::metrics::Metrics;
use crate::state::Shared;

/// Why a hook did not decide; the index is the `reason` label's
/// (`metrics::HOOK_FAILURES`).
#[derive(Debug)]
pub(crate) enum Failed {
    Timeout,
    /// Not reached, or answered another status than 200.
    Unavailable(String),
    /// An answer that is not a decision this hook takes.
    BadAnswer(String),
    Panic,
}

impl Failed {
    fn index(&self) -> usize {
        match self {
            Failed::Timeout => 0,
            Failed::Unavailable(_) => 1,
            Failed::BadAnswer(_) => 2,
            Failed::Panic => 3,
        }
    }
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failed::Timeout => f.write_str("no decision within the timeout"),
            Failed::Unavailable(why) => write!(f, "backend unavailable: {why}"),
            Failed::BadAnswer(why) => write!(f, "not a decision: {why}"),
            Failed::Panic => f.write_str("the hook panicked"),
        }
    }
}

/// A publish decision with the data already as the hub carries it.
pub(crate) enum Published {
    Allow,
    Deny(ErrorCode, String),
    Replace(JsonData),
}

/// Calls a Rust hook, a panic (in the call or the future) a failure.
fn call<Req, Dec: Send + 'static>(
    hook: &Hook<Req, Dec>,
    req: Req,
) -> BoxFuture<'static, Result<Dec, Failed>> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| hook(req))) {
        Ok(fut) => Box::pin(async move {
            AssertUnwindSafe(fut)
                .catch_unwind()
                .await
                .map_err(|_| Failed::Panic)
        }),
        Err(_) => Box::pin(async { Err(Failed::Panic) }),
    }
}

/// Runs `fut` within `timeout_ms`, counting the call, its time and a
/// failure (logged with the backend's URL when `url` says it asked one).
async fn timed<T>(
    shared: &Shared,
    kind: HookKind,
    timeout_ms: u64,
    url: Option<&str>,
    fut: impl Future<Output = Result<T, Failed>>,
) -> Result<T, Failed> {
    let started = Instant::now();
    let out = tokio::time::timeout(Duration::from_millis(timeout_ms), fut)
        .await
        .unwrap_or(Err(Failed::Timeout));
    let m = &shared.metrics.hooks[kind as usize];
    Metrics::inc(&m.calls);
    m.latency.observe(started.elapsed());
    if let Err(f) = &out {
        Metrics::inc(&m.failures[f.index()]);
        let hook = kind.name();
        match url {
            Some(url) => tracing::warn!(hook, url, "hook failed: {f}"),
            None => tracing::warn!(hook, "the Rust hook failed: {f}"),
        }
    }
    out
}

fn denied(shared: &Shared, kind: HookKind) {
    Metrics::inc(&shared.metrics.hooks[kind as usize].denials);
}

/// The connect hook's decision, a failure already turned into what
/// `on_failure` says: `Deny` with 1011 (reconnect with backoff), or
/// `Allow`. A deny's code outside 4000 to 4999 becomes 4003.
pub(crate) async fn connect(shared: &Shared, req: ConnectRequest) -> ConnectDecision {
    let kind = HookKind::Connect;
    let cfg = &shared.config.hooks.connect;
    let rust = shared.hooks.connect.read().clone();
    let backend = shared.hooks.backends.get(kind);
    let url = backend.filter(|_| rust.is_none()).map(|b| b.url());
    let decided = timed(shared, kind, cfg.timeout_ms, url, async move {
        let d = match (rust, backend) {
            (Some(h), _) => call(&h, req).await?,
            (None, Some(b)) => b.connect(&req).await?,
            (None, None) => ConnectDecision::Allow,
        };
        match &d {
            ConnectDecision::As { user_id, .. } if !crate::auth::valid_user_id(user_id) => Err(
                Failed::BadAnswer("user_id must be 1-128 characters of a channel name".into()),
            ),
            _ => Ok(d),
        }
    })
    .await;
    match decided {
        Ok(ConnectDecision::Deny { close_code, reason }) => {
            denied(shared, kind);
            let close_code = match close_code.0 {
                4000..=4999 => close_code,
                _ => CloseCode::FORBIDDEN,
            };
            ConnectDecision::Deny { close_code, reason }
        }
        Ok(d) => d,
        Err(_) if cfg.on_failure == OnFailure::Allow => ConnectDecision::Allow,
        Err(_) => ConnectDecision::Deny {
            close_code: CloseCode::INTERNAL,
            reason: "the connect hook failed; try again later".into(),
        },
    }
}

/// The error a command answers when its hook failed and `on_failure` is
/// `deny`: `unavailable`, the hub's trouble and worth a retry.
fn unavailable(kind: HookKind) -> (ErrorCode, String) {
    (
        ErrorCode::Unavailable,
        format!("the {} hook did not decide; try again", kind.name()),
    )
}

/// The subscribe hook's decision for one channel: the info to show in
/// presence, if any, or the error the whole `subscribe` answers.
pub(crate) async fn subscribe(
    shared: &Shared,
    req: SubscribeRequest,
) -> Result<Option<Info>, (ErrorCode, String)> {
    let kind = HookKind::Subscribe;
    let cfg = &shared.config.hooks.subscribe;
    let rust = shared.hooks.subscribe.read().clone();
    let backend = shared.hooks.backends.get(kind);
    let url = backend.filter(|_| rust.is_none()).map(|b| b.url());
    let decided = timed(shared, kind, cfg.timeout_ms, url, async move {
        match (rust, backend) {
            (Some(h), _) => call(&h, req).await,
            (None, Some(b)) => b.subscribe(&req).await,
            (None, None) => Ok(SubscribeDecision::Allow),
        }
    })
    .await;
    match decided {
        Ok(SubscribeDecision::Allow) => Ok(None),
        Ok(SubscribeDecision::AllowWithInfo(info)) => Ok(Some(info)),
        Ok(SubscribeDecision::Deny(code, message)) => {
            denied(shared, kind);
            Err((code, message))
        }
        Err(_) if cfg.on_failure == OnFailure::Allow => Ok(None),
        Err(_) => Err(unavailable(kind)),
    }
}

/// The publish hook's decision: the data to publish instead, if any, or
/// the error the publisher is answered.
pub(crate) async fn publish(
    shared: &Shared,
    req: PublishRequest,
) -> Result<Option<JsonData>, (ErrorCode, String)> {
    let kind = HookKind::Publish;
    let cfg = &shared.config.hooks.publish;
    let rust = shared.hooks.publish.read().clone();
    let backend = shared.hooks.backends.get(kind);
    let url = backend.filter(|_| rust.is_none()).map(|b| b.url());
    let max = shared.config.connection.max_message_size;
    let decided = timed(shared, kind, cfg.timeout_ms, url, async move {
        let p = match (rust, backend) {
            (Some(h), _) => match call(&h, req).await? {
                PublishDecision::Allow => Published::Allow,
                PublishDecision::Deny(code, message) => Published::Deny(code, message),
                PublishDecision::Replace(v) => Published::Replace(JsonData::from_serialize(&v)),
            },
            (None, Some(b)) => b.publish(&req).await?,
            (None, None) => Published::Allow,
        };
        if let Published::Replace(data) = &p {
            data.check()
                .map_err(|e| Failed::BadAnswer(format!("data: {e}")))?;
            if data.get().len() > max {
                return Err(Failed::BadAnswer(format!(
                    "data larger than connection.max_message_size ({max} bytes)"
                )));
            }
        }
        Ok(p)
    })
    .await;
    match decided {
        Ok(Published::Allow) => Ok(None),
        Ok(Published::Replace(data)) => Ok(Some(data)),
        Ok(Published::Deny(code, message)) => {
            denied(shared, kind);
            Err((code, message))
        }
        Err(_) if cfg.on_failure == OnFailure::Allow => Ok(None),
        Err(_) => Err(unavailable(kind)),
    }
}
