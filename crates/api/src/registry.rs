//! Pull (`POST /models/create`), push (`POST /models/{name}/push`) and remote inspect
//! (`GET /models/{name}?remote=true`), with Docker Model Runner's progress stream.
//!
//! Everything that has an HTTP status (bad reference, not found, unauthorized,
//! unsupported media type) is settled before the stream starts; later failures arrive
//! as a `type: error` line, since the status is 200 by then.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use modelrunner_format::config::ParsedConfig;
use modelrunner_format::{Manifest, Reference};
use modelrunner_registry::progress::Sink;
use modelrunner_registry::{is_hub, Kind, Mode, Progress, RegistryError};
use serde::Deserialize;
use tokio::sync::mpsc;
use tracing::{info, instrument, warn, Instrument};

use crate::extract::ApiJson;
use crate::wire::ModelJson;
use crate::{blocking, ApiError, AppState};

/// `POST /models/create` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateRequest {
    from: String,
    #[serde(default, rename = "bearer-token")]
    bearer_token: Option<String>,
}

/// `POST /models/{name}/push` body (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PushRequest {
    #[serde(default, rename = "bearer-token")]
    bearer_token: Option<String>,
}

fn parse_reference(s: &str, param: &str) -> Result<Reference, ApiError> {
    s.parse::<Reference>()
        .map_err(|e| ApiError::from(e).param(param))
}

fn bearer(t: Option<String>) -> Option<String> {
    t.filter(|t| !t.trim().is_empty())
}

/// `POST /models/create`: pull a model.
#[instrument(skip_all, fields(from = %req.from))]
pub(crate) async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CreateRequest>,
) -> Result<Response, ApiError> {
    let t = start_pull(state, &req.from, "from", bearer(req.bearer_token)).await?;
    Ok(progress_response(&headers, t.rx, t.guard))
}

/// A started transfer.
pub(crate) struct Transfer {
    /// Its progress lines; a failure is the last, of kind error.
    pub rx: mpsc::UnboundedReceiver<Progress>,
    /// Cancels it when dropped.
    pub guard: AbortOnDrop,
    /// The blobs it moves (or finds already there), as the manifest lists them.
    pub blobs: Vec<modelrunner_format::Descriptor>,
}

/// A pull of `from` (named `param` in errors), started once the registry has answered
/// for the manifest.
pub(crate) async fn start_pull(
    state: AppState,
    from: &str,
    param: &str,
    token: Option<String>,
) -> Result<Transfer, ApiError> {
    let reference = parse_reference(from, param)?;
    if is_hub(&reference) {
        return start_hub_pull(state, reference, token).await;
    }
    let mut resolved = state.registry.resolve(&reference, token).await?;
    // Refusals (a manifest that contradicts the store) get their status before streaming.
    state
        .registry
        .check_stored(&state.store, &mut resolved)
        .await?;
    info!(reference = %reference, digest = %resolved.remote.digest, "pulling");
    let blobs = resolved.manifest.blobs().cloned().collect();
    let (rx, guard) = spawn_transfer(Mode::Pull, move |sink| async move {
        state
            .registry
            .pull(&state.store, resolved, &reference, sink)
            .await
    });
    Ok(Transfer { rx, guard, blobs })
}

/// A pull from the Hugging Face Hub, started once the Hub has listed the files chosen.
async fn start_hub_pull(
    state: AppState,
    reference: Reference,
    token: Option<String>,
) -> Result<Transfer, ApiError> {
    let resolved = state.registry.resolve_hub(&reference, token).await?;
    info!(reference = %reference, commit = %resolved.commit, quant = %resolved.quant, "pulling from the Hub");
    let blobs = resolved.descriptors();
    let (rx, guard) = spawn_transfer(Mode::Pull, move |sink| async move {
        state
            .registry
            .pull_hub(&state.store, resolved, &reference, sink)
            .await
    });
    Ok(Transfer { rx, guard, blobs })
}

/// Pulls `name`, which the store lacks, for its use: a request's (`--pull-on-first-use`,
/// before the request goes on) or the start-up's (`--preload`, progress to `sink`). The
/// pull policy applies (resolving checks it); a model larger than `limit` is refused; a
/// name that is no reference keeps the `missing` error.
pub(crate) async fn pull_for_use(
    state: &AppState,
    name: &str,
    limit: Option<u64>,
    missing: ApiError,
    sink: Sink,
) -> Result<(), ApiError> {
    let limit = limit.unwrap_or(u64::MAX);
    let Ok(reference) = name.parse::<Reference>() else {
        return Err(missing);
    };
    let too_big = |size: u64| {
        let f = modelrunner_format::gguf::format_bytes;
        ApiError::new(
            axum::http::StatusCode::FORBIDDEN,
            crate::ErrorKind::Permission,
            format!(
                "{name} is not in the store, and at {} it is larger than the {} a pull on first use may fetch (--pull-on-first-use); pull it with `modelrunner pull {name}`",
                f(size),
                f(limit)
            ),
        )
        .param("model")
        .code("pull_too_large")
    };
    let at = |e: RegistryError| ApiError::from(e).param("model");
    info!(%reference, "not in the store: pulling on first use");
    if is_hub(&reference) {
        let resolved = state
            .registry
            .resolve_hub(&reference, None)
            .await
            .map_err(at)?;
        let size = resolved.files().map(|f| f.size).sum();
        if size > limit {
            return Err(too_big(size));
        }
        let reg = &state.registry;
        reg.pull_hub(&state.store, resolved, &reference, sink)
            .await
            .map_err(at)?;
    } else {
        let resolved = state.registry.resolve(&reference, None).await.map_err(at)?;
        if resolved.total() > limit {
            return Err(too_big(resolved.total()));
        }
        let reg = &state.registry;
        reg.pull(&state.store, resolved, &reference, sink)
            .await
            .map_err(at)?;
    }
    Ok(())
}

/// Refuses what only OCI registries do (push, remote inspect) for a Hub reference.
fn not_on_hub(reference: &Reference, what: &str, param: &str) -> Result<(), ApiError> {
    if is_hub(reference) {
        return Err(ApiError::bad_request(format!(
            "{reference} is on the Hugging Face Hub, which is not an OCI registry: {what} works with OCI registries only"
        ))
        .param(param));
    }
    Ok(())
}

/// `POST /models/{name}/push`: push a stored model under its name.
#[instrument(skip_all, fields(model = %name))]
pub(crate) async fn push(
    state: AppState,
    headers: HeaderMap,
    name: String,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: PushRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PushRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    let t = start_push(state, &name, "name", bearer(req.bearer_token)).await?;
    Ok(progress_response(&headers, t.rx, t.guard))
}

/// A push of the stored model `name` (named `param` in errors) under that name, started
/// once the registry has accepted the credentials.
pub(crate) async fn start_push(
    state: AppState,
    name: &str,
    param: &str,
    token: Option<String>,
) -> Result<Transfer, ApiError> {
    let target = parse_reference(name, param)?;
    not_on_hub(&target, "push", param)?;
    let store = state.store.clone();
    let lookup = name.to_string();
    let (model, manifest) = blocking(move || {
        let m = store.resolve(&lookup)?;
        let bytes = store.manifest_bytes(&m.id)?;
        Ok((m, bytes))
    })
    .await?;
    let others: Vec<Reference> = model.tags.iter().filter_map(|t| t.parse().ok()).collect();
    // Settle authentication before streaming, so refusals get their status.
    let session = state.registry.session(&target, true, token.clone()).await?;
    let parsed = Manifest::parse(&manifest)?;
    session.has_blob(&parsed.config.digest).await?;
    let blobs = parsed.blobs().cloned().collect();
    let (rx, guard) = spawn_transfer(Mode::Push, move |sink| async move {
        state
            .registry
            .push(&state.store, manifest, &target, &others, token, sink)
            .await
    });
    Ok(Transfer { rx, guard, blobs })
}

/// `GET /models/{name}?remote=true`: the registry's manifest and config, not pulled.
#[instrument(skip_all, fields(model = %name))]
pub(crate) async fn inspect_remote(
    state: AppState,
    name: String,
) -> Result<Json<ModelJson>, ApiError> {
    let reference = parse_reference(&name, "name")?;
    not_on_hub(&reference, "remote inspection", "name")?;
    let resolved = state.registry.resolve(&reference, None).await?;
    let config = resolved
        .session
        .small_blob(&resolved.manifest.config)
        .await?;
    let parsed = ParsedConfig::parse(&resolved.manifest.config.media_type, &config)?;
    Ok(Json(ModelJson {
        id: resolved.remote.digest.to_string(),
        tags: vec![reference.to_string()],
        created: parsed.created.map_or(0, |c| c.timestamp()),
        config: parsed.config,
    }))
}

/// Runs a transfer in its own task: its progress lines (a failure is the last, of kind
/// error), and the guard that cancels it when dropped.
pub(crate) fn spawn_transfer<F, Fut, T>(
    mode: Mode,
    run: F,
) -> (mpsc::UnboundedReceiver<Progress>, AbortOnDrop)
where
    F: FnOnce(Sink) -> Fut,
    Fut: std::future::Future<Output = Result<T, RegistryError>> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let transfer = run(Some(tx.clone()));
    let task = tokio::spawn(
        async move {
            transfer.await.map(|_| ()).map_err(|e| {
                warn!(cause = %e, ?mode, "transfer failed");
                let _ = tx.send(Progress::plain(Kind::Error, mode, e.to_string()));
            })
        }
        .in_current_span(),
    );
    (rx, AbortOnDrop(task))
}

/// Aborts the transfer when the client goes away (the stream is dropped). A pull's
/// partial downloads stay behind, invisible and resumable.
pub(crate) struct AbortOnDrop(tokio::task::JoinHandle<Result<(), ()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if !self.0.is_finished() {
            info!("the client went away; cancelling the transfer");
            self.0.abort();
        }
    }
}

/// Newline-delimited progress lines: JSON when the client accepts it, else the same
/// lines HTML-escaped as `text/plain` (what Docker's CLI expects).
fn progress_response(
    headers: &HeaderMap,
    rx: mpsc::UnboundedReceiver<Progress>,
    guard: AbortOnDrop,
) -> Response {
    let json = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json"));
    // While the registry is silent the last line is repeated every second: a client
    // that went away is only noticed when a write fails, and that cancels the pull.
    let state = (rx, guard, None::<Bytes>);
    let lines = futures::stream::unfold(state, move |(mut rx, guard, last)| async move {
        let line = match tokio::time::timeout(HEARTBEAT, rx.recv()).await {
            Ok(Some(p)) => {
                let mut line = serde_json::to_string(&p).expect("progress serialises");
                if !json {
                    line = html_escape(&line);
                }
                line.push('\n');
                Bytes::from(line)
            }
            Ok(None) => return None,
            Err(_) => last.clone().unwrap_or_else(|| Bytes::from_static(b"\n")),
        };
        Some((
            Ok::<_, std::convert::Infallible>(line.clone()),
            (rx, guard, Some(line)),
        ))
    });
    let content_type = if json {
        "application/json"
    } else {
        "text/plain; charset=utf-8"
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(lines.boxed()),
    )
        .into_response()
}

/// How often a silent transfer repeats its last progress line.
pub(crate) const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(1);

/// Go's `html.EscapeString`.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_escape_like_go() {
        assert_eq!(
            super::html_escape(r#"{"a":"<b>&'"}"#),
            "{&#34;a&#34;:&#34;&lt;b&gt;&amp;&#39;&#34;}"
        );
    }
}
