//! One metric's values in three tiers: raw points of the last hour, minute
//! buckets of the last day and hour buckets (with a quantile sketch) of the
//! last week. Every tier grows only as the budget allows and says from
//! which time on it holds every value (its `gap`), so that a query uses the
//! finest tier that is complete for its window.

use std::collections::VecDeque;

use crate::agg::Agg;
use crate::alerts::{AlertState, Rule};
use crate::budget::{room, Budget};
use crate::sketch::{Sketch, BIN_BYTES};
use crate::window::{floor, DAY, HOUR, MINUTE, RETENTION};

/// A minute's values, rolled up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    pub start: i64,
    pub agg: Agg,
}

/// An hour's values, rolled up, with their quantile sketch.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HourBucket {
    pub start: i64,
    pub agg: Agg,
    pub sketch: Sketch,
}

/// A bucket of a tier.
pub(crate) trait Tiered {
    fn start(&self) -> i64;
    /// Bytes it holds beyond its own size (a sketch's bins).
    fn extra_bytes(&self) -> usize;
}

impl Tiered for Bucket {
    fn start(&self) -> i64 {
        self.start
    }
    fn extra_bytes(&self) -> usize {
        0
    }
}

impl Tiered for HourBucket {
    fn start(&self) -> i64 {
        self.start
    }
    fn extra_bytes(&self) -> usize {
        self.sketch.bytes()
    }
}

/// Most minute buckets: a day and the minute under way.
pub(crate) const MAX_MINUTES: usize = (DAY / MINUTE) as usize + 1;
/// Most hour buckets: a week and the hour under way.
pub(crate) const MAX_HOURS: usize = (RETENTION / HOUR) as usize + 1;

/// Per-series limits from the configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub raw_max_points: usize,
    pub z_window: usize,
}

/// One metric.
#[derive(Debug, Default)]
pub(crate) struct Series {
    /// Raw points of the last hour (by the newest timestamp), sorted.
    pub raw: VecDeque<(i64, f64)>,
    /// `raw` holds every value recorded with a timestamp above this.
    pub raw_gap: i64,
    pub minutes: VecDeque<Bucket>,
    pub minute_gap: i64,
    pub hours: VecDeque<HourBucket>,
    pub hour_gap: i64,
    /// The last values in arrival order, for the z-score.
    pub zwin: VecDeque<f64>,
    /// The greatest timestamp recorded.
    pub newest: i64,
    /// The value of the greatest timestamp (the later one on a tie).
    pub last: Option<(i64, f64)>,
    /// The store-wide number of the last value recorded here: orders the
    /// log against a snapshot.
    pub seq: u64,
    /// Bytes charged for the tiers' storage.
    pub held: usize,
    pub rule: Rule,
    pub state: AlertState,
    /// Dropped from the store (aged out): a recorder that still holds it
    /// looks the series up again.
    pub dead: bool,
}

impl Series {
    /// An empty series under `rule`.
    pub fn new(rule: Rule) -> Series {
        Series {
            raw_gap: i64::MIN,
            minute_gap: i64::MIN,
            hour_gap: i64::MIN,
            newest: i64::MIN,
            rule,
            ..Series::default()
        }
    }

    /// Stores one value in every tier that keeps its time (the alert
    /// judgement is the caller's, before: it reads `zwin` without it).
    pub fn insert(&mut self, ts: i64, v: f64, seq: u64, limits: Limits, budget: &Budget) {
        self.seq = seq;
        if ts >= self.newest {
            self.newest = ts;
            self.last = Some((ts, v));
        }
        self.insert_raw(ts, v, limits.raw_max_points, budget);
        let newest = self.newest;
        let keep = floor(newest, MINUTE) - DAY;
        let make = || Bucket {
            start: floor(ts, MINUTE),
            agg: Agg::default(),
        };
        if let Some(b) = bucket(
            &mut self.minutes,
            floor(ts, MINUTE),
            MINUTE,
            MAX_MINUTES,
            keep,
            &mut self.minute_gap,
            budget,
            &mut self.held,
            make,
        ) {
            b.agg.add(v);
        }
        let keep = floor(newest, HOUR) - RETENTION;
        let make = || HourBucket {
            start: floor(ts, HOUR),
            agg: Agg::default(),
            sketch: Sketch::default(),
        };
        if let Some(b) = bucket(
            &mut self.hours,
            floor(ts, HOUR),
            HOUR,
            MAX_HOURS,
            keep,
            &mut self.hour_gap,
            budget,
            &mut self.held,
            make,
        ) {
            b.agg.add(v);
            let held = &mut self.held;
            b.sketch.add(v, |bins| {
                let ok = budget.try_charge(bins * BIN_BYTES);
                if ok {
                    *held += bins * BIN_BYTES;
                }
                ok
            });
        }
        if self.zwin.len() >= limits.z_window {
            self.zwin.pop_front();
        }
        let mut zheld = 0;
        if room(&mut self.zwin, limits.z_window, budget, &mut zheld) {
            self.zwin.push_back(v);
        }
        self.held += zheld;
    }

    fn insert_raw(&mut self, ts: i64, v: f64, max: usize, budget: &Budget) {
        let floor = self.newest.saturating_sub(HOUR);
        while let Some(&(t, _)) = self.raw.front() {
            if t > floor {
                break;
            }
            self.raw.pop_front();
            self.raw_gap = self.raw_gap.max(t);
        }
        if ts <= floor {
            self.raw_gap = self.raw_gap.max(ts);
            return;
        }
        if !room(&mut self.raw, max, budget, &mut self.held) {
            match self.raw.pop_front() {
                Some((t, _)) => self.raw_gap = self.raw_gap.max(t),
                None => {
                    self.raw_gap = self.raw_gap.max(ts);
                    return;
                }
            }
        }
        if ts <= self.raw_gap {
            return;
        }
        match self.raw.back() {
            Some(&(t, _)) if t > ts => {
                let p = self.raw.partition_point(|p| p.0 <= ts);
                self.raw.insert(p, (ts, v));
            }
            _ => self.raw.push_back((ts, v)),
        }
    }

    /// Drops what is older than its tier keeps at `now` (values stop
    /// arriving, time goes on); the bytes freed go back to the budget.
    pub fn trim(&mut self, now: i64, budget: &Budget) {
        let floor_raw = now.saturating_sub(HOUR);
        while let Some(&(t, _)) = self.raw.front() {
            if t > floor_raw {
                break;
            }
            self.raw.pop_front();
            self.raw_gap = self.raw_gap.max(t);
        }
        evict_before(
            &mut self.minutes,
            floor(now, MINUTE) - DAY,
            MINUTE,
            &mut self.minute_gap,
            budget,
            &mut self.held,
        );
        evict_before(
            &mut self.hours,
            floor(now, HOUR) - RETENTION,
            HOUR,
            &mut self.hour_gap,
            budget,
            &mut self.held,
        );
    }

    /// Whether nothing is left.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty() && self.minutes.is_empty() && self.hours.is_empty()
    }
}

fn evict_before<B: Tiered>(
    v: &mut VecDeque<B>,
    keep: i64,
    span: i64,
    gap: &mut i64,
    budget: &Budget,
    held: &mut usize,
) {
    while v.front().is_some_and(|b| b.start() < keep) {
        if let Some(b) = v.pop_front() {
            evicted(&b, span, gap, budget, held);
        }
    }
}

fn evicted<B: Tiered>(b: &B, span: i64, gap: &mut i64, budget: &Budget, held: &mut usize) {
    *gap = (*gap).max(b.start() + span - 1);
    let extra = b.extra_bytes();
    budget.release(extra);
    *held -= extra;
}

/// The bucket starting at `start` in tier `v`, made if need be: evicting
/// the tier's oldest when it cannot grow; None (the tier's gap moved past
/// it) when the value is older than everything the tier can keep.
#[allow(clippy::too_many_arguments)]
fn bucket<'a, B: Tiered>(
    v: &'a mut VecDeque<B>,
    start: i64,
    span: i64,
    max: usize,
    keep: i64,
    gap: &mut i64,
    budget: &Budget,
    held: &mut usize,
    make: impl FnOnce() -> B,
) -> Option<&'a mut B> {
    evict_before(v, keep, span, gap, budget, held);
    if start < keep || start + span - 1 <= *gap {
        *gap = (*gap).max(start + span - 1);
        return None;
    }
    let mut p = v.partition_point(|b| b.start() < start);
    if p < v.len() && v[p].start() == start {
        return v.get_mut(p);
    }
    if !room(v, max, budget, held) {
        if p == 0 {
            *gap = (*gap).max(start + span - 1);
            return None;
        }
        if let Some(b) = v.pop_front() {
            evicted(&b, span, gap, budget, held);
        }
        p -= 1;
    }
    v.insert(p, make());
    v.get_mut(p)
}
