//! The pipeline's answer as an Anthropic message: the message object, or the exact
//! event sequence (`message_start`, blocks one at a time with contiguous indexes and
//! complete empty start blocks, `ping`, `message_delta` with the stop reason and usage,
//! `message_stop`), with an `error` event when generation fails mid-stream.

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use modelrunner_protocol::{Event, FinishReason, Usage};
use serde_json::{json, Value};

use crate::openai::sse;
use crate::pipeline::respond::{Answer, Encoder};
use crate::ApiError;

/// `stop_reason` and `stop_sequence`.
fn stop_reason(f: FinishReason, stop: Option<&str>) -> (&'static str, Value) {
    match (f, stop) {
        (FinishReason::Stop, Some(s)) => ("stop_sequence", json!(s)),
        (FinishReason::Stop, None) => ("end_turn", Value::Null),
        (FinishReason::Length, _) => ("max_tokens", Value::Null),
        (FinishReason::ToolCalls, _) => ("tool_use", Value::Null),
    }
}

/// Anthropic's `usage`: `input_tokens` excludes what was read from the cache.
fn usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens.saturating_sub(u.cached_tokens),
        "output_tokens": u.completion_tokens,
        "cache_read_input_tokens": u.cached_tokens,
        "cache_creation_input_tokens": 0,
    })
}

/// A tool call's arguments as the `input` object (`{}` when they are not an object).
fn input(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({}),
    }
}

/// The block open in a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text,
    Thinking,
    Tool,
}

/// A Messages answer.
pub(crate) struct MessagesEncoder {
    id: String,
    model: String,
    /// Whether `message_start` went out.
    started: bool,
    open: Option<Open>,
    /// The index of the next block.
    next: usize,
    pinged: bool,
}

impl MessagesEncoder {
    pub(crate) fn new(model: &str) -> MessagesEncoder {
        MessagesEncoder {
            id: crate::pipeline::unique_id("msg", '_'),
            model: model.to_string(),
            started: false,
            open: None,
            next: 0,
            pinged: false,
        }
    }

    fn message(&self, content: Value, reason: Value, sequence: Value, usage: Value) -> Value {
        json!({
            "id": self.id, "type": "message", "role": "assistant", "model": self.model,
            "content": content, "stop_reason": reason, "stop_sequence": sequence, "usage": usage,
        })
    }

    /// `message_start`, once, before anything else.
    fn start_message(&mut self, prompt: &Usage, out: &mut Vec<Bytes>) {
        if self.started {
            return;
        }
        self.started = true;
        let m = self.message(json!([]), Value::Null, Value::Null, usage(prompt));
        out.push(sse::named(&json!({"type": "message_start", "message": m})));
    }

    /// Ends the open block.
    fn stop_block(&mut self, out: &mut Vec<Bytes>) {
        let Some(open) = self.open.take() else { return };
        let index = self.next - 1;
        if open == Open::Thinking {
            out.push(self.delta(index, json!({"type": "signature_delta", "signature": ""})));
        }
        out.push(sse::named(
            &json!({"type": "content_block_stop", "index": index}),
        ));
    }

    /// Makes `kind` the open block, starting it with `block` when another is open.
    fn block(&mut self, kind: Open, block: Value, out: &mut Vec<Bytes>) -> usize {
        if self.open == Some(kind) && kind != Open::Tool {
            return self.next - 1;
        }
        self.stop_block(out);
        let index = self.next;
        self.next += 1;
        self.open = Some(kind);
        out.push(sse::named(&json!({
            "type": "content_block_start", "index": index, "content_block": block,
        })));
        if !self.pinged {
            self.pinged = true;
            out.push(sse::named(&json!({"type": "ping"})));
        }
        index
    }

    fn delta(&self, index: usize, delta: Value) -> Bytes {
        sse::named(&json!({"type": "content_block_delta", "index": index, "delta": delta}))
    }
}

impl Encoder for MessagesEncoder {
    fn collected(&self, answer: Answer) -> Response {
        let c = &answer.choices[0];
        let mut content = Vec::new();
        if !c.reasoning.is_empty() {
            content.push(json!({"type": "thinking", "thinking": c.reasoning, "signature": ""}));
        }
        if !c.text.is_empty() {
            content.push(json!({"type": "text", "text": c.text}));
        }
        for t in &c.tool_calls {
            content.push(json!({"type": "tool_use", "id": t.id, "name": t.name,
                                "input": input(&t.arguments)}));
        }
        let (reason, sequence) = stop_reason(c.finish_reason, c.stop.as_deref());
        let m = self.message(
            Value::Array(content),
            json!(reason),
            sequence,
            usage(&answer.usage),
        );
        axum::Json(m).into_response()
    }

    fn open(&mut self) -> Vec<Bytes> {
        Vec::new()
    }

    fn event(&mut self, _i: usize, event: Event) -> Vec<Bytes> {
        let mut out = Vec::new();
        if let Event::Started {
            prompt_tokens,
            cached_tokens,
        } = event
        {
            let prompt = Usage {
                prompt_tokens,
                cached_tokens,
                completion_tokens: 0,
            };
            self.start_message(&prompt, &mut out);
            return out;
        }
        self.start_message(&Usage::default(), &mut out);
        match event {
            Event::Token { text, .. } if !text.is_empty() => {
                let i = self.block(Open::Text, json!({"type": "text", "text": ""}), &mut out);
                out.push(self.delta(i, json!({"type": "text_delta", "text": text})));
            }
            Event::Reasoning { text } if !text.is_empty() => {
                let start = json!({"type": "thinking", "thinking": "", "signature": ""});
                let i = self.block(Open::Thinking, start, &mut out);
                out.push(self.delta(i, json!({"type": "thinking_delta", "thinking": text})));
            }
            Event::ToolCall {
                id,
                name,
                arguments,
                ..
            } => {
                if let (Some(id), Some(name)) = (id, name) {
                    let start = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
                    self.block(Open::Tool, start, &mut out);
                }
                if self.open == Some(Open::Tool) && !arguments.is_empty() {
                    let d = json!({"type": "input_json_delta", "partial_json": arguments});
                    out.push(self.delta(self.next - 1, d));
                }
            }
            Event::Done {
                finish_reason,
                stop,
                usage: u,
                ..
            } => {
                self.stop_block(&mut out);
                let (reason, sequence) = stop_reason(finish_reason, stop.as_deref());
                out.push(sse::named(&json!({
                    "type": "message_delta",
                    "delta": {"stop_reason": reason, "stop_sequence": sequence},
                    "usage": usage(&u),
                })));
            }
            _ => {}
        }
        out
    }

    fn close(&mut self, _usage: Usage) -> Vec<Bytes> {
        vec![sse::named(&json!({"type": "message_stop"}))]
    }

    fn fail(&mut self, error: ApiError) -> Vec<Bytes> {
        vec![sse::named(&super::error::body(&error, None))]
    }
}
