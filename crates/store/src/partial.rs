//! Resumable downloads: a blob arrives in pieces under `partial/sha256/<hex>`, hashed as it
//! is written, and becomes visible at its content address only after its size and digest
//! are checked. An interrupted download keeps its bytes so the next pull can ask the
//! registry for the rest.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use modelrunner_format::{Digest, Hasher};
use tracing::{debug, info, warn};

use crate::blob::fsync_dir;
use crate::error::StoreError;
use crate::Store;

/// Partial downloads untouched for this long are removed when the store opens.
pub const PARTIAL_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Blobs pinned for as long as this value lives; unlike [`crate::Lease`] it owns its
/// store handle, so async tasks can hold it across awaits.
pub struct OwnedLease {
    store: Arc<Store>,
    pinned: Mutex<Vec<Digest>>,
}

impl OwnedLease {
    /// Pins a digest until the lease is dropped.
    pub fn pin(&self, d: Digest) {
        *self.store.pins.lock().unwrap().entry(d).or_default() += 1;
        self.pinned.lock().unwrap().push(d);
    }
}

impl Drop for OwnedLease {
    fn drop(&mut self) {
        self.store.unpin(self.pinned.get_mut().unwrap().drain(..));
    }
}

/// A blob being downloaded, possibly resumed from an earlier attempt.
pub struct PartialBlob {
    store: Arc<Store>,
    digest: Digest,
    size: u64,
    path: PathBuf,
    file: File,
    hasher: Hasher,
}

impl Store {
    /// An owned lease (see [`OwnedLease`]).
    pub fn owned_lease(self: &Arc<Self>) -> OwnedLease {
        OwnedLease {
            store: self.clone(),
            pinned: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn partial_dir(&self) -> PathBuf {
        self.root.join("partial/sha256")
    }

    /// Opens the partial download of `digest` (`size` bytes), keeping the bytes an
    /// earlier attempt left and hashing them again. One writer per digest at a time:
    /// a second one is refused until the first is dropped.
    pub fn partial(
        self: &Arc<Self>,
        lease: &OwnedLease,
        digest: Digest,
        size: u64,
    ) -> Result<PartialBlob, StoreError> {
        lease.pin(digest);
        if !self.partials.lock().unwrap().insert(digest) {
            return Err(StoreError::Invalid(format!(
                "blob {digest} is already being downloaded"
            )));
        }
        let opened = self.open_partial(digest, size);
        if opened.is_err() {
            self.partials.lock().unwrap().remove(&digest);
        }
        opened
    }

    fn open_partial(
        self: &Arc<Self>,
        digest: Digest,
        size: u64,
    ) -> Result<PartialBlob, StoreError> {
        let path = self.partial_dir().join(digest.hex());
        let io_err = |what: &str, e| StoreError::io(format!("{what} {}", path.display()), e);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| io_err("opening", e))?;
        let meta = file.metadata().map_err(|e| io_err("reading", e))?;
        if !meta.is_file() {
            return Err(StoreError::Invalid(format!(
                "{} is not a regular file",
                path.display()
            )));
        }
        let mut hasher = Hasher::new();
        if meta.len() > size {
            file.set_len(0).map_err(|e| io_err("truncating", e))?;
        } else if meta.len() > 0 {
            file.seek(io::SeekFrom::Start(0))
                .map_err(|e| io_err("reading", e))?;
            hasher
                .update_from(&mut (&file).take(meta.len()), &mut |_| {})
                .map_err(|e| io_err("reading", e))?;
            debug!(%digest, have = meta.len(), size, "resuming a partial download");
        }
        Ok(PartialBlob {
            store: self.clone(),
            digest,
            size,
            path,
            file,
            hasher,
        })
    }

    /// Removes partial downloads nobody touched for [`PARTIAL_RETENTION`].
    pub(crate) fn clean_partials(&self) {
        let Ok(entries) = fs::read_dir(self.partial_dir()) else {
            return;
        };
        let now = SystemTime::now();
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > PARTIAL_RETENTION);
            let named = e
                .file_name()
                .to_str()
                .is_some_and(|n| Digest::from_hex(n).is_ok());
            let plain = e.file_type().is_ok_and(|t| t.is_file());
            if old || !named || !plain {
                info!(path = %e.path().display(), "removing a stale partial download");
                let real_dir = e.file_type().is_ok_and(|t| t.is_dir());
                let removed = if real_dir {
                    fs::remove_dir_all(e.path())
                } else {
                    fs::remove_file(e.path())
                };
                if let Err(err) = removed {
                    warn!(path = %e.path().display(), cause = %err, "cannot remove");
                }
            }
        }
    }
}

impl PartialBlob {
    /// Bytes already here: where the download continues.
    pub fn offset(&self) -> u64 {
        self.hasher.len()
    }

    /// The expected size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The expected digest.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// Drops what is here and starts from zero (the registry ignored the Range).
    pub fn restart(&mut self) -> Result<(), StoreError> {
        self.file
            .set_len(0)
            .map_err(|e| StoreError::io(format!("truncating {}", self.path.display()), e))?;
        self.hasher = Hasher::new();
        Ok(())
    }

    /// Appends bytes; more than the expected size is an error (and the extra is not
    /// written).
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let after = self.offset() + bytes.len() as u64;
        if after > self.size {
            return Err(StoreError::SizeMismatch {
                digest: self.digest,
                expected: self.size,
                actual: after,
            });
        }
        self.file
            .write_all(bytes)
            .map_err(|e| StoreError::io(format!("writing {}", self.path.display()), e))?;
        self.hasher.update(bytes);
        Ok(())
    }

    /// Verifies size and digest, syncs, and publishes the blob at its content address.
    /// A digest mismatch deletes the partial file: those bytes will never be right.
    pub fn commit(mut self) -> Result<Digest, StoreError> {
        let have = self.offset();
        if have != self.size {
            return Err(StoreError::SizeMismatch {
                digest: self.digest,
                expected: self.size,
                actual: have,
            });
        }
        let actual = std::mem::take(&mut self.hasher).finish();
        if actual != self.digest {
            let _ = fs::remove_file(&self.path);
            return Err(StoreError::DigestMismatch {
                expected: self.digest,
                actual,
            });
        }
        self.file
            .sync_all()
            .map_err(|e| StoreError::io(format!("syncing {}", self.path.display()), e))?;
        let dest = self.store.blob_path(&self.digest);
        fs::rename(&self.path, &dest)
            .map_err(|e| StoreError::io(format!("publishing {}", dest.display()), e))?;
        fsync_dir(dest.parent().expect("blob dir"))?;
        Ok(actual)
    }
}

impl Drop for PartialBlob {
    fn drop(&mut self) {
        self.store.partials.lock().unwrap().remove(&self.digest);
    }
}

/// The digests with a [`PartialBlob`] open.
pub(crate) type OpenPartials = Mutex<HashSet<Digest>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Arc<Store>) {
        let dir = tempfile::tempdir().unwrap();
        let s = Arc::new(Store::open(dir.path()).unwrap());
        (dir, s)
    }

    #[test]
    fn an_interrupted_download_resumes_and_publishes_only_verified_bytes() {
        let (_dir, s) = store();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let d = Digest::of(&data);
        let lease = s.owned_lease();
        let mut p = s.partial(&lease, d, data.len() as u64).unwrap();
        assert!(
            s.partial(&lease, d, data.len() as u64).is_err(),
            "second writer"
        );
        p.append(&data[..1_000_000]).unwrap();
        drop(p);
        assert!(!s.has_blob(&d), "visible before verification");
        let mut p = s.partial(&lease, d, data.len() as u64).unwrap();
        assert_eq!(p.offset(), 1_000_000);
        p.append(&data[1_000_000..]).unwrap();
        let err = p.append(b"x").unwrap_err();
        assert!(matches!(err, StoreError::SizeMismatch { .. }), "{err}");
        assert_eq!(p.commit().unwrap(), d);
        assert_eq!(s.read_blob(&d, 4 << 20).unwrap(), data);
        assert!(!s.partial_dir().join(d.hex()).exists());
    }

    #[test]
    fn wrong_bytes_are_never_published_and_the_partial_is_dropped() {
        let (_dir, s) = store();
        let d = Digest::of(b"right");
        let lease = s.owned_lease();
        let mut p = s.partial(&lease, d, 5).unwrap();
        p.append(b"ri").unwrap();
        assert!(matches!(p.commit(), Err(StoreError::SizeMismatch { .. })));
        assert!(!s.has_blob(&d));
        let mut p = s.partial(&lease, d, 5).unwrap();
        assert_eq!(p.offset(), 2, "a short download stays resumable");
        p.restart().unwrap();
        p.append(b"wrong").unwrap();
        assert!(matches!(p.commit(), Err(StoreError::DigestMismatch { .. })));
        assert!(!s.has_blob(&d));
        assert!(!s.partial_dir().join(d.hex()).exists());
        let mut p = s.partial(&lease, d, 5).unwrap();
        assert_eq!(p.offset(), 0);
        p.append(b"right").unwrap();
        assert_eq!(p.commit().unwrap(), d);
    }
}
