//! Count, mean, spread and extremes of a set of values, mergeable: what a
//! bucket keeps of the values it rolled up, so a window's statistics cost
//! one merge per bucket instead of one step per value.

/// The moments of some values (Welford's form: mean and the sum of squared
/// deviations, not a raw sum of squares, which cancels catastrophically
/// for values far from zero).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Agg {
    pub count: u64,
    pub mean: f64,
    /// Sum of squared deviations from `mean`.
    pub m2: f64,
    pub min: f64,
    pub max: f64,
}

impl Default for Agg {
    fn default() -> Self {
        Agg {
            count: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl Agg {
    /// Adds one value.
    pub fn add(&mut self, x: f64) {
        self.count += 1;
        let d = x - self.mean;
        self.mean += d / self.count as f64;
        self.m2 += d * (x - self.mean);
        self.min = self.min.min(x);
        self.max = self.max.max(x);
    }

    /// Adds another set (Chan et al.'s parallel combination).
    pub fn merge(&mut self, o: &Agg) {
        if o.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *o;
            return;
        }
        let n = (self.count + o.count) as f64;
        let d = o.mean - self.mean;
        self.mean += d * o.count as f64 / n;
        self.m2 += o.m2 + d * d * self.count as f64 * o.count as f64 / n;
        self.count += o.count;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }

    /// Population standard deviation (divides by n, not n - 1): the spread
    /// of the values held, not an estimate for a larger population.
    pub fn stddev(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            (self.m2.max(0.0) / self.count as f64).sqrt()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Agg;

    #[test]
    fn merge_equals_adding_all() {
        let xs: Vec<f64> = (0..100)
            .map(|i| (i as f64 * 0.37).sin() * 1e6 + 1e9)
            .collect();
        let mut all = Agg::default();
        xs.iter().for_each(|&x| all.add(x));
        let (mut a, mut b) = (Agg::default(), Agg::default());
        xs[..37].iter().for_each(|&x| a.add(x));
        xs[37..].iter().for_each(|&x| b.add(x));
        a.merge(&b);
        assert_eq!(a.count, all.count);
        assert!((a.mean - all.mean).abs() < 1e-3);
        assert!((a.stddev() - all.stddev()).abs() / all.stddev() < 1e-9);
    }
}
