//! Pulls from a Hugging Face Hub (the fake one of `tests/src/fake_hub.rs`, built from the
//! public API's shapes): by default quant and by tag, the projector found, the same model
//! ID for the same files, a missing quant listing the quants, a wrong-hash file refused
//! with nothing published, an interrupted download resumed, and the token sent to the
//! Hub's origin only.

use modelrunner_e2e::fake_hub::{Access, FakeHub, HubFile, TOKEN};
use modelrunner_e2e::fake_registry::Fault;
use modelrunner_e2e::{assert_store_sound, Daemon};
use serde_json::Value;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const REPO: &str = "test/stories-gguf";

struct Files {
    q4: Vec<u8>,
    q8: Vec<u8>,
    mmproj: Vec<u8>,
}

/// stories260K as the Q4_K_M file (so the default pull writes stories), a generated
/// tiny llama as Q8_0 and another as the projector, and a README.
fn publish(hub: &FakeHub, repo: &str, access: Access) -> Files {
    let dir = tempfile::tempdir().unwrap();
    let (stories, _) = modelrunner_testkit::chat_model(dir.path());
    let tiny = |seed| {
        let p = dir.path().join(format!("t{seed}.gguf"));
        modelrunner_testkit::LlamaSpec::tiny()
            .build(seed)
            .write_file(&p)
            .unwrap();
        std::fs::read(p).unwrap()
    };
    let f = Files {
        q4: std::fs::read(stories).unwrap(),
        q8: tiny(2),
        mmproj: tiny(3),
    };
    hub.repo(
        repo,
        COMMIT,
        access,
        &[
            HubFile {
                path: "README.md",
                bytes: b"# stories\n".to_vec(),
            },
            HubFile {
                path: "Stories-Q8_0.gguf",
                bytes: f.q8.clone(),
            },
            HubFile {
                path: "Stories-Q4_K_M.gguf",
                bytes: f.q4.clone(),
            },
            HubFile {
                path: "mmproj-Stories-f16.gguf",
                bytes: f.mmproj.clone(),
            },
        ],
    );
    f
}

fn daemon(hub: &FakeHub, env: &[(&str, &str)]) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "[registries]\nretry_backoff_ms = 20\n").unwrap();
    let store = dir.path().join("store");
    let endpoint = hub.endpoint();
    let cfg = cfg.to_str().unwrap().to_string();
    Daemon::start_full(
        dir,
        store,
        &["--config", &cfg, "--hf-endpoint", &endpoint],
        env,
    )
}

fn inspect(d: &Daemon, name: &str) -> Value {
    serde_json::from_str(&d.ok(&["inspect", name])).unwrap()
}

fn layer_digests(d: &Daemon, name: &str) -> Vec<String> {
    let art = d.artifact(name);
    let m: Value = serde_json::from_slice(&art.manifest).unwrap();
    m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            format!(
                "{} {}",
                l["mediaType"].as_str().unwrap(),
                l["digest"].as_str().unwrap()
            )
        })
        .collect()
}

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", modelrunner_e2e::sha256_hex(b))
}

#[test]
fn pulls_by_default_and_by_quant_with_the_projector_and_the_same_id_each_time() {
    let hub = FakeHub::start();
    let files = publish(&hub, REPO, Access::Public);
    let d = daemon(&hub, &[]);
    d.ok(&["pull", &format!("hf.co/{REPO}")]);
    let listed = d.ok(&["ls", "--json"]);
    assert!(
        listed.contains("huggingface.co/test/stories-gguf:latest"),
        "{listed}"
    );
    assert!(
        listed.contains("huggingface.co/test/stories-gguf:Q4_K_M"),
        "{listed}"
    );
    assert_eq!(
        layer_digests(&d, "hf.co/test/stories-gguf"),
        [
            format!("application/vnd.docker.ai.gguf.v3 {}", sha(&files.q4)),
            format!("application/vnd.docker.ai.mmproj {}", sha(&files.mmproj)),
        ]
    );
    let first = inspect(&d, "hf.co/test/stories-gguf");
    assert_eq!(first["config"]["format"], "gguf", "{first}");
    // The model runs.
    let out = d.ok(&[
        "run",
        "huggingface.co/test/stories-gguf",
        "Once upon a time",
    ]);
    assert!(!out.trim().is_empty());
    // A quant tag, case-insensitive.
    d.ok(&["pull", &format!("hf.co/{REPO}:q8_0")]);
    let q8 = layer_digests(&d, &format!("hf.co/{REPO}:q8_0"));
    assert_eq!(
        q8[0],
        format!("application/vnd.docker.ai.gguf.v3 {}", sha(&files.q8))
    );
    // Removed and pulled again, the same files make the same model ID.
    d.ok(&[
        "rm",
        "-f",
        &format!("hf.co/{REPO}"),
        &format!("hf.co/{REPO}:Q4_K_M"),
    ]);
    d.ok(&["pull", &format!("huggingface.co/{REPO}:latest")]);
    assert_eq!(inspect(&d, &format!("hf.co/{REPO}"))["id"], first["id"]);
    // The Hub is not an OCI registry: push is refused, naming the parameter.
    let refused = d.fails(&["push", &format!("hf.co/{REPO}")]);
    assert!(refused.contains("Hugging Face Hub"), "{refused}");
    assert_store_sound(&d.store);
}

#[test]
fn a_quant_the_repo_lacks_lists_the_ones_it_has() {
    let hub = FakeHub::start();
    publish(&hub, REPO, Access::Public);
    let d = daemon(&hub, &[]);
    let (status, body) = d.create(&format!("hf.co/{REPO}:Q6_K"));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("Q4_K_M, Q8_0"), "{body}");
    let (status, body) = d.create("hf.co/test/no-such-repo");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("hf.co/test/no-such-repo"), "{body}");
}

#[test]
fn a_file_with_other_bytes_than_its_sha256_publishes_nothing() {
    let hub = FakeHub::start();
    let files = publish(&hub, REPO, Access::Public);
    hub.cdn
        .fault(&FakeHub::cdn_path(&files.q4), vec![Fault::WrongBytes]);
    let d = daemon(&hub, &[]);
    let err = d.fails(&["pull", &format!("hf.co/{REPO}")]);
    assert!(err.contains("other content"), "{err}");
    let listed = d.ok(&["ls", "--json"]);
    assert!(!listed.contains("stories-gguf"), "{listed}");
    assert!(!d
        .store
        .join("blobs/sha256")
        .join(&sha(&files.q4)[7..])
        .exists());
    assert_store_sound(&d.store);
}

#[test]
fn an_interrupted_download_resumes_where_it_stopped() {
    let hub = FakeHub::start();
    let files = publish(&hub, REPO, Access::Public);
    let path = FakeHub::cdn_path(&files.q4);
    let half = files.q4.len() / 2;
    hub.cdn.fault(&path, vec![Fault::Truncate(half)]);
    let d = daemon(&hub, &[]);
    d.ok(&["pull", &format!("hf.co/{REPO}")]);
    let ranges: Vec<String> = hub
        .cdn
        .seen_at(&path)
        .iter()
        .filter_map(|s| s.headers.get("range").cloned())
        .collect();
    assert_eq!(ranges, [format!("bytes={half}-")]);
    assert_eq!(layer_digests(&d, &format!("hf.co/{REPO}")).len(), 2);
}

#[test]
fn the_token_goes_to_the_hub_and_never_to_the_cdn() {
    let hub = FakeHub::start();
    publish(&hub, "test/private", Access::Private);
    publish(&hub, "test/gated", Access::Gated);
    let without = daemon(&hub, &[]);
    let err = without.fails(&["pull", "hf.co/test/private"]);
    assert!(
        err.contains("HF_TOKEN") && err.contains("hf.co/test/private"),
        "{err}"
    );
    let before = hub.hub.seen().len();
    let d = daemon(&hub, &[("HF_TOKEN", TOKEN)]);
    d.ok(&["pull", "hf.co/test/private"]);
    let bearer = format!("Bearer {TOKEN}");
    let hub_seen = hub.hub.seen().split_off(before);
    assert!(hub_seen.iter().any(|s| s.path.contains("/resolve/")));
    for s in &hub_seen {
        assert_eq!(s.headers.get("authorization"), Some(&bearer), "{}", s.path);
    }
    let cdn_seen = hub.cdn.seen();
    assert!(!cdn_seen.is_empty());
    assert!(
        !cdn_seen.iter().any(|s| s.path.starts_with("/token")),
        "the challenge's realm was not followed"
    );
    for s in &cdn_seen {
        assert_eq!(s.headers.get("authorization"), None, "{}", s.path);
    }
    let gated = d.fails(&["pull", "hf.co/test/gated"]);
    assert!(
        gated.contains("gated") && gated.contains("accept its terms"),
        "{gated}"
    );
}
