//! A JSON body extractor whose rejections are [`ApiError`]s in OpenAI's envelope (axum's
//! own answer is plain text, which SDKs cannot parse). Like llama-server it reads the
//! body as JSON whatever the Content-Type, so `curl -d '{...}'` works.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// `Json<T>` with OpenAI-shaped errors: 400 for bad JSON or fields, 413 over the body
/// limit.
pub(crate) struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            let mut e =
                ApiError::bad_request(format!("cannot read the request body: {}", r.body_text()));
            e.status = r.status();
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                e.code = Some("too_large");
            }
            e
        })?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let mut err = ApiError::bad_request(format!("invalid JSON body: {}", e.inner()));
            if path != "." && !path.is_empty() {
                err.message = format!("invalid JSON body at {path}: {}", e.inner());
                err.param = Some(path);
            }
            err
        })?;
        de.end()
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
        Ok(ApiJson(value))
    }
}
