//! The `graph` event written straight from a [`Graph`]: the same JSON as
//! serializing [`Graph::to_event`], without first copying every node and
//! edge into the protocol's types (a fifth of the cost of a 100,000-node
//! event).

use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct, SerializeTuple};
use serde::{Serialize, Serializer};

use super::Graph;

/// The `graph` event of a graph; see [`Graph::event`].
pub struct GraphEvent<'a>(pub(super) &'a Graph);

struct Nodes<'a>(&'a Graph);
struct Edges<'a>(&'a Graph);

impl Serialize for GraphEvent<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Graph", 3)?;
        st.serialize_field("directed", &self.0.directed())?;
        st.serialize_field("nodes", &Nodes(self.0))?;
        st.serialize_field("edges", &Edges(self.0))?;
        st.end()
    }
}

impl Serialize for Nodes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let g = self.0;
        let mut seq = s.serialize_seq(Some(g.node_count()))?;
        for i in 0..g.node_count() as u32 {
            seq.serialize_element(&Node(g, i))?;
        }
        seq.end()
    }
}

struct Node<'a>(&'a Graph, u32);

impl Serialize for Node<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let coords = self.0.coords(self.1);
        let mut m = s.serialize_map(Some(if coords.is_some() { 3 } else { 1 }))?;
        m.serialize_entry("id", self.0.id(self.1))?;
        if let Some((x, y)) = coords {
            m.serialize_entry("x", &x)?;
            m.serialize_entry("y", &y)?;
        }
        m.end()
    }
}

impl Serialize for Edges<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let g = self.0;
        let mut seq = s.serialize_seq(Some(g.edge_count()))?;
        for e in g.edges() {
            seq.serialize_element(&Edge(g, e))?;
        }
        seq.end()
    }
}

struct Edge<'a>(&'a Graph, (u32, u32, f64));

impl Serialize for Edge<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (a, b, w) = self.1;
        let mut t = s.serialize_tuple(3)?;
        t.serialize_element(self.0.id(a))?;
        t.serialize_element(self.0.id(b))?;
        t.serialize_element(&w)?;
        t.end()
    }
}

#[cfg(test)]
mod tests {
    use hubbub_protocol::graph::{ExplicitGraph, GeneratedGraph, Generator, GraphSpec};

    use super::*;
    use crate::graph::Limits;

    #[test]
    fn writes_what_the_protocol_types_write() {
        let explicit: ExplicitGraph = serde_json::from_str(
            r#"{"nodes": ["a", {"id": 2, "x": 0.5, "y": 1}, 3], "edges": [["a", 2], [2, 3, 2.5]], "directed": true}"#,
        )
        .unwrap();
        let specs = [
            GraphSpec::Explicit(explicit),
            GraphSpec::Generated(GeneratedGraph {
                generator: Generator::RandomGeometric,
                nodes: 200,
                seed: 3,
            }),
        ];
        for spec in specs {
            let g = Graph::build(&spec, &Limits::default()).unwrap();
            assert_eq!(
                serde_json::to_string(&g.event()).unwrap(),
                serde_json::to_string(&g.to_event()).unwrap()
            );
        }
    }
}
