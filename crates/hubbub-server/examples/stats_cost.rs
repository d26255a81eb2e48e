//! What one `GET /api/stats` and one `GET /metrics` cost with many idle
//! connections, and what one load sample costs (docs/streams.md, "Load").
//!
//! `cargo run --release -p hubbub-server --example stats_cost -- [CONNECTIONS] [CALLS] [FDS]`
//!
//! Registers CONNECTIONS (default 10,000) idle connection handles (what a
//! connected, silent client leaves in the registry; no sockets, so the
//! descriptor limit does not matter), then calls each route CALLS times
//! (default 200) through the router in-process, one after the other, and
//! prints the median and 90th percentile of the handler's time. The
//! network is left out: it costs the same whatever the hub does. FDS
//! (default 0) descriptors on `/dev/null` are held open meanwhile, so the
//! load sample's listing of `/proc/self/fd` is as long as a real hub's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use hubbub_protocol::Encoding;
use hubbub_server::internals::{app, ConnHandle, Shared};
use hubbub_server::{now_ms, Config, Sources};
use tower::ServiceExt;

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers: CONNECTIONS CALLS"))
        .collect();
    let conns = args.first().copied().unwrap_or(10_000);
    let calls = args.get(1).copied().unwrap_or(200).max(1);
    let fds: Vec<std::fs::File> = (0..args.get(2).copied().unwrap_or(0))
        .map(|_| std::fs::File::open("/dev/null").expect("a descriptor (raise ulimit -n)"))
        .collect();
    let config = Config::load(&Sources {
        overrides: vec![("api.key".into(), "k".into())],
        ..Sources::default()
    })
    .expect("config");
    let shared = Shared::new(config);
    let peer = ([127, 0, 0, 1], 40_000).into();
    for _ in 0..conns {
        assert!(shared.conns.try_reserve(usize::MAX));
        let seq = shared.conns.next_seq();
        let h = ConnHandle::new(seq, None, Encoding::Json, peer, now_ms());
        shared.conns.insert(Arc::new(h));
    }
    let router = app(shared.clone());
    println!(
        "{conns} idle connections, {} descriptors held, {calls} calls each",
        fds.len()
    );
    for path in ["/api/stats", "/metrics"] {
        let mut times = Vec::with_capacity(calls);
        for i in 0..calls + 10 {
            let req = http::Request::get(path)
                .header("authorization", "Bearer k")
                .body(Body::empty())
                .unwrap();
            let t = Instant::now();
            let resp = router.clone().oneshot(req).await.unwrap();
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            let took = t.elapsed();
            assert!(!body.is_empty());
            if i >= 10 {
                times.push(took);
            }
        }
        times.sort();
        println!(
            "GET {path:<11} median {:>9.1} us  p90 {:>9.1} us",
            percentile(&times, 0.5).as_secs_f64() * 1e6,
            percentile(&times, 0.9).as_secs_f64() * 1e6
        );
    }
    sample(&shared, calls);
}

/// One load pass (the connection walk plus `/proc/self`), timed the same way.
fn sample(shared: &Shared, calls: usize) {
    let mut times: Vec<Duration> = (0..calls)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(hubbub_server::internals::sample_load(shared));
            t.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "load sample      median {:>9.1} us  p90 {:>9.1} us  (once per server.load_interval_ms)",
        percentile(&times, 0.5).as_secs_f64() * 1e6,
        percentile(&times, 0.9).as_secs_f64() * 1e6
    );
}
