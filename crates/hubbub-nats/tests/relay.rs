//! `nats_store = "redis"`: NATS carries events, Redis keeps the rest.
//! Against the real NATS (`HUBBUB_TEST_NATS`) and Redis
//! (`HUBBUB_TEST_REDIS`); without them, each test says so loudly and
//! passes, under `CI=true` it fails.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{draft, eventually, Sink};
use hubbub_server::config::NatsStore;
use hubbub_server::engine::{Engine, HistoryOptions};

const OPTS: HistoryOptions = HistoryOptions {
    size: 1000,
    ttl: Duration::from_secs(60),
};

/// The configuration of a Redis-store engine, or `None` (loudly) when
/// NATS or Redis does not answer outside CI.
async fn config() -> Option<hubbub_server::Config> {
    let url = common::nats().await?;
    let mut c = common::config(&url, &common::prefix());
    c.engine.nats_store = NatsStore::Redis;
    c.engine.redis_url =
        std::env::var("HUBBUB_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    match hubbub_redis::engine(&c).await {
        Ok(_) => Some(c),
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!!!!! SKIPPED: no Redis at {} ({e}) !!!!!!!!\n",
                c.engine.redis_url
            );
            None
        }
        Err(e) => panic!("no Redis under CI: {e}"),
    }
}

async fn node(config: &hubbub_server::Config, id: &str) -> (Engine, Arc<Sink>) {
    let engine = hubbub_nats::engine(config).await.expect("engine");
    let sink = Arc::new(Sink {
        node: id.to_owned(),
        ..Sink::default()
    });
    engine.broker.start(sink.clone(), id);
    (engine, sink)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_engine_conformance_suite() {
    let Some(config) = config().await else { return };
    hubbub_server::engine::conformance::run_all(|| async {
        hubbub_nats::engine(&config).await.expect("engine")
    })
    .await;
}

/// Two nodes publishing on one channel at once: every node delivers
/// offsets 1, 2, 3... with none missing, repeated or out of order,
/// whatever order NATS carried them in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_delivers_in_offset_order_when_two_publish_at_once() {
    let Some(config) = config().await else { return };
    let (a, sa) = node(&config, "a").await;
    let (b, sb) = node(&config, "b").await;
    let ch = "race";
    a.broker.subscribe(ch).await.unwrap();
    b.broker.subscribe(ch).await.unwrap();
    let n = 200u64;
    let through = |e: &Engine, base: u64| {
        let broker = e.broker.clone();
        tokio::spawn(async move {
            for i in 0..n {
                broker
                    .publish(draft(ch, base + i), Some(OPTS))
                    .await
                    .unwrap();
            }
        })
    };
    let (x, y) = (through(&a, 0), through(&b, 1000));
    x.await.unwrap();
    y.await.unwrap();
    for sink in [&sa, &sb] {
        let all = eventually(10, || sink.rec.delivered.lock().len() >= 2 * n as usize).await;
        assert!(all, "{} of {}", sink.rec.delivered.lock().len(), 2 * n);
        let offsets: Vec<u64> = sink
            .rec
            .delivered
            .lock()
            .iter()
            .map(|p| p.event.offset.unwrap())
            .collect();
        assert_eq!(offsets, (1..=2 * n).collect::<Vec<_>>());
    }
    assert_eq!(sa.resyncs.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// An event numbered in Redis whose NATS message never came (here: one
/// published by the Redis engine alone) is read from Redis and delivered
/// before the next one, in its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_is_filled_from_redis_in_order() {
    let Some(config) = config().await else { return };
    let (a, sa) = node(&config, "a").await;
    let ch = "gap";
    a.broker.subscribe(ch).await.unwrap();
    a.broker.publish(draft(ch, 1), Some(OPTS)).await.unwrap();
    let redis_only = hubbub_redis::engine(&config).await.unwrap();
    for i in 2..=4 {
        let out = redis_only
            .broker
            .publish(draft(ch, i), Some(OPTS))
            .await
            .unwrap();
        assert_eq!(out.offset, Some(i));
    }
    a.broker.publish(draft(ch, 5), Some(OPTS)).await.unwrap();
    assert!(eventually(10, || sa.rec.delivered.lock().len() >= 5).await);
    let got: Vec<(u64, String)> = sa
        .rec
        .delivered
        .lock()
        .iter()
        .map(|p| (p.event.offset.unwrap(), p.event.message_id.clone()))
        .collect();
    let want: Vec<(u64, String)> = (1..=5).map(|i| (i, format!("m{i}"))).collect();
    assert_eq!(got, want);
}
