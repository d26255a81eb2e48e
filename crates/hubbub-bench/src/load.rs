//! Publish-and-receive scenarios: `fanout`, `channels`, `churn` and
//! `http-publish`, one engine with scenario defaults.
//!
//! Subscribers live in worker processes (re-executed like `connections`,
//! each from its own source address 127.0.0.x); the parent publishes,
//! through the HTTP API (keep-alive connections, a few concurrent
//! publishers) or a WebSocket publisher connection. Every payload carries
//! its send time (ns since the Unix epoch: parent and workers share the
//! machine's clock), a sequence number and the window it belongs to, so
//! workers turn each delivery into a publish-to-receive latency in an HDR
//! histogram per window, and the parent merges them.
//!
//! A run is a warm-up window (not counted), then `--repetitions` measured
//! windows of `--duration` seconds (for `churn`, each repetition is a
//! baseline window and a window with churn), then a drain until every
//! expected delivery arrived or `--drain` seconds passed.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{IsTerminal as _, Write as _};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use hdrhistogram::Histogram;
use hubbub_ws::{client_frame, Message, OpCode};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::connections::worker::{close, handshake, Plan, Ready};
use crate::connections::{default_sources, HostInfo};
use crate::procfs;
use crate::target::{find, WsTarget};

/// Subscribers one worker holds by default.
const PER_WORKER: u64 = 5_000;
/// Highest latency the histograms hold: one hour, in µs.
const MAX_US: u64 = 3_600_000_000;

/// Which scenario: decides the defaults and whether churn windows run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// S subscribers on one channel.
    Fanout,
    /// Many channels, few subscribers each.
    Channels,
    /// Fan-out while connections come and go.
    Churn,
    /// Publish requests as fast as the API answers.
    HttpPublish,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Fanout => "fanout",
            Kind::Channels => "channels",
            Kind::Churn => "churn",
            Kind::HttpPublish => "http-publish",
        }
    }
}

/// How publications reach the hub.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// `POST /api/publish` on keep-alive connections.
    Http,
    /// `publish` commands on WebSocket connections (the channel's namespace
    /// must allow it: `--set namespaces.bench.publish=true` and a channel
    /// such as `bench:fanout`).
    Ws,
}

/// What the subscribers speak after the WebSocket upgrade.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// hubbub's protocol: `connected`, `subscribe`, `subscribed`, `event`.
    Hubbub,
    /// Socket.IO 4 over its WebSocket transport (Engine.IO 4 packets):
    /// `40` to connect, `42["subscribe",channel]`, events as
    /// `42["event",{...}]`; for the Socket.IO peer in `bench/peers/`. Use a
    /// URL such as `ws://127.0.0.1:9104/socket.io/?EIO=4&transport=websocket`.
    Socketio,
}

/// Options of the publish scenarios. Exists as one clap struct so every
/// scenario takes the same flags; unset ones get the scenario's default.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// WebSocket URL of the hub (or peer).
    #[arg(long, default_value = "ws://127.0.0.1:8000/ws")]
    pub url: String,
    /// Base URL of the HTTP API [default: http://host:port of --url].
    #[arg(long)]
    pub api_url: Option<String>,
    /// Subscribers in total [fanout, churn, channels: 1000; http-publish: 0].
    #[arg(short = 's', long)]
    pub subscribers: Option<u64>,
    /// Channels; subscriber k subscribes to channel k mod C [channels: 100, else 1].
    #[arg(short = 'c', long)]
    pub channels: Option<u64>,
    /// Channel name, or prefix (`NAME-i`) when there are several.
    #[arg(long, default_value = "bench")]
    pub channel: String,
    /// Publishes per second in total, 0 for as fast as possible
    /// [fanout, churn: 50; channels: 1000; http-publish: 0].
    #[arg(short = 'r', long)]
    pub rate: Option<f64>,
    /// Size of the `data` JSON of each publication, in bytes (at least ~80).
    #[arg(short = 'p', long, default_value_t = 100)]
    pub payload: usize,
    /// Publish through the HTTP API or a WebSocket connection.
    #[arg(long, value_enum, default_value_t = Via::Http)]
    pub via: Via,
    /// What the subscribers speak (the publishers always use `--via`).
    #[arg(long, value_enum, default_value_t = Protocol::Hubbub)]
    pub protocol: Protocol,
    /// Concurrent publishers (connections) [http-publish: 32, else 4].
    #[arg(long)]
    pub publishers: Option<usize>,
    /// Seconds of warm-up (published, not counted).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Seconds of each measured window.
    #[arg(short = 'd', long, default_value_t = 10.0)]
    pub duration: f64,
    /// Measured windows (the table shows each and their median).
    #[arg(long, default_value_t = 1)]
    pub repetitions: u32,
    /// Seconds to wait after the last publish for missing deliveries.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
    /// Connect-subscribe-disconnect cycles per second during churn windows
    /// [churn: 100, else 0].
    #[arg(long)]
    pub churn_rate: Option<f64>,
    /// Worker processes for the subscribers [default: ceil(S / 5000)].
    #[arg(long)]
    pub workers: Option<u64>,
    /// Source addresses, one per worker in turn (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub source_addrs: Vec<IpAddr>,
    /// Pid of the hub, for its CPU time [default: found by the URL's port].
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Handshakes in flight at once, per worker.
    #[arg(long, default_value_t = 256)]
    pub max_in_flight: usize,
    /// Seconds one handshake may take.
    #[arg(long, default_value_t = 30.0)]
    pub handshake_timeout: f64,
    /// API key for the HTTP API, when it has one.
    #[arg(long)]
    pub api_key: Option<String>,
    /// Write the full report as JSON to this file.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Internal: run as worker INDEX.
    #[arg(long, hide = true, requires = "worker_count")]
    pub worker_index: Option<usize>,
    /// Internal: how many workers the parent started.
    #[arg(long, hide = true)]
    pub worker_count: Option<usize>,
}

impl LoadArgs {
    /// Every default, as if given no flags. Exists for tests.
    pub fn new(url: impl Into<String>) -> Self {
        LoadArgs {
            url: url.into(),
            api_url: None,
            subscribers: None,
            channels: None,
            channel: "bench".into(),
            rate: None,
            payload: 100,
            via: Via::Http,
            protocol: Protocol::Hubbub,
            publishers: None,
            warmup: 2.0,
            duration: 10.0,
            repetitions: 1,
            drain: 5.0,
            churn_rate: None,
            workers: None,
            source_addrs: Vec::new(),
            server_pid: None,
            max_in_flight: 256,
            handshake_timeout: 30.0,
            api_key: None,
            out: None,
            worker_index: None,
            worker_count: None,
        }
    }
}

/// Resolved settings.
#[derive(Debug, Clone)]
struct Setup {
    kind: Kind,
    target: WsTarget,
    api: WsTarget,
    subscribers: u64,
    channels: u64,
    rate: f64,
    publishers: usize,
    churn_rate: f64,
    workers: usize,
    sources: Vec<IpAddr>,
}

impl Setup {
    fn new(kind: Kind, a: &LoadArgs) -> anyhow::Result<Setup> {
        let target = WsTarget::parse(&a.url)?;
        let api = match &a.api_url {
            Some(u) => {
                let rest = u
                    .strip_prefix("http://")
                    .ok_or_else(|| anyhow!("--api-url: only http:// is supported"))?;
                WsTarget::parse(&format!("ws://{rest}"))?
            }
            None => target.clone(),
        };
        let subscribers = a.subscribers.unwrap_or(match kind {
            Kind::HttpPublish => 0,
            _ => 1000,
        });
        let channels = a
            .channels
            .unwrap_or(if kind == Kind::Channels { 100 } else { 1 })
            .max(1);
        let rate = a.rate.unwrap_or(match kind {
            Kind::Fanout | Kind::Churn => 50.0,
            Kind::Channels => 1000.0,
            Kind::HttpPublish => 0.0,
        });
        if !(rate.is_finite() && rate >= 0.0) {
            bail!("--rate must be a number >= 0");
        }
        let churn_rate = a
            .churn_rate
            .unwrap_or(if kind == Kind::Churn { 100.0 } else { 0.0 });
        for (v, what) in [
            (a.warmup, "--warmup"),
            (a.duration, "--duration"),
            (a.drain, "--drain"),
            (churn_rate, "--churn-rate"),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                bail!("{what} must be a number >= 0");
            }
        }
        if a.protocol == Protocol::Socketio && a.via == Via::Ws {
            bail!("--protocol socketio publishes through the HTTP API only");
        }
        if a.duration <= 0.0 || a.repetitions == 0 {
            bail!("--duration and --repetitions must be positive");
        }
        let workers = a
            .worker_count
            .or(a.workers.map(|w| w as usize))
            .unwrap_or_else(|| subscribers.div_ceil(PER_WORKER) as usize)
            .max(1);
        let sources = if a.source_addrs.is_empty() {
            default_sources(target.addr.ip(), workers)
        } else {
            a.source_addrs.clone()
        };
        for c in 0..channels {
            let name = channel_name(&a.channel, channels, c);
            hubbub_protocol::validate_channel(&name).map_err(|e| anyhow!("channel {name}: {e}"))?;
        }
        Ok(Setup {
            kind,
            target,
            api,
            subscribers,
            channels,
            rate,
            publishers: a
                .publishers
                .unwrap_or(if kind == Kind::HttpPublish { 32 } else { 4 })
                .max(1),
            churn_rate,
            workers,
            sources,
        })
    }

    /// Subscribers of channel `c`: subscriber k is on channel k mod C.
    fn subscribers_on(&self, c: u64) -> u64 {
        self.subscribers / self.channels + u64::from(c < self.subscribers % self.channels)
    }

    /// First global subscriber index of worker `i`, and how many it holds.
    fn share(&self, i: usize) -> (u64, u64) {
        let w = self.workers as u64;
        let (base, extra) = (self.subscribers / w, self.subscribers % w);
        let i = i as u64;
        (i * base + i.min(extra), base + u64::from(i < extra))
    }

    /// Windows in a run, after the warm-up: per repetition one, or for
    /// churn a baseline and a churn window.
    fn windows(&self, reps: u32) -> Vec<Window> {
        (0..reps)
            .flat_map(|r| {
                if self.kind == Kind::Churn {
                    vec![
                        Window {
                            rep: r,
                            churn: false,
                        },
                        Window {
                            rep: r,
                            churn: true,
                        },
                    ]
                } else {
                    vec![Window {
                        rep: r,
                        churn: self.churn_rate > 0.0,
                    }]
                }
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    rep: u32,
    churn: bool,
}

fn channel_name(prefix: &str, channels: u64, c: u64) -> String {
    if channels == 1 {
        prefix.to_owned()
    } else {
        format!("{prefix}-{c}")
    }
}

fn unix_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds")
}

fn hist_to_b64(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    let _ = V2Serializer::new().serialize(h, &mut buf);
    STANDARD.encode(buf)
}

fn hist_from_b64(s: &str) -> anyhow::Result<Histogram<u64>> {
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
    fn of(h: &Histogram<u64>) -> Latency {
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

/// The number after `key` in `hay` (`"bench_t":123`).
fn number_after(hay: &[u8], key: &[u8]) -> Option<u64> {
    let mut at = find(hay, key)? + key.len();
    while hay.get(at).is_some_and(|b| b.is_ascii_whitespace()) {
        at += 1;
    }
    let digits = hay[at..].iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&hay[at..at + digits])
        .ok()?
        .parse()
        .ok()
}

// ------------------------------------------------------------ worker side

/// What a worker tells the parent, one JSON line each.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WMsg {
    Progress {
        opened: u64,
        failed: u64,
        received: u64,
    },
    Ready {
        opened: u64,
        failed: u64,
    },
    Final(Box<WFinal>),
    Fatal {
        message: String,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct WFinal {
    opened: u64,
    failed: u64,
    dropped: u64,
    failures: BTreeMap<String, u64>,
    /// (window tag, received, histogram in base64); a list because integer
    /// map keys do not survive an internally tagged enum.
    windows: Vec<(u32, u64, String)>,
    unparsed: u64,
}

type Emit = Arc<dyn Fn(WMsg) + Send + Sync>;

#[derive(Default)]
struct WState {
    opened: u64,
    failed: u64,
    dropped: u64,
    received: u64,
    unparsed: u64,
    failures: BTreeMap<String, u64>,
    windows: BTreeMap<u32, (u64, Histogram<u64>)>,
}

impl WState {
    fn on_text(&mut self, p: &[u8]) {
        let (Some(t), Some(w)) = (
            number_after(p, b"\"bench_t\":"),
            number_after(p, b"\"bench_w\":"),
        ) else {
            if find(p, b"\"event\"").is_some() {
                self.unparsed += 1;
            }
            return;
        };
        let us = unix_ns().saturating_sub(t) / 1000;
        let w = w as u32;
        if w > 0 {
            self.received += 1;
        }
        let e = self.windows.entry(w).or_insert_with(|| (0, new_hist()));
        e.0 += 1;
        e.1.saturating_record(us.clamp(1, MAX_US));
    }
}

/// A worker: opens its subscribers, reports ready, records deliveries until
/// `stop`, then closes and sends its final report. Runs on the calling
/// thread (a current-thread runtime with a local set).
fn run_worker(setup: Setup, args: LoadArgs, index: usize, emit: Emit, stop: oneshot::Receiver<()>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            emit(WMsg::Fatal {
                message: format!("runtime: {e}"),
            });
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, worker_main(setup, args, index, emit, stop));
}

async fn worker_main(
    setup: Setup,
    args: LoadArgs,
    index: usize,
    emit: Emit,
    mut stop: oneshot::Receiver<()>,
) {
    let st = Rc::new(RefCell::new(WState::default()));
    let (first, count) = setup.share(index);
    let source = setup.sources[index % setup.sources.len()];
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let sem = Arc::new(tokio::sync::Semaphore::new(args.max_in_flight.max(1)));
    let mut ramp = tokio::task::JoinSet::new();
    let timeout = Duration::from_secs_f64(args.handshake_timeout);
    let ticker = {
        let (st, emit) = (st.clone(), emit.clone());
        tokio::task::spawn_local(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tick.tick().await;
                let s = st.borrow();
                emit(WMsg::Progress {
                    opened: s.opened,
                    failed: s.failed,
                    received: s.received,
                });
            }
        })
    };
    let mut stopped = false;
    let protocol = args.protocol;
    for k in first..first + count {
        let permit = tokio::select! {
            p = sem.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = &mut stop => { stopped = true; break; }
        };
        let plan = Plan {
            index,
            target: setup.target.clone(),
            source,
            connections: 1,
            channel: channel_name(&args.channel, setup.channels, k % setup.channels),
            rate: None,
            max_in_flight: 1,
            handshake_timeout: timeout,
        };
        let (st, stop_rx, done) = (st.clone(), stop_rx.clone(), done_tx.clone());
        ramp.spawn_local(async move {
            let rnd = (
                unix_ns() ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                k ^ 0xA5A5_5A5A,
            );
            let r = subscribe(protocol, &plan, rnd).await;
            drop(permit);
            match r {
                Ok(ready) => {
                    st.borrow_mut().opened += 1;
                    tokio::task::spawn_local(receive(ready, st, stop_rx, done));
                }
                Err(reason) => {
                    let mut s = st.borrow_mut();
                    s.failed += 1;
                    *s.failures.entry(reason).or_insert(0) += 1;
                }
            }
        });
    }
    if !stopped {
        loop {
            tokio::select! {
                r = ramp.join_next() => if r.is_none() { break },
                _ = &mut stop => { stopped = true; break; }
            }
        }
    }
    ramp.abort_all();
    if !stopped {
        let (opened, failed) = {
            let s = st.borrow();
            (s.opened, s.failed)
        };
        emit(WMsg::Ready { opened, failed });
        let _ = (&mut stop).await;
    }
    let _ = stop_tx.send(true);
    drop(done_tx);
    let _ = tokio::time::timeout(Duration::from_secs(20), done_rx.recv()).await;
    ticker.abort();
    let s = st.borrow();
    emit(WMsg::Final(Box::new(WFinal {
        opened: s.opened,
        failed: s.failed,
        dropped: s.dropped,
        failures: s.failures.clone(),
        windows: s
            .windows
            .iter()
            .map(|(w, (n, h))| (*w, *n, hist_to_b64(h)))
            .collect(),
        unparsed: s.unparsed,
    })));
}

/// Reads one subscriber's deliveries until `stop`, then closes.
async fn receive(
    ready: Ready,
    st: Rc<RefCell<WState>>,
    mut stop: watch::Receiver<bool>,
    _done: mpsc::Sender<()>,
) {
    let Ready {
        mut stream,
        mut decoder,
        leftover,
        mask,
        ..
    } = ready;
    let mut buf = leftover;
    buf.reserve(8192);
    let mut dropped = false;
    'outer: loop {
        let mut used = 0;
        while used < buf.len() {
            match decoder.decode(&buf[used..]) {
                Ok((0, _)) => break,
                Ok((n, msg)) => {
                    used += n;
                    match msg {
                        // An Engine.IO ping: answer, or the server drops us.
                        Some(Message::Text(p))
                            if &p[..] == b"2"
                                && stream
                                    .write_all(&client_frame(OpCode::Text, b"3", mask))
                                    .await
                                    .is_err() =>
                        {
                            dropped = true;
                            break 'outer;
                        }
                        Some(Message::Text(p)) | Some(Message::Binary(p)) => {
                            st.borrow_mut().on_text(&p)
                        }
                        Some(Message::Ping(p))
                            if stream
                                .write_all(&client_frame(OpCode::Pong, &p, mask))
                                .await
                                .is_err() =>
                        {
                            dropped = true;
                            break 'outer;
                        }
                        Some(Message::Close(_)) => {
                            dropped = true;
                            break 'outer;
                        }
                        _ => {}
                    }
                }
                Err(_) => {
                    dropped = true;
                    break 'outer;
                }
            }
        }
        buf.drain(..used);
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            r = stream.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => { dropped = true; break; }
                Ok(_) => {}
            }
        }
    }
    if dropped {
        st.borrow_mut().dropped += 1;
    } else {
        let _ = close(&mut stream, mask).await;
    }
}

/// Connects and subscribes `plan.channel` in `protocol`.
async fn subscribe(protocol: Protocol, plan: &Plan, rnd: (u64, u64)) -> Result<Ready, String> {
    match protocol {
        Protocol::Hubbub => handshake(plan, rnd, Instant::now()).await,
        Protocol::Socketio => sio_handshake(plan, rnd).await,
    }
}

/// The Socket.IO 4 handshake over a raw WebSocket: upgrade, Engine.IO
/// `open` (`0{...}`), `40` -> `40{...}`, `42["subscribe",channel]` ->
/// `42["subscribed",...]`, answering pings (`2`) meanwhile.
async fn sio_handshake(plan: &Plan, rnd: (u64, u64)) -> Result<Ready, String> {
    let started = Instant::now();
    let deadline = started + plan.handshake_timeout;
    let within = |what: &'static str| move |_| format!("timeout waiting for {what}");
    let socket = match plan.target.addr {
        std::net::SocketAddr::V4(_) => TcpSocket::new_v4(),
        std::net::SocketAddr::V6(_) => TcpSocket::new_v6(),
    }
    .map_err(|e| format!("socket: {e}"))?;
    socket
        .bind(std::net::SocketAddr::new(plan.source, 0))
        .map_err(|e| format!("bind {}: {e}", plan.source))?;
    let mut stream = tokio::time::timeout_at(deadline, socket.connect(plan.target.addr))
        .await
        .map_err(within("connect"))?
        .map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_nodelay(true);
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&rnd.0.to_le_bytes());
    key[8..].copy_from_slice(&rnd.1.to_le_bytes());
    let key = STANDARD.encode(key);
    let mask = (rnd.0 as u32 ^ (rnd.1 >> 32) as u32).to_le_bytes();
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        plan.target.request_target, plan.target.host_header
    );
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        let n = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf))
            .await
            .map_err(within("101"))?
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("closed before 101".into());
        }
    };
    let status = String::from_utf8_lossy(&buf[..head_end])
        .split_whitespace()
        .nth(1)
        .unwrap_or("?")
        .to_owned();
    if status != "101" {
        return Err(format!("http {status}"));
    }
    let upgraded = started.elapsed();
    buf.drain(..head_end);
    let mut decoder = hubbub_ws::Decoder::new(hubbub_ws::DecoderConfig {
        max_message_size: 64 << 20,
        require_mask: false,
        allow_rsv1: false,
    });
    let sub = format!("42[\"subscribe\",\"{}\"]", plan.channel);
    loop {
        let (n, msg) = decoder
            .decode(&buf)
            .map_err(|e| format!("bad frame: {e}"))?;
        if n == 0 {
            let r = tokio::time::timeout_at(deadline, stream.read_buf(&mut buf))
                .await
                .map_err(within("subscribed"))?
                .map_err(|e| format!("read: {e}"))?;
            if r == 0 {
                return Err("closed before subscribed".into());
            }
            continue;
        }
        buf.drain(..n);
        let reply: Option<&[u8]> = match &msg {
            Some(Message::Text(p)) if p.starts_with(b"0") => Some(b"40"),
            Some(Message::Text(p)) if p.starts_with(b"40") => Some(sub.as_bytes()),
            Some(Message::Text(p)) if p.starts_with(b"42[\"subscribed\"") => break,
            Some(Message::Text(p)) if &p[..] == b"2" => Some(b"3"),
            Some(Message::Text(p)) if p.starts_with(b"44") => {
                return Err(format!("connect_error {}", String::from_utf8_lossy(p)))
            }
            Some(Message::Close(_)) => return Err("closed by server".into()),
            _ => None,
        };
        if let Some(r) = reply {
            stream
                .write_all(&client_frame(OpCode::Text, r, mask))
                .await
                .map_err(|e| format!("write: {e}"))?;
        }
    }
    Ok(Ready {
        stream,
        decoder,
        leftover: buf,
        mask,
        upgraded,
    })
}

// ------------------------------------------------------------ publishers

/// One publisher's connection: HTTP keep-alive, or a WebSocket.
enum PubConn {
    Http { stream: TcpStream, buf: Vec<u8> },
    Ws { ready: Box<Ready>, buf: Vec<u8> },
}

async fn open_pub(setup: &Setup, args: &LoadArgs, j: usize) -> Result<PubConn, String> {
    match args.via {
        Via::Http => {
            let stream = TcpStream::connect(setup.api.addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let _ = stream.set_nodelay(true);
            Ok(PubConn::Http {
                stream,
                buf: Vec::with_capacity(1024),
            })
        }
        Via::Ws => {
            let plan = Plan {
                index: j,
                target: setup.target.clone(),
                source: setup.target.addr.ip(),
                connections: 1,
                channel: format!("{}-publisher", channel_name(&args.channel, 1, 0)),
                rate: None,
                max_in_flight: 1,
                handshake_timeout: Duration::from_secs(10),
            };
            let ready = handshake(&plan, (unix_ns(), j as u64 + 7), Instant::now()).await?;
            let buf = ready.leftover.clone();
            Ok(PubConn::Ws {
                ready: Box::new(ready),
                buf,
            })
        }
    }
}

impl PubConn {
    /// Publishes one event and waits for the answer. `Ok` when accepted.
    async fn publish(
        &mut self,
        api: &WsTarget,
        api_key: Option<&str>,
        channel: &str,
        data: &str,
        id: u64,
    ) -> Result<(), String> {
        match self {
            PubConn::Http { stream, buf } => {
                let body = format!(
                    "{{\"channel\":\"{channel}\",\"event_type\":\"bench\",\"data\":{data}}}"
                );
                let auth = api_key
                    .map(|k| format!("Authorization: Bearer {k}\r\n"))
                    .unwrap_or_default();
                let req = format!(
                    "POST /api/publish HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
                     {auth}Content-Length: {}\r\n\r\n{body}",
                    api.host_header,
                    body.len()
                );
                stream
                    .write_all(req.as_bytes())
                    .await
                    .map_err(|e| format!("write: {e}"))?;
                let status = read_response(stream, buf).await?;
                if (200..300).contains(&status) {
                    Ok(())
                } else {
                    Err(format!("http {status}"))
                }
            }
            PubConn::Ws { ready, buf } => {
                let cmd = format!(
                    "{{\"type\":\"publish\",\"id\":{id},\"channel\":\"{channel}\",\"event_type\":\"bench\",\"data\":{data}}}"
                );
                ready
                    .stream
                    .write_all(&client_frame(OpCode::Text, cmd.as_bytes(), ready.mask))
                    .await
                    .map_err(|e| format!("write: {e}"))?;
                loop {
                    let (n, msg) = ready
                        .decoder
                        .decode(buf)
                        .map_err(|e| format!("bad frame: {e}"))?;
                    if n == 0 {
                        let r = ready
                            .stream
                            .read_buf(buf)
                            .await
                            .map_err(|e| format!("read: {e}"))?;
                        if r == 0 {
                            return Err("closed".into());
                        }
                        continue;
                    }
                    buf.drain(..n);
                    match msg {
                        Some(Message::Text(p)) => {
                            if find(&p, b"\"published\"").is_some() {
                                return Ok(());
                            }
                            if find(&p, b"\"error\"").is_some() {
                                let v: serde_json::Value =
                                    serde_json::from_slice(&p).unwrap_or_default();
                                return Err(format!("error {}", v["code"].as_str().unwrap_or("?")));
                            }
                        }
                        Some(Message::Ping(p)) => {
                            let _ = ready
                                .stream
                                .write_all(&client_frame(OpCode::Pong, &p, ready.mask))
                                .await;
                        }
                        Some(Message::Close(_)) => return Err("closed".into()),
                        _ => {}
                    }
                }
            }
        }
    }
}

/// Reads one HTTP response (Content-Length or chunked) from a keep-alive
/// connection, keeping any bytes past it in `buf`; returns the status.
async fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<u16, String> {
    loop {
        if let Some(end) = find(buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or("bad status line")?;
            let body_start = end + 4;
            let header = |name: &str| {
                head.split("\r\n").find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    (k.trim() == name).then(|| v.trim().to_owned())
                })
            };
            if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
                while buf.len() < body_start + len {
                    read_more(stream, buf).await?;
                }
                buf.drain(..body_start + len);
                return Ok(status);
            }
            if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
                loop {
                    if let Some(i) = find(&buf[body_start..], b"0\r\n\r\n") {
                        let at = body_start + i;
                        if at == body_start || buf[at - 2..at] == *b"\r\n" {
                            buf.drain(..at + 5);
                            return Ok(status);
                        }
                    }
                    read_more(stream, buf).await?;
                }
            }
            buf.drain(..body_start);
            return Ok(status);
        }
        read_more(stream, buf).await?;
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    match stream.read_buf(buf).await {
        Ok(0) => Err("closed by server".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("read: {e}")),
    }
}

/// What the publishers did in one window.
#[derive(Default)]
struct PubStats {
    sent: u64,
    accepted: u64,
    expected: u64,
    failures: BTreeMap<String, u64>,
    request: Option<Histogram<u64>>,
}

/// Publishes window tag `w` for `secs` seconds at the setup's rate, over
/// the publishers' connections (reopened when they fail).
async fn publish_window(
    setup: &Arc<Setup>,
    args: &Arc<LoadArgs>,
    conns: &mut [Option<PubConn>],
    w: u32,
    secs: f64,
    stop: &Arc<AtomicBool>,
) -> PubStats {
    let n = conns.len();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let mut set = tokio::task::JoinSet::new();
    for (j, slot) in conns.iter_mut().enumerate() {
        let mut conn = slot.take();
        let (setup, args, stop) = (setup.clone(), args.clone(), stop.clone());
        set.spawn(async move {
            let mut st = PubStats {
                request: Some(new_hist()),
                ..PubStats::default()
            };
            let mut k = j as u64;
            loop {
                if setup.rate > 0.0 {
                    let at = start + Duration::from_secs_f64(k as f64 / setup.rate);
                    if at >= end {
                        break;
                    }
                    tokio::time::sleep_until(at).await;
                } else if Instant::now() >= end {
                    break;
                }
                if stop.load(Relaxed) {
                    break;
                }
                let c = k % setup.channels;
                let channel = channel_name(&args.channel, setup.channels, c);
                let data = data_json(k, w, args.payload);
                if conn.is_none() {
                    match open_pub(&setup, &args, j).await {
                        Ok(p) => conn = Some(p),
                        Err(e) => {
                            *st.failures.entry(format!("connect: {e}")).or_insert(0) += 1;
                            st.sent += 1;
                            k += n as u64;
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    }
                }
                let t0 = Instant::now();
                st.sent += 1;
                let p = conn.as_mut().expect("opened above");
                match p
                    .publish(&setup.api, args.api_key.as_deref(), &channel, &data, k)
                    .await
                {
                    Ok(()) => {
                        st.accepted += 1;
                        st.expected += setup.subscribers_on(c);
                        if let Some(h) = &mut st.request {
                            h.saturating_record((t0.elapsed().as_micros() as u64).max(1));
                        }
                    }
                    Err(e) => {
                        *st.failures.entry(e).or_insert(0) += 1;
                        conn = None;
                    }
                }
                k += n as u64;
            }
            (j, conn, st)
        });
    }
    let mut total = PubStats {
        request: Some(new_hist()),
        ..PubStats::default()
    };
    while let Some(r) = set.join_next().await {
        let Ok((j, conn, st)) = r else { continue };
        conns[j] = conn;
        total.sent += st.sent;
        total.accepted += st.accepted;
        total.expected += st.expected;
        for (k, v) in st.failures {
            *total.failures.entry(k).or_insert(0) += v;
        }
        if let (Some(t), Some(h)) = (&mut total.request, &st.request) {
            let _ = t.add(h);
        }
    }
    total
}

/// Connect, subscribe, disconnect at `rate` per second until `stop` flips;
/// returns (cycles done, failures by reason).
async fn churn(
    setup: Arc<Setup>,
    args: Arc<LoadArgs>,
    rate: f64,
    mut stop: watch::Receiver<bool>,
) -> (u64, BTreeMap<String, u64>) {
    let source = match setup.target.addr.ip() {
        IpAddr::V4(v) if v.is_loopback() => IpAddr::V4(Ipv4Addr::new(127, 0, 0, 250)),
        ip => ip,
    };
    let ok = Arc::new(AtomicU64::new(0));
    let fails = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let mut set = tokio::task::JoinSet::new();
    let start = Instant::now();
    let mut k = 0u64;
    loop {
        let at = start + Duration::from_secs_f64(k as f64 / rate);
        tokio::select! {
            _ = tokio::time::sleep_until(at) => {}
            _ = stop.changed() => break,
        }
        let plan = Plan {
            index: 0,
            target: setup.target.clone(),
            source,
            connections: 1,
            channel: channel_name(&args.channel, setup.channels, k % setup.channels),
            rate: None,
            max_in_flight: 1,
            handshake_timeout: Duration::from_secs(10),
        };
        let (ok, fails, args) = (ok.clone(), fails.clone(), args.clone());
        set.spawn(async move {
            match subscribe(args.protocol, &plan, (unix_ns() ^ k, k.wrapping_mul(31))).await {
                Ok(mut r) => {
                    let _ = close(&mut r.stream, r.mask).await;
                    ok.fetch_add(1, Relaxed);
                }
                Err(e) => {
                    *fails
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(e)
                        .or_insert(0) += 1;
                }
            }
        });
        while set.try_join_next().is_some() {}
        k += 1;
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while set.join_next().await.is_some() {}
    })
    .await;
    let f = fails.lock().unwrap_or_else(|e| e.into_inner()).clone();
    (ok.load(Relaxed), f)
}

// ---------------------------------------------------------------- report

/// One measured window.
#[derive(Debug, Clone, Serialize)]
pub struct WindowReport {
    /// Repetition (0-based).
    pub repetition: u32,
    /// Whether connections churned during it.
    pub churn: bool,
    /// Seconds the publishers ran.
    pub seconds: f64,
    /// Publications attempted.
    pub publishes_sent: u64,
    /// Publications the hub accepted (2xx, or `published`).
    pub publishes_accepted: u64,
    /// Accepted publications per second.
    pub publishes_per_second: f64,
    /// Failed publications by reason.
    pub publish_failures: BTreeMap<String, u64>,
    /// Publish request round trip (HTTP answer, or `published` reply).
    pub publish_request: Latency,
    /// Sum over accepted publications of their channel's subscribers.
    pub expected_deliveries: u64,
    /// Deliveries the subscribers saw.
    pub received_deliveries: u64,
    /// `expected - received` (0: nothing missing).
    pub missing: i64,
    /// `received / seconds`.
    pub deliveries_per_second: f64,
    /// Publish to receive, per delivery.
    pub latency: Latency,
    /// The hub's CPU time during the window, in seconds (user + system).
    pub server_cpu_seconds: Option<f64>,
    /// Server CPU per delivery (per publish when nobody subscribes), µs.
    pub server_cpu_us_per_delivery: Option<f64>,
    /// Churn cycles completed during the window.
    pub churn_cycles: u64,
    /// Churn cycles that failed, by reason.
    pub churn_failures: BTreeMap<String, u64>,
}

/// The outcome of one run, as printed and written to `--out`.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// The scenario.
    pub scenario: Kind,
    /// WebSocket URL.
    pub url: String,
    /// HTTP API address used for publishing.
    pub api: String,
    /// How publications were sent.
    pub via: Via,
    /// Subscribers asked for.
    pub subscribers: u64,
    /// Subscribers established.
    pub subscribed: u64,
    /// Subscribers that failed to connect, by reason.
    pub subscribe_failures: BTreeMap<String, u64>,
    /// Subscribers the server or network dropped during the run.
    pub dropped: u64,
    /// Channels.
    pub channels: u64,
    /// Target publishes per second (0: unlimited).
    pub rate: f64,
    /// Payload (`data`) size in bytes.
    pub payload_bytes: usize,
    /// Concurrent publishers.
    pub publishers: usize,
    /// Churn cycles per second in churn windows.
    pub churn_rate: f64,
    /// Worker processes.
    pub workers: usize,
    /// Seconds of warm-up.
    pub warmup_seconds: f64,
    /// Whether Ctrl-C cut the run short.
    pub interrupted: bool,
    /// The hub's pid, when found.
    pub server_pid: Option<u32>,
    /// Measured windows.
    pub windows: Vec<WindowReport>,
    /// Event frames without the bench's fields (another publisher's).
    pub unparsed_events: u64,
    /// Worker problems.
    pub worker_errors: Vec<String>,
    /// Where it ran.
    pub host: HostInfo,
}

impl LoadReport {
    /// True when nothing failed and nothing went missing: the exit status.
    pub fn clean(&self) -> bool {
        !self.interrupted
            && self.subscribed == self.subscribers
            && self.dropped == 0
            && self.worker_errors.is_empty()
            && self.windows.iter().all(|w| {
                w.missing == 0 && w.publish_failures.is_empty() && w.churn_failures.is_empty()
            })
    }
}

fn median_spread(mut v: Vec<f64>) -> String {
    if v.is_empty() {
        return "n/a".into();
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v[v.len() / 2];
    if v.len() == 1 {
        format!("{m:.2}")
    } else {
        format!("{m:.2} ({:.2}..{:.2})", v[0], v[v.len() - 1])
    }
}

fn print_table(r: &LoadReport) {
    println!(
        "hubbub bench {}: {} subscribers on {} channel(s), {} publishes/s of {} B via {}, {} publisher(s){}",
        r.scenario.name(),
        r.subscribers,
        r.channels,
        if r.rate > 0.0 { format!("{}", r.rate) } else { "max".into() },
        r.payload_bytes,
        match r.via {
            Via::Http => "http",
            Via::Ws => "ws",
        },
        r.publishers,
        if r.churn_rate > 0.0 {
            format!(", churn {}/s", r.churn_rate)
        } else {
            String::new()
        }
    );
    if r.interrupted {
        println!("  INTERRUPTED: partial results");
    }
    println!(
        "  subscribed {}/{} ({} failed, {} dropped), {} worker(s), server pid {}",
        r.subscribed,
        r.subscribers,
        r.subscribe_failures.values().sum::<u64>(),
        r.dropped,
        r.workers,
        r.server_pid.map_or("n/a".into(), |p| p.to_string())
    );
    println!(
        "  {:<4} {:<6} {:>9} {:>9} {:>11} {:>11} {:>8} {:>11} {:>7} {:>7} {:>7} {:>7} {:>7} {:>8} {:>7}",
        "rep", "churn", "pub/s", "pub fail", "expected", "received", "missing", "deliv/s",
        "p50ms", "p90ms", "p99ms", "p999ms", "maxms", "cpu us/d", "req p99"
    );
    for w in &r.windows {
        println!(
            "  {:<4} {:<6} {:>9.0} {:>9} {:>11} {:>11} {:>8} {:>11.0} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>7.2} {:>8} {:>7.2}",
            w.repetition,
            if w.churn { format!("{}", w.churn_cycles) } else { "-".into() },
            w.publishes_per_second,
            w.publish_failures.values().sum::<u64>(),
            w.expected_deliveries,
            w.received_deliveries,
            w.missing,
            w.deliveries_per_second,
            w.latency.p50_ms,
            w.latency.p90_ms,
            w.latency.p99_ms,
            w.latency.p999_ms,
            w.latency.max_ms,
            w.server_cpu_us_per_delivery
                .map_or("n/a".into(), |c| format!("{c:.2}")),
            w.publish_request.p99_ms,
        );
    }
    for churn in [false, true] {
        let ws: Vec<&WindowReport> = r.windows.iter().filter(|w| w.churn == churn).collect();
        if ws.is_empty() || (ws.len() < 2 && r.scenario != Kind::Churn) {
            continue;
        }
        let f = |g: &dyn Fn(&WindowReport) -> f64| median_spread(ws.iter().map(|w| g(w)).collect());
        println!(
            "  median{}: pub/s {}, deliv/s {}, p50 {} ms, p99 {} ms, p99.9 {} ms, cpu us/delivery {}",
            if churn { " with churn" } else { "" },
            f(&|w| w.publishes_per_second),
            f(&|w| w.deliveries_per_second),
            f(&|w| w.latency.p50_ms),
            f(&|w| w.latency.p99_ms),
            f(&|w| w.latency.p999_ms),
            f(&|w| w.server_cpu_us_per_delivery.unwrap_or(f64::NAN)),
        );
    }
    for w in &r.windows {
        for (k, v) in w.publish_failures.iter().chain(&w.churn_failures) {
            println!("  failed (rep {}): {v} x {k}", w.repetition);
        }
    }
    for (k, v) in &r.subscribe_failures {
        println!("  subscribe failed: {v} x {k}");
    }
    for e in &r.worker_errors {
        println!("  {e}");
    }
}

// ---------------------------------------------------------------- parent

enum Link {
    Process {
        child: Box<tokio::process::Child>,
        stdin: Option<tokio::process::ChildStdin>,
    },
    Thread {
        stop: Option<oneshot::Sender<()>>,
        join: Option<std::thread::JoinHandle<()>>,
    },
}

#[derive(Default)]
struct View {
    opened: u64,
    failed: u64,
    received: u64,
    ready: bool,
    exited: bool,
    last: Option<Box<WFinal>>,
    fatal: Option<String>,
}

enum Ev {
    Msg(usize, WMsg),
    Exited(usize),
}

fn apply(views: &mut [View], ev: Ev) {
    match ev {
        Ev::Msg(i, m) => {
            let Some(v) = views.get_mut(i) else { return };
            match m {
                WMsg::Progress {
                    opened,
                    failed,
                    received,
                } => {
                    v.opened = opened;
                    v.failed = failed;
                    v.received = received;
                }
                WMsg::Ready { opened, failed } => {
                    v.opened = opened;
                    v.failed = failed;
                    v.ready = true;
                }
                WMsg::Final(f) => {
                    v.opened = f.opened;
                    v.failed = f.failed;
                    v.last = Some(f);
                }
                WMsg::Fatal { message } => v.fatal = Some(message),
            }
        }
        Ev::Exited(i) => {
            if let Some(v) = views.get_mut(i) {
                v.exited = true;
            }
        }
    }
}

fn worker_argv(kind: Kind, a: &LoadArgs, s: &Setup, index: usize) -> Vec<String> {
    let sources: Vec<String> = s.sources.iter().map(IpAddr::to_string).collect();
    vec![
        "bench".into(),
        kind.name().into(),
        format!("--url={}", a.url),
        format!("--subscribers={}", s.subscribers),
        format!("--channels={}", s.channels),
        format!("--channel={}", a.channel),
        format!(
            "--protocol={}",
            match a.protocol {
                Protocol::Hubbub => "hubbub",
                Protocol::Socketio => "socketio",
            }
        ),
        format!("--source-addrs={}", sources.join(",")),
        format!("--max-in-flight={}", a.max_in_flight),
        format!("--handshake-timeout={}", a.handshake_timeout),
        format!("--worker-index={index}"),
        format!("--worker-count={}", s.workers),
    ]
}

/// Runs a publish scenario with its workers as threads of this process
/// instead of processes. Exists for tests; returns the same report.
pub async fn run_in_process(kind: Kind, args: LoadArgs) -> anyhow::Result<LoadReport> {
    let mut args = args;
    args.workers = Some(args.workers.unwrap_or(1));
    let setup = Setup::new(kind, &args)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let links = if setup.subscribers == 0 {
        Vec::new()
    } else {
        (0..setup.workers)
            .map(|i| {
                let (stop_tx, stop_rx) = oneshot::channel();
                let msgs = tx.clone();
                let emit: Emit = Arc::new(move |m| {
                    let m = serde_json::to_string(&m)
                        .and_then(|l| serde_json::from_str(&l))
                        .unwrap_or_else(|e| WMsg::Fatal {
                            message: format!("unreadable: {e}"),
                        });
                    let _ = msgs.send(Ev::Msg(i, m));
                });
                let (s, a, exited) = (setup.clone(), args.clone(), tx.clone());
                let join = std::thread::spawn(move || {
                    run_worker(s, a, i, emit, stop_rx);
                    let _ = exited.send(Ev::Exited(i));
                });
                Link::Thread {
                    stop: Some(stop_tx),
                    join: Some(join),
                }
            })
            .collect()
    };
    drop(tx);
    let report = coordinate(setup, args.clone(), links, rx, false).await;
    if let Some(p) = &args.out {
        write_report(p, &report)?;
    }
    Ok(report)
}

fn write_report(path: &std::path::Path, r: &LoadReport) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(r)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The CLI entry of the four scenarios.
pub(crate) fn run_cli(kind: Kind, args: LoadArgs) -> ExitCode {
    let setup = match Setup::new(kind, &args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hubbub bench {}: {e:#}", kind.name());
            return ExitCode::from(2);
        }
    };
    if let Some(index) = args.worker_index {
        let emit: Emit = Arc::new(|m| {
            if let Ok(line) = serde_json::to_string(&m) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        });
        let _ = rlimit::increase_nofile_limit(u64::MAX);
        let (tx, rx) = oneshot::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            let _ = tx.send(());
        });
        run_worker(setup, args, index, emit, rx);
        return ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hubbub bench: runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let out = args.out.clone();
    let result = rt.block_on(async move {
        let exe = std::env::current_exe().context("finding the bench's own executable")?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut links = Vec::new();
        if setup.subscribers > 0 {
            for i in 0..setup.workers {
                let mut child = tokio::process::Command::new(&exe)
                    .args(worker_argv(kind, &args, &setup, i))
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .kill_on_drop(true)
                    .process_group(0) // Ctrl-C reaches the parent only
                    .spawn()
                    .with_context(|| format!("starting worker {i}"))?;
                let stdout = child.stdout.take().expect("piped");
                let stdin = child.stdin.take();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut lines = BufReader::new(stdout).lines();
                    while let Ok(Some(l)) = lines.next_line().await {
                        let m = serde_json::from_str(&l).unwrap_or_else(|e| WMsg::Fatal {
                            message: format!("unreadable line ({e}): {l}"),
                        });
                        let _ = tx.send(Ev::Msg(i, m));
                    }
                    let _ = tx.send(Ev::Exited(i));
                });
                links.push(Link::Process {
                    child: Box::new(child),
                    stdin,
                });
            }
        }
        drop(tx);
        anyhow::Ok(coordinate(setup, args, links, rx, true).await)
    });
    match result {
        Ok(report) => {
            print_table(&report);
            if let Some(p) = &out {
                if let Err(e) = write_report(p, &report) {
                    eprintln!("hubbub bench: {e:#}");
                    return ExitCode::from(2);
                }
            }
            if report.interrupted {
                ExitCode::from(130)
            } else if report.clean() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("hubbub bench: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn coordinate(
    setup: Setup,
    args: LoadArgs,
    mut links: Vec<Link>,
    mut rx: mpsc::UnboundedReceiver<Ev>,
    progress: bool,
) -> LoadReport {
    let host = HostInfo::now();
    let setup = Arc::new(setup);
    let args = Arc::new(args);
    let mut views: Vec<View> = (0..links.len()).map(|_| View::default()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let interrupt = {
        let stop = stop.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Relaxed);
            }
        })
    };
    let tty = std::io::stderr().is_terminal();
    let say = |s: String| {
        if progress {
            if tty {
                eprint!("\r{s:<100}");
            } else {
                eprintln!("{s}");
            }
        }
    };
    let server_pid = args
        .server_pid
        .or_else(|| procfs::pid_listening_on(setup.target.addr.port()));

    // Ramp-up.
    let mut last_line = Instant::now();
    while !views
        .iter()
        .all(|v| v.ready || v.exited || v.fatal.is_some())
    {
        if stop.load(Relaxed) {
            break;
        }
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            apply(&mut views, ev);
        } else if rx.is_closed() && rx.is_empty() && !links.is_empty() {
            break;
        }
        if last_line.elapsed() >= Duration::from_secs(1) || tty {
            let o: u64 = views.iter().map(|v| v.opened).sum();
            let f: u64 = views.iter().map(|v| v.failed).sum();
            say(format!(
                "ramp-up: {o}/{} subscribed, {f} failed",
                setup.subscribers
            ));
            last_line = Instant::now();
        }
    }
    if progress && tty {
        eprintln!();
    }

    // Publish: warm-up then the windows.
    let mut conns: Vec<Option<PubConn>> = (0..setup.publishers).map(|_| None).collect();
    let mut windows = Vec::new();
    let plan = setup.windows(args.repetitions);
    if !stop.load(Relaxed) && args.warmup > 0.0 {
        say(format!("warm-up {:.0} s", args.warmup));
        let _ = publish_window(&setup, &args, &mut conns, 0, args.warmup, &stop).await;
    }
    let mut expected_total = 0u64;
    for (i, win) in plan.iter().enumerate() {
        if stop.load(Relaxed) {
            break;
        }
        say(format!(
            "window {}/{}{}: {:.0} s",
            i + 1,
            plan.len(),
            if win.churn { " (churn)" } else { "" },
            args.duration
        ));
        let (churn_tx, churn_rx) = watch::channel(false);
        let churner = (win.churn && setup.churn_rate > 0.0).then(|| {
            tokio::spawn(churn(
                setup.clone(),
                args.clone(),
                setup.churn_rate,
                churn_rx,
            ))
        });
        let cpu0 = server_pid.and_then(|p| procfs::cpu_seconds(p).ok());
        let t0 = Instant::now();
        let ps = publish_window(
            &setup,
            &args,
            &mut conns,
            i as u32 + 1,
            args.duration,
            &stop,
        )
        .await;
        let secs = t0.elapsed().as_secs_f64();
        let cpu = match (cpu0, server_pid.and_then(|p| procfs::cpu_seconds(p).ok())) {
            (Some(a), Some(b)) => Some(((b - a) * 1000.0).round() / 1000.0),
            _ => None,
        };
        let _ = churn_tx.send(true);
        let (churn_cycles, churn_failures) = match churner {
            Some(j) => j.await.unwrap_or_default(),
            None => (0, BTreeMap::new()),
        };
        while let Ok(ev) = rx.try_recv() {
            apply(&mut views, ev);
        }
        expected_total += ps.expected;
        let per = if setup.subscribers > 0 {
            ps.expected
        } else {
            ps.accepted
        };
        windows.push(WindowReport {
            repetition: win.rep,
            churn: win.churn,
            seconds: (secs * 1000.0).round() / 1000.0,
            publishes_sent: ps.sent,
            publishes_accepted: ps.accepted,
            publishes_per_second: (ps.accepted as f64 / secs).round(),
            publish_failures: ps.failures,
            publish_request: ps.request.as_ref().map(Latency::of).unwrap_or_default(),
            expected_deliveries: ps.expected,
            received_deliveries: 0,
            missing: 0,
            deliveries_per_second: 0.0,
            latency: Latency::default(),
            server_cpu_seconds: cpu,
            server_cpu_us_per_delivery: cpu
                .filter(|_| per > 0)
                .map(|c| (c * 1e6 / per as f64 * 100.0).round() / 100.0),
            churn_cycles,
            churn_failures,
        });
    }
    let interrupted = stop.load(Relaxed);

    // Drain: until every expected delivery arrived, or --drain seconds.
    let drain = if interrupted { 1.0 } else { args.drain };
    let until = Instant::now() + Duration::from_secs_f64(drain);
    while !links.is_empty() && Instant::now() < until {
        let got: u64 = views.iter().map(|v| v.received).sum();
        if got >= expected_total {
            break;
        }
        if let Ok(Some(ev)) = tokio::time::timeout(Duration::from_millis(100), rx.recv()).await {
            apply(&mut views, ev);
        }
    }
    say("closing".into());
    if progress && tty {
        eprintln!();
    }

    // Stop the workers and collect their histograms.
    for l in &mut links {
        match l {
            Link::Process { stdin, .. } => {
                if let Some(mut s) = stdin.take() {
                    let _ = s.write_all(b"stop\n").await;
                }
            }
            Link::Thread { stop, .. } => {
                if let Some(s) = stop.take() {
                    let _ = s.send(());
                }
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    while !views.iter().all(|v| v.exited) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(ev)) => apply(&mut views, ev),
            _ => break,
        }
    }
    let mut worker_errors = Vec::new();
    for (i, l) in links.iter_mut().enumerate() {
        match l {
            Link::Process { child, .. } => {
                match tokio::time::timeout(Duration::from_secs(5), child.wait()).await {
                    Ok(Ok(s)) if s.success() => {}
                    Ok(Ok(s)) => worker_errors.push(format!("worker {i}: exited with {s}")),
                    _ => {
                        let _ = child.kill().await;
                        worker_errors.push(format!("worker {i}: killed"));
                    }
                }
            }
            Link::Thread { join, .. } => {
                if let Some(j) = join.take() {
                    let _ = tokio::task::spawn_blocking(move || j.join()).await;
                }
            }
        }
    }
    interrupt.abort();

    let mut subscribe_failures = BTreeMap::new();
    let (mut subscribed, mut dropped, mut unparsed) = (0, 0, 0);
    let mut per_window: BTreeMap<u32, (u64, Histogram<u64>)> = BTreeMap::new();
    for (i, v) in views.iter().enumerate() {
        if let Some(f) = &v.fatal {
            worker_errors.push(format!("worker {i}: {f}"));
        }
        let Some(f) = &v.last else {
            worker_errors.push(format!("worker {i}: sent no final report"));
            subscribed += v.opened;
            continue;
        };
        subscribed += f.opened;
        dropped += f.dropped;
        unparsed += f.unparsed;
        for (k, n) in &f.failures {
            *subscribe_failures.entry(k.clone()).or_insert(0) += n;
        }
        for (w, n, h) in &f.windows {
            let e = per_window.entry(*w).or_insert_with(|| (0, new_hist()));
            e.0 += n;
            match hist_from_b64(h) {
                Ok(h) => {
                    let _ = e.1.add(&h);
                }
                Err(err) => worker_errors.push(format!("worker {i}: {err}")),
            }
        }
    }
    for (i, w) in windows.iter_mut().enumerate() {
        if let Some((n, h)) = per_window.get(&(i as u32 + 1)) {
            w.received_deliveries = *n;
            w.latency = Latency::of(h);
        }
        w.missing = w.expected_deliveries as i64 - w.received_deliveries as i64;
        w.deliveries_per_second = (w.received_deliveries as f64 / w.seconds.max(1e-9)).round();
    }
    LoadReport {
        scenario: setup.kind,
        url: args.url.clone(),
        api: setup.api.addr.to_string(),
        via: args.via,
        subscribers: setup.subscribers,
        subscribed,
        subscribe_failures,
        dropped,
        channels: setup.channels,
        rate: setup.rate,
        payload_bytes: args.payload,
        publishers: setup.publishers,
        churn_rate: setup.churn_rate,
        workers: if setup.subscribers == 0 {
            0
        } else {
            setup.workers
        },
        warmup_seconds: args.warmup,
        interrupted,
        server_pid,
        windows,
        unparsed_events: unparsed,
        worker_errors,
        host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_carry_their_fields_and_size() {
        let d = data_json(42, 3, 100);
        assert_eq!(d.len(), 100);
        let v: serde_json::Value = serde_json::from_str(&d).unwrap();
        assert_eq!(v["bench_s"], 42);
        assert_eq!(v["bench_w"], 3);
        let frame = format!("{{\"type\":\"event\",\"data\":{d}}}");
        assert_eq!(number_after(frame.as_bytes(), b"\"bench_w\":"), Some(3));
        assert!(
            number_after(frame.as_bytes(), b"\"bench_t\":").unwrap() > 1_600_000_000_000_000_000
        );
    }

    #[test]
    fn shares_and_channels_add_up() {
        let mut a = LoadArgs::new("ws://127.0.0.1:1/ws");
        a.subscribers = Some(10_001);
        a.channels = Some(7);
        a.workers = Some(3);
        let s = Setup::new(Kind::Channels, &a).unwrap();
        assert_eq!((0..7).map(|c| s.subscribers_on(c)).sum::<u64>(), 10_001);
        assert_eq!((0..3).map(|i| s.share(i).1).sum::<u64>(), 10_001);
        assert_eq!(s.share(2).0, s.share(1).0 + s.share(1).1);
        assert_eq!(s.windows(2).len(), 2);
        let c = Setup::new(Kind::Churn, &LoadArgs::new("ws://127.0.0.1:1/ws")).unwrap();
        assert_eq!(c.windows(2).len(), 4);
        assert_eq!(c.churn_rate, 100.0);
    }

    #[test]
    fn histograms_survive_the_wire() {
        let mut h = new_hist();
        h.record(1234).unwrap();
        let back = hist_from_b64(&hist_to_b64(&h)).unwrap();
        assert_eq!(back.len(), 1);
        assert_eq!(Latency::of(&back).p50_ms, 1.23);
    }
}
