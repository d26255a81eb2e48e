//! `hubbub bench`: load scenarios against a running hub, with the figures
//! the project tracks (see `docs/performance.md`).
//!
//! The crate is a library so the `hubbub` binary mounts it as a subcommand
//! ([`BenchArgs`], [`run`]) and tests run scenarios in-process
//! ([`connections::run_in_process`]). Scenarios that need more descriptors
//! than one process may hold re-execute the current binary as
//! `<exe> bench <scenario> ... --worker-index I --worker-count W`, so the
//! binary that mounts this crate must do so as `bench`.
//!
//! Scenarios:
//! * `connections`: the memory cost of idle, subscribed connections and the
//!   handshake rate while ramping them up.
//! * `fanout`, `channels`, `churn`, `http-publish` ([`load`]): publications
//!   through the HTTP API or a WebSocket, publish-to-receive latency from
//!   timestamps inside the payloads, deliveries/s, nothing missing.
//! * `sweep` ([`load::SweepArgs`]): `fanout` at a list of rates with one
//!   set of subscribers, up to the highest rate kept up within a p99 limit.
//! * `rpc` ([`rpc`]): calls of one method over many connections, round
//!   trip and calls/s, answered in the hub or through its RPC proxy (with
//!   a backend the bench serves itself).
//! * `raw-server` ([`raw`]): not a scenario but the floor they are compared
//!   with: pre-built frames written to plain sockets, no protocol logic.
//!
//! Every scenario but `raw-server` can drive several nodes of a cluster at
//! once (`--url` repeated or comma-separated; no load balancer needed):
//! clients and publishers go round robin over the nodes, and
//! `--server-pid` repeated sums the CPU and RSS of every node and of, say,
//! the Redis server between them.

pub mod connections;
mod hist;
pub mod load;
mod nodes;
mod procfs;
pub mod raw;
pub mod rpc;
mod target;
mod workers;

use std::process::ExitCode;

pub use connections::ConnectionsArgs;

/// `hubbub bench`: one scenario per subcommand. Exists as a clap struct so
/// the `hubbub` binary can mount it without knowing the scenarios.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// The scenario to run.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// `hubbub bench ARGS...` as the `hubbub` binary parses it (`argv` starts
/// with `bench`), for the scenarios' unit tests of their flags.
#[cfg(test)]
pub(crate) fn parse_scenario<S: AsRef<str>>(argv: &[S]) -> Scenario {
    try_parse_scenario(argv).unwrap()
}

/// [`parse_scenario`], the refusal kept, for tests of bad flags.
#[cfg(test)]
pub(crate) fn try_parse_scenario<S: AsRef<str>>(argv: &[S]) -> Result<Scenario, clap::Error> {
    use clap::Parser as _;
    #[derive(clap::Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Top,
    }
    #[derive(clap::Subcommand)]
    enum Top {
        Bench(BenchArgs),
    }
    let argv = std::iter::once("hubbub").chain(argv.iter().map(AsRef::as_ref));
    let Top::Bench(b) = Cli::try_parse_from(argv)?.cmd;
    Ok(b.scenario)
}

/// The scenarios. Non-exhaustive because more may come; callers just hand
/// [`BenchArgs`] to [`run`].
#[derive(clap::Subcommand, Debug)]
#[non_exhaustive]
pub enum Scenario {
    /// Open N idle connections subscribed to one channel, hold them, and
    /// report the hub's RSS per connection and the handshake rate.
    Connections(ConnectionsArgs),
    /// S subscribers on one channel, publications at rate R of P bytes:
    /// deliveries/s and publish-to-receive latency.
    Fanout(load::LoadArgs),
    /// Many channels with few subscribers each, publications spread over them.
    Channels(load::LoadArgs),
    /// A fan-out while connections connect, subscribe and leave at a rate:
    /// baseline and churn windows side by side.
    Churn(load::LoadArgs),
    /// The fan-out at a list of rates (`--rates 50,100,200`) with one set
    /// of subscribers: the highest rate kept up within `--p99-max-ms`.
    // Boxed: the largest flags struct, and clippy weighs enum variants.
    Sweep(Box<load::SweepArgs>),
    /// Publish requests per second the HTTP API sustains (concurrency
    /// `--publishers`, with or without subscribers).
    HttpPublish(load::LoadArgs),
    /// Calls of one method (`rpc`) over C connections, closed loop with N
    /// in flight each or open loop at a rate: round trip and calls/s.
    Rpc(rpc::RpcArgs),
    /// A raw baseline server: answers the upgrade and writes one pre-built
    /// frame per publication to every socket, with no protocol logic.
    RawServer(raw::RawArgs),
}

/// Runs a scenario to its end and returns the process exit code: 0 when
/// everything asked for was done, 1 when some connections failed, 2 when
/// the run could not start, 130 when interrupted (the table is still
/// printed). Builds its own tokio runtime(s), so the caller must not be
/// inside one; this is what lets worker processes pick a lean runtime.
pub fn run(args: BenchArgs) -> ExitCode {
    match args.scenario {
        Scenario::Connections(a) => connections::run_cli(a),
        Scenario::Fanout(a) => load::run_cli(load::Kind::Fanout, a),
        Scenario::Channels(a) => load::run_cli(load::Kind::Channels, a),
        Scenario::Churn(a) => load::run_cli(load::Kind::Churn, a),
        Scenario::HttpPublish(a) => load::run_cli(load::Kind::HttpPublish, a),
        Scenario::Sweep(a) => load::run_sweep_cli(*a),
        Scenario::Rpc(a) => rpc::run_cli(a),
        Scenario::RawServer(a) => raw::run(a),
    }
}
