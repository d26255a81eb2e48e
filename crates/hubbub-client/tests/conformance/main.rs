//! The shared client conformance suite (`clients/conformance/`), run with
//! this client against a real hub process (`$HUBBUB_BIN`, else built with
//! cargo). One line per scenario; the test fails if any scenario fails.
//! `CONFORMANCE_ONLY=<name>` runs one scenario.

#[path = "../common/proc_hub.rs"]
#[allow(dead_code)]
mod proc_hub;
mod run;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use run::{has_state, wait, Actor, Obs, Run};
use serde_json::Value;

fn unique() -> String {
    format!("{:x}{:x}", std::process::id(), hubbub_server::now_ms())
}

fn redis_url() -> String {
    std::env::var("HUBBUB_TEST_REDIS").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn service_up(name: &str) -> Result<(), String> {
    match name {
        "redis" => {
            let url = redis_url();
            let host = url
                .trim_start_matches("redis://")
                .split('/')
                .next()
                .unwrap_or("");
            let host = host.rsplit('@').next().unwrap_or(host);
            std::net::TcpStream::connect(host)
                .map(|_| ())
                .map_err(|e| format!("redis at {host} unreachable: {e}"))
        }
        other => Err(format!("unknown service {other}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_scenarios() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../clients/conformance/scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("clients/conformance/scenarios")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let only = std::env::var("CONFORMANCE_ONLY").ok();
    let bin = proc_hub::hub_binary();
    let mut failed = Vec::new();
    for f in files {
        let s: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
        let name = s["name"].as_str().unwrap_or("?").to_owned();
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let skip = s["hub"]["requires"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|r| service_up(r.as_str().unwrap_or("")).err());
        if let Some(why) = skip {
            println!("{name}: skipped: {why}");
            continue;
        }
        match scenario(&bin, &s).await {
            Ok(()) => println!("{name}: ok"),
            Err(e) => {
                println!("{name}: FAIL {e}");
                failed.push(name);
            }
        }
    }
    assert!(failed.is_empty(), "failed: {failed:?}");
}

async fn scenario(bin: &std::path::Path, s: &Value) -> Result<(), String> {
    let key = format!("k{}", unique());
    let secret = format!("s{}{}", unique(), unique());
    let u = unique();
    let mut settings = vec![
        ("api.key".to_owned(), key.clone()),
        ("auth.hs256_secret".to_owned(), secret.clone()),
        ("auth.required".to_owned(), "true".to_owned()),
    ];
    if let Some(m) = s["hub"]["settings"].as_object() {
        for (k, v) in m {
            let v = v
                .as_str()
                .unwrap_or("")
                .replace("{unique}", &u)
                .replace("{redis_url}", &redis_url());
            settings.push((k.clone(), v));
        }
    }
    let mut hub = proc_hub::ProcHub::new(bin.to_owned(), settings);
    hub.start()?;
    let actors = s["clients"]
        .as_object()
        .ok_or("no clients")?
        .iter()
        .map(|(n, spec)| {
            let a = Actor {
                spec: spec.clone(),
                client: None,
                log: Arc::new(Mutex::new(Vec::new())),
                pending: Vec::new(),
                state_at: 0,
                event_at: HashMap::new(),
                recovery_at: HashMap::new(),
            };
            (n.clone(), a)
        })
        .collect();
    let mut run = Run {
        hub,
        key,
        secret,
        actors,
        http: reqwest::Client::new(),
    };
    let steps = s["steps"].as_array().ok_or("no steps")?;
    let mut result = Ok(());
    for (i, step) in steps.iter().enumerate() {
        let r = if step.get("do").is_some() {
            run.act(step).await
        } else {
            expect(&mut run, step).await
        };
        if let Err(e) = r {
            let c = step["client"].as_str().unwrap_or("");
            let seen = run
                .actors
                .get(c)
                .map(|a| format!("{:?}", a.log.lock().unwrap()))
                .unwrap_or_default();
            let seen: String = seen.chars().take(3000).collect();
            result = Err(format!("{i}: {step}: {e}\n  observed: {seen}"));
            break;
        }
    }
    for a in run.actors.values() {
        if let Some(c) = &a.client {
            c.close().await;
        }
    }
    run.hub.stop();
    result
}

fn subset(want: &Value, got: &Value) -> bool {
    match want.as_object() {
        Some(m) => m.iter().all(|(k, v)| got.get(k) == Some(v)),
        None => want.is_null() || want == got,
    }
}

async fn expect(run: &mut Run, step: &Value) -> Result<(), String> {
    let within = step["within_ms"].as_u64().unwrap_or(10_000);
    let c = step["client"].as_str().unwrap_or("").to_owned();
    let kind = step["expect"].as_str().unwrap_or("");
    if kind == "history" {
        let ch = step["channel"].as_str().unwrap_or("");
        let url = run
            .hub
            .http(&format!("/api/channels/{ch}/history?limit=100"));
        let r: Value = run
            .http
            .get(url)
            .bearer_auth(&run.key)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let got: Vec<u64> = r["events"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["data"]["seq"].as_u64())
            .collect();
        let want: Vec<u64> =
            (step["seq"][0].as_u64().unwrap()..=step["seq"][1].as_u64().unwrap()).collect();
        return if got == want {
            Ok(())
        } else {
            Err(format!("history {got:?}"))
        };
    }
    let a = run.actors.get_mut(&c).ok_or("unknown client")?;
    let log = a.log.clone();
    match kind {
        "state" => {
            let state = step["state"].as_str().unwrap_or("");
            let code = step["code"].as_u64();
            let max_delay = step["max_delay_ms"].as_u64();
            let from = a.state_at;
            let i = wait(within, || {
                let l = log.lock().unwrap();
                (from..l.len()).find(|&i| match &l[i] {
                    Obs::State {
                        state: s,
                        code: c,
                        delay_ms,
                        ..
                    } => {
                        *s == state
                            && (code.is_none() || c.map(u64::from) == code)
                            && (max_delay.is_none() || delay_ms.unwrap_or(0) <= max_delay.unwrap())
                    }
                    _ => false,
                })
            })
            .await?;
            a.state_at = i + 1;
        }
        "no_state" => {
            if has_state(
                &log,
                0,
                step["state"].as_str().unwrap_or(""),
                step["code"].as_u64(),
            )
            .is_some()
            {
                return Err("state seen".into());
            }
        }
        "event" => {
            let ch = step["channel"].as_str().unwrap_or("").to_owned();
            let from = *a.event_at.get(&ch).unwrap_or(&0);
            let i = wait(within, || {
                let l = log.lock().unwrap();
                (from..l.len()).find(|&i| matches!(&l[i], Obs::Event { channel, event_type, data, .. }
                    if *channel == ch && Some(event_type.as_str()) == step["event_type"].as_str() && subset(&step["data"], data)))
            })
            .await?;
            a.event_at.insert(ch, i + 1);
        }
        "sequence" => {
            let chans: Vec<String> = match &step["channel"] {
                Value::Array(v) => v
                    .iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect(),
                v => vec![v.as_str().unwrap_or("").to_owned()],
            };
            let (from, to) = (step["from"].as_u64().unwrap(), step["to"].as_u64().unwrap());
            for ch in chans {
                let seqs = |l: &[Obs]| -> Vec<(u64, Option<u64>, Option<String>)> {
                    l.iter()
                        .filter_map(|o| match o {
                            Obs::Event {
                                channel,
                                data,
                                offset,
                                epoch,
                                ..
                            } if *channel == ch => {
                                Some((data["seq"].as_u64().unwrap_or(0), *offset, epoch.clone()))
                            }
                            _ => None,
                        })
                        .collect()
                };
                wait(within, || {
                    let got = seqs(&log.lock().unwrap());
                    (from..=to)
                        .all(|n| got.iter().any(|g| g.0 == n))
                        .then_some(())
                })
                .await
                .map_err(|e| format!("{ch}: {e}: {:?}", seqs(&log.lock().unwrap())))?;
                let got = seqs(&log.lock().unwrap());
                if !got.windows(2).all(|w| w[1].0 > w[0].0) {
                    return Err(format!("{ch}: seq not strictly increasing: {got:?}"));
                }
                let mut last: HashMap<String, u64> = HashMap::new();
                for (_, off, ep) in &got {
                    if let (Some(o), Some(e)) = (off, ep) {
                        if last.get(e).is_some_and(|l| l >= o) {
                            return Err(format!("{ch}: offsets not increasing: {got:?}"));
                        }
                        last.insert(e.clone(), *o);
                    }
                }
            }
        }
        "recovery" => {
            let ch = step["channel"].as_str().unwrap_or("").to_owned();
            let from = *a.recovery_at.get(&ch).unwrap_or(&0);
            let i = wait(within, || {
                let l = log.lock().unwrap();
                (from..l.len())
                    .find(|&i| matches!(&l[i], Obs::Recovery { channel, .. } if *channel == ch))
            })
            .await?;
            a.recovery_at.insert(ch, i + 1);
            let got = matches!(
                &log.lock().unwrap()[i],
                Obs::Recovery {
                    recovered: true,
                    ..
                }
            );
            if Some(got) != step["recovered"].as_bool() {
                return Err(format!("recovered: {got}"));
            }
        }
        "count" => {
            let k = step["kind"].as_str().unwrap_or("");
            let n = step["at_least"].as_u64().unwrap_or(1) as usize;
            wait(within, || {
                let l = log.lock().unwrap();
                let count = l
                    .iter()
                    .filter(|o| match o {
                        Obs::TokenFetched => k == "token_fetched",
                        Obs::State { state, .. } => *state == k,
                        _ => false,
                    })
                    .count();
                (count >= n).then_some(())
            })
            .await?;
        }
        "backoff" => {
            let initial = step["initial_ms"].as_u64().unwrap_or(0);
            let max = step["max_ms"].as_u64().unwrap_or(0);
            let mut next = 1u32;
            for o in log.lock().unwrap().iter() {
                match o {
                    Obs::State {
                        state: "connected", ..
                    } => next = 1,
                    Obs::State {
                        state: "reconnecting",
                        delay_ms: Some(d),
                        attempt: Some(n),
                        ..
                    } => {
                        let bound = max.min(initial.saturating_mul(1u64 << (n - 1).min(40)));
                        if *n != next || *d > bound {
                            return Err(format!(
                                "attempt {n} (expected {next}), delay {d} ms, bound {bound} ms"
                            ));
                        }
                        next += 1;
                    }
                    _ => {}
                }
            }
        }
        "pending" => {
            let handles = std::mem::take(&mut a.pending);
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(within);
            let mut got = Vec::new();
            for h in handles {
                let r = tokio::time::timeout_at(deadline, h)
                    .await
                    .map_err(|_| "pending sends not settled")?;
                got.push(r.map_err(|e| e.to_string())?);
            }
            let want: Vec<String> =
                serde_json::from_value(step["results"].clone()).map_err(|e| e.to_string())?;
            if got != want {
                return Err(format!("results {got:?}"));
            }
        }
        other => return Err(format!("unknown expectation {other}")),
    }
    Ok(())
}
