//! Per-model runtime settings (`POST /engines/_configure`), kept in a JSON file so they
//! survive daemon restarts.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::SchedulerError;
use crate::keepalive::KeepAlive;

/// What a runner computes; the same model in two modes runs in two processes.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Chat and text completions.
    #[default]
    Completion,
    /// Embeddings.
    Embedding,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Completion => "completion",
            Mode::Embedding => "embedding",
        })
    }
}

/// Settings of one model's runner; unset fields take the daemon's defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSettings {
    /// Context tokens per slot.
    #[serde(
        rename = "context-size",
        alias = "context_size",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub context_size: Option<u32>,
    /// Parallel slots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel: Option<u32>,
    /// Idle time before unloading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<KeepAlive>,
    /// Generation threads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// Tokens per decode step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    /// Layers offloaded to the GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_layers: Option<u32>,
}

fn invalid(param: &str, message: impl Into<String>) -> SchedulerError {
    SchedulerError::InvalidSettings {
        param: param.into(),
        message: message.into(),
    }
}

fn in_range(param: &str, v: Option<u32>, lo: u32, hi: u32) -> Result<(), SchedulerError> {
    match v {
        Some(v) if v < lo || v > hi => Err(invalid(
            param,
            format!("must be from {lo} to {hi}, got {v}"),
        )),
        _ => Ok(()),
    }
}

impl RuntimeSettings {
    /// Range checks.
    pub fn validate(&self) -> Result<(), SchedulerError> {
        in_range("context-size", self.context_size, 64, 1 << 20)?;
        in_range("parallel", self.parallel, 1, 64)?;
        in_range("threads", self.threads, 1, 1024)?;
        in_range("batch-size", self.batch_size, 16, 8192)?;
        in_range("gpu-layers", self.gpu_layers, 0, 10_000)?;
        Ok(())
    }

    /// Reads llama.cpp-style runtime flags, allowing only the ones that map onto these
    /// settings: `-c/--ctx-size`, `-np/--parallel`, `-t/--threads`, `-b/--batch-size`,
    /// `-ngl/--n-gpu-layers`. Anything else is refused, so no client can pass engine flags
    /// or paths.
    pub fn apply_flags(&mut self, flags: &[String]) -> Result<(), SchedulerError> {
        let mut it = flags.iter();
        while let Some(flag) = it.next() {
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (flag.as_str(), None),
            };
            let slot = match name {
                "-c" | "--ctx-size" => &mut self.context_size,
                "-np" | "--parallel" => &mut self.parallel,
                "-t" | "--threads" => &mut self.threads,
                "-b" | "--batch-size" => &mut self.batch_size,
                "-ngl" | "--n-gpu-layers" | "--gpu-layers" => &mut self.gpu_layers,
                other => {
                    return Err(invalid(
                        "runtime-flags",
                        format!(
                            "{other:?} is not allowed; allowed are --ctx-size, --parallel, --threads, --batch-size and --n-gpu-layers"
                        ),
                    ))
                }
            };
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| invalid("runtime-flags", format!("{name} needs a value")))?,
            };
            let n = value.parse::<u32>().map_err(|_| {
                invalid(
                    "runtime-flags",
                    format!("{name} needs a whole number, got {value:?}"),
                )
            })?;
            *slot = Some(n);
        }
        self.validate()
    }
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

    fn flags(v: &[&str]) -> Result<RuntimeSettings, SchedulerError> {
        let mut s = RuntimeSettings::default();
        s.apply_flags(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        Ok(s)
    }

    #[test]
    fn only_allowlisted_flags_pass() {
        let s = flags(&["--ctx-size", "8192", "-np=2", "-t", "4"]).unwrap();
        assert_eq!(s.context_size, Some(8192));
        assert_eq!(s.parallel, Some(2));
        assert_eq!(s.threads, Some(4));
        for bad in [
            &["--model", "/etc/passwd"][..],
            &["--host", "0.0.0.0"],
            &["-c"],
            &["-c", "-1"],
            &["-c", "12"],
            &["--parallel", "0"],
        ] {
            assert!(flags(bad).is_err(), "{bad:?} accepted");
        }
    }

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
                context_size: Some(1024),
                keep_alive: Some(KeepAlive::Forever),
                ..Default::default()
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
