//! Shared helpers: build small model archives with the real packager.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use modelrunner_format::package::{Built, PackageSpec};
use modelrunner_store::{Store, StoreError};
use modelrunner_testkit::LlamaSpec;

/// Writes a tiny GGUF and a license into `dir` and packages them.
pub fn build_model(dir: &Path, seed: u64) -> (Built, Vec<u8>) {
    build_model_with(dir, seed, b"FAKE LICENSE\n")
}

/// Like [`build_model`] with a license of the given content.
pub fn build_model_with(dir: &Path, seed: u64, license_text: &[u8]) -> (Built, Vec<u8>) {
    let gguf = dir.join(format!("m{seed}.gguf"));
    LlamaSpec::tiny().build(seed).write_file(&gguf).unwrap();
    let license = dir.join("LICENSE");
    std::fs::write(&license, license_text).unwrap();
    let spec = PackageSpec {
        gguf,
        licenses: vec![license],
        created: Some(Utc.timestamp_opt(1_767_225_600, 0).unwrap()),
        ..PackageSpec::default()
    };
    let built = spec.plan().unwrap().build(&mut |_| {}).unwrap();
    let tar = built.write_tar(Vec::new(), &mut |_| {}).unwrap();
    (built, tar)
}

pub fn files_under(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

/// Opens the store, waiting while the index lock is still taken. sled's background threads
/// can hold the index file for a moment after the `Store` that owned it is dropped (after
/// a recovery they may still be writing), so the next open, in this process or in the
/// writer it starts, can find the lock taken. Bounded: after 200 tries the error stands.
pub fn open_when_free(root: &Path) -> Result<Store, StoreError> {
    let mut tries = 0;
    loop {
        match Store::open(root) {
            Err(e) if tries < 200 && e.to_string().contains("could not acquire lock") => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            done => return done,
        }
    }
}
