//! Stored responses: what `previous_response_id`, `GET /v1/responses/{id}` and
//! `input_items` read. Each is kept in memory and as one JSON file in the store's
//! `responses/` directory (written to a temporary name, synced and renamed, so a crash
//! leaves the old file or the new one), bounded in count, in bytes and in age; the
//! oldest go first. At start the directory is read back, and a file that does not parse
//! or does not hold the response its name says is removed. Files are written before the
//! call that stores them returns (off the async threads), one at a time, so the file
//! of a response is always its last version.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{debug, warn};

/// Bounds of the stored responses.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most responses kept.
    pub max_count: usize,
    /// Most bytes kept (their JSON, summed); one response over it is refused.
    pub max_bytes: u64,
    /// How long one is kept.
    pub max_age: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_count: 1000,
            max_bytes: 256 << 20,
            max_age: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// One stored response.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    /// The response object, as the API returns it.
    pub response: Value,
    /// Every input item of its conversation (earlier turns' inputs and outputs, then
    /// this turn's input), each with an `id`.
    pub history: Vec<Value>,
    /// When it was created (seconds since the epoch).
    pub created: u64,
}

impl Record {
    fn id(&self) -> &str {
        self.response["id"].as_str().unwrap_or_default()
    }
}

struct Inner {
    map: HashMap<String, (Arc<Record>, u64)>,
    bytes: u64,
}

/// The stored responses.
pub(crate) struct Responses {
    dir: Option<PathBuf>,
    limits: Limits,
    inner: Mutex<Inner>,
    /// Held while files are written or removed.
    io: Mutex<()>,
}

/// Runs file work without stalling the async threads it may be called on.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

fn now() -> u64 {
    crate::pipeline::now_secs()
}

/// Writes `bytes` to `path` through a synced temporary file.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

impl Responses {
    /// Responses kept in `dir` (read back now), or in memory only.
    pub(crate) fn open(dir: Option<PathBuf>, limits: Limits) -> Responses {
        let r = Responses {
            dir,
            limits,
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                bytes: 0,
            }),
            io: Mutex::new(()),
        };
        if let Some(dir) = &r.dir {
            if let Err(e) = fs::create_dir_all(dir) {
                warn!(dir = %dir.display(), cause = %e, "cannot create the responses directory; responses are kept in memory only");
            }
            r.load(dir);
        }
        r
    }

    fn load(&self, dir: &Path) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let mut loaded = Vec::new();
        for e in entries.flatten() {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".json") else {
                if name.ends_with(".json.tmp") {
                    let _ = fs::remove_file(&path);
                }
                continue;
            };
            let record = fs::read(&path).ok().and_then(|b| {
                serde_json::from_slice::<Record>(&b)
                    .ok()
                    .map(|r| (r, b.len()))
            });
            match record {
                Some((r, size)) if r.id() == id => loaded.push((r, size as u64)),
                _ => {
                    warn!(file = %path.display(), "removing a stored response that does not read back");
                    let _ = fs::remove_file(&path);
                }
            }
        }
        loaded.sort_by_key(|(r, _)| r.created);
        let mut inner = self.inner.lock().expect("responses lock");
        for (r, size) in loaded {
            inner.bytes += size;
            inner.map.insert(r.id().to_string(), (Arc::new(r), size));
        }
        let gone = self.evict(&mut inner, 0);
        drop(inner);
        self.remove_files(&gone);
    }

    /// Drops what is too old, then the oldest until `incoming` more bytes fit.
    fn evict(&self, inner: &mut Inner, incoming: u64) -> Vec<String> {
        let oldest = now().saturating_sub(self.limits.max_age.as_secs());
        let mut by_age: Vec<(u64, String)> = inner
            .map
            .iter()
            .map(|(id, (r, _))| (r.created, id.clone()))
            .collect();
        by_age.sort();
        let mut gone = Vec::new();
        for (created, id) in by_age {
            let over = inner.map.len() + usize::from(incoming > 0) > self.limits.max_count
                || inner.bytes + incoming > self.limits.max_bytes;
            if created >= oldest && !over {
                break;
            }
            if let Some((_, size)) = inner.map.remove(&id) {
                inner.bytes -= size;
                gone.push(id);
            }
        }
        gone
    }

    /// Removes the files of `ids` (the io lock is held).
    fn remove_files(&self, ids: &[String]) {
        let Some(dir) = &self.dir else { return };
        if ids.is_empty() {
            return;
        }
        debug!(count = ids.len(), "dropping stored responses");
        blocking(|| {
            for id in ids {
                let _ = fs::remove_file(dir.join(format!("{id}.json")));
            }
        });
    }

    /// Whether a conversation of `bytes` can be stored at all.
    pub(crate) fn fits(&self, bytes: u64) -> bool {
        bytes <= self.limits.max_bytes
    }

    /// The limit in bytes.
    pub(crate) fn max_bytes(&self) -> u64 {
        self.limits.max_bytes
    }

    /// Stores `record` (replacing one of the same id), dropping the oldest to make room.
    pub(crate) fn put(&self, record: Record) {
        let bytes = serde_json::to_vec(&record).expect("records serialise");
        let size = bytes.len() as u64;
        let id = record.id().to_string();
        if !self.fits(size) {
            warn!(
                id,
                size, "a response is larger than the store of responses; not kept"
            );
            return;
        }
        let _io = self.io.lock().expect("responses io lock");
        let mut inner = self.inner.lock().expect("responses lock");
        if let Some((_, old)) = inner.map.remove(&id) {
            inner.bytes -= old;
        }
        let gone = self.evict(&mut inner, size);
        inner.bytes += size;
        inner.map.insert(id.clone(), (Arc::new(record), size));
        drop(inner);
        self.remove_files(&gone);
        let Some(dir) = &self.dir else { return };
        let path = dir.join(format!("{id}.json"));
        if let Err(e) = blocking(|| write_atomic(&path, &bytes)) {
            warn!(id, cause = %e, "cannot write a stored response; it is kept in memory only");
        }
    }

    /// A stored response, unless it is gone or too old.
    pub(crate) fn get(&self, id: &str) -> Option<Arc<Record>> {
        let inner = self.inner.lock().expect("responses lock");
        let (r, _) = inner.map.get(id)?;
        if r.created + self.limits.max_age.as_secs() >= now() {
            return Some(r.clone());
        }
        drop(inner);
        self.delete(id);
        None
    }

    /// Removes a stored response; false when there was none.
    pub(crate) fn delete(&self, id: &str) -> bool {
        let _io = self.io.lock().expect("responses io lock");
        let mut inner = self.inner.lock().expect("responses lock");
        let Some((_, size)) = inner.map.remove(id) else {
            return false;
        };
        inner.bytes -= size;
        drop(inner);
        self.remove_files(&[id.to_string()]);
        true
    }
}

#[cfg(test)]
#[path = "stored_tests.rs"]
mod tests;
