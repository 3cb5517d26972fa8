//! Errors of the store.

use modelrunner_format::{Digest, FormatError};
use thiserror::Error;

/// Everything that can go wrong in the store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// No model matches the reference.
    #[error("model {reference:?} not found")]
    NotFound {
        /// What was asked for.
        reference: String,
    },
    /// A short ID or partial name matches several models.
    #[error("{reference:?} matches several models: {candidates}")]
    Ambiguous {
        /// What was asked for.
        reference: String,
        /// The matches, comma separated.
        candidates: String,
    },
    /// Deleting by ID a model with several tags without force.
    #[error("model {id} has several tags ({tags}); remove them one by one or force the removal")]
    Conflict {
        /// The model ID.
        id: Digest,
        /// Its tags, comma separated.
        tags: String,
    },
    /// Content whose hash is not the expected digest.
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        /// What the name or descriptor promised.
        expected: Digest,
        /// What the bytes hash to.
        actual: Digest,
    },
    /// Content of the wrong length.
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        /// The blob.
        digest: Digest,
        /// Descriptor size.
        expected: u64,
        /// Bytes received.
        actual: u64,
    },
    /// A manifest references a blob the store does not have.
    #[error("blob {0} is missing")]
    MissingBlob(Digest),
    /// An input larger than allowed.
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: String,
        /// The limit.
        limit: u64,
    },
    /// A file that cannot be linked into the store (`package --link`).
    #[error("cannot link {}: {why}", file.display())]
    CannotLink {
        /// The file as named.
        file: std::path::PathBuf,
        /// Why not, in words a user can act on.
        why: String,
    },
    /// A hard-linked blob whose file changed on disk after it was linked.
    #[error("blob {digest} is a hard link to {}, which changed after it was linked ({what}); the store does not serve it. Put the original file back, or run `modelrunnerd fsck --repair` with the daemon stopped and package the file again", file.display())]
    LinkedFileChanged {
        /// The blob.
        digest: Digest,
        /// The linked file.
        file: std::path::PathBuf,
        /// What changed.
        what: String,
    },
    /// A malformed archive, manifest or config.
    #[error(transparent)]
    Format(#[from] FormatError),
    /// Bad input that is not a format problem.
    #[error("{0}")]
    Invalid(String),
    /// A stored entry that cannot be read or does not verify.
    #[error("store entry is broken: {0}")]
    Broken(String),
    /// The index database failed.
    #[error("index: {0}")]
    Index(String),
    /// A filesystem error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StoreError::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Index(e.to_string())
    }
}

impl From<sled::transaction::TransactionError<StoreError>> for StoreError {
    fn from(e: sled::transaction::TransactionError<StoreError>) -> Self {
        match e {
            sled::transaction::TransactionError::Abort(e) => e,
            sled::transaction::TransactionError::Storage(e) => e.into(),
        }
    }
}
