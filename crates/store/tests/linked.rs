//! `package --link`: a GGUF stored without a second copy. On a file system that cannot
//! clone, the blob is the user's file itself (same inode, permissions untouched); a linked
//! file that changes afterwards is refused on load, naming it, and `fsck` re-hashes it and
//! reports it; a repair drops the store's name and leaves the user's file alone. Files on
//! another file system are refused with the reason, or copied when allowed.

mod util;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use modelrunner_format::Digest;
use modelrunner_store::{LinkKind, Linked, LoadLimits, Store, StoreError};

/// A packaged model in `dir`; returns (the GGUF's path, its digest, the archive without it).
fn packaged(dir: &Path, seed: u64) -> (PathBuf, Digest, Vec<u8>) {
    let (gguf, digest, tar, _) = packaged_whole(dir, seed);
    (gguf, digest, tar)
}

/// [`packaged`], and the whole archive too.
fn packaged_whole(dir: &Path, seed: u64) -> (PathBuf, Digest, Vec<u8>, Vec<u8>) {
    let (built, whole) = util::build_model(dir, seed);
    let (gguf, desc) = built.layers[0].clone();
    let tar = built
        .write_tar_without(Vec::new(), &[desc.digest], &mut |_| {})
        .unwrap();
    (gguf, desc.digest, tar, whole)
}

fn link(store: &Store, tar: &[u8], file: &Path, allow_copy: bool) -> Result<Linked, StoreError> {
    store
        .load_archive_linking(
            tar,
            LoadLimits::default(),
            &[file.to_path_buf()],
            allow_copy,
        )
        .map(|(_, mut l)| l.remove(0))
}

#[test]
fn a_linked_gguf_is_the_users_file_or_a_clone_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let (gguf, digest, tar) = packaged(dir.path(), 1);
    fs::set_permissions(&gguf, fs::Permissions::from_mode(0o640)).unwrap();
    let linked = link(&store, &tar, &gguf, false).unwrap();
    assert_eq!(linked.digest, digest);
    let (src, blob) = (
        fs::metadata(&gguf).unwrap(),
        fs::metadata(store.blob_path(&digest)).unwrap(),
    );
    match linked.kind {
        LinkKind::HardLink => {
            assert_eq!((src.dev(), src.ino()), (blob.dev(), blob.ino()));
            assert!(src.nlink() >= 2);
        }
        LinkKind::Reflink => {
            assert_ne!(src.ino(), blob.ino());
            assert_eq!(
                fs::read(&gguf).unwrap(),
                fs::read(store.blob_path(&digest)).unwrap()
            );
        }
        other => panic!("stored as {other:?}, not linked"),
    }
    assert_eq!(src.mode() & 0o777, 0o640, "the user's file was chmodded");
    let model = &store.list().unwrap()[0];
    let bundle = store.bundle(&model.id.to_string()).unwrap();
    assert_eq!(fs::read(bundle.gguf).unwrap(), fs::read(&gguf).unwrap());
    assert!(store.fsck(false).unwrap().is_clean());
    // Deleting the model and collecting garbage removes the store's name only.
    store.delete(&model.id.to_string(), true).unwrap();
    store.gc().unwrap();
    assert!(!store.has_blob(&digest));
    assert!(gguf.is_file(), "gc removed the user's file");
    assert_eq!(fs::read_dir(store.root().join("links")).unwrap().count(), 0);
}

#[test]
fn a_changed_linked_file_is_refused_and_fsck_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let (gguf, digest, tar, whole) = packaged_whole(dir.path(), 2);
    let linked = link(&store, &tar, &gguf, false).unwrap();
    let id = store.list().unwrap()[0].id.to_string();
    store.bundle(&id).unwrap();
    // The user appends to the file after linking it.
    let mut bytes = fs::read(&gguf).unwrap();
    bytes.push(0);
    fs::OpenOptions::new()
        .append(true)
        .open(&gguf)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &[0]))
        .unwrap();
    if linked.kind == LinkKind::Reflink {
        // A clone shares nothing that can change: the store still has the packaged bytes.
        assert!(store.bundle(&id).is_ok());
        assert!(store.fsck(false).unwrap().is_clean());
        return;
    }
    assert_eq!(linked.kind, LinkKind::HardLink);
    let e = store.bundle(&id).unwrap_err();
    assert!(matches!(e, StoreError::LinkedFileChanged { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&gguf.canonicalize().unwrap().display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("size"), "{msg}");
    let report = store.fsck(false).unwrap();
    assert_eq!(report.corrupt_blobs, vec![digest]);
    assert_eq!(report.changed_links.len(), 1);
    assert!(!report.is_clean());
    let repaired = store.fsck(true).unwrap();
    assert_eq!(repaired.corrupt_blobs, vec![digest]);
    assert!(!store.has_blob(&digest));
    assert_eq!(
        fs::read(&gguf).unwrap(),
        bytes,
        "the repair touched the user's file"
    );
    // Loaded again the usual way, the blob is the store's own: the old record is gone.
    store
        .load_archive(whole.as_slice(), LoadLimits::default())
        .unwrap();
    store.bundle(&id).unwrap();
}

#[test]
fn a_touched_linked_file_is_refused_until_fsck_finds_its_bytes_intact() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let (gguf, digest, tar) = packaged(dir.path(), 3);
    let linked = link(&store, &tar, &gguf, false).unwrap();
    let id = store.list().unwrap()[0].id.to_string();
    let earlier =
        fs::metadata(&gguf).unwrap().modified().unwrap() - std::time::Duration::from_secs(3600);
    fs::File::options()
        .write(true)
        .open(&gguf)
        .unwrap()
        .set_modified(earlier)
        .unwrap();
    if linked.kind == LinkKind::Reflink {
        // A clone has its own mtime: touching the original changes nothing.
        store.bundle(&id).unwrap();
        return;
    }
    assert_eq!(linked.kind, LinkKind::HardLink);
    let e = store.bundle(&id).unwrap_err();
    assert!(e.to_string().contains("modified since"), "{e}");
    let report = store.fsck(false).unwrap();
    assert!(report.corrupt_blobs.is_empty(), "{report:?}");
    assert_eq!(
        report.changed_links,
        vec![(digest, gguf.canonicalize().unwrap())]
    );
    assert!(!report.is_clean());
    assert!(store.fsck(true).unwrap().is_clean());
    store.bundle(&id).unwrap();
    assert!(store.fsck(false).unwrap().changed_links.is_empty());
}

#[test]
fn what_cannot_be_linked_is_refused_and_nothing_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let (gguf, _, tar) = packaged(dir.path(), 4);
    let text = dir.path().join("notes.txt");
    fs::write(
        &text,
        "not a model, but long enough to be read as one\n".repeat(4),
    )
    .unwrap();
    for (file, says) in [
        (text, "not a GGUF file"),
        (PathBuf::from("m4.gguf"), "must be absolute"),
        (
            dir.path().join("nothing.gguf"),
            "no such file on the daemon's machine",
        ),
        (dir.path().to_path_buf(), "not a regular file"),
        (
            PathBuf::from("/proc/self/status"),
            "too short for a GGUF file",
        ),
    ] {
        let e = link(&store, &tar, &file, true).unwrap_err();
        assert!(matches!(e, StoreError::CannotLink { .. }), "{e}");
        assert!(e.to_string().contains(says), "{file:?}: {e}");
    }
    // A GGUF that is not the packaged layer (changed after packaging, or another file).
    let o = dir.path().join("o");
    fs::create_dir_all(&o).unwrap();
    let (other, other_digest, _) = packaged(&o, 5);
    let e = link(&store, &tar, &other, false).unwrap_err();
    assert!(e.to_string().contains("not a layer of the manifest"), "{e}");
    assert!(!store.has_blob(&other_digest), "the refused link was kept");
    assert!(store.list().unwrap().is_empty());
    assert_eq!(fs::read_dir(store.root().join("links")).unwrap().count(), 0);
    assert!(gguf.is_file() && other.is_file());
}

/// A writable directory on another file system than `near`, for the cross-device case.
fn elsewhere(near: &Path) -> tempfile::TempDir {
    let dev = fs::metadata(near).unwrap().dev();
    ["/dev/shm", "/run/user", "/run", "/var/tmp", "/tmp"]
        .iter()
        .filter(|d| fs::metadata(d).is_ok_and(|m| m.dev() != dev))
        .find_map(|d| tempfile::tempdir_in(d).ok())
        .expect("this test needs a writable directory on another file system than the temp dir (/dev/shm is one on most machines)")
}

#[test]
fn another_file_system_is_refused_with_the_reason_or_copied_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let far = elsewhere(dir.path());
    let (gguf, digest, tar) = packaged(far.path(), 6);
    let e = link(&store, &tar, &gguf, false).unwrap_err();
    assert!(
        e.to_string().contains("another file system than the store"),
        "{e}"
    );
    assert!(store.list().unwrap().is_empty());
    let copied = link(&store, &tar, &gguf, true).unwrap();
    assert_eq!((copied.kind, copied.digest), (LinkKind::Copy, digest));
    let blob = fs::metadata(store.blob_path(&digest)).unwrap();
    assert_ne!(blob.ino(), fs::metadata(&gguf).unwrap().ino());
    assert!(store.fsck(false).unwrap().is_clean());
}

#[test]
fn an_unreadable_link_record_is_listed_and_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let (gguf, digest, tar) = packaged(dir.path(), 4);
    link(&store, &tar, &gguf, false).unwrap();
    let record = dir.path().join("store/links").join(digest.hex());
    fs::write(&record, b"{not json").unwrap();
    let report = store.fsck(false).unwrap();
    assert_eq!(report.stray_files, vec![format!("links/{}", digest.hex())]);
    assert!(!report.is_clean());
    assert!(store.fsck(true).unwrap().repaired);
    assert!(!record.exists(), "the repair kept the unreadable record");
    assert!(store.fsck(false).unwrap().is_clean());
    assert_eq!(
        fs::read(&gguf).unwrap().len() as u64,
        fs::metadata(store.blob_path(&digest)).unwrap().len()
    );
}
