//! Two engines (two nodes, one prefix) on a real NATS: what one node does,
//! the other sees.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::{draft, eventually, started};
use hubbub_server::engine::{HistoryOptions, PresenceEntry};

const OPTS: HistoryOptions = HistoryOptions {
    size: 100,
    ttl: Duration::from_secs(60),
};

fn offsets(sink: &common::Sink) -> Vec<u64> {
    sink.rec
        .delivered
        .lock()
        .iter()
        .filter_map(|p| p.event.offset)
        .collect()
}

fn ids(sink: &common::Sink) -> Vec<String> {
    sink.rec
        .delivered
        .lock()
        .iter()
        .map(|p| p.event.message_id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publications_reach_every_node_in_one_offset_order() {
    let Some(common::Pair {
        url,
        prefix,
        a: (_ha, a, sa),
        b: (_hb, b, sb),
        ..
    }) = common::two_nodes().await
    else {
        return;
    };
    // Characters no NATS name may hold.
    let ch = "room:two.nodes @*>";
    for e in [&a, &b] {
        e.broker.subscribe(ch).await.expect("subscribe");
        e.history.open(ch, OPTS).await.expect("open");
    }
    // Both nodes publish at once: one numbering, one order everywhere.
    let from_a = async {
        for n in 1..=20 {
            a.broker
                .publish(draft(ch, n), Some(OPTS))
                .await
                .expect("publish");
        }
    };
    let from_b = async {
        for n in 101..=120 {
            b.broker
                .publish(draft(ch, n), Some(OPTS))
                .await
                .expect("publish");
        }
    };
    tokio::join!(from_a, from_b);
    assert!(eventually(5, || offsets(&sa).len() == 40 && offsets(&sb).len() == 40).await);
    assert_eq!(
        offsets(&sa),
        (1..=40).collect::<Vec<_>>(),
        "in offset order on A"
    );
    assert_eq!(
        offsets(&sb),
        (1..=40).collect::<Vec<_>>(),
        "in offset order on B"
    );
    assert_eq!(ids(&sa), ids(&sb), "the same order on both nodes");
    let epochs: HashSet<_> = sb
        .rec
        .delivered
        .lock()
        .iter()
        .map(|p| p.event.epoch.clone())
        .collect();
    assert_eq!(epochs.len(), 1);
    // History read on B holds what A and B published.
    let read = b.history.read(ch, None, 1000).await.expect("read");
    assert_eq!(read.top.offset, 40);
    assert_eq!(read.events.len(), 40);
    assert!(b.history.holds(ch).await.expect("holds"));
    let listed = a.history.channels().await.expect("channels");
    assert!(
        listed.iter().any(|(c, p)| &**c == ch && p.offset == 40),
        "{listed:?}"
    );
    // Without history: across nodes too, with no number.
    sb.rec.delivered.lock().clear();
    a.broker
        .publish(draft(ch, 500), None)
        .await
        .expect("publish");
    assert!(eventually(5, || sb.rec.delivered.lock().len() == 1).await);
    assert_eq!(sb.rec.delivered.lock()[0].event.offset, None);
    // Unsubscribed: nothing more arrives.
    b.broker.unsubscribe(ch);
    sb.rec.delivered.lock().clear();
    a.broker
        .publish(draft(ch, 501), Some(OPTS))
        .await
        .expect("publish");
    a.broker
        .publish(draft(ch, 502), None)
        .await
        .expect("publish");
    assert!(eventually(5, || offsets(&sa).contains(&41)).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(sb.rec.delivered.lock().is_empty(), "unsubscribed");
    common::clean(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_subscriber_reads_then_follows_without_gap_or_duplicate() {
    const OPTS: HistoryOptions = HistoryOptions {
        size: 100_000,
        ttl: Duration::from_secs(60),
    };
    let Some(common::Pair {
        url,
        prefix,
        a: (_ha, a, _sa),
        b: (_hb, b, sb),
        ..
    }) = common::two_nodes().await
    else {
        return;
    };
    let ch = "late";
    a.history.open(ch, OPTS).await.expect("open");
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let publisher = {
        let (a, stop) = (a.clone(), stop.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                n += 1;
                a.broker
                    .publish(draft(ch, n), Some(OPTS))
                    .await
                    .expect("publish");
            }
            n
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    // What the hub does for a recovering subscriber.
    b.broker.subscribe(ch).await.expect("subscribe");
    b.history.open(ch, OPTS).await.expect("open");
    let read = b.history.read(ch, Some(0), usize::MAX).await.expect("read");
    let top = read.top.offset;
    // Every event up to the top was delivered before the read answered
    // (the hub drops those as already recovered).
    let live = offsets(&sb);
    if let (Some(first), Some(last)) = (live.first(), live.last()) {
        assert!(
            *last >= top,
            "delivered through {top} before the read answered: {live:?}"
        );
        assert!(
            *first <= top + 1,
            "no gap between the read and the live events"
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let last = publisher.await.expect("publisher");
    assert!(eventually(5, || offsets(&sb).last() == Some(&last)).await);
    let live = offsets(&sb);
    let first = live[0];
    assert_eq!(
        live,
        (first..=last).collect::<Vec<_>>(),
        "no gap, no duplicate"
    );
    let read_offsets: Vec<u64> = read.events.iter().filter_map(|p| p.event.offset).collect();
    assert_eq!(read_offsets, (1..=top).collect::<Vec<_>>());
    common::clean(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_made_elsewhere_after_subscribing_is_followed_from_its_start() {
    let Some(common::Pair {
        url,
        prefix,
        a: (_ha, a, _sa),
        b: (_hb, b, sb),
        ..
    }) = common::two_nodes().await
    else {
        return;
    };
    // Subscribed with no history open (as for `user:<id>`): no stream yet.
    let ch = "user:ann";
    b.broker.subscribe(ch).await.expect("subscribe");
    for n in 1..=3 {
        a.broker
            .publish(draft(ch, n), Some(OPTS))
            .await
            .expect("publish");
    }
    assert!(
        eventually(5, || offsets(&sb) == [1, 2, 3]).await,
        "{:?}",
        offsets(&sb)
    );
    // The stream is lost and made again: a new epoch, numbers from 1.
    let before = b.history.read(ch, None, 10).await.expect("read").top.epoch;
    let js = common::jetstream(&url).await;
    let stream = format!("{prefix}_h_{:016x}", fnv(ch));
    js.delete_stream(&stream).await.expect("delete");
    let out = a
        .broker
        .publish(draft(ch, 4), Some(OPTS))
        .await
        .expect("publish");
    assert_eq!(out.offset, Some(1));
    assert_ne!(out.epoch.as_deref(), Some(before.as_str()));
    assert!(
        eventually(30, || sb
            .rec
            .delivered
            .lock()
            .last()
            .is_some_and(|p| p.event.message_id == "m4"))
        .await,
        "the new stream is followed"
    );
    common::clean(&url, &prefix).await;
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn entry(user: Option<&str>, conn: &str) -> PresenceEntry {
    PresenceEntry {
        user_id: user.map(str::to_owned),
        connection_id: conn.to_owned(),
        info: serde_json::Map::new(),
        joined_at: 1,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_and_nodes_are_seen_from_every_node() {
    let Some(common::Pair {
        url,
        prefix,
        a: (_ha, a, _sa),
        b: (hb, b, _sb),
        ..
    }) = common::two_nodes().await
    else {
        return;
    };
    let ch = "room:lobby";
    a.presence
        .add(ch, entry(Some("ann"), "node-a-1"))
        .await
        .expect("add");
    b.presence
        .add(ch, entry(Some("ann"), "node-b-1"))
        .await
        .expect("add");
    b.presence
        .add(ch, entry(None, "node-b-2"))
        .await
        .expect("add");
    let list = b.presence.list(ch).await.expect("list");
    let mut conns: Vec<_> = list.iter().map(|e| e.connection_id.as_str()).collect();
    conns.sort();
    assert_eq!(conns, ["node-a-1", "node-b-1", "node-b-2"]);
    let stats = a.presence.stats(ch).await.expect("stats");
    assert_eq!((stats.num_clients, stats.num_users), (3, 1));
    // Node B dies: its entries are gone within the TTL (3 s), A's stay
    // (A refreshes them every second).
    drop((b, hb));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<String> = a
            .presence
            .list(ch)
            .await
            .expect("list")
            .into_iter()
            .map(|e| e.connection_id)
            .collect();
        if left == ["node-a-1"] {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a dead node's entries expire, a live node's stay: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let nodes = a.broker.nodes().await.expect("nodes");
    assert!(nodes.iter().any(|n| n.node_id == "node-a"), "{nodes:?}");
    common::clean(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_registry_lists_live_nodes() {
    let Some(common::Pair {
        url,
        prefix,
        a: (_ha, a, _sa),
        b: (_hb, _b, _sb),
        ..
    }) = common::two_nodes().await
    else {
        return;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ids: Vec<String> = a
        .broker
        .nodes()
        .await
        .expect("nodes")
        .into_iter()
        .map(|n| n.node_id)
        .collect();
    assert_eq!(ids, ["node-a", "node-b"]);
    common::clean(&url, &prefix).await;
}

fn attach(
    e: &hubbub_server::engine::Engine,
    sink: &Arc<common::Sink>,
    user: &str,
) -> impl std::future::Future<Output = Vec<String>> {
    let (e, sink, user) = (e.clone(), sink.clone(), user.to_owned());
    async move {
        let mut register = || {
            sink.rec.live_users.lock().insert(user.clone());
        };
        e.broker
            .attach_user(&user, &mut register)
            .await
            .expect("attach")
            .iter()
            .map(|p| p.event.message_id.clone())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_queue_filled_on_one_node_is_handed_over_on_another() {
    let Some(common::Pair {
        url,
        prefix,
        a: (_ha, a, _sa),
        b: (_hb, b, sb),
        ..
    }) = common::two_nodes().await
    else {
        return;
    };
    let user = "ann";
    for n in 1..=3 {
        let out = a
            .broker
            .send_to_user(user, Arc::new(draft("user:ann", n)))
            .await
            .expect("send");
        assert_eq!((out.connections, out.queued), (0, true));
    }
    assert_eq!(
        attach(&b, &sb, user).await,
        ["m1", "m2", "m3"],
        "oldest first, on B"
    );
    // Live on B: A's send goes through B's inbox.
    let out = a
        .broker
        .send_to_user(user, Arc::new(draft("user:ann", 4)))
        .await
        .expect("send");
    assert_eq!((out.connections, out.queued), (1, false));
    assert_eq!(sb.rec.to_users.lock().len(), 1);
    assert!(attach(&b, &sb, user).await.is_empty(), "handed over once");
    // Both of B's connections close: queued again.
    sb.rec.live_users.lock().clear();
    b.broker.detach_user(user);
    b.broker.detach_user(user);
    let out = a
        .broker
        .send_to_user(user, Arc::new(draft("user:ann", 5)))
        .await
        .expect("send");
    assert_eq!((out.connections, out.queued), (0, true));
    // The overflow drops the oldest.
    for n in 6..=15 {
        a.broker
            .send_to_user(user, Arc::new(draft("user:ann", n)))
            .await
            .expect("send");
    }
    let got = attach(&a, &_sa, user).await;
    assert_eq!(
        got,
        (6..=15).map(|n| format!("m{n}")).collect::<Vec<_>>(),
        "the newest queue_size"
    );
    assert!(a.broker.dropped_for_users() >= 1);
    common::clean(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_sent_during_attach_is_returned_or_delivered_exactly_once() {
    let Some(url) = common::nats().await else {
        return;
    };
    let prefix = common::prefix();
    let mut config = common::config(&url, &prefix);
    config.users.queue_size = 10_000;
    let (_ha, a, _sa) = started(&config, "node-a").await;
    let (_hb, b, sb) = started(&config, "node-b").await;
    let mut mixed = 0;
    for round in 0..5 {
        let user = format!("racer{round}");
        sb.rec.to_users.lock().clear();
        // Sent from both nodes: B delivers to its own connection directly.
        let sends = {
            let (a, b, user) = (a.clone(), b.clone(), user.clone());
            tokio::spawn(async move {
                let sends = (1..=60u64).map(|n| {
                    let (from, user) =
                        (if n % 3 == 0 { b.clone() } else { a.clone() }, user.clone());
                    async move {
                        tokio::time::sleep(Duration::from_millis(n)).await;
                        from.broker
                            .send_to_user(&user, Arc::new(draft("user:x", n)))
                            .await
                            .expect("send")
                    }
                });
                futures_util::future::join_all(sends).await
            })
        };
        tokio::time::sleep(Duration::from_millis(20 + 5 * round)).await;
        let returned = attach(&b, &sb, &user).await;
        let outcomes = sends.await.expect("sends");
        let live: Vec<String> = sb
            .rec
            .to_users
            .lock()
            .iter()
            .filter(|(u, _)| *u == user)
            .map(|(_, p)| p.event.message_id.clone())
            .collect();
        let mut all: Vec<String> = returned.iter().chain(live.iter()).cloned().collect();
        all.sort_by_key(|m| m[1..].parse::<u64>().unwrap());
        assert_eq!(
            all,
            (1..=60).map(|n| format!("m{n}")).collect::<Vec<_>>(),
            "each once: returned {returned:?}, live {live:?}"
        );
        let queued = outcomes.iter().filter(|o| o.queued).count();
        assert_eq!(
            queued,
            returned.len(),
            "what was queued is what attach returned"
        );
        eprintln!(
            "round {round}: {} returned by attach, {} delivered live",
            returned.len(),
            live.len()
        );
        if !returned.is_empty() && !live.is_empty() {
            mixed += 1;
        }
    }
    assert!(mixed > 0, "the attach never fell amid the sends");
    common::clean(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_link_resyncs_the_node_and_delivery_goes_on() {
    let Some(common::Pair {
        url,
        prefix,
        a: (ha, a, sa),
        b: (_hb, b, _sb),
        ..
    }) = common::two_nodes().await
    else {
        return;
    };
    let ch = "after-cut";
    a.broker.subscribe(ch).await.expect("subscribe");
    a.history.open(ch, OPTS).await.expect("open");
    b.broker
        .publish(draft(ch, 1), Some(OPTS))
        .await
        .expect("publish");
    assert!(eventually(5, || offsets(&sa) == [1]).await);
    assert!(a.broker.health().is_ok());
    ha.force_reconnect().await.expect("reconnect");
    assert!(
        eventually(10, || sa.resyncs.load(std::sync::atomic::Ordering::SeqCst)
            >= 1)
        .await,
        "resync after the link came back"
    );
    assert!(eventually(10, || a.broker.health().is_ok()).await);
    for n in 2..=3 {
        b.broker
            .publish(draft(ch, n), Some(OPTS))
            .await
            .expect("publish");
    }
    b.broker.publish(draft(ch, 9), None).await.expect("publish");
    assert!(
        eventually(30, || offsets(&sa) == [1, 2, 3]).await,
        "{:?}",
        offsets(&sa)
    );
    assert!(
        eventually(5, || sa
            .rec
            .delivered
            .lock()
            .iter()
            .any(|p| p.event.message_id == "m9"))
        .await
    );
    common::clean(&url, &prefix).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_history_options_apply_to_an_existing_stream() {
    let Some(url) = common::nats().await else {
        return;
    };
    let prefix = common::prefix();
    let config = common::config(&url, &prefix);
    let (_ha, a, _sa) = started(&config, "node-a").await;
    let ch = "resized";
    for n in 1..=8 {
        a.broker
            .publish(draft(ch, n), Some(OPTS))
            .await
            .expect("publish");
    }
    let small = HistoryOptions {
        size: 3,
        ttl: Duration::from_secs(30),
    };
    let out = a
        .broker
        .publish(draft(ch, 9), Some(small))
        .await
        .expect("publish");
    assert_eq!(out.offset, Some(9), "the same history goes on");
    let read = a.history.read(ch, None, 100).await.expect("read");
    let kept: Vec<_> = read.events.iter().filter_map(|p| p.event.offset).collect();
    assert_eq!(kept, [7, 8, 9]);
    assert_eq!(read.first_held, 7);
    common::clean(&url, &prefix).await;
}
