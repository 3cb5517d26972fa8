//! A symlink planted inside the store never leads a write out of it: links in the
//! store's own directories (or among sled's files) stop the start with a message naming
//! the link, and a link where a partial download would be is removed, never followed.

use std::fs;
use std::os::unix::fs::symlink;
use std::sync::Arc;

use modelrunner_format::Digest;
use modelrunner_store::Store;

#[test]
fn links_in_the_layout_stop_the_start() {
    for (dir, name) in [
        ("blobs", "blobs"),
        ("blobs/sha256", "blobs/sha256"),
        ("partial", "partial"),
        ("index", "index"),
        ("tmp", "tmp"),
    ] {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        drop(Store::open(root.path()).unwrap());
        let p = root.path().join(dir);
        fs::remove_dir_all(&p).unwrap();
        symlink(outside.path(), &p).unwrap();
        let e = Store::open(root.path())
            .err()
            .expect("opened through a link");
        let msg = e.to_string();
        assert!(
            msg.contains(name) && msg.contains("never follows links"),
            "{msg}"
        );
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 0, "{dir}");
    }
}

#[test]
fn a_link_among_the_index_files_stops_the_start() {
    let root = tempfile::tempdir().unwrap();
    drop(Store::open(root.path()).unwrap());
    let outside = tempfile::NamedTempFile::new().unwrap();
    let conf = root.path().join("index/conf");
    fs::remove_file(&conf).unwrap();
    symlink(outside.path(), &conf).unwrap();
    let msg = Store::open(root.path()).err().expect("opened").to_string();
    assert!(msg.contains("index/conf is a symlink"), "{msg}");
}

#[test]
fn a_link_in_place_of_a_partial_download_is_removed_not_followed() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("victim");
    fs::write(&target, b"precious").unwrap();
    let bytes = b"blob bytes".to_vec();
    let d = Digest::of(&bytes);
    drop(Store::open(root.path()).unwrap());
    let planted = root.path().join("partial/sha256").join(d.hex());
    symlink(&target, &planted).unwrap();
    let store = Arc::new(Store::open(root.path()).unwrap());
    assert!(
        fs::symlink_metadata(&planted).is_err(),
        "the link is still there"
    );
    let lease = store.owned_lease();
    let mut p = store.partial(&lease, d, bytes.len() as u64).unwrap();
    p.append(&bytes).unwrap();
    p.commit().unwrap();
    assert!(store.has_blob(&d));
    assert_eq!(fs::read(&target).unwrap(), b"precious");
}
