//! The pipeline's events as Ollama's answers to `/api/chat` and `/api/generate`: one
//! JSON object, or NDJSON lines with `"done": false` and a last line with
//! `done_reason`, the counts, and the durations in nanoseconds. Tool calls arrive whole,
//! with their arguments as objects; a failure mid-stream is one more `{"error"}` line.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use modelrunner_protocol::{Event, FinishReason, Timings, Usage};
use serde_json::{json, Map, Value};

use crate::pipeline::respond::{Answer, Encoder, Framing, ToolCall};
use crate::ApiError;

/// Which route's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route {
    /// `/api/chat`: text under `message`.
    Chat,
    /// `/api/generate`: text as `response`, and the `context` tokens.
    Generate,
}

/// Go's `time.Time` as JSON: RFC 3339 with nanoseconds.
pub(crate) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// One line of a stream.
pub(crate) fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).expect("JSON serialises");
    b.push(b'\n');
    Bytes::from(b)
}

/// A collected answer, with Ollama's content type for it.
pub(crate) fn json_response(v: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        v.to_string(),
    )
        .into_response()
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn ms(x: f64) -> Duration {
    Duration::from_secs_f64((x / 1000.0).max(0.0))
}

/// When the request arrived and how long it took to start (load, prompt, first token).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    /// Arrival.
    pub arrived: Instant,
    /// How long the pipeline took to start the generation (load, prompt, first token).
    pub started: Duration,
}

/// `done_reason`.
fn done_reason(f: FinishReason) -> &'static str {
    match f {
        FinishReason::Length => "length",
        FinishReason::Stop | FinishReason::ToolCalls => "stop",
    }
}

/// The counts and durations of a final line.
fn metrics(clock: &Clock, usage: &Usage, t: &Timings) -> Map<String, Value> {
    let prompt = ms(t.time_to_first_token_ms);
    let eval = ms(t.total_ms - t.time_to_first_token_ms);
    let load = clock.started.saturating_sub(prompt);
    let mut m = Map::new();
    m.insert(
        "total_duration".into(),
        json!(nanos(clock.arrived.elapsed())),
    );
    m.insert("load_duration".into(), json!(nanos(load)));
    m.insert("prompt_eval_count".into(), json!(usage.prompt_tokens));
    m.insert("prompt_eval_duration".into(), json!(nanos(prompt)));
    m.insert("eval_count".into(), json!(usage.completion_tokens));
    m.insert("eval_duration".into(), json!(nanos(eval)));
    m
}

/// One token's `logprobs` entry: Ollama writes them as OpenAI's chat does.
fn logprob(text: &str, lp: &modelrunner_protocol::Logprob) -> Value {
    crate::openai::chat_logprob(text, lp.logprob, &lp.top)
}

/// A tool call's arguments as the object Ollama's clients require; `None` when the
/// model did not finish them (cut off by `num_predict`).
fn arguments(c: &ToolCall) -> Option<Value> {
    match serde_json::from_str::<Value>(&c.arguments) {
        Ok(v @ Value::Object(_)) => Some(v),
        _ if c.arguments.trim().is_empty() => Some(json!({})),
        _ => None,
    }
}

/// Splits calls into those with whole arguments, in Ollama's shape, and the text of
/// those without: clients reject arguments that are not an object, and what the model
/// wrote is never dropped, so an unfinished call is sent as text.
fn calls(list: &[ToolCall]) -> (Vec<Value>, String) {
    let mut whole = Vec::new();
    let mut text = String::new();
    for c in list {
        match arguments(c) {
            Some(arguments) => {
                let mut v = json!({"function": {"index": whole.len(), "name": c.name,
                    "arguments": arguments}});
                if !c.id.is_empty() {
                    v["id"] = json!(c.id);
                }
                whole.push(v);
            }
            None => text.push_str(&format!(
                "{{\"name\":{},\"arguments\":{}",
                json!(c.name),
                c.arguments
            )),
        }
    }
    (whole, text)
}

/// The encoder of both routes.
pub(crate) struct OllamaEncoder {
    route: Route,
    model: String,
    clock: Clock,
    /// Whether reasoning is shown (`think: false` drops it).
    thinking: bool,
    /// The prompt's tokens, for `context` (generate, not raw).
    context: Option<Vec<i32>>,
    calls: Vec<ToolCall>,
    end: Option<(FinishReason, Timings)>,
}

impl OllamaEncoder {
    pub(crate) fn new(
        route: Route,
        model: &str,
        clock: Clock,
        thinking: bool,
        context: Option<Vec<i32>>,
    ) -> Self {
        OllamaEncoder {
            route,
            model: model.to_string(),
            clock,
            thinking,
            context,
            calls: Vec::new(),
            end: None,
        }
    }

    /// A line with this text, reasoning and calls.
    fn chunk(&self, text: &str, thinking: &str, tool_calls: &[ToolCall], done: bool) -> Value {
        let mut v = json!({"model": self.model, "created_at": now()});
        let (whole, cut) = calls(tool_calls);
        let text = format!("{text}{cut}");
        let out = match self.route {
            Route::Chat => {
                v["message"] = json!({"role": "assistant", "content": text});
                &mut v["message"]
            }
            Route::Generate => {
                v["response"] = json!(text);
                &mut v
            }
        };
        if !thinking.is_empty() {
            out["thinking"] = json!(thinking);
        }
        if !whole.is_empty() {
            out["tool_calls"] = Value::Array(whole);
        }
        v["done"] = json!(done);
        v
    }

    /// The final fields: why, the counts, and `context` for generate.
    fn finish(
        &self,
        v: &mut Value,
        reason: FinishReason,
        usage: &Usage,
        t: &Timings,
        generated: &[i32],
    ) {
        v["done_reason"] = json!(done_reason(reason));
        if self.route == Route::Generate {
            if let Some(ctx) = &self.context {
                let all: Vec<i32> = ctx.iter().chain(generated).copied().collect();
                v["context"] = json!(all);
            }
        }
        if let Value::Object(o) = v {
            o.extend(metrics(&self.clock, usage, t));
        }
    }
}

impl Encoder for OllamaEncoder {
    fn collected(&self, answer: Answer) -> Response {
        let c = &answer.choices[0];
        let thinking = if self.thinking {
            c.reasoning.as_str()
        } else {
            ""
        };
        let mut v = self.chunk(&c.text, thinking, &c.tool_calls, true);
        if !c.logprobs.is_empty() {
            v["logprobs"] = c
                .logprobs
                .iter()
                .map(|t| logprob(&t.text, &t.logprob))
                .collect();
        }
        self.finish(
            &mut v,
            c.finish_reason,
            &answer.usage,
            &c.timings,
            &c.tokens,
        );
        json_response(v)
    }

    fn open(&mut self) -> Vec<Bytes> {
        Vec::new()
    }

    fn event(&mut self, _i: usize, event: Event) -> Vec<Bytes> {
        match event {
            Event::Token {
                text,
                token,
                logprobs,
            } => {
                if let Some(ctx) = &mut self.context {
                    ctx.push(token);
                }
                if text.is_empty() && logprobs.is_none() {
                    return Vec::new();
                }
                let mut v = self.chunk(&text, "", &[], false);
                if let Some(lp) = logprobs {
                    v["logprobs"] = json!([logprob(&text, &lp)]);
                }
                vec![line(&v)]
            }
            Event::Reasoning { text } if self.thinking && !text.is_empty() => {
                vec![line(&self.chunk("", &text, &[], false))]
            }
            Event::ToolCall {
                index,
                id,
                name,
                arguments,
            } => {
                ToolCall::add(&mut self.calls, index, id, name, &arguments);
                Vec::new()
            }
            Event::Done {
                finish_reason,
                timings,
                ..
            } => {
                self.end = Some((finish_reason, timings));
                if self.calls.is_empty() {
                    return Vec::new();
                }
                let calls = std::mem::take(&mut self.calls);
                vec![line(&self.chunk("", "", &calls, false))]
            }
            Event::Reasoning { .. } | Event::Started { .. } | Event::Error { .. } => Vec::new(),
        }
    }

    fn close(&mut self, usage: Usage) -> Vec<Bytes> {
        let (reason, t) = self.end.unwrap_or((FinishReason::Stop, Timings::default()));
        let mut v = self.chunk("", "", &[], true);
        // The generated tokens are already in `context` (pushed as they came).
        self.finish(&mut v, reason, &usage, &t, &[]);
        vec![line(&v)]
    }

    fn fail(&mut self, error: ApiError) -> Vec<Bytes> {
        vec![line(&super::error::body(&error))]
    }

    fn framing(&self) -> Framing {
        Framing::Ndjson
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tc(name: &str, arguments: &str) -> ToolCall {
        ToolCall {
            id: String::new(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }

    #[test]
    fn calls_carry_objects_and_unfinished_ones_become_text() {
        let (whole, cut) = calls(&[tc("f", r#"{"x": 1}"#), tc("g", ""), tc("h", r#"{"y": "ab"#)]);
        assert_eq!(whole[0]["function"]["arguments"], json!({"x": 1}));
        assert_eq!(whole[0]["function"]["index"], 0);
        assert_eq!(whole[1]["function"]["arguments"], json!({}));
        assert_eq!(cut, r#"{"name":"h","arguments":{"y": "ab"#);
    }
}
