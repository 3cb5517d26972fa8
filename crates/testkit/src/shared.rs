//! Paths to the test data shared beside the project.

use std::path::{Path, PathBuf};

use crate::LlamaSpec;

/// `../shared` relative to the workspace root.
pub fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// Set to a non-empty value, this makes [`stories260k`] answer `None` as if the file were
/// missing, so the generated-model fallback can be tested where `../shared` exists.
const WITHOUT_SHARED_ENV: &str = "MODELRUNNER_TEST_WITHOUT_SHARED";

/// The file `scripts/test.sh` prints at the end of its run: one line per test that
/// checked less than it could.
pub const NOTES_FILE: &str = "target/test-notes.txt";

fn under_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

/// Says that the running test checks less than it could because `what` is missing
/// (`"../shared/chat-templates is missing"`): under CI (`CI` set) it panics, so no test
/// passes there vacuously; elsewhere it says so on stderr and in [`NOTES_FILE`], so the
/// test run's summary shows it.
pub fn checks_less(what: &str) {
    if under_ci() {
        panic!("{what}; CI must provide it");
    }
    eprintln!("NOTE: {what}; this test checks less");
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(NOTES_FILE);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        use std::io::Write;
        let _ = writeln!(f, "{test}: {what}");
    }
}

/// The trained stories260K model, or `None` (after [`checks_less`]) where it is missing
/// or [`WITHOUT_SHARED_ENV`] is set, which CI refuses.
pub fn stories260k() -> Option<PathBuf> {
    let p = shared_dir().join("models/stories260K.gguf");
    if std::env::var_os(WITHOUT_SHARED_ENV).is_some_and(|v| !v.is_empty()) {
        assert!(!under_ci(), "{WITHOUT_SHARED_ENV} cannot be set under CI");
        checks_less(&format!(
            "{WITHOUT_SHARED_ENV} is set: a generated model stands in for stories260K"
        ));
        return None;
    }
    if p.is_file() {
        return Some(p.canonicalize().expect("canonical path"));
    }
    checks_less(&format!("{} is missing", p.display()));
    None
}

/// stories260K when present (`true`), else [`LlamaSpec::stand_in`] written into `dir`
/// (`false`: its text is noise, so callers skip checks of what it says).
pub fn chat_model(dir: &Path) -> (PathBuf, bool) {
    if let Some(p) = stories260k() {
        return (p, true);
    }
    let p = dir.join("stand-in.gguf");
    if !p.is_file() {
        LlamaSpec::stand_in()
            .build(1)
            .write_file(&p)
            .expect("write the stand-in model");
    }
    (p, false)
}
