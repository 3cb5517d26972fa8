//! `GET /props` (the model's slots, context, template and default settings, as
//! llama-server reports them; the model is loaded to answer), `GET /slots` (a read-only
//! view: which of the loaded model's slots are busy) and `GET /health` / `/v1/health`
//! with llama-server's semantics: 503 "Loading model" while a model loads and none is
//! ready, else 200 once the store answers.

use std::collections::HashMap;

use axum::extract::State;

use crate::extract::ApiQuery;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelrunner_protocol::{Mode, SamplingParams};
use serde_json::{json, Value};

use super::model_or_only;
use crate::resolve::model_spec;
use crate::{blocking, ApiError, AppState};

/// The default settings of a slot, as `default_generation_settings.params`.
fn default_params() -> Value {
    let d = SamplingParams::default();
    json!({
        "n_predict": -1, "seed": u32::MAX, "temperature": d.temperature, "top_k": d.top_k,
        "top_p": d.top_p, "min_p": d.min_p, "typical_p": 1.0, "repeat_last_n": d.repeat_last_n,
        "repeat_penalty": d.repeat_penalty, "presence_penalty": 0.0, "frequency_penalty": 0.0,
        "stop": [], "max_tokens": -1, "n_keep": 0, "ignore_eos": false, "stream": false,
        "n_probs": 0, "grammar": "", "samplers": ["penalties", "top_k", "top_p", "min_p", "temperature"],
    })
}

/// `GET /props[?model=]`.
pub(crate) async fn props(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let model = model_or_only(&state, q.get("model").map(String::as_str)).await?;
    let spec = model_spec(&state, &model, Mode::Completion).await?;
    let guard = state.scheduler.acquire(&spec, None).await?;
    let p = guard.props().clone();
    drop(guard);
    Ok(Json(json!({
        "default_generation_settings": {
            "id": 0, "id_task": -1, "n_ctx": p.slot_context, "speculative": false,
            "is_processing": false, "params": default_params(),
        },
        "total_slots": p.slots,
        "model_path": spec.name,
        "model_alias": spec.name,
        "n_ctx_train": p.trained_context,
        "chat_template": p.chat_template,
        "chat_format": p.chat_format,
        "bos_token": p.bos_token,
        "eos_token": p.eos_token,
        "modalities": {"vision": false, "audio": false},
        "build_info": format!("modelrunner {}", env!("CARGO_PKG_VERSION")),
        "is_sleeping": false,
    })))
}

/// `GET /slots[?model=]`: the loaded model's slots; the first `requests` are busy (the
/// runner assigns slots itself, so which one serves which request is not shown).
pub(crate) async fn slots(
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let model = model_or_only(&state, q.get("model").map(String::as_str)).await?;
    let spec = model_spec(&state, &model, Mode::Completion).await?;
    let Some(r) = state
        .scheduler
        .ps()
        .into_iter()
        .find(|r| r.model_id == spec.id && r.mode == Mode::Completion && !r.loading)
    else {
        return Ok(Json(json!([])));
    };
    let n = r.slots.unwrap_or(1);
    let busy = r.requests.min(n as usize) as u32;
    let list: Vec<Value> = (0..n)
        .map(|i| {
            json!({"id": i, "id_task": -1, "n_ctx": r.context_size.unwrap_or(0),
                   "speculative": false, "is_processing": i < busy, "params": default_params()})
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

/// `GET /health`, `GET /v1/health`.
pub(crate) async fn health(State(state): State<AppState>) -> Result<Response, ApiError> {
    if let Some(why) = state.preload.not_ready() {
        let body = json!({"error": {"code": 503, "message": why, "type": "unavailable_error"}});
        return Ok((StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response());
    }
    let runners = state.scheduler.ps();
    if runners.iter().any(|r| r.loading) && !runners.iter().any(|r| !r.loading) {
        let body = json!({"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}});
        return Ok((StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response());
    }
    let store = state.store.clone();
    blocking(move || store.disk_usage().map_err(ApiError::from)).await?;
    Ok(Json(json!({ "status": "ok" })).into_response())
}
