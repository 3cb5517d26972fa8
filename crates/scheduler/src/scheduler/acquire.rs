//! A request's way to a runner: the guard it holds while it runs or waits, and the
//! first-request load that every concurrent request for the model waits on.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use modelrunner_protocol::{Props, RunnerClient};
use tokio::sync::{watch, OwnedSemaphorePermit};

use super::{LoadResult, ModelSpec, Scheduler, Slot};
use crate::error::SchedulerError;
use crate::keepalive::KeepAlive;
use crate::runner::Runner;

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

/// A copy of a shared load error for one waiter.
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
        SchedulerError::Runner(r) => SchedulerError::Runner(r.clone()),
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

    /// A guard on a ready runner, or the load to wait for (started here if none is).
    fn take(
        self: &Arc<Self>,
        spec: &ModelSpec,
        keep_alive: Option<KeepAlive>,
    ) -> Result<Take, SchedulerError> {
        if self.closing() {
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
}
