//! The one event stream of a generation, and the answers of the runner's other calls.

use serde::{Deserialize, Serialize};

use crate::error::RunnerError;
use crate::launch::Mode;
use crate::request::{Chat, Prompt};

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

/// A generated token's log-probability and the most likely alternatives.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Logprob {
    /// Natural log of the chosen token's probability.
    pub logprob: f32,
    /// The most likely tokens, best first.
    pub top: Vec<TokenLogprob>,
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// End-of-generation token or a stop string.
    Stop,
    /// `max_tokens` or the context was reached.
    Length,
    /// The model called tools.
    ToolCalls,
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

impl std::ops::AddAssign for Usage {
    fn add_assign(&mut self, o: Usage) {
        self.prompt_tokens += o.prompt_tokens;
        self.cached_tokens += o.cached_tokens;
        self.completion_tokens += o.completion_tokens;
    }
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

/// One event of a generation stream: tokens, then `Done`; or `Error`, after which
/// nothing follows.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A generated token and the text it completes (valid UTF-8; may be empty when the
    /// token only starts a character or may start a stop string).
    Token {
        /// Text to append.
        text: String,
        /// The token.
        token: i32,
        /// Its log-probability and the top alternatives, when asked.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        logprobs: Option<Logprob>,
    },
    /// The prompt is read and the first token is coming: the prompt's counts, for
    /// dialects that report them before any text (sent once, before the first token).
    Started {
        /// Tokens of the prompt.
        prompt_tokens: u32,
        /// Of them, reused from the slot's cache.
        cached_tokens: u32,
    },
    /// More of the model's reasoning.
    Reasoning {
        /// Text to append.
        text: String,
    },
    /// A tool call, or more of one: the first event of call `index` has its id and
    /// name, later ones only more of the arguments.
    ToolCall {
        /// Which call of this generation (0, 1, ...).
        index: usize,
        /// The call's id (first event only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The function (first event only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// More of the arguments' JSON text.
        arguments: String,
    },
    /// The end.
    Done {
        /// Why.
        finish_reason: FinishReason,
        /// The stop string that ended it, when one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stop: Option<String>,
        /// Counts.
        usage: Usage,
        /// Times.
        timings: Timings,
    },
    /// A failure; nothing follows.
    Error {
        /// What went wrong.
        error: RunnerError,
    },
}

impl Event {
    /// One NDJSON line.
    pub fn to_line(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("events serialise");
        line.push(b'\n');
        line
    }

    /// Reads a line back; a line that is not an event becomes an error event.
    pub fn from_line(line: &[u8]) -> Event {
        serde_json::from_slice(line).unwrap_or_else(|e| Event::Error {
            error: RunnerError::internal(format!("bad event from the runner: {e}")),
        })
    }

    /// Whether nothing follows this event.
    pub fn is_last(&self) -> bool {
        matches!(self, Event::Done { .. } | Event::Error { .. })
    }
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
    /// What the runner computes.
    pub mode: Mode,
    /// The chat template in use.
    pub chat_template: String,
    /// Its family: how it writes tool calls and reasoning (`hermes`, `llama3`, ...).
    #[serde(default)]
    pub chat_format: String,
    /// Text of the BOS token (for templates).
    pub bos_token: String,
    /// Text of the EOS token (for templates).
    pub eos_token: String,
}

/// `tokenize`: text into token IDs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenizeRequest {
    /// Text.
    pub content: String,
    /// Add BOS and similar.
    #[serde(default)]
    pub add_special: bool,
    /// A conversation to tokenize instead, rendered and tokenized exactly as a
    /// generation would take it (`content` and `add_special` are then unused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat: Option<Box<Chat>>,
}

/// `embed`: inputs to embed (embedding mode).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EmbedRequest {
    /// Inputs.
    pub input: Vec<Prompt>,
}

/// One input's embedding.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Embedding {
    /// A unit vector.
    pub embedding: Vec<f32>,
    /// Tokens of the input.
    pub tokens: u32,
}

/// `rerank`: documents to score against a query (reranking mode).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RerankRequest {
    /// The query.
    pub query: String,
    /// The documents, scored in this order.
    pub documents: Vec<String>,
}

/// One document's relevance to the query.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Score {
    /// The model's score (its classification head's first output).
    pub score: f32,
    /// Tokens of the query and document pair as the model read it.
    pub tokens: u32,
}

/// The answers of the calls that are not streams.
pub(crate) mod answers {
    use super::*;

    #[derive(Debug, Serialize, Deserialize)]
    pub struct Tokens {
        pub tokens: Vec<i32>,
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub struct Detokenize {
        pub tokens: Vec<i32>,
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub struct Content {
        pub content: String,
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub struct Rendered {
        pub prompt: String,
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub struct Embeddings {
        pub data: Vec<Embedding>,
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub struct Scores {
        pub data: Vec<Score>,
    }

    #[derive(Debug, Serialize, Deserialize)]
    pub struct Health {
        pub status: String,
    }

    /// `apply-template`'s body is a [`Chat`].
    pub type Template = Chat;
}
