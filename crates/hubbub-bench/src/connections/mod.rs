//! `hubbub bench connections`: what an idle, subscribed connection costs
//! the hub.
//!
//! The parent process samples the server's RSS, spawns worker processes
//! (one process may hold at most 20,000 descriptors, and each needs its own
//! source address to stay clear of the ephemeral-port limit), follows their
//! progress, samples the RSS again once every connection has been held for
//! `--hold` seconds, and reports `(after - before) / connections`. With
//! several nodes (`--url` repeated), worker w connects to node w mod N, the
//! RSS of every server process is read, and the figure is the summed
//! growth over the summed connections, next to each node's own.
//!
//! Tests and embedding applications use [`run_in_process`], which runs the
//! same workers as tasks instead of processes.
//!
//! Files: this one holds the flags and resolved settings; `run` has the
//! entry points (in-process, CLI parent, worker process), `parent` the
//! parent's view of its workers, `sample` and `coordinate` the run itself,
//! `report` the figures and the table.

mod coordinate;
mod msg;
mod parent;
mod report;
mod run;
mod sample;
pub(crate) mod worker;

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;

use self::worker::Plan;
pub use crate::hist::LatencySummary;
pub use crate::nodes::ServerProcess;
use crate::nodes::{default_sources_for, node_of, workers_for, ws_targets};
use crate::target::WsTarget;
pub use crate::workers::HostInfo;

pub use self::report::{ConnectionsReport, NodeSample, ProcessMemory, ServerSample};
pub(crate) use self::run::run_cli;
pub use self::run::run_in_process;

/// Connections one worker opens by default (`--workers` defaults to
/// `ceil(N / 9000)`), well under the 20,000 descriptors a process may hold.
const PER_WORKER: u64 = 9_000;
/// How long the parent waits for workers to close and exit.
const STOP_WAIT: Duration = Duration::from_secs(60);

/// Options of `hubbub bench connections`. Exists as a clap struct so the
/// `hubbub` binary mounts it unchanged and the parent can rebuild a
/// worker's command line from the parsed values.
#[derive(clap::Args, Debug, Clone)]
pub struct ConnectionsArgs {
    /// WebSocket URL of the hub; its HTTP API is read on the same host and
    /// port (`/api/stats`). Several nodes of a cluster: repeat the flag or
    /// separate URLs with commas; worker w connects to URL w mod N (at
    /// least one worker per URL) and every node is reported.
    #[arg(
        long = "url",
        value_name = "URL",
        default_value = "ws://127.0.0.1:8000/ws"
    )]
    pub urls: Vec<String>,
    /// Connections to open in total.
    #[arg(short = 'n', long = "connections", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub connections: u64,
    /// Channel every connection subscribes to.
    #[arg(long, default_value = "bench")]
    pub channel: String,
    /// Worker processes [default: ceil(N / 9000)].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..4096))]
    pub workers: Option<u64>,
    /// Source addresses, one per worker in turn (comma-separated)
    /// [default: 127.0.0.1, 127.0.0.2, ... one per worker].
    #[arg(long, value_delimiter = ',')]
    pub source_addrs: Vec<IpAddr>,
    /// Pid of the hub, for its RSS [default: the process listening on each
    /// URL's port, found through /proc]. Repeat (or comma-separate) to read
    /// several, e.g. every node and the Redis server: RSS per connection is
    /// their summed growth over the connections held.
    #[arg(long = "server-pid", value_name = "PID", value_delimiter = ',')]
    pub server_pids: Vec<u32>,
    /// Seconds to hold every connection idle before sampling the RSS.
    #[arg(long, default_value_t = 5.0)]
    pub hold: f64,
    /// Target handshakes per second over all workers [default: unlimited,
    /// bounded by --max-in-flight].
    #[arg(long)]
    pub rate: Option<f64>,
    /// Handshakes in flight at once, per worker.
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
    /// Seconds one handshake (connect to `subscribed`) may take.
    #[arg(long, default_value_t = 30.0)]
    pub handshake_timeout: f64,
    /// API key for the hub's HTTP API, when it has one.
    #[arg(long)]
    pub api_key: Option<String>,
    /// Write the full report as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Internal: run as worker INDEX of the parent's workers.
    #[arg(long, hide = true, requires = "worker_count")]
    pub worker_index: Option<usize>,
    /// Internal: how many workers the parent started.
    #[arg(long, hide = true)]
    pub worker_count: Option<usize>,
}

impl ConnectionsArgs {
    /// The arguments with every default, as if given no flags. Exists for
    /// tests and embedding code that set a few fields.
    pub fn new(url: impl Into<String>, connections: u64) -> Self {
        ConnectionsArgs {
            urls: vec![url.into()],
            connections,
            channel: "bench".into(),
            workers: None,
            source_addrs: Vec::new(),
            server_pids: Vec::new(),
            hold: 5.0,
            rate: None,
            max_in_flight: 256,
            handshake_timeout: 30.0,
            api_key: None,
            out: None,
            worker_index: None,
            worker_count: None,
        }
    }

    /// The command line of worker `index` (after the executable): only what
    /// a worker needs, taken from the parsed values.
    fn worker_argv(&self, index: usize, count: usize, sources: &[IpAddr]) -> Vec<String> {
        let sources: Vec<String> = sources.iter().map(IpAddr::to_string).collect();
        let mut v = vec!["bench".to_owned(), "connections".to_owned()];
        // One flag per URL as given: a URL may hold a comma.
        v.extend(self.urls.iter().map(|u| format!("--url={u}")));
        v.extend([
            format!("--connections={}", self.connections),
            format!("--channel={}", self.channel),
            format!("--source-addrs={}", sources.join(",")),
            format!("--max-in-flight={}", self.max_in_flight),
            format!("--handshake-timeout={}", self.handshake_timeout),
            format!("--worker-index={index}"),
            format!("--worker-count={count}"),
        ]);
        if let Some(r) = self.rate {
            v.push(format!("--rate={r}"));
        }
        v
    }
}

/// Resolved settings shared by the parent and its workers.
struct Setup {
    /// The nodes' URLs, split out of `--url` (one or more).
    urls: Vec<String>,
    /// Where each node is, same order.
    targets: Vec<WsTarget>,
    workers: usize,
    sources: Vec<IpAddr>,
}

impl Setup {
    fn new(args: &ConnectionsArgs, workers: Option<usize>) -> anyhow::Result<Setup> {
        let (urls, targets) = ws_targets(&args.urls)?;
        let workers = workers_for(
            workers
                .or(args.workers.map(|w| w as usize))
                .unwrap_or_else(|| args.connections.div_ceil(PER_WORKER) as usize),
            targets.len(),
        );
        let sources = if args.source_addrs.is_empty() {
            default_sources_for(&targets, workers)
        } else {
            args.source_addrs.clone()
        };
        for w in 0..workers.max(sources.len()) {
            let (source, node) = (sources[w % sources.len()], node_of(w, targets.len()));
            if source.is_ipv4() != targets[node].addr.is_ipv4() {
                bail!(
                    "source addresses and {} must be of one IP family",
                    urls[node]
                );
            }
        }
        if !(args.hold.is_finite() && args.hold >= 0.0) {
            bail!("--hold must be a number of seconds");
        }
        if !(args.handshake_timeout.is_finite() && args.handshake_timeout > 0.0) {
            bail!("--handshake-timeout must be a positive number of seconds");
        }
        if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            bail!("--rate must be positive");
        }
        hubbub_protocol::validate_channel(&args.channel)
            .map_err(|e| anyhow::anyhow!("--channel: {e}"))?;
        Ok(Setup {
            urls,
            targets,
            workers,
            sources,
        })
    }

    /// The node worker `index` connects to: `index % n`.
    fn node_of_worker(&self, index: usize) -> usize {
        node_of(index, self.targets.len())
    }

    fn plan(&self, args: &ConnectionsArgs, index: usize) -> Plan {
        Plan {
            index,
            target: self.targets[self.node_of_worker(index)].clone(),
            source: self.sources[index % self.sources.len()],
            connections: Plan::share(args.connections, index, self.workers),
            channel: args.channel.clone(),
            rate: args.rate.map(|r| r / self.workers as f64),
            max_in_flight: args.max_in_flight,
            handshake_timeout: Duration::from_secs_f64(args.handshake_timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::report::thousands;
    use super::*;

    fn parse(argv: &[String]) -> ConnectionsArgs {
        match crate::parse_scenario(argv) {
            crate::Scenario::Connections(c) => c,
            other => panic!("not connections: {other:?}"),
        }
    }

    #[test]
    fn defaults_and_worker_argv_round_trip() {
        let a = parse(&["bench", "connections", "-n", "19500", "--rate", "5000"].map(String::from));
        let s = Setup::new(&a, None).unwrap();
        assert_eq!(s.workers, 3);
        assert_eq!(
            s.sources,
            ["127.0.0.1", "127.0.0.2", "127.0.0.3"].map(|x| x.parse::<IpAddr>().unwrap())
        );
        let w = parse(&a.worker_argv(2, 3, &s.sources));
        assert_eq!((w.worker_index, w.worker_count), (Some(2), Some(3)));
        let ws = Setup::new(&w, w.worker_count).unwrap();
        let plan = ws.plan(&w, 2);
        assert_eq!(plan.source, "127.0.0.3".parse::<IpAddr>().unwrap());
        assert_eq!(plan.connections, 6500);
        assert_eq!(plan.rate, Some(5000.0 / 3.0));
        assert_eq!(plan.target.request_target, "/ws");
        assert_eq!(plan.channel, "bench");
        assert_eq!(w.urls, ["ws://127.0.0.1:8000/ws"]);
    }

    #[test]
    fn connections_spread_over_several_urls() {
        let a = parse(
            &[
                "bench",
                "connections",
                "-n",
                "10",
                "--url",
                "ws://127.0.0.1:8001/ws, ws://127.0.0.1:8002/ws",
                "--url",
                "ws://127.0.0.1:8003/ws",
                "--server-pid",
                "11,12",
                "--server-pid",
                "6379",
            ]
            .map(String::from),
        );
        assert_eq!(a.server_pids, [11, 12, 6379]);
        // One worker asked for (10 connections): one per node instead.
        let s = Setup::new(&a, None).unwrap();
        assert_eq!(s.workers, 3);
        let plans: Vec<(u16, u64, IpAddr)> = (0..3)
            .map(|i| {
                let p = s.plan(&a, i);
                (p.target.addr.port(), p.connections, p.source)
            })
            .collect();
        assert_eq!(
            plans,
            [
                (8001, 4, "127.0.0.1".parse().unwrap()),
                (8002, 3, "127.0.0.2".parse().unwrap()),
                (8003, 3, "127.0.0.3".parse().unwrap()),
            ]
        );
        // More workers than nodes: round robin.
        let mut more = a.clone();
        more.workers = Some(5);
        let s = Setup::new(&more, None).unwrap();
        let ports: Vec<u16> = (0..5)
            .map(|i| s.plan(&more, i).target.addr.port())
            .collect();
        assert_eq!(ports, [8001, 8002, 8003, 8001, 8002]);
        // A worker gets every URL and picks its own.
        let w = parse(&more.worker_argv(4, 5, &s.sources));
        let ws = Setup::new(&w, w.worker_count).unwrap();
        assert_eq!(ws.urls, s.urls);
        let plan = ws.plan(&w, 4);
        assert_eq!(plan.target.addr.port(), 8002);
        assert_eq!(plan.source, "127.0.0.5".parse::<IpAddr>().unwrap());
        assert_eq!(plan.connections, 2);
    }

    #[test]
    fn bad_options_are_refused() {
        let mut a = ConnectionsArgs::new("ws://127.0.0.1:1/ws", 10);
        a.channel = "no spaces".into();
        assert!(Setup::new(&a, None).is_err());
        let mut a = ConnectionsArgs::new("ws://127.0.0.1:1/ws", 10);
        a.source_addrs = vec!["::1".parse().unwrap()];
        assert!(Setup::new(&a, None).is_err());
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(19500), "19,500");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
