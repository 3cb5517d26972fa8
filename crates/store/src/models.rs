//! Models: add, resolve, list, tag, delete.

use std::collections::HashSet;
use std::fs;
use std::io::Write;

use modelrunner_format::config::{ModelConfig, ParsedConfig};
use modelrunner_format::manifest::MAX_DOCUMENT_BYTES;
use modelrunner_format::{Digest, Manifest, ModelRef, Reference};
use tracing::{info, warn};

use crate::blob::{create_exclusive, fsync_dir};
use crate::error::StoreError;
use crate::index::ModelRecord;
use crate::{Lease, Store};

/// A model as the API shows it.
#[derive(Debug, Clone)]
pub struct ModelInfo {
    /// Model ID (manifest digest).
    pub id: Digest,
    /// Fully qualified tags.
    pub tags: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    /// Docker-shaped config.
    pub config: ModelConfig,
    /// The manifest.
    pub manifest: Manifest,
    /// Bytes of layers and config.
    pub size: u64,
}

/// What a delete did, in Docker's terms.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeleteOutcome {
    /// Tags removed.
    pub untagged: Vec<String>,
    /// The model removed, when its last tag went (or it was removed by ID).
    pub deleted: Option<Digest>,
}

impl Store {
    /// Adds a model whose blobs are all stored already, moving `tags` onto it.
    pub fn add_model(
        &self,
        lease: &Lease<'_>,
        manifest_bytes: &[u8],
        tags: &[Reference],
    ) -> Result<ModelInfo, StoreError> {
        let manifest = Manifest::parse(manifest_bytes)?;
        let id = Digest::of(manifest_bytes);
        for d in manifest.blobs() {
            lease.pin(d.digest);
            if !self.has_blob(&d.digest) {
                return Err(StoreError::MissingBlob(d.digest));
            }
        }
        let cfg_bytes = self.read_blob(&manifest.config.digest, MAX_DOCUMENT_BYTES as u64)?;
        let parsed = ParsedConfig::parse(&manifest.config.media_type, &cfg_bytes)?;
        let layer_digests: Vec<Digest> = manifest.layers.iter().map(|l| l.digest).collect();
        if !parsed.diff_ids.is_empty() && parsed.diff_ids != layer_digests {
            return Err(StoreError::Invalid(
                "the config's diff_ids do not match the manifest's layers (compressed layers are not supported)".into(),
            ));
        }
        self.write_manifest(&id, manifest_bytes)?;
        let rec = ModelRecord {
            id,
            tags: Vec::new(),
            created: parsed.created.map_or(0, |c| c.timestamp()),
            config: manifest.config.digest,
            config_media_type: manifest.config.media_type.clone(),
            layers: layer_digests,
            size: manifest.blobs().map(|d| d.size).sum(),
        };
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        let _guard = self.write_lock.lock().unwrap();
        crate::failpoint("model.before-index");
        let rec = self.index_model(&rec, &tags)?;
        info!(model = %id, tags = ?rec.tags, "model added");
        Ok(ModelInfo {
            id,
            tags: rec.tags,
            created: rec.created,
            config: parsed.config,
            manifest,
            size: rec.size,
        })
    }

    fn write_manifest(&self, id: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        let dest = self.manifest_path(id);
        if fs::symlink_metadata(&dest).is_ok_and(|m| m.is_file()) {
            return Ok(());
        }
        // A random name: two writers of the same manifest must not share a temp file.
        let nonce: u64 = rand::random();
        let tmp = self
            .tmp_dir()
            .join(format!("m-{}-{nonce:016x}.part", id.hex()));
        let mut f = create_exclusive(&tmp).map_err(|e| StoreError::io("creating manifest", e))?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| StoreError::io("writing manifest", e))?;
        fs::rename(&tmp, &dest).map_err(|e| StoreError::io("publishing manifest", e))?;
        fsync_dir(dest.parent().expect("manifest dir"))
    }

    /// Reads and verifies a model's manifest.
    pub fn manifest_bytes(&self, id: &Digest) -> Result<Vec<u8>, StoreError> {
        let path = self.manifest_path(id);
        let bytes =
            fs::read(&path).map_err(|e| StoreError::Broken(format!("manifest {id}: {e}")))?;
        if &Digest::of(&bytes) != id {
            return Err(StoreError::Broken(format!(
                "manifest {id} does not match its digest"
            )));
        }
        Ok(bytes)
    }

    fn info(&self, rec: ModelRecord) -> Result<ModelInfo, StoreError> {
        let manifest = Manifest::parse(&self.manifest_bytes(&rec.id)?)
            .map_err(|e| StoreError::Broken(format!("manifest {}: {e}", rec.id)))?;
        let cfg = self
            .read_blob(&rec.config, MAX_DOCUMENT_BYTES as u64)
            .map_err(|e| StoreError::Broken(format!("config of {}: {e}", rec.id)))?;
        let parsed = ParsedConfig::parse(&rec.config_media_type, &cfg)
            .map_err(|e| StoreError::Broken(format!("config of {}: {e}", rec.id)))?;
        Ok(ModelInfo {
            id: rec.id,
            tags: rec.tags,
            created: rec.created,
            config: parsed.config,
            manifest,
            size: rec.size,
        })
    }

    /// Every model that reads back cleanly; broken ones are logged and skipped.
    pub fn list(&self) -> Result<Vec<ModelInfo>, StoreError> {
        let mut out = Vec::new();
        for r in self.records() {
            match r.and_then(|rec| self.info(rec)) {
                Ok(m) => out.push(m),
                Err(e) => warn!(cause = %e, "skipping broken model"),
            }
        }
        out.sort_by(|a, b| b.created.cmp(&a.created).then(a.id.cmp(&b.id)));
        Ok(out)
    }

    fn resolve_record(&self, reference: &str) -> Result<ModelRecord, StoreError> {
        let not_found = || StoreError::NotFound {
            reference: reference.to_string(),
        };
        match reference.parse::<ModelRef>()? {
            ModelRef::Id(d) => self.record(&d)?.ok_or_else(not_found),
            ModelRef::ShortId(prefix) => {
                let hits: Vec<ModelRecord> = self
                    .records()
                    .into_iter()
                    .flatten()
                    .filter(|r| r.id.hex().starts_with(&prefix))
                    .collect();
                match hits.len() {
                    1 => Ok(hits.into_iter().next().expect("one")),
                    0 => match reference.parse::<Reference>() {
                        Ok(r) => self.resolve_name(&r)?.ok_or_else(not_found),
                        Err(_) => Err(not_found()),
                    },
                    _ => Err(StoreError::Ambiguous {
                        reference: reference.to_string(),
                        candidates: hits
                            .iter()
                            .map(|r| r.id.to_string())
                            .collect::<Vec<_>>()
                            .join(", "),
                    }),
                }
            }
            ModelRef::Name(r) => self.resolve_name(&r)?.ok_or_else(not_found),
        }
    }

    fn resolve_name(&self, r: &Reference) -> Result<Option<ModelRecord>, StoreError> {
        let id = match r.digest() {
            Some(d) => Some(*d),
            None => self.tag_target(&r.to_string())?,
        };
        match id {
            Some(id) => self.record(&id),
            None => Ok(None),
        }
    }

    /// Resolves an ID, short ID, tag or digest reference to a model.
    pub fn resolve(&self, reference: &str) -> Result<ModelInfo, StoreError> {
        self.info(self.resolve_record(reference)?)
    }

    /// Like [`Store::resolve`], then falls back to a unique tag whose last repository
    /// component and tag match (`smollm2` finds `ghcr.io/org/smollm2:latest`).
    pub fn resolve_partial(&self, reference: &str) -> Result<ModelInfo, StoreError> {
        match self.resolve_record(reference) {
            Err(StoreError::NotFound { .. }) => {}
            other => return self.info(other?),
        }
        let wanted = reference.trim().to_ascii_lowercase();
        let (name, tag) = match wanted.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n.to_string(), t.to_string()),
            _ => (wanted.clone(), "latest".to_string()),
        };
        let mut hits: Vec<String> = Vec::new();
        for (t, id) in self.all_tags() {
            let Ok(r) = t.parse::<Reference>() else {
                continue;
            };
            let repo = r.repository();
            let matches_name = repo == name || repo.ends_with(&format!("/{name}"));
            if matches_name
                && r.tag().is_some_and(|x| x.eq_ignore_ascii_case(&tag))
                && !hits.contains(&id)
            {
                hits.push(id);
            }
        }
        match hits.as_slice() {
            [one] => self.resolve(one),
            [] => Err(StoreError::NotFound {
                reference: reference.to_string(),
            }),
            many => Err(StoreError::Ambiguous {
                reference: reference.to_string(),
                candidates: many.join(", "),
            }),
        }
    }

    /// Points `target` at the model `source` resolves to (moving it from any other model).
    pub fn tag(&self, source: &str, target: &Reference) -> Result<ModelInfo, StoreError> {
        if !target.is_tag() {
            return Err(StoreError::Invalid(format!(
                "{target} is a digest reference, not a tag"
            )));
        }
        let rec = self.resolve_record(source)?;
        let _guard = self.write_lock.lock().unwrap();
        let rec = self.index_model(&rec, &[target.to_string()])?;
        info!(model = %rec.id, tag = %target, "tagged");
        self.info(rec)
    }

    /// Removes a tag, or a whole model by ID. A model loses its blobs (those no other
    /// model uses) when its last tag goes. Removing by ID a model with several tags is a
    /// conflict unless `force`.
    pub fn delete(&self, reference: &str, force: bool) -> Result<DeleteOutcome, StoreError> {
        let rec = self.resolve_record(reference)?;
        let by_tag = match reference.parse::<ModelRef>()? {
            ModelRef::Name(r) if r.is_tag() => {
                rec.tags.contains(&r.to_string()).then(|| r.to_string())
            }
            _ => None,
        };
        let _guard = self.write_lock.lock().unwrap();
        let mut out = DeleteOutcome::default();
        match by_tag {
            Some(tag) => {
                let rec = self.index_untag(&tag)?.unwrap_or(rec);
                out.untagged.push(tag);
                if rec.tags.is_empty() {
                    self.remove_model(&rec)?;
                    out.deleted = Some(rec.id);
                }
            }
            _ => {
                if rec.tags.len() > 1 && !force {
                    return Err(StoreError::Conflict {
                        id: rec.id,
                        tags: rec.tags.join(", "),
                    });
                }
                out.untagged = rec.tags.clone();
                self.remove_model(&rec)?;
                out.deleted = Some(rec.id);
            }
        }
        info!(untagged = ?out.untagged, deleted = ?out.deleted.map(|d| d.to_string()), "delete");
        Ok(out)
    }

    /// Every blob a readable index record names.
    pub(crate) fn blobs_in_use(&self) -> HashSet<Digest> {
        self.records()
            .into_iter()
            .flatten()
            .flat_map(|r| r.blobs().copied().collect::<Vec<_>>())
            .collect()
    }

    /// Drops a model from the index, then its manifest, bundle and unshared blobs.
    /// Called with the write lock held.
    fn remove_model(&self, rec: &ModelRecord) -> Result<(), StoreError> {
        self.index_remove(&rec.id)?;
        let still_used = self.blobs_in_use();
        for d in rec.blobs() {
            if !still_used.contains(d) && !self.is_pinned(d) {
                let _ = self.remove_blob_file(d);
            }
        }
        let _ = fs::remove_file(self.manifest_path(&rec.id));
        let _ = fs::remove_dir_all(self.bundle_path(&rec.id));
        Ok(())
    }
}
