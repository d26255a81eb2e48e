//! The `tasks` stream over real sockets: `queue_status` while subscribed,
//! task events kept for a dashboard that reconnects, events in the order
//! the changes were made under concurrent PATCHes, and the Rust API
//! publishing the same events.

mod common;

use common::{expect_event, hub, task_event, to_running, until};
use serde_json::{json, Value};

#[tokio::test]
async fn queue_status_arrives_while_subscribed() {
    let h = hub(&[("apps.tasks.queue_status_interval_ms", "100")]).await;
    let t = h.create("one").await;
    to_running(&h, &t["task_id"]).await;
    h.create("two").await;
    let mut ws = h.watch().await;
    let mut seen = 0;
    while seen < 2 {
        let m = common::recv(&mut ws).await;
        if m["event_type"] != "queue_status" {
            continue;
        }
        assert_eq!(m["channel"], "tasks");
        assert!(m.get("offset").is_none(), "queue_status is not kept: {m}");
        assert_eq!(
            m["data"],
            json!({"total_tasks": 2, "pending_tasks": 1, "running_tasks": 1, "completed_tasks": 0, "failed_tasks": 0})
        );
        seen += 1;
    }
}

#[tokio::test]
async fn task_events_are_kept_for_a_dashboard_that_reconnects() {
    let h = hub(&[]).await;
    let mut ws = h.watch().await;
    let a = h.create("a").await;
    let e = task_event(&mut ws).await;
    let (offset, epoch) = (e["offset"].as_u64().expect("an offset"), e["epoch"].clone());
    drop(ws);
    // Changes while away.
    let r = to_running(&h, &a["task_id"]).await;
    let b = h.create("b").await;
    // Back, asking for everything after the last offset seen.
    let url = format!("ws://{}/ws", h.addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let _ = common::recv(&mut ws).await;
    common::send(
        &mut ws,
        json!({"type": "subscribe", "channels": ["tasks"], "since": {"tasks": {"offset": offset, "epoch": epoch}}}),
    )
    .await;
    let ok = common::recv(&mut ws).await;
    assert_eq!(ok["type"], "subscribed", "{ok}");
    assert_eq!(ok["channels"][0]["recovered"], true, "{ok}");
    expect_event(&mut ws, "task_updated", &r).await;
    expect_event(&mut ws, "task_created", &b).await;
}

#[tokio::test]
async fn concurrent_changes_publish_in_the_order_they_were_made() {
    let h = hub(&[]).await;
    let t = h.create("busy").await;
    let id = t["task_id"].clone();
    to_running(&h, &id).await;
    let mut ws = h.watch().await;
    let n = 40;
    let mut calls = Vec::new();
    for i in 1..=n {
        let (http, url) = (
            h.http.clone(),
            h.url(&format!("/api/tasks/{}", id.as_str().unwrap())),
        );
        calls.push(tokio::spawn(async move {
            let body = json!({"progress": i as f64 / n as f64, "message": format!("step {i}")});
            let r = http.patch(url).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }));
    }
    let mut answers = Vec::new();
    for c in calls {
        answers.push(c.await.unwrap());
    }
    let mut events = Vec::new();
    for _ in 0..n {
        events.push(task_event(&mut ws).await["data"].clone());
    }
    // Each answer is the task right after its own change: the events, in
    // order, are exactly the answers in the order the changes were made.
    let mut by_message: Vec<Value> = answers.clone();
    by_message.sort_by_key(|a| {
        events
            .iter()
            .position(|e| e["message"] == a["message"])
            .expect("an event per answer")
    });
    assert_eq!(events, by_message);
    for w in events.windows(2) {
        assert!(w[0]["updated_at"].as_u64() <= w[1]["updated_at"].as_u64());
    }
    let (_, now) = h.call("GET", "/api/tasks", None).await;
    assert_eq!(
        now[0],
        *events.last().unwrap(),
        "the last event is the task as it is"
    );
}

#[tokio::test]
async fn the_rust_api_drives_the_same_queue() {
    let h = hub(&[]).await;
    let mut ws = h.watch().await;
    let t = h
        .tasks
        .create("from rust", Some(json!({"k": 1})))
        .await
        .unwrap();
    expect_event(&mut ws, "task_created", &serde_json::to_value(&t).unwrap()).await;
    let patch = hubbub_tasks::TaskPatch {
        status: Some(hubbub_tasks::TaskStatus::Running),
        progress: Some(0.25),
        message: None,
    };
    let r = h.tasks.update(&t.task_id, patch).await.unwrap();
    expect_event(&mut ws, "task_updated", &serde_json::to_value(&r).unwrap()).await;
    let nan = hubbub_tasks::TaskPatch {
        progress: Some(f64::NAN),
        ..Default::default()
    };
    assert!(matches!(
        h.tasks.update(&t.task_id, nan).await,
        Err(hubbub_tasks::TaskError::BadRequest(_))
    ));
    assert_eq!(h.tasks.get(&t.task_id), Some(r.clone()));
    assert_eq!(
        h.tasks.list(Some(hubbub_tasks::TaskStatus::Running)),
        vec![r]
    );
    let (_, over_http) = h.call("GET", "/api/tasks", None).await;
    assert_eq!(over_http.as_array().unwrap().len(), 1);
    until("the openapi document lists the routes", || async {
        let (_, doc) = h.call("GET", "/api/openapi.json", None).await;
        ["/api/tasks", "/api/tasks/{id}", "/api/queue"]
            .iter()
            .all(|p| doc["paths"].get(*p).is_some())
    })
    .await;
}
