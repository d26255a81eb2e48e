//! The WebSocket endpoint inside someone else's axum application.
//!
//! Standalone, the transport reads each socket's first request head itself
//! (see `handshake`). Mounted, axum has already parsed the request: the
//! head is rebuilt from it and goes through the same parser and the same
//! admission rules, hyper answers the 101, and the upgraded stream becomes
//! a connection like any other. The connection then owns hyper's upgraded
//! stream rather than the bare socket (with whatever hyper keeps around it),
//! so the idle figures of `docs/fanout.md`, measured on `serve`, do not
//! speak for it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;

use super::connect_hook::{closing_frames, decide, linger_close, Decided};
use super::handshake::{admit, reserve, start, unreserve};
use super::request::{parse_upgrade, Refusal};
use crate::metrics::Metrics;
use crate::state::Shared;

/// Where a mounted endpoint's clients appear to come from when the
/// application serves without `into_make_service_with_connect_info`.
const UNKNOWN_PEER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0);

/// Answers one WebSocket upgrade request at the router's `/ws`.
pub(crate) async fn upgrade(shared: Arc<Shared>, mut req: Request) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(UNKNOWN_PEER, |c| c.0);
    let head = rebuild_head(&req);
    let parsed = parse_upgrade(&head, false).and_then(|up| match up {
        Some(up) => admit(&up, peer, &shared).map(|a| Some((up, a))),
        None => Ok(None),
    });
    let (up, admitted) = match parsed {
        Ok(Some(x)) => x,
        Ok(None) => {
            return refusal(Refusal::new(
                426,
                "bad_request",
                "this endpoint takes WebSocket upgrades only",
            ))
        }
        Err(r) => {
            Metrics::inc(&shared.metrics.handshakes_refused);
            return refusal(r);
        }
    };
    // Admitted, or refused by the connect hook: then the upgrade is
    // answered and closed at once with these frames (see `connect_hook`).
    let (admitted, closing) = match decide(&shared, &up, &head, admitted).await {
        Decided::Admit(a) => (Some(a), Vec::new()),
        Decided::Refuse(r) => {
            Metrics::inc(&shared.metrics.handshakes_refused);
            return refusal(r);
        }
        Decided::Close(code, reason) => (None, closing_frames(&up, code, &reason)),
    };
    if let Some(a) = &admitted {
        if let Err(r) = reserve(&shared, a) {
            return refusal(r);
        }
    }
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        if let Some(a) = &admitted {
            unreserve(&shared, a);
        }
        return refusal(Refusal::new(
            400,
            "bad_request",
            "the server under this router does not support upgrades (serve it with axum::serve)",
        ));
    };
    let accept = hubbub_ws::handshake::accept_key(up.key.as_bytes());
    let protocol = up.echo_protocol.then(|| up.encoding.subprotocol());
    let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(p) = protocol {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
    }
    tokio::spawn(async move {
        match (on_upgrade.await, admitted) {
            (Ok(upgraded), Some(admitted)) => {
                start(
                    TokioIo::new(upgraded),
                    shared,
                    up,
                    admitted,
                    Vec::new(),
                    &[],
                )
                .await
            }
            (Ok(upgraded), None) => {
                Box::pin(linger_close(&mut TokioIo::new(upgraded), &closing)).await
            }
            (Err(e), admitted) => {
                tracing::debug!(error = %e, "upgrade failed");
                if let Some(a) = &admitted {
                    unreserve(&shared, a);
                }
            }
        }
    });
    response
}

/// The request head as it came, for the one parser every upgrade goes
/// through. The path is the one under the router (a prefix the application
/// nested it under is already gone).
fn rebuild_head(req: &Request) -> Vec<u8> {
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    let mut head = format!("{} {target} HTTP/1.1\r\n", req.method()).into_bytes();
    for (name, value) in req.headers() {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

fn refusal(r: Refusal) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::BAD_REQUEST);
    let body = axum::Json(serde_json::json!({"error": {"code": r.code, "message": r.message}}));
    let mut response = (status, body).into_response();
    for (k, v) in r.headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            response.headers_mut().insert(k, v);
        }
    }
    response
}
