//! Models served from the models directory (`--models-dir`, first), pulled
//! (`--prefetch`) or pulled and loaded (`--preload`) when the daemon starts, in order,
//! with their progress in the log; `/health` answers 503 until every one is done, and
//! keeps answering 503 naming the model when one failed.

use std::path::PathBuf;
use std::sync::Mutex;

use modelrunner_registry::progress::{Kind, Progress};
use modelrunner_scheduler::{KeepAlive, Mode};
use tokio::sync::mpsc;
use tracing::{error, info};

use crate::{registry, resolve, ApiError, AppState};

/// Where the start-up work stands.
#[derive(Debug, Default)]
pub struct Preload {
    state: Mutex<Option<String>>,
}

impl Preload {
    /// Why the daemon is not ready yet (or will not be), or `None` when it is.
    pub fn not_ready(&self) -> Option<String> {
        self.state.lock().expect("preload lock").clone()
    }

    fn set(&self, why: Option<String>) {
        *self.state.lock().expect("preload lock") = why;
    }
}

/// Starts the work in the background: `prefetch` pulled when missing, then `preload`
/// pulled when missing and loaded (kept loaded until a request sets another keep-alive).
pub fn start(
    state: &AppState,
    models_dir: Option<PathBuf>,
    prefetch: Vec<String>,
    preload: Vec<String>,
) {
    let total = prefetch.len() + preload.len();
    if total == 0 && models_dir.is_none() {
        return;
    }
    state
        .preload
        .set(Some(format!("preloading models: 0 of {total} done")));
    let state = state.clone();
    tokio::spawn(async move {
        if let Some(dir) = models_dir {
            state
                .preload
                .set(Some(format!("adopting the models in {}", dir.display())));
            if let Err(why) = adopt(&state, dir).await {
                error!(cause = %why, "models directory: failed; /health stays 503");
                state.preload.set(Some(why));
                return;
            }
        }
        let work = prefetch
            .into_iter()
            .map(|m| (m, false))
            .chain(preload.into_iter().map(|m| (m, true)));
        for (done, (model, load)) in work.enumerate() {
            info!(%model, load, "preload: {} of {total}", done + 1);
            if let Err(e) = one(&state, &model, load).await {
                error!(%model, cause = %e.message, "preload failed; /health stays 503");
                state
                    .preload
                    .set(Some(format!("preloading {model} failed: {}", e.message)));
                return;
            }
            let now = format!("preloading models: {} of {total} done", done + 1);
            state.preload.set(Some(now));
        }
        info!(models = total, "preload: done; ready");
        state.preload.set(None);
    });
}

async fn one(state: &AppState, model: &str, load: bool) -> Result<(), ApiError> {
    let stored = state.store.clone();
    let name = model.to_string();
    let found = crate::blocking(move || Ok(stored.resolve_partial(&name)?)).await;
    match found {
        Ok(_) => {}
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND => {
            let (tx, rx) = mpsc::unbounded_channel();
            let logger = tokio::spawn(log_progress(model.to_string(), rx));
            registry::pull_for_use(state, model, None, e, Some(tx)).await?;
            let _ = logger.await;
        }
        Err(e) => return Err(e),
    }
    if load {
        let spec = resolve::model_spec(state, model, Mode::Completion).await?;
        state
            .scheduler
            .acquire(&spec, Some(KeepAlive::Forever))
            .await?;
        info!(%model, "preload: loaded");
    }
    Ok(())
}

/// Serves every model of the models directory in place (`models_dir`).
async fn adopt(state: &AppState, dir: PathBuf) -> Result<(), String> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || {
        let found = crate::models_dir::scan(&dir)?;
        info!(dir = %dir.display(), models = found.len(), "models directory: serving in place");
        for f in found {
            let m = store
                .add_external_model(&f.spec, &f.tag)
                .map_err(|e| format!("serving {} from {}: {e}", f.tag, f.spec.gguf.display()))?;
            info!(model = %f.tag, id = %m.id, file = %f.spec.gguf.display(), "models directory: ready");
        }
        Ok(())
    })
    .await
    .map_err(|e| format!("the models directory's task failed: {e}"))?
}

/// Logs a pull's layers as they finish, and its last line.
async fn log_progress(model: String, mut rx: mpsc::UnboundedReceiver<Progress>) {
    let mut finished = std::collections::HashSet::new();
    while let Some(p) = rx.recv().await {
        match p.kind {
            Kind::Progress if p.layer.size > 0 && p.layer.current >= p.layer.size => {
                if finished.insert(p.layer.id.clone()) {
                    info!(%model, layer = %p.layer.id, bytes = p.layer.size, "preload: layer pulled");
                }
            }
            Kind::Progress => {}
            _ => info!(%model, message = %p.message, "preload: pull"),
        }
    }
}
