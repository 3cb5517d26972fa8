//! The pipeline's answer as a Responses object, or as its event stream: every event with
//! a `sequence_number` from 0, `response.created` first, each output item added, its
//! part added, its deltas, its part and item done, in `output_index` order, and
//! `response.completed` (or `.incomplete` at `max_output_tokens`, `.failed` after an
//! `error` event) holding the whole output and usage. A stored response is stored when
//! it ends.

use std::sync::Arc;

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use modelrunner_protocol::{Event, FinishReason, Usage};
use serde_json::{json, Value};

use super::items::{self, call_item, message_item, reasoning_item};
use super::stored::{Record, Responses};
use crate::openai::sse;
use crate::pipeline::respond::{Answer, Encoder};
use crate::pipeline::{now_secs, unique_id};
use crate::ApiError;

/// Responses' `usage`.
pub(crate) fn usage(u: &Usage) -> Value {
    json!({
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u.prompt_tokens + u.completion_tokens,
    })
}

/// Who a response is and what it echoes; where it is stored.
#[derive(Clone)]
pub(crate) struct Identity {
    pub id: String,
    pub created_at: u64,
    pub echo: Value,
    /// Where it is stored, with its conversation's input items; `None` for `store: false`.
    pub store: Option<(Arc<Responses>, Vec<Value>)>,
}

impl Identity {
    pub(crate) fn new(echo: Value, store: Option<(Arc<Responses>, Vec<Value>)>) -> Identity {
        Identity {
            id: unique_id("resp", '_'),
            created_at: now_secs(),
            echo,
            store,
        }
    }

    /// The response object.
    pub(crate) fn response(
        &self,
        status: &str,
        output: Vec<Value>,
        usage: Value,
        error: Value,
    ) -> Value {
        let mut r = self.echo.clone();
        r["id"] = json!(self.id);
        r["created_at"] = json!(self.created_at);
        r["status"] = json!(status);
        r["output"] = Value::Array(output);
        r["usage"] = usage;
        r["error"] = error;
        r["incomplete_details"] = if status == "incomplete" {
            json!({"reason": "max_output_tokens"})
        } else {
            Value::Null
        };
        if status != "in_progress" && status != "queued" {
            r["completed_at"] = json!(now_secs());
        }
        r
    }

    /// Stores `response` when this one is stored.
    pub(crate) fn keep(&self, response: &Value) {
        if let Some((stored, history)) = &self.store {
            stored.put(Record {
                response: response.clone(),
                history: history.clone(),
                created: self.created_at,
            });
        }
    }

    /// The finished response of an answer, stored.
    pub(crate) fn finished(&self, answer: &Answer) -> Value {
        let c = &answer.choices[0];
        let status = status(c.finish_reason);
        let r = self.response(status, items::output(c), usage(&answer.usage), Value::Null);
        self.keep(&r);
        r
    }

    /// The failed response, stored.
    pub(crate) fn failed(&self, e: &ApiError, output: Vec<Value>) -> Value {
        let error = json!({"code": e.code.unwrap_or("server_error"), "message": e.message});
        let r = self.response("failed", output, Value::Null, error);
        self.keep(&r);
        r
    }
}

fn status(f: FinishReason) -> &'static str {
    match f {
        FinishReason::Length => "incomplete",
        FinishReason::Stop | FinishReason::ToolCalls => "completed",
    }
}

/// The item being streamed.
enum Open {
    Reasoning {
        id: String,
        text: String,
    },
    Message {
        id: String,
        text: String,
    },
    Call {
        id: String,
        call_id: String,
        name: String,
        arguments: String,
    },
}

/// A Responses answer.
pub(crate) struct ResponsesEncoder {
    who: Identity,
    seq: u64,
    /// Finished output items.
    done: Vec<Value>,
    open: Option<Open>,
    finish: FinishReason,
}

impl ResponsesEncoder {
    pub(crate) fn new(who: Identity) -> ResponsesEncoder {
        ResponsesEncoder {
            who,
            seq: 0,
            done: Vec::new(),
            open: None,
            finish: FinishReason::Stop,
        }
    }

    /// One event, numbered.
    fn ev(&mut self, mut v: Value, out: &mut Vec<Bytes>) {
        v["sequence_number"] = json!(self.seq);
        self.seq += 1;
        out.push(sse::named(&v));
    }

    fn index(&self) -> usize {
        self.done.len()
    }

    /// Ends the open item.
    fn end_item(&mut self, out: &mut Vec<Bytes>) {
        let Some(open) = self.open.take() else { return };
        let i = self.index();
        let item = match open {
            Open::Reasoning { id, text } => {
                let part = items::reasoning_part(&text);
                let base = json!({"item_id": id, "output_index": i, "content_index": 0});
                self.ev(
                    with(
                        &base,
                        json!({"type": "response.reasoning_text.done", "text": text}),
                    ),
                    out,
                );
                self.ev(
                    with(
                        &base,
                        json!({"type": "response.content_part.done", "part": part}),
                    ),
                    out,
                );
                reasoning_item(&id, &text, "completed")
            }
            Open::Message { id, text } => {
                let part = items::text_part(&text);
                let base = json!({"item_id": id, "output_index": i, "content_index": 0});
                let done =
                    json!({"type": "response.output_text.done", "text": text, "logprobs": []});
                self.ev(with(&base, done), out);
                self.ev(
                    with(
                        &base,
                        json!({"type": "response.content_part.done", "part": part}),
                    ),
                    out,
                );
                message_item(&id, &text, "completed")
            }
            Open::Call {
                id,
                call_id,
                name,
                arguments,
            } => {
                self.ev(
                    json!({"type": "response.function_call_arguments.done", "item_id": id,
                    "output_index": i, "name": name, "arguments": arguments}),
                    out,
                );
                call_item(&id, &call_id, &name, &arguments, "completed")
            }
        };
        self.ev(
            json!({"type": "response.output_item.done", "output_index": i, "item": item}),
            out,
        );
        self.done.push(item);
    }

    /// Opens an item (and its content part) after ending the open one.
    fn start_item(&mut self, open: Open, out: &mut Vec<Bytes>) {
        self.end_item(out);
        let i = self.index();
        let (item, part) = match &open {
            Open::Reasoning { id, .. } => (
                reasoning_item(id, "", "in_progress"),
                Some((id, items::reasoning_part(""))),
            ),
            Open::Message { id, .. } => (
                message_item(id, "", "in_progress"),
                Some((id, items::text_part(""))),
            ),
            Open::Call {
                id, call_id, name, ..
            } => (call_item(id, call_id, name, "", "in_progress"), None),
        };
        self.ev(
            json!({"type": "response.output_item.added", "output_index": i, "item": item}),
            out,
        );
        if let Some((id, part)) = part {
            self.ev(
                json!({"type": "response.content_part.added", "item_id": id,
                "output_index": i, "content_index": 0, "part": part}),
                out,
            );
        }
        self.open = Some(open);
    }
}

/// `base` with `extra`'s fields.
fn with(base: &Value, extra: Value) -> Value {
    let mut v = base.clone();
    if let (Value::Object(v), Value::Object(e)) = (&mut v, extra) {
        v.extend(e);
    }
    v
}

impl Encoder for ResponsesEncoder {
    fn collected(&self, answer: Answer) -> Response {
        axum::Json(self.who.finished(&answer)).into_response()
    }

    fn open(&mut self) -> Vec<Bytes> {
        let mut out = Vec::new();
        let r = self
            .who
            .response("in_progress", Vec::new(), Value::Null, Value::Null);
        self.ev(json!({"type": "response.created", "response": r}), &mut out);
        self.ev(
            json!({"type": "response.in_progress", "response": r}),
            &mut out,
        );
        out
    }

    fn event(&mut self, _i: usize, event: Event) -> Vec<Bytes> {
        let mut out = Vec::new();
        match event {
            Event::Reasoning { text } if !text.is_empty() => {
                if !matches!(self.open, Some(Open::Reasoning { .. })) {
                    let id = unique_id("rs", '_');
                    self.start_item(
                        Open::Reasoning {
                            id,
                            text: String::new(),
                        },
                        &mut out,
                    );
                }
                let Some(Open::Reasoning { id, text: all }) = &mut self.open else {
                    unreachable!()
                };
                all.push_str(&text);
                let ev = json!({"type": "response.reasoning_text.delta", "item_id": id,
                    "output_index": self.done.len(), "content_index": 0, "delta": text});
                self.ev(ev, &mut out);
            }
            Event::Token { text, .. } if !text.is_empty() => {
                if !matches!(self.open, Some(Open::Message { .. })) {
                    let id = unique_id("msg", '_');
                    self.start_item(
                        Open::Message {
                            id,
                            text: String::new(),
                        },
                        &mut out,
                    );
                }
                let Some(Open::Message { id, text: all }) = &mut self.open else {
                    unreachable!()
                };
                all.push_str(&text);
                let ev = json!({"type": "response.output_text.delta", "item_id": id,
                    "output_index": self.done.len(), "content_index": 0, "delta": text, "logprobs": []});
                self.ev(ev, &mut out);
            }
            Event::ToolCall {
                id,
                name,
                arguments,
                ..
            } => {
                if let (Some(call_id), Some(name)) = (id, name) {
                    let open = Open::Call {
                        id: unique_id("fc", '_'),
                        call_id,
                        name,
                        arguments: String::new(),
                    };
                    self.start_item(open, &mut out);
                }
                if let Some(Open::Call {
                    id, arguments: all, ..
                }) = &mut self.open
                {
                    if !arguments.is_empty() {
                        all.push_str(&arguments);
                        let ev = json!({"type": "response.function_call_arguments.delta",
                            "item_id": id, "output_index": self.done.len(), "delta": arguments});
                        self.ev(ev, &mut out);
                    }
                }
            }
            Event::Done { finish_reason, .. } => {
                if self.open.is_none() && self.done.is_empty() {
                    // Nothing was said: an empty message, as a collected answer has.
                    self.start_item(
                        Open::Message {
                            id: unique_id("msg", '_'),
                            text: String::new(),
                        },
                        &mut out,
                    );
                }
                self.end_item(&mut out);
                self.finish = finish_reason;
            }
            _ => {}
        }
        out
    }

    fn close(&mut self, u: Usage) -> Vec<Bytes> {
        let mut out = Vec::new();
        let status = status(self.finish);
        let r = self
            .who
            .response(status, self.done.clone(), usage(&u), Value::Null);
        self.who.keep(&r);
        let kind = if status == "incomplete" {
            "response.incomplete"
        } else {
            "response.completed"
        };
        self.ev(json!({"type": kind, "response": r}), &mut out);
        out
    }

    fn fail(&mut self, error: ApiError) -> Vec<Bytes> {
        let mut out = Vec::new();
        let code = error.code.unwrap_or("server_error");
        self.ev(
            json!({"type": "error", "code": code, "message": error.message, "param": error.param}),
            &mut out,
        );
        let r = self.who.failed(&error, self.done.clone());
        self.ev(json!({"type": "response.failed", "response": r}), &mut out);
        out
    }
}
