//! Pushing a model: blobs the registry lacks are uploaded (mounted from another
//! repository of the same registry when one of the model's tags lives there), streamed
//! from the store, several at a time; the manifest goes last, byte for byte.

use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt};
use modelrunner_format::digest::Hasher;
use modelrunner_format::{media, Descriptor, Digest, Manifest, Reference};
use modelrunner_store::Store;
use tokio_util::io::ReaderStream;
use tracing::{debug, info};

use crate::client::{Mount, Registry};
use crate::error::RegistryError;
use crate::http::Session;
use crate::progress::{Kind, LayerReporter, Mode, Progress, Sink};

impl Registry {
    /// Pushes the stored model `model` (its ID) with manifest `manifest_bytes` as
    /// `target`. `also_in` are other references of the model; repositories of the same
    /// registry among them are mount sources.
    pub async fn push(
        &self,
        store: &Arc<Store>,
        manifest_bytes: Vec<u8>,
        target: &Reference,
        also_in: &[Reference],
        bearer: Option<String>,
        sink: Sink,
    ) -> Result<Digest, RegistryError> {
        let tag = target.tag().ok_or_else(|| {
            RegistryError::Config(format!("push needs a tag, not a digest: {target}"))
        })?;
        let manifest = Manifest::parse(&manifest_bytes)?;
        let mut session = self.session(target, true, bearer).await?;
        let from: Option<String> = also_in
            .iter()
            .find(|r| r.registry() == target.registry() && r.repository() != target.repository())
            .map(|r| r.repository().to_string());
        if let Some(f) = &from {
            session.scopes.push(format!("repository:{f}:pull"));
        }
        let total: u64 = manifest.blobs().map(|d| d.size).sum();
        let blobs: Vec<Descriptor> = manifest.blobs().cloned().collect();
        futures::stream::iter(blobs.into_iter().map(|desc| {
            let reporter = LayerReporter::new(
                sink.clone(),
                Mode::Push,
                total,
                desc.digest.to_string(),
                desc.size,
            );
            push_blob(
                &session,
                store,
                desc,
                from.as_deref(),
                reporter,
                &self.pushed,
            )
        }))
        .buffer_unordered(self.config().concurrency())
        .try_collect::<Vec<()>>()
        .await?;
        let media_type = manifest
            .media_type
            .as_deref()
            .unwrap_or(media::OCI_MANIFEST);
        session
            .put_manifest(tag, &manifest_bytes, media_type)
            .await?;
        let digest = Digest::of(&manifest_bytes);
        info!(target = %target, %digest, "pushed");
        if let Some(s) = &sink {
            let _ = s.send(Progress::plain(
                Kind::Success,
                Mode::Push,
                "Model pushed successfully",
            ));
        }
        Ok(digest)
    }
}

async fn push_blob(
    session: &Session,
    store: &Arc<Store>,
    desc: Descriptor,
    from: Option<&str>,
    reporter: LayerReporter,
    pushed: &Arc<std::sync::atomic::AtomicU64>,
) -> Result<(), RegistryError> {
    let reporter = Arc::new(Mutex::new(reporter));
    if session.has_blob(&desc.digest).await? {
        debug!(digest = %desc.digest, "the registry has it");
        reporter.lock().unwrap().set(desc.size);
        return Ok(());
    }
    let location = match session.start_upload(&desc.digest, from).await? {
        Mount::Mounted => {
            debug!(digest = %desc.digest, from, "mounted");
            reporter.lock().unwrap().set(desc.size);
            return Ok(());
        }
        Mount::Upload(url) => url,
    };
    let store = store.clone();
    let digest = desc.digest;
    let r = reporter.clone();
    let pushed = pushed.clone();
    let size = desc.size;
    let body = move || -> Result<reqwest::Body, RegistryError> {
        let file = store.open_blob(&digest)?;
        let len = file
            .metadata()
            .map_err(|e| modelrunner_store::StoreError::Broken(format!("blob {digest}: {e}")))?
            .len();
        if len != size {
            return Err(damaged(digest, format!("has {len} bytes, expected {size}")).into());
        }
        r.lock().unwrap().set(0);
        let counter = r.clone();
        let pushed = pushed.clone();
        let mut check = Some((Hasher::new(), 0u64));
        let stream = ReaderStream::with_capacity(tokio::fs::File::from_std(file), 1 << 20)
            .inspect_ok(move |b| {
                counter.lock().unwrap().add(b.len() as u64);
                pushed.fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
            })
            // The last chunk goes out only once the whole blob hashed to its digest: a
            // damaged blob ends the upload short, and the registry never gets it whole.
            .map(move |chunk| {
                let b = chunk?;
                if let Some((h, seen)) = check.as_mut() {
                    h.update(&b);
                    *seen += b.len() as u64;
                    if *seen >= size {
                        let (h, _) = check.take().expect("present");
                        let got = h.finish();
                        if got != digest {
                            let why = format!("reads as {got}");
                            return Err(std::io::Error::other(damaged(digest, why)));
                        }
                    }
                }
                Ok(b)
            });
        Ok(reqwest::Body::wrap_stream(stream))
    };
    session
        .put_blob(location, &desc.digest, desc.size, &body)
        .await?;
    reporter.lock().unwrap().set(desc.size);
    Ok(())
}

/// A stored blob that is not what its name says: never pushed.
fn damaged(digest: Digest, why: String) -> modelrunner_store::StoreError {
    modelrunner_store::StoreError::Broken(format!(
        "blob {digest} {why}: the stored file is damaged and is not pushed; pull the model again or run `modelrunner fsck --repair`"
    ))
}
