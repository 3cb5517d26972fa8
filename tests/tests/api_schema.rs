//! The OpenAPI document against the daemon: `schemathesis` (installed by
//! `scripts/sdk.sh`, pinned) generates requests from `/openapi.json`'s request schemas,
//! valid and invalid, for a bounded number of cases with a fixed seed, and checks that
//! no answer is a 5xx, that every answer's status, media type and body match the
//! document, and that the daemon keeps serving. And the refusals axum makes itself (a
//! 405, a path that is not UTF-8, a query that does not decode) come in the dialect's
//! error shape like every other error.

use std::path::PathBuf;
use std::process::Command;

use modelrunner_e2e::Daemon;
use serde_json::Value;

fn schemathesis() -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/sdk/venv/bin/schemathesis");
    assert!(
        p.exists(),
        "{} is missing; run scripts/sdk.sh (scripts/test.sh does)",
        p.display()
    );
    p
}

/// Operations left out of the generated runs, and why.
const LEFT_OUT: &str = concat!(
    // They reach registries by name; the generated names resolve to Docker Hub, which a
    // test without a network cannot reach (tests/tests/registry*.rs use a real one).
    "/models/create|/push$|/api/pull|/api/push|",
    // A tar archive, which schemathesis cannot generate (tests/tests/models.rs loads them).
    "/models/load|",
    // Aliases: the same handler under Docker Model Runner's prefixes, Anthropic's own,
    // and llama-server's second names (the route table maps each to one handler, and the
    // dialect of an error is told by the same prefixes as the originals').
    "^/engines/v1/|^/engines/llama\\.cpp/|^/anthropic/|^/engines/rerank|^/v1/reranking|",
    "^/reranking|^/v2/rerank|^/completions$|^/embeddings$|^/chat/completions$|^/v1/health$",
);

/// Runs schemathesis over the operations `filter` selects; returns its output.
fn run(d: &Daemon, filter: &[&str], examples: u32) -> String {
    let hooks = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schemathesis");
    let report = d.dir.path().join("schemathesis-report");
    let out = Command::new(schemathesis())
        .arg("run")
        .arg(d.u("/openapi.json"))
        .args(["--max-examples", &examples.to_string(), "--seed", "7"])
        .args(["--workers", "2", "--request-timeout", "60", "--no-color"])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--exclude-path-regex", LEFT_OUT])
        .args(filter)
        .arg("--report-dir")
        .arg(&report)
        .current_dir(d.dir.path())
        .env("SCHEMATHESIS_HOOKS", "hooks")
        .env("PYTHONPATH", &hooks)
        .env("MODELRUNNER_ST_MODEL", "stories")
        .env("NO_COLOR", "1")
        .output()
        .expect("running schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "schemathesis found problems:\n{text}");
    text
}

#[test]
fn generated_requests_get_no_server_error_and_answers_match_the_document() {
    // A short context bounds every generation, so that a bounded number of cases runs
    // in bounded time on two cores.
    let d = Daemon::start(&["--default-context", "256"]);
    d.package_chat_model("stories");
    // Everything but deletions, over a store that keeps its model.
    let text = run(&d, &["--exclude-method", "DELETE"], 6);
    // The summary's "4303 generated, 4303 passed".
    let generated: u64 = text
        .lines()
        .find_map(|l| l.trim().split_once(" generated,"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0);
    assert!(generated > 1000, "too few cases ran: {generated}\n{text}");
    // Then the deletions, the model's among them.
    run(&d, &["--include-method", "DELETE"], 6);
    let health: Value = reqwest::blocking::get(d.u("/health"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(health["status"], "ok", "{health}");
}

fn send(method: &str, url: &str) -> (u16, Option<String>, Value) {
    let c = reqwest::blocking::Client::new();
    let r = c.request(method.parse().unwrap(), url).send().unwrap();
    let status = r.status().as_u16();
    let allow = r
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_string());
    let ctype = r.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        ctype.starts_with("application/json"),
        "{method} {url}: {ctype}"
    );
    (status, allow, r.json().unwrap())
}

#[test]
fn axums_own_refusals_come_in_the_dialects_shape() {
    let d = Daemon::start(&[]);
    // A method the route does not answer: each dialect's envelope, `Allow` kept.
    let (s, allow, v) = send("DELETE", &d.u("/v1/chat/completions"));
    assert_eq!((s, allow.as_deref()), (405, Some("POST")));
    assert_eq!(v["error"]["code"], "method_not_allowed", "{v}");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.contains("DELETE") && m.contains("POST"), "{m}");
    let (s, _, v) = send("GET", &d.u("/v1/messages"));
    assert_eq!(s, 405);
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    let (s, _, v) = send("GET", &d.u("/api/chat"));
    assert_eq!(s, 405);
    assert!(v["error"].as_str().unwrap().contains("POST"), "{v}");
    // A path parameter that is not UTF-8, named.
    let (s, _, v) = send("GET", &d.u("/v1/models/%FF"));
    assert_eq!(
        (s, v["error"]["param"].as_str()),
        (400, Some("name")),
        "{v}"
    );
    let (s, _, v) = send("POST", &d.u("/api/blobs/%FF"));
    assert_eq!(s, 400, "{v}");
    assert!(v["error"].is_string(), "{v}");
    // A query parameter that does not decode, named.
    let (s, _, v) = send("GET", &d.u("/logs?tail=many"));
    assert_eq!(
        (s, v["error"]["param"].as_str()),
        (400, Some("tail")),
        "{v}"
    );
    let (s, _, v) = send("GET", &d.u("/v1/responses/resp_1/input_items?limit=-1"));
    assert_eq!(
        (s, v["error"]["param"].as_str()),
        (400, Some("limit")),
        "{v}"
    );
}
