//! Rooms in Redis: per room a settings hash, and as members the presence
//! entries of its channel `room:<room>`, on the same server, so every
//! step (create, admit, release, delete) is one Lua script: two nodes
//! admitting at once never exceed a room's capacity, and a node that dies
//! frees its members' places when their presence entries expire.

use std::sync::Arc;

use hubbub_server::engine::{
    room_channel, Admission, BoxFuture, EngineError, PresenceEntry, RoomSettings, RoomState,
    RoomStore,
};
use redis::{Script, ScriptInvocation};

use crate::presence::RedisPresence;
use crate::scripts::{ROOM_ADMIT, ROOM_CREATE, ROOM_DELETE, ROOM_GET, ROOM_RELEASE};
use crate::Core;

/// Rooms listed at most (a registry of more is a misuse of rooms).
const MAX_LISTED: usize = 100_000;

/// Rooms shared by every node through Redis.
pub struct RedisRooms {
    core: Arc<Core>,
    /// The engine's presence store: it refreshes the entries this node's
    /// admissions wrote.
    presence: Arc<RedisPresence>,
}

fn settings(json: &str, created_at: u64) -> Result<Arc<RoomSettings>, EngineError> {
    let mut s: RoomSettings =
        serde_json::from_str(json).map_err(|e| EngineError(format!("room settings: {e}")))?;
    s.created_at = created_at;
    Ok(Arc::new(s))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, EngineError> {
    serde_json::to_string(v).map_err(|e| EngineError(format!("room: {e}")))
}

impl RedisRooms {
    pub(crate) fn new(core: Arc<Core>, presence: Arc<RedisPresence>) -> Self {
        RedisRooms { core, presence }
    }

    /// `script` on `room`'s keys, on the server holding its channel.
    fn invoke<'s>(&self, script: &'s Script, room: &str) -> ScriptInvocation<'s> {
        let channel = room_channel(room);
        let keys = &self.core.keys;
        let mut inv = script.key(keys.room(room));
        inv.key(keys.presence(&channel))
            .key(keys.presence_expiry(&channel));
        inv
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        what: &str,
        room: &str,
        inv: &ScriptInvocation<'_>,
    ) -> Result<T, EngineError> {
        let mut conn = self.core.conn(&room_channel(room));
        self.core.call(what, inv.invoke_async(&mut conn)).await
    }

    async fn state(&self, room: &str) -> Result<Option<RoomState>, EngineError> {
        let inv = self.invoke(&ROOM_GET, room);
        let got: Option<(String, u64, usize)> = self.run("room get", room, &inv).await?;
        got.map(|(json, created_at, members)| {
            Ok(RoomState {
                settings: settings(&json, created_at)?,
                members,
            })
        })
        .transpose()
    }

    async fn all(&self) -> Result<Vec<RoomState>, EngineError> {
        let core = &self.core;
        let mut names = Vec::new();
        for shard in &core.shards {
            let mut conn = shard.conn.clone();
            let mut cursor = 0u64;
            loop {
                let (next, keys): (u64, Vec<String>) = core
                    .call(
                        "room list",
                        redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(core.keys.room_pattern())
                            .arg("COUNT")
                            .arg(1000)
                            .query_async(&mut conn),
                    )
                    .await?;
                names.extend(
                    keys.iter()
                        .filter_map(|k| core.keys.room_of(k).map(str::to_owned)),
                );
                cursor = next;
                if cursor == 0 || names.len() >= MAX_LISTED {
                    break;
                }
            }
        }
        names.sort();
        names.dedup();
        let mut out = Vec::with_capacity(names.len());
        for room in names {
            if let Some(s) = self.state(&room).await? {
                out.push(s);
            }
        }
        Ok(out)
    }

    async fn admit_now(
        &self,
        room: &str,
        entry: PresenceEntry,
        create: Option<usize>,
    ) -> Result<Admission, EngineError> {
        let json = to_json(&entry)?;
        // The settings of a room to make, only where joining makes one.
        let made = match create {
            Some(capacity) => to_json(&RoomSettings {
                room: room.to_owned(),
                capacity,
                private: false,
                owner: None,
                metadata: Default::default(),
                created_at: 0,
                made_by_join: true,
            })?,
            None => String::new(),
        };
        let mut inv = self.invoke(&ROOM_ADMIT, room);
        inv.arg(&entry.connection_id)
            .arg(&json)
            .arg(self.presence.ttl_ms())
            .arg(create.map(|c| c.to_string()).unwrap_or_default())
            .arg(made);
        let value: redis::Value = self.run("room admit", room, &inv).await?;
        let bad = |e| EngineError(format!("room admit: {e}"));
        let (verdict, rest): (String, Vec<redis::Value>) = match value {
            redis::Value::Array(mut items) if !items.is_empty() => {
                let first = items.remove(0);
                (redis::from_redis_value(first).map_err(bad)?, items)
            }
            other => return Err(EngineError(format!("room admit: answered {other:?}"))),
        };
        match verdict.as_str() {
            "unknown" => Ok(Admission::Unknown),
            "full" => {
                let (capacity,): (usize,) =
                    redis::from_redis_value(redis::Value::Array(rest)).map_err(bad)?;
                Ok(Admission::Full { capacity })
            }
            "in" => {
                let (new, s, created_at): (u8, String, u64) =
                    redis::from_redis_value(redis::Value::Array(rest)).map_err(bad)?;
                self.presence
                    .remember(&room_channel(room), &entry.connection_id, json);
                Ok(Admission::Admitted {
                    settings: settings(&s, created_at)?,
                    new: new == 1,
                })
            }
            other => Err(EngineError(format!("room admit: answered {other:?}"))),
        }
    }
}

impl RoomStore for RedisRooms {
    fn create(
        &self,
        settings_given: RoomSettings,
    ) -> BoxFuture<'_, Result<Option<Arc<RoomSettings>>, EngineError>> {
        Box::pin(async move {
            let room = settings_given.room.clone();
            let mut inv = self.invoke(&ROOM_CREATE, &room);
            inv.arg(to_json(&settings_given)?)
                .arg(settings_given.capacity);
            let made: Option<u64> = self.run("room create", &room, &inv).await?;
            Ok(made.map(|created_at| {
                Arc::new(RoomSettings {
                    created_at,
                    made_by_join: false,
                    ..settings_given
                })
            }))
        })
    }

    fn get<'a>(&'a self, room: &'a str) -> BoxFuture<'a, Result<Option<RoomState>, EngineError>> {
        Box::pin(self.state(room))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<RoomState>, EngineError>> {
        Box::pin(self.all())
    }

    fn admit<'a>(
        &'a self,
        room: &'a str,
        entry: PresenceEntry,
        create: Option<usize>,
    ) -> BoxFuture<'a, Result<Admission, EngineError>> {
        Box::pin(self.admit_now(room, entry, create))
    }

    fn release<'a>(
        &'a self,
        room: &'a str,
        connection_id: &'a str,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            self.presence.forget(&room_channel(room), connection_id);
            let mut inv = self.invoke(&ROOM_RELEASE, room);
            inv.arg(connection_id);
            self.run::<u8>("room release", room, &inv).await.map(|_| ())
        })
    }

    fn delete<'a>(
        &'a self,
        room: &'a str,
    ) -> BoxFuture<'a, Result<Option<Arc<RoomSettings>>, EngineError>> {
        Box::pin(async move {
            let inv = self.invoke(&ROOM_DELETE, room);
            let gone: Option<(String, u64)> = self.run("room delete", room, &inv).await?;
            gone.map(|(json, created_at)| settings(&json, created_at))
                .transpose()
        })
    }
}
