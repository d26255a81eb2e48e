//! Publish throughput with history on and off (docs/performance.md,
//! "History and recovery").
//!
//! `cargo bench -p hubbub-server --bench publish`
//!
//! Builds a hub with no sockets, subscribes 0 or 100 in-process JSON
//! subscribers to one channel of the default namespace and times
//! `Hub::publish` of a 100-byte payload, with history on (`history_size`
//! 100, the default) and off (`channels.history_size = 0`). Only the
//! publishes are timed: the outboxes are emptied between batches, outside
//! the measurement, standing in for the connection tasks.
//!
//! `PUBLISH_AB_ROUNDS=2000 cargo bench -p hubbub-server --bench publish`
//! runs an interleaved comparison instead of criterion: rounds of one batch
//! on each hub, alternating which goes first, reporting medians of
//! ns/publish and of the per-round on/off ratio. On a machine shared with
//! other work, that ratio holds steady where criterion's cases, measured
//! one after another, drift apart.
//!
//! `PUBLISH_CHECK_ROUNDS=2000 cargo bench -p hubbub-server --bench publish`
//! measures what checking `data` at publish (`JsonData::check`, which the
//! HTTP and WebSocket handlers run before `Hub::publish`) adds, the same
//! interleaved way: `Hub::publish` alone against check + `Hub::publish`,
//! for the 100-byte payload and a 4 KiB one of 40 objects.

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion};
use futures_util::FutureExt;
use hubbub_protocol::{Encoding, JsonData};
use hubbub_server::internals::ConnHandle;
use hubbub_server::internals::Shared;
use hubbub_server::{Config, Sources};

/// Publishes timed between two drains of the subscribers' outboxes.
const BATCH: u64 = 256;
const CHANNEL: &str = "bench";

/// A JSON value of exactly 100 bytes.
fn payload() -> JsonData {
    let text = format!(r#"{{"text":"{}"}}"#, "x".repeat(89));
    assert_eq!(text.len(), 100);
    JsonData::from_json(&text).expect("valid JSON")
}

fn hub(history: bool, subscribers: usize) -> (Arc<Shared>, Vec<Arc<ConnHandle>>) {
    let size = if history { "100" } else { "0" };
    let config = Config::load(&Sources {
        overrides: vec![
            ("channels.history_size".into(), size.into()),
            // Room for a whole batch in every outbox.
            (
                "connection.outbound_queue_messages".into(),
                "1000000".into(),
            ),
            (
                "connection.outbound_queue_bytes".into(),
                "1000000000".into(),
            ),
        ],
        ..Sources::default()
    })
    .expect("bench config");
    let shared = Shared::new(config);
    let addr: SocketAddr = ([127, 0, 0, 1], 1).into();
    let handles: Vec<Arc<ConnHandle>> = (0..subscribers)
        .map(|_| {
            let h = Arc::new(ConnHandle::new(
                shared.conns.next_seq(),
                None,
                Encoding::Json,
                addr,
                0,
            ));
            shared.hub.subscribe(CHANNEL, &h, None, false);
            h
        })
        .collect();
    (shared, handles)
}

/// A JSON value of about 4 KiB: 40 small objects, as a batch of records.
fn records() -> JsonData {
    let items: Vec<String> = (0..40)
        .map(|n| {
            format!(
                r#"{{"id":{n},"name":"item-{n}","tags":["red","blue"],"price":12.5,"stock":{},"ok":true,"note":"\u00e9t\u00e9"}}"#,
                n * 7
            )
        })
        .collect();
    JsonData::from_json(&format!("[{}]", items.join(","))).expect("valid JSON")
}

/// Times `n` publishes (each after `JsonData::check` when `check`), then
/// empties the outboxes (untimed).
fn batch_with(
    shared: &Shared,
    handles: &[Arc<ConnHandle>],
    data: &JsonData,
    n: u64,
    check: bool,
) -> Duration {
    let batch: Vec<JsonData> = (0..n).map(|_| data.clone()).collect();
    let start = Instant::now();
    for d in batch {
        if check {
            black_box(d.check()).expect("the payload passes");
        }
        black_box(
            shared
                .publish(CHANNEL, "message", d, None)
                .now_or_never()
                .expect("the memory engine never waits")
                .expect("publish"),
        );
    }
    let timed = start.elapsed();
    for h in handles {
        h.drain_for_bench();
    }
    timed
}

/// Times `n` publishes, then empties the outboxes (untimed).
fn batch(shared: &Shared, handles: &[Arc<ConnHandle>], data: &JsonData, n: u64) -> Duration {
    batch_with(shared, handles, data, n, false)
}

/// The check's cost (`PUBLISH_CHECK_ROUNDS`): rounds of one batch without
/// and one with the check, alternating which goes first, on one hub
/// (history on, no subscribers: the cheapest publish, so the largest share).
fn check_cost(rounds: usize) {
    let (shared, handles) = hub(true, 0);
    for (name, data) in [("100 B", payload()), ("4 KiB", records())] {
        let per = |d: Duration| d.as_nanos() as f64 / BATCH as f64;
        let run = |check| per(batch_with(&shared, &handles, &data, BATCH, check));
        for _ in 0..200 {
            run(false);
            run(true);
        }
        let (mut plain, mut checked, mut extra) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let (a, b) = if round & 1 == 0 {
                let a = run(false);
                (a, run(true))
            } else {
                let b = run(true);
                (run(false), b)
            };
            plain.push(a);
            checked.push(b);
            extra.push(b - a);
        }
        // For scale: what reading the payload costs serde_json (which every
        // request and command pays) and one MessagePack event of it.
        let text = data.get();
        let start = Instant::now();
        for _ in 0..BATCH {
            black_box(serde_json::from_str::<serde::de::IgnoredAny>(black_box(text)).ok());
        }
        let parse = per(start.elapsed());
        let event = hubbub_protocol::EventMessage {
            channel: CHANNEL.into(),
            event_type: "message".into(),
            data: data.clone(),
            message_id: "m".into(),
            offset: None,
            epoch: None,
            publisher: None,
        };
        let start = Instant::now();
        for _ in 0..BATCH {
            let mut out = Vec::new();
            let e = hubbub_protocol::encode_server(&event, None, 0, Encoding::Msgpack, &mut out);
            black_box((e.is_ok(), out));
        }
        let msgpack = per(start.elapsed());
        println!(
            "{name} payload ({} bytes), rounds={rounds} batch={BATCH}: publish {:.0} ns, check + publish {:.0} ns, check adds {:.0} ns (serde_json reading it {parse:.0} ns, a MessagePack event of it {msgpack:.0} ns)",
            text.len(),
            median(&mut plain),
            median(&mut checked),
            median(&mut extra),
        );
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The interleaved comparison (`PUBLISH_AB_ROUNDS`).
fn interleaved(rounds: usize) {
    let data = payload();
    for subscribers in [0usize, 100] {
        let off = hub(false, subscribers);
        let on = hub(true, subscribers);
        // Warm up both (allocator, history rings full).
        for _ in 0..200 {
            batch(&off.0, &off.1, &data, BATCH);
            batch(&on.0, &on.1, &data, BATCH);
        }
        let per = |d: Duration| d.as_nanos() as f64 / BATCH as f64;
        let (mut offs, mut ons, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            let (a, b) = if round & 1 == 0 {
                let a = per(batch(&off.0, &off.1, &data, BATCH));
                (a, per(batch(&on.0, &on.1, &data, BATCH)))
            } else {
                let b = per(batch(&on.0, &on.1, &data, BATCH));
                (per(batch(&off.0, &off.1, &data, BATCH)), b)
            };
            offs.push(a);
            ons.push(b);
            ratios.push(b / a);
        }
        let mut sorted = ratios.clone();
        sorted.sort_by(f64::total_cmp);
        println!(
            "subscribers={subscribers} rounds={rounds} batch={BATCH}: history_off {:.0} ns/publish, history_on {:.0} ns/publish, on/off {:.3} (rounds' quartiles {:.3}..{:.3})",
            median(&mut offs),
            median(&mut ons),
            median(&mut ratios),
            sorted[sorted.len() / 4],
            sorted[sorted.len() * 3 / 4],
        );
    }
}

fn publish(c: &mut Criterion) {
    let data = payload();
    let mut group = c.benchmark_group("publish");
    for subscribers in [0usize, 100] {
        for history in [false, true] {
            let (shared, handles) = hub(history, subscribers);
            let label = if history { "history_on" } else { "history_off" };
            group.bench_function(BenchmarkId::new(label, subscribers), |b| {
                b.iter_custom(|iters| {
                    let mut timed = Duration::ZERO;
                    let mut left = iters;
                    while left > 0 {
                        let n = left.min(BATCH);
                        timed += batch(&shared, &handles, &data, n);
                        left -= n;
                    }
                    timed
                })
            });
        }
    }
    group.finish();
}

// `criterion_group!` defines an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group!(benches, super::publish);
}
fn main() {
    if let Some(rounds) = std::env::var("PUBLISH_CHECK_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
    {
        check_cost(rounds);
        return;
    }
    if let Some(rounds) = std::env::var("PUBLISH_AB_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
    {
        interleaved(rounds);
        return;
    }
    // What `criterion_main!` expands to.
    group::benches();
    Criterion::default().configure_from_args().final_summary();
}
