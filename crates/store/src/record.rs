//! A durable, simple record of which models the store holds and their tags, next to the
//! manifests (`models.json`), so the index can be rebuilt when sled's files are lost or
//! corrupt. It is rewritten atomically (temp file, fsync, rename, fsync of the directory)
//! before every index flush; the manifests and blobs hold everything else.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use modelrunner_format::{Digest, Reference};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::blob::{create_exclusive, fsync_dir};
use crate::error::StoreError;
use crate::Store;

/// One model in the record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// Manifest digest.
    pub id: Digest,
    /// Its tags, in order.
    pub tags: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    version: u32,
    models: Vec<Entry>,
}

/// What a rebuild of the index did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// Models indexed again.
    pub models: usize,
    /// Tags restored.
    pub tags: usize,
    /// Models of the record that could not be restored, with why.
    pub lost: Vec<(String, String)>,
}

impl Store {
    pub(crate) fn record_path(&self) -> PathBuf {
        self.root.join("manifests/models.json")
    }

    /// Writes the record of what the index holds now.
    pub(crate) fn write_record(&self) -> Result<(), StoreError> {
        let _one_writer = self.record_lock.lock().unwrap();
        let mut models: Vec<Entry> = self
            .records()
            .into_iter()
            .flatten()
            .map(|r| Entry {
                id: r.id,
                tags: r.tags,
            })
            .collect();
        models.sort_by_key(|e| e.id.hex().to_string());
        let body = serde_json::to_vec_pretty(&Record { version: 1, models })
            .expect("the record serialises");
        let nonce: u64 = rand::random();
        let tmp = self.tmp_dir().join(format!("models-{nonce:016x}.json"));
        let io = |e| StoreError::io("writing the model record", e);
        let mut f = create_exclusive(&tmp).map_err(io)?;
        f.write_all(&body).and_then(|_| f.sync_all()).map_err(io)?;
        let dest = self.record_path();
        fs::rename(&tmp, &dest).map_err(io)?;
        fsync_dir(dest.parent().expect("manifests dir"))
    }

    /// The record's models; none when there is no record.
    pub(crate) fn read_record(&self) -> Result<Vec<Entry>, StoreError> {
        let path = self.record_path();
        let text = match fs::read(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StoreError::io(format!("reading {}", path.display()), e)),
        };
        let r: Record = serde_json::from_slice(&text)
            .map_err(|e| StoreError::Broken(format!("{}: {e}", path.display())))?;
        Ok(r.models)
    }

    /// Indexes every model of the record again from its manifest and blobs, with its
    /// tags. Models already indexed are left as they are.
    pub fn rebuild_index(&self) -> Result<Rebuilt, StoreError> {
        let mut done = Rebuilt::default();
        for e in self.read_record()? {
            let restored = (|| {
                let bytes = self.manifest_bytes(&e.id)?;
                let tags: Vec<Reference> = e.tags.iter().filter_map(|t| t.parse().ok()).collect();
                self.add_model(&self.lease(), &bytes, &tags)
            })();
            match restored {
                Ok(m) => {
                    done.models += 1;
                    done.tags += m.tags.len();
                }
                Err(err) => {
                    warn!(model = %e.id, cause = %err, "cannot restore a model into the index");
                    done.lost.push((e.id.to_string(), err.to_string()));
                }
            }
        }
        info!(
            models = done.models,
            tags = done.tags,
            lost = done.lost.len(),
            "index rebuilt from the model record"
        );
        Ok(done)
    }
}
