//! Smoke test of the `raw-server` baseline, in this process on port 0:
//! a small fan-out against it delivers every publication to every
//! subscriber, and the server's own counters agree. No timing assertions.

use hubbub_bench::load::{run_in_process, Kind, LoadArgs};
use hubbub_bench::raw::{RawArgs, RawServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_against_raw_server_delivers_everything() {
    let server = RawServer::bind(RawArgs {
        listen: "127.0.0.1:0".parse().unwrap(),
        rate: 0.0,
        payload: 100,
        writev_batch: 1,
        threads: 1,
    })
    .await
    .expect("bind");
    let addr = server.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let raw = tokio::spawn(server.run_until(async {
        let _ = stop_rx.await;
    }));

    let mut args = LoadArgs::new(format!("ws://{addr}/ws"));
    args.subscribers = Some(20);
    args.rate = Some(20.0);
    args.warmup = 0.0; // so the server's publication count is the windows'
    args.duration = 0.5;
    args.drain = 5.0;
    let r = run_in_process(Kind::Fanout, args)
        .await
        .expect("fanout runs");
    let _ = stop_tx.send(());
    let counts = raw.await.unwrap();

    assert!(r.worker_errors.is_empty(), "{r:#?}");
    assert_eq!(r.subscribed, 20, "{r:#?}");
    assert!(r.subscribe_failures.is_empty(), "{r:#?}");
    assert_eq!(r.dropped, 0, "{r:#?}");
    let w = &r.windows[0];
    assert!(w.publishes_accepted > 0, "{r:#?}");
    assert_eq!(w.publishes_accepted, w.publishes_sent, "{r:#?}");
    assert!(w.publish_failures.is_empty(), "{r:#?}");
    assert_eq!(w.expected_deliveries, w.publishes_accepted * 20, "{r:#?}");
    assert_eq!(w.received_deliveries, w.expected_deliveries, "{r:#?}");
    assert_eq!(w.latency.count, w.received_deliveries);
    assert!(r.clean(), "{r:#?}");

    // The server saw the same: every publication, one whole frame per
    // subscriber each, nothing dropped.
    assert_eq!(counts.publications, w.publishes_accepted, "{counts:?}");
    assert_eq!(counts.frames, w.publishes_accepted * 20, "{counts:?}");
    assert_eq!(counts.would_block, 0, "{counts:?}");
    assert_eq!(counts.dead, 0, "{counts:?}");
}
