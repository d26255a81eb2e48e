//! Publish-and-receive scenarios: `fanout`, `channels`, `churn` and
//! `http-publish`, one engine with scenario defaults, and `sweep`, a
//! fan-out over a list of rates with one set of subscribers.
//!
//! Subscribers live in worker processes (re-executed like `connections`,
//! each from its own source address 127.0.0.x; with several `--url`s,
//! worker w on node w mod N, see `crate::nodes`); the parent publishes,
//! through the HTTP API (keep-alive connections, a few concurrent
//! publishers) or a WebSocket publisher connection. Every payload carries
//! its send time (ns since the Unix epoch: parent and workers share the
//! machine's clock), a sequence number and the window it belongs to, so
//! workers turn each delivery into a publish-to-receive latency in an HDR
//! histogram per window, and the parent merges them.
//!
//! A run is a warm-up window (not counted), then `--repetitions` measured
//! windows of `--duration` seconds (for `churn`, each repetition is a
//! baseline window and a window with churn), then a drain until every
//! expected delivery arrived or `--drain` seconds passed.
//!
//! Files: this one holds the flags and scenario kinds; `setup` resolves
//! them, `payload` is what a publication carries, `worker` and `socketio`
//! are the subscribers' side, `publish` and `churn` the parent's load,
//! `parent`, `coordinate` and `collect` run it, `report` prints it;
//! `sweep` and `sweep_report` are the rate sweep on the same steps.

mod churn;
mod collect;
mod coordinate;
mod parent;
mod payload;
mod publish;
pub(crate) mod report;
mod setup;
mod socketio;
mod sweep;
mod sweep_report;
mod worker;

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Serialize;

pub(crate) use self::parent::run_cli;
pub use self::parent::run_in_process;
pub(crate) use self::payload::data_json;
pub use self::payload::Latency;
pub use self::report::{LoadReport, WindowReport};
pub use self::setup::NodeShare;
pub(crate) use self::sweep::run_sweep_cli;
pub use self::sweep::{run_sweep_in_process, SweepArgs};
pub use self::sweep_report::{KeptUp, RateMedians, RateReport, SweepReport};
pub use crate::nodes::{PidCpu, ServerProcess};

/// Subscribers one worker holds by default.
const PER_WORKER: u64 = 5_000;
/// Highest latency the histograms hold: one hour, in µs.
const MAX_US: u64 = 3_600_000_000;

/// Which scenario: decides the defaults and whether churn windows run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// S subscribers on one channel.
    Fanout,
    /// Many channels, few subscribers each.
    Channels,
    /// Fan-out while connections come and go.
    Churn,
    /// Publish requests as fast as the API answers.
    HttpPublish,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Fanout => "fanout",
            Kind::Channels => "channels",
            Kind::Churn => "churn",
            Kind::HttpPublish => "http-publish",
        }
    }
}

/// How publications reach the hub.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// `POST /api/publish` on keep-alive connections.
    Http,
    /// `publish` commands on WebSocket connections (the channel's namespace
    /// must allow it: `--set namespaces.bench.publish=true` and a channel
    /// such as `bench:fanout`).
    Ws,
}

/// What the subscribers speak after the WebSocket upgrade.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// hubbub's protocol: `connected`, `subscribe`, `subscribed`, `event`.
    Hubbub,
    /// Socket.IO 4 over its WebSocket transport (Engine.IO 4 packets):
    /// `40` to connect, `42["subscribe",channel]`, events as
    /// `42["event",{...}]`; for the Socket.IO peer in `bench/peers/`. Use a
    /// URL such as `ws://127.0.0.1:9104/socket.io/?EIO=4&transport=websocket`.
    Socketio,
    /// The Pusher protocol (Sockudo): `pusher:connection_established`,
    /// `pusher:subscribe` -> `pusher_internal:subscription_succeeded`,
    /// `pusher:ping` answered with `pusher:pong`, events whose `data` is a
    /// JSON string. Publishes with signed `POST /apps/<id>/events`. Use a
    /// URL such as
    /// `ws://127.0.0.1:9300/app/bench-key?protocol=7&client=hubbub-bench&version=1`.
    Pusher,
}

impl Protocol {
    /// The flag value, `--protocol NAME`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Protocol::Hubbub => "hubbub",
            Protocol::Socketio => "socketio",
            Protocol::Pusher => "pusher",
        }
    }
}

/// Options of the publish scenarios. Exists as one clap struct so every
/// scenario takes the same flags; unset ones get the scenario's default.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// WebSocket URL of the hub (or peer). Several nodes of a cluster:
    /// repeat the flag or separate URLs with commas; worker w connects to
    /// URL w mod N (at least one worker per URL) and publisher p publishes
    /// through node p mod N.
    #[arg(
        long = "url",
        value_name = "URL",
        default_value = "ws://127.0.0.1:8000/ws"
    )]
    pub urls: Vec<String>,
    /// Base URL of the HTTP API [default: http://host:port of each --url].
    /// With several --url, one per URL in the same order (repeat or
    /// comma-separate).
    #[arg(long = "api-url", value_name = "URL")]
    pub api_urls: Vec<String>,
    /// Subscribers in total [fanout, churn, channels: 1000; http-publish: 0].
    #[arg(short = 's', long)]
    pub subscribers: Option<u64>,
    /// Channels; subscriber k subscribes to channel k mod C [channels: 100, else 1].
    #[arg(short = 'c', long)]
    pub channels: Option<u64>,
    /// Channel name, or prefix (`NAME-i`) when there are several.
    #[arg(long, default_value = "bench")]
    pub channel: String,
    /// Publishes per second in total, 0 for as fast as possible
    /// [fanout, churn: 50; channels: 1000; http-publish: 0].
    #[arg(short = 'r', long)]
    pub rate: Option<f64>,
    /// Size of the `data` JSON of each publication, in bytes (at least ~80).
    #[arg(short = 'p', long, default_value_t = 100)]
    pub payload: usize,
    /// Publish through the HTTP API or a WebSocket connection.
    #[arg(long, value_enum, default_value_t = Via::Http)]
    pub via: Via,
    /// What the subscribers speak (the publishers always use `--via`).
    #[arg(long, value_enum, default_value_t = Protocol::Hubbub)]
    pub protocol: Protocol,
    /// Concurrent publishers (connections) [http-publish: 32, else 4].
    #[arg(long)]
    pub publishers: Option<usize>,
    /// Seconds of warm-up (published, not counted).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Seconds of each measured window.
    #[arg(short = 'd', long, default_value_t = 10.0)]
    pub duration: f64,
    /// Measured windows (the table shows each and their median).
    #[arg(long, default_value_t = 1)]
    pub repetitions: u32,
    /// Seconds to wait after the last publish for missing deliveries.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
    /// Connect-subscribe-disconnect cycles per second during churn windows
    /// [churn: 100, else 0].
    #[arg(long)]
    pub churn_rate: Option<f64>,
    /// Worker processes for the subscribers [default: ceil(S / 5000)].
    #[arg(long)]
    pub workers: Option<u64>,
    /// Source addresses, one per worker in turn (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub source_addrs: Vec<IpAddr>,
    /// Pid of the hub, for its CPU time [default: found by each URL's
    /// port]. Repeat (or comma-separate) to measure several processes,
    /// e.g. every node and the Redis server: each one's CPU is reported
    /// and the sum gives the CPU per delivery.
    #[arg(long = "server-pid", value_name = "PID", value_delimiter = ',')]
    pub server_pids: Vec<u32>,
    /// Handshakes in flight at once, per worker.
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
    /// Seconds one handshake may take.
    #[arg(long, default_value_t = 30.0)]
    pub handshake_timeout: f64,
    /// API key for the HTTP API, when it has one.
    #[arg(long)]
    pub api_key: Option<String>,
    /// Pusher app id, for signed publishes [--protocol pusher].
    #[arg(long, default_value = "bench-app")]
    pub pusher_app_id: String,
    /// Pusher app key [--protocol pusher].
    #[arg(long, default_value = "bench-key")]
    pub pusher_key: String,
    /// Pusher app secret [--protocol pusher].
    #[arg(long, default_value = "bench-secret")]
    pub pusher_secret: String,
    /// Write the full report as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Internal: run as worker INDEX.
    #[arg(long, hide = true, requires = "worker_count")]
    pub worker_index: Option<usize>,
    /// Internal: how many workers the parent started.
    #[arg(long, hide = true)]
    pub worker_count: Option<usize>,
}

impl LoadArgs {
    /// Every default, as if given no flags, against the one node at `url`
    /// (set [`LoadArgs::urls`] for several). Exists for tests.
    pub fn new(url: impl Into<String>) -> Self {
        LoadArgs {
            urls: vec![url.into()],
            api_urls: Vec::new(),
            subscribers: None,
            channels: None,
            channel: "bench".into(),
            rate: None,
            payload: 100,
            via: Via::Http,
            protocol: Protocol::Hubbub,
            publishers: None,
            warmup: 2.0,
            duration: 10.0,
            repetitions: 1,
            drain: 5.0,
            churn_rate: None,
            workers: None,
            source_addrs: Vec::new(),
            server_pids: Vec::new(),
            max_in_flight: 256,
            handshake_timeout: 30.0,
            api_key: None,
            pusher_app_id: "bench-app".into(),
            pusher_key: "bench-key".into(),
            pusher_secret: "bench-secret".into(),
            out: None,
            worker_index: None,
            worker_count: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::payload::{data_json, hist_from_b64, hist_to_b64, new_hist, number_after, Latency};
    use super::setup::Setup;
    use super::*;

    #[test]
    fn payloads_carry_their_fields_and_size() {
        let d = data_json(42, 3, 100);
        assert_eq!(d.len(), 100);
        let v: serde_json::Value = serde_json::from_str(&d).unwrap();
        assert_eq!(v["bench_s"], 42);
        assert_eq!(v["bench_w"], 3);
        let frame = format!("{{\"type\":\"event\",\"data\":{d}}}");
        assert_eq!(number_after(frame.as_bytes(), b"\"bench_w\":"), Some(3));
        assert!(
            number_after(frame.as_bytes(), b"\"bench_t\":").unwrap() > 1_600_000_000_000_000_000
        );
        // Pusher: the data is a JSON string, its quotes escaped.
        let quoted = serde_json::to_string(&d).unwrap();
        let frame = format!("{{\"event\":\"bench\",\"channel\":\"bench\",\"data\":{quoted}}}");
        assert_eq!(number_after(frame.as_bytes(), b"\"bench_w\":"), Some(3));
        assert_eq!(number_after(frame.as_bytes(), b"\"bench_s\":"), Some(42));
        assert_eq!(
            number_after(b"{\"xbench_w\":5,\"bench_w\": 6}", b"\"bench_w\":"),
            Some(6)
        );
    }

    #[test]
    fn pusher_publishes_are_signed() {
        let auth = super::publish::PusherAuth {
            app_id: "3".into(),
            key: "278d425bdf160c739803".into(),
            secret: "7ad3773142a6692b25b8".into(),
        };
        let (path, body) = auth.request_at("bench", "{\"a\":1}", 1353088179);
        assert_eq!(
            body,
            "{\"name\":\"bench\",\"channels\":[\"bench\"],\"data\":\"{\\\"a\\\":1}\"}"
        );
        assert!(path.starts_with("/apps/3/events?auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5="));
        let sig = path.rsplit("auth_signature=").next().unwrap();
        assert_eq!(sig.len(), 64);
    }

    #[test]
    fn shares_and_channels_add_up() {
        let mut a = LoadArgs::new("ws://127.0.0.1:1/ws");
        a.subscribers = Some(10_001);
        a.channels = Some(7);
        a.workers = Some(3);
        let s = Setup::new(Kind::Channels, &a).unwrap();
        assert_eq!((0..7).map(|c| s.subscribers_on(c)).sum::<u64>(), 10_001);
        assert_eq!((0..3).map(|i| s.share(i).1).sum::<u64>(), 10_001);
        assert_eq!(s.share(2).0, s.share(1).0 + s.share(1).1);
        assert_eq!(s.windows(2).len(), 2);
        let c = Setup::new(Kind::Churn, &LoadArgs::new("ws://127.0.0.1:1/ws")).unwrap();
        assert_eq!(c.windows(2).len(), 4);
        assert_eq!(c.churn_rate, 100.0);
    }

    /// `hubbub bench ARGS...` as the binary parses it, for a publish scenario.
    fn parse(argv: &[&str]) -> LoadArgs {
        match crate::parse_scenario(argv) {
            crate::Scenario::Fanout(a) | crate::Scenario::HttpPublish(a) => a,
            other => panic!("not fanout: {other:?}"),
        }
    }

    #[test]
    fn one_url_by_default_and_as_today() {
        let a = parse(&["bench", "fanout"]);
        assert_eq!(a.urls, ["ws://127.0.0.1:8000/ws"]);
        assert!(a.api_urls.is_empty() && a.server_pids.is_empty());
        let a = parse(&[
            "bench",
            "fanout",
            "--url",
            "ws://127.0.0.1:9/ws",
            "--server-pid",
            "42",
            "--api-url",
            "http://127.0.0.1:10",
        ]);
        let s = Setup::new(Kind::Fanout, &a).unwrap();
        assert_eq!(s.urls, ["ws://127.0.0.1:9/ws"]);
        assert_eq!(s.workers, 1);
        assert_eq!(s.publisher_api(3).addr, "127.0.0.1:10".parse().unwrap());
        assert_eq!(a.server_pids, [42]);
    }

    #[test]
    fn several_urls_and_pids_parse() {
        let a = parse(&[
            "bench",
            "fanout",
            "--url",
            "ws://127.0.0.1:8001/ws,ws://127.0.0.1:8002/ws",
            "--url",
            "ws://127.0.0.1:8003/ws",
            "--api-url",
            "http://127.0.0.1:9001",
            "--api-url",
            "http://127.0.0.1:9002,http://127.0.0.1:9003",
            "--server-pid",
            "11",
            "--server-pid",
            "12,13",
        ]);
        assert_eq!(a.server_pids, [11, 12, 13]);
        let s = Setup::new(Kind::Fanout, &a).unwrap();
        assert_eq!(
            s.targets.iter().map(|t| t.addr.port()).collect::<Vec<_>>(),
            [8001, 8002, 8003]
        );
        assert_eq!(
            s.apis.iter().map(|t| t.addr.port()).collect::<Vec<_>>(),
            [9001, 9002, 9003]
        );
        // One --api-url per --url, or none.
        let mut bad = a.clone();
        bad.api_urls = vec!["http://127.0.0.1:9001".into()];
        let e = Setup::new(Kind::Fanout, &bad).unwrap_err().to_string();
        assert!(e.contains("one per --url"), "{e}");
        bad.api_urls.clear();
        bad.urls = vec![" , ".into()];
        assert!(Setup::new(Kind::Fanout, &bad).is_err());
    }

    #[test]
    fn subscribers_and_publishers_spread_over_the_nodes() {
        let mut a = LoadArgs::new("ws://127.0.0.1:8001/ws");
        a.urls.push("ws://127.0.0.1:8002/ws".into());
        a.subscribers = Some(1000);
        a.publishers = Some(5);
        // 1000 subscribers make one worker by default: raised to one per node.
        let s = Setup::new(Kind::Fanout, &a).unwrap();
        assert_eq!(s.workers, 2);
        assert_eq!(s.worker_target(0).addr.port(), 8001);
        assert_eq!(s.worker_target(1).addr.port(), 8002);
        assert_eq!(s.worker_target(2).addr.port(), 8001);
        // Each worker still its own source address.
        assert_eq!(
            s.sources,
            ["127.0.0.1", "127.0.0.2"].map(|x| x.parse::<IpAddr>().unwrap())
        );
        // Publisher p through node p mod 2, its API derived from the URL.
        let ports: Vec<u16> = (0..5).map(|j| s.publisher_api(j).addr.port()).collect();
        assert_eq!(ports, [8001, 8002, 8001, 8002, 8001]);
        assert_eq!(s.publisher_target(1).addr.port(), 8002);
        let nodes = s.nodes();
        assert_eq!(
            nodes
                .iter()
                .map(|n| (n.workers, n.subscribers, n.publishers))
                .collect::<Vec<_>>(),
            [(1, 500, 3), (1, 500, 2)]
        );
        assert_eq!(nodes[1].url, "ws://127.0.0.1:8002/ws");
        assert_eq!(nodes[1].api, "127.0.0.1:8002");
        // Five workers over two nodes: 3 and 2, every subscriber placed once.
        a.workers = Some(5);
        a.subscribers = Some(1001);
        let s = Setup::new(Kind::Fanout, &a).unwrap();
        let nodes = s.nodes();
        assert_eq!((nodes[0].workers, nodes[1].workers), (3, 2));
        assert_eq!(nodes.iter().map(|n| n.subscribers).sum::<u64>(), 1001);
        // No subscribers (http-publish): no workers anywhere.
        let mut h = a.clone();
        h.subscribers = None;
        let s = Setup::new(Kind::HttpPublish, &h).unwrap();
        assert!(s
            .nodes()
            .iter()
            .all(|n| n.workers == 0 && n.subscribers == 0));
    }

    #[test]
    fn worker_argv_carries_every_url() {
        let a = parse(&[
            "bench",
            "fanout",
            "-s",
            "30",
            "--url",
            "ws://127.0.0.1:8001/ws?x=a,b",
            "--url",
            "ws://127.0.0.1:8002/ws",
        ]);
        let s = Setup::new(Kind::Fanout, &a).unwrap();
        assert_eq!(
            s.urls,
            ["ws://127.0.0.1:8001/ws?x=a,b", "ws://127.0.0.1:8002/ws"]
        );
        let argv = super::parent::worker_argv(Kind::Fanout, &a, &s, 1);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let w = parse(&argv);
        assert_eq!((w.worker_index, w.worker_count), (Some(1), Some(2)));
        let ws = Setup::new(Kind::Fanout, &w).unwrap();
        assert_eq!(ws.urls, s.urls);
        assert_eq!(ws.workers, 2);
        assert_eq!(ws.worker_target(1).addr.port(), 8002);
        assert_eq!(ws.share(1), s.share(1));
    }

    #[test]
    fn histograms_survive_the_wire() {
        let mut h = new_hist();
        h.record(1234).unwrap();
        let back = hist_from_b64(&hist_to_b64(&h)).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(Latency::of(&back).p50_ms, 1.23);
    }
}
