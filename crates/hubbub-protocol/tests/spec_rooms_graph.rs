//! PROTOCOL.md sections 6 (rooms, presence) and 7 (graph algorithm jobs):
//! each payload the spec describes reads into its type and is written back
//! as the same JSON; optional fields stay absent when they were.

mod common;

use common::round_trip;
use hubbub_protocol::algorithm::*;
use hubbub_protocol::graph::*;
use hubbub_protocol::message::{AlgorithmStart, Publish};
use hubbub_protocol::rooms::*;
use hubbub_protocol::{EventMessage, EventPayload, JsonData};

#[test]
fn rooms_and_presence() {
    let e: PresenceEntry = round_trip(
        r#"{"user_id":"ann","connection_id":"c1","info":{"name":"Ann","color":"red"},"joined_at":1700000000000}"#,
    );
    assert_eq!(e.info["name"], "Ann");
    round_trip::<PresenceEntry>(r#"{"user_id":null,"connection_id":"c2","info":{},"joined_at":1}"#);
    round_trip::<PresenceStats>(r#"{"num_clients":3,"num_users":2}"#);
    let j: UserJoined = round_trip(
        r#"{"room":"lobby","user_id":"ann","connection_id":"c1","info":{"name":"Ann"}}"#,
    );
    assert_eq!(j.event_type(), "user_joined");
    round_trip::<UserLeft>(r#"{"room":"lobby","user_id":null,"connection_id":"c2","info":{}}"#);
    round_trip::<RoomDeleted>(r#"{"room":"lobby"}"#);
    assert_eq!(UserLeft::EVENT_TYPE, "user_left");
    assert_eq!(room_channel("lobby"), "room:lobby");
}

#[test]
fn payloads_publish_and_read_typed() {
    let p = Publish::event(
        "room:lobby",
        &RoomDeleted {
            room: "lobby".into(),
        },
    );
    assert_eq!(
        (p.event_type.as_str(), p.data.get()),
        ("room_deleted", r#"{"room":"lobby"}"#)
    );
    let ev = EventMessage {
        channel: p.channel,
        event_type: p.event_type,
        data: p.data,
        message_id: "m".into(),
        offset: None,
        epoch: None,
        publisher: None,
    };
    assert_eq!(ev.payload::<RoomDeleted>().unwrap().unwrap().room, "lobby");
    assert!(ev.payload::<UserJoined>().is_none(), "another event type");
    let wrong = EventMessage {
        data: JsonData::from_json("1").unwrap(),
        ..ev
    };
    assert!(wrong.payload::<RoomDeleted>().unwrap().is_err());
}

#[test]
fn algorithm_parameters() {
    let p: AlgorithmParameters = round_trip(
        r#"{"graph":{"generator":"random_geometric","nodes":500,"seed":42},"source":0,"target":499,
            "step_delay_ms":20,"max_events_per_second":200}"#,
    );
    assert!(matches!(
        p.graph,
        GraphSpec::Generated(GeneratedGraph {
            generator: Generator::RandomGeometric,
            nodes: 500,
            seed: 42
        })
    ));
    assert_eq!(p.source, Some(NodeId::Int(0)));
    for g in ["grid", "barabasi_albert"] {
        round_trip::<GraphSpec>(&format!(r#"{{"generator":"{g}","nodes":9,"seed":1}}"#));
    }
    let p: AlgorithmParameters = round_trip(
        r#"{"graph":{"nodes":[1,"b",{"id":"c","x":0.5,"y":2},{"id":4}],
            "edges":[[1,"b"],["b","c",2.5],["c",4,1]],"directed":true},
            "source":1,"damping":0.9,"tolerance":1e-8,"max_iterations":50}"#,
    );
    let GraphSpec::Explicit(g) = &p.graph else {
        panic!()
    };
    assert_eq!(
        g.nodes[0],
        NodeSpec::Id(NodeId::Int(1)),
        "ids keep their type"
    );
    assert_eq!(g.nodes[1], NodeSpec::Id(NodeId::Str("b".into())));
    assert_eq!(g.edges[0].weight, None, "a missing weight stays missing");
    assert_eq!(g.directed, Some(true));
    let p: AlgorithmParameters = round_trip(r#"{"graph":{"nodes":["a","b"],"edges":[["a","b"]]}}"#);
    let GraphSpec::Explicit(g) = &p.graph else {
        panic!()
    };
    assert_eq!(g.directed, None);
    assert_eq!(
        p.damping.unwrap_or(AlgorithmParameters::DEFAULT_DAMPING),
        0.85
    );
}

#[test]
fn bad_parameters_are_refused() {
    for bad in [
        r#"{}"#,
        r#"{"graph":{}}"#,
        r#"{"graph":{"generator":"grid","nodes":10}}"#,
        r#"{"graph":{"generator":"spiral","nodes":10,"seed":1}}"#,
        r#"{"graph":{"generator":"grid","nodes":[1],"seed":1}}"#,
        r#"{"graph":{"generator":"grid","nodes":10,"seed":1,"edges":[]}}"#,
        r#"{"graph":{"nodes":10,"seed":1}}"#,
        r#"{"graph":{"nodes":[1,2]}}"#,
        r#"{"graph":{"nodes":[1.5],"edges":[]}}"#,
        r#"{"graph":{"nodes":[1],"edges":[[1]]}}"#,
        r#"{"graph":{"nodes":[1],"edges":[[1,1,1,1]]}}"#,
        r#"{"graph":{"nodes":[true],"edges":[]}}"#,
    ] {
        assert!(
            serde_json::from_str::<AlgorithmParameters>(bad).is_err(),
            "{bad}"
        );
    }
    let e =
        serde_json::from_str::<AlgorithmParameters>(r#"{"graph":{"generator":"grid","nodes":10}}"#)
            .unwrap_err()
            .to_string();
    assert!(e.contains("seed"), "{e}");
}

#[test]
fn algorithm_start_typed() {
    let params = AlgorithmParameters::new(GraphSpec::Generated(GeneratedGraph {
        generator: Generator::Grid,
        nodes: 16,
        seed: 3,
    }));
    let cmd = AlgorithmStart::new(&Algorithm::Pagerank, &params);
    assert_eq!(cmd.algorithm, "pagerank");
    assert_eq!(
        cmd.parameters.get(),
        r#"{"graph":{"generator":"grid","nodes":16,"seed":3}}"#
    );
    assert_eq!(cmd.parse().unwrap(), (Algorithm::Pagerank, params));
    assert_eq!(
        Algorithm::from("louvain"),
        Algorithm::Other("louvain".into())
    );
    for a in Algorithm::KNOWN {
        assert_eq!(Algorithm::from(a.as_str()), a);
    }
}

#[test]
fn job_events() {
    let g: Graph = round_trip(
        r#"{"directed":false,"nodes":[{"id":0,"x":0,"y":0},{"id":1,"x":1,"y":0},{"id":"z"}],
            "edges":[[0,1,1],[1,"z",2.5]]}"#,
    );
    assert_eq!(g.nodes[2].x, None);
    assert!(
        serde_json::from_str::<Graph>(r#"{"directed":false,"nodes":[],"edges":[[0,1]]}"#).is_err()
    );
    let p: AlgorithmProgress = round_trip(
        r#"{"job_id":"j1","progress":0.25,"current_step":12,"nodes_processed":10,"edges_processed":14}"#,
    );
    assert_eq!(p.intermediate_results, None);
    let p: AlgorithmProgress = round_trip(
        r#"{"job_id":"j1","progress":1,"current_step":3,"nodes_processed":4,"edges_processed":4,
            "intermediate_results":{"ranks":{"0":0.5,"1":0.5}}}"#,
    );
    assert!(p.intermediate_results.is_some());
    round_trip::<NodeActivation>(
        r#"{"node_id":7,"activation_level":1,"timestamp":1700000000000,"algorithm":"bfs"}"#,
    );
    let a: NodeActivation = round_trip(
        r#"{"node_id":"n7","activation_level":0.4,"timestamp":1,"algorithm":"louvain"}"#,
    );
    assert_eq!(
        a.algorithm,
        Algorithm::Other("louvain".into()),
        "a newer hub's algorithm reads"
    );
    round_trip::<EdgeTraversal>(
        r#"{"from_node":1,"to_node":"b","weight":2.5,"timestamp":1700000000000,"algorithm":"dijkstra"}"#,
    );
    round_trip::<PathDiscovered>(
        r#"{"job_id":"j1","path":[0,1,"z"],"cost":3.5,"is_optimal":true}"#,
    );
    round_trip::<AlgorithmStopped>(r#"{"job_id":"j1"}"#);
    round_trip::<AlgorithmFailed>(r#"{"job_id":"j1","error":"unknown node 9"}"#);
    assert_eq!(job_channel("j1"), "algorithm_j1");
}

#[test]
fn results_per_algorithm() {
    let complete = |result: &str| {
        round_trip::<AlgorithmComplete>(&format!(
            r#"{{"job_id":"j1","result":{result},"execution_time_ms":12,
                "statistics":{{"nodes_processed":4,"edges_processed":5,"events_emitted":9,
                "events_coalesced":2,"wall_time_ms":12}}}}"#
        ))
        .result
    };
    assert!(matches!(
        complete(r#"{"order":[0,1,"z"]}"#),
        AlgorithmResult::Order { .. }
    ));
    assert!(matches!(
        complete(r#"{"path":[0,2],"cost":2.5}"#),
        AlgorithmResult::Path {
            path: Some(_),
            cost: Some(_)
        }
    ));
    assert!(matches!(
        complete(r#"{"path":null,"cost":null}"#),
        AlgorithmResult::Path {
            path: None,
            cost: None
        }
    ));
    let r = complete(r#"{"ranks":{"0":0.25,"1":0.75},"iterations":31,"converged":true}"#);
    let AlgorithmResult::Ranks { ranks, .. } = r else {
        panic!("{r:?}")
    };
    assert_eq!(ranks.values().sum::<f64>(), 1.0);
    assert!(matches!(
        complete(r#"{"components":[[0,1],["z"]]}"#),
        AlgorithmResult::Components { .. }
    ));
    assert!(matches!(
        complete(r#"{"communities":[[0]]}"#),
        AlgorithmResult::Other(_)
    ));
    assert!(
        matches!(complete(r#"{}"#), AlgorithmResult::Other(_)),
        "{{}} is no unreachable path"
    );
}
