//! Server-sent events as OpenAI sends them: `data: {json}\n\n`, ending with
//! `data: [DONE]`, or with an error event (and no `[DONE]`) when generation fails.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use serde_json::{json, Value};

/// One `data:` frame.
pub(crate) fn frame(v: &Value) -> Bytes {
    let mut s = String::with_capacity(128);
    s.push_str("data: ");
    s.push_str(&serde_json::to_string(v).expect("json serialises"));
    s.push_str("\n\n");
    Bytes::from(s)
}

/// The closing frame of a successful stream.
pub(crate) fn done() -> Bytes {
    Bytes::from_static(b"data: [DONE]\n\n")
}

/// The frame that ends a failed stream; SDKs raise it as an API error.
pub(crate) fn error_frame(message: &str) -> Bytes {
    frame(
        &json!({"error": {"message": message, "type": "server_error", "param": null, "code": "engine_error"}}),
    )
}

/// A `text/event-stream` response over frames.
pub(crate) fn response(frames: impl Stream<Item = Bytes> + Send + 'static) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(frames.map(Ok::<_, Infallible>)),
    )
        .into_response()
}
