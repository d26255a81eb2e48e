//! The shared half of a connection: what the rest of the hub may touch.
//!
//! The connection task owns the socket; everyone else (the channel registry
//! fanning out a publication, the HTTP API disconnecting a user, shutdown)
//! reaches it only through this handle's bounded outbox. Pushing never
//! blocks and never awaits: a full outbox turns into a `slow_consumer`
//! close request instead of back-pressure on the publisher.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering::Relaxed};
use std::task::Waker;

use bytes::Bytes;
use hubbub_protocol::CloseCode;
use parking_lot::Mutex;

use crate::hub::Wire;

/// Bounds of every outbound queue (from `connection.outbound_queue_*`).
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    /// Frames waiting at most.
    pub max_messages: usize,
    /// Bytes waiting at most.
    pub max_bytes: usize,
}

/// A request to end a connection, carried to its task through the outbox.
#[derive(Debug, Clone)]
pub struct CloseRequest {
    /// Close code sent in `disconnect` and the close frame.
    pub code: CloseCode,
    /// Reason text.
    pub reason: Cow<'static, str>,
    /// Advice to the client.
    pub reconnect: bool,
    /// Drop what is queued (slow consumer) instead of sending it first.
    pub drop_queued: bool,
}

impl CloseRequest {
    /// A disconnect by the hub's owner (the HTTP API, the application):
    /// 4100 with `reason` (the code's own when none or empty), queued
    /// events first.
    pub fn api_disconnect(reason: Option<String>, reconnect: bool) -> Self {
        CloseRequest {
            code: CloseCode::API_DISCONNECT,
            reason: match reason {
                Some(r) if !r.is_empty() => Cow::Owned(r),
                _ => Cow::Borrowed(CloseCode::API_DISCONNECT.reason()),
            },
            reconnect,
            drop_queued: false,
        }
    }

    /// A close with the code's own reason and reconnect advice.
    pub fn new(code: CloseCode) -> Self {
        CloseRequest {
            code,
            reason: Cow::Borrowed(code.reason()),
            reconnect: code.reconnect(),
            drop_queued: false,
        }
    }
}

/// What happened to a pushed frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Queued.
    Queued,
    /// The connection is closing; the frame was discarded.
    Closed,
    /// This push overflowed the queue: the connection is now closing with 4009.
    Overflow,
}

#[derive(Default)]
struct Outbox {
    frames: VecDeque<Bytes>,
    /// Bytes of the frames that count against the bound (at most
    /// `outbound_queue_bytes`, which configuration keeps under 4 GiB; 32
    /// bits keep the handle as small as it was before `ahead`).
    bytes: u32,
    /// How many of `frames` were queued ahead ([`ConnHandle::push_ahead`])
    /// and so do not count against the bound.
    ahead: u32,
    waker: Option<Waker>,
    close: Option<CloseRequest>,
}

/// Connection life-cycle, as shown in `/api/stats` and `/api/connections`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ConnState {
    /// Serving.
    Open = 0,
    /// Close requested or in progress.
    Closing = 1,
}

impl ConnState {
    /// Name used in the API.
    pub fn name(self) -> &'static str {
        match self {
            ConnState::Open => "open",
            ConnState::Closing => "closing",
        }
    }
}

/// Counters of one connection, written by its task only (so relaxed atomics
/// never contend) and read by the API.
#[derive(Default)]
pub struct ConnStats {
    /// Frames written to the socket.
    pub messages_sent: AtomicU64,
    /// Data messages read from the socket.
    pub messages_received: AtomicU64,
    /// Bytes written.
    pub bytes_sent: AtomicU64,
    /// Bytes read.
    pub bytes_received: AtomicU64,
}

impl ConnStats {
    /// Counts bytes written. Only the connection task writes these
    /// counters, so a plain load and store replaces a locked add on the
    /// per-delivery path.
    pub(crate) fn add_sent_bytes(&self, n: usize) {
        let v = self.bytes_sent.load(Relaxed);
        self.bytes_sent.store(v + n as u64, Relaxed);
    }

    /// Counts frames written (see [`ConnStats::add_sent_bytes`]).
    pub(crate) fn add_sent_frames(&self, n: u64) {
        let v = self.messages_sent.load(Relaxed);
        self.messages_sent.store(v + n, Relaxed);
    }
}

/// The shared half of one connection.
pub struct ConnHandle {
    /// Per-process sequence number; with the node id it forms the connection id.
    pub seq: u64,
    /// The connection's user, if any.
    pub user_id: Option<Box<str>>,
    /// Its wire (protocol, negotiated encoding, framing): which cached
    /// frame of a publication it gets, and how its replies are built.
    pub wire: Wire,
    /// Peer address.
    pub remote_addr: SocketAddr,
    /// When it connected, ms since the epoch.
    pub connected_at_ms: u64,
    /// Traffic counters.
    pub stats: ConnStats,
    state: AtomicU8,
    outbox: Mutex<Outbox>,
    /// Channels it is subscribed to, for the API (the registry is the truth
    /// for delivery; this copy is kept in step by the connection's session).
    pub subscriptions: Mutex<Vec<std::sync::Arc<str>>>,
}

impl ConnHandle {
    /// A handle for a connection that just completed its handshake. An
    /// [`Encoding`](hubbub_protocol::Encoding) alone stands for a `/ws`
    /// client's wire ([`Wire::websocket`]).
    pub fn new(
        seq: u64,
        user_id: Option<String>,
        wire: impl Into<Wire>,
        remote_addr: SocketAddr,
        connected_at_ms: u64,
    ) -> Self {
        ConnHandle {
            seq,
            user_id: user_id.map(String::into_boxed_str),
            wire: wire.into(),
            remote_addr,
            connected_at_ms,
            stats: ConnStats::default(),
            state: AtomicU8::new(ConnState::Open as u8),
            outbox: Mutex::new(Outbox::default()),
            subscriptions: Mutex::new(Vec::new()),
        }
    }

    /// Life-cycle state.
    pub fn state(&self) -> ConnState {
        if self.state.load(Relaxed) == ConnState::Open as u8 {
            ConnState::Open
        } else {
            ConnState::Closing
        }
    }

    /// Queues a frame for the connection task. Called from the fan-out loop,
    /// so it only takes the outbox lock briefly and wakes the task only when
    /// the queue goes from empty to non-empty.
    pub fn push(&self, frame: &Bytes, limits: QueueLimits) -> Push {
        let waker;
        {
            let mut ob = self.outbox.lock();
            if ob.close.is_some() {
                return Push::Closed;
            }
            // One frame into an empty queue always fits, however large (a
            // job's `graph` event), and does not count against the byte
            // bound: the bound is on a backlog, and a single frame is none.
            let counted = ob.frames.len() - ob.ahead as usize;
            if counted > 0
                && (counted >= limits.max_messages
                    || ob.bytes as usize + frame.len() > limits.max_bytes)
            {
                ob.frames = VecDeque::new();
                ob.bytes = 0;
                ob.ahead = 0;
                ob.close = Some(CloseRequest {
                    drop_queued: true,
                    ..CloseRequest::new(CloseCode::SLOW_CONSUMER)
                });
                self.state.store(ConnState::Closing as u8, Relaxed);
                waker = ob.waker.take();
                drop(ob);
                if let Some(w) = waker {
                    w.wake();
                }
                return Push::Overflow;
            }
            ob.frames.push_back(frame.clone());
            if counted > 0 || frame.len() <= limits.max_bytes {
                // At most `max_bytes` in all, which fits 32 bits.
                ob.bytes = ob.bytes.saturating_add(frame.len() as u32);
            }
            waker = ob.waker.take();
        }
        if let Some(w) = waker {
            w.wake();
        }
        Push::Queued
    }

    /// Queues the connection's own frames behind everything already queued
    /// and ahead of anything pushed later, outside the bound: a command's
    /// reply followed by the events it recovered, or the offline queue a
    /// user's connection starts with, whose size history and the queue
    /// limits bound already. Going through the outbox rather than the
    /// transport lets the transport keep writing while a command waits.
    /// Nothing is queued once a close dropped the queue (slow consumer);
    /// after any other close request the frames still go out, ahead of
    /// `disconnect`.
    pub(crate) fn push_ahead(&self, frames: &mut dyn Iterator<Item = Bytes>) {
        let waker = {
            let mut ob = self.outbox.lock();
            if ob.close.as_ref().is_some_and(|c| c.drop_queued) {
                return;
            }
            let before = ob.frames.len();
            ob.frames.extend(frames);
            let added = u32::try_from(ob.frames.len() - before).unwrap_or(u32::MAX);
            ob.ahead = ob.ahead.saturating_add(added);
            ob.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Asks the connection to close. The first request wins; later ones are
    /// ignored so a slow-consumer close is not turned into something else.
    pub fn close(&self, request: CloseRequest) -> bool {
        let waker = {
            let mut ob = self.outbox.lock();
            if ob.close.is_some() {
                return false;
            }
            if request.drop_queued {
                ob.frames = VecDeque::new();
                ob.bytes = 0;
                ob.ahead = 0;
            }
            ob.close = Some(request);
            ob.waker.take()
        };
        self.state.store(ConnState::Closing as u8, Relaxed);
        if let Some(w) = waker {
            w.wake();
        }
        true
    }

    /// For the connection task's timer: an empty outbox gives back the
    /// allocation a busy period left in it, so a connection that went idle
    /// costs no more than one that never was busy.
    pub(crate) fn release_idle_capacity(&self) {
        let mut ob = self.outbox.lock();
        if ob.frames.is_empty() && ob.frames.capacity() > 0 {
            ob.frames = VecDeque::new();
        }
    }

    /// Frames the outbox has room for without allocating (an idle
    /// connection's should be 0).
    #[cfg(test)]
    pub(crate) fn outbox_capacity(&self) -> usize {
        self.outbox.lock().frames.capacity()
    }

    /// The close request the connection ended on, if any (read once it
    /// ended, for [`crate::Node::on_disconnect`]).
    pub(crate) fn close_request(&self) -> Option<CloseRequest> {
        self.outbox.lock().close.clone()
    }

    /// Bytes waiting in the outbox.
    pub fn queued_bytes(&self) -> usize {
        self.outbox.lock().bytes as usize
    }

    /// Empties the outbox and returns how many frames it held: lets a
    /// benchmark or measurement program stand in for the connection task.
    /// Not part of the API.
    #[doc(hidden)]
    pub fn drain_for_bench(&self) -> usize {
        let mut ob = self.outbox.lock();
        let n = ob.frames.len();
        ob.frames.clear();
        ob.bytes = 0;
        ob.ahead = 0;
        n
    }

    /// For the connection task: moves queued frames into `into` without
    /// registering for wake-ups (used when the task queues frames of its own
    /// behind what is already waiting).
    pub(crate) fn drain_into(&self, into: &mut VecDeque<Bytes>) {
        let mut ob = self.outbox.lock();
        into.extend(ob.frames.drain(..));
        ob.bytes = 0;
        ob.ahead = 0;
    }

    /// For the connection task: moves queued frames into `into`. Returns the
    /// close request if there is one and nothing is left to move; when the
    /// outbox is empty and no close is pending, stores `waker` so the next
    /// push wakes the task.
    pub(crate) fn take(&self, into: &mut VecDeque<Bytes>, waker: &Waker) -> Option<CloseRequest> {
        let mut ob = self.outbox.lock();
        if !ob.frames.is_empty() {
            if into.is_empty() {
                // Trade allocations: the task takes the outbox's and leaves
                // its own empty one (none on an idle connection, see
                // `Conn::poll_write_some`), so a busy connection allocates
                // nothing per frame.
                std::mem::swap(into, &mut ob.frames);
            } else {
                into.extend(ob.frames.drain(..));
            }
            ob.bytes = 0;
            ob.ahead = 0;
            return None;
        }
        if let Some(c) = &ob.close {
            return Some(c.clone());
        }
        match &ob.waker {
            Some(w) if w.will_wake(waker) => {}
            _ => ob.waker = Some(waker.clone()),
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubbub_protocol::Encoding;

    fn handle() -> ConnHandle {
        ConnHandle::new(1, None, Encoding::Json, ([127, 0, 0, 1], 1).into(), 0)
    }

    #[test]
    fn overflow_turns_into_slow_consumer_close() {
        let h = handle();
        let limits = QueueLimits {
            max_messages: 2,
            max_bytes: 1000,
        };
        let f = Bytes::from_static(b"abc");
        assert_eq!(h.push(&f, limits), Push::Queued);
        assert_eq!(h.push(&f, limits), Push::Queued);
        assert_eq!(h.push(&f, limits), Push::Overflow);
        assert_eq!(h.push(&f, limits), Push::Closed);
        assert_eq!(h.queued_bytes(), 0);
        let mut q = VecDeque::new();
        let close = h.take(&mut q, futures_noop_waker()).unwrap();
        assert_eq!(close.code, CloseCode::SLOW_CONSUMER);
        assert!(close.drop_queued && close.reconnect);
        assert!(q.is_empty());
    }

    #[test]
    fn byte_bound_counts() {
        let h = handle();
        let limits = QueueLimits {
            max_messages: 100,
            max_bytes: 5,
        };
        assert_eq!(h.push(&Bytes::from_static(b"abc"), limits), Push::Queued);
        assert_eq!(h.push(&Bytes::from_static(b"abc"), limits), Push::Overflow);
    }

    #[test]
    fn one_frame_larger_than_the_bound_fits_an_empty_queue() {
        let h = handle();
        let limits = QueueLimits {
            max_messages: 100,
            max_bytes: 5,
        };
        let big = Bytes::from_static(b"a frame far over the byte bound");
        assert_eq!(h.push(&big, limits), Push::Queued);
        // What follows it counts as usual.
        assert_eq!(h.push(&Bytes::from_static(b"abc"), limits), Push::Queued);
        assert_eq!(h.push(&Bytes::from_static(b"abc"), limits), Push::Overflow);
    }

    #[test]
    fn frames_queued_ahead_keep_their_place_outside_the_bound() {
        let h = handle();
        let limits = QueueLimits {
            max_messages: 2,
            max_bytes: 10,
        };
        let live = Bytes::from_static(b"live");
        assert_eq!(h.push(&live, limits), Push::Queued);
        let reply = Bytes::from_static(b"a reply longer than the byte bound");
        h.push_ahead(&mut [reply.clone(), reply.clone(), reply].into_iter());
        // Three frames ahead count for neither bound: one more live frame fits.
        assert_eq!(h.push(&live, limits), Push::Queued);
        let mut q = VecDeque::new();
        assert!(h.take(&mut q, futures_noop_waker()).is_none());
        assert_eq!(q.len(), 5);
        assert_eq!((&q[0], &q[4]), (&live, &live));
        // A slow-consumer close drops the queue and everything after it.
        h.close(CloseRequest {
            drop_queued: true,
            ..CloseRequest::new(CloseCode::SLOW_CONSUMER)
        });
        h.push_ahead(&mut std::iter::once(live.clone()));
        let mut q = VecDeque::new();
        assert!(h.take(&mut q, futures_noop_waker()).is_some());
        assert!(q.is_empty());
    }

    #[test]
    fn frames_queued_ahead_go_out_before_a_disconnect() {
        let h = handle();
        h.close(CloseRequest::api_disconnect(None, true));
        h.push_ahead(&mut std::iter::once(Bytes::from_static(b"reply")));
        let mut q = VecDeque::new();
        assert!(h.take(&mut q, futures_noop_waker()).is_none());
        assert_eq!(q.len(), 1);
    }

    fn futures_noop_waker() -> &'static Waker {
        Waker::noop()
    }
}
