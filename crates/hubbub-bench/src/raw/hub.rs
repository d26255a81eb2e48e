//! The raw server's sockets and its one operation: a pre-built frame (or
//! a batch of them) written to every socket with plain non-blocking writes.

use std::io::{IoSlice, Write as _};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use bytes::Bytes;

/// What the raw server did, counted as it goes.
#[derive(Default)]
pub(super) struct Counters {
    pub(super) publishes: AtomicU64,
    pub(super) writes: AtomicU64,
    pub(super) frames: AtomicU64,
    pub(super) would_block: AtomicU64,
    pub(super) dead: AtomicU64,
}

/// The subscribed sockets and the batch of frames not yet written.
pub(super) struct Hub {
    pub(super) socks: Mutex<Vec<std::net::TcpStream>>,
    pub(super) pending: Mutex<Vec<Bytes>>,
    pub(super) batch: usize,
    pub(super) threads: usize,
    pub(super) c: Counters,
}

impl Hub {
    /// Queues one frame; writes when the batch is full. Returns the number
    /// of subscribers it went (or will go) to.
    pub(super) fn publish(&self, frame: Bytes) -> usize {
        self.c.publishes.fetch_add(1, Relaxed);
        let batch = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.push(frame);
            if p.len() >= self.batch {
                std::mem::take(&mut *p)
            } else {
                Vec::new()
            }
        };
        if !batch.is_empty() {
            self.write_all(&batch);
        }
        self.socks.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Writes what the batch holds (the 1 ms flush of `--writev-batch`).
    pub(super) fn flush(&self) {
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if !batch.is_empty() {
            self.write_all(&batch);
        }
    }

    /// One write (or one vectored write) of `frames` to every socket.
    fn write_all(&self, frames: &[Bytes]) {
        let mut socks = self.socks.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = frames.iter().map(Bytes::len).sum();
        let write_chunk = |chunk: &mut [std::net::TcpStream]| -> Vec<usize> {
            let slices: Vec<IoSlice<'_>> = frames.iter().map(|f| IoSlice::new(f)).collect();
            let mut dead = Vec::new();
            for (i, s) in chunk.iter_mut().enumerate() {
                let r = if frames.len() == 1 {
                    s.write(&frames[0])
                } else {
                    s.write_vectored(&slices)
                };
                self.c.writes.fetch_add(1, Relaxed);
                match r {
                    Ok(n) if n == total => {
                        self.c.frames.fetch_add(frames.len() as u64, Relaxed);
                    }
                    Ok(_) => {
                        self.c.would_block.fetch_add(1, Relaxed);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        self.c.would_block.fetch_add(1, Relaxed);
                    }
                    Err(_) => dead.push(i),
                }
            }
            dead
        };
        let threads = self.threads.clamp(1, socks.len().max(1));
        let mut dead: Vec<usize> = Vec::new();
        if threads == 1 {
            dead = write_chunk(&mut socks);
        } else {
            let per = socks.len().div_ceil(threads);
            std::thread::scope(|sc| {
                let handles: Vec<_> = socks
                    .chunks_mut(per)
                    .enumerate()
                    .map(|(k, ch)| {
                        let f = &write_chunk;
                        sc.spawn(move || f(ch).into_iter().map(|i| i + k * per).collect::<Vec<_>>())
                    })
                    .collect();
                for h in handles {
                    dead.extend(h.join().unwrap_or_default());
                }
            });
        }
        dead.sort_unstable();
        for i in dead.into_iter().rev() {
            socks.swap_remove(i);
            self.c.dead.fetch_add(1, Relaxed);
        }
    }
}
