//! The scheduler: which runners exist, loading them on demand (one load per model however
//! many requests wait), admitting them against memory, unloading idle ones, and handing
//! requests a guard that holds a slot or queue place.
//!
//! - `acquire`: a request's way to a runner (and the guard it holds);
//! - `load`: starting a runner from its launch description, and the load backoff;
//! - `admission`: the memory check, evicting idle runners to make room;
//! - `unload`: unloading on request, on keep-alive expiry and at shutdown;
//! - `configure`: per-model settings;
//! - `status`: what `ps` and the metrics show.

mod acquire;
mod admission;
mod configure;
mod load;
mod status;
mod unload;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use modelrunner_protocol::{Mode, Settings};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use acquire::RunnerGuard;
pub use status::{CounterSnapshot, RunnerStatus};
pub use unload::Unload;

use crate::error::SchedulerError;
use crate::keepalive::KeepAlive;
use crate::runner::{self, Key, Runner};
use crate::settings::SettingsStore;

/// How the scheduler runs models.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// The program whose runner subcommand serves one model (`modelrunnerd`).
    pub program: PathBuf,
    /// Where runner sockets and pid files live (kept short: socket paths are limited).
    pub run_dir: PathBuf,
    /// Where per-model settings are saved; `None` keeps them in memory.
    pub settings_file: Option<PathBuf>,
    /// Idle time before a runner is unloaded, unless the model or request says otherwise.
    pub keep_alive: KeepAlive,
    /// The daemon's runner settings, below each model's own (unset: the runner
    /// protocol's defaults).
    pub runner: Settings,
    /// Largest default context per slot (a model's trained context is used up to this).
    pub default_context: u32,
    /// Requests that may wait for a slot, per runner, before new ones get 503.
    pub max_queue: usize,
    /// Memory all runners together may use; `None`: what the machine has available.
    pub memory_limit: Option<u64>,
    /// Memory always left to the rest of the machine.
    pub memory_reserve: u64,
    /// Whether runners can offload at all (a CUDA build); without it GPU layers are
    /// ignored by llama.cpp, and by the memory estimate.
    pub gpu: bool,
    /// Time between health checks of a runner.
    pub health_interval: Duration,
    /// Time a health check may take.
    pub health_timeout: Duration,
    /// Longest a runner may take to load its model.
    pub load_timeout: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            program: PathBuf::from("modelrunnerd"),
            run_dir: std::env::temp_dir(),
            settings_file: None,
            keep_alive: KeepAlive::DEFAULT,
            runner: Settings::default(),
            default_context: modelrunner_protocol::launch::DEFAULT_CONTEXT_CAP,
            max_queue: 64,
            memory_limit: None,
            memory_reserve: 256 << 20,
            gpu: false,
            health_interval: Duration::from_secs(5),
            health_timeout: Duration::from_secs(3),
            load_timeout: Duration::from_secs(600),
        }
    }
}

/// A model to run, as resolved from the store.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    /// Model ID (`sha256:...`).
    pub id: String,
    /// The name to show (its first tag, or the reference used).
    pub name: String,
    /// GGUF files, first shard first.
    pub shards: Vec<PathBuf>,
    /// The packaged chat template.
    pub chat_template: Option<PathBuf>,
    /// The packaged context size.
    pub packaged_context: Option<u64>,
    /// The mode to run it in.
    pub mode: Mode,
}

impl ModelSpec {
    fn key(&self) -> Key {
        Key {
            model_id: self.id.clone(),
            mode: self.mode,
        }
    }
}

/// How a load ended, for the requests waiting on it.
type LoadResult = Option<Result<(), Arc<SchedulerError>>>;

enum Slot {
    Loading {
        instance: u64,
        name: String,
        done: watch::Receiver<LoadResult>,
    },
    Ready(Arc<Runner>),
}

#[derive(Default)]
struct State {
    runners: HashMap<Key, Slot>,
    /// Recent failures per model: count and time, for load backoff.
    failures: HashMap<Key, (u32, Instant)>,
}

/// Runs models on demand. Create with [`Scheduler::new`] inside a tokio runtime.
pub struct Scheduler {
    cfg: SchedulerConfig,
    /// Never held across an await.
    state: Mutex<State>,
    /// Serialises memory admission: one load decides at a time.
    admission: tokio::sync::Mutex<()>,
    settings: Mutex<SettingsStore>,
    next_instance: AtomicU64,
    /// Wakes the idle reaper early (a runner with keep-alive 0 became idle).
    reaper: Notify,
    /// Cancelled at shutdown: refuses new work and ends the reaper.
    shutdown: CancellationToken,
    /// A runner's own resident memory, measured once.
    baseline: tokio::sync::OnceCell<u64>,
    /// Loads, unloads and crashes so far.
    counters: status::Counters,
}

impl Scheduler {
    /// Stops runners left behind by an earlier daemon, reads saved settings, and starts
    /// the idle reaper.
    pub fn new(cfg: SchedulerConfig) -> Result<Arc<Scheduler>, SchedulerError> {
        std::fs::create_dir_all(&cfg.run_dir)
            .map_err(|e| SchedulerError::io(format!("creating {}", cfg.run_dir.display()), e))?;
        let killed = runner::reap_leftovers(&cfg.run_dir);
        if killed > 0 {
            info!(killed, "stopped runners of an earlier daemon");
        }
        let settings = SettingsStore::open(cfg.settings_file.clone())?;
        let sched = Arc::new(Scheduler {
            cfg,
            state: Mutex::new(State::default()),
            admission: tokio::sync::Mutex::new(()),
            settings: Mutex::new(settings),
            next_instance: AtomicU64::new(1),
            reaper: Notify::new(),
            shutdown: CancellationToken::new(),
            baseline: tokio::sync::OnceCell::new(),
            counters: status::Counters::default(),
        });
        tokio::spawn(unload::reap_idle(
            Arc::downgrade(&sched),
            sched.shutdown.clone(),
        ));
        Ok(sched)
    }

    /// The configuration.
    pub fn config(&self) -> &SchedulerConfig {
        &self.cfg
    }

    fn closing(&self) -> bool {
        self.shutdown.is_cancelled()
    }
}
