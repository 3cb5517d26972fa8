//! One OpenAI chat message checked for the chat template: its role and content parts,
//! array content flattened into a string, keys the template does not take dropped.

use serde_json::{Map, Value};

use crate::ApiError;

/// Message keys passed to the chat template; others are dropped.
const MESSAGE_KEYS: &[&str] = &[
    "role",
    "content",
    "name",
    "tool_calls",
    "tool_call_id",
    "reasoning_content",
];

/// Checks a message and flattens array content (text parts) into a string.
pub(crate) fn message(i: usize, m: &Value) -> Result<Value, ApiError> {
    let param = format!("messages[{i}]");
    let bad = |p: &str, m: String| ApiError::invalid(p, m);
    let obj = m.as_object().ok_or_else(|| {
        bad(
            &param,
            format!("{param} must be an object with role and content"),
        )
    })?;
    let role = obj
        .get("role")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(&param, format!("{param} needs a role")))?;
    let role = match role {
        "system" | "user" | "assistant" | "tool" => role,
        "developer" => "system",
        other => {
            return Err(bad(
                &param,
                format!("{param}.role {other:?} is not system, developer, user, assistant or tool"),
            ))
        }
    };
    let mut out = Map::new();
    for k in MESSAGE_KEYS {
        if let Some(v) = obj.get(*k) {
            out.insert((*k).to_string(), v.clone());
        }
    }
    out.insert("role".into(), Value::String(role.into()));
    let content_param = format!("{param}.content");
    let content = match obj.get("content") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::with_capacity(parts.len());
            for p in parts {
                match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str)) {
                    (Some("text"), Some(t)) => texts.push(t),
                    (kind, _) => {
                        return Err(bad(
                            &content_param,
                            format!("content parts of type {:?} are not supported; this model takes text only", kind.unwrap_or("?")),
                        ))
                    }
                }
            }
            texts.join("\n")
        }
        Some(_) => {
            return Err(bad(
                &content_param,
                "content must be a string or an array of text parts".into(),
            ))
        }
    };
    out.insert("content".into(), Value::String(content));
    Ok(Value::Object(out))
}
