//! `GET /client.js`: the JavaScript client's browser build
//! (`clients/js/dist/hubbub.min.js`), embedded at compile time so that a
//! page served from anywhere can `import { connect } from
//! "https://hub.example/client.js"` and speak the protocol of exactly this
//! hub, without a package manager. The file is built and committed by
//! `clients/js/build.mjs`, so building the hub never needs npm.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hubbub_server::ApiExtension;
use serde_json::json;

/// The browser build, as committed.
const CLIENT_JS: &str = include_str!("../../../clients/js/dist/hubbub.min.js");

/// Its gzip form, made once by `build.rs`.
const CLIENT_JS_GZ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hubbub.min.js.gz"));

/// FNV-1a of the file, computed at compile time: the ETag changes exactly
/// when the embedded file does.
const HASH: u64 = {
    let bytes = CLIENT_JS.as_bytes();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    h
};

/// The route and its OpenAPI entry, added beside the API (outside `/api/`,
/// so open to everyone like the dashboard).
pub(crate) fn extension() -> ApiExtension {
    let paths = json!({
        "/client.js": {
            "get": {
                "tags": ["client"],
                "summary": "The JavaScript client (browser build, ES module)",
                "operationId": "getClientJs",
                "security": [],
                "responses": {
                    "200": {"description": "The module", "content": {"text/javascript": {"schema": {"type": "string"}}}},
                    "304": {"description": "Not modified (If-None-Match matched the ETag)"}
                }
            }
        }
    });
    ApiExtension {
        router: Router::new().route("/client.js", get(serve)),
        openapi_paths: paths,
        openapi_schemas: json!({}),
        tag: (
            "client".into(),
            "The JavaScript client, served by the hub it talks to.".into(),
        ),
    }
}

/// The file with a strong ETag, gzip when the browser takes it;
/// revalidated after an hour, so a page picks up a new hub's client soon
/// without fetching it on every load.
async fn serve(headers: HeaderMap) -> Response {
    let etag = format!("\"{HASH:016x}\"");
    let cache = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, "public, max-age=3600".to_owned()),
        (header::VARY, "Accept-Encoding".to_owned()),
    ];
    let matched = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matched {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    let mut resp = if hubbub_dashboard::accepts_gzip(&headers) {
        let mut r = (cache, CLIENT_JS_GZ).into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        (cache, CLIENT_JS).into_response()
    };
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    resp
}
