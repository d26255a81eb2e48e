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
//!
//! [`RawServer`] is the server itself (bind, then serve until a future
//! completes), so tests run it in-process on port 0; `hub` holds the
//! sockets and the writes, `conn` one accepted connection.

mod conn;
mod hub;

use std::future::Future;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::net::TcpListener;

use self::conn::{event_frame, serve};
use self::hub::{Counters, Hub};
use crate::load::data_json;
use crate::procfs;

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

/// What a raw server did between its start and its stop: the figures it
/// prints, returned so tests can check them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RawCounts {
    /// Publications (HTTP and timer).
    pub publications: u64,
    /// Write (or vectored write) calls.
    pub writes: u64,
    /// Frames written whole.
    pub frames: u64,
    /// Writes that would have blocked, or wrote part: their bytes dropped.
    pub would_block: u64,
    /// Sockets dropped after a write error.
    pub dead: u64,
    /// Subscribed sockets at the stop.
    pub subscribers: u64,
    /// This process's CPU time while serving, in seconds.
    pub cpu_seconds: f64,
}

/// A bound raw server, not yet serving. Exists so a caller can learn the
/// port (bind to port 0) before the server runs, as tests do; [`run`] is
/// the CLI around it.
pub struct RawServer {
    listener: TcpListener,
    hub: Arc<Hub>,
    args: RawArgs,
}

impl RawServer {
    /// Binds `args.listen`.
    pub async fn bind(args: RawArgs) -> std::io::Result<RawServer> {
        let listener = TcpListener::bind(args.listen).await?;
        let hub = Arc::new(Hub {
            socks: Mutex::new(Vec::new()),
            pending: Mutex::new(Vec::new()),
            batch: args.writev_batch.max(1),
            threads: args.threads.max(1),
            c: Counters::default(),
        });
        Ok(RawServer {
            listener,
            hub,
            args,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` completes, then drops every socket and returns
    /// what it did. Needs a multi-threaded runtime (writes run in
    /// `block_in_place`).
    pub async fn run_until(self, stop: impl Future<Output = ()>) -> RawCounts {
        let RawServer {
            listener,
            hub,
            args,
        } = self;
        let cpu0 = procfs::cpu_seconds(std::process::id()).unwrap_or(0.0);
        let mut tasks = tokio::task::JoinSet::new();
        {
            let hub = hub.clone();
            tasks.spawn(async move {
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
            tasks.spawn(async move {
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
            tasks.spawn(async move {
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
        stop.await;
        tasks.abort_all();
        let cpu = procfs::cpu_seconds(std::process::id()).unwrap_or(0.0) - cpu0;
        let subscribers = {
            let mut socks = hub.socks.lock().unwrap_or_else(|e| e.into_inner());
            let n = socks.len() as u64;
            socks.clear();
            n
        };
        let c = &hub.c;
        RawCounts {
            publications: c.publishes.load(Relaxed),
            writes: c.writes.load(Relaxed),
            frames: c.frames.load(Relaxed),
            would_block: c.would_block.load(Relaxed),
            dead: c.dead.load(Relaxed),
            subscribers,
            cpu_seconds: cpu,
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
    rt.block_on(async move {
        let listen = args.listen;
        let server = match RawServer::bind(args).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("raw-server: bind {listen}: {e}");
                return ExitCode::from(2);
            }
        };
        eprintln!(
            "raw-server {} listening on {} (writev batch {}, {} thread(s))",
            std::process::id(),
            server.local_addr().map_or(listen, |a| a),
            server.hub.batch,
            server.hub.threads
        );
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("raw-server: SIGTERM handler: {e}");
                return ExitCode::from(2);
            }
        };
        let c = server
            .run_until(async move {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            })
            .await;
        println!(
            "raw-server: {} publications, {} writes, {} frames written, {} would-block, {} dead sockets; \
             CPU {:.2} s = {:.2} us per frame written",
            c.publications,
            c.writes,
            c.frames,
            c.would_block,
            c.dead,
            c.cpu_seconds,
            if c.frames > 0 { c.cpu_seconds * 1e6 / c.frames as f64 } else { 0.0 }
        );
        ExitCode::SUCCESS
    })
}
