//! The hub seen from outside before the workers start: its pid, memory and
//! `active_connections` from the HTTP API.

use super::{ConnectionsArgs, Setup};
use crate::procfs;
use crate::target::get_json;
use crate::workers::HostInfo;

/// Everything sampled before the workers start.
pub(super) struct Before {
    pub(super) pid: Option<u32>,
    pub(super) memory: Option<procfs::Memory>,
    pub(super) active: Option<u64>,
    pub(super) notes: Vec<String>,
    pub(super) host: HostInfo,
}

pub(super) async fn sample_before(args: &ConnectionsArgs, setup: &Setup) -> Before {
    let mut notes = Vec::new();
    let pid = args.server_pid.or_else(|| {
        let found = procfs::pid_listening_on(setup.target.addr.port());
        if found.is_none() {
            notes.push(format!(
                "no process on this machine listens on port {}: RSS not measured (give --server-pid)",
                setup.target.addr.port()
            ));
        }
        found
    });
    let memory = pid.and_then(|p| match procfs::memory(p) {
        Ok(m) => Some(m),
        Err(e) => {
            notes.push(format!("reading /proc/{p}/status: {e}"));
            None
        }
    });
    let active = active_connections(args, setup, &mut notes).await;
    Before {
        pid,
        memory,
        active,
        notes,
        host: HostInfo::now(),
    }
}

pub(super) async fn active_connections(
    args: &ConnectionsArgs,
    setup: &Setup,
    notes: &mut Vec<String>,
) -> Option<u64> {
    match get_json(&setup.target, "/api/stats", args.api_key.as_deref()).await {
        Ok(Some(v)) => v["active_connections"].as_u64(),
        Ok(None) => {
            note_once(notes, "GET /api/stats: 404 (the hub does not serve it yet)");
            None
        }
        Err(e) => {
            note_once(notes, &format!("{e:#}"));
            None
        }
    }
}

pub(super) fn note_once(notes: &mut Vec<String>, note: &str) {
    if !notes.iter().any(|n| n == note) {
        notes.push(note.to_owned());
    }
}
