//! The inference engine: llama.cpp (through `llama-cpp-2`; this is the only crate that
//! names it) on one dedicated thread running a continuous-batching loop over parallel
//! slots, with per-slot prefix reuse, sampling, stop strings, grammars and chat
//! templates. [`runner::serve`] serves it over the runner protocol
//! (`modelrunner-protocol`), which defines every type this crate takes and gives.
//!
//! ```no_run
//! # async fn demo() -> Result<(), modelrunner_protocol::RunnerError> {
//! use modelrunner_engine::{collect, Engine};
//! use modelrunner_protocol::{GenerateRequest, Launch};
//! let engine = Engine::load(Launch::new("model.gguf")).await?;
//! let (text, _done) = collect(engine.generate(GenerateRequest::text("Once upon a time"))?).await?;
//! println!("{text}");
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod chat;
mod engine;
pub mod runner;
mod sampler;
pub mod text;
mod worker;

pub use engine::{collect, Engine, QUEUE_LIMIT};
pub use worker::load::{baseline_rss, rss_bytes};
pub use worker::Stats;
