//! The index rebuilt from the model record (`manifests/models.json`) and the manifests
//! when sled's files are lost or corrupt: every model with its tags, nothing deleted
//! comes back.

mod util;

use std::fs;

use modelrunner_format::Reference;
use modelrunner_store::{LoadLimits, Store};
use util::build_model;

fn r(s: &str) -> Reference {
    s.parse().unwrap()
}

/// A store with three models loaded: two tagged (one twice), one deleted after.
fn populated(root: &std::path::Path, scratch: &std::path::Path) -> Vec<(String, Vec<String>)> {
    let store = Store::open(root).unwrap();
    for seed in 1..=3 {
        let (_, tar) = build_model(scratch, seed);
        let m = store
            .load_archive(tar.as_slice(), LoadLimits::default())
            .unwrap();
        match seed {
            1 => {
                store.tag(&m.id.to_string(), &r("one")).unwrap();
                store.tag("one", &r("ghcr.io/o/one:v1")).unwrap();
            }
            2 => {
                store.tag(&m.id.to_string(), &r("two")).unwrap();
            }
            _ => {
                store.tag(&m.id.to_string(), &r("gone")).unwrap();
                store.delete("gone", false).unwrap();
            }
        }
    }
    listing(&store)
}

fn listing(store: &Store) -> Vec<(String, Vec<String>)> {
    let mut v: Vec<_> = store
        .list()
        .unwrap()
        .into_iter()
        .map(|m| {
            let mut tags = m.tags;
            tags.sort();
            (m.id.to_string(), tags)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_deleted_index_is_rebuilt_with_every_tag() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let before = populated(&root, dir.path());
    assert_eq!(before.len(), 2);
    fs::remove_dir_all(root.join("index")).unwrap();
    let store = Store::open(&root).unwrap();
    assert_eq!(listing(&store), before);
    assert_eq!(
        store.resolve("ghcr.io/o/one:v1").unwrap().id,
        store.resolve("one").unwrap().id
    );
    assert!(store.resolve("gone").is_err());
    store.bundle("two").unwrap();
}

#[test]
fn a_corrupt_index_is_set_aside_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let before = populated(&root, dir.path());
    // Garbage over every file sled keeps.
    for e in fs::read_dir(root.join("index")).unwrap().flatten() {
        if e.file_type().unwrap().is_file() {
            fs::write(e.path(), vec![0xA5; 4096]).unwrap();
        }
    }
    let store = util::open_when_free(&root).unwrap();
    assert_eq!(listing(&store), before);
    assert!(fs::read_dir(&root)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("index.broken-")));
    // Changes after the rebuild are recorded too.
    store.delete("two", false).unwrap();
    drop(store);
    fs::remove_dir_all(root.join("index")).unwrap();
    let store = Store::open(&root).unwrap();
    assert_eq!(listing(&store).len(), 1);
}

#[test]
fn an_index_in_use_by_another_store_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let before = populated(&root, dir.path());
    let running = Store::open(&root).unwrap();
    let e = Store::open(&root).err().expect("two stores on one index");
    assert!(e.to_string().contains("index"), "{e}");
    assert!(!fs::read_dir(&root)
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().starts_with("index.broken-")));
    assert_eq!(listing(&running), before);
}
