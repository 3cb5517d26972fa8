//! Slots: each holds one sequence's KV cache and, while it serves a request, that
//! request's state. Queued requests go to the free slot whose cache shares the longest
//! prefix with their prompt.

use std::time::Instant;

use llama_cpp_2::token::LlamaToken;
use modelrunner_chat::{Constraint, OutputReader};
use modelrunner_protocol::{Event, RunnerError};
use tokio::sync::mpsc::UnboundedSender;
use tracing::debug;

use super::{Generation, Loop};
use crate::sampler;
use crate::text::{StopMatcher, Utf8Decoder};

/// A request being served.
pub(super) struct Active {
    pub events: UnboundedSender<Event>,
    pub arrived: Instant,
    pub first_token: Option<Instant>,
    pub prompt: Vec<LlamaToken>,
    /// Prompt tokens already fed (the rest still to go).
    pub fed: usize,
    pub next: Option<LlamaToken>,
    pub sampler: sampler::Sampler,
    pub decoder: Utf8Decoder,
    pub stops: StopMatcher,
    pub generated: u32,
    pub max_new: u32,
    pub cached: u32,
    pub logprobs: Option<u32>,
    /// Index in the current batch whose logits belong to this slot.
    pub batch_idx: Option<i32>,
    /// Reads reasoning and calls out of the text; `None` passes it on as it is.
    pub reader: Option<OutputReader>,
}

pub(super) struct Slot {
    pub id: i32,
    /// Tokens in this slot's KV cache, in position order.
    pub cache: Vec<LlamaToken>,
    pub active: Option<Active>,
    pub last_used: Instant,
}

impl Slot {
    pub fn new(id: i32) -> Slot {
        Slot {
            id,
            cache: Vec::new(),
            active: None,
            last_used: Instant::now(),
        }
    }
}

/// A JSON schema as GBNF, by llama.cpp's converter.
fn schema_grammar(schema: &serde_json::Value) -> Result<String, String> {
    llama_cpp_2::json_schema_to_grammar(&schema.to_string()).map_err(|e| e.to_string())
}

fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// A request checked against the model, ready for a slot.
struct Prepared {
    prompt: Vec<LlamaToken>,
    sampler: sampler::Sampler,
    max_new: u32,
}

impl Loop<'_> {
    /// Gives queued requests to free slots, preferring the slot whose cache shares the
    /// longest prefix with the prompt, then the least recently used.
    pub(super) fn assign(&mut self) {
        while self.slots.iter().any(|s| s.active.is_none()) {
            let Some(g) = self.queue.pop_front() else {
                return;
            };
            if g.events.is_closed() {
                continue;
            }
            let p = match self.prepare(&g) {
                Ok(p) => p,
                Err(error) => {
                    let _ = g.events.send(Event::Error { error });
                    continue;
                }
            };
            let best = self
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.active.is_none())
                .max_by_key(|(_, s)| {
                    (
                        common_prefix(&s.cache, &p.prompt),
                        std::cmp::Reverse(s.last_used),
                    )
                })
                .map(|(i, _)| i)
                .expect("a free slot");
            let slot = &mut self.slots[best];
            // Reuse the shared prefix, but always feed at least one token so the last
            // prompt position has logits.
            let keep = common_prefix(&slot.cache, &p.prompt).min(p.prompt.len() - 1);
            slot.cache.truncate(keep);
            debug!(
                slot = slot.id,
                keep,
                prompt = p.prompt.len(),
                "request assigned"
            );
            let Generation {
                options,
                events,
                arrived,
                format,
                ..
            } = *g;
            slot.active = Some(Active {
                events,
                arrived,
                first_token: None,
                fed: keep,
                cached: keep as u32,
                prompt: p.prompt,
                next: None,
                sampler: p.sampler,
                decoder: Utf8Decoder::default(),
                stops: StopMatcher::new(options.stop),
                generated: 0,
                max_new: p.max_new,
                logprobs: options.logprobs,
                batch_idx: None,
                reader: format.map(OutputReader::new),
            });
            slot.last_used = Instant::now();
        }
    }

    /// What only the model can check (token IDs, the prompt's length against the
    /// context, the grammar); everything else was checked where the request entered.
    fn prepare(&self, g: &Generation) -> Result<Prepared, RunnerError> {
        let bias: Vec<i32> = g.options.sampling.logit_bias.iter().map(|b| b.0).collect();
        self.check_vocab("logit_bias", &bias)?;
        if let modelrunner_protocol::Prompt::Tokens(t) = &g.prompt {
            self.check_vocab("prompt", t)?;
        }
        self.check_fits(&g.prompt, self.slot_ctx)?;
        let prompt = self.tokens(&g.prompt, g.add_special, true);
        if prompt.is_empty() {
            return Err(RunnerError::invalid("prompt", "the prompt is empty"));
        }
        if prompt.len() >= self.slot_ctx as usize {
            return Err(RunnerError::ContextLength {
                prompt: prompt.len() as u32,
                context: self.slot_ctx,
                at_least: false,
            });
        }
        let room = self.slot_ctx - prompt.len() as u32;
        let o = &g.options;
        let max_new = o.max_tokens.map_or(room, |m| m.min(room));
        let own = match (&o.grammar, &o.json_schema) {
            (Some(g), _) => Some(g.clone()),
            (None, Some(schema)) => Some(schema_grammar(schema).map_err(|e| {
                RunnerError::invalid("json_schema", format!("cannot convert the schema: {e}"))
            })?),
            (None, None) => None,
        };
        let calls = match (&g.tools, &g.format) {
            (Some(t), Some(f)) => {
                let convert = |v: &serde_json::Value| schema_grammar(v);
                modelrunner_chat::build_grammar(f, &t.tools, &t.choice, t.parallel, &convert)
                    .map_err(|e| RunnerError::invalid(&e.param, e.message))?
            }
            _ => None,
        };
        // Which parameter the grammar came from, to name it if llama.cpp refuses it.
        let source = match (&o.grammar, &calls) {
            (_, Some(_)) => "tools",
            (Some(_), None) => "grammar",
            (None, None) => "json_schema",
        };
        let constraint = match (own, calls) {
            (Some(_), Some(_)) => {
                return Err(RunnerError::invalid(
                    "response_format",
                    "a grammar or JSON schema cannot be combined with tools",
                ))
            }
            (Some(grammar), None) => Some(Constraint {
                grammar,
                lazy: false,
                triggers: Vec::new(),
            }),
            (None, calls) => calls,
        };
        let sampler = sampler::build(self.model, &o.sampling, constraint.as_ref(), source)?;
        Ok(Prepared {
            prompt,
            sampler,
            max_new,
        })
    }
}
