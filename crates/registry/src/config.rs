//! Which registries are trusted how: insecure (plain HTTP or unverified TLS) hosts,
//! extra CA certificates, pull mirrors and where Docker credentials live.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Docker Hub's API host, which `docker.io` stands for.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// Settings of the registry client (the `[registries]` table of the daemon's config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistryConfig {
    /// Hosts (`host` or `host:port`) reached over plain HTTP, or over TLS without
    /// certificate checks. Loopback registries may use plain HTTP without being listed.
    pub insecure: Vec<String>,
    /// PEM files with extra CA certificates, trusted next to the system's.
    pub ca_certs: Vec<PathBuf>,
    /// Pull mirrors per registry host, tried in order before the registry itself:
    /// `{"docker.io" = ["https://mirror.example"]}`.
    pub mirrors: BTreeMap<String, Vec<String>>,
    /// The Docker config directory (`$DOCKER_CONFIG`, else `~/.docker`).
    pub docker_config: Option<PathBuf>,
    /// Layers transferred at once per pull or push (default 4).
    pub max_concurrent: Option<usize>,
    /// First retry pause in milliseconds, doubled per attempt with jitter (default 1000).
    pub retry_backoff_ms: Option<u64>,
    /// Milliseconds without a byte before a transfer is abandoned and retried
    /// (default 30000).
    pub stall_timeout_ms: Option<u64>,
    /// The Hugging Face Hub (`HF_ENDPOINT`; default `https://huggingface.co`), for
    /// mirrors and tests.
    pub hf_endpoint: Option<String>,
    /// The Hugging Face token (`HF_TOKEN`), sent to the Hub's origin only.
    #[serde(skip_serializing)]
    pub hf_token: Option<Secret>,
    /// Which sources models may be pulled from.
    pub policy: crate::policy::PullPolicy,
}

/// A credential: deserialised as a plain string, never printed or serialised.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl RegistryConfig {
    /// True when `host` (`name` or `name:port`) is listed as insecure.
    pub fn is_insecure(&self, host: &str) -> bool {
        self.insecure.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// How long a transfer may go without a byte.
    pub fn stall_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.stall_timeout_ms.unwrap_or(30_000).max(100))
    }

    /// The Hub's base URL, without trailing slashes.
    pub fn hub_endpoint(&self) -> String {
        let e = self
            .hf_endpoint
            .as_deref()
            .map(str::trim)
            .filter(|e| !e.is_empty());
        e.unwrap_or(crate::hub::DEFAULT_ENDPOINT)
            .trim_end_matches('/')
            .to_string()
    }

    /// The Hub token, when one is set and not blank.
    pub fn hub_token(&self) -> Option<String> {
        let t = self.hf_token.as_ref()?.0.trim();
        (!t.is_empty()).then(|| t.to_string())
    }

    /// Layers moved at once (default 4).
    pub fn concurrency(&self) -> usize {
        self.max_concurrent.unwrap_or(4).clamp(1, 32)
    }
}

/// The host a reference's registry name is reached at (`docker.io` is Docker Hub's API).
pub fn api_host(registry: &str) -> &str {
    match registry {
        "docker.io" | "index.docker.io" => DOCKER_HUB_API,
        other => other,
    }
}

/// The host part of `host[:port]`, without brackets.
pub fn host_name(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host_port.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host_port,
    }
}

/// True for `localhost` and loopback addresses.
pub fn is_loopback(host_port: &str) -> bool {
    let h = host_name(host_port);
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_and_addresses_are_classified() {
        assert_eq!(api_host("docker.io"), DOCKER_HUB_API);
        assert_eq!(api_host("ghcr.io"), "ghcr.io");
        assert_eq!(host_name("127.0.0.1:5000"), "127.0.0.1");
        assert_eq!(host_name("[::1]:5000"), "::1");
        assert!(is_loopback("localhost:5000") && is_loopback("[::1]:1"));
        assert!(!is_loopback("10.0.0.1"));
        let c = RegistryConfig {
            insecure: vec!["reg.lan:5000".into()],
            ..Default::default()
        };
        assert!(c.is_insecure("REG.lan:5000") && !c.is_insecure("reg.lan"));
    }
}
