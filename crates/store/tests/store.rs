//! Store behaviour: load, tag, resolve, delete with shared blobs, gc, fsck, bundles,
//! rollback of bad archives, export round trip.

mod util;

use std::fs;

use modelrunner_format::{Digest, Reference};
use modelrunner_store::{LoadLimits, Store, StoreError};
use util::{build_model, files_under};

fn r(s: &str) -> Reference {
    s.parse().unwrap()
}

#[test]
fn load_tag_resolve_delete() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let (built, tar) = build_model(dir.path(), 1);
    // Every index change moves the generation (the daemon caches resolutions under it);
    // reads do not.
    let mut generation = store.generation();
    let mut changed = |store: &Store| {
        let now = store.generation();
        let moved = now != generation;
        generation = now;
        moved
    };
    let m = store
        .load_archive(tar.as_slice(), LoadLimits::default())
        .unwrap();
    assert_eq!(m.id, built.id);
    assert!(m.tags.is_empty());
    assert!(changed(&store), "adding a model");
    store.tag(&m.id.to_string(), &r("tiny")).unwrap();
    assert!(changed(&store), "a tag");
    store.tag("tiny", &r("ghcr.io/o/tiny:v1")).unwrap();
    assert!(changed(&store), "a second tag");
    assert_eq!(store.resolve("docker.io/ai/tiny:latest").unwrap().id, m.id);
    assert_eq!(store.resolve(&m.id.short()).unwrap().id, m.id);
    assert_eq!(store.resolve(&m.id.hex()).unwrap().id, m.id);
    assert_eq!(store.resolve_partial("tiny:v1").unwrap().id, m.id);
    assert!(matches!(
        store.resolve("nope"),
        Err(StoreError::NotFound { .. })
    ));
    store.bundle("tiny").unwrap();
    assert!(!changed(&store), "resolving and bundling change nothing");
    assert_eq!(m.config.architecture.as_deref(), Some("llama"));
    assert_eq!(m.config.context_size, Some(512));

    // Deleting by ID with two tags is a conflict; by tag it untags.
    assert!(matches!(
        store.delete(&m.id.to_string(), false),
        Err(StoreError::Conflict { .. })
    ));
    let out = store.delete("ghcr.io/o/tiny:v1", false).unwrap();
    assert_eq!(out.untagged, vec!["ghcr.io/o/tiny:v1".to_string()]);
    assert_eq!(out.deleted, None);
    assert!(changed(&store), "an untag");
    let out = store.delete("tiny", false).unwrap();
    assert_eq!(out.deleted, Some(m.id));
    assert!(store.list().unwrap().is_empty());
    assert!(files_under(&store.root().join("blobs/sha256")).is_empty());
}

#[test]
fn shared_blobs_survive_deleting_one_model() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let (_, a) = build_model(dir.path(), 1);
    let (_, b) = build_model(dir.path(), 2);
    let ma = store
        .load_archive(a.as_slice(), LoadLimits::default())
        .unwrap();
    let mb = store
        .load_archive(b.as_slice(), LoadLimits::default())
        .unwrap();
    store.tag(&ma.id.to_string(), &r("a")).unwrap();
    store.tag(&mb.id.to_string(), &r("b")).unwrap();
    // The license layer is shared.
    let license = Digest::of(b"FAKE LICENSE\n");
    store.delete("a", false).unwrap();
    assert!(store.has_blob(&license));
    let b = store.resolve("b").unwrap();
    for d in b.manifest.blobs() {
        assert!(store.has_blob(&d.digest));
    }
    assert!(store.fsck(false).unwrap().is_clean());
}

#[test]
fn retag_moves_the_tag() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let (_, a) = build_model(dir.path(), 1);
    let (_, b) = build_model(dir.path(), 2);
    let ma = store
        .load_archive(a.as_slice(), LoadLimits::default())
        .unwrap();
    let mb = store
        .load_archive(b.as_slice(), LoadLimits::default())
        .unwrap();
    store.tag(&ma.id.to_string(), &r("m")).unwrap();
    store.tag(&mb.id.to_string(), &r("m")).unwrap();
    assert_eq!(store.resolve("m").unwrap().id, mb.id);
    assert!(store.resolve(&ma.id.to_string()).unwrap().tags.is_empty());
}

#[test]
fn bad_archives_leave_the_store_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let (_, tar) = build_model(dir.path(), 3);
    let before = files_under(&store.root().join("blobs/sha256"));
    // Truncated: blobs arrive, the manifest never does.
    let cut = &tar[..tar.len() / 2];
    assert!(store.load_archive(cut, LoadLimits::default()).is_err());
    // Too large.
    let e = store
        .load_archive(tar.as_slice(), LoadLimits { max_total: 1000 })
        .unwrap_err();
    assert!(matches!(e, StoreError::TooLarge { .. }), "{e}");
    // Garbage.
    assert!(store
        .load_archive(&b"not a tar at all"[..], LoadLimits::default())
        .is_err());
    // A blob whose content does not match its name.
    let mut bad = tar.clone();
    let pos = bad.len() / 3;
    bad[pos] ^= 0xff;
    let e = store
        .load_archive(bad.as_slice(), LoadLimits::default())
        .unwrap_err();
    assert!(
        e.to_string().contains("mismatch") || e.to_string().contains("malformed"),
        "{e}"
    );
    assert_eq!(files_under(&store.root().join("blobs/sha256")), before);
    assert!(store.list().unwrap().is_empty());
    assert!(files_under(&store.root().join("tmp")).is_empty());
}

#[test]
fn export_round_trips_to_the_same_id() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s1")).unwrap();
    let (built, tar) = build_model(dir.path(), 4);
    store
        .load_archive(tar.as_slice(), LoadLimits::default())
        .unwrap();
    let mut out = Vec::new();
    store.export(&built.id.to_string(), &mut out).unwrap();
    let other = Store::open(&dir.path().join("s2")).unwrap();
    let m = other
        .load_archive(out.as_slice(), LoadLimits::default())
        .unwrap();
    assert_eq!(m.id, built.id);
}

#[test]
fn fsck_finds_and_repairs_corruption_and_gc_keeps_referenced() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let (built, tar) = build_model(dir.path(), 5);
    store
        .load_archive(tar.as_slice(), LoadLimits::default())
        .unwrap();
    // An orphan blob is collected; referenced ones stay.
    let lease = store.lease();
    let orphan = store.put_blob(&lease, b"orphan").unwrap();
    let report = store.gc().unwrap();
    assert!(report.blobs_removed.is_empty(), "pinned orphan removed");
    drop(lease);
    let report = store.gc().unwrap();
    assert_eq!(report.blobs_removed, vec![orphan]);
    assert!(store.fsck(false).unwrap().is_clean());
    // Corrupt the GGUF layer.
    let gguf = built.layers[0].1.digest;
    fs::write(store.blob_path(&gguf), b"rot").unwrap();
    let report = store.fsck(false).unwrap();
    assert_eq!(report.corrupt_blobs, vec![gguf]);
    assert_eq!(report.broken_models.len(), 1);
    // gc never removes what a broken model references.
    store.gc().unwrap();
    assert!(store.has_blob(&gguf));
    let report = store.fsck(true).unwrap();
    assert!(report.repaired);
    assert!(!store.has_blob(&gguf));
    assert_eq!(store.fsck(false).unwrap().broken_models.len(), 1);
    // The broken model is still listed and can be removed, but cannot be bundled.
    assert_eq!(store.list().unwrap().len(), 1);
    assert!(store.bundle(&built.id.to_string()).is_err());
    store.delete(&built.id.to_string(), true).unwrap();
    assert!(store.fsck(false).unwrap().is_clean());
}

#[test]
fn bundle_links_files_where_llama_cpp_expects_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let (built, tar) = build_model(dir.path(), 6);
    store
        .load_archive(tar.as_slice(), LoadLimits::default())
        .unwrap();
    let b = store.bundle(&built.id.to_string()).unwrap();
    assert!(b.gguf.ends_with("model/model.gguf"));
    assert_eq!(
        fs::read(&b.gguf).unwrap(),
        fs::read(store.blob_path(&built.layers[0].1.digest)).unwrap()
    );
    assert_eq!(store.bundle(&built.id.to_string()).unwrap(), b);
}

#[test]
fn refuses_symlinked_store_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    fs::create_dir_all(root.join("blobs")).unwrap();
    std::os::unix::fs::symlink("/tmp", root.join("blobs/sha256")).unwrap();
    let e = Store::open(&root).err().expect("symlink accepted");
    assert!(e.to_string().contains("symlink"), "{e}");
}

#[test]
fn concurrent_writers_of_one_blob_store_it_once() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("store")).unwrap();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let digest = Digest::of(&data);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                let lease = store.lease();
                let mut w = lease
                    .blob_writer(Some((digest, data.len() as u64)))
                    .unwrap();
                for chunk in data.chunks(65_536) {
                    w.write_all(chunk).unwrap();
                }
                assert_eq!(w.commit().unwrap(), digest);
            });
        }
    });
    assert_eq!(files_under(&store.root().join("blobs/sha256")).len(), 1);
    assert_eq!(fs::read(store.blob_path(&digest)).unwrap(), data);
    assert!(files_under(&store.root().join("tmp")).is_empty());
}
