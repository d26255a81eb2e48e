//! The node registry: every `heartbeat` each node writes its figures
//! (expiring after three heartbeats) and its `alive` key on every server
//! (the user scripts check it there), and indexes itself in a sorted set.

use std::sync::Weak;

use hubbub_server::engine::{EngineError, NodeReport};

use crate::{now_ms, Core};

/// Announces this node once.
pub(crate) async fn announce(core: &Core) {
    let Some(sink) = core.sink.get() else { return };
    let report = sink.report();
    let json = match serde_json::to_string(&report) {
        Ok(j) => j,
        Err(e) => {
            tracing::warn!(error = %e, "node report not encodable");
            return;
        }
    };
    let ttl = (core.heartbeat * 3).as_millis().max(1) as u64;
    let id = core.node_id();
    for (i, shard) in core.shards.iter().enumerate() {
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(core.keys.alive(id))
            .arg(1)
            .arg("PX")
            .arg(ttl)
            .ignore();
        if i == 0 {
            pipe.cmd("SET")
                .arg(core.keys.node(id))
                .arg(&json)
                .arg("PX")
                .arg(ttl)
                .ignore();
            pipe.cmd("ZADD")
                .arg(core.keys.nodes())
                .arg(now_ms())
                .arg(id)
                .ignore();
        }
        let mut conn = shard.conn.clone();
        if let Err(e) = core
            .call::<()>("announce", pipe.query_async(&mut conn))
            .await
        {
            tracing::debug!(error = %e, server = %shard.url, "node announcement failed");
        }
    }
}

/// Announces this node every heartbeat while its engine lives (a node
/// shut down inside an application stops announcing itself).
pub(crate) async fn heartbeat_loop(core: Weak<Core>) {
    let Some(period) = core.upgrade().map(|c| c.heartbeat) else {
        return;
    };
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(core) = core.upgrade() else { return };
        announce(&core).await;
    }
}

/// Every node whose announcement has not expired; forgets the others.
pub(crate) async fn list(core: &Core) -> Result<Vec<NodeReport>, EngineError> {
    let shard = &core.shards[0];
    let mut conn = shard.conn.clone();
    let ids: Vec<String> = core
        .call(
            "nodes",
            redis::cmd("ZRANGE")
                .arg(core.keys.nodes())
                .arg(0)
                .arg(-1)
                .query_async(&mut conn),
        )
        .await?;
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<String> = ids.iter().map(|id| core.keys.node(id)).collect();
    let values: Vec<Option<String>> = core
        .call(
            "nodes",
            redis::cmd("MGET").arg(&keys).query_async(&mut conn),
        )
        .await?;
    let mut out = Vec::new();
    let mut gone = Vec::new();
    for (id, v) in ids.iter().zip(values) {
        match v.and_then(|j| serde_json::from_str::<NodeReport>(&j).ok()) {
            Some(r) => out.push(r),
            None => gone.push(id.clone()),
        }
    }
    if !gone.is_empty() {
        let _ = core
            .call::<()>(
                "nodes",
                redis::cmd("ZREM")
                    .arg(core.keys.nodes())
                    .arg(&gone)
                    .query_async(&mut conn),
            )
            .await;
    }
    Ok(out)
}
