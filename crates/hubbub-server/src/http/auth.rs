//! Who may call (HTTP_API.md "Who may call").
//!
//! The rule is by path and fails closed: everything under `/api/` needs the
//! API key except the few open paths listed here, so a route added later is
//! protected without anyone remembering to protect it. [`authorize`] is the
//! single decision point: the API key, or a token with `"admin": true`.

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
use crate::auth::Authenticator;
use crate::metrics::Metrics;

/// Paths under `/api/` that anyone may call.
const OPEN_API_PATHS: &[&str] = &["/api/streams"];

/// Whether `path` is open to everyone: health, readiness, metrics, the
/// stream list, and everything outside `/api/` (the dashboard).
pub fn is_open(path: &str) -> bool {
    !path.starts_with("/api/") || OPEN_API_PATHS.contains(&path)
}

/// Decides whether a caller may use a protected route.
///
/// * `Authorization: Bearer <key>` matching the configured key (compared
///   in constant time): allowed from anywhere.
/// * `Authorization: Bearer <JWT>` that `tokens` verifies: allowed from
///   anywhere when it carries `"admin": true`, else 403 `forbidden`; a
///   token that does not verify is 401 `unauthorized`.
/// * With a key configured, anything else is 401 `unauthorized`.
/// * Without one (development): only loopback peers are answered without
///   credentials, others get 403 `forbidden`. An unknown peer counts as remote.
///
/// Messages never contain the key, the token or what the caller sent.
pub fn authorize(
    key: Option<&str>,
    tokens: Option<&dyn Authenticator>,
    authorization: Option<&HeaderValue>,
    peer: Option<SocketAddr>,
) -> Result<(), ApiError> {
    let presented = authorization
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    let mut token_error = None;
    if let Some(presented) = presented {
        if key.is_some_and(|k| constant_time_eq(presented.as_bytes(), k.as_bytes())) {
            return Ok(());
        }
        if let Some(tokens) = tokens.filter(|_| looks_like_jwt(presented)) {
            match tokens.authenticate(presented) {
                Ok(claims) if claims.admin => return Ok(()),
                Ok(_) => {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        ErrorCode::Forbidden,
                        "the token does not grant admin rights",
                    ))
                }
                Err(e) => token_error = Some(e),
            }
        }
    }
    let unauthorized =
        |m: String| ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, m);
    match (key, token_error, presented) {
        (_, Some(e), _) if key.is_some() || !is_loopback(peer) => {
            Err(unauthorized(format!("the token is not valid: {e}")))
        }
        (Some(_), _, Some(_)) => Err(unauthorized("the API key is not valid".into())),
        (Some(_), _, None) => Err(unauthorized(
            "send Authorization: Bearer <API key or admin token>".into(),
        )),
        (None, _, _) if is_loopback(peer) => Ok(()),
        (None, _, _) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "no API key is configured: the API answers loopback clients, or an admin token, only",
        )),
    }
}

fn is_loopback(peer: Option<SocketAddr>) -> bool {
    peer.is_some_and(|p| p.ip().to_canonical().is_loopback())
}

/// Three dot-separated parts: worth verifying as a token.
fn looks_like_jwt(s: &str) -> bool {
    s.bytes().filter(|b| *b == b'.').count() == 2
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
    match authorize(
        api.key.as_deref(),
        api.shared.auth.as_deref(),
        req.headers().get(AUTHORIZATION),
        peer,
    ) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            Metrics::inc(&api.shared.metrics.api_refused);
            e.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AuthError, Claims};

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
        assert!(authorize(None, None, None, addr("127.0.0.1:5000")).is_ok());
        assert!(authorize(None, None, None, addr("127.9.8.7:5000")).is_ok());
        assert!(authorize(None, None, None, addr("[::1]:5000")).is_ok());
        assert!(authorize(None, None, None, addr("[::ffff:127.0.0.1]:5000")).is_ok());
        for remote in ["10.0.0.1:5000", "192.168.1.2:1", "[2001:db8::1]:80"] {
            let e = authorize(None, None, None, addr(remote)).unwrap_err();
            assert_eq!(e.0, StatusCode::FORBIDDEN, "{remote}");
            assert_eq!(e.1, "forbidden");
        }
        // A bearer token does not help when no key is configured.
        let e = authorize(None, None, Some(&hv("Bearer x")), addr("10.0.0.1:5000")).unwrap_err();
        assert_eq!(e.0, StatusCode::FORBIDDEN);
        // Unknown peer: remote.
        assert_eq!(
            authorize(None, None, None, None).unwrap_err().0,
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn with_key_bearer_required_everywhere() {
        let key = Some("s3cret-key");
        for peer in [addr("127.0.0.1:1"), addr("10.0.0.1:1"), None] {
            assert!(authorize(key, None, Some(&hv("Bearer s3cret-key")), peer).is_ok());
            assert!(authorize(key, None, Some(&hv("bearer  s3cret-key ")), peer).is_ok());
            for bad in [
                "Bearer s3cret-kez",
                "Bearer s3cret-key2",
                "Bearer s3cret",
                "Basic s3cret-key",
                "s3cret-key",
                "Bearer ",
            ] {
                let e = authorize(key, None, Some(&hv(bad)), peer).unwrap_err();
                assert_eq!(e.0, StatusCode::UNAUTHORIZED, "{bad}");
                assert!(!e.2.contains("s3cret"), "{}", e.2);
            }
            assert_eq!(
                authorize(key, None, None, peer).unwrap_err().0,
                StatusCode::UNAUTHORIZED
            );
        }
    }

    struct Fixed;

    impl Authenticator for Fixed {
        fn authenticate(&self, token: &str) -> Result<Claims, AuthError> {
            match token {
                "admin.token.ok" => Ok(Claims {
                    admin: true,
                    ..Claims::for_user("root")
                }),
                "user.token.ok" => Ok(Claims::for_user("al")),
                _ => Err(AuthError::BadSignature),
            }
        }
    }

    #[test]
    fn admin_tokens() {
        let t: Option<&dyn Authenticator> = Some(&Fixed);
        for key in [Some("k3y"), None] {
            for peer in [addr("10.0.0.1:1"), addr("127.0.0.1:1")] {
                assert!(authorize(key, t, Some(&hv("Bearer admin.token.ok")), peer).is_ok());
                let e = authorize(key, t, Some(&hv("Bearer user.token.ok")), peer).unwrap_err();
                assert_eq!(e.0, StatusCode::FORBIDDEN);
            }
            let e = authorize(
                key,
                t,
                Some(&hv("Bearer bad.token.xyz")),
                addr("10.0.0.1:1"),
            )
            .unwrap_err();
            assert_eq!(e.0, StatusCode::UNAUTHORIZED);
            assert!(!e.2.contains("bad.token"), "{}", e.2);
        }
        // The key still works beside tokens.
        assert!(authorize(Some("k3y"), t, Some(&hv("Bearer k3y")), addr("10.0.0.1:1")).is_ok());
        // No key: a loopback caller needs nothing, even with a bad token.
        assert!(authorize(
            None,
            t,
            Some(&hv("Bearer bad.token.xyz")),
            addr("127.0.0.1:1")
        )
        .is_ok());
        // Without an authenticator a JWT-looking bearer is just a wrong key.
        let e = authorize(Some("k3y"), None, Some(&hv("Bearer admin.token.ok")), None).unwrap_err();
        assert_eq!(e.0, StatusCode::UNAUTHORIZED);
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
