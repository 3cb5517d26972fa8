//! Blobs that share their bytes with a file the user already has (`package --link`).
//!
//! A reflink (`FICLONE`, on btrfs, XFS, bcachefs...) shares blocks but is a copy: the
//! original can change without touching it. Where the file system cannot clone, a hard
//! link is the original itself, so the store records the file's size, mtime and inode under
//! `links/<hex>` and refuses the blob once any of them differs (checked on every load,
//! re-hashed by `fsck`). A file on another file system, or one the daemon may not link,
//! is refused with the reason, or copied (verified, like any write) when the caller allows.
//! Linked files are never chmodded, and removing a blob removes only the store's name.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use modelrunner_format::gguf::GgufFile;
use modelrunner_format::Digest;
use rand::Rng;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::blob::{create_exclusive, fsync_dir, hash_file};
use crate::error::StoreError;
use crate::{Lease, Store};

/// How a file came into the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// A copy-on-write clone: shares blocks, independent of the original.
    Reflink,
    /// A hard link: the original file itself, watched for changes.
    HardLink,
    /// A verified copy (the caller allowed one when linking was impossible).
    Copy,
    /// The store already had these bytes; nothing was added.
    AlreadyStored,
    /// Served from the file where it lies, unchanged and uncopied (`external.rs`).
    External,
}

/// One file linked into the store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Linked {
    /// The file as it was named.
    pub path: PathBuf,
    /// What its bytes hash to.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// How it was stored.
    pub kind: LinkKind,
}

/// What the store remembers of a hard-linked file: enough to notice it changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct LinkRecord {
    /// The file's canonical path when it was linked (for messages).
    pub file: PathBuf,
    size: u64,
    mtime_s: i64,
    mtime_ns: i64,
    dev: u64,
    ino: u64,
}

impl LinkRecord {
    pub(crate) fn of(file: &Path, m: &fs::Metadata) -> Self {
        LinkRecord {
            file: file.to_path_buf(),
            size: m.len(),
            mtime_s: m.mtime(),
            mtime_ns: m.mtime_nsec(),
            dev: m.dev(),
            ino: m.ino(),
        }
    }

    /// Whether `m` is the recorded file (same device and inode).
    pub(crate) fn same_file(&self, m: &fs::Metadata) -> bool {
        (m.dev(), m.ino()) == (self.dev, self.ino)
    }

    /// What differs between the record and the file now, if anything.
    pub(crate) fn change(&self, m: &fs::Metadata) -> Option<String> {
        if m.len() != self.size {
            return Some(format!("size {} bytes, was {}", m.len(), self.size));
        }
        if (m.mtime(), m.mtime_nsec()) != (self.mtime_s, self.mtime_ns) {
            return Some("modified since".into());
        }
        None
    }

    /// What differs, the file's identity (device and inode) included.
    pub(crate) fn differs(&self, m: &fs::Metadata) -> Option<String> {
        if !self.same_file(m) {
            return Some("it was replaced by another file".into());
        }
        self.change(m)
    }
}

/// Clones `src` into the new file `dst` (copy-on-write), or says why not.
fn reflink(src: &File, dst: &Path) -> io::Result<()> {
    let out = create_exclusive(dst)?;
    // SAFETY: both descriptors are open for the duration of the call; FICLONE reads
    // only the integer argument.
    let rc = unsafe { libc::ioctl(out.as_raw_fd(), libc::FICLONE as _, src.as_raw_fd()) };
    if rc == 0 {
        return out.sync_all();
    }
    let e = io::Error::last_os_error();
    drop(out);
    let _ = fs::remove_file(dst);
    Err(e)
}

/// The reason a hard link failed, in words a user can act on.
fn why_not(e: &io::Error, store: &Path) -> String {
    match e.raw_os_error() {
        Some(libc::EXDEV) => format!(
            "it is on another file system than the store ({}); links cannot cross file systems",
            store.display()
        ),
        Some(libc::EPERM) | Some(libc::EACCES) => format!(
            "the daemon may not link it ({e}; with fs.protected_hardlinks, only the file's owner can, and the store at {} must be writable)",
            store.display()
        ),
        Some(libc::EMLINK) => "it has too many links already".into(),
        _ => e.to_string(),
    }
}

impl Store {
    fn links_dir(&self) -> PathBuf {
        self.root().join("links")
    }

    fn link_record_path(&self, d: &Digest) -> PathBuf {
        self.links_dir().join(d.hex())
    }

    /// Forgets that a blob was a hard link (its file is gone or was written anew).
    pub(crate) fn forget_link(&self, d: &Digest) {
        match fs::remove_file(self.link_record_path(d)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                warn!(digest = %d, cause = %e, "cannot remove a link record")
            }
            _ => {}
        }
    }

    /// Removes a blob's file (only the store's name for a linked one) and its record.
    pub(crate) fn remove_blob_file(&self, d: &Digest) -> io::Result<()> {
        let path = self.blob_path(d);
        let r = match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => fs::remove_dir_all(&path),
            Ok(_) => fs::remove_file(&path),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        };
        self.forget_link(d);
        self.forget_external(d);
        r
    }

    /// Removes the records of blobs that are gone (not pinned by a write in progress).
    pub(crate) fn prune_link_records(&self) {
        let Ok(entries) = fs::read_dir(self.links_dir()) else {
            return;
        };
        for e in entries.flatten() {
            let d = e
                .file_name()
                .to_str()
                .and_then(|n| Digest::from_hex(n).ok());
            match d {
                Some(d) if self.has_blob(&d) || self.is_pinned(&d) => {}
                Some(d) => self.forget_link(&d),
                None => warn!(path = %e.path().display(), "a stray file among link records"),
            }
        }
    }

    pub(crate) fn link_record(&self, d: &Digest) -> Result<Option<LinkRecord>, StoreError> {
        read_record(&self.link_record_path(d))
    }

    fn write_link_record(&self, d: &Digest, rec: &LinkRecord) -> Result<(), StoreError> {
        write_record(self, &self.link_record_path(d), rec)
    }

    /// True when the blob is a hard link to a user's file, or a file served in place
    /// (see [`Store::check_link`]).
    pub fn is_linked(&self, d: &Digest) -> bool {
        self.link_record_path(d).is_file() || self.is_external(d)
    }

    /// Checks that a hard-linked blob's file is as it was linked: same size and mtime.
    /// Cheap (one `stat`); blobs that are not links pass. A changed one is refused,
    /// naming the file.
    pub fn check_link(&self, d: &Digest) -> Result<(), StoreError> {
        let Some(rec) = self.link_record(d)? else {
            return self.external_source(d).map(|_| ());
        };
        let Ok(meta) = fs::symlink_metadata(self.blob_path(d)) else {
            return Ok(()); // a missing blob is reported as missing by the caller
        };
        if (meta.dev(), meta.ino()) != (rec.dev, rec.ino) {
            // The store wrote the blob anew since; the record is stale.
            self.forget_link(d);
            return Ok(());
        }
        match rec.change(&meta) {
            None => Ok(()),
            Some(what) => Err(StoreError::LinkedFileChanged {
                digest: *d,
                file: rec.file,
                what,
            }),
        }
    }

    /// After `fsck` re-hashed a linked blob and found its bytes intact, records its
    /// current size and mtime (a `touch` is not damage). Returns the file when the record
    /// had to change.
    pub(crate) fn refresh_link(
        &self,
        d: &Digest,
        repair: bool,
    ) -> Result<Option<PathBuf>, StoreError> {
        let Some(rec) = self.link_record(d)? else {
            return Ok(None);
        };
        let meta = fs::symlink_metadata(self.blob_path(d))
            .map_err(|e| StoreError::io(format!("checking blob {d}"), e))?;
        if rec.change(&meta).is_none() {
            return Ok(None);
        }
        if repair {
            self.write_link_record(d, &LinkRecord::of(&rec.file, &meta))?;
        }
        Ok(Some(rec.file))
    }

    /// Stores the GGUF file at `path` without a second copy: a reflink, else a hard link,
    /// else (only with `allow_copy`) a verified copy. The bytes are hashed as stored, and
    /// the digest is pinned by `lease` until the model that uses it is added.
    pub fn link_file(
        &self,
        lease: &Lease<'_>,
        path: &Path,
        allow_copy: bool,
    ) -> Result<Linked, StoreError> {
        let bad = |why: String| StoreError::CannotLink {
            file: path.to_path_buf(),
            why,
        };
        let (file, _) = check_source(path)?;
        let src = File::open(&file).map_err(|e| bad(e.to_string()))?;
        let tmp = self
            .tmp_dir()
            .join(format!("l-{:016x}", rand::rng().random::<u64>()));
        let kind = match reflink(&src, &tmp) {
            Ok(()) => LinkKind::Reflink,
            Err(clone_err) => match fs::hard_link(&file, &tmp) {
                Ok(()) => LinkKind::HardLink,
                Err(e) if allow_copy => {
                    info!(file = %file.display(), cause = %e, clone = %clone_err, "cannot link; copying");
                    let mut w = lease.blob_writer(None)?;
                    w.copy_from(&mut io::BufReader::with_capacity(1 << 20, src))?;
                    let size = w.written();
                    let digest = w.commit()?;
                    return Ok(Linked {
                        path: path.to_path_buf(),
                        digest,
                        size,
                        kind: LinkKind::Copy,
                    });
                }
                Err(e) => return Err(bad(why_not(&e, self.root()))),
            },
        };
        let result = self.publish_link(lease, &file, &tmp, kind);
        let _ = fs::remove_file(&tmp);
        let (digest, size, kind) = result?;
        info!(file = %file.display(), %digest, ?kind, "file linked into the store");
        Ok(Linked {
            path: path.to_path_buf(),
            digest,
            size,
            kind,
        })
    }

    /// Hashes the linked `tmp` and publishes it at its digest.
    fn publish_link(
        &self,
        lease: &Lease<'_>,
        file: &Path,
        tmp: &Path,
        kind: LinkKind,
    ) -> Result<(Digest, u64, LinkKind), StoreError> {
        let stat = || {
            fs::symlink_metadata(tmp)
                .map_err(|e| StoreError::io(format!("checking {}", tmp.display()), e))
        };
        let before = stat()?;
        if kind == LinkKind::HardLink {
            // The bytes are the user's; make sure they are on disk before the store
            // names them.
            File::open(tmp)
                .and_then(|f| f.sync_all())
                .map_err(|e| StoreError::io(format!("syncing {}", file.display()), e))?;
        }
        let (digest, size) = hash_file(tmp)?;
        let after = stat()?;
        if kind == LinkKind::HardLink && LinkRecord::of(file, &before).change(&after).is_some() {
            return Err(StoreError::CannotLink {
                file: file.to_path_buf(),
                why: "it changed while it was being linked".into(),
            });
        }
        lease.pin(digest);
        let dest = self.blob_path(&digest);
        if fs::symlink_metadata(&dest).is_ok_and(|m| m.is_file()) {
            return Ok((digest, size, LinkKind::AlreadyStored));
        }
        if kind == LinkKind::HardLink {
            self.write_link_record(&digest, &LinkRecord::of(file, &after))?;
        } else {
            self.forget_link(&digest);
        }
        fs::rename(tmp, &dest)
            .map_err(|e| StoreError::io(format!("publishing {}", dest.display()), e))?;
        fsync_dir(dest.parent().expect("blob dir"))?;
        Ok((digest, size, kind))
    }
}

/// The canonical path and metadata of a GGUF file a caller names for the store to take
/// without copying, or why it cannot be.
pub(crate) fn check_source(path: &Path) -> Result<(PathBuf, fs::Metadata), StoreError> {
    let bad = |why: String| StoreError::CannotLink {
        file: path.to_path_buf(),
        why,
    };
    if !path.is_absolute() {
        return Err(bad("the path must be absolute".into()));
    }
    let file = path.canonicalize().map_err(|e| {
        bad(if e.kind() == io::ErrorKind::NotFound {
            "there is no such file on the daemon's machine".into()
        } else {
            e.to_string()
        })
    })?;
    let meta = fs::metadata(&file).map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("it is not a regular file".into()));
    }
    // Also keeps files whose length the kernel does not know (`/proc`, where a read
    // may block) from being opened at all.
    if meta.len() < 32 {
        return Err(bad(format!(
            "it is {} bytes long, too short for a GGUF file",
            meta.len()
        )));
    }
    // Only GGUF files (models, projectors) are linked: a daemon never takes other
    // files of its machine into the store on a client's word.
    GgufFile::open(&file).map_err(|e| bad(format!("it is not a GGUF file: {e}")))?;
    Ok((file, meta))
}

pub(crate) fn read_record(path: &Path) -> Result<Option<LinkRecord>, StoreError> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Broken(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::io(format!("reading {}", path.display()), e)),
    }
}

/// Writes a record atomically (a temp file renamed into place, synced).
pub(crate) fn write_record(store: &Store, dest: &Path, rec: &LinkRecord) -> Result<(), StoreError> {
    let tmp = store
        .tmp_dir()
        .join(format!("r-{:016x}", rand::rng().random::<u64>()));
    let body = serde_json::to_vec(rec).expect("a record serialises");
    let io = |e| StoreError::io(format!("writing {}", dest.display()), e);
    {
        use std::io::Write;
        let mut f = create_exclusive(&tmp).map_err(io)?;
        f.write_all(&body).and_then(|_| f.sync_all()).map_err(io)?;
    }
    fs::rename(&tmp, dest).map_err(io)?;
    fsync_dir(dest.parent().expect("a record's directory"))
}
