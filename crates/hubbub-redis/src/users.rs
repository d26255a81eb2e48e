//! Events for users across nodes. Each node registers, per user, how many
//! of the user's connections it holds (`online` hash, refreshed every
//! third of `presence_ttl`, so a dead node's registrations expire); a send
//! goes to the inbox of every live node holding the user, or into the
//! user's queue, in one script ([`crate::scripts::USER_SEND`]); attaching
//! registers and takes the queue in one script too, so a concurrent send
//! is either taken or delivered live, never both, never neither.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};

use hubbub_server::engine::{EngineError, EventSink, Publication, SendOutcome};
use parking_lot::Mutex;

use crate::scripts::{USER_ATTACH, USER_SEND};
use crate::{wire, Core};

/// This node's connections per user, as registered in Redis.
#[derive(Default)]
pub(crate) struct LocalUsers {
    counts: Mutex<HashMap<String, usize>>,
}

fn ms(d: std::time::Duration) -> u64 {
    d.as_millis().max(1) as u64
}

/// Runs the send script: live on some node, or queued.
async fn send_line(
    core: &Core,
    user: &str,
    line: &[u8],
    queue_only: bool,
) -> Result<SendOutcome, EngineError> {
    let keys = &core.keys;
    let mut conn = core.conn(user);
    let (connections, queued, dropped): (usize, u8, u64) = core
        .call(
            "user send",
            USER_SEND
                .key(keys.online(user))
                .key(keys.queue(user))
                .arg(line)
                .arg(core.user_queue)
                .arg(ms(core.user_queue_ttl))
                .arg(keys.alive_prefix())
                .arg(keys.inbox_prefix())
                .arg(if queue_only { "1" } else { "0" })
                .invoke_async(&mut conn),
        )
        .await?;
    if dropped > 0 {
        core.dropped_for_users.fetch_add(dropped, Relaxed);
    }
    Ok(SendOutcome {
        connections,
        queued: queued == 1,
    })
}

/// `Broker::send_to_user`.
pub(crate) async fn send(
    core: &Core,
    user: &str,
    publication: &Publication,
) -> Result<SendOutcome, EngineError> {
    let line = wire::for_user(user, &wire::body(publication)?);
    send_line(core, user, &line, false).await
}

/// An event from this node's inbox: handed to the user's connections
/// here; if they closed meanwhile, queued for the user's next connection
/// (the sender was told it was live: it must not be lost).
pub(crate) fn deliver_from_inbox(core: &Arc<Core>, sink: &dyn EventSink, line: &[u8]) {
    let (user, p) = match wire::decode_for_user(line) {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(error = %e, "undecodable user event from redis skipped");
            return;
        }
    };
    if sink.deliver_to_user(&user, &Arc::new(p)).is_some() {
        return;
    }
    let core = core.clone();
    let line = line.to_vec();
    tokio::spawn(async move {
        if let Err(e) = send_line(&core, &user, &line, true).await {
            tracing::warn!(error = %e, user, "user event neither delivered nor queued");
        }
    });
}

impl LocalUsers {
    /// `Broker::attach_user`: registers locally (through `register`),
    /// then in Redis, taking the queue.
    pub(crate) async fn attach(
        &self,
        core: &Core,
        user: &str,
        register: hubbub_server::engine::Register<'_>,
    ) -> Result<Vec<Arc<Publication>>, EngineError> {
        register();
        let count = {
            let mut c = self.counts.lock();
            let n = c.entry(user.to_owned()).or_default();
            *n += 1;
            *n
        };
        let keys = &core.keys;
        let mut conn = core.conn(user);
        let (lines, now): (Vec<Vec<u8>>, u64) = core
            .call(
                "user attach",
                USER_ATTACH
                    .key(keys.online(user))
                    .key(keys.queue(user))
                    .key(keys.alive(core.node_id()))
                    .arg(core.node_id())
                    .arg(count)
                    .arg(ms(core.presence_ttl))
                    .arg(ms(core.heartbeat * 3))
                    .invoke_async(&mut conn),
            )
            .await?;
        let oldest = now.saturating_sub(ms(core.user_queue_ttl));
        Ok(lines
            .iter()
            .filter_map(|l| wire::split_queued(l).filter(|(t, _)| *t >= oldest))
            .filter_map(|(_, l)| match wire::decode_for_user(l) {
                Ok((_, p)) => Some(Arc::new(p)),
                Err(e) => {
                    tracing::warn!(error = %e, "undecodable queued user event skipped");
                    None
                }
            })
            .collect())
    }

    /// `Broker::detach_user`: one connection fewer; Redis is told in a
    /// task (the periodic refresh repairs any reordering).
    pub(crate) fn detach(&self, core: &Arc<Core>, user: &str) {
        let left = {
            let mut c = self.counts.lock();
            let Some(n) = c.get_mut(user) else { return };
            *n = n.saturating_sub(1);
            let left = *n;
            if left == 0 {
                c.remove(user);
            }
            left
        };
        let core = core.clone();
        let user = user.to_owned();
        tokio::spawn(async move {
            let mut conn = core.conn(&user);
            let key = core.keys.online(&user);
            let node = core.node_id().to_owned();
            let mut cmd = if left == 0 {
                redis::cmd("HDEL")
            } else {
                redis::cmd("HSET")
            };
            cmd.arg(&key).arg(&node);
            if left > 0 {
                cmd.arg(left);
            }
            if let Err(e) = core
                .call::<()>("user detach", cmd.query_async(&mut conn))
                .await
            {
                tracing::debug!(error = %e, "user detach not recorded; it expires");
            }
        });
    }

    /// Refreshes every registration of this node (they expire otherwise).
    pub(crate) async fn refresh(&self, core: &Core) {
        let all: Vec<(String, usize)> = self
            .counts
            .lock()
            .iter()
            .map(|(u, n)| (u.clone(), *n))
            .collect();
        let ttl = ms(core.presence_ttl);
        let node = core.node_id();
        for (i, shard) in core.shards.iter().enumerate() {
            let mut pipe = redis::pipe();
            let mut any = false;
            for (user, n) in &all {
                if core.shard_index(user) != i {
                    continue;
                }
                let key = core.keys.online(user);
                pipe.cmd("HSET").arg(&key).arg(node).arg(*n).ignore();
                pipe.cmd("PEXPIRE").arg(&key).arg(ttl).ignore();
                any = true;
            }
            if any {
                let mut conn = shard.conn.clone();
                if let Err(e) = core
                    .call::<()>("user refresh", pipe.query_async(&mut conn))
                    .await
                {
                    tracing::warn!(error = %e, "user registrations not refreshed");
                }
            }
        }
    }
}

/// Refreshes this node's user registrations every third of the TTL while
/// the broker lives.
pub(crate) async fn refresh_loop(core: Arc<Core>, users: Weak<LocalUsers>) {
    let mut tick = tokio::time::interval(core.presence_ttl / 3);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(users) = users.upgrade() else { return };
        users.refresh(&core).await;
    }
}
