//! Compressed sparse rows: the adjacency the algorithms walk, three flat
//! arrays instead of a vector per node, so that 200,000 nodes cost three
//! allocations and a walk stays in cache.

/// An adjacency: the neighbours of node `u` are
/// `targets[offsets[u]..offsets[u + 1]]`, with the weights beside them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Csr {
    offsets: Vec<usize>,
    targets: Vec<u32>,
    weights: Vec<f64>,
}

impl Csr {
    /// The adjacency of `n` nodes from `edges` (`(from, to, weight)`, every
    /// endpoint below `n`), in the edges' order per node. `forward` adds
    /// `from -> to`, `backward` adds `to -> from`; both for an undirected
    /// graph, where a self-loop is added once (it is one edge out of its
    /// node, not two).
    pub(crate) fn build(n: usize, edges: &[(u32, u32, f64)], forward: bool, backward: bool) -> Csr {
        let mut offsets = vec![0usize; n + 1];
        let both = forward && backward;
        for &(a, b, _) in edges {
            if forward {
                offsets[a as usize + 1] += 1;
            }
            if backward && !(both && a == b) {
                offsets[b as usize + 1] += 1;
            }
        }
        for i in 0..n {
            offsets[i + 1] += offsets[i];
        }
        let total = offsets[n];
        let mut next = offsets.clone();
        let mut targets = vec![0u32; total];
        let mut weights = vec![0f64; total];
        for &(a, b, w) in edges {
            if forward {
                let k = next[a as usize];
                targets[k] = b;
                weights[k] = w;
                next[a as usize] += 1;
            }
            if backward && !(both && a == b) {
                let k = next[b as usize];
                targets[k] = a;
                weights[k] = w;
                next[b as usize] += 1;
            }
        }
        Csr {
            offsets,
            targets,
            weights,
        }
    }

    /// The neighbours of `u` and the weights of the edges to them.
    #[inline]
    pub(crate) fn neighbors(&self, u: u32) -> (&[u32], &[f64]) {
        let (a, b) = (self.offsets[u as usize], self.offsets[u as usize + 1]);
        (&self.targets[a..b], &self.weights[a..b])
    }

    /// How many edges leave `u`.
    #[inline]
    pub(crate) fn degree(&self, u: u32) -> usize {
        self.offsets[u as usize + 1] - self.offsets[u as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undirected_adds_both_directions_and_self_loops_once() {
        let csr = Csr::build(3, &[(0, 1, 2.0), (1, 1, 3.0), (2, 0, 4.0)], true, true);
        assert_eq!(csr.neighbors(0), (&[1, 2][..], &[2.0, 4.0][..]));
        assert_eq!(csr.neighbors(1), (&[0, 1][..], &[2.0, 3.0][..]));
        assert_eq!(csr.neighbors(2), (&[0][..], &[4.0][..]));
        assert_eq!(csr.degree(1), 2);
    }

    #[test]
    fn directed_forward_and_backward() {
        let edges = [(0, 1, 1.0), (1, 1, 1.0), (2, 0, 1.0)];
        let out = Csr::build(3, &edges, true, false);
        assert_eq!(out.neighbors(0).0, &[1]);
        assert_eq!(out.neighbors(1).0, &[1]);
        let inn = Csr::build(3, &edges, false, true);
        assert_eq!(inn.neighbors(0).0, &[2]);
        assert_eq!(inn.neighbors(1).0, &[0, 1]);
        assert_eq!(inn.neighbors(2).0, &[] as &[u32]);
    }
}
