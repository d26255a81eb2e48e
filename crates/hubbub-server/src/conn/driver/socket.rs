//! The connection task's socket I/O: what it waits for between commands
//! (the write side in [`super::outgoing`]), and reading into the
//! per-thread scratch buffer and parsing frames out of it.

use std::cell::RefCell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::{Conn, Event};

const SCRATCH_LEN: usize = 64 * 1024;
/// Keep at most this much capacity in an emptied read buffer.
const KEEP_RBUF: usize = 4096;

thread_local! {
    static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_LEN].into_boxed_slice());
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    pub(super) fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
        sleep: Pin<&mut Sleep>,
    ) -> Poll<Event> {
        // Write side: drain the outbox into the socket until it would block.
        loop {
            if self.out.wq.is_empty() {
                if let Some(req) = self.session.handle.take(&mut self.out.wq, cx.waker()) {
                    if self.closing.is_none() {
                        return Poll::Ready(Event::CloseRequested(req));
                    }
                }
                if self.out.wq.is_empty() {
                    if self.closing.as_ref().is_some_and(|c| c.when_flushed) {
                        return Poll::Ready(Event::Flushed);
                    }
                    break;
                }
            }
            match self.out.poll_write_some(
                &mut self.io,
                &self.session.handle.stats,
                &mut self.recent_writes,
                cx,
            ) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Event::Failed(e)),
                Poll::Pending => break,
            }
        }
        // Read side.
        if !self.read_eof {
            match self.poll_read_frames(cx) {
                Poll::Ready(Ok(0)) => {
                    self.read_eof = true;
                    return Poll::Ready(Event::Eof);
                }
                Poll::Ready(Ok(_)) => {
                    self.last_inbound = Instant::now();
                    if !self.inbox.is_empty() || self.failed.is_some() {
                        return Poll::Ready(Event::Inbound);
                    }
                    // Only part of a frame arrived: read again so we register
                    // interest (a Ready read may leave no waker behind).
                    cx.waker().wake_by_ref();
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Event::Failed(e)),
                Poll::Pending => {}
            }
        }
        if sleep.poll(cx).is_ready() {
            return Poll::Ready(Event::Timer);
        }
        Poll::Pending
    }

    pub(super) fn poll_flush_all(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        while !self.out.wq.is_empty() {
            match self.out.poll_write_some(
                &mut self.io,
                &self.session.handle.stats,
                &mut self.recent_writes,
                cx,
            ) {
                Poll::Ready(r) => r?,
                Poll::Pending => break,
            }
        }
        Ok(())
    }

    /// Reads once into the thread's scratch buffer and parses what arrived.
    /// Returns the number of bytes read (0 at end of stream).
    fn poll_read_frames(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let mut rb = ReadBuf::new(&mut scratch[..]);
            ready!(Pin::new(&mut self.io).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n > 0 {
                self.session
                    .handle
                    .stats
                    .bytes_received
                    .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                self.feed(&scratch[..n]);
            }
            Poll::Ready(Ok(n))
        })
    }

    /// Parses complete frames out of `input` (appended to any kept partial
    /// frame) and keeps only the bytes of an incomplete one.
    pub(super) fn feed(&mut self, input: &[u8]) {
        if self.failed.is_some() || self.read_eof {
            return;
        }
        if self.rbuf.is_empty() {
            let used = self.parse(input);
            if used < input.len() && self.failed.is_none() {
                self.rbuf.extend_from_slice(&input[used..]);
            }
        } else {
            self.rbuf.extend_from_slice(input);
            let buf = std::mem::take(&mut self.rbuf);
            let used = self.parse(&buf);
            let mut buf = buf;
            buf.advance(used);
            self.rbuf = buf;
        }
        if self.rbuf.is_empty() && self.rbuf.capacity() > KEEP_RBUF {
            self.rbuf = BytesMut::new();
        } else if let Some(need) = self.decoder.needed(&self.rbuf) {
            self.rbuf.reserve(need);
        }
    }

    fn parse(&mut self, mut buf: &[u8]) -> usize {
        let mut used = 0;
        loop {
            match self.decoder.decode(buf) {
                Ok((0, _)) => return used,
                Ok((n, msg)) => {
                    used += n;
                    buf = &buf[n..];
                    if let Some(m) = msg {
                        self.inbox.push(m);
                    }
                }
                Err(e) => {
                    self.failed = Some(e);
                    return used;
                }
            }
        }
    }
}
