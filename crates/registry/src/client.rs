//! The registry client: HTTP clients with the configured trust, scheme choice per host,
//! sessions per repository, and the distribution API calls models need.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use modelrunner_format::manifest::MAX_DOCUMENT_BYTES;
use modelrunner_format::{media, Descriptor, Digest, Reference};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use tracing::{debug, info};
use url::Url;

use crate::config::{api_host, is_loopback, RegistryConfig};
use crate::creds::{self, Credentials};
use crate::error::RegistryError;
use crate::http::{read_bounded, BodyFn, Session};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// The registry client. One per daemon; cheap to share.
pub struct Registry {
    config: RegistryConfig,
    strict: reqwest::Client,
    lenient: reqwest::Client,
    schemes: std::sync::Mutex<HashMap<String, &'static str>>,
    pub(crate) inflight: crate::pull::Inflight,
    backoff: Duration,
    /// Blob bytes downloaded and uploaded so far.
    pub(crate) pulled: Arc<std::sync::atomic::AtomicU64>,
    pub(crate) pushed: Arc<std::sync::atomic::AtomicU64>,
}

/// A fetched manifest: the registry's exact bytes and their digest.
#[derive(Debug, Clone)]
pub struct RemoteManifest {
    /// The raw bytes (the model ID is their digest).
    pub bytes: Vec<u8>,
    /// sha256 of `bytes`.
    pub digest: Digest,
}

/// What an upload session ended in.
pub enum Mount {
    /// The registry linked the blob from the other repository.
    Mounted,
    /// No mount; upload here.
    Upload(Url),
}

impl Registry {
    /// Builds the HTTP clients: system roots plus `ca_certs`; insecure hosts get a
    /// client that skips certificate checks.
    pub fn new(config: RegistryConfig) -> Result<Registry, RegistryError> {
        let mut certs = Vec::new();
        for path in &config.ca_certs {
            let pem = std::fs::read(path).map_err(|e| {
                RegistryError::Config(format!("CA certificate {}: {e}", path.display()))
            })?;
            let found = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                RegistryError::Config(format!("CA certificate {}: {e}", path.display()))
            })?;
            if found.is_empty() {
                return Err(RegistryError::Config(format!(
                    "CA certificate {}: no PEM certificate in it",
                    path.display()
                )));
            }
            certs.extend(found);
        }
        let build = |lenient: bool| {
            let mut b = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(30))
                .read_timeout(config.stall_timeout())
                .tcp_nodelay(true)
                .user_agent(concat!("modelrunner/", env!("CARGO_PKG_VERSION")))
                .danger_accept_invalid_certs(lenient);
            for c in &certs {
                b = b.add_root_certificate(c.clone());
            }
            b.build()
                .map_err(|e| RegistryError::Config(format!("HTTP client: {e}")))
        };
        let backoff = Duration::from_millis(config.retry_backoff_ms.unwrap_or(1000));
        Ok(Registry {
            strict: build(false)?,
            lenient: build(true)?,
            config,
            schemes: Default::default(),
            inflight: Default::default(),
            backoff,
            pulled: Default::default(),
            pushed: Default::default(),
        })
    }

    /// Blob bytes (downloaded, uploaded) since the start.
    pub fn bytes(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.pulled.load(Relaxed), self.pushed.load(Relaxed))
    }

    /// The configuration in use.
    pub fn config(&self) -> &RegistryConfig {
        &self.config
    }

    fn client_for(&self, host: &str) -> reqwest::Client {
        if self.config.is_insecure(host) {
            self.lenient.clone()
        } else {
            self.strict.clone()
        }
    }

    /// `https://host` for ordinary registries; loopback and insecure ones are probed
    /// for HTTPS first and fall back to plain HTTP, remembered per host.
    async fn base_url(&self, host: &str) -> Result<Url, RegistryError> {
        let parse = |scheme: &str| {
            Url::parse(&format!("{scheme}://{host}/"))
                .map_err(|_| RegistryError::Config(format!("bad registry host {host:?}")))
        };
        if !(is_loopback(host) || self.config.is_insecure(host)) {
            return parse("https");
        }
        if let Some(s) = self.schemes.lock().unwrap().get(host) {
            return parse(s);
        }
        let https = parse("https")?;
        let probe = self
            .client_for(host)
            .get(https.join("/v2/").expect("static path"))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        let scheme = match probe {
            Ok(_) => "https",
            // A server that speaks TLS with a certificate we do not trust is an HTTPS
            // registry: say so instead of retrying in plain text.
            Err(e) if crate::http::describe(&e).contains("certificate") => "https",
            Err(e) => {
                debug!(host, cause = %crate::http::describe(&e), "no HTTPS; using plain HTTP");
                "http"
            }
        };
        self.schemes
            .lock()
            .unwrap()
            .insert(host.to_string(), scheme);
        parse(scheme)
    }

    /// A session for `reference`'s repository at `host` (the registry or a mirror).
    /// Credentials: `bearer` when given, else the Docker config's for that host.
    pub async fn session_at(
        &self,
        host: &str,
        credential_host: &str,
        repo: &str,
        push: bool,
        bearer: Option<String>,
    ) -> Result<Session, RegistryError> {
        let base = self.base_url(host).await?;
        let creds: Option<Credentials> = if bearer.is_some() {
            None
        } else {
            creds::lookup(self.config.docker_config.as_deref(), credential_host).await?
        };
        let actions = if push { "pull,push" } else { "pull" };
        Ok(Session::new(
            self.client_for(host),
            base,
            repo,
            vec![format!("repository:{repo}:{actions}")],
            creds,
            bearer,
            self.backoff,
        ))
    }

    /// A session for `reference`'s own registry.
    pub async fn session(
        &self,
        reference: &Reference,
        push: bool,
        bearer: Option<String>,
    ) -> Result<Session, RegistryError> {
        let host = api_host(reference.registry()).to_string();
        self.session_at(
            &host,
            reference.registry(),
            reference.repository(),
            push,
            bearer,
        )
        .await
    }

    /// Sessions to try for a pull: the configured mirrors of the registry, then itself.
    pub async fn pull_sessions(
        &self,
        reference: &Reference,
        bearer: Option<String>,
    ) -> Result<Vec<Session>, RegistryError> {
        let mut out = Vec::new();
        for m in self
            .config
            .mirrors
            .get(reference.registry())
            .into_iter()
            .flatten()
        {
            let url: Url = m
                .parse()
                .map_err(|_| RegistryError::Config(format!("bad mirror URL {m:?}")))?;
            let host = match (url.host_str(), url.port()) {
                (Some(h), Some(p)) => format!("{h}:{p}"),
                (Some(h), None) => h.to_string(),
                _ => return Err(RegistryError::Config(format!("bad mirror URL {m:?}"))),
            };
            let mut s = self
                .session_at(&host, &host, reference.repository(), false, None)
                .await?;
            s.base = url.join("/").expect("root");
            out.push(s);
        }
        out.push(self.session(reference, false, bearer).await?);
        Ok(out)
    }
}

impl Session {
    /// Fetches a manifest by tag or digest. Image indexes and unknown manifest types are
    /// refused; the digest is checked against the reference and the registry's header.
    pub async fn manifest(&self, reference: &Reference) -> Result<RemoteManifest, RegistryError> {
        let target = match reference.digest() {
            Some(d) => d.to_string(),
            None => reference.tag().unwrap_or("latest").to_string(),
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_str(
                &[
                    media::OCI_MANIFEST,
                    media::DOCKER_MANIFEST_V2,
                    OCI_INDEX,
                    DOCKER_LIST,
                ]
                .join(", "),
            )
            .expect("static"),
        );
        let url = self.url(&format!("manifests/{target}"));
        let resp = self
            .send(Method::GET, url, headers, None, "fetching the manifest")
            .await?;
        if resp.status() != StatusCode::OK {
            return Err(self
                .fail(resp, "fetching the manifest", &format!("model {reference}"))
                .await);
        }
        let content_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        if content_type == OCI_INDEX || content_type == DOCKER_LIST {
            return Err(RegistryError::Unsupported {
                media_type: content_type,
                what: "manifest (model artifacts are single manifests, not indexes)",
            });
        }
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = read_bounded(resp, MAX_DOCUMENT_BYTES, "manifest", &self.host()).await?;
        let digest = Digest::of(&bytes);
        if let Some(want) = reference.digest() {
            if *want != digest {
                return Err(RegistryError::protocol(
                    &self.host(),
                    format!("manifest {want} has digest {digest}"),
                ));
            }
        }
        if let Some(h) = header_digest.filter(|h| h.starts_with("sha256:")) {
            if h != digest.to_string() {
                return Err(RegistryError::protocol(
                    &self.host(),
                    format!("the manifest's bytes hash to {digest}, not {h} as the registry says"),
                ));
            }
        }
        Ok(RemoteManifest { bytes, digest })
    }

    /// Fetches a small blob (a config) whole, checking size and digest.
    pub async fn small_blob(&self, desc: &Descriptor) -> Result<Vec<u8>, RegistryError> {
        if desc.size > MAX_DOCUMENT_BYTES as u64 {
            return Err(RegistryError::protocol(
                &self.host(),
                format!(
                    "config {} of {} bytes is over the 4 MiB limit",
                    desc.digest, desc.size
                ),
            ));
        }
        let resp = self.blob(&desc.digest, 0).await?;
        if resp.status() != StatusCode::OK {
            return Err(self
                .fail(
                    resp,
                    "fetching the config",
                    &format!("blob {}", desc.digest),
                )
                .await);
        }
        let bytes = read_bounded(
            resp,
            desc.size as usize,
            &format!("blob {}", desc.digest),
            &self.host(),
        )
        .await?;
        if bytes.len() as u64 != desc.size || Digest::of(&bytes) != desc.digest {
            return Err(RegistryError::protocol(
                &self.host(),
                format!(
                    "blob {} arrived with other content ({} bytes)",
                    desc.digest,
                    bytes.len()
                ),
            ));
        }
        Ok(bytes)
    }

    /// `GET` a blob, from `offset` on when it is not zero.
    pub async fn blob(
        &self,
        digest: &Digest,
        offset: u64,
    ) -> Result<reqwest::Response, RegistryError> {
        let mut headers = HeaderMap::new();
        if offset > 0 {
            headers.insert(
                reqwest::header::RANGE,
                HeaderValue::from_str(&format!("bytes={offset}-")).expect("ascii"),
            );
        }
        self.send(
            Method::GET,
            self.url(&format!("blobs/{digest}")),
            headers,
            None,
            "downloading a blob",
        )
        .await
    }

    /// True when the repository has the blob.
    pub async fn has_blob(&self, digest: &Digest) -> Result<bool, RegistryError> {
        let resp = self
            .send(
                Method::HEAD,
                self.url(&format!("blobs/{digest}")),
                HeaderMap::new(),
                None,
                "checking a blob",
            )
            .await?;
        match resp.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(self
                .fail(resp, "checking a blob", &format!("blob {digest}"))
                .await),
        }
    }

    /// Starts an upload, asking to mount the blob from `from` (a repository of the same
    /// registry) when given.
    pub async fn start_upload(
        &self,
        digest: &Digest,
        from: Option<&str>,
    ) -> Result<Mount, RegistryError> {
        let mut url = self.url("blobs/uploads/");
        if let Some(from) = from {
            url.query_pairs_mut()
                .append_pair("mount", &digest.to_string())
                .append_pair("from", from);
        }
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        let resp = self
            .send(
                Method::POST,
                url.clone(),
                headers,
                None,
                "starting an upload",
            )
            .await?;
        match resp.status() {
            StatusCode::CREATED if from.is_some() => Ok(Mount::Mounted),
            StatusCode::ACCEPTED => {
                let loc = resp
                    .headers()
                    .get(LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .ok_or_else(|| {
                        RegistryError::protocol(&self.host(), "upload answer without Location")
                    })?;
                let next = url.join(loc).map_err(|_| {
                    RegistryError::protocol(&self.host(), format!("bad upload Location {loc:?}"))
                })?;
                Ok(Mount::Upload(next))
            }
            _ => Err(self
                .fail(
                    resp,
                    "starting an upload",
                    &format!("repository {}", self.repo),
                )
                .await),
        }
    }

    /// Finishes an upload with the whole blob in one `PUT`, streamed by `body`.
    pub async fn put_blob(
        &self,
        location: Url,
        digest: &Digest,
        size: u64,
        body: BodyFn<'_>,
    ) -> Result<(), RegistryError> {
        let mut url = location;
        url.query_pairs_mut()
            .append_pair("digest", &digest.to_string());
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(CONTENT_LENGTH, HeaderValue::from(size));
        let resp = self
            .send(Method::PUT, url, headers, Some(body), "uploading a blob")
            .await?;
        if resp.status() != StatusCode::CREATED {
            return Err(self
                .fail(resp, "uploading a blob", &format!("upload of {digest}"))
                .await);
        }
        Ok(())
    }

    /// Pushes manifest bytes under `tag` and checks the digest the registry reports.
    pub async fn put_manifest(
        &self,
        tag: &str,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<(), RegistryError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(media_type)
                .map_err(|_| RegistryError::Config(format!("bad media type {media_type:?}")))?,
        );
        let owned = bytes.to_vec();
        let body = move || Ok(reqwest::Body::from(owned.clone()));
        let resp = self
            .send(
                Method::PUT,
                self.url(&format!("manifests/{tag}")),
                headers,
                Some(&body),
                "pushing the manifest",
            )
            .await?;
        if !resp.status().is_success() {
            return Err(self
                .fail(
                    resp,
                    "pushing the manifest",
                    &format!("repository {}", self.repo),
                )
                .await);
        }
        let want = Digest::of(bytes).to_string();
        if let Some(got) = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
        {
            if got != want {
                return Err(RegistryError::protocol(
                    &self.host(),
                    format!("the registry stored the manifest as {got}, expected {want}"),
                ));
            }
        }
        info!(repo = %self.repo, tag, digest = %want, "manifest pushed");
        Ok(())
    }
}
