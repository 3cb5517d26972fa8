//! llama-server's helper routes, for debugging prompts and counting tokens:
//! `/tokenize`, `/detokenize`, `/apply-template`.

use axum::extract::State;
use axum::Json;
use modelrunner_protocol::{Mode, RunnerClient, RunnerError, TokenizeRequest as RunnerTokenize};
use serde::Deserialize;
use serde_json::{json, Value};

use super::decode::conversation;
use crate::extract::{from_value, ApiJson};
use crate::pipeline::on_runner;
use crate::resolve::model_spec;
use crate::{ApiError, AppState};

/// `POST /tokenize`.
#[derive(Debug, Deserialize)]
pub(crate) struct TokenizeRequest {
    model: Option<String>,
    content: String,
    #[serde(default)]
    add_special: bool,
    #[serde(default)]
    with_pieces: bool,
}

/// `POST /detokenize`.
#[derive(Debug, Deserialize)]
pub(crate) struct DetokenizeRequest {
    model: Option<String>,
    tokens: Vec<i64>,
}

/// `POST /apply-template`.
#[derive(Debug, Deserialize)]
pub(crate) struct ApplyTemplateRequest {
    model: Option<String>,
    messages: Vec<Value>,
    add_generation_prompt: Option<bool>,
}

/// Runs `op` on the model's completion runner.
async fn with_runner<T, Fut>(
    state: &AppState,
    model: &Option<String>,
    op: impl Fn(RunnerClient) -> Fut,
) -> Result<T, ApiError>
where
    Fut: std::future::Future<Output = Result<T, RunnerError>>,
{
    // As llama-server serves one model, `model` may be left out when only one can be meant.
    let model = crate::llama::model_or_only(state, model.as_deref()).await?;
    let spec = model_spec(state, &model, Mode::Completion).await?;
    Ok(on_runner(state, &spec, None, op).await?.1)
}

/// `POST /tokenize`: `{"tokens": [...]}`, or with `with_pieces` `[{"id", "piece"}]`.
pub(crate) async fn tokenize(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<TokenizeRequest>,
) -> Result<Json<Value>, ApiError> {
    let body = RunnerTokenize {
        content: req.content,
        add_special: req.add_special,
        chat: None,
    };
    let with_pieces = req.with_pieces;
    let out = with_runner(&state, &req.model, |c| {
        let body = &body;
        async move {
            let tokens = c.tokenize(body).await?;
            if !with_pieces {
                return Ok(json!({ "tokens": tokens }));
            }
            let mut pieces = Vec::with_capacity(tokens.len());
            for t in tokens {
                pieces.push(json!({"id": t, "piece": c.detokenize(&[t]).await?}));
            }
            Ok(json!({ "tokens": pieces }))
        }
    })
    .await?;
    Ok(Json(out))
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
            i32::try_from(*t)
                .map_err(|_| ApiError::invalid("tokens", format!("token {t} is out of range")))
        })
        .collect::<Result<Vec<i32>, _>>()?;
    let content = with_runner(&state, &req.model, |c| {
        let tokens = &tokens;
        async move { c.detokenize(tokens).await }
    })
    .await?;
    Ok(Json(json!({ "content": content })))
}

/// `POST /apply-template`: `{"prompt": "..."}`, the exact text the engine would get.
pub(crate) async fn apply_template(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let req: ApplyTemplateRequest = from_value(&body)?;
    let mut chat = conversation(&req.messages, &body, state.config.reasoning_format)?;
    chat.add_generation_prompt = req.add_generation_prompt.unwrap_or(true);
    let prompt = with_runner(&state, &req.model, |c| {
        let chat = &chat;
        async move { c.apply_template(chat).await }
    })
    .await?;
    Ok(Json(json!({ "prompt": prompt })))
}
