//! Unloading: on request, on keep-alive expiry (the reaper), and at shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::info;

use super::{Scheduler, Slot};
use crate::runner::{Key, Runner, Use};

/// Which runners to unload.
#[derive(Debug, Clone)]
pub enum Unload {
    /// Every idle runner.
    All,
    /// Idle runners of these model IDs.
    Models(Vec<String>),
}

impl Scheduler {
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

    /// Refuses new work, stops every runner and waits for them.
    pub async fn shutdown(&self) {
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

/// The reaper: unloads expired runners every second, or when woken.
pub(super) async fn reap_idle(sched: std::sync::Weak<Scheduler>, stop: CancellationToken) {
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
