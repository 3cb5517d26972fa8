//! Which dialect a request speaks, told by its path, and the one layer that gives every
//! error the dialect's own shape. Handlers, extractors and middleware all fail with an
//! [`ApiError`]; its response carries the error itself in its extensions, and
//! [`shape_errors`] renders it again in the dialect of the path: an unknown route, a
//! missing key or a body too large under `/v1/messages` is an Anthropic error like
//! any other failure there.

use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

use crate::security::RequestId;
use crate::ApiError;

/// An API dialect with its own error shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// OpenAI's envelope, also Docker Model Runner's model API and the daemon's own.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Ollama's `/api/*`.
    Ollama,
}

impl Dialect {
    /// The dialect of a request path.
    pub(crate) fn of_path(path: &str) -> Dialect {
        if path == "/api" || path.starts_with("/api/") {
            return Dialect::Ollama;
        }
        if path == "/anthropic" || path.starts_with("/anthropic/") {
            return Dialect::Anthropic;
        }
        let messages = crate::openai::routes::PREFIXES.iter().any(|p| {
            path.strip_prefix(p)
                .is_some_and(|rest| rest == "/messages" || rest.starts_with("/messages/"))
        });
        if messages {
            Dialect::Anthropic
        } else {
            Dialect::OpenAi
        }
    }

    /// The response for `e` in this dialect.
    pub(crate) fn error_response(self, e: &ApiError, request_id: Option<&str>) -> Response {
        match self {
            Dialect::OpenAi => crate::openai::error::response(e),
            Dialect::Anthropic => crate::anthropic::error::response(e, request_id),
            Dialect::Ollama => crate::ollama::error::response(e),
        }
    }
}

/// Re-renders errors in the dialect of the path (and gives Anthropic clients the
/// `request-id` header their SDK reads). Runs inside the request-ID layer and outside
/// every other one.
pub(crate) async fn shape_errors(req: Request, next: Next) -> Response {
    let dialect = Dialect::of_path(req.uri().path());
    let id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let method = req.method().clone();
    let uri = req.uri().clone();
    let mut resp = next.run(req).await;
    if resp.extensions().get::<ApiError>().is_none() && is_bare_error(&resp) {
        resp = from_bare(&method, uri.path(), resp).await;
    }
    if dialect == Dialect::OpenAi {
        return resp;
    }
    if let Some(e) = resp.extensions_mut().remove::<ApiError>() {
        let mut shaped = dialect.error_response(&e, id.as_deref());
        for (k, v) in resp.headers() {
            if k != CONTENT_TYPE && k != CONTENT_LENGTH {
                shaped.headers_mut().insert(k.clone(), v.clone());
            }
        }
        resp = shaped;
    }
    if dialect != Dialect::Anthropic {
        return resp;
    }
    if let Some(v) = id.and_then(|id| HeaderValue::from_str(&id).ok()) {
        resp.headers_mut().insert("request-id", v);
    }
    resp
}

/// An error answered by axum itself (an extractor's rejection in plain text, a 405 with
/// no body), not by our code.
fn is_bare_error(resp: &Response) -> bool {
    let status = resp.status();
    let json = resp
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    (status.is_client_error() || status.is_server_error()) && !json
}

/// The [`ApiError`] response for a bare error, its headers kept.
async fn from_bare(method: &axum::http::Method, path: &str, resp: Response) -> Response {
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let mut e = ApiError::bad_request(text.clone());
    e.status = parts.status;
    if parts.status == axum::http::StatusCode::METHOD_NOT_ALLOWED {
        let allowed: Vec<String> = crate::routes::methods_at(path)
            .iter()
            .map(|m| m.to_string())
            .collect();
        e.message = format!(
            "{method} is not allowed on {path}; it answers {}",
            allowed.join(", ")
        );
        e.code = Some("method_not_allowed");
    } else if text.is_empty() {
        e.message = parts
            .status
            .canonical_reason()
            .unwrap_or("error")
            .to_string();
    }
    // "Invalid URL: Invalid UTF-8 in `name`" names its parameter.
    if let Some(name) = text.split('`').nth(1).filter(|n| !n.is_empty()) {
        e.param = Some(name.to_string());
    }
    let mut shaped = axum::response::IntoResponse::into_response(e);
    for (k, v) in &parts.headers {
        if k != CONTENT_TYPE && k != CONTENT_LENGTH {
            shaped.headers_mut().insert(k.clone(), v.clone());
        }
    }
    shaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_tell_the_dialect() {
        for p in [
            "/v1/messages",
            "/v1/messages/count_tokens",
            "/anthropic/v1/messages",
            "/anthropic/v1/nothing",
            "/engines/llama.cpp/v1/messages",
        ] {
            assert_eq!(Dialect::of_path(p), Dialect::Anthropic, "{p}");
        }
        for p in ["/api/chat", "/api/tags", "/api/nothing"] {
            assert_eq!(Dialect::of_path(p), Dialect::Ollama, "{p}");
        }
        for p in [
            "/v1/chat/completions",
            "/v1/messagesx",
            "/models",
            "/v1/responses",
            "/apiary",
        ] {
            assert_eq!(Dialect::of_path(p), Dialect::OpenAi, "{p}");
        }
    }
}
