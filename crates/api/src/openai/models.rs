//! `GET /v1/models` and `GET /v1/models/{name}` in Docker Model Runner's shape: OpenAI's
//! list with a `dmr` object of facts.

use axum::extract::{Path, State};
use axum::Json;
use modelrunner_store::ModelInfo;
use serde_json::{json, Value};

use crate::{blocking, ApiError, AppState};

fn openai_model(m: &ModelInfo) -> Value {
    let c = &m.config;
    let arch = c.architecture.clone().unwrap_or_default();
    let context = c.context_size.or_else(|| {
        c.gguf
            .as_ref()
            .and_then(|g| g.get(&format!("{arch}.context_length")))
            .and_then(|v| v.parse().ok())
    });
    json!({
        "id": m.tags.first().cloned().unwrap_or_else(|| m.id.to_string()),
        "object": "model",
        "created": m.created,
        "owned_by": "docker",
        "dmr": {
            "context_window": context,
            "architecture": c.architecture,
            "parameters": c.parameters,
            "quantization": c.quantization,
            "size": c.size,
        },
    })
}

/// `GET /v1/models`.
pub(crate) async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let models = blocking(move || store.list().map_err(ApiError::from)).await?;
    Ok(Json(json!({
        "object": "list",
        "data": models.iter().map(openai_model).collect::<Vec<_>>(),
    })))
}

/// `GET /v1/models/{name}`.
pub(crate) async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let m = blocking(move || store.resolve_partial(&name).map_err(ApiError::from)).await?;
    Ok(Json(openai_model(&m)))
}
