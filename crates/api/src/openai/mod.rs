//! OpenAI-compatible inference: chat and text completions, embeddings, model listing,
//! and llama-server's helper routes, all under `/v1`, `/engines/v1` and
//! `/engines/llama.cpp/v1`.

pub(crate) mod chat;
pub(crate) mod completions;
pub(crate) mod embeddings;
pub(crate) mod helpers;
pub(crate) mod models;
pub(crate) mod request;
pub(crate) mod sse;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use std::future::Future;

use futures::{Stream, StreamExt};
use modelrunner_engine::protocol::TokenLogprob;
use modelrunner_engine::{EngineError, Event, FinishReason, RunnerClient, Usage};
use modelrunner_scheduler::{KeepAlive, ModelSpec, RunnerGuard};
use serde::Serialize;
use serde_json::{json, Value};
use tracing::warn;

use crate::metrics::Metrics;
use crate::{ApiError, AppState};

/// Acquires the model's runner and runs `op` on it. A runner that cannot be reached (it
/// crashed between requests and its supervisor has not noticed yet) is retired and the
/// operation tried once more on a fresh one, so that a crash costs only the requests
/// that were running in it.
pub(crate) async fn on_runner<T, Fut>(
    state: &AppState,
    spec: &ModelSpec,
    keep_alive: Option<KeepAlive>,
    op: impl Fn(RunnerClient) -> Fut,
) -> Result<(RunnerGuard, T), ApiError>
where
    Fut: Future<Output = Result<T, EngineError>>,
{
    let mut retried = false;
    loop {
        let guard = state.scheduler.acquire(spec, keep_alive).await?;
        match op(guard.client().clone()).await {
            Ok(v) => return Ok((guard, v)),
            Err(EngineError::Stopped(why)) if !retried => {
                warn!(model = %spec.name, cause = %why, "runner unreachable; loading it again");
                guard.retire();
                retried = true;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Starts a generation and waits for its first event, so that a request the engine
/// rejects (a prompt longer than the context, a grammar that does not compile) gets a
/// 400 rather than a stream that fails, and a runner that dies before its first token
/// can be replaced.
pub(crate) async fn start(
    client: RunnerClient,
    path: &'static str,
    body: impl Serialize,
    watch: (&Arc<Metrics>, &str),
) -> Result<impl Stream<Item = Event> + Send + 'static, EngineError> {
    let started = std::time::Instant::now();
    let s = watch
        .0
        .observe(watch.1, started, client.stream(path, &body).await?);
    let mut s = Box::pin(s);
    let first = s
        .next()
        .await
        .unwrap_or_else(|| Event::failure("the runner ended the stream without a result"));
    if first.is_rejection() {
        return Err(first.as_error().expect("an error event"));
    }
    if let Event::Error { message, .. } = &first {
        return Err(EngineError::Stopped(message.clone()));
    }
    Ok(futures::stream::iter([first]).chain(s))
}

/// Identity of one response, shared by its chunks.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub id: String,
    pub created: u64,
    pub model: String,
}

impl Meta {
    pub fn new(prefix: &str, model: &str) -> Meta {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Meta {
            id: format!(
                "{prefix}-{:x}{:06x}",
                now.as_nanos() & 0xffff_ffff_ffff,
                n & 0xff_ffff
            ),
            created: now.as_secs(),
            model: model.to_string(),
        }
    }
}

/// OpenAI's `usage`.
pub(crate) fn usage_json(u: &Usage) -> Value {
    json!({
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.prompt_tokens + u.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    })
}

/// Sums usages of several prompts.
pub(crate) fn add_usage(a: &mut Usage, b: &Usage) {
    a.prompt_tokens += b.prompt_tokens;
    a.cached_tokens += b.cached_tokens;
    a.completion_tokens += b.completion_tokens;
}

pub(crate) fn finish(f: FinishReason) -> &'static str {
    match f {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    }
}

/// Docker's `X-Preload-Only: true`: load the model and answer 200 with an empty body.
pub(crate) fn preload_only(headers: &HeaderMap) -> bool {
    headers
        .get("x-preload-only")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// A chat `logprobs.content` entry.
pub(crate) fn chat_logprob(text: &str, lp: f32, top: &[TokenLogprob]) -> Value {
    json!({
        "token": text,
        "logprob": lp,
        "bytes": text.as_bytes(),
        "top_logprobs": top.iter().map(|t| json!({
            "token": t.text, "logprob": t.logprob, "bytes": t.text.as_bytes()
        })).collect::<Vec<_>>(),
    })
}
