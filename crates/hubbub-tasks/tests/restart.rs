//! The task list across restarts (`apps.tasks.data_dir`): a new hub on
//! the same directory holds the same tasks, with their ids, statuses,
//! progress, messages, data and times; a write cut short by a crash is
//! skipped; a damaged log stops the start with a clear error.

mod common;

use std::io::Write;

use common::{hub, node, temp_dir, Hub};
use serde_json::{json, Value};

fn dir_overrides(dir: &std::path::Path) -> Vec<(String, String)> {
    vec![(
        "apps.tasks.data_dir".into(),
        format!("{:?}", dir.to_str().unwrap()),
    )]
}

async fn on(dir: &std::path::Path) -> Hub {
    on_with(dir, &[]).await
}

async fn on_with(dir: &std::path::Path, more: &[(&str, &str)]) -> Hub {
    let mut o = dir_overrides(dir);
    o.extend(more.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let o: Vec<(&str, &str)> = o.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    hub(&o).await
}

async fn listing(h: &Hub) -> (Value, Value) {
    let (_, tasks) = h.call("GET", "/api/tasks", None).await;
    let (_, queue) = h.call("GET", "/api/queue", None).await;
    (tasks, queue)
}

/// Tasks in every state.
async fn fill(h: &Hub) {
    h.call(
        "POST",
        "/api/tasks",
        Some(json!({"name": "waiting", "data": {"k": [1, 2]}})),
    )
    .await;
    let r = h.create("working").await;
    h.patch(
        &r["task_id"],
        json!({"status": "running", "progress": 0.4, "message": "40%"}),
    )
    .await;
    for (name, end) in [("done", "completed"), ("broke", "failed")] {
        let t = h.create(name).await;
        h.patch(&t["task_id"], json!({"status": "running"})).await;
        h.patch(&t["task_id"], json!({"status": end, "message": "end"}))
            .await;
    }
}

#[tokio::test]
async fn a_restart_keeps_the_tasks() {
    let dir = temp_dir("restart");
    let a = on(&dir).await;
    fill(&a).await;
    let before = listing(&a).await;
    assert_eq!(before.0.as_array().unwrap().len(), 4);
    a.stop().await;

    let b = on(&dir).await;
    assert_eq!(listing(&b).await, before, "the same tasks, byte for byte");
    // They go on from where they were.
    let working = before.0[1].clone();
    let (s, done) = b
        .patch(&working["task_id"], json!({"status": "completed"}))
        .await;
    assert_eq!(s, 200, "{done}");
    let new = b.create("after restart").await;
    let (s, e) = b
        .patch(&before.0[2]["task_id"], json!({"status": "running"}))
        .await;
    assert_eq!((s, e["error"]["code"].as_str()), (409, Some("conflict")));
    let after_b = listing(&b).await;
    b.stop().await;

    let c = on(&dir).await;
    assert_eq!(listing(&c).await, after_b);
    assert_eq!(
        c.tasks.get(new["task_id"].as_str().unwrap()).unwrap().name,
        "after restart"
    );
    c.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn many_changes_rewrite_the_log_and_still_read_back() {
    let dir = temp_dir("rewrite");
    // No flush per change: 3,000 of them would take seconds on a disk.
    let a = on_with(&dir, &[("apps.tasks.fsync", "false")]).await;
    let t = a.create("counter").await;
    a.patch(&t["task_id"], json!({"status": "running"})).await;
    // Enough records to pass the rewrite threshold several times over.
    for i in 1..=3_000 {
        let p = a
            .tasks
            .update(
                t["task_id"].as_str().unwrap(),
                hubbub_tasks::TaskPatch {
                    progress: Some(i as f64 / 3_000.0),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(p.progress, i as f64 / 3_000.0);
    }
    let before = listing(&a).await;
    a.stop().await;
    let size = std::fs::metadata(dir.join("tasks.log")).unwrap().len();
    assert!(size < 1_024 * 200, "the log was rewritten: {size} bytes");
    let b = on(&dir).await;
    assert_eq!(listing(&b).await, before);
    assert_eq!(before.0[0]["progress"], 1.0);
    b.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_write_cut_short_is_skipped() {
    let dir = temp_dir("torn");
    let a = on(&dir).await;
    fill(&a).await;
    let before = listing(&a).await;
    a.stop().await;
    // A crash in the middle of appending a record.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join("tasks.log"))
        .unwrap();
    f.write_all(b"1234abcd {\"put\":{\"n\":9,\"task\":{\"task_id\":\"x")
        .unwrap();
    drop(f);
    let b = on(&dir).await;
    assert_eq!(listing(&b).await, before);
    // New records go after a clean end: the next start reads them too.
    let t = b.create("next").await;
    b.stop().await;
    let c = on(&dir).await;
    assert!(c.tasks.get(t["task_id"].as_str().unwrap()).is_some());
    c.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_damaged_log_stops_the_start_with_a_clear_error() {
    let dir = temp_dir("damaged");
    let a = on(&dir).await;
    fill(&a).await;
    a.stop().await;
    let path = dir.join("tasks.log");
    let text = std::fs::read_to_string(&path).unwrap();
    // A record in the middle changed after it was written.
    let damaged = text.replacen("\"working\"", "\"w0rking\"", 1);
    assert_ne!(damaged, text);
    std::fs::write(&path, damaged).unwrap();
    let o = dir_overrides(&dir);
    let o: Vec<(&str, &str)> = o.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let err = node(&o).err().expect("refused");
    assert!(
        err.contains("tasks.log") && err.contains("line 3") && err.contains("checksum"),
        "{err}"
    );
    // The last line, whole (with its newline) but changed: damage too,
    // not a write cut short.
    let last_changed = {
        let mut lines: Vec<&str> = text.lines().collect();
        let l = lines.pop().unwrap().replacen("end", "END", 1);
        format!("{}\n{l}\n", lines.join("\n"))
    };
    assert_ne!(last_changed, text);
    std::fs::write(&path, last_changed).unwrap();
    let err = node(&o).err().expect("refused");
    let n = text.lines().count();
    assert!(err.contains(&format!("line {n}:")), "{err}");
    // Not a task log at all.
    std::fs::write(&path, "hello\n").unwrap();
    let err = node(&o).err().expect("refused");
    assert!(err.contains("not a hubbub task log"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
