//! `--models-dir DIR`: GGUF files in a directory, often a read-only volume (a Kubernetes
//! image volume, KServe's `/mnt/models`), served in place as models (see the store's
//! `external.rs`: hashed where they lie, never copied).
//!
//! What becomes a model:
//! - each `NAME.gguf` directly in DIR (a split model by its first shard,
//!   `NAME-00001-of-0000N.gguf`) is the model `NAME`; an `mmproj*.gguf` beside a single
//!   model is its projector;
//! - each subdirectory `NAME/` holding one model GGUF (or one split model) is the model
//!   `NAME`, with the `mmproj*.gguf` and the one `*.jinja` chat template it holds.
//!
//! Names are lowercased, and characters a tag cannot hold become `-`.

use std::fs;
use std::path::{Path, PathBuf};

use modelrunner_format::package::{shard_of, PackageSpec};
use modelrunner_format::Reference;

/// A model found in the directory.
#[derive(Debug, Clone)]
pub struct Found {
    /// Its tag.
    pub tag: Reference,
    /// What to package.
    pub spec: PackageSpec,
}

/// The GGUF files of a directory, split into model files (first shards only) and
/// projectors, and its Jinja templates; each list sorted.
fn files(dir: &Path) -> std::io::Result<(Vec<PathBuf>, Vec<PathBuf>, Vec<PathBuf>)> {
    let (mut models, mut projectors, mut templates) = (Vec::new(), Vec::new(), Vec::new());
    for e in fs::read_dir(dir)? {
        let p = e?.path();
        let Some(name) = p
            .file_name()
            .and_then(|n| n.to_str())
            .map(str::to_ascii_lowercase)
        else {
            continue;
        };
        if !p.is_file() || name.starts_with('.') {
            continue;
        }
        if name.ends_with(".jinja") {
            templates.push(p);
        } else if !name.ends_with(".gguf") {
        } else if name.starts_with("mmproj") {
            projectors.push(p);
        } else if shard_of(&name).is_none_or(|(_, i, _)| i == 1) {
            models.push(p);
        }
    }
    models.sort();
    projectors.sort();
    templates.sort();
    Ok((models, projectors, templates))
}

/// The model name for a file name (a split model's without its shard suffix) or a
/// directory name.
fn model_name(raw: &str) -> String {
    let raw = match shard_of(raw) {
        Some((prefix, _, _)) => prefix,
        None => raw.strip_suffix(".gguf").unwrap_or(raw),
    };
    let mapped: String = raw
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    mapped
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

fn found(
    name: &str,
    gguf: PathBuf,
    mmproj: Option<PathBuf>,
    template: Option<PathBuf>,
) -> Result<Found, String> {
    let n = model_name(name);
    let tag = n
        .parse::<Reference>()
        .map_err(|e| format!("{}: {n:?} is not a usable model name: {e}", gguf.display()))?;
    Ok(Found {
        tag,
        spec: PackageSpec {
            gguf,
            mmproj,
            chat_template: template,
            ..PackageSpec::default()
        },
    })
}

/// The models in `dir`, or what is wrong with it.
pub fn scan(dir: &Path) -> Result<Vec<Found>, String> {
    let io =
        |p: &Path, e: std::io::Error| format!("reading the models directory {}: {e}", p.display());
    let (models, projectors, _) = files(dir).map_err(|e| io(dir, e))?;
    let mut out = Vec::new();
    let lone = models.len() == 1;
    for m in models {
        let stem = m
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let mmproj = if lone {
            projectors.first().cloned()
        } else {
            None
        };
        out.push(found(&stem, m, mmproj, None)?);
    }
    let mut subdirs: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| io(dir, e))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    subdirs.sort();
    for sub in subdirs {
        let (models, projectors, templates) = files(&sub).map_err(|e| io(&sub, e))?;
        let name = sub
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        match models.len() {
            0 => continue,
            1 => {}
            n => {
                return Err(format!(
                    "{} holds {n} models; put each in a directory of its own",
                    sub.display()
                ))
            }
        }
        if templates.len() > 1 {
            return Err(format!(
                "{} holds {} chat templates; keep one",
                sub.display(),
                templates.len()
            ));
        }
        let gguf = models.into_iter().next().expect("one model");
        out.push(found(
            &name,
            gguf,
            projectors.into_iter().next(),
            templates.into_iter().next(),
        )?);
    }
    let mut seen = std::collections::HashSet::new();
    for f in &out {
        if !seen.insert(f.tag.to_string()) {
            return Err(format!(
                "two models in {} are both named {}",
                dir.display(),
                f.tag
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, b"GGUF").unwrap();
    }

    #[test]
    fn files_and_directories_become_models() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        touch(&r.join("Qwen3 0.6B-Q8_0.gguf"));
        touch(&r.join("notes.txt"));
        touch(&r.join("big-00001-of-00002.gguf"));
        touch(&r.join("big-00002-of-00002.gguf"));
        touch(&r.join("mmproj-x.gguf"));
        touch(&r.join("gemma/model.gguf"));
        touch(&r.join("gemma/mmproj-gemma.gguf"));
        touch(&r.join("gemma/template.jinja"));
        touch(&r.join("empty/readme.md"));
        let found = scan(r).unwrap();
        let tags: Vec<String> = found.iter().map(|f| f.tag.to_string()).collect();
        assert_eq!(
            tags,
            [
                "docker.io/ai/qwen3-0.6b-q8_0:latest",
                "docker.io/ai/big:latest",
                "docker.io/ai/gemma:latest"
            ]
        );
        // Two models at the top: the projector there belongs to neither.
        assert!(found[0].spec.mmproj.is_none());
        assert_eq!(found[1].spec.gguf, r.join("big-00001-of-00002.gguf"));
        assert_eq!(
            found[2].spec.mmproj,
            Some(r.join("gemma/mmproj-gemma.gguf"))
        );
        assert_eq!(
            found[2].spec.chat_template,
            Some(r.join("gemma/template.jinja"))
        );
    }

    #[test]
    fn ambiguous_directories_are_refused() {
        let d = tempfile::tempdir().unwrap();
        touch(&d.path().join("two/a.gguf"));
        touch(&d.path().join("two/b.gguf"));
        assert!(scan(d.path()).unwrap_err().contains("holds 2 models"));
        assert!(scan(&d.path().join("missing"))
            .unwrap_err()
            .contains("missing"));
    }
}
