//! Token realms named by a registry's `WWW-Authenticate` challenge: where the daemon
//! may connect for a token, and where the registry's credentials may go
//! (`crates/registry/src/realm.rs`, docs/registries.md).

use modelrunner_e2e::fake_registry::{FakeRegistry, Fault};
use modelrunner_e2e::registry::docker_config;
use modelrunner_e2e::Daemon;
use serde_json::Value;

const OCI: &str = "application/vnd.oci.image.manifest.v1+json";
const MANIFEST: &str = "/v2/m/tiny/manifests/v1";

/// A fake registry serving a tiny model as `m/tiny:v1` whose manifest asks for a bearer
/// token from `realm`, and a daemon holding Docker credentials for it.
fn challenged(realm: &str) -> (FakeRegistry, Daemon) {
    let fake = FakeRegistry::start();
    let src = Daemon::start(&[]);
    src.package_tiny("src", 11);
    let art = src.artifact("src");
    for bytes in art.blobs.into_values() {
        fake.put_blob(bytes);
    }
    fake.put_manifest("m/tiny", "v1", art.manifest, OCI);
    let challenge =
        format!(r#"Bearer realm="{realm}",service="fake",scope="repository:m/tiny:pull""#);
    let header = ("www-authenticate".to_string(), challenge);
    fake.fault(MANIFEST, vec![Fault::Status(401, vec![header]); 4]);
    let scratch = tempfile::tempdir().unwrap();
    let creds = docker_config(scratch.path(), &fake.host, "carol", "pw");
    let store = scratch.path().join("store");
    let d = Daemon::start_full(
        scratch,
        store,
        &[],
        &[("DOCKER_CONFIG", creds.to_str().unwrap())],
    );
    (fake, d)
}

fn pull(d: &Daemon, reference: &str) -> (u16, Value) {
    let (status, body) = d.create(reference);
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[test]
fn a_link_local_realm_is_never_contacted() {
    let (fake, d) = challenged("http://169.254.169.254/latest/meta-data");
    let (status, body) = pull(&d, &format!("{}/m/tiny:v1", fake.host));
    assert_eq!(status, 502, "{body}");
    let msg = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("token realm") && msg.contains("link-local"),
        "{body}"
    );
    assert!(reqwest::blocking::get(d.u("/models"))
        .unwrap()
        .status()
        .is_success());
}

#[test]
fn credentials_go_to_a_realm_on_the_registry_host_only() {
    let tokens = FakeRegistry::start();
    let port = tokens.host.rsplit(':').next().unwrap().to_string();
    tokens.fault("/token", vec![Fault::Status(200, vec![]); 4]);
    // Another port of the registry's own host: a loopback registry may use it, with
    // its credentials.
    let (fake, d) = challenged(&format!("http://127.0.0.1:{port}/token"));
    let (status, body) = pull(&d, &format!("{}/m/tiny:v1", fake.host));
    assert_ne!(status, 200, "{body}");
    let seen = tokens.seen_at("/token");
    assert!(!seen.is_empty(), "the realm was not asked: {body}");
    assert!(seen[0].headers.contains_key("authorization"), "{seen:?}");
    assert!(seen[0].path.contains("scope=repository"), "{seen:?}");
    // Another name for this machine is another host: asked for an anonymous token.
    let anon = FakeRegistry::start();
    let port = anon.host.rsplit(':').next().unwrap().to_string();
    anon.fault("/token", vec![Fault::Status(200, vec![]); 4]);
    let (fake, d) = challenged(&format!("http://localhost:{port}/token"));
    pull(&d, &format!("{}/m/tiny:v1", fake.host));
    let seen = anon.seen_at("/token");
    assert!(!seen.is_empty());
    assert!(!seen[0].headers.contains_key("authorization"), "{seen:?}");
}
