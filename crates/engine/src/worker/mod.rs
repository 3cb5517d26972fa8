//! The batch loop: one dedicated thread owns the llama.cpp model and context. Requests
//! arrive over a bounded channel, each with its own event sender; new requests join
//! between decode steps, long prompts are fed in chunks, and each slot keeps its KV cache
//! so a follow-up that shares a prefix only processes the new tokens.
//!
//! - `load`: the model and context, as the launch description says;
//! - `slots`: giving queued requests to slots (prefix reuse), checking them against the
//!   model;
//! - `step`: one decode step over every active slot, and sampling;
//! - `embed`: embeddings.

mod embed;
pub(crate) mod load;
mod slots;
mod step;

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use modelrunner_protocol::{
    Embedding, Event, GenerateOptions, Launch, Prompt, Props, RunnerError, Score,
};
use tokio::sync::{mpsc::UnboundedSender, oneshot};
use tracing::info;

use crate::text::Utf8Decoder;
use slots::Slot;

/// The tools a generation's calls are held to.
pub(crate) struct ToolCalls {
    pub tools: Vec<modelrunner_chat::Tool>,
    pub choice: modelrunner_chat::Choice,
    pub parallel: bool,
}

/// A generation for the loop: a prompt (already rendered) and how to generate.
pub(crate) struct Generation {
    pub prompt: Prompt,
    pub add_special: bool,
    pub options: GenerateOptions,
    pub events: UnboundedSender<Event>,
    pub arrived: Instant,
    /// How to read the output (reasoning, calls); `None`: it is plain text.
    pub format: Option<modelrunner_chat::Format>,
    /// The tools, when calls are read and constrained.
    pub tools: Option<ToolCalls>,
}

/// Work for the engine thread.
pub(crate) enum Job {
    Generate(Box<Generation>),
    Tokenize {
        text: String,
        add_special: bool,
        reply: oneshot::Sender<Vec<i32>>,
    },
    Detokenize {
        tokens: Vec<i32>,
        reply: oneshot::Sender<Result<String, RunnerError>>,
    },
    Embed {
        inputs: Vec<Prompt>,
        reply: oneshot::Sender<Result<Vec<Embedding>, RunnerError>>,
    },
    Rerank {
        query: String,
        documents: Vec<String>,
        reply: oneshot::Sender<Result<Vec<Score>, RunnerError>>,
    },
    /// Special tokens with these texts are read as text (the chat format's markers).
    Preserve(Vec<String>),
    /// What the loop is doing.
    Stats(oneshot::Sender<Stats>),
}

/// What the engine thread is doing, as it answers between decode steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Slots with a generation in them.
    pub busy_slots: usize,
    /// Generations waiting for a slot.
    pub queued: usize,
    /// Tokens sampled since the model loaded.
    pub generated_tokens: u64,
}

/// Loads the model and runs the loop until the channel closes. `ready` gets the props
/// (or the load error) once the model is loaded.
pub(crate) fn run(
    launch: Launch,
    jobs: Receiver<Job>,
    ready: oneshot::Sender<Result<Props, RunnerError>>,
) {
    let model = match load::model(&launch) {
        Ok(m) => m,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let (mut ctx, shape) = match load::context(&model, &launch) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    info!(
        slots = shape.slots,
        slot_ctx = shape.slot_ctx,
        threads = shape.threads,
        batch = shape.batch,
        "model loaded"
    );
    let _ = ready.send(Ok(load::props(&model, shape, launch.mode)));
    let mut engine = Loop {
        model: &model,
        slots: (0..shape.slots as i32).map(Slot::new).collect(),
        preserved: std::collections::HashSet::new(),
        queue: VecDeque::new(),
        slot_ctx: shape.slot_ctx,
        batch: LlamaBatch::new(shape.batch as usize, shape.slots as i32),
        batch_size: shape.batch as usize,
        generated: 0,
        longest_piece: longest_piece(&model),
    };
    engine.run(&mut ctx, &jobs);
    info!("engine stopped");
}

/// A token's text; special tokens only when they are preserved.
fn piece(
    model: &LlamaModel,
    preserved: &std::collections::HashSet<LlamaToken>,
    t: LlamaToken,
) -> Vec<u8> {
    model
        .vocab()
        .token_to_piece(t, preserved.contains(&t), None)
}

/// The most bytes of text one token stands for (special tokens' text included).
fn longest_piece(model: &LlamaModel) -> usize {
    let vocab = model.vocab();
    (0..model.n_vocab())
        .map(|t| vocab.token_to_piece(LlamaToken(t), true, None).len())
        .max()
        .unwrap_or(1)
        .max(1)
}

struct Loop<'m> {
    model: &'m LlamaModel,
    slots: Vec<Slot>,
    /// Special tokens detokenized as their text (markers of the chat format).
    preserved: std::collections::HashSet<LlamaToken>,
    queue: VecDeque<Box<Generation>>,
    slot_ctx: u32,
    batch: LlamaBatch<'static>,
    batch_size: usize,
    /// Tokens sampled since the model loaded.
    generated: u64,
    /// See [`longest_piece`].
    longest_piece: usize,
}

impl Loop<'_> {
    fn busy(&self) -> bool {
        !self.queue.is_empty() || self.slots.iter().any(|s| s.active.is_some())
    }

    fn run(&mut self, ctx: &mut LlamaContext<'_>, jobs: &Receiver<Job>) {
        loop {
            if !self.busy() {
                match jobs.recv() {
                    Ok(job) => self.take(ctx, job),
                    Err(_) => return,
                }
            }
            loop {
                match jobs.try_recv() {
                    Ok(job) => self.take(ctx, job),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        if !self.busy() {
                            return;
                        }
                        break;
                    }
                }
            }
            self.assign();
            self.step(ctx);
        }
    }

    fn piece(&self, t: LlamaToken) -> Vec<u8> {
        piece(self.model, &self.preserved, t)
    }

    /// Text into tokens; `parse_special` reads special tokens' text as those tokens.
    fn tokenize(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<LlamaToken> {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), add_special, parse_special)
    }

    /// Refuses, before tokenizing it, a text prompt that cannot fit `limit` tokens: no
    /// token stands for more than `longest_piece` bytes, and a margin of 4 covers
    /// normalisation that shortens text. A 15 MiB prompt to a 2048-token context is
    /// answered at once instead of after seconds of tokenizing.
    fn check_fits(&self, prompt: &Prompt, limit: u32) -> Result<(), RunnerError> {
        match prompt {
            Prompt::Text(t) => self.check_bytes_fit(t.len(), limit),
            Prompt::Tokens(_) => Ok(()),
        }
    }

    /// [`Self::check_fits`] for a text of `bytes` bytes.
    fn check_bytes_fit(&self, bytes: usize, limit: u32) -> Result<(), RunnerError> {
        let fewest = bytes / (self.longest_piece * 4);
        if fewest >= limit as usize {
            return Err(RunnerError::ContextLength {
                prompt: fewest.min(u32::MAX as usize) as u32,
                context: limit,
                at_least: true,
            });
        }
        Ok(())
    }

    /// The tokens of a prompt.
    fn tokens(&self, prompt: &Prompt, add_special: bool, parse_special: bool) -> Vec<LlamaToken> {
        match prompt {
            Prompt::Text(t) => self.tokenize(t, add_special, parse_special),
            Prompt::Tokens(t) => t.iter().map(|t| LlamaToken(*t)).collect(),
        }
    }

    /// Token IDs outside the vocabulary, as an error naming `param`.
    fn check_vocab(&self, param: &str, tokens: &[i32]) -> Result<(), RunnerError> {
        let n = self.model.n_vocab();
        match tokens.iter().find(|t| **t < 0 || **t >= n) {
            Some(t) => Err(RunnerError::invalid(
                param,
                format!("token {t} is not in the vocabulary (0..{n})"),
            )),
            None => Ok(()),
        }
    }

    fn take(&mut self, ctx: &mut LlamaContext<'_>, job: Job) {
        match job {
            Job::Generate(g) => self.queue.push_back(g),
            Job::Tokenize {
                text,
                add_special,
                reply,
            } => {
                let t = self
                    .tokenize(&text, add_special, true)
                    .into_iter()
                    .map(|t| t.0);
                let _ = reply.send(t.collect());
            }
            Job::Detokenize { tokens, reply } => {
                let r = self.check_vocab("tokens", &tokens).map(|()| {
                    let mut d = Utf8Decoder::default();
                    let mut s = String::new();
                    for t in tokens {
                        s.push_str(&d.push(&self.piece(LlamaToken(t))));
                    }
                    s.push_str(&d.finish());
                    s
                });
                let _ = reply.send(r);
            }
            Job::Embed { inputs, reply } => {
                let r = self.embed(ctx, inputs);
                let _ = reply.send(r);
            }
            Job::Rerank {
                query,
                documents,
                reply,
            } => {
                let r = self.rerank(ctx, &query, &documents);
                let _ = reply.send(r);
            }
            Job::Stats(reply) => {
                let _ = reply.send(Stats {
                    busy_slots: self.slots.iter().filter(|s| s.active.is_some()).count(),
                    queued: self.queue.len(),
                    generated_tokens: self.generated,
                });
            }
            Job::Preserve(markers) => {
                for m in markers {
                    if let [t] = self.tokenize(&m, false, true)[..] {
                        if self.model.vocab().token_to_piece(t, true, None) == m.as_bytes() {
                            self.preserved.insert(t);
                        }
                    }
                }
            }
        }
    }
}
