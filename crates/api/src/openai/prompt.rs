//! `prompt` and embeddings' `input`: the shapes a prompt list comes in.

use modelrunner_protocol::Prompt;
use serde::Deserialize;

use crate::ApiError;

/// `prompt` (and embeddings' `input`): a text, a token list, or several prompts each a
/// text or a token list (llama-server takes them mixed in one list).
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "a string, a list of token IDs, or a list of strings and token ID lists (text and token IDs are not mixed within one prompt)"
)]
pub(crate) enum PromptInput {
    Text(String),
    Many(Vec<OnePrompt>),
    Tokens(Vec<i64>),
}

/// One of several prompts.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum OnePrompt {
    Text(String),
    Tokens(Vec<i64>),
}

impl PromptInput {
    /// The prompts; `param` names the field in errors.
    pub(crate) fn prompts(&self, param: &str) -> Result<Vec<Prompt>, ApiError> {
        let tokens = |list: &[i64]| -> Result<Vec<i32>, ApiError> {
            list.iter()
                .map(|t| {
                    i32::try_from(*t)
                        .map_err(|_| ApiError::invalid(param, format!("token {t} is out of range")))
                })
                .collect()
        };
        Ok(match self {
            PromptInput::Text(t) => vec![Prompt::Text(t.clone())],
            PromptInput::Tokens(t) => vec![Prompt::Tokens(tokens(t)?)],
            PromptInput::Many(v) => v
                .iter()
                .map(|p| match p {
                    OnePrompt::Text(t) => Ok(Prompt::Text(t.clone())),
                    OnePrompt::Tokens(t) => tokens(t).map(Prompt::Tokens),
                })
                .collect::<Result<_, _>>()?,
        })
    }
}
