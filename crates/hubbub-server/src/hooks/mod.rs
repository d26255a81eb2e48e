//! Decision hooks: the application's say on who connects, what they
//! subscribe to and what they publish (docs/hooks.md).
//!
//! A hook is a Rust closure the embedding application registers
//! ([`Node::on_connect`], [`Node::on_subscribe`], [`Node::on_publish`])
//! or, for applications in any language, an HTTP backend the hub POSTs to
//! (`[hooks.connect]`, `[hooks.subscribe]`, `[hooks.publish]` with a
//! `url`; module `proxy`). A registered Rust hook wins over the URL.
//!
//! Every decision is bounded by its hook's `timeout_ms`; a hook that does
//! not answer in time, whose backend is down or answers something that
//! is not a decision, or that panics, has failed, and its `on_failure`
//! decides instead (deny by default). Hooks run inside the one command
//! (or handshake) that asks: a slow hook delays that command and the
//! commands its connection sends after it, nothing else.

pub(crate) mod proxy;
pub(crate) mod run;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::Arc;

use hubbub_protocol::{CloseCode, ErrorCode, JsonData};
use parking_lot::RwLock;
use serde::de::DeserializeOwned;

use crate::engine::BoxFuture;
use crate::node::Node;

/// Extra presence information a hook attaches (a JSON object).
pub type Info = serde_json::Map<String, serde_json::Value>;

/// A connection asking to be admitted, as the connect hook sees it:
/// everything the handshake knows, for an application that decides from
/// its own credentials (a session cookie, a header or query parameter of
/// its own) instead of, or on top of, a JWT.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    /// The id the connection will have (`connected.connection_id`).
    pub connection_id: String,
    /// The user so far: a JWT's `sub`, or `?user_id=` in development;
    /// `None` for a connection that came with neither.
    pub user_id: Option<String>,
    /// Whether a verified JWT named `user_id` (false for `?user_id=`).
    pub authenticated: bool,
    /// The client's address (behind a trusted proxy, the forwarded one).
    pub remote_addr: SocketAddr,
    /// The query string of the upgrade request as sent, without `token`
    /// (the JWT is the hub's to check, not to pass on).
    pub query: String,
    /// The request headers, names in lowercase, in the order sent, without
    /// `Authorization`.
    pub headers: Vec<(String, String)>,
}

impl ConnectRequest {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first query parameter named `name`, decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }
}

/// What the connect hook decides.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectDecision {
    /// Admit the connection as it came (its JWT's user, or none).
    Allow,
    /// Refuse it: the WebSocket is accepted, then closed with `close_code`
    /// after a `disconnect` carrying `reason`, so that browsers, which
    /// cannot read a refused upgrade's status, see why. Codes outside
    /// 4000 to 4999 become 4003; the usual ones are
    /// [`CloseCode::UNAUTHORIZED`] (get credentials, then reconnect) and
    /// [`CloseCode::FORBIDDEN`] (do not reconnect).
    Deny {
        /// The close code (PROTOCOL.md section 9).
        close_code: CloseCode,
        /// Why, for the client (cut to 123 bytes in the close frame).
        reason: String,
    },
    /// Admit the connection as `user_id`, authenticated by the
    /// application itself: `connected.user_id`, its `user:<id>` channel,
    /// the per-user limits and presence all follow. `info` acts as a
    /// token's `info` claim (merged over the JWT's when the JWT named the
    /// same user; a JWT for another user is set aside with what it
    /// granted).
    As {
        /// The user (1 to 128 characters of a channel name).
        user_id: String,
        /// Shown to others in presence and rooms.
        info: Option<Info>,
    },
}

impl ConnectDecision {
    /// Refuse with 4001: the client should get credentials, then reconnect.
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        ConnectDecision::Deny {
            close_code: CloseCode::UNAUTHORIZED,
            reason: reason.into(),
        }
    }

    /// Refuse with 4003: the client should not reconnect.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        ConnectDecision::Deny {
            close_code: CloseCode::FORBIDDEN,
            reason: reason.into(),
        }
    }
}

/// A client subscribing to one channel, as the subscribe hook sees it.
/// Asked once per channel of a `subscribe`, after the hub's own checks,
/// never for the connection's own `user:<id>` nor for channels the hub
/// subscribes a connection to itself (rooms, jobs).
#[derive(Debug, Clone)]
pub struct SubscribeRequest {
    /// The subscribing connection.
    pub connection_id: String,
    /// Its user; `None` for an anonymous connection.
    pub user_id: Option<String>,
    /// The channel.
    pub channel: String,
}

/// What the subscribe hook decides for one channel.
#[derive(Debug, Clone, PartialEq)]
pub enum SubscribeDecision {
    /// Subscribe.
    Allow,
    /// Refuse: the whole `subscribe` is answered with this error and
    /// nothing of it is applied.
    Deny(ErrorCode, String),
    /// Subscribe, and show `info` in the connection's presence entry on
    /// this channel (merged over the token's `info`, these keys winning).
    /// On a channel without presence it is not kept.
    AllowWithInfo(Info),
}

/// A client publishing, as the publish hook sees it: after the hub's own
/// checks, before anything is stored or delivered. The HTTP API's
/// publications are the backend's own and are not asked about.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    /// The publishing connection.
    pub connection_id: String,
    /// Its user; `None` for an anonymous connection.
    pub user_id: Option<String>,
    /// The channel.
    pub channel: String,
    /// The event's type.
    pub event_type: String,
    /// The event's data, as the client sent it.
    pub data: JsonData,
}

impl PublishRequest {
    /// The data as `T`, for a hook that looks inside.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.data.get())
    }
}

/// What the publish hook decides.
#[derive(Debug, Clone, PartialEq)]
pub enum PublishDecision {
    /// Publish as sent.
    Allow,
    /// Refuse: the publisher is answered with this error.
    Deny(ErrorCode, String),
    /// Publish this data instead (checked like a client's; data that fails
    /// the check, or is larger than `connection.max_message_size`, is a
    /// failed hook).
    Replace(serde_json::Value),
}

/// The three hooks, for metrics and configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HookKind {
    Connect = 0,
    Subscribe = 1,
    Publish = 2,
}

impl HookKind {
    pub(crate) const ALL: [HookKind; 3] =
        [HookKind::Connect, HookKind::Subscribe, HookKind::Publish];

    /// The `hook` label and the request's `hook` field.
    pub(crate) fn name(self) -> &'static str {
        match self {
            HookKind::Connect => "connect",
            HookKind::Subscribe => "subscribe",
            HookKind::Publish => "publish",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

type Hook<Req, Dec> = Arc<dyn Fn(Req) -> BoxFuture<'static, Dec> + Send + Sync>;

/// The node's hooks: what the application registered and the configured
/// backends.
pub(crate) struct Hooks {
    /// A bit per kind with a hook (Rust or HTTP): the commands' fast way
    /// to know there is nothing to ask.
    armed: AtomicU8,
    connect: RwLock<Option<Hook<ConnectRequest, ConnectDecision>>>,
    subscribe: RwLock<Option<Hook<SubscribeRequest, SubscribeDecision>>>,
    publish: RwLock<Option<Hook<PublishRequest, PublishDecision>>>,
    pub(crate) backends: proxy::Backends,
}

impl Hooks {
    pub(crate) fn new(config: &crate::config::HooksConfig, http: &reqwest::Client) -> Self {
        let backends = proxy::Backends::new(config, http);
        let armed = HookKind::ALL
            .iter()
            .filter(|k| backends.get(**k).is_some())
            .fold(0, |bits, k| bits | k.bit());
        Hooks {
            armed: AtomicU8::new(armed),
            connect: RwLock::new(None),
            subscribe: RwLock::new(None),
            publish: RwLock::new(None),
            backends,
        }
    }

    /// Whether a hook of `kind` is to be asked.
    pub(crate) fn armed(&self, kind: HookKind) -> bool {
        self.armed.load(Relaxed) & kind.bit() != 0
    }

    fn arm(&self, kind: HookKind) {
        self.armed.fetch_or(kind.bit(), Relaxed);
    }
}

impl Node {
    /// Decides who connects, with `hook`, during the handshake and before
    /// `connected` (bounded by `hooks.connect.timeout_ms`). With a connect
    /// hook, `auth.required` lets a connection without a token through to
    /// the hook, which must then name its user ([`ConnectDecision::As`]).
    /// Registering again replaces the hook; it wins over
    /// `hooks.connect.url`.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use hubbub_server::hooks::{ConnectDecision, ConnectRequest};
    /// let node = hubbub_server::Node::new(hubbub_server::Config::default()).unwrap();
    /// node.on_connect(|req: ConnectRequest| async move {
    ///     match req.header("cookie").and_then(|c| c.strip_prefix("session=")) {
    ///         Some(user) => ConnectDecision::As { user_id: user.to_owned(), info: None },
    ///         None => ConnectDecision::unauthorized("log in first"),
    ///     }
    /// });
    /// # });
    /// ```
    pub fn on_connect<F, Fut>(&self, hook: F)
    where
        F: Fn(ConnectRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ConnectDecision> + Send + 'static,
    {
        let hooks = &self.shared().hooks;
        *hooks.connect.write() = Some(Arc::new(move |r| Box::pin(hook(r))));
        hooks.arm(HookKind::Connect);
    }

    /// Decides each channel of a client's `subscribe` with `hook` (bounded
    /// by `hooks.subscribe.timeout_ms`). Registering again replaces the
    /// hook; it wins over `hooks.subscribe.url`.
    pub fn on_subscribe<F, Fut>(&self, hook: F)
    where
        F: Fn(SubscribeRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = SubscribeDecision> + Send + 'static,
    {
        let hooks = &self.shared().hooks;
        *hooks.subscribe.write() = Some(Arc::new(move |r| Box::pin(hook(r))));
        hooks.arm(HookKind::Subscribe);
    }

    /// Decides each client `publish` with `hook` (bounded by
    /// `hooks.publish.timeout_ms`). Registering again replaces the hook;
    /// it wins over `hooks.publish.url`.
    pub fn on_publish<F, Fut>(&self, hook: F)
    where
        F: Fn(PublishRequest) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = PublishDecision> + Send + 'static,
    {
        let hooks = &self.shared().hooks;
        *hooks.publish.write() = Some(Arc::new(move |r| Box::pin(hook(r))));
        hooks.arm(HookKind::Publish);
    }
}
