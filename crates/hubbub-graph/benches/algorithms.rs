//! The algorithms and generators on 100,000 nodes with an observer that
//! does nothing: the floor under what a job costs before any streaming.

use std::hint::black_box;

use criterion::Criterion;
use hubbub_graph::algo::{prepare, run, Flow, Observer, Outcome, Progress};
use hubbub_graph::graph::{Graph, Limits};
use hubbub_protocol::algorithm::{Algorithm, AlgorithmParameters};
use hubbub_protocol::graph::{GeneratedGraph, Generator, GraphSpec, NodeId};

struct Quiet;

impl Observer for Quiet {
    fn activate(&mut self, _: u32, _: f64) {}
    fn traverse(&mut self, _: u32, _: u32, _: f64) {}
    fn path(&mut self, _: &[u32], _: f64, _: bool) {}
    fn step(&mut self, _: &Progress<'_>) -> Flow {
        Flow::Continue
    }
}

const N: u64 = 100_000;

fn spec(generator: Generator) -> GraphSpec {
    GraphSpec::Generated(GeneratedGraph {
        generator,
        nodes: N,
        seed: 1,
    })
}

fn generators(c: &mut Criterion) {
    for (name, g) in [
        ("grid", Generator::Grid),
        ("random_geometric", Generator::RandomGeometric),
        ("barabasi_albert", Generator::BarabasiAlbert),
    ] {
        let spec = spec(g);
        c.bench_function(&format!("generate {name} 100k"), |b| {
            b.iter(|| Graph::build(black_box(&spec), &Limits::default()).expect("graph"))
        });
    }
}

fn algorithms(c: &mut Criterion) {
    let spec = spec(Generator::RandomGeometric);
    let graph = Graph::build(&spec, &Limits::default()).expect("graph");
    let mut p = AlgorithmParameters::new(spec);
    p.source = Some(NodeId::Int(0));
    p.target = Some(NodeId::Int(N as i64 - 1));
    let cases = [
        ("dijkstra", Algorithm::Dijkstra, p.clone()),
        ("astar", Algorithm::Astar, p.clone()),
        ("bfs", Algorithm::Bfs, {
            let mut q = p.clone();
            q.target = None;
            q
        }),
        ("pagerank", Algorithm::Pagerank, p.clone()),
        ("connected_components", Algorithm::ConnectedComponents, p),
    ];
    for (name, algorithm, p) in cases {
        let params = prepare(&algorithm, &graph, &p).expect("params");
        c.bench_function(&format!("{name} random_geometric 100k"), |b| {
            b.iter(|| {
                let out = run(&algorithm, &graph, &params, &mut Quiet);
                assert!(matches!(out, Outcome::Done(_)));
                out
            })
        });
    }
}

// `criterion_group!` defines an undocumented `pub fn benches`.
#[allow(missing_docs)]
mod group {
    criterion::criterion_group! {
        name = benches;
        config = criterion::Criterion::default().sample_size(10);
        targets = super::generators, super::algorithms
    }
}
criterion::criterion_main!(group::benches);
