//! Presence in Redis: per channel, a hash of entries by connection and a
//! sorted set of when each expires. The node that added an entry
//! refreshes it every third of `presence_ttl`; a node that dies stops,
//! and its entries are gone within the TTL.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use hubbub_server::engine::{BoxFuture, EngineError, PresenceEntry, PresenceStats, PresenceStore};
use parking_lot::Mutex;

use crate::scripts::{PRESENCE_ADD, PRESENCE_READ, PRESENCE_REMOVE};
use crate::Core;

/// Entries refreshed per script call.
const REFRESH_BATCH: usize = 500;

/// Presence shared by every node through Redis.
pub struct RedisPresence {
    core: Arc<Core>,
    /// This node's entries (JSON by connection, per channel), refreshed.
    local: Mutex<HashMap<String, HashMap<String, String>>>,
}

impl RedisPresence {
    /// Builds the store and starts its refresh task (which ends with it).
    pub(crate) fn new(core: Arc<Core>) -> Arc<Self> {
        let p = Arc::new(RedisPresence {
            core: core.clone(),
            local: Mutex::default(),
        });
        tokio::spawn(refresh_loop(core, Arc::downgrade(&p)));
        p
    }

    /// Keeps refreshing an entry this node wrote (a room admission writes
    /// its presence entry itself).
    pub(crate) fn remember(&self, channel: &str, connection_id: &str, json: String) {
        self.local
            .lock()
            .entry(channel.to_owned())
            .or_default()
            .insert(connection_id.to_owned(), json);
    }

    /// Stops refreshing an entry.
    pub(crate) fn forget(&self, channel: &str, connection_id: &str) {
        let mut local = self.local.lock();
        if let Some(m) = local.get_mut(channel) {
            m.remove(connection_id);
            if m.is_empty() {
                local.remove(channel);
            }
        }
    }

    pub(crate) fn ttl_ms(&self) -> u64 {
        self.core.presence_ttl.as_millis().max(1) as u64
    }

    async fn write(&self, channel: &str, pairs: &[(String, String)]) -> Result<(), EngineError> {
        let core = &self.core;
        let mut conn = core.conn(channel);
        let mut inv = PRESENCE_ADD.key(core.keys.presence(channel));
        inv.key(core.keys.presence_expiry(channel))
            .arg(self.ttl_ms());
        for (conn_id, json) in pairs {
            inv.arg(conn_id).arg(json);
        }
        core.call::<u8>("presence add", inv.invoke_async(&mut conn))
            .await
            .map(|_| ())
    }

    async fn read(&self, channel: &str, what: &str) -> Result<redis::Value, EngineError> {
        let core = &self.core;
        let mut conn = core.conn(channel);
        core.call(
            "presence read",
            PRESENCE_READ
                .key(core.keys.presence(channel))
                .key(core.keys.presence_expiry(channel))
                .arg(what)
                .invoke_async(&mut conn),
        )
        .await
    }

    async fn refresh(&self) {
        let all: Vec<(String, Vec<(String, String)>)> = self
            .local
            .lock()
            .iter()
            .map(|(ch, m)| {
                (
                    ch.clone(),
                    m.iter().map(|(c, j)| (c.clone(), j.clone())).collect(),
                )
            })
            .collect();
        for (channel, pairs) in all {
            for chunk in pairs.chunks(REFRESH_BATCH) {
                if let Err(e) = self.write(&channel, chunk).await {
                    tracing::warn!(error = %e, channel, "presence not refreshed");
                }
            }
        }
    }
}

async fn refresh_loop(core: Arc<Core>, presence: Weak<RedisPresence>) {
    let mut tick = tokio::time::interval(core.presence_ttl / 3);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(p) = presence.upgrade() else { return };
        p.refresh().await;
    }
}

impl PresenceStore for RedisPresence {
    fn add<'a>(
        &'a self,
        channel: &'a str,
        entry: PresenceEntry,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            let json = serde_json::to_string(&entry)
                .map_err(|e| EngineError(format!("presence entry: {e}")))?;
            let conn_id = entry.connection_id;
            self.remember(channel, &conn_id, json.clone());
            self.write(channel, &[(conn_id, json)]).await
        })
    }

    fn remove<'a>(
        &'a self,
        channel: &'a str,
        connection_id: &'a str,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            self.forget(channel, connection_id);
            let core = &self.core;
            let mut conn = core.conn(channel);
            core.call::<u8>(
                "presence remove",
                PRESENCE_REMOVE
                    .key(core.keys.presence(channel))
                    .key(core.keys.presence_expiry(channel))
                    .arg(connection_id)
                    .invoke_async(&mut conn),
            )
            .await
            .map(|_| ())
        })
    }

    fn list<'a>(
        &'a self,
        channel: &'a str,
    ) -> BoxFuture<'a, Result<Vec<PresenceEntry>, EngineError>> {
        Box::pin(async move {
            let value = self.read(channel, "list").await?;
            let raw: Vec<String> = redis::from_redis_value(value)
                .map_err(|e| EngineError(format!("presence list: {e}")))?;
            let mut list: Vec<PresenceEntry> = raw
                .iter()
                .filter_map(|j| serde_json::from_str(j).ok())
                .collect();
            list.sort_by_key(|e| e.joined_at);
            Ok(list)
        })
    }

    fn stats<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<PresenceStats, EngineError>> {
        Box::pin(async move {
            let value = self.read(channel, "stats").await?;
            let (num_clients, num_users): (u64, u64) = redis::from_redis_value(value)
                .map_err(|e| EngineError(format!("presence stats: {e}")))?;
            Ok(PresenceStats {
                num_clients,
                num_users,
            })
        })
    }
}
