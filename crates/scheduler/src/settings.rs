//! Per-model runtime settings (`POST /engines/_configure`), kept in a JSON file so they
//! survive daemon restarts.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use modelrunner_protocol::{Mode, Settings};

use crate::error::SchedulerError;
use crate::keepalive::KeepAlive;

/// Settings of one model: how its runner serves (unset fields take the daemon's
/// defaults) and how long it stays loaded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuntimeSettings {
    /// The runner's settings.
    #[serde(flatten)]
    pub runner: Settings,
    /// Idle time before unloading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<KeepAlive>,
}

/// One saved entry, in Docker's `GET /engines/_configure` shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedSettings {
    /// Always `llama.cpp`.
    #[serde(rename = "Backend")]
    pub backend: String,
    /// The model's name as configured.
    #[serde(rename = "Model")]
    pub model: String,
    /// The model ID.
    #[serde(rename = "ModelID")]
    pub model_id: String,
    /// The mode.
    #[serde(rename = "Mode")]
    pub mode: Mode,
    /// The settings.
    #[serde(rename = "Config")]
    pub config: RuntimeSettings,
}

/// The saved settings and the file behind them.
#[derive(Debug, Default)]
pub struct SettingsStore {
    file: Option<PathBuf>,
    entries: BTreeMap<(String, Mode), SavedSettings>,
}

impl SettingsStore {
    /// Loads `file` (a missing file is empty); `None` keeps settings in memory only.
    pub fn open(file: Option<PathBuf>) -> Result<SettingsStore, SchedulerError> {
        let mut entries = BTreeMap::new();
        if let Some(f) = &file {
            match std::fs::read(f) {
                Ok(bytes) => {
                    let list: Vec<SavedSettings> = serde_json::from_slice(&bytes).map_err(|e| {
                        SchedulerError::io(
                            format!("reading {}", f.display()),
                            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                        )
                    })?;
                    for s in list {
                        entries.insert((s.model_id.clone(), s.mode), s);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(SchedulerError::io(format!("reading {}", f.display()), e)),
            }
        }
        Ok(SettingsStore { file, entries })
    }

    /// The settings of a model in a mode.
    pub fn get(&self, model_id: &str, mode: Mode) -> Option<&SavedSettings> {
        self.entries.get(&(model_id.to_string(), mode))
    }

    /// Every entry, optionally of one model ID.
    pub fn list(&self, model_id: Option<&str>) -> Vec<SavedSettings> {
        self.entries
            .values()
            .filter(|s| model_id.is_none_or(|id| s.model_id == id))
            .cloned()
            .collect()
    }

    /// Saves an entry and writes the file.
    pub fn put(&mut self, entry: SavedSettings) -> Result<(), SchedulerError> {
        let key = (entry.model_id.clone(), entry.mode);
        let old = self.entries.insert(key.clone(), entry);
        if let Err(e) = self.persist() {
            match old {
                Some(o) => self.entries.insert(key, o),
                None => self.entries.remove(&key),
            };
            return Err(e);
        }
        Ok(())
    }

    /// Writes the file atomically: a temporary file, fsync, rename.
    fn persist(&self) -> Result<(), SchedulerError> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let list: Vec<&SavedSettings> = self.entries.values().collect();
        let bytes = serde_json::to_vec_pretty(&list).expect("settings serialise");
        write_atomic(file, &bytes)
    }
}

fn write_atomic(file: &Path, bytes: &[u8]) -> Result<(), SchedulerError> {
    let tmp = file.with_extension("json.tmp");
    let ctx = || format!("writing {}", file.display());
    let mut f = std::fs::File::create(&tmp).map_err(|e| SchedulerError::io(ctx(), e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| SchedulerError::io(ctx(), e))?;
    std::fs::rename(&tmp, file).map_err(|e| SchedulerError::io(ctx(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persists_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("engines.json");
        let mut store = SettingsStore::open(Some(file.clone())).unwrap();
        let entry = SavedSettings {
            backend: "llama.cpp".into(),
            model: "ai/x".into(),
            model_id: "sha256:ab".into(),
            mode: Mode::Completion,
            config: RuntimeSettings {
                runner: Settings {
                    context_size: Some(1024),
                    ..Default::default()
                },
                keep_alive: Some(KeepAlive::Forever),
            },
        };
        store.put(entry.clone()).unwrap();
        let again = SettingsStore::open(Some(file.clone())).unwrap();
        assert_eq!(again.get("sha256:ab", Mode::Completion), Some(&entry));
        assert!(again.get("sha256:ab", Mode::Embedding).is_none());
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.contains("\"context-size\": 1024") && text.contains("\"ModelID\""),
            "{text}"
        );
        std::fs::write(&file, "not json").unwrap();
        assert!(SettingsStore::open(Some(file)).is_err());
    }
}
