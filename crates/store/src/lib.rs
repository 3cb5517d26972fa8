//! The modelrunner store: blobs and manifests by digest under one root, a sled index of
//! tags and models, verified crash-safe writes, garbage collection, `fsck`, and runnable
//! bundles for the engine.
//!
//! ```no_run
//! use modelrunner_store::Store;
//! let store = Store::open("/var/lib/modelrunner".as_ref()).unwrap();
//! for m in store.list().unwrap() {
//!     println!("{} {:?}", m.id, m.tags);
//! }
//! ```
//!
//! Layout: `layout.json`, `blobs/sha256/<hex>`, `manifests/sha256/<hex>`, `tmp/` (writes
//! in progress), `partial/sha256/<hex>` (resumable downloads), `bundles/sha256/<id>/`, `links/<hex>` (what a hard-linked blob's file looked like when linked, see `link.rs`), `external/<hex>` (a file served in place instead of a blob, see `external.rs`) and `index/` (sled); `responses/` beside them belongs to the API's stored Responses, not to the store. A file at a content address
//! always has that content: it is written under `tmp/`, verified, synced and renamed.
#![deny(missing_docs)]

mod archive;
mod blob;
mod bundle;
mod error;
mod external;
mod index;
mod link;
mod maintenance;
mod models;
mod partial;
mod record;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use modelrunner_format::Digest;
use tracing::{info, warn};

pub use archive::LoadLimits;
pub use blob::BlobWriter;
pub use bundle::Bundle;
pub use error::StoreError;
pub use link::{LinkKind, Linked};
pub use maintenance::{DiskUsage, FsckReport, GcReport};
pub use models::{DeleteOutcome, ModelInfo};
pub use partial::{OwnedLease, PartialBlob, PARTIAL_RETENTION};
pub use record::Rebuilt;

const LAYOUT_VERSION: &str = "modelrunner-store/1";

/// The model store. One process opens a store at a time (the index holds a file lock).
pub struct Store {
    root: PathBuf,
    db: sled::Db,
    tags: sled::Tree,
    models: sled::Tree,
    /// Blobs that writes in progress depend on; garbage collection skips them.
    /// Counted per digest; leases add and remove.
    pins: Mutex<HashMap<Digest, usize>>,
    /// Serialises index changes with the blob deletions that follow them.
    write_lock: Mutex<()>,
    /// Digests with a resumable download open (one writer each).
    partials: partial::OpenPartials,
    /// Counts index changes; see [`Store::generation`].
    generation: AtomicU64,
    /// One writer of the model record at a time (`record.rs`).
    record_lock: Mutex<()>,
    /// Set while the index is rebuilt from the record, which is then not rewritten
    /// until the rebuild is done.
    rebuilding: std::sync::atomic::AtomicBool,
}

/// Pins blobs for the duration of a write so that garbage collection or a concurrent
/// delete cannot remove them before the model that references them is indexed.
pub struct Lease<'s> {
    store: &'s Store,
    pinned: Mutex<Vec<Digest>>,
}

impl Lease<'_> {
    /// Pins a digest until the lease is dropped.
    pub fn pin(&self, d: Digest) {
        *self.store.pins.lock().unwrap().entry(d).or_default() += 1;
        self.pinned.lock().unwrap().push(d);
    }

    /// Starts writing a blob; `expected` is checked at commit.
    pub fn blob_writer(
        &self,
        expected: Option<(Digest, u64)>,
    ) -> Result<BlobWriter<'_>, StoreError> {
        if let Some((d, _)) = expected {
            self.pin(d);
        }
        BlobWriter::new(self, expected)
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.store.unpin(self.pinned.get_mut().unwrap().drain(..));
    }
}

/// Test hook, compiled only with the `failpoints` feature (which the store's own tests
/// turn on): aborts the process at a named point when `MODELRUNNER_STORE_CRASH_AT` names
/// it, so crash-safety tests can stop a writer exactly there.
#[cfg(feature = "failpoints")]
pub(crate) fn failpoint(name: &str) {
    if std::env::var("MODELRUNNER_STORE_CRASH_AT").is_ok_and(|v| v == name) {
        std::process::abort();
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub(crate) fn failpoint(_name: &str) {}

/// Opens sled's index under `root/index`.
fn open_index(root: &Path) -> Result<(sled::Db, sled::Tree, sled::Tree), sled::Error> {
    let db = sled::Config::new()
        .path(root.join("index"))
        .mode(sled::Mode::HighThroughput)
        .flush_every_ms(None)
        .open()?;
    let tags = db.open_tree("tags")?;
    let models = db.open_tree("models")?;
    // Reading every record proves the trees are sound, not just openable.
    for kv in models.iter() {
        kv?;
    }
    Ok((db, tags, models))
}

/// Refuses a symlink among `dir`'s entries (sled would follow it).
fn refuse_links_in(dir: &Path) -> Result<(), StoreError> {
    let entries =
        fs::read_dir(dir).map_err(|e| StoreError::io(format!("listing {}", dir.display()), e))?;
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_symlink()) {
            return Err(StoreError::Invalid(format!(
                "{} is a symlink; the store never follows links out of itself (remove it, or run `modelrunner fsck --repair` to rebuild the index)",
                e.path().display()
            )));
        }
    }
    Ok(())
}

/// A regular file at `path` itself (a symlink there is not one).
pub(crate) fn is_regular_file(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.is_file())
}

fn ensure_dir(path: &Path) -> Result<(), StoreError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(StoreError::Invalid(format!(
            "{} exists and is not a directory (symlinks are refused: the store never follows links out of itself)",
            path.display()
        ))),
        Err(_) => fs::create_dir_all(path)
            .map_err(|e| StoreError::io(format!("creating {}", path.display()), e)),
    }
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        fs::create_dir_all(root)
            .map_err(|e| StoreError::io(format!("creating store {}", root.display()), e))?;
        let root = root
            .canonicalize()
            .map_err(|e| StoreError::io(format!("resolving {}", root.display()), e))?;
        let layout = root.join("layout.json");
        match fs::read_to_string(&layout) {
            Ok(s) => {
                let v: serde_json::Value = serde_json::from_str(&s)
                    .map_err(|e| StoreError::Broken(format!("{}: {e}", layout.display())))?;
                if v["version"] != LAYOUT_VERSION {
                    return Err(StoreError::Invalid(format!(
                        "{} has layout {}, this build understands {LAYOUT_VERSION}",
                        root.display(),
                        v["version"]
                    )));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let body = serde_json::json!({ "version": LAYOUT_VERSION }).to_string();
                let tmp = root.join("layout.json.tmp");
                fs::write(&tmp, body)
                    .and_then(|_| fs::File::open(&tmp)?.sync_all())
                    .and_then(|_| fs::rename(&tmp, &layout))
                    .map_err(|e| StoreError::io(format!("writing {}", layout.display()), e))?;
                blob::fsync_dir(&root)?;
            }
            Err(e) => return Err(StoreError::io(format!("reading {}", layout.display()), e)),
        }
        // The store never follows a link out of itself: every directory on the way to
        // what it writes must be a real directory, and sled's files real files.
        for d in [
            "blobs",
            "blobs/sha256",
            "manifests",
            "manifests/sha256",
            "bundles",
            "bundles/sha256",
            "partial",
            "partial/sha256",
            "tmp",
            "index",
            "links",
            "external",
        ] {
            ensure_dir(&root.join(d))?;
        }
        refuse_links_in(&root.join("index"))?;
        // Every index change is flushed as it is made (`Store::flush`), so sled's own
        // flusher, which wakes and fsyncs every 500 ms even when nothing changed, is off.
        let (db, tags, models, lost_index) = match open_index(&root) {
            Ok((db, tags, models)) => (db, tags, models, false),
            // I/O trouble (another process holds the index's lock, permissions) is not
            // damage: the index is left alone.
            Err(sled::Error::Io(e)) => {
                return Err(StoreError::Index(format!(
                    "opening {}: {e}",
                    root.join("index").display()
                )))
            }
            Err(e) => {
                // A lost or corrupt index is rebuilt from the model record below; the
                // broken files are kept aside for inspection.
                let index = root.join("index");
                let aside = root.join(format!("index.broken-{}", std::process::id()));
                warn!(cause = %e, aside = %aside.display(), "the index cannot be opened; rebuilding it from manifests/models.json");
                let _ = fs::remove_dir_all(&aside);
                fs::rename(&index, &aside).map_err(|err| {
                    StoreError::io(format!("moving {} aside", index.display()), err)
                })?;
                ensure_dir(&index)?;
                let (db, tags, models) = open_index(&root)?;
                (db, tags, models, true)
            }
        };
        let store = Store {
            root,
            db,
            tags,
            models,
            pins: Mutex::new(HashMap::new()),
            write_lock: Mutex::new(()),
            partials: Default::default(),
            generation: AtomicU64::new(0),
            record_lock: Mutex::new(()),
            rebuilding: Default::default(),
        };
        store.clean_tmp();
        store.clean_partials();
        let empty = store.models.is_empty();
        if lost_index || (empty && !store.read_record().unwrap_or_default().is_empty()) {
            store.rebuilding.store(true, Ordering::SeqCst);
            let rebuilt = store.rebuild_index();
            store.rebuilding.store(false, Ordering::SeqCst);
            let rebuilt = rebuilt?;
            warn!(models = rebuilt.models, tags = rebuilt.tags, lost = ?rebuilt.lost, "the index was rebuilt");
            store.write_record()?;
        } else if !store.record_path().exists() {
            // A store from before the record: write it now.
            store.write_record()?;
        }
        info!(root = %store.root.display(), "store opened");
        Ok(store)
    }

    /// The store root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A new lease for a multi-blob write.
    pub fn lease(&self) -> Lease<'_> {
        Lease {
            store: self,
            pinned: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Where a blob lives (built from the typed digest only).
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(d.hex())
    }

    pub(crate) fn manifest_path(&self, d: &Digest) -> PathBuf {
        self.root.join("manifests/sha256").join(d.hex())
    }

    pub(crate) fn bundle_path(&self, d: &Digest) -> PathBuf {
        self.root.join("bundles/sha256").join(d.hex())
    }

    /// True when the blob is stored, or is a file served in place that is unchanged.
    pub fn has_blob(&self, d: &Digest) -> bool {
        is_regular_file(&self.blob_path(d)) || self.external_file(d).is_some()
    }

    /// The blob's size on disk (its file's, for one served in place).
    pub(crate) fn blob_len(&self, d: &Digest) -> Option<u64> {
        let path = self.external_file(d).unwrap_or_else(|| self.blob_path(d));
        fs::metadata(path).ok().map(|m| m.len())
    }

    /// Reads a whole (small) blob, verifying it.
    pub fn read_blob(&self, d: &Digest, limit: u64) -> Result<Vec<u8>, StoreError> {
        use std::io::Read;
        let path = self.blob_path(d);
        let f = blob::open_nofollow(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::MissingBlob(*d)
            } else {
                StoreError::io(format!("opening {}", path.display()), e)
            }
        })?;
        let mut buf = Vec::new();
        f.take(limit + 1)
            .read_to_end(&mut buf)
            .map_err(|e| StoreError::io(format!("reading {}", path.display()), e))?;
        if buf.len() as u64 > limit {
            return Err(StoreError::TooLarge {
                what: format!("blob {d}"),
                limit,
            });
        }
        let actual = Digest::of(&buf);
        if &actual != d {
            return Err(StoreError::DigestMismatch {
                expected: *d,
                actual,
            });
        }
        Ok(buf)
    }

    /// Opens a blob for streaming (not verified here; `fsck` and writes verify).
    pub fn open_blob(&self, d: &Digest) -> Result<fs::File, StoreError> {
        if !is_regular_file(&self.blob_path(d)) {
            if let Some(file) = self.external_source(d)? {
                return blob::open_nofollow(&file)
                    .map_err(|e| StoreError::io(format!("opening {}", file.display()), e));
            }
        }
        blob::open_nofollow(&self.blob_path(d)).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                StoreError::MissingBlob(*d)
            } else {
                StoreError::io(format!("opening blob {d}"), e)
            }
        })
    }

    /// Stores bytes as a blob and returns the digest.
    pub fn put_blob(&self, lease: &Lease<'_>, bytes: &[u8]) -> Result<Digest, StoreError> {
        use std::io::Write;
        let mut w = lease.blob_writer(Some((Digest::of(bytes), bytes.len() as u64)))?;
        w.write_all(bytes)
            .map_err(|e| StoreError::io("writing blob", e))?;
        w.commit()
    }

    fn unpin(&self, digests: impl Iterator<Item = Digest>) {
        let mut pins = self.pins.lock().unwrap();
        for d in digests {
            if let Some(n) = pins.get_mut(&d) {
                *n -= 1;
                if *n == 0 {
                    pins.remove(&d);
                }
            }
        }
    }

    fn is_pinned(&self, d: &Digest) -> bool {
        self.pins.lock().unwrap().contains_key(d)
    }

    /// Removes temp files left by a previous process (only this process uses the store).
    fn clean_tmp(&self) {
        let Ok(entries) = fs::read_dir(self.tmp_dir()) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            let r = if p.is_dir() {
                fs::remove_dir_all(&p)
            } else {
                fs::remove_file(&p)
            };
            if let Err(err) = r {
                warn!(path = %p.display(), cause = %err, "cannot remove stale temp file");
            }
        }
    }

    /// Marks the index changed, then makes every change so far durable. Every index
    /// change ends here.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if !self.rebuilding.load(Ordering::SeqCst) {
            self.write_record()?;
        }
        self.db.flush()?;
        Ok(())
    }

    /// A number that changes whenever the index does (a tag or model added, moved or
    /// removed). A name resolved while it held one value resolves the same way until
    /// it changes, so callers may cache resolutions under it; read it before resolving.
    /// The sled index is locked to one process, so no other writer can go unseen.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }
}
