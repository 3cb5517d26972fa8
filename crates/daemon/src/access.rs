//! Who may use the daemon: API key digests (from the config, flags or a keys file), the
//! refusal to listen beyond loopback without them, and CORS origins.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, Context};
use modelrunner_api::security::KeyHash;

/// Reads a keys file: one `sha256:<hex>` per line; blank lines and `#` comments skipped.
pub fn read_keys_file(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("while reading the API keys file {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect())
}

/// Parses key digests, naming where a bad one came from.
pub fn parse_keys(keys: &[String], origin: &str) -> anyhow::Result<Vec<KeyHash>> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| {
            // The value is never echoed: it may be a key pasted where its digest belongs.
            KeyHash::parse(k).with_context(|| {
                format!(
                    "{origin}: entry {} is not a key digest (sha256: and 64 hex digits); \
                     make one with `modelrunnerd hash-key`",
                    i + 1
                )
            })
        })
        .collect()
}

/// Refuses a listen address beyond loopback without keys, unless explicitly allowed.
pub fn check_exposure(
    name: &str,
    listen: Option<SocketAddr>,
    keys: usize,
    insecure_no_auth: bool,
) -> anyhow::Result<()> {
    if let Some(addr) = listen {
        if !addr.ip().is_loopback() && keys == 0 && !insecure_no_auth {
            bail!(
                "{name} {addr} is reachable beyond this machine: configure API keys \
                 (api_keys, --api-key-hash or --api-keys-file; `modelrunnerd hash-key --generate` \
                 makes one) or pass --insecure-no-auth"
            );
        }
    }
    Ok(())
}

/// Checks CORS origins: `scheme://host[:port]`, never a wildcard.
pub fn check_origins(origins: &[String]) -> anyhow::Result<()> {
    for o in origins {
        if o.contains('*') {
            bail!("--cors-origin (cors_origins): wildcards are not allowed, got {o:?}; list each origin");
        }
        let host = o
            .strip_prefix("https://")
            .or_else(|| o.strip_prefix("http://"));
        let ok = host.is_some_and(|h| {
            let h = h.trim_end_matches('/');
            !h.is_empty() && !h.contains('/')
        });
        if !ok {
            bail!(
                "--cors-origin (cors_origins): {o:?} is not an origin like https://app.example.com"
            );
        }
    }
    Ok(())
}

/// `modelrunnerd hash-key`: prints the digest of a key read from stdin, or of a new
/// random key (`--generate`, printed first).
pub fn hash_key(generate: bool) -> anyhow::Result<()> {
    let key = if generate {
        let bytes: [u8; 24] = rand::random();
        let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let key = format!("mr-{key}");
        println!("key: {key}");
        key
    } else {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("while reading the key from stdin")?;
        let key = line.trim().to_string();
        if key.len() < 16 {
            bail!("an API key must be at least 16 characters");
        }
        key
    };
    println!("{}", KeyHash::of(&key).to_text());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposure_needs_keys_or_an_explicit_opt_out() {
        let lo: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let any: SocketAddr = "0.0.0.0:1".parse().unwrap();
        assert!(check_exposure("--listen (listen)", Some(lo), 0, false).is_ok());
        assert!(check_exposure("--listen (listen)", None, 0, false).is_ok());
        let e = check_exposure("--listen (listen)", Some(any), 0, false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--listen") && e.contains("--insecure-no-auth"),
            "{e}"
        );
        assert!(check_exposure("--listen (listen)", Some(any), 1, false).is_ok());
        assert!(check_exposure("--listen (listen)", Some(any), 0, true).is_ok());
    }

    #[test]
    fn origins_and_keys_are_checked() {
        assert!(
            check_origins(&["https://app.example.com".into(), "http://h:8080/".into()]).is_ok()
        );
        for bad in [
            "*",
            "https://*.example.com",
            "app.example.com",
            "https://a.com/path",
        ] {
            assert!(check_origins(&[bad.into()]).is_err(), "{bad}");
        }
        let good = KeyHash::of("k").to_text();
        assert_eq!(parse_keys(&[good], "x").unwrap().len(), 1);
        let e = format!(
            "{:#}",
            parse_keys(&["plaintext-secret-key".into()], "api_keys").unwrap_err()
        );
        assert!(e.contains("api_keys") && !e.contains("secret-key"), "{e}");
    }
}
