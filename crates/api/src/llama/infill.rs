//! `POST /infill`: llama-server's code infilling. `input_prefix`, `input_suffix`,
//! `input_extra` (`[{"filename", "text"}]`) and `prompt` become the model's FIM prompt
//! (`fim`); every `/completion` field applies, and the answer is `/completion`'s.

use axum::extract::State;
use axum::response::Response;
use modelrunner_protocol::Mode;
use serde_json::{json, Value};
use tracing::instrument;

use super::{completion, model_or_only};
use crate::extract::ApiJson;
use crate::fim::{self, Infill};
use crate::resolve::model_spec;
use crate::{ApiError, AppState};

fn text(body: &Value, key: &str) -> Result<String, ApiError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(ApiError::invalid(key, format!("{key} must be a string"))),
    }
}

/// The request's infill parts.
pub(crate) fn infill(body: &Value) -> Result<Infill, ApiError> {
    let mut extra = Vec::new();
    match body.get("input_extra") {
        None | Some(Value::Null) => {}
        Some(Value::Array(chunks)) => {
            for (i, c) in chunks.iter().enumerate() {
                let get = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
                let t = get("text").ok_or_else(|| {
                    ApiError::invalid(
                        &format!("input_extra[{i}].text"),
                        "each chunk needs a text string",
                    )
                })?;
                let name = match c.get("filename") {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(n)) => n.clone(),
                    Some(_) => {
                        return Err(ApiError::invalid(
                            &format!("input_extra[{i}].filename"),
                            "a chunk's filename is a string",
                        ))
                    }
                };
                extra.push((name, t));
            }
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "input_extra",
                "input_extra is [{\"filename\", \"text\"}, ...]",
            ))
        }
    }
    Ok(Infill {
        prefix: text(body, "input_prefix")?,
        suffix: text(body, "input_suffix")?,
        extra,
        prompt: text(body, "prompt")?,
    })
}

/// `POST /infill`.
#[instrument(skip_all, fields(model))]
pub(crate) async fn handler(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let parts = infill(&body)?;
    let model = model_or_only(&state, body.get("model").and_then(Value::as_str)).await?;
    tracing::Span::current().record("model", model.as_str());
    let spec = model_spec(&state, &model, Mode::Completion).await?;
    let tokens = fim::prompt(&state, &spec, &parts, "input_suffix").await?;
    let mut native = body.clone();
    native["prompt"] = json!(tokens);
    completion::run(&state, &native, model).await
}
