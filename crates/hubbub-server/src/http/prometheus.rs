//! `GET /metrics`: the Prometheus text exposition (format 0.0.4).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;

use super::snapshot::Snapshot;
use super::ApiState;
use crate::metrics::Exposition;

/// Content type of the text exposition format.
pub(super) const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4";

/// Renders every metric of the node.
pub(super) fn render(api: &ApiState) -> String {
    let shared = &api.shared;
    let m = &shared.metrics;
    let snap = Snapshot::take(shared);
    let channels = shared.hub.channels();
    let subscriptions: usize = channels.iter().map(|c| c.subscribers).sum();
    let c = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed);
    let mut e = Exposition::new();
    e.gauge(
        "hubbub_connections_active",
        "WebSocket connections live now.",
        snap.live as f64,
    );
    e.gauge(
        "hubbub_connections_authenticated",
        "Live WebSocket connections with a user.",
        snap.authenticated as f64,
    );
    e.gauge(
        "hubbub_connections_closing",
        "Live WebSocket connections that are closing.",
        snap.closing as f64,
    );
    e.counter(
        "hubbub_connections_accepted_total",
        "WebSocket connections accepted since start.",
        c(&m.connections_accepted),
    );
    e.counter(
        "hubbub_connections_closed_total",
        "WebSocket connections closed since start.",
        c(&m.connections_closed),
    );
    e.counter(
        "hubbub_handshakes_refused_total",
        "WebSocket handshakes refused (bad request, limits, timeouts).",
        c(&m.handshakes_refused),
    );
    e.counter(
        "hubbub_connections_refused_full_total",
        "Handshakes refused because the connection limit was reached.",
        c(&m.connections_refused_full),
    );
    e.counter(
        "hubbub_messages_sent_total",
        "Frames written to WebSocket clients.",
        snap.messages_sent,
    );
    e.counter(
        "hubbub_messages_received_total",
        "Data messages read from WebSocket clients.",
        snap.messages_received,
    );
    e.counter(
        "hubbub_bytes_sent_total",
        "Bytes written to WebSocket clients.",
        snap.bytes_sent,
    );
    e.counter(
        "hubbub_bytes_received_total",
        "Bytes read from WebSocket clients.",
        snap.bytes_received,
    );
    e.gauge(
        "hubbub_outbound_queue_bytes",
        "Bytes waiting in all outbound queues.",
        snap.queue_bytes as f64,
    );
    e.counter(
        "hubbub_publications_total",
        "Publications accepted (WebSocket, HTTP, in-process and user sends).",
        c(&m.publications),
    );
    e.counter(
        "hubbub_engine_errors_total",
        "Engine operations that failed and were answered unavailable.",
        c(&m.engine_errors),
    );
    e.counter(
        "hubbub_deliveries_total",
        "Events handed to connection queues.",
        c(&m.deliveries),
    );
    e.histogram(
        "hubbub_publish_latency_seconds",
        "Time from accepting a publication to having queued it for every local subscriber.",
        &m.publish_latency,
    );
    e.counter(
        "hubbub_rpc_calls_total",
        "rpc calls answered.",
        c(&m.rpc_calls),
    );
    e.counter(
        "hubbub_rpc_failed_total",
        "rpc calls answered with an error.",
        c(&m.rpc_failed),
    );
    e.counter(
        "hubbub_rpc_refused_total",
        "rpc calls refused: the connection had rpc.max_in_flight unanswered.",
        c(&m.rpc_refused),
    );
    e.counter(
        "hubbub_rpc_timeouts_total",
        "rpc handlers that did not answer within their timeout.",
        c(&m.rpc_timeouts),
    );
    e.counter(
        "hubbub_rpc_panics_total",
        "rpc handlers that panicked.",
        c(&m.rpc_panics),
    );
    e.counter(
        "hubbub_rpc_backend_failures_total",
        "rpc calls an HTTP backend did not answer (down, slow, wrong status or body).",
        c(&m.rpc_backend_failures),
    );
    e.histogram(
        "hubbub_rpc_latency_seconds",
        "Time from an rpc call's start to its answer being queued.",
        &m.rpc_latency,
    );
    hooks(&mut e, m);
    e.counter(
        "hubbub_slow_consumer_disconnects_total",
        "Connections closed with 4009 because their outbound queue overflowed.",
        c(&m.slow_consumer_disconnects),
    );
    e.counter(
        "hubbub_in_process_catch_ups_total",
        "In-process subscribers that fell behind their queue and caught up from history.",
        c(&m.in_process_catch_ups),
    );
    e.counter(
        "hubbub_rate_limited_messages_total",
        "Inbound messages dropped by the rate limiter.",
        c(&m.rate_limited_messages),
    );
    e.counter(
        "hubbub_rate_limit_disconnects_total",
        "Connections closed with 4029 for exceeding the message rate.",
        c(&m.rate_limit_disconnects),
    );
    e.counter(
        "hubbub_ping_timeouts_total",
        "Connections closed with 4010 for missing heartbeats.",
        c(&m.ping_timeouts),
    );
    e.counter(
        "hubbub_connection_errors_total",
        "Connections that ended with an I/O or protocol error.",
        c(&m.connection_errors),
    );
    e.counter(
        "hubbub_errors_sent_total",
        "error messages sent to clients.",
        c(&m.errors_sent),
    );
    e.gauge(
        "hubbub_channels",
        "Channels with local subscribers.",
        channels.len() as f64,
    );
    let (rooms, members) = shared.rooms.counts();
    e.gauge("hubbub_rooms", "Rooms on this node.", rooms as f64);
    e.gauge(
        "hubbub_room_members",
        "Connections in rooms on this node (one per room joined).",
        members as f64,
    );
    e.gauge(
        "hubbub_subscriptions",
        "Subscriptions of local connections to channels.",
        subscriptions as f64,
    );
    let h = shared.engine.history.stats();
    e.gauge(
        "hubbub_history_events",
        "Events held in channel history.",
        h.events as f64,
    );
    e.gauge(
        "hubbub_history_bytes",
        "Estimated bytes of channel history held.",
        h.bytes as f64,
    );
    e.gauge(
        "hubbub_history_budget_bytes",
        "Configured budget for all channel history.",
        h.budget_bytes as f64,
    );
    e.counter(
        "hubbub_history_trimmed_total",
        "History events dropped early to stay within the budget.",
        h.trimmed_for_budget,
    );
    e.gauge(
        "hubbub_user_queue_events",
        "Events queued for users with no live connection.",
        shared.engine.broker.queued_for_users() as f64,
    );
    e.counter(
        "hubbub_user_queue_dropped_total",
        "Queued user events dropped by overflow or TTL.",
        shared.engine.broker.dropped_for_users(),
    );
    e.counter(
        "hubbub_handshake_timeouts_total",
        "Peers dropped for not finishing their request head within the handshake timeout.",
        c(&m.handshake_timeouts),
    );
    e.counter(
        "hubbub_auth_failures_total",
        "WebSocket handshakes refused with 401 (missing, malformed, expired or wrongly signed token).",
        c(&m.auth_failures),
    );
    e.counter(
        "hubbub_auth_expired_disconnects_total",
        "Connections closed with 4001 because their token expired.",
        c(&m.auth_expired_disconnects),
    );
    e.counter(
        "hubbub_auth_refreshes_total",
        "Tokens refreshed on live connections with the auth command.",
        c(&m.auth_refreshes),
    );
    e.counter(
        "hubbub_forbidden_total",
        "Commands refused with forbidden (subscribe, publish, history, auth).",
        c(&m.forbidden),
    );
    e.counter(
        "hubbub_origin_refused_total",
        "WebSocket handshakes refused with 403 for a disallowed Origin.",
        c(&m.origin_refused),
    );
    e.counter(
        "hubbub_connection_rate_limited_ip_total",
        "WebSocket handshakes refused with 429 by the per-address connection rate.",
        c(&m.ip_rate_limited),
    );
    e.counter(
        "hubbub_connection_rate_limited_user_total",
        "WebSocket handshakes refused with 429 by the per-user connection rate.",
        c(&m.user_rate_limited),
    );
    e.counter(
        "hubbub_connections_refused_user_limit_total",
        "WebSocket handshakes refused with 503 by the per-user connection limit.",
        c(&m.user_connection_limit),
    );
    e.counter(
        "hubbub_subscription_limit_exceeded_total",
        "Subscriptions refused with limit_exceeded (connection.max_subscriptions).",
        c(&m.subscription_limit),
    );
    e.counter(
        "hubbub_api_refused_total",
        "HTTP API calls refused with 401 or 403.",
        c(&m.api_refused),
    );
    e.gauge(
        "hubbub_rate_limit_tracked",
        "Client addresses and users tracked by the connection-rate limits.",
        (shared.limits.per_ip.len() + shared.limits.per_user.len()) as f64,
    );
    e.counter(
        "hubbub_rate_limit_table_full_total",
        "New connections let through unchecked because the rate-limit table was full.",
        shared.limits.per_ip.overflowed() + shared.limits.per_user.overflowed(),
    );
    transport(&mut e, shared);
    process(&mut e, &snap.load);
    e.gauge(
        "hubbub_uptime_seconds",
        "Seconds since this node started.",
        shared.started.elapsed().as_secs_f64(),
    );
    e.finish()
}

/// HTTP connections and the accept loop.
fn transport(e: &mut Exposition, shared: &crate::state::Shared) {
    let m = &shared.metrics;
    let c = |a: &std::sync::atomic::AtomicU64| a.load(Relaxed);
    e.gauge(
        "hubbub_http_connections",
        "HTTP connections open (server.max_http_connections).",
        shared.http.open() as f64,
    );
    e.counter(
        "hubbub_http_connections_evicted_total",
        "Idle HTTP connections closed to make room for a new one (server.max_http_connections).",
        c(&m.http_connections_evicted),
    );
    e.counter(
        "hubbub_http_connections_refused_total",
        "HTTP requests answered 503 because every HTTP connection had a request in flight.",
        c(&m.http_connections_refused),
    );
    e.counter(
        "hubbub_http_idle_closed_total",
        "HTTP connections closed for idleness (no request head within server.http_idle_timeout_ms).",
        c(&m.http_idle_closed),
    );
    e.counter(
        "hubbub_http_body_timeouts_total",
        "HTTP requests answered 408 because the body was late (server.http_body_timeout_ms).",
        c(&m.http_body_timeouts),
    );
    e.counter(
        "hubbub_accept_errors_total",
        "Failed accepts (mostly out of descriptors); the accept loop backs off after each.",
        c(&m.accept_errors),
    );
}

/// The process's resources, from the latest load sample (the names client
/// libraries use for the same figures).
fn process(e: &mut Exposition, load: &crate::Load) {
    e.counter(
        "hubbub_load_samples_total",
        "Load samples taken (one pass over the connections each, per server.load_interval_ms).",
        load.sample,
    );
    e.fractional_counter(
        "process_cpu_seconds_total",
        "User and system CPU time of the process, seconds (as of the latest load sample).",
        load.cpu_seconds,
    );
    e.gauge(
        "process_resident_memory_bytes",
        "Resident memory of the process (as of the latest load sample).",
        load.memory_bytes as f64,
    );
    e.gauge(
        "process_open_fds",
        "Open file descriptors of the process (as of the latest load sample).",
        load.open_fds as f64,
    );
}

/// `GET /metrics` (open to everyone).
pub(super) async fn metrics(State(api): State<Arc<ApiState>>) -> impl IntoResponse {
    ([(CONTENT_TYPE, CONTENT_TYPE_TEXT)], render(&api))
}

/// The decision hooks' families, one series per hook kind.
fn hooks(e: &mut Exposition, m: &crate::metrics::Metrics) {
    let kinds = crate::hooks::HookKind::ALL;
    let per_kind = |f: &dyn Fn(&crate::metrics::HookMetrics) -> u64| -> Vec<(String, u64)> {
        kinds
            .iter()
            .map(|k| (format!("hook=\"{}\"", k.name()), f(&m.hooks[*k as usize])))
            .collect()
    };
    e.labeled_counters(
        "hubbub_hook_calls_total",
        "Decisions asked of a hook (Rust or HTTP), however they ended.",
        &per_kind(&|h| h.calls.load(Relaxed)),
    );
    e.labeled_counters(
        "hubbub_hook_denials_total",
        "Decisions a hook answered with deny.",
        &per_kind(&|h| h.denials.load(Relaxed)),
    );
    let mut failures = Vec::new();
    for k in kinds {
        let h = &m.hooks[k as usize];
        for (i, reason) in crate::metrics::HOOK_FAILURES.iter().enumerate() {
            failures.push((
                format!("hook=\"{}\",reason=\"{reason}\"", k.name()),
                h.failures[i].load(Relaxed),
            ));
        }
    }
    e.labeled_counters(
        "hubbub_hook_failures_total",
        "Hooks that failed (timeout, backend unreachable or another status, an answer that \
         is not a decision, a panic); on_failure decided instead.",
        &failures,
    );
    let latency: Vec<(String, &crate::metrics::Histogram)> = kinds
        .iter()
        .map(|k| {
            (
                format!("hook=\"{}\"", k.name()),
                &m.hooks[*k as usize].latency,
            )
        })
        .collect();
    e.labeled_histograms(
        "hubbub_hook_latency_seconds",
        "Time a hook took to decide, failures included.",
        &latency,
    );
}
