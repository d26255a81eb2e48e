//! Logs to stderr, so that stdout stays for what scripts read (the address
//! block of `serve`, the JSON lines of the clients).

use std::io::IsTerminal;

use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Installs the fmt subscriber, filtered by `HUBBUB_LOG`, else `RUST_LOG`,
/// else `default` (the hub wants `info`; clients only want problems). A
/// filter is a level (`debug`) and/or `target=level` pairs
/// (`hubbub_server=debug,warn`), comma-separated; targets are matched by
/// prefix, without the regular expressions of a full `EnvFilter`, which
/// would double the logging stack's build time for a feature nobody here
/// uses.
pub fn init(default: &str) {
    let spec = ["HUBBUB_LOG", "RUST_LOG"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()));
    let fallback = || default.parse::<Targets>().expect("a valid default filter");
    let (filter, bad) = match spec {
        Some(s) => match s.parse::<Targets>() {
            Ok(f) => (f, None),
            Err(e) => (fallback(), Some(format!("{s:?}: {e}"))),
        },
        None => (fallback(), None),
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(filter)
        .init();
    if let Some(why) = bad {
        tracing::warn!("ignoring log filter {why}; using {default:?}");
    }
}
