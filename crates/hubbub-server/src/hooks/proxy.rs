//! Hooks answered by an HTTP backend in any language (docs/hooks.md).
//!
//! The hub POSTs one JSON object per decision, `hook` naming which
//! (`connect`, `subscribe`, `publish`, so one URL may serve all three),
//! and the backend answers 200 with `{"result": "allow"}` or
//! `{"result": "deny", ...}`, plus what the hook may change: for connect
//! `user_id` and `info`, for subscribe `info`, for publish `data`. A
//! field the hook does not take, an unknown error code, another status
//! or anything that is not such an object is a failed hook (reason
//! `bad_answer` or `unavailable`), never a guess; `on_failure` decides.
//! The time limit is the caller's (`run`), the same as a Rust hook's.

use std::collections::BTreeMap;

use hubbub_protocol::{CloseCode, ErrorCode, JsonData};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::run::{Failed, Published};
use super::{
    ConnectDecision, ConnectRequest, HookKind, Info, PublishRequest, SubscribeDecision,
    SubscribeRequest,
};
use crate::backend::{post_json, PostError};
use crate::config::HooksConfig;

/// One configured backend.
pub(crate) struct Backend {
    url: String,
    http: reqwest::Client,
    /// Headers passed on (connect only), lowercase.
    headers: Vec<String>,
}

/// The backend of each hook kind that has a `url`.
pub(crate) struct Backends([Option<Backend>; 3]);

impl Backends {
    /// The backends `config` names, all asked through `http` (the node's
    /// client).
    pub(crate) fn new(config: &HooksConfig, http: &reqwest::Client) -> Self {
        let backend = |url: &Option<String>, headers: &[String]| {
            url.as_ref().map(|url| Backend {
                url: url.clone(),
                http: http.clone(),
                headers: headers.iter().map(|h| h.to_ascii_lowercase()).collect(),
            })
        };
        Backends([
            backend(&config.connect.url, &config.connect.headers),
            backend(&config.subscribe.url, &[]),
            backend(&config.publish.url, &[]),
        ])
    }

    pub(crate) fn get(&self, kind: HookKind) -> Option<&Backend> {
        self.0[kind as usize].as_ref()
    }
}

#[derive(Serialize)]
struct ConnectBody<'a> {
    hook: &'static str,
    connection_id: &'a str,
    user_id: Option<&'a str>,
    authenticated: bool,
    remote_addr: String,
    query: &'a str,
    headers: BTreeMap<&'a str, String>,
}

#[derive(Serialize)]
struct SubscribeBody<'a> {
    hook: &'static str,
    connection_id: &'a str,
    user_id: Option<&'a str>,
    channel: &'a str,
}

#[derive(Serialize)]
struct PublishBody<'a> {
    hook: &'static str,
    connection_id: &'a str,
    user_id: Option<&'a str>,
    channel: &'a str,
    event_type: &'a str,
    data: &'a RawValue,
}

/// Every field any hook's answer may carry; which of them a hook takes is
/// checked per kind.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Answer {
    result: Verdict,
    code: Option<String>,
    message: Option<String>,
    close_code: Option<u16>,
    reason: Option<String>,
    user_id: Option<String>,
    info: Option<Info>,
    data: Option<Box<RawValue>>,
}

#[derive(Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Verdict {
    Allow,
    Deny,
}

fn bad(why: impl Into<String>) -> Failed {
    Failed::BadAnswer(why.into())
}

impl Answer {
    /// Refuses fields the hook does not take: a backend that sends one
    /// expects something the hub would not do.
    fn only(&self, allowed: &[&str]) -> Result<(), Failed> {
        let present = [
            ("code", self.code.is_some()),
            ("message", self.message.is_some()),
            ("close_code", self.close_code.is_some()),
            ("reason", self.reason.is_some()),
            ("user_id", self.user_id.is_some()),
            ("info", self.info.is_some()),
            ("data", self.data.is_some()),
        ];
        match present
            .iter()
            .find(|(name, is)| *is && !allowed.contains(name))
        {
            Some((name, _)) => Err(bad(format!("{name} is not taken here"))),
            None => Ok(()),
        }
    }

    /// A deny of subscribe or publish: its error code and message.
    fn error(self, hook: &str) -> Result<(ErrorCode, String), Failed> {
        self.only(&["code", "message"])?;
        let code = match self.code.as_deref() {
            None => ErrorCode::Forbidden,
            Some(c) => ErrorCode::from_name(c).ok_or_else(|| bad("code is not a protocol code"))?,
        };
        let message = self
            .message
            .unwrap_or_else(|| format!("refused by the {hook} hook"));
        Ok((code, message))
    }
}

impl Backend {
    /// POSTs `body` and reads the answer (time bounded by the caller).
    async fn ask<T: Serialize>(&self, body: &T) -> Result<Answer, Failed> {
        let bytes = post_json(&self.http, &self.url, body)
            .await
            .map_err(|e| match e {
                PostError::Unavailable(why) => Failed::Unavailable(why),
                PostError::TooLarge => bad(e.to_string()),
            })?;
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a decision: {e}")))
    }

    pub(crate) async fn connect(&self, req: &ConnectRequest) -> Result<ConnectDecision, Failed> {
        let mut headers: BTreeMap<&str, String> = BTreeMap::new();
        for (k, v) in &req.headers {
            if self.headers.iter().any(|h| h == k) {
                headers
                    .entry(k.as_str())
                    .and_modify(|joined| {
                        joined.push_str(if k == "cookie" { "; " } else { ", " });
                        joined.push_str(v);
                    })
                    .or_insert_with(|| v.clone());
            }
        }
        let body = ConnectBody {
            hook: HookKind::Connect.name(),
            connection_id: &req.connection_id,
            user_id: req.user_id.as_deref(),
            authenticated: req.authenticated,
            remote_addr: req.remote_addr.to_string(),
            query: &req.query,
            headers,
        };
        let a = self.ask(&body).await?;
        if a.result == Verdict::Deny {
            a.only(&["close_code", "reason"])?;
            return Ok(ConnectDecision::Deny {
                close_code: CloseCode(a.close_code.unwrap_or(CloseCode::FORBIDDEN.0)),
                reason: a.reason.unwrap_or_else(|| "refused".into()),
            });
        }
        a.only(&["user_id", "info"])?;
        match (a.user_id, a.info) {
            (None, None) => Ok(ConnectDecision::Allow),
            (Some(user_id), info) => Ok(ConnectDecision::As { user_id, info }),
            (None, Some(_)) => Err(bad("info without user_id")),
        }
    }

    pub(crate) async fn subscribe(
        &self,
        req: &SubscribeRequest,
    ) -> Result<SubscribeDecision, Failed> {
        let body = SubscribeBody {
            hook: HookKind::Subscribe.name(),
            connection_id: &req.connection_id,
            user_id: req.user_id.as_deref(),
            channel: &req.channel,
        };
        let a = self.ask(&body).await?;
        if a.result == Verdict::Deny {
            let (code, message) = a.error("subscribe")?;
            return Ok(SubscribeDecision::Deny(code, message));
        }
        a.only(&["info"])?;
        Ok(a.info
            .map_or(SubscribeDecision::Allow, SubscribeDecision::AllowWithInfo))
    }

    pub(crate) async fn publish(&self, req: &PublishRequest) -> Result<Published, Failed> {
        let data: &RawValue = serde_json::from_str(req.data.get())
            .map_err(|e| Failed::Unavailable(format!("data: {e}")))?;
        let body = PublishBody {
            hook: HookKind::Publish.name(),
            connection_id: &req.connection_id,
            user_id: req.user_id.as_deref(),
            channel: &req.channel,
            event_type: &req.event_type,
            data,
        };
        let a = self.ask(&body).await?;
        if a.result == Verdict::Deny {
            let (code, message) = a.error("publish")?;
            return Ok(Published::Deny(code, message));
        }
        a.only(&["data"])?;
        match a.data {
            None => Ok(Published::Allow),
            Some(d) => JsonData::from_json(d.get())
                .map(Published::Replace)
                .map_err(|e| bad(format!("data: {e}"))),
        }
    }

    /// Where the backend is, for logs.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}
