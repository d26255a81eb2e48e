//! One live connection: reading frames, routing replies and events,
//! restoring subscriptions, flushing the offline queue, pinging and
//! refreshing the token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use hubbub_protocol::codec::encode_command;
use hubbub_protocol::message::{Command, Empty};
use hubbub_protocol::rooms::room_channel;
use hubbub_protocol::{
    decode_server_message, CorrelationId, Encoding, FromServer, ServerInbound, ServerMessage,
};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as TCloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::chans::{Chan, Membership};
use crate::conn::{handshake_end, Conn, End, Kind, Pending, Request, Then, ToConn};
use crate::events::ClientEvent;
use crate::Error;

/// The socket.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Tx = SplitSink<Ws, Message>;

/// Opens the WebSocket with the encoding's subprotocol and the token as a
/// bearer header.
pub(crate) async fn open(
    url: String,
    token: Option<String>,
    encoding: Encoding,
    timeout: Duration,
) -> Result<Ws, End> {
    let mut req = url
        .as_str()
        .into_client_request()
        .map_err(|e| End::lost(false, format!("bad url {url}: {e}")))?;
    let h = req.headers_mut();
    h.insert(
        "Sec-WebSocket-Protocol",
        encoding.subprotocol().parse().expect("static header"),
    );
    if let Some(t) = token {
        let v = format!("Bearer {t}")
            .parse()
            .map_err(|_| End::lost(false, "token holds characters not allowed in a header"))?;
        h.insert("Authorization", v);
    }
    match tokio::time::timeout(timeout, tokio_tungstenite::connect_async(req)).await {
        Err(_) => Err(End::lost(false, "handshake timed out")),
        Ok(Err(e)) => Err(handshake_end(e)),
        Ok(Ok((ws, _))) => Ok(ws),
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Live-connection state that does not outlive the socket.
pub(crate) struct Live {
    pub(crate) tx: Tx,
    pub(crate) ready: bool,
    pub(crate) last_in: Instant,
    pub(crate) refresh_at: Option<Instant>,
    pub(crate) disconnect: Option<(u16, String, bool)>,
}

impl Conn {
    /// Serves one connection until it ends.
    pub(crate) async fn session(&mut self, ws: Ws) -> End {
        let (tx, mut rx) = ws.split();
        let mut live = Live {
            tx,
            ready: false,
            last_in: Instant::now(),
            refresh_at: None,
            disconnect: None,
        };
        let every = self.cfg.ping_interval;
        let mut ping = tokio::time::interval_at(Instant::now() + every, every);
        loop {
            let refresh = live.refresh_at;
            tokio::select! {
                frame = rx.next() => {
                    let msg = match frame {
                        None => return self.gone(&live, Some(1006), "connection lost"),
                        Some(Err(e)) => return self.gone(&live, Some(1006), &e.to_string()),
                        Some(Ok(m)) => m,
                    };
                    live.last_in = Instant::now();
                    let (bytes, enc) = match &msg {
                        Message::Text(t) => (t.as_bytes(), Encoding::Json),
                        Message::Binary(b) => (&b[..], Encoding::Msgpack),
                        Message::Close(f) => {
                            let f = f.as_ref().map(|f| (u16::from(f.code), f.reason.to_string()));
                            let code = f.as_ref().map_or(1005, |f| f.0);
                            return self.gone(&live, Some(code), f.as_ref().map_or("closed", |f| &f.1));
                        }
                        _ => continue,
                    };
                    match decode_server_message(bytes, enc) {
                        Ok(m) => if let Err(e) = self.inbound(&mut live, m).await {
                            return self.gone(&live, Some(1006), &e);
                        },
                        Err(e) => tracing::warn!("undecodable message from the hub: {}", e.message),
                    }
                }
                cmd = self.rx.recv() => match cmd {
                    None | Some(ToConn::Close) => {
                        let frame = CloseFrame { code: TCloseCode::Normal, reason: "".into() };
                        let _ = tokio::time::timeout(Duration::from_secs(2), live.tx.send(Message::Close(Some(frame)))).await;
                        return End { closing: true, ..End::lost(true, "closed by the application") };
                    }
                    Some(ToConn::Request(r)) if live.ready => {
                        if let Err(e) = self.send_request(&mut live, r).await {
                            return self.gone(&live, Some(1006), &e);
                        }
                    }
                    Some(ToConn::Request(r)) => self.enqueue(r),
                    Some(ToConn::Dropped { channel, sink }) => {
                        if let Err(e) = self.dropped(&mut live, &channel, sink).await {
                            return self.gone(&live, Some(1006), &e);
                        }
                    }
                },
                _ = ping.tick() => {
                    if live.last_in.elapsed() > every * 2 {
                        return self.gone(&live, Some(1006), "no reply to ping");
                    }
                    if live.ready {
                        let id = self.id(Pending::Internal { then: Then::Nothing });
                        if let Err(e) = self.send(&mut live, &Command::Ping(Empty {}), id).await {
                            return self.gone(&live, Some(1006), &e);
                        }
                    }
                }
                _ = tokio::time::sleep_until(refresh.unwrap_or_else(Instant::now)), if refresh.is_some() => {
                    live.refresh_at = None;
                    if let Err(e) = self.refresh(&mut live).await {
                        return self.gone(&live, Some(1006), &e);
                    }
                }
            }
        }
    }

    /// How the connection ended: a `disconnect` message wins over what the
    /// close frame (or its absence) said.
    fn gone(&self, live: &Live, code: Option<u16>, reason: &str) -> End {
        let connected = live.ready;
        match &live.disconnect {
            Some((c, r, re)) => End {
                code: Some(*c),
                reconnect: Some(*re),
                ..End::lost(connected, r.clone())
            },
            None => End {
                code,
                ..End::lost(connected, reason)
            },
        }
    }

    pub(crate) fn id(&mut self, p: Pending) -> i64 {
        self.next_id += 1;
        self.pending.insert(self.next_id, p);
        self.next_id
    }

    pub(crate) async fn send(
        &mut self,
        live: &mut Live,
        cmd: &Command,
        id: i64,
    ) -> Result<(), String> {
        let enc = self.cfg.encoding;
        let bytes = encode_command(cmd, Some(&CorrelationId::Int(id)), enc)
            .map_err(|e| format!("encode: {e}"))?;
        let msg = match enc {
            Encoding::Json => Message::text(String::from_utf8_lossy(&bytes).into_owned()),
            Encoding::Msgpack => Message::binary(bytes),
        };
        live.tx.send(msg).await.map_err(|e| e.to_string())
    }

    /// Sends a caller's command; registers channels first so that no event
    /// following the reply finds nobody to deliver to.
    pub(crate) async fn send_request(&mut self, live: &mut Live, r: Request) -> Result<(), String> {
        if r.reply.is_closed() {
            return Ok(()); // the caller gave up (timeout) while it was queued
        }
        let Request {
            command,
            kind,
            reply,
        } = r;
        let then = match kind {
            Kind::Plain => Then::Nothing,
            Kind::Subscribe {
                channel,
                event_types,
                since,
                sink,
            } => {
                if let Some(c) = self.chans.get_mut(&channel) {
                    // Already delivered here: one more reader, no wire traffic.
                    c.sinks.push(sink);
                    let _ = reply.send(Ok(ServerMessage::Subscribed { channels: vec![] }));
                    return Ok(());
                }
                let m = Membership::Channel { event_types };
                let mut chan = Chan::new(m, sink);
                chan.last = since.clone();
                self.chans.insert(channel.clone(), chan);
                Then::Subscribed { channel, since }
            }
            Kind::Join { room, info, sink } => {
                let channel = room_channel(&room);
                self.chans.insert(
                    channel.clone(),
                    Chan::new(Membership::Room { room, info }, sink),
                );
                Then::Joined { channel }
            }
            Kind::Start { sink } => Then::Started { sink },
            Kind::Leave { channel } => {
                if let Some(mut c) = self.chans.remove(&channel) {
                    c.ended();
                }
                Then::Nothing
            }
        };
        let id = self.id(Pending::Caller { reply, then });
        self.send(live, &command, id).await
    }

    async fn dropped(&mut self, live: &mut Live, channel: &str, sink: u64) -> Result<(), String> {
        let Some(c) = self.chans.get_mut(channel) else {
            return Ok(());
        };
        c.sinks.retain(|s| s.id != sink);
        if !c.sinks.is_empty() {
            return Ok(());
        }
        let Some(c) = self.chans.remove(channel) else {
            return Ok(());
        };
        let cmd = match c.membership {
            Membership::Channel { .. } => {
                Command::Unsubscribe(hubbub_protocol::message::Unsubscribe {
                    channels: vec![channel.to_owned()],
                })
            }
            Membership::Room { room, .. } => {
                Command::LeaveRoom(hubbub_protocol::message::LeaveRoom { room })
            }
        };
        let id = self.id(Pending::Internal {
            then: Then::Nothing,
        });
        self.send(live, &cmd, id).await
    }

    /// One message from the hub.
    async fn inbound(&mut self, live: &mut Live, m: ServerInbound) -> Result<(), String> {
        let msg = match m.message {
            FromServer::Event(ev) => {
                let channel = ev.channel.clone();
                let deleted = ev.event_type == "room_deleted";
                if let Some(c) = self.chans.get_mut(&channel) {
                    c.event(ev);
                    if deleted && matches!(c.membership, Membership::Room { .. }) {
                        // The hub removes every member: the room is not rejoined.
                        c.ended();
                        self.chans.remove(&channel);
                        return Ok(());
                    }
                    if c.sinks.is_empty() {
                        // Every reader is gone: leave on the wire too.
                        return self.dropped(live, &channel, u64::MAX).await;
                    }
                }
                return Ok(());
            }
            FromServer::Message(msg) => msg,
        };
        let pending = match &m.correlation_id {
            Some(CorrelationId::Int(i)) => self.pending.remove(i),
            _ => None,
        };
        match (&msg, pending) {
            (
                ServerMessage::Connected {
                    connection_id,
                    user_id,
                    ..
                },
                _,
            ) => {
                live.ready = true;
                self.connected(live, connection_id.clone(), user_id.clone())
                    .await?;
            }
            (
                ServerMessage::Disconnect {
                    code,
                    reason,
                    reconnect,
                },
                _,
            ) => {
                live.disconnect = Some((*code, reason.clone(), *reconnect));
            }
            (ServerMessage::Error { code, message }, None) => {
                self.emit(ClientEvent::Error {
                    code: *code,
                    message: message.clone(),
                });
            }
            (ServerMessage::Unsubscribed { channels }, None) => {
                for ch in channels {
                    if let Some(mut c) = self.chans.remove(ch) {
                        c.ended();
                    }
                }
            }
            (_, None) => {}
            (ServerMessage::Error { code, message }, Some(p)) => {
                let (reply, then) = match p {
                    Pending::Caller { reply, then } => (Some(reply), then),
                    Pending::Internal { then } => (None, then),
                };
                if let Then::Subscribed { channel, .. } | Then::Joined { channel } = then {
                    if let Some(mut c) = self.chans.remove(&channel) {
                        if reply.is_none() {
                            c.ended(); // a restore refused: the subscription ends
                        }
                    }
                }
                let err = Error::Server {
                    code: *code,
                    message: message.clone(),
                };
                match reply {
                    Some(r) => {
                        let _ = r.send(Err(err));
                    }
                    None => self.emit(ClientEvent::Error {
                        code: *code,
                        message: message.clone(),
                    }),
                }
            }
            (_, Some(Pending::Internal { then })) => self.follow(live, &msg, then),
            (_, Some(Pending::Caller { reply, then })) => {
                self.follow(live, &msg, then);
                let _ = reply.send(Ok(msg));
            }
        }
        Ok(())
    }

    /// State changes a successful reply brings.
    fn follow(&mut self, live: &mut Live, msg: &ServerMessage, then: Then) {
        match (msg, then) {
            (ServerMessage::Subscribed { channels }, Then::Subscribed { since, .. }) => {
                for sc in channels {
                    if let Some(c) = self.chans.get_mut(&sc.channel) {
                        c.subscribed(sc, since.clone());
                    }
                }
            }
            (ServerMessage::AlgorithmStarted { channel, .. }, Then::Started { sink }) => {
                let m = Membership::Channel { event_types: None };
                self.chans.insert(channel.clone(), Chan::new(m, sink));
            }
            (ServerMessage::Authenticated { expires_at, .. }, _) => {
                live.refresh_at = self.refresh_time(expires_at.map(|ms| ms / 1000));
            }
            _ => {}
        }
    }
}
