//! Daemon configuration: flags, environment, TOML file, defaults (in that order).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use serde::{Deserialize, Serialize};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// modelrunnerd: serves local models over HTTP.
#[derive(Debug, Parser)]
#[command(name = "modelrunnerd", version, about)]
pub struct Args {
    /// Address and port to listen on [default: 127.0.0.1:12434]
    #[arg(long, env = "MODELRUNNER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Model store directory [default: $XDG_DATA_HOME/modelrunner]
    #[arg(long, env = "MODELRUNNER_STORE")]
    pub store: Option<PathBuf>,
    /// TOML configuration file (see config/modelrunnerd.toml)
    #[arg(long, env = "MODELRUNNER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format [default: text]
    #[arg(long, env = "MODELRUNNER_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Largest JSON request body in bytes [default: 16777216]
    #[arg(long, env = "MODELRUNNER_BODY_LIMIT")]
    pub body_limit: Option<usize>,
    /// Largest model archive accepted by POST /models/load, in bytes [default: 1 TiB]
    #[arg(long, env = "MODELRUNNER_MAX_LOAD_SIZE")]
    pub max_load_size: Option<u64>,
    /// Print the effective configuration as TOML and exit
    #[arg(long)]
    pub print_config: bool,
    /// Maintenance to run instead of serving (the daemon must not be running)
    #[command(subcommand)]
    pub command: Option<Maintenance>,
}

/// Offline store maintenance.
#[derive(Debug, clap::Subcommand)]
pub enum Maintenance {
    /// Re-hash every blob and check every model; exit 1 when something is wrong
    Fsck {
        /// Remove corrupt blobs and stray files (models that need them stay broken)
        #[arg(long)]
        repair: bool,
    },
    /// Remove blobs and manifests that no model references
    Gc,
    /// Run one model in this process, serving the engine API on a Unix socket (started
    /// by the daemon; not for people)
    #[command(hide = true)]
    Runner(RunnerArgs),
}

/// Arguments of the hidden runner subcommand.
#[derive(Debug, clap::Args)]
pub struct RunnerArgs {
    /// GGUF file (first shard)
    #[arg(long)]
    pub model: std::path::PathBuf,
    /// Unix socket to serve on
    #[arg(long)]
    pub socket: std::path::PathBuf,
    /// Parallel slots
    #[arg(long, default_value_t = 4)]
    pub slots: u32,
    /// Context tokens per slot (default: the trained context, at most 4096)
    #[arg(long)]
    pub ctx_size: Option<u32>,
    /// Threads (default: physical cores)
    #[arg(long)]
    pub threads: Option<u32>,
    /// Tokens per decode step
    #[arg(long, default_value_t = 512)]
    pub batch: u32,
    /// Compute embeddings instead of completions
    #[arg(long)]
    pub embeddings: bool,
    /// Chat template file
    #[arg(long)]
    pub chat_template: Option<std::path::PathBuf>,
    /// Layers to offload to the GPU (builds with the `cuda` feature)
    #[arg(long, default_value_t = 0)]
    pub gpu_layers: u32,
}

/// The configuration file; every key is optional and unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    listen: Option<SocketAddr>,
    store: Option<PathBuf>,
    log_format: Option<LogFormat>,
    body_limit: Option<usize>,
    max_load_size: Option<u64>,
}

/// The validated configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Store root.
    pub store: PathBuf,
    /// Log format.
    pub log_format: LogFormat,
    /// JSON body limit.
    pub body_limit: usize,
    /// Archive limit.
    pub max_load_size: u64,
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("while reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("while parsing {}", path.display()))
}

impl Config {
    /// Merges flags/env over the file over defaults, and validates.
    pub fn resolve(args: &Args) -> anyhow::Result<Config> {
        let file = match &args.config {
            Some(p) => read_file(p)?,
            None => FileConfig::default(),
        };
        let store = match args.store.clone().or(file.store) {
            Some(p) => p,
            None => dirs::data_dir()
                .context(
                    "while finding the user's data directory (set --store or MODELRUNNER_STORE)",
                )?
                .join("modelrunner"),
        };
        let config = Config {
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or(([127, 0, 0, 1], 12434).into()),
            store,
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            body_limit: args.body_limit.or(file.body_limit).unwrap_or(16 << 20),
            max_load_size: args.max_load_size.or(file.max_load_size).unwrap_or(1 << 40),
        };
        if config.body_limit < 1024 {
            bail!("--body-limit (body_limit) must be at least 1024 bytes");
        }
        if !config.store.is_absolute() {
            bail!(
                "--store (store) must be an absolute path, got {}",
                config.store.display()
            );
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("modelrunnerd").chain(v.iter().copied())).unwrap()
    }

    #[test]
    fn flag_beats_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "listen = \"127.0.0.1:9\"\nstore = \"/srv/models\"\n").unwrap();
        let c = Config::resolve(&args(&["--config", f.to_str().unwrap()])).unwrap();
        assert_eq!(c.listen.port(), 9);
        assert_eq!(c.store, PathBuf::from("/srv/models"));
        assert_eq!(c.body_limit, 16 << 20);
        let c = Config::resolve(&args(&[
            "--config",
            f.to_str().unwrap(),
            "--listen",
            "127.0.0.1:7",
        ]))
        .unwrap();
        assert_eq!(c.listen.port(), 7);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "listn = \"x\"\n").unwrap();
        let e = format!(
            "{:#}",
            Config::resolve(&args(&["--config", f.to_str().unwrap()])).unwrap_err()
        );
        assert!(e.contains("c.toml") && e.contains("listn"), "{e}");
        let e = Config::resolve(&args(&["--store", "relative"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("--store"), "{e}");
    }
}
