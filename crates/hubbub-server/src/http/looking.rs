//! Looking (HTTP_API.md "Looking"): stats, the built-in streams, channels,
//! connections, health and readiness, the OpenAPI document.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use hubbub_protocol::excerpt::quote;
use hubbub_protocol::{ErrorCode, TimedEvent};
use serde::Serialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::extract::{self, ApiPath};
use super::snapshot::Snapshot;
use super::ApiState;
use crate::conn::handle::ConnHandle;
use crate::engine::NodeReport;
use crate::history::Position;
use crate::state::Shared;
use hubbub_protocol::rooms::PresenceStats;

use super::presence::with_presence;

/// Default and largest `limit` of `GET /api/connections`.
pub(super) const CONNECTIONS_DEFAULT_LIMIT: usize = 100;
/// Largest `limit` of `GET /api/connections`; larger values are capped.
pub(super) const CONNECTIONS_MAX_LIMIT: usize = 10_000;

/// `GET /healthz`: 200 while the process runs.
pub(super) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: 200 while new connections are accepted and the engine
/// answers; 503 once shutdown (or its drain delay) began, or while the
/// engine's server is unreachable, so a load balancer sends clients to
/// another node.
pub(super) async fn readyz(State(api): State<Arc<ApiState>>) -> Response {
    let unready = |why: String| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Unavailable, why).into_response()
    };
    if api.shared.draining.load(Relaxed) || api.shared.shutting_down.load(Relaxed) {
        return unready("shutting down".into());
    }
    if let Err(e) = api.shared.engine.broker.health() {
        return unready(e.to_string());
    }
    Json(json!({"status": "ready"})).into_response()
}

fn uptime_seconds(shared: &Shared) -> u64 {
    shared.started.elapsed().as_secs()
}

/// Sums over the cluster's nodes.
#[derive(Serialize)]
pub(super) struct ClusterFigures {
    nodes: usize,
    connections: usize,
    subscriptions: usize,
}

#[derive(Serialize)]
pub(super) struct Stats {
    total_connections: u64,
    active_connections: usize,
    authenticated_connections: usize,
    total_messages_sent: u64,
    total_messages_received: u64,
    channels: usize,
    subscription_counts: BTreeMap<Arc<str>, usize>,
    rooms: usize,
    rate_limited: u64,
    slow_consumer_disconnects: u64,
    ping_timeouts: u64,
    connection_errors: u64,
    errors: u64,
    average_connection_duration_seconds: f64,
    average_latency_ms: f64,
    messages_per_second: f64,
    connection_states: BTreeMap<&'static str, usize>,
    uptime_seconds: u64,
    node_id: String,
    nodes: Vec<NodeReport>,
    cluster: ClusterFigures,
    history: HistoryFigures,
    user_queues: UserQueueFigures,
}

/// History held across all channels (beyond HTTP_API.md's list: the issue
/// asks for the budget to be visible).
#[derive(Serialize)]
pub(super) struct HistoryFigures {
    channels: usize,
    events: usize,
    bytes: usize,
    budget_bytes: usize,
    trimmed_for_budget: u64,
}

/// Offline queues per user.
#[derive(Serialize)]
pub(super) struct UserQueueFigures {
    queued: usize,
    dropped: u64,
}

/// `GET /api/stats`.
///
/// * `total_connections`: WebSocket connections accepted since start;
///   `active_connections`: live now; `authenticated_connections`: live
///   with a user.
/// * `total_messages_*`: frames written / data messages read, by closed
///   and live connections together.
/// * `rate_limited`: inbound messages dropped by the rate limiter.
/// * `errors`: `error` messages sent to clients.
/// * `average_connection_duration_seconds`: over closed connections and
///   the ages of live ones.
/// * `average_latency_ms`: mean publish latency (accepting an event to
///   having queued it for every local subscriber).
/// * `messages_per_second`: messages in both directions per second over
///   the latest load sample's window.
///
/// Counts of connections are current; traffic totals, rates and
/// `connection_states` come from the latest load sample
/// ([`crate::Load`], at most `server.load_interval_ms` old), so a call
/// never walks the connections.
pub(super) async fn stats(State(api): State<Arc<ApiState>>) -> Json<Stats> {
    let shared = &api.shared;
    let m = &shared.metrics;
    let snap = Snapshot::take(shared);
    let rate = snap.messages_per_second();
    let channels = shared.hub.channels();
    let closed = m.connections_closed.load(Relaxed);
    let lived_ms = m.closed_connection_ms.load(Relaxed) + snap.live_ms;
    let lives = closed + snap.live as u64;
    let average_connection_duration_seconds = if lives == 0 {
        0.0
    } else {
        lived_ms as f64 / lives as f64 / 1000.0
    };
    let uptime = uptime_seconds(shared);
    // The registry lags by a heartbeat: this node's own line is fresh.
    let (nodes, err) = crate::Node::from_shared(shared.clone())
        .cluster_nodes()
        .await;
    if let Some(e) = err {
        tracing::warn!(error = %e, "node registry unavailable; reporting this node alone");
    }
    let cluster = ClusterFigures {
        nodes: nodes.len(),
        connections: nodes.iter().map(|n| n.connections).sum(),
        subscriptions: nodes.iter().map(|n| n.subscriptions).sum(),
    };
    Json(Stats {
        total_connections: m.connections_accepted.load(Relaxed),
        active_connections: snap.live,
        authenticated_connections: snap.authenticated,
        total_messages_sent: snap.messages_sent,
        total_messages_received: snap.messages_received,
        channels: channels.len(),
        subscription_counts: channels
            .into_iter()
            .map(|c| (c.channel, c.subscribers))
            .collect(),
        rooms: shared.rooms.counts().0,
        rate_limited: m.rate_limited_messages.load(Relaxed),
        slow_consumer_disconnects: m.slow_consumer_disconnects.load(Relaxed),
        ping_timeouts: m.ping_timeouts.load(Relaxed),
        connection_errors: m.connection_errors.load(Relaxed),
        errors: m.errors_sent.load(Relaxed),
        average_connection_duration_seconds,
        average_latency_ms: m.publish_latency.mean_ms(),
        messages_per_second: rate,
        connection_states: BTreeMap::from([("open", snap.open), ("closing", snap.closing)]),
        uptime_seconds: uptime,
        node_id: shared.node_id.clone(),
        nodes,
        cluster,
        history: {
            let h = shared.engine.history.stats();
            HistoryFigures {
                channels: h.channels,
                events: h.events,
                bytes: h.bytes,
                budget_bytes: h.budget_bytes,
                trimmed_for_budget: h.trimmed_for_budget,
            }
        },
        user_queues: UserQueueFigures {
            queued: shared.engine.broker.queued_for_users(),
            dropped: shared.engine.broker.dropped_for_users(),
        },
    })
}

/// One built-in stream of PROTOCOL.md section 8.
#[derive(Clone, Copy, Serialize)]
pub(super) struct StreamInfo {
    channel: &'static str,
    description: &'static str,
    event_types: &'static [&'static str],
    #[serde(skip_serializing_if = "Option::is_none")]
    interval_ms: Option<u64>,
}

/// The built-in streams with their documented default intervals
/// (`interval_ms` only for streams published on a timer).
const STREAMS: &[StreamInfo] = &[
    StreamInfo {
        channel: "metrics",
        description: "System metrics: cpu, memory, events/s, connections, messages/s",
        event_types: &["system_metrics"],
        interval_ms: Some(5_000),
    },
    StreamInfo {
        channel: "nodes",
        description: "Status of each hub node: address, connections, uptime, latency",
        event_types: &["node_status_update"],
        interval_ms: Some(5_000),
    },
    StreamInfo {
        channel: "tasks",
        description: "The live task queue: task changes as they happen, queue_status every 2 s",
        event_types: &[
            "task_created",
            "task_updated",
            "task_completed",
            "task_failed",
            "queue_status",
        ],
        interval_ms: Some(2_000),
    },
    StreamInfo {
        channel: "alerts",
        description: "Threshold and anomaly alerts on recorded metrics, at once",
        event_types: &["alert"],
        interval_ms: None,
    },
    StreamInfo {
        channel: "resources",
        description: "Per-node resources: cpu, memory, file descriptors, queue bytes",
        event_types: &["resource_update"],
        interval_ms: Some(15_000),
    },
    StreamInfo {
        channel: "topology",
        description: "Hub nodes and their links, on change",
        event_types: &["topology_update"],
        interval_ms: None,
    },
    StreamInfo {
        channel: "connections",
        description: "Connections opened and closed, on change (admin only)",
        event_types: &["connection_opened", "connection_closed"],
        interval_ms: None,
    },
    StreamInfo {
        channel: "status",
        description: "Status changes of the hub, on change",
        event_types: &["status_change"],
        interval_ms: None,
    },
    StreamInfo {
        channel: "logs",
        description: "Warnings and errors logged by the hub, on change (admin only)",
        event_types: &["log"],
        interval_ms: None,
    },
];

/// `GET /api/streams`: the built-in streams (open to everyone), with the
/// intervals the applications publishing them set
/// ([`crate::Node::set_stream_interval`]), else the documented defaults.
pub(super) async fn streams(State(api): State<Arc<ApiState>>) -> Json<Vec<StreamInfo>> {
    let set = api.shared.stream_intervals.read();
    Json(
        STREAMS
            .iter()
            .map(|s| match set.iter().find(|(c, _)| c == s.channel) {
                Some((_, interval_ms)) => StreamInfo {
                    interval_ms: *interval_ms,
                    ..*s
                },
                None => *s,
            })
            .collect(),
    )
}

#[derive(Serialize)]
pub(super) struct ChannelAnswer {
    pub(super) channel: Arc<str>,
    subscribers: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch: Option<String>,
    history_size: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) presence_stats: Option<PresenceStats>,
}

fn channel_answer(
    shared: &Shared,
    channel: Arc<str>,
    subscribers: usize,
    pos: Option<Position>,
) -> ChannelAnswer {
    let history_size = shared.config.namespace(&channel).history_size;
    let pos = pos.filter(|p| !p.epoch.is_empty());
    ChannelAnswer {
        channel,
        subscribers,
        offset: pos.as_ref().map(|p| p.offset),
        epoch: pos.map(|p| p.epoch),
        history_size,
        presence_stats: None,
    }
}

/// `GET /api/channels`: every known channel (with local subscribers or
/// held history), by name.
pub(super) async fn channels(
    State(api): State<Arc<ApiState>>,
) -> Result<Json<Vec<ChannelAnswer>>, ApiError> {
    let shared = &api.shared;
    let mut known: BTreeMap<Arc<str>, (usize, Option<Position>)> = shared
        .hub
        .channels()
        .into_iter()
        .map(|c| (c.channel, (c.subscribers, None)))
        .collect();
    let held = shared
        .engine
        .history
        .channels()
        .await
        .map_err(|e| ApiError::engine(&shared.metrics, e))?;
    for (name, pos) in held {
        known.entry(name).or_insert((0, None)).1 = Some(pos);
    }
    let mut out = Vec::with_capacity(known.len());
    for (c, (n, mut pos)) in known {
        if pos.is_none() {
            // Subscribed but never written: opened by its first subscriber
            // (offset 0 of an epoch) where its namespace keeps history.
            pos = shared
                .engine
                .history
                .read(&c, Some(u64::MAX), 0)
                .await
                .map_err(|e| ApiError::engine(&shared.metrics, e))?
                .top
                .into();
        }
        out.push(with_presence(shared, channel_answer(shared, c, n, pos)).await?);
    }
    Ok(Json(out))
}

/// `GET /api/channels/{channel}`: one channel; 404 `not_found` while it is
/// unknown (no subscribers and no held history).
pub(super) async fn channel(
    State(api): State<Arc<ApiState>>,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<ChannelAnswer>, ApiError> {
    extract::channel(&name)?;
    let shared = &api.shared;
    let subscribers = shared.hub.subscriber_count(&name).unwrap_or(0);
    let held = subscribers > 0
        || shared
            .engine
            .history
            .holds(&name)
            .await
            .map_err(|e| ApiError::engine(&shared.metrics, e))?;
    if !held {
        return Err(ApiError::not_found(format!(
            "channel {} is not known",
            quote(&name)
        )));
    }
    let read = shared
        .engine
        .history
        .read(&name, Some(u64::MAX), 0)
        .await
        .map_err(|e| ApiError::engine(&shared.metrics, e))?;
    let answer = channel_answer(shared, Arc::from(name), subscribers, Some(read.top));
    Ok(Json(with_presence(shared, answer).await?))
}

#[derive(Serialize)]
pub(super) struct HistoryAnswer {
    channel: String,
    epoch: String,
    offset: u64,
    events: Vec<TimedEvent>,
}

/// `GET /api/channels/{channel}/history?since_offset=&limit=`: retained
/// events in increasing offset order; `since_offset` is exclusive, and
/// without it the newest `limit` (default 100, capped by the history size).
pub(super) async fn history(
    State(api): State<Arc<ApiState>>,
    ApiPath(name): ApiPath<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<HistoryAnswer>, ApiError> {
    extract::channel(&name)?;
    let mut since = None;
    let mut limit = 100usize;
    for (k, v) in extract::query_pairs(query.as_deref()) {
        match k.as_str() {
            "since_offset" => {
                since = Some(v.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "since_offset must be a non-negative integer, not {}",
                        quote(&v)
                    ))
                })?)
            }
            "limit" => limit = extract::query_usize("limit", &v)?,
            _ => {}
        }
    }
    let shared = &api.shared;
    let limit = limit.min(shared.config.namespace(&name).history_size);
    let read = shared
        .engine
        .history
        .read(&name, since, limit)
        .await
        .map_err(|e| ApiError::engine(&shared.metrics, e))?;
    Ok(Json(HistoryAnswer {
        channel: name,
        epoch: read.top.epoch,
        offset: read.top.offset,
        events: read.events.iter().map(|p| p.timed()).collect(),
    }))
}

#[derive(Serialize)]
pub(super) struct ConnectionAnswer {
    connection_id: String,
    user_id: Option<String>,
    remote_addr: String,
    connected_at: u64,
    state: &'static str,
    encoding: &'static str,
    subscriptions: Vec<Arc<str>>,
    messages_sent: u64,
    messages_received: u64,
    queue_bytes: usize,
}

fn connection_answer(shared: &Shared, c: &ConnHandle) -> ConnectionAnswer {
    ConnectionAnswer {
        connection_id: shared.conns.connection_id(c.seq),
        user_id: c.user_id.as_deref().map(str::to_owned),
        remote_addr: c.remote_addr.to_string(),
        connected_at: c.connected_at_ms,
        state: c.state().name(),
        encoding: c.wire.encoding.name(),
        subscriptions: c.subscriptions.lock().clone(),
        messages_sent: c.stats.messages_sent.load(Relaxed),
        messages_received: c.stats.messages_received.load(Relaxed),
        queue_bytes: c.queued_bytes(),
    }
}

/// `GET /api/connections?user_id=&channel=&limit=`: live connections of
/// this node, oldest first, filtered by user and/or subscribed channel.
/// `limit` defaults to 100 and is capped at 10 000.
pub(super) async fn connections(
    State(api): State<Arc<ApiState>>,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<ConnectionAnswer>>, ApiError> {
    let mut user_id = None;
    let mut channel = None;
    let mut limit = CONNECTIONS_DEFAULT_LIMIT;
    for (k, v) in extract::query_pairs(query.as_deref()) {
        match k.as_str() {
            "user_id" => {
                extract::user_id(&v)?;
                user_id = Some(v);
            }
            "channel" => {
                extract::channel(&v)?;
                channel = Some(v);
            }
            "limit" => limit = extract::query_usize("limit", &v)?.min(CONNECTIONS_MAX_LIMIT),
            _ => {}
        }
    }
    let shared = &api.shared;
    let mut found: Vec<Arc<ConnHandle>> = match (&user_id, &channel) {
        (_, Some(ch)) => {
            let mut subs = shared.hub.subscribers(ch);
            if let Some(u) = &user_id {
                subs.retain(|c| c.user_id.as_deref() == Some(u.as_str()));
            }
            subs
        }
        (Some(u), None) => shared.conns.of_user(u),
        (None, None) => shared.conns.all(),
    };
    found.sort_unstable_by_key(|c| c.seq);
    Ok(Json(
        found
            .iter()
            .take(limit)
            .map(|c| connection_answer(shared, c))
            .collect(),
    ))
}

/// `GET /api/openapi.json`: the OpenAPI document, built once at start.
pub(super) async fn openapi(State(api): State<Arc<ApiState>>) -> Response {
    ([(CONTENT_TYPE, "application/json")], api.openapi.clone()).into_response()
}
