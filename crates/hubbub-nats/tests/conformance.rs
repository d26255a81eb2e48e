//! The engine suite every engine passes, against a real NATS.

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_the_engine_conformance_suite() {
    let Some(url) = common::nats().await else {
        return;
    };
    let prefix = common::prefix();
    let config = common::config(&url, &prefix);
    // A fresh engine per check, as the suite asks.
    hubbub_server::engine::conformance::run_all(|| async {
        hubbub_nats::engine(&config).await.expect("engine")
    })
    .await;
    common::clean(&url, &prefix).await;
}
