//! The bounded queue between a hook that must not wait (a connection
//! task, the logging call) and the task that publishes: drop-oldest when
//! full, with a count of what was dropped.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use parking_lot::Mutex;
use tokio::sync::Notify;

/// At most `capacity` items; pushing never blocks.
pub(crate) struct Bounded<T> {
    items: Mutex<VecDeque<T>>,
    capacity: usize,
    dropped: AtomicU64,
    ready: Notify,
}

impl<T> Bounded<T> {
    pub fn new(capacity: usize) -> Self {
        Bounded {
            items: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            dropped: AtomicU64::new(0),
            ready: Notify::new(),
        }
    }

    /// Adds `item`, dropping the oldest when full (the newest tells more
    /// about now), and wakes the publishing task.
    pub fn push(&self, item: T) {
        {
            let mut q = self.items.lock();
            if q.len() >= self.capacity {
                q.pop_front();
                self.dropped.fetch_add(1, Relaxed);
            }
            q.push_back(item);
        }
        self.ready.notify_one();
    }

    /// Everything waiting, oldest first.
    pub fn take_all(&self) -> VecDeque<T> {
        std::mem::take(&mut *self.items.lock())
    }

    /// Resolves once something was pushed since the last call (at once if
    /// a push came in between).
    pub async fn pushed(&self) {
        self.ready.notified().await
    }

    /// Items dropped for room so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_the_oldest_when_full() {
        let q = Bounded::new(2);
        for i in 0..5 {
            q.push(i);
        }
        assert_eq!(q.take_all(), [3, 4]);
        assert_eq!(q.dropped(), 3);
        assert!(q.take_all().is_empty());
    }
}
