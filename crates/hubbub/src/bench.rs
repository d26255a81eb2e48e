//! `hubbub bench ...` hands over to the `hubbub-bench` binary.
//!
//! The load generator is a crate and a binary of its own so that building
//! the hub (`cargo run --release -- serve`) does not compile it: whoever
//! wants the bench builds it (`cargo build --release -p hubbub-bench`) and
//! `hubbub bench` then works as before, from the same directory.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

/// Replaces this process with `hubbub-bench bench ARGS...`, found beside
/// this executable or else on the PATH; says how to build it when neither
/// has it (exit 2).
pub fn run(args: Vec<OsString>) -> ExitCode {
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.join("hubbub-bench")))
        .filter(|p| p.is_file());
    let program = beside.unwrap_or_else(|| PathBuf::from("hubbub-bench"));
    let mut cmd = std::process::Command::new(&program);
    cmd.arg("bench").args(args);
    use std::os::unix::process::CommandExt;
    let e = cmd.exec();
    if e.kind() == std::io::ErrorKind::NotFound {
        eprintln!(
            "hubbub bench: the bench is a binary of its own and is not built; \
             build it beside this one with `cargo build --release -p hubbub-bench` \
             (or `cargo build -p hubbub-bench` for a debug hubbub)"
        );
    } else {
        eprintln!("hubbub bench: cannot run {}: {e}", program.display());
    }
    ExitCode::from(2)
}
