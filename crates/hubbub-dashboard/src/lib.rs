//! The hub's dashboard: one web page that shows the hub and what it carries
//! (connections, load, nodes, tasks, alerts, channels, graph jobs, rooms),
//! live, as a client of the hub like any other: it reads the built-in
//! streams and the HTTP API with the JavaScript client (`/client.js`).
//!
//! The page is plain ES modules in `assets/`, embedded in the binary at
//! build time with their gzip forms (see `build.rs`), so `hubbub serve` and
//! a browser are all it takes: no npm, no internet. `hubbub serve` installs
//! it; an application embedding the hub does the same with
//! [`install`]. Routes: `GET /` (the page) and `GET /dashboard/{file}`
//! (its modules, styles and icon), open like `/client.js`; the data behind
//! them is guarded by the hub's own rules (an admin token in production).

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use hubbub_server::{ApiExtension, Node};
use serde::{Deserialize, Serialize};
use serde_json::json;

mod assets;

use assets::Asset;

/// `[apps.dashboard]`: whether the page is served, and where from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardConfig {
    /// Serve the dashboard at `/` (true). Off, `/` answers 404 and the
    /// hub serves only its protocol and API.
    pub enabled: bool,
    /// Serve the files of this directory instead of the embedded ones,
    /// read on every request and never cached: for working on the page
    /// (or restyling it) without rebuilding the hub.
    pub assets_dir: Option<PathBuf>,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            enabled: true,
            assets_dir: None,
        }
    }
}

impl DashboardConfig {
    /// Reads `[apps.dashboard]`; the error names what is wrong, for the
    /// binary to exit 2 with.
    pub fn from_config(config: &hubbub_server::Config) -> Result<Self, String> {
        let c: DashboardConfig = config.app_section("dashboard")?;
        if let Some(dir) = &c.assets_dir {
            if !dir.join("index.html").is_file() {
                return Err(format!(
                    "apps.dashboard.assets_dir: {} holds no index.html",
                    dir.display()
                ));
            }
        }
        Ok(c)
    }
}

/// Adds the dashboard's routes to `node` (nothing when it is disabled).
pub fn install(node: &Node, config: DashboardConfig) {
    if config.enabled {
        node.extend_api(extension(config));
    }
}

/// The routes and their OpenAPI entries, for an application that mounts
/// them itself.
pub fn extension(config: DashboardConfig) -> ApiExtension {
    let source = Arc::new(config.assets_dir);
    let index_source = source.clone();
    let router = Router::new()
        .route(
            "/",
            get(move |headers: HeaderMap| {
                let source = index_source.clone();
                async move { serve(&source, "index.html", &headers).await }
            }),
        )
        .route(
            "/dashboard/{*file}",
            get(move |Path(file): Path<String>, headers: HeaderMap| {
                let source = source.clone();
                async move { serve(&source, &file, &headers).await }
            }),
        );
    ApiExtension {
        router,
        openapi_paths: openapi(),
        openapi_schemas: json!({}),
        tag: (
            "dashboard".into(),
            "The dashboard page and its assets, open to everyone (the data behind it is not)."
                .into(),
        ),
    }
}

/// One file, embedded or from `dir`.
async fn serve(dir: &Option<PathBuf>, file: &str, headers: &HeaderMap) -> Response {
    if !safe(file) {
        return not_found(file);
    }
    match dir {
        None => match assets::find(file) {
            Some(asset) => embedded(asset, headers),
            None => not_found(file),
        },
        Some(dir) => match tokio::fs::read(dir.join(file)).await {
            Ok(bytes) => {
                let mut resp = bytes.into_response();
                let h = resp.headers_mut();
                h.insert(header::CONTENT_TYPE, content_type(file));
                h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                page_headers(h, file);
                resp
            }
            Err(_) => not_found(file),
        },
    }
}

/// An embedded file: 304 when the browser holds this version, else the
/// gzip form when the browser takes it. `no-cache` makes the browser ask
/// each time (a 304 costs a round trip, not the file), so a page never
/// mixes modules of two versions of the hub.
fn embedded(asset: &Asset, headers: &HeaderMap) -> Response {
    embedded_with(asset, headers, "no-cache")
}

/// `GET /client.js`: the JavaScript client's committed browser build, for
/// the hub's route that serves it to every client (the dashboard among
/// them): gzip when accepted, 304 on a matching ETag, revalidated after
/// an hour so a page picks up a new hub's client soon.
pub fn client_js(headers: &HeaderMap) -> Response {
    embedded_with(&assets::CLIENT_JS, headers, "public, max-age=3600")
}

/// An embedded file with `cache_control`.
fn embedded_with(asset: &Asset, headers: &HeaderMap, cache_control: &'static str) -> Response {
    let etag = HeaderValue::from_static(asset.etag);
    let matched = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim() == asset.etag || t.trim() == "*")
        });
    let mut resp = if matched {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        match asset.gzip.filter(|_| accepts_gzip(headers)) {
            Some(gz) => {
                let mut r = gz.into_response();
                r.headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                r
            }
            None => asset.raw.into_response(),
        }
    };
    let h = resp.headers_mut();
    h.insert(header::ETAG, etag);
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    h.insert(header::CONTENT_TYPE, content_type(asset.path));
    page_headers(h, asset.path);
    resp
}

/// The page may load only its own files and talk only to its own hub.
fn page_headers(h: &mut HeaderMap, file: &str) {
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if file.ends_with(".html") {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; connect-src 'self'; img-src 'self' data:; \
                 style-src 'self'; script-src 'self'; object-src 'none'; \
                 base-uri 'none'; frame-ancestors 'none'",
            ),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
}

/// Whether `Accept-Encoding` lists gzip (or `*`) without `q=0`.
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let mut parts = t.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let q_zero = parts.any(|p| {
                p.strip_prefix("q=")
                    .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q == 0.0))
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q_zero
        })
}

/// A relative path of plain names: no `..`, no hidden files, no
/// backslashes, nothing absolute, so `assets_dir` cannot be left.
fn safe(file: &str) -> bool {
    !file.is_empty()
        && file.len() <= 200
        && file.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
}

fn content_type(file: &str) -> HeaderValue {
    let ext = file.rsplit('.').next().unwrap_or("");
    HeaderValue::from_static(match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" | "webmanifest" => "application/json",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    })
}

fn not_found(file: &str) -> Response {
    let shown: String = file.chars().take(80).collect();
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": {"code": "not_found", "message": format!("no dashboard file {shown:?}")}})),
    )
        .into_response()
}

fn openapi() -> serde_json::Value {
    let cached = json!({
        "description": "The file (gzip when accepted); ETag, Cache-Control: no-cache",
        "content": {"text/html": {"schema": {"type": "string"}}, "text/javascript": {"schema": {"type": "string"}}, "text/css": {"schema": {"type": "string"}}}
    });
    let not_modified = json!({"description": "Not modified (If-None-Match matched the ETag)"});
    json!({
        "/": {"get": {
            "tags": ["dashboard"], "summary": "The dashboard page", "operationId": "getDashboard",
            "security": [],
            "responses": {"200": cached, "304": not_modified}
        }},
        "/dashboard/{file}": {"get": {
            "tags": ["dashboard"], "summary": "One of the dashboard's files (modules, styles, icon)",
            "operationId": "getDashboardFile", "security": [],
            "parameters": [{"name": "file", "in": "path", "required": true, "schema": {"type": "string"}}],
            "responses": {"200": cached, "304": not_modified, "404": {"description": "No such file", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}}
        }}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside() {
        for ok in ["app.js", "graph-render.js", "img/icon.svg"] {
            assert!(safe(ok), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "a/../b",
            "/etc/passwd",
            ".hidden",
            "a//b",
            "a\\b",
            "a%2f",
            "x?y",
        ] {
            assert!(!safe(bad), "{bad}");
        }
    }

    #[test]
    fn gzip_negotiation() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            accepts_gzip(&m)
        };
        assert!(h("gzip, deflate, br"));
        assert!(h("br;q=1.0, gzip;q=0.8"));
        assert!(h("*"));
        assert!(!h("gzip;q=0"));
        assert!(!h("br, deflate"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn every_asset_is_embedded_with_an_index() {
        assert!(assets::find("index.html").is_some());
        for a in assets::ASSETS {
            assert!(safe(a.path), "{}", a.path);
            if let Some(gz) = a.gzip {
                assert!(gz.len() < a.raw.len());
            }
        }
    }
}
