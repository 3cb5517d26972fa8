//! `POST /api/chat` and `POST /api/generate`. Chat renders the conversation with the
//! model's chat template; generate takes one prompt, templated the same way unless it is
//! `raw` or comes with a Go `template` (the request's or the model's, from `create`),
//! and answers with `context`, the tokens of prompt and answer, which a later request
//! continues from. An empty prompt or message list loads the model (or unloads it with
//! `keep_alive: 0`).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State;
use axum::response::Response;
use modelrunner_protocol::{Chat, GenerateRequest, Input, Mode, Prompt, TokenizeRequest};
use modelrunner_scheduler::ModelSpec;
use serde_json::{json, Value};
use tracing::instrument;

use super::decode::{self, flag, no_images, string, Common};
use super::encode::{Clock, OllamaEncoder, Route};
use super::gotemplate::{self, Vars};
use super::{ensure_context, extras, load_or_unload, loaded, resolve};
use crate::extract::ApiJson;
use crate::pipeline::respond::respond;
use crate::pipeline::{self, on_runner, Generation};
use crate::{ApiError, AppState};

/// The pipeline's parameter names as Ollama's requests call them.
const PARAMS: &[(&str, &str)] = &[
    ("temperature", "options.temperature"),
    ("top_p", "options.top_p"),
    ("top_k", "options.top_k"),
    ("min_p", "options.min_p"),
    ("repeat_penalty", "options.repeat_penalty"),
    ("repeat_last_n", "options.repeat_last_n"),
    ("presence_penalty", "options.presence_penalty"),
    ("frequency_penalty", "options.frequency_penalty"),
    ("max_tokens", "options.num_predict"),
    ("stop", "options.stop"),
    ("logprobs", "top_logprobs"),
    ("json_schema", "format"),
    ("grammar", "format"),
];

/// The model of a request and what its creator set for it.
async fn model(
    state: &AppState,
    body: &Value,
) -> Result<(String, ModelSpec, Common, Arc<extras::Extras>), ApiError> {
    let name = body
        .get("model")
        .or(body.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (name, spec) = resolve(state, name, Mode::Completion).await?;
    let extras = extras::of(state, &spec).await?;
    let common = decode::common(body, &extras.params)?;
    Ok((name, spec, common, extras))
}

/// Starts the generation and answers in Ollama's shape.
async fn run(
    state: &AppState,
    arrived: Instant,
    route: Route,
    name: String,
    c: Common,
    input: Input,
    context: Option<Vec<i32>>,
) -> Result<Response, ApiError> {
    let gen = Generation {
        model: name,
        keep_alive: c.keep_alive,
        choices: vec![GenerateRequest {
            input,
            options: c.options,
        }],
        params: PARAMS,
    };
    let before = Instant::now();
    let running = pipeline::start(state, &gen).await?;
    let clock = Clock {
        arrived,
        started: before.elapsed(),
    };
    let encoder = OllamaEncoder::new(route, &c.model, clock, c.think.shows(), context);
    respond(running, c.stream, encoder).await
}

/// `POST /api/chat`.
#[instrument(skip_all, fields(model))]
pub(crate) async fn chat(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    let (name, spec, c, extras) = model(&state, &body).await?;
    tracing::Span::current().record("model", name.as_str());
    let messages = match body.get("messages") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(m)) => m.clone(),
        Some(_) => return Err(ApiError::invalid("messages", "messages must be an array")),
    };
    if messages.is_empty() {
        let reason = load_or_unload(&state, &spec, c.keep_alive).await?;
        return Ok(loaded(Route::Chat, &c.model, reason));
    }
    // `tool_choice` is not Ollama's but OpenAI's, for clients that must have a call.
    let mut chat = decode::conversation(
        &messages,
        body.get("tools"),
        body.get("tool_choice"),
        &c.think,
    )?;
    if let Some(system) = &extras.system {
        if !chat.messages.iter().any(|m| m["role"] == "system") {
            chat.messages
                .insert(0, json!({"role": "system", "content": system}));
        }
    }
    ensure_context(&state, &spec, c.num_ctx).await?;
    run(
        &state,
        arrived,
        Route::Chat,
        name,
        c,
        Input::Chat(chat),
        None,
    )
    .await
}

/// The prompt's tokens as the runner reads them (for `context`).
async fn tokens(
    state: &AppState,
    spec: &ModelSpec,
    c: &Common,
    req: TokenizeRequest,
) -> Result<Vec<i32>, ApiError> {
    let (_, t) = on_runner(state, spec, c.keep_alive, |client| {
        let req = &req;
        async move { client.tokenize(req).await }
    })
    .await?;
    Ok(t)
}

/// `context`: token IDs of an earlier answer.
fn context(body: &Value) -> Result<Option<Vec<i32>>, ApiError> {
    let bad = || {
        ApiError::invalid(
            "context",
            "context must be the array of token IDs an earlier answer returned",
        )
    };
    match body.get("context") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(a)) if a.is_empty() => Ok(None),
        Some(Value::Array(a)) => a
            .iter()
            .map(|t| {
                t.as_i64()
                    .and_then(|t| i32::try_from(t).ok())
                    .filter(|t| *t >= 0)
                    .ok_or_else(bad)
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(bad()),
    }
}

/// `POST /api/generate`.
#[instrument(skip_all, fields(model))]
pub(crate) async fn generate(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let arrived = Instant::now();
    let (name, spec, c, extras) = model(&state, &body).await?;
    tracing::Span::current().record("model", name.as_str());
    let prompt = string(&body, "prompt")?.unwrap_or_default();
    if let Some(suffix) = string(&body, "suffix")?.filter(|s| !s.is_empty()) {
        // Fill in the middle: the prompt is the prefix, the model's FIM tokens frame both.
        no_images(body.get("images"), "images")?;
        ensure_context(&state, &spec, c.num_ctx).await?;
        let infill = crate::fim::Infill {
            prefix: prompt,
            suffix,
            ..Default::default()
        };
        let tokens = crate::fim::prompt(&state, &spec, &infill, "suffix").await?;
        let input = Input::Prompt {
            prompt: Prompt::Tokens(tokens.clone()),
            add_special: false,
        };
        return run(
            &state,
            arrived,
            Route::Generate,
            name,
            c,
            input,
            Some(tokens),
        )
        .await;
    }
    no_images(body.get("images"), "images")?;
    let raw = flag(&body, "raw", false)?;
    let asked_system = string(&body, "system")?;
    let asked_template = string(&body, "template")?;
    let ctx = context(&body)?;
    if raw && (asked_system.is_some() || asked_template.is_some() || ctx.is_some()) {
        return Err(ApiError::invalid(
            "raw",
            "raw mode does not support template, system, or context",
        ));
    }
    if prompt.is_empty() && ctx.is_none() {
        let reason = load_or_unload(&state, &spec, c.keep_alive).await?;
        return Ok(loaded(Route::Generate, &c.model, reason));
    }
    ensure_context(&state, &spec, c.num_ctx).await?;
    if raw {
        let input = Input::Prompt {
            prompt: Prompt::Text(prompt),
            add_special: true,
        };
        return run(&state, arrived, Route::Generate, name, c, input, None).await;
    }
    let system = asked_system.or(extras.system.clone()).unwrap_or_default();
    // A Go template (the request's, else the model's) renders to text; otherwise the
    // model's chat template renders a one-turn conversation.
    let (input, tokenize) = match asked_template.or(extras.template.clone()) {
        Some(t) => {
            let vars = Vars {
                system: &system,
                prompt: &prompt,
                response: "",
            };
            let text =
                gotemplate::render(&t, &vars).map_err(|m| ApiError::invalid("template", m))?;
            let req = TokenizeRequest {
                content: text.clone(),
                add_special: true,
                chat: None,
            };
            (
                Input::Prompt {
                    prompt: Prompt::Text(text),
                    add_special: true,
                },
                req,
            )
        }
        None => {
            let mut turns = Vec::new();
            if !system.is_empty() {
                turns.push(json!({"role": "system", "content": system}));
            }
            turns.push(json!({"role": "user", "content": prompt}));
            let chat: Chat = decode::conversation(&turns, None, None, &c.think)?;
            let req = TokenizeRequest {
                content: String::new(),
                add_special: false,
                chat: Some(Box::new(chat.clone())),
            };
            (Input::Chat(chat), req)
        }
    };
    let mut prompt_tokens = tokens(&state, &spec, &c, tokenize).await?;
    let input = match ctx {
        None => input,
        // The earlier tokens, then this turn's (without a second BOS).
        Some(mut earlier) => {
            if prompt_tokens.first() == earlier.first() {
                prompt_tokens.remove(0);
            }
            earlier.extend(prompt_tokens);
            prompt_tokens = earlier;
            Input::Prompt {
                prompt: Prompt::Tokens(prompt_tokens.clone()),
                add_special: false,
            }
        }
    };
    run(
        &state,
        arrived,
        Route::Generate,
        name,
        c,
        input,
        Some(prompt_tokens),
    )
    .await
}
