//! Time to recover 10,000 missed events to one client over a real
//! WebSocket (docs/performance.md, "History and recovery").
//!
//! `cargo run --release -p hubbub-server --example recovery_time -- [REPEATS] [MISSED]`
//!
//! Starts a hub in-process on a free loopback port (`namespaces.big`
//! keeps 20,000 events for 600 s), publishes MISSED + 1 (default 10,001)
//! events of a 100-byte payload to `big:1`, then, for JSON and for
//! MessagePack (`hubbub.msgpack.v1`), connects a fresh client per run and
//! times from sending `subscribe` with `since: {"big:1": {"offset": 1, ...}}`
//! to receiving the last recovered event. The client decodes the reply and
//! the last event and counts the frames between, as a client that trusts
//! the ordering would.
//!
//! The first run of each encoding is reported apart as `cold`: nobody was
//! subscribed while the events were published, so that run also builds
//! every event's frame in that encoding (once; later runs share them).
//! Then REPEATS (default 5) warm runs, each on a new connection.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::{SinkExt, StreamExt};
use hubbub_protocol::codec::{decode_server, encode_command};
use hubbub_protocol::message::{StreamPosition, Subscribe};
use hubbub_protocol::{Command, CorrelationId, Encoding, JsonData};
use hubbub_server::{Config, Server, Sources};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const CHANNEL: &str = "big:1";
const WAIT: Duration = Duration::from_secs(60);

/// Next data message's payload, skipping pings.
async fn next_data(ws: &mut Ws) -> Vec<u8> {
    loop {
        let msg = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("message in time")
            .expect("stream open")
            .expect("no error");
        match msg {
            Message::Text(t) => return t.as_bytes().to_vec(),
            Message::Binary(b) => return b.to_vec(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

async fn connect(url: &str, encoding: Encoding) -> Ws {
    let mut req = url.into_client_request().expect("request");
    if encoding == Encoding::Msgpack {
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            encoding.subprotocol().parse().expect("header"),
        );
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connect");
    let hello = decode_server(&next_data(&mut ws).await, encoding).expect("decode");
    assert_eq!(hello["type"], "connected", "{hello}");
    assert_eq!(hello["encoding"], encoding.name(), "{hello}");
    ws
}

/// One recovery: returns the time from sending `subscribe` to the last
/// recovered event.
async fn recover_once(url: &str, encoding: Encoding, epoch: &str, missed: u64) -> Duration {
    let mut ws = connect(url, encoding).await;
    let since = BTreeMap::from([(
        CHANNEL.to_owned(),
        StreamPosition {
            offset: 1,
            epoch: epoch.to_owned(),
        },
    )]);
    let cmd = Command::Subscribe(Subscribe {
        channels: vec![CHANNEL.to_owned()],
        since: Some(since),
        event_types: None,
    });
    let bytes = encode_command(&cmd, Some(&CorrelationId::Int(1)), encoding).expect("encode");
    let msg = match encoding {
        Encoding::Json => Message::Text(String::from_utf8(bytes).expect("utf-8").into()),
        Encoding::Msgpack => Message::Binary(bytes.into()),
    };
    let start = Instant::now();
    ws.send(msg).await.expect("send");
    let reply: Value = decode_server(&next_data(&mut ws).await, encoding).expect("reply");
    assert_eq!(reply["type"], "subscribed", "{reply}");
    assert_eq!(reply["channels"][0]["recovered"], true, "{reply}");
    assert_eq!(reply["channels"][0]["missed"], missed, "{reply}");
    for _ in 1..missed {
        next_data(&mut ws).await;
    }
    let last = next_data(&mut ws).await;
    let elapsed = start.elapsed();
    let last: Value = decode_server(&last, encoding).expect("last event");
    assert_eq!(last["offset"], missed + 1, "{last}");
    let _ = ws.close(None).await;
    elapsed
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let repeats: usize = args.next().map_or(5, |a| a.parse().expect("REPEATS"));
    let missed: u64 = args.next().map_or(10_000, |a| a.parse().expect("MISSED"));
    let overrides = [
        ("server.listen", "127.0.0.1:0"),
        ("namespaces.big.history_size", "20000"),
        ("namespaces.big.history_ttl_s", "600"),
    ];
    let config = Config::load(&Sources {
        overrides: overrides
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Sources::default()
    })
    .expect("config");
    let server = Server::bind(config).await.expect("bind");
    let addr = server.local_addr().expect("address");
    let shared = server.shared();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run_until(async {
        let _ = stopped.await;
    }));

    let text = format!(r#"{{"text":"{}"}}"#, "x".repeat(89));
    assert_eq!(text.len(), 100);
    let data = JsonData::from_json(&text).expect("valid JSON");
    let mut epoch = String::new();
    for _ in 0..=missed {
        let out = shared
            .publish(CHANNEL, "message", data.clone(), None)
            .now_or_never()
            .expect("the memory engine never waits")
            .expect("publish");
        epoch = out.epoch.expect("big keeps history").to_string();
    }
    let url = format!("ws://{addr}/ws");
    println!("missed={missed} payload=100B repeats={repeats}");
    for encoding in [Encoding::Json, Encoding::Msgpack] {
        let cold = recover_once(&url, encoding, &epoch, missed).await;
        let mut warm = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            warm.push(recover_once(&url, encoding, &epoch, missed).await);
        }
        let runs: Vec<String> = warm.iter().map(|d| format!("{:.2}", ms(*d))).collect();
        warm.sort();
        println!(
            "{}: cold_ms={:.2} warm_median_ms={:.2} warm_min_ms={:.2} warm_max_ms={:.2} warm_runs_ms=[{}] events_per_s={:.0}",
            encoding.name(),
            ms(cold),
            ms(warm[warm.len() / 2]),
            ms(warm[0]),
            ms(warm[warm.len() - 1]),
            runs.join(", "),
            missed as f64 / warm[warm.len() / 2].as_secs_f64(),
        );
    }
    let _ = stop.send(());
    let _ = task.await;
}
