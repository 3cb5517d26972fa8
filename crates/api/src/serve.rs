//! The HTTP server loop: hyper's HTTP/1 with the connection limits a daemon exposed to
//! hostile clients needs. A client that never finishes its headers (or sits idle on a
//! keep-alive connection) is cut off after `header_timeout`; a body that stops arriving
//! fails after `body_timeout` without a byte (408); past `max_connections` open at once,
//! a new connection gets a 503 with `Retry-After` and is closed, so stalled connections
//! cannot grow without bound while `/health` and small requests stay fast.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use tower::ServiceExt;
use tower_http::timeout::RequestBodyTimeoutLayer;
use tracing::{debug, warn};

/// Limits on client connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Longest wait for a request's headers, counted from the connection's start or the
    /// end of the previous response (so also the keep-alive idle limit).
    pub header_timeout: Duration,
    /// Longest wait for the next bytes of a request body.
    pub body_timeout: Duration,
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            max_connections: 512,
        }
    }
}

/// Where a request came from, put in every request's extensions by [`serve`]: a Unix
/// socket or a loopback address is local (this machine). Routes that act on the daemon's
/// own files (`/models/load?link=`) serve only local requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// True for a Unix socket or a loopback TCP address.
    pub local: bool,
}

/// A listener address that knows whether it is on this machine.
pub trait PeerAddr {
    /// True for a Unix socket or a loopback address.
    fn is_local(&self) -> bool;
}

impl PeerAddr for std::net::SocketAddr {
    fn is_local(&self) -> bool {
        match self.ip() {
            std::net::IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map_or(v6.is_loopback(), |v4| v4.is_loopback()),
            ip => ip.is_loopback(),
        }
    }
}

impl PeerAddr for tokio::net::unix::SocketAddr {
    fn is_local(&self) -> bool {
        true
    }
}

/// What a connection over the limit is told before it is closed (its length derived
/// from the body, never written by hand).
fn refusal() -> Vec<u8> {
    let body = r#"{"error":{"message":"too many open connections; retry later","type":"server_error","param":null,"code":"too_many_connections"}}"#;
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves, then lets the
/// requests in progress finish.
pub async fn serve<L>(
    mut listener: L,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: PeerAddr,
{
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let service = tower::ServiceBuilder::new()
        .layer(RequestBodyTimeoutLayer::new(limits.body_timeout))
        .service(app);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = &mut shutdown => break,
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            warn!(
                max = limits.max_connections,
                "too many open connections; refusing one"
            );
            tokio::spawn(refuse(io));
            continue;
        };
        let peer = Peer {
            local: addr.is_local(),
        };
        let service = service.clone().map_request(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(peer);
                req
            },
        );
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                debug!(cause = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Tells a connection over the limit to come back later, without reading from it.
async fn refuse<Io: tokio::io::AsyncWrite + Unpin>(mut io: Io) {
    let write = async {
        io.write_all(&refusal()).await?;
        io.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// True when `e` (or what caused it) is a request body that stopped arriving.
pub(crate) fn body_timed_out(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        if c.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_refusal_announces_its_own_length() {
        let bytes = super::refusal();
        let text = std::str::from_utf8(&bytes).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())));
        serde_json::from_str::<serde_json::Value>(body).unwrap();
    }
}
