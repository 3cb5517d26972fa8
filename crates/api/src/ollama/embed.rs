//! `POST /api/embed` (one or several inputs, unit vectors, `dimensions` cuts and
//! normalises again) and the legacy `POST /api/embeddings` (one prompt, one vector).

use std::time::Instant;

use axum::extract::State;
use axum::Json;
use modelrunner_protocol::{Mode, Prompt};
use serde_json::{json, Value};
use tracing::instrument;

use super::decode::string;
use super::options::keep_alive;
use super::resolve;
use crate::extract::ApiJson;
use crate::openai::embeddings::embed as run;
use crate::{ApiError, AppState};

/// `input`: a string or a list of strings.
fn inputs(v: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let bad = || {
        ApiError::invalid(
            "input",
            "invalid input type: give a string or an array of strings",
        )
    };
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if s.is_empty() => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string).ok_or_else(bad))
            .collect(),
        Some(_) => Err(bad()),
    }
}

/// `v` cut to `d` values and made a unit vector again.
fn shorten(mut v: Vec<f32>, d: usize) -> Vec<f32> {
    v.truncate(d);
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// `POST /api/embed`.
#[instrument(skip_all, fields(model))]
pub(crate) async fn embed(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let arrived = Instant::now();
    let model = string(&body, "model")?.unwrap_or_default();
    tracing::Span::current().record("model", model.as_str());
    let texts = inputs(body.get("input"))?;
    if texts.iter().any(String::is_empty) {
        return Err(ApiError::invalid("input", "inputs must not be empty"));
    }
    let dimensions = match body.get("dimensions") {
        None | Some(Value::Null) => None,
        Some(d) => Some(d.as_u64().filter(|d| *d > 0).ok_or_else(|| {
            ApiError::invalid("dimensions", "dimensions must be a positive integer")
        })? as usize),
    };
    let ka = keep_alive(body.get("keep_alive"))?;
    let (name, spec) = resolve(&state, &model, Mode::Embedding).await?;
    if texts.is_empty() {
        state.scheduler.acquire(&spec, ka).await?;
        return Ok(Json(json!({"model": model, "embeddings": []})));
    }
    let prompts = texts.into_iter().map(Prompt::Text).collect();
    let load = Instant::now();
    let (out, width) = run(&state, &name, prompts, ka).await?;
    if let Some(d) = dimensions.filter(|d| *d > width as usize) {
        return Err(ApiError::invalid(
            "dimensions",
            format!("this model gives {width} dimensions; it cannot give {d}"),
        ));
    }
    let count: u64 = out.iter().map(|e| u64::from(e.tokens)).sum();
    let vectors: Vec<Vec<f32>> = out
        .into_iter()
        .map(|e| match dimensions {
            Some(d) => shorten(e.embedding, d),
            None => e.embedding,
        })
        .collect();
    let nanos = |d: std::time::Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    Ok(Json(json!({
        "model": model,
        "embeddings": vectors,
        "total_duration": nanos(arrived.elapsed()),
        "load_duration": nanos(load.duration_since(arrived)),
        "prompt_eval_count": count,
    })))
}

/// `POST /api/embeddings`: the legacy route.
#[instrument(skip_all, fields(model))]
pub(crate) async fn embeddings(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let model = string(&body, "model")?.unwrap_or_default();
    tracing::Span::current().record("model", model.as_str());
    let prompt = string(&body, "prompt")?.unwrap_or_default();
    let ka = keep_alive(body.get("keep_alive"))?;
    let (name, spec) = resolve(&state, &model, Mode::Embedding).await?;
    if prompt.is_empty() {
        state.scheduler.acquire(&spec, ka).await?;
        return Ok(Json(json!({"embedding": []})));
    }
    let (mut out, _) = run(&state, &name, vec![Prompt::Text(prompt)], ka).await?;
    Ok(Json(json!({"embedding": out.remove(0).embedding})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_and_shortening() {
        assert_eq!(inputs(Some(&json!("a"))).unwrap(), vec!["a"]);
        assert_eq!(inputs(Some(&json!(["a", "b"]))).unwrap().len(), 2);
        assert!(inputs(Some(&json!(""))).unwrap().is_empty());
        assert_eq!(
            inputs(Some(&json!([1]))).unwrap_err().param.as_deref(),
            Some("input")
        );
        let v = shorten(vec![3.0, 4.0, 12.0], 2);
        assert_eq!(v, vec![0.6, 0.8]);
    }
}
