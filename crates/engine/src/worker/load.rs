//! Loading a model and its context the way the launch description says, and the facts
//! the runner reports about them.

use std::num::NonZeroU32;

use llama_cpp_2::context::params::{
    KvCacheType, LlamaContextParams, LlamaPoolingType, RopeScalingType,
};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use modelrunner_protocol::launch::DEFAULT_CONTEXT_CAP;
use modelrunner_protocol::{Launch, Mode, Props, RunnerError};

/// The numbers a loaded runner works with, resolved from the launch description.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Shape {
    pub slots: u32,
    pub slot_ctx: u32,
    pub threads: u32,
    pub batch: u32,
}

fn load_error(message: impl Into<String>) -> RunnerError {
    RunnerError::Load {
        message: message.into(),
    }
}

fn physical_cores() -> u32 {
    let text = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mut cores = std::collections::HashSet::new();
    let (mut phys, mut core) = (None, None);
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(':') {
            match k.trim() {
                "physical id" => phys = Some(v.trim().to_string()),
                "core id" => core = Some(v.trim().to_string()),
                _ => {}
            }
        }
        if line.trim().is_empty() {
            if let (Some(p), Some(c)) = (phys.take(), core.take()) {
                cores.insert((p, c));
            }
        }
    }
    let n = cores.len() as u32;
    if n > 0 {
        n
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
    }
}

/// Resident set size of this process in bytes.
pub fn rss_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = s
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Initialises llama.cpp's backend without loading a model and returns this process's
/// resident memory: a runner's baseline, for memory estimates.
pub fn baseline_rss() -> Result<u64, RunnerError> {
    backend()?;
    Ok(rss_bytes())
}

/// llama.cpp's backend, initialised once per process (it cannot be initialised twice).
pub(crate) fn backend() -> Result<&'static LlamaBackend, RunnerError> {
    static BACKEND: std::sync::OnceLock<Result<LlamaBackend, String>> = std::sync::OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| load_error(e.clone()))
}

/// The model file's name, for messages (never its full path: clients see these).
fn file_name(launch: &Launch) -> String {
    launch.model.file_name().map_or_else(
        || "the model file".to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Loads the model's weights.
pub(crate) fn model(launch: &Launch) -> Result<LlamaModel, RunnerError> {
    let backend = backend()?;
    let name = file_name(launch);
    if !launch.model.is_file() {
        return Err(load_error(format!("{name}: no such file")));
    }
    let f = &launch.settings.flags;
    let mut params = LlamaModelParams::default().with_n_gpu_layers(launch.settings.gpu_layers());
    if let Some(m) = f.mlock {
        params = params.with_use_mlock(m);
    }
    if let Some(m) = f.mmap {
        params = params.with_use_mmap(m);
    }
    LlamaModel::load_from_file(backend, &launch.model, &params).map_err(|e| {
        tracing::warn!(path = %launch.model.display(), cause = %e, "loading the model failed");
        load_error(format!("{name}: {e}"))
    })
}

/// How the model pools its outputs, as its GGUF says (`<arch>.pooling_type`). Embeddings
/// pool by mean, CLS or last (mean when it says nothing or none, since every input gets
/// one vector here); a reranker pools by rank, and only a reranker can give scores.
/// `--pooling` (`chosen`) stands in for what the GGUF says.
fn pooling(
    model: &LlamaModel,
    mode: Mode,
    chosen: Option<&str>,
) -> Result<LlamaPoolingType, RunnerError> {
    let arch = model
        .meta_val_str("general.architecture")
        .unwrap_or_default();
    let declared = match chosen {
        Some(p) => ["", "mean", "cls", "last", "rank"]
            .iter()
            .position(|n| *n == p)
            .map(|i| i as i32),
        None => model
            .meta_val_str(&format!("{arch}.pooling_type"))
            .ok()
            .and_then(|v| v.trim().parse::<i32>().ok()),
    };
    Ok(match (mode, declared) {
        (Mode::Reranking, Some(4)) => LlamaPoolingType::Rank,
        (Mode::Reranking, _) => {
            return Err(load_error(
                "this model is not a reranker (its GGUF declares no rank pooling and classification head); use a reranking model such as bge-reranker or Qwen3-Reranker".to_string(),
            ))
        }
        (_, Some(4)) => {
            return Err(load_error(
                "this model pools by rank (a reranker): it scores query and document pairs and gives no embeddings".to_string(),
            ))
        }
        (_, Some(2)) => LlamaPoolingType::Cls,
        (_, Some(3)) => LlamaPoolingType::Last,
        _ => LlamaPoolingType::Mean,
    })
}

/// A KV cache type by llama-server's name.
fn cache_type(name: &str) -> KvCacheType {
    match name {
        "f32" => KvCacheType::F32,
        "bf16" => KvCacheType::BF16,
        "q8_0" => KvCacheType::Q8_0,
        "q4_0" => KvCacheType::Q4_0,
        "q4_1" => KvCacheType::Q4_1,
        "iq4_nl" => KvCacheType::IQ4_NL,
        "q5_0" => KvCacheType::Q5_0,
        "q5_1" => KvCacheType::Q5_1,
        _ => KvCacheType::F16,
    }
}

/// A quantized KV cache stores a head's row in blocks of 32 elements: refused, with the
/// reason, for a model whose heads are not a multiple of that (llama.cpp only logs it).
fn check_cache_types(
    model: &LlamaModel,
    s: &modelrunner_protocol::launch::Settings,
) -> Result<(), RunnerError> {
    let head = model.n_embd().max(0) as u32 / model.n_head().max(1);
    for (flag, t) in [
        ("--cache-type-k", &s.flags.cache_type_k),
        ("--cache-type-v", &s.flags.cache_type_v),
    ] {
        if let Some(t) = t
            .as_deref()
            .filter(|t| !matches!(*t, "f32" | "f16" | "bf16"))
        {
            if head % 32 != 0 {
                return Err(RunnerError::invalid(
                    "runtime-flags",
                    format!("{flag} {t} needs attention heads whose size is a multiple of 32; this model's are {head}"),
                ));
            }
        }
    }
    Ok(())
}

/// The runtime flags' part of the context parameters (`Settings::flags`).
fn engine_flags(
    mut params: LlamaContextParams,
    s: &modelrunner_protocol::launch::Settings,
) -> LlamaContextParams {
    use llama_cpp_sys_2 as sys;
    let f = &s.flags;
    // On the CPU, llama.cpp's flash-attention kernel halves decode speed (it is faster
    // only for long prompts), so it is off unless asked for; GPUs keep llama.cpp's
    // automatic choice.
    let flash = match f.flash_attn.as_deref() {
        Some("on") => sys::LLAMA_FLASH_ATTN_TYPE_ENABLED,
        Some("off") => sys::LLAMA_FLASH_ATTN_TYPE_DISABLED,
        Some(_) => sys::LLAMA_FLASH_ATTN_TYPE_AUTO,
        None if s.gpu_layers() == 0 => sys::LLAMA_FLASH_ATTN_TYPE_DISABLED,
        None => sys::LLAMA_FLASH_ATTN_TYPE_AUTO,
    };
    params = params.with_flash_attention_policy(flash);
    if let Some(k) = &f.cache_type_k {
        params = params.with_type_k(cache_type(k));
    }
    if let Some(v) = &f.cache_type_v {
        params = params.with_type_v(cache_type(v));
    }
    if let Some(r) = &f.rope_scaling {
        params = params.with_rope_scaling_type(match r.as_str() {
            "none" => RopeScalingType::None,
            "linear" => RopeScalingType::Linear,
            _ => RopeScalingType::Yarn,
        });
    }
    if let Some(b) = f.rope_freq_base {
        params = params.with_rope_freq_base(b);
    }
    if let Some(x) = f.rope_freq_scale {
        params = params.with_rope_freq_scale(x);
    }
    if let Some(n) = f.yarn_orig_ctx {
        params = params.with_yarn_orig_ctx(n);
    }
    params
}

/// Creates the context: one KV stream per slot, sized as the launch says.
pub(crate) fn context<'m>(
    model: &'m LlamaModel,
    launch: &Launch,
) -> Result<(LlamaContext<'m>, Shape), RunnerError> {
    let s = &launch.settings;
    check_cache_types(model, s)?;
    let trained = model.n_ctx_train();
    let slot_ctx = s
        .context_size
        .unwrap_or(trained.min(DEFAULT_CONTEXT_CAP))
        .max(16);
    let slots = s.parallel().max(1);
    let threads = s.threads.unwrap_or_else(physical_cores).max(1);
    let n_ctx = slot_ctx * slots;
    let batch = s.batch_size().clamp(16, n_ctx);
    let mut params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(n_ctx))
        .with_n_batch(batch)
        .with_n_ubatch(batch)
        .with_n_seq_max(slots)
        // One KV stream per slot: each sequence attends over its own cells only. In one
        // unified cache every decode step's attention spans every slot's cells, and
        // batched decoding barely beats one stream (measured in docs/performance.md).
        .with_kv_unified(false)
        .with_n_threads(threads as i32)
        .with_n_threads_batch(s.flags.threads_batch.unwrap_or(threads) as i32);
    if let Some(ub) = s.flags.ubatch_size {
        params = params.with_n_ubatch(ub.clamp(16, batch));
    }
    params = engine_flags(params, s);
    if launch.mode != Mode::Completion {
        params = params.with_embeddings(true).with_pooling_type(pooling(
            model,
            launch.mode,
            s.flags.pooling.as_deref(),
        )?);
    }
    let backend = backend()?;
    let ctx = model
        .new_context(backend, params)
        .map_err(|e| load_error(format!("creating the context: {e}")))?;
    Ok((
        ctx,
        Shape {
            slots,
            slot_ctx,
            threads,
            batch,
        },
    ))
}

fn token_text(model: &LlamaModel, t: llama_cpp_2::token::LlamaToken) -> String {
    String::from_utf8_lossy(&model.vocab().token_to_piece(t, true, None)).into_owned()
}

/// What the runner reports about the loaded model.
pub(crate) fn props(model: &LlamaModel, shape: Shape, mode: Mode) -> Props {
    Props {
        slot_context: shape.slot_ctx,
        slots: shape.slots,
        trained_context: model.n_ctx_train(),
        n_vocab: model.n_vocab(),
        n_embd: model.n_embd(),
        n_params: model.n_params(),
        model_bytes: model.size(),
        rss_bytes: rss_bytes(),
        threads: shape.threads,
        mode,
        chat_template: model
            .meta_val_str("tokenizer.chat_template")
            .unwrap_or_default(),
        chat_format: String::new(),
        bos_token: token_text(model, model.vocab().bos()),
        eos_token: token_text(model, model.vocab().eos()),
    }
}
