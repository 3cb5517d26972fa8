//! Ollama's request fields that every generation route shares: `options` (with Ollama's
//! defaults and its rules: unknown keys are logged and ignored, integers may come as
//! floats, a value of the wrong type is a 400 naming `options.<key>`), `format`, `think`
//! and `keep_alive`.

use modelrunner_protocol::{GenerateOptions, SamplingParams};
use modelrunner_scheduler::KeepAlive;
use serde_json::{json, Map, Value};
use tracing::{debug, warn};

use crate::ApiError;

/// Options that change how the model is loaded; only `num_ctx` is honoured (it becomes
/// the model's context size), the others are accepted and logged.
const RUNNER_OPTIONS: &[&str] = &[
    "num_batch",
    "num_gpu",
    "main_gpu",
    "use_mmap",
    "num_thread",
    "num_keep",
    "numa",
    "low_vram",
    "f16_kv",
    "logits_all",
    "vocab_only",
    "use_mlock",
    "embedding_only",
    "num_gqa",
];

/// Sampling options llama.cpp has but this daemon does not (yet); accepted and logged,
/// as Ollama itself does with options it dropped.
const IGNORED_SAMPLING: &[&str] = &[
    "typical_p",
    "tfs_z",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
    "penalize_newline",
    "draft_num_predict",
];

/// What `options` decode to.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Options {
    /// Sampling and limits for the pipeline.
    pub generate: GenerateOptions,
    /// `num_ctx`: the context the model should be loaded with.
    pub num_ctx: Option<u32>,
}

fn wrong_type(key: &str, kind: &str) -> ApiError {
    ApiError::invalid(
        &format!("options.{key}"),
        format!("option \"{key}\" must be of type {kind}"),
    )
}

fn int(key: &str, v: &Value) -> Result<i64, ApiError> {
    // Go's decoder takes integers sent as floats and truncates them.
    match v.as_f64() {
        Some(f) if f.is_finite() && f.abs() < 9.0e15 => Ok(f.trunc() as i64),
        _ => Err(wrong_type(key, "integer")),
    }
}

fn float(key: &str, v: &Value) -> Result<f32, ApiError> {
    v.as_f64()
        .filter(|f| f.is_finite())
        .map(|f| f as f32)
        .ok_or_else(|| wrong_type(key, "float"))
}

fn to_i32(key: &str, n: i64) -> Result<i32, ApiError> {
    i32::try_from(n).map_err(|_| {
        ApiError::invalid(
            &format!("options.{key}"),
            format!("option \"{key}\" is out of range: {n}"),
        )
    })
}

/// Ollama's sampling defaults (`api.DefaultOptions`), which differ from llama-server's.
pub(crate) fn default_sampling() -> SamplingParams {
    SamplingParams {
        temperature: 0.8,
        top_p: 0.9,
        top_k: 40,
        min_p: 0.0,
        repeat_penalty: 1.0,
        repeat_last_n: 64,
        ..SamplingParams::default()
    }
}

/// Decodes `options` over the model's own parameters (`base`, from `create`), which
/// fill what the request leaves out.
pub(crate) fn options(v: Option<&Value>, base: &Map<String, Value>) -> Result<Options, ApiError> {
    let given = match v {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(ApiError::invalid("options", "options must be an object")),
    };
    let mut all = base.clone();
    all.extend(given);
    let mut out = Options {
        generate: GenerateOptions {
            sampling: default_sampling(),
            ..GenerateOptions::default()
        },
        num_ctx: None,
    };
    let s = &mut out.generate.sampling;
    for (key, v) in &all {
        if v.is_null() {
            continue;
        }
        let k = key.as_str();
        match k {
            "temperature" => s.temperature = float(k, v)?,
            "top_p" => s.top_p = float(k, v)?,
            "min_p" => s.min_p = float(k, v)?,
            "repeat_penalty" => s.repeat_penalty = float(k, v)?,
            "presence_penalty" => s.presence_penalty = float(k, v)?,
            "frequency_penalty" => s.frequency_penalty = float(k, v)?,
            "top_k" => s.top_k = to_i32(k, int(k, v)?)?,
            "repeat_last_n" => s.repeat_last_n = to_i32(k, int(k, v)?)?,
            // -1 (or any negative seed) is a random seed; others keep their low 32 bits.
            "seed" => {
                let n = int(k, v)?;
                s.seed = (n >= 0).then_some(n as u64 as u32);
            }
            // -1: no limit; -2: fill the context. Both are the context's own bound.
            "num_predict" => {
                let n = int(k, v)?;
                out.generate.max_tokens = match n {
                    n if n >= 0 => Some(u32::try_from(n).unwrap_or(u32::MAX)),
                    -1 | -2 => None,
                    n => {
                        return Err(ApiError::invalid(
                            "options.num_predict",
                            format!("num_predict must be -2, -1 or a number of tokens, got {n}"),
                        ))
                    }
                }
            }
            "stop" => {
                let list = v.as_array().ok_or_else(|| wrong_type(k, "[]string"))?;
                out.generate.stop = list
                    .iter()
                    .map(|x| x.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| wrong_type(k, "[]string"))?;
            }
            "num_ctx" => {
                let n = int(k, v)?;
                if n <= 0 {
                    return Err(ApiError::invalid(
                        "options.num_ctx",
                        format!("options.num_ctx: must be a positive number of tokens, got {n}"),
                    ));
                }
                out.num_ctx = Some(u32::try_from(n).unwrap_or(u32::MAX));
            }
            _ if RUNNER_OPTIONS.contains(&k) => {
                debug!(
                    option = k,
                    "a runner option this daemon sets itself; ignored"
                )
            }
            _ if IGNORED_SAMPLING.contains(&k) => {
                warn!(
                    option = k,
                    "a sampling option this daemon does not have; ignored"
                )
            }
            _ => warn!(option = k, "unknown option; ignored (as Ollama does)"),
        }
    }
    Ok(out)
}

/// `format`: `""`, `"json"` or a JSON schema, as the grammar's schema.
pub(crate) fn format(v: Option<&Value>) -> Result<Option<Value>, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) if s == "json" => Ok(Some(json!({"type": "object"}))),
        Some(s @ Value::Object(_)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::invalid(
            "format",
            format!("format must be \"json\" or a JSON schema object, got {other}"),
        )),
    }
}

/// `think`: whether the model should think, and how hard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Think {
    /// The model's own default (thinking models think).
    Default,
    /// On or off.
    On(bool),
    /// On, at `low`, `medium` or `high`.
    Level(String),
}

impl Think {
    /// Decodes `think`.
    pub(crate) fn parse(v: Option<&Value>) -> Result<Think, ApiError> {
        match v {
            None | Some(Value::Null) => Ok(Think::Default),
            Some(Value::Bool(b)) => Ok(Think::On(*b)),
            Some(Value::String(s)) => match s.as_str() {
                "low" | "medium" | "high" => Ok(Think::Level(s.clone())),
                "max" => Ok(Think::Level("high".into())),
                other => Err(ApiError::invalid(
                    "think",
                    format!("think must be true, false, \"low\", \"medium\", \"high\" or \"max\", got {other:?}"),
                )),
            },
            Some(other) => Err(ApiError::invalid(
                "think",
                format!("think must be a boolean or a level, got {other}"),
            )),
        }
    }

    /// Whether the answer carries the reasoning (`false` drops it).
    pub(crate) fn shows(&self) -> bool {
        !matches!(self, Think::On(false))
    }

    /// The template variables this sets.
    pub(crate) fn template_kwargs(&self, kw: &mut Map<String, Value>) {
        match self {
            Think::Default => {}
            Think::On(b) => {
                kw.insert("enable_thinking".into(), json!(b));
            }
            Think::Level(l) => {
                kw.insert("enable_thinking".into(), json!(true));
                kw.insert("reasoning_effort".into(), json!(l));
            }
        }
    }
}

/// `keep_alive`: a number of seconds or a Go duration; negative means forever.
pub(crate) fn keep_alive(v: Option<&Value>) -> Result<Option<KeepAlive>, ApiError> {
    let parsed = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => KeepAlive::from_seconds(n.as_f64().unwrap_or(f64::NAN)),
        Some(Value::String(s)) => KeepAlive::parse(s),
        Some(_) => {
            return Err(ApiError::invalid(
                "keep_alive",
                "keep_alive must be a number of seconds or a duration like \"5m\"",
            ))
        }
    };
    parsed.map(Some).map_err(ApiError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn opts(v: Value) -> Result<Options, ApiError> {
        options(Some(&v), &Map::new())
    }

    #[test]
    fn options_map_with_ollamas_rules() {
        let o = opts(
            json!({"temperature": 0, "num_predict": 7.9, "seed": 42, "top_k": 5,
            "stop": ["\n"], "num_ctx": 512, "mirostat": 2, "numa": true, "brand_new": 1}),
        )
        .unwrap();
        let s = &o.generate.sampling;
        assert_eq!(s.temperature, 0.0);
        assert_eq!(s.top_k, 5);
        assert_eq!(s.seed, Some(42));
        assert_eq!(s.top_p, 0.9, "Ollama's default");
        assert_eq!(o.generate.max_tokens, Some(7), "floats truncate");
        assert_eq!(o.generate.stop, vec!["\n"]);
        assert_eq!(o.num_ctx, Some(512));
        assert_eq!(
            opts(json!({"num_predict": -1}))
                .unwrap()
                .generate
                .max_tokens,
            None
        );
        assert_eq!(
            opts(json!({"seed": -1})).unwrap().generate.sampling.seed,
            None
        );
    }

    #[test]
    fn wrong_types_name_the_option() {
        for (body, param) in [
            (json!({"num_ctx": "big"}), "options.num_ctx"),
            (json!({"temperature": "hot"}), "options.temperature"),
            (json!({"stop": "x"}), "options.stop"),
            (json!({"num_predict": -3}), "options.num_predict"),
            (json!({"top_k": 1e12}), "options.top_k"),
        ] {
            let e = opts(body.clone()).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{body}: {}", e.message);
        }
        assert_eq!(
            options(Some(&json!(3)), &Map::new())
                .unwrap_err()
                .param
                .as_deref(),
            Some("options")
        );
    }

    #[test]
    fn model_parameters_fill_what_the_request_leaves_out() {
        let base: Map<String, Value> =
            serde_json::from_value(json!({"temperature": 0.1, "top_k": 3})).unwrap();
        let o = options(Some(&json!({"top_k": 9})), &base).unwrap();
        assert_eq!(o.generate.sampling.temperature, 0.1);
        assert_eq!(o.generate.sampling.top_k, 9);
    }

    #[test]
    fn format_think_and_keep_alive_forms() {
        assert_eq!(format(Some(&json!(""))).unwrap(), None);
        assert_eq!(
            format(Some(&json!("json"))).unwrap(),
            Some(json!({"type": "object"}))
        );
        assert!(format(Some(&json!("yaml"))).is_err());
        assert_eq!(
            Think::parse(Some(&json!("max"))).unwrap(),
            Think::Level("high".into())
        );
        assert!(!Think::parse(Some(&json!(false))).unwrap().shows());
        assert!(Think::parse(Some(&json!("hard"))).is_err());
        assert_eq!(
            keep_alive(Some(&json!("5m"))).unwrap(),
            Some(KeepAlive::For(Duration::from_secs(300)))
        );
        assert_eq!(
            keep_alive(Some(&json!(-1))).unwrap(),
            Some(KeepAlive::Forever)
        );
        assert_eq!(
            keep_alive(Some(&json!("-1m"))).unwrap(),
            Some(KeepAlive::Forever)
        );
        assert_eq!(
            keep_alive(Some(&json!(0))).unwrap(),
            Some(KeepAlive::For(Duration::ZERO))
        );
        let e = keep_alive(Some(&json!("soon"))).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("keep_alive"));
    }
}
