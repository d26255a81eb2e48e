//! The queue of an in-process subscriber: what a connection's outbox is to
//! a socket, for application code that subscribes through the node.
//! Bounded like an outbox; an overflow empties it and marks it lagged, and
//! the subscriber catches up from history (see `node::Subscription`), as a
//! client closed for being slow reconnects and recovers.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use super::Publication;
use crate::conn::handle::Push;

/// What the subscriber takes next.
pub(crate) enum Popped {
    /// The next event.
    Event(Arc<Publication>),
    /// The queue overflowed: events since the last one taken were dropped.
    Lagged,
}

#[derive(Default)]
struct Inner {
    events: VecDeque<Arc<Publication>>,
    lagged: bool,
    waker: Option<Waker>,
}

/// A bounded queue of publications for one in-process subscriber.
pub(crate) struct LocalQueue {
    inner: Mutex<Inner>,
    max: usize,
}

impl LocalQueue {
    /// A queue of at most `max` events.
    pub(crate) fn new(max: usize) -> Self {
        LocalQueue {
            inner: Mutex::new(Inner::default()),
            max: max.max(1),
        }
    }

    /// Queues one event; on overflow drops everything queued and marks the
    /// queue lagged (until the subscriber has caught up, further events
    /// are dropped too).
    pub(crate) fn push(&self, p: &Arc<Publication>) -> Push {
        let waker = {
            let mut q = self.inner.lock();
            if q.lagged {
                return Push::Closed;
            }
            if q.events.len() >= self.max {
                q.events = VecDeque::new();
                q.lagged = true;
                let w = q.waker.take();
                drop(q);
                if let Some(w) = w {
                    w.wake();
                }
                return Push::Overflow;
            }
            q.events.push_back(p.clone());
            q.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Push::Queued
    }

    /// Drops everything queued and marks the queue lagged: its parked
    /// events overflowed while it was catching up.
    pub(crate) fn lag(&self) {
        let w = {
            let mut q = self.inner.lock();
            q.events = VecDeque::new();
            q.lagged = true;
            q.waker.take()
        };
        if let Some(w) = w {
            w.wake();
        }
    }

    /// Takes events again after a lag, before catching up: a lag that
    /// happens during the catch-up stays marked, and is caught up next.
    pub(crate) fn resume(&self) {
        self.inner.lock().lagged = false;
    }

    /// Queues recovered events ahead of anything released after them,
    /// outside the bound (history bounds them already).
    pub(crate) fn push_recovered(&self, events: impl IntoIterator<Item = Arc<Publication>>) {
        let mut q = self.inner.lock();
        q.events.extend(events);
        if let Some(w) = q.waker.take() {
            w.wake();
        }
    }

    /// Takes the next event, or reports a lag once it is all that is left.
    pub(crate) fn poll_pop(&self, cx: &mut Context<'_>) -> Poll<Popped> {
        let mut q = self.inner.lock();
        if let Some(p) = q.events.pop_front() {
            return Poll::Ready(Popped::Event(p));
        }
        if q.lagged {
            return Poll::Ready(Popped::Lagged);
        }
        q.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}
