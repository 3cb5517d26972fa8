//! `POST /v1/completions`: one or several prompts (each takes a slot), streamed or not.

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use modelrunner_engine::protocol::TokenLogprob;
use modelrunner_engine::{Event, Prompt, Usage};
use modelrunner_scheduler::Mode;
use serde_json::{json, Map, Value};
use tracing::instrument;

use super::chat::failed;
use super::request::CompletionRequest;
use super::{add_usage, finish, on_runner, preload_only, sse, start, usage_json, Meta};
use crate::extract::ApiJson;
use crate::resolve::model_spec;
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
#[instrument(skip_all, fields(model = %req.model, stream = req.gen.stream))]
pub(crate) async fn completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CompletionRequest>,
) -> Result<Response, ApiError> {
    let requests = req.to_engine()?;
    let spec = model_spec(&state, &req.model, Mode::Completion).await?;
    if preload_only(&headers) {
        state.scheduler.acquire(&spec, req.gen.keep_alive).await?;
        return Ok(StatusCode::OK.into_response());
    }
    let mut guards = Vec::with_capacity(requests.len());
    let mut echoes = Vec::with_capacity(requests.len());
    let mut streams = Vec::with_capacity(requests.len());
    for (i, r) in requests.into_iter().enumerate() {
        let (g, s) = on_runner(&state, &spec, req.gen.keep_alive, |c| {
            start(c, "/generate", r.clone(), (&state.metrics, &spec.name))
        })
        .await?;
        echoes.push(if req.echo {
            echo_text(&g, &r.prompt).await?
        } else {
            String::new()
        });
        guards.push(g);
        streams.push(Box::pin(s.map(move |e| (i, e))));
    }
    let n = streams.len();
    let mut events = futures::stream::select_all(streams);
    let meta = Meta::new("cmpl", &req.model);
    let want_lp = req.logprobs.is_some();
    if !req.gen.stream {
        let mut texts = echoes;
        let mut lps: Vec<Logprobs> = (0..n).map(|_| Logprobs::default()).collect();
        let mut fins = vec![None; n];
        let mut usage = Usage::default();
        while let Some((i, ev)) = events.next().await {
            match ev {
                Event::Token { text, logprobs, .. } => {
                    if let Some((p, top)) = logprobs {
                        lps[i].push(texts[i].len(), &text, p, &top);
                    }
                    texts[i].push_str(&text);
                }
                Event::Done {
                    finish_reason,
                    usage: u,
                    ..
                } => {
                    fins[i] = Some(finish_reason);
                    add_usage(&mut usage, &u);
                }
                Event::Error { message, .. } => return Err(failed(&message)),
            }
        }
        drop(guards);
        let choices: Vec<Value> = (0..n)
            .map(|i| {
                json!({
                    "text": texts[i], "index": i,
                    "logprobs": if want_lp { lps[i].json() } else { Value::Null },
                    "finish_reason": fins[i].map(finish),
                })
            })
            .collect();
        if fins.iter().any(Option::is_none) {
            return Err(failed("the runner ended a stream without a result"));
        }
        return Ok(axum::Json(json!({
            "id": meta.id, "object": "text_completion", "created": meta.created,
            "model": meta.model, "system_fingerprint": null,
            "choices": choices, "usage": usage_json(&usage),
        }))
        .into_response());
    }
    let include_usage = req
        .gen
        .stream_options
        .as_ref()
        .is_some_and(|o| o.include_usage);
    let chunk = move |i: usize, text: &str, lp: Value, fin: Value| {
        let mut c = json!({
            "id": meta.id, "object": "text_completion", "created": meta.created,
            "model": meta.model, "system_fingerprint": null,
            "choices": [{"text": text, "index": i, "logprobs": lp, "finish_reason": fin}],
        });
        if include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    let first: Vec<_> = echoes
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.is_empty())
        .map(|(i, e)| sse::frame(&chunk(i, e, Value::Null, Value::Null)))
        .collect();
    let plain: Vec<sse::Template> = (0..n)
        .map(|i| sse::Template::new(&chunk(i, sse::SLOT, Value::Null, Value::Null)))
        .collect();
    let mut offsets = echoes.iter().map(String::len).collect::<Vec<_>>();
    let mut left = n;
    let mut usage = Usage::default();
    let frames = events
        // After an error nothing more is sent, not even other prompts' tokens.
        .scan(false, |failed, (i, ev)| {
            let pass = (!*failed).then_some((i, ev));
            *failed = *failed
                || pass
                    .as_ref()
                    .is_some_and(|(_, e)| matches!(e, Event::Error { .. }));
            futures::future::ready(pass)
        })
        .map(move |(i, ev)| {
            let _hold = &guards;
            match ev {
                Event::Token { text, logprobs, .. } => {
                    if text.is_empty() && logprobs.is_none() {
                        return vec![];
                    }
                    let frame = match logprobs {
                        Some((p, top)) if want_lp => {
                            let mut l = Logprobs::default();
                            l.push(offsets[i], &text, p, &top);
                            sse::frame(&chunk(i, &text, l.json(), Value::Null))
                        }
                        _ => plain[i].render(&text),
                    };
                    offsets[i] += text.len();
                    vec![frame]
                }
                Event::Done {
                    finish_reason,
                    usage: u,
                    ..
                } => {
                    add_usage(&mut usage, &u);
                    left -= 1;
                    let mut out = vec![sse::frame(&chunk(
                        i,
                        "",
                        Value::Null,
                        json!(finish(finish_reason)),
                    ))];
                    if left == 0 {
                        if include_usage {
                            let mut c = chunk(0, "", Value::Null, Value::Null);
                            c["choices"] = json!([]);
                            c["usage"] = usage_json(&usage);
                            out.push(sse::frame(&c));
                        }
                        out.push(sse::done());
                    }
                    out
                }
                Event::Error { message, .. } => vec![sse::error_frame(&message)],
            }
        })
        .flat_map(futures::stream::iter);
    Ok(sse::response(futures::stream::iter(first).chain(frames)))
}

/// The prompt's text for `echo`.
async fn echo_text(
    g: &modelrunner_scheduler::RunnerGuard,
    prompt: &Prompt,
) -> Result<String, ApiError> {
    match prompt {
        Prompt::Text(t) => Ok(t.clone()),
        Prompt::Tokens(t) => {
            let v: Value = g
                .client()
                .call(Method::POST, "/detokenize", Some(&json!({"tokens": t})))
                .await?;
            Ok(v["content"].as_str().unwrap_or_default().to_string())
        }
    }
}
