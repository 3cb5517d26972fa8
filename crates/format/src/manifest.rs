//! OCI image manifests as model artifacts carry them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::FormatError;
use crate::media;

/// Largest manifest or config accepted anywhere (read limit; bigger is an error).
pub const MAX_DOCUMENT_BYTES: usize = 4 << 20;

/// A content descriptor. Field order matches Go's `oci.Descriptor` so that the JSON we
/// write is byte-identical to Docker's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Content digest.
    pub digest: Digest,
    /// Foreign URLs (never followed with credentials).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// Annotations, sorted by key like Go maps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Artifact type of the referenced content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
}

impl Descriptor {
    /// An annotation value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    /// What the layer is for.
    pub fn kind(&self) -> media::LayerKind {
        media::classify(
            &self.media_type,
            self.annotation(media::ANNOTATION_FILEPATH),
        )
    }
}

/// An OCI image manifest (or a Docker schema 2 manifest, which has the same shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// The manifest media type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Set for CNCF ModelPack artifacts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The model config blob.
    pub config: Descriptor,
    /// The layers, in order.
    pub layers: Vec<Descriptor>,
    /// Manifest annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
}

impl Manifest {
    /// Parses and checks a manifest: schema 2, a known manifest media type, an accepted
    /// config media type, at least one layer.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, FormatError> {
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(FormatError::InvalidDocument {
                what: "manifest",
                reason: format!("{} bytes is over the 4 MiB limit", bytes.len()),
            });
        }
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| FormatError::InvalidDocument {
                what: "manifest",
                reason: e.to_string(),
            })?;
        if m.schema_version != 2 {
            return Err(FormatError::InvalidDocument {
                what: "manifest",
                reason: format!("schemaVersion {} (expected 2)", m.schema_version),
            });
        }
        if let Some(mt) = &m.media_type {
            if mt != media::OCI_MANIFEST && mt != media::DOCKER_MANIFEST_V2 {
                return Err(FormatError::UnsupportedMediaType {
                    media_type: mt.clone(),
                    what: "manifest",
                });
            }
        }
        if !media::ACCEPTED_CONFIGS.contains(&m.config.media_type.as_str()) {
            return Err(FormatError::UnsupportedMediaType {
                media_type: m.config.media_type.clone(),
                what: "model config",
            });
        }
        if m.config.size > MAX_DOCUMENT_BYTES as u64 {
            return Err(FormatError::InvalidDocument {
                what: "manifest",
                reason: format!("config size {} is over the 4 MiB limit", m.config.size),
            });
        }
        if m.layers.is_empty() {
            return Err(FormatError::InvalidDocument {
                what: "manifest",
                reason: "no layers".into(),
            });
        }
        Ok(m)
    }

    /// Serialises compactly, as Go's encoding/json does.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("manifest serialises")
    }

    /// Every blob this manifest references: layers, then the config.
    pub fn blobs(&self) -> impl Iterator<Item = &Descriptor> {
        self.layers.iter().chain(std::iter::once(&self.config))
    }
}
