//! llama-server's helper routes, for debugging prompts and counting tokens:
//! `/tokenize`, `/detokenize`, `/apply-template`.

use axum::extract::State;
use axum::http::Method;
use axum::Json;
use modelrunner_scheduler::Mode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::on_runner;
use crate::extract::ApiJson;
use crate::resolve::model_spec;
use crate::{ApiError, AppState};

/// `POST /tokenize`.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenizeRequest {
    model: String,
    content: String,
    #[serde(default)]
    add_special: bool,
    #[serde(default)]
    with_pieces: bool,
}

/// `POST /detokenize`.
#[derive(Debug, Deserialize)]
pub(crate) struct DetokenizeRequest {
    model: String,
    tokens: Vec<i64>,
}

/// `POST /apply-template`.
#[derive(Debug, Deserialize)]
pub(crate) struct ApplyTemplateRequest {
    model: String,
    messages: Vec<Value>,
    tools: Option<Value>,
}

async fn call(
    state: &AppState,
    model: &str,
    path: &'static str,
    body: Value,
) -> Result<Value, ApiError> {
    let spec = model_spec(state, model, Mode::Completion).await?;
    let (_, v) = on_runner(state, &spec, None, |c| {
        let body = body.clone();
        async move { c.call::<Value>(Method::POST, path, Some(&body)).await }
    })
    .await?;
    Ok(v)
}

/// `POST /tokenize`: `{"tokens": [...]}`, or with `with_pieces` `[{"id", "piece"}]`.
pub(crate) async fn tokenize(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<TokenizeRequest>,
) -> Result<Json<Value>, ApiError> {
    let out = call(
        &state,
        &req.model,
        "/tokenize",
        json!({"content": req.content, "add_special": req.add_special}),
    )
    .await?;
    if !req.with_pieces {
        return Ok(Json(out));
    }
    let tokens: Vec<i64> = out["tokens"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    let mut pieces = Vec::with_capacity(tokens.len());
    for t in tokens {
        let p = call(&state, &req.model, "/detokenize", json!({"tokens": [t]})).await?;
        pieces.push(json!({"id": t, "piece": p["content"]}));
    }
    Ok(Json(json!({ "tokens": pieces })))
}

/// `POST /detokenize`: `{"content": "..."}`.
pub(crate) async fn detokenize(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<DetokenizeRequest>,
) -> Result<Json<Value>, ApiError> {
    let tokens = req
        .tokens
        .iter()
        .map(|t| {
            i32::try_from(*t).map_err(|_| {
                ApiError::bad_request(format!("token {t} is out of range")).param("tokens")
            })
        })
        .collect::<Result<Vec<i32>, _>>()?;
    Ok(Json(
        call(
            &state,
            &req.model,
            "/detokenize",
            json!({ "tokens": tokens }),
        )
        .await?,
    ))
}

/// `POST /apply-template`: `{"prompt": "..."}`, the exact text the engine would get.
pub(crate) async fn apply_template(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<ApplyTemplateRequest>,
) -> Result<Json<Value>, ApiError> {
    let chat = super::request::ChatCompletionRequest {
        model: req.model.clone(),
        messages: req.messages,
        tools: req.tools,
        logprobs: false,
        top_logprobs: None,
        gen: Default::default(),
    }
    .to_engine()?;
    Ok(Json(
        call(
            &state,
            &req.model,
            "/apply-template",
            serde_json::to_value(&chat).expect("serialises"),
        )
        .await?,
    ))
}
