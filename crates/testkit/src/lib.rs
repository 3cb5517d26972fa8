//! Test fixtures for modelrunner: a small GGUF writer that makes llama-architecture models
//! with random weights and an SPM vocabulary, malformed files for parser tests, and paths
//! to the shared test data.
//!
//! ```
//! let bytes = modelrunner_testkit::LlamaSpec::tiny().build(7).to_bytes();
//! assert_eq!(&bytes[..4], b"GGUF");
//! ```
#![deny(missing_docs)]

mod gguf;
mod llama;
mod shared;
mod templates;

pub use gguf::{small_gguf, GgufWriter, Kv, TensorData};
pub use llama::{LlamaSpec, RERANK_PROMPT};
pub use shared::{chat_model, checks_less, shared_dir, stories260k, NOTES_FILE};
pub use templates::{template, TestTemplate};
