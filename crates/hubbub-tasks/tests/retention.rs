//! Finished tasks kept up to `keep_finished` and `keep_finished_s`, and
//! at most `max_tasks` held (`limit_exceeded` beyond, unfinished work
//! never dropped).

mod common;

use common::{hub, until, Hub};
use serde_json::{json, Value};

async fn finish(h: &Hub, name: &str, status: &str) -> Value {
    let t = h.create(name).await;
    let (s, _) = h.patch(&t["task_id"], json!({"status": "running"})).await;
    assert_eq!(s, 200);
    let (s, t) = h.patch(&t["task_id"], json!({"status": status})).await;
    assert_eq!(s, 200, "{t}");
    t
}

async fn names(h: &Hub) -> Vec<String> {
    let (_, l) = h.call("GET", "/api/tasks", None).await;
    l.as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn finished_tasks_are_kept_up_to_a_count() {
    let h = hub(&[("apps.tasks.keep_finished", "2")]).await;
    h.create("waiting").await;
    finish(&h, "f1", "completed").await;
    finish(&h, "f2", "failed").await;
    assert_eq!(names(&h).await, ["waiting", "f1", "f2"]);
    finish(&h, "f3", "completed").await;
    finish(&h, "f4", "completed").await;
    // The oldest finished went first; the pending one stays.
    assert_eq!(names(&h).await, ["waiting", "f3", "f4"]);
    let (_, q) = h.call("GET", "/api/queue", None).await;
    assert_eq!(
        q,
        json!({"total_tasks": 3, "pending_tasks": 1, "running_tasks": 0, "completed_tasks": 2, "failed_tasks": 0})
    );
}

#[tokio::test]
async fn keep_finished_zero_drops_a_task_once_its_event_is_out() {
    let h = hub(&[("apps.tasks.keep_finished", "0")]).await;
    let mut ws = h.watch().await;
    let t = finish(&h, "gone", "completed").await;
    let mut last = Value::Null;
    while last["event_type"] != "task_completed" {
        last = common::task_event(&mut ws).await;
    }
    assert_eq!(last["data"], t);
    assert!(names(&h).await.is_empty());
    let (s, e) = h.patch(&t["task_id"], json!({"progress": 1.0})).await;
    assert_eq!((s, e["error"]["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn finished_tasks_are_dropped_after_their_age() {
    let h = hub(&[("apps.tasks.keep_finished_s", "1")]).await;
    let running = h.create("long job").await;
    h.patch(&running["task_id"], json!({"status": "running"}))
        .await;
    finish(&h, "done", "completed").await;
    finish(&h, "broken", "failed").await;
    assert_eq!(names(&h).await.len(), 3);
    until(
        "finished tasks past keep_finished_s are dropped",
        || async { names(&h).await == ["long job"] },
    )
    .await;
    let (_, q) = h.call("GET", "/api/queue", None).await;
    assert_eq!(q["total_tasks"], 1);
    assert_eq!(q["running_tasks"], 1);
}

#[tokio::test]
async fn max_tasks_drops_the_oldest_finished_then_refuses() {
    let h = hub(&[("apps.tasks.max_tasks", "3")]).await;
    let a = h.create("a").await;
    h.create("b").await;
    h.create("c").await;
    let (s, e) = h
        .call("POST", "/api/tasks", Some(json!({"name": "d"})))
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (429, Some("limit_exceeded")),
        "{e}"
    );
    let rust = h.tasks.create("d", None).await;
    assert!(matches!(
        rust,
        Err(hubbub_tasks::TaskError::LimitExceeded(3))
    ));
    // One finished makes room for one more: it is dropped.
    h.patch(&a["task_id"], json!({"status": "running"})).await;
    h.patch(&a["task_id"], json!({"status": "completed"})).await;
    h.create("d").await;
    assert_eq!(names(&h).await, ["b", "c", "d"]);
    let (s, _) = h
        .call("POST", "/api/tasks", Some(json!({"name": "e"})))
        .await;
    assert_eq!(s, 429);
}
