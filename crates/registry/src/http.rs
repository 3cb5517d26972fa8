//! Requests to one repository of one registry: authentication on challenge, retries with
//! backoff, redirects that never carry credentials off their origin, bounded reads.

use std::time::Duration;

use futures::StreamExt;
use rand::Rng;
use reqwest::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE,
};
use reqwest::{Method, Response, StatusCode};
use tokio::sync::Mutex;
use tracing::{debug, warn};
use url::Url;

use crate::auth::{fetch_token, parse_challenge};
use crate::creds::Credentials;
use crate::error::RegistryError;

/// Attempts per request (the first one included).
pub const MAX_ATTEMPTS: u32 = 5;
/// Redirects followed per request.
pub const MAX_REDIRECTS: usize = 10;
/// Registry error bodies read for the message.
pub const MAX_ERROR_BYTES: usize = 64 << 10;

/// The Authorization header in use for the registry's origin.
#[derive(Debug, Clone, Default)]
enum AuthState {
    #[default]
    None,
    Basic,
    Bearer(String),
}

/// A request body that can be made again for a retry.
pub type BodyFn<'a> = &'a (dyn Fn() -> Result<reqwest::Body, RegistryError> + Send + Sync);

/// One repository on one registry, with the credentials for it.
pub struct Session {
    http: reqwest::Client,
    /// `scheme://host[:port]` of the registry API.
    pub base: Url,
    /// The repository path, such as `ai/smollm2`.
    pub repo: String,
    /// Token scopes asked for.
    pub scopes: Vec<String>,
    creds: Option<Credentials>,
    auth: Mutex<AuthState>,
    /// Base backoff; tests shorten it.
    backoff: Duration,
    /// Whether a 401's `WWW-Authenticate` challenge is answered (a registry's token
    /// flow); off for the Hugging Face Hub, whose token is the only credential.
    challenges: bool,
}

impl Session {
    pub(crate) fn new(
        http: reqwest::Client,
        base: Url,
        repo: &str,
        scopes: Vec<String>,
        creds: Option<Credentials>,
        bearer: Option<String>,
        backoff: Duration,
    ) -> Self {
        let auth = match bearer {
            Some(t) => AuthState::Bearer(t),
            None => AuthState::None,
        };
        Session {
            http,
            base,
            repo: repo.to_string(),
            scopes,
            creds,
            auth: Mutex::new(auth),
            backoff,
            challenges: true,
        }
    }

    /// The same session, never answering authentication challenges.
    pub(crate) fn without_challenges(mut self) -> Self {
        self.challenges = false;
        self
    }

    /// The registry host as errors name it.
    pub fn host(&self) -> String {
        let h = self.base.host_str().unwrap_or_default();
        match self.base.port() {
            Some(p) => format!("{h}:{p}"),
            None => h.to_string(),
        }
    }

    /// `base/v2/<repo>/<tail>`.
    pub fn url(&self, tail: &str) -> Url {
        self.base
            .join(&format!("/v2/{}/{tail}", self.repo))
            .expect("repository paths are URL-safe")
    }

    async fn auth_header(&self) -> Option<HeaderValue> {
        match &*self.auth.lock().await {
            AuthState::None => None,
            AuthState::Basic => match &self.creds {
                Some(Credentials::Basic { username, password }) => {
                    use base64::Engine;
                    let b = base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{password}"));
                    HeaderValue::from_str(&format!("Basic {b}")).ok()
                }
                _ => None,
            },
            AuthState::Bearer(t) => HeaderValue::from_str(&format!("Bearer {t}")).ok(),
        }
    }

    /// Answers a 401 challenge; false when there is nothing more to try.
    async fn authenticate(&self, resp: &Response) -> Result<bool, RegistryError> {
        let Some(challenge) = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_challenge)
        else {
            return Ok(false);
        };
        match challenge.scheme.as_str() {
            "basic" => {
                // Concurrent requests may all meet the challenge; each retries once
                // (see `send`), so a refused password cannot loop.
                if matches!(self.creds, Some(Credentials::Basic { .. })) {
                    *self.auth.lock().await = AuthState::Basic;
                    return Ok(true);
                }
                Ok(false)
            }
            "bearer" => {
                let token = fetch_token(
                    &self.http,
                    &self.base,
                    &challenge,
                    &self.scopes,
                    self.creds.as_ref(),
                )
                .await?;
                *self.auth.lock().await = AuthState::Bearer(token);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Sends a request with authentication, retries and redirects. Error statuses other
    /// than the retried ones come back as responses for the caller to judge.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
        body: Option<BodyFn<'_>>,
        action: &str,
    ) -> Result<Response, RegistryError> {
        let mut attempt = 0;
        let mut answered_challenge = false;
        loop {
            attempt += 1;
            let result = self.send_once(&method, &url, &headers, body).await;
            let wait = match result {
                Ok(resp)
                    if resp.status() == StatusCode::UNAUTHORIZED
                        && self.challenges
                        && !answered_challenge =>
                {
                    answered_challenge = true;
                    if self.authenticate(&resp).await? {
                        attempt -= 1;
                        continue;
                    }
                    return Ok(resp);
                }
                Ok(resp) if retried(resp.status()) && attempt < MAX_ATTEMPTS => {
                    let wait = retry_after(&resp).unwrap_or_else(|| self.backoff(attempt));
                    warn!(status = %resp.status(), %url, attempt, ?wait, "{action}: retrying");
                    wait
                }
                Ok(resp) => return Ok(resp),
                Err(RegistryError::Transport { reason, .. })
                    if attempt < MAX_ATTEMPTS && !reason.contains("certificate") =>
                {
                    let wait = self.backoff(attempt);
                    warn!(%reason, %url, attempt, ?wait, "{action}: retrying");
                    wait
                }
                Err(RegistryError::Transport { reason, .. }) if reason.contains("certificate") => {
                    return Err(RegistryError::Transport {
                        registry: self.host(),
                        action: action.to_string(),
                        reason: format!(
                            "{reason}; trust its CA with --registry-ca-cert, or list it with --insecure-registry"
                        ),
                    })
                }
                Err(RegistryError::Transport { reason, .. }) => {
                    return Err(RegistryError::Transport {
                        registry: self.host(),
                        action: action.to_string(),
                        reason: format!("{reason} (after {attempt} attempts)"),
                    })
                }
                Err(e) => return Err(e),
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt, following redirects. Credentials go only to the registry's origin,
    /// and never again once a redirect has left it.
    async fn send_once(
        &self,
        method: &Method,
        url: &Url,
        headers: &HeaderMap,
        body: Option<BodyFn<'_>>,
    ) -> Result<Response, RegistryError> {
        let mut url = url.clone();
        let mut left_origin = false;
        for _ in 0..=MAX_REDIRECTS {
            left_origin |= url.origin() != self.base.origin();
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if !left_origin {
                if let Some(h) = self.auth_header().await {
                    req = req.header(AUTHORIZATION, h);
                }
            }
            if let Some(b) = body {
                req = req.body(b()?);
            }
            let resp = req.send().await.map_err(|e| RegistryError::Transport {
                registry: self.host(),
                action: String::new(),
                reason: describe(&e),
            })?;
            if resp.status().is_redirection() {
                if let Some(loc) = resp.headers().get(LOCATION).and_then(|l| l.to_str().ok()) {
                    let next = url.join(loc).map_err(|_| {
                        RegistryError::protocol(&self.host(), format!("bad redirect {loc:?}"))
                    })?;
                    if !matches!(next.scheme(), "http" | "https") {
                        return Err(RegistryError::protocol(
                            &self.host(),
                            format!("redirect to {next}"),
                        ));
                    }
                    debug!(from = %url, to = %next, "redirect");
                    url = next;
                    continue;
                }
            }
            return Ok(resp);
        }
        Err(RegistryError::protocol(
            &self.host(),
            format!("more than {MAX_REDIRECTS} redirects"),
        ))
    }

    /// The pause before retry number `attempt` (see [`Session::send`]).
    pub fn backoff_for(&self, attempt: u32) -> Duration {
        self.backoff(attempt)
    }

    /// Exponential backoff with jitter: about 1 s, 2 s, 4 s, 8 s.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.backoff * 2u32.pow(attempt.saturating_sub(1).min(6));
        let jitter = rand::rng().random_range(0.5..1.5);
        base.mul_f64(jitter)
    }

    /// Turns an unwanted response into an error, summarising the registry's message.
    pub async fn fail(&self, resp: Response, action: &str, what: &str) -> RegistryError {
        let status = resp.status();
        let detail = error_detail(resp).await;
        let registry = self.host();
        match status {
            StatusCode::NOT_FOUND => RegistryError::NotFound {
                what: what.to_string(),
                registry,
                detail,
            },
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => RegistryError::Unauthorized {
                registry,
                reason: format!(
                    "{action} was refused ({status}){detail}; log in with `docker login {}` or pass a bearer token",
                    self.host()
                ),
            },
            _ => RegistryError::Status {
                registry,
                status: status.as_u16(),
                action: action.to_string(),
                detail,
            },
        }
    }
}

fn retried(s: StatusCode) -> bool {
    s == StatusCode::REQUEST_TIMEOUT || s == StatusCode::TOO_MANY_REQUESTS || s.is_server_error()
}

/// `Retry-After` in seconds (capped at a minute).
fn retry_after(resp: &Response) -> Option<Duration> {
    let secs: u64 = resp
        .headers()
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.min(60)))
}

/// A transport error in one line, with its causes.
pub fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "transfer failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(c) = source {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = c.source();
    }
    s
}

/// Reads a body of at most `limit` bytes; more is an error, never a truncation.
pub async fn read_bounded(
    resp: Response,
    limit: usize,
    what: &str,
    registry: &str,
) -> Result<Vec<u8>, RegistryError> {
    let too_big = || {
        RegistryError::protocol(
            registry,
            format!("{what} is larger than the limit of {limit} bytes"),
        )
    };
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_big());
    }
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| RegistryError::Transport {
            registry: registry.to_string(),
            action: format!("reading the {what}"),
            reason: describe(&e),
        })?;
        if out.len() + chunk.len() > limit {
            return Err(too_big());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The registry's error message (OCI `errors` JSON or text), bounded and on one line,
/// with a leading ": "; empty when there is none.
async fn error_detail(resp: Response) -> String {
    let mut body = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = MAX_ERROR_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room <= chunk.len() {
            break;
        }
    }
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<OciError>,
    }
    #[derive(serde::Deserialize)]
    struct OciError {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    let text = match serde_json::from_slice::<Errors>(&body) {
        Ok(e) => e
            .errors
            .iter()
            .take(3)
            .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => String::from_utf8_lossy(&body)
            .lines()
            .next()
            .unwrap_or("")
            .to_string(),
    };
    let text: String = text.chars().filter(|c| !c.is_control()).take(300).collect();
    if text.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", text.trim())
    }
}
