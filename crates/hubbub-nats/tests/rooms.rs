//! Rooms over several nodes on a real NATS: one registry, one capacity
//! counted over every node, a dead node's members freeing their places
//! within the presence TTL, and a deletion seen everywhere.

mod common;

use std::future::Future;
use std::time::Duration;

use common::started;
use hubbub_server::engine::{room_channel, Admission, Engine, PresenceEntry, RoomSettings};

fn api_room(room: &str, capacity: usize) -> RoomSettings {
    RoomSettings {
        room: room.to_owned(),
        capacity,
        private: false,
        owner: Some("ann".into()),
        metadata: serde_json::Map::new(),
        created_at: 0,
        made_by_join: false,
    }
}

fn entry(conn: &str) -> PresenceEntry {
    PresenceEntry {
        user_id: Some(format!("user-{conn}")),
        connection_id: conn.to_owned(),
        info: serde_json::Map::new(),
        joined_at: 1,
    }
}

fn is_new(a: &Admission) -> bool {
    matches!(a, Admission::Admitted { new: true, .. })
}

/// Polls `check` every 100 ms until it holds; fails after `secs`.
async fn within<F: Future<Output = bool>>(secs: u64, what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {secs} s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn members(e: &Engine, room: &str) -> Option<usize> {
    e.rooms.get(room).await.expect("get").map(|r| r.members)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rooms_are_one_registry_over_every_node() {
    let Some(common::Pair {
        url,
        prefix,
        config,
        a: (_ha, a, _sa),
        b: (_hb, b, _sb),
    }) = common::two_nodes().await
    else {
        return;
    };
    assert_eq!(config.engine.presence_ttl_s, 3, "a short TTL");
    let room = "ops.room @*>";

    // Made through A, seen by B.
    let made = a.rooms.create(api_room(room, 3)).await.expect("create");
    let made = made.expect("a new room");
    let seen = b.rooms.get(room).await.expect("get").expect("seen on B");
    assert_eq!(*seen.settings, *made);
    assert!(b
        .rooms
        .create(api_room(room, 5))
        .await
        .expect("create")
        .is_none());

    // Eight connections at once, four through each node: three in.
    let nodes = [&a, &b];
    let tries = (0..8).map(|i| {
        let conn = format!("{}{i}", ["a", "b"][i % 2]);
        async move {
            let got = nodes[i % 2].rooms.admit(room, entry(&conn), None).await;
            (i % 2, conn, got.expect("admit"))
        }
    });
    let results = futures_util::future::join_all(tries).await;
    let inside: Vec<_> = results.iter().filter(|(_, _, r)| is_new(r)).collect();
    assert_eq!(inside.len(), 3, "{results:?}");
    for (_, _, r) in results.iter().filter(|(_, _, r)| !is_new(r)) {
        assert_eq!(*r, Admission::Full { capacity: 3 });
    }
    assert_eq!(members(&a, room).await, Some(3));
    let listed = b.rooms.list().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].members, 3);
    let mut present: Vec<String> = a
        .presence
        .list(&room_channel(room))
        .await
        .expect("presence")
        .into_iter()
        .map(|e| e.connection_id)
        .collect();
    present.sort();
    let mut admitted: Vec<String> = inside.iter().map(|(_, c, _)| c.clone()).collect();
    admitted.sort();
    assert_eq!(present, admitted, "the members are the room's presence");
    for (node, conn, _) in &inside {
        nodes[*node]
            .rooms
            .release(room, conn)
            .await
            .expect("release");
    }
    assert_eq!(members(&b, room).await, Some(0), "an API room stays");

    // A third node holds a place, and one in a room made by joining; then
    // it dies.
    let (hc, c, _sc) = started(&config, "node-c").await;
    let pop_up = "pop-up";
    assert!(is_new(
        &c.rooms
            .admit(pop_up, entry("c1"), Some(4))
            .await
            .expect("admit")
    ));
    assert_eq!(members(&a, pop_up).await, Some(1));
    for (node, conn) in [(&c, "c1"), (&a, "a1"), (&b, "b1")] {
        let got = node
            .rooms
            .admit(room, entry(conn), None)
            .await
            .expect("admit");
        assert!(is_new(&got), "{conn}: {got:?}");
    }
    let full = a.rooms.admit(room, entry("a2"), None).await.expect("admit");
    assert_eq!(full, Admission::Full { capacity: 3 });
    drop((hc, c));
    within(15, "the dead node's member frees its place", || async {
        members(&a, room).await == Some(2)
    })
    .await;
    // The member count and admission read JetStream separately: admission
    // may see the dead member a moment longer (it never over-admits).
    within(15, "a new member takes the freed place", || async {
        let got = a.rooms.admit(room, entry("a2"), None).await.expect("admit");
        is_new(&got)
    })
    .await;
    let full = b.rooms.admit(room, entry("b2"), None).await.expect("admit");
    assert_eq!(full, Admission::Full { capacity: 3 });
    within(
        15,
        "a room made by joining goes with its dead members",
        || async { members(&b, pop_up).await.is_none() },
    )
    .await;
    let names: Vec<String> = a
        .rooms
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.settings.room.clone())
        .collect();
    assert_eq!(names, [room]);

    // Deleted through B: gone for A, members and all.
    let gone = b
        .rooms
        .delete(room)
        .await
        .expect("delete")
        .expect("existed");
    assert_eq!(gone.created_at, made.created_at);
    let none = a.rooms.admit(room, entry("a3"), None).await.expect("admit");
    assert_eq!(none, Admission::Unknown);
    assert!(a.rooms.get(room).await.expect("get").is_none());
    let left = a
        .presence
        .list(&room_channel(room))
        .await
        .expect("presence");
    assert!(left.is_empty(), "{left:?}");
    common::clean(&url, &prefix).await;
}
