//! `/version`, `/health`, `/engines/df` and the fallback.

use axum::extract::State;
use axum::http::Uri;
use axum::Json;
use serde_json::{json, Value};

use crate::{blocking, ApiError, AppState};

/// `GET /version`.
pub(crate) async fn version() -> Json<Value> {
    Json(json!({ "version": env!("CARGO_PKG_VERSION") }))
}

/// `GET /engines/df`.
pub(crate) async fn disk_usage(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let du = blocking(move || store.disk_usage().map_err(ApiError::from)).await?;
    // The backend is this executable: its runners are its own `runner` subcommand.
    let backend = std::env::current_exe()
        .and_then(std::fs::metadata)
        .map_or(0, |m| m.len());
    Ok(Json(json!({
        "models_disk_usage": du.models_bytes,
        "default_backend_disk_usage": backend,
    })))
}

/// Anything else.
pub(crate) async fn no_route(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}
