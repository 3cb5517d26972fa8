//! Prometheus metrics against the real daemon: the series appear, and move with
//! requests, loads, unloads and registry transfers (the pull's bytes checked against the
//! registry's own access log).

use std::time::Duration;

/// The value of one metric line (name with labels, exactly), or 0 when absent.
fn metric(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[test]
fn metrics_appear_and_move_with_requests_loads_and_transfers() {
    use modelrunner_e2e::registry::{RegistryOptions, TestRegistry};
    use modelrunner_e2e::Daemon;
    let d = Daemon::start(&[]);
    let reg = TestRegistry::start(RegistryOptions::default());
    let tag = format!("{}/metrics/tiny:1", reg.host);
    d.package_tiny(&tag, 21);
    let c = reqwest::blocking::Client::new();
    let scrape = || -> String {
        let r = c.get(d.u("/metrics")).send().unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"));
        r.text().unwrap()
    };
    let before = scrape();
    for name in [
        "modelrunner_http_requests_total",
        "modelrunner_time_to_first_token_seconds",
        "modelrunner_token_latency_seconds",
        "modelrunner_queue_depth",
        "modelrunner_model_memory_bytes",
        "modelrunner_model_loads_total",
        "modelrunner_runner_crashes_total",
        "modelrunner_registry_pull_bytes_total",
    ] {
        assert!(
            before.contains(&format!("# TYPE {name} ")),
            "{name} missing:\n{before}"
        );
    }
    let model = format!("model=\"{tag}\"");
    for stream in [false, true] {
        let r = c
            .post(d.u("/v1/completions"))
            .json(&serde_json::json!({"model": tag, "prompt": "Once upon", "max_tokens": 8, "stream": stream}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        r.text().unwrap();
    }
    let after = scrape();
    let route =
        "modelrunner_http_requests_total{method=\"POST\",route=\"/v1/completions\",status=\"200\"}";
    assert_eq!(metric(&after, route) - metric(&before, route), 2.0);
    let completion = format!("modelrunner_completion_tokens_total{{{model}}}");
    assert!(metric(&after, &completion) >= 2.0, "{after}");
    assert!(
        metric(
            &after,
            &format!("modelrunner_prompt_tokens_total{{{model}}}")
        ) >= 2.0
    );
    assert_eq!(
        metric(
            &after,
            &format!("modelrunner_time_to_first_token_seconds_count{{{model}}}")
        ),
        2.0
    );
    assert!(
        metric(
            &after,
            &format!("modelrunner_model_memory_bytes{{{model},mode=\"completion\"}}")
        ) > 1e6
    );
    assert_eq!(metric(&after, "modelrunner_model_loads_total"), 1.0);
    assert_eq!(metric(&after, "modelrunner_models_loaded"), 1.0);
    d.ok(&["unload", "--all"]);
    modelrunner_e2e::wait_until("the unload is counted", Duration::from_secs(10), || {
        metric(&scrape(), "modelrunner_model_unloads_total") == 1.0
    });
    d.ok(&["push", &tag]);
    let pushed = metric(&scrape(), "modelrunner_registry_push_bytes_total");
    assert!(pushed > 100_000.0, "{pushed}");
    d.ok(&["rm", &tag]);
    let before = reg.requests().len();
    d.ok(&["pull", &tag]);
    // The registry's own count of the blob bytes it sent.
    let sent: u64 = reg.requests()[before..]
        .iter()
        .filter(|r| r.method == "GET" && r.path.contains("/blobs/sha256:") && r.status == 200)
        .map(|r| r.bytes)
        .sum();
    let pulled = metric(&scrape(), "modelrunner_registry_pull_bytes_total");
    assert_eq!(pulled, sent as f64, "{:?}", &reg.requests()[before..]);
    assert_eq!(pulled, pushed);
}
