//! The `hubbub` command: run a hub node, and talk to one from a shell.
//!
//! `serve` is the hub itself; `publish` and `subscribe` are the smallest
//! possible clients of its two faces (HTTP API and WebSocket protocol), and
//! `token` signs tokens for them, so that trying the hub, scripting it and
//! testing it need nothing else.

mod bench;
mod client_js;
mod demo;
mod endpoint;
mod logging;
mod publish;
mod serve;
mod subscribe;
mod token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hubbub",
    version,
    about = "hubbub: a real-time WebSocket hub",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a hub node: WebSocket at /ws and the HTTP API on one port.
    Serve(serve::ServeArgs),
    /// Publish one event to a channel through the HTTP API.
    Publish(publish::PublishArgs),
    /// Subscribe to channels and print their events as JSON lines.
    Subscribe(subscribe::SubscribeArgs),
    /// Print a token signed with the configured key (development and tests).
    Token(token::TokenArgs),
    /// Load scenarios against a running hub (or a peer), and the raw
    /// baseline: runs the `hubbub-bench` binary built beside this one
    /// (`cargo build --release -p hubbub-bench`).
    #[command(disable_help_flag = true)]
    Bench {
        /// Everything after `bench`, for `hubbub-bench bench` (try `--help`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => serve::run(args),
        Command::Publish(args) => publish::run(args),
        Command::Subscribe(args) => subscribe::run(args),
        Command::Token(args) => token::run(args),
        Command::Bench { args } => bench::run(args),
    }
}

/// Why a client command stopped, carried up to `main` so that every way of
/// failing ends in one message on stderr and the documented exit code.
#[derive(Debug)]
pub struct Failure {
    /// Exit status: 1 for failures at or after the network, 2 for bad input.
    pub code: u8,
    /// What to tell the user; empty for a silent stop (a closed stdout).
    pub message: String,
}

impl Failure {
    /// A failure of the exchange with the hub (exit 1).
    pub fn remote(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    /// A usage error: input that never reached the hub (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }

    /// Prints the message under the command's name and gives the exit code.
    pub fn report(self, command: &str) -> ExitCode {
        if !self.message.is_empty() {
            eprintln!("hubbub {command}: {}", self.message);
        }
        ExitCode::from(self.code)
    }
}

/// Runs a client command on a single-threaded runtime: a client holds one
/// connection, so more threads would only cost start-up time.
pub fn block_on<F: std::future::Future<Output = Result<(), Failure>>>(
    command: &str,
    fut: F,
) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return Failure::remote(format!("cannot start runtime: {e}")).report(command),
    };
    match rt.block_on(fut) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => f.report(command),
    }
}
