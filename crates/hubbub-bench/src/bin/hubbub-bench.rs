//! `hubbub-bench bench <scenario> ...`: the bench scenarios without the rest
//! of the `hubbub` binary. Exists to run (and profile) the bench on its own;
//! it takes the same `bench` subcommand as `hubbub` so that worker processes
//! re-executing it find the same command-line layout.

use clap::Parser;

/// Command line: `hubbub-bench bench ...`, exactly like `hubbub bench ...`.
#[derive(Parser)]
#[command(name = "hubbub-bench", version, about = "hubbub load scenarios")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Run a load scenario against a running hub.
    Bench(hubbub_bench::BenchArgs),
}

fn main() -> std::process::ExitCode {
    let Command::Bench(args) = Cli::parse().command;
    hubbub_bench::run(args)
}
