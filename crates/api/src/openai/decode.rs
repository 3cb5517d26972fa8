//! OpenAI requests into the pipeline's [`Generation`]: only the fields below reach the
//! engine; everything else is ignored. What only OpenAI has (roles, content parts,
//! `response_format`, `n`, `stream_options`) is checked here, naming the parameter; the
//! ranges every dialect shares are checked once by the pipeline.

use std::collections::BTreeMap;

use modelrunner_protocol::{
    Chat, GenerateOptions, GenerateRequest, ReasoningFormat, SamplingParams,
};
use modelrunner_scheduler::KeepAlive;

pub(crate) use super::prompt::PromptInput;
use serde::Deserialize;
use serde_json::Value;

use super::tools::ToolFields;
use crate::extract::from_value;
use crate::pipeline::Generation;
use crate::ApiError;

/// `stop`: one string or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Stop {
    One(String),
    Many(Vec<String>),
}

/// `stream_options`.
#[derive(Debug, Clone, Default, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// The most choices per prompt.
const MAX_N: u32 = 8;

/// `n` choices of each request, each with a seed of its own (the request's seed plus
/// the choice's number, so a seeded request gives the same choices again).
fn replicate(requests: Vec<GenerateRequest>, n: u32) -> Vec<GenerateRequest> {
    let mut out = Vec::with_capacity(requests.len() * n as usize);
    for r in requests {
        for j in 0..n {
            let mut c = r.clone();
            c.options.sampling.seed = r.options.sampling.seed.map(|s| s.wrapping_add(j));
            out.push(c);
        }
    }
    out
}

/// A string field that may be null (read as empty).
pub(crate) fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

/// The fields chat and text completions share.
#[derive(Debug, Clone, Default, Deserialize)]
struct Common {
    /// Empty when left out or null: llama-server's clients leave it out, and the route
    /// then takes the one model it can mean (an empty string stays a 400).
    #[serde(default, deserialize_with = "null_as_empty")]
    model: String,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    n: Option<u32>,
    stop: Option<Stop>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    presence_penalty: Option<f32>,
    frequency_penalty: Option<f32>,
    logit_bias: Option<BTreeMap<String, f32>>,
    seed: Option<i64>,
    response_format: Option<Value>,
    /// Ollama's form; also accepted here.
    keep_alive: Option<KeepAlive>,
    // llama.cpp's extensions.
    top_k: Option<i32>,
    min_p: Option<f32>,
    repeat_penalty: Option<f32>,
    grammar: Option<String>,
    /// A JSON schema for the grammar, as llama-server takes it beside `response_format`.
    json_schema: Option<Value>,
    /// llama-server's and vLLM's: never sample an end-of-generation token.
    #[serde(default)]
    ignore_eos: bool,
}

/// What the encoders need to know of a decoded request.
#[derive(Debug, Clone)]
pub(crate) struct Decoded {
    /// The pipeline's request.
    pub generation: Generation,
    /// Streamed or collected.
    pub stream: bool,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    /// Whether log-probabilities were asked for.
    pub logprobs: bool,
    /// `echo` (text completions).
    pub echo: bool,
    /// `suffix` (text completions): fill in the middle.
    pub suffix: Option<String>,
}

impl Common {
    /// Checks what only OpenAI has.
    fn check(&self) -> Result<(), ApiError> {
        if self.n.is_some_and(|n| !(1..=MAX_N).contains(&n)) {
            return Err(ApiError::invalid(
                "n",
                format!("n must be from 1 to {MAX_N} (each choice takes a slot of its own)"),
            ));
        }
        if self.stream_options.is_some() && !self.stream {
            return Err(ApiError::invalid(
                "stream_options",
                "stream_options is only allowed when stream is true",
            ));
        }
        Ok(())
    }

    fn sampling(&self) -> Result<SamplingParams, ApiError> {
        let d = SamplingParams::default();
        let mut logit_bias = Vec::new();
        for (tok, b) in self.logit_bias.iter().flatten() {
            let t: i32 = tok.parse().map_err(|_| {
                ApiError::invalid("logit_bias", format!("{tok:?} is not a token ID"))
            })?;
            logit_bias.push((t, *b));
        }
        Ok(SamplingParams {
            temperature: self.temperature.unwrap_or(d.temperature),
            top_p: self.top_p.unwrap_or(d.top_p),
            top_k: self.top_k.unwrap_or(d.top_k),
            min_p: self.min_p.unwrap_or(d.min_p),
            repeat_penalty: self.repeat_penalty.unwrap_or(d.repeat_penalty),
            presence_penalty: self.presence_penalty.unwrap_or(0.0),
            frequency_penalty: self.frequency_penalty.unwrap_or(0.0),
            // OpenAI seeds are 64-bit; the sampler takes 32 bits of them.
            seed: self.seed.map(|x| x as u64 as u32),
            logit_bias,
            ignore_eos: self.ignore_eos,
            ..d
        })
    }

    /// `response_format` as a JSON schema for the grammar.
    fn json_schema(&self) -> Result<Option<Value>, ApiError> {
        let Some(rf) = &self.response_format else {
            return match &self.json_schema {
                None | Some(Value::Null) => Ok(None),
                Some(s @ Value::Object(_)) => Ok(Some(s.clone())),
                Some(_) => Err(ApiError::invalid(
                    "json_schema",
                    "json_schema is a JSON schema object",
                )),
            };
        };
        if self.json_schema.as_ref().is_some_and(|s| !s.is_null()) {
            return Err(ApiError::invalid(
                "json_schema",
                "give json_schema or response_format, not both",
            ));
        }
        let bad = |m: String| ApiError::invalid("response_format", m);
        match rf.get("type").and_then(Value::as_str) {
            Some("text") => Ok(None),
            Some("json_object") => Ok(Some(serde_json::json!({"type": "object"}))),
            Some("json_schema") => rf
                .get("json_schema")
                .and_then(|j| j.get("schema"))
                .cloned()
                .map(Some)
                .ok_or_else(|| bad("json_schema needs a schema: {\"type\":\"json_schema\",\"json_schema\":{\"name\":...,\"schema\":{...}}}".into())),
            other => Err(bad(format!(
                "response_format type must be text, json_object or json_schema, got {other:?}"
            ))),
        }
    }

    fn options(&self, logprobs: Option<u32>) -> Result<GenerateOptions, ApiError> {
        self.check()?;
        let json_schema = self.json_schema()?;
        if json_schema.is_some() && self.grammar.is_some() {
            return Err(ApiError::invalid(
                "grammar",
                "give grammar or response_format, not both",
            ));
        }
        let stop = match &self.stop {
            None => Vec::new(),
            Some(Stop::One(s)) => vec![s.clone()],
            Some(Stop::Many(v)) => v.clone(),
        };
        Ok(GenerateOptions {
            sampling: self.sampling()?,
            max_tokens: self.max_completion_tokens.or(self.max_tokens),
            stop,
            logprobs,
            grammar: self.grammar.clone(),
            json_schema,
        })
    }

    fn decoded(&self, choices: Vec<GenerateRequest>, logprobs: bool, echo: bool) -> Decoded {
        let choices = replicate(choices, self.n.unwrap_or(1));
        Decoded {
            generation: Generation {
                model: self.model.clone(),
                keep_alive: self.keep_alive,
                choices,
                params: &[],
            },
            stream: self.stream,
            include_usage: self
                .stream_options
                .as_ref()
                .is_some_and(|o| o.include_usage),
            logprobs,
            echo,
            suffix: None,
        }
    }
}

/// The fields only chat has.
#[derive(Debug, Deserialize)]
struct ChatFields {
    messages: Vec<Value>,
    #[serde(default)]
    logprobs: bool,
    top_logprobs: Option<u32>,
}

/// A conversation: its messages checked and normalised for templates, with its tools
/// and reasoning settings (`default_reasoning` when it names none).
pub(crate) fn conversation(
    messages: &[Value],
    body: &Value,
    default_reasoning: ReasoningFormat,
) -> Result<Chat, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::invalid("messages", "messages must not be empty"));
    }
    let messages = messages
        .iter()
        .enumerate()
        .map(|(i, m)| super::messages::message(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    let mut chat = Chat::new(messages);
    from_value::<ToolFields>(body)?.apply(&mut chat, default_reasoning)?;
    Ok(chat)
}

/// `POST /v1/chat/completions`.
pub(crate) fn chat(body: &Value, default_reasoning: ReasoningFormat) -> Result<Decoded, ApiError> {
    let common: Common = from_value(body)?;
    let f: ChatFields = from_value(body)?;
    let chat = conversation(&f.messages, body, default_reasoning)?;
    if f.top_logprobs.is_some() && !f.logprobs {
        return Err(ApiError::invalid(
            "top_logprobs",
            "top_logprobs needs logprobs: true",
        ));
    }
    let logprobs = f.logprobs.then(|| f.top_logprobs.unwrap_or(0));
    let req = GenerateRequest {
        options: common.options(logprobs)?,
        ..GenerateRequest::chat(chat)
    };
    let mut d = common.decoded(vec![req], f.logprobs, false);
    // Our `logprobs` (alternatives per token) is chat's `top_logprobs`.
    d.generation.params = &[("logprobs", "top_logprobs")];
    Ok(d)
}

/// The fields only text completions have.
#[derive(Debug, Deserialize)]
struct CompletionFields {
    prompt: PromptInput,
    logprobs: Option<u32>,
    #[serde(default)]
    echo: bool,
    suffix: Option<String>,
    best_of: Option<u32>,
}

/// `POST /v1/completions`: one choice per prompt.
pub(crate) fn completion(body: &Value) -> Result<Decoded, ApiError> {
    let common: Common = from_value(body)?;
    let f: CompletionFields = from_value(body)?;
    let suffix = f.suffix.filter(|s| !s.is_empty());
    if suffix.is_some() && f.echo {
        return Err(ApiError::invalid("echo", "echo cannot be used with suffix"));
    }
    if f.best_of.is_some_and(|b| b != 1) {
        return Err(ApiError::invalid(
            "best_of",
            "only best_of = 1 is supported",
        ));
    }
    let prompts = f.prompt.prompts("prompt")?;
    if prompts.is_empty() || prompts.len() > 16 {
        return Err(ApiError::invalid("prompt", "give from 1 to 16 prompts"));
    }
    let options = common.options(f.logprobs)?;
    let choices = GenerateRequest::each(prompts, &options);
    let mut d = common.decoded(choices, f.logprobs.is_some(), f.echo);
    d.suffix = suffix;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelrunner_protocol::{Input, Prompt};
    use serde_json::json;

    fn chat_(v: &Value) -> Result<Decoded, ApiError> {
        chat(v, ReasoningFormat::Auto)
    }

    fn first(d: &Decoded) -> &GenerateRequest {
        &d.generation.choices[0]
    }

    fn messages(d: &Decoded) -> &[Value] {
        match &first(d).input {
            Input::Chat(c) => &c.messages,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn text_parts_flatten_and_developer_is_system() {
        let d = chat_(&json!({"model": "m", "messages": [
            {"role": "developer", "content": "be brief", "evil": "x"},
            {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
        ]}))
        .unwrap();
        assert_eq!(
            messages(&d)[0],
            json!({"role": "system", "content": "be brief"})
        );
        assert_eq!(messages(&d)[1]["content"], "a\nb");
    }

    #[test]
    fn bad_fields_name_their_param() {
        let user = json!([{"role": "user", "content": "x"}]);
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
            (json!({"model": "m", "messages": user, "n": 9}), "n"),
            (json!({"model": "m", "messages": user, "n": 0}), "n"),
            (
                json!({"model": "m", "messages": user, "logit_bias": {"x": 1}}),
                "logit_bias",
            ),
            (
                json!({"model": "m", "messages": user, "response_format": {"type": "yaml"}}),
                "response_format",
            ),
            (
                json!({"model": "m", "messages": user, "stream_options": {"include_usage": true}}),
                "stream_options",
            ),
            (
                json!({"model": "m", "messages": user, "top_logprobs": 3}),
                "top_logprobs",
            ),
            (
                json!({"model": "m", "messages": user, "max_tokens": -1}),
                "max_tokens",
            ),
            (
                json!({"model": "m", "messages": user, "max_tokens": 1e12}),
                "max_tokens",
            ),
            (
                json!({"model": "m", "messages": user, "seed": 1e30}),
                "seed",
            ),
            (
                json!({"model": "m", "messages": user, "temperature": "hot"}),
                "temperature",
            ),
        ] {
            let e = chat_(&body).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{body}: {}", e.message);
        }
    }

    #[test]
    fn fields_map_onto_the_internal_request() {
        let d = chat_(&json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "temperature": 0, "max_completion_tokens": 7, "max_tokens": 99, "stop": "END", "seed": -1,
            "logprobs": true, "top_logprobs": 2, "logit_bias": {"5": -100},
            "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}}))
        .unwrap();
        let g = &first(&d).options;
        assert_eq!(g.sampling.temperature, 0.0);
        assert_eq!(g.max_tokens, Some(7));
        assert_eq!(g.stop, vec!["END"]);
        assert_eq!(g.sampling.seed, Some(u32::MAX));
        assert_eq!(g.logprobs, Some(2));
        assert_eq!(g.sampling.logit_bias, vec![(5, -100.0)]);
        assert_eq!(g.json_schema, Some(json!({"type": "object"})));
    }

    #[test]
    fn n_choices_per_prompt_with_their_own_seeds() {
        let d =
            completion(&json!({"model": "m", "prompt": ["a", "b"], "n": 3, "seed": 7})).unwrap();
        let seeds: Vec<_> = d
            .generation
            .choices
            .iter()
            .map(|c| c.options.sampling.seed)
            .collect();
        assert_eq!(seeds, [7, 8, 9, 7, 8, 9].map(Some));
        let d =
            chat_(&json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "n": 2}))
                .unwrap();
        assert_eq!(d.generation.choices.len(), 2);
        assert_eq!(d.generation.choices[1].options.sampling.seed, None);
    }

    #[test]
    fn completion_prompts_of_every_shape() {
        let c = |p: Value| completion(&json!({"model": "m", "prompt": p}));
        let prompt = |d: &Decoded, i: usize| match &d.generation.choices[i].input {
            Input::Prompt { prompt, .. } => prompt.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            prompt(&c(json!("hi")).unwrap(), 0),
            Prompt::Text("hi".into())
        );
        assert_eq!(c(json!(["a", "b"])).unwrap().generation.choices.len(), 2);
        assert_eq!(
            prompt(&c(json!([1, 2])).unwrap(), 0),
            Prompt::Tokens(vec![1, 2])
        );
        assert_eq!(
            prompt(&c(json!([[1], [2, 3]])).unwrap(), 1),
            Prompt::Tokens(vec![2, 3])
        );
        assert!(c(json!([])).is_err());
        assert!(c(json!([1_i64 << 40])).is_err());
    }
}
