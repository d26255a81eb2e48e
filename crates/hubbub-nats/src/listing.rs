//! Reading the newest message of every subject under a filter (a
//! key-value bucket's keys under a prefix): an ephemeral pull consumer
//! delivering the last message per subject, drained, then deleted.
//! Server 2.9 has no batched direct get, so this is the one-request way
//! to list a bucket's keys under a prefix.

use std::time::Duration;

use async_nats::jetstream::consumer::{pull, AckPolicy, DeliverPolicy};
use async_nats::Message;
use futures_util::StreamExt;
use hubbub_server::engine::EngineError;

use crate::link::{failed, Link};

/// Messages fetched per pull request.
const BATCH: u64 = 1_000;
/// Messages listed at most.
const MAX: usize = 100_000;

/// The newest message of each subject of `stream` matching `filter`
/// (payloads left out with `headers_only`), oldest first.
pub(crate) async fn last_per_subject(
    link: &Link,
    stream: &str,
    filter: String,
    headers_only: bool,
) -> Result<Vec<Message>, EngineError> {
    let handle = link
        .js
        .get_stream_no_info(stream)
        .await
        .map_err(|e| failed("stream", e))?;
    let config = pull::Config {
        deliver_policy: DeliverPolicy::LastPerSubject,
        filter_subject: filter,
        ack_policy: AckPolicy::None,
        headers_only,
        memory_storage: true,
        num_replicas: 1,
        // Deleted right after; this only bounds a consumer left behind by
        // a node that died meanwhile.
        inactive_threshold: Duration::from_secs(30),
        ..Default::default()
    };
    let consumer = link
        .ask("create consumer", handle.create_consumer(config))
        .await?;
    let name = consumer.cached_info().name.clone();
    let listed = async {
        let mut pending = consumer.cached_info().num_pending;
        let mut out = Vec::new();
        while pending > 0 && out.len() < MAX {
            let mut batch = link
                .ask(
                    "fetch",
                    consumer
                        .fetch()
                        .max_messages(pending.min(BATCH) as usize)
                        .messages(),
                )
                .await?;
            let before = out.len();
            while let Some(m) = link.within("fetch", batch.next()).await? {
                let m = m.map_err(|e| failed("fetch", e))?;
                pending = m.info().map(|i| i.pending).unwrap_or(0);
                out.push(m.message);
                if pending == 0 {
                    break;
                }
            }
            if out.len() == before {
                break; // deleted meanwhile
            }
        }
        Ok(out)
    }
    .await;
    let js = link.js.clone();
    let stream = stream.to_owned();
    tokio::spawn(async move {
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            js.delete_consumer_from_stream(&name, &stream),
        )
        .await;
    });
    listed
}

/// Whether a key-value message records a deletion rather than a value.
pub(crate) fn is_deletion(m: &Message) -> bool {
    m.headers
        .as_ref()
        .and_then(|h| h.get(crate::wire::KV_OPERATION))
        .is_some()
}
