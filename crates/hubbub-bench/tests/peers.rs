//! Smoke tests of the bench's protocol drivers against the real peers they
//! were written for: `--protocol socketio` against the Socket.IO 4 peer
//! (`bench/peers/socketio.js`) and `--protocol pusher` against Sockudo,
//! each with a small fan-out and a two-rate sweep. Counts only (every
//! subscriber established, every accepted publication delivered to each,
//! nothing failed), no timing.
//!
//! The peers live outside the repository (`bench/peers/install.sh node
//! sockudo`, into `$BENCH_PEERS_DIR`, default `$HOME/.cache/hubbub-peers`)
//! and are started with `bench/peers/start.sh NAME PORT`. A peer that is
//! not installed skips its test with a loud `SKIPPED:` line, except under
//! `CI=true`, where it fails: `.ci/run` installs them.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hubbub_bench::load::{
    run_in_process, run_sweep_in_process, Kind, LoadArgs, LoadReport, Protocol, SweepArgs,
};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn peers_dir() -> PathBuf {
    match std::env::var_os("BENCH_PEERS_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/hubbub-peers")
        }
    }
}

/// True when the peer is missing (`reason` is why) and the test should
/// skip. Under CI a missing peer fails the test instead; elsewhere the
/// skip is announced with a line nobody can miss.
fn missing(peer: &str, reason: Option<String>) -> bool {
    let Some(reason) = reason else { return false };
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{peer} peer required under CI but {reason}: run bench/peers/install.sh");
    }
    // Straight to fd 2, not eprintln!: the test harness would swallow
    // the line of a passing test.
    let _ = writeln!(
        std::io::stderr(),
        "\n!!! SKIPPED: {peer} peer smoke test: {reason} (bench/peers/install.sh installs it) !!!\n"
    );
    true
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Whether something accepts on `port` and, with `path`, answers
/// `GET path` with 200.
fn answers(port: u16, path: Option<&str>) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let Some(path) = path else {
        return true;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    let mut head = [0u8; 12];
    s.write_all(request.as_bytes()).is_ok()
        && s.read_exact(&mut head).is_ok()
        && head.starts_with(b"HTTP/1.1 200")
}

/// A peer started with `bench/peers/start.sh NAME PORT`, killed on drop.
struct Peer {
    child: Child,
    log: PathBuf,
}

impl Peer {
    /// Starts the peer and waits until it answers: a TCP accept, and where
    /// `ready` names an HTTP path, a 200 from it (a server may accept before
    /// it serves).
    fn start(name: &str, port: u16, env: &[(&str, &str)], ready: Option<&str>) -> Peer {
        let log = std::env::temp_dir().join(format!(
            "hubbub-bench-peer-{name}-{}-{port}.log",
            std::process::id()
        ));
        let out = std::fs::File::create(&log).expect("peer log");
        let child = Command::new(repo_root().join("bench/peers/start.sh"))
            .args([name, &port.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("peer log"))
            .stderr(out)
            .spawn()
            .expect("starting bench/peers/start.sh");
        let mut peer = Peer { child, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !answers(port, ready) {
            if let Ok(Some(s)) = peer.child.try_wait() {
                panic!(
                    "{name} exited with {s} before listening:\n{}",
                    peer.log_text()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{name} not answering on {port} after 20 s:\n{}",
                peer.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        peer
    }

    fn log_text(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn small(args: &mut LoadArgs, protocol: Protocol, api: String) {
    args.protocol = protocol;
    args.api_urls = vec![api];
    args.subscribers = Some(20);
    args.workers = Some(2);
    args.warmup = 0.2;
    args.duration = 0.5;
    args.drain = 5.0;
    args.handshake_timeout = 10.0;
}

fn assert_delivered(r: &LoadReport, log: &str) {
    assert!(r.worker_errors.is_empty(), "{r:#?}\n{log}");
    assert_eq!(r.subscribed, 20, "{r:#?}\n{log}");
    assert!(r.subscribe_failures.is_empty(), "{r:#?}\n{log}");
    assert_eq!(r.dropped, 0, "{r:#?}\n{log}");
    assert_eq!(r.unparsed_events, 0, "{r:#?}");
    for w in &r.windows {
        assert!(w.publishes_accepted > 0, "{r:#?}\n{log}");
        assert_eq!(w.publishes_accepted, w.publishes_sent, "{r:#?}\n{log}");
        assert!(w.publish_failures.is_empty(), "{r:#?}\n{log}");
        assert_eq!(w.expected_deliveries, w.publishes_accepted * 20, "{r:#?}");
        assert_eq!(
            w.received_deliveries, w.expected_deliveries,
            "{r:#?}\n{log}"
        );
        assert_eq!(w.latency.count, w.received_deliveries);
    }
    assert!(r.clean(), "{r:#?}\n{log}");
}

/// A fan-out, then a sweep over two rates, against a peer at `url`.
async fn fanout_and_sweep(peer: &Peer, protocol: Protocol, url: String, api: String) {
    let mut args = LoadArgs::new(url.clone());
    small(&mut args, protocol, api.clone());
    args.rate = Some(40.0);
    let r = run_in_process(Kind::Fanout, args)
        .await
        .expect("fanout runs");
    assert_delivered(&r, &peer.log_text());

    let mut sweep = SweepArgs::new(url, vec![20.0, 40.0]);
    small(&mut sweep.load, protocol, api);
    sweep.load.duration = 0.3;
    sweep.keep_going = true;
    let s = run_sweep_in_process(sweep).await.expect("sweep runs");
    assert!(s.clean(), "{s:#?}");
    assert_eq!(s.subscribed, 20, "{s:#?}");
    assert_eq!(s.rates.len(), 2, "{s:#?}");
    for x in &s.rates {
        assert_eq!(x.publish_failures, 0, "{x:#?}\n{}", peer.log_text());
        assert!(x.expected_deliveries > 0, "{x:#?}");
        assert_eq!(x.received_deliveries, x.expected_deliveries, "{x:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_driver_against_socketio_4() {
    let modules = peers_dir().join("node/node_modules/socket.io");
    let node = Command::new("node").arg("--version").output().is_ok();
    let reason = if !node {
        Some("node is not on PATH".to_owned())
    } else if !modules.is_dir() {
        Some(format!("{} is missing", modules.display()))
    } else {
        None
    };
    if missing("Socket.IO 4", reason) {
        return;
    }
    let port = free_port();
    let peer = Peer::start("socketio", port, &[], None);
    fanout_and_sweep(
        &peer,
        Protocol::Socketio,
        format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket"),
        format!("http://127.0.0.1:{port}"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pusher_driver_against_sockudo() {
    let bin = peers_dir().join("sockudo/bin/sockudo");
    let reason = (!bin.is_file()).then(|| format!("{} is missing", bin.display()));
    if missing("Sockudo", reason) {
        return;
    }
    let port = free_port();
    // No metrics listener: its fixed port would clash with another Sockudo.
    let peer = Peer::start(
        "sockudo",
        port,
        &[("METRICS_ENABLED", "false")],
        Some("/up/bench-app"),
    );
    fanout_and_sweep(
        &peer,
        Protocol::Pusher,
        format!("ws://127.0.0.1:{port}/app/bench-key?protocol=7&client=hubbub-bench&version=1"),
        format!("http://127.0.0.1:{port}"),
    )
    .await;
}
