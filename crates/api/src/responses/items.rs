//! Responses items both ways: input items (messages with text parts, `function_call`,
//! `function_call_output`, `reasoning`, and earlier outputs replayed) into the chat
//! template's messages, and a finished choice into output items.

use serde_json::{json, Value};

use crate::pipeline::respond::Choice;
use crate::pipeline::unique_id;
use crate::ApiError;

/// `input` as items: a string is one user message.
pub(crate) fn input_items(input: &Value) -> Result<Vec<Value>, ApiError> {
    match input {
        Value::String(s) => Ok(vec![json!({"type": "message", "role": "user",
            "content": [{"type": "input_text", "text": s}]})]),
        Value::Array(items) => Ok(items.clone()),
        _ => Err(ApiError::invalid(
            "input",
            "input must be a string or an array of items",
        )),
    }
}

/// Gives every item an `id` and a `type` (stored items are listed by id).
pub(crate) fn with_ids(items: Vec<Value>) -> Vec<Value> {
    items
        .into_iter()
        .map(|mut it| {
            if let Value::Object(o) = &mut it {
                let kind = o
                    .entry("type")
                    .or_insert_with(|| json!("message"))
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                if !o.get("id").is_some_and(Value::is_string) {
                    let prefix = match kind.as_str() {
                        "function_call" => "fc",
                        "function_call_output" => "fco",
                        "reasoning" => "rs",
                        _ => "msg",
                    };
                    o.insert("id".into(), json!(unique_id(prefix, '_')));
                }
            }
            it
        })
        .collect()
}

/// A message's text: a string, or its text parts joined.
fn text(content: Option<&Value>, param: &str) -> Result<String, ApiError> {
    let parts = match content {
        None | Some(Value::Null) => return Ok(String::new()),
        Some(Value::String(s)) => return Ok(s.clone()),
        Some(Value::Array(p)) => p,
        Some(_) => {
            return Err(ApiError::invalid(
                &format!("{param}.content"),
                "content must be a string or an array of parts",
            ))
        }
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, p) in parts.iter().enumerate() {
        let at = format!("{param}.content[{j}]");
        match p.get("type").and_then(Value::as_str) {
            Some("input_text" | "output_text" | "text") => {
                out.push(p.get("text").and_then(Value::as_str).unwrap_or_default())
            }
            Some("refusal") => out.push(p.get("refusal").and_then(Value::as_str).unwrap_or_default()),
            Some("input_image" | "input_file" | "input_audio") => {
                return Err(ApiError::invalid(
                    &at,
                    "images, files and audio need a model that reads them, and this daemon runs text models only for now; send input_text",
                ))
            }
            other => {
                return Err(ApiError::invalid(
                    &format!("{at}.type"),
                    format!("content parts of type {other:?} are not supported; use input_text"),
                ))
            }
        }
    }
    Ok(out.join("\n"))
}

/// The reasoning text of a replayed reasoning item: its content, else its summary
/// (either may be missing, as Codex and the Agents SDK send them).
fn reasoning_text(item: &Value) -> String {
    let texts = |key: &str| -> Vec<String> {
        item.get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str).map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let content = texts("content");
    if content.is_empty() {
        texts("summary").join("\n")
    } else {
        content.concat()
    }
}

/// The open assistant message that calls and reasoning join.
fn assistant(out: &mut Vec<Value>) -> &mut Value {
    let open = out.last().is_some_and(|m| m["role"] == "assistant");
    if !open {
        out.push(json!({"role": "assistant", "content": ""}));
    }
    out.last_mut().expect("pushed")
}

/// The conversation's items as template messages, after `instructions` as the system
/// message. An assistant message and the calls after it are one message; a reasoning
/// item joins the assistant message that follows it.
pub(crate) fn messages(
    instructions: Option<&str>,
    items: &[Value],
) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::with_capacity(items.len() + 1);
    if let Some(i) = instructions {
        out.push(json!({"role": "system", "content": i}));
    }
    let mut reasoning = String::new();
    for (i, item) in items.iter().enumerate() {
        let param = format!("input[{i}]");
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message");
        let string = |key: &str| -> Result<&str, ApiError> {
            item.get(key).and_then(Value::as_str).ok_or_else(|| {
                ApiError::invalid(
                    &format!("{param}.{key}"),
                    format!("a {kind} item needs {key}"),
                )
            })
        };
        match kind {
            "message" => {
                let role = string("role")?;
                let role = match role {
                    "user" | "assistant" | "system" => role,
                    "developer" => "system",
                    other => {
                        return Err(ApiError::invalid(
                            &format!("{param}.role"),
                            format!("role must be user, assistant, system or developer, got {other:?}"),
                        ))
                    }
                };
                let content = text(item.get("content"), &param)?;
                if role == "assistant" {
                    let joins = out.last().is_some_and(|m| {
                        m["role"] == "assistant" && m.get("tool_calls").is_none()
                    });
                    if !joins {
                        out.push(json!({"role": "assistant", "content": ""}));
                    }
                    let m = out.last_mut().expect("pushed");
                    let before = m["content"].as_str().unwrap_or_default().to_string();
                    m["content"] = json!(before + &content);
                    if !reasoning.is_empty() {
                        m["reasoning_content"] = json!(std::mem::take(&mut reasoning));
                    }
                } else {
                    out.push(json!({"role": role, "content": content}));
                }
            }
            "function_call" => {
                let call = json!({"id": string("call_id")?, "type": "function",
                    "function": {"name": string("name")?, "arguments": string("arguments")?}});
                let m = assistant(&mut out);
                if !reasoning.is_empty() {
                    m["reasoning_content"] = json!(std::mem::take(&mut reasoning));
                }
                match m.get_mut("tool_calls").and_then(Value::as_array_mut) {
                    Some(calls) => calls.push(call),
                    None => m["tool_calls"] = json!([call]),
                }
            }
            "function_call_output" => {
                let id = string("call_id")?;
                let output = match item.get("output") {
                    Some(Value::String(s)) => s.clone(),
                    o @ Some(Value::Array(_)) => text(o, &format!("{param}.output"))?,
                    _ => {
                        return Err(ApiError::invalid(
                            &format!("{param}.output"),
                            "a function_call_output needs output, a string or text parts",
                        ))
                    }
                };
                out.push(json!({"role": "tool", "tool_call_id": id, "content": output}));
            }
            "reasoning" => reasoning.push_str(&reasoning_text(item)),
            other => {
                return Err(ApiError::invalid(
                    &format!("{param}.type"),
                    format!("input items of type {other:?} are not supported; use message, function_call, function_call_output or reasoning"),
                ))
            }
        }
    }
    if !out.iter().any(|m| m["role"] != "system") {
        return Err(ApiError::invalid(
            "input",
            "input must hold at least one item",
        ));
    }
    Ok(out)
}

/// The output items of a finished choice: reasoning, the message, the calls.
pub(crate) fn output(c: &Choice) -> Vec<Value> {
    let mut out = Vec::new();
    if !c.reasoning.is_empty() {
        out.push(reasoning_item(
            &unique_id("rs", '_'),
            &c.reasoning,
            "completed",
        ));
    }
    if !c.text.is_empty() || c.tool_calls.is_empty() && c.reasoning.is_empty() {
        out.push(message_item(&unique_id("msg", '_'), &c.text, "completed"));
    }
    for t in &c.tool_calls {
        out.push(call_item(
            &unique_id("fc", '_'),
            &t.id,
            &t.name,
            &t.arguments,
            "completed",
        ));
    }
    out
}

/// An `output_text` part.
pub(crate) fn text_part(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// A `reasoning_text` part.
pub(crate) fn reasoning_part(text: &str) -> Value {
    json!({"type": "reasoning_text", "text": text})
}

/// A message output item.
pub(crate) fn message_item(id: &str, text: &str, status: &str) -> Value {
    let content = if status == "completed" {
        json!([text_part(text)])
    } else {
        json!([])
    };
    json!({"type": "message", "id": id, "status": status, "role": "assistant", "content": content})
}

/// A reasoning output item.
pub(crate) fn reasoning_item(id: &str, text: &str, status: &str) -> Value {
    let content = if status == "completed" {
        json!([reasoning_part(text)])
    } else {
        json!([])
    };
    json!({"type": "reasoning", "id": id, "summary": [], "content": content, "status": status})
}

/// A function_call output item.
pub(crate) fn call_item(
    id: &str,
    call_id: &str,
    name: &str,
    arguments: &str,
    status: &str,
) -> Value {
    json!({"type": "function_call", "id": id, "call_id": call_id, "name": name,
           "arguments": arguments, "status": status})
}
