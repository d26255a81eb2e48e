//! `/api/algorithms` (HTTP_API.md "Graph algorithm jobs"): start, list and
//! stop jobs from any backend, added to the hub's HTTP API (its access
//! rule, body limit and error shape) and to its OpenAPI document.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use hubbub_protocol::JsonData;
use hubbub_server::{ApiError, ApiExtension, JobCaller};
use serde::Deserialize;
use serde_json::json;

use crate::runner::Jobs;

/// `POST /api/algorithms`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StartBody {
    algorithm: String,
    parameters: JsonData,
}

async fn start(
    State(jobs): State<Jobs>,
    body: Result<Json<StartBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let caller = JobCaller::operator(&jobs.inner.node);
    let job = jobs
        .prepare(&caller, &body.algorithm, body.parameters)
        .await?;
    let answer = json!({"job_id": job.job_id, "channel": job.channel});
    job.start();
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

async fn list(State(jobs): State<Jobs>) -> Response {
    Json(jobs.list()).into_response()
}

async fn stop(
    State(jobs): State<Jobs>,
    Path(job_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    jobs.stop(&JobCaller::operator(&jobs.inner.node), &job_id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The routes and their OpenAPI entries.
pub(crate) fn extension(jobs: Jobs) -> ApiExtension {
    let router = Router::new()
        .route("/api/algorithms", get(list).post(start))
        .route("/api/algorithms/{job_id}", delete(stop))
        .with_state(jobs);
    let error = |d: &str| json!({"description": d, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    let paths = json!({
        "/api/algorithms": {
            "get": {
                "operationId": "algorithms",
                "tags": ["algorithms"],
                "summary": "Running and recent graph-algorithm jobs.",
                "responses": {
                    "200": {"description": "The jobs, oldest first.", "content": {"application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/JobSummary"}}}}},
                    "401": error("No or wrong credentials."),
                    "403": error("Not allowed.")
                }
            },
            "post": {
                "operationId": "startAlgorithm",
                "tags": ["algorithms"],
                "summary": "Starts a graph-algorithm job; its events go to the channel answered (PROTOCOL.md section 7).",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AlgorithmStart"}}}},
                "responses": {
                    "201": {"description": "Started.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobStarted"}}}},
                    "400": error("Invalid algorithm or parameters (the message names the problem)."),
                    "401": error("No or wrong credentials."),
                    "403": error("Not allowed."),
                    "413": error("Body too large."),
                    "429": error("limit_exceeded: too many jobs running."),
                    "503": error("Jobs are turned off.")
                }
            }
        },
        "/api/algorithms/{job_id}": {
            "delete": {
                "operationId": "stopAlgorithm",
                "tags": ["algorithms"],
                "summary": "Stops a job (a job that already ended stays as it ended).",
                "parameters": [{"name": "job_id", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {
                    "204": {"description": "Stopping."},
                    "401": error("No or wrong credentials."),
                    "403": error("Not allowed."),
                    "404": error("No such job.")
                }
            }
        }
    });
    let statistics = json!({
        "type": "object",
        "required": ["nodes_processed", "edges_processed", "events_emitted", "events_coalesced", "wall_time_ms"],
        "properties": {
            "nodes_processed": {"type": "integer", "minimum": 0},
            "edges_processed": {"type": "integer", "minimum": 0},
            "events_emitted": {"type": "integer", "minimum": 0},
            "events_coalesced": {"type": "integer", "minimum": 0},
            "wall_time_ms": {"type": "integer", "minimum": 0}
        }
    });
    let schemas = json!({
        "AlgorithmStart": {
            "type": "object",
            "required": ["algorithm", "parameters"],
            "additionalProperties": false,
            "properties": {
                "algorithm": {"type": "string", "enum": ["bfs", "dfs", "dijkstra", "astar", "pagerank", "connected_components"]},
                "parameters": {"type": "object", "description": "PROTOCOL.md section 7: graph (generated or explicit), source, target, step_delay_ms, max_events_per_second, damping, tolerance, max_iterations.", "required": ["graph"]}
            }
        },
        "JobStarted": {
            "type": "object",
            "required": ["job_id", "channel"],
            "properties": {"job_id": {"type": "string"}, "channel": {"type": "string"}}
        },
        "JobSummary": {
            "type": "object",
            "required": ["job_id", "algorithm", "status", "statistics", "user_id", "started_at"],
            "properties": {
                "job_id": {"type": "string"},
                "algorithm": {"type": "string"},
                "status": {"type": "string", "enum": ["running", "completed", "stopped", "failed"]},
                "statistics": statistics,
                "user_id": {"type": "string", "nullable": true},
                "started_at": {"type": "integer"}
            }
        }
    });
    ApiExtension {
        router,
        openapi_paths: paths,
        openapi_schemas: schemas,
        tag: (
            "algorithms".into(),
            "Graph-algorithm jobs: start, list, stop.".into(),
        ),
    }
}
