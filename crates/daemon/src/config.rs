//! Daemon configuration: flags, environment, TOML file, defaults (in that order).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use modelrunner_registry::RegistryConfig;
use modelrunner_scheduler::KeepAlive;
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
#[derive(Debug, Default, Parser)]
#[command(name = "modelrunnerd", version, about)]
pub struct Args {
    /// Address and port to listen on, or "none" for the Unix socket only
    /// [default: 127.0.0.1:12434]
    #[arg(long, env = "MODELRUNNER_LISTEN")]
    pub listen: Option<String>,
    /// Unix socket to listen on as well (mode 0660: the daemon's group may use it)
    #[arg(long, env = "MODELRUNNER_SOCKET")]
    pub socket: Option<PathBuf>,
    /// Digest of an accepted API key (`sha256:<hex>`, from `modelrunnerd hash-key`);
    /// repeatable, or comma-separated in the environment
    #[arg(
        long = "api-key-hash",
        env = "MODELRUNNER_API_KEY_HASHES",
        value_delimiter = ','
    )]
    pub api_key_hashes: Vec<String>,
    /// File of accepted API key digests, one per line
    #[arg(long, env = "MODELRUNNER_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,
    /// Listen beyond loopback without API keys (anyone who can connect may use it)
    #[arg(long, env = "MODELRUNNER_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,
    /// An origin browsers may call from (CORS), besides localhost; repeatable
    #[arg(
        long = "cors-origin",
        env = "MODELRUNNER_CORS_ORIGINS",
        value_delimiter = ','
    )]
    pub cors_origins: Vec<String>,
    /// Log level or filter ("info", "debug", "modelrunner_registry=debug") [default: info;
    /// RUST_LOG, when set, wins]
    #[arg(long, env = "MODELRUNNER_LOG_LEVEL")]
    pub log_level: Option<String>,
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
    /// Idle time before a model is unloaded: a duration ("5m", "1h"), "0" or "-1" (never)
    /// [default: 5m]
    #[arg(long, env = "MODELRUNNER_KEEP_ALIVE", allow_hyphen_values = true)]
    pub keep_alive: Option<String>,
    /// Parallel request slots per loaded model [default: 4]
    #[arg(long, env = "MODELRUNNER_PARALLEL")]
    pub parallel: Option<u32>,
    /// Requests that may wait per model beyond its slots; more get 503 [default: 64]
    #[arg(long, env = "MODELRUNNER_MAX_QUEUE")]
    pub max_queue: Option<usize>,
    /// Memory all loaded models together may use ("8GiB", "512MiB", bytes)
    /// [default: what the machine has available]
    #[arg(long, env = "MODELRUNNER_MEMORY_LIMIT")]
    pub memory_limit: Option<String>,
    /// A registry (`host` or `host:port`) reached over plain HTTP or unverified TLS;
    /// repeatable, or comma-separated in the environment (loopback ones need no listing)
    #[arg(
        long = "insecure-registry",
        env = "MODELRUNNER_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,
    /// A PEM file of extra CA certificates for registries; repeatable
    #[arg(
        long = "registry-ca-cert",
        env = "MODELRUNNER_REGISTRY_CA_CERTS",
        value_delimiter = ','
    )]
    pub registry_ca_certs: Vec<PathBuf>,
    /// Largest default context per slot; a model's trained context is used up to this
    /// [default: 4096]
    #[arg(long, env = "MODELRUNNER_DEFAULT_CONTEXT")]
    pub default_context: Option<u32>,
    /// Generation threads per model [default: physical cores]
    #[arg(long, env = "MODELRUNNER_THREADS")]
    pub threads: Option<u32>,
    /// Layers to offload to the GPU (CUDA builds) [default: 0]
    #[arg(long, env = "MODELRUNNER_GPU_LAYERS")]
    pub gpu_layers: Option<u32>,
    /// Time between health checks of a running model ("5s") [default: 5s]
    #[arg(long, env = "MODELRUNNER_HEALTH_INTERVAL", allow_hyphen_values = true)]
    pub health_interval: Option<String>,
    /// On SIGTERM, how long in-flight requests may take to finish ("30s") [default: 30s]
    #[arg(long, env = "MODELRUNNER_SHUTDOWN_TIMEOUT", allow_hyphen_values = true)]
    pub shutdown_timeout: Option<String>,
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
    /// Print the digest to configure for an API key read from stdin (or for a new
    /// random key with --generate, printed first)
    HashKey {
        /// Make a new random key
        #[arg(long)]
        generate: bool,
    },
    /// Run one model in this process, serving the engine API on a Unix socket (started
    /// by the daemon; not for people)
    #[command(hide = true)]
    Runner(RunnerArgs),
    /// Print the resident memory of an idle runner process in bytes (used by the daemon
    /// for memory estimates; not for people)
    #[command(hide = true)]
    RunnerBaseline,
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
    listen: Option<String>,
    socket: Option<PathBuf>,
    api_keys: Option<Vec<String>>,
    api_keys_file: Option<PathBuf>,
    insecure_no_auth: Option<bool>,
    cors_origins: Option<Vec<String>>,
    log_level: Option<String>,
    store: Option<PathBuf>,
    log_format: Option<LogFormat>,
    body_limit: Option<usize>,
    max_load_size: Option<u64>,
    keep_alive: Option<String>,
    parallel: Option<u32>,
    max_queue: Option<usize>,
    memory_limit: Option<String>,
    default_context: Option<u32>,
    threads: Option<u32>,
    gpu_layers: Option<u32>,
    health_interval: Option<String>,
    shutdown_timeout: Option<String>,
    registries: Option<RegistryConfig>,
}

/// The validated configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// TCP listen address ("none": the Unix socket only).
    #[serde(with = "listen_text")]
    pub listen: Option<SocketAddr>,
    /// Unix socket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// Digests of the accepted API keys (from the file, flags and the keys file).
    pub api_keys: Vec<String>,
    /// Whether listening beyond loopback without keys was allowed.
    pub insecure_no_auth: bool,
    /// CORS origins besides loopback.
    pub cors_origins: Vec<String>,
    /// Log filter.
    pub log_level: String,
    /// Store root.
    pub store: PathBuf,
    /// Log format.
    pub log_format: LogFormat,
    /// JSON body limit.
    pub body_limit: usize,
    /// Archive limit.
    pub max_load_size: u64,
    /// Default keep-alive (Go duration, or -1).
    pub keep_alive: String,
    /// Slots per model.
    pub parallel: u32,
    /// Queue places per model.
    pub max_queue: usize,
    /// Bytes all models may use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<u64>,
    /// Default context cap.
    pub default_context: u32,
    /// Threads per model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// GPU layers.
    pub gpu_layers: u32,
    /// Health check interval.
    #[serde(with = "duration_text")]
    pub health_interval: Duration,
    /// Drain time on SIGTERM.
    #[serde(with = "duration_text")]
    pub shutdown_timeout: Duration,
    /// Registry trust, mirrors and credentials.
    pub registries: RegistryConfig,
}

mod listen_text {
    use std::net::SocketAddr;

    pub fn serialize<S: serde::Serializer>(
        a: &Option<SocketAddr>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match a {
            Some(a) => s.collect_str(a),
            None => s.serialize_str("none"),
        }
    }
}

/// "none" or an address.
fn listen_addr(v: &str) -> anyhow::Result<Option<SocketAddr>> {
    if v.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    v.parse().map(Some).map_err(|_| {
        anyhow::anyhow!("--listen (listen) must be ADDRESS:PORT or \"none\", got {v:?}")
    })
}

mod duration_text {
    use std::time::Duration;

    use modelrunner_scheduler::KeepAlive;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&KeepAlive::For(*d))
    }
}

/// A duration like "5s" or "1m30s" (negative or "never" is refused).
fn duration(flag: &str, v: &str) -> anyhow::Result<Duration> {
    match KeepAlive::parse(v) {
        Ok(KeepAlive::For(d)) => Ok(d),
        _ => bail!("{flag} must be a duration like \"5s\" or \"1m\", got {v:?}"),
    }
}

/// "8GiB", "512MiB", "2G", "100M", or bytes.
pub fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => return None,
    };
    let bytes = n * scale as f64;
    (0.0..1e19).contains(&bytes).then_some(bytes as u64)
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("while reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("while parsing {}", path.display()))
}

impl Config {
    /// Merges flags/env over the file over defaults, and validates.
    pub fn resolve(args: &Args) -> anyhow::Result<Config> {
        let result = Self::build(args);
        if let (Err(e), Some(path)) = (&result, &args.config) {
            // When the file alone (no flags, no environment) is invalid, say so.
            let text = format!("{e:#}");
            let shown = path.display().to_string();
            let file_only = Args {
                config: Some(path.clone()),
                store: Some(PathBuf::from("/")),
                ..Args::default()
            };
            if !text.contains(&shown) && Self::build(&file_only).is_err() {
                bail!("{text} (in {shown})");
            }
        }
        result
    }

    fn build(args: &Args) -> anyhow::Result<Config> {
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
        let mut api_keys = file.api_keys.clone().unwrap_or_default();
        crate::access::parse_keys(&api_keys, "api_keys")?;
        crate::access::parse_keys(&args.api_key_hashes, "--api-key-hash")?;
        api_keys.extend(args.api_key_hashes.iter().cloned());
        if let Some(f) = args.api_keys_file.as_ref().or(file.api_keys_file.as_ref()) {
            let from_file = crate::access::read_keys_file(f)?;
            crate::access::parse_keys(&from_file, &f.display().to_string())?;
            api_keys.extend(from_file);
        }
        let mut cors_origins = file.cors_origins.clone().unwrap_or_default();
        cors_origins.extend(args.cors_origins.iter().cloned());
        crate::access::check_origins(&cors_origins)?;
        let listen = match args.listen.clone().or(file.listen.clone()) {
            Some(v) => listen_addr(&v)?,
            None => Some(([127, 0, 0, 1], 12434).into()),
        };
        let socket = args.socket.clone().or(file.socket.clone());
        if listen.is_none() && socket.is_none() {
            bail!("--listen (listen) is \"none\" and there is no --socket (socket): nothing to listen on");
        }
        if socket.as_ref().is_some_and(|s| !s.is_absolute()) {
            bail!("--socket (socket) must be an absolute path");
        }
        let insecure_no_auth = args.insecure_no_auth || file.insecure_no_auth.unwrap_or(false);
        crate::access::check_exposure(listen, api_keys.len(), insecure_no_auth)?;
        let config = Config {
            listen,
            socket,
            api_keys,
            insecure_no_auth,
            cors_origins,
            log_level: args
                .log_level
                .clone()
                .or(file.log_level.clone())
                .unwrap_or_else(|| "info".into()),
            store,
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            body_limit: args.body_limit.or(file.body_limit).unwrap_or(16 << 20),
            max_load_size: args.max_load_size.or(file.max_load_size).unwrap_or(1 << 40),
            keep_alive: {
                let v = args
                    .keep_alive
                    .clone()
                    .or(file.keep_alive)
                    .unwrap_or_else(|| "5m".into());
                KeepAlive::parse(&v)
                    .map_err(|e| anyhow::anyhow!("--keep-alive (keep_alive): {e}"))?
                    .to_string()
            },
            parallel: args.parallel.or(file.parallel).unwrap_or(4),
            max_queue: args.max_queue.or(file.max_queue).unwrap_or(64),
            memory_limit: match args.memory_limit.clone().or(file.memory_limit) {
                None => None,
                Some(v) => Some(parse_size(&v).with_context(|| {
                    format!("--memory-limit (memory_limit) must be a size like \"8GiB\", got {v:?}")
                })?),
            },
            default_context: args
                .default_context
                .or(file.default_context)
                .unwrap_or(4096),
            threads: args.threads.or(file.threads),
            gpu_layers: args.gpu_layers.or(file.gpu_layers).unwrap_or(0),
            health_interval: duration(
                "--health-interval (health_interval)",
                &args
                    .health_interval
                    .clone()
                    .or(file.health_interval)
                    .unwrap_or_else(|| "5s".into()),
            )?,
            shutdown_timeout: duration(
                "--shutdown-timeout (shutdown_timeout)",
                &args
                    .shutdown_timeout
                    .clone()
                    .or(file.shutdown_timeout)
                    .unwrap_or_else(|| "30s".into()),
            )?,
            registries: {
                let mut r = file.registries.unwrap_or_default();
                r.insecure.extend(args.insecure_registries.iter().cloned());
                r.ca_certs.extend(args.registry_ca_certs.iter().cloned());
                r
            },
        };
        if !(1..=64).contains(&config.parallel) {
            bail!("--parallel (parallel) must be from 1 to 64");
        }
        if !(64..=1 << 20).contains(&config.default_context) {
            bail!("--default-context (default_context) must be from 64 to 1048576");
        }
        if config.health_interval < Duration::from_millis(100) {
            bail!("--health-interval (health_interval) must be at least 100ms");
        }
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
        assert_eq!(c.listen.unwrap().port(), 9);
        assert_eq!(c.store, PathBuf::from("/srv/models"));
        assert_eq!(c.body_limit, 16 << 20);
        let c = Config::resolve(&args(&[
            "--config",
            f.to_str().unwrap(),
            "--listen",
            "127.0.0.1:7",
        ]))
        .unwrap();
        assert_eq!(c.listen.unwrap().port(), 7);
    }

    #[test]
    fn serving_settings_parse_and_name_their_flag() {
        let c = Config::resolve(&args(&[
            "--memory-limit",
            "1.5GiB",
            "--keep-alive",
            "-1",
            "--health-interval",
            "250ms",
        ]))
        .unwrap();
        assert_eq!(c.memory_limit, Some(3 << 29));
        assert_eq!(c.keep_alive, "-1");
        assert_eq!(c.health_interval, Duration::from_millis(250));
        assert_eq!(c.parallel, 4);
        for (flag, value) in [
            ("--memory-limit", "lots"),
            ("--keep-alive", "soon"),
            ("--health-interval", "-1"),
            ("--parallel", "0"),
        ] {
            let e = format!("{:#}", Config::resolve(&args(&[flag, value])).unwrap_err());
            assert!(e.contains(flag), "{flag}: {e}");
        }
        assert_eq!(parse_size("512MiB"), Some(512 << 20));
        assert_eq!(parse_size("2G"), Some(2_000_000_000));
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("-1"), None);
    }

    #[test]
    fn the_shipped_config_file_is_the_defaults() {
        let shipped = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../config/modelrunnerd.toml"
        );
        let c = Config::resolve(&args(&["--config", shipped, "--store", "/s"])).unwrap();
        let d = Config::resolve(&args(&["--store", "/s"])).unwrap();
        assert_eq!(toml::to_string(&c).unwrap(), toml::to_string(&d).unwrap());
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
        // A bad value in the file names the key and the file; the same value from a flag
        // does not blame the file.
        std::fs::write(&f, "parallel = 0\n").unwrap();
        let e = format!(
            "{:#}",
            Config::resolve(&args(&["--config", f.to_str().unwrap()])).unwrap_err()
        );
        assert!(e.contains("parallel") && e.contains("c.toml"), "{e}");
        std::fs::write(&f, "parallel = 2\n").unwrap();
        let e = format!(
            "{:#}",
            Config::resolve(&args(&["--config", f.to_str().unwrap(), "--parallel", "0"]))
                .unwrap_err()
        );
        assert!(e.contains("--parallel") && !e.contains("c.toml"), "{e}");
    }
}
