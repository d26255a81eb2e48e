//! The connect hook at the handshake (docs/hooks.md): asked after the
//! hub's own admission rules and before the upgrade is answered, in the
//! handshake's own task, so a slow hook delays that handshake alone.
//!
//! A refusal by the hook is a close, not an HTTP status: the upgrade is
//! answered 101 and at once followed by `disconnect` and a close frame
//! with the hook's code. Browsers cannot read the status of a refused
//! upgrade (they see only a failed connection, 1006), while a close code
//! and reason reach `onclose`, and every hubbub client already acts on
//! close codes (PROTOCOL.md section 9).

use std::sync::Arc;
use std::time::Duration;

use hubbub_protocol::{CloseCode, ServerMessage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::handshake::{admit_user, Admitted, Stream};
use super::request::{Refusal, Upgrade, MAX_HEADERS};
use crate::auth::Claims;
use crate::conn::driver::Role;
use crate::hooks::{ConnectDecision, ConnectRequest, HookKind};
use crate::hub::{encode_frame, Wire};
use crate::state::Shared;
use crate::util::now_ms;

/// What becomes of an admitted upgrade.
pub(super) enum Decided {
    /// Upgrade, as this user.
    Admit(Admitted),
    /// Refuse before the upgrade (the per-user limits).
    Refuse(Refusal),
    /// Upgrade, then close at once with this code and reason.
    Close(CloseCode, String),
}

/// Whether the connect hook is to be asked about `up`.
pub(super) fn hooked(shared: &Shared, up: &Upgrade) -> bool {
    up.role == Role::Hub && shared.hooks.armed(HookKind::Connect)
}

/// Asks the connect hook, when there is one, about an upgrade that passed
/// `admit`, then takes the per-user places for whoever it is now. `head`
/// is the request head, read for the query and headers only when a hook
/// is asked.
pub(super) async fn decide(
    shared: &Arc<Shared>,
    up: &Upgrade,
    head: &[u8],
    admitted: Admitted,
) -> Decided {
    if hooked(shared, up) {
        return Box::pin(ask(shared, head, admitted)).await;
    }
    limit_user(shared, admitted)
}

/// The connect hook's decision, then the per-user limits.
pub(super) async fn ask(shared: &Arc<Shared>, head: &[u8], mut admitted: Admitted) -> Decided {
    let seq = shared.conns.next_seq();
    admitted.seq = std::num::NonZeroU64::new(seq);
    let (query, headers) = query_and_headers(head);
    let req = ConnectRequest {
        connection_id: shared.conns.connection_id(seq),
        user_id: admitted.user_id.clone(),
        authenticated: admitted.claims.is_some(),
        remote_addr: admitted.client,
        query,
        headers,
    };
    match crate::hooks::run::connect(shared, req).await {
        ConnectDecision::Allow => {}
        ConnectDecision::As { user_id, info } => become_user(&mut admitted, user_id, info),
        ConnectDecision::Deny { close_code, reason } => return Decided::Close(close_code, reason),
    }
    if admitted.user_id.is_none() && shared.config.auth_required() {
        return Decided::Close(
            CloseCode::UNAUTHORIZED,
            "no token, and the connect hook named no user".into(),
        );
    }
    limit_user(shared, admitted)
}

fn limit_user(shared: &Shared, admitted: Admitted) -> Decided {
    match admit_user(shared, &admitted) {
        Ok(()) => Decided::Admit(admitted),
        Err(r) => Decided::Refuse(r),
    }
}

/// The connection becomes `user_id`: a JWT for the same user keeps what it
/// grants, the hook's `info` merged over its own; one for another user is
/// set aside (its grants and expiry were for someone else).
fn become_user(admitted: &mut Admitted, user_id: String, info: Option<crate::hooks::Info>) {
    let mut claims = match admitted.claims.take() {
        Some(c) if c.sub == user_id => c,
        _ => Claims::for_user(user_id.clone()),
    };
    if let Some(info) = info {
        claims
            .info
            .get_or_insert_with(Default::default)
            .extend(info);
    }
    admitted.user_id = Some(user_id);
    admitted.claims = Some(claims);
}

/// The query string without `token`, and the headers without
/// `Authorization`, names in lowercase: the JWT is the hub's to check,
/// never the hook's to see.
fn query_and_headers(head: &[u8]) -> (String, Vec<(String, String)>) {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    if req.parse(head).is_err() {
        return (String::new(), Vec::new());
    }
    let query = req
        .path
        .and_then(|p| p.split_once('?'))
        .map(|(_, q)| {
            q.split('&')
                .filter(|kv| {
                    let key = kv.split('=').next().unwrap_or_default();
                    !form_urlencoded::parse(key.as_bytes()).any(|(k, _)| k == "token")
                })
                .collect::<Vec<_>>()
                .join("&")
        })
        .unwrap_or_default();
    let headers = req
        .headers
        .iter()
        .filter(|h| !h.name.eq_ignore_ascii_case("authorization"))
        .filter_map(|h| {
            let value = std::str::from_utf8(h.value).ok()?;
            Some((h.name.to_ascii_lowercase(), value.to_owned()))
        })
        .collect();
    (query, headers)
}

/// `disconnect` and the close frame, for a connection refused after its
/// upgrade.
pub(super) fn closing_frames(up: &Upgrade, code: CloseCode, reason: &str) -> Vec<u8> {
    let msg = ServerMessage::Disconnect {
        code: code.0,
        reason: reason.to_owned(),
        reconnect: code.reconnect(),
    };
    let mut out = Vec::new();
    if let Some(f) = encode_frame(&msg, None, now_ms(), Wire::websocket(up.encoding)) {
        out.extend_from_slice(&f);
    }
    out.extend_from_slice(&hubbub_ws::close_frame(code.0, reason));
    out
}

/// Answers the upgrade, sends `disconnect` and the close frame, and waits
/// (briefly) for the client to close: closing with unread bytes would
/// reset the connection and could lose the close frame on the way.
pub(super) async fn close_upgraded<S: Stream>(
    mut stream: S,
    up: &Upgrade,
    code: CloseCode,
    reason: &str,
) {
    let accept = hubbub_ws::handshake::accept_key(up.key.as_bytes());
    let protocol = up.echo_protocol.then(|| up.encoding.subprotocol());
    let mut out = hubbub_ws::handshake::response_101(&accept, protocol, &[]);
    out.extend_from_slice(&closing_frames(up, code, reason));
    linger_close(&mut stream, &out).await;
}

/// Writes `out`, shuts the write side and reads until the client closes,
/// within 5 s altogether and 64 KiB read.
pub(super) async fn linger_close<S: Stream>(stream: &mut S, out: &[u8]) {
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        if stream.write_all(out).await.is_err() || stream.shutdown().await.is_err() {
            return;
        }
        let mut sink = vec![0u8; 4096];
        let mut read = 0;
        while read < 64 << 10 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(n) => read += n,
            }
        }
    })
    .await;
}
