//! The dashboard's routes over real TCP: the page and its files, gzip
//! when asked, revalidation by ETag, files that do not exist or try to
//! leave the directory, a dashboard turned off, and files from disk.

use hubbub_dashboard::DashboardConfig;
use hubbub_server::Node;
use hubbub_testkit::Served;
use reqwest::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH,
};
use reqwest::StatusCode;

/// A node with the dashboard installed, served on a free port.
async fn hub(overrides: &[(&str, &str)]) -> Served {
    let node = Node::builder(hubbub_testkit::config(overrides))
        .build()
        .expect("node");
    let dashboard = DashboardConfig::from_config(node.config()).expect("dashboard config");
    hubbub_dashboard::install(&node, dashboard);
    hubbub_testkit::serve(node).await
}

async fn get(
    hub: &Served,
    path: &str,
    headers: &[(reqwest::header::HeaderName, &str)],
) -> reqwest::Response {
    let mut req = reqwest::Client::new().get(hub.url(path));
    for (k, v) in headers {
        req = req.header(k, *v);
    }
    req.send().await.unwrap()
}

#[tokio::test]
async fn the_page_and_its_files_gzip_when_asked_and_revalidate() {
    let hub = hub(&[]).await;
    let plain = get(&hub, "/", &[]).await;
    assert_eq!(plain.status(), StatusCode::OK);
    assert_eq!(plain.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
    assert_eq!(plain.headers()[CACHE_CONTROL], "no-cache");
    assert!(plain.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .contains("default-src 'self'"));
    assert!(plain.headers().get(CONTENT_ENCODING).is_none());
    let etag = plain.headers()[ETAG].to_str().unwrap().to_owned();
    let html = plain.text().await.unwrap();
    assert!(html.contains("dashboard/app.js"), "{html}");

    let gz = get(&hub, "/", &[(ACCEPT_ENCODING, "gzip, deflate, br")]).await;
    assert_eq!(gz.headers()[CONTENT_ENCODING], "gzip");
    assert_eq!(gz.headers()[ETAG].to_str().unwrap(), etag);
    let body = gz.bytes().await.unwrap();
    assert_eq!(&body[..2], &[0x1f, 0x8b], "a gzip stream");
    assert!(body.len() < html.len());

    let again = get(&hub, "/", &[(IF_NONE_MATCH, etag.as_str())]).await;
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert!(again.bytes().await.unwrap().is_empty());
    let changed = get(&hub, "/", &[(IF_NONE_MATCH, "\"0000000000000000\"")]).await;
    assert_eq!(changed.status(), StatusCode::OK);

    for (file, kind) in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
        ("graph.js", "text/javascript; charset=utf-8"),
    ] {
        let r = get(&hub, &format!("/dashboard/{file}"), &[]).await;
        assert_eq!(r.status(), StatusCode::OK, "{file}");
        assert_eq!(r.headers()[CONTENT_TYPE], kind, "{file}");
    }
}

#[tokio::test]
async fn unknown_files_and_escapes_are_404() {
    let hub = hub(&[]).await;
    for path in [
        "/dashboard/nope.js",
        "/dashboard/..%2fCargo.toml",
        "/dashboard/.hidden",
        "/dashboard/a//b",
    ] {
        let r = get(&hub, path, &[]).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "not_found", "{path}");
    }
}

#[tokio::test]
async fn turned_off_the_hub_serves_no_page() {
    let hub = hub(&[("apps.dashboard.enabled", "false")]).await;
    assert_eq!(get(&hub, "/", &[]).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        get(&hub, "/dashboard/app.js", &[]).await.status(),
        StatusCode::NOT_FOUND
    );
    // The hub itself is untouched.
    assert_eq!(get(&hub, "/healthz", &[]).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn files_from_a_directory_are_read_on_every_request() {
    let dir = std::env::temp_dir().join(format!("hubbub-dashboard-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.html"), "<p>one</p>").unwrap();
    let value = format!("{:?}", dir.display().to_string());
    let hub = hub(&[("apps.dashboard.assets_dir", value.as_str())]).await;
    let r = get(&hub, "/", &[(ACCEPT_ENCODING, "gzip")]).await;
    assert_eq!(r.headers()[CACHE_CONTROL], "no-store");
    assert_eq!(r.text().await.unwrap(), "<p>one</p>");
    std::fs::write(dir.join("index.html"), "<p>two</p>").unwrap();
    assert_eq!(
        get(&hub, "/", &[]).await.text().await.unwrap(),
        "<p>two</p>"
    );
    assert_eq!(
        get(&hub, "/dashboard/app.js", &[]).await.status(),
        StatusCode::NOT_FOUND
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_directory_without_a_page_is_refused() {
    let config =
        hubbub_testkit::config(&[("apps.dashboard.assets_dir", "\"/nonexistent/hubbub\"")]);
    let e = DashboardConfig::from_config(&config).unwrap_err();
    assert!(e.contains("apps.dashboard.assets_dir"), "{e}");
}
