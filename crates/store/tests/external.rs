//! Models served from files in place (`--models-dir`): the GGUF is hashed where it lies
//! and never copied, linked or written; the store holds a record of it. A file that
//! changes afterwards is refused naming it, `fsck` re-hashes it, and removing the model
//! or gc drops only the record.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use modelrunner_format::package::PackageSpec;
use modelrunner_format::Digest;
use modelrunner_format::Reference;
use modelrunner_store::{ModelInfo, Store, StoreError};
use modelrunner_testkit::LlamaSpec;

/// A GGUF in its own directory, as on a read-only volume.
fn volume(dir: &Path) -> PathBuf {
    let vol = dir.join("volume");
    fs::create_dir_all(&vol).unwrap();
    let gguf = vol.join("tiny.gguf");
    LlamaSpec::tiny().build(7).write_file(&gguf).unwrap();
    gguf
}

fn tag(s: &str) -> Reference {
    s.parse().unwrap()
}

/// What can tell that a file was written: bytes, mtime, inode.
type Print = (Vec<u8>, i64, i64, u64);

fn fingerprint(p: &Path) -> Print {
    let m = fs::metadata(p).unwrap();
    (fs::read(p).unwrap(), m.mtime(), m.mtime_nsec(), m.ino())
}

fn spec(gguf: &Path) -> PackageSpec {
    PackageSpec {
        gguf: gguf.to_path_buf(),
        ..PackageSpec::default()
    }
}

/// A store serving the volume's GGUF as `tiny`.
type Served = (tempfile::TempDir, PathBuf, Print, Store, ModelInfo, Digest);

fn served() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let gguf = volume(dir.path());
    let before = fingerprint(&gguf);
    let store = Store::open(&dir.path().join("store")).unwrap();
    let info = store
        .add_external_model(&spec(&gguf), &tag("tiny"))
        .unwrap();
    let layer = info.manifest.layers[0].digest;
    (dir, gguf, before, store, info, layer)
}

#[test]
fn a_file_is_served_where_it_lies() {
    let (dir, gguf, before, store, info, layer) = served();
    // Nothing of it in the store's blobs; the bundle names the file itself.
    assert!(!store.blob_path(&layer).exists());
    assert!(store.has_blob(&layer));
    let bundle = store.bundle("tiny").unwrap();
    assert_eq!(
        fs::read_link(&bundle.gguf).unwrap(),
        gguf.canonicalize().unwrap()
    );
    assert_eq!(fs::read(&bundle.gguf).unwrap(), before.0);
    // Reading the blob (what a push does) reads the file.
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut store.open_blob(&layer).unwrap(), &mut bytes).unwrap();
    assert_eq!(bytes, before.0);
    assert!(store.disk_usage().unwrap().models_bytes < 4096);
    assert!(store.fsck(false).unwrap().is_clean());
    // The same file after a restart is the same model.
    drop(store);
    let store = Store::open(&dir.path().join("store")).unwrap();
    let again = store
        .add_external_model(&spec(&gguf), &tag("tiny"))
        .unwrap();
    assert_eq!(again.id, info.id);
    // Removing the model drops the record and leaves the file.
    store.delete("tiny", false).unwrap();
    assert!(!store.has_blob(&layer));
    assert_eq!(fingerprint(&gguf), before);
    assert!(store.fsck(false).unwrap().is_clean());
}

#[test]
fn a_changed_file_is_refused_and_fsck_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let gguf = volume(dir.path());
    let store = Store::open(&dir.path().join("store")).unwrap();
    let info = store
        .add_external_model(&spec(&gguf), &tag("tiny"))
        .unwrap();
    let layer = info.manifest.layers[0].digest;
    store.bundle("tiny").unwrap();
    // Another writer changes the file on the volume.
    let mut bytes = fs::read(&gguf).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    fs::write(&gguf, &bytes).unwrap();
    let t = filetime_later(&gguf);
    assert!(t > 0);
    match store.check_link(&layer) {
        Err(StoreError::LinkedFileChanged { file, .. }) => {
            assert_eq!(file, gguf.canonicalize().unwrap())
        }
        other => panic!("a changed file was taken: {other:?}"),
    }
    assert!(matches!(
        store.bundle("tiny"),
        Err(StoreError::LinkedFileChanged { .. })
    ));
    assert!(!store.has_blob(&layer));
    let report = store.fsck(false).unwrap();
    assert_eq!(report.corrupt_blobs, vec![layer]);
    assert_eq!(report.changed_links[0].1, gguf.canonicalize().unwrap());
    assert!(!report.is_clean());
    let repaired = store.fsck(true).unwrap();
    assert!(repaired.repaired);
    assert_eq!(
        fs::read(&gguf).unwrap(),
        bytes,
        "the user's file was touched"
    );
    // The record is gone; the model stays listed as broken until removed.
    assert!(store.check_link(&layer).is_ok());
    assert!(!store.fsck(false).unwrap().broken_models.is_empty());
}

/// Moves the file's mtime a second ahead (a write within the same tick may keep it).
fn filetime_later(p: &Path) -> i64 {
    let m = fs::metadata(p).unwrap();
    let later = std::time::UNIX_EPOCH + std::time::Duration::from_secs(m.mtime() as u64 + 1);
    fs::File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(later)
        .unwrap();
    m.mtime() + 1
}

#[test]
fn gc_drops_records_no_model_uses() {
    let (dir, gguf, before, store, _, layer) = served();
    assert!(store.gc().unwrap().blobs_removed.is_empty());
    assert!(store.has_blob(&layer), "gc dropped a record in use");
    store.delete("tiny", false).unwrap();
    assert!(
        !store.has_blob(&layer),
        "the model's removal kept its record"
    );
    // A record no model took (an adoption whose model was never added) is gc's.
    let lease = store.lease();
    let adopted = store.adopt_file(&lease, &gguf).unwrap();
    assert_eq!(adopted.digest, layer);
    drop(lease);
    assert!(store.has_blob(&layer));
    assert_eq!(store.gc().unwrap().blobs_removed, vec![layer]);
    assert!(!store.has_blob(&layer));
    assert_eq!(fingerprint(&gguf), before);
    // Files that are not GGUFs are refused, as for --link.
    let text = dir.path().join("volume/notes.gguf");
    fs::write(&text, vec![b'x'; 64]).unwrap();
    assert!(matches!(
        store.add_external_model(&spec(&text), &tag("notes")),
        Err(StoreError::CannotLink { .. }) | Err(StoreError::Format(_))
    ));
}

/// A file recorded before, with the same size, mtime and inode, is taken without hashing
/// it again (what makes a restart on a kept store fast); `fsck` is what re-hashes.
#[test]
fn an_unchanged_recorded_file_is_not_hashed_again() {
    let (_dir, gguf, _, store, _, layer) = served();
    let m = fs::metadata(&gguf).unwrap();
    // Other bytes of the same length, the mtime put back: only a hash could tell.
    let mut bytes = fs::read(&gguf).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    fs::write(&gguf, &bytes).unwrap();
    fs::File::options()
        .write(true)
        .open(&gguf)
        .unwrap()
        .set_modified(m.modified().unwrap())
        .unwrap();
    let lease = store.lease();
    assert_eq!(store.adopt_file(&lease, &gguf).unwrap().digest, layer);
    drop(lease);
    assert_eq!(store.fsck(false).unwrap().corrupt_blobs, vec![layer]);
}
