//! The hub seen from outside before the workers start: its pid(s), memory
//! and `active_connections` from the HTTP API of every node.

use super::{ConnectionsArgs, Setup};
use crate::nodes::ServerProcs;
use crate::procfs;
use crate::target::get_json;
use crate::workers::HostInfo;

/// Everything sampled before the workers start.
pub(super) struct Before {
    /// The server processes read, and which node each serves.
    pub(super) servers: ServerProcs,
    /// Per process (order of `servers.procs`): its memory.
    pub(super) memory: Vec<Option<procfs::Memory>>,
    /// Per node: its `active_connections`.
    pub(super) active: Vec<Option<u64>>,
    pub(super) notes: Vec<String>,
    pub(super) host: HostInfo,
}

pub(super) async fn sample_before(args: &ConnectionsArgs, setup: &Setup) -> Before {
    let servers = ServerProcs::resolve(&args.server_pids, &setup.urls, &setup.targets, "RSS");
    let mut notes = servers.notes.clone();
    let memory = read_memory(&servers, "", &mut notes);
    let active = active_connections(args, setup, &mut notes).await;
    Before {
        servers,
        memory,
        active,
        notes,
        host: HostInfo::now(),
    }
}

/// The memory of every process in `servers`, noting the ones that could
/// not be read (`when`: "" before, " after" at the second sample).
pub(super) fn read_memory(
    servers: &ServerProcs,
    when: &str,
    notes: &mut Vec<String>,
) -> Vec<Option<procfs::Memory>> {
    servers
        .procs
        .iter()
        .map(|p| match procfs::memory(p.pid) {
            Ok(m) => Some(m),
            Err(e) => {
                notes.push(format!("reading /proc/{}/status{when}: {e}", p.pid));
                None
            }
        })
        .collect()
}

/// `active_connections` of every node, from its `GET /api/stats`.
pub(super) async fn active_connections(
    args: &ConnectionsArgs,
    setup: &Setup,
    notes: &mut Vec<String>,
) -> Vec<Option<u64>> {
    let mut out = Vec::with_capacity(setup.targets.len());
    for k in 0..setup.targets.len() {
        out.push(
            get_node_json(args, setup, k, "/api/stats", notes)
                .await
                .and_then(|v| v["active_connections"].as_u64()),
        );
    }
    out
}

/// A JSON GET against node `k`'s API; `None` (with a note) when it did
/// not answer with one. Notes name the node when there are several.
pub(super) async fn get_node_json(
    args: &ConnectionsArgs,
    setup: &Setup,
    k: usize,
    path: &str,
    notes: &mut Vec<String>,
) -> Option<serde_json::Value> {
    let node = if setup.targets.len() > 1 {
        format!("{}: ", setup.urls[k])
    } else {
        String::new()
    };
    match get_json(&setup.targets[k], path, args.api_key.as_deref()).await {
        Ok(Some(v)) => Some(v),
        Ok(None) if path == "/api/stats" => {
            note_once(
                notes,
                &format!("{node}GET /api/stats: 404 (the hub does not serve it yet)"),
            );
            None
        }
        Ok(None) => {
            notes.push(format!(
                "{node}GET {path}: 404 (not served yet, or the channel is unknown)"
            ));
            None
        }
        Err(e) => {
            note_once(notes, &format!("{node}{e:#}"));
            None
        }
    }
}

pub(super) fn note_once(notes: &mut Vec<String>, note: &str) {
    if !notes.iter().any(|n| n == note) {
        notes.push(note.to_owned());
    }
}
