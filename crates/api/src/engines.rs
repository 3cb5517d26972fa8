//! `/engines`: running models (`ps`), unloading, per-model runtime settings, status.

use std::collections::HashMap;

use axum::extract::State;

use crate::extract::ApiQuery;
use axum::http::StatusCode;
use axum::Json;
use modelrunner_scheduler::{
    KeepAlive, Mode, RunnerStatus, RuntimeSettings, SavedSettings, Unload,
};
use serde::Deserialize;
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::extract::ApiJson;
use crate::resolve::model_spec;
use crate::{blocking, ApiError, AppState};

/// `GET /engines/ps`.
pub(crate) async fn ps(State(state): State<AppState>) -> Json<Vec<RunnerStatus>> {
    Json(state.scheduler.ps())
}

/// `GET /engines/status`: Docker Model Runner's shape, one entry per backend, with what
/// the scheduler has loaded right now (llama.cpp runs in runner processes of this
/// executable, so it is installed whenever the daemon runs).
pub(crate) async fn status(State(state): State<AppState>) -> Json<Value> {
    let runners = state.scheduler.ps();
    let loading = runners.iter().filter(|r| r.loading).count();
    let busy = runners.iter().filter(|r| r.in_use).count();
    Json(json!({"llama.cpp": format!(
        "Running: llama.cpp in modelrunnerd's runner processes; {} loaded ({loading} loading, {busy} serving)",
        runners.len() - loading
    )}))
}

/// `POST /engines/unload`.
#[derive(Debug, Deserialize)]
pub(crate) struct UnloadRequest {
    #[serde(default)]
    all: bool,
    #[serde(default)]
    backend: Option<String>,
    #[serde(default)]
    models: Vec<String>,
}

async fn model_id(state: &AppState, name: &str) -> Result<String, ApiError> {
    let store = state.store.clone();
    let name = name.to_string();
    blocking(move || Ok(store.resolve_partial(&name)?.id.to_string())).await
}

/// `POST /engines/unload`: unloads idle runners of the named models, or all.
pub(crate) async fn unload(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<UnloadRequest>,
) -> Result<Json<Value>, ApiError> {
    if let Some(b) = req
        .backend
        .as_deref()
        .filter(|b| !b.is_empty() && *b != "llama.cpp")
    {
        return Err(ApiError::bad_request(format!(
            "unknown backend {b:?}; the backend is llama.cpp"
        ))
        .param("backend"));
    }
    let which = if req.all {
        Unload::All
    } else {
        if req.models.is_empty() {
            return Err(ApiError::bad_request("name models to unload, or set all").param("models"));
        }
        let mut ids = Vec::with_capacity(req.models.len());
        for m in &req.models {
            ids.push(model_id(&state, m).await?);
        }
        Unload::Models(ids)
    };
    let n = state.scheduler.unload(which).await;
    Ok(Json(json!({ "unloaded_runners": n })))
}

/// `POST /engines/_configure`, in Docker's shape plus `parallel`.
#[derive(Debug, Deserialize)]
pub(crate) struct ConfigureRequest {
    model: String,
    #[serde(default)]
    mode: Option<String>,
    #[serde(rename = "context-size", alias = "context_size", default)]
    context_size: Option<i64>,
    #[serde(rename = "runtime-flags", default)]
    runtime_flags: Vec<String>,
    #[serde(rename = "raw-runtime-flags", default)]
    raw_runtime_flags: Option<String>,
    #[serde(default)]
    keep_alive: Option<KeepAlive>,
    #[serde(default)]
    parallel: Option<u32>,
    #[serde(default)]
    speculative: Option<Value>,
}

fn mode(m: Option<&str>, flags: &[String]) -> Result<Mode, ApiError> {
    match m {
        None | Some("") if flags.iter().any(|f| f == "--reranking" || f == "--rerank") => {
            Ok(Mode::Reranking)
        }
        None | Some("")
            if flags
                .iter()
                .any(|f| f == "--embeddings" || f == "--embedding") =>
        {
            Ok(Mode::Embedding)
        }
        None | Some("") | Some("completion") => Ok(Mode::Completion),
        Some("embedding") => Ok(Mode::Embedding),
        Some("reranking") => Ok(Mode::Reranking),
        Some(other) => Err(ApiError::bad_request(format!(
            "mode must be completion, embedding or reranking, got {other:?}"
        ))
        .param("mode")),
    }
}

/// `POST /engines/_configure`: saves the settings (they survive restarts), unloads an
/// idle runner of the model, loads it with them, and answers 202 once it is loaded, or
/// the load's error.
pub(crate) async fn configure(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ConfigureRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if req.speculative.as_ref().is_some_and(|s| !s.is_null()) {
        return Err(
            ApiError::bad_request("speculative decoding is not supported").param("speculative"),
        );
    }
    let mut flags: Vec<String> = req.runtime_flags.clone();
    if let Some(raw) = &req.raw_runtime_flags {
        flags.extend(raw.split_whitespace().map(str::to_string));
    }
    let mode = mode(req.mode.as_deref(), &flags)?;
    flags.retain(|f| {
        !["--embeddings", "--embedding", "--reranking", "--rerank"].contains(&f.as_str())
    });
    let mut settings = RuntimeSettings::default();
    settings.runner.apply_flags(&flags)?;
    match req.context_size {
        None => {}
        Some(c) if c < 0 => settings.runner.context_size = None, // Docker's "-1": the default
        Some(c) => settings.runner.context_size = Some(u32::try_from(c).unwrap_or(u32::MAX)),
    }
    if req.parallel.is_some() {
        settings.runner.parallel = req.parallel;
    }
    if req.keep_alive.is_some() {
        settings.keep_alive = req.keep_alive;
    }
    let spec = model_spec(&state, &req.model, mode).await?;
    state.scheduler.configure(&spec, settings).await?;
    info!(model = %spec.name, %mode, "configured");
    // The model loads with the new settings before the answer, so a client learns
    // whether they work (too large a context for the memory, say) from this request.
    match state.scheduler.acquire(&spec, None).await {
        Ok(_) => info!(model = %spec.name, "preloaded after configure"),
        Err(e) => {
            warn!(model = %spec.name, cause = %e, "preload after configure failed");
            let e = ApiError::from(e);
            let message = format!(
                "the settings are saved, but {} does not load with them: {}",
                req.model, e.message
            );
            return Err(ApiError { message, ..e });
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"message": format!("configured {}", req.model)})),
    ))
}

/// `GET /engines/_configure?model=`.
pub(crate) async fn configurations(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<HashMap<String, String>>,
) -> Result<Json<Vec<SavedSettings>>, ApiError> {
    let id = match q.get("model").filter(|m| !m.is_empty()) {
        Some(m) => Some(model_id(&state, m).await?),
        None => None,
    };
    Ok(Json(state.scheduler.configurations(id.as_deref())))
}
