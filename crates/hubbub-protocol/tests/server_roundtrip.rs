//! The hub's messages read back exactly as written: the bytes of every
//! message stay as they were before messages became readable, and
//! serialize -> deserialize -> serialize gives the same bytes for every
//! variant in both encodings.

use hubbub_protocol::rooms::PresenceEntry;
use hubbub_protocol::*;

fn event(offset: Option<u64>, user: Option<&str>) -> EventMessage {
    EventMessage {
        channel: "orders".into(),
        event_type: "task_updated".into(),
        data: JsonData::from_json(r#"{"b": 1, "a": [1.5, "x\u00e9", null]}"#).unwrap(),
        message_id: "m1".into(),
        offset,
        epoch: offset.map(|_| "x7f".into()),
        publisher: user.map(|u| Publisher {
            user_id: (!u.is_empty()).then(|| u.to_owned()),
            connection_id: "c9".into(),
        }),
    }
}

fn member(user: Option<&str>) -> PresenceEntry {
    let info = serde_json::json!({"name": "Ann", "role": "admin"});
    PresenceEntry {
        user_id: user.map(str::to_owned),
        connection_id: "c1".into(),
        info: info.as_object().unwrap().clone(),
        joined_at: 1_700_000_000_000,
    }
}

/// One of each variant (some twice, with and without optional fields).
fn samples() -> Vec<ServerMessage> {
    let all = vec![
        ServerMessage::Connected {
            connection_id: "c1".into(),
            user_id: Some("alice".into()),
            server_time: 1_700_000_000_000,
            heartbeat_interval_ms: 25_000,
            max_message_size: 65_536,
            encoding: "json".into(),
            features: vec!["history".into(), "recovery".into()],
        },
        ServerMessage::error(ErrorCode::RoomFull, "room is full"),
        ServerMessage::Disconnect {
            code: 4009,
            reason: "slow_consumer".into(),
            reconnect: true,
        },
        ServerMessage::Subscribed {
            channels: vec![SubscribedChannel {
                channel: "orders".into(),
                offset: 41,
                epoch: "x7f".into(),
                recovered: true,
                missed: 2,
            }],
        },
        ServerMessage::Unsubscribed {
            channels: vec!["a".into()],
        },
        ServerMessage::Published {
            channel: "a".into(),
            offset: Some(3),
        },
        ServerMessage::Published {
            channel: "a".into(),
            offset: None,
        },
        ServerMessage::Pong {},
        ServerMessage::Authenticated {
            user_id: Some("u".into()),
            expires_at: None,
        },
        ServerMessage::Subscriptions {
            channels: vec!["a".into(), "b".into()],
        },
        ServerMessage::History {
            channel: "orders".into(),
            epoch: "x7f".into(),
            offset: 42,
            events: vec![TimedEvent {
                event: event(Some(42), Some("")),
                timestamp: 5,
            }],
        },
        // The first 11 are the golden messages; new ones go below.
        ServerMessage::History {
            channel: "orders".into(),
            epoch: "x7f".into(),
            offset: 42,
            events: vec![
                TimedEvent {
                    event: event(None, Some("bob")),
                    timestamp: 6,
                },
                TimedEvent {
                    event: event(Some(2), None),
                    timestamp: 7,
                },
            ],
        },
        ServerMessage::Presence {
            channel: "room:lobby".into(),
            members: vec![member(Some("ann")), member(None)],
        },
        ServerMessage::PresenceStats {
            channel: "room:lobby".into(),
            num_clients: 2,
            num_users: 1,
        },
        ServerMessage::RoomJoined {
            room: "lobby".into(),
            members: vec![member(Some("ann"))],
        },
        ServerMessage::RoomLeft {
            room: "lobby".into(),
        },
        ServerMessage::AlgorithmStarted {
            job_id: "j1".into(),
            channel: "algorithm_j1".into(),
        },
        ServerMessage::AlgorithmStopped {
            job_id: "j1".into(),
        },
        ServerMessage::RpcResult {
            data: JsonData::from_json(r#"{"sum": 3, "parts": [1, 2]}"#).unwrap(),
        },
    ];
    // Adding a variant breaks this match, and so asks for a sample.
    let mut seen = std::collections::BTreeSet::new();
    for m in &all {
        seen.insert(match m {
            ServerMessage::Connected { .. }
            | ServerMessage::Error { .. }
            | ServerMessage::Disconnect { .. }
            | ServerMessage::Subscribed { .. }
            | ServerMessage::Unsubscribed { .. }
            | ServerMessage::Published { .. }
            | ServerMessage::Pong {}
            | ServerMessage::Authenticated { .. }
            | ServerMessage::Subscriptions { .. }
            | ServerMessage::History { .. }
            | ServerMessage::Presence { .. }
            | ServerMessage::PresenceStats { .. }
            | ServerMessage::RoomJoined { .. }
            | ServerMessage::RoomLeft { .. }
            | ServerMessage::AlgorithmStarted { .. }
            | ServerMessage::AlgorithmStopped { .. }
            | ServerMessage::RpcResult { .. } => m.type_name(),
        });
    }
    assert_eq!(seen.len(), ServerMessage::TYPE_NAMES.len());
    all
}

fn encode<T: serde::Serialize>(m: &T, id: Option<&CorrelationId>, enc: Encoding) -> Vec<u8> {
    let mut out = Vec::new();
    encode_server(m, id, 1_700_000_000_123, enc, &mut out).unwrap();
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn bytes_are_what_they_were() {
    let golden = include_str!("golden/wire.txt");
    let id = CorrelationId::Str("q1".into());
    let named: Vec<(&str, Vec<u8>, Vec<u8>)> = samples()
        .iter()
        .take(11)
        .map(|m| {
            (
                m.type_name(),
                encode(m, Some(&id), Encoding::Json),
                encode(m, Some(&id), Encoding::Msgpack),
            )
        })
        .collect();
    let mut lines = golden.lines();
    for (i, (name, json, msgpack)) in named.iter().enumerate() {
        let name = if i == 6 { "published_eph" } else { name };
        assert_eq!(
            lines.next().unwrap(),
            format!("{name} json {}", String::from_utf8_lossy(json))
        );
        assert_eq!(
            lines.next().unwrap(),
            format!("{name} msgpack {}", hex(msgpack))
        );
    }
}

#[test]
fn every_variant_reads_back_to_the_same_bytes() {
    let ids = [
        None,
        Some(CorrelationId::Int(7)),
        Some(CorrelationId::Str("q1".into())),
    ];
    for m in samples() {
        for enc in Encoding::ALL {
            for id in &ids {
                let bytes = encode(&m, id.as_ref(), enc);
                let back = decode_server_message(&bytes, enc)
                    .unwrap_or_else(|e| panic!("{} {enc:?}: {e:?}", m.type_name()));
                // MessagePack brings `data` back as compact JSON text, so
                // only JSON gives back the very same value; both give back
                // the same bytes.
                if enc == Encoding::Json {
                    assert_eq!(back.message, FromServer::Message(m.clone()));
                }
                assert_eq!(&back.correlation_id, id);
                assert_eq!(back.timestamp, 1_700_000_000_123);
                let FromServer::Message(again) = &back.message else {
                    unreachable!()
                };
                assert_eq!(encode(again, id.as_ref(), enc), bytes, "{}", m.type_name());
            }
        }
    }
}

#[test]
fn events_read_back_with_their_timestamp() {
    for ev in [
        event(Some(42), Some("")),
        event(None, None),
        event(Some(1), Some("u")),
    ] {
        for enc in Encoding::ALL {
            let bytes = encode(&ev, None, enc);
            let back = decode_server_message(&bytes, enc).unwrap();
            assert_eq!(back.message.type_name(), "event");
            let timed = back.clone().into_event().unwrap();
            if enc == Encoding::Json {
                assert_eq!(timed.event, ev);
            }
            assert_eq!(timed.timestamp, 1_700_000_000_123);
            assert_eq!(encode(&timed.event, None, enc), bytes);
        }
    }
}

#[test]
fn plain_serde_reads_both_encodings() {
    for m in samples() {
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<ServerMessage>(&json).unwrap(), m);
        let value = serde_json::to_value(&m).unwrap();
        let from_value = ServerMessage::deserialize(&value).unwrap();
        assert_eq!(serde_json::to_value(&from_value).unwrap(), value);
        let packed = rmp_serde::to_vec_named(&m).unwrap();
        let unpacked: ServerMessage = rmp_serde::from_slice(&packed).unwrap();
        assert_eq!(rmp_serde::to_vec_named(&unpacked).unwrap(), packed);
    }
    let ev = event(Some(42), Some("u"));
    let json = serde_json::to_string(&ev).unwrap();
    assert_eq!(serde_json::from_str::<EventMessage>(&json).unwrap(), ev);
    let packed = rmp_serde::to_vec_named(&ev).unwrap();
    let unpacked: EventMessage = rmp_serde::from_slice(&packed).unwrap();
    assert_eq!(
        unpacked.data.get(),
        r#"{"b":1,"a":[1.5,"xé",null]}"#,
        "key order kept"
    );
    let timed = TimedEvent {
        event: ev,
        timestamp: 9,
    };
    let json = serde_json::to_string(&timed).unwrap();
    assert_eq!(serde_json::from_str::<TimedEvent>(&json).unwrap(), timed);
}

use serde::Deserialize;

#[test]
fn what_is_not_a_message_is_refused() {
    let dec = |s: &str| decode_server_message(s.as_bytes(), Encoding::Json);
    let e = dec(r#"{"type":"teleport","correlation_id":3,"timestamp":1}"#).unwrap_err();
    assert_eq!(e.code, ErrorCode::UnknownType);
    assert_eq!(e.correlation_id, Some(CorrelationId::Int(3)));
    let e = dec(r#"{"type":"published","correlation_id":"x","timestamp":1}"#).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidMessage);
    assert_eq!(e.correlation_id, Some(CorrelationId::Str("x".into())));
    for bad in [
        r#"{"type":"pong"}"#,
        r#"{"type":"pong","timestamp":-1}"#,
        r#"{"type":"pong","timestamp":1} x"#,
        r#"{"type":5,"timestamp":1}"#,
        r#"{"timestamp":1}"#,
        r#"["pong",null,1]"#,
        r#"{"type":"event","timestamp":1,"channel":"c"}"#,
        "",
    ] {
        assert_eq!(
            dec(bad).unwrap_err().code,
            ErrorCode::InvalidMessage,
            "{bad}"
        );
    }
    assert!(decode_server_message(&[0x93, 1, 2, 3], Encoding::Msgpack).is_err());
    assert!(dec(r#"{"type":"pong","timestamp":1,"extra":[1]}"#).is_ok());
    // An event is not a ServerMessage, and an EventMessage is only an event.
    let ev = r#"{"type":"event","channel":"c","event_type":"e","data":1,"message_id":"m"}"#;
    assert!(serde_json::from_str::<ServerMessage>(ev).is_err());
    assert!(serde_json::from_str::<EventMessage>(ev).is_ok());
    assert!(serde_json::from_str::<EventMessage>(&ev.replace("\"event\",", "\"pong\",")).is_err());
    assert!(
        serde_json::from_str::<TimedEvent>(ev).is_err(),
        "no timestamp"
    );
}

#[test]
fn type_names_agree_with_serde() {
    for m in samples() {
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["type"], m.type_name());
    }
}
