//! One download per digest at a time: a second pull that needs a blob waits for the first
//! and then finds it stored.

use std::sync::Arc;

pub(crate) type Inflight = std::sync::Mutex<
    std::collections::HashMap<modelrunner_format::Digest, Arc<tokio::sync::Mutex<()>>>,
>;

/// The one download of a digest in progress; others wait for it. The map entry goes when
/// nobody holds or waits for it (also when a pull is cancelled).
pub(crate) struct Turn<'a> {
    map: &'a Inflight,
    digest: modelrunner_format::Digest,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl<'a> Turn<'a> {
    pub(crate) async fn take(map: &'a Inflight, digest: modelrunner_format::Digest) -> Turn<'a> {
        let lock = map.lock().unwrap().entry(digest).or_default().clone();
        let guard = Some(lock.clone().lock_owned().await);
        Turn {
            map,
            digest,
            lock,
            guard,
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.guard = None;
        let mut m = self.map.lock().unwrap();
        // The map's reference and ours: nobody else holds or waits.
        if Arc::strong_count(&self.lock) == 2 {
            m.remove(&self.digest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn turns_serialise_a_digest_and_leave_no_entry_behind() {
        let map: Inflight = Default::default();
        let d = modelrunner_format::Digest::of(b"x");
        let first = Turn::take(&map, d).await;
        let waiting = tokio::spawn({
            let map: &'static Inflight = Box::leak(Box::default());
            async move { Turn::take(map, d).await.digest }
        });
        assert_eq!(waiting.await.unwrap(), d, "another map does not wait");
        let second =
            tokio::time::timeout(std::time::Duration::from_millis(50), Turn::take(&map, d)).await;
        assert!(second.is_err(), "the same digest waits for the first turn");
        drop(first);
        let again = Turn::take(&map, d).await;
        assert_eq!(map.lock().unwrap().len(), 1);
        drop(again);
        assert!(map.lock().unwrap().is_empty(), "the entry is gone");
    }
}
