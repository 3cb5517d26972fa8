//! Garbage collection, `fsck`, disk usage and purge.

use std::collections::HashSet;
use std::fs;

use modelrunner_format::Digest;
use tracing::{info, warn};

use crate::blob::verify_file;
use crate::error::StoreError;
use crate::Store;

/// What garbage collection removed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GcReport {
    /// Blobs removed.
    pub blobs_removed: Vec<Digest>,
    /// Manifests removed.
    pub manifests_removed: Vec<Digest>,
    /// Bytes freed.
    pub bytes_freed: u64,
}

/// What `fsck` found (and, when repairing, fixed).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FsckReport {
    /// Blobs checked.
    pub blobs_checked: usize,
    /// Blobs whose content does not match their name.
    pub corrupt_blobs: Vec<Digest>,
    /// Files in the blob directory that are not named by a digest, or not regular files,
    /// and link or external records that do not parse (`links/<hex>`, `external/<hex>`).
    pub stray_files: Vec<String>,
    /// Hard-linked blobs whose file changed after it was linked, with the file: those
    /// whose bytes no longer verify are in `corrupt_blobs` too (and removed from the store
    /// by a repair, the file left alone); those only touched (same bytes, new mtime) are
    /// recorded anew by a repair.
    pub changed_links: Vec<(Digest, std::path::PathBuf)>,
    /// Models with a missing or bad manifest, config or layer, with the reason.
    pub broken_models: Vec<(Digest, String)>,
    /// Whether corrupt blobs and stray files were removed.
    pub repaired: bool,
}

impl FsckReport {
    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.corrupt_blobs.is_empty()
            && (self.changed_links.is_empty() || self.repaired)
            && self.stray_files.is_empty()
            && self.broken_models.is_empty()
    }
}

/// Bytes used by the store.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DiskUsage {
    /// Blobs and manifests.
    pub models_bytes: u64,
}

impl Store {
    /// Every blob referenced by an index entry, readable or not.
    fn referenced(&self) -> (HashSet<Digest>, HashSet<Digest>) {
        let mut blobs = HashSet::new();
        let mut manifests = HashSet::new();
        for rec in self.records().into_iter().flatten() {
            manifests.insert(rec.id);
            blobs.extend(rec.blobs().copied());
        }
        (blobs, manifests)
    }

    /// Removes blobs and manifests no model references, except pinned ones (writes in
    /// progress). Files whose names are not digests are left for `fsck`.
    pub fn gc(&self) -> Result<GcReport, StoreError> {
        let _guard = self.write_lock.lock().unwrap();
        let (blobs, manifests) = self.referenced();
        let mut report = GcReport::default();
        for (dir, keep, out) in [
            ("blobs/sha256", &blobs, &mut report.blobs_removed),
            (
                "manifests/sha256",
                &manifests,
                &mut report.manifests_removed,
            ),
        ] {
            let entries = fs::read_dir(self.root().join(dir))
                .map_err(|e| StoreError::io(format!("listing {dir}"), e))?;
            for e in entries.flatten() {
                let Some(d) = e
                    .file_name()
                    .to_str()
                    .and_then(|n| Digest::from_hex(n).ok())
                else {
                    continue;
                };
                if keep.contains(&d) || self.is_pinned(&d) {
                    continue;
                }
                let size = e.metadata().map(|m| m.len()).unwrap_or(0);
                let removed = if dir == "blobs/sha256" {
                    self.remove_blob_file(&d)
                } else {
                    fs::remove_file(e.path())
                };
                match removed {
                    Ok(()) => {
                        report.bytes_freed += size;
                        out.push(d);
                    }
                    Err(err) => warn!(digest = %d, cause = %err, "gc cannot remove"),
                }
            }
        }
        self.prune_link_records();
        // Records of files served in place that no model uses any more.
        for d in self.external_digests() {
            if !blobs.contains(&d) && !self.is_pinned(&d) {
                self.forget_external(&d);
                report.blobs_removed.push(d);
            }
        }
        info!(
            blobs = report.blobs_removed.len(),
            bytes = report.bytes_freed,
            "gc done"
        );
        Ok(report)
    }

    /// What a stored blob is worth, re-hashed: `None` when absent, `Some(size)` when it
    /// hashes to its name. A damaged blob (other bytes, a directory, a link) is removed so
    /// that the caller can fetch it again (damaged bytes are worth keeping for no one).
    pub fn check_blob(&self, d: &Digest) -> Result<Option<u64>, StoreError> {
        let path = self.blob_path(d);
        let meta = match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StoreError::io(format!("checking {}", path.display()), e)),
            Ok(m) => m,
        };
        if meta.is_file() {
            match verify_file(&path, d) {
                Ok(size) => return Ok(Some(size)),
                Err(StoreError::DigestMismatch { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        warn!(digest = %d, "a stored blob is damaged; removing it so that it is fetched again");
        self.remove_blob_file(d)
            .map_err(|e| StoreError::io(format!("removing {}", path.display()), e))?;
        Ok(None)
    }

    /// Re-hashes every blob and checks every model. With `repair`, removes corrupt blobs
    /// and stray files (models that needed them stay listed as broken).
    pub fn fsck(&self, repair: bool) -> Result<FsckReport, StoreError> {
        let mut report = FsckReport {
            repaired: repair,
            ..FsckReport::default()
        };
        let dir = self.root().join("blobs/sha256");
        let entries = fs::read_dir(&dir).map_err(|e| StoreError::io("listing blobs", e))?;
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let is_file = e.file_type().is_ok_and(|t| t.is_file());
            let Some(d) = Digest::from_hex(&name).ok().filter(|_| is_file) else {
                report.stray_files.push(format!("blobs/sha256/{name}"));
                if repair {
                    let p = e.path();
                    let _ = if p.is_dir() && !p.is_symlink() {
                        fs::remove_dir_all(&p)
                    } else {
                        fs::remove_file(&p)
                    };
                }
                continue;
            };
            report.blobs_checked += 1;
            if self.is_pinned(&d) {
                continue;
            }
            if verify_file(&e.path(), &d).is_err() {
                warn!(digest = %d, "corrupt blob");
                report.corrupt_blobs.push(d);
                if let Ok(Some(rec)) = self.link_record(&d) {
                    report.changed_links.push((d, rec.file));
                }
                if repair {
                    let _ = self.remove_blob_file(&d);
                }
            } else {
                match self.refresh_link(&d, repair) {
                    Ok(None) => {}
                    Ok(Some(file)) => {
                        // Touched, not changed: the bytes still hash to the name.
                        warn!(digest = %d, file = %file.display(), "a linked file was touched; its bytes are intact");
                        report.changed_links.push((d, file));
                    }
                    // A record that does not parse names no file: it is listed, and a
                    // repair drops it (the blob's bytes verified, so it is kept as the
                    // store's own).
                    Err(StoreError::Broken(why)) => {
                        warn!(digest = %d, cause = %why, "an unreadable link record");
                        report.stray_files.push(format!("links/{}", d.hex()));
                        if repair {
                            self.forget_link(&d);
                        }
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        self.fsck_external(repair, &mut report);
        for r in self.records() {
            let rec = match r {
                Ok(rec) => rec,
                Err(e) => {
                    warn!(cause = %e, "unreadable index record");
                    continue;
                }
            };
            let problem = match self.resolve(&rec.id.to_string()) {
                Err(e) => Some(e.to_string()),
                Ok(_) => rec
                    .blobs()
                    .find(|d| !self.has_blob(d) || report.corrupt_blobs.contains(d))
                    .map(|d| format!("blob {d} is missing or corrupt")),
            };
            if let Some(p) = problem {
                report.broken_models.push((rec.id, p));
            }
        }
        Ok(report)
    }

    /// Bytes used by blobs and manifests.
    pub fn disk_usage(&self) -> Result<DiskUsage, StoreError> {
        let mut total = 0;
        for dir in ["blobs/sha256", "manifests/sha256"] {
            let entries = fs::read_dir(self.root().join(dir))
                .map_err(|e| StoreError::io(format!("listing {dir}"), e))?;
            total += entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum::<u64>();
        }
        Ok(DiskUsage {
            models_bytes: total,
        })
    }

    /// Removes every model, tag, blob and bundle.
    pub fn purge(&self) -> Result<(), StoreError> {
        let _guard = self.write_lock.lock().unwrap();
        self.index_clear()?;
        for dir in [
            "blobs/sha256",
            "manifests/sha256",
            "bundles/sha256",
            "links",
            "external",
        ] {
            let p = self.root().join(dir);
            let entries =
                fs::read_dir(&p).map_err(|e| StoreError::io(format!("listing {dir}"), e))?;
            for e in entries.flatten() {
                let d = e
                    .file_name()
                    .to_str()
                    .and_then(|n| Digest::from_hex(n).ok());
                if d.is_some_and(|d| self.is_pinned(&d)) {
                    continue;
                }
                let path = e.path();
                let r = if e.file_type().is_ok_and(|t| t.is_dir()) {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                r.map_err(|err| StoreError::io(format!("removing {}", path.display()), err))?;
            }
        }
        info!("store purged");
        Ok(())
    }
}
