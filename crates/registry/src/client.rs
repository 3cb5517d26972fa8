//! The registry client: HTTP clients with the configured trust, scheme choice per host,
//! sessions per repository, and the distribution API calls models need.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use modelrunner_format::{Digest, Reference};
use tracing::debug;
use url::Url;

use crate::config::{api_host, is_loopback, RegistryConfig};
use crate::creds::{self, Credentials};
use crate::error::RegistryError;
use crate::http::Session;

/// The registry client. One per daemon; cheap to share.
pub struct Registry {
    config: RegistryConfig,
    strict: reqwest::Client,
    lenient: reqwest::Client,
    schemes: std::sync::Mutex<HashMap<String, &'static str>>,
    pub(crate) inflight: crate::turn::Inflight,
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

    /// The first retry pause of a session.
    pub(crate) fn backoff(&self) -> Duration {
        self.backoff
    }

    pub(crate) fn client_for(&self, host: &str) -> reqwest::Client {
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
