//! Plumbing both worker-based scenarios (`connections` and the publish
//! scenarios in `load`) share: starting worker processes and reading their
//! JSON lines, a worker's ends of that pipe (stdout, stdin), where workers
//! connect from, and the host description every report carries.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin};
use tokio::sync::{mpsc, oneshot};

use crate::connections::worker::unix_us;
use crate::procfs;

/// What the parent hears from worker `i`: one of its messages, or the end
/// of its output (it exited, or its thread or task returned). Generic over
/// the scenario's message type so both scenarios share the reader.
pub(crate) enum Event<M> {
    Msg(usize, M),
    Exited(usize),
}

/// Starts worker `index` as `exe argv...` with piped stdin and stdout and
/// forwards each stdout line, parsed as `M`, to `tx`, then
/// [`Event::Exited`]. `unreadable` turns a line that does not parse into
/// the message reporting it, so the parent never waits for a report it
/// could not read. Returns the child and its stdin (the stop signal).
pub(crate) fn spawn_process<M>(
    exe: &Path,
    argv: Vec<String>,
    index: usize,
    tx: mpsc::UnboundedSender<Event<M>>,
    unreadable: fn(serde_json::Error, &str) -> M,
) -> std::io::Result<(Child, Option<ChildStdin>)>
where
    M: DeserializeOwned + Send + 'static,
{
    let mut child = tokio::process::Command::new(exe)
        .args(argv)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        // Its own process group: Ctrl-C at the terminal reaches only the
        // parent, which then stops the workers in order.
        .process_group(0)
        .spawn()?;
    let stdout = child.stdout.take().expect("piped");
    let stdin = child.stdin.take();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let m = serde_json::from_str::<M>(&line).unwrap_or_else(|e| unreadable(e, &line));
            let _ = tx.send(Event::Msg(index, m));
        }
        let _ = tx.send(Event::Exited(index));
    });
    Ok((child, stdin))
}

/// A worker process's way of reporting: each message as one JSON line on
/// stdout, flushed at once so the parent sees progress as it happens.
pub(crate) fn stdout_emit<M: Serialize>() -> Arc<dyn Fn(M) + Send + Sync> {
    Arc::new(|m| {
        if let Ok(line) = serde_json::to_string(&m) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    })
}

/// A worker process's stop signal: fires at a line or EOF on stdin. Read
/// on a plain thread, so the runtime never waits on a blocking stdin read.
pub(crate) fn stop_on_stdin() -> oneshot::Receiver<()> {
    let (tx, rx) = oneshot::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = tx.send(());
    });
    rx
}

/// A worker process's control channel: every line on stdin, trimmed and
/// turned into a command by `parse`, until EOF closes the channel. Exists
/// for workers the parent talks to more than once (the `load` workers
/// answer `snapshot` requests during a sweep); read on a plain thread like
/// [`stop_on_stdin`].
pub(crate) fn lines_on_stdin<T: Send + 'static>(
    parse: fn(&str) -> T,
) -> mpsc::UnboundedReceiver<T> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        while matches!(std::io::stdin().read_line(&mut line), Ok(n) if n > 0) {
            if tx.send(parse(line.trim())).is_err() {
                return;
            }
            line.clear();
        }
    });
    rx
}

/// 127.0.0.1, 127.0.0.2, ... for a loopback IPv4 hub (each its own
/// ephemeral-port space); the unspecified address otherwise.
pub(crate) fn default_sources(target: IpAddr, workers: usize) -> Vec<IpAddr> {
    match target {
        IpAddr::V4(v4) if v4.is_loopback() => (0..workers.min(254))
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + i as u8)))
            .collect(),
        IpAddr::V4(_) => vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED)],
        IpAddr::V6(v6) if v6.is_loopback() => vec![IpAddr::V6(Ipv6Addr::LOCALHOST)],
        IpAddr::V6(_) => vec![IpAddr::V6(Ipv6Addr::UNSPECIFIED)],
    }
}

/// The machine the run was on, so a figure can be compared with another.
#[derive(Debug, Clone, Serialize)]
pub struct HostInfo {
    /// CPUs available to the bench.
    pub nproc: usize,
    /// `/proc/sys/kernel/osrelease`.
    pub kernel: String,
    /// When the run started, UTC, RFC 3339.
    pub date_utc: String,
}

impl HostInfo {
    pub(crate) fn now() -> HostInfo {
        HostInfo {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            kernel: procfs::kernel(),
            date_utc: utc_rfc3339(unix_us() / 1_000_000),
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` from Unix seconds (Howard Hinnant's civil_from_days).
fn utc_rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(utc_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc_rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
