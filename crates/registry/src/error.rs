//! Errors of the registry client.

use modelrunner_format::FormatError;
use modelrunner_store::StoreError;
use thiserror::Error;

/// Everything that can go wrong talking to a registry.
#[derive(Debug, Error)]
pub enum RegistryError {
    /// The registry has no such repository, tag or blob.
    #[error("{what} not found in {registry}{detail}")]
    NotFound {
        /// What was asked for.
        what: String,
        /// The registry host.
        registry: String,
        /// The registry's own words, summarised, with a leading ": ".
        detail: String,
    },
    /// Credentials are missing or refused.
    #[error("{registry}: {reason}")]
    Unauthorized {
        /// The registry host.
        registry: String,
        /// Why.
        reason: String,
    },
    /// An artifact that is not a model this daemon can store and run, or whose manifest
    /// contradicts what is stored (refused before anything is published).
    #[error("{registry}: {reason}")]
    Invalid {
        /// The registry host.
        registry: String,
        /// Why.
        reason: String,
    },
    /// An artifact this client does not handle (an image index, an unknown config type).
    #[error("unsupported media type {media_type:?} for {what}")]
    Unsupported {
        /// The media type found.
        media_type: String,
        /// Where it was found.
        what: &'static str,
    },
    /// The registry answered with an error status.
    #[error("{registry} answered {status} to {action}{detail}")]
    Status {
        /// The registry host.
        registry: String,
        /// HTTP status.
        status: u16,
        /// What was being done.
        action: String,
        /// The registry's own words, summarised, with a leading ": ".
        detail: String,
    },
    /// A connection or transfer failed after every retry.
    #[error("{action} at {registry}: {reason}")]
    Transport {
        /// The registry host.
        registry: String,
        /// What was being done.
        action: String,
        /// What went wrong.
        reason: String,
    },
    /// The registry broke the protocol: bad digests, over-long bodies, odd redirects.
    #[error("{registry}: {reason}")]
    Protocol {
        /// The registry host.
        registry: String,
        /// What was wrong.
        reason: String,
    },
    /// The pull policy does not allow this source.
    #[error("pulling {reference} is not allowed by the pull policy ([registries.policy] {rule})")]
    Forbidden {
        /// What was to be pulled.
        reference: String,
        /// The rule that refused it.
        rule: String,
    },
    /// Configuration or credentials could not be used.
    #[error("{0}")]
    Config(String),
    /// Bad artifact content.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RegistryError {
    pub(crate) fn protocol(registry: &str, reason: impl Into<String>) -> Self {
        RegistryError::Protocol {
            registry: registry.to_string(),
            reason: reason.into(),
        }
    }
}
