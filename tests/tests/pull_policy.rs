//! The pull policy (`[registries.policy]`) per source: an OCI registry's namespace allowed
//! and a repository under it denied, another namespace outside the allowed ones, a
//! Hugging Face organisation; through `/models/create`, Ollama's `/api/pull` (in its own
//! error shape) and `modelrunner run`; a refused source is never contacted. A model not
//! stored, pulled on first use (off by default) within the size limit and the policy.

use modelrunner_e2e::fake_hub::{Access, FakeHub, HubFile};
use modelrunner_e2e::registry::{RegistryOptions, TestRegistry};
use modelrunner_e2e::Daemon;
use serde_json::Value;

#[test]
fn each_source_is_allowed_or_refused_by_its_rule() {
    let reg = TestRegistry::start(RegistryOptions::default());
    let src = Daemon::start(&[]);
    src.package_tiny("tiny", 5);
    for repo in ["test/stories:v1", "test/secret:v1", "other/model:v1"] {
        let r = format!("{}/{repo}", reg.host);
        src.ok(&["tag", "tiny", &r]);
        src.ok(&["push", &r]);
    }
    let hub = FakeHub::start();
    let gguf = std::fs::read(src.dir.path().join("tiny5.gguf")).unwrap();
    for repo in ["test/model-gguf", "evil/model-gguf"] {
        let files = [HubFile {
            path: "model-Q4_K_M.gguf",
            bytes: gguf.clone(),
        }];
        hub.repo(repo, &"c".repeat(40), Access::Public, &files);
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    let host = &reg.host;
    std::fs::write(
        &cfg,
        format!(
            "[registries.policy]\nallow = [\"{host}/test\", \"hf.co/test\", \"ollama\"]\ndeny = [\"{host}/test/secret\"]\n"
        ),
    )
    .unwrap();
    let store = dir.path().join("store");
    let (cfg, endpoint) = (cfg.to_str().unwrap().to_string(), hub.endpoint());
    let d = Daemon::start_full(
        dir,
        store,
        &["--config", &cfg, "--hf-endpoint", &endpoint],
        &[],
    );

    let (status, body) = d.create(&format!("{host}/test/stories:v1"));
    assert_eq!(status, 200, "{body}");
    let (status, body) = d.create(&format!("{host}/test/secret:v1"));
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains(&format!("deny = \\\"{host}/test/secret\\\"")),
        "{body}"
    );
    let (status, body) = d.create(&format!("{host}/other/model:v1"));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("allow = ["), "{body}");

    let (status, body) = d.create("hf.co/test/model-gguf");
    assert_eq!(status, 200, "{body}");
    let (status, body) = d.create("hf.co/evil/model-gguf");
    assert_eq!(status, 403, "{body}");
    assert!(
        !hub.hub.seen().iter().any(|s| s.path.contains("evil")),
        "a refused source is not contacted"
    );

    // Ollama's pull, in Ollama's error shape.
    let r = reqwest::blocking::Client::new()
        .post(d.u("/api/pull"))
        .json(&serde_json::json!({"model": format!("{host}/other/model:v1"), "insecure": true}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    let v: Value = r.json().unwrap();
    assert!(v["error"].as_str().unwrap().contains("pull policy"), "{v}");

    // The run verb's pull.
    let err = d.fails(&["run", &format!("{host}/other/model:v1"), "hi"]);
    assert!(err.contains("pull policy"), "{err}");
    let listed = d.ok(&["ls", "--json"]);
    assert!(listed.contains("test/stories:v1") && listed.contains("test/model-gguf"));
    assert!(
        !listed.contains("secret") && !listed.contains("other/model") && !listed.contains("evil")
    );
}

fn chat(d: &Daemon, model: &str) -> (u16, Value) {
    let r = reqwest::blocking::Client::new()
        .post(d.u("/v1/chat/completions"))
        .json(&serde_json::json!({"model": model, "max_tokens": 4,
            "messages": [{"role": "user", "content": "Once upon a time"}]}))
        .send()
        .unwrap();
    (r.status().as_u16(), r.json().unwrap())
}

fn with_config(toml: &str, args: &[&str]) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, toml).unwrap();
    let store = dir.path().join("store");
    let cfg = cfg.to_str().unwrap().to_string();
    let mut all = vec!["--config", cfg.as_str()];
    all.extend(args);
    Daemon::start_full(dir, store, &all, &[])
}

#[test]
fn a_model_not_stored_is_pulled_on_first_use_within_the_limit_and_the_policy() {
    let reg = TestRegistry::start(RegistryOptions::default());
    let src = Daemon::start(&[]);
    src.package_chat_model("stories");
    let (stories, secret) = (
        format!("{}/test/stories:v1", reg.host),
        format!("{}/test/secret:v1", reg.host),
    );
    for r in [&stories, &secret] {
        src.ok(&["tag", "stories", r]);
        src.ok(&["push", r]);
    }
    // Off by default: the model is not found.
    let (status, body) = chat(&src, &format!("{}/test/other:v1", reg.host));
    assert_eq!(status, 404, "{body}");

    let policy = format!("[registries.policy]\ndeny = [\"{secret}\"]\n");
    let d = with_config(&policy, &["--pull-on-first-use", "1GiB"]);
    let (status, body) = chat(&d, &stories);
    assert_eq!(status, 200, "{body}");
    assert!(
        body["choices"][0]["message"]["content"].is_string(),
        "{body}"
    );
    assert!(d.ok(&["ls", "--json"]).contains("test/stories:v1"));
    let (status, body) = chat(&d, &secret);
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("pull policy"),
        "{body}"
    );

    let small = with_config("", &["--pull-on-first-use", "1KiB"]);
    let (status, body) = chat(&small, &stories);
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "pull_too_large", "{body}");
    assert_eq!(body["error"]["param"], "model", "{body}");
    assert!(!small.ok(&["ls", "--json"]).contains("stories"));
}
