//! The one internal generation request, and its validation: every dialect decodes into
//! it and the edge checks it once with the limits below; the runner checks only what
//! needs the model (token IDs against the vocabulary, the prompt against the context).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::RunnerError;

/// The limits every request is held to, whichever dialect it came in.
pub mod limits {
    /// Temperature (0 is greedy).
    pub const TEMPERATURE: (f32, f32) = (0.0, 2.0);
    /// Nucleus sampling.
    pub const TOP_P: (f32, f32) = (0.0, 1.0);
    /// Min-p.
    pub const MIN_P: (f32, f32) = (0.0, 1.0);
    /// Repetition penalty.
    pub const REPEAT_PENALTY: (f32, f32) = (0.0, 10.0);
    /// Presence and frequency penalties.
    pub const PENALTY: (f32, f32) = (-2.0, 2.0);
    /// Top-k (0 disables).
    pub const TOP_K: (i32, i32) = (0, 1 << 20);
    /// Tokens the penalties look back at (-1: the whole context).
    pub const REPEAT_LAST_N: (i32, i32) = (-1, 1 << 20);
    /// Logit bias magnitude.
    pub const LOGIT_BIAS: f32 = 100.0;
    /// Logit bias entries.
    pub const LOGIT_BIAS_ENTRIES: usize = 1024;
    /// Stop strings.
    pub const STOP_STRINGS: usize = 16;
    /// Bytes of one stop string.
    pub const STOP_BYTES: usize = 256;
    /// Alternatives per token with log-probabilities.
    pub const LOGPROBS: u32 = 20;
}

/// A prompt: text (tokenized with the model's rules) or token IDs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Prompt {
    /// Text.
    Text(String),
    /// Token IDs.
    Tokens(Vec<i32>),
}

/// Sampling parameters. Defaults follow llama.cpp's server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SamplingParams {
    /// 0 means greedy.
    pub temperature: f32,
    /// Nucleus sampling; 1 disables.
    pub top_p: f32,
    /// Top-k; 0 disables.
    pub top_k: i32,
    /// Min-p; 0 disables.
    pub min_p: f32,
    /// Repetition penalty; 1 disables.
    pub repeat_penalty: f32,
    /// Tokens considered by the penalties.
    pub repeat_last_n: i32,
    /// OpenAI presence penalty.
    pub presence_penalty: f32,
    /// OpenAI frequency penalty.
    pub frequency_penalty: f32,
    /// Per-token logit bias.
    pub logit_bias: Vec<(i32, f32)>,
    /// Seed; the same seed, parameters and prompt give the same text.
    pub seed: Option<u32>,
    /// End-of-generation tokens are never sampled (the answer runs to its limit).
    pub ignore_eos: bool,
}

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: 0.8,
            top_p: 0.95,
            top_k: 40,
            min_p: 0.05,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            logit_bias: Vec::new(),
            seed: None,
            ignore_eos: false,
        }
    }
}

/// How to generate: everything of a request but its input.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default)]
pub struct GenerateOptions {
    /// Sampling.
    pub sampling: SamplingParams,
    /// Most tokens to generate; clamped to the room left in the context.
    pub max_tokens: Option<u32>,
    /// Stop strings; never emitted.
    pub stop: Vec<String>,
    /// Return this many top alternatives with each token's log-probability.
    pub logprobs: Option<u32>,
    /// A GBNF grammar the output must follow.
    pub grammar: Option<String>,
    /// A JSON schema the output must follow (converted to a grammar).
    pub json_schema: Option<Value>,
}

/// Which tool calls the model must make.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ToolChoice {
    /// Text or calls, as the model decides (once a call starts, it must be valid).
    #[default]
    Auto,
    /// No calls (the tools are still shown to the model).
    None,
    /// At least one call.
    Required,
    /// A call of this function.
    Function {
        /// The function.
        name: String,
    },
}

/// What becomes of the model's reasoning.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningFormat {
    /// Split off from the answer (`reasoning_content`).
    #[default]
    Auto,
    /// Left in the answer's text, tags and all.
    None,
}

/// A conversation for the model's chat template.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Chat {
    /// Messages as templates expect them (`role`, `content`, ...).
    pub messages: Vec<Value>,
    /// Tools in OpenAI's shape (`[{"type":"function","function":{...}}]`), passed to the
    /// template and constraining calls.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Value>,
    /// Which calls the model must make.
    #[serde(default)]
    pub tool_choice: ToolChoice,
    /// Whether several calls may come at once.
    #[serde(default = "yes")]
    pub parallel_tool_calls: bool,
    /// What becomes of reasoning.
    #[serde(default)]
    pub reasoning_format: ReasoningFormat,
    /// Whether the rendered prompt ends with the assistant's turn opened.
    #[serde(default = "yes")]
    pub add_generation_prompt: bool,
    /// Extra variables for the template (`enable_thinking`, ...).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub template_kwargs: Map<String, Value>,
}

impl Chat {
    /// A conversation with the generation prompt added.
    pub fn new(messages: Vec<Value>) -> Self {
        Chat {
            messages,
            tools: None,
            tool_choice: ToolChoice::Auto,
            parallel_tool_calls: true,
            reasoning_format: ReasoningFormat::Auto,
            add_generation_prompt: true,
            template_kwargs: Map::new(),
        }
    }
}

fn yes() -> bool {
    true
}

/// What to generate from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Input {
    /// A prompt, fed as it is.
    Prompt {
        /// The prompt.
        prompt: Prompt,
        /// Add the model's BOS token (when it uses one) to a text prompt.
        #[serde(default = "yes")]
        add_special: bool,
    },
    /// A conversation, rendered with the model's chat template first.
    Chat(Chat),
}

/// One generation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GenerateRequest {
    /// What to generate from.
    pub input: Input,
    /// How to generate.
    #[serde(default)]
    pub options: GenerateOptions,
}

impl GenerateRequest {
    /// A request for a text prompt with default sampling.
    pub fn text(prompt: &str) -> Self {
        Self::prompt(Prompt::Text(prompt.to_string()))
    }

    /// A request for a prompt with default sampling.
    pub fn prompt(prompt: Prompt) -> Self {
        GenerateRequest {
            input: Input::Prompt {
                prompt,
                add_special: true,
            },
            options: GenerateOptions::default(),
        }
    }

    /// One request per prompt, all with `options` (one choice each).
    pub fn each(prompts: Vec<Prompt>, options: &GenerateOptions) -> Vec<Self> {
        prompts
            .into_iter()
            .map(|p| GenerateRequest {
                options: options.clone(),
                ..Self::prompt(p)
            })
            .collect()
    }

    /// A request for a conversation with default sampling.
    pub fn chat(chat: Chat) -> Self {
        GenerateRequest {
            input: Input::Chat(chat),
            options: GenerateOptions::default(),
        }
    }

    /// Checks everything that does not need the model, against [`limits`].
    pub fn validate(&self) -> Result<(), RunnerError> {
        match &self.input {
            Input::Prompt {
                prompt: Prompt::Tokens(t),
                ..
            } => {
                if t.is_empty() {
                    return Err(RunnerError::invalid("prompt", "the prompt is empty"));
                }
                if let Some(bad) = t.iter().find(|t| **t < 0) {
                    return Err(RunnerError::invalid(
                        "prompt",
                        format!("token {bad} is not a token ID"),
                    ));
                }
            }
            Input::Prompt { .. } => {}
            Input::Chat(c) => {
                if c.messages.is_empty() {
                    return Err(RunnerError::invalid("messages", "must not be empty"));
                }
            }
        }
        self.options.validate()
    }
}

fn within(param: &str, v: f32, (lo, hi): (f32, f32)) -> Result<(), RunnerError> {
    if !v.is_finite() || v < lo || v > hi {
        return Err(RunnerError::invalid(
            param,
            format!("must be a number from {lo} to {hi}, got {v}"),
        ));
    }
    Ok(())
}

fn within_int(param: &str, v: i32, (lo, hi): (i32, i32)) -> Result<(), RunnerError> {
    if v < lo || v > hi {
        return Err(RunnerError::invalid(
            param,
            format!("must be a whole number from {lo} to {hi}, got {v}"),
        ));
    }
    Ok(())
}

impl SamplingParams {
    /// Rejects NaN, out-of-range values and malformed biases.
    pub fn validate(&self) -> Result<(), RunnerError> {
        use limits as l;
        within("temperature", self.temperature, l::TEMPERATURE)?;
        within("top_p", self.top_p, l::TOP_P)?;
        within("min_p", self.min_p, l::MIN_P)?;
        within("repeat_penalty", self.repeat_penalty, l::REPEAT_PENALTY)?;
        within("presence_penalty", self.presence_penalty, l::PENALTY)?;
        within("frequency_penalty", self.frequency_penalty, l::PENALTY)?;
        within_int("top_k", self.top_k, l::TOP_K)?;
        within_int("repeat_last_n", self.repeat_last_n, l::REPEAT_LAST_N)?;
        if self.logit_bias.len() > l::LOGIT_BIAS_ENTRIES {
            return Err(RunnerError::invalid(
                "logit_bias",
                format!("at most {} entries", l::LOGIT_BIAS_ENTRIES),
            ));
        }
        for (t, b) in &self.logit_bias {
            if *t < 0 {
                return Err(RunnerError::invalid(
                    "logit_bias",
                    format!("{t} is not a token ID"),
                ));
            }
            if !b.is_finite() || b.abs() > l::LOGIT_BIAS {
                return Err(RunnerError::invalid(
                    "logit_bias",
                    format!(
                        "bias {b} for token {t} must be from -{0} to {0}",
                        l::LOGIT_BIAS
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl GenerateOptions {
    /// Checks sampling, stop strings, log-probabilities and the output constraint.
    pub fn validate(&self) -> Result<(), RunnerError> {
        use limits as l;
        self.sampling.validate()?;
        if self.max_tokens == Some(0) {
            return Err(RunnerError::invalid("max_tokens", "must be at least 1"));
        }
        if self.stop.len() > l::STOP_STRINGS
            || self
                .stop
                .iter()
                .any(|s| s.is_empty() || s.len() > l::STOP_BYTES)
        {
            return Err(RunnerError::invalid(
                "stop",
                format!(
                    "at most {} non-empty stop strings of up to {} bytes",
                    l::STOP_STRINGS,
                    l::STOP_BYTES
                ),
            ));
        }
        if self.logprobs.is_some_and(|n| n > l::LOGPROBS) {
            return Err(RunnerError::invalid(
                "logprobs",
                format!("must be from 0 to {}", l::LOGPROBS),
            ));
        }
        if self.grammar.is_some() && self.json_schema.is_some() {
            return Err(RunnerError::invalid(
                "grammar",
                "give a grammar or a JSON schema, not both",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(r: &GenerateRequest) -> String {
        match r.validate() {
            Err(RunnerError::InvalidParam { param, .. }) => param,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn each_limit_names_its_parameter() {
        let base = GenerateRequest::text("x");
        assert!(base.validate().is_ok());
        type Change = Box<dyn Fn(&mut GenerateRequest)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "temperature",
                Box::new(|r| r.options.sampling.temperature = f32::NAN),
            ),
            (
                "temperature",
                Box::new(|r| r.options.sampling.temperature = 2.5),
            ),
            ("top_p", Box::new(|r| r.options.sampling.top_p = 1.5)),
            ("top_k", Box::new(|r| r.options.sampling.top_k = -1)),
            (
                "logit_bias",
                Box::new(|r| r.options.sampling.logit_bias = vec![(1, f32::INFINITY)]),
            ),
            (
                "logit_bias",
                Box::new(|r| r.options.sampling.logit_bias = vec![(-3, 1.0)]),
            ),
            ("max_tokens", Box::new(|r| r.options.max_tokens = Some(0))),
            ("stop", Box::new(|r| r.options.stop = vec![String::new()])),
            ("stop", Box::new(|r| r.options.stop = vec!["x".repeat(300)])),
            ("logprobs", Box::new(|r| r.options.logprobs = Some(21))),
            (
                "grammar",
                Box::new(|r| {
                    r.options.grammar = Some("root ::= \"a\"".into());
                    r.options.json_schema = Some(serde_json::json!({}));
                }),
            ),
            (
                "prompt",
                Box::new(|r| {
                    r.input = Input::Prompt {
                        prompt: Prompt::Tokens(vec![]),
                        add_special: true,
                    }
                }),
            ),
            (
                "prompt",
                Box::new(|r| {
                    r.input = Input::Prompt {
                        prompt: Prompt::Tokens(vec![1, -2]),
                        add_special: true,
                    }
                }),
            ),
            (
                "messages",
                Box::new(|r| r.input = Input::Chat(Chat::new(vec![]))),
            ),
        ];
        for (want, f) in cases {
            let mut r = base.clone();
            f(&mut r);
            assert_eq!(param(&r), want);
        }
    }

    #[test]
    fn requests_round_trip_as_json() {
        let mut r = GenerateRequest::chat(Chat::new(vec![
            serde_json::json!({"role": "user", "content": "hi"}),
        ]));
        r.options.max_tokens = Some(3);
        r.options.sampling.logit_bias = vec![(2, -100.0)];
        let back: GenerateRequest =
            serde_json::from_slice(&serde_json::to_vec(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
