//! Reading the first request head and answering WebSocket upgrades.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use hubbub_protocol::ServerMessage;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::connect_hook::{ask, close_upgraded, hooked, Decided};
use super::request::{head_status, parse_upgrade, Refusal, Upgrade};
use super::rewind::Rewind;
use crate::auth::{valid_user_id, Claims, MAX_TOKEN_LEN};
use crate::conn::driver::{Conn, Role};
use crate::conn::handle::ConnHandle;
use crate::hooks::HookKind;
use crate::http_conns::HttpConns;
use crate::hub::{encode_frame, Wire};
use crate::metrics::Metrics;
use crate::net;
use crate::state::Shared;
use crate::util::now_ms;

/// What a stream needs for the handshake and the connection after it:
/// a TCP socket, or a TLS stream over one.
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> Stream for S {}

/// Who an admitted connection is.
pub(super) struct Admitted {
    /// The client's address (behind a trusted proxy, the forwarded one).
    pub(super) client: SocketAddr,
    pub(super) user_id: Option<String>,
    pub(super) claims: Option<Claims>,
    /// The connection's number, when the connect hook was told its id
    /// (numbers start at 1; no bigger than a `u64`, as this is in every
    /// handshake's future several times over).
    pub(super) seq: Option<std::num::NonZeroU64>,
}

/// Serves one accepted socket (plain or TLS): a WebSocket upgrade or HTTP.
/// The request head must be complete by `deadline`. A socket that turns
/// out to be HTTP takes a place among `server.max_http_connections`
/// first (see `http_conns`); WebSocket upgrades never do, so a burst of
/// handshakes is not limited by it.
pub(crate) async fn serve_socket<S: Stream>(
    mut stream: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    app: axum::Router,
    deadline: Instant,
) {
    let head = tokio::time::timeout_at(deadline, read_head(&mut stream)).await;
    let (buf, head_len) = match head {
        Ok(Ok(Some(h))) => h,
        Ok(Ok(None)) => return,
        Ok(Err(refusal)) => {
            Metrics::inc(&shared.metrics.handshakes_refused);
            return refuse(stream, refusal).await;
        }
        Err(_) => {
            // A peer that never finishes its request head (slowloris).
            Metrics::inc(&shared.metrics.handshakes_refused);
            Metrics::inc(&shared.metrics.handshake_timeouts);
            return;
        }
    };
    let parsed =
        parse_upgrade(&buf[..head_len], shared.config.server.testing_echo).and_then(|up| {
            up.map(|up| admit(&up, peer, &shared).map(|a| next(&shared, up, a)))
                .transpose()
        });
    match parsed {
        Ok(Some(Next::Upgrade(up, admitted))) => {
            upgrade(stream, shared, up, admitted, &buf[head_len..]).await
        }
        Ok(Some(Next::Hook(up, admitted))) => {
            let (head, leftover) = buf.split_at(head_len);
            Box::pin(upgrade_hooked(stream, shared, up, admitted, head, leftover)).await
        }
        Ok(Some(Next::Refuse(refusal))) | Err(refusal) => {
            Metrics::inc(&shared.metrics.handshakes_refused);
            refuse(stream, refusal).await
        }
        Ok(None) => {
            let Some(place) = HttpConns::admit(&shared) else {
                Metrics::inc(&shared.metrics.http_connections_refused);
                let r = Refusal::new(
                    503,
                    "server_full",
                    "HTTP connection limit reached (server.max_http_connections)",
                )
                .retry_after(5);
                return refuse(stream, r).await;
            };
            super::super::http::serve_connection(
                Rewind::new(buf.freeze(), stream),
                peer,
                shared,
                app,
                place,
            )
            .await
        }
    }
}

/// Where an admitted upgrade goes next. Decided in a plain function, so
/// that nothing is borrowed across an await in the handshake's future (a
/// borrowed local keeps its own place in it: measured, 440 bytes more per
/// handshake and more idle RSS per connection).
enum Next {
    Upgrade(Upgrade, Admitted),
    /// To the connect hook first.
    Hook(Upgrade, Admitted),
    Refuse(Refusal),
}

fn next(shared: &Shared, up: Upgrade, admitted: Admitted) -> Next {
    if hooked(shared, &up) {
        return Next::Hook(up, admitted);
    }
    match admit_user(shared, &admitted) {
        Ok(()) => Next::Upgrade(up, admitted),
        Err(r) => Next::Refuse(r),
    }
}

/// An upgrade the connect hook decides on: admitted (and limited per
/// user), refused, or answered and closed. Boxed by the caller, so that
/// the hook's state is not part of every handshake's future.
async fn upgrade_hooked<S: Stream>(
    stream: S,
    shared: Arc<Shared>,
    up: Upgrade,
    admitted: Admitted,
    head: &[u8],
    leftover: &[u8],
) {
    match ask(&shared, head, admitted).await {
        Decided::Admit(a) => upgrade(stream, shared, up, a, leftover).await,
        Decided::Refuse(r) => {
            Metrics::inc(&shared.metrics.handshakes_refused);
            refuse(stream, r).await
        }
        Decided::Close(code, reason) => close_upgraded(stream, &up, code, &reason).await,
    }
}

/// Reads until a complete request head; returns the buffer and the head length.
async fn read_head<S: Stream>(stream: &mut S) -> Result<Option<(BytesMut, usize)>, Refusal> {
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return Ok(None),
            Ok(_) => {}
        }
        if let Some(n) = head_status(&buf)? {
            return Ok(Some((buf, n)));
        }
    }
}

/// The admission rules, in order (PROTOCOL.md section 1; docs/security.md):
/// the Origin allow-list (403), the per-address connection rate (429),
/// credentials (401; `?user_id=` only in development without
/// `auth.required`). Then the connect hook and [`admit_user`] (see
/// `connect_hook::decide`). The testing echo endpoint is exempt.
pub(super) fn admit(up: &Upgrade, peer: SocketAddr, shared: &Shared) -> Result<Admitted, Refusal> {
    let m = &shared.metrics;
    if up.role == Role::Echo {
        return Ok(Admitted {
            client: peer,
            user_id: None,
            claims: None,
            seq: None,
        });
    }
    let limits = &shared.limits;
    if let Some(origin) = &up.origin {
        if !limits.origin_allowed(origin) {
            Metrics::inc(&m.origin_refused);
            return Err(Refusal::new(
                403,
                "forbidden",
                "this Origin may not open connections (server.allowed_origins)",
            ));
        }
    }
    let client = net::client_addr(peer, up.forwarded_for.as_deref(), &limits.trusted_proxies);
    let now = std::time::Instant::now();
    if let Err(wait) = limits.check_address(client.ip(), now) {
        Metrics::inc(&m.ip_rate_limited);
        return Err(Refusal::new(
            429,
            "rate_limited",
            "too many new connections from this address; retry later",
        )
        .retry_after(wait));
    }
    let required = shared.config.auth_required();
    let (user_id, claims) = match (&up.token, &up.user_id) {
        (Some(_), Some(_)) => {
            return Err(Refusal::new(
                400,
                "bad_request",
                "give either a token or user_id, not both",
            ))
        }
        (Some(token), None) => {
            if token.len() > MAX_TOKEN_LEN {
                Metrics::inc(&m.auth_failures);
                return Err(Refusal::unauthorized(
                    crate::auth::AuthError::TooLarge.to_string(),
                ));
            }
            let verified = match &shared.auth {
                Some(a) => a.authenticate(token),
                None => Err(crate::auth::AuthError::NotConfigured),
            };
            match verified {
                Ok(c) => (Some(c.sub.clone()), Some(c)),
                Err(e) => {
                    Metrics::inc(&m.auth_failures);
                    return Err(Refusal::unauthorized(e.to_string()));
                }
            }
        }
        (None, Some(user)) => {
            if !shared.config.is_development() || required {
                Metrics::inc(&m.auth_failures);
                return Err(Refusal::unauthorized(
                    "user_id is only accepted in development mode without auth.required; send a token",
                ));
            }
            if !valid_user_id(user) {
                return Err(Refusal::new(
                    400,
                    "bad_request",
                    "user_id must be 1-128 characters of A-Z a-z 0-9 _ . - : @",
                ));
            }
            (Some(user.clone()), None)
        }
        // The connect hook is the application's own authentication: it
        // must then name the user (checked once it has decided).
        (None, None) if required && !shared.hooks.armed(HookKind::Connect) => {
            Metrics::inc(&m.auth_failures);
            return Err(Refusal::unauthorized(
                "a token is required: ?token= or Authorization: Bearer",
            ));
        }
        (None, None) => (None, None),
    };
    Ok(Admitted {
        client,
        user_id,
        claims,
        seq: None,
    })
}

/// The per-user rules, once the user is known for good (after the connect
/// hook, which may name another): the per-user connection rate (429) and
/// limit (503 `server_full`, as for the global limit), the place taken.
pub(super) fn admit_user(shared: &Shared, admitted: &Admitted) -> Result<(), Refusal> {
    let (m, limits) = (&shared.metrics, &shared.limits);
    let now = std::time::Instant::now();
    if let Some(user) = &admitted.user_id {
        if let Err(wait) = limits.per_user.check(Box::from(user.as_str()), now) {
            Metrics::inc(&m.user_rate_limited);
            return Err(Refusal::new(
                429,
                "rate_limited",
                "too many new connections for this user; retry later",
            )
            .retry_after(wait));
        }
        // Checked and taken under one lock: simultaneous handshakes of one
        // user cannot both take the last place.
        let max = shared.config.limits.max_connections_per_user;
        if !shared.conns.try_reserve_user(user, max) {
            Metrics::inc(&m.user_connection_limit);
            return Err(Refusal::new(
                503,
                "server_full",
                format!(
                    "this user already has {max} connections (limits.max_connections_per_user)"
                ),
            )
            .retry_after(5));
        }
    }
    Ok(())
}

/// The optional features this hub offers, for `connected.features`, so a
/// client can tell what it may use before trying it.
fn features(shared: &Shared) -> Vec<&'static str> {
    let mut f = vec![
        "history",
        "recovery",
        "user_queue",
        "presence",
        "rooms",
        "rpc",
    ];
    if shared.auth.is_some() {
        f.push("auth");
    }
    f
}

async fn upgrade<S: Stream>(
    mut stream: S,
    shared: Arc<Shared>,
    up: Upgrade,
    admitted: Admitted,
    leftover: &[u8],
) {
    if let Err(r) = reserve(&shared, &admitted) {
        return refuse(stream, r).await;
    }
    let accept = hubbub_ws::handshake::accept_key(up.key.as_bytes());
    let protocol = up.echo_protocol.then(|| up.encoding.subprotocol());
    let response = hubbub_ws::handshake::response_101(&accept, protocol, &[]);
    // On `/ws` the 101 head leaves in the same write as `connected`: one of
    // the three sends of a handshake fewer (sends were half the server's
    // CPU during a burst of handshakes). The echo endpoint has no first
    // message to join.
    let mut head = Vec::new();
    if up.role == Role::Hub {
        head = response;
    } else if stream.write_all(&response).await.is_err() {
        unreserve(&shared, &admitted);
        return;
    }
    start(stream, shared, up, admitted, head, leftover).await
}

/// Takes a place among `server.max_connections` for an admitted upgrade,
/// or refuses it (shutting down, full). On refusal the per-user place
/// `admit` took is given back.
pub(super) fn reserve(shared: &Shared, admitted: &Admitted) -> Result<(), Refusal> {
    if shared.shutting_down.load(Relaxed) {
        unreserve_user(shared, admitted);
        return Err(Refusal::new(503, "unavailable", "server is shutting down").retry_after(5));
    }
    if !shared
        .conns
        .try_reserve(shared.config.server.max_connections)
    {
        unreserve_user(shared, admitted);
        Metrics::inc(&shared.metrics.connections_refused_full);
        return Err(Refusal::new(503, "server_full", "connection limit reached").retry_after(5));
    }
    Ok(())
}

fn unreserve_user(shared: &Shared, admitted: &Admitted) {
    if let Some(user) = &admitted.user_id {
        shared.conns.release_user(user);
    }
}

/// Gives back what [`reserve`] took, for an upgrade that never started.
pub(super) fn unreserve(shared: &Shared, admitted: &Admitted) {
    unreserve_user(shared, admitted);
    shared.conns.release();
}

/// Starts an upgraded connection: registers it, queues `head` (the 101
/// response when the transport answers the upgrade itself) joined with
/// `connected` and what was kept for its user, and spawns its task.
pub(super) async fn start<S: Stream>(
    stream: S,
    shared: Arc<Shared>,
    up: Upgrade,
    admitted: Admitted,
    mut head: Vec<u8>,
    leftover: &[u8],
) {
    let seq = admitted
        .seq
        .map_or_else(|| shared.conns.next_seq(), std::num::NonZeroU64::get);
    let wire = Wire::websocket(up.encoding);
    let handle = Arc::new(ConnHandle::new(
        seq,
        admitted.user_id,
        wire,
        admitted.client,
        now_ms(),
    ));
    if up.role == Role::Hub {
        let cfg = &shared.config.connection;
        let connected = ServerMessage::Connected {
            connection_id: shared.conns.connection_id(seq),
            user_id: handle.user_id.as_deref().map(str::to_owned),
            server_time: now_ms(),
            heartbeat_interval_ms: cfg.heartbeat_interval_ms,
            max_message_size: cfg.max_message_size,
            encoding: up.encoding.name().into(),
            features: features(&shared).into_iter().map(Into::into).collect(),
        };
        if let Some(frame) = encode_frame(&connected, None, now_ms(), wire) {
            head.extend_from_slice(&frame);
        }
    }
    // A user's connection takes what was kept for the user while offline,
    // registered at the moment the engine hands it over (see
    // `Broker::attach_user`), so no send falls between.
    let offline = register(&shared, &handle).await;
    shared.on_connect.tell(|| crate::Connected {
        connection_id: shared.conns.connection_id(seq),
        user_id: handle.user_id.as_deref().map(str::to_owned),
        encoding: up.encoding.name(),
        remote_addr: handle.remote_addr,
    });
    // Every connection with a user is subscribed to its own `user:<id>`
    // (PROTOCOL.md section 3), before the offline queue is handed over.
    let user_channel = match (handle.user_id.as_deref(), up.role) {
        (Some(user), Role::Hub) => {
            let name = shared
                .hub
                .subscribe(&format!("user:{user}"), &handle, None, false);
            let mut subs = handle.subscriptions.lock();
            if subs.is_empty() {
                subs.reserve_exact(1);
            }
            subs.push(name.clone());
            Some(name)
        }
        _ => None,
    };
    // This node wants the user's channel from any node (a no-op for the
    // memory engine). Should the engine fail, events published to
    // `user:<id>` on this node still arrive; user sends do not depend on
    // it (they go through `Broker::send_to_user`).
    if let Some(name) = user_channel {
        if let Err(e) = shared.engine.broker.subscribe(&name).await {
            Metrics::inc(&shared.metrics.engine_errors);
            tracing::warn!(
                error = %e,
                connection_id = %shared.conns.connection_id(handle.seq),
                channel = %name,
                "the engine did not take the user channel"
            );
        }
    }
    Metrics::inc(&shared.metrics.connections_accepted);
    let mut conn = Conn::new(stream, shared, handle, up.role, leftover);
    if !head.is_empty() {
        conn.queue_head(head.into());
    }
    conn.set_claims(admitted.claims);
    conn.send_direct(offline.iter().filter_map(|p| p.frame(wire).cloned()));
    // A task of its own, sized for the connection alone (not the handshake).
    tokio::spawn(conn.run());
}

/// Registers a new connection with the node, and for a user's connection
/// takes what the engine kept for the user. Should the engine fail, the
/// connection is still served; what was kept waits for the next one.
async fn register(
    shared: &Arc<Shared>,
    handle: &Arc<ConnHandle>,
) -> Vec<Arc<crate::hub::Publication>> {
    let Some(user) = handle.user_id.as_deref() else {
        shared.conns.insert(handle.clone());
        return Vec::new();
    };
    let mut registered = false;
    let taken = {
        let mut insert = || {
            if !registered {
                shared.conns.insert(handle.clone());
                registered = true;
            }
        };
        shared.engine.broker.attach_user(user, &mut insert).await
    };
    if !registered {
        shared.conns.insert(handle.clone());
    }
    taken.unwrap_or_else(|e| {
        Metrics::inc(&shared.metrics.engine_errors);
        tracing::warn!(
            error = %e,
            connection_id = %shared.conns.connection_id(handle.seq),
            "offline queue unavailable; the connection goes on without it"
        );
        Vec::new()
    })
}

async fn refuse<S: Stream>(mut stream: S, r: Refusal) {
    let body = serde_json::json!({"error": {"code": r.code, "message": r.message}}).to_string();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
        r.status,
        reason(r.status),
        body.len()
    );
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(&body);
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = stream.write_all(head.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Error",
    }
}
