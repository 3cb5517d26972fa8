//! DNS-rebinding guard: while the daemon listens on loopback, only loopback Host names
//! are served.

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::warn;

use crate::error::ErrorKind;
use crate::{ApiError, AppState};

/// True for `localhost`, `*.localhost`, `127.x.y.z` and `[::1]`, with any port.
pub fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(h, p)| {
            if p.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name == "::1"
        || name
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub(crate) async fn check_host(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    if state.config.loopback_hosts_only {
        if let Some(h) = req.headers().get(header::HOST) {
            let ok = h.to_str().is_ok_and(is_loopback_host);
            if !ok {
                warn!(host = ?h, "refused request with a non-loopback Host header");
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    ErrorKind::InvalidRequest,
                    "the Host header must name the loopback interface (localhost, 127.0.0.1, [::1]) while the daemon listens on loopback",
                )
                .into_response();
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn loopback_names() {
        for ok in [
            "localhost",
            "localhost:12434",
            "127.0.0.1:80",
            "127.1.2.3",
            "[::1]:12434",
            "a.localhost",
            "LOCALHOST.",
        ] {
            assert!(is_loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.com",
            "evil.com:12434",
            "10.0.0.1",
            "localhost.evil.com",
            "[::2]",
            "127.0.0.1.evil.com",
            "",
        ] {
            assert!(!is_loopback_host(bad), "{bad}");
        }
    }
}
