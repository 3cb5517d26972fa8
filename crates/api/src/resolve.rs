//! From a request's `model` to what the scheduler runs.

use std::collections::HashMap;
use std::sync::Mutex;

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
    entries: Mutex<(u64, HashMap<String, ModelSpec>)>,
}

impl Resolved {
    fn get(&self, generation: u64, name: &str) -> Option<ModelSpec> {
        let entries = self.entries.lock().expect("resolved lock");
        (entries.0 == generation)
            .then(|| entries.1.get(name).cloned())
            .flatten()
    }

    fn put(&self, generation: u64, name: String, spec: ModelSpec) {
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
    if let Some(spec) = state.resolved.get(generation, name) {
        return Ok(ModelSpec { mode, ..spec });
    }
    let store = state.store.clone();
    let key = name.to_string();
    let spec = blocking(move || {
        let model = store.resolve_partial(&key)?;
        let bundle = store.bundle(&model.id.to_string())?;
        Ok(ModelSpec {
            id: model.id.to_string(),
            name: model.tags.first().cloned().unwrap_or(key),
            shards: bundle.shards,
            chat_template: bundle.chat_template,
            packaged_context: model
                .config
                .context_size
                .and_then(|c| u64::try_from(c).ok()),
            mode,
        })
    })
    .await?;
    state
        .resolved
        .put(generation, name.to_string(), spec.clone());
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(id: &str) -> ModelSpec {
        ModelSpec {
            id: id.into(),
            name: "m".into(),
            shards: vec![],
            chat_template: None,
            packaged_context: None,
            mode: Mode::Completion,
        }
    }

    #[test]
    fn entries_hold_only_for_their_generation_and_stay_bounded() {
        let r = Resolved::default();
        r.put(1, "a".into(), spec("x"));
        assert_eq!(r.get(1, "a").unwrap().id, "x");
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
