//! `[hooks]`: the application's say on who connects, what they subscribe
//! to and what they publish (docs/hooks.md), answered by hooks the
//! embedding application registers or by an HTTP backend per hook.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The three decision hooks. Each runs only when a Rust hook is
/// registered for it or its `url` is set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HooksConfig {
    /// Asked during the handshake, before `connected`.
    pub connect: ConnectHookConfig,
    /// Asked per channel of a client's `subscribe`.
    pub subscribe: HookConfig,
    /// Asked for each client `publish` (not the HTTP API's).
    pub publish: HookConfig,
}

/// What to do when a hook fails: it did not answer within its timeout,
/// its backend was down or answered another status, its answer was not
/// a decision, or a Rust hook panicked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Refuse (the default): a hook is an access check, and an open door
    /// whenever the backend is slow would let anyone who can slow it walk
    /// through. Connections are closed with 1011 (reconnect with backoff),
    /// commands answered `unavailable` (try again): the failure is the
    /// hub's, not the client's.
    Deny,
    /// Let it through as though the hook had allowed it unchanged, for
    /// hooks that only enrich (presence info, data rewriting) where being
    /// reachable matters more than the check.
    Allow,
}

/// `[hooks.subscribe]` and `[hooks.publish]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HookConfig {
    /// `http://` or `https://` URL the hub POSTs each request to; none for
    /// no HTTP hook. A Rust hook, when registered, wins over it.
    pub url: Option<String>,
    /// How long the hook (Rust or HTTP) has to decide. The command waits
    /// that long at most; the connection's other commands wait behind it.
    pub timeout_ms: u64,
    /// What a failure decides.
    pub on_failure: OnFailure,
}

impl Default for HookConfig {
    fn default() -> Self {
        HookConfig {
            url: None,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            on_failure: OnFailure::Deny,
        }
    }
}

/// `[hooks.connect]`: as [`HookConfig`], with the request headers the
/// HTTP backend is sent.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectHookConfig {
    /// As [`HookConfig::url`].
    pub url: Option<String>,
    /// As [`HookConfig::timeout_ms`]; the handshake waits that long at most.
    pub timeout_ms: u64,
    /// As [`HookConfig::on_failure`].
    pub on_failure: OnFailure,
    /// Request headers (any case) sent to the HTTP backend: what an
    /// application authenticates with besides a JWT (a session cookie, a
    /// header of its own). `Authorization` is never sent. A Rust hook
    /// sees every header but `Authorization`.
    pub headers: Vec<String>,
}

impl Default for ConnectHookConfig {
    fn default() -> Self {
        ConnectHookConfig {
            url: None,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            on_failure: OnFailure::Deny,
            headers: vec!["cookie".into()],
        }
    }
}

/// A second: a backend that takes longer is in trouble, and the
/// connection's later commands wait behind the hook.
const DEFAULT_TIMEOUT_MS: u64 = 1_000;

/// Longest timeout accepted: a command waiting longer would hold back the
/// connection's other commands for longer than clients wait for a reply.
pub(crate) const MAX_TIMEOUT_MS: u64 = 30_000;

impl HooksConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let c = &self.connect;
        check("connect", c.url.as_deref(), c.timeout_ms)?;
        check(
            "subscribe",
            self.subscribe.url.as_deref(),
            self.subscribe.timeout_ms,
        )?;
        check(
            "publish",
            self.publish.url.as_deref(),
            self.publish.timeout_ms,
        )?;
        if c.headers.iter().any(|h| {
            h.is_empty()
                || !h
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        }) {
            return Err(ConfigError(
                "hooks.connect.headers: each must be a header name (letters, digits, '-')".into(),
            ));
        }
        Ok(())
    }
}

fn check(kind: &str, url: Option<&str>, timeout_ms: u64) -> Result<(), ConfigError> {
    if url.is_some_and(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
        return Err(ConfigError(format!(
            "hooks.{kind}.url must start with http:// or https://"
        )));
    }
    if timeout_ms == 0 || timeout_ms > MAX_TIMEOUT_MS {
        return Err(ConfigError(format!(
            "hooks.{kind}.timeout_ms must be 1 to {MAX_TIMEOUT_MS}"
        )));
    }
    Ok(())
}
