//! Binding, accepting and shutting down one hub node.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hubbub_protocol::CloseCode;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::conn::handle::CloseRequest;
use crate::state::Shared;

/// Descriptors kept for everything that is not a WebSocket connection
/// (listener, HTTP API clients, logs, Redis...).
const FD_RESERVE: u64 = 256;

/// A bound, not yet running hub node.
pub struct Server {
    shared: Arc<Shared>,
    listener: TcpListener,
    app: axum::Router,
}

impl Server {
    /// Binds `config.server.listen` (port 0 picks a free port) and lowers the
    /// connection limit, with a warning, to what the descriptor limit allows.
    pub async fn bind(mut config: Config) -> io::Result<Server> {
        if let Some(fit) = fd_capacity() {
            if (config.server.max_connections as u64) > fit {
                tracing::warn!(
                    configured = config.server.max_connections,
                    lowered_to = fit,
                    "connection limit lowered to fit the file-descriptor limit"
                );
                config.server.max_connections = fit as usize;
            }
        }
        let listener = TcpListener::bind(config.server.listen).await?;
        let shared = Shared::new(config);
        let app = crate::http::app(shared.clone());
        Ok(Server {
            shared,
            listener,
            app,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The node's shared state (for embedding applications and tests).
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Accepts connections until `shutdown` completes, then closes every
    /// WebSocket connection with 1001 (`reconnect: true`) and waits up to
    /// `server.shutdown_timeout_ms` for them to finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let Server {
            shared,
            listener,
            app,
        } = self;
        tokio::spawn(housekeeping(shared.clone()));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(crate::transport::serve_socket(stream, peer, shared.clone(), app.clone()));
                    }
                    Err(e) => {
                        // Out of descriptors or similar: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                },
            }
        }
        drop(listener);
        drain(&shared).await;
        Ok(())
    }
}

/// Periodic cleanup (`server.cleanup_interval_ms`): expired history and
/// offline queues. Ends when shutdown begins.
async fn housekeeping(shared: Arc<Shared>) {
    let period = Duration::from_millis(shared.config.server.cleanup_interval_ms.max(100));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = shared.shutdown_signal();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                shared.history.sweep();
                shared.users.sweep();
            }
            _ = stop.changed() => return,
        }
    }
}

/// Closes every connection with 1001 and waits for them, within the deadline.
pub(crate) async fn drain(shared: &Shared) {
    shared.begin_shutdown();
    let all = shared.conns.all();
    tracing::info!(connections = all.len(), "shutting down");
    for c in all {
        c.close(CloseRequest::new(CloseCode::GOING_AWAY));
    }
    let deadline = Duration::from_millis(shared.config.server.shutdown_timeout_ms);
    if tokio::time::timeout(deadline, shared.conns.wait_empty())
        .await
        .is_err()
    {
        tracing::warn!(
            left = shared.conns.count(),
            "shutdown deadline passed; dropping connections"
        );
    }
}

/// How many connections the descriptor limit leaves room for, after raising
/// the soft limit to the hard one.
fn fd_capacity() -> Option<u64> {
    let limit = rlimit::increase_nofile_limit(u64::MAX).ok()?;
    Some(limit.saturating_sub(FD_RESERVE))
}
