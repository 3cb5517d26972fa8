//! The model tar format of `POST /models/load` and `GET /models/{name}/export`:
//! `blobs/`, `blobs/sha256/`, each layer and the config as `blobs/sha256/<hex>`, and the
//! raw manifest as `manifest.json`, written last.

use std::io::{self, Read, Write};

use crate::digest::Digest;
use crate::error::FormatError;

/// Name of the manifest entry.
pub const MANIFEST_ENTRY: &str = "manifest.json";

/// What a tar entry is, by its name.
#[derive(Debug, PartialEq, Eq)]
pub enum EntryName {
    /// A directory entry of the layout (`blobs/`, `blobs/sha256/`, `manifests/...`).
    Dir,
    /// A blob named by its digest.
    Blob(Digest),
    /// The manifest.
    Manifest,
}

/// Classifies an entry path; anything outside the layout is an error naming the path.
pub fn classify_entry(path: &str) -> Result<EntryName, FormatError> {
    let p = path.strip_prefix("./").unwrap_or(path);
    if p == MANIFEST_ENTRY {
        return Ok(EntryName::Manifest);
    }
    if matches!(p, "blobs" | "blobs/" | "blobs/sha256" | "blobs/sha256/")
        || matches!(
            p,
            "manifests" | "manifests/" | "manifests/sha256" | "manifests/sha256/"
        )
    {
        return Ok(EntryName::Dir);
    }
    let hex = p
        .strip_prefix("blobs/sha256/")
        .or_else(|| p.strip_prefix("manifests/sha256/"));
    match hex {
        Some(h) => {
            Digest::from_hex(h)
                .map(EntryName::Blob)
                .map_err(|_| FormatError::InvalidDocument {
                    what: "model archive",
                    reason: format!("entry {p:?} is not named by a sha256 digest"),
                })
        }
        None => Err(FormatError::InvalidDocument {
            what: "model archive",
            reason: format!("unexpected entry {p:?}"),
        }),
    }
}

/// The exact length of the archive [`TarWriter`] writes for blobs of `blob_sizes` and a
/// manifest of `manifest_len` bytes: two directory entries, a 512-byte header and the
/// data padded to 512 bytes per file, and two zero blocks at the end.
pub fn archive_len(blob_sizes: impl IntoIterator<Item = u64>, manifest_len: u64) -> u64 {
    let entry = |size: u64| 512 + size.div_ceil(512) * 512;
    let blobs: u64 = blob_sizes.into_iter().map(entry).sum();
    2 * entry(0) + blobs + entry(manifest_len) + 1024
}

/// A reader of a blob that checks its digest: at the end of `size` bytes a blob whose
/// bytes do not hash to `digest` is an error, so a copy never ends as if it were whole.
pub struct VerifiedReader<R> {
    inner: std::io::Take<R>,
    digest: Digest,
    hasher: Option<crate::digest::Hasher>,
}

impl<R: Read> VerifiedReader<R> {
    /// Reads `size` bytes of `inner`, expected to hash to `digest`.
    pub fn new(inner: R, digest: Digest, size: u64) -> Self {
        VerifiedReader {
            inner: inner.take(size),
            digest,
            hasher: Some(crate::digest::Hasher::new()),
        }
    }
}

impl<R: Read> Read for VerifiedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let Some(h) = self.hasher.as_mut() else {
            return Ok(n);
        };
        h.update(&buf[..n]);
        // Checked with the last byte (a reader above may never ask past the size).
        if self.inner.limit() == 0 || n == 0 && !buf.is_empty() {
            let got = self.hasher.take().expect("present").finish();
            if got != self.digest {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "blob {} reads as {got}: the stored file is damaged",
                        self.digest
                    ),
                ));
            }
        }
        Ok(n)
    }
}

/// Writes the layout; the caller adds blobs, then the manifest.
pub struct TarWriter<W: Write> {
    builder: tar::Builder<W>,
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

impl<W: Write> TarWriter<W> {
    /// Starts an archive and writes the directory entries.
    pub fn new(out: W) -> io::Result<Self> {
        let mut builder = tar::Builder::new(out);
        for dir in ["blobs/", "blobs/sha256/"] {
            let mut h = header(tar::EntryType::Directory, 0o755, 0);
            builder.append_data(&mut h, dir, io::empty())?;
        }
        Ok(TarWriter { builder })
    }

    /// Adds a blob of `size` bytes read from `data`.
    pub fn blob(&mut self, digest: &Digest, size: u64, data: impl Read) -> io::Result<()> {
        let mut h = header(tar::EntryType::Regular, 0o644, size);
        let path = format!("blobs/sha256/{}", digest.hex());
        self.builder.append_data(&mut h, path, data.take(size))
    }

    /// Adds the manifest and finishes the archive.
    pub fn finish(mut self, manifest: &[u8]) -> io::Result<W> {
        let mut h = header(tar::EntryType::Regular, 0o644, manifest.len() as u64);
        self.builder.append_data(&mut h, MANIFEST_ENTRY, manifest)?;
        self.builder.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_length_is_known_before_it_is_written() {
        let blobs: Vec<Vec<u8>> = vec![vec![1; 0], vec![2; 511], vec![3; 512], vec![4; 1300]];
        let manifest = b"{\"layers\":[]}";
        let mut w = TarWriter::new(Vec::new()).unwrap();
        for b in &blobs {
            let d = Digest::of(b);
            w.blob(
                &d,
                b.len() as u64,
                VerifiedReader::new(&b[..], d, b.len() as u64),
            )
            .unwrap();
        }
        let out = w.finish(manifest).unwrap();
        let sizes = blobs.iter().map(|b| b.len() as u64);
        assert_eq!(archive_len(sizes, manifest.len() as u64), out.len() as u64);
    }

    #[test]
    fn a_damaged_blob_fails_its_copy() {
        let good = vec![7u8; 2000];
        let d = Digest::of(&good);
        let mut bad = good.clone();
        bad[1999] = 8;
        let mut w = TarWriter::new(Vec::new()).unwrap();
        let e = w
            .blob(&d, 2000, VerifiedReader::new(&bad[..], d, 2000))
            .unwrap_err();
        assert!(e.to_string().contains("damaged"), "{e}");
    }

    #[test]
    fn classifies_layout_entries() {
        let d = Digest::of(b"x");
        assert_eq!(classify_entry("blobs/").unwrap(), EntryName::Dir);
        assert_eq!(
            classify_entry("./manifest.json").unwrap(),
            EntryName::Manifest
        );
        assert_eq!(
            classify_entry(&format!("blobs/sha256/{}", d.hex())).unwrap(),
            EntryName::Blob(d)
        );
        for bad in [
            "blobs/sha256/../../etc/passwd",
            "blobs/sha256/ABC",
            "/etc/passwd",
            "other.txt",
            "blobs/md5/abc",
        ] {
            assert!(classify_entry(bad).is_err(), "{bad}");
        }
    }
}
