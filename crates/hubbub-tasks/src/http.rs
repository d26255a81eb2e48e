//! `/api/tasks` and `/api/queue` (HTTP_API.md "Tasks"): the queue driven
//! from any backend, added to the hub's HTTP API (its access rule, body
//! limit and error shape) and to its OpenAPI document.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch};
use axum::{Json, Router};
use hubbub_protocol::ErrorCode;
use hubbub_server::{ApiError, ApiExtension};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

use crate::machine::{self, TaskError, TaskPatch, MAX_MESSAGE_CHARS, MAX_NAME_CHARS};
use crate::tasks::Tasks;

impl From<TaskError> for ApiError {
    fn from(e: TaskError) -> Self {
        let code = match &e {
            TaskError::BadRequest(_) => ErrorCode::BadRequest,
            TaskError::NotFound(_) => ErrorCode::NotFound,
            TaskError::Conflict(_) => ErrorCode::Conflict,
            TaskError::LimitExceeded(_) => ErrorCode::LimitExceeded,
            TaskError::Unavailable(_) => ErrorCode::Unavailable,
        };
        ApiError::for_code(code, e.to_string())
    }
}

/// `POST /api/tasks`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    /// A `null` given stays present, as the task object says.
    #[serde(default, deserialize_with = "present")]
    data: Option<serde_json::Value>,
}

fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

/// `GET /api/tasks?status=`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
}

/// The body as `T`, which must come from a JSON object (serde would take
/// an array for a struct too).
fn body<T: DeserializeOwned>(b: Result<Json<Value>, JsonRejection>) -> Result<T, ApiError> {
    let Json(v) = b.map_err(|e| ApiError::bad_request(e.body_text()))?;
    if !v.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    serde_json::from_value(v).map_err(|e| ApiError::bad_request(e.to_string()))
}

async fn create(
    State(tasks): State<Tasks>,
    b: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let b: CreateBody = body(b)?;
    let task = tasks.create(b.name, b.data).await?;
    Ok((StatusCode::CREATED, Json(task)).into_response())
}

async fn update(
    State(tasks): State<Tasks>,
    Path(id): Path<String>,
    b: Result<Json<Value>, JsonRejection>,
) -> Result<Response, ApiError> {
    let p: TaskPatch = body(b)?;
    Ok(Json(tasks.update(&id, p).await?).into_response())
}

async fn list(
    State(tasks): State<Tasks>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(machine::parse_status(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "status must be pending, running, completed or failed, not {s:?}"
            ))
        })?),
    };
    Ok(Json(tasks.list(status)).into_response())
}

async fn queue(State(tasks): State<Tasks>) -> Response {
    Json(tasks.queue()).into_response()
}

/// The routes and their OpenAPI entries.
pub(crate) fn extension(tasks: Tasks) -> ApiExtension {
    let max_data = tasks.config().max_data_bytes;
    let router = Router::new()
        .route("/api/tasks", get(list).post(create))
        .route("/api/tasks/{id}", patch(update))
        .route("/api/queue", get(queue))
        .with_state(tasks);
    let error = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let task = json!({"$ref": "#/components/schemas/Task"});
    let status = json!({"type": "string", "enum": ["pending", "running", "completed", "failed"]});
    let paths = json!({
        "/api/tasks": {
            "get": {
                "operationId": "tasks",
                "tags": ["tasks"],
                "summary": "The tasks held, oldest first; only those in `status` when given.",
                "parameters": [{"name": "status", "in": "query", "required": false, "schema": status}],
                "responses": {
                    "200": {"description": "The tasks.", "content": {"application/json": {"schema": {"type": "array", "items": task}}}},
                    "400": error("Not a status."),
                    "401": error("No or wrong credentials."),
                    "403": error("Not allowed.")
                }
            },
            "post": {
                "operationId": "createTask",
                "tags": ["tasks"],
                "summary": "Adds a pending task; publishes task_created on `tasks`.",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskCreate"}}}},
                "responses": {
                    "201": {"description": "The task.", "content": {"application/json": {"schema": task}}},
                    "400": error("Invalid body (the message names the problem)."),
                    "401": error("No or wrong credentials."),
                    "403": error("Not allowed."),
                    "413": error("Body too large."),
                    "429": error("limit_exceeded: the queue holds max_tasks unfinished tasks."),
                    "503": error("unavailable: not saved, or the hub is stopping.")
                }
            }
        },
        "/api/tasks/{id}": {
            "patch": {
                "operationId": "updateTask",
                "tags": ["tasks"],
                "summary": "Moves a task (pending -> running -> completed | failed) or sets its progress or message; publishes task_updated, task_completed or task_failed.",
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/TaskPatch"}}}},
                "responses": {
                    "200": {"description": "The task as it now is.", "content": {"application/json": {"schema": task}}},
                    "400": error("Invalid body."),
                    "401": error("No or wrong credentials."),
                    "403": error("Not allowed."),
                    "404": error("No such task."),
                    "409": error("conflict: a move the state machine does not allow, or a change to a finished task."),
                    "413": error("Body too large."),
                    "503": error("unavailable: not saved, or the hub is stopping.")
                }
            }
        },
        "/api/queue": {
            "get": {
                "operationId": "queue",
                "tags": ["tasks"],
                "summary": "The queue's counts (what queue_status carries).",
                "responses": {
                    "200": {"description": "The counts.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/QueueStatus"}}}},
                    "401": error("No or wrong credentials."),
                    "403": error("Not allowed.")
                }
            }
        }
    });
    let count = json!({"type": "integer", "minimum": 0});
    let schemas = json!({
        "Task": {
            "type": "object",
            "required": ["task_id", "name", "status", "progress", "created_at", "updated_at"],
            "properties": {
                "task_id": {"type": "string"},
                "name": {"type": "string"},
                "status": status,
                "progress": {"type": "number", "minimum": 0, "maximum": 1},
                "message": {"type": "string"},
                "data": {"description": "As given at creation (any JSON)."},
                "created_at": {"type": "integer", "minimum": 0},
                "updated_at": {"type": "integer", "minimum": 0}
            }
        },
        "TaskCreate": {
            "type": "object",
            "required": ["name"],
            "additionalProperties": false,
            "properties": {
                "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_CHARS, "pattern": "\\S"},
                "data": {"description": format!("Any JSON, at most {max_data} bytes as text.")}
            }
        },
        "TaskPatch": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "status": status,
                "progress": {"type": "number", "minimum": 0, "maximum": 1},
                "message": {"type": "string", "maxLength": MAX_MESSAGE_CHARS}
            }
        },
        "QueueStatus": {
            "type": "object",
            "required": ["total_tasks", "pending_tasks", "running_tasks", "completed_tasks", "failed_tasks"],
            "properties": {
                "total_tasks": count, "pending_tasks": count, "running_tasks": count,
                "completed_tasks": count, "failed_tasks": count
            }
        }
    });
    ApiExtension {
        router,
        openapi_paths: paths,
        openapi_schemas: schemas,
        tag: (
            "tasks".into(),
            "The live task queue: create, move, list, count.".into(),
        ),
    }
}
