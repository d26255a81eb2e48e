//! The snapshot: the whole store (series with all their tiers, rules, the
//! alert history) in one file, written beside and renamed over the last,
//! so a crash leaves the old one or the new one, never half of either.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::agg::Agg;
use crate::alerts::{AlertRecord, AlertState, Rule};
use crate::codec::{fnv, Dec, Enc, FNV0};
use crate::series::{Bucket, HourBucket, Series};
use crate::sketch::{Sketch, BIN_BYTES};
use crate::store::{series_cost, Metrics};

const MAGIC: &[u8; 8] = b"HBMETRS1";
pub(crate) const FILE: &str = "snapshot.bin";

fn agg_out<W: Write>(e: &mut Enc<W>, a: &Agg) -> io::Result<()> {
    e.u64(a.count)?;
    e.f64(a.mean)?;
    e.f64(a.m2)?;
    e.f64(a.min)?;
    e.f64(a.max)
}

fn agg_in(d: &mut Dec) -> Option<Agg> {
    Some(Agg {
        count: d.u64()?,
        mean: d.f64()?,
        m2: d.f64()?,
        min: d.f64()?,
        max: d.f64()?,
    })
}

pub(crate) fn rule_out<W: Write>(e: &mut Enc<W>, r: &Rule) -> io::Result<()> {
    e.opt(r.above)?;
    e.opt(r.below)?;
    e.opt(r.z_score)
}

pub(crate) fn rule_in(d: &mut Dec) -> Option<Rule> {
    Some(Rule {
        above: d.opt()?,
        below: d.opt()?,
        z_score: d.opt()?,
    })
}

fn series_out<W: Write>(e: &mut Enc<W>, name: &str, s: &Series) -> io::Result<()> {
    e.str(name)?;
    e.u64(s.seq)?;
    e.i64(s.newest)?;
    e.u8(s.last.is_some() as u8)?;
    let (lt, lv) = s.last.unwrap_or((0, 0.0));
    e.i64(lt)?;
    e.f64(lv)?;
    e.i64(s.raw_gap)?;
    e.i64(s.minute_gap)?;
    e.i64(s.hour_gap)?;
    e.u32(s.raw.len() as u32)?;
    for &(t, v) in &s.raw {
        e.i64(t)?;
        e.f64(v)?;
    }
    e.u32(s.minutes.len() as u32)?;
    for b in &s.minutes {
        e.i64(b.start)?;
        agg_out(e, &b.agg)?;
    }
    e.u32(s.hours.len() as u32)?;
    for b in &s.hours {
        e.i64(b.start)?;
        agg_out(e, &b.agg)?;
        e.u32(b.sketch.bins.len() as u32)?;
        for &(i, c) in &b.sketch.bins {
            e.u16(i)?;
            e.u32(c)?;
        }
    }
    e.u32(s.zwin.len() as u32)?;
    for &v in &s.zwin {
        e.f64(v)?;
    }
    rule_out(e, &s.rule)?;
    e.u8(s.state.above as u8 | (s.state.below as u8) << 1 | (s.state.anomaly as u8) << 2)
}

fn deque<T>(
    d: &mut Dec,
    size: usize,
    mut item: impl FnMut(&mut Dec) -> Option<T>,
) -> Option<VecDeque<T>> {
    let n = d.len(size)?;
    let mut v = VecDeque::with_capacity(n);
    for _ in 0..n {
        v.push_back(item(d)?);
    }
    Some(v)
}

fn series_in<'a>(d: &mut Dec<'a>) -> Option<(&'a str, Series)> {
    let name = d.str()?;
    let mut s = Series::new(Rule::default());
    s.seq = d.u64()?;
    s.newest = d.i64()?;
    let has_last = d.u8()? != 0;
    let last = (d.i64()?, d.f64()?);
    s.last = has_last.then_some(last);
    s.raw_gap = d.i64()?;
    s.minute_gap = d.i64()?;
    s.hour_gap = d.i64()?;
    s.raw = deque(d, 16, |d| Some((d.i64()?, d.f64()?)))?;
    s.minutes = deque(d, 48, |d| {
        Some(Bucket {
            start: d.i64()?,
            agg: agg_in(d)?,
        })
    })?;
    s.hours = deque(d, 52, |d| {
        let start = d.i64()?;
        let agg = agg_in(d)?;
        let n = d.len(6)?;
        let mut bins = Vec::with_capacity(n);
        for _ in 0..n {
            bins.push((d.u16()?, d.u32()?));
        }
        Some(HourBucket {
            start,
            agg,
            sketch: Sketch { bins },
        })
    })?;
    s.zwin = deque(d, 8, |d| d.f64())?;
    s.rule = rule_in(d)?;
    let st = d.u8()?;
    s.state = AlertState {
        above: st & 1 != 0,
        below: st & 2 != 0,
        anomaly: st & 4 != 0,
    };
    Some((name, s))
}

/// The bytes `s`'s tiers hold (what the budget is charged for them).
fn held(s: &Series) -> usize {
    use std::mem::size_of;
    s.raw.capacity() * size_of::<(i64, f64)>()
        + s.minutes.capacity() * size_of::<Bucket>()
        + s.hours.capacity() * size_of::<HourBucket>()
        + s.hours
            .iter()
            .map(|h| h.sketch.bins.capacity() * BIN_BYTES)
            .sum::<usize>()
        + s.zwin.capacity() * size_of::<f64>()
}

/// Writes `m` to `dir/snapshot.bin` (through a temporary file, synced,
/// renamed); `next_gen` is the first log generation not in it.
pub(crate) fn write(m: &Metrics, dir: &Path, next_gen: u64) -> io::Result<()> {
    let tmp = dir.join("snapshot.tmp");
    let f = File::create(&tmp)?;
    let mut e = Enc::new(BufWriter::with_capacity(1 << 20, f));
    e.bytes(MAGIC)?;
    e.u64(next_gen)?;
    let inner = &m.inner;
    e.u64(inner.seq.load(Relaxed))?;
    let all: Vec<(Arc<str>, Arc<Mutex<Series>>)> = inner
        .series
        .read()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    e.u32(all.len() as u32)?;
    // Each series is encoded in memory under its lock and written after,
    // so no recorder waits for the disk.
    let mut buf = Vec::new();
    for (name, s) in &all {
        buf.clear();
        series_out(&mut Enc::new(&mut buf), name, &s.lock())?;
        e.bytes(&buf)?;
    }
    let rules: Vec<(String, Rule)> = inner
        .rules
        .read()
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    e.u32(rules.len() as u32)?;
    for (name, r) in &rules {
        e.str(name)?;
        rule_out(&mut e, r)?;
    }
    let alerts = inner.alerts.lock().items.clone();
    e.u32(alerts.len() as u32)?;
    for a in &alerts {
        e.str(&serde_json::to_string(a).map_err(io::Error::other)?)?;
    }
    let hash = e.hash;
    e.w.write_all(&hash.to_le_bytes())?;
    let f = e.w.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(FILE))?;
    File::open(dir)?.sync_all()
}

/// Reads `dir/snapshot.bin` into `m` (a new, empty store), charging the
/// budget; a series that does not fit is left out (warned). Returns the
/// first log generation to replay; 0 when there is no snapshot.
pub(crate) fn load(m: &Metrics, dir: &Path) -> io::Result<u64> {
    let bytes = match std::fs::read(dir.join(FILE)) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "metrics snapshot damaged");
    if bytes.len() < MAGIC.len() + 4 || &bytes[..8] != MAGIC {
        return Err(bad());
    }
    let (body, sum) = bytes.split_at(bytes.len() - 4);
    if fnv(FNV0, body).to_le_bytes() != sum {
        return Err(bad());
    }
    let mut d = Dec { b: &body[8..] };
    decode(m, &mut d).ok_or_else(bad)
}

fn decode(m: &Metrics, d: &mut Dec) -> Option<u64> {
    let inner = &m.inner;
    let next_gen = d.u64()?;
    inner.seq.store(d.u64()?, Relaxed);
    let n = d.u32()?;
    let mut left_out = 0;
    {
        let mut map = inner.series.write();
        for _ in 0..n {
            let (name, mut s) = series_in(d)?;
            s.held = held(&s);
            if inner.budget.try_charge(series_cost(name) + s.held) {
                map.insert(Arc::from(name), Arc::new(Mutex::new(s)));
            } else {
                left_out += 1;
            }
        }
    }
    if left_out > 0 {
        tracing::warn!(
            left_out,
            "metrics snapshot: series left out, over the memory budget"
        );
    }
    for _ in 0..d.u32()? {
        let name = d.str()?;
        let rule = rule_in(d)?;
        let _ = m.put_rule(name, rule);
    }
    let mut log = inner.alerts.lock();
    for _ in 0..d.u32()? {
        if let Ok(a) = serde_json::from_str::<AlertRecord>(d.str()?) {
            log.push(a);
        }
    }
    Some(next_gen)
}
