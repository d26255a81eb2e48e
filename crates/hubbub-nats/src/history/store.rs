//! The engine's [`HistoryStore`] over the streams of [`super`], and the
//! figures its sweep refreshes.

use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{response::Response, stream};
use hubbub_server::engine::{
    BoxFuture, EngineError, HeldChannels, HistoryError, HistoryOptions, HistoryRead, HistoryStats,
    HistoryStore, Position,
};

use super::{epoch_of, MAX_LISTED};
use crate::link::{failed, no_stream};
use crate::names::channel_token;
use crate::Inner;

impl Inner {
    /// Every history stream of this prefix, with its info, up to a cap.
    async fn history_streams(&self) -> Result<Vec<stream::Info>, EngineError> {
        #[derive(serde::Deserialize)]
        struct Page {
            total: usize,
            #[serde(default)]
            streams: Option<Vec<stream::Info>>,
        }
        let filter = self.link.names.history_filter();
        let mut out = Vec::new();
        loop {
            let request = serde_json::json!({"offset": out.len(), "subject": filter});
            let page: Response<Page> = self
                .link
                .ask(
                    "list streams",
                    self.link.js.request("STREAM.LIST".to_owned(), &request),
                )
                .await?;
            let page = match page {
                Response::Ok(p) => p,
                Response::Err { error } => return Err(failed("list streams", error)),
            };
            let streams = page.streams.unwrap_or_default();
            let got = streams.len();
            out.extend(streams);
            if got == 0 || out.len() >= page.total || out.len() >= MAX_LISTED {
                break;
            }
        }
        let prefix = self.link.names.history_stream_prefix();
        out.retain(|i| i.config.name.starts_with(&prefix));
        out.truncate(MAX_LISTED);
        Ok(out)
    }
}

/// The engine's [`HistoryStore`].
pub(crate) struct NatsHistory(pub(crate) Arc<Inner>);

impl HistoryStore for NatsHistory {
    fn read<'a>(
        &'a self,
        channel: &'a str,
        since: Option<u64>,
        limit: usize,
    ) -> BoxFuture<'a, Result<HistoryRead, HistoryError>> {
        Box::pin(async move {
            self.0
                .read_now(channel, since, limit)
                .await
                .map_err(HistoryError::from)
        })
    }

    fn open<'a>(
        &'a self,
        channel: &'a str,
        opts: HistoryOptions,
    ) -> BoxFuture<'a, Result<(), HistoryError>> {
        Box::pin(async move {
            self.0
                .open_stream(channel, opts)
                .await
                .map(|_| ())
                .map_err(HistoryError::from)
        })
    }

    fn holds<'a>(&'a self, channel: &'a str) -> BoxFuture<'a, Result<bool, HistoryError>> {
        Box::pin(async move {
            let link = &self.0.link;
            let name = link.names.history_stream(&channel_token(channel));
            match link.within("stream info", link.js.get_stream(&name)).await {
                Ok(Ok(s)) => Ok(s.cached_info().state.last_sequence > 0
                    && s.cached_info().config.description.as_deref() == Some(channel)),
                Ok(Err(e)) if no_stream(&e) => Ok(false),
                Ok(Err(e)) => Err(HistoryError(format!("stream info: {e}"))),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn channels(&self) -> BoxFuture<'_, Result<HeldChannels, HistoryError>> {
        Box::pin(async move {
            let streams = self.0.history_streams().await?;
            Ok(streams
                .into_iter()
                .filter(|i| i.state.last_sequence > 0)
                .filter_map(|i| {
                    let epoch = epoch_of(&i.config)?;
                    let channel = i.config.description.clone()?;
                    let position = Position {
                        offset: i.state.last_sequence,
                        epoch: epoch.to_string(),
                    };
                    Some((Arc::from(channel), position))
                })
                .collect())
        })
    }

    fn stats(&self) -> HistoryStats {
        self.0.streams.stats.lock().1
    }

    fn sweep(&self) {
        // JetStream expires events itself (size and TTL); the sweep only
        // refreshes the figures `stats` answers, at most every few seconds.
        let inner = &self.0;
        let period = inner.settings.heartbeat.max(Duration::from_secs(5));
        {
            let stats = inner.streams.stats.lock();
            if stats.0.is_some_and(|t| t.elapsed() < period) {
                return;
            }
        }
        if inner.streams.refreshing.swap(true, SeqCst) {
            return;
        }
        let weak = Arc::downgrade(inner);
        let flag = inner.streams.refreshing.clone();
        inner.runtime.spawn(async move {
            if let Some(inner) = weak.upgrade() {
                match inner.history_streams().await {
                    Ok(streams) => {
                        let figures = HistoryStats {
                            channels: streams.len(),
                            events: streams.iter().map(|i| i.state.messages as usize).sum(),
                            bytes: streams.iter().map(|i| i.state.bytes as usize).sum(),
                            budget_bytes: 0,
                            trimmed_for_budget: 0,
                        };
                        *inner.streams.stats.lock() = (Some(Instant::now()), figures);
                    }
                    Err(e) => tracing::debug!(error = %e, "history figures not refreshed"),
                }
                inner.refresh_user_figures().await;
            }
            flag.store(false, SeqCst);
        });
    }
}
