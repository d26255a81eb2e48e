//! Who may call (HTTP_API.md "Who may call").
//!
//! The rule is by path and fails closed: everything under `/api/` needs the
//! API key except the few open paths listed here, so a route added later is
//! protected without anyone remembering to protect it. [`authorize`] is the
//! single decision point; admin JWTs slot in there with the auth issue.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hubbub_protocol::ErrorCode;

use super::error::ApiError;
use super::ApiState;

/// Paths under `/api/` that anyone may call.
const OPEN_API_PATHS: &[&str] = &["/api/streams"];

/// Whether `path` is open to everyone: health, readiness, metrics, the
/// stream list, and everything outside `/api/` (the dashboard).
pub fn is_open(path: &str) -> bool {
    !path.starts_with("/api/") || OPEN_API_PATHS.contains(&path)
}

/// Decides whether a caller may use a protected route.
///
/// * With a key configured: `Authorization: Bearer <key>` must match it
///   (compared in constant time), else 401 `unauthorized`; the peer's
///   address does not matter.
/// * Without one (development): only loopback peers are answered, others
///   get 403 `forbidden`. An unknown peer counts as remote.
///
/// Messages never contain the key or what the caller sent.
pub fn authorize(
    key: Option<&str>,
    authorization: Option<&HeaderValue>,
    peer: Option<SocketAddr>,
) -> Result<(), ApiError> {
    match key {
        Some(key) => {
            let presented = authorization
                .and_then(|v| v.to_str().ok())
                .and_then(bearer_token);
            match presented {
                Some(token) if constant_time_eq(token.as_bytes(), key.as_bytes()) => Ok(()),
                Some(_) => Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::Unauthorized,
                    "the API key is not valid",
                )),
                None => Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    ErrorCode::Unauthorized,
                    "send Authorization: Bearer <API key>",
                )),
            }
        }
        None => {
            let loopback = peer.is_some_and(|p| p.ip().to_canonical().is_loopback());
            if loopback {
                Ok(())
            } else {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    ErrorCode::Forbidden,
                    "no API key is configured: the API answers loopback clients only",
                ))
            }
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value (scheme
/// case-insensitive, RFC 7235).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty()).then_some(token)
}

/// Equality whose running time depends only on the length of `presented`
/// (which the caller knows anyway), never on where the bytes differ or on
/// the key's length.
fn constant_time_eq(presented: &[u8], key: &[u8]) -> bool {
    let mut diff = u8::from(presented.len() != key.len());
    for (i, b) in presented.iter().enumerate() {
        let k = key.get(i).copied().unwrap_or(0);
        diff |= b ^ k;
    }
    std::hint::black_box(diff) == 0
}

/// Middleware applying the rule to every request.
pub(super) async fn access(State(api): State<Arc<ApiState>>, req: Request, next: Next) -> Response {
    if is_open(req.uri().path()) {
        return next.run(req).await;
    }
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    match authorize(api.key.as_deref(), req.headers().get(AUTHORIZATION), peer) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn open_paths() {
        for p in [
            "/healthz",
            "/readyz",
            "/metrics",
            "/api/streams",
            "/dashboard",
            "/api",
        ] {
            assert!(is_open(p), "{p}");
        }
        for p in [
            "/api/publish",
            "/api/stats",
            "/api/streams/x",
            "/api/openapi.json",
            "/api/",
        ] {
            assert!(!is_open(p), "{p}");
        }
    }

    #[test]
    fn without_key_only_loopback() {
        assert!(authorize(None, None, addr("127.0.0.1:5000")).is_ok());
        assert!(authorize(None, None, addr("127.9.8.7:5000")).is_ok());
        assert!(authorize(None, None, addr("[::1]:5000")).is_ok());
        assert!(authorize(None, None, addr("[::ffff:127.0.0.1]:5000")).is_ok());
        for remote in ["10.0.0.1:5000", "192.168.1.2:1", "[2001:db8::1]:80"] {
            let e = authorize(None, None, addr(remote)).unwrap_err();
            assert_eq!(e.0, StatusCode::FORBIDDEN, "{remote}");
            assert_eq!(e.1, "forbidden");
        }
        // A bearer token does not help when no key is configured.
        let e = authorize(None, Some(&hv("Bearer x")), addr("10.0.0.1:5000")).unwrap_err();
        assert_eq!(e.0, StatusCode::FORBIDDEN);
        // Unknown peer: remote.
        assert_eq!(
            authorize(None, None, None).unwrap_err().0,
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn with_key_bearer_required_everywhere() {
        let key = Some("s3cret-key");
        for peer in [addr("127.0.0.1:1"), addr("10.0.0.1:1"), None] {
            assert!(authorize(key, Some(&hv("Bearer s3cret-key")), peer).is_ok());
            assert!(authorize(key, Some(&hv("bearer  s3cret-key ")), peer).is_ok());
            for bad in [
                "Bearer s3cret-kez",
                "Bearer s3cret-key2",
                "Bearer s3cret",
                "Basic s3cret-key",
                "s3cret-key",
                "Bearer ",
            ] {
                let e = authorize(key, Some(&hv(bad)), peer).unwrap_err();
                assert_eq!(e.0, StatusCode::UNAUTHORIZED, "{bad}");
                assert!(!e.2.contains("s3cret"), "{}", e.2);
            }
            assert_eq!(
                authorize(key, None, peer).unwrap_err().0,
                StatusCode::UNAUTHORIZED
            );
        }
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"ab", b"abc"));
        assert!(!constant_time_eq(b"abc\0", b"abc"));
        assert!(!constant_time_eq(b"", b"a"));
        assert!(constant_time_eq(b"", b""));
    }
}
