//! The official OpenAI SDKs (Python and Node, installed by `scripts/sdk.sh`) against the
//! real daemon: chat (streaming and not), completions, embeddings, model listing,
//! `json_schema` output, the SDKs' own exception types for errors, and tool calls through
//! the Python SDK, the OpenAI Agents SDK and LangChain; the official Anthropic SDKs
//! (Python and TypeScript) against the Messages API; the official ollama Python client and
//! langchain-ollama against the /api routes, pulling from and pushing to a real registry.

use std::path::{Path, PathBuf};
use std::process::Command;

use modelrunner_e2e::registry::{RegistryOptions, TestRegistry};
use modelrunner_e2e::{key_hash, Daemon};

/// The API key of the daemons that the Anthropic clients talk to.
const KEY: &str = "sk-ant-local-test";

/// A daemon that asks for [`KEY`], with the chat model as `stories`, with Qwen3's
/// template as `tools` and with QwQ's as `thinker`.
fn keyed_daemon() -> Daemon {
    let d = Daemon::start(&[]);
    d.package_chat_model("stories");
    d.package_with_template("tools", "hermes");
    // QwQ's template opens the thinking block in the prompt: this model then thinks.
    let (gguf, _) = modelrunner_testkit::chat_model(d.dir.path());
    let qwq = modelrunner_testkit::shared_dir().join("chat-templates/Qwen-QwQ-32B.jinja");
    let (gguf, qwq) = (gguf.to_str().unwrap(), qwq.to_str().unwrap());
    d.ok(&["package", "--gguf", gguf, "--chat-template", qwq, "thinker"]);
    // Claude-Code-style clients name Claude models; the recipe in docs/api.md tags one.
    d.ok(&["tag", "stories", "claude-sonnet-4-5"]);
    let (dir, store) = d.stop();
    Daemon::start_in(dir, store, &["--api-key-hash", &key_hash(KEY)])
}

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
        .env("ANTHROPIC_BASE_URL", d.u(""))
        .env("ANTHROPIC_API_KEY", KEY)
        .env("MODEL", "stories")
        .env("TOOLS_MODEL", "tools")
        .env("THINKING_MODEL", "thinker")
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
    let coder = d.dir.path().join("coder.gguf");
    modelrunner_testkit::LlamaSpec::tiny()
        .build_fim(3)
        .write_file(&coder)
        .unwrap();
    d.ok(&["package", "--gguf", coder.to_str().unwrap(), "coder"]);
    let mut cmd = Command::new(python);
    cmd.arg(source("test_openai.py")).env("FIM_MODEL", "coder");
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

#[test]
fn anthropic_python_sdk() {
    let python = sdk_dir().join("venv/bin/python");
    require(&python);
    let d = keyed_daemon();
    let mut cmd = Command::new(python);
    cmd.arg(source("test_anthropic.py"));
    run(cmd, &d);
}

#[test]
fn anthropic_typescript_sdk() {
    let node_dir = sdk_dir().join("node");
    require(&node_dir.join("node_modules/@anthropic-ai/sdk"));
    let script = node_dir.join("test_anthropic.mjs");
    std::fs::copy(source("test_anthropic.mjs"), &script).unwrap();
    let d = keyed_daemon();
    let mut cmd = Command::new("node");
    cmd.arg(&script).env("CLAUDE_MODEL", "claude-sonnet-4-5");
    run(cmd, &d);
}

#[test]
fn responses_python_sdk_and_agents_across_a_restart() {
    let python = sdk_dir().join("venv/bin/python");
    require(&python);
    let d = Daemon::start(&[]);
    d.package_chat_model("stories");
    d.package_with_template("tools", "hermes");
    let state = d.dir.path().join("state.json");
    let mut cmd = Command::new(&python);
    cmd.arg(source("test_responses.py"))
        .arg("first")
        .env("STATE", &state);
    run(cmd, &d);
    let (dir, store) = d.stop();
    let d = Daemon::start_in(dir, store, &[]);
    let mut cmd = Command::new(&python);
    cmd.arg(source("test_responses.py"))
        .arg("second")
        .env("STATE", &state);
    run(cmd, &d);
}

#[test]
fn ollama_python_client_and_langchain() {
    let python = sdk_dir().join("venv/bin/python");
    require(&python);
    let reg = TestRegistry::start(RegistryOptions::default());
    let d = Daemon::start(&[]);
    d.package_chat_model("stories");
    d.package_with_template("tools", "hermes");
    // The registry holds a model for the client to pull.
    let remote = format!("{}/test/stories:v1", reg.host);
    d.ok(&["tag", "stories", &remote]);
    d.ok(&["push", &remote]);
    d.ok(&["rm", &remote]);
    let (gguf, _) = modelrunner_testkit::chat_model(d.dir.path());
    let mut cmd = Command::new(python);
    cmd.arg(source("test_ollama.py"))
        .env("OLLAMA_HOST", d.u(""))
        .env("REGISTRY", &reg.host)
        .env("GGUF", gguf);
    run(cmd, &d);
}

#[test]
fn cohere_rerank_client() {
    let python = sdk_dir().join("venv/bin/python");
    require(&python);
    let d = Daemon::start(&[]);
    d.package_reranker("reranker", true);
    let mut cmd = Command::new(python);
    cmd.arg(source("test_cohere.py"))
        .env("BASE_URL", d.u(""))
        .env("RERANK_MODEL", "reranker");
    run(cmd, &d);
}
