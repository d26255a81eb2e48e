//! A graph given node by node and edge by edge: checked so that every
//! mistake is refused with a message naming it, and nothing the algorithms
//! could trip on gets through.

use std::collections::hash_map::Entry;
use std::collections::HashMap;

use hubbub_protocol::graph::{ExplicitGraph, NodeSpec};

use super::{show, Graph, GraphError, Limits, NodeIndex};

/// Checks and builds an explicit graph.
pub(super) fn build(spec: &ExplicitGraph, limits: &Limits) -> Result<Graph, GraphError> {
    let n = spec.nodes.len();
    let m = spec.edges.len();
    if n == 0 {
        return Err(GraphError("the graph has no nodes".into()));
    }
    super::check_nodes(n as u64, limits)?;
    super::check_edges(m as u64, limits)?;

    let mut ids = Vec::with_capacity(n);
    let mut coords = Vec::with_capacity(n);
    let mut map = HashMap::with_capacity(n);
    for (i, node) in spec.nodes.iter().enumerate() {
        let (id, c) = match node {
            NodeSpec::Id(id) => (id, None),
            NodeSpec::Node(node) => {
                let c = match (node.x, node.y) {
                    (None, None) => None,
                    (Some(x), Some(y)) if x.is_finite() && y.is_finite() => Some((x, y)),
                    (Some(_), Some(_)) => {
                        return Err(GraphError(format!(
                            "node {} has a non-finite coordinate",
                            show(&node.id)
                        )))
                    }
                    (Some(_), None) | (None, Some(_)) => {
                        return Err(GraphError(format!(
                            "node {} has only one of x and y",
                            show(&node.id)
                        )))
                    }
                };
                (&node.id, c)
            }
        };
        match map.entry(id.clone()) {
            Entry::Occupied(_) => {
                return Err(GraphError(format!("duplicate node id {}", show(id))));
            }
            Entry::Vacant(v) => {
                // `check_nodes` keeps n within u32.
                v.insert(i as u32);
            }
        }
        ids.push(id.clone());
        coords.push(c);
    }

    let mut edges = Vec::with_capacity(m);
    for (k, e) in spec.edges.iter().enumerate() {
        let find = |id| {
            map.get(id)
                .copied()
                .ok_or_else(|| GraphError(format!("edge {k} names an unknown node {}", show(id))))
        };
        let a = find(&e.from)?;
        let b = find(&e.to)?;
        let w = e.weight.unwrap_or(1.0);
        if !w.is_finite() {
            return Err(GraphError(format!(
                "edge {k} ({} to {}) has a non-finite weight",
                show(&e.from),
                show(&e.to)
            )));
        }
        edges.push((a, b, w));
    }
    let directed = spec.directed.unwrap_or(false);
    Ok(Graph::assemble(
        directed,
        ids,
        NodeIndex::Map(map),
        coords,
        edges,
    ))
}
