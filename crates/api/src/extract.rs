//! Request bodies: a JSON extractor whose rejections are [`ApiError`]s (axum's own answer
//! is plain text, which SDKs cannot parse), and typed decoding of a JSON value that
//! names the field at fault. Like llama-server it reads the body as JSON whatever the
//! Content-Type, so `curl -d '{...}'` works.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ApiError;

/// `Json<T>` with our errors: 400 for bad JSON or fields (naming the field), 413 over
/// the body limit.
pub(crate) struct ApiJson<T>(pub T);

/// The configured body limit, in every request's extensions (`router`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyLimit(pub usize);

/// How much of a body declared over the limit is read and dropped before the 413, so
/// that a client still sending it reads the answer instead of a reset connection.
const DRAIN_CAP: u64 = 64 << 20;

/// A body whose `Content-Length` is over the limit: read up to [`DRAIN_CAP`] of it and
/// drop it, then the 413 (a client writing the body while the server closes the
/// connection gets a broken pipe, not the answer).
async fn refuse_declared_too_large(req: Request, declared: u64, limit: usize) -> ApiError {
    use futures::StreamExt;
    let mut body = req.into_body().into_data_stream();
    let mut read = 0u64;
    while read < declared.min(DRAIN_CAP) {
        match body.next().await {
            Some(Ok(chunk)) => read += chunk.len() as u64,
            _ => break,
        }
    }
    let mut e = ApiError::bad_request(format!(
        "the request body is {declared} bytes, over the limit of {limit} (the daemon's body_limit)"
    ));
    e.status = StatusCode::PAYLOAD_TOO_LARGE;
    e.code = Some("too_large");
    e
}

/// The field a serde error is about: its path, or the field it says is missing.
fn field_of(path: &str, message: &str) -> Option<String> {
    if !path.is_empty() && path != "." {
        return Some(path.to_string());
    }
    let rest = message.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

/// Decodes `T`, naming the field at fault.
fn decode<'de, T: serde::Deserialize<'de>>(
    de: impl serde::Deserializer<'de>,
) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        match field_of(&path, &inner) {
            Some(f) => ApiError::invalid(&f, format!("invalid JSON body at {f}: {inner}")),
            None => ApiError::bad_request(format!("invalid JSON body: {inner}")),
        }
    })
}

/// Decodes `T` from a JSON value, naming the field at fault (several typed views of
/// one body keep their paths this way, where `#[serde(flatten)]` loses them).
pub(crate) fn from_value<T: DeserializeOwned>(v: &Value) -> Result<T, ApiError> {
    decode(v)
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = req.extensions().get::<BodyLimit>().map(|l| l.0);
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if let (Some(limit), Some(declared)) = (limit, declared) {
            if declared > limit as u64 {
                return Err(refuse_declared_too_large(req, declared, limit).await);
            }
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            let mut e =
                ApiError::bad_request(format!("cannot read the request body: {}", r.body_text()));
            e.status = r.status();
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                e.code = Some("too_large");
            }
            if crate::serve::body_timed_out(&r) {
                e = ApiError::bad_request(
                    "the request body stopped arriving before it was complete; send it in one go",
                );
                e.status = StatusCode::REQUEST_TIMEOUT;
                e.code = Some("request_timeout");
            }
            e
        })?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = decode(&mut de)?;
        de.end()
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
        Ok(ApiJson(value))
    }
}

/// `Query<T>` with our errors: a query string that does not decode is a 400 in the
/// dialect's shape naming the parameter (axum's own answer is plain text).
#[derive(Debug)]
pub(crate) struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::try_from_uri(&parts.uri) {
            Ok(q) => Ok(ApiQuery(q.0)),
            Err(r) => Err(query_error(&r.body_text())),
        }
    }
}

/// The error for axum's rejection text, e.g. "Failed to deserialize query string:
/// limit: invalid digit found in string".
fn query_error(text: &str) -> ApiError {
    let detail = text
        .strip_prefix("Failed to deserialize query string: ")
        .unwrap_or(text);
    let named = detail
        .split_once(": ")
        .filter(|(f, _)| !f.is_empty() && f.chars().all(|c| c.is_alphanumeric() || c == '_'));
    match named.map(|(f, why)| (f.to_string(), why)).or_else(|| {
        let f = field_of("", detail)?;
        Some((f, detail))
    }) {
        Some((f, why)) => ApiError::invalid(&f, format!("invalid query parameter {f}: {why}")),
        None => ApiError::bad_request(format!("invalid query string: {detail}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct T {
        model: String,
        max_tokens: Option<u32>,
    }

    #[test]
    fn errors_name_the_field() {
        let e = from_value::<T>(&serde_json::json!({"max_tokens": 1})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("model"));
        let e = from_value::<T>(&serde_json::json!({"model": "m", "max_tokens": -1})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("max_tokens"));
        let e =
            from_value::<T>(&serde_json::json!({"model": "m", "max_tokens": 1e12})).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("max_tokens"));
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Q {
        limit: Option<u32>,
        order: String,
    }

    #[tokio::test]
    async fn query_errors_name_the_parameter() {
        let at = |uri: &str| {
            let (mut parts, _) = axum::http::Request::builder()
                .uri(uri)
                .body(())
                .unwrap()
                .into_parts();
            async move { ApiQuery::<Q>::from_request_parts(&mut parts, &()).await }
        };
        let e = at("/x?limit=null&order=asc").await.unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.param.as_deref()),
            (400, Some("limit"))
        );
        let e = at("/x?limit=3").await.unwrap_err();
        assert_eq!(e.param.as_deref(), Some("order"), "{}", e.message);
        assert_eq!(at("/x?limit=3&order=asc").await.unwrap().0.limit, Some(3));
    }
}
