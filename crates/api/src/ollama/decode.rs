//! Ollama's `/api/chat` messages and the fields chat and generate share, into the
//! pipeline's request. Messages become the chat template's (tool calls with their
//! arguments as JSON text, `thinking` as `reasoning_content`, `tool_name` as the tool
//! message's `name`); OpenAI-style content arrays are flattened to their text and
//! arguments sent as a JSON string are read as the object they hold (lenient where
//! clients are known to differ, as the reference's pitfalls list); `images` are
//! refused until vision lands.

use modelrunner_protocol::{Chat, GenerateOptions, ReasoningFormat};
use modelrunner_scheduler::KeepAlive;
use serde_json::{json, Map, Value};

use super::options::{self, Think};
use crate::openai::tools::ToolFields;
use crate::ApiError;

/// What chat and generate share.
#[derive(Debug, Clone)]
pub(crate) struct Common {
    /// The model as named.
    pub model: String,
    /// NDJSON (the default) or one object.
    pub stream: bool,
    /// Sampling, limits and the format's schema.
    pub options: GenerateOptions,
    /// `options.num_ctx`.
    pub num_ctx: Option<u32>,
    /// `keep_alive`.
    pub keep_alive: Option<KeepAlive>,
    /// `think`.
    pub think: Think,
}

fn str_field<'a>(body: &'a Value, key: &str) -> Result<Option<&'a str>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid(key, format!("{key} must be a string"))),
    }
}

/// A string field that may be absent.
pub(crate) fn string(body: &Value, key: &str) -> Result<Option<String>, ApiError> {
    str_field(body, key).map(|s| s.map(str::to_string))
}

/// A boolean field with its default.
pub(crate) fn flag(body: &Value, key: &str, default: bool) -> Result<bool, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::invalid(
            key,
            format!("{key} must be true or false"),
        )),
    }
}

/// The shared fields, over the model's own parameters.
pub(crate) fn common(body: &Value, params: &Map<String, Value>) -> Result<Common, ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    let model = str_field(body, "model")?
        .or(str_field(body, "name")?)
        .unwrap_or_default();
    if model.is_empty() {
        return Err(ApiError::invalid("model", "model is required"));
    }
    let o = options::options(body.get("options"), params)?;
    let mut generate = o.generate;
    generate.json_schema = options::format(body.get("format"))?;
    if flag(body, "logprobs", false)? {
        let top = match body.get("top_logprobs") {
            None | Some(Value::Null) => 0,
            Some(v) => v.as_u64().filter(|n| *n <= 20).ok_or_else(|| {
                ApiError::invalid("top_logprobs", "top_logprobs must be between 0 and 20")
            })? as u32,
        };
        generate.logprobs = Some(top);
    }
    Ok(Common {
        model: model.to_string(),
        stream: flag(body, "stream", true)?,
        options: generate,
        num_ctx: o.num_ctx,
        keep_alive: options::keep_alive(body.get("keep_alive"))?,
        think: Think::parse(body.get("think"))?,
    })
}

/// Refuses images (a non-empty `images` list at `param`).
pub(crate) fn no_images(v: Option<&Value>, param: &str) -> Result<(), ApiError> {
    match v {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(a)) if a.is_empty() => Ok(()),
        Some(_) => Err(ApiError::invalid(
            param,
            "images need a vision model, and this daemon runs text models only for now; send text",
        )),
    }
}

/// A tool call's arguments as the JSON text templates take.
fn arguments(v: Option<&Value>, param: &str) -> Result<String, ApiError> {
    match v {
        None | Some(Value::Null) => Ok("{}".into()),
        Some(o @ Value::Object(_)) => Ok(o.to_string()),
        // OpenAI-style clients replay arguments as a string of JSON.
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(o @ Value::Object(_)) => Ok(o.to_string()),
            _ => Err(ApiError::invalid(param, "arguments must be a JSON object")),
        },
        Some(_) => Err(ApiError::invalid(param, "arguments must be a JSON object")),
    }
}

/// One Ollama message as the template's.
fn message(i: usize, m: &Value) -> Result<Value, ApiError> {
    let param = format!("messages[{i}]");
    let obj = m
        .as_object()
        .ok_or_else(|| ApiError::invalid(&param, "each message must be an object"))?;
    no_images(obj.get("images"), &format!("{param}.images"))?;
    let role = obj
        .get("role")
        .and_then(Value::as_str)
        .map(str::to_lowercase)
        .ok_or_else(|| ApiError::invalid(&format!("{param}.role"), "a message needs a role"))?;
    let mut out =
        json!({"role": role, "content": obj.get("content").cloned().unwrap_or(json!(""))});
    if let Some(t) = obj
        .get("thinking")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        out["reasoning_content"] = json!(t);
    }
    if let Some(n) = obj.get("tool_name").and_then(Value::as_str) {
        out["name"] = json!(n);
    }
    if let Some(id) = obj.get("tool_call_id").and_then(Value::as_str) {
        out["tool_call_id"] = json!(id);
    }
    match obj.get("tool_calls") {
        None | Some(Value::Null) => {}
        Some(Value::Array(calls)) => {
            let mut list = Vec::with_capacity(calls.len());
            for (j, c) in calls.iter().enumerate() {
                let p = format!("{param}.tool_calls[{j}].function");
                let f = c
                    .get("function")
                    .ok_or_else(|| ApiError::invalid(&p, "a tool call needs a function"))?;
                let name = f.get("name").and_then(Value::as_str).ok_or_else(|| {
                    ApiError::invalid(&format!("{p}.name"), "a tool call needs a name")
                })?;
                let args = arguments(f.get("arguments"), &format!("{p}.arguments"))?;
                let id = c
                    .get("id")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("call_{i}_{j}"), str::to_string);
                list.push(json!({"id": id, "type": "function",
                    "function": {"name": name, "arguments": args}}));
            }
            out["tool_calls"] = Value::Array(list);
        }
        Some(_) => {
            return Err(ApiError::invalid(
                &format!("{param}.tool_calls"),
                "tool_calls must be an array",
            ))
        }
    }
    crate::openai::messages::message(i, &out)
}

/// A conversation with its tools and thinking settings.
pub(crate) fn conversation(
    messages: &[Value],
    tools: Option<&Value>,
    tool_choice: Option<&Value>,
    think: &Think,
) -> Result<Chat, ApiError> {
    let messages = messages
        .iter()
        .enumerate()
        .map(|(i, m)| message(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    let mut chat = Chat::new(messages);
    let tools = tools.filter(|t| !t.is_null()).cloned();
    let choice = tool_choice.filter(|t| !t.is_null()).cloned();
    ToolFields::of(tools, choice, None, None).apply(&mut chat, ReasoningFormat::Auto)?;
    think.template_kwargs(&mut chat.template_kwargs);
    Ok(chat)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(v: Value) -> Result<Chat, ApiError> {
        conversation(v.as_array().unwrap(), None, None, &Think::Default)
    }

    #[test]
    fn messages_become_the_templates() {
        let c = msgs(json!([
            {"role": "SYSTEM", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "a"}]},
            {"role": "assistant", "content": "", "thinking": "hm",
             "tool_calls": [{"function": {"name": "f", "arguments": {"x": 1}}},
                            {"function": {"name": "g", "arguments": "{\"y\":2}"}}]},
            {"role": "tool", "content": "42", "tool_name": "f"}
        ]))
        .unwrap();
        let m = &c.messages;
        assert_eq!(m[0]["role"], "system");
        assert_eq!(m[1]["content"], "a");
        assert_eq!(m[2]["reasoning_content"], "hm");
        assert_eq!(m[2]["tool_calls"][0]["function"]["arguments"], "{\"x\":1}");
        assert_eq!(m[2]["tool_calls"][1]["function"]["arguments"], "{\"y\":2}");
        assert_eq!(m[3]["name"], "f");
    }

    #[test]
    fn bad_messages_name_their_field() {
        for (body, param) in [
            (json!([{"content": "x"}]), "messages[0].role"),
            (json!([{"role": "wizard", "content": "x"}]), "messages[0]"),
            (
                json!([{"role": "user", "content": "x", "images": ["aGk="]}]),
                "messages[0].images",
            ),
            (
                json!([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "[1]"}}]}]),
                "messages[0].tool_calls[0].function.arguments",
            ),
            (json!([3]), "messages[0]"),
        ] {
            let e = msgs(body.clone()).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{body}: {}", e.message);
        }
    }

    #[test]
    fn common_fields_and_defaults() {
        let c = common(&json!({"model": "m"}), &Map::new()).unwrap();
        assert!(c.stream, "Ollama streams unless told not to");
        let c = common(
            &json!({"model": "m", "stream": false, "format": "json", "think": "low",
                    "logprobs": true, "top_logprobs": 3}),
            &Map::new(),
        )
        .unwrap();
        assert!(!c.stream);
        assert_eq!(c.options.json_schema, Some(json!({"type": "object"})));
        assert_eq!(c.options.logprobs, Some(3));
        for (body, param) in [
            (json!({}), "model"),
            (json!({"model": "m", "stream": "yes"}), "stream"),
            (
                json!({"model": "m", "logprobs": true, "top_logprobs": 21}),
                "top_logprobs",
            ),
            (json!({"model": "m", "keep_alive": [1]}), "keep_alive"),
        ] {
            let e = common(&body, &Map::new()).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{body}: {}", e.message);
        }
    }
}
