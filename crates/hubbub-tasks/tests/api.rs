//! The task queue over real sockets (HTTP_API.md "Tasks", PROTOCOL.md
//! section 8): every endpoint and task event, every illegal move (409
//! `conflict`) and every invalid body (400 `bad_request`).

mod common;

use common::{check_shape, expect_event, hub, task_event, to_running};
use serde_json::{json, Value};

#[tokio::test]
async fn a_task_from_creation_to_completion_and_failure() {
    let h = hub(&[]).await;
    let mut ws = h.watch().await;

    let (s, a) = h
        .call(
            "POST",
            "/api/tasks",
            Some(json!({"name": "resize", "data": {"images": 3}})),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    check_shape(&a);
    assert_eq!(a["status"], "pending");
    assert_eq!(a["progress"], 0.0);
    assert_eq!(a["data"], json!({"images": 3}));
    assert!(
        a.get("message").is_none(),
        "no message until one is set: {a}"
    );
    assert_eq!(a["created_at"], a["updated_at"]);
    expect_event(&mut ws, "task_created", &a).await;
    let id = &a["task_id"];

    let r = to_running(&h, id).await;
    assert_eq!(r["status"], "running");
    expect_event(&mut ws, "task_updated", &r).await;

    let (s, p) = h
        .patch(id, json!({"progress": 0.5, "message": "half way"}))
        .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(
        (p["progress"].as_f64(), p["message"].as_str()),
        (Some(0.5), Some("half way"))
    );
    expect_event(&mut ws, "task_updated", &p).await;

    let (s, c) = h
        .patch(id, json!({"status": "completed", "progress": 1.0}))
        .await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["status"], "completed");
    assert_eq!(c["message"], "half way", "the message stays");
    check_shape(&c);
    expect_event(&mut ws, "task_completed", &c).await;

    // Without data: no `data` field; `null` given stays present.
    let b = h.create("flaky").await;
    assert!(b.get("data").is_none(), "{b}");
    expect_event(&mut ws, "task_created", &b).await;
    let (_, n) = h
        .call(
            "POST",
            "/api/tasks",
            Some(json!({"name": "nulled", "data": null})),
        )
        .await;
    assert!(n.get("data").is_some_and(Value::is_null), "{n}");
    expect_event(&mut ws, "task_created", &n).await;
    let r = to_running(&h, &b["task_id"]).await;
    expect_event(&mut ws, "task_updated", &r).await;
    let (s, f) = h
        .patch(
            &b["task_id"],
            json!({"status": "failed", "message": "disk full"}),
        )
        .await;
    assert_eq!(s, 200, "{f}");
    expect_event(&mut ws, "task_failed", &f).await;

    // Lists, oldest first, by status, and the counts.
    let (s, all) = h.call("GET", "/api/tasks", None).await;
    assert_eq!(s, 200);
    assert_eq!(all, json!([c, f, n]));
    for (status, want) in [
        ("completed", json!([c])),
        ("failed", json!([f])),
        ("pending", json!([n])),
        ("running", json!([])),
    ] {
        let (s, l) = h
            .call("GET", &format!("/api/tasks?status={status}"), None)
            .await;
        assert_eq!((s, &l), (200, &want), "status={status}");
    }
    let (s, q) = h.call("GET", "/api/queue", None).await;
    assert_eq!(s, 200);
    assert_eq!(
        q,
        json!({"total_tasks": 3, "pending_tasks": 1, "running_tasks": 0, "completed_tasks": 1, "failed_tasks": 1})
    );
    assert_eq!(
        h.tasks.queue(),
        serde_json::from_value(q).unwrap(),
        "the Rust API counts the same"
    );
}

#[tokio::test]
async fn every_illegal_move_is_a_conflict_and_changes_nothing() {
    let h = hub(&[]).await;
    let mut ws = h.watch().await;
    let pending = h.create("p").await;
    expect_event(&mut ws, "task_created", &pending).await;
    let running = h.create("r").await;
    let _ = task_event(&mut ws).await;
    let running = to_running(&h, &running["task_id"]).await;
    let _ = task_event(&mut ws).await;
    let done = h.create("c").await;
    let _ = task_event(&mut ws).await;
    to_running(&h, &done["task_id"]).await;
    let _ = task_event(&mut ws).await;
    let (_, done) = h
        .patch(&done["task_id"], json!({"status": "completed"}))
        .await;
    let _ = task_event(&mut ws).await;
    let failed = h.create("f").await;
    let _ = task_event(&mut ws).await;
    to_running(&h, &failed["task_id"]).await;
    let _ = task_event(&mut ws).await;
    let (_, failed) = h
        .patch(&failed["task_id"], json!({"status": "failed"}))
        .await;
    let _ = task_event(&mut ws).await;

    let illegal = [
        (&pending, json!({"status": "completed"})),
        (&pending, json!({"status": "failed"})),
        (&running, json!({"status": "pending"})),
        (&done, json!({"status": "pending"})),
        (&done, json!({"status": "running"})),
        (&done, json!({"status": "failed"})),
        (&failed, json!({"status": "pending"})),
        (&failed, json!({"status": "running"})),
        (&failed, json!({"status": "completed"})),
        // A finished task takes no more changes.
        (&done, json!({"progress": 0.3})),
        (&failed, json!({"message": "retry"})),
        (&done, json!({"status": "completed", "message": "again"})),
        // A refused move refuses the whole patch.
        (&pending, json!({"status": "completed", "progress": 0.9})),
    ];
    for (t, body) in &illegal {
        let (s, e) = h.patch(&t["task_id"], body.clone()).await;
        assert_eq!(s, 409, "{body} on {}: {e}", t["status"]);
        assert_eq!(e["error"]["code"], "conflict", "{e}");
        assert!(e["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    // Repeating the current status is no move: answered, nothing changes,
    // no event.
    for (t, body) in [
        (&pending, json!({"status": "pending"})),
        (&running, json!({"status": "running"})),
        (&done, json!({"status": "completed"})),
        (&failed, json!({"status": "failed", "progress": 0.0})),
        (&pending, json!({})),
    ] {
        let (s, same) = h.patch(&t["task_id"], body.clone()).await;
        assert_eq!((s, &same), (200, t), "{body}");
    }
    // Progress while pending or running is no move either.
    let (s, p) = h.patch(&pending["task_id"], json!({"progress": 0.1})).await;
    assert_eq!((s, p["status"].as_str()), (200, Some("pending")));
    // The first event after all that is this one: none was published for
    // a refused or empty change.
    expect_event(&mut ws, "task_updated", &p).await;
    let (_, list) = h.call("GET", "/api/tasks", None).await;
    assert_eq!(list, json!([p, running, done, failed]));

    let (s, e) = h
        .call(
            "PATCH",
            "/api/tasks/nosuchtask",
            Some(json!({"status": "running"})),
        )
        .await;
    assert_eq!(
        (s, e["error"]["code"].as_str()),
        (404, Some("not_found")),
        "{e}"
    );
}

#[tokio::test]
async fn invalid_bodies_and_queries_are_bad_requests() {
    let h = hub(&[]).await;
    let t = h.create("target").await;
    let id = t["task_id"].as_str().unwrap().to_owned();
    let deep = (0..70).fold(json!(1), |v, _| json!([v]));
    let creates = [
        json!({}),
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": 5}),
        json!({"name": null}),
        json!({"name": "x".repeat(201)}),
        json!({"name": "a", "extra": 1}),
        json!({"name": "a", "status": "running"}),
        json!(["name"]),
        json!("name"),
        json!({"name": "a", "data": "x".repeat(9_000)}),
        json!({"name": "a", "data": deep}),
    ];
    for body in &creates {
        let (s, e) = h.call("POST", "/api/tasks", Some(body.clone())).await;
        assert_eq!(s, 400, "{body}: {e}");
        assert_eq!(e["error"]["code"], "bad_request", "{e}");
    }
    // The longest name allowed, in characters (not bytes).
    let (s, _) = h
        .call("POST", "/api/tasks", Some(json!({"name": "é".repeat(200)})))
        .await;
    assert_eq!(s, 201);
    let patches = [
        json!({"progress": 1.5}),
        json!({"progress": -0.1}),
        json!({"progress": "0.5"}),
        json!({"progress": true}),
        json!({"status": "done"}),
        json!({"status": 3}),
        json!({"status": "Running"}),
        json!({"message": 5}),
        json!({"message": "m".repeat(1_001)}),
        json!({"foo": 1}),
        json!({"data": {}}),
        json!({"status": null}),
        json!({"progress": null}),
        json!({"message": null}),
        json!([]),
    ];
    for body in &patches {
        let (s, e) = h
            .call("PATCH", &format!("/api/tasks/{id}"), Some(body.clone()))
            .await;
        assert_eq!(s, 400, "{body}: {e}");
        assert_eq!(e["error"]["code"], "bad_request", "{e}");
    }
    for text in [
        "{",
        "{\"progress\": NaN}",
        "{\"progress\": 1e999}",
        "not json",
        "",
    ] {
        let (s, e) = h.raw("PATCH", &format!("/api/tasks/{id}"), text).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (400, Some("bad_request")),
            "{text}: {e}"
        );
        let (s, e) = h.raw("POST", "/api/tasks", text).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (400, Some("bad_request")),
            "{text}: {e}"
        );
    }
    for q in [
        "status=done",
        "status=PENDING",
        "limit=3",
        "status=pending&status=running",
    ] {
        let (s, e) = h.call("GET", &format!("/api/tasks?{q}"), None).await;
        assert_eq!(
            (s, e["error"]["code"].as_str()),
            (400, Some("bad_request")),
            "{q}: {e}"
        );
    }
    // Nothing changed the task.
    let (_, list) = h.call("GET", "/api/tasks?status=pending", None).await;
    assert_eq!(list[0], t);
}
