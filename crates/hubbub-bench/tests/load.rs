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
