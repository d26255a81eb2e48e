//! `[rpc]`: methods a client calls with `rpc` (PROTOCOL.md section 2),
//! answered by handlers the embedding application registers or by HTTP
//! backends per method prefix.

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Bounds of every call, and the HTTP backends.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RpcConfig {
    /// A handler registered without a timeout of its own is given this
    /// long; then the caller is told `unavailable`.
    pub timeout_ms: u64,
    /// Calls one connection may have unanswered at once; one more is
    /// answered `limit_exceeded` (the calls run beside the connection's
    /// other commands, so this bounds what one client can start).
    pub max_in_flight: usize,
    /// Backends answering every method that starts with their `prefix`
    /// (the longest matching prefix wins; a handler registered for the
    /// exact method wins over any backend).
    pub proxy: Vec<RpcProxy>,
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            timeout_ms: 10_000,
            max_in_flight: 32,
            proxy: Vec::new(),
        }
    }
}

/// One HTTP backend for RPC: the hub POSTs `{method, data, user_id,
/// connection_id}` to `url` and relays the answer (docs/rpc.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcProxy {
    /// Methods starting with this (`""` for every method).
    pub prefix: String,
    /// `http://` or `https://` URL the calls are POSTed to.
    pub url: String,
    /// How long the backend has to answer (default `rpc.timeout_ms`).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

impl RpcConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError(m));
        if self.timeout_ms == 0 || self.max_in_flight == 0 {
            return bad("rpc.timeout_ms and rpc.max_in_flight must be positive".into());
        }
        for p in &self.proxy {
            if !(p.url.starts_with("http://") || p.url.starts_with("https://")) {
                return bad(format!(
                    "rpc.proxy {:?}: url must start with http:// or https://",
                    p.prefix
                ));
            }
            if p.timeout_ms == Some(0) {
                return bad(format!(
                    "rpc.proxy {:?}: timeout_ms must be positive",
                    p.prefix
                ));
            }
        }
        Ok(())
    }
}
