//! Events for users: delivered live through the inboxes of the nodes where
//! the user is connected, else queued for the user's next connection.
//!
//! Each user has one subject in the `<prefix>_users` stream. Every message
//! on it carries the user's whole state ([`crate::wire::UserState`]: the nodes where
//! the user is live, how far the queue was handed over) and, for a queued
//! event, the event. Every change is a compare-and-append: it is written
//! only if the subject's last sequence is still the one the writer read
//! (`Nats-Expected-Last-Subject-Sequence`), else the writer reads again.
//! That single order per user is what makes the attach guarantee hold:
//!
//! * `attach_user` registers the connection on this node first, then
//!   appends "live here", then appends "handed over up to S" where S is
//!   the last sequence it read, and returns the events queued up to S.
//! * `send_to_user` reads the state. If it names live nodes, it asks each
//!   (its inbox, or this node's sink directly) to deliver; any that took
//!   it means delivered live. Otherwise it appends the event, expecting
//!   the sequence it read.
//!
//! An event sent concurrently with an attach is thus either appended
//! before the attach's hand-over (which then returns it: an append after
//! the read fails the hand-over's expectation, which reads again), or its
//! sender read the state after "live here" (or failed its expectation
//! against it and read again), saw the node live and delivered through
//! it, where the connection is already registered: returned or delivered,
//! never both, never neither.
//!
//! Queued events stay in the stream once handed over (the state says how
//! far); a user's subject is purged only when no node has the user live
//! and nothing is queued, so no purge can race a hand-over (which happens
//! while its node is listed live).
//!
//! Limits: a node that does not answer in time counts as "unknown"; when
//! no node took the event it is queued, and the silent node may have
//! delivered it too. A node that answers "not here" (or has no inbox: it
//! is gone) is dropped from the state on the next write.

mod inbox;
mod record;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use hubbub_server::engine::{EngineError, Publication, Register, SendOutcome};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::wire::{now_ms, UserRecord};
use crate::Inner;
use inbox::Reach;

/// Records a user's subject keeps beside a full queue, so that the
/// records written while a queue is handed over do not push out its
/// oldest events.
const SLACK: i64 = 16;

/// Tries of one compare-and-append before giving up.
const ATTEMPTS: u64 = 32;

/// The users side of the engine's state.
pub(crate) struct Users {
    /// Live connections per user on this node.
    live: Mutex<HashMap<String, usize>>,
    /// One change at a time per user from this node, so that its own
    /// changes do not fail each other's expectations (other nodes' still
    /// can; then the loser reads again).
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// This node's inbox listens.
    pub inbox_ready: watch::Sender<bool>,
    pub dropped: AtomicU64,
    /// Messages in the users stream at the last refresh (queued events
    /// and one record per known user).
    pub queued: AtomicU64,
}

impl Default for Users {
    fn default() -> Self {
        Users {
            live: Mutex::default(),
            turns: Mutex::default(),
            inbox_ready: watch::Sender::new(false),
            dropped: AtomicU64::new(0),
            queued: AtomicU64::new(0),
        }
    }
}

/// This node's turn to change one user's record; the next waits.
struct Turn<'a> {
    users: &'a Users,
    user: &'a str,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Users {
    async fn turn<'a>(&'a self, user: &'a str) -> Turn<'a> {
        let lock = self
            .turns
            .lock()
            .entry(user.to_owned())
            .or_default()
            .clone();
        Turn {
            users: self,
            user,
            guard: Some(lock.lock_owned().await),
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut turns = self.users.turns.lock();
        if turns
            .get(self.user)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            turns.remove(self.user);
        }
    }
}

/// After a failed expectation: a short random pause, longer each time,
/// so that nodes racing on one user do not keep colliding.
async fn back_off(attempt: u64) {
    let ms = rand::random::<u64>() % (1 + attempt.min(25) * 2);
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

impl Inner {
    pub(crate) async fn send_to_user(
        &self,
        user: &str,
        p: Arc<Publication>,
    ) -> Result<SendOutcome, EngineError> {
        self.sink()?;
        let _turn = self.users.turn(user).await;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                back_off(attempt).await;
            }
            let (seq, state) = self.user_state(user).await?;
            let asks = state.live.keys().map(|node| {
                let p = &p;
                async move { (node, self.reach(node, user, p).await) }
            });
            let answers = futures_util::future::join_all(asks).await;
            let mut next = state.clone();
            let mut connections = 0;
            let mut live = false;
            for (node, reach) in answers {
                match reach {
                    Reach::Took(n) => {
                        live = true;
                        connections += n;
                    }
                    Reach::Absent => {
                        next.live.remove(node);
                    }
                    Reach::Unknown => {}
                }
            }
            if live {
                return Ok(SendOutcome {
                    connections,
                    queued: false,
                });
            }
            let size = self.settings.queue_size as u64;
            if size == 0 {
                return Ok(SendOutcome {
                    connections: 0,
                    queued: false,
                });
            }
            let overflow = next.queued >= size;
            next.queued = (next.queued + 1).min(size);
            let record = UserRecord::queueing(next, &p, now_ms());
            if self.write_user(user, seq, &record).await?.is_some() {
                if overflow {
                    self.users.dropped.fetch_add(1, Relaxed);
                }
                return Ok(SendOutcome {
                    connections: 0,
                    queued: true,
                });
            }
        }
        Err(EngineError(format!(
            "user {user:?}: too many concurrent changes"
        )))
    }

    pub(crate) async fn attach_user(
        &self,
        user: &str,
        register: Register<'_>,
    ) -> Result<Vec<Arc<Publication>>, EngineError> {
        self.sink()?;
        // The connection is registered before this node says the user is
        // live here, so whoever reads "live here" finds it.
        register();
        *self.users.live.lock().entry(user.to_owned()).or_default() += 1;
        // And the inbox must listen before anyone is told to use it.
        let mut ready = self.users.inbox_ready.subscribe();
        self.link
            .within("node inbox", ready.wait_for(|r| *r))
            .await?
            .map_err(|_| EngineError("node inbox closed".into()))?;
        let me = self.node_id().to_owned();
        let _turn = self.users.turn(user).await;
        // First "live here": from then on every send delivers through this
        // node instead of queueing, so the queue stops growing and the
        // hand-over below does not race a stream of sends.
        let (mut seq, mut state) = self.user_state(user).await?;
        let mut attempt = 0;
        while !state.live.contains_key(&me) {
            let mut next = state.clone();
            next.live.insert(me.clone(), now_ms());
            let record = UserRecord {
                state: next.clone(),
                event: None,
                at: now_ms(),
            };
            if let Some(new) = self.write_user(user, seq, &record).await? {
                (seq, state) = (new, next);
                break;
            }
            attempt += 1;
            if attempt == ATTEMPTS {
                return Err(EngineError(format!(
                    "user {user:?}: too many concurrent changes"
                )));
            }
            back_off(attempt).await;
            (seq, state) = self.user_state(user).await?;
        }
        // Then the hand-over: what was queued up to `seq`, marked taken.
        for attempt in 1..=ATTEMPTS {
            if state.queued == 0 {
                return Ok(Vec::new());
            }
            let events = self.queued_events(user, &state, seq).await?;
            let mut next = state;
            next.drained = seq;
            next.queued = 0;
            let record = UserRecord {
                state: next,
                event: None,
                at: now_ms(),
            };
            if self.write_user(user, seq, &record).await?.is_some() {
                return Ok(events);
            }
            back_off(attempt).await;
            (seq, state) = self.user_state(user).await?;
        }
        Err(EngineError(format!(
            "user {user:?}: too many concurrent changes"
        )))
    }

    pub(crate) fn detach_user(self: &Arc<Self>, user: &str) {
        let last = {
            let mut live = self.users.live.lock();
            match live.get_mut(user) {
                Some(n) if *n > 1 => {
                    *n -= 1;
                    false
                }
                Some(_) => {
                    live.remove(user);
                    true
                }
                None => false,
            }
        };
        if last {
            let inner = self.clone();
            let user = user.to_owned();
            self.runtime.spawn(async move {
                if let Err(e) = inner.deregister(&user).await {
                    tracing::debug!(error = %e, "user not deregistered; nodes asking will drop this one");
                }
            });
        }
    }

    /// Takes this node out of `user`'s live nodes, unless a connection of
    /// the user attached here again meanwhile.
    async fn deregister(&self, user: &str) -> Result<(), EngineError> {
        let me = self.node_id().to_owned();
        let _turn = self.users.turn(user).await;
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                back_off(attempt).await;
            }
            if self.users.live.lock().contains_key(user) {
                return Ok(());
            }
            let (seq, state) = self.user_state(user).await?;
            if !state.live.contains_key(&me) {
                return Ok(());
            }
            let mut next = state;
            next.live.remove(&me);
            let forgotten = next.live.is_empty() && next.queued == 0;
            let record = UserRecord {
                state: next,
                event: None,
                at: now_ms(),
            };
            if let Some(new) = self.write_user(user, seq, &record).await? {
                if forgotten {
                    // Nothing left to know of the user: its subject goes.
                    self.purge_user(user, new + 1);
                }
                return Ok(());
            }
        }
        Err(EngineError(format!(
            "user {user:?}: too many concurrent changes"
        )))
    }
}

pub(crate) use inbox::{inbox_loop, refresh_loop};
pub(crate) use record::users_stream_config;
