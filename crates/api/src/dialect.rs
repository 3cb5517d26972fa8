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
    let mut resp = next.run(req).await;
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
