//! Blobs served from files the store does not hold: GGUFs on a read-only volume
//! (`modelrunnerd --models-dir`, a Kubernetes image volume, KServe's `/mnt/models`).
//!
//! The file is hashed where it lies, never copied, linked or written. The store keeps
//! only a record under `external/<hex>`: the file's canonical path, size, mtime, device
//! and inode. Such a blob exists for the store while the file still matches its record
//! (one `stat`); a changed file is refused naming it (409 `linked_file_changed`), as a
//! hard link is, and `fsck` re-hashes it. A bundle names the file with a symlink the
//! store made itself. Removing the model, gc and purge drop the record, never the file.
//! A later adoption of the same unchanged file reuses the record without hashing again.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use modelrunner_format::media::{classify, LayerKind};
use modelrunner_format::package::PackageSpec;
use modelrunner_format::{Digest, Reference};
use tracing::{info, warn};

use crate::archive::LoadLimits;
use crate::blob::{hash_file, verify_file};
use crate::error::StoreError;
use crate::link::{LinkKind, LinkRecord, Linked};
use crate::maintenance::FsckReport;
use crate::{Lease, ModelInfo, Store};

impl Store {
    fn external_dir(&self) -> PathBuf {
        self.root().join("external")
    }

    fn external_record_path(&self, d: &Digest) -> PathBuf {
        self.external_dir().join(d.hex())
    }

    pub(crate) fn external_record(&self, d: &Digest) -> Result<Option<LinkRecord>, StoreError> {
        crate::link::read_record(&self.external_record_path(d))
    }

    /// True when the blob is an external file (changed or not).
    pub(crate) fn is_external(&self, d: &Digest) -> bool {
        self.external_record_path(d).is_file()
    }

    /// The file of an external blob (`None` when the blob is not one), refused naming it
    /// when it changed or went away since it was recorded.
    pub(crate) fn external_source(&self, d: &Digest) -> Result<Option<PathBuf>, StoreError> {
        let Some(rec) = self.external_record(d)? else {
            return Ok(None);
        };
        let what = match fs::metadata(&rec.file) {
            Err(e) => Some(format!("it cannot be read ({e})")),
            Ok(m) => rec.differs(&m),
        };
        match what {
            None => Ok(Some(rec.file)),
            Some(what) => Err(StoreError::LinkedFileChanged {
                digest: *d,
                file: rec.file,
                what,
            }),
        }
    }

    /// The file of an external blob while it still matches its record.
    pub(crate) fn external_file(&self, d: &Digest) -> Option<PathBuf> {
        self.external_source(d).ok().flatten()
    }

    pub(crate) fn forget_external(&self, d: &Digest) {
        match fs::remove_file(self.external_record_path(d)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                warn!(digest = %d, cause = %e, "cannot remove an external record")
            }
            _ => {}
        }
    }

    /// The digests of every external record, for gc and fsck.
    pub(crate) fn external_digests(&self) -> Vec<Digest> {
        let Ok(entries) = fs::read_dir(self.external_dir()) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| Digest::from_hex(n).ok())
            })
            .collect()
    }

    /// Hashes the GGUF file at `path` where it lies and records it as the blob of its
    /// digest (pinned by `lease` until the model that uses it is added). The file is
    /// never opened for writing. An unchanged file recorded before is not hashed again.
    pub fn adopt_file(&self, lease: &Lease<'_>, path: &Path) -> Result<Linked, StoreError> {
        let (file, meta) = crate::link::check_source(path)?;
        let linked = |digest, kind| Linked {
            path: path.to_path_buf(),
            digest,
            size: meta.len(),
            kind,
        };
        for d in self.external_digests() {
            if let Ok(Some(rec)) = self.external_record(&d) {
                if rec.file == file && rec.differs(&meta).is_none() {
                    lease.pin(d);
                    return Ok(linked(d, LinkKind::External));
                }
            }
        }
        info!(file = %file.display(), size = meta.len(), "hashing a file of the models directory");
        let (digest, _) = hash_file(&file)?;
        let after = fs::metadata(&file)
            .map_err(|e| StoreError::io(format!("checking {}", file.display()), e))?;
        let rec = LinkRecord::of(&file, &meta);
        if !rec.same_file(&after) || rec.change(&after).is_some() {
            return Err(StoreError::CannotLink {
                file,
                why: "it changed while it was being hashed".into(),
            });
        }
        lease.pin(digest);
        if crate::is_regular_file(&self.blob_path(&digest)) {
            return Ok(linked(digest, LinkKind::AlreadyStored));
        }
        fs::create_dir_all(self.external_dir())
            .map_err(|e| StoreError::io("creating external/", e))?;
        crate::link::write_record(self, &self.external_record_path(&digest), &rec)?;
        info!(file = %file.display(), %digest, "serving a file in place");
        Ok(linked(digest, LinkKind::External))
    }

    /// Adds the model `spec` describes under `tag`, its GGUF layers (model, shards,
    /// projector) served from their files in place (see [`Store::adopt_file`]); small
    /// layers (template, licenses) are stored as usual. The creation time is the
    /// GGUF's mtime unless `spec` sets one, so the same files give the same model ID.
    pub fn add_external_model(
        &self,
        spec: &PackageSpec,
        tag: &Reference,
    ) -> Result<ModelInfo, StoreError> {
        let mut spec = spec.clone();
        if spec.created.is_none() {
            let mtime = fs::metadata(&spec.gguf)
                .and_then(|m| m.modified())
                .map_err(|e| StoreError::io(format!("checking {}", spec.gguf.display()), e))?;
            spec.created = Some(mtime.into());
        }
        let plan = spec.plan().map_err(StoreError::Format)?;
        let lease = self.lease();
        let mut digests = Vec::with_capacity(plan.layers.len());
        let mut external = Vec::new();
        for l in &plan.layers {
            let name = l.path.file_name().and_then(|n| n.to_str());
            let kind = classify(l.media_type, name);
            if matches!(kind, LayerKind::Gguf | LayerKind::Mmproj) {
                let a = self.adopt_file(&lease, &l.path)?;
                external.push(a.digest);
                digests.push(a.digest);
            } else {
                let (d, _) = hash_file(&l.path)?;
                digests.push(d);
            }
        }
        let built = plan.build_known(&digests).map_err(StoreError::Format)?;
        let mut tar = Vec::new();
        built
            .write_tar_without(&mut tar, &external, &mut |_| {})
            .map_err(StoreError::Format)?;
        let mut added = Vec::new();
        let loaded = self.load_entries(
            &lease,
            &tar[..],
            LoadLimits::default(),
            &external,
            &mut added,
        );
        if loaded.is_err() {
            self.roll_back(&added);
        }
        self.tag(&loaded?.id.to_string(), tag)
    }

    /// `fsck`'s part: re-hashes every file served in place. Bytes that no longer hash to
    /// the record's digest make the blob corrupt (a repair forgets the record; the file is
    /// the user's and stays); a file only touched is recorded anew by a repair.
    pub(crate) fn fsck_external(&self, repair: bool, report: &mut FsckReport) {
        for d in self.external_digests() {
            if self.is_pinned(&d) {
                continue;
            }
            let rec = match self.external_record(&d) {
                Ok(Some(rec)) => rec,
                Ok(None) => continue,
                Err(e) => {
                    warn!(digest = %d, cause = %e, "an unreadable external record");
                    report.stray_files.push(format!("external/{}", d.hex()));
                    if repair {
                        self.forget_external(&d);
                    }
                    continue;
                }
            };
            report.blobs_checked += 1;
            if verify_file(&rec.file, &d).is_err() {
                warn!(digest = %d, file = %rec.file.display(), "a file served in place changed");
                report.corrupt_blobs.push(d);
                report.changed_links.push((d, rec.file));
                if repair {
                    self.forget_external(&d);
                }
                continue;
            }
            let Ok(meta) = fs::metadata(&rec.file) else {
                continue;
            };
            if rec.differs(&meta).is_some() {
                warn!(digest = %d, file = %rec.file.display(), "a file served in place was touched; its bytes are intact");
                if repair {
                    let fresh = LinkRecord::of(&rec.file, &meta);
                    let _ = crate::link::write_record(self, &self.external_record_path(&d), &fresh);
                }
                report.changed_links.push((d, rec.file));
            }
        }
    }
}
