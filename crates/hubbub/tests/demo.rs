//! `hubbub serve --demo`: the made-up workload runs (tasks move, orders
//! flow, rooms take messages), the page names the dashboard, and the demo
//! is refused in production mode.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_keeps_every_panel_busy() {
    let hub = Hub::start(&["--demo"], &[]);
    assert!(
        hub.proc
            .stdout()
            .iter()
            .any(|l| l.contains("dashboard  http://")),
        "{}",
        hub.proc.dump()
    );
    let http = reqwest::Client::new();
    let get = |path: &str| {
        let http = http.clone();
        let url = format!("{}{path}", hub.http());
        async move {
            http.get(url)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    // Within a deadline: tasks created and running, orders published.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let queue = get("/api/queue").await;
        let orders = get("/api/channels/orders").await;
        let busy = queue["total_tasks"].as_u64().unwrap_or(0) >= 1
            && queue["running_tasks"].as_u64().unwrap_or(0)
                + queue["completed_tasks"].as_u64().unwrap_or(0)
                + queue["failed_tasks"].as_u64().unwrap_or(0)
                >= 1
            && orders["offset"].as_u64().unwrap_or(0) >= 3;
        if busy {
            break;
        }
        assert!(Instant::now() < deadline, "queue {queue}, orders {orders}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Its metrics are in the store, with a threshold rule for the alerts panel.
    let rules = get("/api/alerts/rules").await;
    assert!(
        rules
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["metric"] == "demo.checkout_latency_ms"),
        "{rules}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let summary = get("/api/metrics/summary").await;
        if summary
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["metric"] == "demo.orders_per_second")
        {
            break;
        }
        assert!(Instant::now() < deadline, "{summary}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Room members may chat: the room namespace takes publications.
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let (mut ws, _) = tokio_tungstenite::connect_async(hub.ws()).await.unwrap();
    for m in [
        r#"{"type":"join_room","id":1,"room":"lobby","info":{"name":"ann"}}"#,
        r#"{"type":"publish","id":2,"channel":"room:lobby","event_type":"room_message","data":{"text":"hi"}}"#,
    ] {
        ws.send(Message::text(m)).await.unwrap();
    }
    let reply = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(m)) = ws.next().await {
            let v: serde_json::Value = match m {
                Message::Text(t) => serde_json::from_str(&t).unwrap(),
                _ => continue,
            };
            if v["correlation_id"] == 2 {
                return v;
            }
        }
        panic!("closed");
    })
    .await
    .expect("a reply to the publish");
    assert_eq!(reply["type"], "published", "{reply}");
}

#[test]
fn the_demo_is_for_development_only() {
    let (status, _, err) = run(
        hubbub(&[
            "serve",
            "--demo",
            "--mode",
            "production",
            "--api-key",
            "k",
            "--listen",
            "127.0.0.1:0",
        ]),
        None,
    );
    assert_eq!(status, 2, "{err}");
    assert!(err.contains("development mode only"), "{err}");
}
