//! Runnable bundles: the files of one model laid out the way llama.cpp expects, made of
//! hard links to the blobs (copies across file systems), and symlinks to the files served
//! in place (`external.rs`).

use std::fs;
use std::path::{Path, PathBuf};

use modelrunner_format::media::LayerKind;
use modelrunner_format::Digest;
use rand::Rng;
use tracing::debug;

use crate::error::StoreError;
use crate::Store;

/// Paths inside a model's bundle.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    /// Bundle root.
    pub root: PathBuf,
    /// The GGUF file to give llama.cpp (the first shard for split models).
    pub gguf: PathBuf,
    /// All GGUF shards, in order.
    pub shards: Vec<PathBuf>,
    /// Chat template, when packaged.
    pub chat_template: Option<PathBuf>,
    /// Multimodal projector, when packaged.
    pub mmproj: Option<PathBuf>,
}

fn link_or_copy(from: &Path, to: &Path) -> Result<(), StoreError> {
    match fs::hard_link(from, to) {
        Ok(()) => Ok(()),
        Err(e)
            if e.raw_os_error() == Some(libc::EXDEV)
                || e.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            fs::copy(from, to)
                .map(|_| ())
                .map_err(|e| StoreError::io(format!("copying to {}", to.display()), e))
        }
        Err(e) => Err(StoreError::io(format!("linking {}", to.display()), e)),
    }
}

impl Store {
    /// The model's bundle, built on first use.
    pub fn bundle(&self, reference: &str) -> Result<Bundle, StoreError> {
        let model = self.resolve(reference)?;
        let root = self.bundle_path(&model.id);
        let ggufs: Vec<Digest> = model
            .manifest
            .layers
            .iter()
            .filter(|l| l.kind() == LayerKind::Gguf)
            .map(|l| l.digest)
            .collect();
        if ggufs.is_empty() {
            return Err(StoreError::Invalid(format!(
                "model {} has no GGUF layer",
                model.id
            )));
        }
        let n = ggufs.len();
        let shard_name = |i: usize| {
            if n == 1 {
                "model.gguf".to_string()
            } else {
                format!("model-{:05}-of-{n:05}.gguf", i + 1)
            }
        };
        let mut plan: Vec<(Digest, String)> = ggufs
            .iter()
            .enumerate()
            .map(|(i, d)| (*d, shard_name(i)))
            .collect();
        let mut chat_template = None;
        let mut mmproj = None;
        for l in &model.manifest.layers {
            match l.kind() {
                LayerKind::ChatTemplate if chat_template.is_none() => {
                    chat_template = Some(root.join("model/template.jinja"));
                    plan.push((l.digest, "template.jinja".into()));
                }
                LayerKind::Mmproj if mmproj.is_none() => {
                    mmproj = Some(root.join("model/model.mmproj"));
                    plan.push((l.digest, "model.mmproj".into()));
                }
                _ => {}
            }
        }
        let shards: Vec<PathBuf> = (0..n)
            .map(|i| root.join("model").join(shard_name(i)))
            .collect();
        let bundle = Bundle {
            gguf: shards[0].clone(),
            shards,
            chat_template,
            mmproj,
            root: root.clone(),
        };
        // A hard-linked blob whose file changed is refused, built bundle or not.
        for (d, _) in &plan {
            self.check_link(d)?;
        }
        if plan
            .iter()
            .all(|(_, name)| root.join("model").join(name).is_file())
        {
            return Ok(bundle);
        }
        let tmp = self
            .tmp_dir()
            .join(format!("b-{:016x}", rand::rng().random::<u64>()));
        fs::create_dir_all(tmp.join("model")).map_err(|e| StoreError::io("creating bundle", e))?;
        for (d, name) in &plan {
            if !self.has_blob(d) {
                let _ = fs::remove_dir_all(&tmp);
                return Err(StoreError::MissingBlob(*d));
            }
            let dest = tmp.join("model").join(name);
            match self.external_file(d) {
                // A file served in place: named, never copied (`external.rs`).
                Some(file) if !crate::is_regular_file(&self.blob_path(d)) => {
                    std::os::unix::fs::symlink(&file, &dest)
                        .map_err(|e| StoreError::io(format!("linking {}", dest.display()), e))?
                }
                _ => link_or_copy(&self.blob_path(d), &dest)?,
            }
        }
        let _ = fs::remove_dir_all(&root);
        fs::rename(&tmp, &root).map_err(|e| StoreError::io("publishing bundle", e))?;
        debug!(model = %model.id, root = %root.display(), "bundle built");
        Ok(bundle)
    }
}
