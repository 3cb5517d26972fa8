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

/// The trained stories260K model. Under CI (`CI` set) a missing file panics, so a test
/// that needs it can never pass vacuously; elsewhere it returns `None` and the caller
/// says so loudly.
pub fn stories260k() -> Option<PathBuf> {
    let p = shared_dir().join("models/stories260K.gguf");
    if std::env::var_os(WITHOUT_SHARED_ENV).is_some_and(|v| !v.is_empty()) {
        eprintln!("NOTE: {WITHOUT_SHARED_ENV} is set; testing with a generated model instead");
        return None;
    }
    if p.is_file() {
        return Some(p.canonicalize().expect("canonical path"));
    }
    if std::env::var_os("CI").is_some() {
        panic!("{} is missing; CI must provide it", p.display());
    }
    eprintln!("NOTE: {} is missing; this test checks less", p.display());
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
