//! One worker: opens its share of the connections from one source address,
//! holds them idle, and closes them when told.
//!
//! The client is deliberately lean so that one process can hold thousands
//! of connections and the bench measures the hub, not itself: a raw TCP
//! socket, a hand-written upgrade request, [`hubbub_ws::client_frame`] for
//! the one `subscribe` command, and while holding, a parked task that owns
//! only the socket and a decoder with no buffer (a partial frame is the only
//! thing ever kept) and does nothing but answer pings.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hubbub_protocol::codec::encode_command;
use hubbub_protocol::message::{Command, Subscribe};
use hubbub_protocol::{CorrelationId, Encoding};
use hubbub_ws::{client_frame, close_payload, Decoder, DecoderConfig, Message, OpCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::msg::{Counts, WorkerMsg, WorkerSummary};
use crate::hist::Histogram;
use crate::target::{find, WsTarget};

/// Distinct failure reasons kept per worker; the rest are counted as "other".
const MAX_REASONS: usize = 64;
/// How long closing waits for the server's close frame and FIN.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// How long the worker waits for all of its connections to close.
const CLOSE_ALL_WAIT: Duration = Duration::from_secs(30);
/// Largest 101 response head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Where the worker sends its messages (stdout lines, or a channel).
pub(crate) type Emit = Arc<dyn Fn(WorkerMsg) + Send + Sync>;

/// What one worker does.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub index: usize,
    pub target: WsTarget,
    pub source: IpAddr,
    pub connections: u64,
    pub channel: String,
    /// Handshakes per second for this worker; `None`: as fast as allowed.
    pub rate: Option<f64>,
    pub max_in_flight: usize,
    pub handshake_timeout: Duration,
}

impl Plan {
    /// A plan for one connection (a publisher, a churn cycle, a receiver
    /// opened by the load scenarios), which connect one socket at a time.
    pub(crate) fn single(
        index: usize,
        target: WsTarget,
        source: IpAddr,
        channel: String,
        handshake_timeout: Duration,
    ) -> Plan {
        Plan {
            index,
            target,
            source,
            connections: 1,
            channel,
            rate: None,
            max_in_flight: 1,
            handshake_timeout,
        }
    }

    /// Worker `index` of `count` gets `total / count` connections, the first
    /// `total % count` workers one more.
    pub(crate) fn share(total: u64, index: usize, count: usize) -> u64 {
        let count = count.max(1) as u64;
        total / count + u64::from((index as u64) < total % count)
    }
}

#[derive(Default)]
struct Stats {
    handshake: Histogram,
    upgrade: Histogram,
    failures: BTreeMap<String, u64>,
}

struct State {
    opened: AtomicU64,
    failed: AtomicU64,
    open: AtomicU64,
    dropped: AtomicU64,
    closed: AtomicU64,
    rng: AtomicU64,
    stats: Mutex<Stats>,
}

impl State {
    fn counts(&self) -> Counts {
        Counts {
            opened: self.opened.load(Relaxed),
            failed: self.failed.load(Relaxed),
            open: self.open.load(Relaxed),
            dropped: self.dropped.load(Relaxed),
        }
    }

    /// splitmix64: keys and masks only need to differ, not to be secret.
    fn random(&self) -> u64 {
        let mut z = self.rng.fetch_add(0x9E37_79B9_7F4A_7C15, Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn fail(&self, reason: String) {
        self.failed.fetch_add(1, Relaxed);
        let mut s = self.stats();
        let key = if s.failures.len() < MAX_REASONS || s.failures.contains_key(&reason) {
            reason
        } else {
            "other".to_owned()
        };
        *s.failures.entry(key).or_insert(0) += 1;
    }

    fn summary(&self, plan: &Plan, ramp_start_us: u64, ramp_end_us: Option<u64>) -> WorkerSummary {
        let s = self.stats();
        WorkerSummary {
            index: plan.index,
            source: plan.source.to_string(),
            target: plan.connections,
            counts: self.counts(),
            failures: s.failures.clone(),
            handshake: s.handshake.clone(),
            upgrade: s.upgrade.clone(),
            ramp_start_us,
            ramp_end_us,
            closed: self.closed.load(Relaxed),
            is_final: false,
        }
    }
}

pub(crate) fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// Runs the worker: ramp up, report, hold until `stop`, close everything,
/// report again. `stop` completing during the ramp cuts it short.
pub(crate) async fn work(plan: Plan, emit: Emit, stop: impl Future<Output = ()>) {
    let plan = Arc::new(plan);
    let seed = unix_us() ^ (u64::from(std::process::id()) << 32) ^ plan.index as u64;
    let st = Arc::new(State {
        opened: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        open: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
        closed: AtomicU64::new(0),
        rng: AtomicU64::new(seed),
        stats: Mutex::new(Stats::default()),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let ticker = tokio::spawn(report_progress(st.clone(), emit.clone()));
    tokio::pin!(stop);

    let ramp_start_us = unix_us();
    let mut ramp_end_us = None;
    tokio::select! {
        _ = ramp(&plan, &st, &stop_rx, &done_tx) => ramp_end_us = Some(unix_us()),
        _ = &mut stop => {}
    }
    emit(WorkerMsg::Progress(st.counts()));
    if ramp_end_us.is_some() {
        emit(WorkerMsg::Summary(Box::new(st.summary(
            &plan,
            ramp_start_us,
            ramp_end_us,
        ))));
        stop.await;
    }

    // Close: every parked task holds a `done_tx` clone, so the channel
    // reports closed once the last of them has finished.
    let _ = stop_tx.send(true);
    drop(done_tx);
    let _ = tokio::time::timeout(CLOSE_ALL_WAIT, done_rx.recv()).await;
    ticker.abort();
    let mut last = st.summary(&plan, ramp_start_us, ramp_end_us);
    last.is_final = true;
    emit(WorkerMsg::Summary(Box::new(last)));
}

async fn report_progress(st: Arc<State>, emit: Emit) {
    let mut last = Counts::default();
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tick.tick().await;
        let now = st.counts();
        if now != last {
            emit(WorkerMsg::Progress(now));
            last = now;
        }
    }
}

/// Opens the worker's connections, at most `max_in_flight` handshakes at a
/// time and paced to `rate` when given; returns when every handshake has
/// finished. Dropping it aborts the handshakes in flight.
async fn ramp(
    plan: &Arc<Plan>,
    st: &Arc<State>,
    stop_rx: &watch::Receiver<bool>,
    done_tx: &mpsc::Sender<()>,
) {
    let sem = Arc::new(Semaphore::new(plan.max_in_flight.max(1)));
    let mut set = JoinSet::new();
    let start = Instant::now();
    let period = plan
        .rate
        .filter(|r| r.is_finite() && *r > 0.0)
        .map(|r| Duration::from_secs_f64(1.0 / r));
    for k in 0..plan.connections {
        if let Some(p) = period {
            tokio::time::sleep_until(start + p.mul_f64(k as f64)).await;
        }
        let Ok(permit) = sem.clone().acquire_owned().await else {
            break;
        };
        let (plan, st) = (plan.clone(), st.clone());
        let (stop, done) = (stop_rx.clone(), done_tx.clone());
        set.spawn(async move {
            connect_one(plan, st, stop, done).await;
            drop(permit);
        });
        while set.try_join_next().is_some() {}
    }
    while set.join_next().await.is_some() {}
}

/// A connection that finished its handshake.
pub(crate) struct Ready {
    pub stream: TcpStream,
    pub decoder: Decoder,
    /// Bytes read past the `subscribed` reply (usually none).
    pub leftover: Vec<u8>,
    pub mask: [u8; 4],
    pub upgraded: Duration,
}

async fn connect_one(
    plan: Arc<Plan>,
    st: Arc<State>,
    stop: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    let started = Instant::now();
    let rnd = (st.random(), st.random());
    match handshake(&plan, rnd, started).await {
        Ok(ready) => {
            let total = started.elapsed();
            {
                let mut s = st.stats();
                s.handshake.record(total);
                s.upgrade.record(ready.upgraded);
            }
            st.opened.fetch_add(1, Relaxed);
            st.open.fetch_add(1, Relaxed);
            // A task of its own: the parked future holds none of the
            // handshake's state.
            tokio::spawn(park(
                ready.stream,
                ready.decoder,
                ready.leftover,
                ready.mask,
                stop,
                st,
                done,
            ));
        }
        Err(reason) => st.fail(reason),
    }
}

/// Awaits `fut` until `deadline`; the error names the step that timed out.
/// A TCP connection to the hub from `plan.source` (its own ephemeral-port
/// space), within `deadline`, with Nagle off. Shared by both protocols'
/// handshakes.
pub(crate) async fn connect_from(plan: &Plan, deadline: Instant) -> Result<TcpStream, String> {
    let socket = match plan.target.addr {
        SocketAddr::V4(_) => TcpSocket::new_v4(),
        SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| format!("socket: {e}"))?;
    socket
        .bind(SocketAddr::new(plan.source, 0))
        .map_err(|e| format!("bind {}: {e}", plan.source))?;
    let stream = step(deadline, "connect", socket.connect(plan.target.addr))
        .await?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// The WebSocket upgrade request for `plan.target`, its
/// `Sec-WebSocket-Key` (to check the answer with) and the mask of this
/// connection's frames, all derived from `rnd`. Shared by both protocols'
/// handshakes.
pub(crate) fn upgrade_request(plan: &Plan, rnd: (u64, u64)) -> (String, String, [u8; 4]) {
    let mut key_bytes = [0u8; 16];
    key_bytes[..8].copy_from_slice(&rnd.0.to_le_bytes());
    key_bytes[8..].copy_from_slice(&rnd.1.to_le_bytes());
    let key = STANDARD.encode(key_bytes);
    let mask = (rnd.0 as u32 ^ (rnd.1 >> 32) as u32).to_le_bytes();
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        plan.target.request_target, plan.target.host_header
    );
    (request, key, mask)
}

async fn step<T>(deadline: Instant, what: &str, fut: impl Future<Output = T>) -> Result<T, String> {
    tokio::time::timeout_at(deadline, fut)
        .await
        .map_err(|_| format!("timeout waiting for {what}"))
}

/// The decoder for frames from the hub (unmasked, up to 64 MiB).
pub(crate) fn client_decoder() -> Decoder {
    Decoder::new(DecoderConfig {
        max_message_size: 64 << 20,
        require_mask: false,
        allow_rsv1: false,
    })
}

/// A connection past its upgrade and the hub's `connected`, ready for
/// commands: what both the subscribers' handshake and the `rpc` callers
/// start from.
pub(crate) struct Opened {
    pub stream: TcpStream,
    pub decoder: Decoder,
    /// Bytes read past the `connected` message (usually none).
    pub buf: Vec<u8>,
    pub mask: [u8; 4],
    /// From `started` to the 101.
    pub upgraded: Duration,
}

/// TCP connect from the plan's source address, upgrade, `connected`, all
/// within `plan.handshake_timeout` of `started`.
pub(crate) async fn open(plan: &Plan, rnd: (u64, u64), started: Instant) -> Result<Opened, String> {
    let deadline = started + plan.handshake_timeout;
    let mut stream = connect_from(plan, deadline).await?;
    let (request, key, mask) = upgrade_request(plan, rnd);
    step(
        deadline,
        "request write",
        stream.write_all(request.as_bytes()),
    )
    .await?
    .map_err(|e| format!("write: {e}"))?;

    let mut buf = Vec::with_capacity(512);
    let head_len = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEAD {
            return Err("response head too large".into());
        }
        let n = step(deadline, "101", stream.read_buf(&mut buf))
            .await?
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("closed before 101".into());
        }
    };
    check_101(&buf[..head_len], &buf[head_len..], &key)?;
    let upgraded = started.elapsed();
    buf.drain(..head_len);

    let mut decoder = client_decoder();
    let first = next_data(
        &mut stream,
        &mut decoder,
        &mut buf,
        mask,
        deadline,
        "connected",
    )
    .await?;
    let kind = message_type(&first);
    if kind.0 != "connected" {
        return Err(format!("expected connected, got {}", kind.0));
    }
    Ok(Opened {
        stream,
        decoder,
        buf,
        mask,
        upgraded,
    })
}

/// TCP connect from the worker's source address, upgrade, `connected`,
/// `subscribe`, `subscribed`.
pub(crate) async fn handshake(
    plan: &Plan,
    rnd: (u64, u64),
    started: Instant,
) -> Result<Ready, String> {
    let deadline = started + plan.handshake_timeout;
    let Opened {
        mut stream,
        mut decoder,
        mut buf,
        mask,
        upgraded,
    } = open(plan, rnd, started).await?;

    let subscribe = Command::Subscribe(Subscribe {
        channels: vec![plan.channel.clone()],
        since: None,
        event_types: None,
    });
    let payload = encode_command(&subscribe, Some(&CorrelationId::Int(1)), Encoding::Json)
        .map_err(|e| format!("encoding subscribe: {e}"))?;
    step(
        deadline,
        "subscribe write",
        stream.write_all(&client_frame(OpCode::Text, &payload, mask)),
    )
    .await?
    .map_err(|e| format!("write: {e}"))?;
    loop {
        let msg = next_data(
            &mut stream,
            &mut decoder,
            &mut buf,
            mask,
            deadline,
            "subscribed",
        )
        .await?;
        match message_type(&msg) {
            (t, _) if t == "subscribed" => break,
            (t, code) if t == "error" || t == "disconnect" => {
                return Err(format!("{t} {}", code.unwrap_or_default()))
            }
            _ => {} // an event published meanwhile
        }
    }
    let leftover = if buf.is_empty() { Vec::new() } else { buf };
    Ok(Ready {
        stream,
        decoder,
        leftover,
        mask,
        upgraded,
    })
}

/// Checks the status line and `Sec-WebSocket-Accept`; a refusal becomes
/// `http STATUS CODE` with the hub's error code when the body has one.
fn check_101(head: &[u8], body: &[u8], key: &str) -> Result<(), String> {
    let head = String::from_utf8_lossy(head);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?")
        .to_owned();
    if status != "101" {
        let code = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
        return Err(match code {
            Some(c) => format!("http {status} {c}"),
            None => format!("http {status}"),
        });
    }
    let expected = hubbub_ws::handshake::accept_key(key.as_bytes());
    let accept = lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("sec-websocket-accept")
            .then(|| v.trim().to_owned())
    });
    match accept {
        Some(a) if a == expected => Ok(()),
        Some(_) => Err("wrong Sec-WebSocket-Accept".into()),
        None => Err("101 without Sec-WebSocket-Accept".into()),
    }
}

/// The `type` of a server message, and its `code` if any (error, disconnect).
fn message_type(payload: &[u8]) -> (String, Option<String>) {
    match serde_json::from_slice::<serde_json::Value>(payload) {
        Ok(v) => (
            v["type"].as_str().unwrap_or("(no type)").to_owned(),
            match &v["code"] {
                serde_json::Value::Null => None,
                serde_json::Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            },
        ),
        Err(_) => ("(not JSON)".to_owned(), None),
    }
}

/// The next data message during the handshake, answering pings and failing
/// on a close.
async fn next_data(
    stream: &mut TcpStream,
    decoder: &mut Decoder,
    buf: &mut Vec<u8>,
    mask: [u8; 4],
    deadline: Instant,
    what: &str,
) -> Result<Vec<u8>, String> {
    loop {
        match decoder.decode(buf) {
            Ok((0, _)) => {}
            Ok((n, msg)) => {
                buf.drain(..n);
                match msg {
                    Some(Message::Text(p)) | Some(Message::Binary(p)) => return Ok(p.to_vec()),
                    Some(Message::Ping(p)) => {
                        step(
                            deadline,
                            what,
                            stream.write_all(&client_frame(OpCode::Pong, &p, mask)),
                        )
                        .await?
                        .map_err(|e| format!("write: {e}"))?;
                    }
                    Some(Message::Close(f)) => {
                        return Err(match f {
                            Some(f) => format!("closed by server ({}) before {what}", f.code),
                            None => format!("closed by server before {what}"),
                        })
                    }
                    Some(Message::Pong(_)) | None => {}
                }
                continue;
            }
            Err(e) => return Err(format!("bad frame: {e}")),
        }
        let n = step(deadline, what, stream.read_buf(buf))
            .await?
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err(format!("closed before {what}"));
        }
    }
}

/// Why a parked connection stopped.
enum End {
    /// The worker is closing everything.
    Stop,
    /// The server or the network ended it.
    Dropped,
}

/// Holds one idle connection: waits for readability, answers pings, and on
/// `stop` runs the closing handshake. Owns no buffer while idle.
async fn park(
    mut stream: TcpStream,
    mut decoder: Decoder,
    mut carry: Vec<u8>,
    mask: [u8; 4],
    mut stop: watch::Receiver<bool>,
    st: Arc<State>,
    _done: mpsc::Sender<()>,
) {
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut result = if carry.is_empty() {
        Ok(())
    } else {
        feed(&mut decoder, &mut carry, &[], mask, &mut out)
    };
    let end = loop {
        for frame in out.drain(..) {
            if stream.write_all(&frame).await.is_err() {
                result = Err(());
            }
        }
        out = Vec::new();
        if result.is_err() {
            break End::Dropped;
        }
        tokio::select! {
            biased;
            _ = stop.changed() => break End::Stop,
            r = stream.readable() => {
                result = match r {
                    Ok(()) => read_available(&stream, |bytes| {
                        feed(&mut decoder, &mut carry, bytes, mask, &mut out)
                    }),
                    Err(_) => Err(()),
                };
            }
        }
    };
    st.open.fetch_sub(1, Relaxed);
    match end {
        End::Dropped => {
            st.dropped.fetch_add(1, Relaxed);
        }
        End::Stop => {
            if close(&mut stream, mask).await {
                st.closed.fetch_add(1, Relaxed);
            }
        }
    }
}

/// Sends a 1000 close and waits for the server's close and FIN.
pub(crate) async fn close(stream: &mut TcpStream, mask: [u8; 4]) -> bool {
    let frame = client_frame(OpCode::Close, &close_payload(1000, ""), mask);
    if stream.write_all(&frame).await.is_err() {
        return false;
    }
    let wait = async {
        loop {
            if stream.readable().await.is_err() {
                return;
            }
            if read_available(stream, |_| Ok(())).is_err() {
                return; // EOF (or reset): the server is done
            }
        }
    };
    tokio::time::timeout(CLOSE_WAIT, wait).await.is_ok()
}

/// Reads whatever the socket has, without waiting, into a stack buffer and
/// hands it to `f`. `Err` at end of stream or on an error. Synchronous so
/// the buffer never lives in a parked future.
fn read_available(
    stream: &TcpStream,
    mut f: impl FnMut(&[u8]) -> Result<(), ()>,
) -> Result<(), ()> {
    let mut buf = [0u8; 2048];
    loop {
        match stream.try_read(&mut buf) {
            Ok(0) => return Err(()),
            Ok(n) => f(&buf[..n])?,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
}

/// Parses `input` (after any kept partial frame), queueing pongs and the
/// answer to a close into `out`. Keeps only the bytes of an incomplete
/// frame. `Err` when the connection is over (server close, bad frame).
fn feed(
    decoder: &mut Decoder,
    carry: &mut Vec<u8>,
    input: &[u8],
    mask: [u8; 4],
    out: &mut Vec<Vec<u8>>,
) -> Result<(), ()> {
    let joined;
    let data: &[u8] = if carry.is_empty() {
        input
    } else {
        carry.extend_from_slice(input);
        joined = std::mem::take(carry);
        &joined
    };
    let mut used = 0;
    let mut result = Ok(());
    while used < data.len() {
        match decoder.decode(&data[used..]) {
            Ok((0, _)) => break,
            Ok((n, msg)) => {
                used += n;
                match msg {
                    Some(Message::Ping(p)) => out.push(client_frame(OpCode::Pong, &p, mask)),
                    Some(Message::Close(f)) => {
                        let code = f.map(|f| f.code).unwrap_or(1000);
                        out.push(client_frame(OpCode::Close, &close_payload(code, ""), mask));
                        result = Err(());
                        break;
                    }
                    _ => {}
                }
            }
            Err(_) => {
                result = Err(());
                break;
            }
        }
    }
    if result.is_ok() && used < data.len() {
        *carry = data[used..].to_vec();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for (total, count) in [(19_500u64, 3usize), (10, 3), (1, 4), (50, 1)] {
            let sum: u64 = (0..count).map(|i| Plan::share(total, i, count)).sum();
            assert_eq!(sum, total);
        }
        assert_eq!(Plan::share(10, 0, 3), 4);
        assert_eq!(Plan::share(10, 2, 3), 3);
    }

    #[test]
    fn feed_answers_pings_and_keeps_partial_frames() {
        let mut dec = client_decoder();
        let mut carry = Vec::new();
        let mut out = Vec::new();
        let ping = hubbub_ws::server_frame(OpCode::Ping, b"hi");
        let event = hubbub_ws::server_frame(OpCode::Text, b"{\"type\":\"event\"}");
        let mut stream: Vec<u8> = event.to_vec();
        stream.extend_from_slice(&ping);
        let (a, b) = stream.split_at(event.len() + 1);
        assert!(feed(&mut dec, &mut carry, a, [1, 2, 3, 4], &mut out).is_ok());
        assert_eq!(carry.len(), 1);
        assert!(out.is_empty());
        assert!(feed(&mut dec, &mut carry, b, [1, 2, 3, 4], &mut out).is_ok());
        assert!(carry.is_empty() && carry.capacity() == 0);
        assert_eq!(out, vec![client_frame(OpCode::Pong, b"hi", [1, 2, 3, 4])]);
        out.clear();
        let close = hubbub_ws::close_frame(1001, "bye");
        assert!(feed(&mut dec, &mut carry, &close, [0; 4], &mut out).is_err());
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn refusals_name_the_status_and_code() {
        let err = check_101(
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 10\r\n\r\n",
            br#"{"error":{"code":"server_full","message":"x"}}"#,
            "k",
        )
        .unwrap_err();
        assert_eq!(err, "http 503 server_full");
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let ok = format!(
            "HTTP/1.1 101 Switching Protocols\r\nsec-websocket-accept: {}\r\n\r\n",
            hubbub_ws::handshake::accept_key(key.as_bytes())
        );
        assert!(check_101(ok.as_bytes(), b"", key).is_ok());
        assert!(check_101(ok.as_bytes(), b"", "other").is_err());
    }
}
