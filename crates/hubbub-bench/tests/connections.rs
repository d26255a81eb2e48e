//! Smoke test of the `connections` scenario against a real hub in this
//! process: every connection is established and subscribed, and the hub
//! counts them. No timing or memory assertions: those figures belong to
//! `scripts/idle-rss.sh`, on a quiet machine.

use hubbub_bench::connections::{run_in_process, ConnectionsArgs};
mod common;

use common::TestHub;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_connections_subscribe_and_are_counted() {
    let hub = TestHub::start().await;
    let shared = hub.shared.clone();

    let mut args = ConnectionsArgs::new(hub.ws_url(), 50);
    args.channel = "smoke".into();
    args.hold = 0.2;
    let out = std::env::temp_dir().join(format!("hubbub-bench-smoke-{}.json", std::process::id()));
    args.out = Some(out.clone());
    let seen = shared.clone();
    let (report, (subscribers, live)) = run_in_process(args, move || {
        (seen.hub.subscriber_count("smoke"), seen.conns.count())
    })
    .await
    .expect("scenario runs");

    assert_eq!(report.established, 50, "{report:#?}");
    assert_eq!(report.failures, 0, "{report:#?}");
    assert_eq!(report.open_at_sample, 50);
    assert_eq!(report.dropped, 0);
    assert_eq!(report.handshake_ms.count, 50);
    assert!(
        report.worker_errors.is_empty(),
        "{:?}",
        report.worker_errors
    );
    assert_eq!(
        subscribers,
        Some(50),
        "the hub's subscriber count on the channel"
    );
    assert_eq!(live, 50);
    // The hub is this process, found through /proc by its listening port.
    assert_eq!(report.server.pid, Some(std::process::id()));
    assert!(report.server.rss_per_connection_bytes.is_some());

    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(written["established"], 50);
    let _ = std::fs::remove_file(&out);

    // Every connection was closed at the end.
    for _ in 0..100 {
        if shared.conns.count() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(shared.conns.count(), 0);
    assert_eq!(report.closed_cleanly, 50);
    hub.stop().await;
}

/// Two `--url`s reaching the one in-process hub: the connections are
/// spread over both (worker w on URL w mod 2), each node is reported, and
/// the hub's pid, serving both, holds all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_spread_over_two_urls() {
    let hub = TestHub::start().await;
    let shared = hub.shared.clone();
    let mut args = ConnectionsArgs::new(hub.ws_url(), 50);
    args.urls = vec![format!("{},{}?node=2", hub.ws_url(), hub.ws_url())];
    args.channel = "smoke2".into();
    args.hold = 0.2;
    let seen = shared.clone();
    let (report, subscribers) = run_in_process(args, move || seen.hub.subscriber_count("smoke2"))
        .await
        .expect("scenario runs");
    assert_eq!(report.established, 50, "{report:#?}");
    assert_eq!(report.failures, 0, "{report:#?}");
    assert!(report.worker_errors.is_empty(), "{report:#?}");
    assert_eq!(subscribers, Some(50));
    assert_eq!(report.workers, 2);
    assert_eq!(report.urls.len(), 2);
    let s = &report.server;
    let per_node: Vec<(usize, u64, u64, u64)> = s
        .nodes
        .iter()
        .map(|n| {
            (
                n.workers,
                n.target_connections,
                n.established,
                n.open_at_sample,
            )
        })
        .collect();
    assert_eq!(per_node, [(1, 25, 25, 25), (1, 25, 25, 25)]);
    assert_eq!(
        s.nodes.iter().map(|n| n.url.clone()).collect::<Vec<_>>(),
        report.urls
    );
    let me = std::process::id();
    assert_eq!(s.pid, Some(me));
    assert_eq!(s.processes.len(), 1, "{s:#?}");
    assert_eq!(s.processes[0].urls, report.urls);
    assert_eq!(s.processes[0].connections_held, Some(50));
    assert!(s.rss_per_connection_bytes.is_some());
    assert!(s.nodes.iter().all(|n| n.pid == Some(me)));
    hub.stop().await;
}
