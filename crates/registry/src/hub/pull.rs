//! Downloading a resolved Hub repository's files into the store and making them a
//! Docker-format artifact, as `modelrunner package` would from the same files.

use std::path::PathBuf;
use std::sync::Arc;

use modelrunner_format::package::{PackageFormat, PackageSpec};
use modelrunner_format::{media, Descriptor, Reference};
use modelrunner_store::{ModelInfo, Store};
use tracing::info;

use super::{hub_url, HubFile, HubResolved};
use crate::client::Registry;
use crate::error::RegistryError;
use crate::progress::Sink;
use crate::pull::{blocking, missing_blobs, report_pulled};

impl HubResolved {
    /// The files as layer descriptors (what progress reports name).
    pub fn descriptors(&self) -> Vec<Descriptor> {
        self.files()
            .map(|f| Descriptor {
                media_type: if self.mmproj.as_ref().is_some_and(|m| m.path == f.path) {
                    media::MMPROJ
                } else {
                    media::GGUF
                }
                .to_string(),
                size: f.size,
                digest: f.digest,
                urls: None,
                annotations: None,
                artifact_type: None,
            })
            .collect()
    }
}

impl Registry {
    /// Downloads what `resolved` chose (files already stored are re-hashed, not fetched
    /// again), builds the artifact and tags it `reference`, and also with the quant chosen
    /// when `reference` asked for the default.
    pub async fn pull_hub(
        &self,
        store: &Arc<Store>,
        resolved: HubResolved,
        reference: &Reference,
        sink: Sink,
    ) -> Result<ModelInfo, RegistryError> {
        let descriptors = resolved.descriptors();
        let total: u64 = descriptors.iter().map(|d| d.size).sum();
        let lease = Arc::new(store.owned_lease());
        for d in &descriptors {
            lease.pin(d.digest);
        }
        let (s, host) = (store.clone(), resolved.session.host());
        let missing = blocking(move || missing_blobs(&s, descriptors, &host)).await?;
        let cached = missing.is_empty();
        let (session, repo, commit) = (&resolved.session, &resolved.repo, &resolved.commit);
        let files: Vec<&HubFile> = resolved.files().collect();
        self.fetch_all(session, store, &lease, missing, total, &sink, |d| {
            let file = files
                .iter()
                .find(|f| f.digest == d.digest)
                .expect("a chosen file");
            hub_url(&session.base, &[repo, "resolve", commit, &file.path])
        })
        .await?;
        let mut tags = vec![reference.clone()];
        let asked_default = reference
            .tag()
            .is_none_or(|t| t.eq_ignore_ascii_case("latest"));
        if asked_default {
            if let Ok(q) = reference.with_tag(&resolved.quant) {
                tags.push(q);
            }
        }
        let s = store.clone();
        let info = blocking(move || assemble(&s, &resolved, &tags)).await?;
        drop(lease);
        info!(model = %info.id, reference = %reference, cached, "pulled from the Hub");
        report_pulled(&sink, cached, total);
        Ok(info)
    }
}

/// Packages the stored files under their Hub names (links in a scratch directory, so
/// shards are found as `package` finds them) with the digests the download verified.
fn assemble(
    store: &Store,
    resolved: &HubResolved,
    tags: &[Reference],
) -> Result<ModelInfo, RegistryError> {
    let scratch = tempfile::Builder::new()
        .prefix("modelrunner-hub-")
        .tempdir()
        .map_err(|e| RegistryError::Config(format!("a scratch directory: {e}")))?;
    let mut links: Vec<(PathBuf, &HubFile)> = Vec::new();
    for f in resolved.files() {
        let name = f.path.rsplit('/').next().unwrap_or(&f.path);
        let link = scratch.path().join(name);
        if links.iter().any(|(l, _)| *l == link) {
            return Err(RegistryError::Invalid {
                registry: resolved.session.host(),
                reason: format!("two chosen files are named {name}"),
            });
        }
        std::os::unix::fs::symlink(store.blob_path(&f.digest), &link)
            .map_err(|e| RegistryError::Config(format!("linking {name}: {e}")))?;
        links.push((link, f));
    }
    let spec = PackageSpec {
        gguf: links[0].0.clone(),
        mmproj: resolved
            .mmproj
            .as_ref()
            .and_then(|m| links.iter().find(|(_, f)| f.path == m.path))
            .map(|(l, _)| l.clone()),
        format: PackageFormat::Docker,
        created: Some(resolved.created),
        ..PackageSpec::default()
    };
    let plan = spec.plan()?;
    let digests: Vec<_> = plan
        .layers
        .iter()
        .map(|l| {
            links
                .iter()
                .find(|(p, _)| *p == l.path)
                .map(|(_, f)| f.digest)
                .expect("every layer is a linked file")
        })
        .collect();
    let built = plan.build_known(&digests)?;
    let lease = store.lease();
    store.put_blob(&lease, &built.config)?;
    Ok(store.add_model(&lease, &built.manifest, tags)?)
}
