//! This node's inbox (other nodes hand it events for its users) and the
//! refresh that keeps its users registered.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_nats::client::RequestErrorKind;
use async_nats::HeaderMap;
use futures_util::StreamExt;
use hubbub_server::engine::{EngineError, Publication};

use super::{back_off, ATTEMPTS};
use crate::names::{hex, unhex};
use crate::wire::{
    decode_publication, decode_reach, encode_publication, encode_reach, now_ms, UserRecord,
    USER_HEADER,
};
use crate::Inner;

/// What a node said about delivering to a user.
pub(super) enum Reach {
    Took(usize),
    /// No live connection of the user there (or no such node).
    Absent,
    /// No answer in time.
    Unknown,
}

impl Inner {
    /// Asks `node` to deliver `p` to `user`'s connections there.
    pub(super) async fn reach(&self, node: &str, user: &str, p: &Arc<Publication>) -> Reach {
        if node == self.node_id() {
            return match self.sink().map(|s| s.deliver_to_user(user, p)) {
                Ok(Some(n)) => Reach::Took(n),
                _ => Reach::Absent,
            };
        }
        let mut headers = HeaderMap::new();
        headers.insert(USER_HEADER, hex(user));
        let link = &self.link;
        let ask = link.client.request_with_headers(
            link.names.inbox(node),
            headers,
            encode_publication(p),
        );
        match link.within("deliver to user", ask).await {
            Ok(Ok(m)) => match decode_reach(&m.payload) {
                Ok(Some(n)) => Reach::Took(n),
                Ok(None) => Reach::Absent,
                Err(_) => Reach::Unknown,
            },
            Ok(Err(e)) if e.kind() == RequestErrorKind::NoResponders => Reach::Absent,
            Ok(Err(e)) => {
                tracing::warn!(node, error = %e, "node did not answer for its user");
                Reach::Unknown
            }
            Err(e) => {
                tracing::warn!(node, error = %e, "node did not answer for its user");
                Reach::Unknown
            }
        }
    }

    /// Says again that this node's users are live here: the record of a
    /// user connected longer than the stream keeps messages would expire,
    /// and an attach whose append failed is completed here.
    pub(crate) async fn refresh_users(&self, stale: Duration) {
        let users: Vec<String> = self.users.live.lock().keys().cloned().collect();
        let me = self.node_id().to_owned();
        let stale = stale.as_millis() as u64;
        futures_util::stream::iter(users)
            .for_each_concurrent(16, |user| {
                let me = me.clone();
                async move {
                    let _turn = self.users.turn(&user).await;
                    for attempt in 0..ATTEMPTS {
                        if attempt > 0 {
                            back_off(attempt).await;
                        }
                        let Ok((seq, state)) = self.user_state(&user).await else {
                            return;
                        };
                        if state
                            .live
                            .get(&me)
                            .is_some_and(|at| now_ms().saturating_sub(*at) < stale)
                            || !self.users.live.lock().contains_key(&user)
                        {
                            return;
                        }
                        let mut next = state;
                        next.live.insert(me.clone(), now_ms());
                        let record = UserRecord {
                            state: next,
                            event: None,
                            at: now_ms(),
                        };
                        match self.write_user(&user, seq, &record).await {
                            Ok(Some(_)) | Err(_) => return,
                            Ok(None) => {}
                        }
                    }
                }
            })
            .await;
    }
}

/// Answers other nodes asking this one to deliver to its users.
pub(crate) async fn inbox_loop(weak: Weak<Inner>) {
    let Some((link, subject)) = weak
        .upgrade()
        .map(|i| (i.link.clone(), i.link.names.inbox(i.node_id())))
    else {
        return;
    };
    let mut sub = loop {
        let subscribed = async {
            let sub = link
                .ask("inbox", link.client.subscribe(subject.clone()))
                .await?;
            link.ask("inbox", link.client.flush()).await?;
            Ok::<_, EngineError>(sub)
        };
        match subscribed.await {
            Ok(sub) => break sub,
            Err(e) => {
                tracing::warn!(error = %e, "node inbox not subscribed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
                if weak.strong_count() == 0 {
                    return;
                }
            }
        }
    };
    if let Some(inner) = weak.upgrade() {
        inner.users.inbox_ready.send_replace(true);
    }
    loop {
        let m = tokio::select! {
            m = sub.next() => m,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {
                if weak.strong_count() == 0 { return }
                continue;
            }
        };
        let Some(m) = m else { return };
        let Some(inner) = weak.upgrade() else { return };
        let user = m
            .headers
            .as_ref()
            .and_then(|h| h.get(USER_HEADER))
            .and_then(|v| unhex(v.as_str()));
        let reached = match (user, decode_publication(&m.payload, None)) {
            (Some(user), Ok(p)) => inner
                .sink()
                .ok()
                .and_then(|s| s.deliver_to_user(&user, &Arc::new(p))),
            (_, Err(e)) => {
                tracing::warn!(error = %e, "undecodable user event skipped");
                None
            }
            (None, _) => {
                tracing::warn!("user event without a user skipped");
                None
            }
        };
        if let Some(reply) = m.reply {
            let _ = link
                .within(
                    "inbox reply",
                    link.client.publish(reply, encode_reach(reached)),
                )
                .await;
        }
    }
}

/// Keeps this node's users registered, every third of the queue TTL (and
/// at once after the link came back).
pub(crate) async fn refresh_loop(weak: Weak<Inner>, now: Arc<tokio::sync::Notify>) {
    let Some(period) = weak.upgrade().map(|i| {
        (i.settings.queue_ttl / 3).clamp(Duration::from_secs(1), Duration::from_secs(600))
    }) else {
        return;
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        let forced = tokio::select! {
            _ = tick.tick() => false,
            _ = now.notified() => true,
        };
        let Some(inner) = weak.upgrade() else { return };
        // After a cut, every record is checked; else only stale ones.
        inner
            .refresh_users(if forced { Duration::ZERO } else { period })
            .await;
    }
}
