//! The worker side: a worker opens its share of the subscribers, reports
//! progress, and turns every delivery into a latency per window.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use hubbub_ws::{client_frame, Message, OpCode};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use super::payload::{hist_to_b64, new_hist, number_after, unix_ns};
use super::setup::{channel_name, Setup};
use super::socketio::{subscribe, PUSHER_PING, PUSHER_PONG};
use super::{LoadArgs, MAX_US};
use crate::connections::worker::{close, Plan, Ready};
use crate::target::find;

// ------------------------------------------------------------ worker side

/// What a worker tells the parent, one JSON line each.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(super) enum WMsg {
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
    /// The histograms so far, asked for with [`Ctl::Snapshot`]: a sweep
    /// judges each rate before it goes on to the next.
    Snapshot(Box<WSnapshot>),
    Fatal {
        message: String,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct WFinal {
    pub(super) opened: u64,
    pub(super) failed: u64,
    pub(super) dropped: u64,
    pub(super) failures: BTreeMap<String, u64>,
    /// (window tag, received, histogram in base64); a list because integer
    /// map keys do not survive an internally tagged enum.
    pub(super) windows: Vec<(u32, u64, String)>,
    pub(super) unparsed: u64,
}

/// A worker's windows while it runs: (window tag, received, histogram in
/// base64) as in [`WFinal`], and the subscribers dropped so far.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct WSnapshot {
    pub(super) windows: Vec<(u32, u64, String)>,
    pub(super) dropped: u64,
}

pub(super) type Emit = Arc<dyn Fn(WMsg) + Send + Sync>;

/// What the parent asks of a running worker (a line on a worker process's
/// stdin: `snapshot`, anything else or EOF stops it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ctl {
    /// Send [`WMsg::Snapshot`] and go on recording.
    Snapshot,
    /// Close the subscribers and send [`WMsg::Final`].
    Stop,
}

impl Ctl {
    /// The stdin line that asks for a snapshot.
    pub(super) const SNAPSHOT_LINE: &'static [u8] = b"snapshot\n";

    /// A command from one stdin line.
    pub(super) fn parse(line: &str) -> Ctl {
        if line == "snapshot" {
            Ctl::Snapshot
        } else {
            Ctl::Stop
        }
    }
}

#[derive(Default)]
pub(super) struct WState {
    pub(super) opened: u64,
    pub(super) failed: u64,
    pub(super) dropped: u64,
    pub(super) received: u64,
    pub(super) unparsed: u64,
    pub(super) failures: BTreeMap<String, u64>,
    pub(super) windows: BTreeMap<u32, (u64, Histogram<u64>)>,
}

impl WState {
    /// Every window's count and histogram, in the form the parent reads.
    pub(super) fn windows_b64(&self) -> Vec<(u32, u64, String)> {
        self.windows
            .iter()
            .map(|(w, (n, h))| (*w, *n, hist_to_b64(h)))
            .collect()
    }

    pub(super) fn on_text(&mut self, p: &[u8]) {
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
/// [`Ctl::Stop`] (answering [`Ctl::Snapshot`]s meanwhile), then closes and
/// sends its final report. Runs on the calling thread (a current-thread
/// runtime with a local set).
pub(super) fn run_worker(
    setup: Setup,
    args: LoadArgs,
    index: usize,
    emit: Emit,
    ctl: mpsc::UnboundedReceiver<Ctl>,
) {
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
    local.block_on(&rt, worker_main(setup, args, index, emit, ctl));
}

pub(super) async fn worker_main(
    setup: Setup,
    args: LoadArgs,
    index: usize,
    emit: Emit,
    mut ctl: mpsc::UnboundedReceiver<Ctl>,
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
            _ = until_stop(&mut ctl, &st, &emit) => { stopped = true; break; }
        };
        let plan = Plan::single(
            index,
            setup.worker_target(index).clone(),
            source,
            channel_name(&args.channel, setup.channels, k % setup.channels),
            timeout,
        );
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
                _ = until_stop(&mut ctl, &st, &emit) => { stopped = true; break; }
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
        until_stop(&mut ctl, &st, &emit).await;
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
        windows: s.windows_b64(),
        unparsed: s.unparsed,
    })));
}

/// Returns at [`Ctl::Stop`] or when the parent is gone, answering every
/// [`Ctl::Snapshot`] on the way. Cancel-safe (a `select!` branch).
async fn until_stop(ctl: &mut mpsc::UnboundedReceiver<Ctl>, st: &Rc<RefCell<WState>>, emit: &Emit) {
    while let Some(Ctl::Snapshot) = ctl.recv().await {
        let s = st.borrow();
        emit(WMsg::Snapshot(Box::new(WSnapshot {
            windows: s.windows_b64(),
            dropped: s.dropped,
        })));
    }
}

/// Reads one subscriber's deliveries until `stop`, then closes.
pub(super) async fn receive(
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
                        // A Pusher ping: the same.
                        Some(Message::Text(p))
                            if p.len() < 128
                                && find(&p, PUSHER_PING).is_some()
                                && stream
                                    .write_all(&client_frame(OpCode::Text, PUSHER_PONG, mask))
                                    .await
                                    .is_err() =>
                        {
                            dropped = true;
                            break 'outer;
                        }
                        Some(Message::Text(p))
                            if p.len() < 128 && find(&p, PUSHER_PING).is_some() => {}
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
