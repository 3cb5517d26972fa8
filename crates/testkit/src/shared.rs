//! Paths to the test data shared beside the project.

use std::path::PathBuf;

/// `../shared` relative to the workspace root.
pub fn shared_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// The trained stories260K model. Under CI (`CI` set) a missing file panics, so a test
/// that needs it can never pass vacuously; elsewhere it returns `None` and the caller
/// says so loudly.
pub fn stories260k() -> Option<PathBuf> {
    let p = shared_dir().join("models/stories260K.gguf");
    if p.is_file() {
        return Some(p.canonicalize().expect("canonical path"));
    }
    if std::env::var_os("CI").is_some() {
        panic!("{} is missing; CI must provide it", p.display());
    }
    eprintln!("NOTE: {} is missing; this test checks less", p.display());
    None
}
