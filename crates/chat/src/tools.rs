//! The tools of a request, as the grammar and the reader need them.

use serde_json::Value;

/// A function the model may call.
#[derive(Debug, Clone, PartialEq)]
pub struct Tool {
    /// Its name.
    pub name: String,
    /// The JSON schema of its arguments (an object schema).
    pub parameters: Value,
    /// Where the schema is in the request, for errors (`tools[0].function.parameters`).
    pub param: String,
}

/// Which calls the model must make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// Text or calls, as the model decides.
    Auto,
    /// No calls.
    None,
    /// At least one call.
    Required,
    /// A call of this function.
    Function(String),
}

impl Tool {
    /// The tools of an OpenAI-shaped `tools` array (`[{"type":"function","function":
    /// {"name","parameters"}}]`); entries without a name are skipped (the API refuses
    /// them before they get here).
    pub fn from_openai(tools: &Value) -> Vec<Tool> {
        tools
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, t)| {
                let f = t.get("function").unwrap_or(t);
                let name = f.get("name")?.as_str()?.to_string();
                let parameters = f
                    .get("parameters")
                    .cloned()
                    .filter(|p| !p.is_null())
                    .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}}));
                Some(Tool {
                    name,
                    parameters,
                    param: format!("tools[{i}].function.parameters"),
                })
            })
            .collect()
    }

    /// The parameters' types, by name (for formats that write parameters as text).
    pub fn param_types(&self) -> std::collections::HashMap<String, String> {
        self.parameters
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| {
                let t = v.get("type")?;
                let t = t
                    .as_str()
                    .map(str::to_string)
                    .or_else(|| t.as_array()?.first()?.as_str().map(str::to_string))?;
                Some((k.clone(), t))
            })
            .collect()
    }
}
