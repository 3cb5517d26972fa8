//! Errors of chat template rendering.

use thiserror::Error;

/// Why a template could not be compiled or rendered.
#[derive(Debug, Error)]
pub enum TemplateError {
    /// The template called `raise_exception`: it refuses this conversation.
    #[error("the chat template refused the conversation: {0}")]
    Raised(String),
    /// Syntax error in the template.
    #[error("chat template syntax error: {0}")]
    Syntax(String),
    /// The template ran too long (out of fuel) or recursed too deep.
    #[error("chat template exceeded its limits: {0}")]
    Limit(String),
    /// The output grew past the limit.
    #[error("chat template output exceeded {limit} bytes")]
    TooLarge {
        /// The limit.
        limit: usize,
    },
    /// Any other rendering failure.
    #[error("chat template failed: {0}")]
    Render(String),
}

impl TemplateError {
    pub(crate) fn from_minijinja(e: minijinja::Error) -> Self {
        use minijinja::ErrorKind as K;
        let detail = match e.detail() {
            Some(d) => d.to_string(),
            None => e.to_string(),
        };
        match e.kind() {
            K::SyntaxError => TemplateError::Syntax(e.to_string()),
            K::OutOfFuel => TemplateError::Limit("out of fuel".into()),
            K::InvalidOperation if detail.starts_with("raise_exception: ") => {
                TemplateError::Raised(detail.trim_start_matches("raise_exception: ").to_string())
            }
            _ if detail.contains("recursion") => TemplateError::Limit(detail),
            _ => TemplateError::Render(e.to_string()),
        }
    }
}
