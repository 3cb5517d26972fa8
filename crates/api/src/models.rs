//! `/models`: list, inspect, tag, delete, load, export, purge.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};

use crate::extract::ApiQuery;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::TryStreamExt;
use modelrunner_format::Reference;
use modelrunner_store::LoadLimits;
use serde_json::{json, Value};
use tokio_util::io::{StreamReader, SyncIoBridge};
use tracing::instrument;

use crate::wire::ModelJson;
use crate::{blocking, ApiError, AppState};

/// `GET /models`.
pub(crate) async fn list_models(
    State(state): State<AppState>,
) -> Result<Json<Vec<ModelJson>>, ApiError> {
    let store = state.store.clone();
    let models = blocking(move || store.list().map_err(ApiError::from)).await?;
    Ok(Json(models.iter().map(ModelJson::from).collect()))
}

/// `GET /models/{name}` and `GET /models/{name}/export`.
pub(crate) async fn get_or_export(
    State(state): State<AppState>,
    Path(rest): Path<String>,
    ApiQuery(q): ApiQuery<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let remote = q
        .get("remote")
        .is_some_and(|v| v.is_empty() || v == "true" || v == "1");
    if remote && !rest.ends_with("/export") {
        return crate::registry::inspect_remote(state, rest)
            .await
            .map(IntoResponse::into_response);
    }
    match rest.strip_suffix("/export") {
        Some(name) => export_model(state, name.to_string()).await,
        None => get_model(state, rest)
            .await
            .map(IntoResponse::into_response),
    }
}

#[instrument(skip_all, fields(model = %name))]
async fn get_model(state: AppState, name: String) -> Result<Json<ModelJson>, ApiError> {
    let store = state.store.clone();
    let m = blocking(move || store.resolve_partial(&name).map_err(ApiError::from)).await?;
    Ok(Json(ModelJson::from(&m)))
}

fn file_name_for(reference: &str) -> String {
    reference
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The archive's bytes, sent to the response body as they are written; a failure is
/// sent as the body's error, which ends the response before its `Content-Length`.
struct ChunkWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<axum::body::Bytes>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = axum::body::Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(1 << 20),
        ));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client left"))
    }
}

impl std::io::Write for ChunkWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= 1 << 20 {
            self.send()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

/// `GET /models/{name}/export`: a tar archive with its exact `Content-Length`. What can
/// be checked before the first byte (the model, every blob there with its size) is an
/// error status; a blob found damaged while it is sent ends the response short of its
/// length, which every HTTP client reports as an error.
#[instrument(skip_all, fields(model = %name))]
async fn export_model(state: AppState, name: String) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let lookup = name.clone();
    let (model, len) = blocking(move || {
        let model = store.resolve_partial(&lookup)?;
        let len = store.export_len(&model.id.to_string())?;
        Ok((model, len))
    })
    .await?;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let store = state.store.clone();
    let id = model.id.to_string();
    tokio::task::spawn_blocking(move || {
        let mut out = ChunkWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(1 << 20),
        };
        let done = store
            .export(&id, &mut out)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                std::io::Write::flush(&mut out).map_err(|e| format!("sending the archive: {e}"))
            });
        if let Err(e) = done {
            tracing::warn!(model = %id, cause = %e, "export failed mid-stream; the response ends short of its length");
            let _ = tx.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    let filename = file_name_for(model.tags.first().map_or(&name, |t| t));
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}.tar\""),
            ),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|chunk| (chunk, rx))
        })),
    )
        .into_response())
}

/// `POST /models/{name}/tag?repo=&tag=`.
pub(crate) async fn post_model_action(
    State(state): State<AppState>,
    Path(rest): Path<String>,
    ApiQuery(q): ApiQuery<HashMap<String, String>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    if let Some(name) = rest.strip_suffix("/push") {
        return crate::registry::push(state, headers, name.to_string(), body).await;
    }
    let Some(name) = rest.strip_suffix("/tag") else {
        return Err(ApiError::not_found(format!(
            "no route for POST /models/{rest}"
        )));
    };
    let repo = q
        .get("repo")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("repo is required").param("repo"))?;
    let tag = q
        .get("tag")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request("tag is required").param("tag"))?;
    let target: Reference = format!("{repo}:{tag}")
        .parse()
        .map_err(|e: modelrunner_format::FormatError| ApiError::from(e).param("repo"))?;
    let source = name.to_string();
    let store = state.store.clone();
    let t = target.clone();
    blocking(move || {
        let m = store.resolve_partial(&source)?;
        store.tag(&m.id.to_string(), &t).map_err(ApiError::from)
    })
    .await?;
    let shown = format!("{repo}:{tag}");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "message": format!("Model tagged successfully with {shown:?}"),
            "target": shown,
        })),
    )
        .into_response())
}

/// `DELETE /models/{name}[?force]`.
pub(crate) async fn delete_model(
    State(state): State<AppState>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Json<Vec<Value>>, ApiError> {
    let force = q.unwrap_or_default().split('&').any(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        k == "force" && !matches!(v, "false" | "0")
    });
    let store = state.store.clone();
    let out = blocking(move || store.delete(&name, force).map_err(ApiError::from)).await?;
    let mut body: Vec<Value> = out
        .untagged
        .iter()
        .map(|t| json!({ "Untagged": t }))
        .collect();
    if let Some(id) = out.deleted {
        // Idle runners of a deleted model go too; busy ones finish their requests (their
        // files are hard links and stay readable) and then idle out.
        state
            .scheduler
            .unload(modelrunner_scheduler::Unload::Models(vec![id.to_string()]))
            .await;
        body.push(json!({ "Deleted": id.to_string() }));
    }
    Ok(Json(body))
}

/// What `POST /models/load` was asked to link: `?link=PATH` (repeatable) names a GGUF
/// file on the daemon's machine that the archive leaves out; `allow_copy=true` copies one
/// that cannot be linked.
fn link_request(query: Option<&str>) -> Result<(Vec<std::path::PathBuf>, bool), ApiError> {
    let mut links = Vec::new();
    let mut allow_copy = false;
    for (k, v) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match &*k {
            "link" => links.push(std::path::PathBuf::from(&*v)),
            "allow_copy" => {
                allow_copy = match &*v {
                    "" | "true" | "1" => true,
                    "false" | "0" => false,
                    _ => {
                        return Err(ApiError::invalid(
                            "allow_copy",
                            format!("allow_copy must be true or false, not {v:?}"),
                        ))
                    }
                }
            }
            _ => {}
        }
    }
    Ok((links, allow_copy))
}

/// `POST /models/load`: a model archive in the body, its large layers optionally
/// linked from files on this machine (local requests only).
#[instrument(skip_all)]
pub(crate) async fn load_model(
    State(state): State<AppState>,
    peer: Option<axum::Extension<crate::serve::Peer>>,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let (links, allow_copy) = link_request(query.as_deref())?;
    if !links.is_empty() && !peer.is_some_and(|p| p.local) {
        drain(StreamReader::new(
            body.into_data_stream().map_err(std::io::Error::other),
        ))
        .await;
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            crate::ErrorKind::Permission,
            "link names a file on the daemon's machine, which only a local client (a Unix socket or loopback) may ask for; send the file in the archive instead",
        )
        .code("link_not_local")
        .param("link"));
    }
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = SyncIoBridge::new(StreamReader::new(stream));
    let store = state.store.clone();
    let limits = LoadLimits {
        max_total: state.config.load_limit,
    };
    let (result, reader) = tokio::task::spawn_blocking(move || {
        let mut reader = std::io::BufReader::with_capacity(1 << 20, reader);
        let result = store.load_archive_linking(&mut reader, limits, &links, allow_copy);
        (result, reader.into_inner())
    })
    .await
    .map_err(ApiError::internal)?;
    let (m, linked) = match result {
        Ok(m) => m,
        Err(e) => {
            drain(reader.into_inner()).await;
            return Err(e.into());
        }
    };
    let line = json!({
        "type": "success",
        "message": format!("Loaded model {}", m.id),
        "id": m.id.to_string(),
        "linked": linked,
    });
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        format!("{line}\n"),
    )
        .into_response())
}

/// Reads and discards what is left of a rejected upload, for at most
/// [`DRAIN_TIME`], before the error goes out. A server that closes a
/// socket with unread bytes sends a reset, and the client, still writing,
/// would see "broken pipe" instead of the reason.
async fn drain(mut reader: impl tokio::io::AsyncRead + Unpin) {
    let mut sink = tokio::io::sink();
    let copy = tokio::io::copy(&mut reader, &mut sink);
    match tokio::time::timeout(DRAIN_TIME, copy).await {
        Ok(Ok(n)) => tracing::debug!(bytes = n, "drained a rejected upload"),
        Ok(Err(e)) => tracing::debug!(error = %e, "rejected upload ended"),
        Err(_) => tracing::debug!("stopped draining a rejected upload"),
    }
}

/// How long [`drain`] reads before giving up on a client.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(10);

/// `DELETE /models/purge`.
pub(crate) async fn purge_models(State(state): State<AppState>) -> Result<StatusCode, ApiError> {
    state
        .scheduler
        .unload(modelrunner_scheduler::Unload::All)
        .await;
    let store = state.store.clone();
    blocking(move || store.purge().map_err(ApiError::from)).await?;
    Ok(StatusCode::OK)
}
