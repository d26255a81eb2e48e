//! One suite every engine passes: the memory engine in this crate's tests,
//! a networked engine in its own crate's tests against a real server.
//! Each check builds a fresh engine from the factory (async: a networked
//! engine connects), uses channel and user names of its own (so engines
//! backed by a shared server can run it repeatedly), and panics with what
//! broke.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let config = hubbub_server::Config::default();
//! hubbub_server::engine::conformance::run_all(|| async { hubbub_server::engine::Engine::memory(&config) }).await;
//! # });
//! ```

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hubbub_protocol::{EventMessage, JsonData};
use parking_lot::Mutex;

use super::{Engine, EventSink, HistoryOptions, PresenceEntry};
use crate::hub::Publication;

/// A node's local delivery, recorded: what a broker handed back, in order,
/// and which users count as connected here.
#[derive(Default)]
pub struct RecordingSink {
    /// Every channel publication delivered, in delivery order.
    pub delivered: Mutex<Vec<Arc<Publication>>>,
    /// Every user event delivered, with its user.
    pub to_users: Mutex<Vec<(String, Arc<Publication>)>>,
    /// Users with a live connection on this node.
    pub live_users: Mutex<HashSet<String>>,
}

impl EventSink for RecordingSink {
    fn deliver(&self, publication: &Arc<Publication>) -> usize {
        self.delivered.lock().push(publication.clone());
        1
    }

    fn deliver_to_user(&self, user: &str, publication: &Arc<Publication>) -> Option<usize> {
        if !self.live_users.lock().contains(user) {
            return None;
        }
        self.to_users
            .lock()
            .push((user.to_owned(), publication.clone()));
        Some(1)
    }
}

/// A channel name no earlier run used.
fn unique(prefix: &str) -> String {
    format!("{prefix}{:016x}", rand::random::<u64>())
}

/// Event `n` of `channel`, stamped and not numbered (message id `m<n>`,
/// timestamp `n`): what a node hands its broker. Public so that an
/// engine's own tests make events the way the suite does.
pub fn draft(channel: &str, n: u64) -> Publication {
    Publication::draft(
        EventMessage {
            channel: channel.to_owned(),
            event_type: "e".into(),
            data: JsonData::from_serialize(&n),
            message_id: format!("m{n}"),
            offset: None,
            epoch: None,
            publisher: None,
        },
        n,
    )
}

const OPTS: HistoryOptions = HistoryOptions {
    size: 5,
    ttl: Duration::from_secs(60),
};

async fn started<F: Future<Output = Engine>>(
    make: &impl Fn() -> F,
) -> (Engine, Arc<RecordingSink>) {
    let engine = make().await;
    let sink = Arc::new(RecordingSink::default());
    engine.broker.start(sink.clone(), &unique("conf-node-"));
    (engine, sink)
}

/// Waits (bounded) until the sink holds `n` channel deliveries: a
/// networked broker delivers from its subscription, after `publish` resolved.
async fn delivered(sink: &RecordingSink, n: usize) -> Vec<Arc<Publication>> {
    eventually(|| sink.delivered.lock().len() >= n).await;
    sink.delivered.lock().clone()
}

/// Waits (at most 5 s) until `done` holds; the caller's assertion says
/// what broke when it never does.
async fn eventually(done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !done() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Publishing with history numbers events 1, 2, 3... in one epoch, keeps
/// the newest `size`, and delivers them in offset order.
pub async fn numbers_and_keeps_history<F: Future<Output = Engine>>(make: impl Fn() -> F) {
    let (engine, sink) = started(&make).await;
    let ch = unique("conf:num:");
    engine.broker.subscribe(&ch).await.expect("subscribe");
    let mut epoch = None;
    for n in 1..=8u64 {
        let out = engine
            .broker
            .publish(draft(&ch, n), Some(OPTS))
            .await
            .expect("publish");
        assert_eq!(out.offset, Some(n), "offsets count from 1");
        let e = out.epoch.expect("an epoch with every offset");
        assert!(!e.is_empty());
        assert!(epoch.as_ref().is_none_or(|x| *x == e), "one epoch");
        epoch = Some(e);
    }
    let got = delivered(&sink, 8).await;
    let offsets: Vec<_> = got.iter().map(|p| p.event.offset.unwrap()).collect();
    assert_eq!(offsets, (1..=8).collect::<Vec<_>>(), "delivered in order");
    let read = engine.history.read(&ch, None, 100).await.expect("read");
    assert_eq!(read.top.offset, 8);
    assert_eq!(Some(read.top.epoch.as_str()), epoch.as_deref());
    let kept: Vec<_> = read
        .events
        .iter()
        .map(|p| p.event.offset.unwrap())
        .collect();
    assert_eq!(kept, [4, 5, 6, 7, 8], "the newest `size` kept");
    assert_eq!(read.first_held, 4);
    let since = engine.history.read(&ch, Some(5), 2).await.expect("read");
    let got: Vec<_> = since
        .events
        .iter()
        .map(|p| p.event.offset.unwrap())
        .collect();
    assert_eq!(got, [6, 7], "the oldest `limit` after `since`");
    assert!(since.reaches_back_to(5, epoch.as_deref().unwrap()));
    assert!(
        !read.reaches_back_to(2, epoch.as_deref().unwrap()),
        "3 is gone"
    );
    assert!(!read.reaches_back_to(5, "another epoch"));
    assert!(engine.history.holds(&ch).await.expect("holds"));
}

/// A channel opened before its first event has a real epoch at offset 0,
/// and the first event keeps it.
pub async fn opening_gives_an_epoch_the_first_event_keeps<F: Future<Output = Engine>>(
    make: impl Fn() -> F,
) {
    let (engine, _sink) = started(&make).await;
    let ch = unique("conf:open:");
    engine.history.open(&ch, OPTS).await.expect("open");
    let before = engine
        .history
        .read(&ch, Some(u64::MAX), 0)
        .await
        .expect("read");
    assert_eq!(before.top.offset, 0);
    assert!(!before.top.epoch.is_empty(), "opened: a real epoch");
    let out = engine
        .broker
        .publish(draft(&ch, 1), Some(OPTS))
        .await
        .expect("publish");
    assert_eq!(out.epoch.as_deref(), Some(before.top.epoch.as_str()));
    let read = engine.history.read(&ch, Some(0), 10).await.expect("read");
    assert!(read.reaches_back_to(0, &before.top.epoch));
    assert_eq!(read.events.len(), 1);
}

/// Without history: no offset, no epoch, nothing kept, still delivered.
pub async fn publishes_without_history<F: Future<Output = Engine>>(make: impl Fn() -> F) {
    let (engine, sink) = started(&make).await;
    let ch = unique("conf:live:");
    engine.broker.subscribe(&ch).await.expect("subscribe");
    let out = engine
        .broker
        .publish(draft(&ch, 1), None)
        .await
        .expect("publish");
    assert_eq!((out.offset, out.epoch), (None, None));
    let got = delivered(&sink, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].event.offset, None);
    let read = engine.history.read(&ch, None, 10).await.expect("read");
    assert!(read.events.is_empty());
    assert!(!engine.history.holds(&ch).await.expect("holds"));
    engine.broker.unsubscribe(&ch);
}

/// A user with no live connection gets events kept, in order, handed over
/// once on attach; a live user gets them delivered, not kept.
pub async fn keeps_events_for_offline_users<F: Future<Output = Engine>>(make: impl Fn() -> F) {
    let (engine, sink) = started(&make).await;
    let user = unique("conf-user-");
    for n in 1..=3u64 {
        let p = Arc::new(draft(&format!("user:{user}"), n));
        let out = engine.broker.send_to_user(&user, p).await.expect("send");
        assert_eq!((out.connections, out.queued), (0, true));
    }
    let mut registered = false;
    let taken = {
        let mut register = || {
            sink.live_users.lock().insert(user.clone());
            registered = true;
        };
        engine
            .broker
            .attach_user(&user, &mut register)
            .await
            .expect("attach")
    };
    assert!(registered, "attach registers the connection");
    let got: Vec<_> = taken.iter().map(|p| p.event.message_id.clone()).collect();
    assert_eq!(got, ["m1", "m2", "m3"], "kept events, oldest first");
    let p = Arc::new(draft(&format!("user:{user}"), 4));
    let out = engine.broker.send_to_user(&user, p).await.expect("send");
    assert_eq!((out.connections, out.queued), (1, false), "live: delivered");
    // A networked broker delivers through its subscription, after the
    // send resolved.
    eventually(|| !sink.to_users.lock().is_empty()).await;
    assert_eq!(sink.to_users.lock().len(), 1, "delivered live, once");
    let mut nothing = || {};
    let again = engine
        .broker
        .attach_user(&user, &mut nothing)
        .await
        .expect("attach");
    assert!(again.is_empty(), "handed over once");
}

fn entry(user: Option<&str>, conn: &str) -> PresenceEntry {
    PresenceEntry {
        user_id: user.map(str::to_owned),
        connection_id: conn.to_owned(),
        info: serde_json::json!({"name": conn})
            .to_string()
            .parse()
            .expect("json"),
        joined_at: 1,
    }
}

/// Presence: one entry per connection; users counted once; anonymous
/// connections count as clients only; removing the last empties it.
pub async fn tracks_presence<F: Future<Output = Engine>>(make: impl Fn() -> F) {
    let (engine, _sink) = started(&make).await;
    let ch = unique("conf:presence:");
    let p = &engine.presence;
    p.add(&ch, entry(Some("ann"), "c1")).await.expect("add");
    p.add(&ch, entry(Some("ann"), "c2")).await.expect("add");
    p.add(&ch, entry(Some("bob"), "c3")).await.expect("add");
    p.add(&ch, entry(None, "c4")).await.expect("add");
    p.add(&ch, entry(Some("ann"), "c1")).await.expect("refresh");
    let stats = p.stats(&ch).await.expect("stats");
    assert_eq!((stats.num_clients, stats.num_users), (4, 2));
    let list = p.list(&ch).await.expect("list");
    let mut conns: Vec<_> = list.iter().map(|e| e.connection_id.as_str()).collect();
    conns.sort();
    assert_eq!(conns, ["c1", "c2", "c3", "c4"]);
    p.remove(&ch, "c1").await.expect("remove");
    p.remove(&ch, "c3").await.expect("remove");
    let stats = p.stats(&ch).await.expect("stats");
    assert_eq!((stats.num_clients, stats.num_users), (2, 1));
    p.remove(&ch, "c2").await.expect("remove");
    p.remove(&ch, "c4").await.expect("remove");
    p.remove(&ch, "c4")
        .await
        .expect("removing twice is harmless");
    assert!(p.list(&ch).await.expect("list").is_empty());
}

/// Every check above, each on a fresh engine.
pub async fn run_all<F: Future<Output = Engine>>(make: impl Fn() -> F) {
    numbers_and_keeps_history(&make).await;
    opening_gives_an_epoch_the_first_event_keeps(&make).await;
    publishes_without_history(&make).await;
    keeps_events_for_offline_users(&make).await;
    tracks_presence(&make).await;
}
