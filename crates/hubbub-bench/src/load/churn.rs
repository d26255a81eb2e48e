//! Churn: connections that connect, subscribe and leave at a rate during
//! churn windows (cycle k on node k mod N when there are several).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::payload::unix_ns;
use super::setup::{channel_name, Setup};
use super::socketio::subscribe;
use super::LoadArgs;
use crate::connections::worker::{close, Plan};
use crate::nodes::node_of;

/// Connect, subscribe, disconnect at `rate` per second until `stop` flips;
/// returns (cycles done, failures by reason).
pub(super) async fn churn(
    setup: Arc<Setup>,
    args: Arc<LoadArgs>,
    rate: f64,
    mut stop: watch::Receiver<bool>,
) -> (u64, BTreeMap<String, u64>) {
    let ok = Arc::new(AtomicU64::new(0));
    let fails = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let mut set = tokio::task::JoinSet::new();
    let start = Instant::now();
    let mut k = 0u64;
    loop {
        let at = start + Duration::from_secs_f64(k as f64 / rate);
        tokio::select! {
            _ = tokio::time::sleep_until(at) => {}
            _ = stop.changed() => break,
        }
        // Cycle k on node k mod N, like the subscribers and publishers.
        let target = &setup.targets[node_of(k as usize, setup.targets.len())];
        let source = match target.addr.ip() {
            IpAddr::V4(v) if v.is_loopback() => IpAddr::V4(Ipv4Addr::new(127, 0, 0, 250)),
            ip => ip,
        };
        let plan = Plan::single(
            0,
            target.clone(),
            source,
            channel_name(&args.channel, setup.channels, k % setup.channels),
            Duration::from_secs(10),
        );
        let (ok, fails, args) = (ok.clone(), fails.clone(), args.clone());
        set.spawn(async move {
            match subscribe(args.protocol, &plan, (unix_ns() ^ k, k.wrapping_mul(31))).await {
                Ok(mut r) => {
                    let _ = close(&mut r.stream, r.mask).await;
                    ok.fetch_add(1, Relaxed);
                }
                Err(e) => {
                    *fails
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .entry(e)
                        .or_insert(0) += 1;
                }
            }
        });
        while set.try_join_next().is_some() {}
        k += 1;
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while set.join_next().await.is_some() {}
    })
    .await;
    let f = fails.lock().unwrap_or_else(|e| e.into_inner()).clone();
    (ok.load(Relaxed), f)
}
