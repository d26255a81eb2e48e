//! Several hub nodes at once: a cluster driven without a load balancer.
//!
//! `--url` may name several nodes (repeat the flag, or separate URLs with
//! commas). Worker `w` connects to node `w % n` and publisher `p`
//! publishes through node `p % n`, so clients spread evenly, and a
//! publication sent through one node reaches subscribers held by the
//! others: its publish-to-receive latency is then the cross-node one.
//! `--server-pid` may name several processes (every node, and the Redis
//! server between them): their CPU time and RSS are read one by one and
//! summed, so "CPU per delivery" is the whole cluster's.
//!
//! Shared by the publish scenarios (`load`) and `connections`; the pure
//! parts (splitting, spreading, pid resolution) take their inputs as
//! arguments so they are unit-tested without a hub.

use std::net::IpAddr;

use serde::Serialize;

use crate::procfs;
use crate::target::WsTarget;
use crate::workers::default_sources;

/// The URLs in `--url` (or `--api-url`) values, in order: each value may
/// hold several, separated by commas. A comma splits only where the next
/// piece starts with a scheme (`ws://`, `http://`, ...), so a comma inside
/// one URL's query survives; empty pieces and surrounding blanks are
/// dropped. Exists because both flags are repeatable and comma-separated.
pub(crate) fn split_urls(values: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for value in values {
        let mut current = String::new();
        for (i, piece) in value.split(',').enumerate() {
            if i == 0 {
                current.push_str(piece);
            } else if starts_with_scheme(piece.trim_start()) || piece.trim().is_empty() {
                out.push(std::mem::take(&mut current));
                current.push_str(piece);
            } else {
                current.push(',');
                current.push_str(piece);
            }
        }
        out.push(current);
    }
    out.into_iter()
        .map(|u| u.trim().to_owned())
        .filter(|u| !u.is_empty())
        .collect()
}

/// The nodes of `--url` values: the URLs as given (for messages) and
/// parsed; at least one. The one place both the publish scenarios and
/// `connections` read their targets.
pub(crate) fn ws_targets(values: &[String]) -> anyhow::Result<(Vec<String>, Vec<WsTarget>)> {
    let urls = split_urls(values);
    if urls.is_empty() {
        anyhow::bail!("--url: no URL given");
    }
    let targets = urls
        .iter()
        .map(|u| WsTarget::parse(u))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((urls, targets))
}

/// `scheme://` at the start: a letter, then letters, digits, `+`, `-`, `.`.
fn starts_with_scheme(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once("://") else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// The node that worker (or publisher, or churn cycle) `index` uses out of
/// `nodes`: round robin, so every node gets an even share. The one place
/// the spreading rule lives, for workers and publishers alike.
pub(crate) fn node_of(index: usize, nodes: usize) -> usize {
    index % nodes.max(1)
}

/// The worker count for `asked` workers over `nodes` nodes: at least one
/// per node, so that every node gets subscribers (or connections).
pub(crate) fn workers_for(asked: usize, nodes: usize) -> usize {
    asked.max(nodes).max(1)
}

/// Default source addresses for `workers` workers spread over `targets`:
/// [`default_sources`] of the one target (as with a single `--url`), or of
/// each worker's own target when the nodes' addresses call for different
/// sources (a loopback node and a remote one). Indexed by worker, modulo
/// its length, as `--source-addrs` is.
pub(crate) fn default_sources_for(targets: &[WsTarget], workers: usize) -> Vec<IpAddr> {
    let lists: Vec<Vec<IpAddr>> = targets
        .iter()
        .map(|t| default_sources(t.addr.ip(), workers))
        .collect();
    match lists.first() {
        None => default_sources(IpAddr::from([127, 0, 0, 1]), workers),
        Some(first) if lists.iter().all(|l| l == first) => first.clone(),
        Some(_) => (0..workers)
            .map(|w| {
                let l = &lists[node_of(w, lists.len())];
                l[w % l.len()]
            })
            .collect(),
    }
}

/// A server process whose CPU time (load scenarios) or RSS (`connections`)
/// the bench reads: a node, or any other process of the cluster (Redis)
/// given with `--server-pid`. Exists so the report says which figure is
/// whose.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServerProcess {
    /// The pid.
    pub pid: u32,
    /// The `--url`s whose port this process listens on on this machine
    /// (empty for a process that serves none of them, such as Redis).
    pub urls: Vec<String>,
}

/// The processes a run measures, and how they map to the nodes.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServerProcs {
    /// Every process measured, in order: the `--server-pid`s as given, or
    /// one per URL found by its port.
    pub(crate) procs: Vec<ServerProcess>,
    /// Per node (index into the URLs): the pid listening on its port.
    pub(crate) node_pid: Vec<Option<u32>>,
    /// Whether `procs` covers the whole cluster, so that totals mean
    /// something: true when pids were given, or every node's was found.
    pub(crate) complete: bool,
    /// Why a figure will be missing.
    pub(crate) notes: Vec<String>,
}

impl ServerProcs {
    /// Resolves the processes for `urls` (their ports in `ports`, same
    /// order): the `given` pids, or the process listening on each port, as
    /// `listening_on` finds it. `what` names the figure for the notes
    /// ("CPU", "RSS").
    pub(crate) fn resolve_with(
        given: &[u32],
        urls: &[String],
        ports: &[u16],
        what: &str,
        listening_on: impl Fn(u16) -> Option<u32>,
    ) -> ServerProcs {
        let mut node_pid: Vec<Option<u32>> = ports.iter().map(|p| listening_on(*p)).collect();
        // One URL and one pid given: that pid is the hub (as the flag has
        // always meant), also when /proc does not show its socket (another
        // network namespace).
        if let ([pid], [None]) = (given, node_pid.as_slice()) {
            node_pid[0] = Some(*pid);
        }
        let mut notes = Vec::new();
        let pids: Vec<u32> = if given.is_empty() {
            for (k, (pid, port)) in node_pid.iter().zip(ports).enumerate() {
                if pid.is_none() {
                    notes.push(if urls.len() == 1 {
                        format!(
                            "no process on this machine listens on port {port}: {what} not measured (give --server-pid)"
                        )
                    } else {
                        format!(
                            "no process on this machine listens on port {port} ({}): its {what} not measured and no total given (give --server-pid for every node)",
                            urls[k]
                        )
                    });
                }
            }
            node_pid.iter().flatten().copied().collect()
        } else {
            given.to_vec()
        };
        let mut procs: Vec<ServerProcess> = Vec::new();
        for pid in pids {
            if procs.iter().any(|p| p.pid == pid) {
                continue;
            }
            let mut served: Vec<String> = Vec::new();
            for (k, np) in node_pid.iter().enumerate() {
                if *np == Some(pid) && !served.contains(&urls[k]) {
                    served.push(urls[k].clone());
                }
            }
            procs.push(ServerProcess { pid, urls: served });
        }
        ServerProcs {
            complete: !given.is_empty() || node_pid.iter().all(Option::is_some),
            procs,
            node_pid,
            notes,
        }
    }

    /// [`ServerProcs::resolve_with`] on this machine's `/proc`.
    pub(crate) fn resolve(
        given: &[u32],
        urls: &[String],
        targets: &[WsTarget],
        what: &str,
    ) -> ServerProcs {
        let ports: Vec<u16> = targets.iter().map(|t| t.addr.port()).collect();
        Self::resolve_with(given, urls, &ports, what, procfs::pid_listening_on)
    }

    /// The first pid, for the reports' single `server_pid` field (what it
    /// held before there could be several).
    pub(crate) fn first_pid(&self) -> Option<u32> {
        self.procs.first().map(|p| p.pid)
    }

    /// CPU seconds each process has used so far, in the order of `procs`
    /// (`None` where `/proc` could not be read).
    pub(crate) fn cpu_now(&self) -> Vec<Option<f64>> {
        self.procs
            .iter()
            .map(|p| procfs::cpu_seconds(p.pid).ok())
            .collect()
    }

    /// The CPU each process used between two [`ServerProcs::cpu_now`]
    /// readings, and their sum: the sum only when the list is complete and
    /// every process was read both times (a partial sum would pass for the
    /// cluster's).
    pub(crate) fn cpu_used(
        &self,
        before: &[Option<f64>],
        after: &[Option<f64>],
    ) -> (Vec<PidCpu>, Option<f64>) {
        let deltas: Vec<Option<f64>> = before
            .iter()
            .zip(after)
            .map(|(a, b)| Some(b.as_ref()? - a.as_ref()?))
            .collect();
        let by_pid = self
            .procs
            .iter()
            .zip(&deltas)
            .map(|(p, d)| PidCpu {
                pid: p.pid,
                cpu_seconds: d.map(round_ms),
            })
            .collect();
        let total = (self.complete && !self.procs.is_empty() && deltas.len() == self.procs.len())
            .then(|| deltas.iter().copied().sum::<Option<f64>>())
            .flatten()
            .map(round_ms);
        (by_pid, total)
    }
}

/// Seconds rounded to the millisecond, as the reports print them.
fn round_ms(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// One process's CPU time over a measured window. Exists so a report over
/// several processes (nodes and Redis) shows each one's share next to the
/// total.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct PidCpu {
    /// The process.
    pub pid: u32,
    /// CPU seconds (user + system) it used in the window; absent when its
    /// `/proc/PID/stat` could not be read (it exited?).
    pub cpu_seconds: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn several_urls_parse() {
        // One value, as today.
        assert_eq!(
            split_urls(&strings(&["ws://127.0.0.1:8000/ws"])),
            ["ws://127.0.0.1:8000/ws"]
        );
        // Comma-separated, with blanks and a trailing comma.
        assert_eq!(
            split_urls(&strings(&[
                "ws://127.0.0.1:8001/ws, ws://127.0.0.1:8002/ws,"
            ])),
            ["ws://127.0.0.1:8001/ws", "ws://127.0.0.1:8002/ws"]
        );
        // Repeated, and both at once.
        assert_eq!(
            split_urls(&strings(&["ws://a:1/ws", "ws://b:2/ws,ws://c:3/ws"])),
            ["ws://a:1/ws", "ws://b:2/ws", "ws://c:3/ws"]
        );
        // A comma inside a query stays in its URL.
        assert_eq!(
            split_urls(&strings(&["ws://a:1/ws?tags=x,y,ws://b:2/ws?tags=z"])),
            ["ws://a:1/ws?tags=x,y", "ws://b:2/ws?tags=z"]
        );
        // API URLs the same way.
        assert_eq!(
            split_urls(&strings(&["http://a:1,http://b:2"])),
            ["http://a:1", "http://b:2"]
        );
        assert!(split_urls(&strings(&[" , "])).is_empty());
        assert!(starts_with_scheme("ws://x") && starts_with_scheme("svc+h2://x"));
        assert!(!starts_with_scheme("y") && !starts_with_scheme("1a://x"));
    }

    #[test]
    fn workers_and_publishers_spread_round_robin() {
        assert_eq!(
            (0..7).map(|w| node_of(w, 3)).collect::<Vec<_>>(),
            [0, 1, 2, 0, 1, 2, 0]
        );
        assert_eq!(node_of(5, 1), 0);
        assert_eq!(node_of(5, 0), 0);
        // Fewer workers than nodes: one per node.
        assert_eq!(workers_for(1, 3), 3);
        assert_eq!(workers_for(4, 3), 4);
        assert_eq!(workers_for(0, 0), 1);
    }

    #[test]
    fn sources_follow_each_workers_node() {
        let a = WsTarget::parse("ws://127.0.0.1:8001/ws").unwrap();
        let b = WsTarget::parse("ws://127.0.0.1:8002/ws").unwrap();
        // Loopback nodes: 127.0.0.1, .2, ... one per worker, as for one URL.
        assert_eq!(
            default_sources_for(&[a.clone(), b], 3),
            default_sources(a.addr.ip(), 3)
        );
        let remote = WsTarget::parse("ws://10.1.2.3:8000/ws").unwrap();
        let s = default_sources_for(&[a, remote], 4);
        assert_eq!(
            s,
            ["127.0.0.1", "0.0.0.0", "127.0.0.3", "0.0.0.0"].map(|x| x.parse::<IpAddr>().unwrap())
        );
    }

    #[test]
    fn pids_by_port_or_as_given() {
        let urls = strings(&["ws://h:8001/ws", "ws://h:8002/ws", "ws://h:8001/ws"]);
        let ports = [8001, 8002, 8001];
        let lookup = |p: u16| match p {
            8001 => Some(101),
            8002 => Some(102),
            _ => None,
        };
        // Default: one per node, the same process once.
        let s = ServerProcs::resolve_with(&[], &urls, &ports, "CPU", lookup);
        assert!(s.complete && s.notes.is_empty());
        assert_eq!(s.node_pid, [Some(101), Some(102), Some(101)]);
        assert_eq!(
            s.procs,
            [
                ServerProcess {
                    pid: 101,
                    urls: strings(&["ws://h:8001/ws"])
                },
                ServerProcess {
                    pid: 102,
                    urls: strings(&["ws://h:8002/ws"])
                },
            ]
        );
        assert_eq!(s.first_pid(), Some(101));
        // Given: every pid as given (Redis serves no URL), labelled.
        let g = ServerProcs::resolve_with(&[102, 101, 6379, 101], &urls, &ports, "CPU", lookup);
        assert!(g.complete);
        assert_eq!(
            g.procs.iter().map(|p| p.pid).collect::<Vec<_>>(),
            [102, 101, 6379]
        );
        assert!(g.procs[2].urls.is_empty());
        // One URL, one pid given that /proc does not show listening: the hub.
        let h = ServerProcs::resolve_with(&[7], &urls[..1], &[9999], "RSS", lookup);
        assert_eq!(h.node_pid, [Some(7)]);
        assert_eq!(h.procs[0].urls, strings(&["ws://h:8001/ws"]));
        // A node not found: noted, and no total.
        let m = ServerProcs::resolve_with(&[], &urls[..2], &[8001, 9999], "CPU", lookup);
        assert!(!m.complete);
        assert_eq!(m.procs.len(), 1);
        assert!(m.notes[0].contains("9999"), "{:?}", m.notes);
        // One URL not found: today's note.
        let one = ServerProcs::resolve_with(&[], &urls[..1], &[9999], "RSS", lookup);
        assert_eq!(
            one.notes,
            ["no process on this machine listens on port 9999: RSS not measured (give --server-pid)"]
        );
    }

    #[test]
    fn cpu_is_summed_only_when_every_process_was_read() {
        let urls = strings(&["ws://h:1/ws", "ws://h:2/ws"]);
        let s = ServerProcs::resolve_with(&[11, 12, 13], &urls, &[1, 2], "CPU", |p| {
            Some(u32::from(p) + 10)
        });
        let (by, total) = s.cpu_used(
            &[Some(1.0), Some(2.0), Some(0.5)],
            &[Some(1.25), Some(2.5), Some(0.625)],
        );
        assert_eq!(
            by,
            [
                PidCpu {
                    pid: 11,
                    cpu_seconds: Some(0.25)
                },
                PidCpu {
                    pid: 12,
                    cpu_seconds: Some(0.5)
                },
                PidCpu {
                    pid: 13,
                    cpu_seconds: Some(0.125)
                },
            ]
        );
        assert_eq!(total, Some(0.875));
        let (by, total) = s.cpu_used(
            &[Some(1.0), None, Some(0.5)],
            &[Some(2.0), Some(3.0), Some(1.0)],
        );
        assert_eq!(by[1].cpu_seconds, None);
        assert_eq!(total, None);
        // A node whose pid was not found: per pid yes, total no.
        let m = ServerProcs::resolve_with(&[], &urls, &[1, 2], "CPU", |p| (p == 1).then_some(11));
        let (by, total) = m.cpu_used(&[Some(1.0)], &[Some(2.0)]);
        assert_eq!(by.len(), 1);
        assert_eq!(total, None);
        // Nothing to measure: nothing to report.
        let none = ServerProcs::default();
        assert_eq!(none.cpu_used(&[], &[]), (Vec::new(), None));
    }
}
