//! Binding, accepting and shutting down one hub node.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hubbub_protocol::CloseCode;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::auth::Authenticator;
use crate::config::Config;
use crate::conn::handle::CloseRequest;
use crate::metrics::Metrics;
use crate::node::Node;
use crate::state::Shared;

/// Descriptors kept, besides `server.max_http_connections`, for everything
/// that is neither a WebSocket nor an HTTP connection (listener, logs,
/// Redis...). With the default 128 HTTP connections, 256 in all.
const FD_RESERVE: u64 = 128;

/// The accept loop's pause after a failed accept, doubled while failures
/// continue: out of descriptors, retrying at once would only spin.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A bound, not yet running hub node.
pub struct Server {
    shared: Arc<Shared>,
    listener: TcpListener,
    app: axum::Router,
    tls: Option<TlsAcceptor>,
}

/// A configuration problem found while binding (a key or certificate file
/// missing or wrong, auth required with no key): `InvalidInput`, so the
/// CLI can tell it from a failure to listen.
fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

impl Server {
    /// Binds `config.server.listen` (port 0 picks a free port), loads the
    /// token keys of `[auth]` and the TLS certificate, and lowers the
    /// connection limit, with a warning, to what the descriptor limit allows.
    pub async fn bind(config: Config) -> io::Result<Server> {
        let node = Node::new(config).map_err(|e| invalid(e.message))?;
        Self::bind_node(node).await
    }

    /// As [`Server::bind`], with tokens verified by `auth` instead of the
    /// keys of `[auth]` (for applications that embed the hub and check
    /// tokens their own way).
    pub async fn bind_with_authenticator(
        config: Config,
        auth: Option<Arc<dyn Authenticator>>,
    ) -> io::Result<Server> {
        let node = Node::builder(config)
            .authenticator(auth)
            .build()
            .map_err(|e| invalid(e.message))?;
        Self::bind_node(node).await
    }

    /// Binds `server.listen` for a node built already.
    pub async fn bind_node(node: Node) -> io::Result<Server> {
        let shared = node.shared().clone();
        let tls = tls_acceptor(&shared.config)?;
        let listener = listen(shared.config.server.listen)?;
        if let Ok(addr) = listener.local_addr() {
            shared.hub.set_address(addr.to_string());
        }
        let app = crate::http::app(shared.clone());
        Ok(Server {
            shared,
            listener,
            app,
            tls,
        })
    }

    /// Whether the node serves TLS (`wss://`, `https://`).
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The node this server runs.
    pub fn node(&self) -> Node {
        Node::from_shared(self.shared.clone())
    }

    /// The node's shared state (for embedding applications and tests).
    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    /// Accepts connections until `shutdown` completes, then answers 503 on
    /// `/readyz` for `server.drain_delay_ms` while still serving, then
    /// closes every WebSocket connection with 1001 (`reconnect: true`) and
    /// waits up to `server.shutdown_timeout_ms` for them to finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let Server {
            shared,
            listener,
            app,
            tls,
        } = self;
        Node::from_shared(shared.clone()).start_housekeeping();
        shared.mark_serving();
        // After the signal: not ready, still serving, for the drain delay.
        let drain_delay = Duration::from_millis(shared.config.server.drain_delay_ms);
        let draining = shared.clone();
        let shutdown = async move {
            shutdown.await;
            draining
                .draining
                .store(true, std::sync::atomic::Ordering::Relaxed);
            draining.readiness_moved();
            if !drain_delay.is_zero() {
                tracing::info!(
                    delay_ms = drain_delay.as_millis() as u64,
                    "not ready; closing connections after the drain delay"
                );
                tokio::time::sleep(drain_delay).await;
            }
        };
        let handshake_timeout = Duration::from_millis(shared.config.server.handshake_timeout_ms);
        let mut backoff = AcceptBackoff::default();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        backoff.succeeded();
                        let _ = stream.set_nodelay(true);
                        // One deadline for the TLS handshake and the request head together.
                        let deadline = tokio::time::Instant::now() + handshake_timeout;
                        let (shared, app) = (shared.clone(), app.clone());
                        match &tls {
                            None => {
                                tokio::spawn(crate::transport::serve_socket(stream, peer, shared, app, deadline));
                            }
                            Some(acceptor) => {
                                let accept = acceptor.accept(stream);
                                tokio::spawn(async move {
                                    match tokio::time::timeout_at(deadline, accept).await {
                                        Ok(Ok(tls)) => crate::transport::serve_socket(tls, peer, shared, app, deadline).await,
                                        Ok(Err(e)) => {
                                            tracing::debug!(error = %e, "TLS handshake failed");
                                            Metrics::inc(&shared.metrics.handshakes_refused);
                                        }
                                        Err(_) => {
                                            Metrics::inc(&shared.metrics.handshakes_refused);
                                            Metrics::inc(&shared.metrics.handshake_timeouts);
                                        }
                                    }
                                });
                            }
                        }
                    }
                    Err(e) => {
                        Metrics::inc(&shared.metrics.accept_errors);
                        let pause = backoff.failed(&e);
                        tokio::time::sleep(pause).await;
                    }
                },
            }
        }
        drop(listener);
        drain(&shared).await;
        Ok(())
    }
}

/// The accept loop's pause after failures (out of descriptors, mostly):
/// doubling from 5 ms to 1 s while they continue, and one warning per
/// streak instead of one per failure.
#[derive(Default)]
struct AcceptBackoff {
    pause: Duration,
    failures: u64,
}

impl AcceptBackoff {
    /// How long to pause after this failure.
    fn failed(&mut self, e: &io::Error) -> Duration {
        self.failures += 1;
        if self.failures == 1 {
            tracing::warn!(error = %e, "accept failed; backing off until accepts succeed again");
        }
        self.pause = (self.pause * 2).clamp(ACCEPT_BACKOFF_MIN, ACCEPT_BACKOFF_MAX);
        self.pause
    }

    /// An accept succeeded: the streak (if any) is over.
    fn succeeded(&mut self) {
        if self.failures > 0 {
            tracing::warn!(failures = self.failures, "accepting again");
            *self = AcceptBackoff::default();
        }
    }
}

/// Periodic cleanup (`server.cleanup_interval_ms`): expired history and
/// offline queues, and the connection-rate tables. Ends when shutdown begins.
pub(crate) async fn housekeeping(shared: Arc<Shared>) {
    let period = Duration::from_millis(shared.config.server.cleanup_interval_ms.max(100));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stop = shared.shutdown_signal();
    loop {
        tokio::select! {
            _ = tick.tick() => {
                shared.engine.history.sweep();
                shared.engine.broker.sweep();
                shared.limits.sweep();
            }
            _ = stop.changed() => return,
        }
    }
}

/// Lowers `server.max_connections`, with a warning, to what the descriptor
/// limit allows (after raising the soft limit to the hard one).
pub(crate) fn fit_to_descriptors(config: &mut Config) {
    let Some(fit) = fd_capacity(config.server.max_http_connections) else {
        return;
    };
    let wanted = config.server.max_connections;
    if (wanted as u64) > fit {
        // The built-in default is above most machines' limit: that is the
        // normal case, not something to warn about.
        if wanted == crate::config::ServerConfig::default().max_connections {
            tracing::info!("at most {fit} WebSocket connections (the file-descriptor limit)");
        } else {
            tracing::warn!(
                "server.max_connections = {wanted} is above what the file-descriptor limit \
                 allows: at most {fit} WebSocket connections"
            );
        }
        config.server.max_connections = fit as usize;
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

/// The TLS acceptor for `server.tls_cert` and `server.tls_key` (rustls
/// with the ring provider; TLS 1.2 and 1.3; ALPN `http/1.1`, which both
/// WebSocket and the HTTP API use).
fn tls_acceptor(config: &Config) -> io::Result<Option<TlsAcceptor>> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert), Some(key)) = (&config.server.tls_cert, &config.server.tls_key) else {
        return Ok(None);
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid(format!("server.tls_cert {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(invalid(format!(
            "server.tls_cert {}: no certificate in the file",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| invalid(format!("server.tls_key {}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(format!("server.tls_cert/tls_key: {e}")))?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(tls))))
}

/// Binds with a deep accept queue: the std default (128) overflows under
/// connection bursts and every dropped SYN costs the client a 1 s retry.
/// The kernel caps the backlog at `net.core.somaxconn`.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// How many WebSocket connections the descriptor limit leaves room for,
/// after raising the soft limit to the hard one and keeping descriptors for
/// `http` HTTP connections and the reserve.
fn fd_capacity(http: usize) -> Option<u64> {
    let limit = rlimit::increase_nofile_limit(u64::MAX).ok()?;
    Some(limit.saturating_sub(FD_RESERVE + http as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_failures_back_off_to_a_second_and_reset() {
        let mut b = AcceptBackoff::default();
        let emfile = io::Error::from_raw_os_error(24);
        let pauses: Vec<u128> = (0..10).map(|_| b.failed(&emfile).as_millis()).collect();
        assert_eq!(pauses, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        assert_eq!(b.failures, 10);
        b.succeeded();
        assert_eq!(b.failures, 0);
        assert_eq!(b.failed(&emfile), ACCEPT_BACKOFF_MIN);
    }
}
