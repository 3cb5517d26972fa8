//! Crash safety: a child process writes to the store and is killed (SIGKILL, or an abort
//! at a named point: mid-blob, after a rename, before and inside the index update). After
//! each kill the store reopens, every tag resolves to a parseable manifest whose blobs
//! exist and verify, and no partial file is visible as content.

mod util;

use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::Duration;

use modelrunner_store::LoadLimits;

const CHILD_ENV: &str = "MODELRUNNER_CRASH_CHILD";

/// The writer: run by `kill_writer_many_times` re-executing itself with `CHILD_ENV` set.
fn be_the_writer(root: std::ffi::OsString) {
    let root = std::path::PathBuf::from(root);
    let work = root.with_extension("work");
    std::fs::create_dir_all(&work).unwrap();
    let store = util::open_when_free(&root).unwrap();
    let mut seed: u64 = std::process::id().into();
    for _ in 0..40 {
        seed += 1;
        let big: Vec<u8> = (0..(2u32 << 20)).map(|i| (i as u64 ^ seed) as u8).collect();
        let (built, tar) = util::build_model_with(&work, seed % 7, &big);
        let m = store
            .load_archive(tar.as_slice(), LoadLimits::default())
            .unwrap();
        store
            .tag(
                &m.id.to_string(),
                &format!("m{}", seed % 5).parse().unwrap(),
            )
            .unwrap();
        if seed % 3 == 0 {
            let _ = store.delete(&format!("m{}", (seed + 2) % 5), false);
        }
        if seed % 4 == 0 {
            store.gc().unwrap();
        }
        assert_eq!(m.id, built.id);
    }
}

/// Reopens the store after a kill, checks it, and returns how many models it holds. One
/// open per round: sled's flusher thread can hold the index lock for a moment after a
/// `Store` is dropped, so a second open in the same process may find it still taken.
fn check(root: &std::path::Path, round: usize) -> usize {
    let store =
        util::open_when_free(root).unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
    let report = store.fsck(false).unwrap();
    assert!(report.corrupt_blobs.is_empty(), "round {round}: {report:?}");
    assert!(report.stray_files.is_empty(), "round {round}: {report:?}");
    assert!(report.broken_models.is_empty(), "round {round}: {report:?}");
    for m in store.list().unwrap() {
        for t in &m.tags {
            assert_eq!(store.resolve(t).unwrap().id, m.id, "round {round}: tag {t}");
        }
        for d in m.manifest.blobs() {
            assert!(
                store.has_blob(&d.digest),
                "round {round}: {} missing",
                d.digest
            );
        }
    }
    assert!(
        util::files_under(&root.join("tmp")).is_empty(),
        "round {round}: temp files left"
    );
    store.list().unwrap().len()
}

#[test]
fn kill_writer_many_times() {
    if let Some(root) = std::env::var_os(CHILD_ENV) {
        be_the_writer(root);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let exe = std::env::current_exe().unwrap();
    let points = [
        "blob.mid-write",
        "blob.before-sync",
        "blob.after-rename",
        "model.before-index",
        "index.before-flush",
    ];
    let mut models_seen = 0;
    for round in 0..30 {
        let mut cmd = Command::new(&exe);
        cmd.args([
            "--exact",
            "kill_writer_many_times",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &root)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
        let point = (round % 2 == 0).then(|| points[(round / 2) % points.len()]);
        if let Some(p) = point {
            // Let a few models land first, then stop at the point.
            cmd.env("MODELRUNNER_STORE_CRASH_AT", p);
        }
        let mut child = cmd.spawn().unwrap();
        match point {
            Some(p) => {
                // The failpoint aborts (SIGABRT); a panic or an error exits instead.
                let status = child.wait().unwrap();
                assert_eq!(
                    status.signal(),
                    Some(libc::SIGABRT),
                    "round {round}: the writer did not stop at {p}: {status}"
                );
            }
            None => {
                std::thread::sleep(Duration::from_millis(150 + (round as u64 * 37) % 400));
                child.kill().unwrap();
                child.wait().unwrap();
            }
        }
        models_seen += check(&root, round);
    }
    assert!(models_seen > 0, "the writer never stored a model");
}
