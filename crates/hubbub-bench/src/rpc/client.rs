//! One calling connection: its handshake, then a loop that sends calls
//! (closed loop, or on a schedule), matches answers to calls by
//! correlation id and records each round trip in the window it ended in.
//!
//! Everything a connection learns stays in its own task ([`ConnStats`])
//! until the run ends, so the hundred callers share no lock and no
//! counter while they run; the run merges them.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use hubbub_ws::{client_frame, Decoder, Message, OpCode};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::connections::worker::{close, open, unix_us, Plan};
use crate::hist::Histogram;
use crate::target::WsTarget;
use crate::workers::default_sources;

/// The phase of the run while the calls go on: 0 is the warm-up, `1..=R`
/// the measured windows, [`STOP`] the drain (no new calls).
pub(super) const STOP: u32 = u32::MAX;

/// A connection ready for calls.
pub(super) struct Conn {
    stream: TcpStream,
    decoder: Decoder,
    /// Bytes read and not yet decoded.
    buf: Vec<u8>,
    mask: [u8; 4],
}

/// Connects connection `index` to `target`: TCP, upgrade, `connected`.
pub(super) async fn connect(
    target: &WsTarget,
    index: usize,
    timeout: Duration,
) -> Result<Conn, String> {
    let source: IpAddr = default_sources(target.addr.ip(), 1)[0];
    let plan = Plan::single(index, target.clone(), source, String::new(), timeout);
    let rnd = (
        unix_us() ^ (index as u64).rotate_left(32),
        (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    let o = open(&plan, rnd, Instant::now()).await?;
    Ok(Conn {
        stream: o.stream,
        decoder: o.decoder,
        buf: o.buf,
        mask: o.mask,
    })
}

/// What every connection shares: the phase, the schedule and the call.
pub(super) struct Ctx {
    /// The current phase (see [`STOP`]).
    pub phase: AtomicU32,
    /// Slots per connection's stats: the warm-up, the windows, the drain.
    pub slots: usize,
    /// When the first calls go out.
    pub start: Instant,
    /// Calls each connection keeps outstanding (closed loop).
    pub in_flight: usize,
    /// Open loop: the time between two calls of one connection, and
    /// between the first calls of connection k and k+1 (`1 / rate`), so
    /// the calls of all connections interleave evenly.
    pub schedule: Option<(Duration, Duration)>,
    /// Everything of a call's JSON after its id: `,"method":..,"data":..}`.
    pub tail: String,
    /// How long a connection waits for its last answers once stopped.
    pub drain: Duration,
}

impl Ctx {
    /// The stats slot of phase `p`: the window's own, the drain's last.
    fn slot(&self, p: u32) -> usize {
        if p == STOP {
            self.slots - 1
        } else {
            (p as usize).min(self.slots - 2)
        }
    }
}

/// What one phase saw on one connection.
#[derive(Debug, Clone, Default)]
pub(super) struct Slot {
    /// Calls sent in this phase.
    pub sent: u64,
    /// `rpc_result`s received in this phase.
    pub answered: u64,
    /// `error`s answering a call, by code.
    pub errors: BTreeMap<String, u64>,
    /// Round trips of the `rpc_result`s, from when each call was written.
    pub latency: Histogram,
    /// Open loop: the same from when each call was due in the schedule.
    pub from_due: Histogram,
    /// Open loop: how late each call sent in this phase was written, after
    /// its place in the schedule.
    pub lag: Histogram,
}

/// What one connection saw over the run.
#[derive(Debug, Clone, Default)]
pub(super) struct ConnStats {
    /// Per phase, indexed like [`Ctx::slot`].
    pub slots: Vec<Slot>,
    /// Calls left unanswered when the connection ended.
    pub unanswered: u64,
    /// Why the connection ended early (the hub or the network closed it).
    pub dropped: Option<String>,
    /// Answers (`rpc_result` or `error`) whose correlation id was no
    /// outstanding call's.
    pub unmatched: u64,
    /// Frames that were not JSON with a `type`.
    pub unparsed: u64,
}

/// The envelope of a message from the hub: enough to match an answer.
/// Borrowed strings: `type` and `code` never hold escapes.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default)]
    correlation_id: Option<u64>,
    #[serde(default, borrow)]
    code: Option<&'a str>,
}

/// A call sent and not answered yet.
struct Pending {
    /// When it was due: its send time (closed loop) or its slot in the
    /// schedule (open loop).
    due: Instant,
    /// When its frame was written.
    sent: Instant,
}

/// One connection's calls, from `ctx.start` until the run stops it (then
/// its last answers, within `ctx.drain`) or the hub closes it.
pub(super) async fn drive(
    mut c: Conn,
    ctx: Arc<Ctx>,
    index: usize,
    mut stop: watch::Receiver<bool>,
) -> ConnStats {
    let mut st = ConnStats {
        slots: vec![Slot::default(); ctx.slots],
        ..ConnStats::default()
    };
    let mut pending: HashMap<u64, Pending> = HashMap::with_capacity(ctx.in_flight * 2);
    let mut next_id = 1u64;
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    let mut next_due = match ctx.schedule {
        Some((_, stagger)) => ctx.start + stagger.mul_f64(index as f64),
        None => ctx.start,
    };
    tokio::time::sleep_until(ctx.start).await;
    let mut drain_until: Option<Instant> = None;
    let mut from = 0usize; // decoded up to here in `c.buf`

    if ctx.schedule.is_none() && ctx.phase.load(Relaxed) != STOP {
        let now = Instant::now();
        for _ in 0..ctx.in_flight {
            call(
                &ctx,
                &mut c,
                &mut out,
                &mut pending,
                &mut next_id,
                now,
                &mut st,
            );
        }
        if let Err(e) = c.stream.write_all(&out).await {
            st.dropped = Some(format!("write: {e}"));
        }
        out.clear();
    }

    while st.dropped.is_none() {
        if drain_until.is_some() && pending.is_empty() {
            break;
        }
        let open_loop = ctx.schedule.is_some() && drain_until.is_none();
        tokio::select! {
            biased;
            r = stop.changed(), if drain_until.is_none() => {
                let _ = r;
                drain_until = Some(Instant::now() + ctx.drain);
            }
            _ = tokio::time::sleep_until(drain_until.unwrap_or(next_due)), if drain_until.is_some() => {
                break;
            }
            r = c.stream.read_buf(&mut c.buf) => {
                match r {
                    Ok(0) => st.dropped = Some("closed by the hub".into()),
                    Err(e) => st.dropped = Some(format!("read: {e}")),
                    Ok(_) => {
                        let answered = match read_frames(&ctx, &mut c, &mut from, &mut pending, &mut out, &mut st) {
                            Ok(n) => n,
                            Err(why) => {
                                st.dropped = Some(why);
                                0
                            }
                        };
                        let more = ctx.schedule.is_none()
                            && drain_until.is_none()
                            && ctx.phase.load(Relaxed) != STOP;
                        if more && answered > 0 {
                            let now = Instant::now();
                            for _ in 0..answered {
                                call(&ctx, &mut c, &mut out, &mut pending, &mut next_id, now, &mut st);
                            }
                        }
                    }
                }
                if !out.is_empty() && st.dropped.is_none() {
                    if let Err(e) = c.stream.write_all(&out).await {
                        st.dropped = Some(format!("write: {e}"));
                    }
                }
                out.clear();
            }
            _ = tokio::time::sleep_until(next_due), if open_loop => {
                if ctx.phase.load(Relaxed) != STOP {
                    let (period, _) = ctx.schedule.expect("open loop");
                    let now = Instant::now();
                    while next_due <= now {
                        call(&ctx, &mut c, &mut out, &mut pending, &mut next_id, next_due, &mut st);
                        next_due += period;
                    }
                    if let Err(e) = c.stream.write_all(&out).await {
                        st.dropped = Some(format!("write: {e}"));
                    }
                    out.clear();
                } else {
                    next_due += Duration::from_secs(3600);
                }
            }
        }
    }
    st.unanswered = pending.len() as u64;
    if st.dropped.is_none() {
        close(&mut c.stream, c.mask).await;
    }
    st
}

/// Queues one call's frame in `out` and remembers it as pending, due at
/// `due` (now, or its place in the schedule).
fn call(
    ctx: &Ctx,
    c: &mut Conn,
    out: &mut Vec<u8>,
    pending: &mut HashMap<u64, Pending>,
    next_id: &mut u64,
    due: Instant,
    st: &mut ConnStats,
) {
    let id = *next_id;
    *next_id += 1;
    let payload = format!("{{\"type\":\"rpc\",\"id\":{id}{}", ctx.tail);
    out.extend_from_slice(&client_frame(OpCode::Text, payload.as_bytes(), c.mask));
    let sent = Instant::now();
    pending.insert(id, Pending { due, sent });
    let slot = &mut st.slots[ctx.slot(ctx.phase.load(Relaxed))];
    slot.sent += 1;
    if ctx.schedule.is_some() {
        slot.lag.record(sent.saturating_duration_since(due));
    }
}

/// Decodes every complete frame in the connection's buffer: answers are
/// matched and recorded, pings answered (into `out`), a close ends the
/// connection (`Err`). Returns how many calls were answered.
fn read_frames(
    ctx: &Ctx,
    c: &mut Conn,
    from: &mut usize,
    pending: &mut HashMap<u64, Pending>,
    out: &mut Vec<u8>,
    st: &mut ConnStats,
) -> Result<usize, String> {
    let mut answered = 0;
    let result = loop {
        let (n, msg) = match c.decoder.decode(&c.buf[*from..]) {
            Ok(x) => x,
            Err(e) => break Err(format!("bad frame: {e}")),
        };
        if n == 0 {
            break Ok(());
        }
        *from += n;
        match msg {
            Some(Message::Text(p)) | Some(Message::Binary(p)) => {
                let now = Instant::now();
                match serde_json::from_slice::<Head>(&p) {
                    Ok(h) => {
                        let error = match h.kind {
                            "rpc_result" => None,
                            "error" => Some(h.code.unwrap_or("(no code)")),
                            "disconnect" => {
                                break Err(format!("disconnect {}", h.code.unwrap_or("(no code)")))
                            }
                            _ => continue, // progress events, anything else
                        };
                        let Some(call) = h.correlation_id.and_then(|id| pending.remove(&id)) else {
                            st.unmatched += 1;
                            continue;
                        };
                        answered += 1;
                        let slot = &mut st.slots[ctx.slot(ctx.phase.load(Relaxed))];
                        match error {
                            None => {
                                slot.answered += 1;
                                slot.latency.record(now - call.sent);
                                if ctx.schedule.is_some() {
                                    slot.from_due.record(now - call.due);
                                }
                            }
                            Some(code) => *slot.errors.entry(code.to_owned()).or_insert(0) += 1,
                        }
                    }
                    Err(_) => st.unparsed += 1,
                }
            }
            Some(Message::Ping(p)) => {
                out.extend_from_slice(&client_frame(OpCode::Pong, &p, c.mask))
            }
            Some(Message::Close(f)) => {
                break Err(match f {
                    Some(f) => format!("closed by the hub ({})", f.code),
                    None => "closed by the hub".into(),
                })
            }
            Some(Message::Pong(_)) | None => {}
        }
    };
    // Keep only the undecoded tail, once per read rather than per frame.
    if *from == c.buf.len() {
        c.buf.clear();
    } else if *from > 0 {
        c.buf.drain(..*from);
    }
    *from = 0;
    result.map(|()| answered)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_from_their_envelope() {
        let h: Head = serde_json::from_str(
            r#"{"type":"rpc_result","data":{"n":[1,2,{"x":"y"}]},"correlation_id":7,"timestamp":1}"#,
        )
        .unwrap();
        assert_eq!(
            (h.kind, h.correlation_id, h.code),
            ("rpc_result", Some(7), None)
        );
        let h: Head = serde_json::from_str(
            r#"{"type":"error","code":"limit_exceeded","message":"at most 32","correlation_id":3}"#,
        )
        .unwrap();
        assert_eq!(
            (h.kind, h.correlation_id, h.code),
            ("error", Some(3), Some("limit_exceeded"))
        );
        let h: Head = serde_json::from_str(
            r#"{"type":"event","channel":"rpc:query.run","event_type":"query_progress","data":{},"correlation_id":3}"#,
        )
        .unwrap();
        assert_eq!(h.kind, "event");
    }

    #[test]
    fn phases_map_to_slots() {
        let ctx = Ctx {
            phase: AtomicU32::new(0),
            slots: 5, // warm-up, 3 windows, drain
            start: Instant::now(),
            in_flight: 1,
            schedule: None,
            tail: String::new(),
            drain: Duration::ZERO,
        };
        assert_eq!(ctx.slot(0), 0);
        assert_eq!(ctx.slot(3), 3);
        assert_eq!(ctx.slot(STOP), 4);
        assert_eq!(ctx.slot(9), 3);
    }
}
