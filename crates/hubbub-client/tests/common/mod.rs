//! A hub in this process on 127.0.0.1:0 (or a given port), with graph jobs
//! and one RPC method installed, and waiting helpers.
#![allow(dead_code, missing_docs)]

pub mod proc_hub;

use std::net::SocketAddr;
use std::time::Duration;

use hubbub_client::{Client, ClientEvent, SubEvent, Subscription};
use hubbub_server::rpc::{RpcCall, RpcError};
use hubbub_server::{Config, Node, Server, Sources};
use tokio::sync::broadcast;

pub const WAIT: Duration = Duration::from_secs(10);

/// A running hub; dropping it shuts it down.
pub struct Hub {
    pub addr: SocketAddr,
    pub node: Node,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Hub {
    pub async fn start(overrides: &[(&str, &str)]) -> Hub {
        Self::start_on("127.0.0.1:0", overrides).await
    }

    pub async fn start_on(listen: &str, overrides: &[(&str, &str)]) -> Hub {
        let mut o: Vec<(String, String)> = vec![
            ("server.listen".into(), format!("\"{listen}\"")),
            ("channels.publish".into(), "true".into()),
        ];
        o.extend(
            overrides
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let config = Config::load(&Sources {
            overrides: o,
            ..Sources::default()
        })
        .expect("config");
        let node = Node::builder(config).build().expect("node");
        let jobs = hubbub_graph::JobsConfig::from_config(node.config()).expect("jobs config");
        hubbub_graph::install(&node, jobs);
        node.rpc("math.double", |call: RpcCall| async move {
            let n: i64 = call.data_as()?;
            Ok::<_, RpcError>(serde_json::json!(n * 2))
        });
        node.rpc("slow", |_call: RpcCall| async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok::<_, RpcError>(serde_json::json!(null))
        });
        let server = Server::bind_node(node.clone()).await.expect("bind");
        let addr = server.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(server.run_until(async {
            let _ = rx.await;
        }));
        Hub {
            addr,
            node,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub fn url(&self, query: &str) -> String {
        format!("ws://{}/ws{query}", self.addr)
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Shuts down and waits until the port is free again.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(WAIT, t).await;
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A connected client (anonymous, `?user_id=` when given).
pub async fn client(hub: &Hub, user: Option<&str>) -> Client {
    let q = user.map(|u| format!("?user_id={u}")).unwrap_or_default();
    let c = Client::connect(hub.url(&q));
    c.wait_connected(WAIT).await.expect("connected");
    c
}

/// The next state event matching `f`, within [`WAIT`].
pub async fn next_state(
    rx: &mut broadcast::Receiver<ClientEvent>,
    f: impl Fn(&ClientEvent) -> bool,
) -> ClientEvent {
    tokio::time::timeout(WAIT, async {
        loop {
            match rx.recv().await {
                Ok(e) if f(&e) => return e,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("events ended: {e}"),
            }
        }
    })
    .await
    .expect("state event in time")
}

/// The next item of a subscription, within [`WAIT`].
pub async fn next(sub: &mut Subscription) -> SubEvent {
    tokio::time::timeout(WAIT, sub.recv())
        .await
        .expect("item in time")
        .expect("subscription open")
}

/// The next event (skipping recovery notes), within [`WAIT`].
pub async fn next_event(sub: &mut Subscription) -> hubbub_client::EventMessage {
    loop {
        if let SubEvent::Event(e) = next(sub).await {
            return e;
        }
    }
}
