//! Generated graphs, so that a demo or a benchmark needs no data of its
//! own: undirected, ids `Int(0..n)`, every node with a layout, every edge
//! weighing its Euclidean length. Seeded with ChaCha8 and computed with
//! IEEE-exact operations only (no `sin`, `cos` or `ln` from the platform's
//! maths library), so the same seed gives the same graph everywhere.

use hubbub_protocol::graph::{GeneratedGraph, Generator, NodeId};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::{check_edges, check_nodes, Graph, GraphError, Limits, NodeIndex};

/// Generates `spec` within `limits`; the node count is checked first.
pub(super) fn generate(spec: &GeneratedGraph, limits: &Limits) -> Result<Graph, GraphError> {
    if spec.nodes == 0 {
        return Err(GraphError(
            "a generated graph needs at least one node".into(),
        ));
    }
    check_nodes(spec.nodes, limits)?;
    // `check_nodes` keeps it below u32::MAX.
    let n = spec.nodes as usize;
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let (coords, edges) = match spec.generator {
        Generator::Grid => grid(n, limits)?,
        Generator::RandomGeometric => random_geometric(n, &mut rng, limits)?,
        Generator::BarabasiAlbert => barabasi_albert(n, &mut rng, limits)?,
    };
    let ids = (0..n as i64).map(NodeId::Int).collect();
    let coords = coords.into_iter().map(Some).collect();
    Ok(Graph::assemble(
        false,
        ids,
        NodeIndex::Sequential,
        coords,
        edges,
    ))
}

type Parts = (Vec<(f64, f64)>, Vec<(u32, u32, f64)>);

fn dist(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (a.0 - b.0, a.1 - b.1);
    (dx * dx + dy * dy).sqrt()
}

/// Smallest `s` with `s * s >= n`, exactly (no float rounding).
fn ceil_sqrt(n: usize) -> usize {
    let mut s = (n as f64).sqrt() as usize;
    while s * s < n {
        s += 1;
    }
    while s > 1 && (s - 1) * (s - 1) >= n {
        s -= 1;
    }
    s.max(1)
}

/// A square grid, `side = ceil(sqrt(n))`, row by row: node `i` at
/// `(i % side, i / side)`, edges to the right and to the lower neighbour.
fn grid(n: usize, limits: &Limits) -> Result<Parts, GraphError> {
    let side = ceil_sqrt(n);
    let (rows, rem) = (n / side, n % side);
    let right = rows * (side - 1) + rem.saturating_sub(1);
    let down = n.saturating_sub(side);
    check_edges((right + down) as u64, limits)?;
    let coords = (0..n)
        .map(|i| ((i % side) as f64, (i / side) as f64))
        .collect();
    let mut edges = Vec::with_capacity(right + down);
    for i in 0..n {
        if i % side + 1 < side && i + 1 < n {
            edges.push((i as u32, i as u32 + 1, 1.0));
        }
        if i + side < n {
            edges.push((i as u32, (i + side) as u32, 1.0));
        }
    }
    Ok((coords, edges))
}

/// `ln x` for `x >= 1` with IEEE-exact steps only: halvings, then
/// `2 atanh((y - 1) / (y + 1))` by its series, for a radius that is the same
/// on every platform.
fn ln(mut x: f64) -> f64 {
    let mut halvings = 0u32;
    while x >= 2.0 {
        x /= 2.0;
        halvings += 1;
    }
    let s = (x - 1.0) / (x + 1.0);
    let (s2, mut term, mut sum) = (s * s, s, 0.0);
    for k in 0..40 {
        sum += term / f64::from(2 * k + 1);
        term *= s2;
    }
    2.0 * sum + f64::from(halvings) * std::f64::consts::LN_2
}

/// The expected degree of an inner node of a random geometric graph of `n`
/// nodes: `2.5 ln n` (well above the connectivity threshold `ln n`, for
/// the nodes near the border and the corners, which see less of the disc),
/// at most 18, so that 200,000 nodes stay under 2,000,000 edges; 18 keeps
/// it connected with high probability up to far beyond the node limit.
pub(crate) fn geometric_degree(n: usize) -> f64 {
    (2.5 * ln(n.max(1) as f64)).min(18.0)
}

/// `n` points uniform in the unit square, joined when closer than `r`,
/// `pi r^2 n` = [`geometric_degree`]; pairs found through a bucket grid of
/// cells at least `r` wide, so the work is linear in `n` and the edges.
fn random_geometric(n: usize, rng: &mut ChaCha8Rng, limits: &Limits) -> Result<Parts, GraphError> {
    let coords: Vec<(f64, f64)> = (0..n)
        .map(|_| (rng.gen::<f64>(), rng.gen::<f64>()))
        .collect();
    let r2 = geometric_degree(n) / (std::f64::consts::PI * n as f64);
    let r = r2.sqrt();
    // Cells per side: each at least r wide, at most about one per node.
    let k = ((1.0 / r) as usize).clamp(1, ceil_sqrt(n));
    let cell_of = |c: f64| ((c * k as f64) as usize).min(k - 1);
    let cell = |p: (f64, f64)| cell_of(p.1) * k + cell_of(p.0);
    // Points by cell (counting sort, stable: by number within a cell).
    let mut start = vec![0usize; k * k + 1];
    for &p in &coords {
        start[cell(p) + 1] += 1;
    }
    for c in 0..k * k {
        start[c + 1] += start[c];
    }
    let mut next = start.clone();
    let mut members = vec![0u32; n];
    for (i, &p) in coords.iter().enumerate() {
        let c = cell(p);
        members[next[c]] = i as u32;
        next[c] += 1;
    }
    let expected = (n as f64 * geometric_degree(n) / 2.0) as usize;
    let mut edges = Vec::with_capacity(expected.min(limits.max_edges) + 16);
    for (i, &p) in coords.iter().enumerate() {
        let (cx, cy) = (cell_of(p.0), cell_of(p.1));
        for ny in cy.saturating_sub(1)..=(cy + 1).min(k - 1) {
            for nx in cx.saturating_sub(1)..=(cx + 1).min(k - 1) {
                let c = ny * k + nx;
                for &j in &members[start[c]..start[c + 1]] {
                    if j as usize <= i {
                        continue;
                    }
                    let q = coords[j as usize];
                    let (dx, dy) = (p.0 - q.0, p.1 - q.1);
                    let d2 = dx * dx + dy * dy;
                    if d2 < r2 {
                        if edges.len() == limits.max_edges {
                            return Err(GraphError(format!(
                                "the generated graph has more than {} edges, the limit",
                                limits.max_edges
                            )));
                        }
                        edges.push((i as u32, j, d2.sqrt()));
                    }
                }
            }
        }
    }
    Ok((coords, edges))
}

/// Preferential attachment, two edges per new node: a triangle of the
/// first three nodes, then each node joins two distinct earlier nodes drawn
/// with probability proportional to their degree (no duplicate edges).
/// Layout: node `v` at distance `0.5 sqrt((v + 1) / n)` from the centre of
/// the unit square (old hubs in the middle), in the direction of its first
/// neighbour turned by a random amount, so that neighbourhoods stay
/// together and edges stay short.
fn barabasi_albert(n: usize, rng: &mut ChaCha8Rng, limits: &Limits) -> Result<Parts, GraphError> {
    let m = match n {
        1 => 0,
        2 => 1,
        _ => 2 * n - 3,
    };
    check_edges(m as u64, limits)?;
    let mut dirs: Vec<(f64, f64)> = Vec::with_capacity(n);
    let h = 0.75f64.sqrt();
    for d in [(1.0, 0.0), (-0.5, h), (-0.5, -h)].into_iter().take(n) {
        dirs.push(d);
    }
    let mut edges: Vec<(u32, u32, f64)> = Vec::with_capacity(m);
    // Every edge's two ends: a uniform pick is a pick by degree.
    let mut ends: Vec<u32> = Vec::with_capacity(2 * m);
    let initial: &[(u32, u32)] = match n {
        1 => &[],
        2 => &[(0, 1)],
        _ => &[(0, 1), (1, 2), (0, 2)],
    };
    for &(a, b) in initial {
        edges.push((a, b, 0.0));
        ends.extend([a, b]);
    }
    for v in 3..n as u32 {
        let len = ends.len() as u64;
        let a = ends[rng.gen_range(0..len) as usize];
        let mut b = a;
        while b == a {
            b = ends[rng.gen_range(0..len) as usize];
        }
        edges.push((a, v, 0.0));
        edges.push((b, v, 0.0));
        ends.extend([a, v, b, v]);
        // Turn the first neighbour's direction by up to about 30 degrees.
        let (dx, dy) = dirs[a as usize];
        let t = (rng.gen::<f64>() - 0.5) * 1.2;
        let (ex, ey) = (dx - t * dy, dy + t * dx);
        let l = (ex * ex + ey * ey).sqrt();
        dirs.push(if l > 0.0 {
            (ex / l, ey / l)
        } else {
            (1.0, 0.0)
        });
    }
    let coords: Vec<(f64, f64)> = dirs
        .iter()
        .enumerate()
        .map(|(v, &(dx, dy))| {
            let rad = 0.5 * ((v + 1) as f64 / n as f64).sqrt();
            (0.5 + rad * dx, 0.5 + rad * dy)
        })
        .collect();
    for e in &mut edges {
        e.2 = dist(coords[e.0 as usize], coords[e.1 as usize]);
    }
    Ok((coords, edges))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_matches_the_library_closely() {
        for x in [1.0, 1.5, 2.0, 10.0, 2000.0, 100_000.0, 200_000.0, 4e9] {
            assert!((ln(x) - f64::ln(x)).abs() < 1e-12, "{x}");
        }
    }

    #[test]
    fn ceil_sqrt_is_exact() {
        for n in 1..2000usize {
            let s = ceil_sqrt(n);
            assert!(s * s >= n && (s - 1) * (s - 1) < n, "{n}");
        }
    }

    #[test]
    fn grid_counts_its_edges_exactly() {
        for n in 1..60 {
            let (c, e) = grid(n, &Limits::default()).unwrap();
            assert_eq!(c.len(), n);
            let side = ceil_sqrt(n);
            let rows = n / side;
            let right = rows * (side - 1) + (n % side).saturating_sub(1);
            assert_eq!(e.len(), right + n.saturating_sub(side));
        }
    }
}
