//! A WebSocket client and HTTP calls for the cluster tests, with every
//! wait bounded by a deadline.
#![allow(dead_code)] // each test file uses a part

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const DEADLINE: Duration = Duration::from_secs(20);

pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Messages read while waiting for another.
    pub seen: Vec<Value>,
}

pub enum Next {
    Message(Value),
    /// The socket closed (close code, or none when it was cut).
    Closed(Option<u16>),
}

impl Client {
    /// Connects to `addr` as `user` (development mode's `?user_id=`).
    pub async fn connect(addr: &str, user: &str) -> Result<Client, String> {
        let url = format!("ws://{addr}/ws?user_id={user}");
        let (ws, _) = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(url))
            .await
            .map_err(|_| "connect timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let mut c = Client {
            ws,
            seen: Vec::new(),
        };
        match c.next().await {
            Next::Message(m) if m["type"] == "connected" => Ok(c),
            Next::Message(m) => Err(format!("expected connected, got {m}")),
            Next::Closed(code) => Err(format!("closed at once ({code:?})")),
        }
    }

    pub async fn send(&mut self, v: Value) {
        let _ = self.ws.send(Message::Text(v.to_string().into())).await;
    }

    /// The next message, or how the socket ended.
    pub async fn next(&mut self) -> Next {
        loop {
            match tokio::time::timeout(DEADLINE, self.ws.next()).await {
                Err(_) => panic!("no message within {DEADLINE:?}"),
                Ok(None) | Ok(Some(Err(_))) => return Next::Closed(None),
                Ok(Some(Ok(Message::Text(t)))) => {
                    return Next::Message(serde_json::from_str(&t).expect("JSON"))
                }
                Ok(Some(Ok(Message::Close(f)))) => {
                    return Next::Closed(f.map(|f| u16::from(f.code)))
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }

    /// Sends `cmd` with id `id` and waits for its reply (events read
    /// meanwhile are kept in `seen`).
    pub async fn call(&mut self, mut cmd: Value, id: &str) -> Value {
        cmd["id"] = json!(id);
        self.send(cmd).await;
        loop {
            match self.next().await {
                Next::Message(m) if m["correlation_id"] == id => return m,
                Next::Message(m) => self.seen.push(m),
                Next::Closed(c) => panic!("closed ({c:?}) while waiting for {id}"),
            }
        }
    }
}

/// POSTs JSON to a node's API; the status and the answer.
pub async fn post(addr: &str, path: &str, body: Value) -> Result<(u16, Value), String> {
    let client = reqwest::Client::new();
    answer(client.post(format!("http://{addr}{path}")).json(&body)).await
}

/// GETs from a node's API; the status and the answer.
pub async fn get(addr: &str, path: &str) -> Result<(u16, Value), String> {
    answer(reqwest::Client::new().get(format!("http://{addr}{path}"))).await
}

/// DELETEs through a node's API; the status and the answer.
pub async fn delete(addr: &str, path: &str) -> Result<(u16, Value), String> {
    answer(reqwest::Client::new().delete(format!("http://{addr}{path}"))).await
}

async fn answer(request: reqwest::RequestBuilder) -> Result<(u16, Value), String> {
    let r = request
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

/// Waits until `f` holds, polling; panics with `what` past the deadline.
pub async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + DEADLINE;
    while !f().await {
        assert!(tokio::time::Instant::now() < end, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
