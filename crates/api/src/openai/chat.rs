//! `POST /v1/chat/completions`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use modelrunner_engine::Event;
use modelrunner_scheduler::Mode;
use serde_json::{json, Value};
use tracing::instrument;

use super::request::ChatCompletionRequest;
use super::{chat_logprob, finish, on_runner, preload_only, sse, start, usage_json, Meta};
use crate::extract::ApiJson;
use crate::resolve::model_spec;
use crate::{ApiError, AppState};

/// `POST /v1/chat/completions`.
#[instrument(skip_all, fields(model = %req.model, stream = req.gen.stream))]
pub(crate) async fn chat_completions(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<ChatCompletionRequest>,
) -> Result<Response, ApiError> {
    let engine_req = req.to_engine()?;
    let spec = model_spec(&state, &req.model, Mode::Completion).await?;
    if preload_only(&headers) {
        state.scheduler.acquire(&spec, req.gen.keep_alive).await?;
        return Ok(StatusCode::OK.into_response());
    }
    let (guard, events) = on_runner(&state, &spec, req.gen.keep_alive, |c| {
        start(c, "/chat", engine_req.clone(), (&state.metrics, &spec.name))
    })
    .await?;
    let mut events = Box::pin(events);
    let meta = Meta::new("chatcmpl", &req.model);
    let logprobs = req.logprobs;
    if !req.gen.stream {
        let mut text = String::new();
        let mut lps = Vec::new();
        while let Some(ev) = events.next().await {
            match ev {
                Event::Token {
                    text: t,
                    logprobs: lp,
                    ..
                } => {
                    if let Some((p, top)) = lp {
                        lps.push(chat_logprob(&t, p, &top));
                    }
                    text.push_str(&t);
                }
                Event::Done {
                    finish_reason,
                    usage,
                    ..
                } => {
                    drop(guard);
                    return Ok(axum::Json(json!({
                        "id": meta.id,
                        "object": "chat.completion",
                        "created": meta.created,
                        "model": meta.model,
                        "system_fingerprint": null,
                        "choices": [{
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "logprobs": if logprobs { json!({"content": lps}) } else { Value::Null },
                            "finish_reason": finish(finish_reason),
                        }],
                        "usage": usage_json(&usage),
                    }))
                    .into_response());
                }
                Event::Error { message, .. } => return Err(failed(&message)),
            }
        }
        return Err(failed("the runner ended the stream without a result"));
    }
    let include_usage = req
        .gen
        .stream_options
        .as_ref()
        .is_some_and(|o| o.include_usage);
    let chunk = move |delta: Value, lp: Value, fin: Value| {
        let mut c = json!({
            "id": meta.id, "object": "chat.completion.chunk", "created": meta.created,
            "model": meta.model, "system_fingerprint": null,
            "choices": [{"index": 0, "delta": delta, "logprobs": lp, "finish_reason": fin}],
        });
        if include_usage {
            c["usage"] = Value::Null;
        }
        c
    };
    let first = sse::frame(&chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
        Value::Null,
    ));
    let plain = sse::Template::new(&chunk(
        json!({ "content": sse::SLOT }),
        Value::Null,
        Value::Null,
    ));
    let frames = events
        .map(move |ev| {
            let _hold = &guard;
            match ev {
                Event::Token {
                    text, logprobs: lp, ..
                } => {
                    if text.is_empty() && lp.is_none() {
                        return vec![];
                    }
                    match lp {
                        Some((p, top)) if logprobs => {
                            let lp = json!({"content": [chat_logprob(&text, p, &top)]});
                            vec![sse::frame(&chunk(
                                json!({"content": text}),
                                lp,
                                Value::Null,
                            ))]
                        }
                        _ => vec![plain.render(&text)],
                    }
                }
                Event::Done {
                    finish_reason,
                    usage,
                    ..
                } => {
                    let mut out = vec![sse::frame(&chunk(
                        json!({}),
                        Value::Null,
                        json!(finish(finish_reason)),
                    ))];
                    if include_usage {
                        let mut u = chunk(json!({}), Value::Null, Value::Null);
                        u["choices"] = json!([]);
                        u["usage"] = usage_json(&usage);
                        out.push(sse::frame(&u));
                    }
                    out.push(sse::done());
                    out
                }
                Event::Error { message, .. } => vec![sse::error_frame(&message)],
            }
        })
        .flat_map(futures::stream::iter);
    Ok(sse::response(futures::stream::iter([first]).chain(frames)))
}

/// A generation that failed after it started.
pub(crate) fn failed(message: &str) -> ApiError {
    let mut e = ApiError::internal(format!("generation failed: {message}"));
    e.code = Some("engine_error");
    e
}
