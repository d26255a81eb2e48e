//! Graph-algorithm jobs (PROTOCOL.md section 7), an application on the
//! hub's public library API: the hub's core knows nothing of graphs.
//!
//! - [`graph`]: the graph a job runs on, built from `parameters.graph`
//!   (validated, or generated: `grid`, `random_geometric`,
//!   `barabasi_albert`, seeded and reproducible).
//! - [`algo`]: the six algorithms, each run step by step and telling an
//!   [`algo::Observer`] what it does, so that a job can stream it; without
//!   streaming they are plain algorithms, checked against `petgraph`.

pub mod algo;
pub mod graph;
