//! A store damaged at rest, and manifests that contradict it: a pull notices damaged
//! blobs and fetches them again, and refuses (422) a manifest that lies about a stored
//! blob's size or holds no GGUF weights at all.

use modelrunner_e2e::fake_registry::FakeRegistry;
use modelrunner_e2e::{assert_store_sound, Daemon};
use serde_json::{json, Value};

/// A named way to damage a blob file.
type Harm<'a> = (&'a str, &'a dyn Fn(&std::path::Path));

const OCI: &str = "application/vnd.oci.image.manifest.v1+json";

/// A fake registry serving a generated tiny model as `m/tiny:v1`; returns the manifest.
fn serve_tiny(fake: &FakeRegistry) -> Value {
    let src = Daemon::start(&[]);
    src.package_tiny("src", 11);
    let art = src.artifact("src");
    for bytes in art.blobs.into_values() {
        fake.put_blob(bytes);
    }
    fake.put_manifest("m/tiny", "v1", art.manifest.clone(), OCI);
    serde_json::from_slice(&art.manifest).unwrap()
}

fn pull(d: &Daemon, reference: &str) -> (u16, String) {
    d.create(reference)
}

#[test]
fn a_pull_notices_damaged_blobs_and_fetches_them_again() {
    let fake = FakeRegistry::start();
    let m = serve_tiny(&fake);
    let d = Daemon::start(&[]);
    let reference = format!("{}/m/tiny:v1", fake.host);
    let (s, body) = pull(&d, &reference);
    assert_eq!(s, 200, "{body}");
    let gguf = m["layers"][0]["digest"].as_str().unwrap();
    let path = d.store.join("blobs/sha256").join(&gguf[7..]);
    let original = std::fs::read(&path).unwrap();
    let damage: [Harm; 4] = [
        ("bits flipped", &|p| {
            let mut b = std::fs::read(p).unwrap();
            let mid = b.len() / 2;
            b[mid] ^= 0x40;
            std::fs::write(p, b).unwrap();
        }),
        ("truncated", &|p| {
            let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
            f.set_len(original.len() as u64 / 3).unwrap();
        }),
        ("extended", &|p| {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
            f.write_all(b"trailing").unwrap();
        }),
        ("replaced by a directory", &|p| {
            std::fs::remove_file(p).unwrap();
            std::fs::create_dir(p).unwrap();
            std::fs::write(p.join("x"), b"x").unwrap();
        }),
    ];
    for (what, harm) in damage {
        harm(&path);
        let (s, body) = pull(&d, &reference);
        assert_eq!(s, 200, "{what}: {body}");
        assert!(!body.contains("Using cached model"), "{what}: {body}");
        assert!(body.contains("Model pulled successfully"), "{what}: {body}");
        assert_eq!(std::fs::read(&path).unwrap(), original, "{what}");
        // Undamaged, the next pull is a cache hit.
        let (_, body) = pull(&d, &reference);
        assert!(body.contains("Using cached model"), "{what}: {body}");
    }
    assert_store_sound(&d.store);
}

#[test]
fn manifests_that_lie_about_a_stored_blob_or_hold_no_weights_are_refused() {
    let fake = FakeRegistry::start();
    let mut m = serve_tiny(&fake);
    let d = Daemon::start(&[]);
    let (s, body) = pull(&d, &format!("{}/m/tiny:v1", fake.host));
    assert_eq!(s, 200, "{body}");
    // The same GGUF digest, announced one byte larger.
    let size = m["layers"][0]["size"].as_u64().unwrap();
    m["layers"][0]["size"] = json!(size + 1);
    fake.put_manifest("m/tiny", "lies", serde_json::to_vec(&m).unwrap(), OCI);
    let (s, body) = pull(&d, &format!("{}/m/tiny:lies", fake.host));
    assert_eq!(s, 422, "{body}");
    assert!(body.contains("invalid_artifact"), "{body}");
    assert!(
        body.contains(&format!("is {} bytes", size + 1))
            && body.contains(&format!("is {size} bytes")),
        "{body}"
    );
    // Only a license layer: no weights to run.
    m["layers"][0]["size"] = json!(size);
    let license = fake.put_blob(b"MIT".to_vec());
    m["layers"] = json!([{
        "mediaType": "application/vnd.docker.ai.license",
        "digest": license,
        "size": 3
    }]);
    fake.put_manifest("m/tiny", "nogguf", serde_json::to_vec(&m).unwrap(), OCI);
    let (s, body) = pull(&d, &format!("{}/m/tiny:nogguf", fake.host));
    assert_eq!(s, 422, "{body}");
    assert!(body.contains("no GGUF layer"), "{body}");
    let models: Value = reqwest::blocking::get(d.u("/models"))
        .unwrap()
        .json()
        .unwrap();
    let tags = models.to_string();
    assert!(
        !tags.contains(":lies") && !tags.contains(":nogguf"),
        "{tags}"
    );
    assert_store_sound(&d.store);
}

#[test]
fn a_damaged_blob_is_never_pushed_whole() {
    let fake = FakeRegistry::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "[registries]\nretry_backoff_ms = 20\n").unwrap();
    let store = dir.path().join("store");
    let cfg = cfg.to_str().unwrap().to_string();
    let d = Daemon::start_full(dir, store, &["--config", &cfg], &[]);
    for (what, tag) in [("bits flipped", "flipped"), ("truncated", "short")] {
        let tag = format!("{}/m/{tag}:v1", fake.host);
        d.package_tiny(&tag, if what == "truncated" { 31 } else { 30 });
        let art = d.artifact(&tag);
        let m: Value = serde_json::from_slice(&art.manifest).unwrap();
        let gguf = m["layers"][0]["digest"].as_str().unwrap().to_string();
        let path = d.store.join("blobs/sha256").join(&gguf[7..]);
        let mut bytes = std::fs::read(&path).unwrap();
        if what == "truncated" {
            bytes.truncate(bytes.len() / 2);
        } else {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 1;
        }
        std::fs::write(&path, &bytes).unwrap();
        let out = d.fails(&["push", &tag]);
        assert!(out.contains("damaged"), "{what}: {out}");
        // The registry never received the blob whole, nor a manifest naming it.
        assert!(!fake.has_blob(&gguf), "{what}: the damaged blob was stored");
        assert!(
            !fake
                .seen()
                .iter()
                .any(|s| s.method == "PUT" && s.path.contains("/manifests/")),
            "{what}: a manifest was pushed"
        );
    }
}
