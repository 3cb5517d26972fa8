//! The modelrunner artifact format: GGUF headers, OCI model manifests and configs as
//! Docker Model Runner and CNCF ModelPack write them, reproducible packaging, and model
//! references.
//!
//! ```
//! use modelrunner_format::{Digest, Reference};
//!
//! let r: Reference = "smollm2".parse().unwrap();
//! assert_eq!(r.to_string(), "docker.io/ai/smollm2:latest");
//! let d = Digest::of(b"FAKE LICENSE\n");
//! assert!(d.to_string().starts_with("sha256:d0ce8fae"));
//! ```
#![deny(missing_docs)]

pub mod config;
pub mod digest;
pub mod error;
pub mod gguf;
pub mod manifest;
pub mod media;
pub mod package;
pub mod reference;
pub mod tarball;

pub use config::{ConfigFile, ModelConfig};
pub use digest::{Digest, Hasher};
pub use error::FormatError;
pub use manifest::{Descriptor, Manifest};
pub use reference::{ModelRef, Reference};
