//! A user's record on its subject: reading the last one, appending one
//! under an expectation, and reading the events queued after the last
//! hand-over.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::stream::{self, LastRawMessageErrorKind};
use async_nats::HeaderMap;
use hubbub_server::engine::{EngineError, Publication};

use super::SLACK;
use crate::link::failed;
use crate::wire::{now_ms, UserRecord, UserState, EXPECTED_LAST_SUBJECT_SEQ};
use crate::Inner;

/// The stream config of the users stream.
pub(crate) fn users_stream_config(
    inner_names: &crate::names::Names,
    queue_size: usize,
    ttl: Duration,
) -> stream::Config {
    stream::Config {
        name: inner_names.users_stream(),
        subjects: vec![inner_names.users_subjects()],
        // The queue, and room for the records written beside it.
        max_messages_per_subject: i64::try_from(queue_size)
            .unwrap_or(i64::MAX)
            .saturating_add(SLACK),
        max_age: ttl,
        discard: stream::DiscardPolicy::Old,
        storage: stream::StorageType::File,
        num_replicas: 1,
        ..Default::default()
    }
}

impl Inner {
    /// The stream of every user's records and queued events (a handle;
    /// no request).
    async fn users_stream(&self) -> Result<async_nats::jetstream::stream::Stream<()>, EngineError> {
        let link = &self.link;
        link.js
            .get_stream_no_info(link.names.users_stream())
            .await
            .map_err(|e| failed("users", e))
    }

    pub(super) async fn user_state(&self, user: &str) -> Result<(u64, UserState), EngineError> {
        let link = &self.link;
        let stream = self.users_stream().await?;
        let subject = link.names.user_subject(user);
        match link
            .within(
                "user state",
                stream.get_last_raw_message_by_subject(&subject),
            )
            .await?
        {
            Ok(m) => match UserRecord::decode(&m.payload) {
                Ok(r) => Ok((m.sequence, r.state)),
                Err(e) => {
                    tracing::warn!(user, error = %e, "undecodable user record; starting afresh");
                    Ok((m.sequence, UserState::default()))
                }
            },
            Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => {
                Ok((0, UserState::default()))
            }
            Err(e) => Err(failed("user state", e)),
        }
    }

    /// Appends `record` if `expected` is still the subject's last sequence:
    /// the new sequence, or `None` when someone wrote first.
    pub(super) async fn write_user(
        &self,
        user: &str,
        expected: u64,
        record: &UserRecord,
    ) -> Result<Option<u64>, EngineError> {
        let mut headers = HeaderMap::new();
        headers.insert(EXPECTED_LAST_SUBJECT_SEQ, expected.to_string());
        let subject = self.link.names.user_subject(user);
        match self.link.append(subject, headers, record.encode()).await? {
            Ok(seq) => Ok(Some(seq)),
            Err(PublishErrorKind::WrongLastSequence) => Ok(None),
            Err(kind) => Err(failed("user record", kind)),
        }
    }

    /// Drops the user's messages before `before` (in the background:
    /// only storage depends on it).
    pub(super) fn purge_user(&self, user: &str, before: u64) {
        let link = self.link.clone();
        let subject = link.names.user_subject(user);
        self.runtime.spawn(async move {
            let Ok(stream) = link.js.get_stream_no_info(link.names.users_stream()).await else {
                return;
            };
            let purge = std::future::IntoFuture::into_future(
                stream.purge().filter(subject).sequence(before),
            );
            if let Err(e) = link.ask("purge", purge).await {
                tracing::debug!(error = %e, "user queue not purged");
            }
        });
    }

    /// The events queued after `state.drained`, up to sequence `upto`,
    /// oldest first, without those past their TTL.
    pub(super) async fn queued_events(
        &self,
        user: &str,
        state: &UserState,
        upto: u64,
    ) -> Result<Vec<Arc<Publication>>, EngineError> {
        if state.queued == 0 {
            return Ok(Vec::new());
        }
        let link = &self.link;
        let stream = self.users_stream().await?;
        let subject = link.names.user_subject(user);
        let oldest = now_ms().saturating_sub(self.settings.queue_ttl.as_millis() as u64);
        let mut out = Vec::new();
        let mut seq = state.drained + 1;
        while seq <= upto {
            let get = stream
                .raw_message_builder()
                .sequence(seq)
                .next_by_subject(subject.clone())
                .send();
            let m = match link.within("user queue", get).await? {
                Ok(m) => m,
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => break,
                Err(e) => return Err(failed("user queue", e)),
            };
            if m.sequence > upto {
                break;
            }
            seq = m.sequence + 1;
            let record = match UserRecord::decode(&m.payload) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(user, error = %e, "undecodable queued record skipped");
                    continue;
                }
            };
            match record.publication() {
                None => {}
                Some(_) if record.at < oldest => {
                    self.users.dropped.fetch_add(1, Relaxed);
                }
                Some(Ok(p)) => out.push(Arc::new(p)),
                Some(Err(e)) => {
                    tracing::warn!(user, error = %e, "undecodable queued event skipped")
                }
            }
        }
        let size = self.settings.queue_size;
        if out.len() > size {
            let extra = out.len() - size;
            self.users.dropped.fetch_add(extra as u64, Relaxed);
            out.drain(..extra);
        }
        Ok(out)
    }

    /// Refreshes `queued_for_users`.
    pub(crate) async fn refresh_user_figures(&self) {
        let link = &self.link;
        if let Ok(Ok(s)) = link
            .within("users", link.js.get_stream(link.names.users_stream()))
            .await
        {
            self.users
                .queued
                .store(s.cached_info().state.messages, Relaxed);
        }
    }
}
