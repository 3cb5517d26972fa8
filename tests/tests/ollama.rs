//! Ollama's `/api` routes over real HTTP, for what the ollama client does not show: the
//! second listener on an Ollama-style port, every failure in `{"error"}` shape with its
//! status, NDJSON framing and content types, `num_ctx` reloading the model with that
//! context, `keep_alive: 0` unloading it, `think: false` dropping reasoning, Go prompt
//! templates (and the refusal of what they cannot run), and blob uploads checked
//! against their digests.

use modelrunner_e2e::registry::free_port;
use modelrunner_e2e::Daemon;
use serde_json::{json, Value};

fn post(url: &str, body: &Value) -> (u16, String, String) {
    let r = reqwest::blocking::Client::new()
        .post(url)
        .json(body)
        .send()
        .unwrap();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (r.status().as_u16(), ct, r.text().unwrap())
}

fn json_of(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

fn ask(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "Once upon a time"}],
           "options": {"temperature": 0, "num_predict": 6}})
}

#[test]
fn errors_framing_and_the_second_listener() {
    let port = free_port();
    let d = Daemon::start(&["--ollama-listen", &format!("127.0.0.1:{port}")]);
    d.package_chat_model("stories");
    let other = format!("http://127.0.0.1:{port}");
    let v: Value = reqwest::blocking::get(format!("{other}/api/version"))
        .unwrap()
        .json()
        .unwrap();
    let parts: Vec<u32> = v["version"]
        .as_str()
        .unwrap()
        .split('.')
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(parts.len(), 3, "{v}");
    let tags: Value = reqwest::blocking::get(format!("{other}/api/tags"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(tags["models"][0]["name"], "stories:latest", "{tags}");

    // Streamed by default: NDJSON lines, the last one done with the counts.
    let (s, ct, text) = post(&d.u("/api/chat"), &ask("stories"));
    assert_eq!((s, ct.as_str()), (200, "application/x-ndjson"), "{text}");
    let lines: Vec<Value> = text.lines().map(json_of).collect();
    let last = lines.last().unwrap();
    assert_eq!(
        (last["done"].as_bool(), last["done_reason"].as_str()),
        (Some(true), Some("length")),
        "{last}"
    );
    assert_eq!(last["eval_count"], 6);
    assert!(lines[..lines.len() - 1].iter().all(|l| l["done"] == false));
    let mut one = ask("stories");
    one["stream"] = json!(false);
    let (s, ct, text) = post(&d.u("/api/chat"), &one);
    assert_eq!(
        (s, ct.as_str()),
        (200, "application/json; charset=utf-8"),
        "{text}"
    );
    let streamed: String = lines
        .iter()
        .map(|l| l["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(json_of(&text)["message"]["content"], streamed.as_str());

    let mut bad_option = ask("stories");
    bad_option["options"]["num_ctx"] = json!("big");
    let mut raw_with_system =
        json!({"model": "stories", "prompt": "x", "raw": true, "system": "s"});
    raw_with_system["stream"] = json!(false);
    for (path, body, status, needle) in [
        ("/api/chat", ask("no-such-model"), 404, "pull"),
        ("/api/chat", bad_option, 400, "options.num_ctx"),
        (
            "/api/generate",
            raw_with_system,
            400,
            "raw mode does not support",
        ),
        (
            "/api/generate",
            json!({"model": "stories", "prompt": "x", "template": "{{ range .Messages }}{{ end }}"}),
            400,
            "not supported",
        ),
        (
            "/api/generate",
            json!({"model": "stories", "prompt": "x", "suffix": "y"}),
            400,
            "fill-in-the-middle",
        ),
        (
            "/api/embed",
            json!({"model": "stories", "input": 3}),
            400,
            "invalid input type",
        ),
        ("/api/nothing", json!({}), 404, ""),
        (
            "/api/embed",
            json!({"model": "stories", "input": "cat ".repeat(3000)}),
            400,
            "input: This model's maximum context length",
        ),
        (
            "/api/copy",
            json!({"source": "stories", "destination": "Bad Name!"}),
            400,
            "destination",
        ),
    ] {
        let (s, _, text) = post(&d.u(path), &body);
        let v = json_of(&text);
        assert_eq!(s, status, "{path} {body}: {text}");
        let e = v["error"]
            .as_str()
            .unwrap_or_else(|| panic!("not Ollama's shape: {text}"));
        assert!(e.contains(needle), "{path}: {e}");
        assert_eq!(v.as_object().unwrap().len(), 1, "{text}");
    }
    // Bad JSON too.
    let r = reqwest::blocking::Client::new()
        .post(d.u("/api/chat"))
        .body("{nope")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().unwrap()["error"].is_string());
}

#[test]
fn context_size_keep_alive_thinking_and_templates() {
    let d = Daemon::start(&[]);
    d.package_chat_model("stories");
    let (gguf, _) = modelrunner_testkit::chat_model(d.dir.path());
    let qwq = modelrunner_testkit::shared_dir().join("chat-templates/Qwen-QwQ-32B.jinja");
    d.ok(&[
        "package",
        "--gguf",
        gguf.to_str().unwrap(),
        "--chat-template",
        qwq.to_str().unwrap(),
        "thinker",
    ]);
    let ps = || -> Value {
        reqwest::blocking::get(d.u("/api/ps"))
            .unwrap()
            .json()
            .unwrap()
    };

    let mut small = ask("stories");
    small["stream"] = json!(false);
    small["options"]["num_ctx"] = json!(512);
    small["keep_alive"] = json!("-1");
    let (s, _, text) = post(&d.u("/api/chat"), &small);
    assert_eq!(s, 200, "{text}");
    let p = ps();
    assert_eq!(p["models"][0]["context_length"], 512, "{p}");
    assert!(
        p["models"][0]["expires_at"].as_str().unwrap() > "2300",
        "{p}"
    );
    small["options"]["num_ctx"] = json!(1024);
    post(&d.u("/api/chat"), &small);
    assert_eq!(ps()["models"][0]["context_length"], 1024);
    // An empty conversation with keep_alive 0 unloads.
    let (_, _, text) = post(
        &d.u("/api/chat"),
        &json!({"model": "stories", "messages": [], "keep_alive": 0}),
    );
    assert_eq!(json_of(&text)["done_reason"], "unload", "{text}");
    assert_eq!(ps()["models"], json!([]));

    let think = |t: Value| {
        let mut b = ask("thinker");
        b["stream"] = json!(false);
        b["think"] = t;
        b["options"]["num_predict"] = json!(16);
        json_of(&post(&d.u("/api/chat"), &b).2)
    };
    let on = think(json!(true));
    assert!(
        on["message"]["thinking"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{on}"
    );
    let off = think(json!(false));
    assert!(off["message"].get("thinking").is_none(), "{off}");

    // A Go template renders the prompt; the answer's context continues from it.
    let t = json!({"model": "stories", "prompt": "Lily", "template": "{{ if .System }}{{ .System }} {{ end }}{{ .Prompt }} and Ben", "system": "Once upon a time,", "stream": false, "options": {"temperature": 0, "num_predict": 4}});
    let v = json_of(&post(&d.u("/api/generate"), &t).2);
    let prompt: Vec<i64> = v["context"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    let tok: Value = reqwest::blocking::Client::new()
        .post(d.u("/tokenize"))
        .json(&json!({"model": "stories", "content": "Once upon a time, Lily and Ben", "add_special": true}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let want: Vec<i64> = tok["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .collect();
    assert_eq!(&prompt[..want.len()], &want[..], "{v}");
    assert_eq!(prompt.len(), want.len() + 4);
}

#[test]
fn blobs_are_checked_against_their_digests() {
    let d = Daemon::start(&[]);
    let c = reqwest::blocking::Client::new();
    let bytes = b"hello blob".to_vec();
    let good = format!("sha256:{}", modelrunner_e2e::sha256_hex(&bytes));
    let wrong = format!("sha256:{}", "0".repeat(64));
    let url = |d2: &str| d.u(&format!("/api/blobs/{d2}"));
    assert_eq!(c.head(url(&good)).send().unwrap().status(), 404);
    let r = c.post(url(&wrong)).body(bytes.clone()).send().unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("digest mismatch"));
    assert_eq!(
        c.head(url(&wrong)).send().unwrap().status(),
        404,
        "nothing kept under the wrong name"
    );
    assert_eq!(
        c.post(url(&good))
            .body(bytes.clone())
            .send()
            .unwrap()
            .status(),
        201
    );
    assert_eq!(c.post(url(&good)).body(bytes).send().unwrap().status(), 200);
    assert_eq!(
        c.head(url(&good.replace(':', "-")))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(c.head(url("sha256:xyz")).send().unwrap().status(), 400);
    // Posting a blob that is already there leaves the connection usable: the next
    // request on the same socket is answered (the Ollama client reuses it).
    use std::io::{Read, Write};
    let big = vec![7u8; 1 << 20];
    let big_digest = format!("sha256:{}", modelrunner_e2e::sha256_hex(&big));
    assert_eq!(
        c.post(url(&big_digest))
            .body(big.clone())
            .send()
            .unwrap()
            .status(),
        201
    );
    let host = d.u("").trim_start_matches("http://").to_string();
    let mut sock = std::net::TcpStream::connect(&host).unwrap();
    let head = format!(
        "POST /api/blobs/{big_digest} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n\r\n",
        big.len()
    );
    sock.write_all(head.as_bytes()).unwrap();
    sock.write_all(&big).unwrap();
    sock.write_all(format!("GET /api/version HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\"version\"") {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.contains("\"version\""),
        "the second request was answered: {text}"
    );
}
