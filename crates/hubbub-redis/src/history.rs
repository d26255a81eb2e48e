//! Channel history in Redis: a list of numbered lines per channel and a
//! hash with its epoch, newest offset and TTL. Events are appended by the
//! broker's publish script; this reads them.

use std::sync::Arc;

use hubbub_server::engine::{
    BoxFuture, HeldChannels, HistoryError, HistoryOptions, HistoryRead, HistoryStats, HistoryStore,
    Position,
};

use crate::scripts::{OPEN, READ};
use crate::{wire, Core};

/// Most channels `channels()` lists (it scans Redis).
const MAX_LISTED: usize = 10_000;

/// History kept in Redis, shared by every node.
pub struct RedisHistory {
    core: Arc<Core>,
}

impl RedisHistory {
    pub(crate) fn new(core: Arc<Core>) -> Self {
        RedisHistory { core }
    }

    async fn read_now(
        &self,
        channel: &str,
        since: Option<u64>,
        limit: usize,
    ) -> Result<HistoryRead, HistoryError> {
        let core = &self.core;
        let mut conn = core.conn(channel);
        // Lua numbers are doubles: keep both within 2^52.
        let since = since.map_or(-1, |s| s.min(1 << 52) as i64);
        let limit = limit.min(1 << 30);
        type Row = (String, u64, u64, u64, Vec<Vec<u8>>, u64);
        let (epoch, top, ttl, first, lines, now): Row = core
            .call(
                "history read",
                READ.key(core.keys.history(channel))
                    .key(core.keys.meta(channel))
                    .arg(since)
                    .arg(limit)
                    .invoke_async(&mut conn),
            )
            .await?;
        let mut events = Vec::with_capacity(lines.len());
        let mut kept_at = Vec::with_capacity(lines.len());
        for l in &lines {
            match wire::decode_kept(l) {
                Ok((p, kept)) => {
                    events.push(Arc::new(p));
                    kept_at.push(kept);
                }
                Err(e) => {
                    return Err(HistoryError(format!(
                        "undecodable event in the history of {channel}: {e}"
                    )))
                }
            }
        }
        // Each event is kept `ttl`; the list expires as a whole, so the
        // oldest may be past it.
        let mut first_held = first;
        if ttl > 0 {
            let oldest = now.saturating_sub(ttl);
            let expired = kept_at.iter().take_while(|&&k| k < oldest).count();
            if expired > 0 {
                let last = events[expired - 1].event.offset.unwrap_or(0);
                first_held = first_held.max(last + 1);
                events.drain(..expired);
            }
        }
        Ok(HistoryRead {
            top: Position { offset: top, epoch },
            events,
            first_held,
        })
    }

    async fn channels_now(&self) -> Result<HeldChannels, HistoryError> {
        let core = &self.core;
        let mut out = Vec::new();
        for shard in &core.shards {
            let mut conn = shard.conn.clone();
            let mut cursor = 0u64;
            let mut metas: Vec<String> = Vec::new();
            loop {
                let (next, keys): (u64, Vec<String>) = core
                    .call(
                        "scan",
                        redis::cmd("SCAN")
                            .arg(cursor)
                            .arg("MATCH")
                            .arg(core.keys.meta_pattern())
                            .arg("COUNT")
                            .arg(1000)
                            .query_async(&mut conn),
                    )
                    .await?;
                metas.extend(keys);
                cursor = next;
                if cursor == 0 || metas.len() >= MAX_LISTED {
                    break;
                }
            }
            let mut pipe = redis::pipe();
            for k in &metas {
                pipe.cmd("HMGET").arg(k).arg("e").arg("o");
            }
            let rows: Vec<(Option<String>, Option<u64>)> = core
                .call("history channels", pipe.query_async(&mut conn))
                .await?;
            for (k, (epoch, offset)) in metas.iter().zip(rows) {
                let (Some(epoch), Some(offset)) = (epoch, offset) else {
                    continue;
                };
                if offset == 0 {
                    continue;
                }
                if let Some(ch) = core.keys.channel_of_meta(k) {
                    out.push((Arc::from(ch), Position { offset, epoch }));
                }
            }
        }
        out.truncate(MAX_LISTED);
        Ok(out)
    }
}

impl HistoryStore for RedisHistory {
    fn read<'a>(
        &'a self,
        channel: &'a str,
        since: Option<u64>,
        limit: usize,
    ) -> BoxFuture<'a, Result<HistoryRead, HistoryError>> {
        Box::pin(self.read_now(channel, since, limit))
    }

    fn open<'a>(
        &'a self,
        channel: &'a str,
        opts: HistoryOptions,
    ) -> BoxFuture<'a, Result<(), HistoryError>> {
        Box::pin(async move {
            let core = &self.core;
            let mut conn = core.conn(channel);
            core.call::<u8>(
                "history open",
                OPEN.key(core.keys.history(channel))
                    .key(core.keys.meta(channel))
                    .arg(wire::new_epoch())
                    .arg(opts.ttl.as_millis().max(1) as u64)
                    .invoke_async(&mut conn),
            )
            .await
            .map(|_| ())
            .map_err(HistoryError::from)
        })
    }

    fn holds<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<bool, HistoryError>> {
        Box::pin(async move {
            let core = &self.core;
            let mut conn = core.conn(channel);
            let n: u64 = core
                .call(
                    "history holds",
                    redis::cmd("EXISTS")
                        .arg(core.keys.history(channel))
                        .query_async(&mut conn),
                )
                .await?;
            Ok(n > 0)
        })
    }

    fn channels(&self) -> BoxFuture<'_, Result<HeldChannels, HistoryError>> {
        Box::pin(self.channels_now())
    }

    /// Redis holds the history and bounds it by each channel's size and
    /// TTL (and its own `maxmemory`); this node has no figures of its own.
    fn stats(&self) -> HistoryStats {
        HistoryStats::default()
    }

    /// Redis expires what is due by itself.
    fn sweep(&self) {}
}
