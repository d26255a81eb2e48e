//! What the tests against a real NATS share: finding the server (or
//! skipping loudly), a configuration under a prefix of their own, and
//! engines started with a recording sink.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use hubbub_server::config::EngineKind;
use hubbub_server::engine::conformance::RecordingSink;
use hubbub_server::engine::{Engine, EventSink, NodeReport, Publication};

/// The NATS the tests use (`HUBBUB_TEST_NATS`), if it answers. Without
/// one, says so loudly and the test passes; with `CI=true`, it fails.
pub async fn nats() -> Option<String> {
    let url = std::env::var("HUBBUB_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let addr = url
        .trim_start_matches("nats://")
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    let up = matches!(
        tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(&addr)
        )
        .await,
        Ok(Ok(_))
    );
    if up {
        return Some(url);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("no NATS at {url} (CI=true: the NATS tests must run)");
    }
    // Straight to the process's stderr: the test harness captures
    // `eprintln!` of passing tests, and this must be seen.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!!!!! SKIPPED: no NATS at {url} (set HUBBUB_TEST_NATS) !!!!!!!!\n"
    );
    None
}

/// A configuration for the NATS engine under `prefix`, with short timers.
pub fn config(url: &str, prefix: &str) -> hubbub_server::Config {
    let mut c = hubbub_server::Config::default();
    c.engine.kind = EngineKind::Nats;
    c.engine.nats_url = url.to_owned();
    c.engine.prefix = prefix.to_owned();
    c.engine.presence_ttl_s = 3;
    c.engine.heartbeat_ms = 200;
    c.engine.timeout_ms = 3_000;
    c.users.queue_size = 10;
    c.users.queue_ttl_s = 60;
    c
}

/// A prefix no other run uses.
pub fn prefix() -> String {
    format!("t{:012x}", rand::random::<u64>() & 0xffff_ffff_ffff)
}

/// A recording sink that also counts resyncs and reports a node id.
#[derive(Default)]
pub struct Sink {
    pub rec: RecordingSink,
    pub resyncs: AtomicUsize,
    pub node: String,
}

impl EventSink for Sink {
    fn deliver(&self, p: &Arc<Publication>) -> usize {
        self.rec.deliver(p)
    }
    fn deliver_to_user(&self, user: &str, p: &Arc<Publication>) -> Option<usize> {
        self.rec.deliver_to_user(user, p)
    }
    fn resync(&self) {
        self.resyncs.fetch_add(1, SeqCst);
    }
    fn report(&self) -> NodeReport {
        NodeReport {
            node_id: self.node.clone(),
            ..NodeReport::default()
        }
    }
}

/// An engine on `config`, started as node `node` with a fresh sink.
pub async fn started(
    config: &hubbub_server::Config,
    node: &str,
) -> (hubbub_nats::NatsEngine, Engine, Arc<Sink>) {
    let handle = hubbub_nats::connect(config).await.expect("engine");
    let engine = handle.engine();
    let sink = Arc::new(Sink {
        node: node.to_owned(),
        ..Sink::default()
    });
    engine.broker.start(sink.clone(), node);
    (handle, engine, sink)
}

/// A stamped event `n` on `channel`, as the conformance suite makes them.
#[allow(unused_imports)] // each test file uses a part
pub use hubbub_server::engine::conformance::draft;

/// Polls `f` every 10 ms until it holds or `secs` pass.
pub async fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if f() {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A plain JetStream client on `url`, for what the tests do behind the
/// engine's back (deleting a stream, cleaning up).
pub async fn jetstream(url: &str) -> async_nats::jetstream::Context {
    let client = async_nats::connect(url).await.expect("connect");
    async_nats::jetstream::new(client)
}

/// Deletes every stream a test made under `prefix` (its buckets included).
pub async fn clean(url: &str, prefix: &str) {
    use futures_util::StreamExt;
    let js = jetstream(url).await;
    let names: Vec<String> = js
        .stream_names()
        .filter_map(|n| async move { n.ok() })
        .collect()
        .await;
    for name in names {
        if name.starts_with(&format!("{prefix}_")) || name.starts_with(&format!("KV_{prefix}_")) {
            let _ = js.delete_stream(&name).await;
        }
    }
}

/// An engine started by [`started`]: its connection handle, the engine and
/// its sink.
pub type Started = (hubbub_nats::NatsEngine, Engine, Arc<Sink>);

/// Two nodes on one prefix, the setup most tests share.
pub struct Pair {
    pub url: String,
    pub prefix: String,
    pub config: hubbub_server::Config,
    /// Node `node-a`.
    pub a: Started,
    /// Node `node-b`.
    pub b: Started,
}

/// NATS found (else `None`, said loudly; a failure under CI), a prefix of
/// the test's own, and nodes `node-a` and `node-b` started on it.
pub async fn two_nodes() -> Option<Pair> {
    let url = nats().await?;
    let prefix = prefix();
    let config = config(&url, &prefix);
    let a = started(&config, "node-a").await;
    let b = started(&config, "node-b").await;
    Some(Pair {
        url,
        prefix,
        config,
        a,
        b,
    })
}
