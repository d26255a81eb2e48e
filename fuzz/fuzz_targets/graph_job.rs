//! `algorithm_start` parameters come from any client: whatever bytes, the
//! graph is built or refused with a message, the parameters are accepted
//! or refused, and an accepted job runs to its end, never a panic.
#![no_main]

use hubbub_graph::algo::{self, Flow, Observer, Progress};
use hubbub_graph::graph::{Graph, Limits};
use hubbub_protocol::algorithm::{Algorithm, AlgorithmParameters};
use libfuzzer_sys::fuzz_target;

struct Count(u64);

impl Observer for Count {
    fn activate(&mut self, _: u32, _: f64) {}
    fn traverse(&mut self, _: u32, _: u32, _: f64) {}
    fn path(&mut self, _: &[u32], _: f64, _: bool) {}
    fn step(&mut self, _: &Progress<'_>) -> Flow {
        // Bounded work per input: stop long runs.
        self.0 += 1;
        if self.0 > 10_000 {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(parameters) = serde_json::from_slice::<AlgorithmParameters>(data) else {
        return;
    };
    let limits = Limits {
        max_nodes: 2_000,
        max_edges: 20_000,
    };
    let Ok(graph) = Graph::build(&parameters.graph, &limits) else {
        return;
    };
    for algorithm in Algorithm::KNOWN {
        if let Ok(params) = algo::prepare(&algorithm, &graph, &parameters) {
            let _ = algo::run(&algorithm, &graph, &params, &mut Count(0));
        }
    }
});
