//! An Ollama-format artifact (`application/vnd.ollama.image.*` layers, Ollama's config)
//! pushed by the test into Debian's `docker-registry`, then pulled: listed, run, its
//! params' `num_ctx` in the config, its Go template not used (the pull says the GGUF
//! has none, so chat is ChatML), and pushed again as a Docker-format artifact that a
//! second daemon pulls to the same model ID.

use modelrunner_e2e::registry::{RegistryOptions, TestRegistry};
use modelrunner_e2e::{assert_store_sound, sha256_hex, Daemon};
use serde_json::{json, Value};

fn upload(host: &str, repo: &str, bytes: &[u8]) -> Value {
    let c = reqwest::blocking::Client::new();
    let r = c
        .post(format!("http://{host}/v2/{repo}/blobs/uploads/"))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    let url = if loc.starts_with("http") {
        loc
    } else {
        format!("http://{host}{loc}")
    };
    let digest = format!("sha256:{}", sha256_hex(bytes));
    let sep = if url.contains('?') { '&' } else { '?' };
    let r = c
        .put(format!("{url}{sep}digest={digest}"))
        .body(bytes.to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().unwrap());
    json!({"digest": digest, "size": bytes.len()})
}

fn layer(host: &str, repo: &str, kind: &str, bytes: &[u8]) -> Value {
    let mut d = upload(host, repo, bytes);
    d["mediaType"] = json!(format!("application/vnd.ollama.image.{kind}"));
    d
}

/// Pushes stories260K as Ollama would store it, as `library/stories:latest`.
fn push_ollama_model(reg: &TestRegistry, gguf: &[u8]) {
    let (host, repo) = (reg.host.as_str(), "library/stories");
    let config = json!({
        "model_format": "gguf", "model_family": "llama", "model_families": ["llama"],
        "model_type": "292.80K", "file_type": "F32", "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": []}
    });
    let mut config_desc = upload(host, repo, &serde_json::to_vec(&config).unwrap());
    config_desc["mediaType"] = json!("application/vnd.docker.container.image.v1+json");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": config_desc,
        "layers": [
            layer(host, repo, "model", gguf),
            layer(host, repo, "template", b"{{ .System }} USER: {{ .Prompt }} ASSISTANT: "),
            layer(host, repo, "license", b"MIT License\n"),
            layer(host, repo, "params", br#"{"num_ctx":1024,"stop":["USER:"]}"#),
        ]
    });
    let r = reqwest::blocking::Client::new()
        .put(format!("http://{host}/v2/{repo}/manifests/latest"))
        .header(
            "content-type",
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        .body(serde_json::to_vec(&manifest).unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().unwrap());
}

#[test]
fn an_ollama_artifact_is_pulled_run_and_pushed_again_in_docker_format() {
    let reg = TestRegistry::start(RegistryOptions::default());
    let d = Daemon::start(&[]);
    let (gguf, trained) = modelrunner_testkit::chat_model(d.dir.path());
    let gguf = std::fs::read(gguf).unwrap();
    push_ollama_model(&reg, &gguf);
    let name = format!("{}/library/stories", reg.host);
    let out = d.cli(&["pull", &name]);
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{said}");
    assert!(said.contains("no chat template"), "{said}");
    let info: Value = serde_json::from_str(&d.ok(&["inspect", &name])).unwrap();
    assert_eq!(info["config"]["context_size"], 1024, "{info}");
    assert_eq!(info["config"]["format"], "gguf", "{info}");
    // The artifact is Docker-format: the GGUF and the license, no Go template.
    let art = d.artifact(&name);
    let m: Value = serde_json::from_slice(&art.manifest).unwrap();
    let types: Vec<&str> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "application/vnd.docker.ai.gguf.v3",
            "application/vnd.docker.ai.license"
        ]
    );
    assert_eq!(
        m["layers"][0]["digest"],
        format!("sha256:{}", sha256_hex(&gguf))
    );
    let story = d.ok(&["run", &name, "Once upon a time"]);
    if trained {
        assert!(story.split_whitespace().count() > 3, "{story}");
    }
    // Pushed again, in Docker format, and pulled by another daemon: the same model.
    let again = format!("{}/test/converted:v1", reg.host);
    d.ok(&["tag", &name, &again]);
    d.ok(&["push", &again]);
    let other = Daemon::start(&[]);
    other.ok(&["pull", &again]);
    let there: Value = serde_json::from_str(&other.ok(&["inspect", &again])).unwrap();
    assert_eq!(there["id"], info["id"]);
    assert_store_sound(&d.store);
}
