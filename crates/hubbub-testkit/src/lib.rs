//! What the application crates' test suites share (a dev-dependency only):
//! a node's configuration on a free loopback port, the node served until
//! the test lets go of it, and a WebSocket client's few helpers. Each
//! suite keeps its own domain helpers on top.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hubbub_server::{Config, Node, Server, Sources};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A client's WebSocket.
pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The longest any awaited message or condition may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// A configuration listening on `127.0.0.1:0`, with `overrides` (whole
/// keys, TOML values) on top.
pub fn config(overrides: &[(&str, &str)]) -> Config {
    let mut o: Vec<(String, String)> = vec![("server.listen".into(), "\"127.0.0.1:0\"".into())];
    o.extend(
        overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    Config::load(&Sources {
        overrides: o,
        ..Sources::default()
    })
    .expect("config")
}

/// A node being served; dropping it starts the shutdown.
pub struct Served {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

/// Binds `node` on its configured address and serves it in a task.
pub async fn serve(node: Node) -> Served {
    let server = Server::bind_node(node).await.expect("bind");
    let addr = server.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let done = tokio::spawn(async move {
        let _ = server
            .run_until(async {
                let _ = rx.await;
            })
            .await;
    });
    Served {
        addr,
        stop: Some(tx),
        done: Some(done),
    }
}

impl Served {
    /// Starts the shutdown (the drain delay first, if configured).
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }

    /// Starts the shutdown and waits, within [`WAIT`], until the server
    /// has stopped; whether it did in time.
    pub async fn stopped(&mut self) -> bool {
        self.stop();
        match self.done.take() {
            Some(d) => matches!(tokio::time::timeout(WAIT, d).await, Ok(Ok(()))),
            None => true,
        }
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A WebSocket to `ws://<addr>/ws<query>`, past its `connected` message.
pub async fn connect(addr: SocketAddr, query: &str) -> Ws {
    let url = format!("ws://{addr}/ws{query}");
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let first = recv(&mut ws).await;
    assert_eq!(first["type"], "connected", "{first}");
    ws
}

/// The next JSON message, within [`WAIT`]; WebSocket pings and pongs are
/// passed over, any other frame fails the test.
pub async fn recv(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("a message in time")
            .expect("open")
            .expect("no error");
        match msg {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Sends `v` as a text frame.
pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}
