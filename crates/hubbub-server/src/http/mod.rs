//! The HTTP side of the hub: the API for backends and operators
//! (`shared/spec/HTTP_API.md`), health checks and metrics.
//!
//! [`app`] builds the axum router (tests call it directly); the transport
//! hands every non-WebSocket socket to [`serve_connection`].

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hubbub_protocol::{validate_channel, JsonData};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::state::Shared;

/// Every route of the hub, with its state.
pub fn app(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/api/publish", post(publish))
        .with_state(shared)
}

/// An API error: status plus `{"error": {"code", "message"}}`.
pub struct ApiError(pub StatusCode, pub &'static str, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.1, "message": self.2}});
        (self.0, Json(body)).into_response()
    }
}

#[derive(Deserialize)]
struct PublishBody {
    channel: String,
    event_type: String,
    data: JsonData,
}

async fn publish(
    State(shared): State<Arc<Shared>>,
    Json(body): Json<PublishBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    validate_channel(&body.channel)
        .map_err(|m| ApiError(StatusCode::BAD_REQUEST, "bad_request", m))?;
    let out = shared
        .hub
        .publish(&body.channel, &body.event_type, body.data, None);
    Ok(Json(serde_json::json!({
        "channel": body.channel, "offset": out.offset, "epoch": out.epoch, "subscribers": out.subscribers
    })))
}

/// Serves HTTP/1.1 on one socket until the peer leaves or shutdown begins.
pub(crate) async fn serve_connection<S>(io: S, peer: SocketAddr, shared: Arc<Shared>, app: Router)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let mut app = app.clone();
            async move {
                use tower::Service;
                app.call(req.map(axum::body::Body::new)).await
            }
        });
    let mut shutdown = shared.shutdown_signal();
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = async { let _ = shutdown.wait_for(|s| *s).await; } => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), conn).await;
        }
    }
}
