//! The one error shape of the API, `{"error": {"code", "message"}}`, and the
//! safety net that gives every other failure (unknown route, wrong method,
//! body too large, an axum rejection we did not wrap) the same shape.

use axum::body::{to_bytes, Body};
use axum::http::header::{CONNECTION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use hubbub_protocol::excerpt::limit;
use hubbub_protocol::ErrorCode;

/// An API error: status plus `{"error": {"code", "message"}}`, with the
/// codes of PROTOCOL.md section 9. Every handler and extractor of this
/// module fails with one, so clients parse a single error format.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub &'static str, pub String);

impl ApiError {
    /// An error with an explicit status and code. The message is cut to a
    /// bounded length ([`hubbub_protocol::excerpt::limit`]), so no error
    /// echoes a large input back.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError(status, code.as_str(), limit(message.into()))
    }

    /// 400 `bad_request`: the request is well-formed HTTP but not acceptable.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    /// 503 `unavailable`: a store the answer needs did not answer.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Unavailable,
            message,
        )
    }

    /// 503 `unavailable` for an engine (broker, history, presence) that
    /// failed, counted in `hubbub_engine_errors_total`.
    pub(crate) fn engine(metrics: &crate::metrics::Metrics, e: impl std::fmt::Display) -> Self {
        crate::metrics::Metrics::inc(&metrics.engine_errors);
        Self::unavailable(e.to_string())
    }

    /// 404 `not_found`: the thing named does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    /// An error with the code's own status: what an application's
    /// routes ([`crate::ApiExtension`]) answer for a failure their logic
    /// names by its protocol code (an [`RpcError`](crate::rpc::RpcError)
    /// converts too), so they need no table of their own.
    pub fn for_code(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(status_for_code(code), code, message)
    }

    /// An error for a bare HTTP status (rejections, fallbacks), with the
    /// error code that fits it best.
    pub fn from_status(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError(
            status,
            code_for_status(status).as_str(),
            limit(message.into()),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.1, "message": self.2}});
        let mut resp = (self.0, Json(body)).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.0 == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may still come: the connection cannot be
            // reused (RFC 9110 section 15.5.9).
            resp.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        resp
    }
}

impl From<crate::rpc::RpcError> for ApiError {
    fn from(e: crate::rpc::RpcError) -> Self {
        Self::for_code(e.code, e.message)
    }
}

/// The HTTP status of an error code of section 9.
fn status_for_code(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidMessage | ErrorCode::UnknownType | ErrorCode::BadRequest => {
            StatusCode::BAD_REQUEST
        }
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::AlreadyExists | ErrorCode::Conflict | ErrorCode::RoomFull => {
            StatusCode::CONFLICT
        }
        ErrorCode::RateLimited | ErrorCode::LimitExceeded => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The error code of section 9 that fits an HTTP status.
fn code_for_status(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::FORBIDDEN => ErrorCode::Forbidden,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::CONFLICT => ErrorCode::AlreadyExists,
        StatusCode::TOO_MANY_REQUESTS => ErrorCode::RateLimited,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Unavailable,
        s if s.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::BadRequest,
    }
}

/// Longest plain-text error body turned into a message; axum's own
/// rejection texts are far shorter.
const MAX_TEXT_ERROR: usize = 4096;

/// Response middleware: an error response that is not JSON yet (axum's
/// 404, 405 with its `Allow` header, 413 from the body limit, any
/// rejection text) becomes `{"error": {...}}` with the same status and
/// headers, its text (if any) as the message.
pub(super) async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = to_bytes(body, MAX_TEXT_ERROR)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_ascii_lowercase()
    } else {
        text
    };
    let fresh = ApiError::from_status(status, message).into_response();
    let (fresh_parts, fresh_body): (_, Body) = fresh.into_parts();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    for (k, v) in fresh_parts.headers.iter() {
        parts.headers.insert(k, v.clone());
    }
    Response::from_parts(parts, fresh_body)
}

/// Fallback for paths no route matches: JSON 404.
pub(super) async fn no_route(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!("no route for {method} {}", uri.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_its_status_and_keeps_its_code() {
        let cases = [
            (ErrorCode::BadRequest, StatusCode::BAD_REQUEST),
            (ErrorCode::Forbidden, StatusCode::FORBIDDEN),
            (ErrorCode::NotFound, StatusCode::NOT_FOUND),
            (ErrorCode::Conflict, StatusCode::CONFLICT),
            (ErrorCode::LimitExceeded, StatusCode::TOO_MANY_REQUESTS),
            (ErrorCode::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
            (ErrorCode::Internal, StatusCode::INTERNAL_SERVER_ERROR),
        ];
        for (code, status) in cases {
            let e = ApiError::from(crate::rpc::RpcError::new(code, "m"));
            assert_eq!((e.0, e.1), (status, code.as_str()));
        }
    }
}
