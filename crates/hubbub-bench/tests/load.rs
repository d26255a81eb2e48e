//! Smoke tests of the publish scenarios against a real hub in this process:
//! every subscriber is established, every accepted publication reaches every
//! subscriber of its channel, nothing fails. No timing assertions.

use hubbub_bench::load::{run_in_process, Kind, LoadArgs, LoadReport};
mod common;

use common::TestHub;

async fn with_hub(kind: Kind, tune: impl FnOnce(&mut LoadArgs)) -> LoadReport {
    let hub = TestHub::start().await;
    let mut args = LoadArgs::new(hub.ws_url());
    args.warmup = 0.2;
    args.duration = 0.5;
    args.drain = 5.0;
    tune(&mut args);
    let report = run_in_process(kind, args).await.expect("scenario runs");
    hub.stop().await;
    report
}

fn assert_clean(r: &LoadReport) {
    assert!(r.worker_errors.is_empty(), "{r:#?}");
    assert_eq!(r.subscribed, r.subscribers, "{r:#?}");
    assert_eq!(r.dropped, 0, "{r:#?}");
    assert!(!r.windows.is_empty());
    for w in &r.windows {
        assert!(w.publishes_accepted > 0, "{r:#?}");
        assert_eq!(w.publishes_accepted, w.publishes_sent, "{r:#?}");
        assert!(w.publish_failures.is_empty(), "{r:#?}");
        assert_eq!(w.received_deliveries, w.expected_deliveries, "{r:#?}");
        assert_eq!(w.missing, 0);
        assert_eq!(w.latency.count, w.received_deliveries);
    }
    assert!(r.clean(), "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_delivers_everything() {
    let r = with_hub(Kind::Fanout, |a| {
        a.subscribers = Some(20);
        a.rate = Some(40.0);
        a.repetitions = 2;
        a.workers = Some(2);
    })
    .await;
    assert_clean(&r);
    assert_eq!(r.windows.len(), 2);
    assert_eq!(
        r.windows[0].expected_deliveries,
        r.windows[0].publishes_accepted * 20
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_deliver_to_their_own_subscribers() {
    let r = with_hub(Kind::Channels, |a| {
        a.subscribers = Some(30);
        a.channels = Some(10);
        a.rate = Some(100.0);
    })
    .await;
    assert_clean(&r);
    let w = &r.windows[0];
    assert_eq!(w.expected_deliveries, w.publishes_accepted * 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_runs_baseline_and_churn_windows() {
    let r = with_hub(Kind::Churn, |a| {
        a.subscribers = Some(10);
        a.rate = Some(40.0);
        a.churn_rate = Some(20.0);
    })
    .await;
    assert_clean(&r);
    assert_eq!(r.windows.len(), 2);
    assert!(!r.windows[0].churn && r.windows[1].churn);
    assert!(r.windows[1].churn_cycles > 0, "{r:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_publish_counts_requests() {
    let r = with_hub(Kind::HttpPublish, |a| {
        a.publishers = Some(4);
    })
    .await;
    assert_eq!(r.subscribers, 0);
    assert_clean(&r);
    assert!(r.windows[0].publish_request.count > 0);
}

/// Two `--url`s (here two ways to reach the one in-process hub, so every
/// publication reaches every subscriber), and `--server-pid` twice: the
/// hub and another process (pid 1, standing in for Redis). Subscribers and
/// publishers are spread over both URLs, each pid's CPU is reported, and
/// the total is their sum.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_over_two_urls_sums_every_pid() {
    let me = std::process::id();
    let r = with_hub(Kind::Fanout, |a| {
        let second = format!("{}?node=2", a.urls[0]);
        a.urls.push(second);
        a.subscribers = Some(20);
        a.rate = Some(40.0);
        a.server_pids = vec![me, 1];
    })
    .await;
    assert_clean(&r);
    assert_eq!(r.urls.len(), 2);
    assert!(r.urls[1].ends_with("/ws?node=2"));
    assert_eq!(r.url, r.urls.join(","));
    // One worker asked for (in-process default), one per URL used.
    assert_eq!(r.workers, 2);
    let spread: Vec<(usize, u64, usize)> = r
        .nodes
        .iter()
        .map(|n| (n.workers, n.subscribers, n.publishers))
        .collect();
    assert_eq!(spread, [(1, 10, 2), (1, 10, 2)]);
    assert_eq!(r.server_pid, Some(me));
    assert_eq!(
        r.server_processes.iter().map(|p| p.pid).collect::<Vec<_>>(),
        [me, 1]
    );
    assert_eq!(r.server_processes[0].urls, r.urls);
    assert!(r.server_processes[1].urls.is_empty());
    for w in &r.windows {
        assert_eq!(w.server_cpu_by_pid.len(), 2, "{w:#?}");
        let parts: Option<f64> = w.server_cpu_by_pid.iter().map(|c| c.cpu_seconds).sum();
        let total = w.server_cpu_seconds.expect("every pid read");
        assert!((parts.unwrap() - total).abs() < 0.0025, "{w:#?}");
        assert!(w.server_cpu_us_per_delivery.is_some());
    }
}
