//! The scheduler: which runners exist, loading them on demand (one load per model however
//! many requests wait), admitting them against memory, unloading idle ones, and handing
//! requests a guard that holds a slot or queue place.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use modelrunner_engine::{Props, RunnerClient, RunnerProcess};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

mod admission;
mod status;

pub use status::{CounterSnapshot, RunnerStatus};

use crate::error::SchedulerError;
use crate::keepalive::KeepAlive;
use crate::memory::ModelShape;
use crate::runner::{self, Ending, Health, Key, Runner, RunnerFiles, Use};
use crate::settings::{Mode, RuntimeSettings, SavedSettings, SettingsStore};

/// How the scheduler runs models.
#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// The program whose `runner` subcommand serves one model (`modelrunnerd`).
    pub program: PathBuf,
    /// Where runner sockets and pid files live (kept short: socket paths are limited).
    pub run_dir: PathBuf,
    /// Where per-model settings are saved; `None` keeps them in memory.
    pub settings_file: Option<PathBuf>,
    /// Idle time before a runner is unloaded, unless the model or request says otherwise.
    pub keep_alive: KeepAlive,
    /// Parallel slots per runner, unless configured per model.
    pub parallel: u32,
    /// Requests that may wait for a slot, per runner, before new ones get 503.
    pub max_queue: usize,
    /// Memory all runners together may use; `None`: what the machine has available.
    pub memory_limit: Option<u64>,
    /// Memory always left to the rest of the machine.
    pub memory_reserve: u64,
    /// Largest default context per slot (a model's trained context is used up to this).
    pub default_context: u32,
    /// Generation threads per runner; `None`: the engine's default.
    pub threads: Option<u32>,
    /// Layers offloaded to a GPU.
    pub gpu_layers: u32,
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
            parallel: 4,
            max_queue: 64,
            memory_limit: None,
            memory_reserve: 256 << 20,
            default_context: 4096,
            threads: None,
            gpu_layers: 0,
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
    closing: AtomicBool,
    /// Cancelled at shutdown; ends the reaper.
    shutdown: CancellationToken,
    /// A runner's own resident memory, measured once.
    baseline: tokio::sync::OnceCell<u64>,
    /// Loads, unloads and crashes so far.
    counters: status::Counters,
}

/// A request's hold on a runner: a slot or queue place, released when dropped.
pub struct RunnerGuard {
    runner: Arc<Runner>,
    sched: Arc<Scheduler>,
    _permit: OwnedSemaphorePermit,
}

impl RunnerGuard {
    /// The runner's client.
    pub fn client(&self) -> &RunnerClient {
        &self.runner.client
    }

    /// What the runner serves.
    pub fn props(&self) -> &Props {
        &self.runner.props
    }

    /// The model's name.
    pub fn model(&self) -> &str {
        &self.runner.name
    }

    /// Whether the runner has died (its requests fail; the next acquire reloads it).
    pub fn is_dead(&self) -> bool {
        self.runner.is_dead()
    }

    /// Gives up on this runner (it could not be reached: it crashed between requests and
    /// its supervisor has not noticed yet): it leaves the table and is stopped, so the
    /// next acquire loads a fresh one.
    pub fn retire(&self) {
        self.sched.remove(&self.runner);
    }
}

impl Drop for RunnerGuard {
    fn drop(&mut self) {
        let mut u = self.runner.usage.lock().expect("usage lock");
        u.in_use -= 1;
        u.last_used = Instant::now();
        u.last_used_wall = SystemTime::now();
        if u.in_use == 0 && u.keep_alive.expired(Duration::ZERO) {
            self.sched.reaper.notify_one();
        }
    }
}

/// Which runners to unload.
#[derive(Debug, Clone)]
pub enum Unload {
    /// Every idle runner.
    All,
    /// Idle runners of these model IDs.
    Models(Vec<String>),
}

fn clone_error(e: &SchedulerError) -> SchedulerError {
    match e {
        SchedulerError::InsufficientMemory {
            model,
            need,
            breakdown,
            available,
            in_use,
            limit,
            gpu,
        } => SchedulerError::InsufficientMemory {
            model: model.clone(),
            need: *need,
            breakdown: breakdown.clone(),
            available: *available,
            in_use: *in_use,
            limit: *limit,
            gpu: *gpu,
        },
        SchedulerError::InvalidSettings { param, message } => SchedulerError::InvalidSettings {
            param: param.clone(),
            message: message.clone(),
        },
        SchedulerError::ShuttingDown => SchedulerError::ShuttingDown,
        SchedulerError::LoadFailed { model, message } => SchedulerError::LoadFailed {
            model: model.clone(),
            message: message.clone(),
        },
        other => SchedulerError::LoadFailed {
            model: String::new(),
            message: other.to_string(),
        },
    }
}

enum Take {
    Got(RunnerGuard),
    Wait(watch::Receiver<LoadResult>),
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
            closing: AtomicBool::new(false),
            shutdown: CancellationToken::new(),
            baseline: tokio::sync::OnceCell::new(),
            counters: status::Counters::default(),
        });
        tokio::spawn(reap_idle(Arc::downgrade(&sched), sched.shutdown.clone()));
        Ok(sched)
    }

    /// The configuration.
    pub fn config(&self) -> &SchedulerConfig {
        &self.cfg
    }

    /// A slot (or queue place) on the model's runner, loading it first if needed.
    /// Concurrent first requests wait for one load. `keep_alive` overrides the model's
    /// keep-alive from now on.
    pub async fn acquire(
        self: &Arc<Self>,
        spec: &ModelSpec,
        keep_alive: Option<KeepAlive>,
    ) -> Result<RunnerGuard, SchedulerError> {
        // A runner that dies right after loading is reloaded, a few times at most.
        for _ in 0..4 {
            match self.take(spec, keep_alive)? {
                Take::Got(g) => return Ok(g),
                Take::Wait(mut rx) => {
                    let res = rx
                        .wait_for(Option::is_some)
                        .await
                        .map_err(|_| SchedulerError::ShuttingDown)?
                        .clone();
                    if let Some(Err(e)) = res {
                        return Err(clone_error(&e));
                    }
                }
            }
        }
        Err(SchedulerError::LoadFailed {
            model: spec.name.clone(),
            message: "the runner keeps exiting right after loading".into(),
        })
    }

    fn take(
        self: &Arc<Self>,
        spec: &ModelSpec,
        keep_alive: Option<KeepAlive>,
    ) -> Result<Take, SchedulerError> {
        if self.closing.load(Ordering::SeqCst) {
            return Err(SchedulerError::ShuttingDown);
        }
        let key = spec.key();
        let mut st = self.state.lock().expect("state lock");
        match st.runners.get(&key) {
            Some(Slot::Ready(r)) if !r.is_dead() => {
                let permit =
                    r.permits
                        .clone()
                        .try_acquire_owned()
                        .map_err(|_| SchedulerError::Busy {
                            model: r.name.clone(),
                            slots: r.props.slots,
                            queued: r.max_queue,
                        })?;
                let mut u = r.usage.lock().expect("usage lock");
                u.in_use += 1;
                if let Some(k) = keep_alive {
                    u.keep_alive = k;
                }
                drop(u);
                return Ok(Take::Got(RunnerGuard {
                    runner: r.clone(),
                    sched: self.clone(),
                    _permit: permit,
                }));
            }
            Some(Slot::Loading { done, .. }) => return Ok(Take::Wait(done.clone())),
            _ => {}
        }
        let instance = self.next_instance.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = watch::channel(None);
        st.runners.insert(
            key,
            Slot::Loading {
                instance,
                name: spec.name.clone(),
                done: rx.clone(),
            },
        );
        drop(st);
        let me = self.clone();
        let spec = spec.clone();
        // A spawned task (on a long-lived runtime thread: the parent-death signal follows
        // the forking thread) so the load finishes even if every waiter goes away.
        tokio::spawn(async move { me.load(spec, instance, keep_alive, tx).await });
        Ok(Take::Wait(rx))
    }

    async fn load(
        self: Arc<Self>,
        spec: ModelSpec,
        instance: u64,
        keep_alive: Option<KeepAlive>,
        done: watch::Sender<LoadResult>,
    ) {
        let key = spec.key();
        let result = self.start(&spec, instance, keep_alive).await;
        let mut st = self.state.lock().expect("state lock");
        let still_wanted = matches!(
            st.runners.get(&key),
            Some(Slot::Loading { instance: i, .. }) if *i == instance
        );
        match result {
            Ok(runner) if still_wanted && !self.closing.load(Ordering::SeqCst) => {
                st.runners.insert(key, Slot::Ready(runner));
                drop(st);
                let _ = done.send(Some(Ok(())));
            }
            Ok(runner) => {
                // Unloaded (or shutting down) while loading.
                runner.stop.cancel();
                drop(st);
                let _ = done.send(Some(Err(Arc::new(SchedulerError::ShuttingDown))));
            }
            Err(e) => {
                if still_wanted {
                    st.runners.remove(&key);
                }
                let f = st.failures.entry(key).or_insert((0, Instant::now()));
                *f = (f.0 + 1, Instant::now());
                drop(st);
                status::Counters::bump(&self.counters.load_failures);
                warn!(model = %spec.name, cause = %e, "load failed");
                let _ = done.send(Some(Err(Arc::new(e))));
            }
        }
    }

    /// Settings of a model: saved ones over the daemon's defaults.
    fn saved(&self, spec: &ModelSpec) -> RuntimeSettings {
        self.settings
            .lock()
            .expect("settings lock")
            .get(&spec.id, spec.mode)
            .map(|s| s.config.clone())
            .unwrap_or_default()
    }

    async fn backoff(&self, key: &Key) {
        let failures = {
            let st = self.state.lock().expect("state lock");
            st.failures.get(key).copied()
        };
        if let Some((n, at)) = failures {
            if n >= 2 {
                let wait = Duration::from_secs((1u64 << (n - 2).min(5)).min(30));
                let left = wait.saturating_sub(at.elapsed());
                if !left.is_zero() {
                    info!(?left, failures = n, "waiting before loading again");
                    tokio::time::sleep(left).await;
                }
            }
        }
    }

    async fn start(
        self: &Arc<Self>,
        spec: &ModelSpec,
        instance: u64,
        keep_alive: Option<KeepAlive>,
    ) -> Result<Arc<Runner>, SchedulerError> {
        let key = spec.key();
        self.backoff(&key).await;
        let saved = self.saved(spec);
        let shards = spec.shards.clone();
        let shape = tokio::task::spawn_blocking(move || ModelShape::read(&shards))
            .await
            .map_err(|e| SchedulerError::Load(e.to_string()))??;
        let slots = saved.parallel.unwrap_or(self.cfg.parallel);
        let admission = self.admission.lock().await;
        let gpu_layers = if self.cfg.gpu {
            saved.gpu_layers.unwrap_or(self.cfg.gpu_layers)
        } else {
            0
        };
        let (context, estimate) = self
            .fit(spec, &shape, slots, saved.context_size, gpu_layers)
            .await?;
        let files = RunnerFiles::new(&self.cfg.run_dir, instance);
        let mut args: Vec<String> = vec![
            "runner".into(),
            "--model".into(),
            spec.shards[0].display().to_string(),
            "--socket".into(),
            files.socket.display().to_string(),
            "--slots".into(),
            slots.to_string(),
            "--ctx-size".into(),
            context.to_string(),
            "--gpu-layers".into(),
            gpu_layers.to_string(),
        ];
        if let Some(t) = saved.threads.or(self.cfg.threads) {
            args.extend(["--threads".into(), t.to_string()]);
        }
        if let Some(b) = saved.batch_size {
            args.extend(["--batch".into(), b.to_string()]);
        }
        if spec.mode == Mode::Embedding {
            args.push("--embeddings".into());
        }
        if let Some(t) = &spec.chat_template {
            args.extend(["--chat-template".into(), t.display().to_string()]);
        }
        info!(model = %spec.name, mode = %spec.mode, slots, context, estimate = estimate.total, "loading");
        let started = Instant::now();
        let process = RunnerProcess::spawn_tagged(
            &self.cfg.program,
            &args,
            &files.socket,
            self.cfg.load_timeout,
            &spec.name,
        )
        .await
        .map_err(|e| {
            files.remove();
            SchedulerError::LoadFailed {
                model: spec.name.clone(),
                message: e.to_string(),
            }
        })?;
        let pid = process.pid().unwrap_or(0);
        files.write_pid(pid);
        let props = process
            .client
            .props()
            .await
            .map_err(|e| SchedulerError::LoadFailed {
                model: spec.name.clone(),
                message: e.to_string(),
            })?;
        drop(admission);
        info!(model = %spec.name, pid, took = ?started.elapsed(), "loaded");
        status::Counters::bump(&self.counters.loads);
        let now = Instant::now();
        let (exited_tx, exited_rx) = watch::channel(false);
        let runner = Arc::new(Runner {
            instance,
            key,
            name: spec.name.clone(),
            pid,
            client: process.client.clone(),
            permits: Arc::new(Semaphore::new(props.slots as usize + self.cfg.max_queue)),
            props,
            estimate,
            max_queue: self.cfg.max_queue,
            usage: Mutex::new(Use {
                in_use: 0,
                last_used: now,
                last_used_wall: SystemTime::now(),
                keep_alive: keep_alive
                    .or(saved.keep_alive)
                    .unwrap_or(self.cfg.keep_alive),
            }),
            stop: CancellationToken::new(),
            exited: exited_rx,
            dead: AtomicBool::new(false),
            loaded_at: now,
        });
        let health = Health {
            interval: self.cfg.health_interval,
            timeout: self.cfg.health_timeout,
            failures: 2,
        };
        let me = Arc::downgrade(self);
        let r = runner.clone();
        tokio::spawn(async move {
            let ending = runner::supervise(r.clone(), process, health, files, exited_tx).await;
            if let Some(me) = me.upgrade() {
                me.forget(&r, ending);
            }
        });
        Ok(runner)
    }

    /// Removes a runner that ended from the table; crashes count towards backoff.
    fn forget(&self, r: &Runner, ending: Ending) {
        status::Counters::bump(match ending {
            Ending::Stopped => &self.counters.unloads,
            Ending::Crashed => &self.counters.crashes,
            Ending::Hung => &self.counters.hangs,
        });
        let mut st = self.state.lock().expect("state lock");
        if matches!(st.runners.get(&r.key), Some(Slot::Ready(x)) if x.instance == r.instance) {
            st.runners.remove(&r.key);
        }
        if ending != Ending::Stopped {
            let f = st
                .failures
                .entry(r.key.clone())
                .or_insert((0, Instant::now()));
            // A runner that served a while before crashing starts the count afresh.
            let n = if r.loaded_at.elapsed() > Duration::from_secs(60) {
                1
            } else {
                f.0 + 1
            };
            *f = (n, Instant::now());
        }
    }

    /// Takes a runner out of the table (new requests load a fresh one) and stops it.
    pub(super) fn remove(&self, r: &Arc<Runner>) {
        let mut st = self.state.lock().expect("state lock");
        if matches!(st.runners.get(&r.key), Some(Slot::Ready(x)) if x.instance == r.instance) {
            st.runners.remove(&r.key);
        }
        r.stop.cancel();
    }

    /// Removes from the table the idle runners `pick` chooses and returns them; the
    /// caller stops them.
    fn take_idle(&self, pick: impl Fn(&Key, &Use) -> bool) -> Vec<Arc<Runner>> {
        let mut st = self.state.lock().expect("state lock");
        let keys: Vec<Key> = st
            .runners
            .iter()
            .filter_map(|(k, s)| match s {
                Slot::Ready(r) => {
                    let u = r.usage.lock().expect("usage lock");
                    (u.in_use == 0 && pick(k, &u)).then(|| k.clone())
                }
                Slot::Loading { .. } => None,
            })
            .collect();
        keys.iter()
            .filter_map(|k| match st.runners.remove(k) {
                Some(Slot::Ready(r)) => Some(r),
                _ => None,
            })
            .collect()
    }

    /// Unloads idle runners; busy ones stay. Returns how many were unloaded.
    pub async fn unload(&self, which: Unload) -> usize {
        let victims = self.take_idle(|k, _| match &which {
            Unload::All => true,
            Unload::Models(ids) => ids.contains(&k.model_id),
        });
        for r in &victims {
            r.stop_and_wait().await;
        }
        victims.len()
    }

    /// Saves a model's settings. An idle runner of it is unloaded so the next load uses
    /// them; a busy one makes this fail with [`SchedulerError::InUse`].
    pub async fn configure(
        &self,
        spec: &ModelSpec,
        config: RuntimeSettings,
    ) -> Result<(), SchedulerError> {
        config.validate()?;
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

    /// Refuses new work, stops every runner and waits for them.
    pub async fn shutdown(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.shutdown.cancel();
        let all: Vec<Arc<Runner>> = {
            let mut st = self.state.lock().expect("state lock");
            st.runners
                .drain()
                .filter_map(|(_, s)| match s {
                    Slot::Ready(r) => Some(r),
                    Slot::Loading { .. } => None,
                })
                .collect()
        };
        for r in &all {
            r.stop_and_wait().await;
        }
    }

    /// Unloads runners idle for longer than their keep-alive.
    async fn unload_expired(&self) {
        for r in self.take_idle(|_, u| u.keep_alive.expired(u.last_used.elapsed())) {
            info!(model = %r.name, "unloading idle model (keep-alive expired)");
            r.stop.cancel();
        }
    }
}

async fn reap_idle(sched: std::sync::Weak<Scheduler>, stop: CancellationToken) {
    loop {
        let Some(s) = sched.upgrade() else { return };
        s.unload_expired().await;
        let wake = async {
            tokio::select! {
                () = s.reaper.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = wake => {}
        }
    }
}
