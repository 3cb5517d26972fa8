//! API keys, CORS and request IDs.
//!
//! * Keys are stored as sha256 digests (`sha256:<hex>`); a request presents the key as
//!   `Authorization: Bearer KEY` (or `x-api-key: KEY`). Its digest is compared with every
//!   stored one in constant time. `GET /health` needs no key, so that health checks need
//!   no secret; nor do the chat page and its files (`ui`), which hold none. Keys never reach the logs: only "missing" or
//!   "invalid" is logged.
//! * CORS answers only the configured origins and the loopback ones, never `*`.
//! * Every request gets an ID (the client's `x-request-id` when it is a short token),
//!   returned as `x-request-id` and recorded on every log line of the request.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::warn;

use crate::error::ErrorKind;
use crate::{ApiError, AppState};

/// The request ID header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A request's ID, in its extensions.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The sha256 of an API key, as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyHash(pub [u8; 32]);

impl std::fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyHash(sha256:<redacted>)")
    }
}

impl KeyHash {
    /// Hashes a plain key.
    pub fn of(key: &str) -> KeyHash {
        KeyHash(Sha256::digest(key.as_bytes()).into())
    }

    /// Parses `sha256:<64 hex>`.
    pub fn parse(s: &str) -> Option<KeyHash> {
        let hex = s.trim().strip_prefix("sha256:")?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
            out[i] = u8::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
        }
        Some(KeyHash(out))
    }

    /// `sha256:<hex>`.
    pub fn to_text(&self) -> String {
        let hex: String = self.0.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }
}

/// True when `presented` hashes to one of `keys`. Every stored key is compared, each in
/// constant time, so timing tells nothing about which bytes matched.
pub fn key_matches(keys: &[KeyHash], presented: &str) -> bool {
    let h = KeyHash::of(presented);
    let mut found = 0u8;
    for k in keys {
        let diff =
            k.0.iter()
                .zip(h.0.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        found |= (diff == 0) as u8;
    }
    found == 1
}

fn presented_key(req: &Request) -> Option<&str> {
    if let Some(v) = req.headers().get(header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    req.headers().get("x-api-key")?.to_str().ok().map(str::trim)
}

/// Refuses requests without a valid key when keys are configured.
pub(crate) async fn require_key(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let keys = &state.config.api_keys;
    if keys.is_empty()
        || (req.method() == Method::GET && matches!(req.uri().path(), "/health" | "/v1/health"))
        || crate::ui::is_public(&req)
    {
        return next.run(req).await;
    }
    // Preflights carry no credentials; the CORS layer answers them.
    if req.method() == Method::OPTIONS && req.headers().contains_key(header::ORIGIN) {
        return next.run(req).await;
    }
    let outcome = match presented_key(&req) {
        None => Some("missing"),
        Some(k) if key_matches(keys, k) => None,
        Some(_) => Some("invalid"),
    };
    match outcome {
        None => next.run(req).await,
        Some(what) => {
            warn!(path = %req.uri().path(), "refused a request: {what} API key");
            let e = ApiError::new(
                StatusCode::UNAUTHORIZED,
                ErrorKind::Authentication,
                format!("{what} API key: send it as `Authorization: Bearer KEY`"),
            )
            .code("invalid_api_key");
            let mut r = e.into_response();
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            r
        }
    }
}

/// An acceptable client-chosen request ID: 1 to 64 of `[A-Za-z0-9._-]`.
fn usable_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    ok.then(|| s.to_string())
}

/// Gives the request an ID and returns it as a header.
pub(crate) async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(usable_id)
        .unwrap_or_else(|| format!("{:016x}", rand::random::<u64>()));
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

/// True for `http(s)://localhost`, `127.0.0.1` or `[::1]` on any port.
fn loopback_origin(origin: &str) -> bool {
    let Some(rest) = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
    else {
        return false;
    };
    let host = if let Some(r) = rest.strip_prefix('[') {
        r.split(']')
            .next()
            .map(|h| format!("[{h}]"))
            .unwrap_or_default()
    } else {
        rest.split(':').next().unwrap_or("").to_string()
    };
    matches!(host.as_str(), "localhost" | "127.0.0.1" | "[::1]")
}

/// CORS for the configured origins (exact `scheme://host[:port]`) and loopback ones.
pub(crate) fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<String> = origins
        .iter()
        .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin, _| {
            let o = origin.to_str().unwrap_or("").to_ascii_lowercase();
            loopback_origin(&o) || allowed.contains(&o)
        }))
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            REQUEST_ID,
            HeaderName::from_static("x-api-key"),
        ])
        .expose_headers([REQUEST_ID])
        .max_age(Duration::from_secs(600))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_hash_parse_and_match() {
        let h = KeyHash::of("s3cret");
        let text = h.to_text();
        assert_eq!(KeyHash::parse(&text), Some(h.clone()));
        assert!(KeyHash::parse("sha256:xyz").is_none());
        assert!(KeyHash::parse("s3cret").is_none());
        let keys = vec![KeyHash::of("other"), h];
        assert!(key_matches(&keys, "s3cret"));
        assert!(!key_matches(&keys, "s3cre"));
        assert!(!key_matches(&[], "s3cret"));
        assert!(!format!("{:?}", keys[1]).contains(&text[7..]));
    }

    #[test]
    fn loopback_origins_are_recognised() {
        for o in [
            "http://localhost:3000",
            "https://127.0.0.1",
            "http://[::1]:8080",
        ] {
            assert!(loopback_origin(o), "{o}");
        }
        for o in [
            "http://localhost.evil.com",
            "http://evil.com",
            "null",
            "http://127.0.0.2",
        ] {
            assert!(!loopback_origin(o), "{o}");
        }
    }

    #[test]
    fn only_short_token_ids_are_taken() {
        assert_eq!(
            usable_id(&HeaderValue::from_static("abc-1.2_3")).as_deref(),
            Some("abc-1.2_3")
        );
        assert!(usable_id(&HeaderValue::from_static("a b")).is_none());
        assert!(usable_id(&HeaderValue::from_str(&"x".repeat(65)).unwrap()).is_none());
    }
}
