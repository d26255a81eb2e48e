//! The node's interest in channels: one follower task per subscribed
//! channel ([`crate::follow`]), kept in a registry behind one mutex.
//!
//! `Broker::unsubscribe` is synchronous and must keep its order with a
//! later `subscribe` of the same channel. The registry gives that order
//! without a queue: both take the same lock, which is never held across
//! an `.await` (spawning and aborting a task are synchronous), so there is
//! no unbounded command queue to grow and no bounded one to refuse an
//! unsubscribe. Each follower is the actor of its channel: it owns the
//! channel's subscriptions and is the only one to deliver its events.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering::SeqCst};
use std::sync::Arc;

use hubbub_server::engine::{EngineError, EventSink};
use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

use crate::follow::Follow;
use crate::link::Link;
use crate::names::channel_token;

/// Where a follower's setup stands.
#[derive(Debug, Clone)]
pub(crate) enum Ready {
    /// Subscribing.
    Starting,
    /// Events published from now on reach this node.
    Up,
    /// Setup failed; the next `subscribe` starts a new follower.
    Failed(EngineError),
}

/// Waits (within the request limit) until a follower's setup ended:
/// `Ok` once events published from now on reach the node.
pub(crate) async fn until_ready(
    link: &crate::link::Link,
    mut ready: tokio::sync::watch::Receiver<Ready>,
    channel: &str,
) -> Result<(), EngineError> {
    let outcome = link
        .within(
            "subscribe",
            ready.wait_for(|r| !matches!(r, Ready::Starting)),
        )
        .await?
        .map(|r| r.clone());
    match outcome {
        Ok(Ready::Up) => Ok(()),
        Ok(Ready::Failed(e)) => Err(e),
        Ok(Ready::Starting) | Err(_) => Err(EngineError(format!(
            "subscription to {channel:?} ended while it was being set up"
        ))),
    }
}

/// What a follower is told about its history stream.
#[derive(Default)]
pub(crate) struct Wake {
    flags: AtomicU8,
    notify: Notify,
}

impl Wake {
    /// The stream may exist now (it was created, or the link came back):
    /// a follower waiting for one looks again.
    pub(crate) const APPEARED: u8 = 1;
    /// The stream may have been deleted or replaced: a follower reading
    /// one checks it is still the same.
    pub(crate) const CHANGED: u8 = 2;
    /// The link to NATS came back: a follower reading a stream recreates
    /// its consumer from the next offset due (the old one may be gone, or
    /// stalled waiting for a flow control reply that was lost).
    pub(crate) const RELINKED: u8 = 4;

    fn send(&self, what: u8) {
        self.flags.fetch_or(what, SeqCst);
        self.notify.notify_one();
    }

    /// Waits for news; returns what was said since the last call.
    pub(crate) async fn recv(&self) -> u8 {
        loop {
            let what = self.flags.swap(0, SeqCst);
            if what != 0 {
                return what;
            }
            self.notify.notified().await;
        }
    }
}

/// How far a follower delivered its channel's history stream, for reads
/// that must not return an event the follower has yet to deliver.
#[derive(Debug, Clone, Default)]
pub(crate) struct Progress {
    /// The epoch of the stream it follows, once it found one.
    pub epoch: Option<Arc<str>>,
    /// Every offset up to this one was delivered (or was never there).
    pub delivered: u64,
}

struct Entry {
    token: String,
    ready: watch::Receiver<Ready>,
    progress: watch::Receiver<Progress>,
    wake: Arc<Wake>,
    alive: Arc<AtomicBool>,
    task: tokio::task::AbortHandle,
}

impl Entry {
    fn stop(&self) {
        self.alive.store(false, SeqCst);
        self.task.abort();
    }
}

/// The channels this node follows.
#[derive(Default)]
pub(crate) struct Registry {
    map: Mutex<HashMap<String, Entry>>,
}

impl Registry {
    /// Follows `channel` (a no-op when already followed and not failed);
    /// returns where the follower's setup stands.
    pub(crate) fn follow(
        &self,
        link: &Link,
        sink: &Arc<dyn EventSink>,
        runtime: &tokio::runtime::Handle,
        channel: &str,
    ) -> watch::Receiver<Ready> {
        let mut map = self.map.lock();
        if let Some(e) = map.get(channel) {
            if !matches!(*e.ready.borrow(), Ready::Failed(_)) {
                return e.ready.clone();
            }
        }
        let token = channel_token(channel);
        let (ready_tx, ready) = watch::channel(Ready::Starting);
        let (progress_tx, progress) = watch::channel(Progress::default());
        let wake = Arc::new(Wake::default());
        let alive = Arc::new(AtomicBool::new(true));
        let follow = Follow {
            link: link.clone(),
            sink: sink.clone(),
            channel: channel.to_owned(),
            token: token.clone(),
            alive: alive.clone(),
            ready: ready_tx,
            progress: progress_tx,
            wake: wake.clone(),
        };
        let task = runtime.spawn(follow.run()).abort_handle();
        let entry = Entry {
            token,
            ready: ready.clone(),
            progress,
            wake,
            alive,
            task,
        };
        if let Some(old) = map.insert(channel.to_owned(), entry) {
            old.stop();
        }
        ready
    }

    /// Stops following `channel`.
    pub(crate) fn unfollow(&self, channel: &str) {
        if let Some(e) = self.map.lock().remove(channel) {
            e.stop();
        }
    }

    /// The delivery progress of `channel`'s follower, if it is followed.
    pub(crate) fn progress(&self, channel: &str) -> Option<watch::Receiver<Progress>> {
        self.map.lock().get(channel).map(|e| e.progress.clone())
    }

    /// Tells `channel`'s follower its history stream may exist now.
    pub(crate) fn wake(&self, channel: &str) {
        if let Some(e) = self.map.lock().get(channel) {
            e.wake.send(Wake::APPEARED);
        }
    }

    /// Tells the followers of channels named by `token` that a stream of
    /// that name was created, deleted or changed (`what`).
    pub(crate) fn wake_token(&self, token: &str, what: u8) {
        for e in self.map.lock().values().filter(|e| e.token == token) {
            e.wake.send(what);
        }
    }

    /// Tells every follower the link was cut and is back: one waiting for
    /// a stream looks again (a creation may have gone unheard), one
    /// reading a stream starts a new consumer.
    pub(crate) fn wake_all(&self) {
        for e in self.map.lock().values() {
            e.wake.send(Wake::APPEARED | Wake::RELINKED);
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        for e in self.map.get_mut().values() {
            e.stop();
        }
    }
}
