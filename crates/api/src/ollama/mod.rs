//! Ollama's API under `/api/*`: generation (`chat`, `generate`), embeddings (`embed`,
//! the legacy `embeddings`), the model routes (`tags`, `show`, `ps`, `pull`, `push`,
//! `copy`, `delete`, `create`, `blobs`) and `version`, for the many tools that speak
//! only Ollama. Generation goes through the one pipeline; `decode` turns the requests
//! into its, `encode` its events into Ollama's lines; errors take Ollama's
//! `{"error": "..."}` shape (`error`, applied by `dialect::shape_errors`).
//!
//! Names: `llama3.2`, `llama3.2:latest` and fully qualified references resolve like any
//! model name of this daemon (Docker Hub's `ai/` namespace by default); lists show a
//! model as `llama3.2:latest`, with the default registry and namespace left out.

pub(crate) mod blobs;
pub(crate) mod decode;
pub(crate) mod embed;
pub(crate) mod encode;
pub(crate) mod error;
pub(crate) mod extras;
pub(crate) mod generate;
pub(crate) mod gotemplate;
pub(crate) mod manage;
pub(crate) mod options;
pub(crate) mod routes;
pub(crate) mod show;
pub(crate) mod transfer;

use modelrunner_format::Reference;
use modelrunner_scheduler::{KeepAlive, Mode, ModelSpec, RuntimeSettings, Unload};
use tracing::info;

use modelrunner_store::{ModelInfo, StoreError};

use crate::resolve::model_spec;
use crate::{blocking, ApiError, AppState};

/// The version `/api/version` reports: a bare `X.Y.Z` that clients parse as numbers
/// (VS Code's Copilot does) and compare against Ollama's (some want at least 0.6.4 for
/// tools and thinking).
pub(crate) const VERSION: &str = "0.12.0";

/// A stored tag as Ollama lists it: `llama3.2:latest` for Docker Hub's `ai/` models,
/// `org/name:tag` for Docker Hub's others, the whole reference for other registries.
pub(crate) fn display(tag: &str) -> String {
    let Ok(r) = tag.parse::<Reference>() else {
        return tag.to_string();
    };
    let full = r.to_string();
    let s = full.strip_prefix("docker.io/").unwrap_or(&full);
    s.strip_prefix("ai/").unwrap_or(s).to_string()
}

/// The name a request's `model` resolves under: as given, or lowercased (Ollama matches
/// names without regard to case; references are lowercase).
pub(crate) async fn resolve(
    state: &AppState,
    name: &str,
    mode: Mode,
) -> Result<(String, ModelSpec), ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::invalid("model", "model is required"));
    }
    match model_spec(state, name, mode).await {
        Err(e) if e.code == Some("model_not_found") && name != name.to_lowercase() => {
            let lower = name.to_lowercase();
            let spec = model_spec(state, &lower, mode).await.map_err(|_| e)?;
            Ok((lower, spec))
        }
        r => r.map(|spec| (name.to_string(), spec)),
    }
}

/// `options.num_ctx`: the model's context size from now on, as Ollama reloads a model
/// whose runner options changed (and Docker Model Runner configures it). The setting is
/// saved like `_configure`'s; a model busy with other requests is a 409.
pub(crate) async fn ensure_context(
    state: &AppState,
    spec: &ModelSpec,
    num_ctx: Option<u32>,
) -> Result<(), ApiError> {
    let Some(n) = num_ctx else { return Ok(()) };
    let saved = state.scheduler.configurations(Some(&spec.id));
    let mut settings = saved
        .iter()
        .find(|s| s.mode == spec.mode)
        .map(|s| s.config.clone())
        .unwrap_or_else(RuntimeSettings::default);
    let loaded = state
        .scheduler
        .ps()
        .into_iter()
        .find(|r| r.model_id == spec.id && r.mode == spec.mode)
        .and_then(|r| r.context_size);
    if settings.runner.context_size == Some(n)
        || (settings.runner.context_size.is_none() && loaded == Some(n))
    {
        return Ok(());
    }
    settings.runner.context_size = Some(n);
    info!(model = %spec.name, num_ctx = n, "num_ctx changes the model's context size");
    state
        .scheduler
        .configure(spec, settings)
        .await
        .map_err(|e| ApiError::from(e).rename_param(|_| "options.num_ctx".into()))
}

/// A request with nothing to generate: load the model, or unload it when `keep_alive`
/// is zero. Returns Ollama's `done_reason` for it.
pub(crate) async fn load_or_unload(
    state: &AppState,
    spec: &ModelSpec,
    keep_alive: Option<KeepAlive>,
) -> Result<&'static str, ApiError> {
    if keep_alive == Some(KeepAlive::For(std::time::Duration::ZERO)) {
        state
            .scheduler
            .unload(Unload::Models(vec![spec.id.clone()]))
            .await;
        return Ok("unload");
    }
    state.scheduler.acquire(spec, keep_alive).await?;
    Ok("load")
}

/// The answer to a load or unload request.
pub(crate) fn loaded(route: encode::Route, model: &str, reason: &str) -> axum::response::Response {
    let mut v = serde_json::json!({"model": model, "created_at": encode::now(), "done": true,
        "done_reason": reason});
    match route {
        encode::Route::Chat => {
            v["message"] = serde_json::json!({"role": "assistant", "content": ""})
        }
        encode::Route::Generate => v["response"] = serde_json::json!(""),
    }
    encode::json_response(v)
}

/// The stored model a name resolves to, as given or lowercased.
pub(crate) async fn resolve_info(state: &AppState, name: &str) -> Result<ModelInfo, ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::invalid("model", "model is required"));
    }
    let store = state.store.clone();
    let name = name.to_string();
    blocking(move || {
        let lower = name.to_lowercase();
        match store.resolve_partial(&name) {
            Err(StoreError::NotFound { .. }) if lower != name => store.resolve_partial(&lower),
            r => r,
        }
        .map_err(ApiError::from)
    })
    .await
}
