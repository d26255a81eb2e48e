//! Resolved settings: scenario defaults applied to the flags, and how
//! subscribers, channels and windows are divided up.

use std::net::IpAddr;

use anyhow::{anyhow, bail};
use serde::Serialize;

use super::{Kind, LoadArgs, Protocol, Via, PER_WORKER};
use crate::nodes::{default_sources_for, node_of, split_urls, workers_for, ws_targets};
use crate::target::WsTarget;

/// Resolved settings.
#[derive(Debug, Clone)]
pub(super) struct Setup {
    pub(super) kind: Kind,
    /// The nodes' WebSocket URLs, split out of `--url` (one or more).
    pub(super) urls: Vec<String>,
    /// Where each node is, same order as `urls`.
    pub(super) targets: Vec<WsTarget>,
    /// Each node's HTTP API (from `--api-url`, or the node's own address).
    pub(super) apis: Vec<WsTarget>,
    pub(super) subscribers: u64,
    pub(super) channels: u64,
    pub(super) rate: f64,
    pub(super) publishers: usize,
    pub(super) churn_rate: f64,
    pub(super) workers: usize,
    pub(super) sources: Vec<IpAddr>,
}

impl Setup {
    pub(super) fn new(kind: Kind, a: &LoadArgs) -> anyhow::Result<Setup> {
        let (urls, targets) = ws_targets(&a.urls)?;
        let api_urls = split_urls(&a.api_urls);
        let apis = if api_urls.is_empty() {
            targets.clone()
        } else if api_urls.len() != urls.len() {
            bail!(
                "--api-url: {} given for {} --url; give one per --url, in the same order",
                api_urls.len(),
                urls.len()
            );
        } else {
            api_urls
                .iter()
                .map(|u| {
                    let rest = u
                        .strip_prefix("http://")
                        .ok_or_else(|| anyhow!("--api-url: only http:// is supported"))?;
                    WsTarget::parse(&format!("ws://{rest}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?
        };
        let subscribers = a.subscribers.unwrap_or(match kind {
            Kind::HttpPublish => 0,
            _ => 1000,
        });
        let channels = a
            .channels
            .unwrap_or(if kind == Kind::Channels { 100 } else { 1 })
            .max(1);
        let rate = a.rate.unwrap_or(match kind {
            Kind::Fanout | Kind::Churn => 50.0,
            Kind::Channels => 1000.0,
            Kind::HttpPublish => 0.0,
        });
        if !(rate.is_finite() && rate >= 0.0) {
            bail!("--rate must be a number >= 0");
        }
        let churn_rate = a
            .churn_rate
            .unwrap_or(if kind == Kind::Churn { 100.0 } else { 0.0 });
        for (v, what) in [
            (a.warmup, "--warmup"),
            (a.duration, "--duration"),
            (a.drain, "--drain"),
            (churn_rate, "--churn-rate"),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                bail!("{what} must be a number >= 0");
            }
        }
        if a.protocol != Protocol::Hubbub && a.via == Via::Ws {
            bail!("--protocol socketio and pusher publish through the HTTP API only");
        }
        if a.duration <= 0.0 || a.repetitions == 0 {
            bail!("--duration and --repetitions must be positive");
        }
        let workers = workers_for(
            a.worker_count
                .or(a.workers.map(|w| w as usize))
                .unwrap_or_else(|| subscribers.div_ceil(PER_WORKER) as usize),
            targets.len(),
        );
        let sources = if a.source_addrs.is_empty() {
            default_sources_for(&targets, workers)
        } else {
            a.source_addrs.clone()
        };
        for c in 0..channels {
            let name = channel_name(&a.channel, channels, c);
            hubbub_protocol::validate_channel(&name).map_err(|e| anyhow!("channel {name}: {e}"))?;
        }
        Ok(Setup {
            kind,
            urls,
            targets,
            apis,
            subscribers,
            channels,
            rate,
            publishers: a
                .publishers
                .unwrap_or(if kind == Kind::HttpPublish { 32 } else { 4 })
                .max(1),
            churn_rate,
            workers,
            sources,
        })
    }

    /// Where worker `i`'s subscribers connect: node `i % n`.
    pub(super) fn worker_target(&self, i: usize) -> &WsTarget {
        &self.targets[node_of(i, self.targets.len())]
    }

    /// The node publisher `j` publishes through: `j % n`.
    pub(super) fn publisher_node(&self, j: usize) -> usize {
        node_of(j, self.targets.len())
    }

    /// The HTTP API publisher `j` posts to (`--via http`).
    pub(super) fn publisher_api(&self, j: usize) -> &WsTarget {
        &self.apis[self.publisher_node(j)]
    }

    /// The WebSocket publisher `j` publishes on (`--via ws`).
    pub(super) fn publisher_target(&self, j: usize) -> &WsTarget {
        &self.targets[self.publisher_node(j)]
    }

    /// What each node gets: its workers, subscribers and publishers.
    pub(super) fn nodes(&self) -> Vec<NodeShare> {
        let n = self.targets.len();
        let workers = if self.subscribers == 0 {
            0
        } else {
            self.workers
        };
        (0..n)
            .map(|k| {
                let mine: Vec<usize> = (0..workers).filter(|w| node_of(*w, n) == k).collect();
                NodeShare {
                    url: self.urls[k].clone(),
                    api: self.apis[k].addr.to_string(),
                    workers: mine.len(),
                    subscribers: mine.iter().map(|w| self.share(*w).1).sum(),
                    publishers: (0..self.publishers).filter(|j| node_of(*j, n) == k).count(),
                }
            })
            .collect()
    }

    /// Subscribers of channel `c`: subscriber k is on channel k mod C.
    pub(super) fn subscribers_on(&self, c: u64) -> u64 {
        self.subscribers / self.channels + u64::from(c < self.subscribers % self.channels)
    }

    /// First global subscriber index of worker `i`, and how many it holds.
    pub(super) fn share(&self, i: usize) -> (u64, u64) {
        let w = self.workers as u64;
        let (base, extra) = (self.subscribers / w, self.subscribers % w);
        let i = i as u64;
        (i * base + i.min(extra), base + u64::from(i < extra))
    }

    /// Windows in a run, after the warm-up: per repetition one, or for
    /// churn a baseline and a churn window.
    pub(super) fn windows(&self, reps: u32) -> Vec<Window> {
        (0..reps)
            .flat_map(|r| {
                if self.kind == Kind::Churn {
                    vec![
                        Window {
                            rep: r,
                            churn: false,
                        },
                        Window {
                            rep: r,
                            churn: true,
                        },
                    ]
                } else {
                    vec![Window {
                        rep: r,
                        churn: self.churn_rate > 0.0,
                    }]
                }
            })
            .collect()
    }
}

/// One node of the cluster as a run used it: which clients went where.
/// Exists so a report over several nodes shows that the load was spread
/// as intended (worker `w` on node `w % n`, publisher `p` on node `p % n`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeShare {
    /// The node's WebSocket URL.
    pub url: String,
    /// Its HTTP API address (host:port) the publishers post to.
    pub api: String,
    /// Worker processes whose subscribers connect to it.
    pub workers: usize,
    /// Subscribers it was given.
    pub subscribers: u64,
    /// Publishers that publish through it.
    pub publishers: usize,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    pub(super) rep: u32,
    pub(super) churn: bool,
}

pub(super) fn channel_name(prefix: &str, channels: u64, c: u64) -> String {
    if channels == 1 {
        prefix.to_owned()
    } else {
        format!("{prefix}-{c}")
    }
}
