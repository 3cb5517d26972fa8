//! The sled index: `tags` maps a fully qualified tag to a model ID; `models` maps a model
//! ID to its record. Both change together in one transaction.

use modelrunner_format::Digest;
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

use crate::error::StoreError;
use crate::Store;

/// What the index keeps per model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// Manifest digest.
    pub id: Digest,
    /// Fully qualified tags, in the order they were added.
    pub tags: Vec<String>,
    /// Unix seconds from the config's creation time.
    pub created: i64,
    /// Config blob.
    pub config: Digest,
    /// Config media type.
    pub config_media_type: String,
    /// Layer blobs, in order.
    pub layers: Vec<Digest>,
    /// Total bytes of layers and config.
    pub size: u64,
}

impl ModelRecord {
    /// Every blob the model needs: layers and config.
    pub fn blobs(&self) -> impl Iterator<Item = &Digest> {
        self.layers.iter().chain(std::iter::once(&self.config))
    }
}

type TxError = ConflictableTransactionError<StoreError>;

fn abort(e: StoreError) -> TxError {
    ConflictableTransactionError::Abort(e)
}

fn decode(bytes: &[u8]) -> Result<ModelRecord, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Broken(format!("index record: {e}")))
}

fn encode(r: &ModelRecord) -> Vec<u8> {
    serde_json::to_vec(r).expect("record serialises")
}

/// Moves `tag` to `id` inside a transaction, removing it from its previous model.
fn move_tag(
    tags: &TransactionalTree,
    models: &TransactionalTree,
    tag: &str,
    id: &Digest,
) -> Result<(), TxError> {
    if let Some(prev) = tags.insert(tag.as_bytes(), id.hex().as_bytes())? {
        let prev = String::from_utf8_lossy(&prev).to_string();
        if prev != id.hex() {
            if let Some(raw) = models.get(prev.as_bytes())? {
                let mut rec = decode(&raw).map_err(abort)?;
                rec.tags.retain(|t| t != tag);
                models.insert(prev.as_bytes(), encode(&rec))?;
            }
        }
    }
    Ok(())
}

impl Store {
    /// The record of a model ID.
    pub(crate) fn record(&self, id: &Digest) -> Result<Option<ModelRecord>, StoreError> {
        self.models
            .get(id.hex())?
            .map(|raw| decode(&raw))
            .transpose()
    }

    /// Every record (broken ones are reported as errors in the list).
    pub(crate) fn records(&self) -> Vec<Result<ModelRecord, StoreError>> {
        self.models
            .iter()
            .map(|kv| kv.map_err(StoreError::from).and_then(|(_, v)| decode(&v)))
            .collect()
    }

    /// The model ID a tag points at.
    pub(crate) fn tag_target(&self, tag: &str) -> Result<Option<Digest>, StoreError> {
        match self.tags.get(tag)? {
            None => Ok(None),
            Some(raw) => Digest::from_hex(&String::from_utf8_lossy(&raw))
                .map(Some)
                .map_err(|_| StoreError::Broken(format!("tag {tag} points at garbage"))),
        }
    }

    /// Inserts or updates a model and moves `new_tags` onto it, atomically and durably.
    pub(crate) fn index_model(
        &self,
        rec: &ModelRecord,
        new_tags: &[String],
    ) -> Result<ModelRecord, StoreError> {
        let out = (&self.tags, &self.models).transaction(|(tags, models)| {
            let mut cur = match models.get(rec.id.hex().as_bytes())? {
                Some(raw) => decode(&raw).map_err(abort)?,
                None => rec.clone(),
            };
            for t in new_tags {
                move_tag(tags, models, t, &rec.id)?;
                if !cur.tags.contains(t) {
                    cur.tags.push(t.clone());
                }
            }
            models.insert(rec.id.hex().as_bytes(), encode(&cur))?;
            Ok(cur)
        })?;
        crate::failpoint("index.before-flush");
        self.flush()?;
        Ok(out)
    }

    /// Removes a tag from its model; returns the updated record.
    pub(crate) fn index_untag(&self, tag: &str) -> Result<Option<ModelRecord>, StoreError> {
        let out = (&self.tags, &self.models).transaction(|(tags, models)| {
            let Some(id) = tags.remove(tag.as_bytes())? else {
                return Ok(None);
            };
            let Some(raw) = models.get(&id)? else {
                return Ok(None);
            };
            let mut rec = decode(&raw).map_err(abort)?;
            rec.tags.retain(|t| t != tag);
            models.insert(id, encode(&rec))?;
            Ok(Some(rec))
        })?;
        self.flush()?;
        Ok(out)
    }

    /// Removes a model and all its tags.
    pub(crate) fn index_remove(&self, id: &Digest) -> Result<(), StoreError> {
        (&self.tags, &self.models).transaction(|(tags, models)| {
            if let Some(raw) = models.remove(id.hex().as_bytes())? {
                if let Ok(rec) = decode(&raw) {
                    for t in rec.tags {
                        tags.remove(t.as_bytes())?;
                    }
                }
            }
            Ok(())
        })?;
        self.flush()
    }

    /// Empties the index.
    pub(crate) fn index_clear(&self) -> Result<(), StoreError> {
        self.tags.clear()?;
        self.models.clear()?;
        self.flush()
    }

    /// All tags with their targets.
    pub(crate) fn all_tags(&self) -> Vec<(String, String)> {
        self.tags
            .iter()
            .flatten()
            .map(|(k, v)| {
                (
                    String::from_utf8_lossy(&k).to_string(),
                    String::from_utf8_lossy(&v).to_string(),
                )
            })
            .collect()
    }
}
