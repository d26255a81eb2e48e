//! PROTOCOL.md section 2: every command and every server message of the
//! tables, as a client or the hub writes it, reads into its type and is
//! written back as the same JSON, in both encodings.

use hubbub_protocol::codec::{decode_server, encode_command};
use hubbub_protocol::*;
use serde_json::{json, Value};

/// A command from the client table: decoded, encoded again, unchanged.
#[track_caller]
fn command(want: Value) {
    for enc in Encoding::ALL {
        let bytes = match enc {
            Encoding::Json => serde_json::to_vec(&want).unwrap(),
            Encoding::Msgpack => rmp_serde::to_vec_named(&want).unwrap(),
        };
        let inbound = decode_command(&bytes, enc.is_binary())
            .unwrap_or_else(|e| panic!("{want}: {}", e.message));
        let again = encode_command(&inbound.command, inbound.id.as_ref(), enc).unwrap();
        assert_eq!(decode_server(&again, enc).unwrap(), want, "{enc:?}");
    }
}

/// A message from the server table: decoded, encoded again, unchanged.
#[track_caller]
fn message(want: Value) -> ServerInbound {
    let mut first = None;
    for enc in Encoding::ALL {
        let bytes = match enc {
            Encoding::Json => serde_json::to_vec(&want).unwrap(),
            Encoding::Msgpack => rmp_serde::to_vec_named(&want).unwrap(),
        };
        let inbound =
            decode_server_message(&bytes, enc).unwrap_or_else(|e| panic!("{want}: {}", e.message));
        let mut again = Vec::new();
        let id = inbound.correlation_id.as_ref();
        match &inbound.message {
            FromServer::Event(e) => encode_server(e, id, inbound.timestamp, enc, &mut again),
            FromServer::Message(m) => encode_server(m, id, inbound.timestamp, enc, &mut again),
        }
        .unwrap();
        assert_eq!(decode_server(&again, enc).unwrap(), want, "{enc:?}");
        first.get_or_insert(inbound);
    }
    first.unwrap()
}

#[test]
fn client_commands() {
    command(
        json!({"type": "subscribe", "channels": ["orders", "room:lobby"],
        "since": {"orders": {"offset": 41, "epoch": "x7f"}}, "event_types": ["task_updated"], "id": 1}),
    );
    command(json!({"type": "subscribe", "channels": ["orders"]}));
    command(json!({"type": "unsubscribe", "channels": ["orders"], "id": "u1"}));
    command(
        json!({"type": "publish", "channel": "room:lobby", "event_type": "room_message",
        "data": {"text": "hi", "n": [1, 2.5, null]}, "id": 2}),
    );
    command(json!({"type": "ping"}));
    command(json!({"type": "get_subscriptions", "id": 3}));
    command(json!({"type": "presence", "channel": "room:lobby", "id": 4}));
    command(json!({"type": "presence_stats", "channel": "room:lobby", "id": 5}));
    command(
        json!({"type": "history", "channel": "orders", "since_offset": 40, "limit": 10, "id": 6}),
    );
    command(json!({"type": "history", "channel": "orders"}));
    command(json!({"type": "join_room", "room": "lobby", "info": {"name": "Ann"}, "id": 7}));
    command(json!({"type": "join_room", "room": "lobby"}));
    command(json!({"type": "leave_room", "room": "lobby", "id": 8}));
    command(json!({"type": "algorithm_start", "algorithm": "bfs",
        "parameters": {"graph": {"generator": "grid", "nodes": 100, "seed": 1}, "source": 0}, "id": 9}));
    command(json!({"type": "algorithm_stop", "job_id": "j1", "id": 10}));
    command(json!({"type": "auth", "token": "eyJ.x.y", "id": 11}));
    command(
        json!({"type": "rpc", "method": "orders.total", "data": {"day": "2024-01-01"}, "id": 12}),
    );
}

#[test]
fn connected_event_error_disconnect() {
    let m = message(
        json!({"type": "connected", "connection_id": "c1", "user_id": null,
        "server_time": 1_700_000_000_000u64, "heartbeat_interval_ms": 25_000, "max_message_size": 65_536,
        "encoding": "msgpack", "features": ["history", "recovery", "auth"], "timestamp": 1_700_000_000_000u64}),
    );
    let FromServer::Message(ServerMessage::Connected {
        encoding, features, ..
    }) = m.message
    else {
        panic!("{m:?}")
    };
    assert_eq!((encoding.as_ref(), features.len()), ("msgpack", 3));

    let m = message(
        json!({"type": "event", "channel": "orders", "event_type": "task_updated",
        "data": {"task_id": "t1"}, "message_id": "m1", "offset": 42, "epoch": "x7f",
        "publisher": {"user_id": "ann", "connection_id": "c2"}, "timestamp": 5}),
    );
    let ev = m.into_event().unwrap();
    assert_eq!((ev.event.offset, ev.timestamp), (Some(42), 5));
    // Ephemeral: no offset, no epoch; from the hub itself: no publisher.
    let m = message(
        json!({"type": "event", "channel": "room:lobby", "event_type": "typing_indicator",
        "data": null, "message_id": "m2", "timestamp": 6}),
    );
    assert_eq!(m.into_event().unwrap().event.offset, None);

    let m = message(
        json!({"type": "error", "code": "room_full", "message": "room lobby is full",
        "correlation_id": "j", "timestamp": 7}),
    );
    assert_eq!(m.correlation_id, Some(CorrelationId::Str("j".into())));
    message(
        json!({"type": "error", "code": "rate_limited", "message": "slow down", "timestamp": 7}),
    );
    message(
        json!({"type": "disconnect", "code": 4009, "reason": "slow_consumer", "reconnect": true,
        "timestamp": 8}),
    );
}

#[test]
fn replies() {
    message(json!({"type": "subscribed", "channels": [
        {"channel": "orders", "offset": 44, "epoch": "x7f", "recovered": true, "missed": 3},
        {"channel": "fresh", "offset": 0, "epoch": "e2", "recovered": false, "missed": 0}],
        "correlation_id": 1, "timestamp": 9}));
    message(
        json!({"type": "unsubscribed", "channels": ["orders"], "correlation_id": 2, "timestamp": 9}),
    );
    message(
        json!({"type": "published", "channel": "orders", "offset": 45, "correlation_id": 3, "timestamp": 9}),
    );
    message(
        json!({"type": "published", "channel": "room:lobby", "correlation_id": 4, "timestamp": 9}),
    );
    message(json!({"type": "pong", "correlation_id": 5, "timestamp": 9}));
    message(json!({"type": "subscriptions", "channels": ["orders", "user:ann"], "timestamp": 9}));
    let entry = json!({"user_id": "ann", "connection_id": "c1", "info": {"name": "Ann", "role": "admin"},
        "joined_at": 1_700_000_000_000u64});
    let anon = json!({"user_id": null, "connection_id": "c2", "info": {}, "joined_at": 1_700_000_000_001u64});
    message(
        json!({"type": "presence", "channel": "room:lobby", "members": [entry, anon], "timestamp": 9}),
    );
    message(
        json!({"type": "presence_stats", "channel": "room:lobby", "num_clients": 2, "num_users": 1,
        "correlation_id": "p", "timestamp": 9}),
    );
    message(
        json!({"type": "history", "channel": "orders", "epoch": "x7f", "offset": 45, "events": [
        {"type": "event", "channel": "orders", "event_type": "task_created", "data": {"n": 1},
         "message_id": "m44", "offset": 44, "epoch": "x7f", "timestamp": 3},
        {"type": "event", "channel": "orders", "event_type": "task_created", "data": [1, "two"],
         "message_id": "m45", "offset": 45, "epoch": "x7f",
         "publisher": {"user_id": null, "connection_id": "c3"}, "timestamp": 4}],
        "correlation_id": 6, "timestamp": 9}),
    );
    message(
        json!({"type": "room_joined", "room": "lobby", "members": [entry], "correlation_id": 7, "timestamp": 9}),
    );
    message(json!({"type": "room_left", "room": "lobby", "correlation_id": 8, "timestamp": 9}));
    message(
        json!({"type": "algorithm_started", "job_id": "j1", "channel": "algorithm_j1", "timestamp": 9}),
    );
    message(json!({"type": "algorithm_stopped", "job_id": "j1", "timestamp": 9}));
    message(
        json!({"type": "authenticated", "user_id": "ann", "expires_at": 1_700_000_900_000u64, "timestamp": 9}),
    );
    message(
        json!({"type": "rpc_result", "data": {"total": 12.5}, "correlation_id": 9, "timestamp": 9}),
    );
}
