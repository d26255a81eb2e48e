//! Configuration: defaults < preset < TOML file < `HUBBUB_*` environment < flags.
//!
//! Every layer is merged as a TOML table before one typed deserialization, so
//! a key means the same thing whether it comes from a file
//! (`connection.max_message_size = 65536`), the environment
//! (`HUBBUB_CONNECTION__MAX_MESSAGE_SIZE=65536`) or a flag
//! (`--set connection.max_message_size=65536`), and unknown keys are errors
//! rather than silent typos.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod hooks;
mod rpc;

pub use hooks::{ConnectHookConfig, HookConfig, HooksConfig, OnFailure};
pub use rpc::{RpcConfig, RpcProxy};

/// The whole configuration of one hub node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listening, mode and process-wide limits.
    pub server: ServerConfig,
    /// Per-connection behaviour: heartbeats, sizes, queues, rate limits.
    pub connection: ConnectionConfig,
    /// The HTTP API.
    pub api: ApiConfig,
    /// Options of channels in the default namespace (names without `:`).
    pub channels: NamespaceOptions,
    /// Options per namespace (the part of a channel name before `:`).
    pub namespaces: BTreeMap<String, NamespaceOptions>,
    /// History across all channels.
    pub history: HistoryConfig,
    /// Offline delivery per user.
    pub users: UsersConfig,
    /// Tokens: keys, issuer, audience, whether one is required.
    pub auth: AuthConfig,
    /// Abuse limits at the handshake.
    pub limits: LimitsConfig,
    /// Rooms (PROTOCOL.md section 6).
    pub rooms: RoomsConfig,
    /// Where events, history, presence and user queues live: this process
    /// alone, or a Redis or NATS shared by several nodes.
    pub engine: EngineConfig,
    /// Methods clients call with `rpc`: timeouts, bounds, HTTP backends.
    pub rpc: RpcConfig,
    /// Decision hooks on connect, subscribe and publish: Rust or HTTP,
    /// their timeouts and failure policies.
    pub hooks: HooksConfig,
    /// Sections of applications built on the node (`[apps.algorithms]`,
    /// read by `hubbub-graph`), set like any other key. The node keeps
    /// them for the application, which checks them when it starts.
    pub apps: BTreeMap<String, toml::Value>,
}

/// Which engine a node runs on. The library reads this section only for
/// the in-memory engine; the `hubbub` binary builds the networked ones
/// (crates `hubbub-redis`, `hubbub-nats`) from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// `memory` (one node), `redis` or `nats` (several nodes as one).
    pub kind: EngineKind,
    /// The Redis server (`kind = "redis"`).
    pub redis_url: String,
    /// Several Redis servers: channels and users are sharded over them by a
    /// stable hash of their name (every node must list them in the same
    /// order). Overrides `redis_url` when not empty.
    pub redis_urls: Vec<String>,
    /// The NATS server (`kind = "nats"`).
    pub nats_url: String,
    /// With `kind = "nats"`: where history, presence and user queues live.
    /// `jetstream` (streams and key-value buckets), or `redis` (the
    /// Redis at `redis_url` / `redis_urls` keeps history, presence, rooms
    /// and user queues; NATS only carries events; docs/cluster.md).
    pub nats_store: NatsStore,
    /// Prefix of every key, channel and subject the engine uses, so that
    /// several clusters (or test runs) share one server.
    pub prefix: String,
    /// A dead node's presence entries and user registrations last this
    /// long; live nodes refresh theirs every third of it.
    pub presence_ttl_s: u64,
    /// How often a node announces itself in the node registry; it counts
    /// as gone after three missed announcements.
    pub heartbeat_ms: u64,
    /// How long a networked engine's request may take before it fails
    /// (the client is told `unavailable`).
    pub timeout_ms: u64,
}

/// The engines a node can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EngineKind {
    /// This process alone (the default).
    Memory,
    /// Redis: pub/sub between nodes, history, presence and queues in Redis.
    Redis,
    /// NATS: subjects between nodes; the rest on JetStream or Redis.
    Nats,
}

/// Where a NATS-brokered cluster keeps what outlives a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NatsStore {
    /// JetStream streams (history) and key-value buckets (presence, queues).
    Jetstream,
    /// The Redis at `redis_url`.
    Redis,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            kind: EngineKind::Memory,
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_urls: Vec::new(),
            nats_url: "nats://127.0.0.1:4222".into(),
            nats_store: NatsStore::Jetstream,
            prefix: "hubbub".into(),
            presence_ttl_s: 30,
            heartbeat_ms: 2_000,
            timeout_ms: 2_000,
        }
    }
}

impl EngineConfig {
    /// The Redis servers to shard over: `redis_urls`, else `redis_url`.
    pub fn redis_servers(&self) -> Vec<String> {
        if self.redis_urls.is_empty() {
            vec![self.redis_url.clone()]
        } else {
            self.redis_urls.clone()
        }
    }
}

/// Rooms: what joining an unknown room does, and how many fit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoomsConfig {
    /// Whether `join_room` of an unknown room creates it (public, with
    /// `default_capacity`); when false only `POST /api/rooms` creates rooms
    /// and joining an unknown one answers `not_found`.
    pub create_on_join: bool,
    /// Connections a room created by joining admits.
    pub default_capacity: usize,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        RoomsConfig {
            create_on_join: true,
            default_capacity: 1000,
        }
    }
}

/// How connections prove who they are (PROTOCOL.md section 1; keys are
/// described in docs/security.md).
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Whether every WebSocket connection needs a valid token. Unset: true
    /// in production mode, false in development mode.
    pub required: Option<bool>,
    /// Shared secret for HS256 tokens.
    pub hs256_secret: Option<String>,
    /// PEM file with the RSA public key for RS256 tokens.
    pub rs256_public_key_file: Option<PathBuf>,
    /// PEM file with the P-256 public key for ES256 tokens.
    pub es256_public_key_file: Option<PathBuf>,
    /// JWKS file (RS256 and ES256 keys by `kid`), re-read when it changes.
    pub jwks_file: Option<PathBuf>,
    /// Required `iss` claim, when set.
    pub issuer: Option<String>,
    /// Required `aud` claim, when set.
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_s: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            required: None,
            hs256_secret: None,
            rs256_public_key_file: None,
            es256_public_key_file: None,
            jwks_file: None,
            issuer: None,
            audience: None,
            leeway_s: 5,
        }
    }
}

impl AuthConfig {
    /// Whether any verification key is configured.
    pub fn has_keys(&self) -> bool {
        self.hs256_secret.as_deref().is_some_and(|s| !s.is_empty())
            || self.rs256_public_key_file.is_some()
            || self.es256_public_key_file.is_some()
            || self.jwks_file.is_some()
    }
}

impl std::fmt::Debug for AuthConfig {
    // The secret never reaches logs, even through a `{:?}` of the whole configuration.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("required", &self.required)
            .field(
                "hs256_secret",
                &self.hs256_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("rs256_public_key_file", &self.rs256_public_key_file)
            .field("es256_public_key_file", &self.es256_public_key_file)
            .field("jwks_file", &self.jwks_file)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_s", &self.leeway_s)
            .finish()
    }
}

/// Abuse limits applied at the WebSocket handshake (each 0 = no limit).
/// Per-connection limits (message rate, subscriptions) are under
/// `[connection]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Live connections one user may hold; beyond, HTTP 503 `server_full`.
    pub max_connections_per_user: usize,
    /// New WebSocket connections one client address may open per minute
    /// (IPv6 counted per /64); beyond, HTTP 429 `rate_limited`.
    pub connections_per_ip_per_minute: u32,
    /// New connections one user may open per minute; beyond, HTTP 429.
    pub connections_per_user_per_minute: u32,
    /// Leave loopback clients out of the per-address rate: a local reverse
    /// proxy not listed in `server.trusted_proxies` would otherwise put every
    /// user in one budget (and local benchmarks would trip it).
    pub exempt_loopback: bool,
    /// Addresses and users tracked at once by the two rate limits; when
    /// full, unknown ones pass until housekeeping frees room.
    pub rate_table_size: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections_per_user: 100,
            connections_per_ip_per_minute: 600,
            connections_per_user_per_minute: 10,
            exempt_loopback: true,
            rate_table_size: 100_000,
        }
    }
}

/// History across all channels (per-channel sizes are namespace options).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// Memory all channels' history may take together; past it the least
    /// recently written channels lose their oldest events first.
    pub memory_budget_bytes: usize,
    /// Event types that are never kept and carry no offset (typing
    /// indicators, cursor moves).
    pub ephemeral_event_types: Vec<String>,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            memory_budget_bytes: 256 << 20,
            ephemeral_event_types: vec!["typing_indicator".into(), "cursor_position".into()],
        }
    }
}

/// Offline delivery per user.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsersConfig {
    /// Events queued per user with no live connection (oldest dropped first; 0 turns queueing off).
    pub queue_size: usize,
    /// How long a queued event waits, in seconds.
    pub queue_ttl_s: u64,
}

impl Default for UsersConfig {
    fn default() -> Self {
        UsersConfig {
            queue_size: 100,
            queue_ttl_s: 3600,
        }
    }
}

/// Whether the hub is a developer's sandbox or a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Anonymous connections and `?user_id=` allowed, API open to loopback.
    Development,
    /// No development shortcuts.
    Production,
}

/// Listening, mode and process-wide limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address for WebSocket and HTTP (one port serves both): `IP:PORT`,
    /// or `HOST:PORT` resolved once at start (`localhost:8000`).
    #[serde(deserialize_with = "listen_address")]
    pub listen: SocketAddr,
    /// Development or production.
    pub mode: Mode,
    /// Name of this node in stats and the cluster; random when empty.
    pub node_id: String,
    /// Most concurrent WebSocket connections; lowered to fit the fd limit.
    pub max_connections: usize,
    /// How long a peer may take to send its first HTTP request head (the
    /// TLS handshake included).
    pub handshake_timeout_ms: u64,
    /// How long an HTTP connection may wait for its next complete request
    /// head after a response (keep-alive idle time and a slow second head
    /// together); then it is closed without an answer.
    pub http_idle_timeout_ms: u64,
    /// How long a request body may take to arrive, from the end of its
    /// head; then HTTP 408 and the connection is closed.
    pub http_body_timeout_ms: u64,
    /// Most HTTP connections (sockets whose first request head was not a
    /// WebSocket upgrade) open at once, apart from `max_connections`. Over
    /// it the oldest idle one is closed; with none idle, HTTP 503
    /// `server_full`.
    pub max_http_connections: usize,
    /// How long shutdown waits for connections to close before exiting.
    pub shutdown_timeout_ms: u64,
    /// After a shutdown signal, how long the node keeps serving while
    /// `/readyz` answers 503, before it closes connections with 1001: time
    /// for a load balancer to stop sending it clients (a few health-check
    /// periods; 0 closes at once).
    pub drain_delay_ms: u64,
    /// Housekeeping period (expired queues, empty rooms).
    pub cleanup_interval_ms: u64,
    /// How often the node measures its load (connections, rates, latency,
    /// CPU, memory, descriptors, queued bytes) in one pass, which
    /// `/api/stats`, `/metrics` and the built-in streams then read: the
    /// figures are at most this old, and the cost is one pass per period
    /// whatever the number of readers.
    pub load_interval_ms: u64,
    /// Testing only: serve an RFC 6455 echo endpoint at `/` and `/echo`
    /// through the same transport, for protocol-conformance suites.
    pub testing_echo: bool,
    /// Browser origins allowed to open WebSocket connections
    /// (`https://app.example.com`); empty allows every origin. Requests
    /// without an `Origin` header (non-browser clients) are not affected.
    pub allowed_origins: Vec<String>,
    /// Proxies (addresses or CIDR blocks) whose `X-Forwarded-For` names the
    /// real client; from anyone else the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// PEM certificate chain: serve `wss://` and `https://` (with `tls_key`).
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

/// `IP:PORT` as it is, or `HOST:PORT` resolved now, preferring IPv4 (what
/// `localhost` means to most clients).
fn listen_address<'de, D: serde::Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    use std::net::ToSocketAddrs;
    let text = String::deserialize(d)?;
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let bad = |why: String| serde::de::Error::custom(format!("{text:?}: {why}"));
    if text
        .rsplit_once(':')
        .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
    {
        return Err(bad(
            "expected HOST:PORT, e.g. 127.0.0.1:8000 or localhost:8000".into(),
        ));
    }
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| bad(format!("cannot resolve the host ({e})")))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| bad("the host has no address".into()))
}

/// Per-connection behaviour.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectionConfig {
    /// How often the server pings (also sent to clients in `connected`).
    pub heartbeat_interval_ms: u64,
    /// No inbound frame for this long closes the connection with 4010.
    pub connection_timeout_ms: u64,
    /// Largest inbound message (uncompressed); larger closes with 1009.
    pub max_message_size: usize,
    /// Outbound queue bound in messages; overflow closes with 4009.
    pub outbound_queue_messages: usize,
    /// Outbound queue bound in bytes (at most 4 GiB - 1); overflow closes
    /// with 4009.
    pub outbound_queue_bytes: usize,
    /// How long a closing peer has to read the close frame before TCP is cut.
    pub close_timeout_ms: u64,
    /// Subscriptions one connection may hold (`limit_exceeded` beyond).
    pub max_subscriptions: usize,
    /// Inbound messages per second refilled into the token bucket.
    pub rate_limit_per_second: f64,
    /// Token bucket size.
    pub rate_limit_burst: f64,
    /// Dropped messages within `rate_limit_window_ms` that close with 4029.
    pub rate_limit_max_drops: u32,
    /// Window for counting dropped messages.
    pub rate_limit_window_ms: u64,
    /// Ephemeral events (typing indicators, cursor moves) per second a
    /// connection may publish, on a budget of their own so they never
    /// spend the command budget; over it they are dropped with
    /// `error rate_limited` (not counted toward the 4029 close).
    pub ephemeral_rate_per_second: f64,
    /// The ephemeral budget's bucket size.
    pub ephemeral_rate_burst: f64,
}

/// The HTTP API.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Bearer key for `/api/`; without one only loopback peers are answered.
    pub key: Option<String>,
}

impl std::fmt::Debug for ApiConfig {
    // Keys never reach logs, even through a `{:?}` of the whole configuration.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Options of one namespace of channels.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NamespaceOptions {
    /// Whether clients may `publish` here (the HTTP API always may).
    pub publish: bool,
    /// Events kept for recovery (0 turns history off).
    pub history_size: usize,
    /// How long events are kept, in seconds.
    pub history_ttl_s: u64,
    /// Whether `presence` is answered.
    pub presence: bool,
    /// Whether subscribing needs a token claim.
    pub private: bool,
    /// Whether rooms of this namespace announce members coming and going
    /// (`user_joined`, `user_left`); off for huge channels, where presence
    /// still answers.
    pub join_leave_events: bool,
}

/// Named starting points for the connection settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// 1,000 connections, ping 30 s, pong timeout 10 s, 1 MiB messages, cleanup 60 s.
    Standard,
    /// 10,000 connections, ping 15 s, pong timeout 5 s, 4 MiB messages, cleanup 30 s.
    HighPerformance,
    /// 100 connections, ping 60 s, pong timeout 30 s, 64 KiB messages, cleanup 120 s.
    Lightweight,
}

impl std::str::FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.replace('-', "_").as_str() {
            "standard" => Ok(Preset::Standard),
            "high_performance" => Ok(Preset::HighPerformance),
            "lightweight" => Ok(Preset::Lightweight),
            _ => Err(format!(
                "unknown preset {s:?} (standard, high_performance, lightweight)"
            )),
        }
    }
}

impl Preset {
    /// The settings the preset changes, as a TOML layer.
    fn layer(self) -> toml::Table {
        let (conns, ping_s, pong_s, max_msg, cleanup_s) = match self {
            Preset::Standard => (1_000, 30, 10, 1 << 20, 60),
            Preset::HighPerformance => (10_000, 15, 5, 4 << 20, 30),
            Preset::Lightweight => (100, 60, 30, 64 << 10, 120),
        };
        let text = format!(
            "[server]\nmax_connections = {conns}\ncleanup_interval_ms = {}\n\
             [connection]\nheartbeat_interval_ms = {}\nconnection_timeout_ms = {}\nmax_message_size = {max_msg}\n",
            cleanup_s * 1000,
            ping_s * 1000,
            (ping_s + pong_s) * 1000,
        );
        text.parse().expect("preset layers are valid TOML")
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8000)),
            mode: Mode::Development,
            node_id: String::new(),
            max_connections: 100_000,
            handshake_timeout_ms: 10_000,
            http_idle_timeout_ms: 30_000,
            http_body_timeout_ms: 30_000,
            max_http_connections: 128,
            shutdown_timeout_ms: 10_000,
            drain_delay_ms: 0,
            cleanup_interval_ms: 60_000,
            load_interval_ms: 1_000,
            testing_echo: false,
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl Default for ConnectionConfig {
    fn default() -> Self {
        ConnectionConfig {
            heartbeat_interval_ms: 25_000,
            connection_timeout_ms: 60_000,
            max_message_size: 1 << 20,
            outbound_queue_messages: 4096,
            outbound_queue_bytes: 4 << 20,
            close_timeout_ms: 5_000,
            max_subscriptions: 1_000,
            rate_limit_per_second: 100.0,
            rate_limit_burst: 200.0,
            rate_limit_max_drops: 50,
            rate_limit_window_ms: 10_000,
            ephemeral_rate_per_second: 30.0,
            ephemeral_rate_burst: 60.0,
        }
    }
}

impl Default for NamespaceOptions {
    fn default() -> Self {
        NamespaceOptions {
            publish: false,
            history_size: 100,
            history_ttl_s: 300,
            presence: false,
            private: false,
            join_leave_events: true,
        }
    }
}

/// A configuration that could not be loaded; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// Where configuration comes from, highest priority last.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// `--preset`.
    pub preset: Option<Preset>,
    /// `--config FILE`.
    pub file: Option<std::path::PathBuf>,
    /// Environment variables (all of them; only `HUBBUB_*` are read).
    pub env: Vec<(String, String)>,
    /// `key.path=value` overrides from flags.
    pub overrides: Vec<(String, String)>,
}

impl Config {
    /// The `[apps.<name>]` section read as an application's own type (its
    /// defaults when the section is absent), so that each application
    /// parses its section the same way; the error names the section, for
    /// a binary to exit 2 with.
    pub fn app_section<T: serde::de::DeserializeOwned + Default>(
        &self,
        name: &str,
    ) -> Result<T, String> {
        match self.apps.get(name) {
            None => Ok(T::default()),
            Some(v) => v
                .clone()
                .try_into()
                .map_err(|e| format!("apps.{name}: {e}")),
        }
    }

    /// Merges all layers and checks the result.
    pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
        let mut table =
            toml::Table::try_from(Config::default()).map_err(|e| ConfigError(e.to_string()))?;
        if let Some(p) = sources.preset {
            merge(&mut table, p.layer());
        }
        if let Some(path) = &sources.file {
            merge(&mut table, read_file(path)?);
        }
        for (k, v) in &sources.env {
            let Some(rest) = k.strip_prefix("HUBBUB_") else {
                continue;
            };
            // Variables the CLI reads itself, not configuration keys.
            if matches!(
                rest,
                "CONFIG"
                    | "PRESET"
                    | "LOG"
                    | "URL"
                    | "API_KEY"
                    | "TOKEN"
                    | "TEST_REDIS"
                    | "TEST_NATS"
                    | "LOG_FORMAT"
            ) {
                continue;
            }
            let key = rest.to_ascii_lowercase().replace("__", ".");
            set_path(&mut table, &key, v)?;
        }
        for (k, v) in &sources.overrides {
            set_path(&mut table, k, v)?;
        }
        let config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError(plain_words(&e.to_string())))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let c = &self.connection;
        let bad = |m: &str| Err(ConfigError(m.to_owned()));
        if c.heartbeat_interval_ms == 0 || c.connection_timeout_ms == 0 {
            return bad(
                "connection.heartbeat_interval_ms and connection_timeout_ms must be positive",
            );
        }
        if c.max_message_size < 128 {
            return bad("connection.max_message_size must be at least 128");
        }
        if c.outbound_queue_messages == 0 || c.outbound_queue_bytes < c.max_message_size.min(65_536)
        {
            return bad("connection.outbound_queue_* too small");
        }
        if c.outbound_queue_bytes > u32::MAX as usize {
            return bad("connection.outbound_queue_bytes must be under 4 GiB");
        }
        if c.rate_limit_per_second <= 0.0 || c.rate_limit_burst < 1.0 {
            return bad("connection.rate_limit_per_second and rate_limit_burst must be positive");
        }
        let sv = &self.server;
        if sv.http_idle_timeout_ms == 0 || sv.http_body_timeout_ms == 0 {
            return bad("server.http_idle_timeout_ms and http_body_timeout_ms must be positive");
        }
        if !(10..=3_600_000).contains(&sv.load_interval_ms) {
            return bad("server.load_interval_ms must be between 10 and 3600000");
        }
        if sv.max_http_connections == 0 {
            return bad("server.max_http_connections must be at least 1");
        }
        if self.auth.leeway_s > 3600 {
            return bad("auth.leeway_s must be at most 3600");
        }
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            return bad("server.tls_cert and server.tls_key go together");
        }
        for p in &self.server.trusted_proxies {
            if crate::net::IpNet::parse(p).is_none() {
                return Err(ConfigError(format!(
                    "server.trusted_proxies: {p:?} is not an address or CIDR block"
                )));
            }
        }
        let e = &self.engine;
        if e.prefix.is_empty()
            || !e
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return bad(
                "engine.prefix must be letters, digits, '_' or '-' (it names keys and subjects)",
            );
        }
        if e.presence_ttl_s == 0 || e.heartbeat_ms == 0 || e.timeout_ms == 0 {
            return bad("engine.presence_ttl_s, heartbeat_ms and timeout_ms must be positive");
        }
        self.rpc.validate()?;
        self.hooks.validate()?;
        self.validate_exposure()?;
        for ns in self.namespaces.keys() {
            if ns.is_empty() || ns.contains(':') || hubbub_protocol::validate_channel(ns).is_err() {
                return Err(ConfigError(format!("namespace name {ns:?} is not valid")));
            }
        }
        Ok(())
    }

    /// The settings that decide who can reach the hub unchecked: an empty
    /// API key would read as no key, production needs a key (with none,
    /// every loopback caller, a reverse proxy included, would be let in),
    /// and the testing echo (no auth, origin check or rate limit, 64 MiB
    /// messages) is for a developer's loopback only.
    fn validate_exposure(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError(m.to_owned()));
        if self.api.key.as_deref().is_some_and(|k| k.trim().is_empty()) {
            return bad(
                "api.key is empty: set a key (--api-key, HUBBUB_API_KEY, api.key) or leave it \
                 out entirely",
            );
        }
        if !self.is_development() && self.api.key.is_none() {
            return bad(
                "production mode needs an API key for the HTTP API: set --api-key, \
                 HUBBUB_API_KEY or api.key",
            );
        }
        if self.server.testing_echo {
            if !self.is_development() {
                return bad(
                    "server.testing_echo (--testing-echo) is for conformance suites and is \
                     refused in production mode",
                );
            }
            if !self.server.listen.ip().is_loopback() {
                return bad(
                    "server.testing_echo (--testing-echo) serves an unauthenticated echo: it \
                     needs a loopback listen address such as 127.0.0.1:0",
                );
            }
        }
        Ok(())
    }

    /// Options of the namespace `channel` belongs to.
    pub fn namespace(&self, channel: &str) -> &NamespaceOptions {
        match hubbub_protocol::namespace_of(channel) {
            "" => &self.channels,
            ns => self.namespaces.get(ns).unwrap_or(&self.channels),
        }
    }

    /// Heartbeat interval as a duration.
    pub fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.connection.heartbeat_interval_ms)
    }

    /// History options of `channel` for an event of `event_type`; `None`
    /// when the namespace keeps no history or the type is ephemeral.
    pub fn history_options(
        &self,
        channel: &str,
        event_type: &str,
    ) -> Option<crate::history::HistoryOptions> {
        let ns = self.namespace(channel);
        if ns.history_size == 0
            || ns.history_ttl_s == 0
            || self
                .history
                .ephemeral_event_types
                .iter()
                .any(|t| t == event_type)
        {
            return None;
        }
        Some(crate::history::HistoryOptions {
            size: ns.history_size,
            ttl: Duration::from_secs(ns.history_ttl_s),
        })
    }

    /// Whether events of `event_type` are ephemeral: never kept, no offset,
    /// published on their own rate budget.
    pub fn is_ephemeral(&self, event_type: &str) -> bool {
        self.history
            .ephemeral_event_types
            .iter()
            .any(|t| t == event_type)
    }

    /// Whether development shortcuts are on.
    pub fn is_development(&self) -> bool {
        self.server.mode == Mode::Development
    }

    /// Whether every WebSocket connection needs a valid token
    /// (`auth.required`, by default true only in production mode).
    pub fn auth_required(&self) -> bool {
        self.auth.required.unwrap_or(!self.is_development())
    }
}

/// A deserializer's message in the words of the configuration: the key
/// first, then what is wrong with it, on one line, with no Rust type names
/// (`expected usize` becomes `expected a whole number of bytes` for a size).
fn plain_words(message: &str) -> String {
    let lines: Vec<&str> = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let key = lines
        .iter()
        .find_map(|l| l.strip_prefix("in `")?.strip_suffix('`'));
    let what = lines
        .iter()
        .filter(|l| !l.starts_with("in `"))
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let unit = match key.unwrap_or("") {
        k if k.ends_with("_ms") => " of milliseconds",
        k if k.ends_with("_s") => " of seconds",
        k if k.ends_with("_size") || k.ends_with("_bytes") => " of bytes",
        _ => "",
    };
    let mut what = what;
    for ty in ["usize", "u64", "u32", "u16", "u8"] {
        what = what.replace(
            &format!("expected {ty}"),
            &format!("expected a whole number{unit}"),
        );
    }
    for ty in ["f64", "f32"] {
        what = what.replace(&format!("expected {ty}"), "expected a number");
    }
    match key {
        Some(k) => format!("{k}: {what}"),
        None => what,
    }
}

fn read_file(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(format!("reading {}: {e}", path.display())))?;
    text.parse::<toml::Table>()
        .map_err(|e| ConfigError(format!("{}: {}", path.display(), e.to_string().trim_end())))
}

fn merge(into: &mut toml::Table, from: toml::Table) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(toml::Value::Table(a)), toml::Value::Table(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

/// Sets `a.b.c` to `raw`, read as a TOML value when it parses as one
/// (numbers, booleans, arrays) and as a string otherwise.
fn set_path(table: &mut toml::Table, key: &str, raw: &str) -> Result<(), ConfigError> {
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts
        .pop()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ConfigError(format!("bad key {key:?}")))?;
    let mut cur = table;
    for p in parts {
        let entry = cur
            .entry(p.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry
            .as_table_mut()
            .ok_or_else(|| ConfigError(format!("{key}: {p} is not a section")))?;
    }
    cur.insert(last.to_owned(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The defaults with `key.path=value` overrides, as flags give them.
    fn load(o: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::load(&Sources {
            overrides: o
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Sources::default()
        })
    }

    #[test]
    fn type_errors_speak_of_the_key_not_of_rust() {
        let e = Config::load(&Sources {
            overrides: vec![("connection.max_message_size".into(), "\"big\"".into())],
            ..Sources::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("connection.max_message_size"), "{e}");
        assert!(e.contains("expected a whole number of bytes"), "{e}");
        assert!(!e.contains("usize") && !e.ends_with('\n'), "{e:?}");
    }

    #[test]
    fn listen_takes_host_names() {
        let listen = |v: &str| load(&[("server.listen", &format!("{v:?}"))]);
        let c = listen("localhost:8123").unwrap();
        assert!(c.server.listen.ip().is_loopback());
        assert_eq!(c.server.listen.port(), 8123);
        assert_eq!(listen("[::1]:9").unwrap().server.listen.port(), 9);
        for bad in ["localhost", "localhost:http", ":80"] {
            let e = listen(bad).unwrap_err().to_string();
            assert!(e.contains("server.listen"), "{bad}: {e}");
        }
    }

    #[test]
    fn layers_in_order() {
        let dir = std::env::temp_dir().join(format!("hubbub-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        std::fs::write(&file, "[connection]\nmax_message_size = 2048\nrate_limit_burst = 7\n[namespaces.chat]\npublish = true\n").unwrap();
        let cfg = Config::load(&Sources {
            preset: Some(Preset::Lightweight),
            file: Some(file),
            env: vec![
                ("HUBBUB_CONNECTION__RATE_LIMIT_BURST".into(), "9".into()),
                ("PATH".into(), "x".into()),
            ],
            overrides: vec![("server.listen".into(), "127.0.0.1:0".into())],
        })
        .unwrap();
        assert_eq!(cfg.server.max_connections, 100); // preset
        assert_eq!(cfg.connection.heartbeat_interval_ms, 60_000); // preset
        assert_eq!(cfg.connection.connection_timeout_ms, 90_000); // ping + pong timeout
        assert_eq!(cfg.connection.max_message_size, 2048); // file beats preset
        assert_eq!(cfg.connection.rate_limit_burst, 9.0); // env beats file
        assert_eq!(cfg.server.listen.port(), 0); // flag
        assert!(cfg.namespace("chat:x").publish);
        assert!(!cfg.namespace("other:x").publish);
    }

    #[test]
    fn the_engine_section_takes_flags_and_refuses_what_it_cannot_do() {
        let c = load(&[
            ("engine.kind", "redis"),
            ("engine.redis_url", "redis://127.0.0.1:6379"),
            ("engine.prefix", "t1"),
        ])
        .unwrap();
        assert_eq!(c.engine.kind, EngineKind::Redis);
        assert_eq!(c.engine.redis_servers(), ["redis://127.0.0.1:6379"]);
        assert_eq!(c.engine.prefix, "t1");
        let e = load(&[("engine.prefix", "a b")]).unwrap_err();
        assert!(e.to_string().contains("engine.prefix"), "{e}");
        let c = load(&[("engine.kind", "nats"), ("engine.nats_store", "redis")]).unwrap();
        assert_eq!(c.engine.nats_store, NatsStore::Redis);
        let e = load(&[("engine.kind", "mongo")]).unwrap_err();
        assert!(e.to_string().contains("mongo"), "{e}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let e = Config::load(&Sources {
            overrides: vec![("connection.max_mesage_size".into(), "1".into())],
            ..Sources::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("max_mesage_size"), "{e}");
    }

    #[test]
    fn auth_defaults_follow_the_mode() {
        assert!(!load(&[]).unwrap().auth_required());
        assert!(load(&[("server.mode", "production"), ("api.key", "k")])
            .unwrap()
            .auth_required());
        let c = load(&[
            ("server.mode", "production"),
            ("api.key", "k"),
            ("auth.required", "false"),
        ])
        .unwrap();
        assert!(!c.auth_required());
        assert_eq!(c.auth.leeway_s, 5);
        assert!(load(&[("auth.leeway_s", "100000")]).is_err());
        assert!(load(&[("server.tls_cert", "/x.pem")]).is_err());
        assert!(load(&[("server.trusted_proxies", "[\"10.0.0.0/33\"]")]).is_err());
        assert!(load(&[("server.trusted_proxies", "[\"10.0.0.0/8\", \"::1\"]")]).is_ok());
        assert!(load(&[("limits.nope", "1")]).is_err());
    }

    #[test]
    fn exposure_rules() {
        let e = load(&[("server.mode", "production")]).unwrap_err();
        assert!(e.to_string().contains("API key"), "{e}");
        for empty in ["\"\"", "\"  \""] {
            let e = load(&[("api.key", empty)]).unwrap_err();
            assert!(e.to_string().contains("api.key is empty"), "{e}");
        }
        let echo = ("server.testing_echo", "true");
        let e = load(&[("server.mode", "production"), ("api.key", "k"), echo]).unwrap_err();
        assert!(e.to_string().contains("refused in production"), "{e}");
        let e = load(&[("server.listen", "0.0.0.0:0"), echo]).unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        assert!(load(&[("server.listen", "127.0.0.1:0"), echo]).is_ok());
        assert!(load(&[("server.listen", "[::1]:0"), echo]).is_ok());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let mut c = Config::default();
        c.auth.hs256_secret = Some("hunter2-secret".into());
        c.api.key = Some("api-key-value".into());
        let text = format!("{c:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("api-key-value"), "{text}");
        assert!(text.contains("<redacted>"));
    }
}
