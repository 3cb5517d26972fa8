//! `POST /embedding` and `/embeddings`: llama-server's native embeddings, one entry per
//! input with the pooled vector in a list (`[{"index", "embedding": [[...]]}]`), scaled by
//! `embd_normalize` (2, Euclidean, by default; 0 max-abs; 1 taxicab; above 2 a p-norm).

use axum::extract::State;
use axum::Json;
use modelrunner_protocol::Prompt;
use serde_json::{json, Value};
use tracing::instrument;

use super::model_or_only;
use crate::extract::{from_value, ApiJson};
use crate::openai::decode::PromptInput;
use crate::openai::embeddings::embed;
use crate::{ApiError, AppState};

/// A unit vector scaled to llama-server's `embd_normalize` norm.
fn normalize(v: Vec<f32>, p: i64) -> Vec<f32> {
    let norm = match p {
        2 => return v,
        0 => v.iter().fold(0f32, |m, x| m.max(x.abs())),
        1 => v.iter().map(|x| x.abs()).sum(),
        p => v
            .iter()
            .map(|x| x.abs().powi(p as i32))
            .sum::<f32>()
            .powf(1.0 / p as f32),
    };
    if norm > 0.0 {
        v.into_iter().map(|x| x / norm).collect()
    } else {
        v
    }
}

/// `POST /embedding`, `/embeddings`.
#[instrument(skip_all, fields(model))]
pub(crate) async fn embedding(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let model = model_or_only(&state, body.get("model").and_then(Value::as_str)).await?;
    tracing::Span::current().record("model", model.as_str());
    let (key, raw) = match (body.get("content"), body.get("input")) {
        (Some(c), _) => ("content", c),
        (None, Some(i)) => ("input", i),
        (None, None) => return Err(ApiError::invalid("content", "content is required")),
    };
    let input: PromptInput = from_value(raw).map_err(|e| e.param(key))?;
    let prompts = input.prompts(key)?;
    if prompts.is_empty()
        || prompts
            .iter()
            .any(|p| matches!(p, Prompt::Text(t) if t.is_empty()))
    {
        return Err(ApiError::invalid(key, "give non-empty inputs"));
    }
    let p =
        match body.get("embd_normalize") {
            None | Some(Value::Null) => 2,
            Some(v) => match v.as_i64() {
                Some(p) if (0..=16).contains(&p) => p,
                Some(-1) => return Err(ApiError::invalid(
                    "embd_normalize",
                    "-1 (no normalization) is not available: the runner pools into unit vectors",
                )),
                _ => {
                    return Err(ApiError::invalid(
                        "embd_normalize",
                        "embd_normalize must be from 0 to 16",
                    ))
                }
            },
        };
    let (out, _) = embed(&state, &model, prompts, None).await?;
    let list: Vec<Value> = out
        .into_iter()
        .enumerate()
        .map(|(i, e)| json!({"index": i, "embedding": [normalize(e.embedding, p)]}))
        .collect();
    Ok(Json(Value::Array(list)))
}

#[cfg(test)]
mod tests {
    #[test]
    fn norms_rescale_unit_vectors() {
        let v = vec![0.6, -0.8];
        assert_eq!(super::normalize(v.clone(), 2), v);
        assert_eq!(super::normalize(v.clone(), 0), vec![0.75, -1.0]);
        let t = super::normalize(v, 1);
        assert!((t[0] - 0.6 / 1.4).abs() < 1e-6);
    }
}
