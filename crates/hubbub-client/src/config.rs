//! How a client connects: address, credentials, encoding, timers and bounds.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub use hubbub_protocol::Encoding;

use crate::policy::Backoff;

/// A future that yields a fresh token (or why none could be had).
pub type TokenFuture = Pin<Box<dyn Future<Output = Result<String, String>> + Send>>;

/// Where the client's credentials come from.
#[derive(Clone, Default)]
pub enum TokenSource {
    /// No token: anonymous connections (development hubs).
    #[default]
    None,
    /// One fixed token. After 4001 or a refused handshake there is no other
    /// to try, so the client closes.
    Static(String),
    /// Called before every connection attempt, before the token expires
    /// (then sent as `auth` on the live connection) and after 4001.
    Callback(Arc<dyn Fn() -> TokenFuture + Send + Sync>),
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print a credential.
        f.write_str(match self {
            TokenSource::None => "None",
            TokenSource::Static(_) => "Static(..)",
            TokenSource::Callback(_) => "Callback(..)",
        })
    }
}

/// Every setting of a client; build one with [`crate::Client::builder`].
#[derive(Debug, Clone)]
pub struct Config {
    /// `ws://host:port/ws` (or `wss://`).
    pub url: String,
    /// Credentials.
    pub token: TokenSource,
    /// Wire encoding (`hubbub.json.v1` or `hubbub.msgpack.v1`).
    pub encoding: Encoding,
    /// Reconnect backoff.
    pub backoff: Backoff,
    /// Least pause after a 4029 close (rate limited); jitter is added on top.
    pub rate_limited_delay: Duration,
    /// How long a command waits for its reply, offline time included.
    pub request_timeout: Duration,
    /// Application `ping` interval; a connection silent for two intervals
    /// is taken as dead and dropped.
    pub ping_interval: Duration,
    /// Commands held while disconnected; one more is refused with
    /// [`crate::Error::QueueFull`].
    pub offline_queue: usize,
    /// Events buffered per subscription; when the application falls behind
    /// further events are dropped and reported as a gap.
    pub subscription_buffer: usize,
    /// How long before expiry a callback token is refreshed (at 3/4 of
    /// its remaining life when that is shorter than four times this).
    pub refresh_before: Duration,
    /// Whether a callback token is refreshed before expiry at all; without
    /// it the hub closes with 4001 and the client reconnects with a fresh one.
    pub proactive_refresh: bool,
    /// Longest wait for the WebSocket handshake.
    pub connect_timeout: Duration,
}

impl Config {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Config {
            url: url.into(),
            token: TokenSource::None,
            encoding: Encoding::Json,
            backoff: Backoff::default(),
            rate_limited_delay: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            ping_interval: Duration::from_secs(20),
            offline_queue: 1024,
            subscription_buffer: 1024,
            refresh_before: Duration::from_secs(30),
            proactive_refresh: true,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Builds a [`crate::Client`]; every setter returns the builder.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    pub(crate) config: Config,
}

impl ClientBuilder {
    /// A fixed token.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.config.token = TokenSource::Static(token.into());
        self
    }

    /// A callback that fetches a fresh token whenever one is needed.
    pub fn token_callback<F, Fut>(mut self, f: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<String, String>> + Send + 'static,
    {
        self.config.token = TokenSource::Callback(Arc::new(move || Box::pin(f())));
        self
    }

    /// The wire encoding.
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.config.encoding = encoding;
        self
    }

    /// Reconnect backoff.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.config.backoff = backoff;
        self
    }

    /// Least pause after 4029.
    pub fn rate_limited_delay(mut self, d: Duration) -> Self {
        self.config.rate_limited_delay = d;
        self
    }

    /// Command timeout.
    pub fn request_timeout(mut self, d: Duration) -> Self {
        self.config.request_timeout = d;
        self
    }

    /// Application ping interval.
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.config.ping_interval = d;
        self
    }

    /// Offline queue capacity.
    pub fn offline_queue(mut self, n: usize) -> Self {
        self.config.offline_queue = n;
        self
    }

    /// Per-subscription event buffer.
    pub fn subscription_buffer(mut self, n: usize) -> Self {
        self.config.subscription_buffer = n.max(2);
        self
    }

    /// How long before expiry a callback token is refreshed.
    pub fn refresh_before(mut self, d: Duration) -> Self {
        self.config.refresh_before = d;
        self
    }

    /// Whether to refresh a callback token before it expires.
    pub fn proactive_refresh(mut self, on: bool) -> Self {
        self.config.proactive_refresh = on;
        self
    }

    /// The whole configuration, for settings without a setter.
    pub fn config(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(&mut self.config);
        self
    }

    /// Starts the connection task and returns the handle at once; the
    /// first connection is made in the background (watch
    /// [`crate::Client::events`] or call [`crate::Client::wait_connected`]).
    /// Needs a Tokio runtime.
    pub fn connect(self) -> crate::Client {
        crate::Client::start(self.config).0
    }

    /// As [`ClientBuilder::connect`], with a receiver of state events that
    /// misses none: it exists before the first attempt starts.
    pub fn connect_with_events(
        self,
    ) -> (
        crate::Client,
        tokio::sync::broadcast::Receiver<crate::ClientEvent>,
    ) {
        crate::Client::start(self.config)
    }
}

/// When a JWT expires (its `exp` claim, seconds since the epoch), read
/// without verifying: the client only schedules a refresh with it.
pub(crate) fn token_expiry(token: &str) -> Option<u64> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("exp")?.as_u64()
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_expiry_reads_exp_without_verifying() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let t = format!(
            "{}.{}.sig",
            b64("{}"),
            b64(r#"{"sub":"a","exp":1700000000}"#)
        );
        assert_eq!(super::token_expiry(&t), Some(1_700_000_000));
        assert_eq!(super::token_expiry("garbage"), None);
    }
}
