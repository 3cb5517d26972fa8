//! The chat page at `/`, in a real browser: Debian's Chromium driven by Playwright's
//! Python package (pinned in tests/sdk/requirements.txt), against the real daemon with
//! stories260K and a real registry (tests/ui/test_page.py says what it checks). Then, over
//! plain HTTP, what the page must not weaken: API keys still guard every API route, the
//! DNS-rebinding guard and CORS still apply to the page, and the page's headers forbid
//! other origins.
//!
//! Screenshots go to the test's temporary directory (kept, and printed) for a person to
//! look at; `MODELRUNNER_UI_SCREENSHOTS=DIR` puts them in DIR instead.

use std::path::PathBuf;
use std::process::Command;

use modelrunner_e2e::registry::{RegistryOptions, TestRegistry};
use modelrunner_e2e::{key_hash, Daemon};
use modelrunner_testkit::LlamaSpec;

const KEY: &str = "page-test-key-0123";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `MODELRUNNER_CHROMIUM`, else `chromium` or `chromium-browser` on the PATH.
fn chromium() -> PathBuf {
    if let Some(p) = std::env::var_os("MODELRUNNER_CHROMIUM") {
        return PathBuf::from(p);
    }
    for name in ["chromium", "chromium-browser"] {
        if let Ok(out) = Command::new("sh")
            .args(["-c", &format!("command -v {name}")])
            .output()
        {
            let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !path.is_empty() {
                return PathBuf::from(path);
            }
        }
    }
    panic!("chromium is missing; scripts/deps.sh installs Debian's package");
}

/// A model slow enough to stop mid-answer on any machine (about 10M parameters of F32
/// with random weights: it never ends by itself), pushed to `reg` as `test/noise:v1` from
/// a daemon of its own, so that the daemon under test has none of its blobs.
fn push_noise(reg: &TestRegistry) -> String {
    let d = Daemon::start(&[]);
    let p = d.dir.path().join("noise.gguf");
    LlamaSpec {
        n_embd: 256,
        n_ff: 1024,
        n_layer: 6,
        n_head: 4,
        n_head_kv: 4,
        n_ctx: 4096,
        n_extra_tokens: 8000,
        name: "testkit-noise".into(),
    }
    .build(3)
    .write_file(&p)
    .unwrap();
    let remote = format!("{}/test/noise:v1", reg.host);
    d.ok(&["package", "--gguf", p.to_str().unwrap(), &remote]);
    d.ok(&["push", &remote]);
    remote
}

#[test]
fn chat_page_in_chromium() {
    let python = repo().join("target/sdk/venv/bin/python");
    assert!(python.exists(), "run scripts/sdk.sh (scripts/test.sh does)");
    let reg = TestRegistry::start(RegistryOptions::default());
    let noise = push_noise(&reg);
    let d = Daemon::start(&[]);
    // Its stand-in, where ../shared is missing, serves as well: no check reads the story.
    d.package_chat_model("stories");
    // QwQ's template opens a thinking block, which this model never closes: it thinks.
    let (gguf, _) = modelrunner_testkit::chat_model(d.dir.path());
    let qwq = modelrunner_testkit::shared_dir().join("chat-templates/Qwen-QwQ-32B.jinja");
    let (gguf, qwq) = (gguf.to_str().unwrap(), qwq.to_str().unwrap());
    d.ok(&["package", "--gguf", gguf, "--chat-template", qwq, "thinker"]);
    let keyed = Daemon::start(&[]);
    keyed.package_chat_model("stories");
    let (dir, store) = keyed.stop();
    let keyed = Daemon::start_in(dir, store, &["--api-key-hash", &key_hash(KEY)]);
    let shots = std::env::var_os("MODELRUNNER_UI_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            tempfile::Builder::new()
                .prefix("ui-shots-")
                .tempdir()
                .unwrap()
                .keep()
        });
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new(&python)
        .arg(repo().join("tests/ui/test_page.py"))
        .env("BASE_URL", d.u(""))
        .env("KEYED_URL", keyed.u(""))
        .env("API_KEY", KEY)
        .env("PULL_REF", &noise)
        .env("CHROMIUM", chromium())
        .env("SHOTS", &shots)
        .output()
        .unwrap();
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("screenshots: {}", shots.display());
    assert!(out.status.success(), "{text}");
    assert!(text.contains("page: all checks passed"), "{text}");
    for shot in [
        "models", "answer", "thinking", "pulled", "stopped", "reloaded", "dark", "phone", "key",
    ] {
        let p = shots.join(format!("{shot}.png"));
        assert!(
            p.metadata().is_ok_and(|m| m.len() > 1000),
            "{} missing",
            p.display()
        );
    }
}

fn get(url: &str, headers: &[(&str, &str)]) -> reqwest::blocking::Response {
    let mut r = reqwest::blocking::Client::new().get(url);
    for (k, v) in headers {
        r = r.header(*k, *v);
    }
    r.send().unwrap()
}

#[test]
fn page_keeps_the_api_guarded() {
    let d = Daemon::start(&["--api-key-hash", &key_hash(KEY)]);
    let html = [("accept", "text/html,application/xhtml+xml,*/*;q=0.8")];
    // The page and its files need no key; they hold no secret.
    let page = get(&d.u("/"), &html);
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let etag = page.headers()["etag"].to_str().unwrap().to_string();
    assert!(page.text().unwrap().contains("/ui/app.js"));
    let again = get(&d.u("/"), &[html[0], ("if-none-match", &etag)]);
    assert_eq!(again.status(), 304);
    let js = get(&d.u("/ui/app.js"), &[]);
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    // Everything else still asks for the key: API clients at `/`, unknown files, the API.
    assert_eq!(get(&d.u("/"), &[("accept", "*/*")]).status(), 401);
    assert_eq!(get(&d.u("/ui/secrets.js"), &[]).status(), 401);
    assert_eq!(get(&d.u("/models"), &html).status(), 401);
    let keyed = [("authorization", &*format!("Bearer {KEY}"))];
    assert_eq!(get(&d.u("/ui/secrets.js"), &keyed).status(), 404);
    assert_eq!(
        get(&d.u("/"), &keyed).text().unwrap(),
        "modelrunner is running"
    );
    // The DNS-rebinding guard applies to the page as to the API.
    let evil = get(&d.u("/"), &[html[0], ("host", "evil.example:12434")]);
    assert_eq!(evil.status(), 403);
    // A page of another origin gets no CORS grant to read the API.
    let cross = get(
        &d.u("/models"),
        &[keyed[0], ("origin", "https://evil.example")],
    );
    assert!(cross.headers().get("access-control-allow-origin").is_none());
}
