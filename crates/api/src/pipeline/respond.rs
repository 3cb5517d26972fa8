//! The responder: a running generation's events, turned by a dialect's [`Encoder`] into
//! one collected answer or a stream of frames. What every dialect shares lives here
//! once: interleaving the choices, accumulating text, log-probabilities and usage,
//! holding the runner slots until the answer is complete, and ending a stream after the
//! first failure.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures::stream::BoxStream;
use futures::StreamExt;
use modelrunner_protocol::{Event, FinishReason, Logprob, Timings, Usage};

use super::Running;
use crate::ApiError;

/// A token's text and log-probabilities, at its byte offset in the choice's text.
#[derive(Debug, Clone)]
pub(crate) struct TokenLogprobs {
    /// Where the token's text starts in the choice's text.
    pub offset: usize,
    /// The token.
    pub token: i32,
    /// The text it added.
    pub text: String,
    /// Its log-probability and the alternatives.
    pub logprob: Logprob,
}

/// A tool call of a finished choice.
#[derive(Debug, Clone, Default)]
pub(crate) struct ToolCall {
    /// Its id.
    pub id: String,
    /// The function.
    pub name: String,
    /// The arguments' JSON text.
    pub arguments: String,
}

impl ToolCall {
    /// Adds a `ToolCall` event's part to the calls of a choice.
    pub(crate) fn add(
        calls: &mut Vec<ToolCall>,
        index: usize,
        id: Option<String>,
        name: Option<String>,
        arguments: &str,
    ) {
        if index >= calls.len() {
            calls.resize_with(index + 1, ToolCall::default);
        }
        let c = &mut calls[index];
        if let Some(id) = id {
            c.id = id;
        }
        if let Some(name) = name {
            c.name = name;
        }
        c.arguments.push_str(arguments);
    }
}

/// One finished choice.
#[derive(Debug, Clone)]
pub(crate) struct Choice {
    /// The generated text.
    pub text: String,
    /// The reasoning, split off from the text.
    pub reasoning: String,
    /// The tool calls.
    pub tool_calls: Vec<ToolCall>,
    /// Per-token log-probabilities, when asked for.
    pub logprobs: Vec<TokenLogprobs>,
    /// Why it ended.
    pub finish_reason: FinishReason,
    /// The stop string that ended it, when one did.
    pub stop: Option<String>,
    /// The generated token IDs.
    pub tokens: Vec<i32>,
    /// The runner's times.
    pub timings: Timings,
    /// Its own counts.
    pub usage: Usage,
}

/// A whole answer: every choice, in order, and their summed usage.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// The choices.
    pub choices: Vec<Choice>,
    /// Their counts together.
    pub usage: Usage,
}

/// How a stream is framed on the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Framing {
    /// `text/event-stream`.
    Sse,
    /// One JSON object per line (`application/x-ndjson`).
    Ndjson,
}

/// A dialect's encoder: the answer in its wire format, collected or streamed.
pub(crate) trait Encoder: Send + 'static {
    /// The whole answer, when the client does not stream.
    fn collected(&self, answer: Answer) -> Response;
    /// Frames before any event.
    fn open(&mut self) -> Vec<Bytes>;
    /// Frames for one event of choice `i`: a token, reasoning, a call, or the end of that
    /// choice.
    fn event(&mut self, i: usize, event: Event) -> Vec<Bytes>;
    /// Frames after every choice has ended, with their summed usage.
    fn close(&mut self, usage: Usage) -> Vec<Bytes>;
    /// The frames that end a failed stream; nothing follows them.
    fn fail(&mut self, error: ApiError) -> Vec<Bytes>;
    /// How the stream is framed.
    fn framing(&self) -> Framing {
        Framing::Sse
    }
}

/// Every choice's events, tagged with the choice's index.
fn interleave(streams: Vec<BoxStream<'static, Event>>) -> BoxStream<'static, (usize, Event)> {
    if streams.len() == 1 {
        // The common case without select_all's bookkeeping (this runs for every token).
        let s = streams.into_iter().next().expect("one stream");
        return s.map(|e| (0, e)).boxed();
    }
    let tagged = streams
        .into_iter()
        .enumerate()
        .map(|(i, s)| s.map(move |e| (i, e)).boxed());
    futures::stream::select_all(tagged).boxed()
}

/// The answer to a running generation: collected through [`Encoder::collected`], or a
/// stream through the rest of the encoder.
pub(crate) async fn respond<E: Encoder>(
    running: Running,
    stream: bool,
    encoder: E,
) -> Result<Response, ApiError> {
    if stream {
        Ok(streamed(running, encoder))
    } else {
        collect(running, encoder).await
    }
}

async fn collect<E: Encoder>(running: Running, encoder: E) -> Result<Response, ApiError> {
    Ok(encoder.collected(answer(running).await?))
}

/// The whole answer of a running generation, its runner slots freed at the end.
pub(crate) async fn answer(running: Running) -> Result<Answer, ApiError> {
    let n = running.streams.len();
    let mut texts = vec![String::new(); n];
    let mut reasoning = vec![String::new(); n];
    let mut calls: Vec<Vec<ToolCall>> = vec![Vec::new(); n];
    let mut logprobs: Vec<Vec<TokenLogprobs>> = vec![Vec::new(); n];
    let mut tokens: Vec<Vec<i32>> = vec![Vec::new(); n];
    // Per choice: why it ended, its stop string, counts and times.
    type End = (FinishReason, Option<String>, Usage, Timings);
    let mut done: Vec<Option<End>> = vec![None; n];
    let mut events = interleave(running.streams);
    while let Some((i, ev)) = events.next().await {
        match ev {
            Event::Token {
                text,
                token,
                logprobs: lp,
            } => {
                tokens[i].push(token);
                if let Some(logprob) = lp {
                    logprobs[i].push(TokenLogprobs {
                        offset: texts[i].len(),
                        token,
                        text: text.clone(),
                        logprob,
                    });
                }
                texts[i].push_str(&text);
            }
            Event::Started { .. } => {}
            Event::Reasoning { text } => reasoning[i].push_str(&text),
            Event::ToolCall {
                index,
                id,
                name,
                arguments,
            } => {
                ToolCall::add(&mut calls[i], index, id, name, &arguments);
            }
            Event::Done {
                finish_reason,
                stop,
                usage,
                timings,
            } => done[i] = Some((finish_reason, stop, usage, timings)),
            Event::Error { error } => return Err(ApiError::generation_failed(&error)),
        }
    }
    drop(running.guards);
    let mut usage = Usage::default();
    let mut choices = Vec::with_capacity(n);
    let parts = texts.into_iter().zip(reasoning).zip(calls).zip(logprobs);
    for (((((text, reasoning), tool_calls), logprobs), tokens), end) in parts.zip(tokens).zip(done)
    {
        let Some((finish_reason, stop, u, timings)) = end else {
            return Err(ApiError::generation_failed(
                &modelrunner_protocol::RunnerError::Interrupted {
                    message: "a stream ended without a result".into(),
                },
            ));
        };
        usage += u;
        choices.push(Choice {
            text,
            reasoning,
            tool_calls,
            logprobs,
            finish_reason,
            stop,
            tokens,
            timings,
            usage: u,
        });
    }
    Ok(Answer { choices, usage })
}

/// What a stream carries from one event to the next.
struct Progress<E> {
    encoder: E,
    /// Held until the stream ends; dropping them frees the slots.
    _guards: Vec<modelrunner_scheduler::RunnerGuard>,
    /// Choices not yet ended.
    left: usize,
    usage: Usage,
    failed: bool,
}

fn streamed<E: Encoder>(running: Running, mut encoder: E) -> Response {
    let framing = encoder.framing();
    let opening = futures::stream::iter(encoder.open());
    let progress = Progress {
        encoder,
        _guards: running.guards,
        left: running.streams.len(),
        usage: Usage::default(),
        failed: false,
    };
    let frames = interleave(running.streams)
        .scan(progress, |p, (i, ev)| {
            // After a failure nothing more is sent, not even other choices' tokens.
            if p.failed {
                return futures::future::ready(None);
            }
            let out = match ev {
                Event::Error { error } => {
                    p.failed = true;
                    p.encoder.fail(ApiError::generation_failed(&error))
                }
                Event::Done { usage, .. } => {
                    p.usage += usage;
                    p.left -= 1;
                    let mut out = p.encoder.event(i, ev);
                    if p.left == 0 {
                        out.extend(p.encoder.close(p.usage));
                    }
                    out
                }
                token => p.encoder.event(i, token),
            };
            futures::future::ready(Some(out))
        })
        .flat_map(futures::stream::iter);
    response(framing, opening.chain(frames))
}

/// A streamed response over frames.
fn response(
    framing: Framing,
    frames: impl futures::Stream<Item = Bytes> + Send + 'static,
) -> Response {
    let content_type = match framing {
        Framing::Sse => "text/event-stream",
        Framing::Ndjson => "application/x-ndjson",
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(frames.map(Ok::<_, Infallible>)),
    )
        .into_response()
}
