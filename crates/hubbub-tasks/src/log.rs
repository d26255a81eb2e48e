//! The task list on disk: `<data_dir>/tasks.log`, an append-only log of
//! task records, rewritten whole (compacted) at start and whenever it has
//! grown to more than twice the records held (docs/tasks.md).
//!
//! Why a log of whole records and not an embedded database: a task is
//! small and changes a few times, every change is already serialized for
//! its event, and the queue holds at most `max_tasks`; an append of that
//! text (one `write` per batch of changes, one `fdatasync` with `fsync =
//! true`) is the cheapest durable step, and replaying the newest record
//! per id is all a start needs. No dependency to build, and the file reads
//! with `less`.
//!
//! Format: a header line, then one record per line, `<crc32 of the JSON,
//! 8 hex digits> <JSON>`, the JSON `{"put":{"n":..,"task":{..}}}` (the
//! task as it now is, `n` its creation number) or `{"remove":"<id>"}`. A
//! last line without its newline is what a crash in the middle of an
//! append leaves: skipped with a warning. A whole line that fails its
//! checksum or does not parse is damage, not a torn write (the newline is
//! the last byte of every append, and a file's size only covers data
//! written): the hub refuses to start and names the line, rather than
//! lose a task or bring back an older state of it without saying so.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use hubbub_protocol::tasks::Task;
use serde::Deserialize;

use crate::store::Held;

/// The log's name in the data directory.
pub const FILE: &str = "tasks.log";
const HEADER: &str = "hubbub-tasks-log 1\n";

/// One line of the log, as read back.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum Record {
    Put { n: u64, task: Task },
    Remove(String),
}

/// The open log, appended to by the queue's publisher only.
pub(crate) struct Log {
    dir: PathBuf,
    file: File,
    fsync: bool,
    /// Records appended since the last rewrite.
    pub appended: u64,
}

/// Appends a `put` record of a task already serialized as `task_json`.
pub(crate) fn put_line(buf: &mut Vec<u8>, n: u64, task_json: &str) {
    line(
        buf,
        &format!("{{\"put\":{{\"n\":{n},\"task\":{task_json}}}}}"),
    );
}

/// Appends a `remove` record.
pub(crate) fn remove_line(buf: &mut Vec<u8>, id: &str) {
    let id = serde_json::to_string(id).expect("a string serializes");
    line(buf, &format!("{{\"remove\":{id}}}"));
}

fn line(buf: &mut Vec<u8>, json: &str) {
    let crc = crc32fast::hash(json.as_bytes());
    buf.extend_from_slice(format!("{crc:08x} ").as_bytes());
    buf.extend_from_slice(json.as_bytes());
    buf.push(b'\n');
}

/// Why a log could not be read: the message names the file and line.
fn damaged(path: &Path, line: usize, what: &str) -> String {
    format!(
        "{}: line {line}: {what}; the task list is damaged (move the file aside to start empty)",
        path.display()
    )
}

/// Parses one record line (without its newline).
fn parse(text: &[u8]) -> Result<Record, String> {
    let text = std::str::from_utf8(text).map_err(|_| "not UTF-8".to_owned())?;
    let (crc, json) = text
        .split_once(' ')
        .ok_or_else(|| "no checksum".to_owned())?;
    let crc = u32::from_str_radix(crc, 16).map_err(|_| "bad checksum field".to_owned())?;
    if crc != crc32fast::hash(json.as_bytes()) {
        return Err("checksum mismatch".into());
    }
    serde_json::from_str(json).map_err(|e| format!("bad record: {e}"))
}

/// Reads the records of a log's contents into the tasks they leave.
pub(crate) fn replay(path: &Path, bytes: &[u8]) -> Result<Vec<Held>, String> {
    let mut store = crate::store::Store::default();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let Some(body) = bytes.strip_prefix(HEADER.as_bytes()) else {
        return Err(format!(
            "{}: not a hubbub task log (the first line is not {:?})",
            path.display(),
            HEADER.trim_end()
        ));
    };
    let lines: Vec<&[u8]> = body.split_inclusive(|b| *b == b'\n').collect();
    for (i, raw) in lines.iter().enumerate() {
        let number = i + 2;
        let last = i + 1 == lines.len();
        let Some(text) = raw.strip_suffix(b"\n") else {
            // Only the last line can lack its newline: the end of an
            // append that a crash cut short.
            debug_assert!(last);
            tracing::warn!(
                "{}: line {number}: cut short by a crash in the middle of a write, skipped",
                path.display()
            );
            break;
        };
        match parse(text) {
            Ok(Record::Put { n, task }) => store.put(Held { n, task }),
            Ok(Record::Remove(id)) => {
                store.remove(&id);
            }
            Err(e) => return Err(damaged(path, number, &e)),
        }
    }
    Ok(store.all())
}

impl Log {
    /// Opens (creating the directory if need be) the log in `dir` and
    /// reads the tasks it holds. Call [`Log::rewrite`] next: a torn last
    /// line must not stay in front of new records.
    pub fn open(dir: &Path, fsync: bool) -> Result<(Log, Vec<Held>), String> {
        let fail = |e: io::Error| format!("{}: {e}", dir.display());
        fs::create_dir_all(dir).map_err(fail)?;
        let path = dir.join(FILE);
        let held = match fs::read(&path) {
            Ok(bytes) => replay(&path, &bytes)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let log = Log {
            dir: dir.to_owned(),
            file,
            fsync,
            appended: 0,
        };
        Ok((log, held))
    }

    /// Appends records (whole lines) and, with `fsync`, flushes them to
    /// the disk.
    pub fn append(&mut self, buf: &[u8], records: u64) -> io::Result<()> {
        self.file.write_all(buf)?;
        if self.fsync {
            self.file.sync_data()?;
        }
        self.appended += records;
        Ok(())
    }

    /// Replaces the log with one record per task held: written to a
    /// temporary file, flushed, then renamed over the log (and the
    /// directory flushed), so a crash leaves the old log or the new one,
    /// never a mix.
    pub fn rewrite(&mut self, held: &[Held]) -> io::Result<()> {
        let mut buf = Vec::with_capacity(HEADER.len() + held.len() * 256);
        buf.extend_from_slice(HEADER.as_bytes());
        for h in held {
            let json = serde_json::to_string(&h.task).map_err(io::Error::other)?;
            put_line(&mut buf, h.n, &json);
        }
        let path = self.dir.join(FILE);
        let tmp = self.dir.join(format!("{FILE}.tmp"));
        let mut f = File::create(&tmp)?;
        f.write_all(&buf)?;
        f.sync_all()?;
        fs::rename(&tmp, &path)?;
        File::open(&self.dir)?.sync_all()?;
        self.file = OpenOptions::new().append(true).open(&path)?;
        self.appended = 0;
        Ok(())
    }
}
