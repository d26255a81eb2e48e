//! The memory budget: every structure of the store asks it before it
//! grows, so the bytes held never pass `memory_budget_bytes`, whatever the
//! number of series (docs/metrics.md, "Memory").

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Bytes allowed and bytes charged.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: usize,
    used: AtomicUsize,
}

impl Budget {
    pub fn new(limit: usize) -> Budget {
        Budget {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// Charges `n` bytes if they fit; false (nothing charged) if not.
    pub fn try_charge(&self, n: usize) -> bool {
        self.used
            .fetch_update(Relaxed, Relaxed, |u| {
                u.checked_add(n).filter(|&t| t <= self.limit)
            })
            .is_ok()
    }

    /// Gives `n` charged bytes back.
    pub fn release(&self, n: usize) {
        self.used.fetch_sub(n, Relaxed);
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.used.load(Relaxed)
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

/// Makes room for one more element in `v` (at most `max` elements) if the
/// budget allows, doubling its capacity; `held` tracks the bytes charged
/// for it. False when full: the caller evicts or drops, as its tier says.
pub(crate) fn room<T>(v: &mut VecDeque<T>, max: usize, budget: &Budget, held: &mut usize) -> bool {
    if v.len() < v.capacity() {
        return true;
    }
    if v.len() >= max {
        return false;
    }
    let size = std::mem::size_of::<T>();
    let add = v.capacity().clamp(4, 4096).min(max - v.len());
    if !budget.try_charge(add * size) {
        return false;
    }
    let before = v.capacity();
    v.reserve_exact(add);
    let got = v.capacity() - before;
    if got > add {
        // The allocator gave more than asked: charge it, or give it back.
        if budget.try_charge((got - add) * size) {
            *held += (got - add) * size;
        } else {
            v.shrink_to(before + add);
        }
    }
    *held += add * size;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_over() {
        let b = Budget::new(1000);
        let mut held = 0;
        let mut v: VecDeque<u64> = VecDeque::new();
        while room(&mut v, usize::MAX, &b, &mut held) {
            v.push_back(1);
        }
        assert!(b.used() <= 1000);
        assert_eq!(b.used(), held);
        assert!(v.capacity() * 8 <= held);
    }
}
