//! The one place where errors become HTTP responses, in OpenAI's envelope:
//! `{"error":{"message","type","param","code"}}`. Internal detail goes to the log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelrunner_engine::EngineError;
use modelrunner_format::FormatError;
use modelrunner_registry::RegistryError;
use modelrunner_scheduler::SchedulerError;
use modelrunner_store::StoreError;
use serde_json::json;
use tracing::error;

/// An error as the API reports it.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable message.
    pub message: String,
    /// OpenAI error type, e.g. `invalid_request_error`.
    pub kind: &'static str,
    /// The request parameter at fault.
    pub param: Option<String>,
    /// Machine-readable code, e.g. `model_not_found`.
    pub code: Option<&'static str>,
    /// Seconds for a `Retry-After` header (overload, shutdown).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A 400 for bad input.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: None,
            code: None,
            retry_after: None,
        }
    }

    /// Names the parameter at fault.
    pub fn param(mut self, p: &str) -> Self {
        self.param = Some(p.to_string());
        self
    }

    /// A 404 for an unknown route or resource.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
            kind: "invalid_request_error",
            param: None,
            code: Some("not_found"),
            retry_after: None,
        }
    }

    /// A 500; the detail is logged, the client gets a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        error!(cause = %detail, "internal error");
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("internal error: {detail}"),
            kind: "server_error",
            param: None,
            code: None,
            retry_after: None,
        }
    }

    /// A 503 (or other overload status) asking the client to retry after `secs`.
    pub fn overloaded(status: StatusCode, code: &'static str, message: String, secs: u64) -> Self {
        let mut e = ApiError::with(status, "server_error", Some(code), message);
        e.retry_after = Some(secs);
        e
    }

    fn with(
        status: StatusCode,
        kind: &'static str,
        code: Option<&'static str>,
        message: String,
    ) -> Self {
        ApiError {
            status,
            message,
            kind,
            param: None,
            code,
            retry_after: None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            StoreError::NotFound { reference } => ApiError::with(
                S::NOT_FOUND,
                "invalid_request_error",
                Some("model_not_found"),
                format!("model {reference:?} not found locally; pull it with `modelrunner pull {reference}`, package a GGUF file with `modelrunner package`, or load an archive with `modelrunner load`"),
            ),
            StoreError::Ambiguous { .. } => ApiError::bad_request(msg),
            StoreError::Conflict { .. } => ApiError::with(S::CONFLICT, "invalid_request_error", Some("conflict"), msg),
            StoreError::TooLarge { .. } => ApiError::with(S::PAYLOAD_TOO_LARGE, "invalid_request_error", Some("too_large"), msg),
            StoreError::DigestMismatch { .. } | StoreError::SizeMismatch { .. } | StoreError::MissingBlob(_) | StoreError::Invalid(_) => {
                ApiError::bad_request(msg)
            }
            StoreError::Format(f) => f.into(),
            StoreError::Broken(_) | StoreError::Index(_) | StoreError::Io { .. } => ApiError::internal(msg),
        }
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            RegistryError::NotFound { .. } => ApiError::with(
                S::NOT_FOUND,
                "invalid_request_error",
                Some("not_found"),
                msg,
            ),
            RegistryError::Unauthorized { .. } => ApiError::with(
                S::UNAUTHORIZED,
                "authentication_error",
                Some("unauthorized"),
                msg,
            ),
            RegistryError::Unsupported { .. } => ApiError::with(
                S::UNPROCESSABLE_ENTITY,
                "invalid_request_error",
                Some("unsupported_media_type"),
                msg,
            ),
            RegistryError::Status { .. }
            | RegistryError::Transport { .. }
            | RegistryError::Protocol { .. } => ApiError::with(
                S::BAD_GATEWAY,
                "upstream_error",
                Some("registry_error"),
                msg,
            ),
            RegistryError::Config(_) => ApiError::bad_request(msg),
            RegistryError::Format(f) => f.into(),
            RegistryError::Store(s) => s.into(),
        }
    }
}

impl From<FormatError> for ApiError {
    fn from(e: FormatError) -> Self {
        match e {
            FormatError::UnsupportedMediaType { .. } => ApiError::with(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request_error",
                Some("unsupported_media_type"),
                e.to_string(),
            ),
            FormatError::Io { .. } => ApiError::internal(e),
            other => ApiError::bad_request(other.to_string()),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        use StatusCode as S;
        match e {
            EngineError::InvalidParam { param, message } => {
                ApiError::bad_request(format!("invalid {param}: {message}")).param(&param)
            }
            EngineError::ContextLength { prompt, context } => {
                let mut e = ApiError::with(
                    S::BAD_REQUEST,
                    "invalid_request_error",
                    Some("context_length_exceeded"),
                    format!("This model's maximum context length is {context} tokens. However, your request has {prompt} prompt tokens. Shorten the prompt or configure a larger context size."),
                );
                e.param = Some("messages".into());
                e
            }
            EngineError::Template(t) => {
                ApiError::bad_request(format!("the chat template failed on these messages: {t}"))
                    .param("messages")
            }
            EngineError::Busy { .. } => ApiError::overloaded(
                S::SERVICE_UNAVAILABLE,
                "model_busy",
                "the model's queue is full; retry later".into(),
                1,
            ),
            EngineError::Load(_)
            | EngineError::Stopped(_)
            | EngineError::Runner(_)
            | EngineError::Internal(_) => {
                let mut e = ApiError::internal(&e);
                e.code = Some("engine_error");
                e
            }
        }
    }
}

impl From<SchedulerError> for ApiError {
    fn from(e: SchedulerError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            SchedulerError::InsufficientMemory { .. } => ApiError::with(
                S::INSUFFICIENT_STORAGE,
                "server_error",
                Some("insufficient_memory"),
                msg,
            ),
            SchedulerError::Busy { .. } => {
                ApiError::overloaded(S::SERVICE_UNAVAILABLE, "model_busy", msg, 1)
            }
            SchedulerError::ShuttingDown => {
                ApiError::overloaded(S::SERVICE_UNAVAILABLE, "shutting_down", msg, 5)
            }
            SchedulerError::InvalidSettings { param, .. } => {
                ApiError::bad_request(msg).param(&param)
            }
            SchedulerError::InUse { .. } => ApiError::with(
                S::CONFLICT,
                "invalid_request_error",
                Some("model_in_use"),
                msg,
            ),
            SchedulerError::Engine(e) => e.into(),
            SchedulerError::LoadFailed { .. } | SchedulerError::Load(_) => {
                let mut e = ApiError::internal(msg);
                e.code = Some("load_failed");
                e
            }
            SchedulerError::Io { .. } => ApiError::internal(msg),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        });
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        resp
    }
}
