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

use super::{
    room_channel, Admission, Engine, EventSink, HistoryOptions, PresenceEntry, RoomSettings,
};
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

fn api_room(room: &str, capacity: usize) -> RoomSettings {
    RoomSettings {
        room: room.to_owned(),
        capacity,
        private: true,
        owner: Some("ann".into()),
        metadata: serde_json::json!({"topic": "ops"})
            .as_object()
            .cloned()
            .expect("object"),
        created_at: 0,
        made_by_join: false,
    }
}

fn admitted(a: &Admission) -> Option<bool> {
    match a {
        Admission::Admitted { new, .. } => Some(*new),
        _ => None,
    }
}

/// A room made through the API: made once, its settings kept as given,
/// capacity counting connections (a second admit of one connection takes
/// no second place), members entered in the room channel's presence,
/// staying when empty, and gone for everyone once deleted.
pub async fn keeps_rooms<F: Future<Output = Engine>>(make: impl Fn() -> F) {
    let (engine, _sink) = started(&make).await;
    let rooms = &engine.rooms;
    let room = unique("confroom");
    let made = rooms.create(api_room(&room, 2)).await.expect("create");
    let made = made.expect("a new room");
    assert!(made.created_at > 0, "the store sets created_at");
    assert!(rooms
        .create(api_room(&room, 9))
        .await
        .expect("create")
        .is_none());
    let got = rooms.get(&room).await.expect("get").expect("exists");
    assert_eq!((*got.settings).clone(), (*made).clone());
    assert_eq!(got.members, 0);
    let admit = |c: &'static str| rooms.admit(&room, entry(Some("ann"), c), None);
    assert_eq!(admitted(&admit("c1").await.expect("admit")), Some(true));
    assert_eq!(admitted(&admit("c1").await.expect("admit")), Some(false));
    assert_eq!(admitted(&admit("c2").await.expect("admit")), Some(true));
    assert_eq!(
        admit("c3").await.expect("admit"),
        Admission::Full { capacity: 2 }
    );
    let ch = room_channel(&room);
    let stats = engine.presence.stats(&ch).await.expect("stats");
    assert_eq!((stats.num_clients, stats.num_users), (2, 1));
    rooms.release(&room, "c1").await.expect("release");
    rooms
        .release(&room, "c1")
        .await
        .expect("releasing twice is harmless");
    assert_eq!(admitted(&admit("c3").await.expect("admit")), Some(true));
    let listed = rooms.list().await.expect("list");
    let mine = listed
        .iter()
        .find(|r| r.settings.room == room)
        .expect("listed");
    assert_eq!(mine.members, 2);
    rooms.release(&room, "c2").await.expect("release");
    rooms.release(&room, "c3").await.expect("release");
    assert!(
        rooms.get(&room).await.expect("get").is_some(),
        "stays when empty"
    );
    admit("c4").await.expect("admit");
    let gone = rooms.delete(&room).await.expect("delete").expect("existed");
    assert_eq!(gone.created_at, made.created_at);
    assert!(rooms.delete(&room).await.expect("delete").is_none());
    assert!(rooms.get(&room).await.expect("get").is_none());
    assert_eq!(admit("c5").await.expect("admit"), Admission::Unknown);
    assert!(engine.presence.list(&ch).await.expect("list").is_empty());
}

/// A room made by joining: public, of the capacity asked, gone with its
/// last member; an unknown room is not made without `create`.
pub async fn rooms_made_by_joining_go_when_empty<F: Future<Output = Engine>>(make: impl Fn() -> F) {
    let (engine, _sink) = started(&make).await;
    let rooms = &engine.rooms;
    let room = unique("confjoin");
    let none = rooms.admit(&room, entry(None, "c1"), None).await;
    assert_eq!(none.expect("admit"), Admission::Unknown);
    let Admission::Admitted { settings, new } = rooms
        .admit(&room, entry(None, "c1"), Some(3))
        .await
        .expect("admit")
    else {
        panic!("not admitted");
    };
    assert!(new && settings.made_by_join && !settings.private);
    assert_eq!(settings.capacity, 3);
    let again = rooms.admit(&room, entry(None, "c2"), Some(7)).await;
    match again.expect("admit") {
        Admission::Admitted { settings, new } => assert!(new && settings.capacity == 3),
        other => panic!("{other:?}"),
    }
    rooms.release(&room, "c1").await.expect("release");
    assert_eq!(
        rooms
            .get(&room)
            .await
            .expect("get")
            .expect("one left")
            .members,
        1
    );
    rooms.release(&room, "c2").await.expect("release");
    assert!(
        rooms.get(&room).await.expect("get").is_none(),
        "gone with its last member"
    );
}

/// Fifty connections asking at once for a room of ten: exactly ten in.
pub async fn room_capacity_holds_under_contention<F: Future<Output = Engine>>(
    make: impl Fn() -> F,
) {
    let (engine, _sink) = started(&make).await;
    let room = unique("confrush");
    engine
        .rooms
        .create(api_room(&room, 10))
        .await
        .expect("create");
    let conns: Vec<String> = (0..50).map(|i| format!("c{i}")).collect();
    let tries = conns
        .iter()
        .map(|c| engine.rooms.admit(&room, entry(None, c), None));
    let results = futures_util::future::join_all(tries).await;
    let inside = results
        .iter()
        .filter(|r| admitted(r.as_ref().expect("admit")) == Some(true))
        .count();
    assert_eq!(inside, 10);
    assert_eq!(
        engine
            .rooms
            .get(&room)
            .await
            .expect("get")
            .expect("room")
            .members,
        10
    );
    engine.rooms.delete(&room).await.expect("delete");
}

/// Every check above, each on a fresh engine.
pub async fn run_all<F: Future<Output = Engine>>(make: impl Fn() -> F) {
    numbers_and_keeps_history(&make).await;
    opening_gives_an_epoch_the_first_event_keeps(&make).await;
    publishes_without_history(&make).await;
    keeps_events_for_offline_users(&make).await;
    tracks_presence(&make).await;
    keeps_rooms(&make).await;
    rooms_made_by_joining_go_when_empty(&make).await;
    room_capacity_holds_under_contention(&make).await;
}
