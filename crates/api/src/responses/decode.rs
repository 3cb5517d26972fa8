//! OpenAI Responses requests into the pipeline's [`Generation`]: the conversation is the
//! stored one of `previous_response_id` (its inputs and outputs) followed by `input`,
//! after `instructions`; flat function tools, the Responses `tool_choice`, `text.format`
//! and `reasoning.effort` become the chat's. The request's settings are echoed into the
//! response object, as OpenAI does.

use modelrunner_protocol::{
    Chat, GenerateOptions, GenerateRequest, ReasoningFormat, SamplingParams,
};
use modelrunner_scheduler::KeepAlive;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::items;
use super::stored::Responses;
use crate::extract::from_value;
use crate::openai::tools::ToolFields;
use crate::pipeline::Generation;
use crate::ApiError;

#[derive(Debug, Default, Deserialize)]
struct TextConfig {
    format: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct ReasoningConfig {
    effort: Option<String>,
}

/// The fields read; the others (`include`, `user`, `prompt_cache_key`, ...) are ignored.
#[derive(Debug, Deserialize)]
struct Fields {
    model: String,
    input: Option<Value>,
    instructions: Option<String>,
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
    parallel_tool_calls: Option<bool>,
    max_output_tokens: Option<u32>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    text: Option<TextConfig>,
    reasoning: Option<ReasoningConfig>,
    store: Option<bool>,
    metadata: Option<Map<String, Value>>,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    background: bool,
    previous_response_id: Option<String>,
    conversation: Option<Value>,
    truncation: Option<String>,
    top_logprobs: Option<u32>,
    keep_alive: Option<KeepAlive>,
}

/// A decoded request.
pub(crate) struct Decoded {
    /// The pipeline's request.
    pub generation: Generation,
    pub stream: bool,
    pub store: bool,
    pub background: bool,
    /// The conversation's input items, each with an id: the previous response's history
    /// and output, then this input.
    pub history: Vec<Value>,
    /// The response object's echo of the request.
    pub echo: Value,
}

/// Flat function tools in chat's nested shape.
fn tools(list: &[Value]) -> Result<Value, ApiError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        match t.get("type").and_then(Value::as_str) {
            Some("function") => {}
            other => {
                return Err(ApiError::invalid(
                    &format!("tools[{i}].type"),
                    format!("only function tools are available here, got {other:?}"),
                ))
            }
        }
        let mut f = Map::new();
        for k in ["name", "description", "parameters", "strict"] {
            if let Some(v) = t.get(k) {
                f.insert(k.into(), v.clone());
            }
        }
        out.push(json!({"type": "function", "function": f}));
    }
    Ok(Value::Array(out))
}

/// The Responses `tool_choice` in chat's shape.
fn tool_choice(v: &Value) -> Result<Value, ApiError> {
    match v {
        Value::String(_) => Ok(v.clone()),
        Value::Object(o) if o.get("type").and_then(Value::as_str) == Some("function") => {
            let name = o.get("name").and_then(Value::as_str).ok_or_else(|| {
                ApiError::invalid("tool_choice.name", "a function tool_choice needs a name")
            })?;
            Ok(json!({"type": "function", "function": {"name": name}}))
        }
        _ => Err(ApiError::invalid(
            "tool_choice",
            "tool_choice must be \"auto\", \"none\", \"required\" or {\"type\":\"function\",\"name\":...}",
        )),
    }
}

/// `text.format` as a JSON schema for the grammar.
fn schema(format: &Value) -> Result<Option<Value>, ApiError> {
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "object"}))),
        Some("json_schema") => match format.get("schema") {
            Some(s @ Value::Object(_)) => Ok(Some(s.clone())),
            _ => Err(ApiError::invalid(
                "text.format.schema",
                "a json_schema format needs a schema object: {\"type\":\"json_schema\",\"name\":...,\"schema\":{...}}",
            )),
        },
        other => Err(ApiError::invalid(
            "text.format.type",
            format!("text.format type must be text, json_object or json_schema, got {other:?}"),
        )),
    }
}

fn responses_param(p: &str) -> String {
    p.replace(".function.parameters", ".parameters")
        .replace(".function.name", ".name")
}

impl Fields {
    /// What only the Responses API has.
    fn check(&self) -> Result<(), ApiError> {
        let refuse = |p: &str, m: &str| Err(ApiError::invalid(p, m.to_string()));
        if self.conversation.is_some() {
            return refuse(
                "conversation",
                "conversations are not supported; continue with previous_response_id",
            );
        }
        if self.truncation.as_deref().is_some_and(|t| t != "disabled") {
            return refuse("truncation", "only truncation \"disabled\" is supported: a conversation longer than the context is refused");
        }
        if self.top_logprobs.is_some_and(|n| n > 0) {
            return refuse(
                "top_logprobs",
                "log-probabilities are not available on /v1/responses; use /v1/chat/completions",
            );
        }
        if self.background && self.stream {
            return refuse(
                "background",
                "a background response cannot stream; poll GET /v1/responses/{id}",
            );
        }
        if self.background && self.store == Some(false) {
            return refuse(
                "background",
                "a background response must be stored (store: true)",
            );
        }
        if let Some(m) = &self.metadata {
            let long = m.iter().any(|(k, v)| {
                k.chars().count() > 64 || v.as_str().is_none_or(|s| s.chars().count() > 512)
            });
            if m.len() > 16 || long {
                return refuse("metadata", "metadata holds at most 16 string values, keys up to 64 characters and values up to 512");
            }
        }
        if self.max_output_tokens == Some(0) {
            return refuse("max_output_tokens", "max_output_tokens must be at least 1");
        }
        Ok(())
    }

    fn echo(&self, effort: Option<&str>) -> Value {
        let d = SamplingParams::default();
        json!({
            "object": "response",
            "model": self.model,
            "background": self.background,
            "instructions": self.instructions,
            "max_output_tokens": self.max_output_tokens,
            "max_tool_calls": null,
            "metadata": self.metadata.clone().unwrap_or_default(),
            "parallel_tool_calls": self.parallel_tool_calls.unwrap_or(true),
            "previous_response_id": self.previous_response_id,
            "reasoning": {"effort": effort, "summary": null},
            "store": self.store.unwrap_or(true),
            "temperature": self.temperature.unwrap_or(d.temperature),
            "text": {"format": self.text.as_ref().and_then(|t| t.format.clone()).unwrap_or(json!({"type": "text"}))},
            "tool_choice": self.tool_choice.clone().unwrap_or(json!("auto")),
            "tools": self.tools.clone().unwrap_or_default(),
            "top_p": self.top_p.unwrap_or(d.top_p),
            "truncation": "disabled",
            "user": null,
        })
    }
}

/// `POST /v1/responses`.
pub(crate) fn create(
    body: &Value,
    stored: &Responses,
    default_reasoning: ReasoningFormat,
) -> Result<Decoded, ApiError> {
    let f: Fields = from_value(body)?;
    f.check()?;
    let mut history = match &f.previous_response_id {
        None => Vec::new(),
        Some(id) => {
            let prev = stored.get(id).ok_or_else(|| {
                ApiError::not_found(format!("there is no stored response {id:?}: it was never stored (store: false), was deleted, or expired"))
                    .param("previous_response_id")
            })?;
            if prev.response["status"] == "in_progress" {
                return Err(ApiError::invalid(
                    "previous_response_id",
                    format!("response {id:?} is still in progress"),
                ));
            }
            let mut h = prev.history.clone();
            h.extend(
                prev.response["output"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
            );
            h
        }
    };
    let input = f
        .input
        .as_ref()
        .ok_or_else(|| ApiError::invalid("input", "input is required"))?;
    let new = items::input_items(input)?;
    // Item errors name their place in this request's input.
    let offset = history.len();
    let messages = {
        let mut all = history.clone();
        all.extend(new.iter().cloned());
        items::messages(f.instructions.as_deref(), &all).map_err(|e| {
            e.rename_param(
                |p| match p.strip_prefix("input[").and_then(|r| r.split_once(']')) {
                    Some((n, rest)) => match n.parse::<usize>() {
                        Ok(n) if n >= offset => format!("input[{}]{rest}", n - offset),
                        _ => format!("previous_response_id (its item {n}{rest})"),
                    },
                    None => p.to_string(),
                },
            )
        })?
    };
    history.extend(items::with_ids(new));
    let store = f.store.unwrap_or(true);
    if store {
        let bytes = serde_json::to_vec(&history).map_or(0, |b| b.len() as u64);
        if !stored.fits(bytes) {
            return Err(ApiError::invalid(
                if f.previous_response_id.is_some() { "previous_response_id" } else { "input" },
                format!("the conversation is {bytes} bytes, over the {} bytes that stored responses may hold (--responses-max-bytes); start a new conversation, or send store: false", stored.max_bytes()),
            ));
        }
    }
    let effort = f.reasoning.as_ref().and_then(|r| r.effort.clone());
    let template_effort = match effort.as_deref() {
        Some("xhigh" | "max") => Some("high".to_string()),
        e => e.map(str::to_owned),
    };
    let mut chat = Chat::new(messages);
    let tools = f.tools.as_deref().map(tools).transpose()?;
    let choice = f.tool_choice.as_ref().map(tool_choice).transpose()?;
    ToolFields::of(tools, choice, f.parallel_tool_calls, template_effort)
        .apply(&mut chat, default_reasoning)
        .map_err(|e| {
            e.rename_param(|p| responses_param(p).replace("reasoning_effort", "reasoning.effort"))
        })?;
    if effort.as_deref() == Some("none") {
        // No effort is no thinking, for templates that switch it.
        chat.template_kwargs
            .insert("enable_thinking".into(), Value::Bool(false));
    }
    let format = f.text.as_ref().and_then(|t| t.format.as_ref());
    let d = SamplingParams::default();
    let options = GenerateOptions {
        sampling: SamplingParams {
            temperature: f.temperature.unwrap_or(d.temperature),
            top_p: f.top_p.unwrap_or(d.top_p),
            ..d
        },
        max_tokens: f.max_output_tokens,
        stop: Vec::new(),
        logprobs: None,
        grammar: None,
        json_schema: format.map(schema).transpose()?.flatten(),
    };
    let echo = f.echo(effort.as_deref());
    Ok(Decoded {
        generation: Generation {
            model: f.model,
            keep_alive: f.keep_alive,
            choices: vec![GenerateRequest {
                options,
                ..GenerateRequest::chat(chat)
            }],
            params: &[
                ("max_tokens", "max_output_tokens"),
                ("json_schema", "text.format"),
            ],
        },
        stream: f.stream,
        store,
        background: f.background,
        history,
        echo,
    })
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
