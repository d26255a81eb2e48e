//! Small helpers shared across modules.

use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock time in ms since the Unix epoch (the protocol's `timestamp`).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Runs `work` at once where it finishes without waiting (the memory
/// engine answers at once), else in a task of its own: for engine calls a
/// caller must not wait for (a closing connection's leftovers).
pub(crate) fn soon(work: impl std::future::Future<Output = ()> + Send + 'static) {
    let mut work = Box::pin(work);
    if futures_util::FutureExt::now_or_never(&mut work).is_none() {
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(work);
        }
    }
}
