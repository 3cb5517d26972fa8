//! Verified blob writes: temp file, hash while writing, check, fsync, rename, fsync dir.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use modelrunner_format::{Digest, Hasher};
use rand::Rng;

use crate::error::StoreError;
use crate::{failpoint, Lease};

/// Opens an existing file for reading without following a symlink.
pub(crate) fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Creates a new file; fails if anything (a symlink included) is already there.
pub(crate) fn create_exclusive(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW)
        .mode(0o644)
        .open(path)
}

pub(crate) fn fsync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(format!("syncing {}", dir.display()), e))
}

/// A blob being written. Nothing is visible in the store until [`BlobWriter::commit`]
/// has verified the bytes; dropping the writer removes the temp file.
pub struct BlobWriter<'l> {
    lease: &'l Lease<'l>,
    tmp: PathBuf,
    file: Option<io::BufWriter<File>>,
    hasher: Hasher,
    expected: Option<(Digest, u64)>,
}

impl<'l> BlobWriter<'l> {
    pub(crate) fn new(
        lease: &'l Lease<'l>,
        expected: Option<(Digest, u64)>,
    ) -> Result<Self, StoreError> {
        let name: u64 = rand::rng().random();
        let tmp = lease.store.tmp_dir().join(format!("w-{name:016x}.part"));
        let file = create_exclusive(&tmp)
            .map_err(|e| StoreError::io(format!("creating {}", tmp.display()), e))?;
        Ok(BlobWriter {
            lease,
            tmp,
            file: Some(io::BufWriter::with_capacity(1 << 20, file)),
            hasher: Hasher::new(),
            expected,
        })
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.hasher.len()
    }

    /// Copies everything from `r`, refusing more bytes than the expected size. Hashing
    /// runs on a second thread over the same buffers the file is written from, so a large
    /// blob costs about max(hash, write) instead of their sum.
    pub fn copy_from(&mut self, r: &mut impl Read) -> Result<u64, StoreError> {
        const CHUNK: usize = 1 << 20;
        let expected = self.expected;
        let file = self.file.as_mut().expect("open");
        let mut hasher = std::mem::take(&mut self.hasher);
        let start = hasher.len();
        let result = std::thread::scope(|s| -> Result<u64, StoreError> {
            let (to_hash, hash_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(2);
            let (spare_tx, spare_rx) = std::sync::mpsc::channel::<Vec<u8>>();
            let worker = s.spawn(move || {
                for buf in hash_rx {
                    hasher.update(&buf);
                    let _ = spare_tx.send(buf);
                }
                hasher
            });
            let mut total = 0u64;
            let outcome = loop {
                let mut buf = spare_rx
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
                buf.resize(CHUNK, 0);
                let n = match read_full(r, &mut buf) {
                    Ok(n) => n,
                    Err(e) => break Err(StoreError::io("reading blob data", e)),
                };
                if n == 0 {
                    break Ok(total);
                }
                buf.truncate(n);
                total += n as u64;
                if let Some((d, size)) = expected {
                    if start + total > size {
                        break Err(StoreError::SizeMismatch {
                            digest: d,
                            expected: size,
                            actual: start + total,
                        });
                    }
                }
                if let Err(e) = file.write_all(&buf) {
                    break Err(StoreError::io("writing blob data", e));
                }
                if start + total >= (1 << 20) && start + total - (n as u64) < (1 << 20) {
                    failpoint("blob.mid-write");
                }
                if to_hash.send(buf).is_err() {
                    break Err(StoreError::Invalid("hashing thread stopped".into()));
                }
            };
            drop(to_hash);
            let hasher = worker.join().expect("hashing thread");
            self.hasher = hasher;
            outcome
        });
        result
    }

    /// Commits only if the bytes written have digest `expected` (for writers whose size
    /// was not known in advance); otherwise nothing is kept.
    pub fn commit_as(mut self, expected: Digest) -> Result<Digest, StoreError> {
        self.expected = Some((expected, self.hasher.len()));
        self.commit()
    }

    /// Verifies size and digest, makes the file durable and publishes it at its content
    /// address. Returns the digest.
    pub fn commit(mut self) -> Result<Digest, StoreError> {
        let mut file = self.file.take().expect("file present until commit");
        file.flush()
            .map_err(|e| StoreError::io(format!("writing {}", self.tmp.display()), e))?;
        let file = file
            .into_inner()
            .map_err(|e| StoreError::io("flushing blob", e.into_error()))?;
        let size = self.hasher.len();
        let actual = std::mem::take(&mut self.hasher).finish();
        if let Some((expected, expected_size)) = self.expected {
            if size != expected_size {
                return Err(StoreError::SizeMismatch {
                    digest: expected,
                    expected: expected_size,
                    actual: size,
                });
            }
            if expected != actual {
                return Err(StoreError::DigestMismatch { expected, actual });
            }
        }
        failpoint("blob.before-sync");
        file.sync_all()
            .map_err(|e| StoreError::io(format!("syncing {}", self.tmp.display()), e))?;
        drop(file);
        self.lease.pin(actual);
        let dest = self.lease.store.blob_path(&actual);
        if fs::symlink_metadata(&dest).is_ok_and(|m| m.is_file()) {
            // Someone else stored the same content first; ours is redundant.
            let _ = fs::remove_file(&self.tmp);
        } else {
            // Written anew: any record of a hard link by this digest is stale.
            self.lease.store.forget_link(&actual);
            fs::rename(&self.tmp, &dest)
                .map_err(|e| StoreError::io(format!("publishing {}", dest.display()), e))?;
            fsync_dir(dest.parent().expect("blob dir"))?;
        }
        failpoint("blob.after-rename");
        Ok(actual)
    }
}

impl Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.as_mut().expect("open").write(buf)?;
        self.hasher.update(&buf[..n]);
        if self.hasher.len() >= (1 << 20) && self.hasher.len() - (n as u64) < (1 << 20) {
            failpoint("blob.mid-write");
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().expect("open").flush()
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        if self.file.is_some() || self.tmp.exists() {
            self.file = None;
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Reads until `buf` is full or the input ends.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Hashes a file (not following a link): its digest and size.
pub(crate) fn hash_file(path: &Path) -> Result<(Digest, u64), StoreError> {
    let mut f = open_nofollow(path)
        .map_err(|e| StoreError::io(format!("opening {}", path.display()), e))?;
    let mut h = Hasher::new();
    h.update_from(&mut f, &mut |_| {})
        .map_err(|e| StoreError::io(format!("reading {}", path.display()), e))?;
    let size = h.len();
    Ok((h.finish(), size))
}

/// Hashes a stored file and compares it with its name.
pub(crate) fn verify_file(path: &Path, expected: &Digest) -> Result<u64, StoreError> {
    let (actual, size) = hash_file(path)?;
    if &actual != expected {
        return Err(StoreError::DigestMismatch {
            expected: *expected,
            actual,
        });
    }
    Ok(size)
}
