//! What the engine refuses to build with, without needing a NATS.

mod common;

#[tokio::test]
async fn no_engine_without_a_server_or_with_what_it_does_not_do() {
    let mut config = common::config("nats://127.0.0.1:1", "refusals");
    config.engine.timeout_ms = 500;
    let e = hubbub_nats::engine(&config).await.err().expect("no server");
    assert!(e.0.contains("127.0.0.1:1"), "{e}");
    let mut config = common::config("nats://127.0.0.1:1", "bad.prefix");
    assert!(hubbub_nats::engine(&config).await.is_err());
    config.engine.prefix = "ok".into();
    config.engine.nats_store = hubbub_server::config::NatsStore::Redis;
    config.engine.redis_url = "redis://127.0.0.1:1".into();
    let e = hubbub_nats::engine(&config).await.err().expect("no redis");
    assert!(e.0.contains("127.0.0.1:1"), "{e}");
    let e = hubbub_nats::connect(&config)
        .await
        .err()
        .expect("no handle");
    assert!(e.0.contains("nats_store"), "{e}");
}
