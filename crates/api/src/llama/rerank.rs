//! `POST /rerank` (and `/v1/rerank`, `/reranking`, Docker Model Runner's `/engines`
//! paths): documents ordered by their relevance to a query, scored by a reranking model
//! (rank pooling) in its own runner. Two request shapes, as llama-server takes them:
//! Jina's and Cohere's (`query`, `documents` as strings or `{"text"}` objects, `top_n`,
//! `return_documents`) answered with `results` of `index` and `relevance_score`, and
//! Hugging Face TEI's (`texts`, `return_text`) answered with a bare list of `index` and
//! `score`. Either way the list is sorted by score, best first, and cut to `top_n`.

use axum::extract::State;
use axum::Json;
use modelrunner_protocol::{Mode, RerankRequest, Score};
use modelrunner_scheduler::KeepAlive;
use serde_json::{json, Value};
use tracing::instrument;

use super::model_or_only;
use crate::extract::{from_value, ApiJson};
use crate::pipeline::on_runner;
use crate::resolve::model_spec;
use crate::{ApiError, AppState};

/// The most documents one request may score.
const MAX_DOCUMENTS: usize = 1000;

/// `POST /rerank` and its aliases.
#[instrument(skip_all, fields(model))]
pub(crate) async fn rerank(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let named = body.get("model").and_then(Value::as_str);
    let model = model_or_only(&state, named).await?;
    tracing::Span::current().record("model", model.as_str());
    let query = match body.get("query") {
        Some(Value::String(q)) if !q.trim().is_empty() => q.clone(),
        Some(Value::String(_)) => return Err(ApiError::invalid("query", "query is empty")),
        None | Some(Value::Null) => return Err(ApiError::invalid("query", "query is required")),
        Some(_) => return Err(ApiError::invalid("query", "query must be a string")),
    };
    // TEI's shape names the documents `texts` and answers a bare list.
    let tei = body.get("documents").is_none() && body.get("texts").is_some();
    let key = if tei { "texts" } else { "documents" };
    let documents = documents(key, body.get(key))?;
    let n = documents.len();
    let top_n = match body.get("top_n") {
        None | Some(Value::Null) => n,
        Some(v) => match v.as_i64() {
            Some(t) if t > 0 => (t as usize).min(n),
            _ => {
                return Err(ApiError::invalid(
                    "top_n",
                    "top_n must be a positive integer",
                ))
            }
        },
    };
    let flag = |k: &str, default: bool| match body.get(k) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::invalid(k, format!("{k} must be true or false"))),
    };
    let with_text = if tei {
        flag("return_text", false)?
    } else {
        flag("return_documents", true)?
    };
    let keep_alive: Option<KeepAlive> = match body.get("keep_alive") {
        None | Some(Value::Null) => None,
        Some(v) => Some(from_value(v).map_err(|e| e.param("keep_alive"))?),
    };
    let (name, scores) = score(&state, &model, query, documents.clone(), keep_alive, key).await?;
    let tokens: u64 = scores.iter().map(|s| u64::from(s.tokens)).sum();
    let mut order: Vec<(usize, f32)> = scores.iter().map(|s| s.score).enumerate().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    order.truncate(top_n);
    let results: Vec<Value> = order
        .into_iter()
        .map(|(i, s)| match (tei, with_text) {
            (true, false) => json!({"index": i, "score": s}),
            (true, true) => json!({"index": i, "score": s, "text": documents[i]}),
            (false, false) => json!({"index": i, "relevance_score": s}),
            (false, true) => {
                json!({"index": i, "relevance_score": s, "document": {"text": documents[i]}})
            }
        })
        .collect();
    if tei {
        return Ok(Json(Value::Array(results)));
    }
    Ok(Json(json!({
        "id": crate::pipeline::unique_id("rerank", '-'),
        // The name asked for, as the other routes echo it; else the one it meant.
        "model": named.filter(|m| !m.trim().is_empty()).unwrap_or(&name),
        "object": "list",
        "results": results,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        "meta": {"billed_units": {"search_units": 1}},
    })))
}

/// The documents: a non-empty list of strings, or of objects with a `text` (Jina's and
/// Cohere's structured documents).
fn documents(key: &str, raw: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let list = match raw {
        Some(Value::Array(l)) => l,
        None | Some(Value::Null) => {
            return Err(ApiError::invalid(key, format!("{key} is required")))
        }
        Some(_) => {
            return Err(ApiError::invalid(
                key,
                format!("{key} must be a list of strings"),
            ))
        }
    };
    if list.is_empty() || list.len() > MAX_DOCUMENTS {
        return Err(ApiError::invalid(
            key,
            format!("give from 1 to {MAX_DOCUMENTS} {key}, got {}", list.len()),
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, d)| match d {
            Value::String(s) => Ok(s.clone()),
            Value::Object(o) => match o.get("text") {
                Some(Value::String(s)) => Ok(s.clone()),
                _ => Err(ApiError::invalid(
                    &format!("{key}[{i}].text"),
                    "a document object needs a text string",
                )),
            },
            _ => Err(ApiError::invalid(
                &format!("{key}[{i}]"),
                format!("{key}[{i}] must be a string or an object with a text"),
            )),
        })
        .collect()
}

/// Scores with `model` in reranking mode, one score per document, in order, with the
/// model's name.
async fn score(
    state: &AppState,
    model: &str,
    query: String,
    documents: Vec<String>,
    keep_alive: Option<KeepAlive>,
    key: &str,
) -> Result<(String, Vec<Score>), ApiError> {
    let spec = model_spec(state, model, Mode::Reranking).await?;
    let req = RerankRequest { query, documents };
    let (guard, out) = on_runner(state, &spec, keep_alive, |c| {
        let req = &req;
        async move { c.rerank(req).await }
    })
    .await
    // A pair over the context is a document's fault.
    .map_err(|e| {
        e.rename_param(|p| {
            if p == "messages" {
                key.into()
            } else {
                p.into()
            }
        })
    })?;
    drop(guard);
    Ok((spec.name, out))
}
