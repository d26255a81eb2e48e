//! A quantile sketch of relative accuracy 1% (the DDSketch idea, Masson et
//! al. 2019): each value falls in a bin `[γ^(k-1), γ^k)` of its magnitude,
//! γ = 1.01 / 0.99, and a quantile is answered with the middle of the bin
//! holding its rank, within 1% of the value of that rank. Bins are kept
//! sparse (a bucket of a steady metric uses a handful), merge by adding
//! counts, and cover magnitudes 1e-9 to 1e15; smaller magnitudes count as
//! zero and larger ones land in the last bin (documented in
//! docs/metrics.md).

/// ln γ, γ = (1 + α) / (1 - α), α = 0.01.
const LN_GAMMA: f64 = 0.020_000_666_706_669_336;
/// Smallest bin exponent: γ^KMIN ≈ 1e-9.
const KMIN: i32 = -1036;
/// Largest bin exponent: γ^KMAX ≈ 1e15.
const KMAX: i32 = 1727;
const SIDE: i32 = KMAX - KMIN + 1;
/// The index of zero; negatives below it, positives above.
const ZERO: i32 = SIDE;
/// Indexes in all: both signs and zero.
pub(crate) const INDEXES: usize = (2 * SIDE + 1) as usize;
/// Magnitudes below this count as zero.
const TINY: f64 = 1e-9;

/// The relative accuracy of a sketched quantile.
pub const RELATIVE_ACCURACY: f64 = 0.01;

/// Bytes one bin takes (what the memory budget charges).
pub(crate) const BIN_BYTES: usize = std::mem::size_of::<(u16, u32)>();

/// The ordered bin index of `x`.
pub(crate) fn index(x: f64) -> u16 {
    let m = x.abs();
    if m < TINY {
        return ZERO as u16;
    }
    let k = ((m.ln() / LN_GAMMA).ceil() as i32).clamp(KMIN, KMAX);
    let i = if x > 0.0 {
        ZERO + 1 + (k - KMIN)
    } else {
        ZERO - 1 - (k - KMIN)
    };
    i as u16
}

/// The value a bin stands for: the point of the bin whose relative
/// distance to both ends is α.
pub(crate) fn value(i: u16) -> f64 {
    let i = i as i32;
    if i == ZERO {
        return 0.0;
    }
    let (sign, k) = if i > ZERO {
        (1.0, i - ZERO - 1 + KMIN)
    } else {
        (-1.0, ZERO - 1 - i + KMIN)
    };
    let upper = (k as f64 * LN_GAMMA).exp();
    sign * upper * 2.0 / (1.0 + LN_GAMMA.exp())
}

/// Sparse bins, sorted by index.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Sketch {
    pub bins: Vec<(u16, u32)>,
}

impl Sketch {
    /// Counts `x` if its bin exists or `may_grow` allows a new one; else
    /// counts it in the nearest existing bin (the budget is full: a coarser
    /// answer rather than more memory). Returns whether a bin was added.
    pub fn add(&mut self, x: f64, may_grow: impl FnOnce(usize) -> bool) -> bool {
        let i = index(x);
        match self.bins.binary_search_by_key(&i, |b| b.0) {
            Ok(p) => {
                self.bins[p].1 += 1;
                false
            }
            Err(p) => {
                if self.bins.len() < self.bins.capacity() || may_grow(self.grow_by()) {
                    if self.bins.len() == self.bins.capacity() {
                        self.bins.reserve_exact(self.grow_by());
                    }
                    self.bins.insert(p, (i, 1));
                    true
                } else {
                    let p = p.min(self.bins.len().saturating_sub(1));
                    if let Some(b) = self.bins.get_mut(p) {
                        b.1 += 1;
                    }
                    false
                }
            }
        }
    }

    /// Bins the next growth adds (the budget is asked for them first).
    pub fn grow_by(&self) -> usize {
        self.bins.capacity().clamp(4, 64)
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bins.capacity() * BIN_BYTES
    }

    /// Adds the counts into a dense array of [`INDEXES`] counters.
    pub fn merge_into(&self, dense: &mut [u64]) {
        for &(i, c) in &self.bins {
            dense[i as usize] += c as u64;
        }
    }
}

/// The value of 1-based rank `rank` among the counts of `dense`.
pub(crate) fn rank_value(dense: &[u64], rank: u64) -> Option<f64> {
    let mut seen = 0;
    for (i, &c) in dense.iter().enumerate() {
        seen += c;
        if c > 0 && seen >= rank {
            return Some(value(i as u16));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_ordered_and_accurate() {
        let xs = [-1e12, -3.5, -1e-3, 0.0, 1e-8, 0.25, 1.0, 2.0, 99.9, 1e14];
        let mut last = 0u16;
        for (n, &x) in xs.iter().enumerate() {
            let i = index(x);
            assert!(n == 0 || i > last, "{x}");
            last = i;
            let v = value(i);
            assert!(
                (v - x).abs() <= RELATIVE_ACCURACY * x.abs() + 1e-12,
                "{x} -> {v}"
            );
        }
    }
}
