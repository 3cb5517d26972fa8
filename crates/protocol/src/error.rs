//! The one error type of the runner protocol and its one encoding. Both ends use it: the
//! runner answers a failed call with `{"error": <RunnerError>}` and the status of
//! [`RunnerError::status`], a failed generation ends with an [`crate::Event::Error`]
//! holding the same value, and the client reads both back without losing a field.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Everything that can go wrong running a model, as both ends of the socket see it.
#[derive(Debug, Clone, PartialEq, Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunnerError {
    /// A request parameter is invalid.
    #[error("invalid {param}: {message}")]
    InvalidParam {
        /// Which parameter (the internal request's name for it).
        param: String,
        /// What is wrong.
        message: String,
    },
    /// The prompt does not fit the context.
    #[error("the prompt has {}{prompt} tokens but the context holds {context}", if *at_least { "at least " } else { "" })]
    ContextLength {
        /// Prompt tokens.
        prompt: u32,
        /// Context tokens per slot.
        context: u32,
        /// `prompt` is a lower bound: the prompt was refused by its length in bytes,
        /// before it was tokenized.
        #[serde(default)]
        at_least: bool,
    },
    /// The chat template failed on these messages.
    #[error("the chat template failed on these messages: {message}")]
    Template {
        /// The template's own message.
        message: String,
    },
    /// The runner's queue is full.
    #[error("the model is busy; {queued} requests are queued")]
    Busy {
        /// Requests waiting.
        queued: usize,
    },
    /// The model or its context could not be loaded.
    #[error("cannot load the model: {message}")]
    Load {
        /// Why, in words.
        message: String,
    },
    /// The runner could not be reached (not started yet, or gone between requests).
    #[error("the runner cannot be reached: {message}")]
    Unreachable {
        /// The transport's message.
        message: String,
    },
    /// The runner stopped while serving the request (a crash, a kill).
    #[error("the runner stopped: {message}")]
    Interrupted {
        /// What was seen.
        message: String,
    },
    /// A bug, or an unexpected llama.cpp failure.
    #[error("internal engine error: {message}")]
    Internal {
        /// What went wrong.
        message: String,
    },
}

/// The JSON body of a failed call.
#[derive(Debug, Serialize, Deserialize)]
struct Body {
    error: RunnerError,
}

impl RunnerError {
    /// An [`RunnerError::InvalidParam`].
    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        RunnerError::InvalidParam {
            param: param.to_string(),
            message: message.into(),
        }
    }

    /// An [`RunnerError::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        RunnerError::Internal {
            message: message.into(),
        }
    }

    /// The HTTP status the runner answers with.
    pub fn status(&self) -> u16 {
        match self {
            RunnerError::InvalidParam { .. }
            | RunnerError::ContextLength { .. }
            | RunnerError::Template { .. } => 400,
            RunnerError::Busy { .. } => 503,
            _ => 500,
        }
    }

    /// Whether the request was refused for what it asks (a client error), as opposed to
    /// a failure of the runner.
    pub fn is_rejection(&self) -> bool {
        self.status() == 400
    }

    /// Whether a fresh runner could serve the request: this one could not be reached,
    /// or stopped before answering.
    pub fn is_runner_gone(&self) -> bool {
        matches!(
            self,
            RunnerError::Unreachable { .. } | RunnerError::Interrupted { .. }
        )
    }

    /// The body of a failed call.
    pub fn to_body(&self) -> Vec<u8> {
        serde_json::to_vec(&Body {
            error: self.clone(),
        })
        .expect("errors serialise")
    }

    /// Reads a failed call's body back; a body that is not ours becomes
    /// [`RunnerError::Internal`] with its text.
    pub fn from_body(status: u16, body: &[u8]) -> Self {
        match serde_json::from_slice::<Body>(body) {
            Ok(b) => b.error,
            Err(_) => RunnerError::internal(format!(
                "the runner answered {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(512)])
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_survives_the_wire() {
        let all = [
            RunnerError::invalid("temperature", "must be from 0 to 2"),
            RunnerError::ContextLength {
                prompt: 9000,
                context: 2048,
                at_least: true,
            },
            RunnerError::Template {
                message: "boom".into(),
            },
            RunnerError::Busy { queued: 17 },
            RunnerError::Load {
                message: "bad".into(),
            },
            RunnerError::Unreachable {
                message: "refused".into(),
            },
            RunnerError::Interrupted {
                message: "eof".into(),
            },
            RunnerError::internal("decode failed"),
        ];
        for e in all {
            assert_eq!(RunnerError::from_body(e.status(), &e.to_body()), e);
        }
        let odd = RunnerError::from_body(502, b"<html>bad gateway</html>");
        assert!(odd.to_string().contains("502") && odd.to_string().contains("bad gateway"));
    }
}
