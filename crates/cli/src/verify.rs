//! Checks an exported archive as `modelrunner load` would read it: every blob hashes
//! to its name, the manifest comes last and every blob it names is there.

use std::collections::HashSet;
use std::path::Path;

use anyhow::{bail, Context};
use modelrunner_format::tarball::{classify_entry, EntryName};
use modelrunner_format::{Digest, Hasher, Manifest};

/// Verifies the archive at `path`; returns how many blobs it holds.
pub fn verify_archive(path: &Path) -> anyhow::Result<usize> {
    let f =
        std::fs::File::open(path).with_context(|| format!("while opening {}", path.display()))?;
    let mut archive = tar::Archive::new(std::io::BufReader::with_capacity(1 << 20, f));
    let mut blobs: HashSet<Digest> = HashSet::new();
    let mut manifest = None;
    for entry in archive.entries().context("while reading the archive")? {
        let mut entry = entry.context("while reading the archive")?;
        let name = entry.path()?.to_string_lossy().into_owned();
        match classify_entry(&name)? {
            EntryName::Dir => {}
            EntryName::Blob(d) => {
                let mut h = Hasher::new();
                h.update_from(&mut entry, &mut |_| {})
                    .with_context(|| format!("while reading {name}"))?;
                let got = h.finish();
                if got != d {
                    bail!("the archive's blob {d} hashes to {got}: it is damaged");
                }
                blobs.insert(d);
            }
            EntryName::Manifest => {
                let mut bytes = Vec::new();
                std::io::Read::read_to_end(&mut entry, &mut bytes)?;
                manifest = Some(Manifest::parse(&bytes)?);
            }
        }
    }
    let Some(m) = manifest else {
        bail!("the archive has no manifest.json: it is incomplete");
    };
    for d in m.blobs() {
        if !blobs.contains(&d.digest) {
            bail!(
                "the archive lacks blob {} that its manifest names",
                d.digest
            );
        }
    }
    Ok(blobs.len())
}
