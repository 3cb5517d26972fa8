//! OpenAI request bodies, and the allowlist that turns them into engine requests: only
//! the fields below reach the engine, each range-checked; everything else is ignored.

use std::collections::BTreeMap;

use modelrunner_engine::protocol::{ChatRequest, GenerateOptions};
use modelrunner_engine::{GenerateRequest, Prompt, SamplingParams};
use modelrunner_scheduler::KeepAlive;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::ApiError;

/// `stop`: one string or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum Stop {
    One(String),
    Many(Vec<String>),
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

/// The generation fields chat and text completions share.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Generation {
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub n: Option<u32>,
    pub stop: Option<Stop>,
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    pub logit_bias: Option<BTreeMap<String, f32>>,
    pub seed: Option<i64>,
    pub response_format: Option<Value>,
    /// Ollama's form; also accepted here.
    pub keep_alive: Option<KeepAlive>,
    // llama.cpp's extensions.
    pub top_k: Option<i32>,
    pub min_p: Option<f32>,
    pub repeat_penalty: Option<f32>,
    pub grammar: Option<String>,
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<Value>,
    pub tools: Option<Value>,
    #[serde(default)]
    pub logprobs: bool,
    pub top_logprobs: Option<u32>,
    #[serde(flatten)]
    pub gen: Generation,
}

/// `POST /v1/completions` `prompt`: text, texts, tokens or token lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum PromptInput {
    Text(String),
    Texts(Vec<String>),
    Tokens(Vec<i64>),
    TokenLists(Vec<Vec<i64>>),
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CompletionRequest {
    pub model: String,
    pub prompt: PromptInput,
    pub logprobs: Option<u32>,
    #[serde(default)]
    pub echo: bool,
    pub suffix: Option<String>,
    pub best_of: Option<u32>,
    #[serde(flatten)]
    pub gen: Generation,
}

fn bad(param: &str, msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg).param(param)
}

fn range(param: &str, v: Option<f32>, lo: f32, hi: f32) -> Result<(), ApiError> {
    match v {
        Some(x) if !x.is_finite() || x < lo || x > hi => Err(bad(
            param,
            format!("{param} must be from {lo} to {hi}, got {x}"),
        )),
        _ => Ok(()),
    }
}

fn tokens(list: &[i64]) -> Result<Vec<i32>, ApiError> {
    list.iter()
        .map(|t| i32::try_from(*t).map_err(|_| bad("prompt", format!("token {t} is out of range"))))
        .collect()
}

impl Generation {
    /// Checks `n`, `stream_options` and the sampling ranges.
    fn check(&self) -> Result<(), ApiError> {
        if self.n.is_some_and(|n| n != 1) {
            return Err(bad(
                "n",
                "only n = 1 is supported; send several requests for several choices",
            ));
        }
        if self.stream_options.is_some() && !self.stream {
            return Err(bad(
                "stream_options",
                "stream_options is only allowed when stream is true",
            ));
        }
        range("temperature", self.temperature, 0.0, 2.0)?;
        range("top_p", self.top_p, 0.0, 1.0)?;
        range("presence_penalty", self.presence_penalty, -2.0, 2.0)?;
        range("frequency_penalty", self.frequency_penalty, -2.0, 2.0)?;
        range("min_p", self.min_p, 0.0, 1.0)?;
        range("repeat_penalty", self.repeat_penalty, 0.0, 10.0)?;
        if self.max_tokens == Some(0) || self.max_completion_tokens == Some(0) {
            return Err(bad("max_tokens", "max_tokens must be at least 1"));
        }
        Ok(())
    }

    fn sampling(&self) -> Result<SamplingParams, ApiError> {
        let mut s = SamplingParams::default();
        if let Some(t) = self.temperature {
            s.temperature = t;
        }
        if let Some(p) = self.top_p {
            s.top_p = p;
        }
        if let Some(k) = self.top_k {
            s.top_k = k;
        }
        if let Some(m) = self.min_p {
            s.min_p = m;
        }
        if let Some(r) = self.repeat_penalty {
            s.repeat_penalty = r;
        }
        s.presence_penalty = self.presence_penalty.unwrap_or(0.0);
        s.frequency_penalty = self.frequency_penalty.unwrap_or(0.0);
        // OpenAI seeds are 64-bit; the sampler takes 32 bits of them.
        s.seed = self.seed.map(|x| x as u64 as u32);
        if let Some(bias) = &self.logit_bias {
            for (tok, b) in bias {
                let t: i32 = tok
                    .parse()
                    .map_err(|_| bad("logit_bias", format!("{tok:?} is not a token ID")))?;
                if !b.is_finite() || b.abs() > 100.0 {
                    return Err(bad(
                        "logit_bias",
                        format!("bias {b} for token {t} must be from -100 to 100"),
                    ));
                }
                s.logit_bias.push((t, *b));
            }
        }
        Ok(s)
    }

    fn stop(&self) -> Result<Vec<String>, ApiError> {
        let stop = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        };
        if stop.len() > 16 || stop.iter().any(|s| s.is_empty()) {
            return Err(bad("stop", "stop takes at most 16 non-empty strings"));
        }
        Ok(stop)
    }

    /// `response_format` as a JSON schema for the engine's grammar.
    fn json_schema(&self) -> Result<Option<Value>, ApiError> {
        let Some(rf) = &self.response_format else {
            return Ok(None);
        };
        match rf.get("type").and_then(Value::as_str) {
            Some("text") => Ok(None),
            Some("json_object") => Ok(Some(serde_json::json!({"type": "object"}))),
            Some("json_schema") => {
                let schema = rf
                    .get("json_schema")
                    .and_then(|j| j.get("schema"))
                    .cloned()
                    .ok_or_else(|| bad("response_format", "json_schema needs a schema: {\"type\":\"json_schema\",\"json_schema\":{\"name\":...,\"schema\":{...}}}"))?;
                Ok(Some(schema))
            }
            other => Err(bad(
                "response_format",
                format!(
                    "response_format type must be text, json_object or json_schema, got {other:?}"
                ),
            )),
        }
    }

    fn generate(&self, logprobs: Option<u32>) -> Result<GenerateOptions, ApiError> {
        self.check()?;
        let json_schema = self.json_schema()?;
        if json_schema.is_some() && self.grammar.is_some() {
            return Err(bad("grammar", "give grammar or response_format, not both"));
        }
        Ok(GenerateOptions {
            sampling: self.sampling()?,
            max_tokens: self.max_completion_tokens.or(self.max_tokens),
            stop: self.stop()?,
            logprobs,
            grammar: self.grammar.clone(),
            json_schema,
        })
    }
}

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
fn message(i: usize, m: &Value) -> Result<Value, ApiError> {
    let param = format!("messages[{i}]");
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
    let content = match obj.get("content") {
        None | Some(Value::Null) => Value::String(String::new()),
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::with_capacity(parts.len());
            for p in parts {
                match (p.get("type").and_then(Value::as_str), p.get("text").and_then(Value::as_str)) {
                    (Some("text"), Some(t)) => texts.push(t),
                    (kind, _) => {
                        return Err(bad(
                            &format!("{param}.content"),
                            format!("content parts of type {:?} are not supported; this model takes text only", kind.unwrap_or("?")),
                        ))
                    }
                }
            }
            Value::String(texts.join("\n"))
        }
        Some(_) => {
            return Err(bad(
                &format!("{param}.content"),
                "content must be a string or an array of text parts",
            ))
        }
    };
    out.insert("content".into(), content);
    Ok(Value::Object(out))
}

impl ChatCompletionRequest {
    /// The engine's chat request.
    pub(crate) fn to_engine(&self) -> Result<ChatRequest, ApiError> {
        if self.messages.is_empty() {
            return Err(bad("messages", "messages must not be empty"));
        }
        let messages = self
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| message(i, m))
            .collect::<Result<Vec<_>, _>>()?;
        if self.top_logprobs.is_some_and(|n| n > 20) {
            return Err(bad("top_logprobs", "top_logprobs must be from 0 to 20"));
        }
        if self.top_logprobs.is_some() && !self.logprobs {
            return Err(bad("top_logprobs", "top_logprobs needs logprobs: true"));
        }
        let logprobs = self.logprobs.then(|| self.top_logprobs.unwrap_or(0));
        Ok(ChatRequest {
            messages,
            tools: self.tools.clone(),
            options: self.gen.generate(logprobs)?,
        })
    }
}

impl CompletionRequest {
    /// One engine request per prompt.
    pub(crate) fn to_engine(&self) -> Result<Vec<GenerateRequest>, ApiError> {
        if self.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
            return Err(bad(
                "suffix",
                "suffix (fill-in-the-middle) is not supported",
            ));
        }
        if self.best_of.is_some_and(|b| b != 1) {
            return Err(bad("best_of", "only best_of = 1 is supported"));
        }
        if self.logprobs.is_some_and(|n| n > 20) {
            return Err(bad("logprobs", "logprobs must be from 0 to 20"));
        }
        let prompts: Vec<Prompt> = match &self.prompt {
            PromptInput::Text(t) => vec![Prompt::Text(t.clone())],
            PromptInput::Texts(v) => v.iter().cloned().map(Prompt::Text).collect(),
            PromptInput::Tokens(t) => vec![Prompt::Tokens(tokens(t)?)],
            PromptInput::TokenLists(v) => v
                .iter()
                .map(|t| tokens(t).map(Prompt::Tokens))
                .collect::<Result<_, _>>()?,
        };
        if prompts.is_empty() || prompts.len() > 16 {
            return Err(bad("prompt", "give from 1 to 16 prompts"));
        }
        let g = self.gen.generate(self.logprobs)?;
        Ok(prompts
            .into_iter()
            .map(|prompt| GenerateRequest {
                prompt,
                add_special: true,
                options: g.clone(),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn chat(v: Value) -> Result<ChatRequest, ApiError> {
        serde_json::from_value::<ChatCompletionRequest>(v)
            .unwrap()
            .to_engine()
    }

    #[test]
    fn text_parts_flatten_and_developer_is_system() {
        let r = chat(json!({"model": "m", "messages": [
            {"role": "developer", "content": "be brief", "evil": "x"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
        ]}))
        .unwrap();
        assert_eq!(
            r.messages[0],
            json!({"role": "system", "content": "be brief"})
        );
        assert_eq!(r.messages[1]["content"], "a\nb");
    }

    #[test]
    fn bad_fields_name_their_param() {
        for (body, param) in [
            (json!({"model": "m", "messages": []}), "messages"),
            (
                json!({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}),
                "messages[0]",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
                "messages[0].content",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "temperature": 3}),
                "temperature",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}),
                "n",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "logit_bias": {"x": 1}}),
                "logit_bias",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "response_format": {"type": "yaml"}}),
                "response_format",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream_options": {"include_usage": true}}),
                "stream_options",
            ),
            (
                json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 3}),
                "top_logprobs",
            ),
        ] {
            let e = chat(body.clone()).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{body}: {}", e.message);
        }
    }

    #[test]
    fn fields_map_onto_the_engine() {
        let r = chat(json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "temperature": 0, "max_completion_tokens": 7, "max_tokens": 99, "stop": "END", "seed": -1,
            "logprobs": true, "top_logprobs": 2, "logit_bias": {"5": -100},
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}}))
        .unwrap();
        let g = r.options;
        assert_eq!(g.sampling.temperature, 0.0);
        assert_eq!(g.max_tokens, Some(7));
        assert_eq!(g.stop, vec!["END"]);
        assert_eq!(g.sampling.seed, Some(u32::MAX));
        assert_eq!(g.logprobs, Some(2));
        assert_eq!(g.sampling.logit_bias, vec![(5, -100.0)]);
        assert_eq!(g.json_schema, Some(json!({"type": "object"})));
    }

    #[test]
    fn completion_prompts_of_every_shape() {
        let c = |p: Value| {
            serde_json::from_value::<CompletionRequest>(json!({"model": "m", "prompt": p}))
                .unwrap()
                .to_engine()
        };
        assert_eq!(c(json!("hi")).unwrap()[0].prompt, Prompt::Text("hi".into()));
        assert_eq!(c(json!(["a", "b"])).unwrap().len(), 2);
        assert_eq!(
            c(json!([1, 2])).unwrap()[0].prompt,
            Prompt::Tokens(vec![1, 2])
        );
        assert_eq!(
            c(json!([[1], [2, 3]])).unwrap()[1].prompt,
            Prompt::Tokens(vec![2, 3])
        );
        assert!(c(json!([])).is_err());
        assert!(c(json!([1_i64 << 40])).is_err());
    }
}
