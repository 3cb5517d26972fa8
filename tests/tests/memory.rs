//! The scheduler's memory estimate against the runner's measured resident memory after
//! its slots have been filled, for stories260K and the ~100M-parameter Q8_0 fixture.

use modelrunner_e2e::{get, post, Daemon};
use serde_json::{json, Value};

/// Fills every slot with a prompt of nearly the full context, then compares.
async fn compare(d: &Daemon, model: &str, vocab: i64) -> (u64, u64) {
    let c = reqwest::Client::new();
    post(
        &c,
        &d.u("/v1/completions"),
        &json!({"model": model, "prompt": "x", "max_tokens": 1}),
    )
    .await;
    let r = get(&c, &d.u("/engines/ps")).await[0].clone();
    let (slots, ctx) = (
        r["slots"].as_u64().unwrap(),
        r["context_size"].as_i64().unwrap(),
    );
    let reqs: Vec<_> = (0..slots)
        .map(|s| {
            let prompt: Vec<i64> = (0..ctx - 16)
                .map(|i| 3 + (i * 7 + s as i64 * 13) % (vocab - 3))
                .collect();
            let (c, url) = (c.clone(), d.u("/v1/completions"));
            async move {
                post(
                    &c,
                    &url,
                    &json!({"model": model, "prompt": prompt, "max_tokens": 4}),
                )
                .await
            }
        })
        .collect();
    for (s, _, v) in futures::future::join_all(reqs).await {
        assert_eq!(s, 200, "{v}");
    }
    let r: Value = get(&c, &d.u("/engines/ps")).await[0].clone();
    let est = r["estimated_memory"]["total"].as_u64().unwrap();
    let rss = r["resident_memory"].as_u64().unwrap();
    eprintln!(
        "{model}: {slots} slots x {ctx}: estimate {} MiB ({}), resident {} MiB, ratio {:.2}",
        est >> 20,
        r["estimated_memory"],
        rss >> 20,
        est as f64 / rss as f64
    );
    (est, rss)
}

fn within(est: u64, rss: u64, pct: f64) -> bool {
    (est as f64 - rss as f64).abs() <= rss as f64 * pct / 100.0
}

#[tokio::test(flavor = "multi_thread")]
async fn estimate_is_within_a_quarter_of_resident_memory() {
    let d = Daemon::start(&[]);
    if d.package_chat_model("stories") {
        let (est, rss) = compare(&d, "stories", 512).await;
        assert!(
            within(est, rss, 25.0),
            "stories260K: estimate {est} vs resident {rss}"
        );
    }
    let p = d.dir.path().join("m100.gguf");
    modelrunner_testkit::LlamaSpec::about_100m()
        .build_q8_0(1)
        .write_file(&p)
        .unwrap();
    d.ok(&["package", "--gguf", p.to_str().unwrap(), "m100"]);
    let c = reqwest::Client::new();
    let (s, _, _) = post(
        &c,
        &d.u("/engines/_configure"),
        &json!({"model": "m100", "context-size": 1024, "parallel": 2, "keep_alive": "-1"}),
    )
    .await;
    assert_eq!(s, 202);
    post(&c, &d.u("/engines/unload"), &json!({"all": true})).await;
    let (est, rss) = compare(&d, "m100", 32_003).await;
    assert!(
        within(est, rss, 25.0),
        "100M Q8_0: estimate {est} vs resident {rss}"
    );
}

/// llama-server's serving flags reach the runner (a quantized KV cache with flash
/// attention serves, and the estimate counts it smaller); flags that would name files
/// or hosts, and unknown ones, are refused with the reason.
#[tokio::test(flavor = "multi_thread")]
async fn runtime_flags_reach_the_runner_and_the_estimate() {
    let d = Daemon::start(&[]);
    // Heads of 32 (a quantized cache stores them in blocks of 32); stories260K's are 8.
    let spec = modelrunner_testkit::LlamaSpec {
        n_head: 2,
        n_head_kv: 2,
        ..modelrunner_testkit::LlamaSpec::tiny()
    };
    let gguf = d.dir.path().join("heads32.gguf");
    spec.build(1).write_file(&gguf).unwrap();
    d.ok(&["package", "--gguf", gguf.to_str().unwrap(), "stories"]);
    d.package_chat_model("small-heads");
    let c = reqwest::Client::new();
    let kv = |c: reqwest::Client, url: String| async move {
        post(
            &c,
            &url,
            &json!({"model": "stories", "prompt": "Once", "max_tokens": 4}),
        )
        .await;
        get(&c, &url.replace("/v1/completions", "/engines/ps")).await[0]["estimated_memory"]
            ["kv_cache"]
            .as_u64()
            .unwrap()
    };
    let f16 = kv(c.clone(), d.u("/v1/completions")).await;
    let (s, _, v) = post(
        &c,
        &d.u("/engines/_configure"),
        &json!({"model": "stories", "runtime-flags": ["--flash-attn", "on", "-ctk", "q8_0",
            "--cache-type-v=q8_0", "--threads-batch", "1", "-ub", "32", "--mlock"]}),
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let q8 = kv(c.clone(), d.u("/v1/completions")).await;
    assert!(
        q8 * 17 / 16 < f16,
        "q8_0 is about half of f16: {q8} vs {f16}"
    );
    let (s, _, v) = post(
        &c,
        &d.u("/v1/completions"),
        &json!({"model": "stories", "prompt": "Once upon a time", "max_tokens": 8}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["usage"]["completion_tokens"], 8);
    // llama.cpp itself says what it made (the runner's log, through the daemon's).
    let log = c
        .get(d.u("/logs?tail=2000"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        log.contains("K (q8_0)") && log.contains("V (q8_0)"),
        "no q8_0 cache in the log"
    );
    assert!(
        log.contains("flash_attn            = enabled"),
        "flash attention not on"
    );
    let saved = get(&c, &d.u("/engines/_configure?model=stories")).await;
    assert_eq!(saved[0]["Config"]["cache_type_k"], "q8_0", "{saved}");
    // On a model with smaller heads the load fails, and the runner says why.
    let (s, _, v) = post(
        &c,
        &d.u("/engines/_configure"),
        &json!({"model": "small-heads", "runtime-flags": ["-fa", "on", "-ctk", "q8_0"]}),
    )
    .await;
    assert_eq!(
        (s.as_u16(), v["error"]["code"].as_str()),
        (500, Some("load_failed")),
        "{v}"
    );
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("multiple of 32"),
        "{v}"
    );
    for (flags, says) in [
        (json!(["-m", "/etc/passwd"]), "never accepted"),
        (json!(["--host=0.0.0.0"]), "never accepted"),
        (json!(["--frobnicate"]), "not a serving flag"),
    ] {
        let (s, _, v) = post(
            &c,
            &d.u("/engines/_configure"),
            &json!({"model": "stories", "runtime-flags": flags}),
        )
        .await;
        assert_eq!(s, 400, "{v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(says),
            "{v}"
        );
    }
}
