//! `GET /metrics` in Prometheus' text format: HTTP requests by route and status, tokens
//! in and out, time to first token and per-token latency, queue depth, loaded models and
//! their memory, loads, unloads and crashes, registry bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::{Stream, StreamExt};
use modelrunner_protocol::Event;

use crate::AppState;

/// Upper bounds (seconds) of the time-to-first-token buckets.
const TTFT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Upper bounds (seconds) of the per-token latency buckets.
const TOKEN_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

#[derive(Debug, Clone)]
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, v: f64) {
        for (i, b) in self.bounds.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.sum += v;
        self.count += 1;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {c}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    prompt_tokens: BTreeMap<String, u64>,
    completion_tokens: BTreeMap<String, u64>,
    ttft: BTreeMap<String, Histogram>,
    token_latency: BTreeMap<String, Histogram>,
}

/// The daemon's own counters (the scheduler and the registry keep theirs).
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// Escapes a label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    fn request(&self, method: &str, route: &str, status: u16) {
        let mut m = self.inner.lock().unwrap();
        *m.requests
            .entry((method.to_string(), route.to_string(), status))
            .or_default() += 1;
    }

    fn first_token(&self, model: &str, after: Duration) {
        let mut m = self.inner.lock().unwrap();
        m.ttft
            .entry(model.to_string())
            .or_insert_with(|| Histogram::new(TTFT_BUCKETS))
            .observe(after.as_secs_f64());
    }

    fn token_gap(&self, model: &str, gap: Duration) {
        let mut m = self.inner.lock().unwrap();
        m.token_latency
            .entry(model.to_string())
            .or_insert_with(|| Histogram::new(TOKEN_BUCKETS))
            .observe(gap.as_secs_f64());
    }

    fn tokens(&self, model: &str, prompt: u64, completion: u64) {
        let mut m = self.inner.lock().unwrap();
        *m.prompt_tokens.entry(model.to_string()).or_default() += prompt;
        *m.completion_tokens.entry(model.to_string()).or_default() += completion;
    }

    /// Watches a generation's events: the first token's delay from `started`, the gaps
    /// between tokens, and the token counts at the end.
    pub(crate) fn observe<S>(
        self: &std::sync::Arc<Self>,
        model: &str,
        started: Instant,
        events: S,
    ) -> impl Stream<Item = Event> + Send + 'static
    where
        S: Stream<Item = Event> + Send + 'static,
    {
        let metrics = self.clone();
        let model = model.to_string();
        let mut last: Option<Instant> = None;
        events.inspect(move |e| match e {
            Event::Token { .. } => {
                let now = Instant::now();
                match last {
                    None => metrics.first_token(&model, now - started),
                    Some(prev) => metrics.token_gap(&model, now - prev),
                }
                last = Some(now);
            }
            Event::Done { usage, .. } => metrics.tokens(
                &model,
                u64::from(usage.prompt_tokens),
                u64::from(usage.completion_tokens),
            ),
            _ => {}
        })
    }

    fn render_own(&self, out: &mut String) {
        let m = self.inner.lock().unwrap();
        out.push_str(
            "# HELP modelrunner_http_requests_total HTTP requests answered, by route and status.\n",
        );
        out.push_str("# TYPE modelrunner_http_requests_total counter\n");
        for ((method, route, status), n) in &m.requests {
            let _ = writeln!(
                out,
                "modelrunner_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                label(route)
            );
        }
        for (name, help, map) in [
            (
                "modelrunner_prompt_tokens_total",
                "Prompt tokens processed, by model.",
                &m.prompt_tokens,
            ),
            (
                "modelrunner_completion_tokens_total",
                "Tokens generated, by model.",
                &m.completion_tokens,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (model, n) in map {
                let _ = writeln!(out, "{name}{{model=\"{}\"}} {n}", label(model));
            }
        }
        for (name, help, map) in [
            (
                "modelrunner_time_to_first_token_seconds",
                "Time from a generation's start to its first token.",
                &m.ttft,
            ),
            (
                "modelrunner_token_latency_seconds",
                "Time between consecutive generated tokens.",
                &m.token_latency,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
            for (model, h) in map {
                h.render(out, name, &format!("model=\"{}\"", label(model)));
            }
        }
    }
}

fn gauge_header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Counts every answered request by method, route template and status.
pub(crate) async fn count_requests(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let resp = next.run(req).await;
    state
        .metrics
        .request(&method, &route, resp.status().as_u16());
    resp
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::with_capacity(4096);
    state.metrics.render_own(&mut out);
    let ps = state.scheduler.ps();
    gauge_header(
        &mut out,
        "modelrunner_models_loaded",
        "gauge",
        "Runners loaded or loading.",
    );
    let _ = writeln!(out, "modelrunner_models_loaded {}", ps.len());
    gauge_header(
        &mut out,
        "modelrunner_requests_in_flight",
        "gauge",
        "Requests running or queued, by model.",
    );
    for r in &ps {
        let _ = writeln!(
            out,
            "modelrunner_requests_in_flight{{model=\"{}\",mode=\"{}\"}} {}",
            label(&r.model_name),
            r.mode,
            r.requests
        );
    }
    gauge_header(
        &mut out,
        "modelrunner_queue_depth",
        "gauge",
        "Requests waiting for a slot, by model.",
    );
    for r in &ps {
        let waiting = r.requests.saturating_sub(r.slots.unwrap_or(0) as usize);
        let _ = writeln!(
            out,
            "modelrunner_queue_depth{{model=\"{}\",mode=\"{}\"}} {waiting}",
            label(&r.model_name),
            r.mode
        );
    }
    gauge_header(
        &mut out,
        "modelrunner_model_memory_bytes",
        "gauge",
        "Resident memory of each loaded model's runner.",
    );
    for r in &ps {
        if let Some(m) = r.resident_memory {
            let _ = writeln!(
                out,
                "modelrunner_model_memory_bytes{{model=\"{}\",mode=\"{}\"}} {m}",
                label(&r.model_name),
                r.mode
            );
        }
    }
    let c = state.scheduler.counters();
    for (name, help, v) in [
        (
            "modelrunner_model_loads_total",
            "Runners started and ready.",
            c.loads,
        ),
        (
            "modelrunner_model_load_failures_total",
            "Runner starts that failed.",
            c.load_failures,
        ),
        (
            "modelrunner_model_unloads_total",
            "Runners stopped on purpose (idle, evicted, asked).",
            c.unloads,
        ),
    ] {
        gauge_header(&mut out, name, "counter", help);
        let _ = writeln!(out, "{name} {v}");
    }
    gauge_header(
        &mut out,
        "modelrunner_runner_crashes_total",
        "counter",
        "Runners that exited by themselves or hung and were killed.",
    );
    let _ = writeln!(
        out,
        "modelrunner_runner_crashes_total{{kind=\"exit\"}} {}",
        c.crashes
    );
    let _ = writeln!(
        out,
        "modelrunner_runner_crashes_total{{kind=\"hang\"}} {}",
        c.hangs
    );
    let (pulled, pushed) = state.registry.bytes();
    gauge_header(
        &mut out,
        "modelrunner_registry_pull_bytes_total",
        "counter",
        "Blob bytes downloaded from registries.",
    );
    let _ = writeln!(out, "modelrunner_registry_pull_bytes_total {pulled}");
    gauge_header(
        &mut out,
        "modelrunner_registry_push_bytes_total",
        "counter",
        "Blob bytes uploaded to registries.",
    );
    let _ = writeln!(out, "modelrunner_registry_push_bytes_total {pushed}");
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_are_cumulative() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(5.0);
        let mut out = String::new();
        h.render(&mut out, "x", "model=\"m\"");
        assert!(
            out.contains("x_bucket{model=\"m\",le=\"0.1\"} 1\n"),
            "{out}"
        );
        assert!(out.contains("x_bucket{model=\"m\",le=\"1\"} 2\n"), "{out}");
        assert!(
            out.contains("x_bucket{model=\"m\",le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("x_count{model=\"m\"} 3\n"), "{out}");
        assert_eq!(label("a\"b"), "a\\\"b");
    }
}
