//! Daemon configuration: flags, environment, TOML file, defaults, in that order. Every
//! option is declared once (`options`); clap reads flags and the environment and knows
//! which values it defaulted, the file fills those, and the merged values are checked
//! once, naming the flag, the key and, when the value came from it, the file.

mod options;
mod values;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args as _, CommandFactory, FromArgMatches, Parser};
use modelrunner_api::security::KeyHash;
use modelrunner_registry::RegistryConfig;
use serde::Serialize;

pub use options::{Access, LogFormat, Logging, Reasoning, RegistryFlags, Serving, Storage};

/// modelrunnerd: serves local models over HTTP.
#[derive(Debug, Parser)]
#[command(name = "modelrunnerd", version, about)]
pub struct Args {
    /// TOML configuration file (see config/modelrunnerd.toml)
    #[arg(long, env = "MODELRUNNER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print the effective configuration as TOML and exit
    #[arg(long)]
    pub print_config: bool,
    #[command(flatten)]
    access: Access,
    #[command(flatten)]
    logging: Logging,
    #[command(flatten)]
    storage: Storage,
    #[command(flatten)]
    serving: Serving,
    #[command(flatten)]
    registries: RegistryFlags,
    /// What to run instead of serving
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What the daemon binary runs instead of serving.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Re-hash every blob and check every model; exit 1 when something is wrong (the
    /// daemon must not be running)
    Fsck {
        /// Remove corrupt blobs and stray files (models that need them stay broken)
        #[arg(long)]
        repair: bool,
    },
    /// Remove blobs and manifests that no model references (the daemon must not be
    /// running)
    Gc,
    /// Print the digest to configure for an API key read from stdin (or for a new
    /// random key with --generate, printed first)
    HashKey {
        /// Make a new random key
        #[arg(long)]
        generate: bool,
    },
    /// Run one model in this process, as the launch description (JSON) says, serving
    /// the runner protocol on its Unix socket (started by the daemon; not for people)
    #[command(hide = true, name = modelrunner_protocol::launch::RUNNER_SUBCOMMAND)]
    Runner {
        /// The launch description
        #[arg(value_parser = parse_launch)]
        launch: Box<modelrunner_protocol::Launch>,
    },
    /// Print the resident memory of an idle runner process in bytes (used by the daemon
    /// for memory estimates; not for people)
    #[command(hide = true)]
    RunnerBaseline,
}

/// Reads a runner's launch description (boxed: it is far larger than the other commands).
fn parse_launch(arg: &str) -> Result<Box<modelrunner_protocol::Launch>, String> {
    modelrunner_protocol::Launch::parse(arg).map(Box::new)
}

/// The validated configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Listening and access.
    #[serde(flatten)]
    pub access: Access,
    /// Logging.
    #[serde(flatten)]
    pub logging: Logging,
    /// The store and request sizes.
    #[serde(flatten)]
    pub storage: Storage,
    /// Serving.
    #[serde(flatten)]
    pub serving: Serving,
    /// Registry trust, mirrors and credentials.
    pub registries: RegistryConfig,
    /// The store root (`storage.store`, or the user's data directory).
    #[serde(skip)]
    pub store: PathBuf,
    /// Every accepted API key: `access.api_keys` and the keys file's.
    #[serde(skip)]
    pub api_keys: Vec<KeyHash>,
}

/// Where each value of the merged options came from.
struct Origins<'a> {
    matches: &'a ArgMatches,
    file: Option<&'a Path>,
    from_file: BTreeSet<String>,
}

impl Origins<'_> {
    /// `--flag (key)`, and the file when the value is the file's.
    fn name(&self, key: &str) -> String {
        let flag = Args::command()
            .get_arguments()
            .find(|a| a.get_id() == key)
            .and_then(|a| a.get_long().map(|l| format!("--{l} ")))
            .unwrap_or_default();
        match self.file {
            Some(f) if self.from_file.contains(key) => format!("{key} in {}", f.display()),
            _ => format!("{flag}({key})"),
        }
    }

    fn explicit(&self, key: &str) -> bool {
        matches!(
            self.matches.value_source(key),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    }
}

/// The file keys: every option of the concern structs.
fn keys() -> BTreeSet<String> {
    let not_keys: BTreeSet<String> = RegistryFlags::augment_args(clap::Command::new("x"))
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .chain(["config", "print_config", "help", "version"].map(String::from))
        .collect();
    Args::command()
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .filter(|id| !not_keys.contains(id))
        .collect()
}

fn table(v: &impl Serialize) -> anyhow::Result<toml::Table> {
    toml::Table::try_from(v).context("while reading the options")
}

impl Config {
    /// Parses flags and the environment (exiting with clap's message on bad ones).
    pub fn args() -> (ArgMatches, Args) {
        let matches = Args::command().get_matches();
        let args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        (matches, args)
    }

    /// Merges the file under flags and the environment, and validates.
    pub fn resolve(matches: &ArgMatches, args: &Args) -> anyhow::Result<Config> {
        let mut merged = toml::Table::new();
        merged.extend(table(&args.access)?);
        merged.extend(table(&args.logging)?);
        merged.extend(table(&args.storage)?);
        merged.extend(table(&args.serving)?);
        let mut origins = Origins {
            matches,
            file: args.config.as_deref(),
            from_file: BTreeSet::new(),
        };
        let mut registries = toml::Value::Table(toml::Table::new());
        if let Some(path) = &args.config {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("while reading {}", path.display()))?;
            let file: toml::Table = toml::from_str(&text)
                .with_context(|| format!("while parsing {}", path.display()))?;
            let known = keys();
            for (k, v) in file {
                if k == "registries" {
                    registries = v;
                    continue;
                }
                if !known.contains(&k) {
                    bail!("unknown key {k:?} in {}", path.display());
                }
                match (merged.get_mut(&k), v) {
                    // Lists from the file and from flags add up.
                    (Some(toml::Value::Array(ours)), toml::Value::Array(mut theirs))
                        if origins.explicit(&k) =>
                    {
                        theirs.append(ours);
                        *ours = theirs;
                    }
                    _ if origins.explicit(&k) => {}
                    (_, v) => {
                        merged.insert(k.clone(), v);
                        origins.from_file.insert(k);
                    }
                }
            }
        }
        let in_file = |e: toml::de::Error| match &args.config {
            Some(p) => anyhow::anyhow!("{e} (in {})", p.display()),
            None => anyhow::anyhow!("{e}"),
        };
        let mut registries: RegistryConfig = registries.try_into().map_err(in_file)?;
        registries
            .insecure
            .extend(args.registries.insecure_registries.iter().cloned());
        registries
            .ca_certs
            .extend(args.registries.registry_ca_certs.iter().cloned());
        if let Some(e) = &args.registries.hf_endpoint {
            registries.hf_endpoint = Some(e.clone());
        }
        if let Some(t) = &args.registries.hf_token {
            registries.hf_token = Some(modelrunner_registry::config::Secret(t.clone()));
        }
        let merged = toml::Value::Table(merged);
        let mut config = Config {
            access: merged.clone().try_into().map_err(in_file)?,
            logging: merged.clone().try_into().map_err(in_file)?,
            storage: merged.clone().try_into().map_err(in_file)?,
            serving: merged.try_into().map_err(in_file)?,
            registries,
            store: PathBuf::new(),
            api_keys: Vec::new(),
        };
        config.check(&origins)?;
        Ok(config)
    }

    /// Ranges and cross-field rules, once, on the merged values.
    fn check(&mut self, o: &Origins<'_>) -> anyhow::Result<()> {
        let s = &self.serving;
        if !(1..=64).contains(&s.parallel) {
            bail!("{} must be from 1 to 64", o.name("parallel"));
        }
        if !(64..=1 << 20).contains(&s.default_context) {
            bail!("{} must be from 64 to 1048576", o.name("default_context"));
        }
        if s.health_interval.0 < std::time::Duration::from_millis(100) {
            bail!("{} must be at least 100ms", o.name("health_interval"));
        }
        if !(1024..=256 << 20).contains(&self.storage.body_limit) {
            bail!(
                "{} must be from 1024 bytes to 256 MiB (268435456)",
                o.name("body_limit")
            );
        }
        for (span, key) in [
            (&self.storage.header_timeout, "header_timeout"),
            (&self.storage.body_timeout, "body_timeout"),
        ] {
            if span.0 < std::time::Duration::from_millis(100) {
                bail!("{} must be at least 100ms", o.name(key));
            }
        }
        if !(1..=1 << 20).contains(&self.storage.max_connections) {
            bail!("{} must be from 1 to 1048576", o.name("max_connections"));
        }
        self.store = match &self.storage.store {
            Some(p) => p.clone(),
            None => dirs::data_dir()
                .context(
                    "while finding the user's data directory (set --store or MODELRUNNER_STORE)",
                )?
                .join("modelrunner"),
        };
        if !self.store.is_absolute() {
            bail!(
                "{} must be an absolute path, got {}",
                o.name("store"),
                self.store.display()
            );
        }
        self.storage.store = Some(self.store.clone());
        let a = &self.access;
        let mut keys = crate::access::parse_keys(&a.api_keys, &o.name("api_keys"))?;
        if let Some(f) = &a.api_keys_file {
            let from_file = crate::access::read_keys_file(f)?;
            keys.extend(crate::access::parse_keys(
                &from_file,
                &f.display().to_string(),
            )?);
        }
        self.api_keys = keys;
        crate::access::check_origins(&a.cors_origins)?;
        if a.listen.0.is_none() && a.socket.is_none() {
            bail!("--listen (listen) is \"none\" and there is no --socket (socket): nothing to listen on");
        }
        if a.socket.as_ref().is_some_and(|s| !s.is_absolute()) {
            bail!("{} must be an absolute path", o.name("socket"));
        }
        let keys = self.api_keys.len();
        crate::access::check_exposure(&o.name("listen"), a.listen.0, keys, a.insecure_no_auth)?;
        crate::access::check_exposure(
            &o.name("ollama_listen"),
            a.ollama_listen,
            keys,
            a.insecure_no_auth,
        )
    }
}

#[cfg(test)]
mod tests;
