//! The runner's actions: driving clients and the hub, recording what each
//! client tells the application.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::proc_hub::ProcHub;
use hubbub_client::{Backoff, Client, ClientEvent, Encoding, Error, GapReason, SubEvent};
use serde_json::{json, Value};

/// What a client told the application, in order.
#[derive(Debug, Clone)]
pub(crate) enum Obs {
    State {
        state: &'static str,
        code: Option<u16>,
        delay_ms: Option<u64>,
        attempt: Option<u32>,
    },
    Event {
        channel: String,
        event_type: String,
        data: Value,
        offset: Option<u64>,
        epoch: Option<String>,
    },
    Recovery {
        channel: String,
        recovered: bool,
    },
    TokenFetched,
}

pub(crate) type Log = Arc<Mutex<Vec<Obs>>>;

pub(crate) struct Actor {
    pub(crate) spec: Value,
    pub(crate) client: Option<Client>,
    pub(crate) log: Log,
    pub(crate) pending: Vec<tokio::task::JoinHandle<String>>,
    pub(crate) state_at: usize,
    pub(crate) event_at: HashMap<String, usize>,
    pub(crate) recovery_at: HashMap<String, usize>,
}

pub(crate) struct Run {
    pub(crate) hub: ProcHub,
    pub(crate) key: String,
    pub(crate) secret: String,
    pub(crate) actors: HashMap<String, Actor>,
    pub(crate) http: reqwest::Client,
}

fn err_name(e: &Error) -> String {
    match e {
        Error::QueueFull(_) => "queue_full".into(),
        Error::Timeout(_) => "timeout".into(),
        Error::Closed(_) => "closed".into(),
        Error::Server { code, .. } => code.as_str().into(),
        Error::Disconnected => "disconnected".into(),
        other => format!("{other}"),
    }
}

fn mint(secret: &str, spec: &Value) -> String {
    let ttl = spec["ttl_s"].as_u64().unwrap_or(3600);
    let mut claims = json!({"sub": spec["user"], "exp": hubbub_server::now_ms() / 1000 + ttl});
    if let Some(extra) = spec["claims"].as_object() {
        for (k, v) in extra {
            claims[k] = v.clone();
        }
    }
    hubbub_server::auth::jwt::TokenSigner::hs256(secret.as_bytes())
        .sign(&claims)
        .unwrap()
}

fn pump_sub(log: Log, mut sub: hubbub_client::Subscription) {
    tokio::spawn(async move {
        let channel = sub.channel().to_owned();
        while let Some(item) = sub.recv().await {
            let obs = match item {
                SubEvent::Event(e) => Obs::Event {
                    channel: e.channel.clone(),
                    event_type: e.event_type.clone(),
                    data: e.data.to_value(),
                    offset: e.offset,
                    epoch: e.epoch.as_deref().map(str::to_owned),
                },
                SubEvent::Recovered { .. } => Obs::Recovery {
                    channel: channel.clone(),
                    recovered: true,
                },
                SubEvent::Gap(g) if g.reason == GapReason::NotRecovered => Obs::Recovery {
                    channel: channel.clone(),
                    recovered: false,
                },
                _ => continue,
            };
            log.lock().unwrap().push(obs);
        }
    });
}

impl Run {
    async fn connect(&mut self, name: &str) -> Result<(), String> {
        let secret = self.secret.clone();
        let url = self.hub.ws_url();
        let a = self.actors.get_mut(name).ok_or("unknown client")?;
        let spec = a.spec.clone();
        let mut b = Client::builder(url);
        if spec["token"] == "callback" {
            let log = a.log.clone();
            let spec = spec.clone();
            b = b.token_callback(move || {
                log.lock().unwrap().push(Obs::TokenFetched);
                let t = mint(&secret, &spec);
                async move { Ok(t) }
            });
        } else {
            b = b.token(mint(&secret, &spec));
        }
        if spec["proactive_refresh"] == false {
            b = b.proactive_refresh(false);
        }
        if let Some(bo) = spec.get("backoff").filter(|v| v.is_object()) {
            b = b.backoff(Backoff {
                initial: Duration::from_millis(bo["initial_ms"].as_u64().unwrap_or(500)),
                max: Duration::from_millis(bo["max_ms"].as_u64().unwrap_or(30_000)),
                max_attempts: bo["attempts"].as_u64().map(|n| n as u32),
            });
        }
        if let Some(n) = spec["send_queue"].as_u64() {
            b = b.offline_queue(n as usize);
        }
        if let Some(n) = spec["command_timeout_ms"].as_u64() {
            b = b.request_timeout(Duration::from_millis(n));
        }
        if spec["encoding"] == "msgpack" {
            b = b.encoding(Encoding::Msgpack);
        }
        let (client, mut events) = b.connect_with_events();
        let log = a.log.clone();
        tokio::spawn(async move {
            loop {
                let e = match events.recv().await {
                    Ok(e) => e,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => break,
                };
                let obs = match e {
                    ClientEvent::Connecting { .. } => Obs::State {
                        state: "connecting",
                        code: None,
                        delay_ms: None,
                        attempt: None,
                    },
                    ClientEvent::Connected { .. } => Obs::State {
                        state: "connected",
                        code: None,
                        delay_ms: None,
                        attempt: None,
                    },
                    ClientEvent::Disconnected { code, .. } => Obs::State {
                        state: "disconnected",
                        code,
                        delay_ms: None,
                        attempt: None,
                    },
                    ClientEvent::Reconnecting { delay, attempt } => Obs::State {
                        state: "reconnecting",
                        code: None,
                        delay_ms: Some(delay.as_millis() as u64),
                        attempt: Some(attempt),
                    },
                    ClientEvent::Closed { .. } => Obs::State {
                        state: "closed",
                        code: None,
                        delay_ms: None,
                        attempt: None,
                    },
                    ClientEvent::Error { .. } => continue,
                };
                log.lock().unwrap().push(obs);
            }
        });
        client
            .wait_connected(Duration::from_secs(10))
            .await
            .map_err(|e| e.to_string())?;
        a.client = Some(client);
        Ok(())
    }

    fn client(&self, name: &str) -> Result<Client, String> {
        self.actors
            .get(name)
            .and_then(|a| a.client.clone())
            .ok_or_else(|| format!("client {name} not connected"))
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Result<Value, String> {
        let r = self
            .http
            .post(self.hub.http(path))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !r.status().is_success() {
            return Err(format!("{path}: HTTP {}", r.status()));
        }
        r.json().await.map_err(|e| e.to_string())
    }

    pub(crate) async fn act(&mut self, step: &Value) -> Result<(), String> {
        let c = step["client"].as_str().unwrap_or("");
        match step["do"].as_str().unwrap_or("") {
            "connect" => self.connect(c).await?,
            "close" => {
                let client = self.client(c)?;
                client.close().await;
                let log = self.actors[c].log.clone();
                wait(10_000, || has_state(&log, 0, "closed", None).map(|_| ())).await?;
            }
            "subscribe" => {
                let client = self.client(c)?;
                for ch in step["channels"].as_array().ok_or("channels")? {
                    let sub = client
                        .subscribe(ch.as_str().ok_or("channel")?)
                        .await
                        .map_err(|e| e.to_string())?;
                    pump_sub(self.actors[c].log.clone(), sub);
                }
            }
            "publish" => {
                let client = self.client(c)?;
                let fut = client.publish_nowait(
                    step["channel"].as_str().unwrap_or(""),
                    step["event_type"].as_str().unwrap_or(""),
                    &step["data"],
                );
                let handle = tokio::spawn(async move {
                    match fut.await {
                        Ok(_) => "ok".to_owned(),
                        Err(e) => err_name(&e),
                    }
                });
                if step["await"] == false {
                    self.actors.get_mut(c).unwrap().pending.push(handle);
                } else {
                    let got = handle.await.map_err(|e| e.to_string())?;
                    let want = step["expect_error"].as_str().unwrap_or("ok");
                    if got != want {
                        return Err(format!("publish: {got}, expected {want}"));
                    }
                }
            }
            "join_room" => {
                let client = self.client(c)?;
                let info = step.get("info").filter(|v| v.is_object());
                let room = client
                    .join_room(step["room"].as_str().unwrap_or(""), info)
                    .await
                    .map_err(|e| e.to_string())?;
                pump_sub(self.actors[c].log.clone(), room.events);
            }
            "leave_room" => self
                .client(c)?
                .leave_room(step["room"].as_str().unwrap_or(""))
                .await
                .map_err(|e| e.to_string())?,
            "presence" => {
                let ch = format!("room:{}", step["room"].as_str().unwrap_or(""));
                let members = self
                    .client(c)?
                    .presence(&ch)
                    .await
                    .map_err(|e| e.to_string())?;
                let mut got: Vec<String> = members
                    .into_iter()
                    .map(|m| m.user_id.unwrap_or_default())
                    .collect();
                let mut want: Vec<String> =
                    serde_json::from_value(step["users"].clone()).map_err(|e| e.to_string())?;
                got.sort();
                want.sort();
                if got != want {
                    return Err(format!("presence {got:?}, expected {want:?}"));
                }
            }
            "publish_http" => {
                let (from, to) = (
                    step["seq"][0].as_u64().unwrap(),
                    step["seq"][1].as_u64().unwrap(),
                );
                for n in from..=to {
                    let mut data = json!({"seq": n});
                    pad(&mut data, step);
                    let ty = step["event_type"].as_str().unwrap_or("seq");
                    self.post(
                        "/api/publish",
                        json!({"channel": step["channel"], "event_type": ty, "data": data}),
                    )
                    .await?;
                }
            }
            "broadcast_http" => {
                let mut data = json!({"seq": step["seq"].as_u64().unwrap_or(1)});
                pad(&mut data, step);
                let ty = step["event_type"].as_str().unwrap_or("seq");
                self.post(
                    "/api/broadcast",
                    json!({"channels": step["channels"], "event_type": ty, "data": data}),
                )
                .await?;
            }
            "disconnect_http" => {
                let id = self.client(c)?.connection_id().ok_or("not connected")?;
                let body = json!({"reconnect": step["reconnect"], "reason": step["reason"].as_str().unwrap_or("conformance")});
                self.post(&format!("/api/connections/{id}/disconnect"), body)
                    .await?;
            }
            "stop_hub" => self.hub.stop(),
            "start_hub" => self.hub.start()?,
            "restart_hub" => {
                self.hub.stop();
                self.hub.start()?;
            }
            other => return Err(format!("unknown action {other}")),
        }
        Ok(())
    }
}

fn pad(data: &mut Value, step: &Value) {
    let n = step["pad"].as_u64().unwrap_or(0);
    if n > 0 {
        data["pad"] = json!("x".repeat(n as usize));
    }
}

/// Index of the first matching state observation at or after `from`.
pub(crate) fn has_state(log: &Log, from: usize, state: &str, code: Option<u64>) -> Option<usize> {
    let log = log.lock().unwrap();
    (from..log.len()).find(|&i| matches!(&log[i], Obs::State { state: s, code: c, .. } if *s == state && (code.is_none() || c.map(u64::from) == code)))
}

pub(crate) async fn wait<T>(ms: u64, mut check: impl FnMut() -> Option<T>) -> Result<T, String> {
    let deadline = Instant::now() + Duration::from_millis(ms);
    loop {
        if let Some(v) = check() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            return Err(format!("not within {ms} ms"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
