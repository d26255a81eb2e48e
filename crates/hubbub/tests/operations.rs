//! Running a node the way production does: JSON log lines with the node's
//! id, and a drain that turns `/readyz` to 503 before connections close.

mod common;
#[path = "cluster/net.rs"]
mod net;

use common::Hub;
use net::{get, until, Client, Next};
use serde_json::Value;

#[test]
fn json_logs_carry_the_node_id() {
    let hub = Hub::start(
        &["--log-format", "json", "--set", "server.node_id=node-7"],
        &[],
    );
    // Development mode warns at start: one JSON object per line.
    let line = hub.proc.wait_line(true, |l| l.contains("development mode"));
    let v: Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(v["node_id"], "node-7", "{line}");
    assert_eq!(v["level"], "WARN", "{line}");
    assert!(v["timestamp"].as_u64().is_some(), "{line}");
    for l in hub.proc.stderr().lines() {
        serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_readyz_503_before_closing_with_1001() {
    let mut hub = Hub::start(&["--set", "server.drain_delay_ms=1500"], &[]);
    let addr = hub.addr.clone();
    let mut client = Client::connect(&addr, "stay").await.unwrap();
    assert_eq!(get(&addr, "/readyz").await.unwrap().0, 200);
    hub.proc.signal("TERM");
    until("readyz 503 after SIGTERM", || async {
        matches!(get(&addr, "/readyz").await, Ok((503, _)))
    })
    .await;
    // Still serving while the balancer takes the node out.
    let pong = client.call(serde_json::json!({"type": "ping"}), "p").await;
    assert_eq!(pong["type"], "pong", "{pong}");
    // Then closed with 1001, reconnect advised.
    let mut advice = None;
    loop {
        match client.next().await {
            Next::Message(m) if m["type"] == "disconnect" => advice = Some(m),
            Next::Message(_) => {}
            Next::Closed(code) => {
                assert_eq!(code, Some(1001));
                break;
            }
        }
    }
    let advice = advice.expect("a disconnect message first");
    assert_eq!(advice["code"], 1001, "{advice}");
    assert_eq!(advice["reconnect"], true, "{advice}");
    hub.proc.expect_exit(0);
}
