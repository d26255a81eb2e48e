//! Channel history on JetStream: one stream per channel, whose sequence is
//! the offset (JetStream numbers atomically, so two nodes never hand out
//! the same one) and whose epoch is a random token chosen when the stream
//! is created and kept in its only subject (`<prefix>.h.<token>.<epoch>`).
//! A lost or recreated stream therefore has a new epoch, and a publisher
//! still holding the old one gets "no stream" rather than numbering into
//! the new history under the old name.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use async_nats::jetstream::{context::PublishErrorKind, stream};
use async_nats::HeaderMap;
use futures_util::StreamExt;
use hubbub_server::engine::{
    EngineError, HistoryOptions, HistoryRead, HistoryStats, Position, Publication,
};
use parking_lot::Mutex;

use crate::link::{failed, name_taken, no_stream, Link};
use crate::names::{channel_token, new_epoch};
use crate::wire::{decode_publication, encode_publication};
use crate::Inner;

mod store;
pub(crate) use store::NatsHistory;

/// Streams whose epoch this node knows, so a publish costs one request.
const MAX_KNOWN: usize = 65_536;
/// Requests in flight while reading a slice of history.
const READ_CONCURRENCY: usize = 16;
/// Channels listed at most (`HistoryStore::channels` may cap).
const MAX_LISTED: usize = 10_000;

/// The epoch of a history stream: the last token of its subject.
pub(crate) fn epoch_of(config: &stream::Config) -> Option<Arc<str>> {
    let subject = config.subjects.first()?;
    let epoch = subject.rsplit('.').next()?;
    (!epoch.is_empty()).then(|| Arc::from(epoch))
}

struct Known {
    epoch: Arc<str>,
    opts: HistoryOptions,
}

/// The history side of the engine's state.
#[derive(Default)]
pub(crate) struct Streams {
    known: Mutex<HashMap<String, Known>>,
    stats: Mutex<(Option<Instant>, HistoryStats)>,
    refreshing: Arc<AtomicBool>,
}

impl Streams {
    fn cached(&self, channel: &str, opts: HistoryOptions) -> Option<Arc<str>> {
        let known = self.known.lock();
        let k = known.get(channel)?;
        (k.opts == opts).then(|| k.epoch.clone())
    }

    fn remember(&self, channel: &str, epoch: Arc<str>, opts: HistoryOptions) {
        let mut known = self.known.lock();
        if known.len() >= MAX_KNOWN {
            known.clear();
        }
        known.insert(channel.to_owned(), Known { epoch, opts });
    }

    fn forget(&self, channel: &str) {
        self.known.lock().remove(channel);
    }
}

fn stream_config(
    link: &Link,
    channel: &str,
    token: &str,
    epoch: &str,
    opts: HistoryOptions,
) -> stream::Config {
    stream::Config {
        name: link.names.history_stream(token),
        description: Some(channel.to_owned()),
        subjects: vec![link.names.history_subject(token, epoch)],
        max_messages: limit(opts),
        max_age: opts.ttl,
        discard: stream::DiscardPolicy::Old,
        storage: stream::StorageType::File,
        num_replicas: 1,
        ..Default::default()
    }
}

fn limit(opts: HistoryOptions) -> i64 {
    i64::try_from(opts.size.max(1)).unwrap_or(i64::MAX)
}

impl Inner {
    /// The stream of `channel`, made if missing and brought to `opts`:
    /// its epoch and last sequence.
    pub(crate) async fn open_stream(
        &self,
        channel: &str,
        opts: HistoryOptions,
    ) -> Result<(Arc<str>, u64), EngineError> {
        let link = &self.link;
        let token = channel_token(channel);
        let name = link.names.history_stream(&token);
        let info = match link
            .within("stream info", link.js.get_stream(&name))
            .await?
        {
            Ok(s) => s.cached_info().clone(),
            Err(e) if no_stream(&e) => {
                let config = stream_config(link, channel, &token, &new_epoch(), opts);
                match link
                    .within("create stream", link.js.create_stream(config))
                    .await?
                {
                    Ok(s) => s.cached_info().clone(),
                    // Another node made it first, with its own epoch.
                    Err(e) if name_taken(&e) => link
                        .ask("stream info", link.js.get_stream(&name))
                        .await?
                        .cached_info()
                        .clone(),
                    Err(e) => return Err(failed("create stream", e)),
                }
            }
            Err(e) => return Err(failed("stream info", e)),
        };
        let epoch = epoch_of(&info.config)
            .ok_or_else(|| EngineError(format!("stream {name} has no epoch subject")))?;
        if info.config.max_messages != limit(opts) || info.config.max_age != opts.ttl {
            let mut config = info.config.clone();
            config.max_messages = limit(opts);
            config.max_age = opts.ttl;
            config.duplicate_window = config.duplicate_window.min(opts.ttl);
            link.ask("update stream", link.js.update_stream(config))
                .await?;
        }
        self.streams.remember(channel, epoch.clone(), opts);
        // A follower waiting for this stream can start reading it.
        self.channels.wake(channel);
        Ok((epoch, info.state.last_sequence))
    }

    /// Numbers and keeps `p` in its channel's stream: its offset and epoch.
    pub(crate) async fn append_history(
        &self,
        p: &Publication,
        opts: HistoryOptions,
    ) -> Result<(u64, Arc<str>), EngineError> {
        let channel = p.event.channel.as_str();
        let token = channel_token(channel);
        let payload = encode_publication(p);
        // Twice at most: the second time after learning the stream's
        // current epoch (it was deleted, or recreated by another node).
        for _ in 0..2 {
            let epoch = match self.streams.cached(channel, opts) {
                Some(e) => e,
                None => self.open_stream(channel, opts).await?.0,
            };
            let subject = self.link.names.history_subject(&token, &epoch);
            match self
                .link
                .append(subject, HeaderMap::new(), payload.clone())
                .await?
            {
                Ok(seq) => return Ok((seq, epoch)),
                Err(PublishErrorKind::StreamNotFound) => self.streams.forget(channel),
                Err(kind) => return Err(failed("publish", kind)),
            }
        }
        Err(EngineError(format!(
            "the history stream of {channel:?} keeps changing"
        )))
    }

    async fn read_now(
        &self,
        channel: &str,
        since: Option<u64>,
        limit: usize,
    ) -> Result<HistoryRead, EngineError> {
        let link = &self.link;
        let name = link.names.history_stream(&channel_token(channel));
        let stream = match link
            .within("stream info", link.js.get_stream(&name))
            .await?
        {
            Ok(s) => s,
            Err(e) if no_stream(&e) => {
                return Ok(HistoryRead {
                    first_held: 1,
                    ..HistoryRead::default()
                })
            }
            Err(e) => return Err(failed("stream info", e)),
        };
        let info = stream.cached_info();
        let epoch = epoch_of(&info.config)
            .ok_or_else(|| EngineError(format!("stream {name} has no epoch subject")))?;
        let last = info.state.last_sequence;
        let mut first_held = if info.state.messages == 0 {
            last + 1
        } else {
            info.state.first_sequence.max(1)
        };
        let (start, count) = slice(since, limit, first_held, last);
        let got: Vec<_> = futures_util::stream::iter(start..start + count)
            .map(|seq| {
                let stream = &stream;
                async move { (seq, stream.get_raw_message(seq).await) }
            })
            .buffered(READ_CONCURRENCY)
            .collect()
            .await;
        let mut events = Vec::with_capacity(got.len());
        for (seq, r) in got {
            let m = match r {
                Ok(m) => m,
                Err(e) if e.kind() == stream::RawMessageErrorKind::NoMessageFound => {
                    // Expired since the stream info: streams lose events
                    // from the front only, so nothing before it is held.
                    if events.is_empty() {
                        first_held = first_held.max(seq + 1);
                    }
                    continue;
                }
                Err(e) => return Err(failed("read history", e)),
            };
            match decode_publication(&m.payload, Some((seq, epoch.clone()))) {
                Ok(p) if p.event.channel == channel => events.push(Arc::new(p)),
                Ok(_) => {} // a channel whose token collides
                Err(e) => {
                    tracing::warn!(channel, offset = seq, error = %e, "undecodable event skipped")
                }
            }
        }
        self.caught_up(channel, &epoch, last).await?;
        Ok(HistoryRead {
            top: Position {
                offset: last,
                epoch: epoch.to_string(),
            },
            events,
            first_held,
        })
    }

    /// Waits until this node's follower of `channel` (if it has one)
    /// delivered every event up to `top`: the hub parks live events while
    /// a subscriber recovers and drops those a read already returned, so
    /// an event must not reach it live after a read that returned it.
    async fn caught_up(
        &self,
        channel: &str,
        epoch: &Arc<str>,
        top: u64,
    ) -> Result<(), EngineError> {
        if top == 0 {
            return Ok(());
        }
        let Some(mut progress) = self.channels.progress(channel) else {
            return Ok(());
        };
        self.channels.wake(channel);
        let done =
            |p: &crate::channels::Progress| p.epoch.as_ref() == Some(epoch) && p.delivered >= top;
        // An error here means the follower stopped (the channel was
        // unfollowed): nothing more will reach the hub from it.
        let _ = self
            .link
            .within("history catch-up", async {
                progress.wait_for(done).await.map(|_| ())
            })
            .await?;
        Ok(())
    }
}

/// The stream sequences to read: from `start`, `count` of them.
fn slice(since: Option<u64>, limit: usize, first: u64, last: u64) -> (u64, u64) {
    let limit = u64::try_from(limit).unwrap_or(u64::MAX);
    if limit == 0 || first > last {
        return (first, 0);
    }
    match since {
        Some(s) => {
            let start = s.saturating_add(1).max(first);
            if start > last {
                (start, 0)
            } else {
                (start, (last - start + 1).min(limit))
            }
        }
        None => {
            let n = (last - first + 1).min(limit);
            (last - n + 1, n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_like_the_memory_store() {
        // Held: 4..=8.
        assert_eq!(slice(None, 100, 4, 8), (4, 5));
        assert_eq!(slice(None, 2, 4, 8), (7, 2));
        assert_eq!(slice(Some(5), 2, 4, 8), (6, 2));
        assert_eq!(slice(Some(0), 2, 4, 8), (4, 2));
        assert_eq!(slice(Some(8), 10, 4, 8).1, 0);
        assert_eq!(slice(Some(u64::MAX), 0, 4, 8).1, 0);
        assert_eq!(slice(Some(u64::MAX), usize::MAX, 4, 8).1, 0);
        assert_eq!(slice(Some(3), usize::MAX, 4, 8), (4, 5));
        // Nothing held.
        assert_eq!(slice(None, 10, 9, 8).1, 0);
        assert_eq!(slice(Some(0), 10, 1, 0).1, 0);
    }

    #[test]
    fn the_epoch_is_the_last_subject_token() {
        let config = stream::Config {
            subjects: vec!["p.h.0123.beef".into()],
            ..Default::default()
        };
        assert_eq!(epoch_of(&config).as_deref(), Some("beef"));
        assert_eq!(epoch_of(&stream::Config::default()), None);
    }
}
