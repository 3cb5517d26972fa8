//! Ollama-format artifacts (`application/vnd.ollama.image.*` layers in a Docker schema 2
//! manifest), from `registry.ollama.ai` or any registry holding them: the layers that
//! mean something to llama.cpp are fetched and repackaged as a Docker-format artifact.
//!
//! | Ollama layer | becomes |
//! |---|---|
//! | `model` (one) | the GGUF layer |
//! | `projector` (the first) | the `mmproj` layer |
//! | `license` (each) | a license layer |
//! | `params` | its `num_ctx` is the config's `context_size`; the rest is not used |
//! | `template`, `system`, `messages`, `adapter`, `draft`, others | not fetched: the GGUF's own chat template is used (ChatML when it has none) |

use chrono::{DateTime, Utc};
use modelrunner_format::{media, Descriptor, Manifest, Reference};
use modelrunner_store::{ModelInfo, Store};
use serde::Deserialize;
use tracing::warn;

use crate::convert::{package_stored, Part, Role};
use crate::error::RegistryError;
use crate::progress::Sink;

/// The media type prefix of Ollama's layers.
pub const PREFIX: &str = "application/vnd.ollama.image.";
const MODEL: &str = "application/vnd.ollama.image.model";
const PROJECTOR: &str = "application/vnd.ollama.image.projector";
const LICENSE: &str = "application/vnd.ollama.image.license";
const PARAMS: &str = "application/vnd.ollama.image.params";
/// `params` blobs read at most.
const MAX_PARAMS: u64 = 64 << 10;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    schema_version: u32,
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// The layers of an Ollama manifest that are fetched.
#[derive(Debug, Clone)]
pub(crate) struct Layers {
    model: Descriptor,
    projector: Option<Descriptor>,
    licenses: Vec<Descriptor>,
    params: Option<Descriptor>,
}

/// `None` when `bytes` is not an Ollama manifest; otherwise the manifest of what is
/// fetched (the config and the mapped layers) and those layers.
pub(crate) fn parse(bytes: &[u8], host: &str) -> Option<Result<(Manifest, Layers), RegistryError>> {
    let raw: Raw = serde_json::from_slice(bytes).ok()?;
    if !raw.layers.iter().any(|l| l.media_type.starts_with(PREFIX)) {
        return None;
    }
    let invalid = |reason: String| RegistryError::Invalid {
        registry: host.to_string(),
        reason,
    };
    if raw.schema_version != 2 {
        return Some(Err(invalid(format!(
            "an Ollama manifest with schemaVersion {}",
            raw.schema_version
        ))));
    }
    let of = |t: &'static str| {
        raw.layers
            .iter()
            .filter(move |l| l.media_type == t)
            .cloned()
    };
    let models: Vec<Descriptor> = of(MODEL).collect();
    let [model] = models.as_slice() else {
        return Some(Err(invalid(format!(
            "an Ollama manifest with {} model layers (one GGUF is expected; safetensors-based Ollama models are not GGUF)",
            models.len()
        ))));
    };
    let ignored: Vec<&str> = raw
        .layers
        .iter()
        .map(|l| l.media_type.as_str())
        .filter(|t| ![MODEL, PROJECTOR, LICENSE, PARAMS].contains(t))
        .collect();
    if !ignored.is_empty() {
        warn!(layers = ?ignored, "Ollama layers not used (the GGUF's own chat template is)");
    }
    let layers = Layers {
        model: model.clone(),
        projector: of(PROJECTOR).next(),
        licenses: of(LICENSE).collect(),
        params: of(PARAMS).next(),
    };
    let fetched = std::iter::once(layers.model.clone())
        .chain(layers.projector.clone())
        .chain(layers.licenses.iter().cloned())
        .chain(layers.params.clone())
        .collect();
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::DOCKER_MANIFEST_V2.to_string()),
        artifact_type: None,
        config: raw.config,
        layers: fetched,
        annotations: None,
    };
    Some(Ok((manifest, layers)))
}

/// Makes the Docker-format artifact from the fetched layers and tags it (Ollama's Go
/// template is not run; a GGUF without a template of its own falls back to ChatML).
pub(crate) fn convert(
    store: &Store,
    host: &str,
    layers: &Layers,
    tags: &[Reference],
    sink: &Sink,
) -> Result<ModelInfo, RegistryError> {
    let context_size = match &layers.params {
        Some(p) => {
            let bytes = store.read_blob(&p.digest, MAX_PARAMS)?;
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("num_ctx")?.as_u64())
                .filter(|&n| n > 0 && n <= i32::MAX as u64)
        }
        None => None,
    };
    let mut parts = vec![Part {
        name: "model.gguf".into(),
        digest: layers.model.digest,
        role: Role::Weights,
    }];
    parts.extend(layers.projector.as_ref().map(|p| Part {
        name: "mmproj.gguf".into(),
        digest: p.digest,
        role: Role::Mmproj,
    }));
    for (i, l) in layers.licenses.iter().enumerate() {
        parts.push(Part {
            name: if i == 0 {
                "LICENSE".into()
            } else {
                format!("LICENSE-{}", i + 1)
            },
            digest: l.digest,
            role: Role::License,
        });
    }
    let made = package_stored(
        store,
        host,
        &parts,
        DateTime::<Utc>::UNIX_EPOCH,
        context_size,
        tags,
    )?;
    made.warn_untemplated(sink);
    Ok(made.info)
}
