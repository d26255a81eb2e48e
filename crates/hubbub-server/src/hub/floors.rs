//! What a subscriber was given when its sync ended, so that a networked
//! engine handing back a publication late cannot deliver it twice.
//!
//! A sync ends at the newest offset its history read named. With the
//! memory engine nothing at or below it can arrive afterwards (numbering
//! and delivery are one step; its broker says so, `delivers_late`, and
//! no floor is kept), but a networked engine delivers from its own
//! subscription, which may lag the read: a publication the read
//! already included can reach the hub after the sync ended. Each
//! subscriber whose sync ended keeps its floor (offset and epoch) here
//! until the first newer publication of the channel passes it; a
//! publication of the same epoch at or below the floor is skipped.
//!
//! Per channel, and empty almost always: the hot path pays one relaxed
//! load while it is.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use super::Publication;

type Map = HashMap<u64, (u64, Arc<str>)>;

/// The floors of one channel's subscribers, by subscriber.
#[derive(Default)]
pub(super) struct Floors {
    any: AtomicBool,
    map: Mutex<Map>,
}

/// One delivery round's view of the floors.
pub(super) struct Round<'a> {
    floors: &'a Floors,
    map: MutexGuard<'a, Map>,
}

impl Floors {
    /// Subscriber `seq` was given everything up to `offset` of `epoch`.
    pub(super) fn set(&mut self, seq: u64, offset: u64, epoch: &str) {
        self.map.get_mut().insert(seq, (offset, Arc::from(epoch)));
        *self.any.get_mut() = true;
    }

    /// Subscriber `seq` left.
    pub(super) fn forget(&mut self, seq: u64) {
        let map = self.map.get_mut();
        if map.remove(&seq).is_some() && map.is_empty() {
            *self.any.get_mut() = false;
        }
    }

    /// The floors for one delivery, or `None` (the usual case) when no
    /// subscriber has one.
    pub(super) fn round(&self) -> Option<Round<'_>> {
        self.any.load(Relaxed).then(|| Round {
            floors: self,
            map: self.map.lock(),
        })
    }
}

impl Round<'_> {
    /// Whether subscriber `seq` was already given `p`; a newer numbered
    /// publication ends the subscriber's floor.
    pub(super) fn already_given(&mut self, seq: u64, p: &Publication) -> bool {
        let Some(offset) = p.event.offset else {
            return false;
        };
        let Some((floor, epoch)) = self.map.get(&seq) else {
            return false;
        };
        if offset <= *floor && p.event.epoch.as_deref() == Some(&**epoch) {
            return true;
        }
        self.map.remove(&seq);
        false
    }
}

impl Drop for Round<'_> {
    fn drop(&mut self) {
        if self.map.is_empty() {
            self.floors.any.store(false, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hubbub_protocol::JsonData;

    fn p(offset: Option<u64>, epoch: &str) -> Arc<Publication> {
        Publication::make(
            "c",
            "e",
            JsonData::from_serialize(&1),
            "m".into(),
            offset,
            offset.map(|_| Arc::from(epoch)),
            None,
            1,
        )
    }

    #[test]
    fn a_late_copy_is_skipped_until_a_newer_publication_passes() {
        let mut f = Floors::default();
        assert!(f.round().is_none(), "nothing to check: no lock taken");
        f.set(7, 10, "e1");
        let mut r = f.round().expect("a floor");
        assert!(r.already_given(7, &p(Some(9), "e1")), "given by the read");
        assert!(r.already_given(7, &p(Some(10), "e1")));
        assert!(!r.already_given(8, &p(Some(9), "e1")), "another subscriber");
        assert!(
            !r.already_given(7, &p(None, "")),
            "no offset: never skipped"
        );
        assert!(!r.already_given(7, &p(Some(11), "e1")), "newer: delivered");
        assert!(
            !r.already_given(7, &p(Some(9), "e1")),
            "the floor ended with it"
        );
        drop(r);
        assert!(f.round().is_none(), "empty again");
    }

    #[test]
    fn another_epoch_is_never_skipped() {
        let mut f = Floors::default();
        f.set(1, 50, "old");
        let mut r = f.round().expect("a floor");
        assert!(!r.already_given(1, &p(Some(3), "new")));
        drop(r);
        f.set(2, 5, "e");
        f.forget(2);
        assert!(f.round().is_none());
    }
}
