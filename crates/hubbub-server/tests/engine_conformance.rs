//! The engine conformance suite against the in-memory engine (networked
//! engines run the same suite in their own crates).

use hubbub_server::engine::{conformance, Engine};
use hubbub_server::Config;

#[tokio::test]
async fn the_memory_engine_conforms() {
    let config = Config::default();
    conformance::run_all(|| async { Engine::memory(&config) }).await;
}
