//! The connection to NATS: connecting, the time limit on every request,
//! the link's state for `health()` and resync, and the few JetStream
//! helpers every part shares.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use async_nats::{Client, HeaderMap};
use bytes::Bytes;
use hubbub_server::engine::EngineError;
use tokio::sync::Notify;

use crate::names::Names;

/// What every part of the engine needs to talk to NATS.
#[derive(Clone)]
pub(crate) struct Link {
    pub client: Client,
    pub js: jetstream::Context,
    pub names: Names,
    /// `engine.timeout_ms`: the limit on every request.
    pub timeout: Duration,
    pub state: Arc<LinkState>,
}

/// What the connection went through, as `async-nats` reports it.
#[derive(Default)]
pub(crate) struct LinkState {
    /// The link was cut since the last resync.
    lost: AtomicBool,
    /// Back after a cut, or a subscription overflowed: events may be missed.
    missed: AtomicBool,
    /// Wakes the resync task.
    pub changed: Notify,
}

impl LinkState {
    fn on_event(&self, event: async_nats::Event) {
        match event {
            async_nats::Event::Connected => {
                if self.lost.swap(false, SeqCst) {
                    tracing::warn!("NATS link restored");
                    self.missed.store(true, SeqCst);
                    self.changed.notify_one();
                }
            }
            async_nats::Event::Disconnected => {
                tracing::warn!("NATS link lost");
                self.lost.store(true, SeqCst);
            }
            async_nats::Event::Closed => tracing::warn!("NATS connection closed"),
            async_nats::Event::SlowConsumer(sid) => {
                tracing::warn!(sid, "a NATS subscription overflowed: events were dropped");
                self.missed.store(true, SeqCst);
                self.changed.notify_one();
            }
            other => tracing::info!(event = %other, "NATS"),
        }
    }

    /// Whether events may have been missed since the last call.
    pub(crate) fn take_missed(&self) -> bool {
        self.missed.swap(false, SeqCst)
    }
}

/// Connects to `url` with `timeout` on the connection and every request.
pub(crate) async fn connect(
    url: &str,
    prefix: &str,
    timeout: Duration,
) -> Result<Link, EngineError> {
    let state = Arc::new(LinkState::default());
    let events = state.clone();
    let client = async_nats::ConnectOptions::new()
        .name(format!("hubbub ({prefix})"))
        .connection_timeout(timeout)
        .request_timeout(Some(timeout))
        // A subscription that falls this far behind drops messages and
        // says so (SlowConsumer): the node then resyncs.
        .subscription_capacity(8192)
        .max_reconnects(None)
        .event_callback(move |event| {
            events.on_event(event);
            std::future::ready(())
        })
        .connect(url)
        .await
        .map_err(|e| EngineError(format!("NATS at {url}: {e}")))?;
    let js = jetstream::ContextBuilder::new()
        .timeout(timeout)
        .ack_timeout(timeout)
        .build(client.clone());
    Ok(Link {
        client,
        js,
        names: Names::new(prefix),
        timeout,
        state,
    })
}

impl Link {
    /// Err while NATS is unreachable.
    pub(crate) fn health(&self) -> Result<(), EngineError> {
        match self.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            other => Err(EngineError(format!("NATS unreachable ({other})"))),
        }
    }

    /// `fut` within the request time limit: its own result, or an error
    /// saying `what` timed out.
    pub(crate) async fn within<T>(
        &self,
        what: &str,
        fut: impl Future<Output = T>,
    ) -> Result<T, EngineError> {
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| EngineError(format!("{what}: no answer from NATS in {:?}", self.timeout)))
    }

    /// Like [`Link::within`], for a fallible `fut` whose error says enough.
    pub(crate) async fn ask<T, E: std::fmt::Display>(
        &self,
        what: &str,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T, EngineError> {
        self.within(what, fut).await?.map_err(|e| failed(what, e))
    }

    /// Appends to a stream and waits for its acknowledgement; `Ok(Err)`
    /// carries JetStream's refusal (no stream, wrong last sequence) for
    /// the caller to judge.
    pub(crate) async fn append(
        &self,
        subject: String,
        headers: HeaderMap,
        payload: Bytes,
    ) -> Result<Result<u64, jetstream::context::PublishErrorKind>, EngineError> {
        let js = self.js.clone();
        self.within("append", async move {
            let ack = match js.publish_with_headers(subject, headers, payload).await {
                Ok(ack) => ack,
                Err(e) => return Err(e),
            };
            ack.await
        })
        .await?
        .map(|ack| Ok(ack.sequence))
        .or_else(|e| match e.kind() {
            k @ (jetstream::context::PublishErrorKind::StreamNotFound
            | jetstream::context::PublishErrorKind::WrongLastSequence) => Ok(Err(k)),
            _ => Err(failed("append", e)),
        })
    }

    /// Creates `config`'s stream unless it exists (then it is used as it
    /// is, with a warning where another node made it differently).
    pub(crate) async fn ensure_stream(&self, config: stream::Config) -> Result<(), EngineError> {
        let name = config.name.clone();
        match self
            .within("create stream", self.js.create_stream(config))
            .await?
        {
            Ok(_) => Ok(()),
            Err(e) if name_taken(&e) => {
                tracing::warn!(
                    stream = %name,
                    "the stream exists with another configuration; using it as it is"
                );
                Ok(())
            }
            Err(e) => Err(failed(&format!("create stream {name}"), e)),
        }
    }

    /// A key-value bucket (the layout `nats kv add` makes, so the CLI can
    /// read it) keeping the newest value of each key for `ttl`.
    pub(crate) async fn ensure_bucket(
        &self,
        bucket: &str,
        ttl: Duration,
    ) -> Result<(), EngineError> {
        self.ensure_stream(stream::Config {
            name: crate::names::kv_stream(bucket),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            max_age: ttl,
            discard: stream::DiscardPolicy::New,
            allow_rollup: true,
            deny_delete: true,
            allow_direct: true,
            storage: stream::StorageType::File,
            num_replicas: 1,
            ..Default::default()
        })
        .await
    }
}

/// Whether a stream lookup failed because there is no such stream.
pub(crate) fn no_stream(e: &jetstream::context::GetStreamError) -> bool {
    matches!(
        e.kind(),
        jetstream::context::GetStreamErrorKind::JetStream(j)
            if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND
    )
}

/// Whether a stream creation failed because the name is taken (by a
/// stream made with another configuration).
pub(crate) fn name_taken(e: &jetstream::context::CreateStreamError) -> bool {
    matches!(
        e.kind(),
        jetstream::context::CreateStreamErrorKind::JetStream(j)
            if j.error_code() == jetstream::ErrorCode::STREAM_NAME_EXIST
    )
}

/// An engine error saying `what` failed and why.
pub(crate) fn failed(what: &str, e: impl std::fmt::Display) -> EngineError {
    EngineError(format!("{what}: {e}"))
}
