//! Pulling a model into the store: manifest first, then the config and the layers in
//! parallel, each streamed to a resumable partial file while it is hashed, verified,
//! and only then published. The model becomes visible last.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use modelrunner_format::{Descriptor, Manifest, Reference};
use modelrunner_store::{ModelInfo, OwnedLease, PartialBlob, Store, StoreError};
use reqwest::StatusCode;
use tracing::{info, warn};

use crate::client::{Registry, RemoteManifest};
use crate::error::RegistryError;
use crate::http::{Session, MAX_ATTEMPTS};
use crate::progress::{Kind, LayerReporter, Mode, Progress, Sink};

/// A manifest found in a registry (or one of its mirrors), ready to pull.
pub struct Resolved {
    /// Where it was found.
    pub session: Session,
    /// The registry's bytes.
    pub remote: RemoteManifest,
    /// Parsed and checked.
    pub manifest: Manifest,
    /// The blobs still to fetch, once [`Registry::check_stored`] has looked.
    missing: Option<Vec<Descriptor>>,
    /// For an Ollama-format artifact, the layers that are fetched and repackaged
    /// (`manifest` then lists them, not the registry's manifest).
    ollama: Option<crate::ollama::Layers>,
}

impl Resolved {
    /// Bytes of the whole artifact.
    pub fn total(&self) -> u64 {
        self.manifest.blobs().map(|d| d.size).sum()
    }
}

fn store_err(e: StoreError) -> RegistryError {
    RegistryError::Store(e)
}

pub(crate) async fn blocking<T: Send + 'static, E: Into<RegistryError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, RegistryError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| RegistryError::Config(format!("store task failed: {e}")))?
        .map_err(Into::into)
}

impl Registry {
    /// Finds the manifest, trying mirrors before the registry. Everything a client
    /// should get as an HTTP status (not found, unauthorized, unsupported) fails here.
    pub async fn resolve(
        &self,
        reference: &Reference,
        bearer: Option<String>,
    ) -> Result<Resolved, RegistryError> {
        self.config().policy.check(reference)?;
        let mut sessions = self.pull_sessions(reference, bearer).await?;
        let last = sessions.pop().expect("the registry itself");
        for s in sessions {
            match s.manifest(reference).await {
                Ok(remote) => return finish_resolve(s, remote),
                Err(e) => warn!(mirror = %s.base, cause = %e, "mirror failed; trying the next"),
            }
        }
        let remote = last.manifest(reference).await?;
        finish_resolve(last, remote)
    }

    /// Compares the manifest with what `store` holds, before anything is fetched: the
    /// blobs already stored are re-hashed (damaged ones are removed and fetched again),
    /// and a stored blob whose size the manifest states otherwise is refused. `pull` does
    /// this itself when it was not done; doing it first lets a caller answer a refusal
    /// with its status before streaming progress.
    pub async fn check_stored(
        &self,
        store: &Arc<Store>,
        resolved: &mut Resolved,
    ) -> Result<(), RegistryError> {
        let s = store.clone();
        let host = resolved.session.host();
        let blobs: Vec<Descriptor> = resolved.manifest.blobs().cloned().collect();
        resolved.missing = Some(blocking(move || missing_blobs(&s, blobs, &host)).await?);
        Ok(())
    }

    /// Pulls what `resolved` names into `store`, tags it `reference` (unless that is a
    /// digest), and reports progress to `sink`.
    pub async fn pull(
        &self,
        store: &Arc<Store>,
        resolved: Resolved,
        reference: &Reference,
        sink: Sink,
    ) -> Result<ModelInfo, RegistryError> {
        let total = resolved.total();
        let tags: Vec<Reference> = if reference.is_tag() {
            vec![reference.clone()]
        } else {
            vec![]
        };
        let mut resolved = resolved;
        let lease = Arc::new(store.owned_lease());
        for d in resolved.manifest.blobs() {
            lease.pin(d.digest);
        }
        let missing = match resolved.missing.take() {
            Some(m) => m,
            None => {
                self.check_stored(store, &mut resolved).await?;
                resolved.missing.take().unwrap_or_default()
            }
        };
        let cached = missing.is_empty();
        let session = &resolved.session;
        self.fetch_all(session, store, &lease, missing, total, &sink, |d| {
            session.url(&format!("blobs/{}", d.digest))
        })
        .await?;
        let s = store.clone();
        let bytes = resolved.remote.bytes.clone();
        let (ollama, host, progress) = (resolved.ollama.take(), session.host(), sink.clone());
        let info = blocking(move || match ollama {
            Some(layers) => crate::ollama::convert(&s, &host, &layers, &tags, &progress),
            None => {
                let l = s.lease();
                Ok(s.add_model(&l, &bytes, &tags)?)
            }
        })
        .await?;
        drop(lease);
        info!(model = %info.id, reference = %reference, cached, "pulled");
        report_pulled(&sink, cached, total);
        Ok(info)
    }

    /// Downloads `missing` (from `url_of` each), a few at once, with a progress
    /// reporter each.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn fetch_all(
        &self,
        session: &Session,
        store: &Arc<Store>,
        lease: &Arc<OwnedLease>,
        missing: Vec<Descriptor>,
        total: u64,
        sink: &Sink,
        url_of: impl Fn(&Descriptor) -> url::Url,
    ) -> Result<(), RegistryError> {
        futures::stream::iter(missing.into_iter().map(|desc| {
            let reporter = LayerReporter::new(
                sink.clone(),
                Mode::Pull,
                total,
                desc.digest.to_string(),
                desc.size,
            );
            let url = url_of(&desc);
            self.fetch_blob(session, url, store, lease, desc, reporter)
        }))
        .buffer_unordered(self.config().concurrency())
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
    }

    /// Downloads one blob, resuming what an earlier attempt left. Two pulls that need
    /// the same blob download it once: the second waits and finds it stored.
    async fn fetch_blob(
        &self,
        session: &Session,
        url: url::Url,
        store: &Arc<Store>,
        lease: &Arc<OwnedLease>,
        desc: Descriptor,
        mut reporter: LayerReporter,
    ) -> Result<(), RegistryError> {
        let _turn = crate::turn::Turn::take(&self.inflight, desc.digest).await;
        if store.has_blob(&desc.digest) {
            reporter.set(desc.size);
            return Ok(());
        }
        let (s, l, d) = (store.clone(), lease.clone(), desc.clone());
        let mut partial = blocking(move || s.partial(&l, d.digest, d.size)).await?;
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            reporter.set(partial.offset());
            let (p, outcome) = self.fetch_once(session, &url, partial, &mut reporter).await;
            partial = p;
            match outcome {
                Ok(()) => break Ok(()),
                Err(Retry::No(e)) => break Err(e),
                Err(Retry::Yes(e)) if attempt >= MAX_ATTEMPTS => break Err(e),
                Err(Retry::Yes(e)) => {
                    warn!(digest = %desc.digest, have = partial.offset(), attempt, cause = %e, "blob download interrupted; resuming");
                    tokio::time::sleep(session.backoff_for(attempt)).await;
                }
            }
        };
        result?;
        blocking(move || partial.commit()).await.map_err(|e| match e {
            RegistryError::Store(StoreError::DigestMismatch { expected, actual }) => RegistryError::protocol(
                &session.host(),
                format!("blob {expected} arrived with other content (it hashes to {actual}); nothing was stored"),
            ),
            other => other,
        })?;
        reporter.set(desc.size);
        Ok(())
    }

    /// One request for the rest of a blob.
    async fn fetch_once(
        &self,
        session: &Session,
        url: &url::Url,
        mut partial: PartialBlob,
        reporter: &mut LayerReporter,
    ) -> (PartialBlob, Result<(), Retry>) {
        let offset = partial.offset();
        let size = partial.size();
        let digest = partial.digest();
        if offset == size {
            return (partial, Ok(()));
        }
        let resp = match session.download(url.clone(), offset).await {
            Ok(r) => r,
            Err(e @ RegistryError::Transport { .. }) => return (partial, Err(Retry::Yes(e))),
            Err(e) => return (partial, Err(Retry::No(e))),
        };
        match resp.status() {
            StatusCode::PARTIAL_CONTENT if offset > 0 && range_start(&resp) == Some(offset) => {}
            StatusCode::OK => {
                if offset > 0 {
                    info!(%digest, offset, "the registry ignored the Range; restarting the blob");
                    if let Err(e) = partial.restart() {
                        return (partial, Err(Retry::No(store_err(e))));
                    }
                    reporter.set(0);
                }
            }
            StatusCode::PARTIAL_CONTENT | StatusCode::RANGE_NOT_SATISFIABLE => {
                warn!(%digest, offset, "unusable range answer; restarting the blob");
                let outcome = match partial.restart() {
                    Err(e) => Retry::No(store_err(e)),
                    Ok(()) => Retry::Yes(RegistryError::protocol(
                        &session.host(),
                        "a range answer that does not match the request",
                    )),
                };
                return (partial, Err(outcome));
            }
            _ => {
                let e = session
                    .fail(resp, "downloading a blob", &format!("blob {digest}"))
                    .await;
                return (partial, Err(Retry::No(e)));
            }
        }
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(32);
        let writer = tokio::task::spawn_blocking(move || {
            let mut res = Ok(());
            while let Some(b) = rx.blocking_recv() {
                if let Err(e) = partial.append(&b) {
                    res = Err(e);
                    break;
                }
            }
            (partial, res)
        });
        let mut stream = resp.bytes_stream();
        let mut read_error = None;
        // Bytes that throttling held back are reported when the registry pauses.
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let chunk = tokio::select! {
                c = stream.next() => match c {
                    Some(c) => c,
                    None => break,
                },
                _ = tick.tick() => {
                    reporter.flush();
                    continue;
                }
            };
            match chunk {
                Ok(b) => {
                    let n = b.len() as u64;
                    if tx.send(b).await.is_err() {
                        break;
                    }
                    reporter.add(n);
                    self.pulled
                        .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
                }
                Err(e) => {
                    read_error = Some(crate::http::describe(&e));
                    break;
                }
            }
        }
        drop(tx);
        let (partial, written) = writer.await.expect("writer thread");
        let host = session.host();
        if let Err(e) = written {
            let e = match e {
                StoreError::SizeMismatch {
                    digest, expected, ..
                } => RegistryError::protocol(
                    &host,
                    format!("blob {digest} is longer than its descriptor's {expected} bytes"),
                ),
                other => store_err(other),
            };
            return (partial, Err(Retry::No(e)));
        }
        if let Some(reason) = read_error {
            let e = RegistryError::Transport {
                registry: host,
                action: format!("downloading blob {digest}"),
                reason,
            };
            return (partial, Err(Retry::Yes(e)));
        }
        if partial.offset() < size {
            let e = RegistryError::Transport {
                registry: host,
                action: format!("downloading blob {digest}"),
                reason: format!("the body ended after {} of {size} bytes", partial.offset()),
            };
            return (partial, Err(Retry::Yes(e)));
        }
        (partial, Ok(()))
    }
}

/// The pull's last line: the model was cached, or pulled.
pub(crate) fn report_pulled(sink: &Sink, cached: bool, total: u64) {
    let message = if cached {
        format!(
            "Using cached model: {}",
            modelrunner_format::gguf::format_bytes(total)
        )
    } else {
        "Model pulled successfully".to_string()
    };
    if let Some(s) = sink {
        let _ = s.send(Progress::plain(Kind::Success, Mode::Pull, message));
    }
}

enum Retry {
    Yes(RegistryError),
    No(RegistryError),
}

/// Refuses an artifact with no GGUF weights: it would be listed as a model no runner
/// can load (safetensors-only artifacts are for other engines).
fn check_model(manifest: &Manifest, host: &str) -> Result<(), RegistryError> {
    use modelrunner_format::media::LayerKind;
    if manifest.layers.iter().any(|l| l.kind() == LayerKind::Gguf) {
        return Ok(());
    }
    let types: std::collections::BTreeSet<&str> = manifest
        .layers
        .iter()
        .map(|l| l.media_type.as_str())
        .collect();
    Err(RegistryError::Invalid {
        registry: host.to_string(),
        reason: format!(
            "the artifact has no GGUF layer (its layers: {}); modelrunner runs GGUF models only",
            types.into_iter().collect::<Vec<_>>().join(", ")
        ),
    })
}

/// The blobs still to fetch: absent ones, and stored ones that are damaged (re-hashed
/// here, removed by the store so the pull repairs them). A stored blob that verifies but
/// whose size the manifest states otherwise means the manifest lies: refused.
pub(crate) fn missing_blobs(
    store: &Store,
    blobs: Vec<Descriptor>,
    host: &str,
) -> Result<Vec<Descriptor>, RegistryError> {
    let mut missing = Vec::new();
    for d in blobs {
        match store.check_blob(&d.digest).map_err(store_err)? {
            None => missing.push(d),
            Some(size) if size != d.size => {
                return Err(RegistryError::Invalid {
                    registry: host.to_string(),
                    reason: format!(
                        "the manifest says blob {} is {} bytes, but the blob with that digest is {size} bytes; nothing was stored",
                        d.digest, d.size
                    ),
                })
            }
            Some(_) => {}
        }
    }
    Ok(missing)
}

fn finish_resolve(session: Session, remote: RemoteManifest) -> Result<Resolved, RegistryError> {
    let (manifest, ollama) = match crate::ollama::parse(&remote.bytes, &session.host()) {
        Some(parsed) => {
            let (manifest, layers) = parsed?;
            (manifest, Some(layers))
        }
        None => {
            let manifest = Manifest::parse(&remote.bytes)?;
            check_model(&manifest, &session.host())?;
            (manifest, None)
        }
    };
    Ok(Resolved {
        session,
        remote,
        manifest,
        missing: None,
        ollama,
    })
}

/// The start of a `Content-Range: bytes START-END/TOTAL` header.
fn range_start(resp: &reqwest::Response) -> Option<u64> {
    let v = resp
        .headers()
        .get(reqwest::header::CONTENT_RANGE)?
        .to_str()
        .ok()?;
    let range = v.trim().strip_prefix("bytes ")?;
    range.split('-').next()?.trim().parse().ok()
}
