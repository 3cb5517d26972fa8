//! Start-up preloading: a model pulled and loaded before `/health` says ready (503 naming
//! the progress while its download is held), its layers in the log, the model loaded
//! after; a preload that fails keeps `/health` at 503 naming the model; a prefetch pulls
//! without loading.

use std::sync::Arc;
use std::time::Duration;

use modelrunner_e2e::fake_registry::{FakeRegistry, Fault, Gate};
use modelrunner_e2e::{wait_until, Daemon};
use serde_json::Value;

const OCI: &str = "application/vnd.oci.image.manifest.v1+json";

/// The fake registry serves stories as `test/stories:v1`; returns its GGUF blob's path.
fn serve(fake: &FakeRegistry) -> String {
    let src = Daemon::start(&[]);
    src.package_chat_model("stories");
    let art = src.artifact("stories");
    let m: Value = serde_json::from_slice(&art.manifest).unwrap();
    for bytes in art.blobs.into_values() {
        fake.put_blob(bytes);
    }
    fake.put_manifest("test/stories", "v1", art.manifest, OCI);
    format!(
        "/v2/test/stories/blobs/{}",
        m["layers"][0]["digest"].as_str().unwrap()
    )
}

fn health(d: &Daemon) -> (u16, Value) {
    let r = reqwest::blocking::get(d.u("/health")).unwrap();
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

fn loaded(d: &Daemon) -> Vec<String> {
    let v: Value = reqwest::blocking::get(d.u("/api/ps"))
        .unwrap()
        .json()
        .unwrap();
    v["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["model"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn health_is_ready_only_once_the_preloaded_model_is_loaded() {
    let fake = FakeRegistry::start();
    let blob = serve(&fake);
    let gate = Arc::new(Gate::default());
    fake.fault(&blob, vec![Fault::Hold(gate.clone())]);
    let model = format!("{}/test/stories:v1", fake.host);
    let d = Daemon::start(&["--preload", &model]);
    wait_until("the download to start", Duration::from_secs(20), || {
        !fake.seen_at(&blob).is_empty()
    });
    let (status, body) = health(&d);
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["message"], "preloading models: 0 of 1 done");
    assert!(loaded(&d).is_empty());
    gate.open();
    wait_until("ready", Duration::from_secs(60), || health(&d).0 == 200);
    assert_eq!(loaded(&d), vec![model]);
    let logs = reqwest::blocking::get(d.u("/logs?tail=2000"))
        .unwrap()
        .text()
        .unwrap();
    assert!(logs.contains("preload: layer pulled"), "{logs}");
    assert!(logs.contains("preload: loaded"), "{logs}");
}

#[test]
fn a_failed_preload_keeps_health_unready_and_a_prefetch_only_pulls() {
    let fake = FakeRegistry::start();
    serve(&fake);
    let missing = format!("{}/test/missing:v1", fake.host);
    let d = Daemon::start(&["--preload", &missing]);
    wait_until("the failure", Duration::from_secs(60), || {
        health(&d).1["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("failed"))
    });
    let (status, body) = health(&d);
    assert_eq!(status, 503);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&missing),
        "{body}"
    );

    let model = format!("{}/test/stories:v1", fake.host);
    let p = Daemon::start(&["--prefetch", &model]);
    wait_until("ready", Duration::from_secs(60), || health(&p).0 == 200);
    assert!(p.ok(&["ls", "--json"]).contains("test/stories:v1"));
    assert!(loaded(&p).is_empty(), "a prefetch does not load");
}
