//! Extractors whose failures are [`ApiError`]s, and the input checks every
//! route shares (channel names, event types, user ids, query strings).

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use hubbub_protocol::excerpt::quote;
use hubbub_protocol::{validate_channel, ErrorCode, JsonData};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::serve::BodyDeadline;
use crate::metrics::Metrics;

/// Longest `event_type` (characters).
pub const MAX_EVENT_TYPE: usize = 128;
/// Longest user id (bytes; the handshake's `?user_id=` rule).
pub const MAX_USER_ID: usize = 128;

/// A JSON body. Requires `Content-Type: application/json` (so a browser
/// page cannot post to a loopback hub without a CORS preflight) and
/// answers malformed JSON with 400 `bad_request`, not axum's plain text.
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = json_bytes(req, state).await?;
        parse(&bytes).map(ApiJson)
    }
}

/// A JSON body that may be left out entirely (empty body, no content
/// type): then `T::default()`. A body that is present is held to the
/// rules of [`ApiJson`].
pub struct OptionalJson<T>(pub T);

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if req.headers().get(CONTENT_TYPE).is_none() {
            let bytes = read_bytes(req, state).await?;
            if bytes.iter().all(u8::is_ascii_whitespace) {
                return Ok(OptionalJson(T::default()));
            }
            return Err(unsupported_media_type());
        }
        let bytes = json_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        parse(&bytes).map(OptionalJson)
    }
}

/// Path parameters, percent-decoded; a rejection becomes a JSON error.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|r| ApiError::from_status(r.status(), r.body_text()))
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let mime = ct.split(';').next().unwrap_or("").trim();
    mime.eq_ignore_ascii_case("application/json") || mime.to_ascii_lowercase().ends_with("+json")
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ErrorCode::BadRequest,
        "the body must be JSON with Content-Type: application/json",
    )
}

async fn json_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    if !is_json(req.headers()) {
        return Err(unsupported_media_type());
    }
    read_bytes(req, state).await
}

/// Reads the whole body by the request's [`BodyDeadline`]: a body still
/// incomplete then is 408 (and the connection is closed, see [`ApiError`]).
async fn read_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    let deadline = req.extensions().get::<BodyDeadline>().cloned();
    let read = Bytes::from_request(req, state);
    let read = match deadline {
        None => read.await,
        Some(d) => match tokio::time::timeout_at(d.at, read).await {
            Ok(r) => r,
            Err(_) => {
                Metrics::inc(&d.metrics.http_body_timeouts);
                return Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    ErrorCode::BadRequest,
                    "the request body did not arrive in time (server.http_body_timeout_ms)",
                ));
            }
        },
    };
    read.map_err(|r| ApiError::from_status(r.status(), r.body_text()))
}

/// Every body of the API is a JSON object: serde would read a struct from
/// an array by position, so an array (or any other value) is refused here.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|&b| b != b'{') {
        return Err(ApiError::bad_request(
            "invalid JSON body: the body must be a JSON object",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
}

/// Checks a channel name (PROTOCOL.md section 3).
pub fn channel(name: &str) -> Result<(), ApiError> {
    validate_channel(name).map_err(|m| ApiError::bad_request(format!("{}: {m}", quote(name))))
}

/// Checks a payload once at publish: every encoding must carry it alike
/// ([`hubbub_protocol::data`]).
pub fn data(data: &JsonData) -> Result<(), ApiError> {
    data.check()
        .map_err(|e| ApiError::bad_request(e.to_string()))
}

/// Checks an `event_type`: 1 to 128 characters.
pub fn event_type(name: &str) -> Result<(), ApiError> {
    let n = name.chars().count();
    if n == 0 || n > MAX_EVENT_TYPE {
        return Err(ApiError::bad_request(format!(
            "event_type must be 1 to {MAX_EVENT_TYPE} characters"
        )));
    }
    Ok(())
}

/// Checks a user id with the rule of the handshake's `?user_id=`: 1 to 128
/// characters of the channel-name alphabet, so `user:<id>` is a channel.
pub fn user_id(id: &str) -> Result<(), ApiError> {
    if id.len() > MAX_USER_ID || validate_channel(id).is_err() {
        return Err(ApiError::bad_request(format!(
            "user_id must be 1 to {MAX_USER_ID} characters of A-Z a-z 0-9 _ . - : @"
        )));
    }
    Ok(())
}

/// The pairs of a query string, percent-decoded.
pub fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
}

/// A non-negative integer query parameter.
pub fn query_usize(name: &str, value: &str) -> Result<usize, ApiError> {
    value
        .parse::<usize>()
        .map_err(|_| ApiError::bad_request(format!("{name} must be a non-negative integer")))
}
