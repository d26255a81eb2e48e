//! The `hubbub` binary as users run it: real processes, real sockets.
//!
//! Every child is wrapped in a [`Proc`] that kills it on drop, so a failing
//! assertion never leaves a hub running behind the test.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn round_trip(msgpack: bool) {
    let hub = Hub::start(&["--set", "namespaces.chat.publish=true"], &[]);
    let banner = hub.proc.stdout().join("\n");
    assert!(banner.contains(&hub.ws()), "{banner}");
    assert!(banner.contains("/metrics"), "{banner}");
    // The hint runs from where the user is: the binary as it was started.
    let try_line = format!("try        {} subscribe demo", env!("CARGO_BIN_EXE_hubbub"));
    assert!(banner.contains(&try_line), "{banner}");

    let mut args = vec!["subscribe", "orders", "--count", "2"];
    if msgpack {
        args.push("--msgpack");
    }
    let ws = hub.ws();
    args.extend(["--url", &ws]);
    let mut sub = Proc::spawn("subscribe", hubbub(&args));
    sub.wait_line(true, |l| l.contains("subscribed to orders"));

    for n in 1..=2 {
        let answer = hub.publish("orders", &format!("{{\"n\":{n}}}"));
        assert_eq!(answer["channel"], "orders", "{answer}");
        assert_eq!(answer["subscribers"], 1, "{answer}");
    }
    sub.expect_exit(0);
    let lines = sub.stdout();
    assert_eq!(lines.len(), 2, "{}", sub.dump());
    for (i, line) in lines.iter().enumerate() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["type"], "event", "{line}");
        assert_eq!(v["channel"], "orders", "{line}");
        assert_eq!(v["event_type"], "message", "{line}");
        assert_eq!(v["data"], serde_json::json!({"n": i + 1}), "{line}");
    }
}

#[test]
fn published_events_reach_a_json_subscriber() {
    round_trip(false);
}

#[test]
fn published_events_reach_a_msgpack_subscriber() {
    round_trip(true);
}

fn temp_toml(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("hubbub-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn config_layers_file_then_env_then_flags() {
    let file = temp_toml("layers.toml", "[connection]\nmax_message_size = 4096\n");
    let file = file.to_str().unwrap();
    let env = ("HUBBUB_CONNECTION__MAX_MESSAGE_SIZE", "8192");

    let hub = Hub::start(&["--config", file], &[]);
    assert_eq!(hub.connected()["max_message_size"], 4096);

    let hub = Hub::start(&["--config", file], &[env]);
    assert_eq!(hub.connected()["max_message_size"], 8192);

    // HUBBUB_CONFIG selects the file; a flag beats the environment.
    let hub = Hub::start(
        &["--set", "connection.max_message_size=16384"],
        &[("HUBBUB_CONFIG", file), env],
    );
    assert_eq!(hub.connected()["max_message_size"], 16384);
}

#[test]
fn presets_set_the_connection_defaults() {
    let hub = Hub::start(&["--preset", "lightweight"], &[]);
    let c = hub.connected();
    assert_eq!(c["heartbeat_interval_ms"], 60_000, "{c}");
    assert_eq!(c["max_message_size"], 65_536, "{c}");

    // HUBBUB_PRESET selects it too, and a file beats it.
    let file = temp_toml(
        "over-preset.toml",
        "[connection]\nmax_message_size = 4096\n",
    );
    let hub = Hub::start(
        &["--config", file.to_str().unwrap()],
        &[("HUBBUB_PRESET", "lightweight")],
    );
    let c = hub.connected();
    assert_eq!(c["heartbeat_interval_ms"], 60_000, "{c}");
    assert_eq!(c["max_message_size"], 4096, "{c}");
}

#[test]
fn sigterm_drains_connections_and_exits_zero() {
    let mut hub = Hub::start(&["--set", "server.shutdown_timeout_ms=3000"], &[]);
    let ws = hub.ws();
    let mut sub = Proc::spawn(
        "subscribe",
        hubbub(&["subscribe", "orders", "--all", "--url", &ws]),
    );
    sub.wait_line(true, |l| l.contains("subscribed to orders"));

    let start = Instant::now();
    hub.proc.signal("TERM");
    let status = hub.proc.wait_exit(Duration::from_secs(3) + WAIT / 4);
    assert_eq!(status.code(), Some(0), "{}", hub.proc.dump());
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );

    sub.expect_exit(1);
    let disconnect = sub
        .stdout()
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["type"] == "disconnect")
        .unwrap_or_else(|| panic!("no disconnect\n{}", sub.dump()));
    assert_eq!(disconnect["code"], 1001, "{disconnect}");
    assert_eq!(disconnect["reconnect"], true, "{disconnect}");
    assert!(sub.stderr().contains("1001"), "{}", sub.dump());
}

#[test]
fn sigint_exits_zero() {
    let mut hub = Hub::start(&[], &[]);
    hub.proc.signal("INT");
    hub.proc.expect_exit(0);
}

#[test]
fn configuration_errors_exit_2_naming_the_problem() {
    let (code, _, err) = run(
        hubbub(&["serve", "--set", "connection.max_mesage_size=4096"]),
        None,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("max_mesage_size"), "{err}");

    let mut cmd = hubbub(&["serve"]);
    cmd.env("HUBBUB_SERVER__LISTN", "127.0.0.1:0");
    let (code, _, err) = run(cmd, None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("listn"), "{err}");

    let (code, _, err) = run(
        hubbub(&["serve", "--config", "/nonexistent/hubbub.toml"]),
        None,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/nonexistent/hubbub.toml"), "{err}");
}

#[test]
fn publish_rejects_invalid_json_with_exit_2() {
    // Never reaches the network: the port does not matter.
    let (code, out, err) = run(
        hubbub(&[
            "publish",
            "orders",
            "{\"n\":",
            "--url",
            "http://127.0.0.1:9",
        ]),
        None,
    );
    assert_eq!(code, 2, "{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("not valid JSON"), "{err}");

    let (code, _, err) = run(hubbub(&["publish", "orders", "-"]), Some("not json"));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn publish_reads_stdin_and_reports_refusals() {
    let hub = Hub::start(&[], &[]);
    let (code, out, err) = run(
        hubbub(&["publish", "orders", "-", "--url", &hub.http()]),
        Some("{\"from\": \"stdin\"}\n"),
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["channel"], "orders", "{out}");

    // A path the hub does not serve: non-2xx is exit 1 with the status.
    let (code, _, err) = run(
        hubbub(&[
            "publish",
            "orders",
            "1",
            "--url",
            &format!("{}/nope", hub.http()),
        ]),
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("404"), "{err}");

    // Nobody listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (code, _, err) = run(
        hubbub(&[
            "publish",
            "orders",
            "1",
            "--url",
            &format!("http://127.0.0.1:{port}"),
        ]),
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot reach"), "{err}");
    assert!(
        err.contains("Connection refused"),
        "the cause, not the HTTP layer's words: {err}"
    );
}

#[test]
fn a_refused_subscribe_exits_1() {
    let hub = Hub::start(&[], &[]);
    // Valid locally as an argument, refused by the hub's channel grammar.
    let (code, _, err) = run(
        hubbub(&["subscribe", "bad channel", "--url", &hub.ws()]),
        None,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("subscribe refused"), "{err}");
}

#[test]
fn a_token_from_hubbub_token_is_accepted_by_a_hub_with_the_same_secret() {
    let secret = "cli-test-secret-cli-test-secret-0123";
    let set = format!("auth.hs256_secret={secret}");
    let mut env_hub = Hub::start(
        &["--mode", "production", "--api-key", "cli-test-api-key"],
        &[("HUBBUB_AUTH__HS256_SECRET", secret)],
    );
    let banner = env_hub.proc.stdout().join("\n");
    assert!(banner.contains("subscribe demo --url"), "{banner}");
    assert!(
        banner.contains("--token TOKEN"),
        "production needs one: {banner}"
    );
    assert!(banner.contains("token --sub USER"), "{banner}");
    let (code, out, err) = run(
        hubbub(&[
            "token",
            "--sub",
            "alice",
            "--channels",
            "metrics,room:*",
            "--publish",
            "chat:*",
            "--ttl",
            "1h",
            "--set",
            &set,
        ]),
        None,
    );
    assert_eq!(code, 0, "{err}");
    let token = out.trim().to_owned();
    assert_eq!(token.split('.').count(), 3, "{out}");
    assert!(!err.contains(secret), "{err}");

    let probe = |token: Option<&str>, channel: &str| {
        let mut args = vec!["subscribe", channel, "--all", "--count", "0", "--url"];
        let ws = env_hub.ws();
        args.push(&ws);
        if let Some(t) = token {
            args.push("--token");
            args.push(t);
        }
        run(hubbub(&args), None)
    };
    let (code, out, err) = probe(Some(&token), "metrics");
    assert_eq!(code, 0, "{err}");
    let first: Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "connected", "{out}");
    assert_eq!(first["user_id"], "alice");
    // The claims hold: a channel outside them is refused.
    let (code, _, err) = probe(Some(&token), "news");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("forbidden"), "{err}");
    // No token: the production hub refuses the handshake.
    let (code, _, err) = probe(None, "metrics");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("401"), "{err}");
    // A token signed with another secret is refused too.
    let (_, other, _) = run(
        hubbub(&[
            "token",
            "--sub",
            "alice",
            "--set",
            "auth.hs256_secret=another-secret-another-secret-xx",
        ]),
        None,
    );
    let (code, _, err) = probe(Some(other.trim()), "metrics");
    assert_eq!(code, 1, "{err}");
    env_hub.proc.signal("TERM");
    env_hub.proc.expect_exit(0);

    // No key anywhere: exit 2, saying what to set.
    let (code, _, err) = run(hubbub(&["token", "--sub", "alice"]), None);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("auth.hs256_secret"), "{err}");
    // Production without a token key does not start.
    let (code, _, err) = run(
        hubbub(&[
            "serve",
            "--mode",
            "production",
            "--api-key",
            "k",
            "--listen",
            "127.0.0.1:0",
        ]),
        None,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("auth"), "{err}");
}

/// `subscribe` prints the position it was given in the `--since` syntax; a
/// subscriber from before the first publication resumes from it, `0@`
/// (the start of any history) resumes too, and a refused recovery is said.
#[test]
fn since_resumes_from_the_printed_position_and_says_when_it_cannot() {
    let hub = Hub::start(&["--set", "channels.history_size=5"], &[]);
    let ws = hub.ws();
    let mut first = Proc::spawn(
        "subscribe",
        hubbub(&["subscribe", "fresh", "--count", "0", "--url", &ws]),
    );
    let line = first.wait_line(true, |l| l.contains("subscribed to fresh"));
    first.expect_exit(0);
    let position = line
        .split("(position ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("no position in {line:?}"))
        .to_string();
    assert!(position.starts_with("0@") && position.len() > 2, "{line}");
    for n in 1..=3 {
        hub.publish("fresh", &format!("{{\"n\":{n}}}"));
    }
    // `subscribe fresh --since SINCE --count N`, started.
    let resume = |since: &str, count: &str| {
        let args = [
            "subscribe",
            "fresh",
            "--since",
            since,
            "--count",
            count,
            "--url",
            &ws,
        ];
        Proc::spawn("subscribe", hubbub(&args))
    };
    for since in [format!("fresh={position}"), "fresh=0@".to_string()] {
        let mut sub = resume(&since, "3");
        sub.wait_line(true, |l| l.contains("recovered: 3 missed events follow"));
        sub.expect_exit(0);
        let ns: Vec<i64> = sub
            .stdout()
            .iter()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["data"]["n"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert_eq!(ns, [1, 2, 3], "{since}: {}", sub.dump());
    }
    for n in 4..=6 {
        hub.publish("fresh", &format!("{{\"n\":{n}}}"));
    }
    let mut sub = resume(&format!("fresh={position}"), "0");
    let said = sub.wait_line(true, |l| l.contains("subscribed to fresh"));
    assert!(said.contains("recovery refused"), "{said}");
    sub.expect_exit(0);
}

#[test]
fn settings_that_would_expose_the_hub_refuse_to_start() {
    let refused = |args: &[&str], env: &[(&str, &str)], says: &str| {
        let mut cmd = hubbub(&["serve"]);
        cmd.args(args).envs(env.iter().copied());
        if !args.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        let (code, _, err) = run(cmd, None);
        assert_eq!(code, 2, "{args:?} {env:?}: {err}");
        assert!(err.contains(says), "{args:?} {env:?}: {err}");
    };
    // Production needs an API key; an empty one is no key.
    refused(&["--mode", "production"], &[], "needs an API key");
    refused(&["--api-key", ""], &[], "api.key is empty");
    refused(&[], &[("HUBBUB_API__KEY", "")], "api.key is empty");
    refused(&[], &[("HUBBUB_API_KEY", "")], "api.key is empty");
    // The testing echo: never in production, never off loopback.
    refused(
        &["--mode", "production", "--api-key", "k", "--testing-echo"],
        &[],
        "refused in production",
    );
    refused(
        &["--testing-echo", "--listen", "0.0.0.0:0"],
        &[],
        "loopback",
    );
    // In development on loopback (scripts/conformance.sh) it starts, loudly.
    let mut hub = Hub::start(&["--testing-echo"], &[]);
    hub.proc
        .wait_line(true, |l| l.contains("TESTING ECHO ENABLED"));
    hub.proc.signal("TERM");
    hub.proc.expect_exit(0);
}
