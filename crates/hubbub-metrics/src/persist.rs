//! Persistence in `data_dir` (docs/metrics.md, "Persistence"): an
//! append-only log of what changed (values, rules, alerts), written and
//! synced every `flush_interval_ms`, and a snapshot of the whole store
//! every `snapshot_interval_s`, after which the log behind it is deleted.
//! Start-up reads the snapshot and replays the log after it.
//!
//! Each log file is one generation; a snapshot starts a new generation
//! before it reads the series, so every record of older generations is in
//! it, and records of the new one that it also holds are told apart by
//! their value number (`Series::seq`).

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use hubbub_protocol::streams::Alert;
use parking_lot::Mutex;

use crate::alerts::{judge, AlertRecord, Rule};
use crate::codec::{fnv, Dec, Enc, FNV0};
use crate::snapshot::{rule_in, rule_out};
use crate::store::Metrics;
use crate::window::{now_ms, RETENTION};

const VALUE: u8 = 1;
const RULE: u8 = 2;
const ALERT: u8 = 3;

/// Log bytes held in memory between flushes at most; past it records are
/// dropped from the log (counted, warned), the store keeps them and the
/// next snapshot saves them. Overflow policy: drop newest from the log.
const MAX_BUFFER: usize = 32 << 20;

/// The log being written.
pub(crate) struct Log {
    dir: PathBuf,
    state: Mutex<LogState>,
    /// Held while files are written: flushes and snapshots one at a time.
    io: Mutex<()>,
    pub dropped: AtomicU64,
    /// Log bytes written since the last snapshot: past the memory budget
    /// (about a snapshot's size) the writer snapshots early, so the log on
    /// disk stays about the size of the store.
    pub written: AtomicU64,
}

struct LogState {
    gen: u64,
    buf: Vec<u8>,
    /// Buffers of earlier generations not yet written.
    sealed: Vec<(u64, Vec<u8>)>,
}

fn file_of(dir: &Path, gen: u64) -> PathBuf {
    dir.join(format!("log-{gen:020}.bin"))
}

/// The generations of the log files in `dir`, in order.
fn generations(dir: &Path) -> io::Result<Vec<u64>> {
    let mut v: Vec<u64> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().into_string().ok()?;
            n.strip_prefix("log-")?.strip_suffix(".bin")?.parse().ok()
        })
        .collect();
    v.sort_unstable();
    Ok(v)
}

impl Log {
    fn record(&self, kind: u8, body: impl FnOnce(&mut Enc<&mut Vec<u8>>) -> io::Result<()>) {
        let mut st = self.state.lock();
        if st.buf.len() >= MAX_BUFFER {
            self.dropped.fetch_add(1, Relaxed);
            return;
        }
        let start = st.buf.len();
        st.buf.extend_from_slice(&[kind, 0, 0, 0, 0]);
        let mut e = Enc::new(&mut st.buf);
        // Writing to a Vec cannot fail.
        let _ = body(&mut e);
        let len = (st.buf.len() - start - 5) as u32;
        st.buf[start + 1..start + 5].copy_from_slice(&len.to_le_bytes());
        let sum = fnv(FNV0, &st.buf[start..]);
        st.buf.extend_from_slice(&sum.to_le_bytes());
    }

    pub fn value(&self, metric: &str, ts: i64, v: f64, seq: u64) {
        self.record(VALUE, |e| {
            e.str(metric)?;
            e.i64(ts)?;
            e.f64(v)?;
            e.u64(seq)
        });
    }

    pub fn rule(&self, metric: &str, rule: &Rule) {
        self.record(RULE, |e| {
            e.str(metric)?;
            rule_out(e, rule)
        });
    }

    pub fn alert(&self, ts: i64, alert: &Alert) {
        let json = serde_json::to_string(alert).unwrap_or_default();
        self.record(ALERT, |e| {
            e.i64(ts)?;
            e.str(&json)
        });
    }

    /// Writes and syncs what is buffered (blocking: call off the async
    /// workers).
    pub fn flush(&self) -> io::Result<()> {
        let _io = self.io.lock();
        self.flush_locked()
    }

    fn flush_locked(&self) -> io::Result<()> {
        let pending: Vec<(u64, Vec<u8>)> = {
            let mut st = self.state.lock();
            let gen = st.gen;
            let buf = std::mem::take(&mut st.buf);
            let mut p = std::mem::take(&mut st.sealed);
            p.push((gen, buf));
            p
        };
        for (gen, buf) in pending {
            if buf.is_empty() {
                continue;
            }
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(file_of(&self.dir, gen))?;
            f.write_all(&buf)?;
            f.sync_data()?;
            self.written.fetch_add(buf.len() as u64, Relaxed);
        }
        Ok(())
    }

    /// Writes a snapshot of `m` and deletes the log it covers.
    pub fn snapshot(&self, m: &Metrics) -> io::Result<()> {
        let _io = self.io.lock();
        let next = {
            let mut st = self.state.lock();
            let gen = st.gen;
            let buf = std::mem::take(&mut st.buf);
            st.sealed.push((gen, buf));
            st.gen += 1;
            st.gen
        };
        self.flush_locked()?;
        crate::snapshot::write(m, &self.dir, next)?;
        self.written.store(0, Relaxed);
        for gen in generations(&self.dir)? {
            if gen < next {
                std::fs::remove_file(file_of(&self.dir, gen))?;
            }
        }
        Ok(())
    }
}

/// Opens the store kept in `dir` (made if missing): the snapshot, then the
/// log after it; a damaged log record ends that file's replay (a torn
/// write at a crash).
pub(crate) fn open(cfg: crate::MetricsConfig, dir: &Path) -> io::Result<Metrics> {
    std::fs::create_dir_all(dir)?;
    let gens = generations(dir)?;
    let first = gens.last().map_or(0, |g| g + 1);
    let m = Metrics::with_log(
        cfg,
        Some(Log {
            dir: dir.to_owned(),
            state: Mutex::new(LogState {
                gen: first,
                buf: Vec::new(),
                sealed: Vec::new(),
            }),
            io: Mutex::new(()),
            dropped: AtomicU64::new(0),
            written: AtomicU64::new(0),
        }),
    );
    let from = crate::snapshot::load(&m, dir)?;
    if let Some(log) = &m.inner.log {
        // After every file and every generation the snapshot covers.
        log.state.lock().gen = first.max(from);
    }
    let mut replayed = 0u64;
    for gen in gens.into_iter().filter(|&g| g >= from) {
        let bytes = std::fs::read(file_of(dir, gen))?;
        replayed += replay(&m, &bytes);
    }
    tracing::info!(
        series = m.store_stats().series,
        replayed,
        "metrics store opened from {}",
        dir.display()
    );
    Ok(m)
}

/// Applies the records of one log file; how many.
fn replay(m: &Metrics, mut b: &[u8]) -> u64 {
    let inner = &m.inner;
    let oldest = now_ms() - RETENTION;
    let mut n = 0;
    while b.len() >= 9 {
        let len = u32::from_le_bytes([b[1], b[2], b[3], b[4]]) as usize;
        let Some(whole) = b.get(..5 + len + 4) else {
            break;
        };
        let (rec, sum) = whole.split_at(5 + len);
        if fnv(FNV0, rec).to_le_bytes() != sum {
            tracing::warn!("metrics log: a damaged record ends the replay of a file");
            break;
        }
        let mut d = Dec { b: &rec[5..] };
        match rec[0] {
            VALUE => {
                if let (Some(name), Some(ts), Some(v), Some(seq)) =
                    (d.str(), d.i64(), d.f64(), d.u64())
                {
                    if ts > oldest {
                        apply_value(m, name, ts, v, seq);
                    }
                }
            }
            RULE => {
                if let (Some(name), Some(rule)) = (d.str(), rule_in(&mut d)) {
                    let _ = m.put_rule(name, rule);
                }
            }
            ALERT => {
                if let (Some(ts), Some(json)) = (d.i64(), d.str()) {
                    if let Ok(alert) = serde_json::from_str::<Alert>(json) {
                        inner.alerts.lock().push(AlertRecord {
                            timestamp: ts,
                            alert,
                        });
                    }
                }
            }
            _ => {}
        }
        n += 1;
        b = &b[whole.len()..];
    }
    n
}

fn apply_value(m: &Metrics, name: &str, ts: i64, v: f64, seq: u64) {
    let inner = &m.inner;
    let Ok(s) = m.series_for(name) else { return };
    let mut g = s.lock();
    let g = &mut *g;
    if seq <= g.seq {
        return;
    }
    // The states move as they did; the alerts were logged on their own.
    judge(
        name,
        v,
        &g.rule,
        &mut g.state,
        &g.zwin,
        inner.z,
        &mut Vec::new(),
    );
    g.insert(ts, v, seq, inner.limits, &inner.budget);
    inner.seq.fetch_max(seq, Relaxed);
}

/// Flushes the log every `flush_interval_ms` and snapshots every
/// `snapshot_interval_s`, on a thread of its own (file writes block); a
/// last flush and snapshot when `stop` is set.
pub(crate) fn spawn_writer(
    m: Metrics,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("hubbub-metrics-writer".into())
        .spawn(move || {
            let Some(log) = m.inner.log.as_ref() else { return };
            let flush = std::time::Duration::from_millis(m.inner.cfg.flush_interval_ms);
            let every = std::time::Duration::from_secs(m.inner.cfg.snapshot_interval_s);
            let mut last_snapshot = std::time::Instant::now();
            let mut dropped = 0;
            loop {
                let d = log.dropped.load(Relaxed);
                if d > dropped {
                    tracing::warn!(records = d - dropped, "metrics store: the log fell behind; records left out until the next snapshot");
                    dropped = d;
                }
                let stopping = wait(&stop, flush);
                let big = log.written.load(Relaxed) > m.inner.cfg.memory_budget_bytes as u64;
                let r = if stopping || big || last_snapshot.elapsed() >= every {
                    last_snapshot = std::time::Instant::now();
                    m.trim();
                    log.snapshot(&m)
                } else {
                    log.flush()
                };
                if let Err(e) = r {
                    tracing::error!(error = %e, "metrics store: writing to the data directory failed");
                }
                if stopping {
                    return;
                }
            }
        })
}

/// Sleeps `d` in short steps; whether `stop` was set.
fn wait(stop: &std::sync::atomic::AtomicBool, d: std::time::Duration) -> bool {
    let until = std::time::Instant::now() + d;
    while std::time::Instant::now() < until {
        if stop.load(Relaxed) {
            return true;
        }
        std::thread::sleep(d.min(std::time::Duration::from_millis(20)));
    }
    stop.load(Relaxed)
}
