//! A hub as a separate process (`hubbub serve`), for scenarios that kill
//! and restart it on the same port.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The hub binary: `$HUBBUB_BIN`, else built with cargo in this workspace.
pub fn hub_binary() -> PathBuf {
    if let Ok(p) = std::env::var("HUBBUB_BIN") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let status = Command::new(env!("CARGO"))
        .args(["build", "-p", "hubbub", "--bin", "hubbub"])
        .current_dir(&root)
        .status()
        .expect("cargo build of the hub");
    assert!(status.success(), "building the hub failed");
    root.join("target/debug/hubbub")
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A hub process on a fixed port.
pub struct ProcHub {
    pub bin: PathBuf,
    pub port: u16,
    pub settings: Vec<(String, String)>,
    child: Option<Child>,
}

impl ProcHub {
    pub fn new(bin: PathBuf, settings: Vec<(String, String)>) -> Self {
        ProcHub {
            bin,
            port: free_port(),
            settings,
            child: None,
        }
    }

    /// Starts it and waits for "listening on" (retrying the bind for 5 s).
    pub fn start(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut cmd = Command::new(&self.bin);
            cmd.arg("serve")
                .arg("--listen")
                .arg(format!("127.0.0.1:{}", self.port));
            for (k, v) in &self.settings {
                cmd.arg("--set").arg(format!("{k}={v}"));
            }
            for (k, _) in std::env::vars() {
                if k.starts_with("HUBBUB_") {
                    cmd.env_remove(k);
                }
            }
            let mut child = cmd
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| format!("spawn {}: {e}", self.bin.display()))?;
            let out = child.stdout.take().unwrap();
            let err = child.stderr.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            let tx2 = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if line.contains("listening on") {
                        let _ = tx.send(true);
                    }
                }
                let _ = tx.send(false);
            });
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    if line.contains("listening on") {
                        let _ = tx2.send(true);
                    } else if std::env::var_os("HUB_LOG").is_some() {
                        eprintln!("hub: {line}");
                    }
                }
            });
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(true) => {
                    self.child = Some(child);
                    return Ok(());
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    if Instant::now() > deadline {
                        return Err("the hub did not start".into());
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// SIGKILL, and wait for the exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for ProcHub {
    fn drop(&mut self) {
        self.stop();
    }
}
