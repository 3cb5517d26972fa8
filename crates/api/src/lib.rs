//! The HTTP API of `modelrunnerd`: OpenAI-compatible inference (`/v1`, `/engines/v1`,
//! `/engines/llama.cpp/v1`), Docker Model Runner's model-management and engine routes with
//! its JSON shapes, errors in OpenAI's envelope, body limits and a Host check against DNS
//! rebinding.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<modelrunner_store::Store>) {
//! use modelrunner_api::{router, ApiConfig, AppState};
//! use modelrunner_scheduler::{Scheduler, SchedulerConfig};
//! let scheduler = Scheduler::new(SchedulerConfig::default()).unwrap();
//! let registry = modelrunner_registry::Registry::new(Default::default()).unwrap();
//! let app = router(AppState::new(store, scheduler, ApiConfig::default(), registry));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! let limits = modelrunner_api::ConnLimits::default();
//! modelrunner_api::run(listener, app, limits, std::future::pending()).await.unwrap();
//! # }
//! ```
#![deny(missing_docs)]

mod anthropic;
mod dialect;
mod engines;
mod error;
mod extract;
mod fim;
mod host;
mod id_cache;
mod llama;
pub mod logs;
mod metrics;
mod misc;
mod models;
pub mod models_dir;
mod ollama;
mod openai;
mod pipeline;
pub mod preload;
mod registry;
mod resolve;
mod responses;
mod routes;
pub mod security;
mod serve;
mod ui;
mod wire;

use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use modelrunner_registry::Registry;
use modelrunner_scheduler::Scheduler;
use modelrunner_store::Store;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

pub use error::{ApiError, ErrorKind};
pub use responses::Limits as ResponsesLimits;
pub use serve::ConnLimits;
pub use wire::ModelJson;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest JSON request body (413 beyond).
    pub body_limit: usize,
    /// Largest model archive accepted by `POST /models/load` (413 beyond).
    pub load_limit: u64,
    /// Pull a model a request names that is not stored, up to this many bytes.
    pub pull_on_first_use: Option<u64>,
    /// Refuse requests whose Host is not a loopback name (set while bound to loopback).
    pub loopback_hosts_only: bool,
    /// Digests of the accepted API keys; empty means no key is asked for.
    pub api_keys: Vec<security::KeyHash>,
    /// Origins allowed by CORS besides the loopback ones.
    pub cors_origins: Vec<String>,
    /// What becomes of reasoning when a request does not say.
    pub reasoning_format: modelrunner_protocol::ReasoningFormat,
    /// Where stored Responses live (`None`: in memory only).
    pub responses_dir: Option<std::path::PathBuf>,
    /// How many stored Responses are kept, in count, bytes and age.
    pub responses_limits: ResponsesLimits,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            body_limit: 16 << 20,
            load_limit: 1 << 40,
            pull_on_first_use: None,
            loopback_hosts_only: true,
            api_keys: Vec::new(),
            cors_origins: Vec::new(),
            reasoning_format: Default::default(),
            responses_dir: None,
            responses_limits: ResponsesLimits::default(),
        }
    }
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The model store (blocking; handlers use `spawn_blocking`).
    pub store: Arc<Store>,
    /// Runs the models.
    pub scheduler: Arc<Scheduler>,
    /// HTTP settings.
    pub config: Arc<ApiConfig>,
    /// Pulls and pushes.
    pub registry: Arc<Registry>,
    /// Request and token counters for `/metrics`.
    pub metrics: Arc<metrics::Metrics>,
    /// The daemon's recent log lines for `/logs`, when it keeps them.
    pub logs: Option<Arc<logs::LogBuffer>>,
    /// Model names resolved under the store's current index.
    resolved: Arc<resolve::Resolved>,
    /// Stored and background Responses.
    responses: Arc<responses::ResponsesState>,
    /// The start-up's pulls and loads, which `/health` waits for.
    preload: Arc<preload::Preload>,
}

impl AppState {
    /// State over a store, a scheduler and a registry client (for pulls and pushes).
    pub fn new(
        store: Arc<Store>,
        scheduler: Arc<Scheduler>,
        config: ApiConfig,
        registry: Registry,
    ) -> Self {
        let stored = responses::stored::Responses::open(
            config.responses_dir.clone(),
            config.responses_limits,
        );
        AppState {
            store,
            scheduler,
            responses: Arc::new(responses::ResponsesState::new(stored)),
            config: Arc::new(config),
            registry: Arc::new(registry),
            metrics: Default::default(),
            logs: None,
            resolved: Default::default(),
            preload: Default::default(),
        }
    }

    /// Serves the models of `models_dir` in place, pulls `prefetch` and pulls and loads
    /// `preload`, in the background; `/health` is 503 until they are done.
    pub fn preload(
        &self,
        models_dir: Option<std::path::PathBuf>,
        prefetch: Vec<String>,
        preload: Vec<String>,
    ) {
        // Empty entries name nothing: `MODELRUNNER_PRELOAD=""` (an empty ConfigMap value)
        // or a trailing comma means no model, not a model called "".
        let names = |v: Vec<String>| -> Vec<String> {
            v.into_iter()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        };
        preload::start(self, models_dir, names(prefetch), names(preload));
    }

    /// Serves `buffer` at `/logs`.
    pub fn with_logs(mut self, buffer: Arc<logs::LogBuffer>) -> Self {
        self.logs = Some(buffer);
        self
    }
}

/// Runs blocking store work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

/// Every route.
pub fn router(state: AppState) -> Router {
    let body_limit = state.config.body_limit;
    let mut app = Router::new();
    for (path, methods) in routes::routes() {
        app = app.route(&path, methods);
    }
    app.fallback(misc::no_route)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::count_requests,
        ))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::Extension(extract::BodyLimit(body_limit)))
        // zstd and gzip request bodies (Codex sends zstd); the limit above applies to
        // what they decompress to.
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            host::check_host,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::require_key,
        ))
        .layer(security::cors(&state.config.cors_origins))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(axum::middleware::from_fn(dialect::shape_errors))
        .layer(axum::middleware::from_fn(security::request_id))
        .with_state(state)
}

/// The span of one request: every log line inside carries its ID.
fn request_span(req: &axum::extract::Request) -> tracing::Span {
    let id = req
        .extensions()
        .get::<security::RequestId>()
        .map_or("-", |r| r.0.as_str());
    tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
}

/// Serves `app` on a Unix socket within `limits` until `shutdown` resolves.
pub async fn run_unix(
    listener: tokio::net::UnixListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve::serve(listener, app, limits, shutdown).await
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves.
pub async fn run(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Streams send one small frame per token: without TCP_NODELAY, Nagle's algorithm
    // holds a frame back until the previous one is acknowledged.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(cause = %e, "cannot set TCP_NODELAY");
        }
    });
    serve::serve(listener, app, limits, shutdown).await
}
