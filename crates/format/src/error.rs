//! Errors of the format crate.

use thiserror::Error;

/// Everything that can go wrong reading or building model artifacts.
#[derive(Debug, Error)]
pub enum FormatError {
    /// A digest that is not `sha256:` and 64 lowercase hex digits.
    #[error("invalid digest {input:?}: expected sha256: followed by 64 lowercase hex digits")]
    InvalidDigest {
        /// The offending text (truncated).
        input: String,
    },
    /// A model reference that does not parse.
    #[error("invalid reference {input:?}: {reason}")]
    InvalidReference {
        /// The offending text (truncated).
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A GGUF file that is malformed, with where the problem is.
    #[error("invalid GGUF at byte {offset}: {what}")]
    Gguf {
        /// Byte offset in the file where the problem was found.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// A GGUF file that parses but describes a model llama.cpp cannot run.
    #[error("the model cannot run: {0}")]
    Unrunnable(String),
    /// A manifest or config that does not parse or breaks a rule.
    #[error("invalid {what}: {reason}")]
    InvalidDocument {
        /// Which document ("manifest", "config").
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A media type we do not accept.
    #[error("unsupported media type {media_type:?} for {what}")]
    UnsupportedMediaType {
        /// The media type found.
        media_type: String,
        /// Where it was found.
        what: &'static str,
    },
    /// Bad packaging input (missing file, relative path, wrong combination of options).
    #[error("{0}")]
    Package(String),
    /// An I/O error with the path or operation it happened on.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl FormatError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        FormatError::Io {
            context: context.into(),
            source,
        }
    }
}
