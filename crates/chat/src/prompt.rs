//! What templates need of a conversation beyond OpenAI's shape: arguments as objects
//! (most templates iterate them), the reasoning under the names templates read, ids in
//! the form a template insists on, and, for the generic format, the instructions that
//! stand in for a native call syntax.

use serde_json::{json, Map, Value};

use crate::family::Family;
use crate::tools::Tool;

/// A nine-character id for `id`, the same every time (Mistral's templates refuse others).
fn nine(id: &str) -> String {
    if id.len() == 9 && id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return id.to_string();
    }
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // FNV-1a, spread over nine base-62 digits.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (0..9)
        .map(|_| {
            let c = ALNUM[(h % 62) as usize] as char;
            h = (h / 62) ^ h.rotate_left(17);
            c
        })
        .collect()
}

/// The messages as the family's templates want them.
pub fn adapt_messages(family: Family, messages: &[Value]) -> Vec<Value> {
    messages
        .iter()
        .map(|m| {
            let Some(obj) = m.as_object() else {
                return m.clone();
            };
            let mut obj: Map<String, Value> = obj.clone();
            if let Some(Value::Array(calls)) = obj.get_mut("tool_calls") {
                for call in calls {
                    if family.nine_char_ids() {
                        if let Some(Value::String(id)) = call.get_mut("id") {
                            *id = nine(id);
                        }
                    }
                    if family.args_as_text() {
                        continue;
                    }
                    if let Some(args) = call.pointer_mut("/function/arguments") {
                        if let Value::String(text) = args {
                            if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(text) {
                                *args = v;
                            }
                        }
                    }
                }
            }
            if family.nine_char_ids() {
                if let Some(Value::String(id)) = obj.get_mut("tool_call_id") {
                    *id = nine(id);
                }
            }
            if let Some(r) = obj.get("reasoning_content").cloned() {
                obj.entry("thinking").or_insert_with(|| r.clone());
                obj.entry("reasoning").or_insert(r);
            }
            Value::Object(obj)
        })
        .collect()
}

/// Variables some families' templates read and transformers users set by hand
/// (Firefunction's `functions` and `datetime`), for a request with `tools` at `now`.
pub fn template_vars(family: Family, tools: Option<&Value>, now: &str) -> Map<String, Value> {
    let mut vars = Map::new();
    if family == Family::Firefunction {
        let functions: Vec<&Value> = tools
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|t| t.get("function").unwrap_or(t))
            .collect();
        let text = serde_json::to_string_pretty(&functions).expect("tools serialise");
        vars.insert("functions".into(), Value::String(text));
        vars.insert("datetime".into(), Value::String(now.to_string()));
    }
    vars
}

/// The system text that asks a model without a native call syntax for the generic JSON
/// answer.
pub fn generic_instructions(tools: &[Tool], parallel: bool) -> String {
    let list: Vec<Value> = tools
        .iter()
        .map(|t| json!({"name": t.name, "parameters": t.parameters}))
        .collect();
    let shape = if parallel {
        r#"{"tool_calls": [{"name": "<tool name>", "arguments": {...}}, ...]}"#
    } else {
        r#"{"tool_call": {"name": "<tool name>", "arguments": {...}}}"#
    };
    format!(
        "You can call these tools:\n{}\n\nAnswer with one JSON object: either {shape} to call tools, or {{\"response\": \"<your answer>\"}} to answer the user.",
        serde_json::to_string_pretty(&list).expect("tools serialise")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_become_objects_and_mistral_ids_nine_characters() {
        let m = json!([{"role": "assistant", "content": "", "reasoning_content": "hm",
            "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "f", "arguments": "{\"a\": 1}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "2"}]);
        let out = adapt_messages(Family::MistralNemo, m.as_array().unwrap());
        assert_eq!(
            out[0]["tool_calls"][0]["function"]["arguments"],
            json!({"a": 1})
        );
        let id = out[0]["tool_calls"][0]["id"].as_str().unwrap();
        assert_eq!(id.len(), 9);
        assert_eq!(out[1]["tool_call_id"], id, "the same id on both sides");
        assert_eq!(out[0]["thinking"], "hm");
        let out = adapt_messages(Family::Hermes, m.as_array().unwrap());
        assert_eq!(out[0]["tool_calls"][0]["id"], "call_1");
    }
}
