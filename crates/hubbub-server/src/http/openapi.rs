//! The OpenAPI 3.0 document of the HTTP API (`GET /api/openapi.json`),
//! built by hand with `serde_json` so it needs no code generator.
//!
//! `operations` lists what is documented; [`document`] takes the route
//! table only to mark open routes (no security). A route added to
//! [`super::routes`] without an operation here makes the coverage test
//! fail, and so does an operation without a route.

use hubbub_protocol::ErrorCode;
use serde_json::{json, Map, Value};

use super::auth;
use super::extract::{MAX_EVENT_TYPE, MAX_USER_ID};
use super::looking::{CONNECTIONS_DEFAULT_LIMIT, CONNECTIONS_MAX_LIMIT};
use super::prometheus::CONTENT_TYPE_TEXT;
use super::publish::MAX_BROADCAST_CHANNELS;
use super::routes::{RouteInfo, Verb};

/// What `data` may be, in the words of the document.
const DATA_RULES: &str = "Any JSON value that both encodings carry alike, else 400 `bad_request`: \
    at most 64 levels of nested arrays and objects, no lone surrogate escapes (`\\ud800`), \
    numbers within a 64-bit float, integers within -2^63 .. 2^64-1 (send larger ones as \
    strings), no key twice in one object. Delivered as is.";

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn json_body(schema: Value) -> Value {
    json!({"content": {"application/json": {"schema": schema}}})
}

fn ok(description: &str, schema: Value) -> Value {
    let mut v = json_body(schema);
    v["description"] = json!(description);
    v
}

fn error(name: &str) -> Value {
    json!({"$ref": format!("#/components/responses/{name}")})
}

/// The usual failures of a protected route, plus `extra`.
fn failures(extra: &[(&str, &str)]) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("401".into(), error("Unauthorized"));
    m.insert("403".into(), error("Forbidden"));
    for (status, name) in extra {
        m.insert((*status).into(), error(name));
    }
    m
}

fn path_param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "path", "required": true, "description": description, "schema": schema})
}

fn query_param(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "in": "query", "required": false, "description": description, "schema": schema})
}

fn channel_name() -> Value {
    json!({"type": "string", "pattern": "^[A-Za-z0-9_.\\-:@]{1,200}$", "minLength": 1, "maxLength": 200})
}

fn room_name() -> Value {
    json!({"type": "string", "pattern": "^[A-Za-z0-9_.\\-@]{1,195}$", "minLength": 1, "maxLength": 195})
}

fn user_id() -> Value {
    json!({"type": "string", "pattern": "^[A-Za-z0-9_.\\-:@]{1,128}$", "minLength": 1, "maxLength": MAX_USER_ID})
}

fn event_type() -> Value {
    json!({"type": "string", "minLength": 1, "maxLength": MAX_EVENT_TYPE})
}

/// One operation: summary, description, optional parameters and body,
/// the success response and the failures.
struct Op {
    summary: &'static str,
    description: &'static str,
    tag: &'static str,
    parameters: Vec<Value>,
    body: Option<(Value, bool)>,
    success: (&'static str, Value),
    failures: Map<String, Value>,
}

impl Op {
    fn into_value(self, id: &str) -> Value {
        let mut responses = self.failures;
        responses.insert(self.success.0.into(), self.success.1);
        let mut op = json!({
            "operationId": id,
            "summary": self.summary,
            "description": self.description,
            "tags": [self.tag],
            "responses": responses,
        });
        if !self.parameters.is_empty() {
            op["parameters"] = Value::Array(self.parameters);
        }
        if let Some((schema, required)) = self.body {
            let mut b = json_body(schema);
            b["required"] = json!(required);
            op["requestBody"] = b;
        }
        op
    }
}

/// Every documented operation: method, path, operation id, operation.
fn operations() -> Vec<(Verb, &'static str, &'static str, Op)> {
    use Verb::{Delete, Get, Post};
    let disconnect_body = Some((schema_ref("DisconnectRequest"), false));
    vec![
        (Get, "/healthz", "healthz", Op {
            summary: "Liveness",
            description: "200 while the process runs.",
            tag: "health",
            parameters: vec![],
            body: None,
            success: ("200", ok("The process runs.", schema_ref("Status"))),
            failures: Map::new(),
        }),
        (Get, "/readyz", "readyz", Op {
            summary: "Readiness",
            description: "200 while the node accepts connections; 503 once shutdown began.",
            tag: "health",
            parameters: vec![],
            body: None,
            success: ("200", ok("Ready.", schema_ref("Status"))),
            failures: Map::from_iter([("503".to_owned(), error("Unavailable"))]),
        }),
        (Get, "/metrics", "metrics", Op {
            summary: "Prometheus metrics",
            description: "Text exposition format 0.0.4: connections, traffic, publications, \
                          publish latency histogram, slow consumers, rate limits, heartbeats, refusals, channels, uptime.",
            tag: "health",
            parameters: vec![],
            body: None,
            success: ("200", json!({
                "description": "The metrics.",
                "content": {CONTENT_TYPE_TEXT: {"schema": {"type": "string"}}}
            })),
            failures: Map::new(),
        }),
        (Post, "/api/publish", "publish", Op {
            summary: "Publish an event to a channel",
            description: "Queues the event for every subscriber without waiting on any socket. \
                          `subscribers` counts the subscribers it was handed to.",
            tag: "publishing",
            parameters: vec![],
            body: Some((schema_ref("PublishRequest"), true)),
            success: ("200", ok("Published.", schema_ref("PublishResult"))),
            failures: failures(&[("400", "BadRequest"), ("413", "TooLarge"), ("415", "NotJson")]),
        }),
        (Post, "/api/broadcast", "broadcast", Op {
            summary: "Publish one event to several channels",
            description: "Every channel name is checked before anything is published; a channel named \
                          twice is published to once.",
            tag: "publishing",
            parameters: vec![],
            body: Some((schema_ref("BroadcastRequest"), true)),
            success: ("200", ok("Published.", schema_ref("BroadcastResult"))),
            failures: failures(&[("400", "BadRequest"), ("413", "TooLarge"), ("415", "NotJson")]),
        }),
        (Post, "/api/users/{user_id}/send", "sendToUser", Op {
            summary: "Send an event to one user",
            description: "Delivers the event on the channel `user:<user_id>` to every live connection of \
                          the user (`connections`). A user with no live connection gets it queued \
                          (bounded per user, oldest dropped first, with a TTL) and delivered right after \
                          `connected` on the next connection: `connections: 0, queued: true` (`queued: false` \
                          only where the queue is configured off). `data` is checked as for publish.",
            tag: "publishing",
            parameters: vec![path_param("user_id", "The user.", user_id())],
            body: Some((schema_ref("SendRequest"), true)),
            success: ("200", ok("Sent.", schema_ref("SendResult"))),
            failures: failures(&[("400", "BadRequest"), ("413", "TooLarge"), ("415", "NotJson")]),
        }),
        (Post, "/api/users/{user_id}/disconnect", "disconnectUser", Op {
            summary: "Disconnect every connection of a user",
            description: "Each connection gets `disconnect` with code 4100 and then a close frame with 4100. \
                          The body may be left out.",
            tag: "publishing",
            parameters: vec![path_param("user_id", "The user.", user_id())],
            body: disconnect_body.clone(),
            success: ("200", ok("Disconnected.", schema_ref("DisconnectResult"))),
            failures: failures(&[("400", "BadRequest"), ("413", "TooLarge"), ("415", "NotJson")]),
        }),
        (Post, "/api/connections/{connection_id}/disconnect", "disconnectConnection", Op {
            summary: "Disconnect one connection",
            description: "The connection gets `disconnect` with code 4100 and then a close frame with 4100. \
                          The body may be left out.",
            tag: "publishing",
            parameters: vec![path_param("connection_id", "The connection, as in `connected`.", json!({"type": "string"}))],
            body: disconnect_body,
            success: ("200", ok("Disconnected.", schema_ref("DisconnectResult"))),
            failures: failures(&[("400", "BadRequest"), ("404", "NotFound"), ("413", "TooLarge"), ("415", "NotJson")]),
        }),
        (Get, "/api/stats", "stats", Op {
            summary: "Node statistics",
            description: "Connections, traffic, channels, errors, latency and rates of this node.",
            tag: "looking",
            parameters: vec![],
            body: None,
            success: ("200", ok("The statistics.", schema_ref("Stats"))),
            failures: failures(&[]),
        }),
        (Get, "/api/streams", "streams", Op {
            summary: "Built-in streams",
            description: "The channels the hub publishes itself, with their event types and intervals.",
            tag: "looking",
            parameters: vec![],
            body: None,
            success: ("200", ok("The streams.", json!({"type": "array", "items": schema_ref("Stream")}))),
            failures: Map::new(),
        }),
        (Get, "/api/channels", "channels", Op {
            summary: "Known channels",
            description: "Every channel with subscribers, by name.",
            tag: "looking",
            parameters: vec![],
            body: None,
            success: ("200", ok("The channels.", json!({"type": "array", "items": schema_ref("Channel")}))),
            failures: failures(&[]),
        }),
        (Get, "/api/channels/{channel}", "channel", Op {
            summary: "One channel",
            description: "404 while the channel is unknown.",
            tag: "looking",
            parameters: vec![path_param("channel", "The channel.", channel_name())],
            body: None,
            success: ("200", ok("The channel.", schema_ref("Channel"))),
            failures: failures(&[("400", "BadRequest"), ("404", "NotFound")]),
        }),
        (Get, "/api/channels/{channel}/history", "channel_history", Op {
            summary: "A channel's retained events",
            description: "In increasing offset order. With since_offset (exclusive), the oldest `limit` after it; without, the newest `limit`. An unknown channel answers an empty list with offset 0.",
            tag: "looking",
            parameters: vec![
                path_param("channel", "The channel.", channel_name()),
                query_param("since_offset", "Exclusive lower bound.", json!({"type": "integer", "minimum": 0, "maximum": u64::MAX})),
                query_param("limit", "Most events; larger values are capped by the history size.", json!({"type": "integer", "minimum": 0, "maximum": u64::MAX, "default": 100})),
            ],
            body: None,
            success: ("200", ok("The events.", schema_ref("History"))),
            failures: failures(&[("400", "BadRequest")]),
        }),
        (Get, "/api/channels/{channel}/presence", "channel_presence", Op {
            summary: "Who is on a channel",
            description: "One entry per connection, oldest first, on a channel that keeps presence (its namespace sets presence = true, or a room); an empty list while nobody is there. 404 on a channel that keeps none.",
            tag: "looking",
            parameters: vec![path_param("channel", "The channel.", channel_name())],
            body: None,
            success: ("200", ok("The members.", schema_ref("Presence"))),
            failures: failures(&[("400", "BadRequest"), ("404", "NotFound"), ("503", "Unavailable")]),
        }),
        (Get, "/api/rooms", "rooms", Op {
            summary: "Rooms",
            description: "Every room of the hub (of every node, on a networked engine), by name, with its member count; private ones too (the API's callers are the hub's operators).",
            tag: "rooms",
            parameters: vec![],
            body: None,
            success: ("200", ok("The rooms.", json!({"type": "array", "items": schema_ref("RoomSummary")}))),
            failures: failures(&[("503", "Unavailable")]),
        }),
        (Post, "/api/rooms", "createRoom", Op {
            summary: "Create a room",
            description: "A room created here stays until deleted (one created by joining goes with its last member). 409 when one of that name exists.",
            tag: "rooms",
            parameters: vec![],
            body: Some((schema_ref("RoomRequest"), true)),
            success: ("201", ok("Created.", schema_ref("Room"))),
            failures: failures(&[("400", "BadRequest"), ("409", "AlreadyExists"), ("413", "TooLarge"), ("415", "NotJson"), ("503", "Unavailable")]),
        }),
        (Get, "/api/rooms/{room}", "room", Op {
            summary: "One room",
            description: "The room with its members' presence entries; 404 while unknown.",
            tag: "rooms",
            parameters: vec![path_param("room", "The room (bare name).", room_name())],
            body: None,
            success: ("200", ok("The room.", schema_ref("Room"))),
            failures: failures(&[("400", "BadRequest"), ("404", "NotFound"), ("503", "Unavailable")]),
        }),
        (Delete, "/api/rooms/{room}", "deleteRoom", Op {
            summary: "Delete a room",
            description: "Members on every node get `event room_deleted {room}` on `room:<room>`, then are removed (no `user_left` for each).",
            tag: "rooms",
            parameters: vec![path_param("room", "The room (bare name).", room_name())],
            body: None,
            success: ("204", json!({"description": "Deleted."})),
            failures: failures(&[("400", "BadRequest"), ("404", "NotFound"), ("503", "Unavailable")]),
        }),
        (Get, "/api/connections", "connections", Op {
            summary: "Live connections",
            description: "Oldest first, filtered by user and/or subscribed channel.",
            tag: "looking",
            parameters: vec![
                query_param("user_id", "Only this user's connections.", user_id()),
                query_param("channel", "Only connections subscribed to this channel.", channel_name()),
                query_param(
                    "limit",
                    &format!("Most connections listed; larger values are capped to {CONNECTIONS_MAX_LIMIT}."),
                    json!({"type": "integer", "minimum": 0, "maximum": u64::MAX, "default": CONNECTIONS_DEFAULT_LIMIT}),
                ),
            ],
            body: None,
            success: ("200", ok("The connections.", json!({"type": "array", "items": schema_ref("Connection")}))),
            failures: failures(&[("400", "BadRequest")]),
        }),
        (Get, "/api/openapi.json", "openapi", Op {
            summary: "This document",
            description: "The OpenAPI 3.0 description of the HTTP API.",
            tag: "looking",
            parameters: vec![],
            body: None,
            success: ("200", ok("The document.", json!({"type": "object"}))),
            failures: failures(&[]),
        }),
    ]
}

fn schemas() -> Value {
    let offset = json!({"type": "integer", "minimum": 1, "description": "Position in the channel's history, where it keeps one."});
    let epoch =
        json!({"type": "string", "description": "Name of the history the offset belongs to."});
    let position = json!({"type": "integer", "minimum": 0, "description": "The channel's newest offset; 0 before any event."});
    let data = json!({"description": DATA_RULES});
    let count = json!({"type": "integer", "minimum": 0});
    let stats_properties = json!({
        "history": {"type": "object", "description": "History held across all channels.", "properties": {
            "channels": count, "events": count, "bytes": count, "budget_bytes": count, "trimmed_for_budget": count
        }},
        "user_queues": {"type": "object", "description": "Offline queues per user.", "properties": {
            "queued": count, "dropped": count
        }},
        "total_connections": {"type": "integer", "minimum": 0, "description": "Connections accepted since start."},
        "active_connections": {"type": "integer", "minimum": 0, "description": "Live connections."},
        "authenticated_connections": {"type": "integer", "minimum": 0, "description": "Live connections with a user."},
        "total_messages_sent": count,
        "total_messages_received": count,
        "channels": count,
        "subscription_counts": {"type": "object", "additionalProperties": count, "description": "Subscribers per channel."},
        "rooms": count,
        "rate_limited": {"type": "integer", "minimum": 0, "description": "Inbound messages dropped by the rate limiter."},
        "slow_consumer_disconnects": count,
        "ping_timeouts": count,
        "connection_errors": count,
        "errors": {"type": "integer", "minimum": 0, "description": "`error` messages sent to clients."},
        "average_connection_duration_seconds": {"type": "number"},
        "average_latency_ms": {"type": "number", "description": "Mean publish latency."},
        "messages_per_second": {"type": "number", "description": "Messages in both directions per second, since the previous call at least a second ago."},
        "connection_states": {"type": "object", "additionalProperties": count, "description": "Live connections per state (`open`, `closing`)."},
        "uptime_seconds": count,
        "node_id": {"type": "string"},
        "nodes": {"type": "array", "items": schema_ref("Node"), "description": "Every live node of the cluster (this one alone on the in-memory engine)."},
        "cluster": schema_ref("Cluster")
    });
    json!({
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {"error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": {"type": "string", "enum": ErrorCode::ALL.map(ErrorCode::as_str)},
                    "message": {"type": "string"}
                }
            }}
        },
        "Status": {
            "type": "object",
            "required": ["status"],
            "properties": {"status": {"type": "string"}}
        },
        "PublishRequest": {
            "type": "object",
            "required": ["channel", "event_type", "data"],
            "properties": {"channel": channel_name(), "event_type": event_type(), "data": data}
        },
        "PublishResult": {
            "type": "object",
            "required": ["channel", "subscribers"],
            "properties": {"channel": channel_name(), "offset": offset, "epoch": epoch, "subscribers": count}
        },
        "BroadcastRequest": {
            "type": "object",
            "required": ["channels", "event_type", "data"],
            "properties": {
                "channels": {"type": "array", "items": channel_name(), "minItems": 1, "maxItems": MAX_BROADCAST_CHANNELS},
                "event_type": event_type(),
                "data": data
            }
        },
        "BroadcastResult": {
            "type": "object",
            "required": ["results"],
            "properties": {"results": {"type": "array", "items": {
                "type": "object",
                "required": ["channel", "subscribers"],
                "properties": {"channel": channel_name(), "offset": offset, "subscribers": count}
            }}}
        },
        "SendRequest": {
            "type": "object",
            "required": ["event_type", "data"],
            "properties": {"event_type": event_type(), "data": data}
        },
        "SendResult": {
            "type": "object",
            "required": ["connections", "queued"],
            "properties": {
                "connections": {"type": "integer", "minimum": 0, "description": "Live connections the event was queued on."},
                "queued": {"type": "boolean", "description": "Whether it was kept for a user with no live connection."}
            }
        },
        "DisconnectRequest": {
            "type": "object",
            "properties": {
                "reason": {"type": "string", "nullable": true, "maxLength": hubbub_ws::MAX_CLOSE_REASON, "description": "Reason sent in `disconnect` (whole) and in the close frame (its first 123 bytes, cut on a character boundary). Empty or null: the code's own reason."},
                "reconnect": {"type": "boolean", "nullable": true, "default": true, "description": "Advice to the client; null counts as absent."}
            }
        },
        "DisconnectResult": {
            "type": "object",
            "required": ["disconnected"],
            "properties": {"disconnected": count}
        },
        "Node": {
            "type": "object",
            "required": ["node_id", "connections", "subscriptions", "uptime_seconds"],
            "properties": {
                "node_id": {"type": "string"},
                "address": {"type": "string"},
                "connections": count,
                "subscriptions": count,
                "uptime_seconds": count
            }
        },
        "Cluster": {
            "type": "object",
            "description": "Sums over `nodes`.",
            "required": ["nodes", "connections", "subscriptions"],
            "properties": {"nodes": count, "connections": count, "subscriptions": count}
        },
        "Stats": {
            "type": "object",
            "required": [
                "total_connections", "active_connections", "authenticated_connections",
                "total_messages_sent", "total_messages_received", "channels", "subscription_counts",
                "rooms", "rate_limited", "slow_consumer_disconnects", "ping_timeouts",
                "connection_errors", "errors", "average_connection_duration_seconds",
                "average_latency_ms", "messages_per_second", "connection_states",
                "uptime_seconds", "node_id", "nodes"
            ],
            "properties": stats_properties
        },
        "Stream": {
            "type": "object",
            "required": ["channel", "description", "event_types"],
            "properties": {
                "channel": channel_name(),
                "description": {"type": "string"},
                "event_types": {"type": "array", "items": {"type": "string"}},
                "interval_ms": {"type": "integer", "minimum": 1, "description": "Period of streams published on a timer."}
            }
        },
        "Channel": {
            "type": "object",
            "required": ["channel", "subscribers", "history_size"],
            "properties": {
                "channel": channel_name(),
                "subscribers": count,
                "offset": offset,
                "epoch": epoch,
                "history_size": count,
                "presence_stats": schema_ref("PresenceStats")
            }
        },
        "RoomRequest": {
            "type": "object",
            "required": ["room"],
            "additionalProperties": false,
            "properties": {
                "room": room_name(),
                "capacity": {"type": ["integer", "null"], "minimum": 1, "maximum": 1_000_000, "description": "Connections admitted at most (absent or null: rooms.default_capacity)."},
                "private": {"type": "boolean", "default": false, "description": "Only the owner and users whose token's rooms claim lists the room may join."},
                "owner": {"anyOf": [user_id(), {"type": "null"}], "description": "The user who may always join (null: none)."},
                "metadata": {"type": ["object", "null"], "description": "Shown as given (null: empty)."}
            }
        },
        "RoomSummary": {
            "type": "object",
            "required": ["room", "members", "capacity", "private", "owner", "metadata", "created_at"],
            "properties": {
                "room": room_name(),
                "members": count,
                "capacity": count,
                "private": {"type": "boolean"},
                "owner": {"type": ["string", "null"]},
                "metadata": {"type": "object"},
                "created_at": {"type": "integer", "minimum": 0, "description": "ms since the Unix epoch."}
            }
        },
        "Room": {
            "type": "object",
            "required": ["room", "members", "capacity", "private", "owner", "metadata", "created_at"],
            "properties": {
                "room": room_name(),
                "members": {"type": "array", "items": schema_ref("PresenceEntry")},
                "capacity": count,
                "private": {"type": "boolean"},
                "owner": {"type": ["string", "null"]},
                "metadata": {"type": "object"},
                "created_at": {"type": "integer", "minimum": 0, "description": "ms since the Unix epoch."}
            }
        },
        "PresenceStats": {
            "type": "object",
            "description": "Counts of a channel that keeps presence, without the list.",
            "required": ["num_clients", "num_users"],
            "properties": {
                "num_clients": {"type": "integer", "minimum": 0, "description": "Connections present, anonymous ones included."},
                "num_users": {"type": "integer", "minimum": 0, "description": "Distinct users present."}
            }
        },
        "Presence": {
            "type": "object",
            "required": ["channel", "members"],
            "properties": {
                "channel": channel_name(),
                "members": {"type": "array", "items": schema_ref("PresenceEntry")}
            }
        },
        "PresenceEntry": {
            "type": "object",
            "required": ["user_id", "connection_id", "info", "joined_at"],
            "properties": {
                "user_id": {"type": ["string", "null"]},
                "connection_id": {"type": "string"},
                "info": {"type": "object"},
                "joined_at": {"type": "integer", "minimum": 0, "description": "ms since the Unix epoch."}
            }
        },
        "History": {
            "type": "object",
            "required": ["channel", "epoch", "offset", "events"],
            "properties": {
                "channel": channel_name(),
                "epoch": {"type": "string", "description": "Name of the history; empty while the channel holds none."},
                "offset": position,
                "events": {"type": "array", "items": schema_ref("Event")}
            }
        },
        "Event": {
            "type": "object",
            "required": ["type", "channel", "event_type", "data", "message_id", "timestamp"],
            "properties": {
                "type": {"type": "string", "enum": ["event"]},
                "timestamp": {"type": "integer", "minimum": 0, "description": "When the hub accepted the event, ms since the Unix epoch (as it carried live)."},
                "channel": channel_name(),
                "event_type": event_type(),
                "data": {"description": "Any JSON value."},
                "message_id": {"type": "string"},
                "offset": offset,
                "epoch": epoch,
                "publisher": {"type": "object", "properties": {"user_id": {"type": "string", "nullable": true}, "connection_id": {"type": "string"}}}
            }
        },
        "Connection": {
            "type": "object",
            "required": [
                "connection_id", "user_id", "remote_addr", "connected_at", "state", "encoding",
                "subscriptions", "messages_sent", "messages_received", "queue_bytes"
            ],
            "properties": {
                "connection_id": {"type": "string"},
                "user_id": {"type": "string", "nullable": true},
                "remote_addr": {"type": "string"},
                "connected_at": {"type": "integer", "description": "Milliseconds since the Unix epoch."},
                "state": {"type": "string", "enum": ["open", "closing"]},
                "encoding": {"type": "string", "enum": ["json", "msgpack"]},
                "subscriptions": {"type": "array", "items": channel_name()},
                "messages_sent": count,
                "messages_received": count,
                "queue_bytes": count
            }
        }
    })
}

fn responses() -> Value {
    let e = |d: &str| {
        let mut v = json_body(schema_ref("Error"));
        v["description"] = json!(d);
        v
    };
    json!({
        "BadRequest": e("Malformed JSON, a body that is not a JSON object, a value out of range, or `data` \
                         that some encoding cannot carry (`bad_request`; the message names the problem, \
                         quoting at most 64 characters of the input)."),
        "Unauthorized": e("With an API key configured: no `Authorization: Bearer` header, a key that is not the \
                           configured one, or a token that does not verify (`unauthorized`, with \
                           `WWW-Authenticate: Bearer`). Without a key (development only), a token that does \
                           not verify from a caller not on loopback."),
        "Forbidden": e("A valid token without `\"admin\": true`, or (development only, no API key configured) a \
                        caller not on loopback without credentials (`forbidden`)."),
        "NotFound": e("No such thing (`not_found`)."),
        "AlreadyExists": e("One of that name exists (`already_exists`)."),
        "TooLarge": e("The body is larger than the node accepts (`bad_request`)."),
        "NotJson": e("The body is not sent as `application/json` (`bad_request`)."),
        "Unavailable": e("Not ready (`unavailable`)."),
    })
}

/// The whole document. `routes` is the router's table: operations on open
/// routes get an empty `security`, everything else inherits the bearer
/// requirement.
pub fn document(routes: &[RouteInfo]) -> Value {
    let mut paths = Map::new();
    for (verb, path, id, op) in operations() {
        let open = routes
            .iter()
            .find(|r| r.verb == verb && r.path == path)
            .map_or_else(|| auth::is_open(path), |r| r.open);
        let mut v = op.into_value(id);
        if open {
            v["security"] = json!([]);
        }
        let entry = paths
            .entry(path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(m) = entry {
            m.insert(verb.openapi_key().to_owned(), v);
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "hubbub HTTP API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "How a backend and an operator drive a hubbub hub. Errors are \
                            `{\"error\": {\"code\", \"message\"}}` with the fitting status. \
                            Everything under /api/ except /api/streams needs `Authorization: Bearer <key>` \
                            (the API key, or a JWT with `\"admin\": true`). Production mode refuses to start \
                            without a key; in development with no key configured only loopback callers are \
                            answered without one."
        },
        "tags": [
            {"name": "health", "description": "Liveness, readiness, metrics."},
            {"name": "publishing", "description": "Publishing, sending to users, disconnecting."},
            {"name": "looking", "description": "Statistics, channels, connections."},
            {"name": "rooms", "description": "Rooms: create, list, look at, delete."}
        ],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "description": "The configured API key (`api.key`), or a JWT with `\"admin\": true`.", "bearerFormat": "API key or JWT"}
            },
            "schemas": schemas(),
            "responses": responses()
        }
    })
}

/// Adds an application's routes ([`crate::ApiExtension`]) to `doc`.
pub(super) fn extend(doc: &mut Value, ext: &crate::ApiExtension) {
    let merge = |into: &mut Value, from: &Value| {
        if let (Value::Object(into), Value::Object(from)) = (into, from) {
            for (k, v) in from {
                into.insert(k.clone(), v.clone());
            }
        }
    };
    merge(&mut doc["paths"], &ext.openapi_paths);
    merge(&mut doc["components"]["schemas"], &ext.openapi_schemas);
    if let Value::Array(tags) = &mut doc["tags"] {
        tags.push(json!({"name": ext.tag.0, "description": ext.tag.1}));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::http::route_table;

    #[test]
    fn documents_exactly_the_routes() {
        let table = route_table();
        let doc = document(&table);
        let routes: BTreeSet<(String, String)> = table
            .iter()
            .map(|r| (r.path.to_owned(), r.verb.openapi_key().to_owned()))
            .collect();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for verb in item.as_object().unwrap().keys() {
                documented.insert((path.clone(), verb.clone()));
            }
        }
        assert_eq!(routes, documented);
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document(&route_table());
        let text = doc.to_string();
        for piece in text.split("\"$ref\":\"#/components/").skip(1) {
            let target = piece.split('"').next().unwrap();
            let (kind, name) = target.split_once('/').unwrap();
            assert!(
                doc["components"][kind].get(name).is_some(),
                "dangling $ref {target}"
            );
        }
    }

    #[test]
    fn data_rules_name_the_real_depth() {
        let depth = format!("at most {} levels", hubbub_protocol::MAX_DATA_DEPTH);
        assert!(DATA_RULES.contains(&depth), "{DATA_RULES}");
    }

    #[test]
    fn every_error_code_is_listed() {
        let doc = document(&route_table());
        let listed = &doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]
            ["code"]["enum"];
        assert!(listed.as_array().unwrap().contains(&json!("conflict")));
        assert_eq!(listed.as_array().unwrap().len(), ErrorCode::ALL.len());
    }

    #[test]
    fn open_routes_have_no_security() {
        let doc = document(&route_table());
        assert_eq!(doc["paths"]["/api/streams"]["get"]["security"], json!([]));
        assert_eq!(doc["paths"]["/healthz"]["get"]["security"], json!([]));
        assert!(doc["paths"]["/api/publish"]["post"]
            .get("security")
            .is_none());
    }
}
