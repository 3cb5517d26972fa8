//! The model's chat template: which one (the bundle's file, else the GGUF's own, else
//! ChatML), its family (how it writes tool calls and reasoning), and turning a
//! conversation into the prompt a generation feeds and the way its output is read.

use std::path::Path;

use modelrunner_chat::{adapt_messages, generic_instructions, template_vars, Family, Format, Tool};
use modelrunner_protocol::{Chat, Props, ReasoningFormat, RunnerError, ToolChoice};
use modelrunner_template::{ChatTemplate, FALLBACK_TEMPLATE};
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::worker::ToolCalls;

/// A compiled template with the model's special tokens.
pub(crate) struct Template {
    template: ChatTemplate,
    source: String,
    family: Family,
    bos: String,
    eos: String,
}

/// A conversation ready to generate from.
pub(crate) struct Rendered {
    pub prompt: String,
    /// Whether the tokenizer should still add BOS (not when the template wrote it).
    pub add_special: bool,
    /// How to read the output; `None` when it is plain text.
    pub format: Option<Format>,
    /// The tools the grammar holds calls to.
    pub tools: Option<ToolCalls>,
}

fn choice(c: &ToolChoice) -> modelrunner_chat::Choice {
    use modelrunner_chat::Choice as C;
    match c {
        ToolChoice::Auto => C::Auto,
        ToolChoice::None => C::None,
        ToolChoice::Required => C::Required,
        ToolChoice::Function { name } => C::Function(name.clone()),
    }
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
        let (template, source) = match ChatTemplate::new(&source) {
            Ok(t) => (t, source),
            Err(e) => {
                warn!(cause = %e, "the model's chat template does not compile; using ChatML");
                let t = ChatTemplate::new(FALLBACK_TEMPLATE)
                    .map_err(|e| RunnerError::internal(e.to_string()))?;
                (t, FALLBACK_TEMPLATE.to_string())
            }
        };
        let family = Family::detect(&source);
        info!(family = family.name(), "chat template family");
        Ok(Template {
            template,
            family,
            source,
            bos: props.bos_token.clone(),
            eos: props.eos_token.clone(),
        })
    }

    /// The template's family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The markers whose special tokens must be read as text (so the output's calls and
    /// reasoning can be found in it).
    pub fn markers(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .family
            .syntax()
            .map(|s| s.markers().into_iter().map(str::to_string).collect())
            .unwrap_or_default();
        if let Some(r) = self.family.reasoning(&self.source) {
            out.extend([r.open.to_string(), r.close.to_string()]);
        }
        out.extend(self.family.content_markers().iter().map(|m| m.to_string()));
        if self.family == Family::GptOss {
            for m in [
                "<|channel|>",
                "<|message|>",
                "<|constrain|>",
                "<|end|>",
                "<|start|>",
            ] {
                out.push(m.to_string());
            }
        }
        out
    }

    /// The prompt of a conversation, and how to read the generation's output.
    pub fn render(&self, chat: &Chat) -> Result<Rendered, RunnerError> {
        let tools = chat
            .tools
            .as_ref()
            .map(Tool::from_openai)
            .unwrap_or_default();
        let calls = !tools.is_empty() && chat.tool_choice != ToolChoice::None;
        let mut messages = adapt_messages(self.family, &chat.messages);
        if calls && self.family == Family::Generic {
            let text = generic_instructions(&tools, chat.parallel_tool_calls);
            match messages.first_mut() {
                Some(m) if m["role"] == "system" => {
                    let old = m["content"].as_str().unwrap_or_default();
                    m["content"] = Value::String(format!("{old}\n\n{text}"));
                }
                _ => messages.insert(0, json!({"role": "system", "content": text})),
            }
        }
        let now = chrono::Local::now();
        let mut ctx = json!({
            "messages": messages,
            "add_generation_prompt": chat.add_generation_prompt,
            "bos_token": self.bos,
            "eos_token": self.eos,
        });
        if let Some(t) = &chat.tools {
            ctx["tools"] = t.clone();
        }
        if let Value::Object(m) = &mut ctx {
            let vars = template_vars(
                self.family,
                chat.tools.as_ref(),
                &now.format("%b %d %Y %H:%M:%S GMT").to_string(),
            );
            for (k, v) in vars.into_iter().chain(chat.template_kwargs.clone()) {
                m.insert(k, v);
            }
        }
        let prompt = self
            .template
            .render(&ctx)
            .map_err(|e| RunnerError::Template {
                message: e.to_string(),
            })?;
        let add_special = self.bos.is_empty() || !prompt.starts_with(&self.bos);
        let reasoning = match chat.reasoning_format {
            ReasoningFormat::Auto => self.family.reasoning(&self.source),
            ReasoningFormat::None => None,
        };
        let end = prompt.trim_end();
        // A prompt that ends with an empty reasoning block has thinking switched off
        // (`enable_thinking: false`); one that ends with the opening tag starts inside it.
        let reasoning = reasoning.filter(|r| !end.ends_with(r.close));
        let forced_open = reasoning.is_some_and(|r| end.ends_with(r.open));
        let reads = calls || reasoning.is_some() || self.family == Family::GptOss;
        let format = reads.then(|| Format {
            reasoning,
            forced_open,
            calls,
            param_types: tools
                .iter()
                .map(|t| (t.name.clone(), t.param_types()))
                .collect(),
            ..Format::for_family(self.family, &self.source)
        });
        Ok(Rendered {
            prompt,
            add_special,
            format,
            tools: calls.then(|| ToolCalls {
                tools,
                choice: choice(&chat.tool_choice),
                parallel: chat.parallel_tool_calls,
            }),
        })
    }
}
