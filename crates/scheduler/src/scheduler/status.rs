//! What `GET /engines/ps` shows of the runners.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use serde::Serialize;

use super::{Scheduler, Slot};
use crate::memory::{self, Estimate};
use modelrunner_protocol::Mode;

/// A runner as `GET /engines/ps` shows it (Docker's fields first).
#[derive(Debug, Clone, Serialize)]
pub struct RunnerStatus {
    /// Always `llama.cpp`.
    pub backend_name: String,
    /// The model's name.
    pub model_name: String,
    /// The model ID.
    pub model_id: String,
    /// The mode.
    pub mode: Mode,
    /// RFC 3339.
    pub last_used: String,
    /// Whether requests are running or queued.
    pub in_use: bool,
    /// Whether the model is still loading.
    pub loading: bool,
    /// Go duration, or `-1` for never.
    pub keep_alive: String,
    /// Requests running or queued.
    pub requests: usize,
    /// Process ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Parallel slots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slots: Option<u32>,
    /// Context tokens per slot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_size: Option<u32>,
    /// The admission estimate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_memory: Option<Estimate>,
    /// Measured resident memory of the runner process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resident_memory: Option<u64>,
    /// How the model's chat template writes tool calls and reasoning (`hermes`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_format: Option<String>,
}

/// Lifetime counts of runner events (for metrics).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub loads: AtomicU64,
    pub load_failures: AtomicU64,
    pub unloads: AtomicU64,
    pub crashes: AtomicU64,
    pub hangs: AtomicU64,
}

/// A reading of the runner event counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CounterSnapshot {
    /// Runners started and ready.
    pub loads: u64,
    /// Starts that failed (memory refusals included).
    pub load_failures: u64,
    /// Runners stopped on purpose.
    pub unloads: u64,
    /// Runners that exited by themselves.
    pub crashes: u64,
    /// Runners that stopped answering and were killed.
    pub hangs: u64,
}

impl Counters {
    pub(crate) fn bump(c: &AtomicU64) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

impl Scheduler {
    /// Lifetime counts of loads, unloads and crashes.
    pub fn counters(&self) -> CounterSnapshot {
        let c = &self.counters;
        CounterSnapshot {
            loads: c.loads.load(Ordering::Relaxed),
            load_failures: c.load_failures.load(Ordering::Relaxed),
            unloads: c.unloads.load(Ordering::Relaxed),
            crashes: c.crashes.load(Ordering::Relaxed),
            hangs: c.hangs.load(Ordering::Relaxed),
        }
    }

    /// The runners, loaded and loading.
    pub fn ps(&self) -> Vec<RunnerStatus> {
        let st = self.state.lock().expect("state lock");
        let mut out: Vec<RunnerStatus> = st
            .runners
            .iter()
            .map(|(k, slot)| match slot {
                Slot::Loading { name, .. } => RunnerStatus {
                    backend_name: "llama.cpp".into(),
                    model_name: name.clone(),
                    model_id: k.model_id.clone(),
                    mode: k.mode,
                    last_used: rfc3339(SystemTime::now()),
                    in_use: true,
                    loading: true,
                    keep_alive: self.cfg.keep_alive.to_string(),
                    requests: 0,
                    pid: None,
                    slots: None,
                    context_size: None,
                    estimated_memory: None,
                    resident_memory: None,
                    chat_format: None,
                },
                Slot::Ready(r) => {
                    let u = r.usage.lock().expect("usage lock");
                    RunnerStatus {
                        backend_name: "llama.cpp".into(),
                        model_name: r.name.clone(),
                        model_id: k.model_id.clone(),
                        mode: k.mode,
                        last_used: rfc3339(u.last_used_wall),
                        in_use: u.in_use > 0,
                        loading: false,
                        keep_alive: u.keep_alive.to_string(),
                        requests: u.in_use,
                        pid: Some(r.pid),
                        slots: Some(r.props.slots),
                        context_size: Some(r.props.slot_context),
                        estimated_memory: Some(r.estimate),
                        resident_memory: memory::resident(r.pid),
                        chat_format: (r.key.mode == Mode::Completion)
                            .then(|| r.props.chat_format.clone()),
                    }
                }
            })
            .collect();
        out.sort_by(|a, b| a.model_name.cmp(&b.model_name).then(a.mode.cmp(&b.mode)));
        out
    }
}

fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
