//! End to end: the real daemon binary on a free port with a temp store, driven by the real
//! CLI and by raw HTTP.

use std::path::PathBuf;

use modelrunner_e2e::{snapshot, Daemon};
use modelrunner_testkit::{chat_model, shared_dir, LlamaSpec};
use serde_json::Value;

fn license_and_template(d: &Daemon) -> (PathBuf, PathBuf) {
    let lic = d.dir.path().join("LICENSE");
    std::fs::write(&lic, "MIT License\n").unwrap();
    let tpl = d.dir.path().join("template.jinja");
    std::fs::write(
        &tpl,
        "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}",
    )
    .unwrap();
    (lic, tpl)
}

#[test]
fn package_list_inspect_tag_export_purge_load_remove() {
    let d = Daemon::start(&[]);
    let (gguf, trained) = chat_model(d.dir.path());
    let (lic, tpl) = license_and_template(&d);
    let out = d.ok(&[
        "package",
        "--gguf",
        gguf.to_str().unwrap(),
        "-l",
        lic.to_str().unwrap(),
        "--chat-template",
        tpl.to_str().unwrap(),
        "--json",
        "stories",
    ]);
    let packaged: Value = serde_json::from_str(out.trim()).unwrap();
    let id = packaged["id"].as_str().unwrap().to_string();
    assert_eq!(packaged["tag"], "docker.io/ai/stories:latest");

    let ls = d.ok(&["ls"]);
    assert!(ls.starts_with("MODEL NAME"), "{ls}");
    assert!(ls.contains("stories") && ls.contains(&id[7..19]), "{ls}");
    let listed: Value = serde_json::from_str(&d.ok(&["list", "--json"])).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);

    let inspected: Value = serde_json::from_str(&d.ok(&["inspect", "stories"])).unwrap();
    let cfg = &inspected["config"];
    assert_eq!(inspected["id"], id.as_str());
    assert_eq!(cfg["architecture"], "llama");
    assert_eq!(cfg["quantization"], "F32");
    assert_eq!(cfg["format"], "gguf");
    assert_eq!(cfg["context_size"], 2048);
    if trained {
        assert_eq!(cfg["parameters"], "292.80K");
        assert_eq!(cfg["size"], "1.12MiB");
        assert_eq!(cfg["gguf"]["llama.block_count"], "5");
    }

    d.ok(&["tag", "stories", "myorg/stories:v1"]);
    let inspected: Value = serde_json::from_str(&d.ok(&["inspect", "myorg/stories:v1"])).unwrap();
    assert_eq!(inspected["id"], id.as_str());
    assert_eq!(inspected["tags"].as_array().unwrap().len(), 2);

    let tar = d.dir.path().join("stories.tar");
    d.ok(&["export", "stories", "-o", tar.to_str().unwrap()]);
    assert!(std::fs::metadata(&tar).unwrap().len() > 1000);

    d.ok(&["purge", "--force"]);
    assert_eq!(d.ok(&["ls", "-q"]).trim(), "");
    let df: Value = serde_json::from_str(&d.ok(&["df", "--json"])).unwrap();
    assert_eq!(df["models_disk_usage"], 0);

    let loaded = d.ok(&["load", "-i", tar.to_str().unwrap(), "--tag", "stories:back"]);
    assert!(loaded.contains(&id), "{loaded}");
    let inspected: Value = serde_json::from_str(&d.ok(&["inspect", "stories:back"])).unwrap();
    assert_eq!(inspected["id"], id.as_str());

    let rm = d.ok(&["rm", "stories:back"]);
    assert!(
        rm.contains("Untagged: stories:back") && rm.contains(&format!("Deleted: {id}")),
        "{rm}"
    );
    assert_eq!(d.ok(&["ls", "-q"]).trim(), "");
}

#[test]
fn packages_survive_a_restart_and_shards_load() {
    let d = Daemon::start(&[]);
    let shard = shared_dir().join("reference/dmr-testdata/dummy-00001-of-00002.gguf");
    if !shard.exists() {
        modelrunner_testkit::checks_less(&format!("{} is missing", shard.display()));
        return;
    }
    let shard = shard.canonicalize().unwrap();
    d.ok(&[
        "package",
        "--gguf",
        shard.to_str().unwrap(),
        "ghcr.io/acme/sharded:2",
    ]);
    let (dir, store) = d.stop();
    let d = Daemon::start_in(dir, store, &[]);
    let m: Value = serde_json::from_str(&d.ok(&["inspect", "ghcr.io/acme/sharded:2"])).unwrap();
    assert_eq!(m["tags"][0], "ghcr.io/acme/sharded:2");
    // Partial name match, as Docker Model Runner's GET /models/{name} does.
    let m2: Value = serde_json::from_str(&d.ok(&["inspect", "sharded:2"])).unwrap();
    assert_eq!(m2["id"], m["id"]);
    // Both shards are layers, in order, each with its own file's bytes.
    let art = d.artifact("ghcr.io/acme/sharded:2");
    let manifest: Value = serde_json::from_slice(&art.manifest).unwrap();
    let ggufs: Vec<&Value> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["mediaType"] == "application/vnd.docker.ai.gguf.v3")
        .collect();
    assert_eq!(ggufs.len(), 2, "{manifest}");
    for (layer, n) in ggufs.iter().zip(1..) {
        let file = shard.with_file_name(format!("dummy-0000{n}-of-00002.gguf"));
        let bytes = std::fs::read(&file).unwrap();
        let digest = layer["digest"].as_str().unwrap();
        assert_eq!(
            digest,
            format!("sha256:{}", modelrunner_e2e::sha256_hex(&bytes))
        );
        assert_eq!(art.blobs[digest], bytes);
    }
}

#[test]
fn bad_input_gives_one_clear_message_and_changes_nothing() {
    let d = Daemon::start(&["--max-load-size", "700000"]);
    let gguf = d.dir.path().join("big.gguf");
    LlamaSpec {
        n_layer: 8,
        ..LlamaSpec::tiny()
    }
    .build(5)
    .write_file(&gguf)
    .unwrap();
    let small = d.dir.path().join("small.gguf");
    LlamaSpec::tiny().build(2).write_file(&small).unwrap();
    d.ok(&["package", "--gguf", small.to_str().unwrap(), "keep"]);
    let before = snapshot(&d.store);

    let bad = d.dir.path().join("bad.gguf");
    std::fs::write(&bad, b"GGUF\x03\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff").unwrap();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "package".into(),
                "--gguf".into(),
                bad.display().to_string(),
                "x".into(),
            ],
            "invalid GGUF",
        ),
        (
            vec![
                "package".into(),
                "--gguf".into(),
                "/nonexistent/m.gguf".into(),
                "x".into(),
            ],
            "/nonexistent/m.gguf",
        ),
        (
            vec![
                "package".into(),
                "--gguf".into(),
                "m.gguf".into(),
                "x".into(),
            ],
            "must be absolute",
        ),
        (
            vec![
                "package".into(),
                "--gguf".into(),
                d.dir.path().display().to_string(),
                "x".into(),
            ],
            "not a regular file",
        ),
        (
            vec![
                "package".into(),
                "--gguf".into(),
                "/etc/passwd/m.gguf".into(),
                "x".into(),
            ],
            "/etc/passwd/m.gguf",
        ),
        (
            vec![
                "package".into(),
                "--gguf".into(),
                small.display().to_string(),
                "Bad Ref!".into(),
            ],
            "invalid reference",
        ),
        (vec!["inspect".into(), "nosuchmodel".into()], "not found"),
        (vec!["rm".into(), "nosuchmodel".into()], "not found"),
        (
            vec!["tag".into(), "keep".into(), "UPPER/..bad".into()],
            "invalid reference",
        ),
        (
            vec!["inspect".into(), "sha256:xyz".into()],
            "invalid digest",
        ),
        // Larger than the daemon's --max-load-size: 413.
        (
            vec![
                "package".into(),
                "--gguf".into(),
                gguf.display().to_string(),
                "big".into(),
            ],
            "larger than the limit",
        ),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = d.fails(&args);
        assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{args:?}: not one line: {err:?}"
        );
        assert_eq!(snapshot(&d.store), before, "{args:?} changed the store");
    }
    let tar = d.dir.path().join("garbage.tar");
    std::fs::write(&tar, vec![7u8; 5000]).unwrap();
    let err = d.fails(&["load", "-i", tar.to_str().unwrap()]);
    assert!(err.contains("malformed model archive"), "{err}");
    assert_eq!(snapshot(&d.store), before);
    assert!(d.ok(&["ls"]).contains("keep"));
}

#[test]
fn cli_says_how_to_start_the_daemon() {
    let out = std::process::Command::new(modelrunner_e2e::bin("modelrunner"))
        .arg("ls")
        .env("MODEL_RUNNER_HOST", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is it running") && err.contains("modelrunnerd"),
        "{err}"
    );
}

#[test]
fn offline_fsck_reports_and_repairs_corruption() {
    let d = Daemon::start(&[]);
    let p = d.dir.path().join("m.gguf");
    LlamaSpec::tiny().build(4).write_file(&p).unwrap();
    d.ok(&["package", "--gguf", p.to_str().unwrap(), "m"]);
    let (dir, store) = d.stop();
    let fsck = |extra: &[&str]| {
        std::process::Command::new(modelrunner_e2e::bin("modelrunnerd"))
            .arg("--store")
            .arg(&store)
            .arg("fsck")
            .args(extra)
            .output()
            .unwrap()
    };
    let out = fsck(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("store is clean"));
    // Rot one blob: fsck names it and the model, and fails.
    let blob = std::fs::read_dir(store.join("blobs/sha256"))
        .unwrap()
        .flatten()
        .max_by_key(|e| e.metadata().unwrap().len())
        .unwrap()
        .path();
    std::fs::write(&blob, b"rot").unwrap();
    let out = fsck(&[]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success());
    assert!(
        text.contains("corrupt blob") && text.contains("broken model"),
        "{text}"
    );
    let out = fsck(&["--repair"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("(removed)"));
    assert!(!blob.exists());
    // The daemon still starts and lists; the broken model can be removed.
    let d = Daemon::start_in(dir, store, &[]);
    d.ok(&["rm", "m"]);
}

#[test]
fn an_export_with_a_damaged_blob_never_passes_for_whole() {
    let d = Daemon::start(&[]);
    d.package_chat_model("stories");
    let good = d.dir.path().join("good.tar");
    d.ok(&["export", "stories", "-o", good.to_str().unwrap()]);
    let url = d.u("/models/stories/export");
    let r = reqwest::blocking::get(&url).unwrap();
    assert_eq!(
        r.content_length(),
        Some(std::fs::metadata(&good).unwrap().len()),
        "the exact length is announced"
    );
    // The GGUF blob damaged in place, its size unchanged.
    let blob = std::fs::read_dir(d.store.join("blobs/sha256"))
        .unwrap()
        .flatten()
        .max_by_key(|e| e.metadata().unwrap().len())
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&blob).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&blob, &bytes).unwrap();
    let bad = d.dir.path().join("bad.tar");
    let err = d.fails(&["export", "stories", "-o", bad.to_str().unwrap()]);
    assert!(err.contains("ended the archive early"), "{err}");
    assert!(!bad.exists(), "no partial archive is left behind");
    // Any HTTP client sees a failed body, not a short archive that ends well.
    let r = reqwest::blocking::get(&url).unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().is_err(), "the body must fail");
    // A blob that is gone is refused before the first byte.
    std::fs::remove_file(&blob).unwrap();
    let r = reqwest::blocking::get(&url).unwrap();
    assert!(!r.status().is_success(), "{}", r.status());
    let v: serde_json::Value = r.json().unwrap();
    assert!(v["error"]["message"].is_string(), "{v}");
}
