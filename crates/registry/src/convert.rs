//! Artifacts made from stored blobs that came in another shape (a Hub repository's files,
//! an Ollama manifest's layers): packaged as `modelrunner package` would package the
//! same files, with the digests the download verified.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use modelrunner_format::gguf::GgufFile;
use modelrunner_format::package::{PackageFormat, PackageSpec};
use modelrunner_format::{Digest, Reference};
use modelrunner_store::{ModelInfo, Store};

use crate::error::RegistryError;
use crate::progress::{Kind, Mode, Progress, Sink};
use tracing::warn;

/// What a stored file is in the artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// GGUF weights (the first is the first shard).
    Weights,
    /// A multimodal projector.
    Mmproj,
    /// A license text.
    License,
}

/// One stored blob and the file name it has in the artifact.
pub(crate) struct Part {
    pub name: String,
    pub digest: Digest,
    pub role: Role,
}

/// What was made.
pub(crate) struct Made {
    pub info: ModelInfo,
    /// The GGUF carries a chat template (otherwise chat falls back to ChatML).
    pub has_template: bool,
}

impl Made {
    /// Says on `sink` (and in the log) that chat falls back to ChatML, when it does.
    pub fn warn_untemplated(&self, sink: &Sink) {
        if self.has_template {
            return;
        }
        let note = "the GGUF has no chat template of its own: chat uses ChatML";
        warn!(model = %self.info.id, "{note}");
        if let Some(s) = sink {
            let _ = s.send(Progress::plain(Kind::Warning, Mode::Pull, note));
        }
    }
}

/// Packages `parts` (all stored) into a Docker-format artifact created at `created`, and
/// adds it to the store tagged `tags`. Names must differ.
pub(crate) fn package_stored(
    store: &Store,
    registry: &str,
    parts: &[Part],
    created: DateTime<Utc>,
    context_size: Option<u64>,
    tags: &[Reference],
) -> Result<Made, RegistryError> {
    let scratch = tempfile::Builder::new()
        .prefix("modelrunner-convert-")
        .tempdir()
        .map_err(|e| RegistryError::Config(format!("a scratch directory: {e}")))?;
    let mut links: Vec<(PathBuf, &Part)> = Vec::new();
    for p in parts {
        let link = scratch.path().join(&p.name);
        if p.name.contains('/') || links.iter().any(|(l, _)| *l == link) {
            return Err(RegistryError::Invalid {
                registry: registry.to_string(),
                reason: format!("the files cannot be named {:?} in the artifact", p.name),
            });
        }
        std::os::unix::fs::symlink(store.blob_path(&p.digest), &link)
            .map_err(|e| RegistryError::Config(format!("linking {}: {e}", p.name)))?;
        links.push((link, p));
    }
    let of = |role: Role| {
        links
            .iter()
            .filter(move |(_, p)| p.role == role)
            .map(|(l, _)| l.clone())
    };
    let gguf = of(Role::Weights)
        .next()
        .ok_or_else(|| RegistryError::Invalid {
            registry: registry.to_string(),
            reason: "no GGUF weights".into(),
        })?;
    let has_template = GgufFile::open(&gguf)
        .map(|g| g.get("tokenizer.chat_template").is_some())
        .unwrap_or(false);
    let spec = PackageSpec {
        gguf,
        mmproj: of(Role::Mmproj).next(),
        licenses: of(Role::License).collect(),
        context_size,
        format: PackageFormat::Docker,
        created: Some(created),
        ..PackageSpec::default()
    };
    let plan = spec.plan()?;
    let digests: Vec<Digest> = plan
        .layers
        .iter()
        .map(|l| {
            links
                .iter()
                .find(|(p, _)| *p == l.path)
                .map(|(_, part)| part.digest)
                .expect("every layer is a linked part")
        })
        .collect();
    let built = plan.build_known(&digests)?;
    let lease = store.lease();
    store.put_blob(&lease, &built.config)?;
    let info = store.add_model(&lease, &built.manifest, tags)?;
    Ok(Made { info, has_template })
}
