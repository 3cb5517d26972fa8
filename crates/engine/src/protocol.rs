//! The runner's internal API: requests, streamed events and facts, as JSON.

use serde::{Deserialize, Serialize};

use crate::error::EngineError;

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
    /// OpenAI presence penalty (-2..2).
    pub presence_penalty: f32,
    /// OpenAI frequency penalty (-2..2).
    pub frequency_penalty: f32,
    /// Per-token logit bias.
    pub logit_bias: Vec<(i32, f32)>,
    /// Seed; the same seed, parameters and prompt give the same text.
    pub seed: Option<u32>,
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
        }
    }
}

fn bad(param: &str, msg: impl Into<String>) -> EngineError {
    EngineError::InvalidParam {
        param: param.to_string(),
        message: msg.into(),
    }
}

fn finite_in(param: &str, v: f32, lo: f32, hi: f32) -> Result<(), EngineError> {
    if !v.is_finite() || v < lo || v > hi {
        return Err(bad(
            param,
            format!("must be a number from {lo} to {hi}, got {v}"),
        ));
    }
    Ok(())
}

impl SamplingParams {
    /// Rejects NaN, negative and absurd values and out-of-vocabulary tokens.
    pub fn validate(&self, n_vocab: i32) -> Result<(), EngineError> {
        finite_in("temperature", self.temperature, 0.0, 100.0)?;
        finite_in("top_p", self.top_p, 0.0, 1.0)?;
        finite_in("min_p", self.min_p, 0.0, 1.0)?;
        finite_in("repeat_penalty", self.repeat_penalty, 0.0, 10.0)?;
        finite_in("presence_penalty", self.presence_penalty, -2.0, 2.0)?;
        finite_in("frequency_penalty", self.frequency_penalty, -2.0, 2.0)?;
        if self.top_k < 0 || self.top_k > n_vocab {
            return Err(bad(
                "top_k",
                format!("must be from 0 to {n_vocab}, got {}", self.top_k),
            ));
        }
        if !(-1..=1 << 20).contains(&self.repeat_last_n) {
            return Err(bad("repeat_last_n", "must be from -1 to 1048576"));
        }
        if self.logit_bias.len() > 1024 {
            return Err(bad("logit_bias", "at most 1024 entries"));
        }
        for (t, b) in &self.logit_bias {
            if *t < 0 || *t >= n_vocab {
                return Err(bad(
                    "logit_bias",
                    format!("token {t} is not in the vocabulary (0..{n_vocab})"),
                ));
            }
            if !b.is_finite() || b.abs() > 100.0 {
                return Err(bad(
                    "logit_bias",
                    format!("bias {b} for token {t} must be from -100 to 100"),
                ));
            }
        }
        Ok(())
    }
}

/// One generation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GenerateRequest {
    /// The prompt.
    pub prompt: Prompt,
    /// Add the model's BOS token (when it uses one) to a text prompt.
    #[serde(default = "yes")]
    pub add_special: bool,
    /// How to generate.
    #[serde(flatten)]
    pub options: GenerateOptions,
}

fn yes() -> bool {
    true
}

impl GenerateRequest {
    /// A request for a text prompt with default sampling.
    pub fn text(prompt: &str) -> Self {
        GenerateRequest {
            prompt: Prompt::Text(prompt.to_string()),
            add_special: true,
            options: GenerateOptions::default(),
        }
    }

    /// Checks everything that does not need the model.
    pub fn validate(&self, n_vocab: i32) -> Result<(), EngineError> {
        let o = &self.options;
        o.sampling.validate(n_vocab)?;
        if let Prompt::Tokens(t) = &self.prompt {
            if let Some(bad_tok) = t.iter().find(|t| **t < 0 || **t >= n_vocab) {
                return Err(bad(
                    "prompt",
                    format!("token {bad_tok} is not in the vocabulary (0..{n_vocab})"),
                ));
            }
        }
        if o.stop.len() > 16 || o.stop.iter().any(|s| s.is_empty() || s.len() > 256) {
            return Err(bad(
                "stop",
                "at most 16 non-empty stop strings of up to 256 bytes",
            ));
        }
        if o.logprobs.is_some_and(|n| n > 20) {
            return Err(bad("logprobs", "at most 20 alternatives"));
        }
        if o.grammar.is_some() && o.json_schema.is_some() {
            return Err(bad("grammar", "give a grammar or a JSON schema, not both"));
        }
        Ok(())
    }
}

/// A chat message.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChatRequest {
    /// Messages as the template expects them (`role`, `content`, ...).
    pub messages: Vec<serde_json::Value>,
    /// Tools, passed to the template.
    #[serde(default)]
    pub tools: Option<serde_json::Value>,
    /// How to generate.
    #[serde(flatten)]
    pub options: GenerateOptions,
}

/// How to generate: everything of a request but its prompt.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct GenerateOptions {
    /// Sampling.
    #[serde(default)]
    pub sampling: SamplingParams,
    /// Most tokens to generate; clamped to the room left in the context.
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Stop strings; never emitted.
    #[serde(default)]
    pub stop: Vec<String>,
    /// Return this many top alternatives with each token's log-probability (0..=20).
    #[serde(default)]
    pub logprobs: Option<u32>,
    /// A GBNF grammar the output must follow.
    #[serde(default)]
    pub grammar: Option<String>,
    /// A JSON schema the output must follow (converted to a grammar).
    #[serde(default)]
    pub json_schema: Option<serde_json::Value>,
}

/// A token alternative with its log-probability.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenLogprob {
    /// Token ID.
    pub token: i32,
    /// Its text (lossy UTF-8).
    pub text: String,
    /// Natural log of its probability.
    pub logprob: f32,
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// End-of-generation token or a stop string.
    Stop,
    /// `max_tokens` or the context was reached.
    Length,
}

/// Token counts.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Prompt tokens that were already in the slot's cache.
    pub cached_tokens: u32,
    /// Generated tokens.
    pub completion_tokens: u32,
}

/// Time spent.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct Timings {
    /// Milliseconds from arrival to the first token.
    pub time_to_first_token_ms: f64,
    /// Milliseconds from arrival to the end.
    pub total_ms: f64,
    /// Generated tokens per second after the first.
    pub tokens_per_second: f64,
}

/// One line of a generation stream.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// New text (valid UTF-8; may be empty when a token only starts a character or may
    /// start a stop string).
    Token {
        /// Text to append.
        text: String,
        /// The token.
        token: i32,
        /// Its log-probability and the top alternatives, when asked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        logprobs: Option<(f32, Vec<TokenLogprob>)>,
    },
    /// The end.
    Done {
        /// Why.
        finish_reason: FinishReason,
        /// Counts.
        usage: Usage,
        /// Times.
        timings: Timings,
    },
    /// A failure; nothing follows.
    Error {
        /// What went wrong.
        message: String,
        /// For a prompt that does not fit: (prompt tokens, context tokens).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<(u32, u32)>,
        /// For an invalid request: the parameter at fault.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        param: Option<String>,
    },
}

impl Event {
    /// An error event that keeps what a client needs to answer with the right status.
    pub fn error(e: &EngineError) -> Event {
        let (context, param) = match e {
            EngineError::ContextLength { prompt, context } => (Some((*prompt, *context)), None),
            EngineError::InvalidParam { param, .. } => (None, Some(param.clone())),
            _ => (None, None),
        };
        let message = match e {
            EngineError::InvalidParam { message, .. } => message.clone(),
            other => other.to_string(),
        };
        Event::Error {
            message,
            context,
            param,
        }
    }

    /// A failure event from a plain message.
    pub fn failure(message: impl Into<String>) -> Event {
        Event::Error {
            message: message.into(),
            context: None,
            param: None,
        }
    }

    /// For an error event: the engine error it stands for (a rejected request keeps its
    /// kind; anything else is internal).
    pub fn as_error(&self) -> Option<EngineError> {
        match self {
            Event::Error {
                context: Some((prompt, context)),
                ..
            } => Some(EngineError::ContextLength {
                prompt: *prompt,
                context: *context,
            }),
            Event::Error {
                param: Some(param),
                message,
                ..
            } => Some(EngineError::InvalidParam {
                param: param.clone(),
                message: message.clone(),
            }),
            Event::Error { message, .. } => Some(EngineError::Internal(message.clone())),
            _ => None,
        }
    }

    /// Whether this error event rejects the request before any generation (the client
    /// should get a 4xx, not a broken stream).
    pub fn is_rejection(&self) -> bool {
        matches!(
            self,
            Event::Error {
                context: Some(_),
                ..
            } | Event::Error { param: Some(_), .. }
        )
    }
}

/// Tokenize request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenizeRequest {
    /// Text.
    pub content: String,
    /// Add BOS and similar.
    #[serde(default)]
    pub add_special: bool,
}

/// Detokenize request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DetokenizeRequest {
    /// Tokens.
    pub tokens: Vec<i32>,
}

/// Embeddings request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EmbedRequest {
    /// Inputs.
    pub input: Vec<Prompt>,
}

/// What the runner serves.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Props {
    /// Context tokens per slot.
    pub slot_context: u32,
    /// Parallel slots.
    pub slots: u32,
    /// Trained context of the model.
    pub trained_context: u32,
    /// Vocabulary size.
    pub n_vocab: i32,
    /// Embedding width.
    pub n_embd: i32,
    /// Parameters.
    pub n_params: u64,
    /// Bytes of weights.
    pub model_bytes: u64,
    /// Resident memory of the runner process, in bytes.
    pub rss_bytes: u64,
    /// Threads used for generation.
    pub threads: u32,
    /// Whether the runner computes embeddings (else completions).
    pub embeddings: bool,
    /// The chat template in use.
    pub chat_template: String,
    /// Text of the BOS token (for templates).
    pub bos_token: String,
    /// Text of the EOS token (for templates).
    pub eos_token: String,
}
