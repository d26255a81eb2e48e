//! Per-channel state of the connection task: who listens, the last
//! position delivered, and the rules that make delivery exactly-once per
//! offset (no duplicate, and no silent skip: a gap is an item).

use std::collections::HashMap;

use hubbub_protocol::{EventMessage, JsonData, StreamPosition, SubscribedChannel};
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;

use crate::events::{Gap, GapReason, SubEvent};

/// One [`crate::Subscription`]'s end in the connection task. Its buffer is
/// bounded; when full, events are dropped and the drop is reported as a
/// [`GapReason::Overflow`] gap before the next event that fits, so the
/// connection task never waits on a slow reader.
pub(crate) struct Sink {
    pub id: u64,
    pub tx: mpsc::Sender<SubEvent>,
    /// Set while dropping: the last position this sink got.
    lost_after: Option<Option<StreamPosition>>,
}

impl Sink {
    pub fn new(id: u64, tx: mpsc::Sender<SubEvent>) -> Self {
        Sink {
            id,
            tx,
            lost_after: None,
        }
    }

    /// Hands over one item; false when the subscription is gone.
    fn deliver(&mut self, item: SubEvent, prev: &Option<StreamPosition>) -> bool {
        if let Some(last_seen) = self.lost_after.clone() {
            let gap = SubEvent::Gap(Gap {
                reason: GapReason::Overflow,
                last_seen,
                resume_after: prev.clone(),
            });
            match self.tx.try_send(gap) {
                Ok(()) => self.lost_after = None,
                Err(TrySendError::Full(_)) => return true,
                Err(TrySendError::Closed(_)) => return false,
            }
        }
        match self.tx.try_send(item) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.lost_after = Some(prev.clone());
                true
            }
            Err(TrySendError::Closed(_)) => false,
        }
    }
}

/// What kind of membership a channel is, which decides how it is restored
/// after a reconnect and left when its last subscription goes.
#[derive(Clone)]
pub(crate) enum Membership {
    /// `subscribe` (resubscribed with `since`).
    Channel { event_types: Option<Vec<String>> },
    /// `join_room` (rejoined with the same `info`).
    Room {
        room: String,
        info: Option<JsonData>,
    },
}

/// A channel the application listens to.
pub(crate) struct Chan {
    pub sinks: Vec<Sink>,
    pub last: Option<StreamPosition>,
    pub membership: Membership,
}

impl Chan {
    pub fn new(membership: Membership, sink: Sink) -> Self {
        Chan {
            sinks: vec![sink],
            last: None,
            membership,
        }
    }

    /// Whether offsets may legitimately skip (an `event_types` filter).
    fn filtered(&self) -> bool {
        matches!(
            &self.membership,
            Membership::Channel {
                event_types: Some(_)
            }
        )
    }

    fn fan_out(&mut self, item: SubEvent, prev: &Option<StreamPosition>) {
        self.sinks.retain_mut(|s| s.deliver(item.clone(), prev));
    }

    /// Applies the `subscribed` reply for this channel. `since` is the
    /// position the subscribe asked to recover from.
    pub fn subscribed(&mut self, sc: &SubscribedChannel, since: Option<StreamPosition>) {
        let now = StreamPosition {
            offset: sc.offset,
            epoch: sc.epoch.clone(),
        };
        match since {
            Some(_) if sc.recovered => {
                let prev = self.last.clone();
                self.fan_out(SubEvent::Recovered { missed: sc.missed }, &prev);
            }
            Some(since) => {
                let gap = SubEvent::Gap(Gap {
                    reason: GapReason::NotRecovered,
                    last_seen: Some(since),
                    resume_after: Some(now.clone()),
                });
                self.fan_out(gap, &Some(now.clone()));
                self.last = Some(now);
            }
            None => self.last = Some(now),
        }
    }

    /// Delivers an event unless its offset was delivered already; reports
    /// a jump in offsets (outside a filter) as a gap first.
    pub fn event(&mut self, ev: EventMessage) {
        let prev = self.last.clone();
        if let (Some(offset), Some(epoch)) = (ev.offset, ev.epoch.as_deref()) {
            let skipped = match &prev {
                Some(l) if l.epoch == epoch => {
                    if offset <= l.offset {
                        return; // a duplicate (recovered part overlapping the live part)
                    }
                    offset > l.offset + 1 && !self.filtered()
                }
                // Another history: whatever came between is unknown.
                Some(_) => true,
                None => false,
            };
            if skipped {
                let gap = SubEvent::Gap(Gap {
                    reason: GapReason::Skipped,
                    last_seen: prev.clone(),
                    resume_after: Some(StreamPosition {
                        offset: offset - 1,
                        epoch: epoch.to_owned(),
                    }),
                });
                self.fan_out(gap, &prev);
            }
            self.last = Some(StreamPosition {
                offset,
                epoch: epoch.to_owned(),
            });
        }
        self.fan_out(SubEvent::Event(ev), &prev);
    }

    /// The hub ended the membership: tell every subscription.
    pub fn ended(&mut self) {
        let prev = self.last.clone();
        self.fan_out(SubEvent::Unsubscribed, &prev);
    }
}

/// Every channel the application listens to, by name.
pub(crate) type Chans = HashMap<String, Chan>;

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(offset: Option<u64>, epoch: &str) -> EventMessage {
        EventMessage {
            channel: "c".into(),
            event_type: "e".into(),
            data: JsonData::null(),
            message_id: "m".into(),
            offset,
            epoch: offset.map(|_| epoch.into()),
            publisher: None,
        }
    }

    fn chan(buffer: usize, event_types: Option<Vec<String>>) -> (Chan, mpsc::Receiver<SubEvent>) {
        let (tx, rx) = mpsc::channel(buffer);
        (
            Chan::new(Membership::Channel { event_types }, Sink::new(1, tx)),
            rx,
        )
    }

    fn drain(rx: &mut mpsc::Receiver<SubEvent>) -> Vec<String> {
        let mut out = Vec::new();
        while let Ok(item) = rx.try_recv() {
            out.push(match item {
                SubEvent::Event(e) => format!("{:?}", e.offset),
                SubEvent::Gap(g) => format!(
                    "gap {:?} {:?}->{:?}",
                    g.reason,
                    g.last_seen.map(|p| p.offset),
                    g.resume_after.map(|p| p.offset)
                ),
                SubEvent::Recovered { missed } => format!("recovered {missed}"),
                SubEvent::Unsubscribed => "end".into(),
            });
        }
        out
    }

    fn pos(offset: u64, epoch: &str) -> StreamPosition {
        StreamPosition {
            offset,
            epoch: epoch.into(),
        }
    }

    fn reply(offset: u64, epoch: &str, recovered: bool, missed: u64) -> SubscribedChannel {
        SubscribedChannel {
            channel: "c".into(),
            offset,
            epoch: epoch.into(),
            recovered,
            missed,
        }
    }

    #[test]
    fn duplicates_are_dropped_and_jumps_are_gaps() {
        let (mut c, mut rx) = chan(16, None);
        c.subscribed(&reply(0, "x", false, 0), None);
        for o in [1, 2, 2, 1, 3, 5, 5, 6] {
            c.event(ev(Some(o), "x"));
        }
        c.event(ev(None, "x")); // ephemeral: always delivered
        assert_eq!(
            drain(&mut rx),
            [
                "Some(1)",
                "Some(2)",
                "Some(3)",
                "gap Skipped Some(3)->Some(4)",
                "Some(5)",
                "Some(6)",
                "None"
            ]
        );
    }

    #[test]
    fn recovery_outcomes() {
        let (mut c, mut rx) = chan(16, None);
        c.subscribed(&reply(2, "x", false, 0), None);
        c.event(ev(Some(3), "x"));
        // Reconnected: recovered from 3, two missed follow (one overlaps).
        c.subscribed(&reply(5, "x", true, 2), Some(pos(3, "x")));
        for o in [3, 4, 5] {
            c.event(ev(Some(o), "x"));
        }
        // Reconnected to a new history: a gap, then the new epoch's count.
        c.subscribed(&reply(0, "y", false, 0), Some(pos(5, "x")));
        c.event(ev(Some(1), "y"));
        assert_eq!(
            drain(&mut rx),
            [
                "Some(3)",
                "recovered 2",
                "Some(4)",
                "Some(5)",
                "gap NotRecovered Some(5)->Some(0)",
                "Some(1)"
            ]
        );
    }

    #[test]
    fn a_filter_skips_offsets_without_gaps() {
        let (mut c, mut rx) = chan(16, Some(vec!["e".into()]));
        c.subscribed(&reply(0, "x", false, 0), None);
        c.event(ev(Some(2), "x"));
        c.event(ev(Some(7), "x"));
        assert_eq!(drain(&mut rx), ["Some(2)", "Some(7)"]);
    }

    #[test]
    fn a_slow_reader_gets_a_gap_not_a_stall() {
        let (mut c, mut rx) = chan(2, None);
        c.subscribed(&reply(0, "x", false, 0), None);
        for o in 1..=5 {
            c.event(ev(Some(o), "x"));
        }
        assert_eq!(drain(&mut rx), ["Some(1)", "Some(2)"]);
        c.event(ev(Some(6), "x"));
        assert_eq!(drain(&mut rx), ["gap Overflow Some(2)->Some(5)", "Some(6)"]);
        c.event(ev(Some(7), "x"));
        assert_eq!(drain(&mut rx), ["Some(7)"]);
    }
}
