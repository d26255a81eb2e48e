//! `hubbub bench raw-server`: the floor a hub is compared with.
//!
//! It accepts TCP, answers the WebSocket upgrade, sends a `connected`
//! message, answers the first frame it gets with `subscribed` (without
//! reading it), and from then on never reads that socket again. On each
//! publication (`POST /api/publish` on the same port, or a timer at
//! `--rate`) it writes one pre-built frame to every socket, with plain
//! non-blocking `write` calls, or with `--writev-batch B` coalesces B
//! publications into one vectored write per socket. No channels, no
//! queues, no backpressure: a write that would block is counted and its
//! bytes dropped. What it costs in CPU per frame written is the per-write
//! (or per-batched-frame) floor of this machine, the figure the issue's
//! goals are stated against; it prints it when stopped.

use std::io::{IoSlice, Write as _};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hubbub_ws::{server_frame, OpCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::load::data_json;
use crate::procfs;
use crate::target::find;

/// Options of `hubbub bench raw-server`. A clap struct so the `hubbub`
/// binary mounts it with the scenarios.
#[derive(clap::Args, Debug, Clone)]
pub struct RawArgs {
    /// Address to listen on (WebSocket at any path, `POST /api/publish`).
    #[arg(long, default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// Publish on a timer at this many publications per second as well
    /// (0: only on HTTP publishes).
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Payload size of timer publications, in bytes.
    #[arg(long, default_value_t = 100)]
    pub payload: usize,
    /// Publications coalesced into one vectored write per socket (1: every
    /// frame is its own write). Leftovers are flushed after 1 ms.
    #[arg(long, default_value_t = 1)]
    pub writev_batch: usize,
    /// Threads the writes of one publication are split over.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
}

#[derive(Default)]
struct Counters {
    publishes: AtomicU64,
    writes: AtomicU64,
    frames: AtomicU64,
    would_block: AtomicU64,
    dead: AtomicU64,
}

struct Hub {
    socks: Mutex<Vec<std::net::TcpStream>>,
    pending: Mutex<Vec<Bytes>>,
    batch: usize,
    threads: usize,
    c: Counters,
}

impl Hub {
    /// Queues one frame; writes when the batch is full. Returns the number
    /// of subscribers it went (or will go) to.
    fn publish(&self, frame: Bytes) -> usize {
        self.c.publishes.fetch_add(1, Relaxed);
        let batch = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.push(frame);
            if p.len() >= self.batch {
                std::mem::take(&mut *p)
            } else {
                Vec::new()
            }
        };
        if !batch.is_empty() {
            self.write_all(&batch);
        }
        self.socks.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    fn flush(&self) {
        let batch = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if !batch.is_empty() {
            self.write_all(&batch);
        }
    }

    /// One write (or one vectored write) of `frames` to every socket.
    fn write_all(&self, frames: &[Bytes]) {
        let mut socks = self.socks.lock().unwrap_or_else(|e| e.into_inner());
        let total: usize = frames.iter().map(Bytes::len).sum();
        let write_chunk = |chunk: &mut [std::net::TcpStream]| -> Vec<usize> {
            let slices: Vec<IoSlice<'_>> = frames.iter().map(|f| IoSlice::new(f)).collect();
            let mut dead = Vec::new();
            for (i, s) in chunk.iter_mut().enumerate() {
                let r = if frames.len() == 1 {
                    s.write(&frames[0])
                } else {
                    s.write_vectored(&slices)
                };
                self.c.writes.fetch_add(1, Relaxed);
                match r {
                    Ok(n) if n == total => {
                        self.c.frames.fetch_add(frames.len() as u64, Relaxed);
                    }
                    Ok(_) => {
                        self.c.would_block.fetch_add(1, Relaxed);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        self.c.would_block.fetch_add(1, Relaxed);
                    }
                    Err(_) => dead.push(i),
                }
            }
            dead
        };
        let threads = self.threads.clamp(1, socks.len().max(1));
        let mut dead: Vec<usize> = Vec::new();
        if threads == 1 {
            dead = write_chunk(&mut socks);
        } else {
            let per = socks.len().div_ceil(threads);
            std::thread::scope(|sc| {
                let handles: Vec<_> = socks
                    .chunks_mut(per)
                    .enumerate()
                    .map(|(k, ch)| {
                        let f = &write_chunk;
                        sc.spawn(move || f(ch).into_iter().map(|i| i + k * per).collect::<Vec<_>>())
                    })
                    .collect();
                for h in handles {
                    dead.extend(h.join().unwrap_or_default());
                }
            });
        }
        dead.sort_unstable();
        for i in dead.into_iter().rev() {
            socks.swap_remove(i);
            self.c.dead.fetch_add(1, Relaxed);
        }
    }
}

/// Runs the raw server until Ctrl-C or SIGTERM, then prints what it wrote
/// and its CPU time per frame written.
pub fn run(args: RawArgs) -> ExitCode {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("raw-server: {e}");
            return ExitCode::from(2);
        }
    };
    let hub = Arc::new(Hub {
        socks: Mutex::new(Vec::new()),
        pending: Mutex::new(Vec::new()),
        batch: args.writev_batch.max(1),
        threads: args.threads.max(1),
        c: Counters::default(),
    });
    rt.block_on(async move {
        let listener = match TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("raw-server: bind {}: {e}", args.listen);
                return ExitCode::from(2);
            }
        };
        eprintln!(
            "raw-server {} listening on {} (writev batch {}, {} thread(s))",
            std::process::id(),
            args.listen,
            hub.batch,
            hub.threads
        );
        let cpu0 = procfs::cpu_seconds(std::process::id()).unwrap_or(0.0);
        {
            let hub = hub.clone();
            tokio::spawn(async move {
                loop {
                    match listener.accept().await {
                        Ok((s, _)) => {
                            let _ = s.set_nodelay(true);
                            tokio::spawn(serve(s, hub.clone()));
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
            });
        }
        if hub.batch > 1 {
            let hub = hub.clone();
            tokio::spawn(async move {
                let mut t = tokio::time::interval(Duration::from_millis(1));
                loop {
                    t.tick().await;
                    let h = hub.clone();
                    tokio::task::block_in_place(|| h.flush());
                }
            });
        }
        if args.rate > 0.0 {
            let hub = hub.clone();
            let (rate, payload) = (args.rate, args.payload);
            tokio::spawn(async move {
                let start = tokio::time::Instant::now();
                let mut k = 0u64;
                loop {
                    tokio::time::sleep_until(start + Duration::from_secs_f64(k as f64 / rate))
                        .await;
                    let frame = event_frame("bench", &data_json(k, 1, payload));
                    let h = hub.clone();
                    tokio::task::block_in_place(|| h.publish(frame));
                    k += 1;
                }
            });
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let cpu = procfs::cpu_seconds(std::process::id()).unwrap_or(0.0) - cpu0;
        let c = &hub.c;
        let frames = c.frames.load(Relaxed);
        println!(
            "raw-server: {} publications, {} writes, {} frames written, {} would-block, {} dead sockets; \
             CPU {:.2} s = {:.2} us per frame written",
            c.publishes.load(Relaxed),
            c.writes.load(Relaxed),
            frames,
            c.would_block.load(Relaxed),
            c.dead.load(Relaxed),
            cpu,
            if frames > 0 { cpu * 1e6 / frames as f64 } else { 0.0 }
        );
        ExitCode::SUCCESS
    })
}

fn event_frame(channel: &str, data: &str) -> Bytes {
    let text = format!(
        "{{\"type\":\"event\",\"channel\":\"{channel}\",\"event_type\":\"bench\",\"data\":{data}}}"
    );
    server_frame(OpCode::Text, text.as_bytes())
}

/// One accepted socket: a WebSocket subscriber or an HTTP publisher.
async fn serve(mut s: TcpStream, hub: Arc<Hub>) {
    let mut buf = Vec::with_capacity(1024);
    loop {
        let Some(end) = find(&buf, b"\r\n\r\n") else {
            match s.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let header = |name: &str| {
            head.split("\r\n").find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        };
        if head.starts_with("GET ") {
            let Some(key) = header("sec-websocket-key") else {
                let _ = s
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                    .await;
                return;
            };
            let accept = hubbub_ws::handshake::accept_key(key.as_bytes());
            let mut out = hubbub_ws::handshake::response_101(&accept, None, &[]);
            out.extend_from_slice(&server_frame(
                OpCode::Text,
                br#"{"type":"connected","connection_id":"raw","user_id":null,"server_time":0,"heartbeat_interval_ms":0,"max_message_size":65536,"encoding":"json","features":[],"timestamp":0}"#,
            ));
            if s.write_all(&out).await.is_err() {
                return;
            }
            buf.drain(..end + 4);
            // Wait for any frame (the subscribe) without decoding it.
            while buf.len() < 2 {
                match s.read_buf(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
            let subscribed = server_frame(
                OpCode::Text,
                br#"{"type":"subscribed","channels":["bench"],"correlation_id":1,"timestamp":0}"#,
            );
            if s.write_all(&subscribed).await.is_err() {
                return;
            }
            if let Ok(std) = s.into_std() {
                hub.socks
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(std);
            }
            return;
        }
        let len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            match s.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
        let body: Vec<u8> = buf.drain(..end + 4 + len).skip(end + 4).collect();
        let (status, answer) = if head.starts_with("POST /api/publish") {
            match serde_json::from_slice::<serde_json::Value>(&body) {
                Ok(v) => {
                    let frame = event_frame(
                        v["channel"].as_str().unwrap_or("bench"),
                        &v["data"].to_string(),
                    );
                    let h = hub.clone();
                    let n = tokio::task::block_in_place(|| h.publish(frame));
                    ("200 OK", format!("{{\"subscribers\":{n}}}"))
                }
                Err(_) => ("400 Bad Request", "{}".to_owned()),
            }
        } else {
            ("404 Not Found", "{}".to_owned())
        };
        let resp = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if s.write_all(resp.as_bytes()).await.is_err() {
            return;
        }
    }
}
