//! RPC answered by an HTTP backend in any language: the hub POSTs
//! `{method, data, user_id, connection_id}` and relays the answer.
//!
//! The backend answers 200 with `{"data": ...}` (the `rpc_result`) or
//! `{"error": {"code": "<protocol code>", "message": "..."}}` (relayed as
//! that error; an unknown code becomes `internal`). A backend that does
//! not answer within its timeout, answers another status, or answers
//! something else is `unavailable` to the caller (PROTOCOL.md section 2),
//! and the failure is logged and counted.

use std::time::Duration;

use hubbub_protocol::{ErrorCode, JsonData};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{RpcError, RpcReply};
use crate::config::RpcProxy;

/// One configured backend.
pub(crate) struct Backend {
    pub prefix: String,
    url: String,
    timeout: Duration,
    http: reqwest::Client,
}

#[derive(Serialize)]
struct Request<'a> {
    method: &'a str,
    data: &'a RawValue,
    user_id: Option<&'a str>,
    connection_id: &'a str,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    data: Option<Box<RawValue>>,
    error: Option<AnswerError>,
}

#[derive(Deserialize)]
struct AnswerError {
    code: String,
    #[serde(default)]
    message: String,
}

/// Largest answer a backend may give (the caller's frame limit is the
/// hub's `max_message_size`; this bounds what is read at all).
const MAX_ANSWER: usize = 16 << 20;

impl Backend {
    pub(crate) fn new(p: &RpcProxy, default_timeout: Duration, http: reqwest::Client) -> Self {
        Backend {
            prefix: p.prefix.clone(),
            url: p.url.clone(),
            timeout: p.timeout_ms.map_or(default_timeout, Duration::from_millis),
            http,
        }
    }

    fn unavailable(&self, why: impl std::fmt::Display) -> RpcError {
        tracing::warn!(url = %self.url, "rpc backend: {why}");
        RpcError::new(
            ErrorCode::Unavailable,
            "the method's backend did not answer; try again",
        )
    }

    /// Calls the backend and reads its answer.
    pub(crate) async fn call(
        &self,
        method: &str,
        data: &JsonData,
        user_id: Option<&str>,
        connection_id: &str,
    ) -> RpcReply {
        let data: &RawValue = serde_json::from_str(data.get()).map_err(|e| self.unavailable(e))?;
        let body = Request {
            method,
            data,
            user_id,
            connection_id,
        };
        let sent = self
            .http
            .post(&self.url)
            .timeout(self.timeout)
            .json(&body)
            .send()
            .await;
        let mut resp = match sent {
            Ok(r) if r.status() == reqwest::StatusCode::OK => r,
            Ok(r) => return Err(self.unavailable(format!("answered {}", r.status()))),
            Err(e) if e.is_timeout() => {
                return Err(self.unavailable(format!("no answer within {:?}", self.timeout)))
            }
            Err(e) => return Err(self.unavailable(e)),
        };
        let mut bytes = Vec::new();
        loop {
            match tokio::time::timeout(self.timeout, resp.chunk()).await {
                Ok(Ok(Some(c))) if bytes.len() + c.len() <= MAX_ANSWER => {
                    bytes.extend_from_slice(&c)
                }
                Ok(Ok(Some(_))) => return Err(self.unavailable("answer too large")),
                Ok(Ok(None)) => break,
                Ok(Err(e)) => return Err(self.unavailable(e)),
                Err(_) => return Err(self.unavailable("answer not finished in time")),
            }
        }
        let answer: Answer = serde_json::from_slice(&bytes)
            .map_err(|e| self.unavailable(format!("answer is not {{data}} or {{error}}: {e}")))?;
        match (answer.data, answer.error) {
            (_, Some(e)) => {
                let code = ErrorCode::from_name(&e.code).unwrap_or(ErrorCode::Internal);
                Err(RpcError::new(code, e.message))
            }
            (Some(d), None) => serde_json::from_str(d.get()).map_err(|e| self.unavailable(e)),
            (None, None) => Err(self.unavailable("answer has neither data nor error")),
        }
    }
}

/// The backends of `[[rpc.proxy]]`, longest prefix first.
pub(crate) fn backends(config: &crate::config::RpcConfig) -> Vec<Backend> {
    let http = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default();
    let default = Duration::from_millis(config.timeout_ms);
    let mut all: Vec<Backend> = config
        .proxy
        .iter()
        .map(|p| Backend::new(p, default, http.clone()))
        .collect();
    all.sort_by_key(|b| std::cmp::Reverse(b.prefix.len()));
    all
}
