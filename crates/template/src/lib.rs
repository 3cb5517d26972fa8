//! Chat templates: renders a model's Jinja chat template the way Hugging Face transformers
//! does (`trim_blocks`, `lstrip_blocks`, loop controls, `tojson` without ASCII escaping,
//! `raise_exception`, `strftime_now`, `{% generation %}` blocks, Python string and dict
//! methods, `Markup`'s escaping under `+`), inside a sandbox: bounded fuel, recursion and output size, so a hostile
//! template fails cleanly.
//!
//! ```
//! use modelrunner_template::{ChatTemplate, FALLBACK_TEMPLATE};
//! let t = ChatTemplate::new(FALLBACK_TEMPLATE).unwrap();
//! let ctx = serde_json::json!({
//!     "messages": [{"role": "user", "content": "Hi"}],
//!     "add_generation_prompt": true,
//! });
//! let text = t.render(&ctx).unwrap();
//! assert_eq!(text, "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
//! ```
#![deny(missing_docs)]

mod error;
mod filters;
mod markup;
mod rewrite;

use chrono::NaiveDateTime;
use minijinja::{Environment, UndefinedBehavior};

pub use error::TemplateError;

/// ChatML, used (with a warning in the log) for models that ship no template.
pub const FALLBACK_TEMPLATE: &str = "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

/// Limits on one render.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Fuel: roughly the number of template instructions executed.
    pub fuel: u64,
    /// Largest rendered output, in bytes.
    pub max_output: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: 5_000_000,
            max_output: 64 << 20,
        }
    }
}

/// A compiled chat template.
pub struct ChatTemplate {
    env: Environment<'static>,
    limits: Limits,
}

const NAME: &str = "chat_template";

impl ChatTemplate {
    /// Compiles a template with default limits.
    pub fn new(source: &str) -> Result<Self, TemplateError> {
        Self::with_limits(source, Limits::default())
    }

    /// Compiles a template with the given limits.
    pub fn with_limits(source: &str, limits: Limits) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .expect("valid syntax config"),
        );
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.set_fuel(Some(limits.fuel));
        env.set_recursion_limit(100);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        filters::install(&mut env);
        env.add_function(markup::ADD, markup::add);
        let mut source = rewrite::rewrite(source);
        if markup::makes_safe_strings(&source) {
            source = markup::rewrite(&source);
        }
        env.add_template_owned(NAME.to_string(), source)
            .map_err(TemplateError::from_minijinja)?;
        Ok(ChatTemplate { env, limits })
    }

    /// Renders with `ctx` (messages, tools, add_generation_prompt, bos_token, ...) at the
    /// current time.
    pub fn render(&self, ctx: &serde_json::Value) -> Result<String, TemplateError> {
        self.render_at(ctx, chrono::Local::now().naive_local())
    }

    /// Renders with `strftime_now` fixed at `now`.
    pub fn render_at(
        &self,
        ctx: &serde_json::Value,
        now: NaiveDateTime,
    ) -> Result<String, TemplateError> {
        let mut env = self.env.clone();
        env.add_function(
            "strftime_now",
            move |fmt: String| -> Result<String, minijinja::Error> { filters::strftime(now, &fmt) },
        );
        let tmpl = env
            .get_template(NAME)
            .map_err(TemplateError::from_minijinja)?;
        let mut out = filters::BoundedWriter::new(self.limits.max_output);
        let ctx = <minijinja::Value as serde::Deserialize>::deserialize(ctx)
            .map_err(|e| TemplateError::Render(format!("context: {e}")))?;
        tmpl.render_captured_to(ctx, &mut out)
            .map(|_| ())
            .map_err(|e| {
                if out.overflowed() {
                    TemplateError::TooLarge {
                        limit: self.limits.max_output,
                    }
                } else {
                    TemplateError::from_minijinja(e)
                }
            })?;
        Ok(out.into_string())
    }
}
