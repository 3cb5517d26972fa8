//! The one description of how to run a model: written by the scheduler, read by the
//! runner subcommand, with one vocabulary (llama-server's long flag names) and one set of
//! defaults.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::RunnerError;

/// The daemon subcommand that runs one model (`modelrunnerd runner LAUNCH`).
pub const RUNNER_SUBCOMMAND: &str = "runner";

/// Parallel slots when nothing says otherwise.
pub const DEFAULT_PARALLEL: u32 = 4;
/// Tokens per decode step when nothing says otherwise.
pub const DEFAULT_BATCH_SIZE: u32 = 512;
/// The largest context per slot chosen by default (a model's trained context is used up
/// to this).
pub const DEFAULT_CONTEXT_CAP: u32 = 4096;

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
    /// Relevance scores of documents for a query (a model with rank pooling).
    Reranking,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Completion => "completion",
            Mode::Embedding => "embedding",
            Mode::Reranking => "reranking",
        })
    }
}

/// How a runner serves its model. Unset fields take the defaults of the layer below
/// (per-model settings over the daemon's, the daemon's over the defaults here).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Settings {
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
    /// Generation threads; default: the physical cores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// Tokens per decode step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    /// Layers offloaded to the GPU (builds with CUDA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu_layers: Option<u32>,
    /// The engine flags beyond these (`--flash-attn`, cache types, RoPE, ...).
    #[serde(flatten, default)]
    pub flags: crate::flags::EngineFlags,
}

fn in_range(param: &str, v: Option<u32>, lo: u32, hi: u32) -> Result<(), RunnerError> {
    match v {
        Some(v) if v < lo || v > hi => Err(RunnerError::invalid(
            param,
            format!("must be from {lo} to {hi}, got {v}"),
        )),
        _ => Ok(()),
    }
}

impl Settings {
    /// Range checks.
    pub fn validate(&self) -> Result<(), RunnerError> {
        in_range("context-size", self.context_size, 64, 1 << 20)?;
        in_range("parallel", self.parallel, 1, 64)?;
        in_range("threads", self.threads, 1, 1024)?;
        in_range("batch-size", self.batch_size, 16, 8192)?;
        in_range("gpu-layers", self.gpu_layers, 0, 10_000)?;
        in_range("threads-batch", self.flags.threads_batch, 1, 1024)?;
        in_range("ubatch-size", self.flags.ubatch_size, 16, 8192)?;
        in_range("yarn-orig-ctx", self.flags.yarn_orig_ctx, 1, 1 << 24)?;
        Ok(())
    }

    /// These settings, with unset fields taken from `below`.
    pub fn over(&self, below: &Settings) -> Settings {
        Settings {
            context_size: self.context_size.or(below.context_size),
            parallel: self.parallel.or(below.parallel),
            threads: self.threads.or(below.threads),
            batch_size: self.batch_size.or(below.batch_size),
            gpu_layers: self.gpu_layers.or(below.gpu_layers),
            flags: self.flags.over(&below.flags),
        }
    }

    /// Parallel slots.
    pub fn parallel(&self) -> u32 {
        self.parallel.unwrap_or(DEFAULT_PARALLEL)
    }

    /// Tokens per decode step.
    pub fn batch_size(&self) -> u32 {
        self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE)
    }

    /// Layers offloaded to the GPU.
    pub fn gpu_layers(&self) -> u32 {
        self.gpu_layers.unwrap_or(0)
    }

    /// Applies llama-server runtime flags (see [`crate::flags`]): the serving ones are
    /// taken, the rest refused with the reason.
    pub fn apply_flags(&mut self, flags: &[String]) -> Result<(), RunnerError> {
        crate::flags::apply(self, flags)
    }
}

/// Everything a runner process needs to start: the files, the mode, the settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Launch {
    /// The GGUF file (first shard of a split model).
    pub model: PathBuf,
    /// Where the runner serves.
    pub socket: PathBuf,
    /// A chat template file (the bundle's), used before the GGUF's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_template: Option<PathBuf>,
    /// What it computes.
    #[serde(default)]
    pub mode: Mode,
    /// How.
    #[serde(default)]
    pub settings: Settings,
}

impl Launch {
    /// A completion runner for `model` with default settings and no socket (for an
    /// engine in this process).
    pub fn new(model: impl Into<PathBuf>) -> Launch {
        Launch {
            model: model.into(),
            socket: PathBuf::new(),
            chat_template: None,
            mode: Mode::Completion,
            settings: Settings::default(),
        }
    }

    /// The daemon arguments that start a runner with this description.
    pub fn to_args(&self) -> Vec<String> {
        vec![
            RUNNER_SUBCOMMAND.to_string(),
            serde_json::to_string(self).expect("launch serialises"),
        ]
    }

    /// Reads the description the runner subcommand was given.
    pub fn parse(arg: &str) -> Result<Launch, String> {
        let launch: Launch =
            serde_json::from_str(arg).map_err(|e| format!("a bad launch description: {e}"))?;
        launch.settings.validate().map_err(|e| e.to_string())?;
        Ok(launch)
    }

    /// The description in a process's arguments, when they start a runner.
    pub fn from_args(args: &[String]) -> Option<Launch> {
        let at = args.iter().position(|a| a == RUNNER_SUBCOMMAND)?;
        Launch::parse(args.get(at + 1)?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(v: &[&str]) -> Result<Settings, RunnerError> {
        let mut s = Settings::default();
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
    fn layers_and_defaults() {
        let saved = Settings {
            parallel: Some(2),
            ..Default::default()
        };
        let daemon = Settings {
            parallel: Some(8),
            threads: Some(3),
            ..Default::default()
        };
        let s = saved.over(&daemon);
        assert_eq!(
            (s.parallel(), s.threads, s.batch_size()),
            (2, Some(3), DEFAULT_BATCH_SIZE)
        );
        assert_eq!(Settings::default().parallel(), DEFAULT_PARALLEL);
    }

    #[test]
    fn the_launch_description_round_trips_through_arguments() {
        let l = Launch {
            model: "/s/m \"x\".gguf".into(),
            socket: "/run/r.sock".into(),
            chat_template: None,
            mode: Mode::Embedding,
            settings: Settings {
                context_size: Some(512),
                ..Default::default()
            },
        };
        let mut args = vec!["modelrunnerd".to_string()];
        args.extend(l.to_args());
        assert_eq!(Launch::from_args(&args), Some(l));
        assert!(
            Launch::parse("{\"model\":\"m\",\"socket\":\"s\",\"settings\":{\"parallel\":0}}")
                .is_err()
        );
        assert_eq!(
            Launch::from_args(&["modelrunnerd".into(), "serve".into()]),
            None
        );
    }
}
