//! Errors of model scheduling.

use modelrunner_format::gguf::format_bytes;
use modelrunner_protocol::RunnerError;
use thiserror::Error;

fn mib(b: &u64) -> String {
    format_bytes(*b)
}

/// Everything that can go wrong getting a model to serve a request.
#[derive(Debug, Error)]
pub enum SchedulerError {
    /// The model would not fit in memory, even after unloading idle models.
    #[error(
        "not enough {} to load {model}: it needs about {} ({}), but only {} {} ({} held by models that are in use)",
        if *gpu { "GPU memory" } else { "memory" }, mib(need), breakdown, mib(available),
        if *gpu { "is free on the GPU" } else if limit.is_some() { "is left within the configured memory limit" } else { "is available" },
        mib(in_use)
    )]
    InsufficientMemory {
        /// The model.
        model: String,
        /// Estimated bytes.
        need: u64,
        /// What the estimate is made of.
        breakdown: String,
        /// Bytes that could be given.
        available: u64,
        /// Bytes held by busy runners.
        in_use: u64,
        /// The configured limit, if any.
        limit: Option<u64>,
        /// Whether GPU memory (not host memory) is what is short.
        gpu: bool,
    },
    /// The model's queue is full.
    #[error("{model} is busy: {slots} requests are running and {queued} are queued; retry later")]
    Busy {
        /// The model.
        model: String,
        /// Parallel slots.
        slots: u32,
        /// Queue capacity.
        queued: usize,
    },
    /// The runner failed to start or load the model.
    #[error("unable to load runner for {model}: {message}")]
    LoadFailed {
        /// The model.
        model: String,
        /// Why.
        message: String,
    },
    /// Reading the model failed.
    #[error("cannot read the model: {0}")]
    Load(String),
    /// A runtime setting is invalid.
    #[error("invalid {param}: {message}")]
    InvalidSettings {
        /// Which setting.
        param: String,
        /// What is wrong.
        message: String,
    },
    /// The model's runner is serving requests, so it cannot be reconfigured now.
    #[error("{model} is in use; reconfigure it when its requests have finished")]
    InUse {
        /// The model.
        model: String,
    },
    /// The daemon is stopping.
    #[error("the daemon is shutting down")]
    ShuttingDown,
    /// The runner refused or failed a request (or a setting was out of range).
    #[error(transparent)]
    Runner(#[from] RunnerError),
    /// A file of the scheduler could not be written or read.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl SchedulerError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        SchedulerError::Io {
            context: context.into(),
            source,
        }
    }
}
