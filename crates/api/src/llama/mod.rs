//! llama-server's native routes, for the tools written against it (llama.vim and
//! llama.vscode, SillyTavern, scripts): `/completion` (and `/completions`) with its own
//! fields and answer, `/embedding(s)`, `/props`, `/slots`, `/health` with its loading
//! semantics, and the unprefixed `/chat/completions`. Generation goes through the one
//! pipeline. llama-server serves one model, so `model` may be left out: it is then the
//! one model loaded, or the one model stored.

pub(crate) mod completion;
pub(crate) mod embedding;
pub(crate) mod infill;
pub(crate) mod props;
pub(crate) mod rerank;
pub(crate) mod routes;

use crate::{blocking, ApiError, AppState};

/// The model a request names, or the one it can only mean (by its first tag).
pub(crate) async fn model_or_only(
    state: &AppState,
    named: Option<&str>,
) -> Result<String, ApiError> {
    if let Some(m) = named.filter(|m| !m.trim().is_empty()) {
        return Ok(m.to_string());
    }
    let mut loaded: Vec<String> = state
        .scheduler
        .ps()
        .into_iter()
        .map(|r| r.model_id)
        .collect();
    loaded.sort();
    loaded.dedup();
    let store = state.store.clone();
    let stored = blocking(move || store.list().map_err(ApiError::from)).await?;
    let only = match (&loaded[..], &stored[..]) {
        ([one], _) => Some(one.clone()),
        ([], [one]) => Some(one.id.to_string()),
        _ => None,
    };
    let Some(id) = only else {
        return Err(ApiError::invalid(
            "model",
            format!(
                "model is required: {} models are loaded and {} are stored, so the request must say which",
                loaded.len(),
                stored.len()
            ),
        ));
    };
    Ok(stored
        .iter()
        .find(|m| m.id.to_string() == id)
        .and_then(|m| m.tags.first().cloned())
        .unwrap_or(id))
}
