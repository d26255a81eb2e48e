//! The Rooms API (HTTP_API.md "Rooms"): create, list, look at, delete.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use hubbub_protocol::excerpt::quote;
use hubbub_protocol::rooms::PresenceEntry;
use hubbub_protocol::ErrorCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath};
use super::ApiState;
use crate::engine::{room_channel, RoomSettings, RoomState};
use crate::state::Shared;

/// Largest capacity a room may be given.
const MAX_CAPACITY: usize = 1_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewRoom {
    room: String,
    capacity: Option<usize>,
    #[serde(default)]
    private: bool,
    owner: Option<String>,
    metadata: Option<Map<String, Value>>,
}

/// A room as the list shows it: `members` is a count.
#[derive(Serialize)]
pub(super) struct RoomSummary {
    room: String,
    members: usize,
    capacity: usize,
    private: bool,
    owner: Option<String>,
    metadata: Map<String, Value>,
    created_at: u64,
}

/// A room with its members' presence entries.
#[derive(Serialize)]
pub(super) struct RoomView {
    room: String,
    members: Vec<PresenceEntry>,
    capacity: usize,
    private: bool,
    owner: Option<String>,
    metadata: Map<String, Value>,
    created_at: u64,
}

fn summary(r: &RoomState) -> RoomSummary {
    let i = &r.settings;
    RoomSummary {
        room: i.room.clone(),
        members: r.members,
        capacity: i.capacity,
        private: i.private,
        owner: i.owner.clone(),
        metadata: i.metadata.clone(),
        created_at: i.created_at,
    }
}

async fn view(shared: &Shared, i: &RoomSettings) -> Result<RoomView, ApiError> {
    let members = shared
        .engine
        .presence
        .list(&room_channel(&i.room))
        .await
        .map_err(|e| ApiError::engine(&shared.metrics, e))?;
    Ok(RoomView {
        room: i.room.clone(),
        members,
        capacity: i.capacity,
        private: i.private,
        owner: i.owner.clone(),
        metadata: i.metadata.clone(),
        created_at: i.created_at,
    })
}

fn room_name(room: &str) -> Result<(), ApiError> {
    crate::rooms::valid_name(room)
        .map_err(|m| ApiError::bad_request(format!("room {}: {m}", quote(room))))
}

/// `GET /api/rooms`: every room of the cluster, by name. Callers of the
/// API are the hub's operators (an API key, an admin token, or loopback
/// in development), so private rooms are listed too.
pub(super) async fn list(
    State(api): State<Arc<ApiState>>,
) -> Result<Json<Vec<RoomSummary>>, ApiError> {
    let rooms = api
        .shared
        .engine
        .rooms
        .list()
        .await
        .map_err(|e| ApiError::engine(&api.shared.metrics, e))?;
    Ok(Json(rooms.iter().map(summary).collect()))
}

/// `POST /api/rooms`: 201 with the room; 409 `already_exists`.
pub(super) async fn create(
    State(api): State<Arc<ApiState>>,
    ApiJson(new): ApiJson<NewRoom>,
) -> Result<(StatusCode, Json<RoomView>), ApiError> {
    room_name(&new.room)?;
    let capacity = new
        .capacity
        .unwrap_or(api.shared.config.rooms.default_capacity);
    if capacity == 0 || capacity > MAX_CAPACITY {
        return Err(ApiError::bad_request(format!(
            "capacity must be 1 to {MAX_CAPACITY}"
        )));
    }
    if let Some(owner) = &new.owner {
        if !crate::auth::valid_user_id(owner) {
            return Err(ApiError::bad_request(
                "owner must be a user id: 1-128 characters of A-Z a-z 0-9 _ . - : @",
            ));
        }
    }
    let settings = RoomSettings {
        room: new.room.clone(),
        capacity,
        private: new.private,
        owner: new.owner,
        metadata: new.metadata.unwrap_or_default(),
        created_at: 0,
        made_by_join: false,
    };
    let engine = &api.shared.engine;
    let made = engine.rooms.create(settings).await;
    let room = made
        .map_err(|e| ApiError::engine(&api.shared.metrics, e))?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::AlreadyExists,
                format!("room {} exists", quote(&new.room)),
            )
        })?;
    Ok((StatusCode::CREATED, Json(view(&api.shared, &room).await?)))
}

/// `GET /api/rooms/{room}`: the room with its members; 404 if unknown.
pub(super) async fn get(
    State(api): State<Arc<ApiState>>,
    ApiPath(room): ApiPath<String>,
) -> Result<Json<RoomView>, ApiError> {
    room_name(&room)?;
    let found = api.shared.engine.rooms.get(&room).await;
    let r = found
        .map_err(|e| ApiError::engine(&api.shared.metrics, e))?
        .ok_or_else(|| ApiError::not_found(format!("no room {}", quote(&room))))?;
    Ok(Json(view(&api.shared, &r.settings).await?))
}

/// `DELETE /api/rooms/{room}`: 204; members on every node get
/// `room_deleted` and are removed; 404 if unknown.
pub(super) async fn delete(
    State(api): State<Arc<ApiState>>,
    ApiPath(room): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    room_name(&room)?;
    match api.shared.delete_room(&room).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(ApiError::not_found(format!("no room {}", quote(&room)))),
        Err(e) => Err(ApiError::engine(&api.shared.metrics, e)),
    }
}
