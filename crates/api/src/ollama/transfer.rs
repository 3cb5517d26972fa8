//! `POST /api/pull` and `POST /api/push` on this daemon's registry client, with Ollama's
//! progress lines (`pulling <12 hex>` with `digest`, `total` and `completed`, then
//! `verifying sha256 digest`, `writing manifest`, `success`), streamed by default;
//! `stream: false` answers with the last line only. What has a status (a bad name, an
//! unknown model, refused credentials) is settled before the first line; a later
//! failure is a last `{"error"}` line.

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use modelrunner_registry::{Kind, Mode, Progress};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;
use tracing::instrument;

use super::decode::{flag, string};
use super::encode::{json_response, line};
use crate::extract::ApiJson;
use crate::registry::{start_pull, start_push, Transfer, HEARTBEAT};
use crate::{ApiError, AppState};

/// A layer's line: `pulling <12 hex>` with its figures (zeros left out).
fn layer(mode: Mode, digest: &str, size: u64, current: u64) -> Value {
    let verb = match mode {
        Mode::Pull => "pulling",
        Mode::Push => "pushing",
    };
    let hex = digest.trim_start_matches("sha256:");
    let mut v =
        json!({"status": format!("{verb} {}", &hex[..hex.len().min(12)]), "digest": digest});
    if size > 0 {
        v["total"] = json!(size);
    }
    if current > 0 {
        v["completed"] = json!(current);
    }
    v
}

/// One of our progress lines as Ollama's.
fn lines(p: &Progress) -> Vec<Value> {
    match p.kind {
        Kind::Progress if !p.layer.id.is_empty() => {
            vec![layer(p.mode, &p.layer.id, p.layer.size, p.layer.current)]
        }
        Kind::Progress | Kind::Warning => vec![json!({ "status": p.message })],
        Kind::Success => match p.mode {
            Mode::Pull => ["verifying sha256 digest", "writing manifest", "success"]
                .iter()
                .map(|s| json!({ "status": s }))
                .collect(),
            Mode::Push => ["pushing manifest", "success"]
                .iter()
                .map(|s| json!({ "status": s }))
                .collect(),
        },
        Kind::Error => vec![json!({ "error": p.message })],
    }
}

/// The progress lines with one more for each blob that was already where it goes (as
/// Ollama reports a layer on disk: completed at once), just before success.
fn completed(
    mut rx: UnboundedReceiver<Progress>,
    blobs: Vec<modelrunner_format::Descriptor>,
) -> UnboundedReceiver<Progress> {
    let (tx, out) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut seen = std::collections::HashSet::new();
        while let Some(p) = rx.recv().await {
            if p.kind == Kind::Success {
                for b in blobs
                    .iter()
                    .filter(|b| !seen.contains(&b.digest.to_string()))
                {
                    let mut l = Progress::plain(Kind::Progress, p.mode, "");
                    l.layer.id = b.digest.to_string();
                    (l.layer.size, l.layer.current) = (b.size, b.size);
                    let _ = tx.send(l);
                }
            }
            if p.kind == Kind::Progress {
                seen.insert(p.layer.id.clone());
            }
            if tx.send(p).is_err() {
                break;
            }
        }
    });
    out
}

/// The answer: NDJSON lines as they come, or the last line alone.
async fn answer(first: &str, t: Transfer, stream: bool) -> Result<Response, ApiError> {
    let Transfer { rx, guard, blobs } = t;
    let rx = completed(rx, blobs);
    if !stream {
        let mut last = json!({ "status": first });
        let mut rx = rx;
        while let Some(p) = rx.recv().await {
            if p.kind == Kind::Error {
                return Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    crate::ErrorKind::Upstream,
                    p.message,
                ));
            }
            if let Some(l) = lines(&p).pop() {
                last = l;
            }
        }
        drop(guard);
        return Ok(json_response(last));
    }
    let opening = futures::stream::iter([line(&json!({ "status": first }))]);
    // While the registry is silent the last line is repeated every second: a client
    // that went away is only noticed when a write fails, and that cancels the transfer.
    let rest = futures::stream::unfold(
        (rx, guard, None::<Bytes>),
        |(mut rx, guard, last)| async move {
            let chunk = match tokio::time::timeout(HEARTBEAT, rx.recv()).await {
                Ok(Some(p)) => {
                    let out: Vec<u8> = lines(&p).iter().flat_map(|v| line(v).to_vec()).collect();
                    if out.is_empty() {
                        last.clone().unwrap_or_default()
                    } else {
                        Bytes::from(out)
                    }
                }
                Ok(None) => return None,
                Err(_) => last.clone().unwrap_or_else(|| Bytes::from_static(b"\n")),
            };
            // What is repeated is the last line of the chunk.
            let tail = chunk
                .split(|b| *b == b'\n')
                .rfind(|l| !l.is_empty())
                .map(|l| {
                    let mut v = l.to_vec();
                    v.push(b'\n');
                    Bytes::from(v)
                });
            Some((chunk, (rx, guard, tail.or(last))))
        },
    );
    let body = opening.chain(rest).map(Ok::<_, Infallible>);
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

fn name(body: &Value) -> Result<String, ApiError> {
    let n = string(body, "model")?
        .or(string(body, "name")?)
        .unwrap_or_default();
    if n.is_empty() {
        return Err(ApiError::invalid("model", "model is required"));
    }
    Ok(n)
}

/// `POST /api/pull`.
#[instrument(skip_all)]
pub(crate) async fn pull(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let model = name(&body)?;
    let stream = flag(&body, "stream", true)?;
    let t = start_pull(state, &model, "model", None).await?;
    answer("pulling manifest", t, stream).await
}

/// `POST /api/push`.
#[instrument(skip_all)]
pub(crate) async fn push(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let model = name(&body)?;
    let stream = flag(&body, "stream", true)?;
    let t = start_push(state, &model, "model", None).await?;
    answer("retrieving manifest", t, stream).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use modelrunner_registry::progress::LayerProgress;

    #[test]
    fn progress_lines_in_ollamas_words() {
        let mut p = Progress::plain(Kind::Progress, Mode::Pull, "x");
        p.layer = LayerProgress {
            id: format!("sha256:{}", "ab".repeat(32)),
            size: 10,
            current: 0,
        };
        let l = lines(&p);
        assert_eq!(l[0]["status"], "pulling abababababab");
        assert_eq!(l[0]["total"], 10);
        assert!(l[0].get("completed").is_none(), "zero is left out");
        let done = lines(&Progress::plain(Kind::Success, Mode::Pull, "done"));
        assert_eq!(done.last().unwrap()["status"], "success");
        let e = lines(&Progress::plain(Kind::Error, Mode::Push, "denied"));
        assert_eq!(e[0]["error"], "denied");
    }
}
