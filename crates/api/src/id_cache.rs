//! Facts read once per model ID (its FIM tokens, its Ollama extras). IDs are manifest
//! digests, so what one names never changes and an entry never goes stale; the map is
//! bounded, and past the bound it starts again.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use crate::ApiError;

/// The most models remembered.
const MAX_MODELS: usize = 256;

/// A bounded map from model ID to what was read for it.
#[derive(Default)]
pub(crate) struct IdCache<T> {
    entries: Mutex<HashMap<String, T>>,
}

impl<T: Clone> IdCache<T> {
    /// The value for `id`, read with `read` the first time.
    pub(crate) async fn get_or_read<F>(&self, id: &str, read: F) -> Result<T, ApiError>
    where
        F: Future<Output = Result<T, ApiError>>,
    {
        if let Some(v) = self.entries.lock().expect("id cache lock").get(id) {
            return Ok(v.clone());
        }
        let v = read.await?;
        let mut entries = self.entries.lock().expect("id cache lock");
        if entries.len() >= MAX_MODELS {
            entries.clear();
        }
        entries.insert(id.to_string(), v.clone());
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_once_per_id_and_stays_bounded() {
        let c = IdCache::<u32>::default();
        assert_eq!(c.get_or_read("a", async { Ok(1) }).await.unwrap(), 1);
        // Read again, the first value stands.
        assert_eq!(c.get_or_read("a", async { Ok(2) }).await.unwrap(), 1);
        // A failed read is not remembered.
        assert!(c
            .get_or_read("b", async { Err(ApiError::internal("x")) })
            .await
            .is_err());
        assert_eq!(c.get_or_read("b", async { Ok(3) }).await.unwrap(), 3);
        for i in 0..MAX_MODELS + 5 {
            c.get_or_read(&format!("n{i}"), async { Ok(0) })
                .await
                .unwrap();
        }
        assert!(c.entries.lock().unwrap().len() <= MAX_MODELS);
    }
}
