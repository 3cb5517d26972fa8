//! The daemon's HTTP client: finds it, turns its error envelopes into messages.

use anyhow::{anyhow, bail, Context};
use reqwest::{Response, StatusCode};
use serde_json::Value;

/// Where the daemon is and how to talk to it.
pub struct Client {
    base: String,
    /// How errors name the daemon (the socket path for Unix sockets).
    shown: String,
    http: reqwest::Client,
}

impl Client {
    /// From `MODEL_RUNNER_HOST` (default `http://127.0.0.1:12434`; `unix:///path` for a
    /// Unix socket) and `MODEL_RUNNER_API_KEY` (sent as a bearer token when set).
    pub fn from_env() -> anyhow::Result<Self> {
        let host =
            std::env::var("MODEL_RUNNER_HOST").unwrap_or_else(|_| "http://127.0.0.1:12434".into());
        let host = host.trim_end_matches('/').to_string();
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("modelrunner-cli/", env!("CARGO_PKG_VERSION")));
        let base = if let Some(path) = host.strip_prefix("unix://") {
            if !path.starts_with('/') {
                bail!("MODEL_RUNNER_HOST: unix:// takes an absolute path, got {host:?}");
            }
            builder = builder.unix_socket(path);
            "http://localhost".to_string()
        } else if host.starts_with("http://") || host.starts_with("https://") {
            host.clone()
        } else {
            bail!("MODEL_RUNNER_HOST must start with http://, https:// or unix://, got {host:?}");
        };
        if let Ok(key) = std::env::var("MODEL_RUNNER_API_KEY") {
            let mut headers = reqwest::header::HeaderMap::new();
            let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", key.trim()))
                .context("MODEL_RUNNER_API_KEY has characters a header cannot carry")?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
            builder = builder.default_headers(headers);
        }
        Ok(Client {
            base,
            shown: host,
            http: builder.build()?,
        })
    }

    /// A request to `path`.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.base))
    }

    /// Sends, and turns connection failures and error statuses into clear errors.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Response> {
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() {
                anyhow!(
                    "cannot reach modelrunnerd at {}: is it running? Start it with `modelrunnerd` \
                     (or `systemctl start modelrunnerd`), or set MODEL_RUNNER_HOST",
                    self.shown
                )
            } else {
                anyhow!(e).context(format!("while talking to modelrunnerd at {}", self.shown))
            }
        })?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(error_from(resp).await)
    }

    /// GETs JSON.
    pub async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let r = self.send(self.request(reqwest::Method::GET, path)).await?;
        r.json().await.context("while reading the daemon's answer")
    }
}

async fn error_from(resp: Response) -> anyhow::Error {
    let status = resp.status();
    let body = resp.text().await.unwrap_or_default();
    let msg = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.trim().chars().take(500).collect());
    let code = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_string));
    match status {
        StatusCode::UNAUTHORIZED if code.as_deref() == Some("invalid_api_key") => {
            anyhow!("modelrunnerd wants an API key: {msg} (the CLI sends MODEL_RUNNER_API_KEY)")
        }
        StatusCode::NOT_FOUND | StatusCode::CONFLICT | StatusCode::BAD_REQUEST => anyhow!("{msg}"),
        _ => anyhow!("{msg} (HTTP {status})"),
    }
}

/// Percent-encodes a model reference for a path segment, keeping `/` (the routes take
/// the rest of the path as the name).
pub fn path_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/:@".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
