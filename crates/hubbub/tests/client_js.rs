//! `GET /client.js`: the hub serves the JavaScript client's committed
//! browser build, open to everyone, cacheable and revalidated by ETag.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_js_is_served_with_caching_headers() {
    let hub = Hub::start(&["--api-key", "secret"], &[]);
    let url = format!("{}/client.js", hub.http());
    let http = reqwest::Client::new();
    // No credentials: the file is open like the dashboard.
    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let h = resp.headers().clone();
    assert_eq!(h["content-type"], "text/javascript; charset=utf-8");
    assert_eq!(h["cache-control"], "public, max-age=3600");
    let etag = h["etag"].to_str().unwrap().to_owned();
    let body = resp.text().await.unwrap();
    let committed = include_str!("../../../clients/js/dist/hubbub.min.js");
    assert_eq!(body, committed);
    assert!(body.contains("hubbub.json.v1"));
    // The same ETag back: 304 without a body.
    let again = http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    assert!(again.text().await.unwrap().is_empty());
    // Gzip for a browser that takes it, made at build time.
    let gz = http
        .get(&url)
        .header("accept-encoding", "gzip, deflate, br")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert_eq!(gz.headers()["etag"].to_str().unwrap(), etag);
    assert_eq!(gz.headers()["vary"], "Accept-Encoding");
    let bytes = gz.bytes().await.unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b]);
    assert!(bytes.len() < committed.len() / 2);
    // It is listed in the OpenAPI document.
    let doc: serde_json::Value = http
        .get(format!("{}/api/openapi.json", hub.http()))
        .bearer_auth("secret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/client.js"]["get"].is_object(), "{doc}");
}
