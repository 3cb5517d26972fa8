//! The model's chat template: which one (the bundle's file, else the GGUF's own, else
//! ChatML), and rendering a conversation into the prompt a generation feeds.

use std::path::Path;

use modelrunner_protocol::{Chat, Props, RunnerError};
use modelrunner_template::{ChatTemplate, FALLBACK_TEMPLATE};
use serde_json::{json, Value};
use tracing::warn;

/// A compiled template with the model's special tokens.
pub(crate) struct Template {
    template: ChatTemplate,
    bos: String,
    eos: String,
}

impl Template {
    /// The bundle's template file when given, else the model's own, else ChatML (with a
    /// warning); a template that does not compile also falls back to ChatML.
    pub fn choose(file: Option<&Path>, props: &Props) -> Result<Template, RunnerError> {
        let source = match file {
            Some(p) => std::fs::read_to_string(p).map_err(|e| {
                warn!(path = %p.display(), cause = %e, "cannot read the chat template");
                RunnerError::Load {
                    message: format!("cannot read the model's chat template: {e}"),
                }
            })?,
            None if !props.chat_template.is_empty() => props.chat_template.clone(),
            None => {
                warn!("the model has no chat template; using ChatML");
                FALLBACK_TEMPLATE.to_string()
            }
        };
        let template = ChatTemplate::new(&source).or_else(|e| {
            warn!(cause = %e, "the model's chat template does not compile; using ChatML");
            ChatTemplate::new(FALLBACK_TEMPLATE)
        });
        Ok(Template {
            template: template.map_err(|e| RunnerError::internal(e.to_string()))?,
            bos: props.bos_token.clone(),
            eos: props.eos_token.clone(),
        })
    }

    /// The prompt, and whether the tokenizer should still add BOS (not when the template
    /// already wrote it).
    pub fn render(&self, chat: &Chat) -> Result<(String, bool), RunnerError> {
        let mut ctx = json!({
            "messages": chat.messages,
            "add_generation_prompt": chat.add_generation_prompt,
            "bos_token": self.bos,
            "eos_token": self.eos,
        });
        if let Some(t) = &chat.tools {
            ctx["tools"] = t.clone();
        }
        if let Value::Object(m) = &mut ctx {
            for (k, v) in &chat.template_kwargs {
                m.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let prompt = self
            .template
            .render(&ctx)
            .map_err(|e| RunnerError::Template {
                message: e.to_string(),
            })?;
        let add_special = self.bos.is_empty() || !prompt.starts_with(&self.bos);
        Ok((prompt, add_special))
    }
}
