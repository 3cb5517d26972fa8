//! The runner protocol: how the daemon and a runner process (one model, in its own
//! process, `modelrunnerd runner`) talk over a Unix socket. Both ends use this crate and
//! nothing else for it, and it does not link llama.cpp, so the HTTP layer and the
//! scheduler compile without it.
//!
//! - [`GenerateRequest`]: the one internal generation request every API dialect decodes
//!   into, validated once at the edge ([`GenerateRequest::validate`], [`request::limits`]).
//! - [`Event`]: the one event stream of a generation.
//! - [`RunnerError`]: the one error type, with one encoding for failed calls and failed
//!   streams alike.
//! - [`Launch`] and [`Settings`]: the one description of how to run a model, with one
//!   vocabulary and one set of defaults.
//! - [`RunnerClient`] (one method per operation) and [`server::serve`] (the routes over a
//!   [`server::Service`]); no route string exists outside this crate.
//!
//! ```no_run
//! # async fn demo() -> Result<(), modelrunner_protocol::RunnerError> {
//! use futures::StreamExt;
//! use modelrunner_protocol::{Event, GenerateRequest, RunnerClient};
//! let client = RunnerClient::new("/run/modelrunner/runner-1.sock");
//! let mut events = Box::pin(client.generate(&GenerateRequest::text("Once upon a time")).await?);
//! while let Some(Event::Token { text, .. }) = events.next().await {
//!     print!("{text}");
//! }
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod client;
mod error;
mod event;
pub mod flags;
pub mod launch;
pub mod request;
pub mod server;

pub use client::RunnerClient;
pub use error::RunnerError;
pub use event::{
    EmbedRequest, Embedding, Event, FinishReason, Logprob, Props, RerankRequest, Score, Timings,
    TokenLogprob, TokenizeRequest, Usage,
};
pub use launch::{Launch, Mode, Settings};
pub use request::{
    Chat, GenerateOptions, GenerateRequest, Input, Prompt, ReasoningFormat, SamplingParams,
    ToolChoice,
};

/// The runner's routes, named once for both ends.
mod routes {
    pub const HEALTH: &str = "/health";
    pub const PROPS: &str = "/props";
    pub const GENERATE: &str = "/generate";
    pub const APPLY_TEMPLATE: &str = "/apply-template";
    pub const TOKENIZE: &str = "/tokenize";
    pub const DETOKENIZE: &str = "/detokenize";
    pub const EMBED: &str = "/embeddings";
    pub const RERANK: &str = "/rerank";
}
