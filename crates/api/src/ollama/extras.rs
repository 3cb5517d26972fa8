//! What `/api/create` adds to a model beyond Docker's layers: a system prompt, default
//! parameters and a prompt template, each a layer with Ollama's own media type (the
//! layers Ollama's registry serves too), kept in the artifact so they travel with push
//! and pull. Docker's tools ignore layers they do not know.
//!
//! A model's extras are read once per model ID (`id_cache`).

use std::sync::{Arc, LazyLock};

use modelrunner_format::Digest;
use modelrunner_scheduler::ModelSpec;
use serde_json::{Map, Value};

use crate::id_cache::IdCache;
use crate::{blocking, ApiError, AppState};

/// A system prompt (plain text).
pub(crate) const SYSTEM: &str = "application/vnd.ollama.image.system";
/// Default options (a JSON object).
pub(crate) const PARAMS: &str = "application/vnd.ollama.image.params";
/// A Go prompt template (plain text), used by `/api/generate`.
pub(crate) const TEMPLATE: &str = "application/vnd.ollama.image.template";

/// The largest extras layer read.
const MAX_BYTES: u64 = 1 << 20;

/// A model's extras.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Extras {
    /// `SYSTEM`.
    pub system: Option<String>,
    /// `PARAMETER`s.
    pub params: Map<String, Value>,
    /// `TEMPLATE`.
    pub template: Option<String>,
}

/// Reads the extras of a stored model.
pub(crate) fn read(store: &modelrunner_store::Store, id: &Digest) -> Result<Extras, ApiError> {
    let bytes = store.manifest_bytes(id)?;
    let manifest = modelrunner_format::Manifest::parse(&bytes)?;
    let mut out = Extras::default();
    for l in &manifest.layers {
        let text = || -> Result<String, ApiError> {
            let b = store.read_blob(&l.digest, MAX_BYTES)?;
            String::from_utf8(b)
                .map_err(|_| ApiError::internal(format!("layer {} is not UTF-8", l.digest)))
        };
        match l.media_type.as_str() {
            SYSTEM => out.system = Some(text()?),
            TEMPLATE => out.template = Some(text()?),
            PARAMS => {
                out.params = serde_json::from_str(&text()?).map_err(|e| {
                    ApiError::internal(format!(
                        "the params layer {} is not an object: {e}",
                        l.digest
                    ))
                })?
            }
            _ => {}
        }
    }
    Ok(out)
}

/// The extras of the model `spec` names.
pub(crate) async fn of(state: &AppState, spec: &ModelSpec) -> Result<Arc<Extras>, ApiError> {
    static CACHE: LazyLock<IdCache<Arc<Extras>>> = LazyLock::new(IdCache::default);
    let store = state.store.clone();
    let raw = spec.id.clone();
    CACHE
        .get_or_read(&spec.id, async move {
            let id: Digest = raw
                .parse()
                .map_err(|e| ApiError::internal(format!("model ID {raw}: {e}")))?;
            Ok(Arc::new(blocking(move || read(&store, &id)).await?))
        })
        .await
}
