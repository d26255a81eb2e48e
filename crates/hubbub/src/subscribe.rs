//! `hubbub subscribe`: a wscat that speaks the hubbub protocol. Events go to
//! stdout as JSON lines for pipes (`| jq`); status and errors go to stderr.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use futures_util::{SinkExt, StreamExt};
use hubbub_protocol::codec::{decode_server, encode_command};
use hubbub_protocol::message::{Empty, Subscribe};
use hubbub_protocol::{Command, CorrelationId, Encoding, StreamPosition};
use serde_json::Value;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::Failure;

/// How often a `ping` message goes out, under the hub's default 25 s
/// heartbeat so the connection never looks idle.
const PING_EVERY: Duration = Duration::from_secs(20);
/// How long to wait for the close handshake to finish before leaving.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// The `id` of our `subscribe`, to tell its refusal from other errors.
const SUBSCRIBE_ID: i64 = 1;

/// Flags of `hubbub subscribe`.
#[derive(Debug, Args)]
pub struct SubscribeArgs {
    /// Channels to subscribe to.
    #[arg(value_name = "CHANNEL", required = true)]
    channels: Vec<String>,
    /// The hub's WebSocket endpoint (an http:// base works too).
    #[arg(
        long,
        value_name = "URL",
        env = "HUBBUB_URL",
        default_value = "ws://127.0.0.1:8000/ws"
    )]
    url: String,
    /// JWT, sent as `Authorization: Bearer`.
    #[arg(long, value_name = "JWT", env = "HUBBUB_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Connect as this user without a token (development mode only).
    #[arg(long, value_name = "ID")]
    user_id: Option<String>,
    /// Use hubbub.msgpack.v1 instead of hubbub.json.v1 (output stays JSON).
    #[arg(long)]
    msgpack: bool,
    /// Deliver only these event types.
    #[arg(long, value_name = "TYPE,...", value_delimiter = ',')]
    event_types: Vec<String>,
    /// Recover events after a position, e.g. `--since orders=41@x7f`
    /// (repeatable; the epoch may be empty).
    #[arg(long, value_name = "CHANNEL=OFFSET@EPOCH", value_parser = parse_since)]
    since: Vec<(String, StreamPosition)>,
    /// Exit 0 after N events (0: as soon as subscribed).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Print every server message on stdout, not just events.
    #[arg(long)]
    all: bool,
}

fn parse_since(s: &str) -> Result<(String, StreamPosition), String> {
    let bad = || format!("expected CHANNEL=OFFSET@EPOCH, got {s:?}");
    let (channel, pos) = s.split_once('=').ok_or_else(bad)?;
    let (offset, epoch) = pos.split_once('@').ok_or_else(bad)?;
    let offset = offset.trim().parse().map_err(|_| bad())?;
    Ok((
        channel.trim().to_owned(),
        StreamPosition {
            offset,
            epoch: epoch.trim().to_owned(),
        },
    ))
}

/// Subscribes and prints until `--count` events, a normal close (exit 0),
/// or any other end of the connection (exit 1, with the reason on stderr).
pub fn run(args: SubscribeArgs) -> ExitCode {
    crate::logging::init("warn");
    crate::block_on("subscribe", subscribe(args))
}

impl SubscribeArgs {
    fn command(&self) -> Result<Command, Failure> {
        for (ch, _) in &self.since {
            if !self.channels.contains(ch) {
                return Err(Failure::usage(format!(
                    "--since names {ch:?}, which is not one of the channels"
                )));
            }
        }
        let since: BTreeMap<String, StreamPosition> = self.since.iter().cloned().collect();
        Ok(Command::Subscribe(Subscribe {
            channels: self.channels.clone(),
            since: (!since.is_empty()).then_some(since),
            event_types: (!self.event_types.is_empty()).then(|| self.event_types.clone()),
        }))
    }
}

async fn subscribe(args: SubscribeArgs) -> Result<(), Failure> {
    let encoding = if args.msgpack {
        Encoding::Msgpack
    } else {
        Encoding::Json
    };
    let subscribe = args.command()?;
    let mut url = crate::endpoint::ws_url(&args.url).map_err(Failure::usage)?;
    if let Some(user) = &args.user_id {
        url.append_query("user_id", user);
    }
    let mut req = url
        .to_string()
        .into_client_request()
        .map_err(|e| Failure::usage(format!("{url}: {e}")))?;
    let headers = req.headers_mut();
    headers.insert(
        "Sec-WebSocket-Protocol",
        encoding.subprotocol().parse().expect("static header value"),
    );
    if let Some(token) = &args.token {
        let value = format!("Bearer {token}")
            .parse()
            .map_err(|_| Failure::usage("--token holds characters not allowed in a header"))?;
        headers.insert("Authorization", value);
    }

    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .map_err(|e| connect_failure(&url, e))?;
    let (mut sink, mut stream) = ws.split();
    let send = |cmd: &Command, id: Option<CorrelationId>| {
        let bytes = encode_command(cmd, id.as_ref(), encoding)
            .map_err(|e| Failure::usage(format!("encoding {}: {e}", cmd.type_name())))?;
        Ok::<_, Failure>(match encoding {
            Encoding::Json => Message::text(String::from_utf8_lossy(&bytes).into_owned()),
            Encoding::Msgpack => Message::binary(bytes),
        })
    };
    let lost = |e: WsError| Failure::remote(format!("connection lost: {e}"));
    sink.send(send(&subscribe, Some(CorrelationId::Int(SUBSCRIBE_ID)))?)
        .await
        .map_err(lost)?;

    let mut out = Output {
        all: args.all,
        events: 0,
        asked: args.since.iter().map(|(c, _)| c.clone()).collect(),
    };
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + PING_EVERY, PING_EVERY);
    let mut disconnect: Option<Value> = None;
    // Ok(true): we end it (`--count`); Ok(false): the hub closed normally.
    let we_end = loop {
        let msg = tokio::select! {
            _ = ping.tick() => {
                sink.send(send(&Command::Ping(Empty {}), None)?).await.map_err(lost)?;
                continue;
            }
            msg = stream.next() => msg,
        };
        let (text, value) = match msg {
            // A hub that said `disconnect` may cut TCP without a close
            // frame (a slow consumer's socket); its reason is the news.
            None if disconnect.is_some() => break closed(None, disconnect).map(|()| false),
            None => return Err(Failure::remote("connection lost without a close frame")),
            Some(Err(_)) if disconnect.is_some() => break closed(None, disconnect).map(|()| false),
            Some(Err(e)) => return Err(lost(e)),
            Some(Ok(Message::Text(t))) => {
                let v = decode_server(t.as_bytes(), Encoding::Json);
                (Some(t.as_str().to_owned()), v)
            }
            Some(Ok(Message::Binary(b))) => (None, decode_server(&b, Encoding::Msgpack)),
            Some(Ok(Message::Close(frame))) => {
                // Let tungstenite send its close reply before we go.
                let _ = tokio::time::timeout(CLOSE_WAIT, async {
                    while stream.next().await.is_some() {}
                })
                .await;
                break closed(frame, disconnect).map(|()| false);
            }
            // Pings are answered by tungstenite while reading.
            Some(Ok(_)) => continue,
        };
        let value = match value {
            Ok(v) => v,
            Err(e) => {
                eprintln!("hubbub subscribe: undecodable message: {e}");
                continue;
            }
        };
        match out.handle(text, &value, args.count)? {
            Step::Continue => {}
            Step::Disconnect => disconnect = Some(value),
            Step::Done => break Ok(true),
        }
    };
    if we_end? {
        // A normal close, answered by the hub before we leave.
        let frame = CloseFrame {
            code: WsCloseCode::Normal,
            reason: "".into(),
        };
        if sink.send(Message::Close(Some(frame))).await.is_ok() {
            let _ = tokio::time::timeout(CLOSE_WAIT, async {
                while let Some(Ok(_)) = stream.next().await {}
            })
            .await;
        }
    }
    Ok(())
}

/// What the loop does after one message.
enum Step {
    Continue,
    /// A `disconnect` arrived; remember it for the close that follows.
    Disconnect,
    /// `--count` reached.
    Done,
}

struct Output {
    all: bool,
    events: u64,
    /// Channels named by `--since`: their reply says whether recovery held.
    asked: Vec<String>,
}

impl Output {
    fn handle(
        &mut self,
        raw: Option<String>,
        v: &Value,
        count: Option<u64>,
    ) -> Result<Step, Failure> {
        let kind = v.get("type").and_then(Value::as_str).unwrap_or("");
        if kind == "event" || self.all {
            print_line(raw, v)?;
        }
        match kind {
            "event" => {
                self.events += 1;
                if count.is_some_and(|n| self.events >= n) {
                    return Ok(Step::Done);
                }
            }
            "connected" => eprintln!(
                "hubbub subscribe: connected as {} (connection {}, {})",
                v["user_id"].as_str().unwrap_or("anonymous"),
                v["connection_id"].as_str().unwrap_or("?"),
                v["encoding"].as_str().unwrap_or("?"),
            ),
            "subscribed" => {
                let chans: Vec<String> = v["channels"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|c| describe_position(c, &self.asked))
                            .collect()
                    })
                    .unwrap_or_default();
                eprintln!("hubbub subscribe: subscribed to {}", chans.join(", "));
                if count == Some(0) {
                    return Ok(Step::Done);
                }
            }
            "error" => {
                let msg = format!(
                    "error {}: {}",
                    v["code"].as_str().unwrap_or("?"),
                    v["message"].as_str().unwrap_or("")
                );
                if v.get("correlation_id") == Some(&Value::from(SUBSCRIBE_ID)) {
                    return Err(Failure::remote(format!("subscribe refused: {msg}")));
                }
                eprintln!("hubbub subscribe: {msg}");
            }
            "disconnect" => return Ok(Step::Disconnect),
            _ => {}
        }
        Ok(Step::Continue)
    }
}

/// A channel's line in the `subscribed` report: its position in the
/// `--since` syntax (so the user can resume from it), and for channels
/// named by `--since`, whether the hub could recover from there.
fn describe_position(c: &Value, asked: &[String]) -> String {
    let name = c["channel"].as_str().unwrap_or("?");
    let offset = c["offset"].as_u64().unwrap_or(0);
    let position = match c["epoch"].as_str() {
        Some(e) if !e.is_empty() => format!("{name} (position {offset}@{e}"),
        _ => format!("{name} (no history"),
    };
    if !asked.iter().any(|a| a == name) {
        return position + ")";
    }
    match c["missed"].as_u64() {
        Some(n) if c["recovered"] == Value::Bool(true) => {
            format!("{position}, recovered: {n} missed events follow)")
        }
        _ => format!(
            "{position}, recovery refused: the history no longer reaches back to the \
             given position; live events only, reload the state through `history`)"
        ),
    }
}

/// One JSON line on stdout: the frame text as sent when it is one line
/// (field order and numbers untouched), else the decoded value.
fn print_line(raw: Option<String>, v: &Value) -> Result<(), Failure> {
    let line = match raw {
        Some(t) if !t.contains(['\n', '\r']) => t,
        _ => v.to_string(),
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}")
        .and_then(|()| stdout.flush())
        // A reader that went away (`| head -1`) is a normal way to stop.
        .map_err(|_| Failure {
            code: 0,
            message: String::new(),
        })
}

/// Exit status of a close by the hub: 0 for 1000, else 1 with the reason
/// from the `disconnect` message (or the close frame, if none came).
fn closed(frame: Option<CloseFrame>, disconnect: Option<Value>) -> Result<(), Failure> {
    let code = frame.as_ref().map(|f| u16::from(f.code));
    if code == Some(1000) {
        return Ok(());
    }
    Err(Failure::remote(match (disconnect, frame) {
        (Some(d), _) => format!(
            "disconnected: {} {} (reconnect: {})",
            d["code"],
            d["reason"].as_str().unwrap_or(""),
            d["reconnect"]
        ),
        (None, Some(f)) => format!("closed: {} {}", u16::from(f.code), f.reason),
        (None, None) => "closed without a code".to_owned(),
    }))
}

fn connect_failure(url: &crate::endpoint::Endpoint, e: WsError) -> Failure {
    match e {
        WsError::Http(resp) => {
            let body = resp
                .body()
                .as_deref()
                .map(|b| String::from_utf8_lossy(b).trim_end().to_owned())
                .unwrap_or_default();
            Failure::remote(format!(
                "{url} refused the connection: {} {body}",
                resp.status()
            ))
        }
        e => Failure::remote(format!("cannot connect to {url}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_positions() {
        let (ch, p) = parse_since("room:a@b=41@x7f").unwrap();
        assert_eq!(
            (ch.as_str(), p.offset, p.epoch.as_str()),
            ("room:a@b", 41, "x7f")
        );
        let (_, p) = parse_since("a=0@").unwrap();
        assert_eq!(p.epoch, "");
        for bad in ["a", "a=1", "a=x@e"] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subscribe_command() {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            a: SubscribeArgs,
        }
        let t =
            T::try_parse_from(["s", "a", "b", "--event-types", "x,y", "--since", "a=3@e"]).unwrap();
        let bytes = encode_command(
            &t.a.command().unwrap(),
            Some(&CorrelationId::Int(1)),
            Encoding::Json,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"subscribe","id":1,"channels":["a","b"],
                "event_types":["x","y"],"since":{"a":{"offset":3,"epoch":"e"}}})
        );
        let t = T::try_parse_from(["s", "a", "--since", "b=3@e"]).unwrap();
        assert_eq!(t.a.command().unwrap_err().code, 2);
    }
}
