//! What the bench reads from `/proc`, as text: the server's memory and the
//! pid behind a listening port.
//!
//! Reading files keeps the crate free of `unsafe` and of libc bindings, and
//! `/proc` is exactly what an operator would look at to check a figure.

use std::fs;
use std::path::Path;

/// Memory figures of one process from `/proc/PID/status`, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Memory {
    /// `VmRSS`: resident set, what "RSS" means in the report.
    pub rss: u64,
    /// `RssAnon`: the anonymous (heap, stacks) part of it, which is where a
    /// connection's memory lands; file-backed pages are the binary itself.
    pub anon: Option<u64>,
}

/// Reads `VmRSS` and `RssAnon` of `pid`.
pub(crate) fn memory(pid: u32) -> std::io::Result<Memory> {
    let text = fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_status(&text).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("/proc/{pid}/status has no VmRSS (a kernel thread or a zombie?)"),
        )
    })
}

fn parse_status(text: &str) -> Option<Memory> {
    let field = |name: &str| {
        text.lines().find_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix(':')?;
            let kb: u64 = rest.trim().strip_suffix("kB")?.trim().parse().ok()?;
            Some(kb * 1024)
        })
    };
    Some(Memory {
        rss: field("VmRSS")?,
        anon: field("RssAnon"),
    })
}

/// Socket inodes of listening TCP sockets on `port` (IPv4 and IPv6), from
/// `/proc/net/tcp{,6}` of this network namespace.
fn listening_inodes(port: u16) -> Vec<u64> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = fs::read_to_string(table) {
            out.extend(parse_listeners(&text, port));
        }
    }
    out
}

fn parse_listeners(text: &str, port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            let local = cols.get(1)?;
            let state = cols.get(3)?;
            let inode: u64 = cols.get(9)?.parse().ok()?;
            let (_, p) = local.rsplit_once(':')?;
            let p = u16::from_str_radix(p, 16).ok()?;
            (p == port && *state == LISTEN && inode != 0).then_some(inode)
        })
        .collect()
}

/// The pid of the process listening on `port`: the one holding a
/// descriptor that links to `socket:[inode]` of a listening socket. Exists
/// so `--server-pid` can be left out when the hub runs on this machine.
pub(crate) fn pid_listening_on(port: u16) -> Option<u32> {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let mut pids: Vec<u32> = fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids.into_iter().find(|pid| {
        holds_any(
            &Path::new("/proc").join(pid.to_string()).join("fd"),
            &wanted,
        )
    })
}

fn holds_any(fd_dir: &Path, wanted: &[String]) -> bool {
    let Ok(entries) = fs::read_dir(fd_dir) else {
        return false;
    };
    entries.filter_map(Result::ok).any(|e| {
        fs::read_link(e.path())
            .ok()
            .and_then(|t| t.to_str().map(|t| wanted.iter().any(|w| w == t)))
            .unwrap_or(false)
    })
}

/// The running kernel, for the report.
pub(crate) fn kernel() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

/// CPU time (user + system) the process has used so far, in seconds, from
/// `/proc/PID/stat`. Exists so load scenarios can report the hub's CPU per
/// delivery next to the raw baseline's. Assumes 100 clock ticks a second,
/// which is what Linux reports to user space on every common platform.
pub(crate) fn cpu_seconds(pid: u32) -> std::io::Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces: fields start after the last ')'.
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| std::io::Error::other("bad stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) and stime (15) are at 11, 12.
    let ticks = |i: usize| -> std::io::Result<u64> {
        f.get(i)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other("bad stat field"))
    };
    Ok((ticks(11)? + ticks(12)?) as f64 / 100.0)
}

/// The machine's CPU time so far, in clock ticks summed over every CPU:
/// (busy, total), from the first line of `/proc/stat`. Exists so a run can
/// say how busy the whole machine was (the hub, the bench, and anything
/// else running), which is what bounds a saturation figure on a small host.
pub(crate) fn host_cpu_ticks() -> Option<(u64, u64)> {
    parse_host_cpu(&fs::read_to_string("/proc/stat").ok()?)
}

fn parse_host_cpu(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice],
    // guest time being already inside user and nice.
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields() {
        let m = parse_status("Name:\thub\nVmRSS:\t    1952 kB\nRssAnon:\t     156 kB\n").unwrap();
        assert_eq!(m.rss, 1952 * 1024);
        assert_eq!(m.anon, Some(156 * 1024));
        assert!(parse_status("Name:\tkthread\n").is_none());
    }

    #[test]
    fn listeners_by_port() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5371 1 0 100 0 0 10 0\n   1: 0100007F:1F40 0200007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 6804 1 0 100 0 0 10 0\n";
        assert_eq!(parse_listeners(text, 8000), vec![5371]);
        assert!(parse_listeners(text, 8001).is_empty());
    }

    #[test]
    fn host_cpu() {
        let t = "cpu  100 5 50 800 40 1 4 0 7 0\ncpu0 50 2 25 400 20 0 2 0 3 0\n";
        assert_eq!(parse_host_cpu(t), Some((160, 1000)));
        assert_eq!(parse_host_cpu("intr 1 2\n"), None);
        let (busy, total) = host_cpu_ticks().unwrap();
        assert!(busy <= total && total > 0);
    }

    #[test]
    fn finds_our_own_listener() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert_eq!(pid_listening_on(port), Some(std::process::id()));
        assert!(memory(std::process::id()).unwrap().rss > 0);
    }
}
