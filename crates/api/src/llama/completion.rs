//! `POST /completion` (and `/completions`): llama-server's native completion. Its fields
//! (`n_predict`, `n_probs`, `samplers`, `grammar`, `json_schema`, `logit_bias` as pairs,
//! token-ID prompts, `return_tokens`, `cache_prompt`, `id_slot`) map onto the pipeline's
//! request; the answer carries `content`, `stop_type`, `stopping_word`, the token counts,
//! `timings` and `completion_probabilities`. Streams are `data:` frames without a
//! `[DONE]`, one per token, the last with `stop: true` and everything else.

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use modelrunner_protocol::{
    Event, FinishReason, GenerateOptions, GenerateRequest, Logprob, SamplingParams, Timings, Usage,
};
use serde_json::{json, Value};
use tracing::instrument;

use super::model_or_only;
use crate::extract::ApiJson;
use crate::openai::decode::PromptInput;
use crate::openai::sse;
use crate::pipeline::respond::{respond, Answer, Choice, Encoder};
use crate::pipeline::{self, Generation};
use crate::{ApiError, AppState};

/// The samplers llama-server names; those left out of `samplers` are switched off.
const SAMPLERS: &[&str] = &[
    "penalties",
    "dry",
    "top_n_sigma",
    "top_k",
    "typ_p",
    "typical_p",
    "top_p",
    "min_p",
    "xtc",
    "temperature",
    "infill",
    "mirostat",
];

fn num(body: &Value, key: &str) -> Result<Option<f64>, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| ApiError::invalid(key, format!("{key} must be a number"))),
    }
}

fn int(body: &Value, key: &str, lo: i64, hi: i64) -> Result<Option<i64>, ApiError> {
    match num(body, key)? {
        None => Ok(None),
        Some(f) if f.fract() == 0.0 && f >= lo as f64 && f <= hi as f64 => Ok(Some(f as i64)),
        Some(f) => Err(ApiError::invalid(
            key,
            format!("{key} must be an integer from {lo} to {hi}, got {f}"),
        )),
    }
}

fn flag(body: &Value, key: &str) -> Result<bool, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::invalid(
            key,
            format!("{key} must be true or false"),
        )),
    }
}

/// `logit_bias`: `[[id, bias]]` (`false` bans the token) or `{"id": bias}`.
fn logit_bias(v: Option<&Value>) -> Result<Vec<(i32, f32)>, ApiError> {
    let bad = || {
        ApiError::invalid(
            "logit_bias",
            "logit_bias is [[token_id, bias], ...] or {\"token_id\": bias}",
        )
    };
    let bias = |b: &Value| match b {
        Value::Bool(false) => Ok(-100.0),
        v => v.as_f64().map(|f| f as f32).ok_or_else(bad),
    };
    let id = |t: &Value| -> Result<i32, ApiError> {
        match t {
            Value::String(s) => s.parse().map_err(|_| bad()),
            v => v
                .as_i64()
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(bad),
        }
    };
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(pairs)) => pairs
            .iter()
            .map(|p| match p.as_array().map(Vec::as_slice) {
                Some([t, b]) => Ok((id(t)?, bias(b)?)),
                _ => Err(bad()),
            })
            .collect(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, b)| Ok((id(&json!(k))?, bias(b)?)))
            .collect(),
        Some(_) => Err(bad()),
    }
}

/// What the encoder needs to know of the request.
#[derive(Debug, Clone)]
pub(crate) struct Native {
    model: String,
    stream: bool,
    return_tokens: bool,
    n_probs: u32,
    /// The prompts' text, for the answer's `prompt`.
    prompts: Vec<String>,
    settings: Value,
}

/// Decodes a `/completion` request.
pub(crate) fn decode(body: &Value, model: String) -> Result<(Generation, Native), ApiError> {
    if !body.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    let prompt: PromptInput = match body.get("prompt") {
        Some(p) => crate::extract::from_value(p).map_err(|e| e.param("prompt"))?,
        None => return Err(ApiError::invalid("prompt", "prompt is required")),
    };
    let prompts = prompt.prompts("prompt")?;
    if prompts.is_empty() || prompts.len() > 16 {
        return Err(ApiError::invalid("prompt", "give from 1 to 16 prompts"));
    }
    if int(body, "n_cmpl", 1, 1)?.is_some_and(|n| n != 1) {
        return Err(ApiError::invalid("n_cmpl", "only n_cmpl = 1 is supported"));
    }
    let d = SamplingParams::default();
    let f = |k: &str, dflt: f32| -> Result<f32, ApiError> {
        Ok(num(body, k)?.map_or(dflt, |v| v as f32))
    };
    let mut s = SamplingParams {
        temperature: f("temperature", d.temperature)?,
        top_p: f("top_p", d.top_p)?,
        min_p: f("min_p", d.min_p)?,
        repeat_penalty: f("repeat_penalty", d.repeat_penalty)?,
        presence_penalty: f("presence_penalty", 0.0)?,
        frequency_penalty: f("frequency_penalty", 0.0)?,
        top_k: int(body, "top_k", i32::MIN.into(), i32::MAX.into())?.map_or(d.top_k, |v| v as i32),
        repeat_last_n: int(body, "repeat_last_n", -1, i32::MAX.into())?
            .map_or(d.repeat_last_n, |v| v as i32),
        // -1 and 4294967295 are llama-server's "random".
        seed: int(body, "seed", -1, u32::MAX.into())?
            .filter(|s| *s >= 0 && *s != u32::MAX as i64)
            .map(|s| s as u32),
        logit_bias: logit_bias(body.get("logit_bias"))?,
        ignore_eos: flag(body, "ignore_eos")?,
    };
    if let Some(list) = body.get("samplers").filter(|v| !v.is_null()) {
        let names: Vec<&str> = list
            .as_array()
            .and_then(|a| a.iter().map(Value::as_str).collect())
            .ok_or_else(|| {
                ApiError::invalid("samplers", "samplers must be an array of sampler names")
            })?;
        if let Some(bad) = names.iter().find(|n| !SAMPLERS.contains(n)) {
            return Err(ApiError::invalid(
                "samplers",
                format!("unknown sampler {bad:?}; the samplers are {SAMPLERS:?}"),
            ));
        }
        let has = |n: &str| names.contains(&n);
        if !has("top_k") {
            s.top_k = 0;
        }
        if !has("top_p") {
            s.top_p = 1.0;
        }
        if !has("min_p") {
            s.min_p = 0.0;
        }
        if !has("temperature") {
            s.temperature = 0.0;
        }
        if !has("penalties") {
            (s.repeat_penalty, s.presence_penalty, s.frequency_penalty) = (1.0, 0.0, 0.0);
        }
    }
    let stop = match body.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(x)) => vec![x.clone()],
        Some(v) => crate::extract::from_value::<Vec<String>>(v).map_err(|e| e.param("stop"))?,
    };
    let n_predict = int(body, "n_predict", -1, u32::MAX.into())?.or(int(
        body,
        "max_tokens",
        -1,
        u32::MAX.into(),
    )?);
    let n_probs = int(body, "n_probs", 0, 20)?.unwrap_or(0) as u32;
    let grammar = body
        .get("grammar")
        .and_then(Value::as_str)
        .filter(|g| !g.is_empty())
        .map(str::to_string);
    let json_schema = body.get("json_schema").filter(|v| !v.is_null()).cloned();
    if grammar.is_some() && json_schema.is_some() {
        return Err(ApiError::invalid(
            "grammar",
            "give grammar or json_schema, not both",
        ));
    }
    // Slots keep their prompt's cache whatever `cache_prompt` says, and the runner
    // assigns them; both fields are checked and otherwise have no effect.
    flag(body, "cache_prompt")?;
    int(body, "id_slot", -1, 1 << 16)?;
    let options = GenerateOptions {
        sampling: s.clone(),
        max_tokens: n_predict.filter(|n| *n >= 0).map(|n| n as u32),
        stop: stop.clone(),
        logprobs: (n_probs > 0).then_some(n_probs),
        grammar: grammar.clone(),
        json_schema,
    };
    let settings = json!({
        "n_predict": n_predict.unwrap_or(-1), "temperature": s.temperature, "top_k": s.top_k,
        "top_p": s.top_p, "min_p": s.min_p, "repeat_penalty": s.repeat_penalty,
        "repeat_last_n": s.repeat_last_n, "presence_penalty": s.presence_penalty,
        "frequency_penalty": s.frequency_penalty, "seed": s.seed.map_or(u32::MAX, |x| x),
        "stop": stop, "n_probs": n_probs, "grammar": grammar.unwrap_or_default(), "model": model,
        "ignore_eos": s.ignore_eos,
        // The request's biases (a ban is null: -inf); ignore_eos's bans are the runner's.
        "logit_bias": s.logit_bias.iter().map(|(t, b)| json!({"token": t, "bias": b})).collect::<Vec<_>>(),
    });
    let texts = prompts
        .iter()
        .map(|p| match p {
            modelrunner_protocol::Prompt::Text(t) => t.clone(),
            modelrunner_protocol::Prompt::Tokens(_) => String::new(),
        })
        .collect();
    let choices = GenerateRequest::each(prompts, &options);
    let native = Native {
        model: model.clone(),
        stream: flag(body, "stream")?,
        return_tokens: flag(body, "return_tokens")?,
        n_probs,
        prompts: texts,
        settings,
    };
    let generation = Generation {
        model,
        keep_alive: None,
        choices,
        params: &[("max_tokens", "n_predict"), ("logprobs", "n_probs")],
    };
    Ok((generation, native))
}

/// `stop_type`.
fn stop_type(f: FinishReason, word: Option<&str>) -> &'static str {
    match (f, word) {
        (FinishReason::Length, _) => "limit",
        (_, Some(_)) => "word",
        _ => "eos",
    }
}

/// llama-server's `timings`.
fn timings(u: &Usage, t: &Timings) -> Value {
    let prompt_n = u.prompt_tokens.saturating_sub(u.cached_tokens);
    let prompt_ms = t.time_to_first_token_ms;
    let predicted_ms = (t.total_ms - t.time_to_first_token_ms).max(0.0);
    let per = |n: u32, ms: f64| if n > 0 { ms / f64::from(n) } else { 0.0 };
    let rate = |n: u32, ms: f64| {
        if ms > 0.0 {
            f64::from(n) * 1000.0 / ms
        } else {
            0.0
        }
    };
    json!({
        "cache_n": u.cached_tokens,
        "prompt_n": prompt_n, "prompt_ms": prompt_ms,
        "prompt_per_token_ms": per(prompt_n, prompt_ms), "prompt_per_second": rate(prompt_n, prompt_ms),
        "predicted_n": u.completion_tokens, "predicted_ms": predicted_ms,
        "predicted_per_token_ms": per(u.completion_tokens, predicted_ms),
        "predicted_per_second": rate(u.completion_tokens, predicted_ms),
    })
}

/// One `completion_probabilities` entry.
fn probability(id: i32, text: &str, lp: &Logprob) -> Value {
    json!({
        "id": id, "token": text, "logprob": lp.logprob, "bytes": text.as_bytes(),
        "top_logprobs": lp.top.iter().map(|t| json!({
            "id": t.token, "token": t.text, "logprob": t.logprob, "bytes": t.text.as_bytes()
        })).collect::<Vec<_>>(),
    })
}

struct NativeEncoder {
    req: Native,
}

impl NativeEncoder {
    /// A choice's final fields.
    fn last(
        &self,
        i: usize,
        content: &str,
        tokens: &[i32],
        end: (FinishReason, Option<&str>, &Usage, &Timings),
    ) -> Value {
        let (reason, word, usage, t) = end;
        json!({
            "index": i, "content": content,
            "tokens": if self.req.return_tokens { tokens } else { &[] },
            "id_slot": -1, "stop": true, "model": self.req.model,
            "tokens_predicted": usage.completion_tokens, "tokens_evaluated": usage.prompt_tokens,
            "tokens_cached": usage.cached_tokens,
            "generation_settings": self.req.settings,
            "prompt": self.req.prompts.get(i).cloned().unwrap_or_default(),
            "has_new_line": content.contains('\n'), "truncated": false,
            "stop_type": stop_type(reason, word), "stopping_word": word.unwrap_or_default(),
            "timings": timings(usage, t),
        })
    }

    fn choice(&self, i: usize, c: &Choice) -> Value {
        let mut v = self.last(
            i,
            &c.text,
            &c.tokens,
            (c.finish_reason, c.stop.as_deref(), &c.usage, &c.timings),
        );
        if self.req.n_probs > 0 {
            v["completion_probabilities"] = c
                .logprobs
                .iter()
                .map(|t| probability(t.token, &t.text, &t.logprob))
                .collect();
        }
        v
    }
}

impl Encoder for NativeEncoder {
    fn collected(&self, answer: Answer) -> Response {
        let mut all: Vec<Value> = answer
            .choices
            .iter()
            .enumerate()
            .map(|(i, c)| self.choice(i, c))
            .collect();
        if all.len() == 1 {
            return Json(all.remove(0)).into_response();
        }
        Json(Value::Array(all)).into_response()
    }

    fn open(&mut self) -> Vec<Bytes> {
        Vec::new()
    }

    fn event(&mut self, i: usize, event: Event) -> Vec<Bytes> {
        match event {
            Event::Token {
                text,
                token,
                logprobs,
            } => {
                let mut v = json!({"index": i, "content": text, "tokens": [token], "stop": false, "id_slot": -1});
                if let Some(lp) = logprobs.filter(|_| self.req.n_probs > 0) {
                    v["completion_probabilities"] = json!([probability(token, &text, &lp)]);
                }
                vec![sse::frame(&v)]
            }
            Event::Done {
                finish_reason,
                stop,
                usage,
                timings,
            } => {
                vec![sse::frame(&self.last(
                    i,
                    "",
                    &[],
                    (finish_reason, stop.as_deref(), &usage, &timings),
                ))]
            }
            Event::Started { .. }
            | Event::Reasoning { .. }
            | Event::ToolCall { .. }
            | Event::Error { .. } => Vec::new(),
        }
    }

    fn close(&mut self, _usage: Usage) -> Vec<Bytes> {
        Vec::new()
    }

    fn fail(&mut self, error: ApiError) -> Vec<Bytes> {
        vec![sse::error_frame(&error)]
    }
}

/// `POST /completion`.
#[instrument(skip_all, fields(model))]
pub(crate) async fn completion(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let model = model_or_only(&state, body.get("model").and_then(Value::as_str)).await?;
    tracing::Span::current().record("model", model.as_str());
    run(&state, &body, model).await
}

/// Runs a native completion request for `model` and answers in llama-server's shape.
pub(crate) async fn run(
    state: &AppState,
    body: &Value,
    model: String,
) -> Result<Response, ApiError> {
    let (generation, native) = decode(body, model)?;
    let running = pipeline::start(state, &generation).await?;
    let stream = native.stream;
    respond(running, stream, NativeEncoder { req: native }).await
}

#[cfg(test)]
#[path = "completion_tests.rs"]
mod tests;
