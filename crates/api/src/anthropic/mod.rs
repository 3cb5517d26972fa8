//! The Anthropic Messages dialect: `POST /v1/messages` and
//! `/v1/messages/count_tokens`, also under `/anthropic/v1` and Docker Model Runner's
//! `/engines/v1` and `/engines/llama.cpp/v1`. `decode` turns requests into the
//! pipeline's, `encode` the pipeline's events into messages and their event stream,
//! `error` is Anthropic's error shape (applied to every error under these paths by
//! `dialect::shape_errors`).

pub(crate) mod decode;
pub(crate) mod encode;
pub(crate) mod error;

use axum::extract::State;
use axum::http::Method;
use axum::response::Response;
use axum::routing::post;
use axum::Json;
use modelrunner_protocol::{Mode, TokenizeRequest};
use serde_json::{json, Value};
use tracing::instrument;

use crate::extract::ApiJson;
use crate::pipeline::respond::respond;
use crate::pipeline::{self, on_runner};
use crate::resolve::model_spec;
use crate::routes::{at, r, Answer, Route, JSON};
use crate::{ApiError, AppState};

/// `POST /v1/messages`.
#[instrument(skip_all, fields(model))]
pub(crate) async fn messages(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let req = decode::messages(&body, state.config.reasoning_format)?;
    let g = &req.generation;
    tracing::Span::current().record("model", g.model.as_str());
    let running = pipeline::start(&state, g).await?;
    respond(running, req.stream, encode::MessagesEncoder::new(&g.model)).await
}

/// `POST /v1/messages/count_tokens`: `{"input_tokens": N}`, the prompt's exact length
/// as a generation would take it (template, tools and all).
#[instrument(skip_all, fields(model))]
pub(crate) async fn count_tokens(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let (model, chat) = decode::count_tokens(&body, state.config.reasoning_format)?;
    tracing::Span::current().record("model", model.as_str());
    let spec = model_spec(&state, &model, Mode::Completion).await?;
    let req = TokenizeRequest {
        content: String::new(),
        add_special: false,
        chat: Some(Box::new(chat)),
    };
    let (_, tokens) = on_runner(&state, &spec, None, |c| {
        let req = &req;
        async move { c.tokenize(req).await }
    })
    .await?;
    Ok(Json(json!({ "input_tokens": tokens.len() })))
}

/// The dialect's entries of the route table.
pub(crate) fn table() -> Vec<Route> {
    let mut t = Vec::new();
    let prefixes = crate::openai::routes::PREFIXES
        .iter()
        .copied()
        .chain(["/anthropic/v1"]);
    for p in prefixes {
        let path = format!("{p}/messages");
        let m = r(
            Method::POST,
            &path,
            "anthropic",
            "Anthropic Messages: create a message",
            Some((JSON, "Anthropic MessageCreateParams")),
            at(&path, post(messages)),
        );
        t.push(
            m.takes("MessageCreateRequest")
                .gives(Answer::Json("AnthropicMessage"))
                .streaming(),
        );
        let path = format!("{p}/messages/count_tokens");
        t.push(
            r(
                Method::POST,
                &path,
                "anthropic",
                "Anthropic Messages: count a conversation's tokens",
                Some((JSON, "Anthropic MessageCountTokensParams")),
                at(&path, post(count_tokens)),
            )
            .takes("CountTokensRequest")
            .gives(Answer::Json("TokenCount")),
        );
    }
    t
}
