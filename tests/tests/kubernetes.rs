//! `deploy/kubernetes`: each overlay renders with `kubectl kustomize`, validates against
//! Kubernetes' own schemas of 1.27 and 1.37 (`kubernetes-validate --strict`, pinned in
//! tests/sdk/requirements.txt), runs as the image's non-root user on a read-only root file
//! system, and probes `/health`; the GPU overlay alone asks for `nvidia.com/gpu`. Then the
//! real daemon is started with the container's environment exactly as the manifest gives
//! it (paths moved under a temp dir, the port made free): it must come up listening beyond
//! loopback, which it refuses without the API key digests the Secret mount provides, answer
//! the probe without a key, serve the scrape path with a key, and read the registry
//! credentials from the mounted `config.json`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use modelrunner_e2e::{bin, key_hash};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn venv(tool: &str) -> PathBuf {
    let p = repo().join("target/sdk/venv/bin").join(tool);
    assert!(
        p.exists(),
        "{} is missing; run scripts/sdk.sh (scripts/test.sh does)",
        p.display()
    );
    p
}

fn run(cmd: &mut Command, input: Option<&[u8]>) -> String {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e} (scripts/deps.sh installs kubectl)"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.unwrap_or(b""))
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The overlay's objects, rendered and validated.
fn render(overlay: &str) -> Vec<Value> {
    let dir = repo().join("deploy/kubernetes/overlays").join(overlay);
    let yaml = run(Command::new("kubectl").arg("kustomize").arg(&dir), None);
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &yaml).unwrap();
    // The oldest Kubernetes still common in managed clusters, and the newest the tool has;
    // image volumes exist from 1.33 (beta) on.
    let versions: &[&str] = match overlay {
        "models-volume" => &["1.33.0", "1.37.0"],
        _ => &["1.27.0", "1.37.0"],
    };
    for &version in versions {
        let verdict = run(
            Command::new(venv("kubernetes-validate"))
                .args(["--strict", "--kubernetes-version", version, "--quiet"])
                .arg(file.path()),
            None,
        );
        assert!(
            !verdict.contains("ERROR"),
            "{overlay} on {version}: {verdict}"
        );
    }
    let json = run(
        Command::new(venv("python")).arg(repo().join("tests/kubernetes/render.py")),
        Some(yaml.as_bytes()),
    );
    serde_json::from_str(&json).unwrap()
}

fn object<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

/// The image's user: `useradd ... --uid N` in docker/Dockerfile.
fn image_uid() -> u64 {
    let df = include_str!("../../docker/Dockerfile");
    let at = df.find("--uid ").expect("useradd --uid in the Dockerfile") + 6;
    df[at..].split_whitespace().next().unwrap().parse().unwrap()
}

#[test]
fn overlays_validate_and_keep_the_pod_locked_down() {
    for overlay in ["cpu", "nvidia-gpu", "models-volume"] {
        let objects = render(overlay);
        let deploy = object(&objects, "Deployment");
        let pod = &deploy["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{overlay}");
        assert_eq!(
            pod["securityContext"]["runAsUser"],
            image_uid(),
            "{overlay}"
        );
        assert_eq!(
            c["securityContext"]["readOnlyRootFilesystem"], true,
            "{overlay}"
        );
        assert_eq!(
            c["securityContext"]["allowPrivilegeEscalation"], false,
            "{overlay}"
        );
        for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
            assert_eq!(c[probe]["httpGet"]["path"], "/health", "{overlay} {probe}");
        }
        let gpus = &c["resources"]["limits"]["nvidia.com/gpu"];
        assert_eq!(gpus.is_null(), overlay != "nvidia-gpu", "{overlay}: {gpus}");
        let svc = object(&objects, "Service");
        assert_eq!(
            svc["spec"]["selector"], deploy["spec"]["selector"]["matchLabels"],
            "{overlay}: the Service selects other pods"
        );
        if overlay == "models-volume" {
            models_volume(&objects, pod);
            continue;
        }
        let claim = object(&objects, "PersistentVolumeClaim")["metadata"]["name"].clone();
        assert!(
            pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v["persistentVolumeClaim"]["claimName"] == claim),
            "{overlay}: the store's claim is not mounted"
        );
    }
}

/// The models-volume overlay: the image volume mounted read-only where
/// `MODELRUNNER_MODELS_DIR` points, the store an emptyDir, and no claim left.
fn models_volume(objects: &[Value], pod: &Value) {
    assert!(
        objects.iter().all(|o| o["kind"] != "PersistentVolumeClaim"),
        "models-volume keeps the store's claim"
    );
    let store = named(&pod["volumes"], "store");
    assert!(store["emptyDir"].is_object(), "{store}");
    assert!(store["persistentVolumeClaim"].is_null());
    assert!(named(&pod["volumes"], "models")["image"]["reference"].is_string());
    let c = &pod["containers"][0];
    let dir = &named(&c["env"], "MODELRUNNER_MODELS_DIR")["value"];
    let mount = named(&c["volumeMounts"], "models");
    assert_eq!(&mount["mountPath"], dir);
    assert_eq!(mount["readOnly"], true);
}

/// The entry of a list of named objects (volumes, env, mounts) called `name`.
fn named<'a>(list: &'a Value, name: &str) -> &'a Value {
    list.as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {list}"))
}

/// A mount's path inside the container → the path it stands for here.
fn mounts(pod: &Value, here: &Path) -> HashMap<String, PathBuf> {
    pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let at = m["mountPath"].as_str().unwrap().to_string();
            let local = here.join(m["name"].as_str().unwrap());
            std::fs::create_dir_all(&local).unwrap();
            (at, local)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_starts_with_the_manifests_environment() {
    let objects = render("cpu");
    let pod = &object(&objects, "Deployment")["spec"]["template"]["spec"];
    let config_data = &object(&objects, "ConfigMap")["data"];
    let dir = tempfile::tempdir().unwrap();
    let mounted = mounts(pod, dir.path());
    let local = |p: &str| -> String {
        let (at, here) = mounted
            .iter()
            .filter(|(at, _)| p == at.as_str() || p.starts_with(&format!("{at}/")))
            .max_by_key(|(at, _)| at.len())
            .unwrap_or_else(|| panic!("{p} is on the read-only root file system"));
        format!("{}{}", here.display(), &p[at.len()..])
    };
    // What the Secrets hold: a key digest, and registry credentials.
    let key = "kubernetes-test-key-0123";
    let keys = PathBuf::from(local("/etc/modelrunner/keys/hashes"));
    std::fs::write(&keys, format!("{}\n", key_hash(key))).unwrap();
    let docker = PathBuf::from(local("/etc/modelrunner/docker/config.json"));
    std::fs::write(
        &docker,
        r#"{"auths":{"registry.example:5000":{"auth":"dTpw"}}}"#,
    )
    .unwrap();

    let mut cmd = Command::new(bin("modelrunnerd"));
    cmd.env_clear().env("PATH", std::env::var("PATH").unwrap());
    cmd.env("MODELRUNNER_THREADS", "1");
    for e in pod["containers"][0]["env"].as_array().unwrap() {
        let name = e["name"].as_str().unwrap();
        let value = match (&e["value"], &e["valueFrom"]["configMapKeyRef"]["key"]) {
            (Value::String(v), _) => v.clone(),
            (_, Value::String(k)) => config_data[k.as_str()].as_str().unwrap().to_string(),
            _ => panic!("{name}: a value this test cannot resolve: {e}"),
        };
        let value = match name {
            "MODELRUNNER_LISTEN" => {
                assert!(value.starts_with("0.0.0.0:"), "{value}");
                "0.0.0.0:0".to_string()
            }
            _ if value.starts_with('/') => local(&value),
            _ => value,
        };
        cmd.env(name, value);
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening on ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let url = rx.recv_timeout(Duration::from_secs(30));
    let alive = child.try_wait().unwrap().is_none();
    let _kill = scopeguard(child);
    let url = url.unwrap_or_else(|_| panic!("the daemon did not start (alive: {alive})"));
    let port = url.rsplit(':').next().unwrap().trim_end_matches('/');
    let base = format!("http://127.0.0.1:{port}");
    let c = reqwest::Client::new();
    let probe = pod["containers"][0]["readinessProbe"]["httpGet"]["path"]
        .as_str()
        .unwrap();
    assert_eq!(
        c.get(format!("{base}{probe}"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let scrape = object(&objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]
        ["prometheus.io/path"]
        .as_str()
        .unwrap();
    let r = c.get(format!("{base}{scrape}")).send().await.unwrap();
    assert_eq!(r.status(), 401, "the scrape path without a key");
    let with_key = |url: String| c.get(url).bearer_auth(key).send();
    let r = with_key(format!("{base}{scrape}")).await.unwrap();
    assert_eq!(r.status(), 200, "the scrape path with the mounted key");
    // Open WebUI in deploy/compose lists models from its OpenAI base URL's /models.
    let compose = run(
        Command::new(venv("python"))
            .arg(repo().join("tests/kubernetes/render.py"))
            .stdin(Stdio::piped()),
        Some(&std::fs::read(repo().join("deploy/compose/compose.yaml")).unwrap()),
    );
    let compose: Vec<Value> = serde_json::from_str(&compose).unwrap();
    let webui = compose[0]["services"]["open-webui"]["environment"]["OPENAI_API_BASE_URL"]
        .as_str()
        .unwrap();
    let path = webui
        .strip_prefix("http://modelrunner:12434")
        .unwrap_or_else(|| panic!("Open WebUI does not reach the modelrunner service: {webui}"));
    let r = with_key(format!("{base}{path}/models")).await.unwrap();
    assert_eq!(r.status(), 200, "{path}/models");
    let store = local("/models");
    assert!(
        Path::new(&store).join("layout.json").is_file(),
        "the store is not on the volume"
    );
}

/// Kills the daemon when the test ends, passed or not.
fn scopeguard(child: std::process::Child) -> impl Drop {
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    Kill(child)
}
