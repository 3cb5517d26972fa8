//! Reproducible packaging of GGUF files into model artifacts.
//!
//! [`PackageSpec::plan`] checks the inputs (absolute, readable, regular files; a valid GGUF;
//! every shard present), [`Plan::build`] hashes the layers and writes config and manifest,
//! and [`Built::write_tar`] streams the artifact in the load/export tar format.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{
    go_rfc3339, ConfigDescriptor, ConfigFile, ModelConfig, ModelFs, ModelPack, ModelPackConfig,
    ModelPackDescriptor, RootFs,
};
use crate::digest::{Digest, Hasher};
use crate::error::FormatError;
use crate::gguf::{format_bytes, format_parameters, GgufFile};
use crate::manifest::{Descriptor, Manifest};
use crate::media;
use crate::tarball::TarWriter;

/// Which config flavour to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PackageFormat {
    /// Docker Model Runner config v0.1 (the default).
    #[default]
    Docker,
    /// CNCF ModelPack v1.
    Cncf,
}

/// What to package.
#[derive(Debug, Clone, Default)]
pub struct PackageSpec {
    /// The GGUF file, or the first shard (`-00001-of-0000N.gguf`).
    pub gguf: PathBuf,
    /// License files, in order.
    pub licenses: Vec<PathBuf>,
    /// A Jinja chat template.
    pub chat_template: Option<PathBuf>,
    /// A multimodal projector.
    pub mmproj: Option<PathBuf>,
    /// Default context size to record (Docker format only).
    pub context_size: Option<u64>,
    /// Config flavour.
    pub format: PackageFormat,
    /// Creation time; when set, the output is reproducible (file times and modes are
    /// normalised to it).
    pub created: Option<DateTime<Utc>>,
}

/// One file to become a layer.
#[derive(Debug, Clone)]
pub struct PlannedLayer {
    /// Source file.
    pub path: PathBuf,
    /// Layer media type.
    pub media_type: &'static str,
    /// Size in bytes.
    pub size: u64,
    annotations: BTreeMap<String, String>,
}

/// Checked inputs, ready to hash.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Layers in manifest order.
    pub layers: Vec<PlannedLayer>,
    config: ModelConfig,
    format: PackageFormat,
    created: DateTime<Utc>,
}

/// A built artifact: config and manifest bytes, and where each layer's bytes come from.
#[derive(Debug, Clone)]
pub struct Built {
    /// Raw manifest.
    pub manifest: Vec<u8>,
    /// Manifest digest (the model ID).
    pub id: Digest,
    /// Raw config.
    pub config: Vec<u8>,
    /// Layers with their descriptors.
    pub layers: Vec<(PathBuf, Descriptor)>,
}

#[derive(Serialize)]
struct FileMetadata<'a> {
    name: &'a str,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: String,
    typeflag: u8,
}

fn err(msg: impl Into<String>) -> FormatError {
    FormatError::Package(msg.into())
}

fn check_file(path: &Path, what: &str) -> Result<fs::Metadata, FormatError> {
    if !path.is_absolute() {
        return Err(err(format!(
            "{what} path {} must be absolute",
            path.display()
        )));
    }
    let meta = fs::metadata(path).map_err(|e| err(format!("{what} {}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(err(format!(
            "{what} {} is not a regular file",
            path.display()
        )));
    }
    File::open(path).map_err(|e| err(format!("{what} {}: {e}", path.display())))?;
    Ok(meta)
}

/// The prefix, index and count of a split GGUF's file name,
/// `<prefix>-NNNNN-of-MMMMM.gguf`; `None` for any other name.
pub fn shard_of(name: &str) -> Option<(&str, u32, u32)> {
    let stem = name.strip_suffix(".gguf")?;
    let at = stem.len().checked_sub(15)?;
    let (prefix, tail) = (stem.get(..at)?, stem.get(at..)?);
    let (index, total) = tail.strip_prefix('-')?.split_once("-of-")?;
    if index.len() != 5 || total.len() != 5 || prefix.is_empty() {
        return None;
    }
    Some((prefix, index.parse().ok()?, total.parse().ok()?))
}

/// Finds all shards of a split GGUF from its first shard; a plain file is its own shard.
pub fn discover_shards(first: &Path) -> Result<Vec<PathBuf>, FormatError> {
    let name = first
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| err(format!("{} has no usable file name", first.display())))?;
    let Some((prefix, index, total)) = shard_of(name) else {
        return Ok(vec![first.to_path_buf()]);
    };
    if index != 1 {
        return Err(err(format!(
            "{} is shard {index} of {total}; give the first shard (-00001-of-{total:05})",
            first.display()
        )));
    }
    let dir = first.parent().unwrap_or(Path::new("/"));
    (1..=total)
        .map(|i| {
            let p = dir.join(format!("{prefix}-{i:05}-of-{total:05}.gguf"));
            if p.is_file() {
                Ok(p)
            } else {
                Err(err(format!("shard {} is missing", p.display())))
            }
        })
        .collect()
}

impl PackageSpec {
    /// Checks every input and derives the config facts from the GGUF headers.
    pub fn plan(&self) -> Result<Plan, FormatError> {
        if self.format == PackageFormat::Cncf && self.context_size.is_some() {
            return Err(err("--context-size cannot be used with --format cncf"));
        }
        if let Some(c) = self.context_size {
            if c == 0 || c > i32::MAX as u64 {
                return Err(err(format!("context size {c} is out of range")));
            }
        }
        check_file(&self.gguf, "GGUF file")?;
        let created = self.created.unwrap_or_else(Utc::now);
        let reproducible = self.created.is_some();
        let mut layers = Vec::new();
        let mut facts = None;
        let (mut params, mut bytes) = (0u64, 0u64);
        for shard in discover_shards(&self.gguf)? {
            let meta = check_file(&shard, "GGUF file")?;
            let header =
                GgufFile::open(&shard).map_err(|e| err(format!("{}: {e}", shard.display())))?;
            let f = header.facts();
            params = params.saturating_add(f.parameter_count);
            bytes = bytes.saturating_add(f.size_bytes);
            facts.get_or_insert(f);
            layers.push(layer(&shard, &meta, media::GGUF, reproducible, created)?);
        }
        for l in &self.licenses {
            let meta = check_file(l, "license")?;
            layers.push(layer(l, &meta, media::LICENSE, reproducible, created)?);
        }
        if let Some(m) = &self.mmproj {
            let meta = check_file(m, "multimodal projector")?;
            layers.push(layer(m, &meta, media::MMPROJ, reproducible, created)?);
        }
        if let Some(t) = &self.chat_template {
            let meta = check_file(t, "chat template")?;
            layers.push(layer(
                t,
                &meta,
                media::CHAT_TEMPLATE,
                reproducible,
                created,
            )?);
        }
        let facts = facts.expect("at least one shard");
        let context_size = self
            .context_size
            .map(|c| c as i64)
            .or(facts.context_length.and_then(|c| i64::try_from(c).ok()));
        let config = ModelConfig {
            format: Some("gguf".into()),
            quantization: Some(facts.quantization),
            parameters: Some(format_parameters(params)),
            architecture: Some(facts.architecture),
            size: Some(format_bytes(bytes)),
            gguf: Some(facts.metadata),
            context_size: if self.format == PackageFormat::Docker {
                context_size
            } else {
                None
            },
            ..ModelConfig::default()
        };
        Ok(Plan {
            layers,
            config,
            format: self.format,
            created,
        })
    }
}

fn layer(
    path: &Path,
    meta: &fs::Metadata,
    media_type: &'static str,
    reproducible: bool,
    created: DateTime<Utc>,
) -> Result<PlannedLayer, FormatError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| err(format!("{} has no UTF-8 file name", path.display())))?;
    let (mode, mtime) = if reproducible {
        (0o644, created)
    } else {
        let mtime = meta
            .modified()
            .map(DateTime::<Utc>::from)
            .unwrap_or(created);
        (meta.permissions().mode() & 0o7777, mtime)
    };
    let file_meta = FileMetadata {
        name,
        mode,
        uid: 0,
        gid: 0,
        size: meta.len(),
        mtime: go_rfc3339(&mtime),
        typeflag: 0,
    };
    let annotations = BTreeMap::from([
        (
            media::ANNOTATION_MEDIATYPE_UNTESTED.to_string(),
            "false".to_string(),
        ),
        (
            media::ANNOTATION_FILE_METADATA.to_string(),
            serde_json::to_string(&file_meta).expect("serialises"),
        ),
        (media::ANNOTATION_FILEPATH.to_string(), name.to_string()),
    ]);
    Ok(PlannedLayer {
        path: path.to_path_buf(),
        media_type,
        size: meta.len(),
        annotations,
    })
}

fn cncf_media_type(docker: &str) -> &'static str {
    match docker {
        media::GGUF | media::MMPROJ => media::CNCF_WEIGHT_RAW,
        media::LICENSE => media::CNCF_DOC_RAW,
        _ => media::CNCF_WEIGHT_CONFIG_RAW,
    }
}

/// Hashes a file, reporting progress in bytes; checks its size did not change.
pub fn hash_file(
    path: &Path,
    expected_size: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<Digest, FormatError> {
    let f =
        File::open(path).map_err(|e| FormatError::io(format!("opening {}", path.display()), e))?;
    let mut h = Hasher::new();
    h.update_from(&mut BufReader::with_capacity(1 << 20, f), progress)
        .map_err(|e| FormatError::io(format!("reading {}", path.display()), e))?;
    if h.len() != expected_size {
        return Err(err(format!(
            "{} changed size while packaging ({} bytes, then {})",
            path.display(),
            expected_size,
            h.len()
        )));
    }
    Ok(h.finish())
}

impl Plan {
    /// Total bytes of all layers.
    pub fn total_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// Hashes every layer and writes config and manifest.
    pub fn build(&self, progress: &mut dyn FnMut(u64)) -> Result<Built, FormatError> {
        let mut layers = Vec::with_capacity(self.layers.len());
        for l in &self.layers {
            let digest = hash_file(&l.path, l.size, progress)?;
            layers.push((l.path.clone(), self.descriptor(l, digest)));
        }
        Ok(self.assemble(layers))
    }

    /// Builds config and manifest with digests already verified elsewhere (a download
    /// checked against its source's sha256), one per layer in order, without hashing.
    pub fn build_known(&self, digests: &[Digest]) -> Result<Built, FormatError> {
        if digests.len() != self.layers.len() {
            return Err(err(format!(
                "{} digests for {} layers",
                digests.len(),
                self.layers.len()
            )));
        }
        let layers = self
            .layers
            .iter()
            .zip(digests)
            .map(|(l, d)| (l.path.clone(), self.descriptor(l, *d)))
            .collect();
        Ok(self.assemble(layers))
    }

    fn descriptor(&self, l: &PlannedLayer, digest: Digest) -> Descriptor {
        let media_type = match self.format {
            PackageFormat::Docker => l.media_type,
            PackageFormat::Cncf => cncf_media_type(l.media_type),
        };
        Descriptor {
            media_type: media_type.to_string(),
            size: l.size,
            digest,
            urls: None,
            annotations: Some(l.annotations.clone()),
            artifact_type: None,
        }
    }

    /// Builds config and manifest for layers whose digests are known.
    pub fn assemble(&self, layers: Vec<(PathBuf, Descriptor)>) -> Built {
        let diff_ids: Vec<Digest> = layers.iter().map(|(_, d)| d.digest).collect();
        let (config, config_type, artifact_type) = match self.format {
            PackageFormat::Docker => (
                serde_json::to_vec(&ConfigFile {
                    config: self.config.clone(),
                    descriptor: ConfigDescriptor {
                        created: Some(self.created),
                    },
                    rootfs: RootFs {
                        kind: "rootfs".into(),
                        diff_ids,
                    },
                }),
                media::CONFIG_V01,
                None,
            ),
            PackageFormat::Cncf => (
                serde_json::to_vec(&ModelPack {
                    descriptor: ModelPackDescriptor {
                        created_at: Some(self.created),
                        family: self.config.architecture.clone(),
                        name: None,
                    },
                    modelfs: ModelFs {
                        kind: "layers".into(),
                        diff_ids,
                    },
                    config: ModelPackConfig {
                        architecture: self.config.architecture.clone(),
                        format: self.config.format.clone(),
                        param_size: self.config.parameters.clone(),
                        precision: None,
                        quantization: self.config.quantization.clone(),
                    },
                }),
                media::CNCF_CONFIG_V1,
                Some(media::CNCF_ARTIFACT_TYPE.to_string()),
            ),
        };
        let config = config.expect("config serialises");
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(media::OCI_MANIFEST.to_string()),
            artifact_type,
            config: Descriptor {
                media_type: config_type.to_string(),
                size: config.len() as u64,
                digest: Digest::of(&config),
                urls: None,
                annotations: None,
                artifact_type: None,
            },
            layers: layers.iter().map(|(_, d)| d.clone()).collect(),
            annotations: None,
        }
        .to_bytes();
        Built {
            id: Digest::of(&manifest),
            manifest,
            config,
            layers,
        }
    }
}

impl Built {
    /// Streams the artifact as a load tar, reporting layer bytes written.
    pub fn write_tar<W: Write>(
        &self,
        out: W,
        progress: &mut dyn FnMut(u64),
    ) -> Result<W, FormatError> {
        self.write_tar_without(out, &[], progress)
    }

    /// Like [`Built::write_tar`], leaving out the layers with the digests in `left_out`
    /// (files the store links instead of receiving them).
    pub fn write_tar_without<W: Write>(
        &self,
        out: W,
        left_out: &[Digest],
        progress: &mut dyn FnMut(u64),
    ) -> Result<W, FormatError> {
        let io = |e| FormatError::io("writing the model archive", e);
        let mut tar = TarWriter::new(out).map_err(io)?;
        for (path, d) in self
            .layers
            .iter()
            .filter(|(_, d)| !left_out.contains(&d.digest))
        {
            let f = File::open(path)
                .map_err(|e| FormatError::io(format!("opening {}", path.display()), e))?;
            let reader = Progress {
                inner: BufReader::with_capacity(1 << 20, f),
                progress: &mut *progress,
            };
            tar.blob(&d.digest, d.size, reader).map_err(io)?;
        }
        let cfg = Digest::of(&self.config);
        tar.blob(&cfg, self.config.len() as u64, self.config.as_slice())
            .map_err(io)?;
        tar.finish(&self.manifest).map_err(io)
    }
}

struct Progress<'a, R> {
    inner: R,
    progress: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for Progress<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        (self.progress)(n as u64);
        Ok(n)
    }
}
