//! Publishing (HTTP_API.md "Publishing"): publish, broadcast, send to a
//! user, disconnect. None of these waits on a socket: events are queued on
//! connections' bounded outboxes and closes are requests to their tasks.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use hubbub_protocol::JsonData;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{self, ApiJson, ApiPath, OptionalJson};
use super::ApiState;
use crate::conn::handle::CloseRequest;
use crate::engine::EngineError;

/// An engine failure, as every publishing endpoint answers it: 503
/// `unavailable`, nothing reported as delivered.
fn unavailable(e: EngineError) -> ApiError {
    ApiError::unavailable(format!("the event could not be published: {}", e.0))
}

/// Most channels one broadcast may name.
pub(super) const MAX_BROADCAST_CHANNELS: usize = 1000;

#[derive(Deserialize)]
pub(super) struct PublishBody {
    channel: String,
    event_type: String,
    data: JsonData,
}

#[derive(Serialize)]
pub(super) struct PublishAnswer {
    channel: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<String>,
    subscribers: usize,
}

/// `POST /api/publish`: one event to one channel.
pub(super) async fn publish(
    State(api): State<Arc<ApiState>>,
    ApiJson(body): ApiJson<PublishBody>,
) -> Result<Json<PublishAnswer>, ApiError> {
    extract::channel(&body.channel)?;
    extract::event_type(&body.event_type)?;
    extract::data(&body.data)?;
    let out = api
        .shared
        .publish(&body.channel, &body.event_type, body.data, None)
        .await
        .map_err(unavailable)?;
    Ok(Json(PublishAnswer {
        channel: body.channel,
        offset: out.offset,
        epoch: out.epoch.map(|e| e.to_string()),
        subscribers: out.subscribers,
    }))
}

#[derive(Deserialize)]
pub(super) struct BroadcastBody {
    channels: Vec<String>,
    event_type: String,
    data: JsonData,
}

#[derive(Serialize)]
pub(super) struct BroadcastResult {
    channel: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    subscribers: usize,
}

#[derive(Serialize)]
pub(super) struct BroadcastAnswer {
    results: Vec<BroadcastResult>,
}

/// `POST /api/broadcast`: one event to up to 1000 channels. Every name is
/// checked before anything is published, so a bad name publishes nothing.
/// A channel named twice is published to once.
pub(super) async fn broadcast(
    State(api): State<Arc<ApiState>>,
    ApiJson(body): ApiJson<BroadcastBody>,
) -> Result<Json<BroadcastAnswer>, ApiError> {
    if body.channels.is_empty() {
        return Err(ApiError::bad_request("channels must not be empty"));
    }
    if body.channels.len() > MAX_BROADCAST_CHANNELS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_BROADCAST_CHANNELS} channels per broadcast"
        )));
    }
    extract::event_type(&body.event_type)?;
    for ch in &body.channels {
        extract::channel(ch)?;
    }
    extract::data(&body.data)?;
    let results = api
        .shared
        .broadcast(&body.channels, &body.event_type, &body.data)
        .await
        .map_err(unavailable)?
        .into_iter()
        .map(|(channel, out)| BroadcastResult {
            channel,
            offset: out.offset,
            subscribers: out.subscribers,
        })
        .collect();
    Ok(Json(BroadcastAnswer { results }))
}

#[derive(Deserialize)]
pub(super) struct SendBody {
    event_type: String,
    data: JsonData,
}

#[derive(Serialize)]
pub(super) struct SendAnswer {
    connections: usize,
    queued: bool,
}

/// `POST /api/users/{user_id}/send`: one event on the channel
/// `user:<user_id>`, encoded once per encoding and queued on every live
/// connection of the user, whether or not it subscribed.
/// A user with no live connection gets it queued (bounded per user, with a
/// TTL) and delivered right after `connected` on the next connection:
/// `connections: 0, queued: true`.
pub(super) async fn send_to_user(
    State(api): State<Arc<ApiState>>,
    ApiPath(user_id): ApiPath<String>,
    ApiJson(body): ApiJson<SendBody>,
) -> Result<Json<SendAnswer>, ApiError> {
    extract::user_id(&user_id)?;
    extract::event_type(&body.event_type)?;
    extract::data(&body.data)?;
    let out = api
        .shared
        .send_to_user(&user_id, &body.event_type, body.data)
        .await
        .map_err(unavailable)?;
    Ok(Json(SendAnswer {
        connections: out.connections,
        queued: out.queued,
    }))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct DisconnectBody {
    reason: Option<String>,
    reconnect: Option<bool>,
}

#[derive(Serialize)]
pub(super) struct DisconnectAnswer {
    disconnected: usize,
}

impl DisconnectBody {
    /// The close request: code 4100, the given reason (else the code's
    /// own; at most 123 characters, whole in `disconnect`, its first 123
    /// bytes in the close frame), `reconnect` true unless told otherwise,
    /// queued events first.
    fn request(self) -> Result<CloseRequest, ApiError> {
        // Characters, as the OpenAPI `maxLength` counts; the close frame
        // carries the first 123 bytes, cut on a character boundary.
        if self
            .reason
            .as_ref()
            .is_some_and(|r| r.chars().count() > hubbub_ws::MAX_CLOSE_REASON)
        {
            return Err(ApiError::bad_request(format!(
                "reason must be at most {} characters",
                hubbub_ws::MAX_CLOSE_REASON
            )));
        }
        Ok(CloseRequest::api_disconnect(
            self.reason,
            self.reconnect.unwrap_or(true),
        ))
    }
}

/// `POST /api/users/{user_id}/disconnect`: closes every live connection of
/// the user on this node with 4100. `disconnected` counts those that were
/// not closing already; an unknown user gets 0.
pub(super) async fn disconnect_user(
    State(api): State<Arc<ApiState>>,
    ApiPath(user_id): ApiPath<String>,
    OptionalJson(body): OptionalJson<DisconnectBody>,
) -> Result<Json<DisconnectAnswer>, ApiError> {
    extract::user_id(&user_id)?;
    let request = body.request()?;
    Ok(Json(DisconnectAnswer {
        disconnected: api.shared.conns.close_user(&user_id, &request),
    }))
}

/// `POST /api/connections/{connection_id}/disconnect`: closes one
/// connection with 4100; 404 `not_found` if no such connection is live.
pub(super) async fn disconnect_connection(
    State(api): State<Arc<ApiState>>,
    ApiPath(connection_id): ApiPath<String>,
    OptionalJson(body): OptionalJson<DisconnectBody>,
) -> Result<Json<DisconnectAnswer>, ApiError> {
    let request = body.request()?;
    let handle = api
        .shared
        .conns
        .by_id(&connection_id)
        .ok_or_else(|| ApiError::not_found("no such connection on this node"))?;
    Ok(Json(DisconnectAnswer {
        disconnected: usize::from(handle.close(request)),
    }))
}
