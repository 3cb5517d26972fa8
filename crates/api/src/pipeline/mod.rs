//! The one generation pipeline behind every dialect. A dialect decodes its request into
//! a [`Generation`] (the model, and one internal request per choice), [`start`] checks it
//! once, resolves the model, acquires a runner slot per choice and waits for each
//! choice's first event (so a request the runner refuses is an error status, not a
//! broken stream), and [`respond::respond`] turns the events into the dialect's answer,
//! collected or streamed, through the dialect's [`respond::Encoder`].

pub(crate) mod respond;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use futures::stream::BoxStream;
use futures::StreamExt;
use modelrunner_protocol::{Event, GenerateRequest, Mode, RunnerClient, RunnerError};
use modelrunner_scheduler::{KeepAlive, ModelSpec, RunnerGuard};
use tracing::warn;

use crate::resolve::model_spec;
use crate::{ApiError, AppState};

/// A new ID for a response, message or item: `prefix`, `sep`, then hex digits that no
/// other ID of this daemon shares (the time in nanoseconds and a counter).
pub(crate) fn unique_id(prefix: &str, sep: char) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(
        "{prefix}{sep}{:012x}{:06x}",
        now.as_nanos() & 0xffff_ffff_ffff,
        n & 0xff_ffff
    )
}

/// Seconds since the Unix epoch.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// One request to generate, as every dialect decodes it.
#[derive(Debug, Clone)]
pub(crate) struct Generation {
    /// The model, as the client named it.
    pub model: String,
    /// How long the model stays loaded after this request (from now on).
    pub keep_alive: Option<KeepAlive>,
    /// One internal request per choice (several prompts, or `n`).
    pub choices: Vec<GenerateRequest>,
    /// The dialect's names for internal parameters that it calls otherwise, for errors
    /// (`("logprobs", "top_logprobs")`).
    pub params: &'static [(&'static str, &'static str)],
}

/// A generation whose choices all started: their runner slots and event streams.
pub(crate) struct Running {
    /// Held until the answer is complete; dropping one frees its slot.
    guards: Vec<RunnerGuard>,
    streams: Vec<BoxStream<'static, Event>>,
}

impl Running {
    /// The client of the runner this generation runs on (for token IDs into text).
    pub fn client(&self) -> RunnerClient {
        let guard = self.guards.first().expect("a generation has a choice");
        guard.client().clone()
    }
}

/// Acquires the model's runner and runs `op` on it. A runner that cannot be reached (it
/// crashed between requests and its supervisor has not noticed yet) or that stops
/// before answering is retired and the operation tried once more on a fresh one, so
/// that a crash costs only the requests that were running in it.
pub(crate) async fn on_runner<T, Fut>(
    state: &AppState,
    spec: &ModelSpec,
    keep_alive: Option<KeepAlive>,
    op: impl Fn(RunnerClient) -> Fut,
) -> Result<(RunnerGuard, T), ApiError>
where
    Fut: Future<Output = Result<T, RunnerError>>,
{
    let mut retried = false;
    loop {
        let guard = state.scheduler.acquire(spec, keep_alive).await?;
        match op(guard.client().clone()).await {
            Ok(v) => return Ok((guard, v)),
            Err(e) if e.is_runner_gone() && !retried => {
                warn!(model = %spec.name, cause = %e, "runner gone; loading it again");
                guard.retire();
                retried = true;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Starts one choice and waits for its first event: a refusal is an error, a runner
/// that is gone before its first token can be replaced.
async fn first_event(
    client: RunnerClient,
    req: &GenerateRequest,
    state: &AppState,
    model: &str,
) -> Result<BoxStream<'static, Event>, RunnerError> {
    let started = Instant::now();
    let events = client.generate(req).await?;
    let mut events = state.metrics.observe(model, started, events).boxed();
    match events.next().await {
        Some(Event::Error { error }) => Err(error),
        Some(first) => Ok(futures::stream::iter([first]).chain(events).boxed()),
        None => Err(RunnerError::Interrupted {
            message: "the runner ended the stream without a result".into(),
        }),
    }
}

/// Loads the model (Docker's `X-Preload-Only`) without generating.
pub(crate) async fn preload(
    state: &AppState,
    model: &str,
    mode: Mode,
    keep_alive: Option<KeepAlive>,
) -> Result<(), ApiError> {
    let spec = model_spec(state, model, mode).await?;
    state.scheduler.acquire(&spec, keep_alive).await?;
    Ok(())
}

/// Checks every choice (the one validation of a request, with the protocol's limits),
/// resolves the model and starts every choice on it.
pub(crate) async fn start(state: &AppState, gen: &Generation) -> Result<Running, ApiError> {
    // The dialect's name for an internal parameter.
    let theirs = |param: &str| match gen.params.iter().find(|(ours, _)| *ours == param) {
        Some((_, theirs)) => (*theirs).to_string(),
        None => param.to_string(),
    };
    for c in &gen.choices {
        c.validate().map_err(|e| match e {
            RunnerError::InvalidParam { param, message } => RunnerError::InvalidParam {
                param: theirs(&param),
                message,
            },
            other => other,
        })?;
    }
    let spec = model_spec(state, &gen.model, Mode::Completion).await?;
    let mut guards = Vec::with_capacity(gen.choices.len());
    let mut streams = Vec::with_capacity(gen.choices.len());
    for req in &gen.choices {
        // What only the model can refuse (a grammar) is named as the dialect calls it.
        let (g, s) = on_runner(state, &spec, gen.keep_alive, |c| {
            first_event(c, req, state, &spec.name)
        })
        .await
        .map_err(|e| e.rename_param(theirs))?;
        guards.push(g);
        streams.push(s);
    }
    Ok(Running { guards, streams })
}
