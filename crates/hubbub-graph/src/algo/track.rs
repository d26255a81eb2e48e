//! Progress bookkeeping shared by the algorithms: the counts, a fraction
//! that never goes down, and the final 1.0.

use super::{Flow, Observer, Progress};

/// What a run has done so far.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    pub(crate) step: u64,
    pub(crate) nodes: u64,
    pub(crate) edges: u64,
    fraction: f64,
}

/// A closure giving what the algorithm has found so far.
pub(crate) type Intermediate<'a> = Option<&'a dyn Fn() -> serde_json::Value>;

impl Tracker {
    /// After a unit of work: one more step, then the observer's say.
    pub(crate) fn step(
        &mut self,
        observer: &mut dyn Observer,
        fraction: f64,
        intermediate: Intermediate<'_>,
    ) -> Flow {
        self.step += 1;
        self.tick(observer, fraction, intermediate)
    }

    /// Tells the observer how far the run is without counting a step (a
    /// look-in during a long step, so that a stop is seen quickly).
    pub(crate) fn tick(
        &mut self,
        observer: &mut dyn Observer,
        fraction: f64,
        intermediate: Intermediate<'_>,
    ) -> Flow {
        if fraction > self.fraction {
            self.fraction = fraction.min(1.0);
        }
        observer.step(&Progress {
            fraction: self.fraction,
            step: self.step,
            nodes: self.nodes,
            edges: self.edges,
            intermediate,
        })
    }

    /// At the end: the fraction goes to 1.0 if the last step left it below.
    pub(crate) fn finish(
        &mut self,
        observer: &mut dyn Observer,
        intermediate: Intermediate<'_>,
    ) -> Flow {
        if self.fraction < 1.0 {
            self.tick(observer, 1.0, intermediate)
        } else {
            Flow::Continue
        }
    }
}

/// Returns [`super::Outcome::Stopped`] from the enclosing function when the
/// observer says stop.
macro_rules! check {
    ($flow:expr) => {
        if $flow == $crate::algo::Flow::Stop {
            return $crate::algo::Outcome::Stopped;
        }
    };
}
pub(crate) use check;
