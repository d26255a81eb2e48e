//! The README's commands and examples, run as written against hubs this
//! test starts, so that what a new user copies keeps working.
//!
//! Each tested block follows an `<!-- example: NAME -->` line in README.md.
//! In shell blocks, lines starting with `$ ` are commands (with
//! `cargo run --release --` standing for the binary under test) and the
//! lines after them are the output shown; the test compares that output's
//! shape (the words before any parenthesis, JSON keys, the values that do
//! not change from run to run). Every hub listens on a free port, which the
//! commands reach through `HUBBUB_SERVER__LISTEN` and `HUBBUB_URL`, so the
//! commands themselves stay exactly as printed. The bench's commands are
//! not run here: they need release builds and the peers, and
//! crates/hubbub-bench/tests runs every scenario.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

const README: &str = include_str!("../../../README.md");

/// The body of the fenced block after `<!-- example: NAME -->`.
fn example(name: &str) -> String {
    let marker = format!("<!-- example: {name} -->");
    let at = README
        .find(&marker)
        .unwrap_or_else(|| panic!("README.md has no example {name:?}"));
    let rest = &README[at + marker.len()..];
    let open = rest.find("```").expect("a fence after the marker");
    let body = &rest[open..];
    let body = &body[body.find('\n').expect("fence line") + 1..];
    body[..body.find("```").expect("a closing fence")].to_string()
}

/// `(command, output lines)` for each `$ ` line of a shell example.
fn commands(block: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in block.lines() {
        match line.strip_prefix("$ ") {
            Some(cmd) => out.push((cmd.to_string(), Vec::new())),
            None => out
                .last_mut()
                .expect("output before any command")
                .1
                .push(line.to_string()),
        }
    }
    out
}

/// Splits a command line as a POSIX shell would for the forms the README
/// uses: words, '…' and "…" quoting, and `$VAR` inside double quotes.
fn words(line: &str, env: &BTreeMap<String, String>) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '$' => {
                            let mut name = String::new();
                            while let Some(&n) = chars.peek() {
                                if !(n.is_ascii_alphanumeric() || n == '_') {
                                    break;
                                }
                                name.push(n);
                                chars.next();
                            }
                            cur.push_str(env.get(&name).map_or("", String::as_str));
                        }
                        c => cur.push(c),
                    }
                }
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// Where the commands of one example run: their environment, and the
/// processes they left running (killed when it is dropped).
struct Session {
    env: BTreeMap<String, String>,
    addr: String,
    running: Vec<Proc>,
}

impl Session {
    fn new() -> Session {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut env = BTreeMap::new();
        env.insert("HUBBUB_SERVER__LISTEN".to_string(), addr.clone());
        env.insert("HUBBUB_URL".to_string(), format!("http://{addr}"));
        Session {
            env,
            addr,
            running: Vec::new(),
        }
    }

    /// The binary's arguments for a README command.
    fn argv(&self, line: &str) -> Vec<String> {
        let w = words(line, &self.env);
        assert_eq!(
            w.get(..3),
            Some(&["cargo".to_string(), "run".into(), "--release".into()][..]),
            "a README command that is not `cargo run --release -- …`: {line}"
        );
        assert_eq!(w.get(3).map(String::as_str), Some("--"), "{line}");
        w[4..].to_vec()
    }

    fn command(&self, argv: &[String]) -> std::process::Command {
        let args: Vec<&str> = argv.iter().map(String::as_str).collect();
        let mut cmd = hubbub(&args);
        cmd.envs(&self.env);
        cmd
    }

    /// Runs one README command; returns what it printed (stdout for
    /// commands that end, stderr for a `subscribe` left running).
    fn run(&mut self, line: &str) -> Vec<String> {
        if let Some(assign) = line.strip_prefix("export ") {
            let (k, v) = assign.split_once('=').expect("export K=V");
            self.env.insert(k.to_string(), v.to_string());
            return Vec::new();
        }
        if let Some((var, rest)) = line.split_once("=$(") {
            let inner = rest.strip_suffix(')').expect("K=$(…)");
            let out = self.finish(inner);
            self.env
                .insert(var.to_string(), out.join("\n").trim().to_string());
            return Vec::new();
        }
        let argv = self.argv(line);
        match argv[0].as_str() {
            "serve" => {
                let p = Proc::spawn("serve", self.command(&argv));
                p.wait_line(false, |l| l.contains("listening on "));
                self.running.push(p);
                Vec::new()
            }
            "subscribe" => {
                let p = Proc::spawn("subscribe", self.command(&argv));
                p.wait_line(true, |l| l.contains("subscribed to"));
                let lines = p.stderr().lines().map(String::from).collect();
                self.running.push(p);
                lines
            }
            _ => self.finish(line),
        }
    }

    /// Runs a command to its end (exit 0); its stdout lines.
    fn finish(&self, line: &str) -> Vec<String> {
        let mut p = Proc::spawn("command", self.command(&self.argv(line)));
        p.expect_exit(0);
        p.stdout()
    }

    /// The stdout of the first running process named `name` (a subscriber).
    fn printed_by(&self, name: &str, at_least: usize) -> Vec<String> {
        let start = std::time::Instant::now();
        loop {
            let lines = self
                .running
                .iter()
                .find(|p| p.dump().starts_with(name))
                .map(|p| p.stdout())
                .unwrap_or_default();
            if lines.len() >= at_least {
                return lines;
            }
            assert!(start.elapsed() < WAIT, "{name} printed {lines:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
}

/// Values that differ from run to run: compared by presence only.
const VARYING: [&str; 4] = ["epoch", "message_id", "timestamp", "connection_id"];

/// The shown JSON and the real one have the same keys, and the same values
/// wherever a value does not vary between runs.
fn same_shape(shown: &str, real: &str) {
    let shown: Value = serde_json::from_str(shown).unwrap_or_else(|e| panic!("{shown}: {e}"));
    let real: Value = serde_json::from_str(real).unwrap_or_else(|e| panic!("{real}: {e}"));
    let (Some(s), Some(r)) = (shown.as_object(), real.as_object()) else {
        panic!("not objects: {shown} / {real}");
    };
    let keys = |m: &serde_json::Map<String, Value>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        keys(s),
        keys(r),
        "README shows {shown}, the hub says {real}"
    );
    for (k, v) in s {
        if !VARYING.contains(&k.as_str()) {
            assert_eq!(v, &r[k], "{k}: README shows {shown}, the hub says {real}");
        }
    }
}

/// The shown stderr line and the real one agree up to the first `(`.
fn same_line(shown: &str, real: &str) {
    let head = |l: &str| l.split('(').next().unwrap_or("").trim().to_string();
    assert_eq!(
        head(shown),
        head(real),
        "README shows {shown:?}, got {real:?}"
    );
}

fn shown_lines_match(shown: &[String], real: &[String]) {
    assert!(
        real.len() >= shown.len(),
        "README shows {shown:?}, got {real:?}"
    );
    for (s, r) in shown.iter().zip(real) {
        if s.starts_with('{') {
            same_shape(s, r);
        } else {
            same_line(s, r);
        }
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(url: &str) -> Ws {
    let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
        .await
        .expect("connect in time")
        .expect("connect");
    ws
}

/// Sends one README command line and returns the reply that carries its
/// `id` as `correlation_id`.
async fn ask(ws: &mut Ws, line: &str) -> Value {
    let cmd: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    ws.send(Message::text(line)).await.unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no reply to {line}"))
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v.get("correlation_id") == cmd.get("id") && cmd.get("id").is_some() {
                return v;
            }
            if cmd.get("id").is_none() && v["type"] != "connected" {
                return v;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn quick_start_commands_and_websocket_examples_work_as_written() {
    let mut s = Session::new();
    s.run("cargo run --release -- serve");

    let [(cmd, shown)] = &commands(&example("quickstart-subscribe"))[..] else {
        panic!("one command in quickstart-subscribe");
    };
    let said = s.run(cmd);
    shown_lines_match(shown, &said);

    let [(cmd, shown)] = &commands(&example("quickstart-publish"))[..] else {
        panic!("one command in quickstart-publish");
    };
    let printed = s.run(cmd);
    shown_lines_match(shown, &printed);

    let event = s.printed_by("subscribe", 1);
    same_shape(example("quickstart-event").trim(), &event[0]);

    let mut ws = ws_connect(&s.ws_url()).await;
    for line in example("ws-commands")
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let reply = ask(&mut ws, line).await;
        assert_ne!(reply["type"], "error", "{line} answered {reply}");
    }
    // As the README says: client publishing is off by default.
    let line = example("client-publish");
    let reply = ask(&mut ws, line.trim()).await;
    assert_eq!(
        (reply["type"].as_str(), reply["code"].as_str()),
        (Some("error"), Some("forbidden"))
    );
    // Recovery from a position the hub never gave: answered, not recovered.
    let reply = ask(&mut ws, example("recovery-subscribe").trim()).await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    assert_eq!(reply["channels"][0]["recovered"], false, "{reply}");
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_publish_where_the_configuration_shown_allows_it() {
    let mut s = Session::new();
    let [(cmd, _)] = &commands(&example("client-publish-serve"))[..] else {
        panic!("one command in client-publish-serve");
    };
    s.run(cmd);
    let mut ws = ws_connect(&s.ws_url()).await;
    let reply = ask(&mut ws, example("client-publish").trim()).await;
    assert_eq!(reply["type"], "published", "{reply}");
    assert_eq!(reply["channel"], "chat:lobby", "{reply}");
    assert_eq!(reply["offset"], 1, "{reply}");
}

#[test]
fn the_token_walkthrough_works_as_written() {
    let mut s = Session::new();
    let steps = commands(&example("tokens"));
    let mut last = Vec::new();
    for (cmd, shown) in &steps {
        let said = s.run(cmd);
        shown_lines_match(shown, &said);
        last = said;
    }
    assert!(
        last.iter().any(|l| l.contains("connected as alice")),
        "{last:?}"
    );
}

#[test]
fn the_configuration_example_starts_a_hub() {
    let dir = std::env::temp_dir().join(format!("hubbub-readme-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("example.toml");
    std::fs::write(&file, example("config-toml")).unwrap();
    // `listen` from the file is replaced by the session's free port (the
    // environment beats the file), everything else is as shown.
    let s = Session::new();
    let argv = [
        "serve".to_string(),
        "--config".into(),
        file.display().to_string(),
    ];
    let p = Proc::spawn("serve", s.command(&argv));
    let banner = p.wait_line(false, |l| l.contains("listening on "));
    assert!(banner.contains("production mode"), "{banner}");
    let mut health = std::net::TcpStream::connect(&s.addr).unwrap();
    use std::io::{Read, Write};
    health
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    health.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(p);
}
