//! Errors of the engine.

use thiserror::Error;

/// Everything that can go wrong running a model.
#[derive(Debug, Error)]
pub enum EngineError {
    /// A request parameter is invalid.
    #[error("invalid {param}: {message}")]
    InvalidParam {
        /// Which parameter.
        param: String,
        /// What is wrong.
        message: String,
    },
    /// The prompt does not fit the context.
    #[error("the prompt has {prompt} tokens but the context holds {context}")]
    ContextLength {
        /// Prompt tokens.
        prompt: u32,
        /// Context tokens per slot.
        context: u32,
    },
    /// The model or context could not be loaded.
    #[error("cannot load the model: {0}")]
    Load(String),
    /// The chat template failed.
    #[error(transparent)]
    Template(#[from] modelrunner_template::TemplateError),
    /// The queue is full.
    #[error("the model is busy; {queued} requests are queued")]
    Busy {
        /// Requests waiting.
        queued: usize,
    },
    /// The engine thread or runner process is gone.
    #[error("the engine stopped: {0}")]
    Stopped(String),
    /// Talking to the runner failed.
    #[error("runner: {0}")]
    Runner(String),
    /// A bug or an unexpected llama.cpp failure.
    #[error("internal engine error: {0}")]
    Internal(String),
}
