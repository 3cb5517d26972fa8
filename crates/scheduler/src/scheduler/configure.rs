//! Per-model settings: saving them (they survive restarts) and applying them at the next
//! load.

use super::{ModelSpec, Scheduler, Slot};
use crate::error::SchedulerError;
use crate::settings::{RuntimeSettings, SavedSettings};

impl Scheduler {
    /// Saves a model's settings. An idle runner of it is unloaded so the next load uses
    /// them; a busy one makes this fail with [`SchedulerError::InUse`].
    pub async fn configure(
        &self,
        spec: &ModelSpec,
        config: RuntimeSettings,
    ) -> Result<(), SchedulerError> {
        config.runner.validate()?;
        let key = spec.key();
        let current = {
            let st = self.state.lock().expect("state lock");
            match st.runners.get(&key) {
                Some(Slot::Ready(r)) => {
                    if r.usage.lock().expect("usage lock").in_use > 0 {
                        return Err(SchedulerError::InUse {
                            model: spec.name.clone(),
                        });
                    }
                    Some(r.clone())
                }
                Some(Slot::Loading { .. }) => {
                    return Err(SchedulerError::InUse {
                        model: spec.name.clone(),
                    })
                }
                None => None,
            }
        };
        self.settings
            .lock()
            .expect("settings lock")
            .put(SavedSettings {
                backend: "llama.cpp".into(),
                model: spec.name.clone(),
                model_id: spec.id.clone(),
                mode: spec.mode,
                config,
            })?;
        if let Some(r) = current {
            self.remove(&r);
            r.stop_and_wait().await;
        }
        Ok(())
    }

    /// Saved settings, optionally of one model ID.
    pub fn configurations(&self, model_id: Option<&str>) -> Vec<SavedSettings> {
        self.settings.lock().expect("settings lock").list(model_id)
    }
}
