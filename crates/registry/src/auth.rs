//! Registry authentication: `WWW-Authenticate` challenges, the token flow (anonymous,
//! basic, refresh token) and the rules on where credentials may go.

use std::collections::BTreeMap;

use serde::Deserialize;
use url::Url;

use crate::creds::Credentials;
use crate::error::RegistryError;
use crate::http::read_bounded;

/// Largest token response read.
pub const MAX_TOKEN_BYTES: usize = 1 << 20;

/// A parsed `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// `basic` or `bearer`, lowercased.
    pub scheme: String,
    /// Its parameters (`realm`, `service`, `scope`), keys lowercased.
    pub params: BTreeMap<String, String>,
}

/// Parses `Bearer realm="...",service="...",scope="..."` (quoted or token values).
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header.split_once(' ').unwrap_or((header, ""));
    let mut params = BTreeMap::new();
    let mut s = rest.trim();
    while !s.is_empty() {
        let (key, after) = s.split_once('=')?;
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(q) = after.strip_prefix('"') {
            let mut out = String::new();
            let mut chars = q.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            out.push(n);
                        }
                    }
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    c => out.push(c),
                }
            }
            (out, &q[end?..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim().to_string(), &after[end..])
        };
        params.insert(key, value);
        s = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Some(Challenge {
        scheme: scheme.to_ascii_lowercase(),
        params,
    })
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
}

/// Fetches a bearer token from `realm` for `scopes`. The body is bounded and never
/// repeated in errors (token endpoints echo secrets).
pub async fn fetch_token(
    http: &reqwest::Client,
    registry: &Url,
    challenge: &Challenge,
    scopes: &[String],
    creds: Option<&Credentials>,
) -> Result<String, RegistryError> {
    let reg_host = registry.host_str().unwrap_or_default().to_string();
    let realm = challenge
        .params
        .get("realm")
        .ok_or_else(|| RegistryError::protocol(&reg_host, "bearer challenge without a realm"))?;
    let mut realm: Url = realm
        .parse()
        .map_err(|_| RegistryError::protocol(&reg_host, format!("bad token realm {realm:?}")))?;
    let creds_allowed = crate::realm::check_realm(registry, &realm).await?;
    let creds = creds.filter(|_| creds_allowed);
    let service = challenge.params.get("service").cloned();
    let mut scopes: Vec<String> = scopes.to_vec();
    if let Some(s) = challenge.params.get("scope") {
        if !scopes.contains(s) {
            scopes.push(s.clone());
        }
    }
    let request = match creds {
        Some(Credentials::IdentityToken(refresh)) => {
            let mut form = vec![
                ("grant_type", "refresh_token".to_string()),
                ("refresh_token", refresh.clone()),
                ("client_id", "modelrunner".to_string()),
            ];
            if let Some(s) = &service {
                form.push(("service", s.clone()));
            }
            form.push(("scope", scopes.join(" ")));
            http.post(realm.clone()).form(&form)
        }
        other => {
            {
                let mut q = realm.query_pairs_mut();
                if let Some(s) = &service {
                    q.append_pair("service", s);
                }
                for s in &scopes {
                    q.append_pair("scope", s);
                }
            }
            let mut r = http.get(realm.clone());
            if let Some(Credentials::Basic { username, password }) = other {
                r = r.basic_auth(username, Some(password));
            }
            r
        }
    };
    let realm_host = realm.host_str().unwrap_or_default().to_string();
    realm.set_query(None);
    let resp = request.send().await.map_err(|e| RegistryError::Transport {
        registry: reg_host.clone(),
        action: format!("requesting a token from {realm}"),
        reason: crate::http::describe(&e),
    })?;
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::FORBIDDEN {
        return Err(RegistryError::Unauthorized {
            registry: reg_host,
            reason: format!(
                "the token server {realm_host} refused the {} ({status})",
                if creds.is_some() {
                    "credentials"
                } else {
                    "anonymous request; log in with `docker login` or pass a bearer token"
                }
            ),
        });
    }
    if !status.is_success() {
        return Err(RegistryError::Status {
            registry: reg_host,
            status: status.as_u16(),
            action: format!("a token request to {realm}"),
            detail: String::new(),
        });
    }
    let body = read_bounded(resp, MAX_TOKEN_BYTES, "token response", &reg_host).await?;
    let answer: TokenAnswer = serde_json::from_slice(&body)
        .map_err(|_| RegistryError::protocol(&reg_host, "the token response is not JSON"))?;
    answer
        .token
        .or(answer.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| RegistryError::protocol(&reg_host, "the token response has no token"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_with_quotes_escapes_and_commas() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:ai/x:pull,push""#,
        )
        .unwrap();
        assert_eq!(c.scheme, "bearer");
        assert_eq!(c.params["realm"], "https://auth.docker.io/token");
        assert_eq!(c.params["scope"], "repository:ai/x:pull,push");
        let b = parse_challenge(r#"Basic realm="a \"q\" realm""#).unwrap();
        assert_eq!(
            (b.scheme.as_str(), b.params["realm"].as_str()),
            ("basic", "a \"q\" realm")
        );
        let t = parse_challenge("Bearer realm=https://r/t, service=s").unwrap();
        assert_eq!(t.params["service"], "s");
        assert!(parse_challenge(r#"Bearer realm="unterminated"#).is_none());
    }
}
