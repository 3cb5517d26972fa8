//! Ollama's model routes that need no transfer: `version`, `tags` (one entry per tag),
//! `ps` (loaded models, latest expiry first), `copy` and `delete` (empty 200 bodies).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use modelrunner_format::Reference;
use modelrunner_scheduler::{KeepAlive, Unload};
use serde_json::{json, Value};
use tracing::instrument;

use super::decode::string;
use super::show::details;
use super::{display, resolve_info, VERSION};
use crate::extract::ApiJson;
use crate::{blocking, ApiError, AppState};

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

/// `GET /api/version`.
pub(crate) async fn version() -> Json<Value> {
    Json(json!({ "version": VERSION }))
}

/// `GET /api/tags`.
pub(crate) async fn tags(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = state.store.clone();
    let models = blocking(move || store.list().map_err(ApiError::from)).await?;
    let mut out = Vec::new();
    for m in &models {
        let modified = chrono::DateTime::from_timestamp(m.created, 0).unwrap_or_default();
        for t in &m.tags {
            let name = display(t);
            out.push(json!({
                "name": name, "model": name,
                "modified_at": rfc3339(modified),
                "size": m.size,
                "digest": m.id.hex(),
                "details": details(&m.config),
            }));
        }
    }
    Ok(Json(json!({ "models": out })))
}

/// When a runner idle since `last_used` unloads: far in the future for never, as Ollama
/// writes it.
fn expires_at(last_used: &str, keep_alive: &str) -> chrono::DateTime<chrono::Utc> {
    let forever = chrono::DateTime::from_timestamp(11_045_000_000, 0).unwrap_or_default();
    let Ok(used) = chrono::DateTime::parse_from_rfc3339(last_used) else {
        return forever;
    };
    match KeepAlive::parse(keep_alive) {
        Ok(KeepAlive::For(d)) => used.to_utc() + chrono::Duration::from_std(d).unwrap_or_default(),
        _ => forever,
    }
}

/// `GET /api/ps`.
pub(crate) async fn ps(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let runners = state.scheduler.ps();
    let store = state.store.clone();
    let ids: Vec<String> = runners.iter().map(|r| r.model_id.clone()).collect();
    let infos = blocking(move || {
        Ok(ids
            .iter()
            .map(|id| store.resolve_partial(id).ok())
            .collect::<Vec<_>>())
    })
    .await?;
    let mut out: Vec<(chrono::DateTime<chrono::Utc>, Value)> = Vec::new();
    for (r, info) in runners.iter().zip(infos) {
        if r.loading {
            continue;
        }
        let expires = expires_at(&r.last_used, &r.keep_alive);
        let size = r
            .resident_memory
            .or(r.estimated_memory.as_ref().map(|e| e.total))
            .unwrap_or(0);
        let vram = r.estimated_memory.as_ref().map_or(0, |e| e.gpu);
        let name = display(&r.model_name);
        let details = info.as_ref().map_or(json!({}), |i| details(&i.config));
        out.push((
            expires,
            json!({
                "name": name, "model": name, "size": size,
                "digest": r.model_id.trim_start_matches("sha256:"),
                "details": details,
                "expires_at": rfc3339(expires),
                "size_vram": vram,
                "context_length": r.context_size.unwrap_or(0),
            }),
        ));
    }
    out.sort_by_key(|b| std::cmp::Reverse(b.0));
    Ok(Json(
        json!({ "models": out.into_iter().map(|(_, v)| v).collect::<Vec<_>>() }),
    ))
}

/// `POST /api/copy`: `{source, destination}`, a new tag for the source's model.
#[instrument(skip_all)]
pub(crate) async fn copy(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<StatusCode, ApiError> {
    let source = string(&body, "source")?.unwrap_or_default();
    let destination = string(&body, "destination")?.unwrap_or_default();
    if source.is_empty() {
        return Err(ApiError::invalid("source", "source is required"));
    }
    let target: Reference = destination
        .parse()
        .map_err(|e| ApiError::from(e).param("destination"))?;
    let info = resolve_info(&state, &source).await?;
    let store = state.store.clone();
    blocking(move || {
        store
            .tag(&info.id.to_string(), &target)
            .map_err(ApiError::from)
    })
    .await?;
    Ok(StatusCode::OK)
}

/// `DELETE /api/delete`: `{model}`; its runners go when the model does.
#[instrument(skip_all)]
pub(crate) async fn delete(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<StatusCode, ApiError> {
    let name = string(&body, "model")?
        .or(string(&body, "name")?)
        .unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::invalid("model", "model is required"));
    }
    // The name as stored (Ollama matches names without regard to case).
    let info = resolve_info(&state, &name).await?;
    let full = name
        .to_lowercase()
        .parse::<Reference>()
        .map(|r| r.to_string());
    let tag = match full {
        Ok(t) if info.tags.contains(&t) => t,
        _ => name,
    };
    let store = state.store.clone();
    let out = blocking(move || store.delete(&tag, false).map_err(ApiError::from)).await?;
    if let Some(id) = out.deleted {
        state
            .scheduler
            .unload(Unload::Models(vec![id.to_string()]))
            .await;
    }
    Ok(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_follows_keep_alive() {
        let t = expires_at("2026-01-01T00:00:00Z", "5m0s");
        assert_eq!(rfc3339(t), "2026-01-01T00:05:00.000000000Z");
        assert!(expires_at("2026-01-01T00:00:00Z", "-1").timestamp() > 10_000_000_000);
    }
}
