//! The connection task's write side: the frames taken from the outbox and
//! not yet written, written with one plain or vectored write at a time.
//! Kept apart from the rest of the task so that it can go on writing while
//! the session, which the task also owns, runs a command that waits.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;

use super::KEEP_WQ_AFTER_WRITES;
use crate::conn::handle::{ConnHandle, ConnStats};

const MAX_IOVECS: usize = 128;

/// Frames on their way to the socket.
#[derive(Default)]
pub(super) struct Outgoing {
    /// Frames taken from the outbox (or queued by the task itself), in
    /// wire order.
    pub(super) wq: VecDeque<Bytes>,
    /// How much of the front frame is written.
    pub(super) wpos: usize,
}

impl Outgoing {
    /// While a command runs: writes what is queued and what the outbox
    /// receives until the socket would block or nothing is left. A close
    /// request is left in the outbox for the task to act on once the
    /// command is done (it stays there until taken).
    pub(super) fn poll_keep_writing<S: AsyncWrite + Unpin>(
        &mut self,
        io: &mut S,
        handle: &ConnHandle,
        recent_writes: &mut u32,
        cx: &mut Context<'_>,
    ) -> io::Result<()> {
        loop {
            if self.wq.is_empty() {
                handle.take(&mut self.wq, cx.waker());
                if self.wq.is_empty() {
                    return Ok(());
                }
            }
            match self.poll_write_some(io, &handle.stats, recent_writes, cx) {
                Poll::Ready(r) => r?,
                Poll::Pending => return Ok(()),
            }
        }
    }

    /// One write of as many queued frames as fit: a plain `write` for a
    /// single frame (the common case at low rates, where `writev`'s iovec
    /// import is measurable), a vectored write for several.
    /// `recent_writes` counts writes since the timer last fired (see
    /// `KEEP_WQ_AFTER_WRITES`); it lives in the task, not here, where it
    /// would pad this struct.
    pub(super) fn poll_write_some<S: AsyncWrite + Unpin>(
        &mut self,
        io: &mut S,
        stats: &ConnStats,
        recent_writes: &mut u32,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<()>> {
        let written = if self.wq.len() == 1 {
            let frame = &self.wq[0][self.wpos..];
            ready!(Pin::new(&mut *io).poll_write(cx, frame))?
        } else {
            let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
            let mut n = 0;
            for (i, frame) in self.wq.iter().take(MAX_IOVECS).enumerate() {
                slices[i] = IoSlice::new(if i == 0 { &frame[self.wpos..] } else { frame });
                n = i + 1;
            }
            ready!(Pin::new(&mut *io).poll_write_vectored(cx, &slices[..n]))?
        };
        if written == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        *recent_writes = recent_writes.saturating_add(1);
        stats.add_sent_bytes(written);
        let mut left = written;
        let mut frames = 0u64;
        while left > 0 {
            let Some(front) = self.wq.front() else { break };
            let rem = front.len() - self.wpos;
            if left >= rem {
                left -= rem;
                self.wq.pop_front();
                self.wpos = 0;
                frames += 1;
            } else {
                self.wpos += left;
                left = 0;
            }
        }
        stats.add_sent_frames(frames);
        if self.wq.is_empty() && *recent_writes < KEEP_WQ_AFTER_WRITES {
            // An idle connection keeps no queue allocation.
            self.wq = VecDeque::new();
        }
        if self.wq.is_empty() {
            ready!(Pin::new(&mut *io).poll_flush(cx))?;
        }
        Poll::Ready(Ok(()))
    }
}
