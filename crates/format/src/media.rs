//! Media types and annotation keys, as Docker Model Runner and CNCF ModelPack write them.

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// Docker schema 2 manifest (read only).
pub const DOCKER_MANIFEST_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// Docker model config v0.1 (written for GGUF packages).
pub const CONFIG_V01: &str = "application/vnd.docker.ai.model.config.v0.1+json";
/// Docker model config v0.2 (layer per file; read only here).
pub const CONFIG_V02: &str = "application/vnd.docker.ai.model.config.v0.2+json";
/// CNCF ModelPack config v1.
pub const CNCF_CONFIG_V1: &str = "application/vnd.cncf.model.config.v1+json";
/// CNCF ModelPack manifest artifact type.
pub const CNCF_ARTIFACT_TYPE: &str = "application/vnd.cncf.model.manifest.v1+json";

/// A GGUF file or shard.
pub const GGUF: &str = "application/vnd.docker.ai.gguf.v3";
/// A license text.
pub const LICENSE: &str = "application/vnd.docker.ai.license";
/// A multimodal projector.
pub const MMPROJ: &str = "application/vnd.docker.ai.mmproj";
/// A Jinja chat template.
pub const CHAT_TEMPLATE: &str = "application/vnd.docker.ai.chat.template.jinja";
/// Safetensors weights (recognised, not runnable here).
pub const SAFETENSORS: &str = "application/vnd.docker.ai.safetensors";
/// A generic model file placed by its filepath annotation.
pub const MODEL_FILE: &str = "application/vnd.docker.ai.model.file";

/// CNCF raw weight layer.
pub const CNCF_WEIGHT_RAW: &str = "application/vnd.cncf.model.weight.v1.raw";
/// CNCF raw weight-config layer (templates, tokenizer files).
pub const CNCF_WEIGHT_CONFIG_RAW: &str = "application/vnd.cncf.model.weight.config.v1.raw";
/// CNCF raw documentation layer (licenses).
pub const CNCF_DOC_RAW: &str = "application/vnd.cncf.model.doc.v1.raw";
/// Legacy DMR extension: CNCF GGUF weight.
pub const CNCF_WEIGHT_GGUF: &str = "application/vnd.cncf.model.weight.v1.gguf";

/// Annotation: the file's path inside the model.
pub const ANNOTATION_FILEPATH: &str = "org.cncf.model.filepath";
/// Annotation: tar-like file metadata as JSON.
pub const ANNOTATION_FILE_METADATA: &str = "org.cncf.model.file.metadata+json";
/// Annotation: whether the media type is untested.
pub const ANNOTATION_MEDIATYPE_UNTESTED: &str = "org.cncf.model.file.mediatype.untested";

/// Config media types a pull or load accepts.
pub const ACCEPTED_CONFIGS: [&str; 3] = [CONFIG_V01, CONFIG_V02, CNCF_CONFIG_V1];

/// What a layer is for, whatever media type family it came with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// GGUF weights (one per shard).
    Gguf,
    /// License text.
    License,
    /// Chat template.
    ChatTemplate,
    /// Multimodal projector.
    Mmproj,
    /// Anything else (kept, not used by the engine).
    Other,
}

/// Classifies a layer by media type and, for CNCF raw layers, its file path.
pub fn classify(media_type: &str, filepath: Option<&str>) -> LayerKind {
    let path = filepath.unwrap_or_default().to_ascii_lowercase();
    match media_type {
        GGUF | CNCF_WEIGHT_GGUF if path.contains("mmproj") => LayerKind::Mmproj,
        GGUF | CNCF_WEIGHT_GGUF => LayerKind::Gguf,
        LICENSE | CNCF_DOC_RAW if media_type == LICENSE || !path.ends_with(".md") => {
            LayerKind::License
        }
        CHAT_TEMPLATE => LayerKind::ChatTemplate,
        MMPROJ => LayerKind::Mmproj,
        CNCF_WEIGHT_RAW if path.contains("mmproj") => LayerKind::Mmproj,
        CNCF_WEIGHT_RAW if path.ends_with(".gguf") => LayerKind::Gguf,
        CNCF_WEIGHT_CONFIG_RAW if path.ends_with(".jinja") => LayerKind::ChatTemplate,
        _ => LayerKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_docker_and_cncf_layers() {
        assert_eq!(classify(GGUF, None), LayerKind::Gguf);
        assert_eq!(classify(LICENSE, None), LayerKind::License);
        assert_eq!(classify(MMPROJ, None), LayerKind::Mmproj);
        assert_eq!(classify(CHAT_TEMPLATE, None), LayerKind::ChatTemplate);
        assert_eq!(
            classify(CNCF_WEIGHT_RAW, Some("model.gguf")),
            LayerKind::Gguf
        );
        assert_eq!(
            classify(CNCF_WEIGHT_RAW, Some("model.mmproj")),
            LayerKind::Mmproj
        );
        assert_eq!(
            classify(CNCF_WEIGHT_RAW, Some("x.safetensors")),
            LayerKind::Other
        );
        assert_eq!(
            classify(CNCF_WEIGHT_CONFIG_RAW, Some("template.jinja")),
            LayerKind::ChatTemplate
        );
        assert_eq!(classify(CNCF_DOC_RAW, Some("LICENSE")), LayerKind::License);
        assert_eq!(classify(CNCF_DOC_RAW, Some("README.md")), LayerKind::Other);
        assert_eq!(classify("application/octet-stream", None), LayerKind::Other);
    }
}
