//! Anthropic Messages requests into the pipeline's [`Generation`]: `system` and the
//! content blocks become the chat template's messages (tool results as `tool` messages
//! before the user's text, thinking as `reasoning_content`, `tool_use` input as the
//! call's arguments), `tools` and `tool_choice` become the internal chat's, and the
//! sampling fields map one to one. What only Anthropic has is checked here, naming the
//! parameter; shared ranges are checked by the pipeline.

use modelrunner_protocol::SamplingParams;
use modelrunner_protocol::{Chat, GenerateOptions, GenerateRequest, ReasoningFormat};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::extract::from_value;
use crate::openai::tools::ToolFields;
use crate::pipeline::Generation;
use crate::ApiError;

/// The fields of a Messages request (and of `count_tokens`, which has no `max_tokens`).
#[derive(Debug, Deserialize)]
struct Fields {
    model: String,
    max_tokens: Option<u32>,
    messages: Vec<Value>,
    system: Option<Value>,
    stop_sequences: Option<Vec<String>>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    top_k: Option<i32>,
    #[serde(default)]
    stream: bool,
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
    thinking: Option<Value>,
    output_config: Option<OutputConfig>,
    /// Checked to be an object; nothing here uses it.
    #[serde(rename = "metadata")]
    _metadata: Option<Map<String, Value>>,
}

/// `output_config`: the effort and a JSON schema for the answer.
#[derive(Debug, Default, Deserialize)]
struct OutputConfig {
    effort: Option<String>,
    format: Option<Value>,
}

impl OutputConfig {
    /// The effort as the templates' `reasoning_effort`.
    fn effort(&self) -> Result<Option<String>, ApiError> {
        let Some(e) = &self.effort else {
            return Ok(None);
        };
        Ok(Some(match e.as_str() {
            "low" | "medium" | "high" => e.clone(),
            "xhigh" | "max" => "high".to_string(),
            other => {
                return Err(ApiError::invalid(
                    "output_config.effort",
                    format!("effort must be low, medium, high, xhigh or max, got {other:?}"),
                ))
            }
        }))
    }

    /// The format's schema, for the grammar.
    fn schema(&self) -> Result<Option<Value>, ApiError> {
        let Some(f) = &self.format else {
            return Ok(None);
        };
        match (f.get("type").and_then(Value::as_str), f.get("schema")) {
            (Some("json_schema"), Some(s @ Value::Object(_))) => Ok(Some(s.clone())),
            _ => Err(ApiError::invalid(
                "output_config.format",
                "format must be {\"type\":\"json_schema\",\"schema\":{...}}",
            )),
        }
    }
}

/// A decoded request.
#[derive(Debug, Clone)]
pub(crate) struct Decoded {
    /// The pipeline's request.
    pub generation: Generation,
    /// Streamed or collected.
    pub stream: bool,
}

/// Text of a `text` block.
fn text_of<'a>(b: &'a Value, param: &str) -> Result<&'a str, ApiError> {
    b.get("text")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::invalid(param, "a text block needs a text string"))
}

fn image_refused(param: &str) -> ApiError {
    ApiError::invalid(
        param,
        "image blocks need a vision model, and this daemon runs text models only for now; send text",
    )
}

/// A `tool_result`'s content: a string, or text blocks joined.
fn tool_result_text(b: &Value, param: &str) -> Result<String, ApiError> {
    match b.get("content") {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(blocks)) => {
            let mut out = Vec::with_capacity(blocks.len());
            for (k, c) in blocks.iter().enumerate() {
                let p = format!("{param}.content[{k}]");
                match c.get("type").and_then(Value::as_str) {
                    Some("text") => out.push(text_of(c, &p)?),
                    Some("image") => return Err(image_refused(&p)),
                    other => {
                        return Err(ApiError::invalid(
                            &format!("{p}.type"),
                            format!("tool_result content blocks are text, got {other:?}"),
                        ))
                    }
                }
            }
            Ok(out.join("\n"))
        }
        Some(_) => Err(ApiError::invalid(
            &format!("{param}.content"),
            "tool_result content must be a string or an array of text blocks",
        )),
    }
}

/// One Anthropic message as the template's messages (a user turn with tool results
/// becomes several).
fn message(i: usize, m: &Value, out: &mut Vec<Value>) -> Result<(), ApiError> {
    let param = format!("messages[{i}]");
    let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
    if !matches!(role, "user" | "assistant" | "system") {
        return Err(ApiError::invalid(
            &format!("{param}.role"),
            format!("role must be \"user\" or \"assistant\", got {role:?}"),
        ));
    }
    let blocks = match m.get("content") {
        Some(Value::String(s)) => {
            out.push(json!({"role": role, "content": s}));
            return Ok(());
        }
        Some(Value::Array(b)) => b,
        _ => {
            return Err(ApiError::invalid(
                &format!("{param}.content"),
                "content must be a string or an array of content blocks",
            ))
        }
    };
    let mut texts = Vec::new();
    let mut thinking = Vec::new();
    let mut calls = Vec::new();
    let mut results = Vec::new();
    for (j, b) in blocks.iter().enumerate() {
        let p = format!("{param}.content[{j}]");
        let kind = b.get("type").and_then(Value::as_str).unwrap_or_default();
        let only = |want: &str| {
            if role == want {
                Ok(())
            } else {
                Err(ApiError::invalid(
                    &format!("{p}.type"),
                    format!("{kind} blocks belong in {want} messages"),
                ))
            }
        };
        match kind {
            "text" => texts.push(text_of(b, &p)?),
            "image" => return Err(image_refused(&p)),
            "thinking" => {
                only("assistant")?;
                thinking.push(b.get("thinking").and_then(Value::as_str).unwrap_or_default());
            }
            "redacted_thinking" => only("assistant")?,
            "tool_use" => {
                only("assistant")?;
                let id = b.get("id").and_then(Value::as_str);
                let name = b.get("name").and_then(Value::as_str);
                let (Some(id), Some(name)) = (id, name) else {
                    return Err(ApiError::invalid(&p, "a tool_use block needs an id and a name"));
                };
                let input = match b.get("input") {
                    None => json!({}),
                    Some(v @ Value::Object(_)) => v.clone(),
                    Some(_) => {
                        return Err(ApiError::invalid(
                            &format!("{p}.input"),
                            "a tool_use input must be an object",
                        ))
                    }
                };
                calls.push(json!({"id": id, "type": "function",
                    "function": {"name": name, "arguments": input.to_string()}}));
            }
            "tool_result" => {
                only("user")?;
                let id = b.get("tool_use_id").and_then(Value::as_str).ok_or_else(|| {
                    ApiError::invalid(&p, "a tool_result block needs a tool_use_id")
                })?;
                let text = tool_result_text(b, &p)?;
                results.push(json!({"role": "tool", "tool_call_id": id, "content": text}));
            }
            other => {
                return Err(ApiError::invalid(
                    &format!("{p}.type"),
                    format!("content blocks of type {other:?} are not supported; use text, tool_use, tool_result or thinking"),
                ))
            }
        }
    }
    let text = texts.join("\n");
    if role == "assistant" {
        let mut a = json!({"role": "assistant", "content": text});
        if !thinking.is_empty() {
            a["reasoning_content"] = json!(thinking.concat());
        }
        if !calls.is_empty() {
            a["tool_calls"] = Value::Array(calls);
        }
        out.push(a);
        return Ok(());
    }
    let had_results = !results.is_empty();
    out.extend(results);
    if !had_results || !text.is_empty() {
        out.push(json!({"role": role, "content": text}));
    }
    Ok(())
}

/// `system`: a string or text blocks.
fn system(v: &Value) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => {
            let mut out = Vec::with_capacity(blocks.len());
            for (k, b) in blocks.iter().enumerate() {
                let p = format!("system[{k}]");
                match b.get("type").and_then(Value::as_str) {
                    Some("text") => out.push(text_of(b, &p)?),
                    other => {
                        return Err(ApiError::invalid(
                            &format!("{p}.type"),
                            format!("system blocks are text, got {other:?}"),
                        ))
                    }
                }
            }
            Ok(out.join("\n"))
        }
        _ => Err(ApiError::invalid(
            "system",
            "system must be a string or an array of text blocks",
        )),
    }
}

/// `tools` in OpenAI's shape; only custom (client) tools are taken.
fn tools(list: &[Value]) -> Result<Value, ApiError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        match t.get("type").and_then(Value::as_str) {
            None | Some("custom") => {}
            Some(other) => {
                return Err(ApiError::invalid(
                    &format!("tools[{i}].type"),
                    format!("server tools ({other:?}) are not available here; give client tools with name and input_schema"),
                ))
            }
        }
        if !t.get("input_schema").is_some_and(Value::is_object) {
            return Err(ApiError::invalid(
                &format!("tools[{i}].input_schema"),
                "each tool needs an input_schema object",
            ));
        }
        out.push(json!({"type": "function", "function": {
            "name": t.get("name").cloned().unwrap_or(Value::Null),
            "description": t.get("description").cloned().unwrap_or(json!("")),
            "parameters": t["input_schema"],
        }}));
    }
    Ok(Value::Array(out))
}

/// `tool_choice` in OpenAI's shape, and whether calls may come in parallel.
fn tool_choice(v: &Value) -> Result<(Value, bool), ApiError> {
    let parallel = !v
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let choice = match v.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = v.get("name").and_then(Value::as_str).ok_or_else(|| {
                ApiError::invalid(
                    "tool_choice.name",
                    "a tool_choice of type tool needs a name",
                )
            })?;
            json!({"type": "function", "function": {"name": name}})
        }
        other => {
            return Err(ApiError::invalid(
                "tool_choice.type",
                format!("tool_choice type must be auto, any, tool or none, got {other:?}"),
            ))
        }
    };
    Ok((choice, parallel))
}

/// OpenAI's parameter names in tool errors, as Anthropic calls them.
fn anthropic_param(p: &str) -> String {
    p.replace(".function.parameters", ".input_schema")
        .replace(".function.name", ".name")
}

/// `thinking`: enabled (with a budget under `max_tokens`) or disabled turn the
/// template's `enable_thinking` on or off; adaptive leaves the model's default.
fn thinking(v: &Value, max_tokens: Option<u32>, chat: &mut Chat) -> Result<(), ApiError> {
    match v.get("type").and_then(Value::as_str) {
        Some("enabled") => {
            let budget = v
                .get("budget_tokens")
                .and_then(Value::as_u64)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "thinking.budget_tokens",
                        "thinking of type enabled needs budget_tokens, a positive integer",
                    )
                })?;
            if budget == 0 || max_tokens.is_some_and(|m| budget >= u64::from(m)) {
                return Err(ApiError::invalid(
                    "thinking.budget_tokens",
                    "budget_tokens must be at least 1 and less than max_tokens",
                ));
            }
            chat.template_kwargs
                .insert("enable_thinking".into(), json!(true));
        }
        Some("disabled") => {
            chat.template_kwargs
                .insert("enable_thinking".into(), json!(false));
        }
        Some("adaptive") => {}
        other => {
            return Err(ApiError::invalid(
                "thinking.type",
                format!("thinking type must be enabled, disabled or adaptive, got {other:?}"),
            ))
        }
    }
    Ok(())
}

/// The conversation of a Messages or count_tokens request.
fn conversation(f: &Fields, default_reasoning: ReasoningFormat) -> Result<Chat, ApiError> {
    if f.messages.is_empty() {
        return Err(ApiError::invalid("messages", "messages must not be empty"));
    }
    let mut messages = Vec::with_capacity(f.messages.len() + 1);
    if let Some(s) = &f.system {
        messages.push(json!({"role": "system", "content": system(s)?}));
    }
    for (i, m) in f.messages.iter().enumerate() {
        message(i, m, &mut messages)?;
    }
    let mut chat = Chat::new(messages);
    let tools = f.tools.as_deref().map(tools).transpose()?;
    let (choice, parallel) = match &f.tool_choice {
        Some(c) => {
            let (c, p) = tool_choice(c)?;
            (Some(c), Some(p))
        }
        None => (None, None),
    };
    let effort = f
        .output_config
        .as_ref()
        .map(OutputConfig::effort)
        .transpose()?
        .flatten();
    ToolFields::of(tools, choice, parallel, effort)
        .apply(&mut chat, default_reasoning)
        .map_err(|e| e.rename_param(anthropic_param))?;
    if let Some(t) = &f.thinking {
        thinking(t, f.max_tokens, &mut chat)?;
    }
    Ok(chat)
}

/// `POST /v1/messages`.
pub(crate) fn messages(
    body: &Value,
    default_reasoning: ReasoningFormat,
) -> Result<Decoded, ApiError> {
    let f: Fields = from_value(body)?;
    let max_tokens = match f.max_tokens {
        None => return Err(ApiError::invalid("max_tokens", "max_tokens is required")),
        Some(0) => {
            return Err(ApiError::invalid(
                "max_tokens",
                "max_tokens must be at least 1",
            ))
        }
        Some(m) => m,
    };
    let chat = conversation(&f, default_reasoning)?;
    let d = SamplingParams::default();
    let options = GenerateOptions {
        sampling: SamplingParams {
            temperature: f.temperature.unwrap_or(d.temperature),
            top_p: f.top_p.unwrap_or(d.top_p),
            top_k: f.top_k.unwrap_or(d.top_k),
            ..d
        },
        max_tokens: Some(max_tokens),
        stop: f.stop_sequences.clone().unwrap_or_default(),
        logprobs: None,
        grammar: None,
        json_schema: f
            .output_config
            .as_ref()
            .map(OutputConfig::schema)
            .transpose()?
            .flatten(),
    };
    Ok(Decoded {
        generation: Generation {
            model: f.model,
            keep_alive: None,
            choices: vec![GenerateRequest {
                options,
                ..GenerateRequest::chat(chat)
            }],
            params: &[
                ("stop", "stop_sequences"),
                ("json_schema", "output_config.format"),
            ],
        },
        stream: f.stream,
    })
}

/// `POST /v1/messages/count_tokens`: the model and the conversation to count.
pub(crate) fn count_tokens(
    body: &Value,
    default_reasoning: ReasoningFormat,
) -> Result<(String, Chat), ApiError> {
    let f: Fields = from_value(body)?;
    let chat = conversation(&f, default_reasoning)?;
    Ok((f.model, chat))
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
