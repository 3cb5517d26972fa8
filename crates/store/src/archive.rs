//! Loading and exporting models in the tar format of `POST /models/load`.

use std::io::{Read, Write};

use modelrunner_format::manifest::MAX_DOCUMENT_BYTES;
use modelrunner_format::tarball::{
    archive_len, classify_entry, EntryName, TarWriter, VerifiedReader,
};
use modelrunner_format::{Digest, Manifest};
use tracing::{info, warn};

use crate::error::StoreError;
use crate::link::{LinkKind, Linked};
use crate::models::ModelInfo;
use crate::Store;

/// Bounds on what an archive may bring.
#[derive(Debug, Clone, Copy)]
pub struct LoadLimits {
    /// Total bytes of all entries.
    pub max_total: u64,
}

impl Default for LoadLimits {
    fn default() -> Self {
        LoadLimits { max_total: 1 << 40 }
    }
}

impl Store {
    /// Loads a model archive. On any error the store is left as it was: blobs this load
    /// added are removed again, and nothing is indexed.
    pub fn load_archive(
        &self,
        input: impl Read,
        limits: LoadLimits,
    ) -> Result<ModelInfo, StoreError> {
        self.load_archive_linking(input, limits, &[], false)
            .map(|(m, _)| m)
    }

    /// Loads an archive whose large layers are files on this machine, named in `links`
    /// and left out of the archive: each is linked into the store first (see
    /// [`Store::link_file`]; with `allow_copy`, copied when it cannot be), and each must
    /// be a layer of the archive's manifest. On any failure nothing is kept.
    pub fn load_archive_linking(
        &self,
        input: impl Read,
        limits: LoadLimits,
        links: &[std::path::PathBuf],
        allow_copy: bool,
    ) -> Result<(ModelInfo, Vec<Linked>), StoreError> {
        let lease = self.lease();
        let mut added: Vec<Digest> = Vec::new();
        let mut linked = Vec::new();
        let result = (|| {
            for path in links {
                let l = self.link_file(&lease, path, allow_copy)?;
                if l.kind != LinkKind::AlreadyStored {
                    added.push(l.digest);
                }
                linked.push(l);
            }
            let digests: Vec<Digest> = linked.iter().map(|l| l.digest).collect();
            self.load_entries(&lease, input, limits, &digests, &mut added)
        })();
        if let Err(e) = &result {
            warn!(cause = %e, added = added.len(), "load failed; rolling back");
            self.roll_back(&added);
        }
        result.map(|m| (m, linked))
    }

    /// Removes what a failed load added that no model uses.
    pub(crate) fn roll_back(&self, added: &[Digest]) {
        let _guard = self.write_lock.lock().unwrap();
        let used = self.blobs_in_use();
        for d in added {
            if !used.contains(d) {
                let _ = self.remove_blob_file(d);
            }
        }
    }

    pub(crate) fn load_entries(
        &self,
        lease: &crate::Lease<'_>,
        input: impl Read,
        limits: LoadLimits,
        linked: &[Digest],
        added: &mut Vec<Digest>,
    ) -> Result<ModelInfo, StoreError> {
        let mut archive = tar::Archive::new(input);
        let bad =
            |reason: String| StoreError::Invalid(format!("malformed model archive: {reason}"));
        let mut total = 0u64;
        let mut manifest: Option<Vec<u8>> = None;
        for entry in archive.entries().map_err(|e| bad(e.to_string()))? {
            let mut entry = entry.map_err(|e| bad(e.to_string()))?;
            let path = entry
                .path()
                .map_err(|e| bad(e.to_string()))?
                .to_string_lossy()
                .to_string();
            let kind = entry.header().entry_type();
            let size = entry.header().size().map_err(|e| bad(e.to_string()))?;
            total = total.saturating_add(size);
            if total > limits.max_total {
                return Err(StoreError::TooLarge {
                    what: "model archive".into(),
                    limit: limits.max_total,
                });
            }
            if manifest.is_some() {
                return Err(bad(format!("entry {path:?} after manifest.json")));
            }
            let name = classify_entry(&path)?;
            match (name, kind) {
                (EntryName::Dir, tar::EntryType::Directory) => {}
                (EntryName::Blob(d), tar::EntryType::Regular) => {
                    if self.has_blob(&d) {
                        lease.pin(d);
                        std::io::copy(&mut entry, &mut std::io::sink())
                            .map_err(|e| bad(e.to_string()))?;
                        continue;
                    }
                    let mut w = lease.blob_writer(Some((d, size)))?;
                    w.copy_from(&mut entry).map_err(|e| match e {
                        StoreError::Io { source, .. } => bad(source.to_string()),
                        other => other,
                    })?;
                    w.commit()?;
                    added.push(d);
                }
                (EntryName::Manifest, tar::EntryType::Regular) => {
                    if size > MAX_DOCUMENT_BYTES as u64 {
                        return Err(StoreError::TooLarge {
                            what: "manifest.json".into(),
                            limit: MAX_DOCUMENT_BYTES as u64,
                        });
                    }
                    let mut buf = Vec::with_capacity(size as usize);
                    entry
                        .read_to_end(&mut buf)
                        .map_err(|e| bad(e.to_string()))?;
                    manifest = Some(buf);
                }
                (_, other) => {
                    return Err(bad(format!(
                        "entry {path:?} has unsupported type {other:?}"
                    )))
                }
            }
        }
        let manifest = manifest.ok_or_else(|| bad("no manifest.json".into()))?;
        let parsed = Manifest::parse(&manifest)?;
        if let Some(stray) = linked
            .iter()
            .find(|d| !parsed.layers.iter().any(|l| l.digest == **d))
        {
            return Err(bad(format!(
                "a linked file hashes to {stray}, which is not a layer of the manifest (was it changed after it was packaged?)"
            )));
        }
        for d in parsed.blobs() {
            if !self.has_blob(&d.digest) {
                return Err(bad(format!(
                    "blob {} is neither in the archive nor in the store",
                    d.digest
                )));
            }
            let actual = self.blob_len(&d.digest).unwrap_or(0);
            if actual != d.size {
                return Err(StoreError::SizeMismatch {
                    digest: d.digest,
                    expected: d.size,
                    actual,
                });
            }
        }
        let info = self.add_model(lease, &manifest, &[])?;
        info!(model = %info.id, blobs = added.len(), "archive loaded");
        Ok(info)
    }

    /// The exact length of a model's archive, after checking that every blob is there
    /// with its size (what can be known before the first byte is sent).
    pub fn export_len(&self, reference: &str) -> Result<u64, StoreError> {
        let model = self.resolve(reference)?;
        let manifest = self.manifest_bytes(&model.id)?;
        let mut sizes = Vec::new();
        for d in model.manifest.blobs() {
            self.checked_blob(&d.digest, d.size)?;
            sizes.push(d.size);
        }
        Ok(archive_len(sizes, manifest.len() as u64))
    }

    /// A blob's file, checked to have `size` bytes.
    fn checked_blob(&self, digest: &Digest, size: u64) -> Result<std::fs::File, StoreError> {
        let f = self.open_blob(digest)?;
        let len = f
            .metadata()
            .map_err(|e| StoreError::io("reading blob", e))?
            .len();
        if len != size {
            return Err(StoreError::Broken(format!(
                "blob {digest} has {len} bytes, expected {size}"
            )));
        }
        Ok(f)
    }

    /// Writes a model as an archive: layers, config, then the manifest. Every blob's
    /// bytes are checked against its digest as they are written; a damaged one fails the
    /// export.
    pub fn export(&self, reference: &str, out: impl Write) -> Result<(), StoreError> {
        let model = self.resolve(reference)?;
        let manifest = self.manifest_bytes(&model.id)?;
        let io = |e| StoreError::io("writing the archive", e);
        let mut tar = TarWriter::new(out).map_err(io)?;
        for d in model.manifest.blobs() {
            let f = self.checked_blob(&d.digest, d.size)?;
            let data = VerifiedReader::new(f, d.digest, d.size);
            tar.blob(&d.digest, d.size, data).map_err(io)?;
        }
        tar.finish(&manifest).map_err(io)?;
        Ok(())
    }
}
