//! What `/api/create` adds to a model beyond Docker's layers: a system prompt, default
//! parameters and a prompt template, each a layer with Ollama's own media type (the
//! layers Ollama's registry serves too), kept in the artifact so they travel with push
//! and pull. Docker's tools ignore layers they do not know.
//!
//! A model's extras are read once per model ID: IDs are manifest digests, so what they
//! name never changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use modelrunner_format::Digest;
use modelrunner_scheduler::ModelSpec;
use serde_json::{Map, Value};

use crate::{blocking, ApiError, AppState};

/// A system prompt (plain text).
pub(crate) const SYSTEM: &str = "application/vnd.ollama.image.system";
/// Default options (a JSON object).
pub(crate) const PARAMS: &str = "application/vnd.ollama.image.params";
/// A Go prompt template (plain text), used by `/api/generate`.
pub(crate) const TEMPLATE: &str = "application/vnd.ollama.image.template";

/// The largest extras layer read.
const MAX_BYTES: u64 = 1 << 20;
/// Models whose extras are remembered; past it the cache starts again.
const MAX_MODELS: usize = 256;

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

fn cache() -> &'static Mutex<HashMap<String, Arc<Extras>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Extras>>>> = OnceLock::new();
    CACHE.get_or_init(Default::default)
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
    if let Some(e) = cache().lock().expect("extras lock").get(&spec.id) {
        return Ok(e.clone());
    }
    let id: Digest = spec
        .id
        .parse()
        .map_err(|e| ApiError::internal(format!("model ID {}: {e}", spec.id)))?;
    let store = state.store.clone();
    let extras = Arc::new(blocking(move || read(&store, &id)).await?);
    let mut c = cache().lock().expect("extras lock");
    if c.len() >= MAX_MODELS {
        c.clear();
    }
    c.insert(spec.id.clone(), extras.clone());
    Ok(extras)
}
