//! The runner process: one model, served over a Unix socket to the daemon. A crash here
//! (a panic, a llama.cpp abort) ends only this process.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use modelrunner_template::{ChatTemplate, FALLBACK_TEMPLATE};
use serde_json::{json, Value};
use tokio_stream_compat::UnboundedReceiverStream;
use tracing::{info, warn};

use crate::engine::Engine;
use crate::error::EngineError;
use crate::protocol::{
    ChatRequest, DetokenizeRequest, EmbedRequest, GenerateRequest, Prompt, TokenizeRequest,
};
use crate::worker::{rss_bytes, EngineConfig};

/// How to start a runner.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The model and engine settings.
    pub engine: EngineConfig,
    /// Where to listen.
    pub socket: PathBuf,
    /// A chat template file (the bundle's), used before the GGUF's own.
    pub chat_template: Option<PathBuf>,
}

struct Runner {
    engine: Engine,
    template: ChatTemplate,
}

mod tokio_stream_compat {
    //! A `Stream` over an unbounded receiver, without pulling in tokio-stream.
    use std::pin::Pin;
    use std::task::{Context, Poll};

    pub struct UnboundedReceiverStream<T>(pub tokio::sync::mpsc::UnboundedReceiver<T>);

    impl<T> futures::Stream for UnboundedReceiverStream<T> {
        type Item = T;
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
            self.0.poll_recv(cx)
        }
    }
}

impl IntoResponse for EngineError {
    fn into_response(self) -> Response {
        let status = match &self {
            EngineError::InvalidParam { .. }
            | EngineError::ContextLength { .. }
            | EngineError::Template(_) => StatusCode::BAD_REQUEST,
            EngineError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let kind = match &self {
            EngineError::ContextLength { .. } => "context_length_exceeded",
            EngineError::InvalidParam { .. } => "invalid_param",
            EngineError::Busy { .. } => "busy",
            _ => "engine_error",
        };
        let mut body = json!({"error": {"message": self.to_string(), "code": kind}});
        if let EngineError::ContextLength { prompt, context } = &self {
            body["error"]["prompt_tokens"] = json!(prompt);
            body["error"]["context_tokens"] = json!(context);
        }
        if let EngineError::InvalidParam { param, message } = &self {
            body["error"]["param"] = json!(param);
            body["error"]["detail"] = json!(message);
        }
        (status, Json(body)).into_response()
    }
}

fn ndjson(rx: tokio::sync::mpsc::UnboundedReceiver<crate::protocol::Event>) -> Response {
    let stream = UnboundedReceiverStream(rx).map(|ev| {
        let mut line = serde_json::to_vec(&ev).expect("event serialises");
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(line)
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn generate(
    State(r): State<Arc<Runner>>,
    Json(req): Json<GenerateRequest>,
) -> Result<Response, EngineError> {
    Ok(ndjson(r.engine.generate(req)?))
}

impl Runner {
    fn render(&self, messages: &[Value], tools: Option<&Value>) -> Result<String, EngineError> {
        let p = self.engine.props();
        let mut ctx = json!({
            "messages": messages,
            "add_generation_prompt": true,
            "bos_token": p.bos_token,
            "eos_token": p.eos_token,
        });
        if let Some(t) = tools {
            ctx["tools"] = t.clone();
        }
        Ok(self.template.render(&ctx)?)
    }
}

async fn chat(
    State(r): State<Arc<Runner>>,
    Json(req): Json<ChatRequest>,
) -> Result<Response, EngineError> {
    let prompt = r.render(&req.messages, req.tools.as_ref())?;
    let add_special =
        r.engine.props().bos_token.is_empty() || !prompt.starts_with(&r.engine.props().bos_token);
    let gen = GenerateRequest {
        prompt: Prompt::Text(prompt),
        add_special,
        options: req.options,
    };
    Ok(ndjson(r.engine.generate(gen)?))
}

async fn apply_template(
    State(r): State<Arc<Runner>>,
    Json(req): Json<ChatRequest>,
) -> Result<Json<Value>, EngineError> {
    Ok(Json(
        json!({ "prompt": r.render(&req.messages, req.tools.as_ref())? }),
    ))
}

async fn tokenize(
    State(r): State<Arc<Runner>>,
    Json(req): Json<TokenizeRequest>,
) -> Result<Json<Value>, EngineError> {
    let tokens = r
        .engine
        .tokenize(req.content, req.add_special, true)
        .await?;
    Ok(Json(json!({ "tokens": tokens })))
}

async fn detokenize(
    State(r): State<Arc<Runner>>,
    Json(req): Json<DetokenizeRequest>,
) -> Result<Json<Value>, EngineError> {
    Ok(Json(
        json!({ "content": r.engine.detokenize(req.tokens).await? }),
    ))
}

async fn embeddings(
    State(r): State<Arc<Runner>>,
    Json(req): Json<EmbedRequest>,
) -> Result<Json<Value>, EngineError> {
    let out = r.engine.embed(req.input).await?;
    let data: Vec<Value> = out
        .into_iter()
        .map(|(v, n)| json!({"embedding": v, "tokens": n}))
        .collect();
    Ok(Json(json!({ "data": data })))
}

async fn props(State(r): State<Arc<Runner>>) -> Json<Value> {
    let mut p = r.engine.props().clone();
    p.rss_bytes = rss_bytes();
    Json(serde_json::to_value(p).expect("props serialise"))
}

async fn health() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The runner's routes.
fn router(r: Arc<Runner>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/props", get(props))
        .route("/generate", post(generate))
        .route("/chat", post(chat))
        .route("/apply-template", post(apply_template))
        .route("/tokenize", post(tokenize))
        .route("/detokenize", post(detokenize))
        .route("/embeddings", post(embeddings))
        .with_state(r)
}

/// Loads the model and serves until the parent goes away.
pub async fn serve(config: RunnerConfig) -> Result<(), EngineError> {
    let engine = Engine::load(config.engine.clone()).await?;
    let source = match &config.chat_template {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| EngineError::Load(format!("chat template {}: {e}", p.display())))?,
        None if !engine.props().chat_template.is_empty() => engine.props().chat_template.clone(),
        None => {
            warn!(model = %config.engine.model.display(), "the model has no chat template; using ChatML");
            FALLBACK_TEMPLATE.to_string()
        }
    };
    let template = match ChatTemplate::new(&source) {
        Ok(t) => t,
        Err(e) => {
            warn!(cause = %e, "the model's chat template does not compile; using ChatML");
            ChatTemplate::new(FALLBACK_TEMPLATE)?
        }
    };
    let _ = std::fs::remove_file(&config.socket);
    let listener = tokio::net::UnixListener::bind(&config.socket)
        .map_err(|e| EngineError::Load(format!("binding {}: {e}", config.socket.display())))?;
    info!(socket = %config.socket.display(), "runner ready");
    let app = router(Arc::new(Runner { engine, template }));
    let parent = std::os::unix::process::parent_id();
    let orphaned = async move {
        // PR_SET_PDEATHSIG is the main guard; this catches a parent that died before it
        // was set.
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            if std::os::unix::process::parent_id() != parent {
                info!("parent exited; runner stopping");
                return;
            }
        }
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(orphaned)
        .await
        .map_err(|e| EngineError::Runner(e.to_string()))
}
