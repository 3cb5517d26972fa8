//! llama-server's runtime flags (`runtime_flags` in Docker Compose files, `_configure`'s
//! `runtime-flags`), each mapped onto the one launch description: the flags that change
//! how a model is served are taken, a flag that would let a request choose files or
//! hosts is never accepted, and anything else is refused with the reason.

use serde::{Deserialize, Serialize};

use crate::error::RunnerError;
use crate::launch::Settings;

/// The KV cache element types llama-server takes, with their bytes per element.
pub const CACHE_TYPES: &[(&str, f64)] = &[
    ("f32", 4.0),
    ("f16", 2.0),
    ("bf16", 2.0),
    ("q8_0", 34.0 / 32.0),
    ("q4_0", 18.0 / 32.0),
    ("q4_1", 20.0 / 32.0),
    ("iq4_nl", 18.0 / 32.0),
    ("q5_0", 22.0 / 32.0),
    ("q5_1", 24.0 / 32.0),
];

/// Bytes per element of a KV cache type (`None`: the default, f16).
pub fn cache_type_bytes(t: Option<&str>) -> f64 {
    t.and_then(|t| CACHE_TYPES.iter().find(|(n, _)| *n == t))
        .map_or(2.0, |(_, b)| *b)
}

/// The engine settings beyond size and slots; unset means llama.cpp's (or this
/// daemon's) default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EngineFlags {
    /// Threads for prompt processing (`--threads-batch`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads_batch: Option<u32>,
    /// Physical batch (`--ubatch-size`), at most the batch size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ubatch_size: Option<u32>,
    /// Flash attention: `on`, `off` or `auto` (`--flash-attn`); default off on the CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flash_attn: Option<String>,
    /// K cache type (`--cache-type-k`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_type_k: Option<String>,
    /// V cache type (`--cache-type-v`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_type_v: Option<String>,
    /// RoPE scaling: `none`, `linear` or `yarn` (`--rope-scaling`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<String>,
    /// RoPE base frequency (`--rope-freq-base`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_freq_base: Option<f32>,
    /// RoPE frequency scale (`--rope-freq-scale`, or 1/N of `--rope-scale N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_freq_scale: Option<f32>,
    /// YaRN's original context (`--yarn-orig-ctx`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yarn_orig_ctx: Option<u32>,
    /// Keep the weights in RAM (`--mlock`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mlock: Option<bool>,
    /// Memory-map the weights (`--no-mmap` turns it off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mmap: Option<bool>,
    /// Pooling instead of the GGUF's (`--pooling`): `mean`, `cls`, `last` or `rank`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooling: Option<String>,
}

impl EngineFlags {
    /// These flags, with unset ones taken from `below`.
    pub fn over(&self, below: &EngineFlags) -> EngineFlags {
        EngineFlags {
            threads_batch: self.threads_batch.or(below.threads_batch),
            ubatch_size: self.ubatch_size.or(below.ubatch_size),
            flash_attn: self.flash_attn.clone().or(below.flash_attn.clone()),
            cache_type_k: self.cache_type_k.clone().or(below.cache_type_k.clone()),
            cache_type_v: self.cache_type_v.clone().or(below.cache_type_v.clone()),
            rope_scaling: self.rope_scaling.clone().or(below.rope_scaling.clone()),
            rope_freq_base: self.rope_freq_base.or(below.rope_freq_base),
            rope_freq_scale: self.rope_freq_scale.or(below.rope_freq_scale),
            yarn_orig_ctx: self.yarn_orig_ctx.or(below.yarn_orig_ctx),
            mlock: self.mlock.or(below.mlock),
            mmap: self.mmap.or(below.mmap),
            pooling: self.pooling.clone().or(below.pooling.clone()),
        }
    }
}

/// Flags that would let a request name files, hosts or the process around the model.
const NEVER: &[&str] = &[
    "-m",
    "--model",
    "-mu",
    "--model-url",
    "-hf",
    "-hfr",
    "--hf-repo",
    "-hff",
    "--hf-file",
    "-hft",
    "--hf-token",
    "-dr",
    "--docker-repo",
    "--host",
    "--port",
    "--path",
    "--api-key",
    "--api-key-file",
    "--ssl-key-file",
    "--ssl-cert-file",
    "--lora",
    "--lora-scaled",
    "--control-vector",
    "--control-vector-scaled",
    "--mmproj",
    "--mmproj-url",
    "--chat-template-file",
    "--log-file",
    "--slot-save-path",
    "--rpc",
    "-md",
    "--model-draft",
    "--grammar-file",
    "--tools",
    "--mcp-servers-config",
    "--mcp-servers-json",
];

/// Flags that take no value.
const BARE: &[&str] = &[
    "--mlock",
    "--no-mmap",
    "--mmap",
    "--jinja",
    "--cont-batching",
    "-cb",
];

fn positive(name: &str, v: &str) -> Result<u32, RunnerError> {
    v.parse::<u32>().map_err(|_| {
        RunnerError::invalid(
            "runtime-flags",
            format!("{name} needs a whole number, got {v:?}"),
        )
    })
}

fn float(name: &str, v: &str) -> Result<f32, RunnerError> {
    v.parse::<f32>()
        .ok()
        .filter(|f| f.is_finite() && *f > 0.0)
        .ok_or_else(|| {
            RunnerError::invalid(
                "runtime-flags",
                format!("{name} needs a positive number, got {v:?}"),
            )
        })
}

fn one_of(name: &str, v: &str, allowed: &[&str]) -> Result<String, RunnerError> {
    if allowed.contains(&v) {
        Ok(v.to_string())
    } else {
        Err(RunnerError::invalid(
            "runtime-flags",
            format!("{name} takes one of {allowed:?}, got {v:?}"),
        ))
    }
}

/// Applies `flags` to `s`.
pub(crate) fn apply(s: &mut Settings, flags: &[String]) -> Result<(), RunnerError> {
    let bad = |m: String| RunnerError::invalid("runtime-flags", m);
    let mut it = flags.iter().peekable();
    let types: Vec<&str> = CACHE_TYPES.iter().map(|(n, _)| *n).collect();
    while let Some(flag) = it.next() {
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (flag.as_str(), None),
        };
        if NEVER.contains(&name) {
            return Err(bad(format!("{name} is never accepted: it would let a request choose files, hosts or credentials of the server")));
        }
        let f = &mut s.flags;
        if BARE.contains(&name) {
            match name {
                "--mlock" => f.mlock = Some(true),
                "--no-mmap" => f.mmap = Some(false),
                "--mmap" => f.mmap = Some(true),
                // Chat templates are always Jinja here, and batching is always continuous.
                _ => {}
            }
            continue;
        }
        if matches!(name, "-fa" | "--flash-attn") && inline.is_none() {
            // A value is optional: `-fa` alone means on.
            let v = match it.peek() {
                Some(v) if ["on", "off", "auto"].contains(&v.as_str()) => it.next().cloned(),
                _ => None,
            };
            f.flash_attn = Some(v.unwrap_or_else(|| "on".into()));
            continue;
        }
        let known = [
            "-c",
            "--ctx-size",
            "-np",
            "--parallel",
            "-t",
            "--threads",
            "-b",
            "--batch-size",
            "-ngl",
            "--n-gpu-layers",
            "--gpu-layers",
            "-tb",
            "--threads-batch",
            "-ub",
            "--ubatch-size",
            "-fa",
            "--flash-attn",
            "-ctk",
            "--cache-type-k",
            "-ctv",
            "--cache-type-v",
            "--rope-scaling",
            "--rope-scale",
            "--rope-freq-base",
            "--rope-freq-scale",
            "--yarn-orig-ctx",
            "--pooling",
        ];
        if !known.contains(&name) {
            return Err(bad(format!(
                "{name:?} is not a serving flag this daemon takes; the flags are {}, --mlock and --no-mmap",
                known.join(", ")
            )));
        }
        let v = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .ok_or_else(|| bad(format!("{name} needs a value")))?,
        };
        match name {
            "-c" | "--ctx-size" => s.context_size = Some(positive(name, &v)?),
            "-np" | "--parallel" => s.parallel = Some(positive(name, &v)?),
            "-t" | "--threads" => s.threads = Some(positive(name, &v)?),
            "-b" | "--batch-size" => s.batch_size = Some(positive(name, &v)?),
            "-ngl" | "--n-gpu-layers" | "--gpu-layers" => {
                s.gpu_layers = Some(if matches!(v.as_str(), "all" | "auto") {
                    10_000
                } else {
                    positive(name, &v)?
                })
            }
            "-tb" | "--threads-batch" => f.threads_batch = Some(positive(name, &v)?),
            "-ub" | "--ubatch-size" => f.ubatch_size = Some(positive(name, &v)?),
            "-fa" | "--flash-attn" => {
                f.flash_attn = Some(one_of(name, &v, &["on", "off", "auto"])?)
            }
            "-ctk" | "--cache-type-k" => f.cache_type_k = Some(one_of(name, &v, &types)?),
            "-ctv" | "--cache-type-v" => f.cache_type_v = Some(one_of(name, &v, &types)?),
            "--rope-scaling" => {
                f.rope_scaling = Some(one_of(name, &v, &["none", "linear", "yarn"])?)
            }
            "--rope-scale" => f.rope_freq_scale = Some(1.0 / float(name, &v)?),
            "--rope-freq-base" => f.rope_freq_base = Some(float(name, &v)?),
            "--rope-freq-scale" => f.rope_freq_scale = Some(float(name, &v)?),
            "--pooling" if v == "none" => {
                return Err(bad(
                    "--pooling none gives a vector per token; this daemon gives one per input (mean, cls, last or rank)".into(),
                ))
            }
            "--pooling" => f.pooling = Some(one_of(name, &v, &["mean", "cls", "last", "rank"])?),
            _ => f.yarn_orig_ctx = Some(positive(name, &v)?),
        }
    }
    s.validate()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(list: &[&str]) -> Result<Settings, RunnerError> {
        let mut s = Settings::default();
        apply(
            &mut s,
            &list.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
        )?;
        Ok(s)
    }

    #[test]
    fn serving_flags_map_onto_the_launch() {
        let s = flags(&[
            "--flash-attn",
            "-ctk",
            "q8_0",
            "--cache-type-v=q4_0",
            "-tb",
            "3",
            "-ub",
            "64",
            "--rope-scale",
            "4",
            "--rope-scaling",
            "yarn",
            "--mlock",
            "--no-mmap",
            "--jinja",
            "-c",
            "4096",
            "--pooling",
            "cls",
        ])
        .unwrap();
        let f = &s.flags;
        assert_eq!(f.flash_attn.as_deref(), Some("on"));
        assert_eq!(
            (f.cache_type_k.as_deref(), f.cache_type_v.as_deref()),
            (Some("q8_0"), Some("q4_0"))
        );
        assert_eq!((f.threads_batch, f.ubatch_size), (Some(3), Some(64)));
        assert_eq!(f.rope_freq_scale, Some(0.25));
        assert_eq!((f.mlock, f.mmap), (Some(true), Some(false)));
        assert_eq!(s.context_size, Some(4096));
        assert_eq!(f.pooling.as_deref(), Some("cls"));
        assert_eq!(
            flags(&["-fa", "off"]).unwrap().flags.flash_attn.as_deref(),
            Some("off")
        );
        assert!((cache_type_bytes(Some("q8_0")) - 1.0625).abs() < 1e-9);
    }

    #[test]
    fn other_flags_are_refused_with_the_reason() {
        for (list, says) in [
            (vec!["-m", "/etc/passwd"], "never accepted"),
            (vec!["--host", "0.0.0.0"], "never accepted"),
            (vec!["--lora=x.gguf"], "never accepted"),
            (vec!["--frobnicate"], "not a serving flag"),
            (vec!["-ctk", "q9"], "takes one of"),
            (vec!["--rope-scale", "-1"], "positive number"),
            (vec!["-ub"], "needs a value"),
            (vec!["--pooling", "none"], "one per input"),
            (vec!["--pooling", "max"], "takes one of"),
        ] {
            let e = flags(&list).unwrap_err().to_string();
            assert!(e.contains(says), "{list:?}: {e}");
        }
    }
}
