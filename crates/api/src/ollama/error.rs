//! Ollama's error shape, `{"error": "..."}`, with the request's status (applied to every
//! error under `/api/` by `dialect::shape_errors`).

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::ApiError;

/// The body, for responses and for a stream's last line.
pub(crate) fn body(e: &ApiError) -> Value {
    let message = match &e.param {
        Some(p) if !e.message.contains(p.as_str()) => format!("{p}: {}", e.message),
        _ => e.message.clone(),
    };
    json!({ "error": message })
}

/// The response: status, body, and the headers every dialect's error carries.
pub(crate) fn response(e: &ApiError) -> Response {
    crate::error::finish((e.status, Json(body(e))).into_response(), e)
}
