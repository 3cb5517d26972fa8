//! The model API over raw HTTP: shapes, status codes and the error envelope.

use modelrunner_e2e::Daemon;
use modelrunner_testkit::LlamaSpec;
use reqwest::StatusCode;
use serde_json::Value;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn get_json(c: &reqwest::Client, url: &str) -> Value {
    c.get(url).send().await.unwrap().json().await.unwrap()
}

fn packaged(d: &Daemon, tag: &str, seed: u64) {
    let p = d.dir.path().join(format!("m{seed}.gguf"));
    LlamaSpec::tiny().build(seed).write_file(&p).unwrap();
    d.ok(&["package", "--gguf", p.to_str().unwrap(), tag]);
}

async fn envelope(r: reqwest::Response) -> (StatusCode, Value) {
    let s = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(
        v["error"]["message"].is_string(),
        "not an OpenAI error envelope: {v}"
    );
    assert!(v["error"].as_object().unwrap().contains_key("param"));
    (s, v)
}

#[test]
fn routes_shapes_and_errors() {
    let d = Daemon::start(&[]);
    packaged(&d, "one", 1);
    d.ok(&["tag", "one", "two"]);
    let c = reqwest::Client::new();
    let u = |p: &str| format!("{}{p}", d.url);
    rt().block_on(async {
        let r = c.get(u("/")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = get_json(&c, &u("/version")).await;
        assert!(v["version"].is_string());
        let v: Value = get_json(&c, &u("/health")).await;
        assert_eq!(v["status"], "ok");
        let v: Value = get_json(&c, &u("/engines/df")).await;
        assert!(v["models_disk_usage"].as_u64().unwrap() > 0);
        // The backend is the daemon's own executable.
        let exe = std::fs::metadata(modelrunner_e2e::bin("modelrunnerd"))
            .unwrap()
            .len();
        assert_eq!(v["default_backend_disk_usage"], exe);
        let v: Value = get_json(&c, &u("/engines/status")).await;
        let s = v["llama.cpp"].as_str().unwrap();
        assert!(
            s.starts_with("Running: ") && s.contains("; 0 loaded"),
            "{s}"
        );

        let models: Value = get_json(&c, &u("/models")).await;
        let m = &models[0];
        let id = m["id"].as_str().unwrap().to_string();
        assert!(id.starts_with("sha256:") && id.len() == 71);
        assert!(m["created"].is_i64());
        assert_eq!(m["config"]["architecture"], "llama");

        // Unknown model: 404 model_not_found.
        let (s, v) = envelope(c.get(u("/models/ai/nothing")).send().await.unwrap()).await;
        assert_eq!(s, 404);
        assert_eq!(v["error"]["code"], "model_not_found");
        // Unknown route: 404 in the same envelope.
        let (s, _) = envelope(c.get(u("/no/such/route")).send().await.unwrap()).await;
        assert_eq!(s, 404);
        // Tag without repo: 400 naming the parameter.
        let (s, v) = envelope(c.post(u("/models/one/tag?tag=x")).send().await.unwrap()).await;
        assert_eq!(s, 400);
        assert_eq!(v["error"]["param"], "repo");
        let r = c
            .post(u("/models/one/tag?repo=ghcr.io/o/m&tag=v2"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["target"], "ghcr.io/o/m:v2");
        assert_eq!(
            v["message"],
            "Model tagged successfully with \"ghcr.io/o/m:v2\""
        );
        // Delete by ID with several tags: 409; with a bare ?force it goes.
        let (s, v) = envelope(c.delete(u(&format!("/models/{id}"))).send().await.unwrap()).await;
        assert_eq!(s, 409, "{v}");
        // Export headers.
        let r = c.get(u("/models/one/export")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/x-tar");
        assert!(r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains(".tar"));
        let tar = r.bytes().await.unwrap();
        assert!(tar.len() > 512);
        let r = c
            .delete(u(&format!("/models/{id}?force")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            v.as_array().unwrap().last().unwrap()["Deleted"],
            id.as_str()
        );
        // The export loads back to the same ID.
        let r = c
            .post(u("/models/load"))
            .body(tar.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let line: Value = serde_json::from_str(r.text().await.unwrap().trim()).unwrap();
        assert_eq!(line["id"], id.as_str());
        // Garbage archive: 400, and the daemon keeps serving.
        let (s, _) = envelope(
            c.post(u("/models/load"))
                .body(vec![1u8; 3000])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(s, 400);
        // DNS rebinding: a foreign Host is refused.
        let (s, _) = envelope(
            c.get(u("/models"))
                .header("host", "attacker.example:12434")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(s, 403);
        let r = c
            .get(u("/models"))
            .header("host", "localhost:12434")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = c.delete(u("/models/purge")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let models: Value = get_json(&c, &u("/models")).await;
        assert_eq!(models.as_array().unwrap().len(), 0);
    });
}

#[test]
fn oversized_archive_is_413() {
    let d = Daemon::start(&["--max-load-size", "4096"]);
    let c = reqwest::Client::new();
    let p = d.dir.path().join("m.gguf");
    LlamaSpec::tiny().build(3).write_file(&p).unwrap();
    let err = d.fails(&["package", "--gguf", p.to_str().unwrap(), "m"]);
    assert!(err.contains("larger than the limit"), "{err}");
    rt().block_on(async {
        let mut tar = Vec::new();
        {
            let mut b = tar::Builder::new(&mut tar);
            let mut h = tar::Header::new_ustar();
            h.set_size(10_000);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(
                &mut h,
                format!("blobs/sha256/{}", "a".repeat(64)),
                &vec![0u8; 10_000][..],
            )
            .unwrap();
        }
        let r = c
            .post(format!("{}/models/load", d.url))
            .body(tar)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413);
    });
    assert!(d.ok(&["ls", "-q"]).trim().is_empty());
}
