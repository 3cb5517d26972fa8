//! The distribution API calls of one repository session: manifests, blobs, uploads.

use modelrunner_format::manifest::MAX_DOCUMENT_BYTES;
use modelrunner_format::{media, Descriptor, Digest, Reference};
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Method, StatusCode};
use tracing::info;
use url::Url;

use crate::client::{Mount, RemoteManifest};
use crate::error::RegistryError;
use crate::http::{read_bounded, BodyFn, Session};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

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
        self.download(self.url(&format!("blobs/{digest}")), offset)
            .await
    }

    /// `GET` a file's bytes at `url`, from `offset` on when it is not zero.
    pub async fn download(
        &self,
        url: Url,
        offset: u64,
    ) -> Result<reqwest::Response, RegistryError> {
        let mut headers = HeaderMap::new();
        if offset > 0 {
            headers.insert(
                reqwest::header::RANGE,
                HeaderValue::from_str(&format!("bytes={offset}-")).expect("ascii"),
            );
        }
        self.send(Method::GET, url, headers, None, "downloading a blob")
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
