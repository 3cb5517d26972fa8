//! `POST /api/show`: a model's details, `model_info` read from its GGUF header (always an
//! object; clients read `<arch>.context_length` from it and crash on null), its
//! capabilities, parameters, template, system prompt, license and a Modelfile.

use axum::extract::State;
use axum::Json;
use modelrunner_format::config::ModelConfig;
use modelrunner_format::gguf::{Array, GgufFile, Value as Gv};
use modelrunner_format::media;
use serde_json::{json, Map, Value};
use tracing::instrument;

use super::decode::{flag, string};
use super::{display, extras, resolve_info};
use crate::extract::ApiJson;
use crate::{blocking, ApiError, AppState};

/// Ollama's `details`.
pub(crate) fn details(c: &ModelConfig) -> Value {
    let family = c.architecture.clone().unwrap_or_default();
    json!({
        "parent_model": "",
        "format": c.format.clone().unwrap_or_else(|| "gguf".into()),
        "family": family,
        "families": [family],
        "parameter_size": c.parameters.clone().unwrap_or_default(),
        "quantization_level": c.quantization.clone().unwrap_or_default(),
    })
}

fn array(a: &Array, verbose: bool) -> Value {
    if a.len() > 5 && !verbose {
        return json!([]);
    }
    match a {
        Array::U8(v) => json!(v),
        Array::I8(v) => json!(v),
        Array::U16(v) => json!(v),
        Array::I16(v) => json!(v),
        Array::U32(v) => json!(v),
        Array::I32(v) => json!(v),
        Array::F32(v) => json!(v),
        Array::Bool(v) => json!(v),
        Array::String(v) => json!(v),
        Array::Array(v) => Value::Array(v.iter().map(|x| array(x, verbose)).collect()),
        Array::U64(v) => json!(v),
        Array::I64(v) => json!(v),
        Array::F64(v) => json!(v),
    }
}

fn value(v: &Gv, verbose: bool) -> Value {
    match v {
        Gv::U8(x) => json!(x),
        Gv::I8(x) => json!(x),
        Gv::U16(x) => json!(x),
        Gv::I16(x) => json!(x),
        Gv::U32(x) => json!(x),
        Gv::I32(x) => json!(x),
        Gv::F32(x) => json!(x),
        Gv::Bool(x) => json!(x),
        Gv::String(x) => json!(x),
        Gv::Array(a) => array(a, verbose),
        Gv::U64(x) => json!(x),
        Gv::I64(x) => json!(x),
        Gv::F64(x) => json!(x),
    }
}

/// `model_info`: the GGUF's key/values as Ollama shows them (no name or template; long
/// arrays emptied unless `verbose`), plus `general.parameter_count`.
pub(crate) fn model_info(g: &GgufFile, verbose: bool) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in &g.metadata {
        if k == "general.name" || k == "tokenizer.chat_template" {
            continue;
        }
        m.insert(k.clone(), value(v, verbose));
    }
    let params: u64 = g
        .tensors
        .iter()
        .map(|t| t.dims.iter().product::<u64>())
        .sum();
    m.insert("general.parameter_count".into(), json!(params));
    m
}

/// What the model can do, in Ollama's words, from its chat template and GGUF.
pub(crate) fn capabilities(template: &str, g: Option<&GgufFile>) -> Vec<&'static str> {
    let mut c = vec!["completion"];
    if template.contains("tools") || template.contains("tool_call") {
        c.push("tools");
    }
    if template.contains("<think>")
        || template.contains("enable_thinking")
        || template.contains("reasoning_content")
    {
        c.push("thinking");
    }
    let has = |k: &str| g.is_some_and(|g| g.get(k).is_some());
    if has("tokenizer.ggml.fim_pre_token_id") && has("tokenizer.ggml.fim_suf_token_id") {
        c.push("insert");
    }
    c
}

/// `parameters` as Ollama prints them: the key padded to 30 columns, then the value
/// (strings quoted), one line each, a list one line per element.
fn parameters_text(p: &Map<String, Value>) -> String {
    let mut lines = Vec::new();
    for (k, v) in p {
        let vals = match v {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        for x in vals {
            lines.push(format!("{k:<30} {x}"));
        }
    }
    lines.join("\n")
}

/// `POST /api/show`.
#[instrument(skip_all, fields(model))]
pub(crate) async fn show(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    let name = string(&body, "model")?
        .or(string(&body, "name")?)
        .unwrap_or_default();
    tracing::Span::current().record("model", name.as_str());
    let verbose = flag(&body, "verbose", false)?;
    let info = resolve_info(&state, &name).await?;
    let store = state.store.clone();
    let id = info.id;
    let (gguf, template, license, ex) = blocking(move || {
        let bundle = store.bundle(&id.to_string())?;
        let gguf = GgufFile::open(&bundle.gguf)?;
        let packaged = match &bundle.chat_template {
            Some(p) => std::fs::read_to_string(p).ok(),
            None => None,
        };
        let template = packaged.or_else(|| {
            gguf.get("tokenizer.chat_template")
                .and_then(Gv::as_str)
                .map(str::to_string)
        });
        let manifest = modelrunner_format::Manifest::parse(&store.manifest_bytes(&id)?)?;
        let mut license = Vec::new();
        for l in manifest.layers.iter().filter(|l| {
            l.media_type == media::LICENSE || l.media_type == "application/vnd.ollama.image.license"
        }) {
            let b = store.read_blob(&l.digest, 1 << 20)?;
            license.push(String::from_utf8_lossy(&b).into_owned());
        }
        let ex = extras::read(&store, &id)?;
        Ok((gguf, template.unwrap_or_default(), license, ex))
    })
    .await?;
    let shown = ex.template.clone().unwrap_or_else(|| template.clone());
    let tag = info
        .tags
        .first()
        .map(|t| display(t))
        .unwrap_or_else(|| name.clone());
    let mut d = details(&info.config);
    let arch = info.config.architecture.clone().unwrap_or_default();
    let mi = model_info(&gguf, verbose);
    for (key, out) in [
        ("context_length", "context_length"),
        ("embedding_length", "embedding_length"),
    ] {
        if let Some(v) = mi.get(&format!("{arch}.{key}")) {
            d[out] = v.clone();
        }
    }
    let mut modelfile = format!(
        "# Modelfile generated by \"ollama show\"\n# To build a new Modelfile based on this, replace FROM with:\n# FROM {tag}\n\nFROM {tag}\nTEMPLATE \"\"\"{shown}\"\"\"\n"
    );
    if let Some(s) = &ex.system {
        modelfile.push_str(&format!("SYSTEM \"\"\"{s}\"\"\"\n"));
    }
    for line in parameters_text(&ex.params).lines() {
        modelfile.push_str(&format!("PARAMETER {line}\n"));
    }
    let modified = chrono::DateTime::from_timestamp(info.created, 0).unwrap_or_default();
    let mut out = json!({
        "license": license.join("\n"),
        "modelfile": modelfile,
        "parameters": parameters_text(&ex.params),
        "template": shown,
        "details": d,
        "model_info": mi,
        "capabilities": capabilities(&template, Some(&gguf)),
        "modified_at": modified.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
    });
    if let Some(s) = &ex.system {
        out["system"] = json!(s);
    }
    Ok(Json(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_follow_the_template() {
        assert_eq!(capabilities("{{ messages }}", None), vec!["completion"]);
        let qwen = "{% if tools %}<tools>{% endif %}<think>";
        assert_eq!(
            capabilities(qwen, None),
            vec!["completion", "tools", "thinking"]
        );
    }

    #[test]
    fn parameters_print_like_ollama() {
        let p: Map<String, Value> =
            serde_json::from_value(json!({"stop": ["a", "b"], "temperature": 0.5})).unwrap();
        let t = parameters_text(&p);
        assert_eq!(t.lines().count(), 3);
        assert!(t.starts_with("stop                           \"a\""), "{t}");
    }
}
