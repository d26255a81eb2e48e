//! One HTTP/1.1 connection, from the bytes the transport already read to
//! the last response, with every wait bounded: each request head (the
//! first one by `server.handshake_timeout_ms` in the transport, later ones
//! and keep-alive idle time together by `server.http_idle_timeout_ms`),
//! each body (`server.http_body_timeout_ms`), and the connection's place
//! among `server.max_http_connections`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use crate::http_conns::HttpPlace;
use crate::metrics::Metrics;
use crate::state::Shared;
use crate::transport::{MAX_HEAD, MAX_HEADERS};

/// hyper's read and write buffer bound per connection (its default is
/// about 400 KiB): heads stop at 16 KiB anyway, bodies stream through.
const MAX_BUF: usize = 64 << 10;

/// When the body of a request must have arrived, put in each request's
/// extensions so every body reader (`extract::read_bytes`) holds to it.
#[derive(Clone)]
pub(crate) struct BodyDeadline {
    /// The deadline: the head's arrival plus `server.http_body_timeout_ms`.
    pub at: Instant,
    /// Where a missed deadline is counted.
    pub metrics: Arc<Metrics>,
}

/// Serves HTTP/1.1 on one socket until the peer leaves, the connection
/// idles past `server.http_idle_timeout_ms`, a newer socket takes its
/// place, or shutdown begins. Each request sees the client's address as
/// `ConnectInfo`: the peer, or behind a trusted proxy the address
/// `X-Forwarded-For` names.
pub(crate) async fn serve_connection<S>(
    io: S,
    peer: SocketAddr,
    shared: Arc<Shared>,
    app: Router,
    place: HttpPlace,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let cfg = &shared.config.server;
    let idle = Duration::from_millis(cfg.http_idle_timeout_ms);
    let body_timeout = Duration::from_millis(cfg.http_body_timeout_ms);
    let trusted: Arc<[crate::net::IpNet]> = shared.limits.trusted_proxies.clone().into();
    let metrics = shared.metrics.clone();
    let requests = place.requests();
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            // In flight until answered: not evicted meanwhile.
            let busy = requests.start();
            let client = crate::net::client_addr(
                peer,
                req.headers()
                    .get("x-forwarded-for")
                    .and_then(|v| v.to_str().ok()),
                &trusted,
            );
            req.extensions_mut().insert(ConnectInfo(client));
            req.extensions_mut().insert(BodyDeadline {
                at: Instant::now() + body_timeout,
                metrics: metrics.clone(),
            });
            let mut app = app.clone();
            async move {
                use tower::Service;
                let response = app.call(req.map(axum::body::Body::new)).await;
                drop(busy);
                response
            }
        });
    let mut shutdown = shared.shutdown_signal();
    // hyper's header timeout starts when it begins waiting for a head, so
    // it bounds keep-alive idle time and a slow head together.
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(idle)
        .max_header_size(MAX_HEAD)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_BUF)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        done = conn.as_mut() => {
            if let Err(e) = done {
                if e.is_timeout() {
                    Metrics::inc(&shared.metrics.http_idle_closed);
                } else {
                    tracing::debug!(error = %e, "HTTP connection failed");
                }
            }
        }
        // The oldest idle socket when a newer one needed the place:
        // dropping the connection closes it.
        _ = place.evicted() => {}
        _ = async { let _ = shutdown.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}
