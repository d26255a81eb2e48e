//! Resolved settings: scenario defaults applied to the flags, and how
//! subscribers, channels and windows are divided up.

use std::net::IpAddr;

use anyhow::{anyhow, bail};

use super::{Kind, LoadArgs, Protocol, Via, PER_WORKER};
use crate::target::WsTarget;
use crate::workers::default_sources;

/// Resolved settings.
#[derive(Debug, Clone)]
pub(super) struct Setup {
    pub(super) kind: Kind,
    pub(super) target: WsTarget,
    pub(super) api: WsTarget,
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
        let target = WsTarget::parse(&a.url)?;
        let api = match &a.api_url {
            Some(u) => {
                let rest = u
                    .strip_prefix("http://")
                    .ok_or_else(|| anyhow!("--api-url: only http:// is supported"))?;
                WsTarget::parse(&format!("ws://{rest}"))?
            }
            None => target.clone(),
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
        let workers = a
            .worker_count
            .or(a.workers.map(|w| w as usize))
            .unwrap_or_else(|| subscribers.div_ceil(PER_WORKER) as usize)
            .max(1);
        let sources = if a.source_addrs.is_empty() {
            default_sources(target.addr.ip(), workers)
        } else {
            a.source_addrs.clone()
        };
        for c in 0..channels {
            let name = channel_name(&a.channel, channels, c);
            hubbub_protocol::validate_channel(&name).map_err(|e| anyhow!("channel {name}: {e}"))?;
        }
        Ok(Setup {
            kind,
            target,
            api,
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
