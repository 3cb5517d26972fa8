//! The inference engine: llama.cpp (through `llama-cpp-2`; this is the only crate that
//! names it) on one dedicated thread running a continuous-batching loop over parallel
//! slots with a unified KV cache, per-slot prefix reuse, sampling, stop strings, grammars
//! and chat templates.
//!
//! ```no_run
//! # async fn demo() -> Result<(), modelrunner_engine::EngineError> {
//! use modelrunner_engine::{collect, Engine, EngineConfig, GenerateRequest};
//! let engine = Engine::load(EngineConfig { model: "model.gguf".into(), ..Default::default() }).await?;
//! let (text, _done) = collect(engine.generate(GenerateRequest::text("Once upon a time"))?).await?;
//! println!("{text}");
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod client;
mod engine;
mod error;
pub mod protocol;
pub mod runner;
mod sampler;
pub mod text;
mod worker;

pub use client::{strip_ansi, RunnerClient, RunnerProcess};
pub use engine::{collect, Engine, QUEUE_LIMIT};
pub use error::EngineError;
pub use protocol::{Event, FinishReason, GenerateRequest, Prompt, Props, SamplingParams, Usage};
pub use runner::{serve, RunnerConfig};
pub use worker::{baseline_rss, rss_bytes, EngineConfig};
