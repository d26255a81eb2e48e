//! A node whose link to NATS is cut (through a TCP proxy the test
//! controls) is unhealthy while cut, resyncs when the link is back, and
//! gets the history events published meanwhile; its room members whose
//! entries expired meanwhile come back only where a place is free.

mod common;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use common::{draft, eventually, started};
use hubbub_server::engine::{room_channel, Admission, HistoryOptions, PresenceEntry, RoomSettings};
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};

const OPTS: HistoryOptions = HistoryOptions {
    size: 100,
    ttl: Duration::from_secs(60),
};

/// A TCP proxy to NATS that can cut every connection and refuse new ones.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(SeqCst) {
                    continue; // dropped: refused
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns2.lock().push(task.abort_handle());
            }
        });
        Proxy { port, up, conns }
    }

    fn cut(&self) {
        self.up.store(false, SeqCst);
        for c in self.conns.lock().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, SeqCst);
    }
}

type Started = (
    hubbub_nats::NatsEngine,
    hubbub_server::engine::Engine,
    Arc<common::Sink>,
);

/// Node A reaching NATS through a proxy the test cuts, node B directly,
/// on a prefix of their own.
struct Cut {
    url: String,
    prefix: String,
    proxy: Proxy,
    a: Started,
    b: Started,
}

/// The two nodes of [`Cut`]; `None` (loudly) without a NATS.
async fn cut_setup() -> Option<Cut> {
    let url = common::nats().await?;
    let prefix = common::prefix();
    let upstream = url
        .trim_start_matches("nats://")
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    let proxy = Proxy::start(upstream).await;
    let config = common::config(&url, &prefix);
    let mut via_proxy = config.clone();
    via_proxy.engine.nats_url = format!("nats://127.0.0.1:{}", proxy.port);
    let a = started(&via_proxy, "node-a").await;
    let b = started(&config, "node-b").await;
    Some(Cut {
        url,
        prefix,
        proxy,
        a,
        b,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_link_is_unhealthy_then_resyncs_and_catches_up() {
    let Some(Cut {
        url,
        prefix,
        proxy,
        a: (_ha, a, sa),
        b: (_hb, b, _sb),
    }) = cut_setup().await
    else {
        return;
    };
    let ch = "through-a-cut";
    a.broker.subscribe(ch).await.expect("subscribe");
    a.history.open(ch, OPTS).await.expect("open");
    b.broker
        .publish(draft(ch, 1), Some(OPTS))
        .await
        .expect("publish");
    assert!(eventually(5, || sa.rec.delivered.lock().len() == 1).await);
    assert!(a.broker.health().is_ok());

    proxy.cut();
    assert!(
        eventually(10, || a.broker.health().is_err()).await,
        "unhealthy while cut"
    );
    assert!(
        a.broker.publish(draft(ch, 50), None).await.is_err(),
        "a publish fails at once while cut"
    );
    // Published while A is cut off: kept by the stream.
    for n in 2..=4 {
        b.broker
            .publish(draft(ch, n), Some(OPTS))
            .await
            .expect("publish");
    }

    proxy.restore();
    assert!(
        eventually(30, || a.broker.health().is_ok()).await,
        "healthy again"
    );
    assert!(
        eventually(10, || sa.resyncs.load(SeqCst) >= 1).await,
        "resynced"
    );
    let offsets = || -> Vec<u64> {
        sa.rec
            .delivered
            .lock()
            .iter()
            .filter_map(|p| p.event.offset)
            .collect()
    };
    assert!(
        eventually(30, || offsets() == [1, 2, 3, 4]).await,
        "caught up from the stream: {:?}",
        offsets()
    );
    common::clean(&url, &prefix).await;
}

fn api_room(room: &str, capacity: usize) -> RoomSettings {
    RoomSettings {
        room: room.to_owned(),
        capacity,
        private: false,
        owner: None,
        metadata: serde_json::Map::new(),
        created_at: 0,
        made_by_join: false,
    }
}

fn member(conn: &str) -> PresenceEntry {
    PresenceEntry {
        user_id: None,
        connection_id: conn.to_owned(),
        info: serde_json::Map::new(),
        joined_at: 1,
    }
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Polls `check` every 100 ms until it holds; fails after `secs`.
async fn within<F: std::future::Future<Output = bool>>(
    secs: u64,
    what: &str,
    mut check: impl FnMut() -> F,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {secs} s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_member_cut_off_past_the_ttl_comes_back_only_into_a_free_place() {
    let Some(Cut {
        url,
        prefix,
        proxy,
        a: (_ha, a, sa),
        b: (_hb, b, _sb),
    }) = cut_setup().await
    else {
        return;
    };
    let (full, free) = ("full", "free");
    for (room, capacity) in [(full, 1), (free, 2)] {
        let made = b.rooms.create(api_room(room, capacity)).await;
        made.expect("create").expect("new");
        let got = a.rooms.admit(room, member("a1"), None).await;
        assert!(matches!(
            got.expect("admit"),
            Admission::Admitted { new: true, .. }
        ));
    }

    // Cut off longer than the TTL (3 s): A's members expire, and B's
    // connection takes the only place of one room.
    proxy.cut();
    let members = |room: &'static str| {
        let b = b.clone();
        async move { b.rooms.get(room).await.expect("get").expect("room").members }
    };
    within(20, "A's members expire", || async {
        members(full).await == 0 && members(free).await == 0
    })
    .await;
    let got = b.rooms.admit(full, member("b1"), None).await;
    assert!(matches!(
        got.expect("admit"),
        Admission::Admitted { new: true, .. }
    ));

    // Back: A's member returns where there is a place, not where there is
    // none (it tries, counts, and deletes its entry again).
    proxy.restore();
    assert!(eventually(30, || a.broker.health().is_ok()).await);
    assert!(eventually(10, || sa.resyncs.load(SeqCst) >= 1).await);
    let conns = |room: &'static str| {
        let b = b.clone();
        async move {
            let list = b.presence.list(&room_channel(room)).await.expect("list");
            list.into_iter()
                .map(|e| e.connection_id)
                .collect::<Vec<_>>()
        }
    };
    within(20, "back where there is a place", || async {
        conns(free).await == ["a1"]
    })
    .await;
    let js = common::jetstream(&url).await;
    let bucket = format!("KV_{prefix}_presence");
    let key = format!(
        "$KV.{prefix}_presence.{:016x}.6131",
        fnv(&room_channel(full))
    );
    within(20, "turned away where there is none", || async {
        let stream = js.get_stream(&bucket).await.expect("bucket");
        let last = stream.get_last_raw_message_by_subject(&key).await;
        last.is_ok_and(|m| m.headers.get("KV-Operation").is_some())
    })
    .await;
    assert_eq!(conns(full).await, ["b1"]);
    assert_eq!(members(full).await, 1);
    assert_eq!(members(free).await, 1);
    common::clean(&url, &prefix).await;
}
