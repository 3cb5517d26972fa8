//! The one place where errors become HTTP responses, in OpenAI's envelope:
//! `{"error":{"message","type","param","code"}}`. Internal detail goes to the log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelrunner_format::FormatError;
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
        }
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
                format!("model {reference:?} not found; package it with `modelrunner package` or load an archive with `modelrunner load`"),
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
        (self.status, Json(body)).into_response()
    }
}
