//! `rpc`: calls of one method (PROTOCOL.md section 2) over many
//! connections, the round trip of each and the calls per second the hub
//! answers, with its CPU per call.
//!
//! Every connection is a raw WebSocket client of its own (the lean
//! machinery of `connections`), all in this one process: a hundred
//! connections need no worker processes, and one process keeps the
//! bench's own CPU in one figure next to the hub's. Two ways of loading:
//!
//! * closed loop (default): each connection keeps `--in-flight` calls
//!   outstanding and sends the next as soon as one is answered, so the
//!   hub runs as fast as it can answer; this gives the round trip at a
//!   given concurrency and the saturation rate.
//! * open loop (`--rate R`): R calls/s spread evenly over the connections
//!   on a fixed schedule that never waits for answers, so a slow answer
//!   cannot hold back the calls behind it (no coordinated omission): the
//!   latency at a given load. Each call's lag behind its schedule is
//!   recorded too, and its round trip also counted from when it was due,
//!   so a run where the bench itself fell behind shows it.
//!
//! A call's round trip runs from its frame being written to its
//! `rpc_result` (or `error`) carrying its correlation id; progress `event`s
//! carrying the same id are skipped. A run is a warm-up (not counted),
//! `--repetitions` windows of `--duration` seconds, then a drain until
//! every call is answered or `--drain` seconds passed.
//!
//! `--backend-listen ADDR` also serves, in this process, the smallest HTTP
//! backend the hub's RPC proxy (`[[rpc.proxy]]`) can call: every POST is
//! answered `{"data": <the request's data>}` at once, so a run through the
//! proxy measures the hub's side of it, not a backend. Its requests are
//! counted in the report (and its CPU is in the bench's).
//!
//! Files: this one holds the flags; `client` is a connection's loop,
//! `backend` the HTTP backend, `run` the run itself and `report` what it
//! prints and writes.

mod backend;
mod client;
mod report;
mod run;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _};

pub use self::report::{BackendReport, RpcMedians, RpcReport, RpcWindow};

/// Options of `hubbub bench rpc`. A clap struct like the other scenarios'
/// so the `hubbub` binary mounts it unchanged; [`RpcArgs::new`] gives the
/// defaults for tests.
#[derive(clap::Args, Debug, Clone)]
pub struct RpcArgs {
    /// WebSocket URL of the hub. Several nodes: repeat the flag or separate
    /// URLs with commas; connection k goes to URL k mod N.
    #[arg(
        long = "url",
        value_name = "URL",
        default_value = "ws://127.0.0.1:8000/ws"
    )]
    pub urls: Vec<String>,
    /// The method called.
    #[arg(long, default_value = "query.echo")]
    pub method: String,
    /// The `data` of every call, as JSON.
    #[arg(long, default_value = r#"{"n":1}"#)]
    pub data: String,
    /// Connections, each with its own calls.
    #[arg(short = 'c', long, default_value_t = 100)]
    pub connections: usize,
    /// Calls each connection keeps outstanding (closed loop). The hub
    /// answers more than `rpc.max_in_flight` (default 32) with
    /// `limit_exceeded`.
    #[arg(long, default_value_t = 1)]
    pub in_flight: usize,
    /// Calls per second in total, spread over the connections on a fixed
    /// schedule (open loop; `--in-flight` is then not used).
    #[arg(short = 'r', long)]
    pub rate: Option<f64>,
    /// Seconds of warm-up (calls made, not counted).
    #[arg(long, default_value_t = 3.0)]
    pub warmup: f64,
    /// Seconds of each measured window.
    #[arg(short = 'd', long, default_value_t = 10.0)]
    pub duration: f64,
    /// Measured windows (the table shows each and their median).
    #[arg(long, default_value_t = 3)]
    pub repetitions: u32,
    /// Seconds to wait after the last window for calls still unanswered.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
    /// Pid of the hub, for its CPU per call [default: found by each URL's
    /// port]. Repeat (or comma-separate) for several processes; their CPU
    /// is summed.
    #[arg(long = "server-pid", value_name = "PID", value_delimiter = ',')]
    pub server_pids: Vec<u32>,
    /// Serve an RPC backend for the hub's proxy on this address (HOST:PORT):
    /// every POST answered `{"data": <the request's data>}`.
    #[arg(long, value_name = "ADDR")]
    pub backend_listen: Option<SocketAddr>,
    /// Threads of the bench's runtime (callers and backend together).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Seconds one connection's handshake may take.
    #[arg(long, default_value_t = 10.0)]
    pub handshake_timeout: f64,
    /// Write the full report as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

impl RpcArgs {
    /// Every default, as if given no flags, against the hub at `url`.
    /// Exists for tests.
    pub fn new(url: impl Into<String>) -> Self {
        RpcArgs {
            urls: vec![url.into()],
            method: "query.echo".into(),
            data: r#"{"n":1}"#.into(),
            connections: 100,
            in_flight: 1,
            rate: None,
            warmup: 3.0,
            duration: 10.0,
            repetitions: 3,
            drain: 5.0,
            server_pids: Vec::new(),
            backend_listen: None,
            threads: 2,
            handshake_timeout: 10.0,
            out: None,
        }
    }

    /// Refuses what cannot run, before anything is connected; returns the
    /// `data` trimmed.
    pub(crate) fn check(&self) -> anyhow::Result<String> {
        if self.connections == 0 {
            bail!("-c/--connections must be at least 1");
        }
        if self.in_flight == 0 {
            bail!("--in-flight must be at least 1");
        }
        if let Some(r) = self.rate {
            if !(r.is_finite() && r > 0.0) {
                bail!("--rate must be a positive number of calls per second");
            }
        }
        for (name, v) in [
            ("--warmup", self.warmup),
            ("--drain", self.drain),
            ("--handshake-timeout", self.handshake_timeout),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                bail!("{name} must be a number of seconds");
            }
        }
        if !(self.duration.is_finite() && self.duration > 0.0) || self.repetitions == 0 {
            bail!("-d/--duration and --repetitions must be positive");
        }
        if self.method.is_empty() {
            bail!("--method must not be empty");
        }
        if self.threads == 0 {
            bail!("--threads must be at least 1");
        }
        let data = self.data.trim();
        serde_json::from_str::<&serde_json::value::RawValue>(data)
            .with_context(|| format!("--data is not JSON: {data}"))?;
        Ok(data.to_owned())
    }
}

/// Runs the scenario on the caller's runtime and returns its report
/// (written to `--out` when given). Exists for tests; `--threads` is the
/// caller's business here.
pub async fn run_in_process(args: RpcArgs) -> anyhow::Result<RpcReport> {
    let report = run::run(args.clone(), false).await?;
    if let Some(p) = &args.out {
        crate::load::report::write_report(p, &report)?;
    }
    Ok(report)
}

/// The CLI entry: its own runtime, the table on stdout, the exit status of
/// [`crate::run`].
pub(crate) fn run_cli(args: RpcArgs) -> ExitCode {
    if let Err(e) = args.check() {
        eprintln!("hubbub bench rpc: {e:#}");
        return ExitCode::from(2);
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hubbub bench rpc: runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let out = args.out.clone();
    match rt.block_on(run::run(args, true)) {
        Ok(report) => {
            report::print_table(&report);
            if let Some(p) = &out {
                if let Err(e) = crate::load::report::write_report(p, &report) {
                    eprintln!("hubbub bench rpc: {e:#}");
                    return ExitCode::from(2);
                }
            }
            crate::load::report::exit_status(report.interrupted, report.clean())
        }
        Err(e) => {
            eprintln!("hubbub bench rpc: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(argv: &[&str]) -> RpcArgs {
        match crate::parse_scenario(argv) {
            crate::Scenario::Rpc(a) => a,
            other => panic!("not rpc: {other:?}"),
        }
    }

    #[test]
    fn defaults_are_the_round_trip_run() {
        let a = parse(&["bench", "rpc"]);
        assert_eq!(a.urls, ["ws://127.0.0.1:8000/ws"]);
        assert_eq!(a.method, "query.echo");
        assert_eq!(a.data, r#"{"n":1}"#);
        assert_eq!((a.connections, a.in_flight, a.rate), (100, 1, None));
        assert_eq!((a.warmup, a.duration, a.repetitions), (3.0, 10.0, 3));
        assert!(a.server_pids.is_empty() && a.backend_listen.is_none() && a.out.is_none());
        assert_eq!(a.threads, 2);
        assert_eq!(a.check().unwrap(), r#"{"n":1}"#);
        let n = RpcArgs::new("ws://127.0.0.1:8000/ws");
        assert_eq!(format!("{n:?}"), format!("{a:?}"));
    }

    #[test]
    fn every_flag_parses() {
        let a = parse(&[
            "bench",
            "rpc",
            "--url",
            "ws://127.0.0.1:9/ws",
            "--method",
            "bench.echo",
            "--data",
            r#" {"n": 2} "#,
            "-c",
            "10",
            "--in-flight",
            "8",
            "-d",
            "2",
            "--warmup",
            "1",
            "--repetitions",
            "5",
            "--rate",
            "500",
            "--drain",
            "1",
            "--server-pid",
            "11,12",
            "--server-pid",
            "13",
            "--backend-listen",
            "127.0.0.1:9300",
            "--threads",
            "1",
            "--out",
            "r.json",
        ]);
        assert_eq!(a.urls, ["ws://127.0.0.1:9/ws"]);
        assert_eq!(a.method, "bench.echo");
        assert_eq!(a.check().unwrap(), r#"{"n": 2}"#);
        assert_eq!((a.connections, a.in_flight, a.rate), (10, 8, Some(500.0)));
        assert_eq!(
            (a.warmup, a.duration, a.repetitions, a.drain),
            (1.0, 2.0, 5, 1.0)
        );
        assert_eq!(a.server_pids, [11, 12, 13]);
        assert_eq!(a.backend_listen, Some("127.0.0.1:9300".parse().unwrap()));
        assert_eq!(a.threads, 1);
        assert_eq!(a.out, Some(PathBuf::from("r.json")));
        let short = parse(&["bench", "rpc", "-r", "100", "-c", "3", "-d", "1"]);
        assert_eq!(
            (short.rate, short.connections, short.duration),
            (Some(100.0), 3, 1.0)
        );
    }

    #[test]
    fn what_cannot_run_is_refused() {
        let ok = RpcArgs::new("ws://127.0.0.1:1/ws");
        let refused = |f: &dyn Fn(&mut RpcArgs)| {
            let mut a = ok.clone();
            f(&mut a);
            a.check().unwrap_err().to_string()
        };
        assert!(refused(&|a| a.in_flight = 0).contains("--in-flight"));
        assert!(refused(&|a| a.connections = 0).contains("--connections"));
        assert!(refused(&|a| a.rate = Some(0.0)).contains("--rate"));
        assert!(refused(&|a| a.rate = Some(f64::NAN)).contains("--rate"));
        assert!(refused(&|a| a.duration = 0.0).contains("--duration"));
        assert!(refused(&|a| a.repetitions = 0).contains("--repetitions"));
        assert!(refused(&|a| a.data = "{n:1}".into()).contains("not JSON"));
        assert!(refused(&|a| a.method = String::new()).contains("--method"));
        assert!(refused(&|a| a.warmup = -1.0).contains("--warmup"));
        assert!(refused(&|a| a.threads = 0).contains("--threads"));
        // Not a socket address.
        assert!(crate::try_parse_scenario(&["bench", "rpc", "--backend-listen", "x"]).is_err());
    }
}
