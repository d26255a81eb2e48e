//! Graphs as algorithm jobs take and draw them (PROTOCOL.md section 7):
//! node ids, nodes, edges, and `parameters.graph`, generated or explicit.
//! The algorithms, their parameters and the events a job streams are in
//! [`crate::algorithm`].

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeSeq, Serializer};
use serde::{Deserialize, Serialize};

/// A node id. Ids keep the type they were given (`1` and `"1"` are different
/// nodes), so a client draws the ids it sent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(untagged)]
pub enum NodeId {
    /// An integer id.
    Int(i64),
    /// A string id.
    Str(String),
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeId::Int(i) => write!(f, "{i}"),
            NodeId::Str(s) => f.write_str(s),
        }
    }
}

impl From<i64> for NodeId {
    fn from(i: i64) -> Self {
        NodeId::Int(i)
    }
}

impl From<&str> for NodeId {
    fn from(s: &str) -> Self {
        NodeId::Str(s.to_owned())
    }
}

impl From<String> for NodeId {
    fn from(s: String) -> Self {
        NodeId::Str(s)
    }
}

/// Reads a node id from the scalars a visitor is given.
struct IdVisitor;

impl<'de> Visitor<'de> for IdVisitor {
    type Value = NodeId;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a node id (an integer or a string)")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<NodeId, E> {
        Ok(NodeId::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodeId, E> {
        i64::try_from(v)
            .map(NodeId::Int)
            .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<NodeId, E> {
        Ok(NodeId::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<NodeId, E> {
        Ok(NodeId::Str(v))
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IdVisitor)
    }
}

/// A node as the `graph` event draws it (and as a request may give it):
/// its id and, where it has a layout, its coordinates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphNode {
    /// The node.
    pub id: NodeId,
    /// Layout x, absent without a layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<f64>,
    /// Layout y, absent without a layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub y: Option<f64>,
}

/// A node of an explicit graph: a bare id, or an object with coordinates
/// (the spec's `{id, x, y}`; this type also takes the object without them).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum NodeSpec {
    /// Just the id.
    Id(NodeId),
    /// The id with a position.
    Node(GraphNode),
}

impl<'de> Deserialize<'de> for NodeSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NodeSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a node id (integer or string) or {id, x, y}")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NodeSpec, E> {
                IdVisitor.visit_i64(v).map(NodeSpec::Id)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodeSpec, E> {
                IdVisitor.visit_u64(v).map(NodeSpec::Id)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NodeSpec, E> {
                IdVisitor.visit_str(v).map(NodeSpec::Id)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<NodeSpec, A::Error> {
                GraphNode::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(NodeSpec::Node)
            }
        }
        d.deserialize_any(V)
    }
}

/// An edge of an explicit graph, `[from, to, weight?]`; a missing weight
/// counts as 1. Apart from [`GraphEdge`] because a request may leave the
/// weight out and the `graph` event never does.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeSpec {
    /// Start node.
    pub from: NodeId,
    /// End node.
    pub to: NodeId,
    /// Weight, absent for 1.
    pub weight: Option<f64>,
}

/// An edge as the `graph` event draws it, `[from, to, weight]`: always with
/// its weight, so a watcher needs no default (each undirected edge once).
#[derive(Debug, Clone, PartialEq)]
pub struct GraphEdge {
    /// Start node.
    pub from: NodeId,
    /// End node.
    pub to: NodeId,
    /// Weight (a generated graph's: the Euclidean length).
    pub weight: f64,
}

fn write_edge<S: Serializer>(
    s: S,
    from: &NodeId,
    to: &NodeId,
    w: Option<f64>,
) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(2 + usize::from(w.is_some())))?;
    seq.serialize_element(from)?;
    seq.serialize_element(to)?;
    if let Some(w) = w {
        seq.serialize_element(&w)?;
    }
    seq.end()
}

/// Reads `[from, to, weight?]`; `(from, to, weight)`.
struct EdgeVisitor;

impl<'de> Visitor<'de> for EdgeVisitor {
    type Value = (NodeId, NodeId, Option<f64>);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an edge [from, to, weight]")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let from = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(0, &self))?;
        let to = seq
            .next_element()?
            .ok_or_else(|| de::Error::invalid_length(1, &self))?;
        let weight = seq.next_element()?;
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(4, &self));
        }
        Ok((from, to, weight))
    }
}

impl Serialize for EdgeSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        write_edge(s, &self.from, &self.to, self.weight)
    }
}

impl<'de> Deserialize<'de> for EdgeSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (from, to, weight) = d.deserialize_seq(EdgeVisitor)?;
        Ok(EdgeSpec { from, to, weight })
    }
}

impl Serialize for GraphEdge {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        write_edge(s, &self.from, &self.to, Some(self.weight))
    }
}

impl<'de> Deserialize<'de> for GraphEdge {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match d.deserialize_seq(EdgeVisitor)? {
            (from, to, Some(weight)) => Ok(GraphEdge { from, to, weight }),
            _ => Err(de::Error::invalid_length(2, &"an edge [from, to, weight]")),
        }
    }
}

/// How a generated graph is laid out and wired; a closed set, since an
/// unknown generator is a `bad_request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Generator {
    /// A square grid.
    Grid,
    /// Random points joined when close.
    RandomGeometric,
    /// Preferential attachment.
    BarabasiAlbert,
}

/// A graph the hub generates, so a demo or a benchmark needs no data of its
/// own: undirected, every node with a layout, every edge weighing its
/// Euclidean length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratedGraph {
    /// The generator.
    pub generator: Generator,
    /// How many nodes.
    pub nodes: u64,
    /// Seed of the generator: the same seed gives the same graph. The spec
    /// marks it required (no `?`), so it is.
    pub seed: u64,
}

/// A graph given node by node and edge by edge, for running an algorithm on
/// the application's own data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplicitGraph {
    /// The nodes.
    pub nodes: Vec<NodeSpec>,
    /// The edges, between listed nodes.
    pub edges: Vec<EdgeSpec>,
    /// Whether edges are directed; absent means undirected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directed: Option<bool>,
}

/// `parameters.graph`: generated or explicit. The two are told apart by
/// `generator`, so a mistake names the field at fault instead of "no variant
/// matched".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged, try_from = "GraphWire")]
pub enum GraphSpec {
    /// Made by the hub.
    Generated(GeneratedGraph),
    /// Given in full.
    Explicit(ExplicitGraph),
}

#[derive(Deserialize)]
struct GraphWire {
    generator: Option<Generator>,
    nodes: Option<NodesWire>,
    edges: Option<Vec<EdgeSpec>>,
    directed: Option<bool>,
    seed: Option<u64>,
}

/// `nodes`: a count (generated) or a list (explicit), read without buffering.
enum NodesWire {
    Count(u64),
    List(Vec<NodeSpec>),
}

impl<'de> Deserialize<'de> for NodesWire {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = NodesWire;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a node count or a list of nodes")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodesWire, E> {
                Ok(NodesWire::Count(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodesWire, A::Error> {
                let mut nodes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(n) = seq.next_element()? {
                    nodes.push(n);
                }
                Ok(NodesWire::List(nodes))
            }
        }
        d.deserialize_any(V)
    }
}

impl TryFrom<GraphWire> for GraphSpec {
    type Error = String;
    fn try_from(w: GraphWire) -> Result<Self, String> {
        match (w.generator, w.nodes) {
            (Some(generator), Some(NodesWire::Count(nodes))) => {
                if w.edges.is_some() || w.directed.is_some() {
                    return Err("a generated graph takes no edges and no directed".into());
                }
                let seed = w.seed.ok_or("a generated graph needs a seed")?;
                Ok(GraphSpec::Generated(GeneratedGraph {
                    generator,
                    nodes,
                    seed,
                }))
            }
            (Some(_), _) => Err("a generated graph needs nodes as a count".into()),
            (None, Some(NodesWire::List(nodes))) => Ok(GraphSpec::Explicit(ExplicitGraph {
                nodes,
                edges: w.edges.ok_or("an explicit graph needs edges")?,
                directed: w.directed,
            })),
            (None, Some(NodesWire::Count(_))) => {
                Err("a node count needs a generator; an explicit graph lists its nodes".into())
            }
            (None, None) => Err("a graph needs nodes".into()),
        }
    }
}
