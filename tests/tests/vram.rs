//! GPU memory admission without a GPU: the scheduler runs real runners (a CPU build,
//! where llama.cpp ignores the offload) and asks `nvidia-smi` what is free, as it would
//! on a GPU machine; here `nvidia-smi` is a script on PATH that simulates a GPU with room
//! for one model: its free memory shrinks by a fixed amount for every runner alive.
//! This checks what admission does with the answer (fit, evict the least recently used
//! idle model, refuse naming GPU memory); `memory.rs` checks the estimate itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use modelrunner_e2e::{bin, runner_pids, wait_until};
use modelrunner_protocol::Settings;
use modelrunner_scheduler::memory::estimate;
use modelrunner_scheduler::{
    Mode, ModelShape, ModelSpec, Scheduler, SchedulerConfig, SchedulerError,
};
use modelrunner_testkit::LlamaSpec;

const MIB: u64 = 1 << 20;
/// What admission leaves free on a GPU (`GPU_RESERVE` in the scheduler).
const RESERVE_MIB: u64 = 512;

fn spec(dir: &Path, seed: u64) -> ModelSpec {
    let p = dir.join(format!("m{seed}.gguf"));
    LlamaSpec::tiny().build(seed).write_file(&p).unwrap();
    ModelSpec {
        id: format!("sha256:{seed:064x}"),
        name: format!("m{seed}"),
        shards: vec![p],
        chat_template: None,
        packaged_context: None,
        mode: Mode::Completion,
    }
}

/// A fake `nvidia-smi` in `dir` that answers `TOTAL - runners * PER` MiB, the two read
/// from files the test rewrites; runners are counted by their sockets under `run`.
fn fake_nvidia_smi(dir: &Path, run: &Path) -> (PathBuf, PathBuf) {
    let (total, per) = (dir.join("total"), dir.join("per"));
    let script = format!(
        "#!/bin/sh\nn=$(pgrep -fc -- '\"socket\":\"{run}/' || true)\necho $(( $(cat {total}) - n * $(cat {per}) ))\n",
        run = run.display(),
        total = total.display(),
        per = per.display()
    );
    let p = dir.join("nvidia-smi");
    std::fs::write(&p, script).unwrap();
    std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    (total, per)
}

#[test]
fn gpu_memory_admits_evicts_and_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let (total, per) = fake_nvidia_smi(dir.path(), &run);
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // The only test in this binary, before any other thread exists.
    std::env::set_var("PATH", path);

    let (a, b) = (spec(dir.path(), 1), spec(dir.path(), 2));
    // The GPU share of a tiny model (2 layers, width 64, feed-forward 128, 4 heads, 2 KV
    // heads of 16, 320 tokens) with every layer offloaded, one slot of its trained 512
    // tokens, worked out by hand from docs/serving.md's table: the weights, the KV cache
    // (layers × cells × (K + V width) × 2 bytes), and the compute buffers (f32
    // activations of a 512-token micro-batch, the attention scores of 1.5 × heads + 1
    // matrices of 512 × 512, one row of logits, 8 MiB of context overhead).
    let weights = std::fs::metadata(&a.shards[0]).unwrap().len();
    let kv = 2 * 512 * (32 + 32) * 2;
    let compute = 4 * 512 * (4 * 64 + 128) + 4 * 512 * 512 * (3 * 4 / 2 + 1) + 4 * 320 + (8 << 20);
    let gpu = weights + kv + compute;
    // The scheduler's context for these models is their trained 512 tokens.
    let shape = ModelShape::read(&a.shards).unwrap();
    assert_eq!(
        estimate(&shape, 1, 512, 0, 99).gpu,
        gpu,
        "the estimate against the hand figure"
    );
    let g = gpu.div_ceil(MIB);
    // Room for one: 3g free with no runner, at most g/2 with one.
    std::fs::write(&total, (RESERVE_MIB + 3 * g).to_string()).unwrap();
    std::fs::write(&per, (5 * g).div_ceil(2).to_string()).unwrap();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = Scheduler::new(SchedulerConfig {
            program: bin("modelrunnerd"),
            run_dir: run.clone(),
            runner: Settings {
                parallel: Some(1),
                gpu_layers: Some(99),
                ..Default::default()
            },
            gpu: true,
            ..SchedulerConfig::default()
        })
        .unwrap();
        let loaded = |s: &Scheduler| s.ps().into_iter().map(|r| r.model_name).collect::<Vec<_>>();

        drop(s.acquire(&a, None).await.expect("the first model fits"));
        assert_eq!(loaded(&s), ["m1"]);
        assert_eq!(runner_pids(&run).len(), 1);

        // The second does not fit beside the first: the idle first is unloaded for it.
        drop(s.acquire(&b, None).await.expect("room is made for the second"));
        assert_eq!(loaded(&s), ["m2"]);
        wait_until("one runner left", Duration::from_secs(5), || {
            runner_pids(&run).len() == 1
        });

        // A GPU with nothing left beyond the reserve: the idle model goes, and the
        // refusal names GPU memory and the numbers.
        std::fs::write(&total, RESERVE_MIB.to_string()).unwrap();
        let err = match s.acquire(&a, None).await {
            Ok(_) => panic!("a model loaded on a full GPU"),
            Err(e) => e,
        };
        assert!(
            matches!(err, SchedulerError::InsufficientMemory { gpu: true, need, .. } if need == gpu),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(msg.contains("not enough GPU memory to load m1"), "{msg}");
        assert!(msg.contains("is free on the GPU"), "{msg}");
        assert!(loaded(&s).is_empty(), "{:?}", loaded(&s));
        s.shutdown().await;
    });
}
