//! The one place where internal errors become API errors: what the client may act on
//! (which parameter, which model, why a load failed, in words), with a status and a kind
//! that every dialect's error shape is drawn from. Internal detail (paths, runner
//! messages of a bug) goes to the log, never to the client.
//!
//! An [`ApiError`] renders in OpenAI's envelope (`openai::error`), the shape of the OpenAI
//! routes and Docker Model Runner's model API.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use modelrunner_format::FormatError;
use modelrunner_protocol::RunnerError;
use modelrunner_registry::RegistryError;
use modelrunner_scheduler::SchedulerError;
use modelrunner_store::StoreError;
use tracing::{error, warn};

/// What kind of failure an error is, whatever its dialect calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is wrong (bad input, unknown model, conflict, too large).
    InvalidRequest,
    /// No valid credentials.
    Authentication,
    /// Credentials, but not for this.
    Permission,
    /// Overloaded or shutting down: retry later.
    Overloaded,
    /// A registry or other service behind us failed.
    Upstream,
    /// Our failure.
    Server,
}

/// An error as the API reports it.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What kind of failure.
    pub kind: ErrorKind,
    /// Human-readable message.
    pub message: String,
    /// The request parameter at fault.
    pub param: Option<String>,
    /// Machine-readable code, e.g. `model_not_found`.
    pub code: Option<&'static str>,
    /// Seconds for a `Retry-After` header (overload, shutdown).
    pub retry_after: Option<u64>,
}

/// `message` without absolute file paths (each becomes its last component): messages of
/// llama.cpp and of the runner may name files of the server.
fn without_paths(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find('/') {
        let starts_word = at == 0
            || rest[..at]
                .chars()
                .last()
                .is_some_and(|c| c.is_whitespace() || "('\"=:".contains(c));
        let end = rest[at..]
            .find(|c: char| c.is_whitespace() || "'\")".contains(c))
            .map_or(rest.len(), |e| at + e);
        let path = &rest[at..end];
        out.push_str(&rest[..at]);
        if starts_word && path.matches('/').count() >= 2 {
            out.push_str(path.trim_end_matches('/').rsplit('/').next().unwrap_or(""));
        } else {
            out.push_str(path);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

impl ApiError {
    /// An error of any status and kind.
    pub fn new(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            param: None,
            code: None,
            retry_after: None,
        }
    }

    /// A 400 for bad input.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidRequest, message)
    }

    /// A 400 naming the parameter at fault.
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        Self::bad_request(message).param(param)
    }

    /// Names the parameter at fault.
    pub fn param(mut self, p: &str) -> Self {
        self.param = Some(p.to_string());
        self
    }

    /// Renames the parameter at fault (another dialect's name for it).
    pub fn rename_param(mut self, rename: impl Fn(&str) -> String) -> Self {
        self.param = self.param.map(|p| rename(&p));
        self
    }

    /// Sets the machine-readable code.
    pub fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// A 404 for an unknown route or resource.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorKind::InvalidRequest, message).code("not_found")
    }

    /// A 500 for a bug: the detail is logged, the client gets a message without it.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        error!(cause = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Server,
            "internal error; the daemon's log has the details (look for this response's x-request-id)",
        )
    }

    /// A 500 whose message the client may read (paths removed); also logged.
    fn server(code: &'static str, message: impl std::fmt::Display) -> Self {
        warn!(cause = %message, code, "request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Server,
            without_paths(&message.to_string()),
        )
        .code(code)
    }

    /// A 503 (or other overload status) asking the client to retry after `secs`.
    pub fn overloaded(status: StatusCode, code: &'static str, message: String, secs: u64) -> Self {
        let mut e = Self::new(status, ErrorKind::Overloaded, message).code(code);
        e.retry_after = Some(secs);
        e
    }

    /// A generation that failed after it started.
    pub fn generation_failed(e: &RunnerError) -> Self {
        Self::server("engine_error", format!("generation failed: {e}"))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            StoreError::NotFound { reference } => ApiError::not_found(format!(
                "model {reference:?} not found locally; pull it with `modelrunner pull {reference}`, package a GGUF file with `modelrunner package`, or load an archive with `modelrunner load`"
            ))
            .code("model_not_found")
            .param("model"),
            StoreError::Ambiguous { .. } => ApiError::invalid("model", msg),
            StoreError::Conflict { .. } => {
                ApiError::new(S::CONFLICT, ErrorKind::InvalidRequest, msg).code("conflict")
            }
            StoreError::TooLarge { .. } => {
                ApiError::new(S::PAYLOAD_TOO_LARGE, ErrorKind::InvalidRequest, msg)
                    .code("too_large")
            }
            StoreError::DigestMismatch { .. }
            | StoreError::SizeMismatch { .. }
            | StoreError::MissingBlob(_)
            | StoreError::Invalid(_) => ApiError::bad_request(msg),
            StoreError::CannotLink { .. } => ApiError::bad_request(msg)
                .code("cannot_link")
                .param("link"),
            StoreError::LinkedFileChanged { .. } => {
                ApiError::new(S::CONFLICT, ErrorKind::InvalidRequest, msg)
                    .code("linked_file_changed")
            }
            StoreError::Format(f) => f.into(),
            StoreError::Broken(_) | StoreError::Index(_) | StoreError::Io { .. } => {
                ApiError::internal(msg)
            }
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            RegistryError::NotFound { .. } => ApiError::not_found(msg),
            RegistryError::Unauthorized { .. } => {
                ApiError::new(S::UNAUTHORIZED, ErrorKind::Authentication, msg).code("unauthorized")
            }
            RegistryError::Unsupported { .. } => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, ErrorKind::InvalidRequest, msg)
                    .code("unsupported_media_type")
            }
            RegistryError::Invalid { .. } => {
                ApiError::new(S::UNPROCESSABLE_ENTITY, ErrorKind::InvalidRequest, msg)
                    .code("invalid_artifact")
            }
            RegistryError::Status { .. }
            | RegistryError::Transport { .. }
            | RegistryError::Protocol { .. } => {
                ApiError::new(S::BAD_GATEWAY, ErrorKind::Upstream, msg).code("registry_error")
            }
            RegistryError::Forbidden { .. } => {
                ApiError::new(S::FORBIDDEN, ErrorKind::Permission, msg).code("pull_not_allowed")
            }
            RegistryError::Config(_) => ApiError::bad_request(msg),
            RegistryError::Format(f) => f.into(),
            RegistryError::Store(s) => s.into(),
        }
    }
}

impl From<FormatError> for ApiError {
    fn from(e: FormatError) -> Self {
        match e {
            FormatError::UnsupportedMediaType { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorKind::InvalidRequest,
                e.to_string(),
            )
            .code("unsupported_media_type"),
            FormatError::Io { .. } => ApiError::internal(e),
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

impl From<RunnerError> for ApiError {
    fn from(e: RunnerError) -> Self {
        match e {
            RunnerError::InvalidParam { param, message } => {
                ApiError::invalid(&param, format!("invalid {param}: {message}"))
            }
            RunnerError::ContextLength {
                prompt,
                context,
                at_least,
            } => ApiError::invalid(
                "messages",
                format!("This model's maximum context length is {context} tokens. However, your request has {}{prompt} prompt tokens. Shorten the prompt or configure a larger context size.", if at_least { "at least " } else { "" }),
            )
            .code("context_length_exceeded"),
            RunnerError::Template { .. } => ApiError::invalid("messages", e.to_string()),
            RunnerError::Busy { queued } => ApiError::overloaded(
                StatusCode::SERVICE_UNAVAILABLE,
                "model_busy",
                format!("the model's queue is full ({queued} requests are waiting); retry later"),
                1,
            ),
            RunnerError::Load { .. } => ApiError::server("load_failed", e),
            RunnerError::Unreachable { .. }
            | RunnerError::Interrupted { .. }
            | RunnerError::Internal { .. } => ApiError::server("engine_error", e),
        }
    }
}

impl From<SchedulerError> for ApiError {
    fn from(e: SchedulerError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            SchedulerError::InsufficientMemory { .. } => {
                ApiError::new(S::INSUFFICIENT_STORAGE, ErrorKind::Server, msg)
                    .code("insufficient_memory")
            }
            SchedulerError::Busy { .. } => {
                ApiError::overloaded(S::SERVICE_UNAVAILABLE, "model_busy", msg, 1)
            }
            SchedulerError::ShuttingDown => {
                ApiError::overloaded(S::SERVICE_UNAVAILABLE, "shutting_down", msg, 5)
            }
            SchedulerError::InvalidSettings { param, .. } => ApiError::invalid(&param, msg),
            SchedulerError::InUse { .. } => {
                ApiError::new(S::CONFLICT, ErrorKind::InvalidRequest, msg).code("model_in_use")
            }
            SchedulerError::Runner(e) => e.into(),
            SchedulerError::LoadFailed { .. } | SchedulerError::Load(_) => {
                ApiError::server("load_failed", msg)
            }
            SchedulerError::Io { .. } => ApiError::internal(msg),
        }
    }
}

/// What every dialect's error response carries besides its body: `Retry-After` when the
/// client should retry, `x-should-retry: false` (read by the OpenAI and Anthropic SDKs)
/// when a server error would only fail again, and the error itself, for the layer that
/// renders it in the request's dialect (`dialect::shape_errors`).
pub(crate) fn finish(mut resp: Response, e: &ApiError) -> Response {
    let h = resp.headers_mut();
    if let Some(secs) = e.retry_after {
        h.insert(axum::http::header::RETRY_AFTER, secs.into());
    }
    if matches!(e.code, Some("load_failed" | "insufficient_memory")) {
        h.insert(
            "x-should-retry",
            axum::http::HeaderValue::from_static("false"),
        );
    }
    resp.extensions_mut().insert(e.clone());
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        crate::openai::error::response(&self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_paths_never_reach_clients() {
        assert_eq!(
            without_paths("/srv/store/bundles/sha256/ab/model/model.gguf: bad magic"),
            "model.gguf: bad magic"
        );
        assert_eq!(
            without_paths("loading (path '/tmp/x/run/r.sock') failed"),
            "loading (path 'r.sock') failed"
        );
        assert_eq!(without_paths("a/b and 1/2 stay"), "a/b and 1/2 stay");
        let e = ApiError::from(SchedulerError::LoadFailed {
            model: "m".into(),
            message: "cannot load the model: /var/lib/models/x.gguf: truncated".into(),
        });
        assert!(
            !e.message.contains("/var/lib") && e.message.contains("x.gguf"),
            "{}",
            e.message
        );
        let e = ApiError::internal("opening /secret/dir/file failed");
        assert!(!e.message.contains("secret"), "{}", e.message);
    }

    #[test]
    fn a_busy_runner_says_how_many_wait() {
        let e = ApiError::from(RunnerError::Busy { queued: 256 });
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(e.message.contains("256"), "{}", e.message);
        assert_eq!(e.retry_after, Some(1));
    }
}
