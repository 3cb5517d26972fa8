//! From a request's `model` to what the scheduler runs.

use modelrunner_scheduler::{Mode, ModelSpec};

use crate::{blocking, ApiError, AppState};

/// Resolves `name` (tag, ID, digest or unique short name) and builds its bundle.
pub(crate) async fn model_spec(
    state: &AppState,
    name: &str,
    mode: Mode,
) -> Result<ModelSpec, ApiError> {
    if name.trim().is_empty() {
        return Err(ApiError::bad_request("model is required").param("model"));
    }
    let store = state.store.clone();
    let name = name.to_string();
    blocking(move || {
        let model = store.resolve_partial(&name)?;
        let bundle = store.bundle(&model.id.to_string())?;
        Ok(ModelSpec {
            id: model.id.to_string(),
            name: model.tags.first().cloned().unwrap_or(name),
            shards: bundle.shards,
            chat_template: bundle.chat_template,
            packaged_context: model
                .config
                .context_size
                .and_then(|c| u64::try_from(c).ok()),
            mode,
        })
    })
    .await
}
