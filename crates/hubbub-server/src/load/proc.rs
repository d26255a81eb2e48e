//! The process's own resources from `/proc/self` (Linux): CPU time,
//! resident memory, open descriptors. Read as text, so the crate needs
//! neither `unsafe` nor libc bindings; elsewhere every figure is `None`
//! and the load reports zeros.

use std::fs;

/// Clock ticks per second of `/proc/<pid>/stat` times: `USER_HZ`, which
/// the kernel fixes at 100 for user space on every architecture it runs.
const TICKS_PER_SECOND: f64 = 100.0;

/// One reading of the process's resources.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProcSample {
    /// User plus system CPU time, in seconds.
    pub cpu_seconds: Option<f64>,
    /// Resident set size (`VmRSS`), in bytes.
    pub rss_bytes: Option<u64>,
    /// Open file descriptors (sockets included).
    pub open_fds: Option<u64>,
}

impl ProcSample {
    /// Reads `/proc/self/{stat,status,fd}`: two small reads and a `stat`
    /// (a listing of the descriptors on kernels before 6.2).
    pub fn read() -> Self {
        ProcSample {
            cpu_seconds: fs::read_to_string("/proc/self/stat")
                .ok()
                .and_then(|s| cpu_ticks(&s))
                .map(|t| t as f64 / TICKS_PER_SECOND),
            rss_bytes: fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| vm_rss(&s)),
            open_fds: open_fds(),
        }
    }
}

/// Open descriptors: the size Linux 6.2 and later give `/proc/self/fd`
/// (its entry count, for free), else a listing of it (about 0.7 us per
/// descriptor: 7 ms at 10,000).
fn open_fds() -> Option<u64> {
    match fs::metadata("/proc/self/fd") {
        Ok(m) if m.len() > 0 => Some(m.len()),
        Ok(_) => fs::read_dir("/proc/self/fd")
            .ok()
            // The listing's own descriptor is in it: one less.
            .map(|d| (d.count() as u64).saturating_sub(1)),
        Err(_) => None,
    }
}

/// `utime + stime` (fields 14 and 15) of a `/proc/<pid>/stat` line. The
/// command name (field 2) may hold spaces and parentheses, so fields are
/// counted from the last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// `VmRSS` of a `/proc/<pid>/status`, in bytes.
fn vm_rss(status: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let kb = l.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?;
        Some(kb.trim().parse::<u64>().ok()? * 1024)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_and_status() {
        let stat = "4242 (a (weird) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 9 0 100 0";
        assert_eq!(cpu_ticks(stat), Some(300));
        assert_eq!(cpu_ticks("garbage"), None);
        let status = "Name:\thubbub\nVmRSS:\t    2048 kB\nThreads:\t9\n";
        assert_eq!(vm_rss(status), Some(2048 * 1024));
        assert_eq!(vm_rss("Name: x\n"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let s = ProcSample::read();
        assert!(s.cpu_seconds.is_some());
        assert!(s.rss_bytes.unwrap() > 0);
        assert!(s.open_fds.unwrap() >= 1);
    }
}
