//! `POST /v1/completions`: one or several prompts (each takes a slot), streamed or not;
//! the handler, and the encoder of its answer (`text_completion`).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use modelrunner_protocol::{Event, Input, Prompt, RunnerClient, TokenLogprob, Usage};
use serde_json::{json, Map, Value};
use tracing::instrument;

use super::decode::{self, Decoded};
use super::{begin, finish, sse, usage_chunk, usage_json, Meta};
use crate::extract::ApiJson;
use crate::pipeline::respond::{respond, Answer, Encoder};
use crate::{ApiError, AppState};

/// The legacy `logprobs` object, built token by token.
#[derive(Default)]
struct Logprobs {
    tokens: Vec<String>,
    token_logprobs: Vec<f32>,
    top_logprobs: Vec<Value>,
    text_offset: Vec<usize>,
}

impl Logprobs {
    fn push(&mut self, offset: usize, text: &str, lp: f32, top: &[TokenLogprob]) {
        self.tokens.push(text.to_string());
        self.token_logprobs.push(lp);
        let mut m = Map::new();
        for t in top {
            m.insert(t.text.clone(), json!(t.logprob));
        }
        self.top_logprobs.push(Value::Object(m));
        self.text_offset.push(offset);
    }

    fn json(&self) -> Value {
        json!({
            "tokens": self.tokens, "token_logprobs": self.token_logprobs,
            "top_logprobs": self.top_logprobs, "text_offset": self.text_offset,
        })
    }
}

/// `POST /v1/completions`.
#[instrument(skip_all, fields(model))]
pub(crate) async fn completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let mut req = decode::completion(&body)?;
    req.generation.model = crate::llama::model_or_only(&state, Some(&req.generation.model)).await?;
    if let Some(suffix) = req.suffix.take() {
        fill_in_the_middle(&state, &mut req, suffix).await?;
    }
    let Some(running) = begin(&state, &headers, &req).await? else {
        return Ok(StatusCode::OK.into_response());
    };
    let echoes = if req.echo {
        echo_texts(running.client(), &req).await?
    } else {
        vec![String::new(); req.generation.choices.len()]
    };
    let encoder = CompletionEncoder::new(&req, echoes);
    respond(running, req.stream, encoder).await
}

/// `suffix`: the one text prompt (of every choice, with `n`) is the prefix of the
/// model's FIM prompt.
async fn fill_in_the_middle(
    state: &AppState,
    req: &mut Decoded,
    suffix: String,
) -> Result<(), ApiError> {
    let g = &mut req.generation;
    let first = g.choices[0].input.clone();
    let Input::Prompt {
        prompt: Prompt::Text(prefix),
        ..
    } = &first
    else {
        return Err(ApiError::invalid("suffix", "suffix needs a text prompt"));
    };
    if g.choices.iter().any(|c| c.input != first) {
        return Err(ApiError::invalid(
            "suffix",
            "suffix needs exactly one prompt",
        ));
    }
    let spec =
        crate::resolve::model_spec(state, &g.model, modelrunner_protocol::Mode::Completion).await?;
    let infill = crate::fim::Infill {
        prefix: prefix.clone(),
        suffix,
        ..Default::default()
    };
    let tokens = crate::fim::prompt(state, &spec, &infill, "suffix").await?;
    for c in &mut g.choices {
        c.input = Input::Prompt {
            prompt: Prompt::Tokens(tokens.clone()),
            add_special: false,
        };
    }
    Ok(())
}

/// Each prompt's text, for `echo`.
async fn echo_texts(client: RunnerClient, req: &Decoded) -> Result<Vec<String>, ApiError> {
    let mut out = Vec::with_capacity(req.generation.choices.len());
    for c in &req.generation.choices {
        out.push(match &c.input {
            Input::Prompt {
                prompt: Prompt::Text(t),
                ..
            } => t.clone(),
            Input::Prompt {
                prompt: Prompt::Tokens(t),
                ..
            } => client.detokenize(t).await?,
            Input::Chat(_) => String::new(),
        });
    }
    Ok(out)
}

/// One `text_completion` chunk of choice `i`.
fn chunk(meta: &Meta, include_usage: bool, i: usize, text: &str, lp: Value, fin: Value) -> Value {
    let choice = json!({"text": text, "index": i, "logprobs": lp, "finish_reason": fin});
    meta.chunk("text_completion", include_usage, choice)
}

/// Text completion's answer.
struct CompletionEncoder {
    meta: Meta,
    logprobs: bool,
    include_usage: bool,
    /// The echoed prompts, which the texts start with.
    echoes: Vec<String>,
    /// Where each choice's next token starts in its text.
    offsets: Vec<usize>,
    /// A chunk of each choice around the token's text, rendered once.
    plain: Vec<sse::Template>,
}

impl CompletionEncoder {
    fn new(req: &Decoded, echoes: Vec<String>) -> Self {
        let meta = Meta::new("cmpl", &req.generation.model);
        let plain = (0..echoes.len())
            .map(|i| {
                let c = chunk(
                    &meta,
                    req.include_usage,
                    i,
                    sse::SLOT,
                    Value::Null,
                    Value::Null,
                );
                sse::Template::new(&c)
            })
            .collect();
        CompletionEncoder {
            meta,
            logprobs: req.logprobs,
            include_usage: req.include_usage,
            offsets: echoes.iter().map(String::len).collect(),
            echoes,
            plain,
        }
    }

    fn chunk(&self, i: usize, text: &str, lp: Value, fin: Value) -> Value {
        chunk(&self.meta, self.include_usage, i, text, lp, fin)
    }
}

impl Encoder for CompletionEncoder {
    fn collected(&self, answer: Answer) -> Response {
        let choices: Vec<Value> = answer
            .choices
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let echo = &self.echoes[i];
                let mut lps = Logprobs::default();
                for t in &c.logprobs {
                    lps.push(
                        echo.len() + t.offset,
                        &t.text,
                        t.logprob.logprob,
                        &t.logprob.top,
                    );
                }
                json!({
                    "text": format!("{echo}{}", c.text), "index": i,
                    "logprobs": if self.logprobs { lps.json() } else { Value::Null },
                    "finish_reason": finish(c.finish_reason),
                })
            })
            .collect();
        axum::Json(json!({
            "id": self.meta.id, "object": "text_completion", "created": self.meta.created,
            "model": self.meta.model, "system_fingerprint": null,
            "choices": choices, "usage": usage_json(&answer.usage),
        }))
        .into_response()
    }

    fn open(&mut self) -> Vec<Bytes> {
        self.echoes
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.is_empty())
            .map(|(i, e)| sse::frame(&self.chunk(i, e, Value::Null, Value::Null)))
            .collect()
    }

    fn event(&mut self, i: usize, event: Event) -> Vec<Bytes> {
        match event {
            Event::Token { text, logprobs, .. } => {
                let frame = match logprobs {
                    Some(lp) if self.logprobs => {
                        let mut l = Logprobs::default();
                        l.push(self.offsets[i], &text, lp.logprob, &lp.top);
                        sse::frame(&self.chunk(i, &text, l.json(), Value::Null))
                    }
                    _ if text.is_empty() => return vec![],
                    _ => self.plain[i].render(&text),
                };
                self.offsets[i] += text.len();
                vec![frame]
            }
            Event::Done { finish_reason, .. } => vec![sse::frame(&self.chunk(
                i,
                "",
                Value::Null,
                json!(finish(finish_reason)),
            ))],
            Event::Started { .. }
            | Event::Reasoning { .. }
            | Event::ToolCall { .. }
            | Event::Error { .. } => vec![],
        }
    }

    fn close(&mut self, usage: Usage) -> Vec<Bytes> {
        let chunk = || self.chunk(0, "", Value::Null, Value::Null);
        sse::last(self.include_usage.then(|| usage_chunk(chunk(), &usage)))
    }

    fn fail(&mut self, error: ApiError) -> Vec<Bytes> {
        vec![sse::error_frame(&error)]
    }
}
