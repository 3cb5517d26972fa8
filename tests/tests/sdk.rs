//! The official OpenAI SDKs (Python and Node, installed by `scripts/sdk.sh`) against the
//! real daemon: chat (streaming and not), completions, embeddings, model listing,
//! `json_schema` output, the SDKs' own exception types for errors, and tool calls through
//! the Python SDK, the OpenAI Agents SDK and LangChain.

use std::path::{Path, PathBuf};
use std::process::Command;

use modelrunner_e2e::Daemon;

fn sdk_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/sdk")
}

fn source(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("sdk")
        .join(name)
}

fn require(p: &Path) {
    assert!(
        p.exists(),
        "{} is missing; run scripts/sdk.sh (scripts/test.sh does)",
        p.display()
    );
}

fn run(mut cmd: Command, d: &Daemon) {
    let out = cmd
        .env("OPENAI_BASE_URL", d.u("/v1"))
        .env("MODEL", "stories")
        .output()
        .expect("running the SDK script");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "the SDK script failed:\n{text}");
    assert!(text.contains("ok"), "{text}");
}

#[test]
fn python_sdk() {
    let python = sdk_dir().join("venv/bin/python");
    require(&python);
    let d = Daemon::start(&[]);
    d.package_chat_model("stories");
    let mut cmd = Command::new(python);
    cmd.arg(source("test_openai.py"));
    run(cmd, &d);
}

#[test]
fn python_clients_call_tools() {
    let python = sdk_dir().join("venv/bin/python");
    require(&python);
    let d = Daemon::start(&[]);
    d.package_with_template("stories", "hermes");
    let mut cmd = Command::new(python);
    cmd.arg(source("test_tools.py"));
    run(cmd, &d);
}

#[test]
fn node_sdk() {
    let node_dir = sdk_dir().join("node");
    require(&node_dir.join("node_modules/openai"));
    // ES modules resolve packages from the script's own directory.
    let script = node_dir.join("test_openai.mjs");
    std::fs::copy(source("test_openai.mjs"), &script).unwrap();
    let d = Daemon::start(&[]);
    d.package_chat_model("stories");
    let mut cmd = Command::new("node");
    cmd.arg(&script);
    run(cmd, &d);
}
