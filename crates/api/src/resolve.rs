//! From a request's `model` to what the scheduler runs.

use std::collections::HashMap;
use std::sync::Mutex;

use modelrunner_format::gguf::{GgufFile, Value as Gv};
use modelrunner_scheduler::{Mode, ModelSpec};

use crate::{blocking, ApiError, AppState};

/// The most names remembered; past it the cache starts again.
const MAX_NAMES: usize = 1024;

/// Names resolved under the store's current index generation. A request for a model
/// already resolved then costs a map lookup instead of manifest and config reads on a
/// blocking thread (two thread wakeups and about a millisecond on a busy machine, in
/// the path of every request's first token).
#[derive(Default)]
pub(crate) struct Resolved {
    entries: Mutex<(u64, HashMap<String, Entry>)>,
}

/// A resolved name: its spec, whether it is a reranker once that was asked, and its
/// hard-linked blobs (`package --link`), whose files are checked on every request.
#[derive(Clone)]
struct Entry {
    spec: ModelSpec,
    reranker: Option<bool>,
    linked: Vec<modelrunner_format::Digest>,
}

impl Resolved {
    fn get(&self, generation: u64, name: &str) -> Option<Entry> {
        let entries = self.entries.lock().expect("resolved lock");
        (entries.0 == generation)
            .then(|| entries.1.get(name).cloned())
            .flatten()
    }

    fn put(&self, generation: u64, name: String, spec: Entry) {
        let mut entries = self.entries.lock().expect("resolved lock");
        if entries.0 != generation || entries.1.len() >= MAX_NAMES {
            *entries = (generation, HashMap::new());
        }
        entries.1.insert(name, spec);
    }
}

/// Resolves `name` (tag, ID, digest or unique short name) and builds its bundle.
pub(crate) async fn model_spec(
    state: &AppState,
    name: &str,
    mode: Mode,
) -> Result<ModelSpec, ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::bad_request("model is required").param("model"));
    }
    // Read before resolving: a change while resolving then leaves a stale generation.
    let generation = state.store.generation();
    let cached = state.resolved.get(generation, name);
    let wants_pooling = mode != Mode::Completion;
    let entry = match cached {
        Some(e) if e.reranker.is_some() || !wants_pooling => {
            // A cached name skips the bundle, which checks linked files: check them here
            // (a stat each; models without links cost nothing).
            for d in &e.linked {
                state.store.check_link(d)?;
            }
            e
        }
        _ => {
            let found = lookup(state, name, wants_pooling).await;
            let entry = match (found, state.config.pull_on_first_use) {
                (Err(e), Some(limit)) if e.status == axum::http::StatusCode::NOT_FOUND => {
                    crate::registry::pull_for_use(state, name, Some(limit), e, None).await?;
                    lookup(state, name, wants_pooling).await?
                }
                (found, _) => found?,
            };
            state
                .resolved
                .put(generation, name.to_string(), entry.clone());
            entry
        }
    };
    let spec = ModelSpec { mode, ..entry.spec };
    match (mode, entry.reranker) {
        (Mode::Reranking, Some(false)) => Err(ApiError::invalid(
            "model",
            format!("{} is not a reranker: its GGUF declares no rank pooling (a reranking model such as bge-reranker or Qwen3-Reranker scores documents)", spec.name),
        )),
        (Mode::Embedding, Some(true)) => Err(ApiError::invalid(
            "model",
            format!("{} is a reranker (rank pooling): it scores documents on /v1/rerank and gives no embeddings", spec.name),
        )),
        _ => Ok(spec),
    }
}

/// Finds `key` in the store and checks that llama.cpp can load it.
async fn lookup(state: &AppState, key: &str, wants_pooling: bool) -> Result<Entry, ApiError> {
    let store = state.store.clone();
    let key = key.to_string();
    blocking(move || {
        let model = store.resolve_partial(&key)?;
        let bundle = store.bundle(&model.id.to_string())?;
        // What llama.cpp needs is checked here, so an impossible model is a 422
        // naming the fact, never a runner that aborts at load.
        let header = GgufFile::open(&bundle.gguf)?;
        header.check_loadable().map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                crate::ErrorKind::InvalidRequest,
                format!("{key} cannot be loaded: {e}"),
            )
            .param("model")
            .code("invalid_model")
        })?;
        let reranker = wants_pooling.then(|| pools_by_rank(&header));
        let linked = model
            .manifest
            .layers
            .iter()
            .map(|l| l.digest)
            .filter(|d| store.is_linked(d))
            .collect();
        let spec = ModelSpec {
            id: model.id.to_string(),
            name: model.tags.first().cloned().unwrap_or(key),
            shards: bundle.shards,
            chat_template: bundle.chat_template,
            packaged_context: model
                .config
                .context_size
                .and_then(|c| u64::try_from(c).ok()),
            mode: Mode::Completion,
        };
        Ok(Entry {
            spec,
            reranker,
            linked,
        })
    })
    .await
}

/// Whether a GGUF declares rank pooling (`<arch>.pooling_type` 4): a cross-encoder that
/// scores query and document pairs.
fn pools_by_rank(g: &GgufFile) -> bool {
    let arch = g
        .get("general.architecture")
        .and_then(Gv::as_str)
        .unwrap_or_default();
    g.get(&format!("{arch}.pooling_type"))
        .and_then(Gv::as_u64)
        .is_some_and(|p| p == 4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str) -> Entry {
        let spec = ModelSpec {
            id: id.into(),
            name: "m".into(),
            shards: vec![],
            chat_template: None,
            packaged_context: None,
            mode: Mode::Completion,
        };
        Entry {
            spec,
            reranker: None,
            linked: Vec::new(),
        }
    }

    #[test]
    fn entries_hold_only_for_their_generation_and_stay_bounded() {
        let r = Resolved::default();
        r.put(1, "a".into(), spec("x"));
        assert_eq!(r.get(1, "a").unwrap().spec.id, "x");
        assert!(r.get(1, "b").is_none());
        assert!(r.get(2, "a").is_none(), "an index change invalidates");
        r.put(2, "b".into(), spec("y"));
        assert!(r.get(2, "a").is_none(), "older entries are dropped");
        for i in 0..MAX_NAMES + 5 {
            r.put(2, format!("n{i}"), spec("z"));
        }
        assert!(r.entries.lock().unwrap().1.len() <= MAX_NAMES);
    }
}
