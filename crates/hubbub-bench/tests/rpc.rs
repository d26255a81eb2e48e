//! Smoke tests of `bench rpc` against a real hub in this process, with
//! handlers registered like the `rpc_query_progress` example's, and
//! through the hub's RPC proxy to the bench's own backend: every call is
//! answered, and answered once, with nothing left over. No timing
//! assertions.

use std::net::TcpListener;

use hubbub_bench::rpc::{run_in_process, RpcArgs, RpcReport};
use hubbub_server::config::RpcProxy;
use hubbub_server::rpc::{RpcCall, RpcError};
use hubbub_server::{Config, Node, Sources};
use serde_json::json;
use tokio::sync::oneshot;

/// A hub on a free port with `query.echo` (answers its data at once) and
/// `query.steps` (two progress events carrying the call's correlation id,
/// then the answer), every call through `proxy` when given. The message
/// rate limit is raised as for a bench; the run stops it.
async fn with_hub(proxy: Option<RpcProxy>, tune: impl FnOnce(&mut RpcArgs)) -> RpcReport {
    let mut config = Config::load(&Sources {
        overrides: vec![
            ("server.listen".into(), "127.0.0.1:0".into()),
            ("connection.rate_limit_per_second".into(), "1000000".into()),
            ("connection.rate_limit_burst".into(), "1000000".into()),
        ],
        ..Default::default()
    })
    .expect("config");
    config.rpc.proxy.extend(proxy);
    let node = Node::new(config).expect("node");
    node.rpc("query.echo", |call: RpcCall| async move {
        serde_json::from_str(call.data.get()).map_err(|e| RpcError::bad_request(e.to_string()))
    });
    node.rpc("query.steps", |call: RpcCall| async move {
        for stage in ["parsing", "executing"] {
            call.progress("query_progress", &json!({ "stage": stage }))?;
        }
        Ok(json!({"rows": [[1]]}))
    });
    let server = node.bind().await.expect("bind");
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));
    let mut args = RpcArgs::new(format!("ws://{addr}/ws"));
    args.connections = 4;
    args.warmup = 0.2;
    args.duration = 0.4;
    args.repetitions = 2;
    args.drain = 5.0;
    tune(&mut args);
    let report = run_in_process(args).await.expect("scenario runs");
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    report
}

/// Every call answered with a result, once, in every window.
fn assert_all_answered(r: &RpcReport) {
    assert_eq!(r.connected, r.connections, "{r:#?}");
    assert!(r.dropped.is_empty() && r.total_errors.is_empty(), "{r:#?}");
    assert_eq!(r.unanswered, 0, "{r:#?}");
    assert_eq!(r.unmatched, 0, "{r:#?}");
    assert_eq!(r.unparsed, 0, "{r:#?}");
    assert!(r.total_sent > 0);
    assert_eq!(r.total_answered, r.total_sent, "{r:#?}");
    assert_eq!(r.windows.len(), 2);
    for w in &r.windows {
        assert!(w.calls_answered > 0, "{r:#?}");
        assert_eq!(w.latency.count, w.calls_answered);
        assert!(w.errors.is_empty());
        assert!(w.latency.p50_ms <= w.latency.p99_ms && w.latency.p99_ms <= w.latency.max_ms);
    }
    assert!(r.clean(), "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_loop_answers_every_call() {
    let r = with_hub(None, |a| a.in_flight = 3).await;
    assert_all_answered(&r);
    assert_eq!(
        (r.mode, r.in_flight, r.rate),
        ("closed-loop", Some(3), None)
    );
    assert!(r.backend.is_none());
    assert!(r
        .windows
        .iter()
        .all(|w| w.latency_from_due.is_none() && w.send_lag.is_none()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_events_are_not_answers() {
    let r = with_hub(None, |a| {
        a.method = "query.steps".into();
        a.in_flight = 2;
    })
    .await;
    assert_all_answered(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_keeps_its_rate() {
    let r = with_hub(None, |a| {
        a.rate = Some(200.0);
        a.connections = 3;
    })
    .await;
    assert_all_answered(&r);
    assert_eq!(r.mode, "open-loop");
    // 200 calls/s for 1 s in all (warm-up and two windows), give or take
    // the edges of the schedule.
    assert!((150..=250).contains(&r.total_sent), "{r:#?}");
    for w in &r.windows {
        let from_due = w.latency_from_due.as_ref().expect("open loop");
        assert_eq!(from_due.count, w.calls_answered);
        assert!(from_due.max_ms >= w.latency.max_ms);
        assert_eq!(w.send_lag.as_ref().expect("open loop").count, w.calls_sent);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_counted_by_code() {
    let r = with_hub(None, |a| {
        a.method = "query.nothing".into();
        a.connections = 2;
    })
    .await;
    assert!(!r.clean());
    assert_eq!(r.total_answered, 0);
    assert_eq!(r.unanswered, 0);
    assert_eq!(r.total_errors.get("not_found"), Some(&r.total_sent));
    assert!(r.windows.iter().all(|w| w.errors["not_found"] > 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_reaches_the_benchs_own_backend() {
    // A free port for the backend, known before the hub is configured.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let proxy = RpcProxy {
        prefix: "bench.".into(),
        url: format!("http://127.0.0.1:{port}/rpc"),
        timeout_ms: Some(5_000),
    };
    let r = with_hub(Some(proxy), |a| {
        a.method = "bench.echo".into();
        a.data = r#"{"n": [1, 2, 3]}"#.into();
        a.in_flight = 2;
        a.backend_listen = Some(format!("127.0.0.1:{port}").parse().unwrap());
    })
    .await;
    assert_all_answered(&r);
    let b = r.backend.as_ref().expect("backend");
    assert_eq!(b.requests, r.total_answered, "{r:#?}");
    assert_eq!(b.refused, 0);
    for w in &r.windows {
        assert!(w.backend_requests.unwrap() >= w.calls_answered.saturating_sub(8));
    }
}
