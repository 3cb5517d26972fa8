//! Model configs: Docker's v0.1/v0.2 (`ConfigFile`) and CNCF ModelPack v1, with one
//! normalised view (`ModelConfig`) that the API always shows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::FormatError;
use crate::media;

/// Docker's model config section. Field order and omissions follow Go's `types.Config`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// `gguf`, `safetensors`, `dduf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// e.g. `Q4_K_M`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<String>,
    /// e.g. `361.82M`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<String>,
    /// e.g. `llama`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// e.g. `256.35MiB`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<String>,
    /// Every GGUF key/value as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gguf: Option<BTreeMap<String, String>>,
    /// Safetensors metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safetensors: Option<BTreeMap<String, String>>,
    /// Diffusers metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diffusers: Option<BTreeMap<String, String>>,
    /// Packaged default context size; -1 means unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_size: Option<i64>,
}

/// `descriptor` of a Docker config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConfigDescriptor {
    /// Creation time, RFC 3339 with nanoseconds as Go writes it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "go_time_opt")]
    pub created: Option<DateTime<Utc>>,
}

/// `rootfs` of a Docker config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `rootfs`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Digest of each uncompressed layer, in order.
    pub diff_ids: Vec<Digest>,
}

/// A Docker model config file (`application/vnd.docker.ai.model.config.v0.1+json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigFile {
    /// Model facts.
    pub config: ModelConfig,
    /// Creation time.
    #[serde(default)]
    pub descriptor: ConfigDescriptor,
    /// Layer diff IDs.
    pub rootfs: RootFs,
}

/// `descriptor` of a ModelPack config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelPackDescriptor {
    /// Creation time.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "go_time_opt")]
    pub created_at: Option<DateTime<Utc>>,
    /// Model family (architecture).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Model name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `config` of a ModelPack config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelPackConfig {
    /// Architecture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// Weight format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// Parameter size, e.g. `361.82M`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub param_size: Option<String>,
    /// Precision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// Quantization.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantization: Option<String>,
}

/// `modelfs` of a ModelPack config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Layer diff IDs.
    pub diff_ids: Vec<Digest>,
}

/// A CNCF ModelPack config (`application/vnd.cncf.model.config.v1+json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelPack {
    /// Descriptive fields.
    pub descriptor: ModelPackDescriptor,
    /// Layer diff IDs.
    pub modelfs: ModelFs,
    /// Model facts.
    pub config: ModelPackConfig,
}

/// Any accepted config, normalised to what the API shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedConfig {
    /// Docker-shaped facts.
    pub config: ModelConfig,
    /// Creation time.
    pub created: Option<DateTime<Utc>>,
    /// Layer diff IDs.
    pub diff_ids: Vec<Digest>,
}

impl ParsedConfig {
    /// Parses a config blob of the given media type.
    pub fn parse(media_type: &str, bytes: &[u8]) -> Result<ParsedConfig, FormatError> {
        let bad = |e: serde_json::Error| FormatError::InvalidDocument {
            what: "config",
            reason: e.to_string(),
        };
        match media_type {
            media::CONFIG_V01 | media::CONFIG_V02 => {
                let c: ConfigFile = serde_json::from_slice(bytes).map_err(bad)?;
                Ok(ParsedConfig {
                    config: c.config,
                    created: c.descriptor.created,
                    diff_ids: c.rootfs.diff_ids,
                })
            }
            media::CNCF_CONFIG_V1 => {
                let c: ModelPack = serde_json::from_slice(bytes).map_err(bad)?;
                Ok(ParsedConfig {
                    config: ModelConfig {
                        format: c.config.format,
                        quantization: c.config.quantization,
                        parameters: c.config.param_size,
                        architecture: c.config.architecture.or(c.descriptor.family),
                        ..ModelConfig::default()
                    },
                    created: c.descriptor.created_at,
                    diff_ids: c.modelfs.diff_ids,
                })
            }
            other => Err(FormatError::UnsupportedMediaType {
                media_type: other.to_string(),
                what: "model config",
            }),
        }
    }
}

/// Formats a time as Go's RFC3339Nano: fraction without trailing zeros, `Z` for UTC.
pub fn go_rfc3339(t: &DateTime<Utc>) -> String {
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos == 0 {
        format!("{base}Z")
    } else {
        let frac = format!("{nanos:09}");
        format!("{base}.{}Z", frac.trim_end_matches('0'))
    }
}

mod go_time_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&super::go_rfc3339(t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        match s {
            None => Ok(None),
            Some(s) => DateTime::parse_from_rfc3339(&s)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn docker_config_serialises_in_go_order() {
        let c = ConfigFile {
            config: ModelConfig {
                format: Some("gguf".into()),
                quantization: Some("F32".into()),
                parameters: Some("260.00K".into()),
                architecture: Some("llama".into()),
                size: Some("1.13MiB".into()),
                gguf: Some(BTreeMap::from([
                    ("b".into(), "2".into()),
                    ("a".into(), "1".into()),
                ])),
                context_size: Some(2048),
                ..ModelConfig::default()
            },
            descriptor: ConfigDescriptor {
                created: Some(Utc.timestamp_opt(1_767_225_600, 0).unwrap()),
            },
            rootfs: RootFs {
                kind: "rootfs".into(),
                diff_ids: vec![Digest::of(b"x")],
            },
        };
        let s = serde_json::to_string(&c).unwrap();
        assert_eq!(
            s,
            format!(
                "{{\"config\":{{\"format\":\"gguf\",\"quantization\":\"F32\",\"parameters\":\"260.00K\",\
                 \"architecture\":\"llama\",\"size\":\"1.13MiB\",\"gguf\":{{\"a\":\"1\",\"b\":\"2\"}},\
                 \"context_size\":2048}},\"descriptor\":{{\"created\":\"2026-01-01T00:00:00Z\"}},\
                 \"rootfs\":{{\"type\":\"rootfs\",\"diff_ids\":[\"{}\"]}}}}",
                Digest::of(b"x")
            )
        );
        let back = ParsedConfig::parse(media::CONFIG_V01, s.as_bytes()).unwrap();
        assert_eq!(back.config, c.config);
        assert_eq!(back.created, c.descriptor.created);
    }

    #[test]
    fn modelpack_normalises_to_docker_shape() {
        let raw = br#"{"descriptor":{"createdAt":"2026-01-01T00:00:00.5Z","family":"llama"},
            "modelfs":{"type":"layers","diffIds":[]},
            "config":{"format":"gguf","paramSize":"1.00M","quantization":"F16"}}"#;
        let p = ParsedConfig::parse(media::CNCF_CONFIG_V1, raw).unwrap();
        assert_eq!(p.config.architecture.as_deref(), Some("llama"));
        assert_eq!(p.config.parameters.as_deref(), Some("1.00M"));
        assert_eq!(go_rfc3339(&p.created.unwrap()), "2026-01-01T00:00:00.5Z");
    }

    #[test]
    fn unknown_config_type_is_refused() {
        let e = ParsedConfig::parse("application/json", b"{}").unwrap_err();
        assert!(e.to_string().contains("unsupported media type"), "{e}");
    }
}
