//! The queue's one publisher: it takes the changes in the order they were
//! made (a bounded queue, fed under the queue's lock), appends them to the
//! log in batches, publishes their events on `tasks` in that order, and
//! only then lets each change's caller answer. So events go out in the
//! order of the changes, each answer follows its own event, and an
//! answered change is on disk; no lock is held while it writes or
//! publishes.

use std::sync::Arc;

use hubbub_protocol::tasks::QueueStatus;
use hubbub_protocol::{EventPayload, JsonData};
use hubbub_server::{Node, Retention, TASKS_CHANNEL};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::log::{put_line, remove_line, Log};
use crate::store::{Held, Store};

/// Changes queued for the publisher at most. When it is that far behind
/// (a slow disk or engine), callers wait for room (backpressure): no
/// change is dropped, none is reordered.
pub(crate) const QUEUE: usize = 1_024;
/// Changes written and published per round: one `write` and one flush
/// for up to this many.
const BATCH: usize = 256;
/// The log is rewritten once it has this many records more than tasks
/// held, and twice as many: rewriting stays a small share of the work.
const REWRITE_MIN: u64 = 1_024;

/// The queue's state, behind its one lock.
#[derive(Default)]
pub(crate) struct State {
    pub store: Store,
    /// The number of the latest change.
    pub seq: u64,
}

/// The answer a change's caller waits for: `Err` when it could not be
/// saved.
pub(crate) type Ack = oneshot::Sender<Result<(), String>>;

/// One change, in the order made.
pub(crate) struct Change {
    pub seq: u64,
    /// The task as it now is, when it changed.
    pub put: Option<Held>,
    /// The event that announces it.
    pub event: Option<&'static str>,
    /// Tasks dropped (retention).
    pub removed: Vec<String>,
    /// `queue_status` to publish (a tick of the timer).
    pub queue: Option<QueueStatus>,
    pub ack: Option<Ack>,
}

impl Change {
    /// A change numbered by the state it was made on.
    pub fn new(state: &mut State) -> Change {
        state.seq += 1;
        Change {
            seq: state.seq,
            put: None,
            event: None,
            removed: Vec::new(),
            queue: None,
            ack: None,
        }
    }
}

/// Runs until the node closes (then drains what is queued) or every
/// sender is gone.
pub(crate) async fn run(
    node: Node,
    keep: Retention,
    state: Arc<Mutex<State>>,
    mut log: Option<Log>,
    mut rx: mpsc::Receiver<Change>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    // Changes up to this number are in the log already (a rewrite took
    // them from the state): not appended again.
    let mut saved_to = 0u64;
    let closed = node.closed();
    tokio::pin!(closed);
    let mut closing = false;
    loop {
        let n = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => n,
            _ = &mut closed, if !closing => {
                closing = true;
                rx.close();
                continue;
            }
        };
        if n == 0 {
            break;
        }
        let mut buf = Vec::new();
        let mut records = 0u64;
        let mut texts = Vec::with_capacity(batch.len());
        for c in &batch {
            let json = c
                .put
                .as_ref()
                .map(|h| serde_json::to_string(&h.task).expect("a task serializes to JSON"));
            if log.is_some() && c.seq > saved_to {
                if let (Some(h), Some(j)) = (&c.put, &json) {
                    put_line(&mut buf, h.n, j);
                    records += 1;
                }
                for id in &c.removed {
                    remove_line(&mut buf, id);
                    records += 1;
                }
            }
            texts.push(json);
        }
        let saved = save(&mut log, buf, records).await;
        if let Some(seq) = rewrite_if_grown(&mut log, &state).await {
            saved_to = seq;
        }
        for (c, json) in batch.drain(..).zip(texts) {
            publish(&node, keep, &c, json).await;
            if let Some(ack) = c.ack {
                let _ = ack.send(saved.clone());
            }
        }
    }
}

/// Appends a batch's records (on a blocking thread: a flush takes
/// milliseconds).
async fn save(log: &mut Option<Log>, buf: Vec<u8>, records: u64) -> Result<(), String> {
    if records == 0 {
        return Ok(());
    }
    let Some(mut l) = log.take() else {
        return Ok(());
    };
    let (l, r) = tokio::task::spawn_blocking(move || {
        let r = l.append(&buf, records);
        (l, r)
    })
    .await
    .expect("the log writer does not panic");
    *log = Some(l);
    r.map_err(|e| {
        tracing::error!(error = %e, "the task list could not be saved");
        format!("the change took effect but could not be saved: {e}")
    })
}

/// Rewrites the log when it has grown well past the tasks held; returns
/// the number of the latest change the new log holds.
async fn rewrite_if_grown(log: &mut Option<Log>, state: &Arc<Mutex<State>>) -> Option<u64> {
    let l = log.as_ref()?;
    let held = state.lock().store.len() as u64;
    if l.appended < REWRITE_MIN || l.appended < 2 * held {
        return None;
    }
    let (all, seq) = {
        let s = state.lock();
        (s.store.all(), s.seq)
    };
    let mut l = log.take()?;
    let (l, r) = tokio::task::spawn_blocking(move || {
        let r = l.rewrite(&all);
        (l, r)
    })
    .await
    .expect("the log writer does not panic");
    *log = Some(l);
    match r {
        Ok(()) => Some(seq),
        Err(e) => {
            // The old log is whole: appends go on to it.
            tracing::error!(error = %e, "the task log could not be rewritten");
            None
        }
    }
}

/// Publishes a change's events on `tasks`: task events kept as `keep`
/// says (a dashboard that reconnects recovers them), `queue_status` live
/// only (the next one supersedes it).
async fn publish(node: &Node, keep: Retention, c: &Change, json: Option<String>) {
    if let (Some(event), Some(json)) = (c.event, json) {
        let data = JsonData::from_json(&json).expect("a task is JSON");
        if let Err(e) = node
            .publish_json_with(TASKS_CHANNEL, event, data, keep)
            .await
        {
            tracing::warn!(error = %e.message, event, "a task event could not be published");
        }
    }
    if let Some(q) = &c.queue {
        if let Err(e) = node
            .publish_with(
                TASKS_CHANNEL,
                QueueStatus::EVENT_TYPE,
                q,
                Retention::Transient,
            )
            .await
        {
            tracing::debug!(error = %e.message, "queue_status could not be published");
        }
    }
}
