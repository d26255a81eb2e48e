//! Presence over HTTP: `GET /api/channels/{channel}/presence`, and the
//! counts the channel answers carry.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use hubbub_protocol::excerpt::quote;
use hubbub_protocol::rooms::PresenceEntry;
use serde::Serialize;

use super::error::ApiError;
use super::extract::{self, ApiPath};
use super::looking::ChannelAnswer;
use super::ApiState;
use crate::state::Shared;

/// Adds the presence counts of a channel that keeps presence.
pub(super) async fn with_presence(
    shared: &Shared,
    mut answer: ChannelAnswer,
) -> Result<ChannelAnswer, ApiError> {
    if crate::channel::classify(&shared.config, &answer.channel).presence() {
        let stats = shared
            .engine
            .presence
            .stats(&answer.channel)
            .await
            .map_err(|e| ApiError::engine(&shared.metrics, e))?;
        answer.presence_stats = Some(stats);
    }
    Ok(answer)
}

#[derive(Serialize)]
pub(super) struct PresenceAnswer {
    channel: String,
    members: Vec<PresenceEntry>,
}

/// `GET /api/channels/{channel}/presence`: who is on a channel that keeps
/// presence; 404 on one that keeps none (it has no presence to show).
pub(super) async fn presence(
    State(api): State<Arc<ApiState>>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<PresenceAnswer>, ApiError> {
    extract::channel(&name)?;
    let shared = &api.shared;
    if !crate::channel::classify(&shared.config, &name).presence() {
        return Err(ApiError::not_found(format!(
            "channel {} keeps no presence (its namespace has no presence = true)",
            quote(&name)
        )));
    }
    let members = shared
        .engine
        .presence
        .list(&name)
        .await
        .map_err(|e| ApiError::engine(&shared.metrics, e))?;
    Ok(Json(PresenceAnswer {
        channel: name,
        members,
    }))
}
