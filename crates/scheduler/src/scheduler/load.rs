//! Starting a runner: backoff after failures, memory admission, the launch description,
//! the process, and its supervisor.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use modelrunner_protocol::{Launch, Settings};
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{status, LoadResult, ModelSpec, Scheduler, Slot};
use crate::error::SchedulerError;
use crate::keepalive::KeepAlive;
use crate::memory::ModelShape;
use crate::process::RunnerProcess;
use crate::runner::{self, Ending, Health, Key, Runner, RunnerFiles, Use};
use crate::settings::RuntimeSettings;

impl Scheduler {
    /// Loads a runner for `spec` and tells the waiters how it went.
    pub(super) async fn load(
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
            Ok(runner) if still_wanted && !self.closing() => {
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

    /// Settings of a model as saved (unset fields: the daemon's).
    fn saved(&self, spec: &ModelSpec) -> RuntimeSettings {
        self.settings
            .lock()
            .expect("settings lock")
            .get(&spec.id, spec.mode)
            .map(|s| s.config.clone())
            .unwrap_or_default()
    }

    /// After two failures in a row, waits 1, 2, 4 ... up to 30 seconds from the last.
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
        let settings = saved.runner.over(&self.cfg.runner);
        let shards = spec.shards.clone();
        let shape = tokio::task::spawn_blocking(move || ModelShape::read(&shards))
            .await
            .map_err(|e| SchedulerError::Load(e.to_string()))??;
        if !shape.guessed.is_empty() {
            warn!(
                model = %spec.name,
                missing = ?shape.guessed,
                "the GGUF header lacks keys the memory estimate needs; estimating from the tensors and the widest KV cache, which errs high"
            );
        }
        let slots = settings.parallel();
        let gpu_layers = if self.cfg.gpu {
            settings.gpu_layers()
        } else {
            0
        };
        let admission = self.admission.lock().await;
        // The estimate counts the KV cache in the element types the flags chose.
        let f = &settings.flags;
        let sized = shape.with_cache_types(f.cache_type_k.as_deref(), f.cache_type_v.as_deref());
        let (context, estimate) = self
            .fit(spec, &sized, slots, settings.context_size, gpu_layers)
            .await?;
        let files = RunnerFiles::new(&self.cfg.run_dir, instance);
        let launch = Launch {
            model: spec.shards[0].clone(),
            socket: files.socket.clone(),
            chat_template: spec.chat_template.clone(),
            mode: spec.mode,
            settings: Settings {
                context_size: Some(context),
                parallel: Some(slots),
                gpu_layers: Some(gpu_layers),
                ..settings
            },
        };
        info!(model = %spec.name, mode = %spec.mode, slots, context, estimate = estimate.total, "loading");
        let started = Instant::now();
        let load_failed = |e: &dyn std::fmt::Display| SchedulerError::LoadFailed {
            model: spec.name.clone(),
            message: e.to_string(),
        };
        let process = RunnerProcess::spawn(
            &self.cfg.program,
            &launch,
            self.cfg.load_timeout,
            &spec.name,
        )
        .await
        .map_err(|e| {
            files.remove();
            load_failed(&e)
        })?;
        let pid = process.pid().unwrap_or(0);
        files.write_pid(pid);
        let props = process.client.props().await.map_err(|e| load_failed(&e))?;
        // The GPU's free memory changed with this runner: the next admission asks again.
        crate::gpu::forget();
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
            crate::gpu::forget();
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
        let served_a_while = r.loaded_at.elapsed() > Duration::from_secs(60);
        if ending == Ending::Stopped && served_a_while {
            // It worked: earlier failures no longer count.
            st.failures.remove(&r.key);
        }
        if ending != Ending::Stopped {
            let f = st
                .failures
                .entry(r.key.clone())
                .or_insert((0, Instant::now()));
            // A runner that served a while before crashing starts the count afresh.
            let n = if served_a_while { 1 } else { f.0 + 1 };
            *f = (n, Instant::now());
        }
    }
}
