//! An event the hub accepts must reach JSON and MessagePack subscribers
//! alike: any payload that passes `JsonData::check` is encoded, as a live
//! event and inside a `history` reply, in both encodings; both decode, to
//! the same tree, whose `data` is the payload.
#![no_main]

#[path = "common.rs"]
mod common;

use hubbub_protocol::codec::decode_server;
use hubbub_protocol::{encode_server, Encoding, EventMessage, JsonData, ServerMessage, TimedEvent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    let Ok(data) = JsonData::from_json(text) else {
        return;
    };
    if data.check().is_err() {
        return;
    }
    let want: serde_json::Value = serde_json::from_str(data.get()).expect("checked JSON parses");
    let event = EventMessage {
        channel: "c".into(),
        event_type: "e".into(),
        data,
        message_id: "m".into(),
        offset: Some(1),
        epoch: Some("ep".into()),
        publisher: None,
    };
    let history = ServerMessage::History {
        channel: "c".into(),
        epoch: "ep".into(),
        offset: 1,
        events: vec![TimedEvent {
            event: event.clone(),
            timestamp: 7,
        }],
    };
    let mut trees = Vec::new();
    for encoding in Encoding::ALL {
        let mut live = Vec::new();
        encode_server(&event, None, 7, encoding, &mut live)
            .unwrap_or_else(|e| panic!("{} cannot carry {want}: {e}", encoding.name()));
        let live = decode_server(&live, encoding)
            .unwrap_or_else(|e| panic!("{} event does not decode: {e}", encoding.name()));
        assert!(
            common::same(&live["data"], &want),
            "{}: {want} became {}",
            encoding.name(),
            live["data"]
        );
        let mut hist = Vec::new();
        encode_server(&history, None, 7, encoding, &mut hist)
            .unwrap_or_else(|e| panic!("{} history cannot carry {want}: {e}", encoding.name()));
        let hist = decode_server(&hist, encoding)
            .unwrap_or_else(|e| panic!("{} history does not decode: {e}", encoding.name()));
        assert!(
            common::same(&hist["events"][0]["data"], &want),
            "{}",
            encoding.name()
        );
        assert_eq!(hist["events"][0]["timestamp"], 7);
        trees.push((live, hist));
    }
    assert!(common::same(&trees[0].0, &trees[1].0));
    assert!(common::same(&trees[0].1, &trees[1].1));
});
