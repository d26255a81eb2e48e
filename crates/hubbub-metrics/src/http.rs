//! `/api/metrics` and `/api/alerts` (HTTP_API.md "Metrics and alerts"),
//! added to the hub's HTTP API (its access rule, body limit and error
//! shape) and to its OpenAPI document (module `openapi`).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use hubbub_protocol::ErrorCode;
use hubbub_server::{ApiError, ApiExtension};
use serde::Deserialize;
use serde_json::json;

use crate::alerts::Rule;
use crate::store::Metrics;
use crate::types::{MetricsError, Value};
use crate::window::Window;

/// Most points a history answers.
pub const MAX_POINTS: usize = 10_000;
/// Most metrics a summary lists, and its default.
const MAX_SUMMARY: usize = 10_000;
const DEFAULT_SUMMARY: usize = 1_000;
/// Alerts listed when `limit` is absent.
const DEFAULT_ALERTS: usize = 100;

impl From<MetricsError> for ApiError {
    fn from(e: MetricsError) -> ApiError {
        match e {
            MetricsError::BadRequest(m) => ApiError::bad_request(m),
            MetricsError::NotFound(m) => ApiError::not_found(m),
            MetricsError::LimitExceeded(m) => ApiError::for_code(ErrorCode::LimitExceeded, m),
        }
    }
}

/// `T` from a JSON object only: serde would also take a struct from an
/// array of its fields (`[1]` as `{"above": 1}`), which the API does not.
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Obj<T>, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Obj)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The query parameters, all optional and parsed here so that a wrong one
/// gets a message naming it.
#[derive(Deserialize, Default)]
struct Params {
    window: Option<String>,
    points: Option<String>,
    limit: Option<String>,
}

fn params(
    q: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Params, ApiError> {
    q.map(|Query(p)| p)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

fn window(p: &Params) -> Result<Window, ApiError> {
    match p.window.as_deref() {
        None => Ok(Window::H1),
        Some(w) => Window::parse(w)
            .ok_or_else(|| ApiError::bad_request("window is one of 1m, 5m, 1h, 24h, 7d")),
    }
}

fn number(v: Option<&str>, name: &str, default: usize, max: usize) -> Result<usize, ApiError> {
    match v {
        None => Ok(default),
        Some(s) => s
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| ApiError::bad_request(format!("{name} is an integer from 1 to {max}"))),
    }
}

async fn record(State(m): State<Metrics>, body: Bytes) -> Result<Response, ApiError> {
    let batch = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let bad = |e: serde_json::Error| ApiError::bad_request(format!("body: {e}"));
    let n = if batch {
        let values: Vec<Obj<Value>> = serde_json::from_slice(&body).map_err(bad)?;
        let values: Vec<Value> = values.into_iter().map(|v| v.0).collect();
        m.record_batch(&values)?;
        values.len()
    } else {
        let Obj(v): Obj<Value> = serde_json::from_slice(&body).map_err(bad)?;
        m.record(&v.metric, v.value, v.timestamp)?;
        1
    };
    Ok((StatusCode::ACCEPTED, Json(json!({"recorded": n}))).into_response())
}

async fn summary(
    State(m): State<Metrics>,
    q: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let p = params(q)?;
    let limit = number(p.limit.as_deref(), "limit", DEFAULT_SUMMARY, MAX_SUMMARY)?;
    let m2 = m.clone();
    let s = tokio::task::spawn_blocking(move || m2.summary(limit))
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(Json(s).into_response())
}

async fn statistics(
    State(m): State<Metrics>,
    Path(metric): Path<String>,
    q: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let p = params(q)?;
    Ok(Json(m.statistics(&metric, window(&p)?)?).into_response())
}

async fn history(
    State(m): State<Metrics>,
    Path(metric): Path<String>,
    q: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let p = params(q)?;
    let points = number(p.points.as_deref(), "points", 100, MAX_POINTS)?;
    Ok(Json(m.history(&metric, window(&p)?, points)?).into_response())
}

async fn alerts(
    State(m): State<Metrics>,
    q: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let p = params(q)?;
    let limit = number(p.limit.as_deref(), "limit", DEFAULT_ALERTS, MAX_SUMMARY)?;
    Ok(Json(m.alerts(limit)).into_response())
}

async fn set_rule(
    State(m): State<Metrics>,
    Path(metric): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Obj(rule): Obj<Rule> =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("body: {e}")))?;
    Ok(Json(m.set_rule(&metric, rule)?).into_response())
}

async fn rules(State(m): State<Metrics>) -> Response {
    Json(m.rules()).into_response()
}

/// The routes and their OpenAPI entries.
pub(crate) fn extension(m: Metrics) -> ApiExtension {
    let router = Router::new()
        .route("/api/metrics", post(record))
        .route("/api/metrics/summary", get(summary))
        .route("/api/metrics/{metric}/statistics", get(statistics))
        .route("/api/metrics/{metric}/history", get(history))
        .route("/api/alerts", get(alerts))
        .route("/api/alerts/rules", get(rules))
        .route("/api/alerts/rules/{metric}", put(set_rule))
        .with_state(m);
    let (paths, schemas) = crate::openapi::fragment();
    ApiExtension {
        router,
        openapi_paths: paths,
        openapi_schemas: schemas,
        tag: (
            "metrics".into(),
            "The metrics store: record values, statistics, history; alert rules and alerts.".into(),
        ),
    }
}
