//! Logs to stderr, so that stdout stays for what scripts read (the address
//! block of `serve`, the JSON lines of the clients).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the fmt subscriber, filtered by `HUBBUB_LOG`, else `RUST_LOG`,
/// else `default` (the hub wants `info`; clients only want problems).
pub fn init(default: &str) {
    let spec = ["HUBBUB_LOG", "RUST_LOG"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()));
    let (filter, bad) = match spec {
        Some(s) => match EnvFilter::try_new(&s) {
            Ok(f) => (f, None),
            Err(e) => (EnvFilter::new(default), Some(format!("{s:?}: {e}"))),
        },
        None => (EnvFilter::new(default), None),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Some(why) = bad {
        tracing::warn!("ignoring log filter {why}; using {default:?}");
    }
}
