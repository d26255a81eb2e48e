//! A real hub in the test process, on a port of its own, for the bench's
//! smoke tests: the scenarios are measured against the thing they measure.

use std::net::SocketAddr;
use std::sync::Arc;

use hubbub_server::internals::Shared;
use hubbub_server::{Config, Server, Sources};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A hub serving on 127.0.0.1 at a free port until [`TestHub::stop`].
pub struct TestHub {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state, for tests that read the hub's own counts.
    #[allow(dead_code)] // not every test file reads it
    pub shared: Arc<Shared>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl TestHub {
    /// Binds a hub with the default configuration and runs it.
    pub async fn start() -> TestHub {
        let config = Config::load(&Sources {
            overrides: vec![("server.listen".into(), "127.0.0.1:0".into())],
            ..Default::default()
        })
        .expect("config");
        let server = Server::bind(config).await.expect("bind");
        let addr = server.local_addr().unwrap();
        let shared = server.shared();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(async {
            let _ = stopped.await;
        }));
        TestHub {
            addr,
            shared,
            stop,
            task,
        }
    }

    /// The WebSocket URL of `/ws`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }

    /// Shuts the hub down and waits for it to finish cleanly.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}
