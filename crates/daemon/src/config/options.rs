//! Every option of the daemon, declared once: one struct per concern that clap fills
//! from flags and the environment and serde fills from the file. The field's name is
//! the file's key and the flag's id, its doc comment the `--help` text, its type the one
//! parser of its value, and its clap default the built-in default.

use std::path::PathBuf;

use clap::ValueEnum;
use modelrunner_protocol::launch::{DEFAULT_CONTEXT_CAP, DEFAULT_PARALLEL};
use modelrunner_scheduler::KeepAlive;
use serde::{Deserialize, Serialize};

use super::values::{Listen, Size, Span};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// What becomes of a model's reasoning when a request does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reasoning {
    /// Split off into `reasoning_content`.
    Auto,
    /// Left in the answer's text.
    None,
}

/// Where the daemon listens, and who may use it.
#[derive(Debug, Clone, clap::Args, Serialize, Deserialize)]
pub struct Access {
    /// Address and port to listen on, or "none" for the Unix socket only
    #[arg(long, env = "MODELRUNNER_LISTEN", default_value = "127.0.0.1:12434")]
    pub listen: Listen,
    /// A second address serving the same API, for clients that assume Ollama's port
    /// (e.g. 127.0.0.1:11434); off by default
    #[arg(long, env = "MODELRUNNER_OLLAMA_LISTEN")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ollama_listen: Option<std::net::SocketAddr>,
    /// Unix socket to listen on as well (mode 0660: the daemon's group may use it)
    #[arg(long, env = "MODELRUNNER_SOCKET")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// Digest of an accepted API key (`sha256:<hex>`, from `modelrunnerd hash-key`);
    /// repeatable, or comma-separated in the environment
    #[arg(
        long = "api-key-hash",
        env = "MODELRUNNER_API_KEY_HASHES",
        value_delimiter = ','
    )]
    #[serde(default)]
    pub api_keys: Vec<String>,
    /// File of accepted API key digests, one per line
    #[arg(long, env = "MODELRUNNER_API_KEYS_FILE")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_keys_file: Option<PathBuf>,
    /// Listen beyond loopback without API keys (anyone who can connect may use it)
    #[arg(long, env = "MODELRUNNER_INSECURE_NO_AUTH")]
    #[serde(default)]
    pub insecure_no_auth: bool,
    /// An origin browsers may call from (CORS), besides localhost; repeatable
    #[arg(
        long = "cors-origin",
        env = "MODELRUNNER_CORS_ORIGINS",
        value_delimiter = ','
    )]
    #[serde(default)]
    pub cors_origins: Vec<String>,
}

/// Logging.
#[derive(Debug, Clone, clap::Args, Serialize, Deserialize)]
pub struct Logging {
    /// Log level or filter ("info", "debug", "modelrunner_registry=debug"); RUST_LOG, when
    /// set, wins
    #[arg(long, env = "MODELRUNNER_LOG_LEVEL", default_value = "info")]
    pub log_level: String,
    /// Log format
    #[arg(long, env = "MODELRUNNER_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

/// The store and the sizes of what requests may bring.
#[derive(Debug, Clone, clap::Args, Serialize, Deserialize)]
pub struct Storage {
    /// Model store directory [default: $XDG_DATA_HOME/modelrunner]
    #[arg(long, env = "MODELRUNNER_STORE")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<PathBuf>,
    /// A directory of GGUF files (often a read-only volume) to serve in place as models,
    /// never copied: each NAME.gguf, and each NAME/ directory holding one model; /health
    /// is 503 until they are hashed
    #[arg(long, env = "MODELRUNNER_MODELS_DIR")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub models_dir: Option<PathBuf>,
    /// Largest JSON request body in bytes (at most 256 MiB)
    #[arg(long, env = "MODELRUNNER_BODY_LIMIT", default_value_t = 16 << 20)]
    pub body_limit: usize,
    /// Longest wait for a request's headers, from the connection's start or the end of
    /// the previous response (so also how long an idle keep-alive connection is kept)
    #[arg(long, env = "MODELRUNNER_HEADER_TIMEOUT", default_value = "30s")]
    pub header_timeout: Span,
    /// Longest wait for the next bytes of a request body; 408 beyond
    #[arg(long, env = "MODELRUNNER_BODY_TIMEOUT", default_value = "30s")]
    pub body_timeout: Span,
    /// Client connections served at once; more are answered 503 and closed
    #[arg(long, env = "MODELRUNNER_MAX_CONNECTIONS", default_value_t = 512)]
    pub max_connections: usize,
    /// Largest model archive accepted by POST /models/load, in bytes
    #[arg(long, env = "MODELRUNNER_MAX_LOAD_SIZE", default_value_t = 1 << 40)]
    pub max_load_size: u64,
    /// Pull a model a request names that is not in the store, when it is at most this big
    /// ("8GiB"; the pull policy applies) [default: off]
    #[arg(long, env = "MODELRUNNER_PULL_ON_FIRST_USE")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_on_first_use: Option<Size>,
    /// Most stored OpenAI Responses kept (in the store's responses/); the oldest go first
    #[arg(long, env = "MODELRUNNER_RESPONSES_MAX_COUNT", default_value_t = 1000)]
    pub responses_max_count: usize,
    /// Most bytes of stored Responses kept; a conversation larger than this is refused
    #[arg(long, env = "MODELRUNNER_RESPONSES_MAX_BYTES", default_value_t = 256 << 20)]
    pub responses_max_bytes: u64,
    /// How long a stored Response is kept ("720h")
    #[arg(long, env = "MODELRUNNER_RESPONSES_MAX_AGE", default_value = "720h")]
    pub responses_max_age: Span,
}

/// How models are served.
#[derive(Debug, Clone, clap::Args, Serialize, Deserialize)]
pub struct Serving {
    /// Idle time before a model is unloaded: a duration ("5m", "1h"), "0" or "-1" (never)
    #[arg(
        long,
        env = "MODELRUNNER_KEEP_ALIVE",
        allow_hyphen_values = true,
        default_value = "5m"
    )]
    pub keep_alive: KeepAlive,
    /// A model to pull when missing and load at start-up, kept loaded; repeatable, or
    /// comma-separated in the environment. /health is 503 until every one is loaded
    #[arg(long = "preload", env = "MODELRUNNER_PRELOAD", value_delimiter = ',')]
    #[serde(default)]
    pub preload: Vec<String>,
    /// A model to pull when missing at start-up (not loaded); repeatable
    #[arg(long = "prefetch", env = "MODELRUNNER_PREFETCH", value_delimiter = ',')]
    #[serde(default)]
    pub prefetch: Vec<String>,
    /// Parallel request slots per loaded model
    #[arg(long, env = "MODELRUNNER_PARALLEL", default_value_t = DEFAULT_PARALLEL)]
    pub parallel: u32,
    /// Requests that may wait per model beyond its slots; more get 503
    #[arg(long, env = "MODELRUNNER_MAX_QUEUE", default_value_t = 64)]
    pub max_queue: usize,
    /// Memory all loaded models together may use ("8GiB", "512MiB", bytes) [default: what
    /// the machine has available]
    #[arg(long, env = "MODELRUNNER_MEMORY_LIMIT")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<Size>,
    /// Largest default context per slot; a model's trained context is used up to this
    #[arg(long, env = "MODELRUNNER_DEFAULT_CONTEXT", default_value_t = DEFAULT_CONTEXT_CAP)]
    pub default_context: u32,
    /// Generation threads per model [default: physical cores]
    #[arg(long, env = "MODELRUNNER_THREADS")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// Layers to offload to the GPU (CUDA builds)
    #[arg(long, env = "MODELRUNNER_GPU_LAYERS", default_value_t = 0)]
    pub gpu_layers: u32,
    /// Time between health checks of a running model ("5s")
    #[arg(
        long,
        env = "MODELRUNNER_HEALTH_INTERVAL",
        allow_hyphen_values = true,
        default_value = "5s"
    )]
    pub health_interval: Span,
    /// What becomes of reasoning (thinking) in answers when a request does not say:
    /// "auto" splits it into reasoning_content, "none" leaves it in the text
    #[arg(long, env = "MODELRUNNER_REASONING_FORMAT", default_value = "auto")]
    pub reasoning_format: Reasoning,
    /// On SIGTERM, how long in-flight requests may take to finish ("30s")
    #[arg(
        long,
        env = "MODELRUNNER_SHUTDOWN_TIMEOUT",
        allow_hyphen_values = true,
        default_value = "30s"
    )]
    pub shutdown_timeout: Span,
    /// The program each model's runner is started as, with `runner LAUNCH-JSON` as its
    /// arguments (a wrapper that sets limits or a profiler, or a stand-in in tests)
    /// [default: this modelrunnerd]
    #[arg(long, env = "MODELRUNNER_RUNNER_PROGRAM")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_program: Option<PathBuf>,
}

/// Registry flags, added to the file's `[registries]` lists.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RegistryFlags {
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
    /// The Hugging Face Hub that `hf.co/...` references are pulled from (a mirror, or a
    /// test's) [default: https://huggingface.co]
    #[arg(long = "hf-endpoint", env = "HF_ENDPOINT")]
    pub hf_endpoint: Option<String>,
    /// The Hugging Face token for private and gated repositories, sent to the Hub only
    #[arg(long = "hf-token", env = "HF_TOKEN", hide_env_values = true)]
    pub hf_token: Option<String>,
}
