//! Payloads and latency figures: what each publication carries (send time,
//! sequence, window), how a delivery is read back, and the histograms the
//! latencies go into.

use anyhow::anyhow;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use hdrhistogram::Histogram;
use serde::Serialize;

use super::MAX_US;
use crate::target::find;

pub(super) fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

pub(super) fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

pub(super) fn hist_to_b64(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    let _ = V2Serializer::new().serialize(h, &mut buf);
    STANDARD.encode(buf)
}

pub(super) fn hist_from_b64(s: &str) -> anyhow::Result<Histogram<u64>> {
    let bytes = STANDARD.decode(s)?;
    Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| anyhow!("histogram: {e:?}"))
}

/// Latency percentiles in milliseconds, from a histogram in µs.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Values recorded.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// Mean.
    pub mean_ms: f64,
}

impl Latency {
    /// Percentiles of the crate's own log-linear histogram (the rpc
    /// scenario's round trips), in ms to the µs.
    pub(crate) fn of_rounds(h: &crate::hist::Histogram) -> Latency {
        let ms = |us: f64| us.round() / 1000.0;
        if h.count() == 0 {
            return Latency::default();
        }
        Latency {
            count: h.count(),
            p50_ms: ms(h.quantile_us(0.50)),
            p90_ms: ms(h.quantile_us(0.90)),
            p99_ms: ms(h.quantile_us(0.99)),
            p999_ms: ms(h.quantile_us(0.999)),
            max_ms: ms(h.max_us() as f64),
            mean_ms: ms(h.mean_us()),
        }
    }

    pub(super) fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        let ms = |us: u64| (us as f64 / 10.0).round() / 100.0;
        Latency {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p90_ms: ms(h.value_at_quantile(0.9)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
            mean_ms: (h.mean() / 10.0).round() / 100.0,
        }
    }
}

// ---------------------------------------------------------------- payloads

/// The `data` of publication `seq` of window tag `w` (0: warm-up), padded
/// to `size` bytes of JSON.
pub(crate) fn data_json(seq: u64, w: u32, size: usize) -> String {
    let head = format!(
        "{{\"bench_w\":{w},\"bench_s\":{seq},\"bench_t\":{},\"pad\":\"",
        unix_ns()
    );
    let pad = size.saturating_sub(head.len() + 2);
    let mut s = String::with_capacity(head.len() + pad + 2);
    s.push_str(&head);
    s.extend(std::iter::repeat_n('x', pad));
    s.push_str("\"}");
    s
}

/// The number after `key` in `hay` (`"bench_t":123`), also when the JSON
/// sits escaped inside a string (`\"bench_t\":123`, Pusher's `data`).
pub(super) fn number_after(hay: &[u8], key: &[u8]) -> Option<u64> {
    let name = key.strip_prefix(b"\"").unwrap_or(key);
    let name = name.strip_suffix(b":").unwrap_or(name);
    let name = name.strip_suffix(b"\"").unwrap_or(name);
    let mut from = 0;
    while let Some(i) = find(&hay[from..], name) {
        let start = from + i;
        from = start + 1;
        if start == 0 || hay[start - 1] != b'"' {
            continue;
        }
        let mut at = start + name.len();
        if hay.get(at) == Some(&b'\\') {
            at += 1;
        }
        if hay.get(at) != Some(&b'"') {
            continue;
        }
        at += 1;
        while hay.get(at).is_some_and(|b| b.is_ascii_whitespace()) {
            at += 1;
        }
        if hay.get(at) != Some(&b':') {
            continue;
        }
        at += 1;
        while hay.get(at).is_some_and(|b| b.is_ascii_whitespace()) {
            at += 1;
        }
        let digits = hay[at..].iter().take_while(|b| b.is_ascii_digit()).count();
        return std::str::from_utf8(&hay[at..at + digits])
            .ok()?
            .parse()
            .ok();
    }
    None
}
