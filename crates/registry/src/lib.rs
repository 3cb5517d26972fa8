//! The registry client of modelrunner: pulls model artifacts from any OCI registry into
//! the store and pushes them back, as Docker Model Runner does.
//!
//! * Every byte is verified: manifests against their digest, blobs streamed to resumable
//!   partial files while hashed, published only after size and digest match.
//! * Every read is bounded: manifests and configs 4 MiB, token answers 1 MiB, error
//!   bodies 64 KiB, blobs exactly their descriptor's size.
//! * Credentials belong to their origin: never sent after a redirect elsewhere, to an
//!   upload location elsewhere, or to a token realm that is not the registry's site (by the public suffix list);
//!   realms on internal addresses only for registries that are internal themselves.
//! * Hugging Face GGUF repositories (`hf.co/ORG/REPO[:QUANT]`) are pulled from the Hub's
//!   file listing, verified against its LFS sha256, and stored as Docker-format artifacts.
//! * Transient failures (408, 429, 5xx, resets, stalls) are retried with backoff and
//!   jitter, honouring `Retry-After`; interrupted blobs resume with a Range request.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<modelrunner_store::Store>) -> Result<(), Box<dyn std::error::Error>> {
//! use modelrunner_registry::{Registry, RegistryConfig};
//! let registry = Registry::new(RegistryConfig::default())?;
//! let reference = "ai/smollm2".parse()?;
//! let resolved = registry.resolve(&reference, None).await?;
//! let model = registry.pull(&store, resolved, &reference, None).await?;
//! println!("{}", model.id);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod auth;
mod client;
pub mod config;
mod convert;
pub mod creds;
mod error;
pub mod http;
pub mod hub;
mod ollama;
pub mod policy;
pub mod progress;
mod pull;
mod push;
pub mod realm;
mod session;
mod turn;

pub use client::{Mount, Registry, RemoteManifest};
pub use config::RegistryConfig;
pub use error::RegistryError;
pub use hub::{is_hub, HubResolved};
pub use progress::{Kind, LayerProgress, Mode, Progress};
pub use pull::Resolved;
