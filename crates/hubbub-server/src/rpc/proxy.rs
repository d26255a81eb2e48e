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
use crate::backend::post_json;
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
struct AnswerError {
    code: String,
    #[serde(default)]
    message: String,
}

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
        let bytes =
            match tokio::time::timeout(self.timeout, post_json(&self.http, &self.url, &body)).await
            {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(e)) => return Err(self.unavailable(e)),
                Err(_) => {
                    return Err(self.unavailable(format!("no answer within {:?}", self.timeout)))
                }
            };
        parse_answer(&bytes).map_err(|why| self.unavailable(why))?
    }
}

/// A backend's answer: `Ok` with the reply to relay, `Err` with why it is
/// not one (the caller is then told `unavailable`). Never panics, whatever
/// the bytes (fuzzed: `fuzz/fuzz_targets/rpc_answer.rs`).
pub(crate) fn parse_answer(bytes: &[u8]) -> Result<RpcReply, String> {
    let serde_json::Value::Object(mut answer) =
        serde_json::from_slice(bytes).map_err(|e| format!("answer is not JSON: {e}"))?
    else {
        return Err("answer is not an object".into());
    };
    if answer.len() != 1 {
        return Err("answer must have exactly one of data and error".into());
    }
    if let Some(data) = answer.remove("data") {
        return Ok(Ok(data));
    }
    let error: AnswerError = answer
        .remove("error")
        .map(serde_json::from_value)
        .ok_or("answer has neither data nor error")?
        .map_err(|e| format!("error is not {{code, message}}: {e}"))?;
    let code = ErrorCode::from_name(&error.code).unwrap_or(ErrorCode::Internal);
    Ok(Err(RpcError::new(code, error.message)))
}

/// For the fuzz target: parses `bytes` as a backend's answer; a reply
/// that parses always encodes as an `rpc_result` or an `error`.
pub fn fuzz_rpc_answer(bytes: &[u8]) {
    if let Ok(reply) = parse_answer(bytes) {
        match reply {
            Ok(v) => {
                let data = hubbub_protocol::JsonData::from_serialize(&v);
                assert!(serde_json::from_str::<serde_json::Value>(data.get()).is_ok());
            }
            Err(e) => assert!(!e.code.as_str().is_empty()),
        }
    }
}

/// The backends of `[[rpc.proxy]]`, longest prefix first.
pub(crate) fn backends(config: &crate::config::RpcConfig, http: &reqwest::Client) -> Vec<Backend> {
    let default = Duration::from_millis(config.timeout_ms);
    let mut all: Vec<Backend> = config
        .proxy
        .iter()
        .map(|p| Backend::new(p, default, http.clone()))
        .collect();
    all.sort_by_key(|b| std::cmp::Reverse(b.prefix.len()));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_data_or_a_coded_error_and_anything_else_is_refused() {
        assert_eq!(
            parse_answer(br#"{"data": [1]}"#),
            Ok(Ok(serde_json::json!([1])))
        );
        assert_eq!(
            parse_answer(br#"{"data": null}"#),
            Ok(Ok(serde_json::Value::Null))
        );
        let e = parse_answer(br#"{"error": {"code": "conflict", "message": "m"}}"#);
        assert_eq!(e, Ok(Err(RpcError::new(ErrorCode::Conflict, "m"))));
        let e = parse_answer(br#"{"error": {"code": "teapot"}}"#);
        assert_eq!(e.unwrap().unwrap_err().code, ErrorCode::Internal);
        for bad in [
            &b"<html>"[..],
            b"{}",
            b"[]",
            br#"{"data": 1, "extra": 2}"#,
            b"",
        ] {
            assert!(
                parse_answer(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
