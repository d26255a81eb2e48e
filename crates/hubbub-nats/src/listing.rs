//! Reading the newest message of every subject under a filter (a
//! key-value bucket's keys under a prefix): an ephemeral pull consumer
//! delivering the last message per subject, drained, then deleted.
//! Server 2.9 has no batched direct get, so this is the one-request way
//! to list a bucket's keys under a prefix.
//!
//! A key written while the listing runs moves past the consumer's start:
//! its old message is gone and the new one comes after the others, so the
//! listing reads on until the consumer has nothing more and keeps the
//! newest message of each subject (a key read twice counts once, a key
//! rewritten meanwhile is not missed). The consumer's pending count may
//! then still include a message that was replaced before it was
//! delivered, and a fetch waiting for it would wait for the next write to
//! the bucket; so each fetch expires after [`FETCH_WAIT`], and one that
//! returns nothing ends the listing (the server had nothing more to give).

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
/// How long a fetch waits for messages the server counts as pending but
/// may have dropped (see the module's notes).
const FETCH_WAIT: Duration = Duration::from_millis(100);

/// The newest message of each subject of `stream` matching `filter`
/// (payloads left out with `headers_only`), oldest first.
pub(crate) async fn last_per_subject(
    link: &Link,
    stream: &str,
    filter: String,
    headers_only: bool,
) -> Result<Vec<Message>, EngineError> {
    let listed = numbered_last_per_subject(link, stream, filter, headers_only).await?;
    Ok(listed.into_iter().map(|(_, m)| m).collect())
}

/// [`last_per_subject`] with each message's stream sequence (a key's
/// revision), for readers that order entries by when they were written.
pub(crate) async fn numbered_last_per_subject(
    link: &Link,
    stream: &str,
    filter: String,
    headers_only: bool,
) -> Result<Vec<(u64, Message)>, EngineError> {
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
                        .expires(FETCH_WAIT)
                        .messages(),
                )
                .await?;
            let before = out.len();
            while let Some(m) = link.within("fetch", batch.next()).await? {
                let m = m.map_err(|e| failed("fetch", e))?;
                let (seq, left) = m
                    .info()
                    .map(|i| (i.stream_sequence, i.pending))
                    .unwrap_or((0, 0));
                pending = left;
                out.push((seq, m.message));
                if pending == 0 {
                    break;
                }
            }
            if out.len() == before {
                break; // nothing more (see the module's notes)
            }
        }
        Ok(out)
    }
    .await
    .map(newest_per_subject);
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

/// Keeps the last of each subject's messages (read in stream order), in
/// stream order.
fn newest_per_subject(listed: Vec<(u64, Message)>) -> Vec<(u64, Message)> {
    let mut last = std::collections::HashMap::with_capacity(listed.len());
    for (i, (_, m)) in listed.iter().enumerate() {
        last.insert(m.subject.as_str(), i);
    }
    let keep: Vec<bool> = (0..listed.len())
        .map(|i| last.get(listed[i].1.subject.as_str()) == Some(&i))
        .collect();
    drop(last);
    listed
        .into_iter()
        .zip(keep)
        .filter_map(|(m, keep)| keep.then_some(m))
        .collect()
}

/// Whether a key-value message records a deletion rather than a value.
pub(crate) fn is_deletion(m: &Message) -> bool {
    m.headers
        .as_ref()
        .and_then(|h| h.get(crate::wire::KV_OPERATION))
        .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(subject: &str) -> Message {
        Message {
            subject: subject.into(),
            reply: None,
            payload: bytes::Bytes::new(),
            headers: None,
            status: None,
            description: None,
            length: 0,
        }
    }

    #[test]
    fn a_key_rewritten_during_a_listing_counts_once_at_its_newest() {
        let read = vec![
            (3, message("k.a")),
            (5, message("k.b")),
            (7, message("k.c")),
            // Rewritten after the listing started: read again, later.
            (9, message("k.a")),
        ];
        let kept: Vec<(u64, String)> = newest_per_subject(read)
            .into_iter()
            .map(|(seq, m)| (seq, m.subject.to_string()))
            .collect();
        assert_eq!(
            kept,
            [(5, "k.b".into()), (7, "k.c".into()), (9, "k.a".into())]
        );
    }
}
