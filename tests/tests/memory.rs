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
