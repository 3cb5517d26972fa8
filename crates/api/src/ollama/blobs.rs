//! `HEAD`/`POST /api/blobs/:digest` (uploads checked against their digest before they
//! are kept) and `POST /api/create`: a new model from an existing one (`from`) or from an
//! uploaded GGUF (`files`), with a system prompt, parameters, a template and a license
//! stored as layers of a Docker-format artifact (`extras`), pushable like any other.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::TryStreamExt;
use modelrunner_format::package::PackageSpec;
use modelrunner_format::{Descriptor, Digest, Manifest, Reference};
use modelrunner_store::{Store, StoreError};
use serde_json::{json, Value};
use tokio_util::io::{StreamReader, SyncIoBridge};
use tracing::{info, instrument};

use super::decode::{flag, string};
use super::encode::{json_response, line};
use super::extras::{PARAMS, SYSTEM, TEMPLATE};
use super::resolve_info;
use crate::extract::ApiJson;
use crate::{blocking, ApiError, AppState};

/// `sha256:<hex>` or `sha256-<hex>`, as Ollama's routes take digests.
fn digest(s: &str, param: &str) -> Result<Digest, ApiError> {
    let hex = s
        .strip_prefix("sha256:")
        .or_else(|| s.strip_prefix("sha256-"))
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| ApiError::invalid(param, format!("invalid digest format {s:?}")))?;
    format!("sha256:{}", hex.to_ascii_lowercase())
        .parse()
        .map_err(|_| ApiError::invalid(param, format!("invalid digest format {s:?}")))
}

/// `HEAD /api/blobs/:digest`.
pub(crate) async fn head_blob(
    State(state): State<AppState>,
    Path(d): Path<String>,
) -> Result<StatusCode, ApiError> {
    let d = digest(&d, "digest")?;
    if state.store.has_blob(&d) {
        Ok(StatusCode::OK)
    } else {
        Err(ApiError::not_found(format!(
            "blob {:?} not found",
            d.to_string()
        )))
    }
}

/// `POST /api/blobs/:digest`: 201 when stored, 200 when it already was, 400 when the
/// bytes are not what the digest names (they are then not kept under it).
#[instrument(skip_all, fields(digest = %d))]
pub(crate) async fn post_blob(
    State(state): State<AppState>,
    Path(d): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let want = digest(&d, "digest")?;
    let limit = state.config.load_limit;
    if state.store.has_blob(&want) {
        // The client sends the bytes anyway. Answering before they are read makes the
        // server close the connection under the client's next request on it (the Ollama
        // client then fails with "Server disconnected"), so they are read and dropped.
        let mut stream = body.into_data_stream();
        let mut seen = 0u64;
        while let Some(chunk) = stream
            .try_next()
            .await
            .map_err(|e| ApiError::bad_request(format!("reading the blob: {e}")))?
        {
            seen += chunk.len() as u64;
            if seen > limit {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    crate::ErrorKind::InvalidRequest,
                    format!("the blob is larger than the limit of {limit} bytes"),
                ));
            }
        }
        return Ok(StatusCode::OK);
    }
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let mut reader = SyncIoBridge::new(StreamReader::new(stream));
    let store = state.store.clone();
    let got = blocking(move || {
        let lease = store.lease();
        let mut w = lease.blob_writer(None)?;
        let mut limited = std::io::Read::take(&mut reader, limit.saturating_add(1));
        w.copy_from(&mut limited)?;
        if w.written() > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                crate::ErrorKind::InvalidRequest,
                format!("the blob is larger than the limit of {limit} bytes"),
            ));
        }
        match w.commit_as(want) {
            Err(StoreError::DigestMismatch { expected, actual }) => Err(ApiError::invalid(
                "digest",
                format!("digest mismatch, expected \"{expected}\", got \"{actual}\""),
            )),
            r => Ok(r?),
        }
    })
    .await?;
    info!(digest = %got, "blob stored");
    Ok(StatusCode::CREATED)
}

/// What `create` asks for.
struct Spec {
    name: Reference,
    from: Option<String>,
    gguf: Option<Digest>,
    layers: Vec<(&'static str, String)>,
}

fn spec(body: &Value) -> Result<Spec, ApiError> {
    let model = string(body, "model")?
        .or(string(body, "name")?)
        .unwrap_or_default();
    if model.is_empty() {
        return Err(ApiError::invalid("model", "model is required"));
    }
    let name: Reference = model
        .parse()
        .map_err(|e| ApiError::from(e).param("model"))?;
    for key in ["quantize", "adapters", "messages", "modelfile", "path"] {
        if body
            .get(key)
            .is_some_and(|v| !v.is_null() && v != &json!({}) && v != &json!([]) && v != &json!(""))
        {
            return Err(ApiError::invalid(
                key,
                format!("{key} is not supported by this daemon's create; give from or files, with template, system, parameters or license"),
            ));
        }
    }
    let mut gguf = None;
    if let Some(files) = body.get("files").filter(|f| !f.is_null()) {
        let files = files
            .as_object()
            .ok_or_else(|| ApiError::invalid("files", "files maps file names to digests"))?;
        if files.len() != 1 {
            return Err(ApiError::invalid("files", "give exactly one GGUF file (split GGUFs are not supported by create; package them)"));
        }
        let (file, d) = files.iter().next().expect("one file");
        if !file.ends_with(".gguf") {
            return Err(ApiError::invalid(
                "files",
                format!("{file:?} is not a .gguf file"),
            ));
        }
        gguf = Some(digest(
            d.as_str().unwrap_or_default(),
            &format!("files.{file}"),
        )?);
    }
    let from = string(body, "from")?;
    match (&from, &gguf) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid("files", "give from or files, not both"))
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "from",
                "give from (an existing model) or files (an uploaded GGUF)",
            ))
        }
        _ => {}
    }
    let mut layers = Vec::new();
    if let Some(s) = string(body, "system")? {
        layers.push((SYSTEM, s));
    }
    if let Some(t) = string(body, "template")? {
        super::gotemplate::render(&t, &Default::default())
            .map_err(|m| ApiError::invalid("template", m))?;
        layers.push((TEMPLATE, t));
    }
    match body.get("parameters") {
        None | Some(Value::Null) => {}
        Some(p @ Value::Object(_)) => {
            // Checked as a request's options would be.
            super::options::options(Some(p), &Default::default())
                .map_err(|e| e.rename_param(|p| p.replace("options.", "parameters.")))?;
            layers.push((PARAMS, p.to_string()));
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "parameters",
                "parameters must be an object",
            ))
        }
    }
    match body.get("license") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => layers.push((modelrunner_format::media::LICENSE, s.clone())),
        Some(Value::Array(a)) => {
            for l in a {
                let s = l.as_str().ok_or_else(|| {
                    ApiError::invalid("license", "license must be a string or strings")
                })?;
                layers.push((modelrunner_format::media::LICENSE, s.to_string()));
            }
        }
        Some(_) => {
            return Err(ApiError::invalid(
                "license",
                "license must be a string or strings",
            ))
        }
    }
    Ok(Spec {
        name,
        from,
        gguf,
        layers,
    })
}

/// The base artifact's manifest and config: an existing model's, or a new package of
/// an uploaded GGUF.
fn base(
    store: &Store,
    lease: &modelrunner_store::Lease<'_>,
    s: &Spec,
    from_id: Option<Digest>,
    log: &mut Vec<String>,
) -> Result<(Manifest, Value), ApiError> {
    if let Some(id) = from_id {
        let m = Manifest::parse(&store.manifest_bytes(&id)?)?;
        let c = store.read_blob(&m.config.digest, 1 << 24)?;
        return Ok((m, serde_json::from_slice(&c).map_err(ApiError::internal)?));
    }
    let d = s.gguf.expect("from or files");
    if !store.has_blob(&d) {
        return Err(ApiError::invalid(
            "files",
            format!("blob {d} is not uploaded; POST it to /api/blobs/{d} first"),
        ));
    }
    lease.pin(d);
    log.push("parsing GGUF".into());
    let built = PackageSpec {
        gguf: store.blob_path(&d),
        created: Some(chrono::Utc::now()),
        ..PackageSpec::default()
    }
    .plan()
    .and_then(|p| p.build(&mut |_| {}))
    .map_err(|e| ApiError::from(e).param("files"))?;
    store.put_blob(lease, &built.config)?;
    let m = Manifest::parse(&built.manifest)?;
    Ok((
        m,
        serde_json::from_slice(&built.config).map_err(ApiError::internal)?,
    ))
}

/// Builds and stores the new model; returns its progress lines.
fn build(store: &Store, s: Spec, from_id: Option<Digest>) -> Result<Vec<String>, ApiError> {
    let lease = store.lease();
    let mut log = Vec::new();
    let (mut m, mut config) = base(store, &lease, &s, from_id, &mut log)?;
    for l in &m.layers {
        log.push(format!("using existing layer {}", l.digest));
    }
    let replaced: Vec<&str> = s.layers.iter().map(|(t, _)| *t).collect();
    m.layers
        .retain(|l| !replaced.contains(&l.media_type.as_str()));
    for (media_type, text) in &s.layers {
        let digest = store.put_blob(&lease, text.as_bytes())?;
        log.push(format!("creating new layer {digest}"));
        m.layers.push(Descriptor {
            media_type: (*media_type).to_string(),
            size: text.len() as u64,
            digest,
            urls: None,
            annotations: None,
            artifact_type: None,
        });
    }
    let ids: Vec<Value> = m
        .layers
        .iter()
        .map(|l| json!(l.digest.to_string()))
        .collect();
    if config.get("rootfs").is_some() {
        config["rootfs"]["diff_ids"] = Value::Array(ids);
    } else if config.get("modelfs").is_some() {
        config["modelfs"]["diffIds"] = Value::Array(ids);
    }
    let bytes = serde_json::to_vec(&config).map_err(ApiError::internal)?;
    let cd = store.put_blob(&lease, &bytes)?;
    m.config = Descriptor {
        size: bytes.len() as u64,
        digest: cd,
        ..m.config.clone()
    };
    log.push("writing manifest".into());
    store.add_model(&lease, &m.to_bytes(), &[s.name])?;
    log.push("success".into());
    Ok(log)
}

/// `POST /api/create`.
#[instrument(skip_all)]
pub(crate) async fn create(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Response, ApiError> {
    let s = spec(&body)?;
    let stream = flag(&body, "stream", true)?;
    let from_id = match &s.from {
        Some(f) => Some(
            resolve_info(&state, f)
                .await
                .map_err(|e| e.rename_param(|_| "from".into()))?
                .id,
        ),
        None => None,
    };
    let store = state.store.clone();
    let log = blocking(move || build(&store, s, from_id)).await?;
    let lines: Vec<Value> = log.iter().map(|l| json!({ "status": l })).collect();
    if !stream {
        return Ok(json_response(
            lines
                .last()
                .cloned()
                .unwrap_or(json!({"status": "success"})),
        ));
    }
    let body: Vec<u8> = lines.iter().flat_map(|l| line(l).to_vec()).collect();
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_in_both_forms() {
        let hex = "ab".repeat(32);
        assert_eq!(digest(&format!("sha256-{hex}"), "d").unwrap().hex(), hex);
        assert_eq!(
            digest(&format!("sha256:{}", hex.to_uppercase()), "d")
                .unwrap()
                .hex(),
            hex
        );
        for bad in ["sha256:12", "md5:00", &format!("sha512:{hex}")] {
            assert_eq!(
                digest(bad, "digest").unwrap_err().param.as_deref(),
                Some("digest")
            );
        }
    }

    #[test]
    fn create_requests_are_checked() {
        for (body, param) in [
            (json!({"from": "x"}), "model"),
            (json!({"model": "a"}), "from"),
            (
                json!({"model": "a", "from": "x", "quantize": "q4_K_M"}),
                "quantize",
            ),
            (
                json!({"model": "a", "files": {"a.bin": "sha256:00"}}),
                "files",
            ),
            (
                json!({"model": "a", "from": "x", "parameters": {"temperature": "hot"}}),
                "parameters.temperature",
            ),
            (
                json!({"model": "a", "from": "x", "template": "{{ range .Messages }}{{ end }}"}),
                "template",
            ),
        ] {
            let e = spec(&body).err().unwrap();
            assert_eq!(e.param.as_deref(), Some(param), "{body}: {}", e.message);
        }
    }
}
