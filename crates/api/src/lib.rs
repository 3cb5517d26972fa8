//! The HTTP API of `modelrunnerd`: Docker Model Runner's model-management routes with its
//! JSON shapes, errors in OpenAI's envelope, body limits and a Host check against DNS
//! rebinding.
//!
//! ```no_run
//! # async fn demo(store: std::sync::Arc<modelrunner_store::Store>) {
//! use modelrunner_api::{router, ApiConfig, AppState};
//! let app = router(AppState::new(store, ApiConfig::default()));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
//! modelrunner_api::run(listener, app, std::future::pending()).await.unwrap();
//! # }
//! ```
#![deny(missing_docs)]

mod error;
mod host;
mod misc;
mod models;
mod wire;

use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use axum::Router;
use modelrunner_store::Store;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use wire::ModelJson;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest JSON request body (413 beyond).
    pub body_limit: usize,
    /// Largest model archive accepted by `POST /models/load` (413 beyond).
    pub load_limit: u64,
    /// Refuse requests whose Host is not a loopback name (set while bound to loopback).
    pub loopback_hosts_only: bool,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            body_limit: 16 << 20,
            load_limit: 1 << 40,
            loopback_hosts_only: true,
        }
    }
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The model store (blocking; handlers use `spawn_blocking`).
    pub store: Arc<Store>,
    /// HTTP settings.
    pub config: Arc<ApiConfig>,
}

impl AppState {
    /// State over a store.
    pub fn new(store: Arc<Store>, config: ApiConfig) -> Self {
        AppState {
            store,
            config: Arc::new(config),
        }
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
    Router::new()
        .route("/", get(misc::root))
        .route("/version", get(misc::version))
        .route("/health", get(misc::health))
        .route("/engines/df", get(misc::disk_usage))
        .route("/models", get(models::list_models))
        .route(
            "/models/load",
            post(models::load_model).layer(DefaultBodyLimit::disable()),
        )
        .route("/models/purge", delete(models::purge_models))
        .route(
            "/models/{*rest}",
            get(models::get_or_export)
                .post(models::post_model_action)
                .delete(models::delete_model),
        )
        .fallback(misc::no_route)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            host::check_host,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn run(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}
