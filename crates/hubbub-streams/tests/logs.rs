//! `logs`: warnings and errors reach an admin subscriber through the
//! tracing layer, nothing is built while nobody listens, and info lines
//! never go out. (A file of its own: it installs the process's global
//! tracing subscriber.)

mod common;

use common::*;
use hubbub_streams::Stream;
use tracing_subscriber::layer::SubscriberExt;

#[tokio::test]
async fn warnings_reach_an_admin_and_nothing_is_built_without_one() {
    let (layer, feed) = hubbub_streams::log_layer(64);
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
        .expect("the only subscriber of this test binary");
    let hub = hub(&[]).await;
    hub.streams.forward_logs(feed.clone());

    // Nobody listens: warnings are not even queued.
    for i in 0..5 {
        tracing::warn!(target: "streams_test", i, "unheard");
    }
    hub.samples(6).await;
    assert_eq!(hub.streams.built(Stream::Logs), 0);

    // A user without the claim is refused.
    let mut ws = hub.ws(&format!("?token={}", token("ann", false))).await;
    let r = subscribe(&mut ws, "logs").await;
    assert_eq!(r["code"], "forbidden", "{r}");

    let mut admin = hub.ws(&format!("?token={}", token("root", true))).await;
    assert_eq!(subscribe(&mut admin, "logs").await["type"], "subscribed");
    // The forwarder notices the subscriber within its check period: warn
    // until a line arrives (info lines never do).
    let log = tokio::time::timeout(WAIT, async {
        loop {
            tracing::info!(target: "streams_test", "not forwarded");
            tracing::warn!(target: "streams_test", disk = "sda", "disk nearly full");
            let next = tokio::time::timeout(std::time::Duration::from_millis(200), async {
                event(&mut admin, "logs", "log").await
            })
            .await;
            if let Ok(e) = next {
                return e["data"].clone();
            }
        }
    })
    .await
    .expect("a log event in time");
    assert_eq!(log["node_id"], hub.node.node_id(), "{log}");
    assert_eq!(log["level"], "warn", "{log}");
    assert_eq!(log["target"], "streams_test", "{log}");
    assert_eq!(log["message"], "disk nearly full disk=sda", "{log}");

    tracing::error!(target: "streams_test", "it broke");
    loop {
        let e = event(&mut admin, "logs", "log").await["data"].clone();
        if e["level"] == "error" {
            assert_eq!(e["message"], "it broke");
            break;
        }
        assert_ne!(e["message"], "not forwarded");
    }
    assert_eq!(feed.dropped(), 0);
}
