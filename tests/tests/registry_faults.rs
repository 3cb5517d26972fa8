//! Pulls from a fault-injecting registry: every fault ends in success or in a clear
//! error, with nothing written outside the store and nothing corrupt inside it.

use std::time::{Duration, Instant};

use std::sync::Arc;

use modelrunner_e2e::fake_registry::{FakeRegistry, Fault, Gate};
use modelrunner_e2e::registry::docker_config;
use modelrunner_e2e::{assert_store_sound, snapshot, wait_until, Daemon};
use serde_json::{json, Value};

const OCI: &str = "application/vnd.oci.image.manifest.v1+json";

/// A daemon with fast retries (and optionally Docker credentials).
fn daemon(env: &[(&str, &str)]) -> Daemon {
    daemon_with(env, "")
}

/// Like [`daemon`], with more `[registries]` keys.
fn daemon_with(env: &[(&str, &str)], registries: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!("[registries]\nretry_backoff_ms = 20\n{registries}"),
    )
    .unwrap();
    let store = dir.path().join("store");
    let cfg = cfg.to_str().unwrap().to_string();
    Daemon::start_full(dir, store, &["--config", &cfg], env)
}

/// A fake registry serving a generated tiny model as `repo:v1`; returns it with the
/// path of the GGUF layer's blob and its size.
fn serve_tiny(fake: &FakeRegistry, repo: &str) -> (String, usize) {
    let src = Daemon::start(&[]);
    src.package_tiny("src", 11);
    let art = src.artifact("src");
    let m: Value = serde_json::from_slice(&art.manifest).unwrap();
    let layer = &m["layers"][0];
    for bytes in art.blobs.into_values() {
        fake.put_blob(bytes);
    }
    fake.put_manifest(repo, "v1", art.manifest, OCI);
    let d = layer["digest"].as_str().unwrap();
    (
        format!("/v2/{repo}/blobs/{d}"),
        layer["size"].as_u64().unwrap() as usize,
    )
}

fn pull(d: &Daemon, reference: &str) -> (u16, String) {
    d.create(reference)
}

fn models(d: &Daemon) -> Vec<Value> {
    let v: Value = reqwest::blocking::get(d.u("/models"))
        .unwrap()
        .json()
        .unwrap();
    v.as_array().unwrap().clone()
}

fn range(s: &modelrunner_e2e::fake_registry::Seen) -> Option<String> {
    s.headers.get("range").cloned()
}

/// Nothing but the store (and the daemon's config file) was written in its directory,
/// and every stored blob hashes to its name.
fn assert_only_the_store_changed(d: &Daemon) {
    let strays: Vec<_> = snapshot(d.dir.path())
        .into_iter()
        .filter(|(p, _)| !p.starts_with(&d.store) && !p.ends_with("config.toml"))
        .collect();
    assert!(strays.is_empty(), "written outside the store: {strays:?}");
    assert_store_sound(&d.store);
}

#[test]
fn transient_errors_are_retried_and_interrupted_blobs_resume() {
    let fake = FakeRegistry::start();
    let (blob, size) = serve_tiny(&fake, "m/tiny");
    assert!(size > 200_000, "the layer is large enough to cut: {size}");
    fake.fault(
        &blob,
        vec![
            Fault::Status(503, vec![]),
            Fault::Status(429, vec![("retry-after".into(), "1".into())]),
            Fault::Reset(50_000),
            Fault::Truncate(30_000),
        ],
    );
    let d = daemon(&[]);
    let (status, body) = pull(&d, &format!("{}/m/tiny:v1", fake.host));
    assert_eq!(status, 200);
    assert!(body.contains("Model pulled successfully"), "{body}");
    let seen = fake.seen_at(&blob);
    assert_eq!(seen.len(), 5, "{seen:?}");
    assert_only_the_store_changed(&d);
    assert!(
        seen[2].at.duration_since(seen[1].at) >= Duration::from_secs(1),
        "Retry-After was honoured"
    );
    assert_eq!(range(&seen[3]).as_deref(), Some("bytes=50000-"));
    assert_eq!(range(&seen[4]).as_deref(), Some("bytes=80000-"));
    assert_eq!(models(&d).len(), 1);
    assert_eq!(assert_store_sound(&d.store), 2, "the layer and the config");
    assert_only_the_store_changed(&d);
}

#[test]
fn a_range_answered_with_the_whole_blob_restarts_it() {
    let fake = FakeRegistry::start();
    let (blob, _) = serve_tiny(&fake, "m/tiny");
    fake.fault(&blob, vec![Fault::Reset(40_000), Fault::IgnoreRange]);
    let d = daemon(&[]);
    let (status, body) = pull(&d, &format!("{}/m/tiny:v1", fake.host));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Model pulled successfully"), "{body}");
    let seen = fake.seen_at(&blob);
    assert_eq!(seen.len(), 2);
    assert_eq!(range(&seen[1]).as_deref(), Some("bytes=40000-"));
    assert_only_the_store_changed(&d);
}

#[test]
fn wrong_or_over_long_bytes_are_refused_and_nothing_is_stored() {
    let fake = FakeRegistry::start();
    let (blob, _) = serve_tiny(&fake, "m/tiny");
    let d = daemon(&[]);
    let reference = format!("{}/m/tiny:v1", fake.host);
    for (fault, needle) in [
        (Fault::WrongBytes, "arrived with other content"),
        (Fault::OverLong(10), "longer than its descriptor"),
    ] {
        fake.fault(&blob, vec![fault]);
        let (status, body) = pull(&d, &reference);
        assert_eq!(status, 200, "the stream had started");
        let last: Value = serde_json::from_str(body.lines().last().unwrap()).unwrap();
        assert_eq!(last["type"], "error", "{body}");
        assert!(last["message"].as_str().unwrap().contains(needle), "{body}");
        assert!(models(&d).is_empty());
        let n = assert_store_sound(&d.store);
        assert!(
            n <= 2,
            "only the verified config and license may be stored: {n}"
        );
    }
    // The CLI reports the same as one line and fails.
    fake.fault(&blob, vec![Fault::WrongBytes]);
    let err = d.fails(&["pull", &reference]);
    assert!(
        err.contains("arrived with other content") && err.trim().lines().count() == 1,
        "{err}"
    );
    // Then a clean pull succeeds.
    let (_, body) = pull(&d, &reference);
    assert!(body.contains("Model pulled successfully"), "{body}");
    assert_eq!(assert_store_sound(&d.store), 2);
    assert_only_the_store_changed(&d);
}

#[test]
fn persistent_server_errors_give_up_after_five_attempts_and_4xx_at_once() {
    let fake = FakeRegistry::start();
    let (blob, _) = serve_tiny(&fake, "m/tiny");
    fake.fault(
        "/v2/m/tiny/manifests/v1",
        vec![Fault::Status(500, vec![]); 5],
    );
    let d = daemon(&[]);
    let reference = format!("{}/m/tiny:v1", fake.host);
    let (status, body) = pull(&d, &reference);
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("500"), "{body}");
    assert_eq!(fake.seen_at("/v2/m/tiny/manifests/v1").len(), 5);
    fake.fault(&blob, vec![Fault::Status(403, vec![])]);
    let (_, body) = pull(&d, &reference);
    assert!(body.contains("refused (403"), "{body}");
    assert_eq!(fake.seen_at(&blob).len(), 1, "a 403 is not retried");
    assert!(models(&d).is_empty());
    assert_only_the_store_changed(&d);
}

#[test]
fn credentials_never_follow_a_redirect_to_another_host() {
    let fake = FakeRegistry::start();
    let (blob, _) = serve_tiny(&fake, "m/tiny");
    fake.require_basic("carol", "pw");
    let elsewhere = FakeRegistry::start();
    let (_, _) = serve_tiny(&elsewhere, "m/tiny");
    let port = elsewhere.host.rsplit(':').next().unwrap();
    fake.fault(
        &blob,
        vec![Fault::Redirect(format!("http://localhost:{port}{blob}"))],
    );
    let scratch = tempfile::tempdir().unwrap();
    let creds = docker_config(scratch.path(), &fake.host, "carol", "pw");
    let d = daemon(&[("DOCKER_CONFIG", creds.to_str().unwrap())]);
    let reference = format!("{}/m/tiny:v1", fake.host);
    let (status, body) = pull(&d, &reference);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Model pulled successfully"), "{body}");
    let there = elsewhere.seen_at(&blob);
    assert_eq!(there.len(), 1);
    assert!(
        !there[0].headers.contains_key("authorization"),
        "credentials leaked: {there:?}"
    );
    assert!(fake
        .seen_at("/v2/m/tiny/manifests/v1")
        .iter()
        .any(|s| s.headers.contains_key("authorization")));
    // A redirect loop ends.
    fake.fault(
        "/v2/m/tiny/manifests/v2",
        vec![Fault::Redirect(format!("http://{}/v2/m/tiny/manifests/v2", fake.host)); 20],
    );
    let (status, body) = pull(&d, &format!("{}/m/tiny:v2", fake.host));
    assert_eq!(status, 502);
    assert!(body.contains("more than 10 redirects"), "{body}");
    assert_only_the_store_changed(&d);
}

#[test]
fn oversized_manifests_hostile_digests_and_paths_are_handled() {
    let fake = FakeRegistry::start();
    let (_, _) = serve_tiny(&fake, "m/tiny");
    let src = Daemon::start(&[]);
    src.package_tiny("src", 11);
    let art = src.artifact("src");
    for bytes in art.blobs.values() {
        fake.put_blob(bytes.clone());
    }
    let d = daemon(&[]);
    // 5 MiB manifest: an error naming the limit, never a truncated parse.
    let mut big: Value = serde_json::from_slice(&art.manifest).unwrap();
    big["annotations"] = json!({"pad": "x".repeat(5 << 20)});
    fake.put_manifest("m/big", "v1", serde_json::to_vec(&big).unwrap(), OCI);
    let (status, body) = pull(&d, &format!("{}/m/big:v1", fake.host));
    assert_eq!(status, 502, "{body}");
    assert!(body.contains("larger than the limit"), "{body}");
    // A digest that is a path.
    let mut evil: Value = serde_json::from_slice(&art.manifest).unwrap();
    evil["layers"][0]["digest"] = json!("sha256:../../../../tmp/evil");
    fake.put_manifest("m/evil", "v1", serde_json::to_vec(&evil).unwrap(), OCI);
    let (status, body) = pull(&d, &format!("{}/m/evil:v1", fake.host));
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("invalid"), "{body}");
    // File path annotations that try to escape: the bundle names files itself.
    let mut paths: Value = serde_json::from_slice(&art.manifest).unwrap();
    paths["layers"][0]["annotations"] = json!({
        "org.cncf.model.filepath": "../../../../evil-escape.gguf",
        "org.opencontainers.image.title": "/etc/evil-title",
    });
    fake.put_manifest("m/paths", "v1", serde_json::to_vec(&paths).unwrap(), OCI);
    let (status, body) = pull(&d, &format!("{}/m/paths:v1", fake.host));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Model pulled successfully"), "{body}");
    d.ok(&[
        "run",
        "--max-tokens",
        "3",
        &format!("{}/m/paths:v1", fake.host),
        "hi",
    ]);
    let all = snapshot(d.dir.path());
    assert!(
        all.iter()
            .all(|(p, _)| !p.to_string_lossy().contains("evil")),
        "{all:?}"
    );
    assert!(!std::path::Path::new("/tmp/evil").exists());
    assert_only_the_store_changed(&d);
}

#[test]
fn concurrent_pulls_download_each_blob_once() {
    let fake = FakeRegistry::start();
    let (blob, _) = serve_tiny(&fake, "m/tiny");
    // The layer is held until both pulls have asked for the manifest, so neither can
    // find it cached: the second must join the first's download.
    let gate = Arc::new(Gate::default());
    fake.fault(&blob, vec![Fault::Hold(gate.clone())]);
    let d = daemon(&[]);
    let reference = format!("{}/m/tiny:v1", fake.host);
    let manifest = "/v2/m/tiny/manifests/v1";
    let results: Vec<(u16, String)> = std::thread::scope(|s| {
        let a = s.spawn(|| pull(&d, &reference));
        let b = s.spawn(|| pull(&d, &reference));
        wait_until(
            "both pulls to fetch the manifest",
            Duration::from_secs(20),
            || {
                fake.seen_at(manifest)
                    .iter()
                    .filter(|r| r.method == "GET")
                    .count()
                    >= 2
            },
        );
        gate.open();
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    for (status, body) in &results {
        assert_eq!(*status, 200);
        assert!(body.contains("\"type\":\"success\""), "{body}");
    }
    assert_eq!(fake.seen_at(&blob).len(), 1, "one download for two pulls");
    assert_eq!(models(&d).len(), 1);
    assert_only_the_store_changed(&d);
}

#[test]
fn a_layer_another_model_brought_is_not_downloaded_again() {
    let fake = FakeRegistry::start();
    let (blob, _) = serve_tiny(&fake, "m/tiny");
    let d = daemon(&[]);
    let (_, body) = pull(&d, &format!("{}/m/tiny:v1", fake.host));
    assert!(body.contains("Model pulled successfully"), "{body}");
    // A second model: the same GGUF layer, another config.
    let art = d.artifact(&format!("{}/m/tiny:v1", fake.host));
    let mut m: Value = serde_json::from_slice(&art.manifest).unwrap();
    let cfg_digest = m["config"]["digest"].as_str().unwrap().to_string();
    let mut cfg: Value = serde_json::from_slice(&art.blobs[&cfg_digest]).unwrap();
    cfg["descriptor"]["created"] = json!("2020-01-01T00:00:00Z");
    let cfg = serde_json::to_vec(&cfg).unwrap();
    m["config"]["size"] = json!(cfg.len());
    m["config"]["digest"] = json!(fake.put_blob(cfg));
    fake.put_manifest("m/other", "v1", serde_json::to_vec(&m).unwrap(), OCI);
    let (_, body) = pull(&d, &format!("{}/m/other:v1", fake.host));
    assert!(body.contains("Model pulled successfully"), "{body}");
    assert_eq!(fake.seen_at(&blob).len(), 1, "the shared layer came once");
    assert_eq!(models(&d).len(), 2);
    assert_only_the_store_changed(&d);
}

#[test]
fn a_stalled_transfer_is_abandoned_and_resumed() {
    let fake = FakeRegistry::start();
    let (blob, _) = serve_tiny(&fake, "m/tiny");
    fake.fault(&blob, vec![Fault::Stall(50_000, Duration::from_secs(5))]);
    let d = daemon_with(&[], "stall_timeout_ms = 500\n");
    let (status, body) = pull(&d, &format!("{}/m/tiny:v1", fake.host));
    assert_eq!(status, 200);
    assert!(body.contains("Model pulled successfully"), "{body}");
    let seen = fake.seen_at(&blob);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(range(&seen[1]).as_deref(), Some("bytes=50000-"));
    assert!(
        seen[1].at.duration_since(seen[0].at) < Duration::from_secs(5),
        "abandoned before the registry woke up"
    );
    assert_only_the_store_changed(&d);
}

#[test]
fn a_client_that_goes_away_leaves_a_resumable_invisible_partial() {
    let fake = FakeRegistry::start();
    let (blob, size) = serve_tiny(&fake, "m/tiny");
    fake.fault(&blob, vec![Fault::Stall(60_000, Duration::from_secs(20))]);
    let d = daemon(&[]);
    let reference = format!("{}/m/tiny:v1", fake.host);
    let started = Instant::now();
    {
        // A raw connection, so that hanging up is exactly closing the socket.
        use std::io::{BufRead, Write};
        let addr = d.url.trim_start_matches("http://").to_string();
        let mut sock = std::net::TcpStream::connect(&addr).unwrap();
        let body = json!({ "from": reference }).to_string();
        write!(
            sock,
            "POST /models/create HTTP/1.1\r\nhost: {addr}\r\naccept: application/json\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        // Hang up once bytes of the big layer have arrived.
        for line in std::io::BufReader::new(sock.try_clone().unwrap()).lines() {
            let line = line.unwrap();
            let Ok(v) = serde_json::from_str::<Value>(line.trim()) else {
                continue;
            };
            if v["layer"]["size"].as_u64() == Some(size as u64)
                && v["layer"]["current"].as_u64() > Some(0)
            {
                break;
            }
        }
        sock.shutdown(std::net::Shutdown::Both).unwrap();
    }
    let digest = blob.rsplit('/').next().unwrap().to_string();
    let partial = d.store.join("partial/sha256").join(&digest[7..]);
    let mut have = 0;
    wait_until(
        "the partial keeps the bytes received",
        Duration::from_secs(10),
        || {
            // Settled: the cancelled pull's writer has written what it had.
            let before = std::fs::metadata(&partial).map_or(0, |m| m.len());
            std::thread::sleep(Duration::from_millis(300));
            have = std::fs::metadata(&partial).map_or(0, |m| m.len());
            have > 0 && have == before
        },
    );
    assert!(models(&d).is_empty(), "nothing is visible");
    assert!(!d.store.join("blobs/sha256").join(&digest[7..]).exists());
    let (status, body) = pull(&d, &reference);
    assert_eq!(status, 200);
    assert!(body.contains("Model pulled successfully"), "{body}");
    let seen = fake.seen_at(&blob);
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(range(&seen[1]), Some(format!("bytes={have}-")));
    assert!(
        seen[1].at.duration_since(started) < Duration::from_secs(20),
        "the second pull resumed while the first download was still stalled: it was cancelled"
    );
    assert!(size > 60_000);
    assert_eq!(assert_store_sound(&d.store), 2);
}

#[test]
fn docker_schema_2_manifests_pull_and_indexes_are_refused() {
    let fake = FakeRegistry::start();
    let src = Daemon::start(&[]);
    src.package_tiny("src", 23);
    let art = src.artifact("src");
    for bytes in art.blobs.values() {
        fake.put_blob(bytes.clone());
    }
    let docker_v2 = "application/vnd.docker.distribution.manifest.v2+json";
    let mut m: Value = serde_json::from_slice(&art.manifest).unwrap();
    m["mediaType"] = json!(docker_v2);
    let bytes = serde_json::to_vec(&m).unwrap();
    let digest = fake.put_manifest("m/docker", "v1", bytes, docker_v2);
    let index = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": [{"mediaType": OCI, "digest": digest, "size": 1}]});
    fake.put_manifest(
        "m/index",
        "v1",
        serde_json::to_vec(&index).unwrap(),
        "application/vnd.oci.image.index.v1+json",
    );
    let d = daemon(&[]);
    let (status, body) = pull(&d, &format!("{}/m/docker:v1", fake.host));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("Model pulled successfully"), "{body}");
    let v: Value = reqwest::blocking::get(d.u(&format!("/models/{}/m/docker:v1", fake.host)))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        v["id"], digest,
        "the model ID is the registry's manifest digest"
    );
    let (status, body) = pull(&d, &format!("{}/m/index:v1", fake.host));
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("application/vnd.oci.image.index.v1+json"),
        "{body}"
    );
    assert_only_the_store_changed(&d);
}

#[test]
fn credentials_never_go_to_an_upload_location_on_another_host() {
    let fake = FakeRegistry::start();
    fake.require_basic("dave", "pw");
    let store_elsewhere = FakeRegistry::start();
    let port = store_elsewhere.host.rsplit(':').next().unwrap();
    fake.uploads_at(&format!("http://localhost:{port}"));
    let scratch = tempfile::tempdir().unwrap();
    let creds = docker_config(scratch.path(), &fake.host, "dave", "pw");
    let d = daemon(&[("DOCKER_CONFIG", creds.to_str().unwrap())]);
    let tag = format!("{}/m/pushed:v1", fake.host);
    d.package_tiny(&tag, 24);
    let out = d.ok(&["push", &tag]);
    assert!(out.contains("Model pushed successfully"), "{out}");
    let puts: Vec<_> = store_elsewhere
        .seen()
        .into_iter()
        .filter(|s| s.method == "PUT")
        .collect();
    assert_eq!(
        puts.len(),
        2,
        "the layer and the config went to the upload host"
    );
    assert!(
        puts.iter()
            .all(|s| !s.headers.contains_key("authorization")),
        "credentials leaked: {puts:?}"
    );
    let here = fake.seen();
    assert!(here
        .iter()
        .any(|s| s.method == "POST" && s.headers.contains_key("authorization")));
    let manifest_put = here
        .iter()
        .find(|s| s.method == "PUT" && s.path.contains("/manifests/"))
        .expect("the manifest was pushed to the registry itself");
    assert!(manifest_put.headers.contains_key("authorization"));
}
