//! One decode step over every active slot, then one sampled token per slot whose logits
//! the step computed.

use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::token::LlamaToken;
use modelrunner_protocol::{Event, FinishReason, RunnerError, Timings, Usage};
use tracing::{debug, warn};

use super::Loop;
use crate::sampler;
use crate::text::StopOutcome;

/// The reasoning and call events of a delta (its content goes in the token's event).
fn send_delta(
    events: &tokio::sync::mpsc::UnboundedSender<Event>,
    reasoning: String,
    calls: Vec<modelrunner_chat::CallDelta>,
) {
    if !reasoning.is_empty() {
        let _ = events.send(Event::Reasoning { text: reasoning });
    }
    for c in calls {
        let (id, name) = c.head.map_or((None, None), |(i, n)| (Some(i), Some(n)));
        let _ = events.send(Event::ToolCall {
            index: c.index,
            id,
            name,
            arguments: c.arguments,
        });
    }
}

impl Loop<'_> {
    /// Builds one batch (first the next token of every generating slot, then prompt
    /// chunks up to the batch size), decodes it, and samples.
    pub(super) fn step(&mut self, ctx: &mut LlamaContext<'_>) {
        self.batch.clear();
        // Cancelled requests (client gone) free their slot before the step.
        for slot in &mut self.slots {
            if slot.active.as_ref().is_some_and(|a| a.events.is_closed()) {
                debug!(slot = slot.id, "request cancelled");
                slot.active = None;
            }
        }
        let mut n = 0usize;
        // Running streams first, so they keep producing while prompts are ingested.
        for slot in &mut self.slots {
            let Some(a) = slot.active.as_mut() else {
                continue;
            };
            a.batch_idx = None;
            if let Some(t) = a.next.take() {
                let pos = slot.cache.len() as i32;
                if self.batch.add(t, pos, &[slot.id], true).is_ok() {
                    slot.cache.push(t);
                    a.batch_idx = Some(n as i32);
                    n += 1;
                } else {
                    a.next = Some(t);
                }
            }
        }
        for slot in &mut self.slots {
            let Some(a) = slot.active.as_mut() else {
                continue;
            };
            if a.fed >= a.prompt.len() || n >= self.batch_size {
                continue;
            }
            let take = (a.prompt.len() - a.fed).min(self.batch_size - n);
            for i in a.fed..a.fed + take {
                let last = i + 1 == a.prompt.len();
                let pos = slot.cache.len() as i32;
                self.batch
                    .add(a.prompt[i], pos, &[slot.id], last)
                    .expect("room was counted");
                slot.cache.push(a.prompt[i]);
                if last {
                    a.batch_idx = Some(n as i32);
                }
                n += 1;
            }
            if a.fed == a.cached as usize {
                // First chunk: drop whatever the cache held beyond the reused prefix.
                let _ = ctx.clear_kv_cache_seq(Some(slot.id as u32), Some(a.fed as u32), None);
            }
            a.fed += take;
        }
        if n == 0 {
            return;
        }
        if let Err(e) = ctx.decode(&mut self.batch) {
            warn!(cause = %e, tokens = n, "decode failed");
            for slot in &mut self.slots {
                if let Some(a) = slot.active.take() {
                    if a.batch_idx.is_some() || a.fed > 0 {
                        let error = RunnerError::internal(format!("decode failed: {e}"));
                        let _ = a.events.send(Event::Error { error });
                        let _ = ctx.clear_kv_cache_seq(Some(slot.id as u32), None, None);
                        slot.cache.clear();
                    } else {
                        slot.active = Some(a);
                    }
                }
            }
            return;
        }
        for i in 0..self.slots.len() {
            let Some(idx) = self.slots[i].active.as_ref().and_then(|a| a.batch_idx) else {
                continue;
            };
            self.sample(ctx, i, idx);
        }
    }

    /// Samples slot `i`'s next token from the logits at `idx`, sends its text, and ends
    /// the request when it is done.
    fn sample(&mut self, ctx: &mut LlamaContext<'_>, i: usize, idx: i32) {
        let model = self.model;
        let slot_ctx = self.slot_ctx as usize;
        let preserved = &self.preserved;
        let piece = |t: LlamaToken| super::piece(model, preserved, t);
        let slot = &mut self.slots[i];
        let a = slot.active.as_mut().expect("active");
        let token = a.sampler.sample(ctx, idx);
        self.generated += 1;
        let now = Instant::now();
        if a.first_token.is_none() {
            a.first_token = Some(now);
            let _ = a.events.send(Event::Started {
                prompt_tokens: a.prompt.len() as u32,
                cached_tokens: a.cached,
            });
        }
        a.generated += 1;
        let logprobs = a.logprobs.map(|top| {
            sampler::logprobs(ctx.get_logits_ith(idx), token, top, |t| {
                String::from_utf8_lossy(&piece(t)).into_owned()
            })
        });
        let mut finish = None;
        let mut text = String::new();
        if model.vocab().is_eog(token) {
            finish = Some(FinishReason::Stop);
        } else {
            let decoded = a.decoder.push(&piece(token));
            match a.stops.push(&decoded) {
                StopOutcome::Continue(t) => text = t,
                StopOutcome::Stop(t) => {
                    text = t;
                    finish = Some(FinishReason::Stop);
                }
            }
        }
        if finish.is_none() && (a.generated >= a.max_new || slot.cache.len() + 1 >= slot_ctx) {
            finish = Some(FinishReason::Length);
        }
        if finish == Some(FinishReason::Length) {
            let tail = a.decoder.finish();
            match a.stops.push(&tail) {
                StopOutcome::Continue(t) | StopOutcome::Stop(t) => text.push_str(&t),
            }
            text.push_str(&a.stops.finish());
        }
        let text = match a.reader.as_mut() {
            None => text,
            Some(r) => {
                let mut d = r.push(&text);
                if finish.is_some() {
                    let rest = r.finish();
                    d.reasoning.push_str(&rest.reasoning);
                    d.content.push_str(&rest.content);
                    d.calls.extend(rest.calls);
                }
                send_delta(&a.events, d.reasoning, d.calls);
                d.content
            }
        };
        let _ = a.events.send(Event::Token {
            text,
            token: token.0,
            logprobs,
        });
        let Some(mut reason) = finish else {
            a.next = Some(token);
            return;
        };
        let a = slot.active.take().expect("active");
        if reason == FinishReason::Stop && a.reader.as_ref().is_some_and(|r| r.has_calls()) {
            reason = FinishReason::ToolCalls;
        }
        let first = a.first_token.unwrap_or(now);
        let gen_secs = now.duration_since(first).as_secs_f64();
        let _ = a.events.send(Event::Done {
            finish_reason: reason,
            stop: a.stops.matched().map(str::to_owned),
            usage: Usage {
                prompt_tokens: a.prompt.len() as u32,
                cached_tokens: a.cached,
                completion_tokens: a.generated,
            },
            timings: Timings {
                time_to_first_token_ms: first.duration_since(a.arrived).as_secs_f64() * 1e3,
                total_ms: now.duration_since(a.arrived).as_secs_f64() * 1e3,
                tokens_per_second: if gen_secs > 0.0 {
                    f64::from(a.generated - 1) / gen_secs
                } else {
                    0.0
                },
            },
        });
        slot.last_used = now;
    }
}
