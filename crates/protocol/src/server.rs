//! The runner's side of the socket: the routes over a [`Service`], with errors and
//! events encoded exactly as [`crate::RunnerClient`] reads them.

use std::future::Future;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::error::RunnerError;
use crate::event::{
    answers, EmbedRequest, Embedding, Event, Props, RerankRequest, Score, TokenizeRequest,
};
use crate::request::{Chat, GenerateRequest};
use crate::routes;

/// What a runner does; the engine implements it.
pub trait Service: Send + Sync + 'static {
    /// What it serves (resident memory read now).
    fn props(&self) -> Props;
    /// Starts a generation; events arrive on the receiver, dropping it cancels.
    fn generate(&self, req: GenerateRequest) -> Result<UnboundedReceiver<Event>, RunnerError>;
    /// Renders a conversation with the model's chat template.
    fn apply_template(&self, chat: &Chat) -> Result<String, RunnerError>;
    /// Text into token IDs.
    fn tokenize(
        &self,
        req: TokenizeRequest,
    ) -> impl Future<Output = Result<Vec<i32>, RunnerError>> + Send;
    /// Token IDs into text.
    fn detokenize(
        &self,
        tokens: Vec<i32>,
    ) -> impl Future<Output = Result<String, RunnerError>> + Send;
    /// Embeddings, one per input.
    fn embed(
        &self,
        req: EmbedRequest,
    ) -> impl Future<Output = Result<Vec<Embedding>, RunnerError>> + Send;
    /// Relevance scores, one per document, in order.
    fn rerank(
        &self,
        req: RerankRequest,
    ) -> impl Future<Output = Result<Vec<Score>, RunnerError>> + Send;
}

/// A [`RunnerError`] as the runner answers it.
struct Failure(RunnerError);

impl From<RunnerError> for Failure {
    fn from(e: RunnerError) -> Self {
        Failure(e)
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            self.0.to_body(),
        )
            .into_response()
    }
}

/// A JSON body, refused in the runner's own error shape.
struct Input<T>(T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for Input<T> {
    type Rejection = Failure;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Failure> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| RunnerError::invalid("body", e.body_text()))?;
        serde_json::from_slice(&bytes)
            .map(Input)
            .map_err(|e| Failure(RunnerError::invalid("body", e.to_string())))
    }
}

fn ndjson(rx: UnboundedReceiver<Event>) -> Response {
    let stream = futures::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|ev| (ev, rx)) },
    )
    .map(|ev| Ok::<_, std::convert::Infallible>(ev.to_line()));
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn health() -> Json<answers::Health> {
    Json(answers::Health {
        status: "ok".into(),
    })
}

async fn props<S: Service>(State(s): State<Arc<S>>) -> Json<Props> {
    Json(s.props())
}

async fn generate<S: Service>(
    State(s): State<Arc<S>>,
    Input(req): Input<GenerateRequest>,
) -> Result<Response, Failure> {
    Ok(ndjson(s.generate(req)?))
}

async fn apply_template<S: Service>(
    State(s): State<Arc<S>>,
    Input(chat): Input<answers::Template>,
) -> Result<Json<answers::Rendered>, Failure> {
    Ok(Json(answers::Rendered {
        prompt: s.apply_template(&chat)?,
    }))
}

async fn tokenize<S: Service>(
    State(s): State<Arc<S>>,
    Input(req): Input<TokenizeRequest>,
) -> Result<Json<answers::Tokens>, Failure> {
    Ok(Json(answers::Tokens {
        tokens: s.tokenize(req).await?,
    }))
}

async fn detokenize<S: Service>(
    State(s): State<Arc<S>>,
    Input(req): Input<answers::Detokenize>,
) -> Result<Json<answers::Content>, Failure> {
    Ok(Json(answers::Content {
        content: s.detokenize(req.tokens).await?,
    }))
}

async fn embed<S: Service>(
    State(s): State<Arc<S>>,
    Input(req): Input<EmbedRequest>,
) -> Result<Json<answers::Embeddings>, Failure> {
    Ok(Json(answers::Embeddings {
        data: s.embed(req).await?,
    }))
}

async fn rerank<S: Service>(
    State(s): State<Arc<S>>,
    Input(req): Input<RerankRequest>,
) -> Result<Json<answers::Scores>, Failure> {
    Ok(Json(answers::Scores {
        data: s.rerank(req).await?,
    }))
}

/// Largest request body the runner reads. Only the daemon talks to it, over a private
/// socket, after its own body limit (16 MiB by default) and template rendering, which may
/// make a request larger than the client's; the runner must never refuse what the daemon
/// accepted (its context check answers for prompts that are merely too long).
pub const MAX_BODY: usize = 1 << 30;

/// The runner's routes over `service`.
pub fn router<S: Service>(service: Arc<S>) -> Router {
    Router::new()
        .route(routes::HEALTH, get(health))
        .route(routes::PROPS, get(props::<S>))
        .route(routes::GENERATE, post(generate::<S>))
        .route(routes::APPLY_TEMPLATE, post(apply_template::<S>))
        .route(routes::TOKENIZE, post(tokenize::<S>))
        .route(routes::DETOKENIZE, post(detokenize::<S>))
        .route(routes::EMBED, post(embed::<S>))
        .route(routes::RERANK, post(rerank::<S>))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(service)
}

/// Serves `service` on `listener` until `shutdown` resolves.
pub async fn serve<S: Service>(
    listener: tokio::net::UnixListener,
    service: Arc<S>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(service))
        .with_graceful_shutdown(shutdown)
        .await
}
