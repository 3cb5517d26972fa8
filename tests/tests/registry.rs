//! Pull and push against the real CNCF Distribution registry (Debian's
//! `docker-registry`): plain HTTP, TLS with a test CA, htpasswd basic auth, token auth
//! with a token server run here, and interoperability with `skopeo`.

use modelrunner_e2e::registry::{docker_config, skopeo, RegistryOptions, TestRegistry};
use modelrunner_e2e::{assert_store_sound, Daemon};
use modelrunner_testkit::{small_gguf, GgufWriter, Kv};
use serde_json::{json, Value};

fn id_of(d: &Daemon, model: &str) -> String {
    let v: Value = serde_json::from_str(&d.ok(&["inspect", model])).unwrap();
    v["id"].as_str().unwrap().to_string()
}

fn says_words(text: &str) -> bool {
    text.split_whitespace()
        .any(|w| ["the", "a", "was", "and", "to"].contains(&w))
}

#[test]
fn push_pull_and_run_over_plain_http() {
    let reg = TestRegistry::start(RegistryOptions::default());
    let h = &reg.host;
    let a = Daemon::start(&[]);
    let stories = a.package_chat_model("local/stories");
    let tag = format!("{h}/test/stories:v1");
    a.ok(&["tag", "local/stories", &tag]);
    let out = a.ok(&["push", &tag]);
    assert!(out.contains("Model pushed successfully"), "{out}");
    let uploads = |from: usize| -> Vec<String> {
        reg.requests()[from..]
            .iter()
            .filter(|r| r.path.contains("/blobs/uploads/") && !r.path.contains("mount="))
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    };
    let first = reg.requests().len();
    assert_eq!(uploads(0).len(), 4, "two blobs, each a POST and a PUT");
    // Pushing again finds every blob there already (the registry's own log says so).
    assert!(a.ok(&["push", &tag]).contains("Model pushed successfully"));
    assert_eq!(
        uploads(first),
        Vec::<String>::new(),
        "a blob uploaded again"
    );
    let heads: std::collections::BTreeSet<String> = reg.requests()[first..]
        .iter()
        .filter(|r| r.method == "HEAD" && r.path.contains("/blobs/") && r.status == 200)
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(heads.len(), 2, "{:?}", &reg.requests()[first..]);
    // Another repository of the same registry: blobs are mounted from the first.
    let other = format!("{h}/elsewhere/stories:v1");
    a.ok(&["tag", &tag, &other]);
    let second = reg.requests().len();
    assert!(a
        .ok(&["push", &other])
        .contains("Model pushed successfully"));
    assert_eq!(
        uploads(second),
        Vec::<String>::new(),
        "a blob uploaded, not mounted"
    );
    let mounts = reg.requests()[second..]
        .iter()
        .filter(|r| r.method == "POST" && r.path.contains("mount=") && r.status == 201)
        .count();
    assert_eq!(mounts, 2, "{:?}", &reg.requests()[second..]);
    // A ModelPack artifact, packaged and pushed in one command.
    let gguf = a.dir.path().join("m.gguf");
    std::fs::write(&gguf, small_gguf()).unwrap();
    let cncf = format!("{h}/test/cncf:v1");
    let out = a.ok(&[
        "package",
        "--format",
        "cncf",
        "--gguf",
        gguf.to_str().unwrap(),
        "--push",
        &cncf,
    ]);
    assert!(out.contains("Model pushed successfully"), "{out}");

    let b = Daemon::start(&[]);
    let out = b.ok(&["pull", &tag]);
    assert!(out.contains("Model pulled successfully"), "{out}");
    assert_eq!(
        id_of(&a, &tag),
        id_of(&b, &tag),
        "the model ID is the manifest digest"
    );
    let out = b.ok(&["pull", &tag]);
    assert!(out.contains("Using cached model: "), "{out}");
    let remote: Value = serde_json::from_str(&b.ok(&["inspect", "--remote", &tag])).unwrap();
    assert_eq!(remote["id"].as_str().unwrap(), id_of(&a, &tag));
    assert_eq!(remote["config"]["format"], "gguf");
    b.ok(&["pull", &cncf]);
    b.ok(&["pull", &other]);
    assert_eq!(id_of(&b, &other), id_of(&a, &tag));
    let err = b.fails(&["inspect", "--remote", &format!("{h}/test/nosuch:v1")]);
    assert!(err.contains("not found"), "{err}");
    assert_eq!(id_of(&a, &cncf), id_of(&b, &cncf));
    // By digest: no tag is added.
    let id = id_of(&a, &tag);
    let by_digest = format!("{h}/test/stories@{id}");
    b.ok(&["rm", &tag, &other]);
    assert!(b
        .ok(&["pull", &by_digest])
        .contains("Model pulled successfully"));
    assert!(b.ok(&["list", "--quiet"]).contains(&id[7..19]));
    b.ok(&["pull", &tag]);

    let text = b.ok(&[
        "run",
        "--max-tokens",
        "30",
        "--temperature",
        "0",
        &tag,
        "Once upon a time",
    ]);
    assert!(text.trim().len() > 10, "{text:?}");
    if stories {
        assert!(says_words(&text), "{text}");
    }
    assert!(assert_store_sound(&b.store) >= 4);

    // `run` pulls a model it does not have; progress goes to stderr, the answer to stdout.
    let c = Daemon::start(&[]);
    let out = c.cli(&[
        "run",
        "--max-tokens",
        "30",
        "--temperature",
        "0",
        &tag,
        "Once upon a time",
    ]);
    assert!(out.status.success());
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stderr.contains("Pulling from the registry")
            && stderr.contains("Model pulled successfully"),
        "{stderr}"
    );
    assert!(!stdout.contains("pulled"), "{stdout}");
    assert_eq!(
        stdout.trim(),
        text.trim(),
        "the same greedy answer as before the round trip"
    );
}

#[test]
fn the_pull_api_streams_docker_lines_and_answers_with_statuses() {
    let reg = TestRegistry::start(RegistryOptions::default());
    let h = &reg.host;
    let a = Daemon::start(&[]);
    a.package_tiny(&format!("{h}/api/tiny:1"), 3);
    a.ok(&["push", &format!("{h}/api/tiny:1")]);
    let b = Daemon::start(&[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = reqwest::Client::new();
        // Without Accept: JSON lines, HTML-escaped, as text/plain (Docker's CLI unescapes).
        let r = c
            .post(b.u("/models/create"))
            .json(&json!({"from": format!("{h}/api/tiny:1")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain"));
        let text = r.text().await.unwrap();
        assert!(
            text.contains("{&#34;type&#34;:&#34;progress&#34;"),
            "{text}"
        );
        assert!(
            text.trim_end().ends_with("&#34;mode&#34;:&#34;pull&#34;}"),
            "{text}"
        );
        // With Accept: application/json, plain JSON lines; cached now.
        let r = c
            .post(b.u("/models/create"))
            .header("accept", "application/json")
            .json(&json!({"from": format!("{h}/api/tiny:1")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["content-type"], "application/json");
        let lines: Vec<Value> = r
            .text()
            .await
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert_eq!(lines[0]["type"], "success");
        assert!(lines[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Using cached model: "));
        for (body, status, needle) in [
            (
                json!({"from": format!("{h}/api/nosuch:1")}),
                404,
                "not found",
            ),
            (
                json!({"from": format!("{h}/api/tiny:nosuchtag")}),
                404,
                "not found",
            ),
            (json!({"from": "Bad Ref!"}), 400, "invalid reference"),
            (json!({"to": "x"}), 400, "invalid JSON body"),
        ] {
            let r = c
                .post(b.u("/models/create"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), status, "{body}");
            let v: Value = r.json().await.unwrap();
            let msg = v["error"]["message"].as_str().unwrap();
            assert!(msg.contains(needle), "{body}: {msg}");
        }
    });
    // The CLI says the same in one line.
    let err = b.fails(&["pull", &format!("{h}/api/nosuch:1")]);
    assert!(
        err.contains("not found") && err.trim().lines().count() == 1,
        "{err}"
    );
}

#[test]
fn an_unsupported_config_type_is_refused_with_422() {
    let reg = TestRegistry::start(RegistryOptions::default());
    let h = &reg.host;
    let a = Daemon::start(&[]);
    a.package_tiny("t", 4);
    let art = a.artifact("t");
    let mut m: Value = serde_json::from_slice(&art.manifest).unwrap();
    m["config"]["mediaType"] = json!("application/vnd.example.other+json");
    let c = reqwest::blocking::Client::new();
    for (d, bytes) in &art.blobs {
        let loc = c
            .post(format!("http://{h}/v2/odd/model/blobs/uploads/"))
            .send()
            .unwrap()
            .headers()["location"]
            .to_str()
            .unwrap()
            .to_string();
        let sep = if loc.contains('?') { '&' } else { '?' };
        let url = if loc.starts_with("http") {
            loc
        } else {
            format!("http://{h}{loc}")
        };
        let r = c
            .put(format!("{url}{sep}digest={d}"))
            .body(bytes.clone())
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let r = c
        .put(format!("http://{h}/v2/odd/model/manifests/v1"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(serde_json::to_vec(&m).unwrap())
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text());
    let b = Daemon::start(&[]);
    let r = c
        .post(b.u("/models/create"))
        .json(&json!({"from": format!("{h}/odd/model:v1")}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 422);
    let v: Value = r.json().unwrap();
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("application/vnd.example.other+json"));
    assert_eq!(assert_store_sound(&b.store), 0, "nothing was stored");
}

#[test]
fn sharded_models_round_trip() {
    let reg = TestRegistry::start(RegistryOptions::default());
    let a = Daemon::start(&[]);
    let dir = a.dir.path();
    for i in 1..=3u16 {
        let bytes = GgufWriter::new()
            .kv("general.architecture", Kv::Str("llama".into()))
            .kv("split.no", Kv::U32(u32::from(i) - 1))
            .kv("split.count", Kv::U32(3))
            .to_bytes();
        std::fs::write(dir.join(format!("shard-0000{i}-of-00003.gguf")), bytes).unwrap();
    }
    let tag = format!("{}/test/sharded:v1", reg.host);
    let first = dir.join("shard-00001-of-00003.gguf");
    a.ok(&["package", "--gguf", first.to_str().unwrap(), "--push", &tag]);
    let b = Daemon::start(&[]);
    b.ok(&["pull", &tag]);
    assert_eq!(id_of(&a, &tag), id_of(&b, &tag));
    let m: Value = serde_json::from_slice(&b.artifact(&tag).manifest).unwrap();
    assert_eq!(m["layers"].as_array().unwrap().len(), 3);
}

#[test]
fn tls_registries_need_a_trusted_ca_or_an_insecure_listing() {
    let reg = TestRegistry::start(RegistryOptions {
        tls: true,
        ..Default::default()
    });
    let h = &reg.host;
    let ca = reg.ca.clone().unwrap();
    let a = Daemon::start(&["--registry-ca-cert", ca.to_str().unwrap()]);
    a.package_tiny(&format!("{h}/tls/tiny:1"), 5);
    a.ok(&["push", &format!("{h}/tls/tiny:1")]);
    let untrusting = Daemon::start(&[]);
    let err = untrusting.fails(&["pull", &format!("{h}/tls/tiny:1")]);
    assert!(
        err.contains("certificate") && err.contains("--registry-ca-cert"),
        "{err}"
    );
    let insecure = Daemon::start(&["--insecure-registry", h]);
    insecure.ok(&["pull", &format!("{h}/tls/tiny:1")]);
    assert_eq!(
        id_of(&a, &format!("{h}/tls/tiny:1")),
        id_of(&insecure, &format!("{h}/tls/tiny:1"))
    );
}

#[test]
fn basic_auth_uses_docker_credentials_and_refuses_without() {
    let reg = TestRegistry::start(RegistryOptions {
        basic: Some(("alice".into(), "s3cret".into())),
        ..Default::default()
    });
    let h = &reg.host;
    let scratch = tempfile::tempdir().unwrap();
    let good = docker_config(scratch.path(), h, "alice", "s3cret");
    let a = Daemon::start_env(&[], &[("DOCKER_CONFIG", good.to_str().unwrap())]);
    a.package_tiny(&format!("{h}/auth/tiny:1"), 6);
    a.ok(&["push", &format!("{h}/auth/tiny:1")]);
    let b = Daemon::start_env(&[], &[("DOCKER_CONFIG", good.to_str().unwrap())]);
    b.ok(&["pull", &format!("{h}/auth/tiny:1")]);

    let anonymous = Daemon::start(&[]);
    let err = anonymous.fails(&["pull", &format!("{h}/auth/tiny:1")]);
    assert!(err.contains("401") && err.contains("docker login"), "{err}");
    let other = tempfile::tempdir().unwrap();
    let wrong = docker_config(other.path(), h, "alice", "wrong");
    let w = Daemon::start_env(&[], &[("DOCKER_CONFIG", wrong.to_str().unwrap())]);
    let err = w.fails(&["pull", &format!("{h}/auth/tiny:1")]);
    assert!(err.contains("refused"), "{err}");
    let r = reqwest::blocking::Client::new()
        .post(w.u("/models/create"))
        .json(&json!({"from": format!("{h}/auth/tiny:1")}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(assert_store_sound(&w.store), 0);
}

#[test]
fn token_auth_gets_tokens_for_docker_credentials_and_accepts_bearer_tokens() {
    let reg = TestRegistry::start(RegistryOptions {
        token: Some(("bob".into(), "hunter2".into())),
        ..Default::default()
    });
    let h = &reg.host;
    let ts = reg.token_server.as_ref().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let creds = docker_config(scratch.path(), h, "bob", "hunter2");
    let a = Daemon::start_env(&[], &[("DOCKER_CONFIG", creds.to_str().unwrap())]);
    a.package_tiny(&format!("{h}/tok/tiny:1"), 7);
    a.ok(&["push", &format!("{h}/tok/tiny:1")]);
    let seen = ts.requests.lock().unwrap().clone();
    assert!(!seen.is_empty());
    assert!(seen
        .iter()
        .all(|(auth, _)| auth.as_deref().is_some_and(|a| a.starts_with("Basic "))));
    assert!(
        seen.iter()
            .any(|(_, q)| q.contains("pull%2Cpush") || q.contains("pull,push")),
        "{seen:?}"
    );

    let anonymous = Daemon::start(&[]);
    let err = anonymous.fails(&["pull", &format!("{h}/tok/tiny:1")]);
    assert!(err.contains("refused") && err.contains("401"), "{err}");
    // Anonymous tokens: public repositories pull, pushes are refused.
    a.ok(&[
        "tag",
        &format!("{h}/tok/tiny:1"),
        &format!("{h}/public/tiny:1"),
    ]);
    a.ok(&["push", &format!("{h}/public/tiny:1")]);
    anonymous.ok(&["pull", &format!("{h}/public/tiny:1")]);
    assert!(ts
        .requests
        .lock()
        .unwrap()
        .iter()
        .any(|(auth, _)| auth.is_none()));
    anonymous.ok(&[
        "tag",
        &format!("{h}/public/tiny:1"),
        &format!("{h}/public/mine:1"),
    ]);
    let err = anonymous.fails(&["push", &format!("{h}/public/mine:1")]);
    assert!(err.contains("refused") && err.contains("401"), "{err}");
    // A token obtained elsewhere, passed with the request.
    let c = reqwest::blocking::Client::new();
    let v: Value = c
        .get(format!(
            "{}/token?service=test-registry&scope=repository:tok/tiny:pull",
            ts.url
        ))
        .basic_auth("bob", Some("hunter2"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = v["token"].as_str().unwrap();
    let r = c
        .post(anonymous.u("/models/create"))
        .header("accept", "application/json")
        .json(&json!({"from": format!("{h}/tok/tiny:1"), "bearer-token": token}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    // (The blobs are stored already, so this is a cached success; the manifest still
    // needed the token.)
    assert!(r.text().unwrap().contains("\"type\":\"success\""));
    assert_eq!(
        id_of(&a, &format!("{h}/tok/tiny:1")),
        id_of(&anonymous, &format!("{h}/tok/tiny:1"))
    );
}

#[test]
fn skopeo_copies_what_we_push_and_we_pull_what_skopeo_pushes() {
    let reg = TestRegistry::start(RegistryOptions::default());
    let h = &reg.host;
    let a = Daemon::start(&[]);
    let stories = a.package_chat_model(&format!("{h}/interop/stories:v1"));
    a.ok(&["push", &format!("{h}/interop/stories:v1")]);
    let id = id_of(&a, &format!("{h}/interop/stories:v1"));
    let layout = a.dir.path().join("layout");
    let dest = format!("oci:{}:v1", layout.display());
    skopeo(&[
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{h}/interop/stories:v1"),
        &dest,
    ]);
    let index: Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["digest"].as_str().unwrap(),
        id,
        "skopeo kept the manifest byte for byte"
    );
    let ours = a.artifact(&format!("{h}/interop/stories:v1"));
    for d in ours.blobs.keys() {
        let p = layout.join("blobs/sha256").join(&d[7..]);
        assert!(p.exists(), "skopeo's layout lacks {d}");
    }
    // Back the other way: skopeo uploads the layout to a new repository.
    skopeo(&[
        "copy",
        "--dest-tls-verify=false",
        &dest,
        &format!("docker://{h}/fromskopeo/stories:v2"),
    ]);
    let b = Daemon::start(&[]);
    b.ok(&["pull", &format!("{h}/fromskopeo/stories:v2")]);
    assert_eq!(id_of(&b, &format!("{h}/fromskopeo/stories:v2")), id);
    let text = b.ok(&[
        "run",
        "--max-tokens",
        "30",
        "--temperature",
        "0",
        &format!("{h}/fromskopeo/stories:v2"),
        "Once upon a time",
    ]);
    assert!(text.trim().len() > 10, "{text:?}");
    if stories {
        assert!(says_words(&text), "{text}");
    }
}
