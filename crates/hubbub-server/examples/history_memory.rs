//! History memory per stored event, measured against the estimate the
//! memory budget works with (docs/performance.md, "History and recovery").
//!
//! `cargo run --release -p hubbub-server --example history_memory -- [subscribed|unsubscribed] [EVENTS] [CHANNELS] [PAYLOAD_BYTES]`
//!
//! Publishes EVENTS (default 200,000) events of a PAYLOAD_BYTES (default 100,
//! at least 13) JSON payload round-robin
//! over CHANNELS (default 1,000) channels that keep 1,000 events each, under
//! a budget large enough that nothing is trimmed, and compares the growth of
//! the process's resident memory (VmRSS) with `HistoryStore::stats().bytes`.
//!
//! `subscribed` (the default) puts one JSON subscriber on every channel, so
//! each event's JSON frame is built on the publish path and stays with the
//! stored event, as it does on a hub with clients; `unsubscribed` publishes
//! to channels nobody is on, so no frame is ever built. Linux only (reads
//! /proc/self/status).

use std::net::SocketAddr;
use std::sync::Arc;

use futures_util::FutureExt;
use hubbub_protocol::{Encoding, JsonData};
use hubbub_server::internals::ConnHandle;
use hubbub_server::internals::Shared;
use hubbub_server::{Config, Sources};

fn vm_rss_bytes() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kb: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmRSS in kB");
    kb * 1024
}

fn main() {
    let mut args = std::env::args().skip(1);
    let subscribed = match args.next().as_deref() {
        None | Some("subscribed") => true,
        Some("unsubscribed") => false,
        Some(other) => panic!("expected subscribed or unsubscribed, got {other:?}"),
    };
    let events: usize = args.next().map_or(200_000, |a| a.parse().expect("EVENTS"));
    let channels: usize = args.next().map_or(1_000, |a| a.parse().expect("CHANNELS"));
    let payload: usize = args
        .next()
        .map_or(100, |a| a.parse().expect("PAYLOAD_BYTES"));
    assert!(payload >= 13, "PAYLOAD_BYTES must be at least 13");

    let config = Config::load(&Sources {
        overrides: vec![
            ("channels.history_size".into(), "1000".into()),
            ("channels.history_ttl_s".into(), "3600".into()),
            (
                "history.memory_budget_bytes".into(),
                (16usize << 30).to_string(),
            ),
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
    .expect("config");
    let shared = Shared::new(config);
    let names: Vec<String> = (0..channels).map(|i| format!("room{i:05}")).collect();
    let addr: SocketAddr = ([127, 0, 0, 1], 1).into();
    let handles: Vec<Arc<ConnHandle>> = if subscribed {
        names
            .iter()
            .map(|ch| {
                let h = Arc::new(ConnHandle::new(
                    shared.conns.next_seq(),
                    None,
                    Encoding::Json,
                    addr,
                    0,
                ));
                shared.hub.subscribe(ch, &h, None, false);
                h
            })
            .collect()
    } else {
        Vec::new()
    };
    let text = format!(r#"{{"text":"{}"}}"#, "x".repeat(payload - 11));
    assert_eq!(text.len(), payload);
    let data = JsonData::from_json(&text).expect("valid JSON");

    let before = vm_rss_bytes();
    // Rounds of one event per channel; between rounds, stand in for the
    // connection tasks: the frames leave the outboxes, the stored events
    // keep theirs.
    let mut left = events;
    while left > 0 {
        let n = left.min(channels);
        for ch in &names[..n] {
            shared
                .publish(ch, "message", data.clone(), None)
                .now_or_never()
                .expect("the memory engine never waits")
                .expect("publish");
        }
        for h in &handles {
            h.drain_for_bench();
        }
        left -= n;
    }
    let after = vm_rss_bytes();

    let stats = shared.engine.history.stats();
    assert_eq!(stats.events, events, "nothing trimmed or expired");
    assert_eq!(stats.trimmed_for_budget, 0);
    let measured = (after.saturating_sub(before)) as f64 / events as f64;
    let estimated = stats.bytes as f64 / events as f64;
    println!(
        "mode={} events={events} channels={channels} payload={payload}B",
        if subscribed {
            "subscribed"
        } else {
            "unsubscribed"
        }
    );
    println!("rss_before={before} rss_after={after}");
    println!("measured_bytes_per_event={measured:.1}");
    println!("estimated_bytes_per_event={estimated:.1}");
    println!(
        "estimate/measured={:.3}",
        if measured > 0.0 {
            estimated / measured
        } else {
            f64::NAN
        }
    );
}
