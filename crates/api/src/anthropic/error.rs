//! Anthropic's error shape, `{"type":"error","error":{"type","message"},"request_id"}`,
//! with its error types by status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::ApiError;

/// Anthropic's `error.type` for a status.
fn kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        503 | 529 => "overloaded_error",
        504 => "timeout_error",
        s if s < 500 => "invalid_request_error",
        _ => "api_error",
    }
}

/// The body, for responses and for a stream's `error` event.
pub(crate) fn body(e: &ApiError, request_id: Option<&str>) -> Value {
    let message = match &e.param {
        Some(p) if !e.message.contains(p.as_str()) => format!("{p}: {}", e.message),
        _ => e.message.clone(),
    };
    let mut b = json!({"type": "error", "error": {"type": kind(e.status), "message": message}});
    if let Some(id) = request_id {
        b["request_id"] = json!(id);
    }
    b
}

/// The response: status, body, and the headers every dialect's error carries.
pub(crate) fn response(e: &ApiError, request_id: Option<&str>) -> Response {
    crate::error::finish((e.status, Json(body(e, request_id))).into_response(), e)
}
