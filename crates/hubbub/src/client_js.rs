//! `GET /client.js`: the JavaScript client's browser build
//! (`clients/js/dist/hubbub.min.js`), embedded at compile time (with the
//! dashboard's files, by `hubbub-dashboard`) so that a
//! page served from anywhere can `import { connect } from
//! "https://hub.example/client.js"` and speak the protocol of exactly this
//! hub, without a package manager. The file is built and committed by
//! `clients/js/build.mjs`, so building the hub never needs npm.

use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use hubbub_server::ApiExtension;
use serde_json::json;

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

/// The file, embedded with its gzip form and ETag by `hubbub-dashboard`
/// (one mechanism for every file the hub serves to browsers).
async fn serve(headers: HeaderMap) -> Response {
    hubbub_dashboard::client_js(&headers)
}
