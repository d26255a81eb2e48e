//! A node whose link to NATS is cut (through a TCP proxy the test
//! controls) is unhealthy while cut, resyncs when the link is back, and
//! gets the history events published meanwhile.

mod common;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use common::{draft, eventually, started};
use hubbub_server::engine::HistoryOptions;
use parking_lot::Mutex;
use tokio::net::{TcpListener, TcpStream};

const OPTS: HistoryOptions = HistoryOptions {
    size: 100,
    ttl: Duration::from_secs(60),
};

/// A TCP proxy to NATS that can cut every connection and refuse new ones.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(SeqCst) {
                    continue; // dropped: refused
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                conns2.lock().push(task.abort_handle());
            }
        });
        Proxy { port, up, conns }
    }

    fn cut(&self) {
        self.up.store(false, SeqCst);
        for c in self.conns.lock().drain(..) {
            c.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_link_is_unhealthy_then_resyncs_and_catches_up() {
    let Some(url) = common::nats().await else {
        return;
    };
    let prefix = common::prefix();
    let upstream = url
        .trim_start_matches("nats://")
        .rsplit('@')
        .next()
        .unwrap_or_default()
        .to_owned();
    let proxy = Proxy::start(upstream).await;
    let config = common::config(&url, &prefix);
    let mut via_proxy = config.clone();
    via_proxy.engine.nats_url = format!("nats://127.0.0.1:{}", proxy.port);
    let (_ha, a, sa) = started(&via_proxy, "node-a").await;
    let (_hb, b, _sb) = started(&config, "node-b").await;
    let ch = "through-a-cut";
    a.broker.subscribe(ch).await.expect("subscribe");
    a.history.open(ch, OPTS).await.expect("open");
    b.broker
        .publish(draft(ch, 1), Some(OPTS))
        .await
        .expect("publish");
    assert!(eventually(5, || sa.rec.delivered.lock().len() == 1).await);
    assert!(a.broker.health().is_ok());

    proxy.cut();
    assert!(
        eventually(10, || a.broker.health().is_err()).await,
        "unhealthy while cut"
    );
    assert!(
        a.broker.publish(draft(ch, 50), None).await.is_err(),
        "a publish fails at once while cut"
    );
    // Published while A is cut off: kept by the stream.
    for n in 2..=4 {
        b.broker
            .publish(draft(ch, n), Some(OPTS))
            .await
            .expect("publish");
    }

    proxy.restore();
    assert!(
        eventually(30, || a.broker.health().is_ok()).await,
        "healthy again"
    );
    assert!(
        eventually(10, || sa.resyncs.load(SeqCst) >= 1).await,
        "resynced"
    );
    let offsets = || -> Vec<u64> {
        sa.rec
            .delivered
            .lock()
            .iter()
            .filter_map(|p| p.event.offset)
            .collect()
    };
    assert!(
        eventually(30, || offsets() == [1, 2, 3, 4]).await,
        "caught up from the stream: {:?}",
        offsets()
    );
    common::clean(&url, &prefix).await;
}
