//! How much memory a runner will need, and how much the machine can give.
//!
//! The estimate is what a loaded runner keeps resident once its slots have been used:
//! - the process itself (measured once by running an idle runner);
//! - the weights (memory-mapped, but every page is read), plus the copy llama.cpp makes
//!   of the block matrices when it repacks them for the CPU's AMX tiles;
//! - the KV cache (f16 keys and values for every cell of every slot, zeroed at load);
//! - the compute buffers as far as a generation touches them (one micro-batch of
//!   activations, its attention scores over one slot's cells, one row of logits per
//!   slot) and the context's fixed overhead (graph metadata, thread pools).

use std::path::{Path, PathBuf};

use modelrunner_format::gguf::GgufFile;
use serde::Serialize;

use crate::error::SchedulerError;

/// Resident memory of a runner process before any model is loaded (code, libraries, the
/// tokio runtime, llama.cpp's backend), when it cannot be measured: about 12 MiB in a
/// release build. The scheduler measures it once by running an idle runner.
pub const RUNNER_BASELINE: u64 = 12 << 20;

/// Micro-batch llama.cpp reserves compute buffers for.
const UBATCH: u64 = 512;

/// A llama.cpp context's fixed overhead: graph metadata, the scheduler, thread pools
/// (measured at about 8 MiB beside the parts estimated one by one).
const CONTEXT_OVERHEAD: u64 = 8 << 20;

/// ggml types the AMX backend repacks (Q4_0, Q4_1, Q8_0, Q4_K, Q5_K, Q6_K, IQ4_XS).
const AMX_TYPES: [u32; 7] = [2, 3, 8, 12, 13, 14, 23];

/// Whether llama.cpp (built for this CPU) repacks weights for AMX here.
pub fn cpu_has_amx() -> bool {
    static AMX: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AMX.get_or_init(|| {
        std::fs::read_to_string("/proc/cpuinfo")
            .map(|c| c.split_whitespace().any(|f| f == "amx_int8"))
            .unwrap_or(false)
    })
}

/// The shape of a model, read from its GGUF header(s).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelShape {
    /// Bytes of all GGUF files.
    pub file_bytes: u64,
    /// Transformer blocks.
    pub n_layer: u64,
    /// Embedding width.
    pub n_embd: u64,
    /// Feed-forward width.
    pub n_ff: u64,
    /// Vocabulary size.
    pub n_vocab: u64,
    /// Key width per token and layer (heads × head size).
    pub k_width: u64,
    /// Value width per token and layer.
    pub v_width: u64,
    /// Attention heads.
    pub n_head: u64,
    /// Trained context length.
    pub trained_context: Option<u64>,
    /// Bytes of block matrices in types the AMX backend repacks.
    pub amx_bytes: u64,
    /// The header keys the file lacks, whose figures were taken from its tensors or
    /// assumed at their largest (all attention heads as KV heads), so that the estimate
    /// errs high; empty for a complete header.
    pub guessed: Vec<&'static str>,
}

fn num(g: &GgufFile, key: &str) -> Option<u64> {
    g.get(key).and_then(|v| v.as_u64())
}

impl ModelShape {
    /// Reads the first shard's header; file sizes of every shard.
    pub fn read(shards: &[PathBuf]) -> Result<ModelShape, SchedulerError> {
        let first = shards
            .first()
            .ok_or_else(|| SchedulerError::Load("the model has no GGUF file".into()))?;
        let g = GgufFile::open(first).map_err(|e| {
            let name = first.file_name().unwrap_or_default().to_string_lossy();
            SchedulerError::Load(format!("reading {name}: {e}"))
        })?;
        let mut file_bytes = 0;
        for s in shards {
            file_bytes += file_len(s)?;
        }
        Ok(ModelShape::from_gguf(&g, file_bytes))
    }

    /// This shape with its KV widths counted in f16 elements of the given cache types
    /// (the estimate assumes f16): a q8_0 cache takes about half, f32 twice.
    pub fn with_cache_types(&self, k: Option<&str>, v: Option<&str>) -> ModelShape {
        use modelrunner_protocol::flags::cache_type_bytes;
        let scale = |w: u64, t: Option<&str>| (w as f64 * cache_type_bytes(t) / 2.0).ceil() as u64;
        ModelShape {
            k_width: scale(self.k_width, k),
            v_width: scale(self.v_width, v),
            ..self.clone()
        }
    }

    /// The shape from a parsed header.
    pub fn from_gguf(g: &GgufFile, file_bytes: u64) -> ModelShape {
        let arch = g
            .get("general.architecture")
            .and_then(|v| v.as_str())
            .unwrap_or("llama")
            .to_string();
        let key = |k: &str| num(g, &format!("{arch}.{k}"));
        let tensor_dim = |name: &str, i: usize| {
            g.tensors
                .iter()
                .find(|t| t.name == name)
                .and_then(|t| t.dims.get(i).copied())
        };
        let mut guessed = Vec::new();
        let mut or_guess = |v: Option<u64>, name: &'static str, guess: Option<u64>| {
            v.or_else(|| {
                guessed.push(name);
                guess
            })
        };
        // Blocks counted from the tensor names when the key is missing.
        let blocks = g
            .tensors
            .iter()
            .filter_map(|t| {
                t.name
                    .strip_prefix("blk.")?
                    .split('.')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .max()
            .map(|n| n + 1);
        let n_layer = or_guess(key("block_count"), "block_count", blocks).unwrap_or(0);
        let n_embd = or_guess(
            key("embedding_length"),
            "embedding_length",
            tensor_dim("token_embd.weight", 0),
        )
        .unwrap_or(0);
        // Without the head counts, heads of 64 (the narrowest in common use, so the most
        // heads and the largest attention buffers), every one a KV head (the widest KV
        // cache a model of this width can have).
        let n_head = or_guess(
            key("attention.head_count"),
            "attention.head_count",
            Some(n_embd / 64),
        )
        .unwrap_or(1)
        .max(1);
        let n_head_kv = key("attention.head_count_kv").unwrap_or(n_head).max(1);
        let head = n_embd / n_head;
        let k_head = key("attention.key_length").unwrap_or(head);
        let v_head = key("attention.value_length").unwrap_or(head);
        let n_ff = or_guess(
            key("feed_forward_length"),
            "feed_forward_length",
            tensor_dim("blk.0.ffn_up.weight", 1).or(Some(4 * n_embd)),
        )
        .unwrap_or(4 * n_embd);
        let n_vocab = tensor_dim("token_embd.weight", 1).unwrap_or(32_000);
        let amx_bytes = g
            .tensors
            .iter()
            .filter(|t| {
                t.name.starts_with("blk.") && t.dims.len() == 2 && AMX_TYPES.contains(&t.ggml_type)
            })
            .map(|t| t.bytes)
            .sum();
        ModelShape {
            amx_bytes,
            file_bytes,
            n_layer,
            n_embd,
            n_ff,
            n_vocab,
            k_width: n_head_kv * k_head,
            n_head,
            v_width: n_head_kv * v_head,
            trained_context: key("context_length"),
            guessed,
        }
    }
}

fn file_len(p: &Path) -> Result<u64, SchedulerError> {
    std::fs::metadata(p)
        .map(|m| m.len())
        .map_err(|e| SchedulerError::Load(format!("reading {}: {e}", p.display())))
}

/// A runner's expected resident memory, by part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Estimate {
    /// The runner process without a model.
    pub baseline: u64,
    /// Model weights.
    pub weights: u64,
    /// The repacked copy of the weights (AMX), when made.
    pub repacked: u64,
    /// KV cache.
    pub kv_cache: u64,
    /// Compute and output buffers.
    pub compute: u64,
    /// The sum in host memory.
    pub total: u64,
    /// GPU memory: the offloaded layers' share of weights and KV cache, and the GPU's
    /// compute buffers (0 without offloading).
    pub gpu: u64,
}

/// The memory of `shape` served with `slots` slots of `slot_context` tokens each, by a
/// process whose own baseline is `baseline` bytes, with `gpu_layers` layers offloaded.
pub fn estimate(
    shape: &ModelShape,
    slots: u32,
    slot_context: u32,
    baseline: u64,
    gpu_layers: u32,
) -> Estimate {
    let cells = u64::from(slots) * u64::from(slot_context);
    let kv_cache = shape.n_layer * cells * (shape.k_width + shape.v_width) * 2;
    // f32 activations of one micro-batch; its attention over one slot's cells (the engine
    // runs without flash attention on the CPU: f32 scores per head, their softmax, which
    // ggml's allocator partly lays over freed buffers, and the mask; measured at about
    // 1.5 score matrices per head); one row of f32 logits per slot.
    let ctx = u64::from(slot_context);
    let logits = 4 * u64::from(slots) * shape.n_vocab;
    let compute = 4 * UBATCH * (4 * shape.n_embd + shape.n_ff)
        + 4 * UBATCH * ctx * (3 * shape.n_head / 2 + 1)
        + logits
        + CONTEXT_OVERHEAD;
    // The offloaded share of layers: their weights and KV cells live on the GPU, and so
    // do the compute buffers once every layer is there (logits come back to the host).
    let layers = shape.n_layer.max(1);
    let offloaded = u64::from(gpu_layers).min(layers);
    let share = |b: u64| b / layers * offloaded;
    let all_on_gpu = offloaded == layers;
    let gpu = if offloaded == 0 {
        0
    } else {
        share(shape.file_bytes) + share(kv_cache) + compute
    };
    let host_compute = if all_on_gpu {
        logits + CONTEXT_OVERHEAD
    } else {
        compute
    };
    // AMX keeps a Q8_0 block of 34 bytes as 38 (quants, scale, compensation).
    let repacked = if cpu_has_amx() {
        (shape.amx_bytes - share(shape.amx_bytes)) * 38 / 34
    } else {
        0
    };
    let weights = shape.file_bytes - share(shape.file_bytes);
    let kv_host = kv_cache - share(kv_cache);
    Estimate {
        baseline,
        weights,
        repacked,
        kv_cache: kv_host,
        compute: host_compute,
        total: baseline + weights + repacked + kv_host + host_compute,
        gpu,
    }
}

/// Bytes the machine can still give: `MemAvailable`, bounded by the cgroup's headroom.
pub fn available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let mem = meminfo.as_deref().and_then(mem_available);
    match (mem, cgroup_headroom()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn mem_available(meminfo: &str) -> Option<u64> {
    kib_field(meminfo, "MemAvailable:")
}

/// A `Key:   1234 kB` line of a /proc file, in bytes.
fn kib_field(text: &str, key: &str) -> Option<u64> {
    let rest = text.lines().find_map(|l| l.strip_prefix(key))?;
    let kib: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// `memory.max - memory.current` of this process's cgroup (v2), when limited.
fn cgroup_headroom() -> Option<u64> {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = cgroup.lines().find_map(|l| l.strip_prefix("0::"))?;
    let dir = Path::new("/sys/fs/cgroup").join(rel.trim_start_matches('/'));
    let max = std::fs::read_to_string(dir.join("memory.max")).ok()?;
    let max: u64 = max.trim().parse().ok()?; // "max" means unlimited
    let current: u64 = std::fs::read_to_string(dir.join("memory.current"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(max.saturating_sub(current))
}

/// Resident memory of a process, from `/proc/PID/status`.
pub fn resident(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    kib_field(&status, "VmRSS:")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 12-layer, 768-wide llama of `file_bytes` bytes.
    fn test_shape(file_bytes: u64) -> ModelShape {
        ModelShape {
            file_bytes,
            n_layer: 12,
            n_embd: 768,
            n_ff: 2048,
            n_vocab: 32_000,
            k_width: 768,
            v_width: 768,
            n_head: 12,
            trained_context: Some(2048),
            amx_bytes: 0,
            guessed: Vec::new(),
        }
    }

    #[test]
    fn quantized_caches_shrink_the_kv_estimate() {
        let shape = ModelShape {
            k_width: 256,
            v_width: 256,
            ..test_shape(1 << 20)
        };
        let f16 = estimate(&shape, 2, 1024, RUNNER_BASELINE, 0).kv_cache;
        let q8 = estimate(
            &shape.with_cache_types(Some("q8_0"), Some("q8_0")),
            2,
            1024,
            RUNNER_BASELINE,
            0,
        )
        .kv_cache;
        let f32 = estimate(
            &shape.with_cache_types(Some("f32"), None),
            2,
            1024,
            RUNNER_BASELINE,
            0,
        )
        .kv_cache;
        assert_eq!(q8 * 32, f16 * 17, "q8_0 is 34 bytes per 32 elements");
        assert_eq!(f32 * 2, f16 * 3, "f32 K and f16 V");
    }

    #[test]
    fn kv_cache_scales_with_cells_and_layers() {
        let shape = test_shape(100 << 20);
        let one = estimate(&shape, 1, 512, RUNNER_BASELINE, 0);
        assert_eq!(one.kv_cache, 12 * 512 * 1536 * 2);
        let four = estimate(&shape, 4, 2048, RUNNER_BASELINE, 0);
        assert_eq!(four.kv_cache, 16 * one.kv_cache);
        assert_eq!(
            four.total,
            four.baseline + four.weights + four.repacked + four.kv_cache + four.compute
        );
        assert!(four.compute > one.compute);
    }

    #[test]
    fn offloaded_layers_move_to_the_gpu() {
        let shape = test_shape(1200 << 20);
        let cpu = estimate(&shape, 2, 1024, RUNNER_BASELINE, 0);
        assert_eq!(cpu.gpu, 0);
        let half = estimate(&shape, 2, 1024, RUNNER_BASELINE, 6);
        assert_eq!(half.weights, cpu.weights / 2);
        assert_eq!(half.kv_cache, cpu.kv_cache / 2);
        assert_eq!(half.gpu, cpu.weights / 2 + cpu.kv_cache / 2 + cpu.compute);
        let all = estimate(&shape, 2, 1024, RUNNER_BASELINE, 999);
        assert_eq!(all.weights, 0);
        assert_eq!(all.kv_cache, 0);
        assert!(all.compute < cpu.compute, "compute buffers moved too");
        assert_eq!(all.gpu, cpu.weights + cpu.kv_cache + cpu.compute);
        assert!(all.total < half.total && half.total < cpu.total);
    }

    #[test]
    fn reads_meminfo() {
        let text = "MemTotal:       24000000 kB\nMemAvailable:   1000 kB\n";
        assert_eq!(mem_available(text), Some(1_024_000));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
        assert!(available().is_some(), "Linux has /proc/meminfo");
        assert!(resident(std::process::id()).unwrap() > 1 << 20);
    }

    #[test]
    fn reads_the_shape_of_a_generated_model() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.gguf");
        modelrunner_testkit::LlamaSpec::tiny()
            .build(1)
            .write_file(&p)
            .unwrap();
        let s = ModelShape::read(std::slice::from_ref(&p)).unwrap();
        assert_eq!(s.n_layer, 2);
        assert_eq!(s.n_embd, 64);
        assert_eq!(s.k_width, 32, "2 KV heads of 16");
        assert_eq!(s.n_vocab, 320);
        assert_eq!(s.trained_context, Some(512));
        assert_eq!(s.file_bytes, std::fs::metadata(&p).unwrap().len());
        assert!(s.guessed.is_empty(), "{:?}", s.guessed);
    }

    #[test]
    fn missing_keys_are_read_from_tensors_or_assumed_high_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let (full, bare) = (dir.path().join("full.gguf"), dir.path().join("bare.gguf"));
        // Heads of 64 and grouped KV heads, as real models have them.
        let spec = modelrunner_testkit::LlamaSpec {
            n_embd: 128,
            n_head: 2,
            n_head_kv: 1,
            ..modelrunner_testkit::LlamaSpec::tiny()
        };
        let w = spec.build(1);
        w.write_file(&full).unwrap();
        let mut w = w;
        for k in [
            "llama.block_count",
            "llama.embedding_length",
            "llama.feed_forward_length",
            "llama.attention.head_count",
            "llama.attention.head_count_kv",
        ] {
            w = w.without(k);
        }
        w.write_file(&bare).unwrap();
        let f = ModelShape::read(std::slice::from_ref(&full)).unwrap();
        let b = ModelShape::read(std::slice::from_ref(&bare)).unwrap();
        assert_eq!(
            b.guessed,
            [
                "block_count",
                "embedding_length",
                "attention.head_count",
                "feed_forward_length"
            ]
        );
        // What the tensors say is exact; the KV width is the largest possible.
        assert_eq!((b.n_layer, b.n_embd, b.n_ff), (f.n_layer, f.n_embd, f.n_ff));
        assert_eq!(f.k_width, 64, "1 KV head of 64");
        assert_eq!(b.k_width, 128, "every head a KV head");
        assert_eq!(b.n_head, f.n_head);
        let (ef, eb) = (
            estimate(&f, 4, 512, RUNNER_BASELINE, 0),
            estimate(&b, 4, 512, RUNNER_BASELINE, 0),
        );
        assert!(
            eb.kv_cache > ef.kv_cache && eb.total > ef.total,
            "{eb:?} vs {ef:?}"
        );
    }
}
