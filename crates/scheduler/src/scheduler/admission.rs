//! Memory admission: the context size a load gets, and unloading idle runners (least
//! recently used first) until its estimate fits.

use std::sync::Arc;
use std::time::Instant;

use modelrunner_format::gguf::format_bytes;
use tracing::{info, warn};

use super::{ModelSpec, Scheduler, Slot};
use crate::error::SchedulerError;
use crate::memory::{self, Estimate, ModelShape};
use crate::runner::Runner;

/// GPU memory always left free (other processes, CUDA's own context).
const GPU_RESERVE: u64 = 512 << 20;

impl Scheduler {
    /// Chooses the context size and makes room for it. An explicit size must fit; the
    /// default (packaged, else trained up to `default_context`) is halved until it does.
    pub(super) async fn fit(
        &self,
        spec: &ModelSpec,
        shape: &ModelShape,
        slots: u32,
        explicit: Option<u32>,
        gpu_layers: u32,
    ) -> Result<(u32, Estimate), SchedulerError> {
        let mut candidates = Vec::new();
        match explicit {
            Some(c) => candidates.push(c),
            None => {
                let trained = shape.trained_context.unwrap_or(4096).min(1 << 20) as u32;
                let mut c = match spec.packaged_context {
                    Some(p) if p > 0 => (p.min(1 << 20) as u32).min(trained.max(64)),
                    _ => trained.min(self.cfg.default_context),
                };
                candidates.push(c);
                while c / 2 >= 512 {
                    c /= 2;
                    candidates.push(c);
                }
            }
        }
        let mut last = None;
        for (i, ctx) in candidates.iter().enumerate() {
            let est = memory::estimate(shape, slots, *ctx, self.baseline().await, gpu_layers);
            match self.make_room(spec, &est).await {
                Ok(()) => {
                    if i > 0 {
                        warn!(model = %spec.name, context = ctx, preferred = candidates[0], "context reduced to fit in memory");
                    }
                    return Ok((*ctx, est));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one candidate"))
    }

    /// A runner's resident memory without a model: `PROGRAM runner-baseline`, run once.
    async fn baseline(&self) -> u64 {
        *self
            .baseline
            .get_or_init(|| async {
                let out = tokio::process::Command::new(&self.cfg.program)
                    .arg("runner-baseline")
                    .stdin(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null())
                    .output()
                    .await;
                let measured = out.ok().and_then(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .trim()
                        .parse::<u64>()
                        .ok()
                });
                match measured {
                    Some(b) => {
                        info!(baseline = b, "measured a runner's own memory");
                        b
                    }
                    None => {
                        warn!("cannot measure a runner's own memory; assuming the usual");
                        memory::RUNNER_BASELINE
                    }
                }
            })
            .await
    }

    /// Unloads idle runners, least recently used first, until `est` fits.
    async fn make_room(&self, spec: &ModelSpec, est: &Estimate) -> Result<(), SchedulerError> {
        loop {
            let (used, busy, victim) = {
                let st = self.state.lock().expect("state lock");
                let mut used = 0;
                let mut busy = 0;
                let mut victim: Option<(Instant, Arc<Runner>)> = None;
                for slot in st.runners.values() {
                    let Slot::Ready(r) = slot else { continue };
                    used += r.estimate.total;
                    let u = r.usage.lock().expect("usage lock");
                    if u.in_use > 0 {
                        busy += r.estimate.total;
                    } else if victim.as_ref().is_none_or(|(t, _)| u.last_used < *t) {
                        victim = Some((u.last_used, r.clone()));
                    }
                }
                (used, busy, victim.map(|v| v.1))
            };
            let by_limit = self.cfg.memory_limit.map(|l| l.saturating_sub(used));
            let by_machine = memory::available().map(|a| a.saturating_sub(self.cfg.memory_reserve));
            let can = by_limit
                .unwrap_or(u64::MAX)
                .min(by_machine.unwrap_or(u64::MAX));
            // Offloaded layers need GPU memory too (when nvidia-smi can say how much is
            // free; evicted runners give theirs back once they have exited).
            let gpu_can = if est.gpu > 0 {
                crate::gpu::free()
                    .await
                    .map(|f| f.saturating_sub(GPU_RESERVE))
            } else {
                None
            };
            let gpu_short = gpu_can.is_some_and(|c| est.gpu > c);
            if est.total <= can && !gpu_short {
                return Ok(());
            }
            let Some(victim) = victim else {
                let (need, available) = if gpu_short {
                    (est.gpu, gpu_can.unwrap_or(0))
                } else {
                    (est.total, can)
                };
                return Err(SchedulerError::InsufficientMemory {
                    model: spec.name.clone(),
                    need,
                    breakdown: format!(
                        "weights {} (+{} repacked), KV cache {}, compute {}, process {}, GPU {}",
                        format_bytes(est.weights),
                        format_bytes(est.repacked),
                        format_bytes(est.kv_cache),
                        format_bytes(est.compute),
                        format_bytes(est.baseline),
                        format_bytes(est.gpu)
                    ),
                    available,
                    in_use: busy,
                    limit: self.cfg.memory_limit,
                    gpu: gpu_short,
                });
            };
            info!(model = %victim.name, for_model = %spec.name, "unloading the least recently used idle model to make room");
            self.remove(&victim);
            victim.stop_and_wait().await;
            crate::gpu::forget();
        }
    }
}
