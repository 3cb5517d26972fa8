//! OpenAI's `tools`, `tool_choice`, `parallel_tool_calls` and the reasoning fields
//! (`reasoning_format`, `reasoning_effort`, `chat_template_kwargs`), checked and turned
//! into the internal chat's.

use std::collections::HashSet;

use modelrunner_protocol::{Chat, ReasoningFormat, ToolChoice};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::ApiError;

/// The fields of a chat request about tools and reasoning.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ToolFields {
    tools: Option<Value>,
    tool_choice: Option<Value>,
    parallel_tool_calls: Option<bool>,
    reasoning_format: Option<String>,
    reasoning_effort: Option<String>,
    chat_template_kwargs: Option<Map<String, Value>>,
}

fn is_name(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Checks `tools` and returns the function names.
fn names(tools: &Value) -> Result<Vec<String>, ApiError> {
    let list = tools
        .as_array()
        .ok_or_else(|| ApiError::invalid("tools", "tools must be an array of functions"))?;
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, t) in list.iter().enumerate() {
        let at = |f: &str| format!("tools[{i}]{f}");
        match t.get("type").and_then(Value::as_str) {
            Some("function") | None => {}
            Some(other) => {
                return Err(ApiError::invalid(
                    &at(".type"),
                    format!("tools of type {other:?} are not supported; use \"function\""),
                ))
            }
        }
        let f = t.get("function").filter(|f| f.is_object()).ok_or_else(|| {
            ApiError::invalid(&at(".function"), "each tool needs a function object")
        })?;
        let name = f.get("name").and_then(Value::as_str).unwrap_or_default();
        if !is_name(name) {
            return Err(ApiError::invalid(
                &at(".function.name"),
                format!(
                    "a function needs a name of 1 to 64 letters, digits, _, - or ., got {name:?}"
                ),
            ));
        }
        if !seen.insert(name.to_string()) {
            return Err(ApiError::invalid(
                &at(".function.name"),
                format!("two tools are named {name:?}"),
            ));
        }
        match f.get("parameters") {
            None | Some(Value::Null) | Some(Value::Object(_)) => {}
            Some(_) => {
                return Err(ApiError::invalid(
                    &at(".function.parameters"),
                    "parameters must be a JSON schema object",
                ))
            }
        }
        out.push(name.to_string());
    }
    Ok(out)
}

fn tool_choice(v: &Value, names: &[String]) -> Result<ToolChoice, ApiError> {
    let bad = |m: String| ApiError::invalid("tool_choice", m);
    let choice = match v {
        Value::String(s) => match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => {
                return Err(bad(format!(
                    "tool_choice must be \"auto\", \"none\", \"required\" or {{\"type\":\"function\",\"function\":{{\"name\":...}}}}, got {other:?}"
                )))
            }
        },
        Value::Object(o) => {
            let name = o
                .get("function")
                .and_then(|f| f.get("name"))
                .and_then(Value::as_str)
                .ok_or_else(|| bad("a named tool_choice is {\"type\":\"function\",\"function\":{\"name\":...}}".into()))?;
            ToolChoice::Function {
                name: name.to_string(),
            }
        }
        _ => return Err(bad("tool_choice must be a string or an object".into())),
    };
    match &choice {
        ToolChoice::Function { name } if !names.contains(name) => Err(bad(format!(
            "there is no tool named {name:?} (the tools are {names:?})"
        ))),
        ToolChoice::Function { .. } | ToolChoice::Required if names.is_empty() => Err(bad(
            "tool_choice asks for a call, but there are no tools".into(),
        )),
        _ => Ok(choice),
    }
}

impl ToolFields {
    /// The fields as another dialect gives them, already in OpenAI's shapes (its
    /// errors name OpenAI's parameters; the caller renames them with
    /// [`ApiError::rename_param`]).
    pub(crate) fn of(
        tools: Option<Value>,
        tool_choice: Option<Value>,
        parallel_tool_calls: Option<bool>,
        reasoning_effort: Option<String>,
    ) -> ToolFields {
        ToolFields {
            tools,
            tool_choice,
            parallel_tool_calls,
            reasoning_effort,
            ..ToolFields::default()
        }
    }

    /// Fills the chat's tool and reasoning settings; `default_reasoning` is the daemon's.
    pub(crate) fn apply(
        self,
        chat: &mut Chat,
        default_reasoning: ReasoningFormat,
    ) -> Result<(), ApiError> {
        let names = match &self.tools {
            Some(Value::Null) | None => Vec::new(),
            Some(t) => names(t)?,
        };
        if let Some(c) = &self.tool_choice {
            chat.tool_choice = tool_choice(c, &names)?;
        }
        if let Some(p) = self.parallel_tool_calls {
            chat.parallel_tool_calls = p;
        }
        chat.reasoning_format = match self.reasoning_format.as_deref() {
            None => default_reasoning,
            Some("none") => ReasoningFormat::None,
            Some("auto" | "deepseek" | "deepseek-legacy") => ReasoningFormat::Auto,
            Some(other) => {
                return Err(ApiError::invalid(
                    "reasoning_format",
                    format!("reasoning_format must be none, auto or deepseek, got {other:?}"),
                ))
            }
        };
        if let Some(kw) = self.chat_template_kwargs {
            chat.template_kwargs.extend(kw);
        }
        if let Some(effort) = self.reasoning_effort {
            if !matches!(
                effort.as_str(),
                "none" | "minimal" | "low" | "medium" | "high"
            ) {
                return Err(ApiError::invalid(
                    "reasoning_effort",
                    format!("reasoning_effort must be none, minimal, low, medium or high, got {effort:?}"),
                ));
            }
            chat.template_kwargs
                .insert("reasoning_effort".into(), Value::String(effort));
        }
        if !names.is_empty() {
            chat.tools = self.tools;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn apply(v: Value) -> Result<Chat, ApiError> {
        let mut c = Chat::new(vec![json!({"role": "user", "content": "x"})]);
        serde_json::from_value::<ToolFields>(v)
            .unwrap()
            .apply(&mut c, ReasoningFormat::Auto)?;
        Ok(c)
    }

    #[test]
    fn tool_choice_forms_and_their_errors() {
        let tools = json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
        let c = apply(
            json!({"tools": tools, "tool_choice": {"type": "function", "function": {"name": "f"}}}),
        )
        .unwrap();
        assert_eq!(c.tool_choice, ToolChoice::Function { name: "f".into() });
        let c =
            apply(json!({"tools": tools, "tool_choice": "required", "parallel_tool_calls": false}))
                .unwrap();
        assert_eq!(c.tool_choice, ToolChoice::Required);
        assert!(!c.parallel_tool_calls);
        for (body, param) in [
            (
                json!({"tools": tools, "tool_choice": {"type": "function", "function": {"name": "g"}}}),
                "tool_choice",
            ),
            (
                json!({"tools": tools, "tool_choice": "sometimes"}),
                "tool_choice",
            ),
            (json!({"tool_choice": "required"}), "tool_choice"),
            (
                json!({"tools": [{"type": "function", "function": {"parameters": {}}}]}),
                "tools[0].function.name",
            ),
            (
                json!({"tools": [{"type": "function", "function": {"name": "a b"}}]}),
                "tools[0].function.name",
            ),
            (
                json!({"tools": [{"function": {"name": "f"}}, {"function": {"name": "f"}}]}),
                "tools[1].function.name",
            ),
            (json!({"tools": [{"type": "retrieval"}]}), "tools[0].type"),
            (
                json!({"tools": [{"function": {"name": "f", "parameters": 3}}]}),
                "tools[0].function.parameters",
            ),
            (json!({"reasoning_format": "xml"}), "reasoning_format"),
            (json!({"reasoning_effort": "huge"}), "reasoning_effort"),
        ] {
            let e = apply(body.clone()).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{body}: {}", e.message);
        }
    }

    #[test]
    fn reasoning_settings_reach_the_template() {
        let c = apply(
            json!({"reasoning_effort": "low", "chat_template_kwargs": {"enable_thinking": false},
            "reasoning_format": "none"}),
        )
        .unwrap();
        assert_eq!(c.template_kwargs["reasoning_effort"], "low");
        assert_eq!(c.template_kwargs["enable_thinking"], false);
        assert_eq!(c.reasoning_format, ReasoningFormat::None);
    }
}
