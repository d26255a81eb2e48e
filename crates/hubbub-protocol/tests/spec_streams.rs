//! PROTOCOL.md section 8 (built-in streams): each event's data reads into
//! its type and is written back as the same JSON; optional fields stay
//! absent when they were, as the spec says ("present once set").

mod common;

use common::round_trip;
use hubbub_protocol::streams::*;
use hubbub_protocol::tasks::*;
use hubbub_protocol::EventPayload;

#[test]
fn tasks() {
    // POST /api/tasks without data: no message, no data yet.
    let t: TaskCreated = round_trip(
        r#"{"task_id":"t1","name":"resize","status":"pending","progress":0,
            "created_at":1700000000000,"updated_at":1700000000000}"#,
    );
    assert_eq!((t.0.message.as_ref(), t.0.data.as_ref()), (None, None));
    let json = serde_json::to_value(&t).unwrap();
    assert!(
        json.get("message").is_none() && json.get("data").is_none(),
        "{json}"
    );
    let t: TaskUpdated = round_trip(
        r#"{"task_id":"t1","name":"resize","status":"running","progress":0.5,"message":"half way",
            "data":{"w":640},"created_at":1,"updated_at":2}"#,
    );
    assert_eq!(t.0.status, TaskStatus::Running);
    let t: TaskCompleted = round_trip(
        r#"{"task_id":"t1","name":"resize","status":"completed","progress":1,"data":null,
            "created_at":1,"updated_at":3}"#,
    );
    assert_eq!(
        t.0.data,
        Some(serde_json::Value::Null),
        "data set to null stays present"
    );
    assert_eq!(t.0.change_event_type(), "task_completed");
    round_trip::<TaskFailed>(
        r#"{"task_id":"t2","name":"x","status":"failed","progress":0.1,"message":"disk full",
            "created_at":1,"updated_at":3}"#,
    );
    round_trip::<QueueStatus>(
        r#"{"total_tasks":5,"pending_tasks":1,"running_tasks":1,"completed_tasks":2,"failed_tasks":1}"#,
    );
    assert!(serde_json::from_str::<Task>(
        r#"{"task_id":"t","name":"x","status":"paused","progress":0,"created_at":1,"updated_at":1}"#
    )
    .is_err());
    assert_eq!(
        [
            TaskCreated::EVENT_TYPE,
            TaskUpdated::EVENT_TYPE,
            TaskFailed::EVENT_TYPE,
            QueueStatus::EVENT_TYPE
        ],
        [
            "task_created",
            "task_updated",
            "task_failed",
            "queue_status"
        ]
    );
}

#[test]
fn metrics_nodes_resources() {
    round_trip::<SystemMetrics>(
        r#"{"node_id":"n1","cpu_percent":12.5,"memory_bytes":73400320,"events_per_second":1500,
            "connections":42,"messages_per_second":3000.5}"#,
    );
    let n: NodeStatusUpdate = round_trip(
        r#"{"node_id":"n1","address":"10.0.0.1:8080","connections":42,"uptime_seconds":3600}"#,
    );
    assert_eq!(n.latency_ms, None);
    round_trip::<NodeStatusUpdate>(
        r#"{"node_id":"n2","address":"10.0.0.2:8080","connections":7,"uptime_seconds":60,"latency_ms":0.8}"#,
    );
    round_trip::<ResourceUpdate>(
        r#"{"node_id":"n1","cpu_percent":3,"memory_bytes":1048576,"open_fds":120,"queue_bytes":0}"#,
    );
    assert_eq!(SystemMetrics::EVENT_TYPE, "system_metrics");
    assert_eq!(NodeStatusUpdate::EVENT_TYPE, "node_status_update");
    assert_eq!(ResourceUpdate::EVENT_TYPE, "resource_update");
}

#[test]
fn alerts() {
    let a: Alert = round_trip(
        r#"{"type":"threshold_exceeded","metric":"cpu","value":97.5,"threshold":90,"severity":"high"}"#,
    );
    assert!(matches!(
        a,
        Alert::ThresholdExceeded {
            severity: Severity::High,
            ..
        }
    ));
    let a: Alert = round_trip(
        r#"{"type":"anomaly_detected","metric":"latency_ms","value":250,"z_score":-2.8,"severity":"medium"}"#,
    );
    assert!(matches!(a, Alert::AnomalyDetected { .. }));
    assert_eq!(a.event_type(), "alert");
    assert!(serde_json::from_str::<Alert>(
        r#"{"type":"threshold_exceeded","metric":"cpu","value":1,"z_score":3,"severity":"high"}"#
    )
    .is_err());
}

#[test]
fn topology_connections_status_logs() {
    round_trip::<TopologyUpdate>(
        r#"{"nodes":[{"node_id":"n1","address":"10.0.0.1:8080"},{"node_id":"n2","address":"10.0.0.2:8080"}],
            "links":[{"from":"n1","to":"n2","latency_ms":0.8},{"from":"n2","to":"n1"}]}"#,
    );
    round_trip::<TopologyUpdate>(
        r#"{"nodes":[{"node_id":"n1","address":"127.0.0.1:8080"}],"links":[]}"#,
    );
    round_trip::<ConnectionOpened>(
        r#"{"connection_id":"c1","user_id":"ann","encoding":"json","remote_addr":"127.0.0.1:50000"}"#,
    );
    round_trip::<ConnectionOpened>(r#"{"connection_id":"c2","user_id":null,"encoding":"msgpack"}"#);
    round_trip::<ConnectionClosed>(
        r#"{"connection_id":"c1","user_id":"ann","code":4009,"reason":"slow_consumer","duration_ms":5000}"#,
    );
    let s: StatusChange = round_trip(r#"{"node_id":"n1","status":"starting"}"#);
    assert_eq!(s.previous, None);
    round_trip::<StatusChange>(
        r#"{"node_id":"n1","previous":"ready","status":"draining","reason":"shutdown requested"}"#,
    );
    round_trip::<Log>(
        r#"{"node_id":"n1","level":"warn","target":"hubbub_server::conn","message":"slow consumer"}"#,
    );
    assert!(serde_json::from_str::<Log>(
        r#"{"node_id":"n","level":"info","target":"t","message":"m"}"#
    )
    .is_err());
    assert_eq!(
        [
            TopologyUpdate::EVENT_TYPE,
            ConnectionOpened::EVENT_TYPE,
            ConnectionClosed::EVENT_TYPE,
            StatusChange::EVENT_TYPE,
            Log::EVENT_TYPE
        ],
        [
            "topology_update",
            "connection_opened",
            "connection_closed",
            "status_change",
            "log"
        ]
    );
}
