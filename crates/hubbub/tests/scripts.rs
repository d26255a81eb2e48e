//! `scripts/test-all` itself: it finds the binary wherever cargo puts it
//! (`CARGO_TARGET_DIR` included), and its list of skipped suites is printed
//! whatever happens, a failed build included.
//!
//! The script runs with a `cargo` in front of the real one on the PATH that
//! answers `metadata` truthfully and fails `build` at once, so the test
//! sees the script's start and its failure path without building anything.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `scripts/test-all` with the failing `cargo`; (exit code, output).
fn test_all(target_dir: Option<&Path>) -> (Option<i32>, String) {
    // A directory per call: the tests run in parallel, and rewriting a
    // script another test is executing fails with "Text file busy".
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let fake =
        std::env::temp_dir().join(format!("hubbub-fake-cargo-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&fake).unwrap();
    let real = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = metadata ]; then exec \"{real}\" \"$@\"; fi\n\
         echo \"fake cargo: $1 fails\" >&2\nexit 3\n"
    );
    let cargo = fake.join("cargo");
    std::fs::write(&cargo, script).unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&cargo)
        .status()
        .unwrap();
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap());
    let mut cmd = Command::new(root().join("scripts/test-all"));
    cmd.env("PATH", path)
        .env_remove("CI")
        // No peers here: their suites are listed as skipped.
        .env("BENCH_PEERS_DIR", fake.join("no-peers"));
    match target_dir {
        Some(d) => cmd.env("CARGO_TARGET_DIR", d),
        None => cmd.env_remove("CARGO_TARGET_DIR"),
    };
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

#[test]
fn test_all_finds_the_binary_through_cargo() {
    let custom = std::env::temp_dir().join("hubbub-elsewhere");
    let (_, text) = test_all(Some(&custom));
    let want = format!("suites below run {}/debug/hubbub", custom.display());
    assert!(text.contains(&want), "{text}");

    let (_, text) = test_all(None);
    let default = root().canonicalize().unwrap().join("target/debug/hubbub");
    let want = format!("suites below run {}", default.display());
    assert!(text.contains(&want), "{text}");
}

#[test]
fn test_all_lists_skipped_suites_even_when_the_build_fails() {
    let (code, text) = test_all(None);
    assert_eq!(code, Some(3), "the build's exit status: {text}");
    assert!(text.contains("test-all: FAILED (exit 3)"), "{text}");
    assert!(
        text.contains("!!! SKIPPED SUITE: Socket.IO 4 peer smoke test"),
        "{text}"
    );
    assert!(
        text.contains("!!! SKIPPED SUITE: Sockudo peer smoke test"),
        "{text}"
    );
}
