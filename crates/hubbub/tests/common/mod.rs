//! Helpers shared by the binary's tests: the `hubbub` command without the
//! caller's environment, child processes that are killed on drop, and a
//! hub on a free port.
#![allow(dead_code)] // each test file uses a part

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Generous: a loaded CI machine may be slow to start a process.
pub const WAIT: Duration = Duration::from_secs(20);

/// The binary with no `HUBBUB_*` variables from the caller's environment.
pub fn hubbub(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hubbub"));
    c.args(args);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("HUBBUB_") {
            c.env_remove(k);
        }
    }
    c.env_remove("RUST_LOG");
    c
}

pub type Lines = Arc<Mutex<Vec<String>>>;

pub fn collect(pipe: impl Read + Send + 'static) -> Lines {
    let lines = Lines::default();
    let sink = lines.clone();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

/// A child with its stdout and stderr collected by line; killed on drop.
pub struct Proc {
    name: String,
    child: Child,
    out: Lines,
    err: Lines,
    status: Option<ExitStatus>,
}

impl Proc {
    pub fn spawn(name: &str, cmd: Command) -> Proc {
        Proc::spawn_with_input(name, cmd, None)
    }

    pub fn spawn_with_input(name: &str, mut cmd: Command, input: Option<&str>) -> Proc {
        cmd.stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn hubbub");
        if let Some(text) = input {
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(text.as_bytes()).unwrap();
        }
        let out = collect(child.stdout.take().unwrap());
        let err = collect(child.stderr.take().unwrap());
        Proc {
            name: name.to_owned(),
            child,
            out,
            err,
            status: None,
        }
    }

    pub fn stdout(&self) -> Vec<String> {
        self.out.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.err.lock().unwrap().join("\n")
    }

    pub fn dump(&self) -> String {
        format!(
            "{} stdout:\n{}\n{} stderr:\n{}",
            self.name,
            self.stdout().join("\n"),
            self.name,
            self.stderr()
        )
    }

    /// The first line of stdout (or stderr) matching `pred`.
    pub fn wait_line(&self, stderr: bool, pred: impl Fn(&str) -> bool) -> String {
        let lines = if stderr { &self.err } else { &self.out };
        let start = Instant::now();
        loop {
            if let Some(l) = lines.lock().unwrap().iter().find(|l| pred(l)) {
                return l.clone();
            }
            assert!(
                start.elapsed() < WAIT,
                "line not seen in time\n{}",
                self.dump()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                self.status = Some(s);
                // Let the reader threads take in the last lines.
                thread::sleep(Duration::from_millis(50));
                return s;
            }
            assert!(
                start.elapsed() < within,
                "{} did not exit within {within:?}\n{}",
                self.name,
                self.dump()
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits for the exit and checks its code.
    pub fn expect_exit(&mut self, code: i32) {
        let s = self.wait_exit(WAIT);
        assert_eq!(s.code(), Some(code), "{}", self.dump());
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{sig}"), &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A running `hubbub serve` on a free port.
pub struct Hub {
    pub proc: Proc,
    pub addr: String,
}

impl Hub {
    pub fn start(args: &[&str], env: &[(&str, &str)]) -> Hub {
        let mut cmd = hubbub(&["serve", "--listen", "127.0.0.1:0"]);
        cmd.args(args).envs(env.iter().copied());
        let proc = Proc::spawn("serve", cmd);
        let line = proc.wait_line(false, |l| l.contains("listening on "));
        let addr = line
            .split("listening on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap()
            .to_owned();
        assert!(!addr.ends_with(":0"), "{line}");
        Hub { proc, addr }
    }

    pub fn ws(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    pub fn http(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `connected` message a new client gets, via `subscribe --all --count 0`.
    pub fn connected(&self) -> Value {
        let mut p = Proc::spawn(
            "probe",
            hubbub(&[
                "subscribe",
                "probe",
                "--all",
                "--count",
                "0",
                "--url",
                &self.ws(),
            ]),
        );
        p.expect_exit(0);
        let first = p.stdout().first().cloned().expect("a line");
        let v: Value = serde_json::from_str(&first).unwrap();
        assert_eq!(v["type"], "connected", "{first}");
        v
    }

    /// Publishes through `hubbub publish` and returns its JSON answer.
    pub fn publish(&self, channel: &str, data: &str) -> Value {
        let mut p = Proc::spawn(
            "publish",
            hubbub(&["publish", channel, data, "--url", &self.http()]),
        );
        p.expect_exit(0);
        serde_json::from_str(&p.stdout().join("\n")).unwrap()
    }
}

/// Runs a short command to its end: (exit code, stdout, stderr).
pub fn run(cmd: Command, input: Option<&str>) -> (i32, String, String) {
    let mut p = Proc::spawn_with_input("command", cmd, input);
    let s = p.wait_exit(WAIT);
    (s.code().unwrap_or(-1), p.stdout().join("\n"), p.stderr())
}
