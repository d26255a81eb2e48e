//! Smoke test of the `sweep` scenario against a real hub in this process:
//! one set of subscribers kept across two small rates, every accepted
//! publication delivered to every subscriber at each rate, the report and
//! its JSON complete. No timing assertions (the verdicts depend on the
//! machine), so the sweep is told to keep going.

use hubbub_bench::load::{run_sweep_in_process, SweepArgs};
mod common;

use common::TestHub;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_keeps_its_subscribers_across_rates() {
    let hub = TestHub::start().await;

    // Given in falling order: the sweep tries them rising.
    let mut args = SweepArgs::new(hub.ws_url(), vec![60.0, 30.0]);
    args.keep_going = true;
    args.load.subscribers = Some(20);
    args.load.workers = Some(2);
    args.load.channel = "sweep".into();
    args.load.warmup = 0.2;
    args.load.duration = 0.4;
    args.load.repetitions = 2;
    let out = std::env::temp_dir().join(format!("hubbub-bench-sweep-{}.json", std::process::id()));
    args.load.out = Some(out.clone());
    let r = run_sweep_in_process(args).await.expect("sweep runs");

    assert!(r.clean(), "{r:#?}");
    assert_eq!(r.subscribed, 20, "{r:#?}");
    assert_eq!(r.dropped, 0, "{r:#?}");
    assert!(r.worker_errors.is_empty(), "{r:#?}");
    assert_eq!(r.rates_asked, vec![30.0, 60.0]);
    assert_eq!(r.rates.len(), 2, "{r:#?}");
    for (rate, x) in [30.0, 60.0].into_iter().zip(&r.rates) {
        assert_eq!(x.rate, rate);
        assert!(x.complete, "{x:#?}");
        assert_eq!(x.windows.len(), 2, "{x:#?}");
        assert_eq!(x.publish_failures, 0, "{x:#?}");
        assert_eq!(x.dropped_so_far, 0, "{x:#?}");
        for w in &x.windows {
            assert!(w.publishes_accepted > 0, "{x:#?}");
            assert_eq!(w.publishes_accepted, w.publishes_sent, "{x:#?}");
            assert_eq!(w.expected_deliveries, w.publishes_accepted * 20, "{x:#?}");
            assert_eq!(w.received_deliveries, w.expected_deliveries, "{x:#?}");
            assert_eq!(w.latency.count, w.received_deliveries, "{x:#?}");
        }
        assert_eq!(x.missing, 0, "{x:#?}");
        assert_eq!(x.target_deliveries_per_second, rate * 20.0);
    }
    // The closing line names the highest rate kept up, or none.
    let line = r.summary_line();
    assert!(line.starts_with("highest rate kept up: "), "{line}");
    if let Some(k) = &r.highest_kept_up {
        assert!(line.contains(&format!("{} publishes/s", k.rate)), "{line}");
    }

    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(written["scenario"], "sweep");
    assert_eq!(written["rates"].as_array().unwrap().len(), 2);
    assert_eq!(written["rates"][1]["windows"].as_array().unwrap().len(), 2);
    let _ = std::fs::remove_file(&out);

    hub.stop().await;
}
