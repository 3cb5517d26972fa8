//! Model lifecycle for `modelrunnerd`: runner processes started on the first request for a
//! model (one load however many requests wait), admitted against an estimate of their
//! memory (unloading idle models, least recently used first, to make room), unloaded after
//! their keep-alive, supervised (crashes and hangs are detected; the next request loads
//! again, with backoff), and bounded per model (a full queue is refused at once).
//!
//! ```no_run
//! # async fn demo(spec: modelrunner_scheduler::ModelSpec) -> Result<(), modelrunner_scheduler::SchedulerError> {
//! use modelrunner_scheduler::{Scheduler, SchedulerConfig};
//! let sched = Scheduler::new(SchedulerConfig::default())?;
//! let guard = sched.acquire(&spec, None).await?;
//! let props = guard.client().props().await?;
//! println!("{} slots of {} tokens", props.slots, props.slot_context);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

mod error;
mod gpu;
mod keepalive;
pub mod memory;
mod process;
mod runner;
mod scheduler;
mod settings;

pub use error::SchedulerError;
pub use keepalive::KeepAlive;
pub use memory::{Estimate, ModelShape};
pub use modelrunner_protocol::Mode;
pub use process::{strip_ansi, RunnerProcess, RUNNER_FAILURE_PREFIX};
pub use runner::Key;
pub use scheduler::{
    CounterSnapshot, ModelSpec, RunnerGuard, RunnerStatus, Scheduler, SchedulerConfig, Unload,
};
pub use settings::{RuntimeSettings, SavedSettings, SettingsStore};
