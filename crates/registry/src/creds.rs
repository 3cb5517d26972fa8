//! Registry credentials from the Docker config: `auths` entries, and the
//! `docker-credential-*` helper programs named by `credsStore` and `credHelpers`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::debug;

use crate::error::RegistryError;

/// How a registry is logged in to.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// User name and password (or personal access token).
    Basic {
        /// User name.
        username: String,
        /// Password or token.
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token realm.
    IdentityToken(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credentials::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// The Docker config directory: `dir` when set, else `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir(dir: Option<&Path>) -> Option<PathBuf> {
    dir.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("DOCKER_CONFIG").map(PathBuf::from))
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")))
}

/// The key Docker uses for a registry: Docker Hub's legacy URL, else the host.
fn server_url(registry: &str) -> String {
    match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => {
            "https://index.docker.io/v1/".into()
        }
        other => other.to_string(),
    }
}

/// `https://host/v1/` → `host`: how config keys are compared.
fn normalise_key(key: &str) -> String {
    let k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    let host = k.split('/').next().unwrap_or(k).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        _ => host,
    }
}

/// Looks up credentials for `registry` (a reference's registry name, such as
/// `docker.io` or `localhost:5000`). `Ok(None)` means anonymous.
pub async fn lookup(
    dir: Option<&Path>,
    registry: &str,
) -> Result<Option<Credentials>, RegistryError> {
    let Some(dir) = docker_config_dir(dir) else {
        return Ok(None);
    };
    let path = dir.join("config.json");
    let text = match tokio::fs::read_to_string(&path).await {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(RegistryError::Config(format!(
                "reading {}: {e}",
                path.display()
            )))
        }
    };
    let config: DockerConfig = serde_json::from_str(&text)
        .map_err(|e| RegistryError::Config(format!("{}: {e}", path.display())))?;
    let want = normalise_key(registry);
    let helper = config
        .cred_helpers
        .iter()
        .find(|(k, _)| normalise_key(k) == want)
        .map(|(_, v)| v.clone())
        .or(config.creds_store.clone());
    // Docker's order: the registry's `credHelpers` entry, else `credsStore`, else `auths`.
    // A helper that has nothing stored for the registry leaves `auths` to answer.
    if let Some(name) = helper.filter(|n| !n.is_empty()) {
        if let Some(c) = run_helper(&name, &server_url(registry)).await? {
            return Ok(Some(c));
        }
    }
    match config.auths.iter().find(|(k, _)| normalise_key(k) == want) {
        Some((_, entry)) => from_entry(entry, &path),
        None => Ok(None),
    }
}

fn from_entry(e: &AuthEntry, path: &Path) -> Result<Option<Credentials>, RegistryError> {
    if let Some(t) = e.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credentials::IdentityToken(t.to_string())));
    }
    if let Some(auth) = e.auth.as_deref().filter(|a| !a.is_empty()) {
        let bad = || {
            RegistryError::Config(format!(
                "{}: an `auth` entry is not base64 of user:password",
                path.display()
            ))
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad())?;
        let s = String::from_utf8(raw).map_err(|_| bad())?;
        let (u, p) = s.split_once(':').ok_or_else(bad)?;
        return Ok(Some(Credentials::Basic {
            username: u.into(),
            password: p.into(),
        }));
    }
    match (&e.username, &e.password) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials::Basic {
            username: u.clone(),
            password: p.clone(),
        })),
        _ => Ok(None),
    }
}

/// Runs `docker-credential-<name> get`, bounded in time and output.
async fn run_helper(name: &str, server: &str) -> Result<Option<Credentials>, RegistryError> {
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(RegistryError::Config(format!(
            "credential helper name {name:?} is not a plain program name"
        )));
    }
    let program = format!("docker-credential-{name}");
    let fail = |why: String| RegistryError::Config(format!("{program}: {why}"));
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| fail(e.to_string()))?;
    let mut stdin = child.stdin.take().expect("piped");
    let _ = stdin.write_all(server.as_bytes()).await;
    drop(stdin);
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut so = child.stdout.take().expect("piped").take(1 << 20);
    let mut se = child.stderr.take().expect("piped").take(64 << 10);
    let run = async {
        let (a, b) = tokio::join!(so.read_to_end(&mut out), se.read_to_end(&mut err));
        a.and(b)?;
        child.wait().await
    };
    let status = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .map_err(|_| fail("did not answer within 30 s".into()))?
        .map_err(|e| fail(e.to_string()))?;
    let said = String::from_utf8_lossy(&out.iter().chain(&err).copied().collect::<Vec<u8>>())
        .trim()
        .to_string();
    if !status.success() {
        if said.contains("credentials not found") {
            debug!(helper = program, "no credentials stored");
            return Ok(None);
        }
        return Err(fail(format!(
            "failed ({status}): {}",
            said.chars().take(200).collect::<String>()
        )));
    }
    let a: HelperAnswer =
        serde_json::from_slice(&out).map_err(|e| fail(format!("unreadable answer: {e}")))?;
    if a.username == "<token>" {
        return Ok(Some(Credentials::IdentityToken(a.secret)));
    }
    Ok(Some(Credentials::Basic {
        username: a.username,
        password: a.secret,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn auths_helpers_and_hub_keys_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let helper = bin.join("docker-credential-fake");
        std::fs::write(
            &helper,
            "#!/bin/sh\nread s\nif [ \"$s\" = ghcr.io ]; then echo '{\"ServerURL\":\"ghcr.io\",\"Username\":\"gh\",\"Secret\":\"tok\"}'; else echo 'credentials not found in native keychain'; exit 1; fi\n",
        )
        .unwrap();
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode("hub:secret");
        std::fs::write(
            dir.path().join("config.json"),
            format!(r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{b64}"}},"localhost:5000":{{"identitytoken":"rt"}},"ghcr.io":{{"auth":"{b64}"}},"quay.io":{{"identitytoken":"q"}}}},"credHelpers":{{"ghcr.io":"fake","quay.io":"fake"}}}}"#),
        )
        .unwrap();
        let path = std::env::var("PATH").unwrap();
        std::env::set_var("PATH", format!("{}:{path}", bin.display()));
        let d = Some(dir.path());
        assert_eq!(
            lookup(d, "docker.io").await.unwrap(),
            Some(Credentials::Basic {
                username: "hub".into(),
                password: "secret".into()
            })
        );
        assert_eq!(
            lookup(d, "localhost:5000").await.unwrap(),
            Some(Credentials::IdentityToken("rt".into()))
        );
        assert_eq!(
            lookup(d, "ghcr.io").await.unwrap(),
            Some(Credentials::Basic {
                username: "gh".into(),
                password: "tok".into()
            })
        );
        // The helper knows nothing of quay.io, so its `auths` entry answers.
        assert_eq!(
            lookup(d, "quay.io").await.unwrap(),
            Some(Credentials::IdentityToken("q".into()))
        );
        assert_eq!(lookup(d, "example.com").await.unwrap(), None);
        let none = tempfile::tempdir().unwrap();
        assert_eq!(lookup(Some(none.path()), "docker.io").await.unwrap(), None);
    }
}
