//! Downloading a resolved Hub repository's files into the store and making them a
//! Docker-format artifact, as `modelrunner package` would from the same files.

use std::sync::Arc;

use modelrunner_format::{media, Descriptor, Reference};
use modelrunner_store::{ModelInfo, Store};
use tracing::info;

use super::{hub_url, HubFile, HubResolved};
use crate::client::Registry;
use crate::convert::{package_stored, Made, Part, Role};
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
        let made = blocking(move || assemble(&s, &resolved, &tags)).await?;
        made.warn_untemplated(&sink);
        let info = made.info;
        drop(lease);
        info!(model = %info.id, reference = %reference, cached, "pulled from the Hub");
        report_pulled(&sink, cached, total);
        Ok(info)
    }
}

/// Packages the stored files under their Hub file names (shards are found as `package`
/// finds them).
fn assemble(
    store: &Store,
    resolved: &HubResolved,
    tags: &[Reference],
) -> Result<Made, RegistryError> {
    let parts: Vec<Part> = resolved
        .files()
        .map(|f| Part {
            name: f.path.rsplit('/').next().unwrap_or(&f.path).to_string(),
            digest: f.digest,
            role: if resolved.mmproj.as_ref().is_some_and(|m| m.path == f.path) {
                Role::Mmproj
            } else {
                Role::Weights
            },
        })
        .collect();
    let host = resolved.session.host();
    package_stored(store, &host, &parts, resolved.created, None, tags)
}
