//! The batch loop: one dedicated thread owns the llama.cpp model and context. Requests
//! arrive over a bounded channel, each with its own event sender; new requests join
//! between decode steps, long prompts are fed in chunks, and each slot keeps its KV cache
//! so a follow-up that shares a prefix only processes the new tokens.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use tokio::sync::{mpsc::UnboundedSender, oneshot};
use tracing::{debug, info, warn};

use crate::error::EngineError;
use crate::protocol::{Event, FinishReason, GenerateRequest, Prompt, Props, Timings, Usage};
use crate::sampler;
use crate::text::{StopMatcher, StopOutcome, Utf8Decoder};

/// How to load and run a model.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The GGUF file (first shard of a split model).
    pub model: PathBuf,
    /// Parallel slots.
    pub slots: u32,
    /// Context tokens per slot; default: the trained context, at most 4096.
    pub slot_context: Option<u32>,
    /// Generation threads; default: physical cores.
    pub threads: Option<u32>,
    /// Tokens per decode step (prompt chunks share it with running streams).
    pub batch: u32,
    /// Compute embeddings instead of completions.
    pub embeddings: bool,
    /// Layers to offload to the GPU (only with the `cuda` feature; 0 keeps all on the CPU).
    pub gpu_layers: u32,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            model: PathBuf::new(),
            slots: 4,
            slot_context: None,
            threads: None,
            batch: 512,
            embeddings: false,
            gpu_layers: 0,
        }
    }
}

/// Embeddings (unit vectors) with the token count of each input.
pub(crate) type Embeddings = Vec<(Vec<f32>, u32)>;

/// Work for the engine thread.
pub(crate) enum Job {
    Generate {
        req: Box<GenerateRequest>,
        events: UnboundedSender<Event>,
        arrived: Instant,
    },
    Tokenize {
        text: String,
        add_special: bool,
        parse_special: bool,
        reply: oneshot::Sender<Vec<i32>>,
    },
    Detokenize {
        tokens: Vec<i32>,
        reply: oneshot::Sender<Result<String, EngineError>>,
    },
    Embed {
        inputs: Vec<Prompt>,
        reply: oneshot::Sender<Result<Embeddings, EngineError>>,
    },
}

struct Active {
    events: UnboundedSender<Event>,
    arrived: Instant,
    first_token: Option<Instant>,
    prompt: Vec<LlamaToken>,
    /// Prompt tokens already fed (the rest still to go).
    fed: usize,
    next: Option<LlamaToken>,
    sampler: LlamaSampler,
    decoder: Utf8Decoder,
    stops: StopMatcher,
    generated: u32,
    max_new: u32,
    cached: u32,
    logprobs: Option<u32>,
    /// Index in the current batch whose logits belong to this slot.
    batch_idx: Option<i32>,
}

struct Slot {
    id: i32,
    /// Tokens in this slot's KV cache, in position order.
    cache: Vec<LlamaToken>,
    active: Option<Active>,
    last_used: Instant,
}

fn physical_cores() -> u32 {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mut cores = std::collections::HashSet::new();
    let (mut phys, mut core) = (None, None);
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(':') {
            match k.trim() {
                "physical id" => phys = Some(v.trim().to_string()),
                "core id" => core = Some(v.trim().to_string()),
                _ => {}
            }
        }
        if line.trim().is_empty() {
            if let (Some(p), Some(c)) = (phys.take(), core.take()) {
                cores.insert((p, c));
            }
        }
    }
    let n = cores.len() as u32;
    if n > 0 {
        n
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
    }
}

/// Resident set size of this process in bytes.
pub fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// llama.cpp's backend, initialised once per process (it cannot be initialised twice).
/// Initialises llama.cpp's backend without loading a model and returns this process's
/// resident memory: a runner's baseline, for memory estimates.
pub fn baseline_rss() -> Result<u64, EngineError> {
    backend()?;
    Ok(rss_bytes())
}

fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: std::sync::OnceLock<Result<LlamaBackend, String>> = std::sync::OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| EngineError::Load(e.clone()))
}

fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Loads the model and runs the loop until the channel closes. `ready` gets the props
/// (or the load error) once the model is loaded.
pub(crate) fn run(
    config: EngineConfig,
    jobs: Receiver<Job>,
    ready: oneshot::Sender<Result<Props, EngineError>>,
) {
    let backend = match backend() {
        Ok(b) => b,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    if !config.model.is_file() {
        let msg = format!("{}: no such file", config.model.display());
        let _ = ready.send(Err(EngineError::Load(msg)));
        return;
    }
    let model_params = LlamaModelParams::default().with_n_gpu_layers(config.gpu_layers);
    let model = match LlamaModel::load_from_file(backend, &config.model, &model_params) {
        Ok(m) => m,
        Err(e) => {
            let _ = ready.send(Err(EngineError::Load(format!(
                "{}: {e}",
                config.model.display()
            ))));
            return;
        }
    };
    let trained = model.n_ctx_train();
    let slot_ctx = config.slot_context.unwrap_or(trained.min(4096)).max(16);
    let slots = config.slots.max(1);
    let threads = config.threads.unwrap_or_else(physical_cores).max(1);
    let n_ctx = slot_ctx * slots;
    let batch = config.batch.clamp(16, n_ctx);
    let mut params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(batch)
        .with_n_ubatch(batch)
        .with_n_seq_max(slots)
        // One KV stream per slot: each sequence attends over its own cells only. In one
        // unified cache every decode step's attention spans every slot's cells, and
        // batched decoding barely beats one stream (measured in docs/performance.md).
        .with_kv_unified(false)
        .with_n_threads(threads as i32)
        .with_n_threads_batch(threads as i32);
    if config.gpu_layers == 0 {
        // On the CPU, llama.cpp's flash-attention kernel halves decode speed (it is faster
        // only for long prompts); GPUs keep llama.cpp's automatic choice.
        params =
            params.with_flash_attention_policy(llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED);
    }
    if config.embeddings {
        params = params
            .with_embeddings(true)
            .with_pooling_type(llama_cpp_2::context::params::LlamaPoolingType::Mean);
    }
    let mut ctx = match model.new_context(backend, params) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(EngineError::Load(format!("creating the context: {e}"))));
            return;
        }
    };
    let props = Props {
        slot_context: slot_ctx,
        slots,
        trained_context: trained,
        n_vocab: model.n_vocab(),
        n_embd: model.n_embd(),
        n_params: model.n_params(),
        model_bytes: model.size(),
        rss_bytes: rss_bytes(),
        threads,
        embeddings: config.embeddings,
        chat_template: model
            .meta_val_str("tokenizer.chat_template")
            .unwrap_or_default(),
        bos_token: String::from_utf8_lossy(&model.vocab().token_to_piece(
            model.vocab().bos(),
            true,
            None,
        ))
        .into_owned(),
        eos_token: String::from_utf8_lossy(&model.vocab().token_to_piece(
            model.vocab().eos(),
            true,
            None,
        ))
        .into_owned(),
    };
    info!(slots, slot_ctx, threads, batch, "model loaded");
    let _ = ready.send(Ok(props));
    let mut engine = Loop {
        model: &model,
        slots: (0..slots as i32)
            .map(|id| Slot {
                id,
                cache: Vec::new(),
                active: None,
                last_used: Instant::now(),
            })
            .collect(),
        queue: VecDeque::new(),
        slot_ctx,
        batch: LlamaBatch::new(batch as usize, slots as i32),
        batch_size: batch as usize,
    };
    engine.run(&mut ctx, &jobs);
    info!("engine stopped");
}

struct Loop<'m> {
    model: &'m LlamaModel,
    slots: Vec<Slot>,
    queue: VecDeque<(Box<GenerateRequest>, UnboundedSender<Event>, Instant)>,
    slot_ctx: u32,
    batch: LlamaBatch<'static>,
    batch_size: usize,
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
        self.model.vocab().token_to_piece(t, false, None)
    }

    fn tokenize(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<LlamaToken> {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), add_special, parse_special)
    }

    fn take(&mut self, ctx: &mut LlamaContext<'_>, job: Job) {
        match job {
            Job::Generate {
                req,
                events,
                arrived,
            } => self.queue.push_back((req, events, arrived)),
            Job::Tokenize {
                text,
                add_special,
                parse_special,
                reply,
            } => {
                let t = self
                    .tokenize(&text, add_special, parse_special)
                    .into_iter()
                    .map(|t| t.0)
                    .collect();
                let _ = reply.send(t);
            }
            Job::Detokenize { tokens, reply } => {
                let n = self.model.n_vocab();
                let r = match tokens.iter().find(|t| **t < 0 || **t >= n) {
                    Some(t) => Err(EngineError::InvalidParam {
                        param: "tokens".into(),
                        message: format!("token {t} is not in the vocabulary (0..{n})"),
                    }),
                    None => {
                        let mut d = Utf8Decoder::default();
                        let mut s = String::new();
                        for t in tokens {
                            s.push_str(&d.push(&self.piece(LlamaToken(t))));
                        }
                        s.push_str(&d.finish());
                        Ok(s)
                    }
                };
                let _ = reply.send(r);
            }
            Job::Embed { inputs, reply } => {
                let r = self.embed(ctx, inputs);
                let _ = reply.send(r);
            }
        }
    }

    fn embed(
        &mut self,
        ctx: &mut LlamaContext<'_>,
        inputs: Vec<Prompt>,
    ) -> Result<Vec<(Vec<f32>, u32)>, EngineError> {
        let mut out = Vec::with_capacity(inputs.len());
        for input in inputs {
            let tokens = match input {
                Prompt::Text(t) => self.tokenize(&t, true, false),
                Prompt::Tokens(t) => t.into_iter().map(LlamaToken).collect(),
            };
            if tokens.is_empty() {
                return Err(EngineError::InvalidParam {
                    param: "input".into(),
                    message: "empty input".into(),
                });
            }
            if tokens.len() > self.batch_size.min(self.slot_ctx as usize) {
                return Err(EngineError::ContextLength {
                    prompt: tokens.len() as u32,
                    context: self.batch_size.min(self.slot_ctx as usize) as u32,
                });
            }
            ctx.clear_kv_cache();
            self.batch.clear();
            self.batch
                .add_sequence(&tokens, 0, true)
                .map_err(|e| EngineError::Internal(e.to_string()))?;
            ctx.decode(&mut self.batch)
                .map_err(|e| EngineError::Internal(format!("decode: {e}")))?;
            let v = ctx
                .embeddings_seq_ith(0)
                .map_err(|e| EngineError::Internal(format!("embeddings: {e}")))?;
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            out.push((v.iter().map(|x| x / norm).collect(), tokens.len() as u32));
        }
        for s in &mut self.slots {
            s.cache.clear();
        }
        Ok(out)
    }

    /// Gives queued requests to free slots, preferring the slot whose cache shares the
    /// longest prefix with the prompt, then the least recently used.
    fn assign(&mut self) {
        while let Some(free) = self.slots.iter().position(|s| s.active.is_none()) {
            let _ = free;
            let Some((req, events, arrived)) = self.queue.pop_front() else {
                return;
            };
            if events.is_closed() {
                continue;
            }
            match self.prepare(&req) {
                Err(e) => {
                    let _ = events.send(Event::error(&e));
                }
                Ok((prompt, sampler, max_new)) => {
                    let best = self
                        .slots
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| s.active.is_none())
                        .max_by_key(|(_, s)| {
                            (
                                common_prefix(&s.cache, &prompt),
                                std::cmp::Reverse(s.last_used),
                            )
                        })
                        .map(|(i, _)| i)
                        .expect("a free slot");
                    let slot = &mut self.slots[best];
                    // Reuse the shared prefix, but always feed at least one token so the
                    // last prompt position has logits.
                    let keep = common_prefix(&slot.cache, &prompt).min(prompt.len() - 1);
                    slot.cache.truncate(keep);
                    debug!(
                        slot = slot.id,
                        keep,
                        prompt = prompt.len(),
                        "request assigned"
                    );
                    slot.active = Some(Active {
                        events,
                        arrived,
                        first_token: None,
                        fed: keep,
                        cached: keep as u32,
                        prompt,
                        next: None,
                        sampler,
                        decoder: Utf8Decoder::default(),
                        stops: StopMatcher::new(req.options.stop.clone()),
                        generated: 0,
                        max_new,
                        logprobs: req.options.logprobs,
                        batch_idx: None,
                    });
                    slot.last_used = Instant::now();
                }
            }
        }
    }

    fn prepare(
        &self,
        req: &GenerateRequest,
    ) -> Result<(Vec<LlamaToken>, LlamaSampler, u32), EngineError> {
        req.validate(self.model.n_vocab())?;
        let prompt: Vec<LlamaToken> = match &req.prompt {
            Prompt::Text(t) => self.tokenize(t, req.add_special, true),
            Prompt::Tokens(t) => t.iter().map(|t| LlamaToken(*t)).collect(),
        };
        if prompt.is_empty() {
            return Err(EngineError::InvalidParam {
                param: "prompt".into(),
                message: "the prompt is empty".into(),
            });
        }
        if prompt.len() >= self.slot_ctx as usize {
            return Err(EngineError::ContextLength {
                prompt: prompt.len() as u32,
                context: self.slot_ctx,
            });
        }
        let room = self.slot_ctx - prompt.len() as u32;
        let max_new = req.options.max_tokens.map_or(room, |m| m.min(room));
        let grammar = match (&req.options.grammar, &req.options.json_schema) {
            (Some(g), _) => Some(g.clone()),
            (None, Some(schema)) => Some(
                llama_cpp_2::json_schema_to_grammar(&schema.to_string()).map_err(|e| {
                    EngineError::InvalidParam {
                        param: "json_schema".into(),
                        message: format!("cannot convert the schema: {e}"),
                    }
                })?,
            ),
            (None, None) => None,
        };
        let sampler = sampler::build(self.model, &req.options.sampling, grammar.as_deref())?;
        Ok((prompt, sampler, max_new))
    }

    /// One decode step over every active slot.
    fn step(&mut self, ctx: &mut LlamaContext<'_>) {
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
                        let _ = a.events.send(Event::failure(format!("decode failed: {e}")));
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

    fn sample(&mut self, ctx: &mut LlamaContext<'_>, i: usize, idx: i32) {
        let model = self.model;
        let slot_ctx = self.slot_ctx as usize;
        let piece = |t: LlamaToken| model.vocab().token_to_piece(t, false, None);
        let slot = &mut self.slots[i];
        let a = slot.active.as_mut().expect("active");
        let token = a.sampler.sample(ctx, idx);
        let now = Instant::now();
        a.first_token.get_or_insert(now);
        a.generated += 1;
        let logprobs = a.logprobs.map(|top| {
            sampler::logprobs(ctx.get_logits_ith(idx), token, top, |t| {
                String::from_utf8_lossy(&piece(t)).into_owned()
            })
        });
        let eog = model.vocab().is_eog(token);
        let mut finish = None;
        let mut text = String::new();
        if eog {
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
        let _ = a.events.send(Event::Token {
            text,
            token: token.0,
            logprobs,
        });
        match finish {
            None => a.next = Some(token),
            Some(reason) => {
                let a = slot.active.take().expect("active");
                let first = a.first_token.unwrap_or(now);
                let gen_secs = now.duration_since(first).as_secs_f64();
                let _ = a.events.send(Event::Done {
                    finish_reason: reason,
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
    }
}
