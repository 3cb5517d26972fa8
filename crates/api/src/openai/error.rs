//! OpenAI's error envelope, `{"error":{"message","type","param","code"}}`, which Docker
//! Model Runner's model API shares.

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::error::{ApiError, ErrorKind};

/// OpenAI's `type` for a kind of error.
fn kind(k: ErrorKind) -> &'static str {
    match k {
        ErrorKind::InvalidRequest => "invalid_request_error",
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::Permission => "permission_error",
        ErrorKind::Overloaded | ErrorKind::Server => "server_error",
        ErrorKind::Upstream => "upstream_error",
    }
}

/// The envelope.
pub(crate) fn body(e: &ApiError) -> Value {
    json!({
        "error": {
            "message": e.message,
            "type": kind(e.kind),
            "param": e.param,
            "code": e.code,
        }
    })
}

/// The response: status, envelope, and the headers every dialect's error carries.
pub(crate) fn response(e: &ApiError) -> Response {
    crate::error::finish((e.status, Json(body(e))).into_response(), e)
}
